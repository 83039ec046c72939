// The rendered ServiceMonitor (and PrometheusRule, when the chart has one) against the Prometheus
// Operator's models: npm @kubernetes-models/prometheus-operator.
//
// Usage: node check_monitoring.mjs TOOLS_DIR OBJECTS.json
//
// TOOLS_DIR holds node_modules (scripts/check-chart.sh installs it); OBJECTS.json is a JSON array
// of the rendered objects. Each object is built as its model and `.validate()`d (types, enums,
// required fields). The models ignore unknown keys, so each object is also written as a typed
// object literal to TOOLS_DIR/check/objects.ts for `tsc --noEmit`, whose excess-property check
// refuses a misspelt field at any depth.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [tools, objectsPath] = process.argv.slice(2);
if (!tools || !objectsPath) {
  console.error("usage: node check_monitoring.mjs TOOLS_DIR OBJECTS.json");
  process.exit(2);
}
const v1 = join(tools, "node_modules/@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1");
const kinds = {
  ServiceMonitor: { module: "ServiceMonitor.js", iface: "IServiceMonitor" },
  PrometheusRule: { module: "PrometheusRule.js", iface: "IPrometheusRule" },
};
const objects = JSON.parse(readFileSync(objectsPath, "utf8")).filter((o) => o.kind in kinds);
if (!objects.some((o) => o.kind === "ServiceMonitor")) {
  console.error("no ServiceMonitor in the rendered objects");
  process.exit(1);
}
let failed = 0;
const imports = new Set();
const literals = [];
for (const [i, obj] of objects.entries()) {
  const k = kinds[obj.kind];
  const mod = await import(pathToFileURL(join(v1, k.module)).href);
  try {
    new mod[obj.kind](obj).validate();
    console.log(`${obj.kind} ${obj.metadata.name}: valid`);
  } catch (e) {
    failed++;
    console.error(`${obj.kind} ${obj.metadata.name}: ${e.message}`);
  }
  imports.add(`import type { ${k.iface} } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${obj.kind}";`);
  literals.push(`// ${obj.kind} ${obj.metadata.name}\nexport const object${i}: ${k.iface} = ${JSON.stringify(obj, null, 2)};`);
}
const dir = join(tools, "check");
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, "objects.ts"), [...imports, "", ...literals, ""].join("\n"));
writeFileSync(
  join(dir, "tsconfig.json"),
  JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022", skipLibCheck: true, types: [] },
    files: ["objects.ts"],
  }, null, 2),
);
process.exit(failed ? 1 : 0);
