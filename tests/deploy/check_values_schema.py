"""values.schema.json refuses what it should, and agrees with the engine's config format.

Usage: check_values_schema.py HELM CHART_DIR REPO_DIR

Through `helm template` (so Helm's own schema validation runs): replicas 2, misspelt keys at
several depths, wrong types and plain-text secrets are refused with a message that names the
problem; replicas 0 and 1 are accepted; log.format and log.level reach the container as
`--log-format` and RUST_LOG; with argo.enabled the webhook EventSource has its
`alertmanager` event by default and not with argo.webhook.alertmanager.enabled=false. Without
Helm: every engine config in configs/ (the files the engine's tests validate) passes the
schema's `config` part, so the schema does not refuse what the engine accepts; values.yaml keeps
the keys other templates rely on.
"""

import glob
import json
import os
import subprocess
import sys

import jsonschema
import yaml

from manifests import fail

ARGO_IMAGES = [f"argo.workflow.images.{s}=registry.example.com/{s}:1" for s in ("train", "evaluate", "promote", "notify")]

REFUSED = [
    (["replicas=2"], "/replicas", "maximum or 'windows are per instance'"),
    (["replica=1"], "replica", "additional property"),
    (["serviceMonitor.enable=true"], "enable", "additional property"),
    (["state.enabled=yes"], "/state/enabled", "a boolean"),
    (["metrics.port=70000"], "/metrics/port", "maximum"),
    (["config.engine.shard=2"], "shard", "additional property in the engine config"),
    (["config.models[0].window.type=hopping"], "window", "an enum"),
    (["config.source.options.session\\.timeout\\.ms=10000"], "session.timeout.ms", "a string (quoted number)"),
    (["config.source.options.sasl\\.password=hunter2"], "sasl.password", "no plain-text secret"),
    (["config.sinks[0].type=webhook", "config.sinks[0].url=http://x.example/drift", "config.sinks[0].hmac_secret=hunter2"],
     "hmac_secret", "no plain-text secret"),
    (["argo.enabled=true"], "argo.workflow.images", "the step images are required"),
    (["argo.enabled=true", "argo.webhook.enabled=false"] + ARGO_IMAGES, "argo.webhook.enabled", "an event source"),
    (["argo.enabled=true", "argo.kafka.enabled=true", "argo.kafka.saslMechanism=PLAIN"] + ARGO_IMAGES,
     "secrets.kafkaSasl", "credentials for the Kafka EventSource"),
    (["argo.webhook.alertmanager.enabled=yes"], "/argo/webhook/alertmanager/enabled", "a boolean"),
    (["argo.webhook.alertmanager.enable=true"], "enable", "additional property"),
    (["log.format=yaml"], "/log/format", "an enum"),
]
ACCEPTED = [["replicas=0"], ["replicas=1"], ["argo.enabled=true"] + ARGO_IMAGES]


def template(helm, chart, sets):
    cmd = [helm, "template", "check", chart]
    for s in sets:
        cmd += ["--set", s]
    return subprocess.run(cmd, capture_output=True, text=True)


def main(helm, chart, repo):
    problems = []
    for sets, needle, what in REFUSED:
        r = template(helm, chart, sets)
        if r.returncode == 0:
            problems.append(f"--set {' '.join(sets)} was accepted; expected a refusal ({what})")
        elif needle not in r.stderr:
            problems.append(f"--set {' '.join(sets)} was refused without naming {needle!r}: {r.stderr.strip()[:400]}")
        elif sets == ["replicas=2"] and "windows are per instance" not in r.stderr and "maximum" not in r.stderr:
            problems.append(f"replicas=2 refused, but not for its maximum: {r.stderr.strip()[:400]}")
    for sets in ACCEPTED:
        r = template(helm, chart, sets)
        if r.returncode != 0:
            problems.append(f"--set {' '.join(sets)} was refused: {r.stderr.strip()[:400]}")

    # argo.webhook.alertmanager.enabled: on by default with argo.enabled, off on request.
    for sets, want in ((["argo.enabled=true"] + ARGO_IMAGES, True),
                       (["argo.enabled=true", "argo.webhook.alertmanager.enabled=false"] + ARGO_IMAGES, False)):
        r = template(helm, chart, sets)
        if r.returncode != 0:
            problems.append(f"--set {' '.join(sets)} was refused: {r.stderr.strip()[:400]}")
            continue
        hooks = [d["spec"]["webhook"] for d in yaml.safe_load_all(r.stdout)
                 if d and d.get("kind") == "EventSource" and "webhook" in d.get("spec", {})]
        has = [("alertmanager" in h) for h in hooks]
        if has != [want]:
            problems.append(f"--set {' '.join(sets)}: webhook EventSources {hooks}; expected one {'with' if want else 'without'} `alertmanager`")
    # log.format and log.level reach the engine as --log-format and RUST_LOG.
    for sets, want_format, want_level in (([], "text", "info"), (["log.format=json", "log.level=driftwatch_connectors=debug\\,info"], "json", "driftwatch_connectors=debug,info")):
        r = template(helm, chart, sets)
        if r.returncode != 0:
            problems.append(f"--set {' '.join(sets)} was refused: {r.stderr.strip()[:400]}")
            continue
        deployment = next(d for d in yaml.safe_load_all(r.stdout) if d and d.get("kind") == "Deployment")
        container = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "driftwatch")
        args, env = container["args"], {e["name"]: e.get("value") for e in container.get("env") or []}
        fmt = args[args.index("--log-format") + 1] if "--log-format" in args else None
        if fmt != want_format or env.get("RUST_LOG") != want_level:
            problems.append(f"--set {' '.join(sets)}: args {args}, RUST_LOG {env.get('RUST_LOG')!r}; expected {want_format!r} and {want_level!r}")
    with open(os.path.join(chart, "values.schema.json"), encoding="utf-8") as f:
        schema = json.load(f)
    replicas = schema["properties"]["replicas"]
    if replicas.get("maximum") != 1 or "per instance" not in replicas.get("description", ""):
        problems.append("values.schema.json: replicas needs maximum 1 and a description saying why")
    config_schema = dict(schema["properties"]["config"], definitions=schema["definitions"])
    validator = jsonschema.Draft7Validator(config_schema)
    files = sorted(glob.glob(os.path.join(repo, "configs", "*.yaml")))
    files.append(os.path.join(repo, "tests/fixtures/drift_episode/config.yaml"))
    for path in files:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f)
        config.pop("metrics", None)  # the chart sets it from metrics.port
        for e in validator.iter_errors(config):
            where = "/".join(str(p) for p in e.absolute_path)
            problems.append(f"{os.path.relpath(path, repo)}: /{where}: {e.message} (the schema refuses a config the engine accepts)")

    with open(os.path.join(chart, "values.yaml"), encoding="utf-8") as f:
        values = yaml.safe_load(f)
    if values.get("prometheusRule") != {"enabled": False, "labels": {}, "rulesFor": "15m"}:
        problems.append(f"values.yaml prometheusRule changed: {values.get('prometheusRule')}")
    if values.get("dashboard") != {"enabled": False, "labels": {"grafana_dashboard": "1"}, "annotations": {}}:
        problems.append(f"values.yaml dashboard changed: {values.get('dashboard')}")
    if (values.get("metrics") or {}).get("port") != 9100:
        problems.append("values.yaml metrics.port is not 9100")
    if problems:
        fail("\n".join(problems))
    print(f"{len(REFUSED)} bad values refused, {len(ACCEPTED)} accepted, /alertmanager on by default and off on request, "
          f"{len(files)} engine configs pass the schema")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        fail(__doc__)
    main(*sys.argv[1:])
