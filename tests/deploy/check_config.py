"""The engine config in the rendered ConfigMap: secrets only as references, each backed by a Secret.

Usage: check_config.py RENDERED.yaml CONFIG_OUT ENV_OUT --dummy VALUE [--sandbox DIR]

Checks that metrics.listen is 0.0.0.0:<the Service's port>, that no secret is written in plain
text (a webhook hmac_secret, or a Kafka option whose name holds password, secret or key and is
not a file location), that every { env: VAR } reference is an env var of the engine container
taken from a Secret (valueFrom.secretKeyRef), and that every TLS file location lies in a mounted
Secret volume. Writes:
  CONFIG_OUT          the config, as rendered (for `driftwatch validate`);
  ENV_OUT             the engine container's environment as the rendered Deployment declares it,
                      one NAME=VALUE a line: a literal `value` as it is, a `valueFrom` (a Secret's
                      key) as the dummy VALUE. Nothing else: a reference whose variable the
                      Deployment does not declare stays unset, and validate fails on it;
  CONFIG_OUT.refs     the variables the config's { env: … } references name, one a line;
  CONFIG_OUT.files    the files its { file: … } references name, one a line.
--sandbox DIR writes DIR/config.yaml, the same config with each { file: … } reference moved
under DIR (a file holding the dummy VALUE), so it validates outside a pod; { env: … }
references stay as they are.
"""

import os
import re
import sys

import yaml

from manifests import engine_config, fail, load, of_kind, one

SECRETISH = re.compile(r"(?i)(password|secret|key)")
PATHLIKE = re.compile(r"(?i)(\.location|keytab)$")


def moved_files(node, root):
    if isinstance(node, dict):
        if set(node) == {"file"}:
            return {"file": os.path.join(root, node["file"].lstrip("/"))}
        return {k: moved_files(v, root) for k, v in node.items()}
    if isinstance(node, list):
        return [moved_files(v, root) for v in node]
    return node


def main(rendered, config_out, env_out, dummy, sandbox=None):
    objects = load(rendered)
    text, config = engine_config(objects)
    problems = []

    service = one(objects, "Service")
    port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "metrics")
    listen = (config.get("metrics") or {}).get("listen")
    if listen != f"0.0.0.0:{port}":
        problems.append(f"metrics.listen is {listen!r}, expected 0.0.0.0:{port}")

    refs = {}  # env var -> where
    files = {}  # every file the config names (references and locations) -> where
    file_refs = []

    def secret_value(where, value):
        if isinstance(value, dict):
            if set(value) == {"env"}:
                refs[value["env"]] = where
            elif set(value) == {"file"}:
                files[value["file"]] = where
                file_refs.append(value["file"])
            else:
                problems.append(f"{where}: a secret reference is {{env: VAR}} or {{file: /path}}, got {value!r}")
        elif value is not None:
            problems.append(f"{where}: a secret in plain text lands in the ConfigMap ({value!r:.8}…)")

    def options(where, opts):
        for k, v in (opts or {}).items():
            if SECRETISH.search(k) and not PATHLIKE.search(k):
                secret_value(f"{where}.options.{k}", v)
            elif isinstance(v, dict):
                secret_value(f"{where}.options.{k}", v)
            elif k.endswith(".location"):
                files[v] = f"{where}.options.{k}"

    if config.get("source"):
        options("source", config["source"].get("options"))
    for i, sink in enumerate(config.get("sinks") or []):
        if sink.get("type") == "kafka":
            options(f"sinks[{i}]", sink.get("options"))
        if sink.get("type") == "webhook":
            secret_value(f"sinks[{i}].hmac_secret", sink.get("hmac_secret"))

    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "driftwatch")
    env = {e["name"]: e for e in container.get("env") or []}
    for name, where in sorted(refs.items()):
        e = env.get(name)
        if e is None:
            problems.append(f"{where} refers to ${name}, which the engine container does not set")
        elif "value" in e or "secretKeyRef" not in (e.get("valueFrom") or {}):
            problems.append(f"${name} ({where}) must come from a Secret (valueFrom.secretKeyRef), got {e!r}")
    for e in env.values():
        if e["name"].startswith("DRIFTWATCH_") and "value" in e:
            problems.append(f"env {e['name']} has a literal value; secrets come from secretKeyRef")

    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    secret_mounts = [m["mountPath"] for m in container.get("volumeMounts") or []
                     if "secret" in volumes.get(m["name"], {})]
    for path, where in sorted(files.items()):
        if not any(path.startswith(m.rstrip("/") + "/") for m in secret_mounts):
            problems.append(f"{where} = {path} is not in a mounted Secret volume ({secret_mounts})")

    # The ConfigMap holds nothing from the Secrets the chart references.
    for cm in of_kind(objects, "Secret"):
        problems.append(f"the chart renders a Secret ({cm['metadata']['name']}); it must only reference existing ones")

    # The container's environment, as declared (a line-based file: no line breaks in values).
    declared = []
    for e in container.get("env") or []:
        if "value" in e:
            value = str(e["value"])
        elif "valueFrom" in e:
            value = dummy
        else:
            value = ""
        if "\n" in value or "\r" in value:
            problems.append(f"env {e['name']}: a value with a line break (this check passes NAME=VALUE lines)")
        declared.append(f"{e['name']}={value}")

    if problems:
        fail("\n".join(problems))
    with open(config_out, "w", encoding="utf-8") as f:
        f.write(text)
    with open(env_out, "w", encoding="utf-8") as f:
        f.write("".join(f"{line}\n" for line in declared))
    with open(config_out + ".refs", "w", encoding="utf-8") as f:
        f.write("".join(f"{n}\n" for n in sorted(refs)))
    file_refs = sorted(set(file_refs))
    with open(config_out + ".files", "w", encoding="utf-8") as f:
        f.write("".join(f"{p}\n" for p in file_refs))
    if sandbox:
        os.makedirs(sandbox, exist_ok=True)
        for p in file_refs:
            path = os.path.join(sandbox, p.lstrip("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(dummy)
        with open(os.path.join(sandbox, "config.yaml"), "w", encoding="utf-8") as f:
            yaml.safe_dump(moved_files(config, sandbox), f, sort_keys=False)
    print(f"{len(refs)} {{ env }} reference(s), {len(file_refs)} {{ file }} reference(s), {len(files)} file(s), "
          f"{len(declared)} env var(s) declared, metrics.listen {listen}")


if __name__ == "__main__":
    args = sys.argv[1:]
    opts = {}
    for flag in ("--dummy", "--sandbox"):
        if flag in args:
            i = args.index(flag)
            opts[flag[2:]] = args[i + 1]
            del args[i:i + 2]
    if len(args) != 3 or not opts.get("dummy"):
        fail(__doc__)
    main(*args, **opts)
