"""Shared helpers of the deployment checks (scripts/check-chart.sh runs them)."""

import json
import sys

import yaml


def load(path):
    """The objects of a `helm template` output (empty documents dropped)."""
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def of_kind(objects, *kinds):
    return [o for o in objects if o.get("kind") in kinds]


def one(objects, kind):
    found = of_kind(objects, kind)
    if len(found) != 1:
        raise SystemExit(f"expected exactly one {kind}, found {len(found)}")
    return found[0]


def engine_config(objects):
    """The engine's config.yaml from the chart's ConfigMap, parsed."""
    for cm in of_kind(objects, "ConfigMap"):
        data = cm.get("data") or {}
        if "config.yaml" in data:
            return data["config.yaml"], yaml.safe_load(data["config.yaml"])
    raise SystemExit("no ConfigMap with config.yaml in the rendered chart")


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def dump(obj):
    return json.dumps(obj, indent=2, sort_keys=True)


def _main(argv):
    """manifests.py json RENDERED OUT.json | manifests.py select RENDERED OUT.yaml KIND..."""
    if len(argv) >= 3 and argv[0] == "json":
        objects = load(argv[1])
        with open(argv[2], "w", encoding="utf-8") as f:
            json.dump(objects, f)
        kinds = {}
        for o in objects:
            kinds[o["kind"]] = kinds.get(o["kind"], 0) + 1
        print(f"{len(objects)} objects: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
        return
    if len(argv) >= 4 and argv[0] == "select":
        objects = load(argv[1])
        wanted = argv[3:]
        missing = [k for k in wanted if not of_kind(objects, k)]
        if missing:
            fail(f"the rendered chart has no {', '.join(missing)}")
        chosen = of_kind(objects, *wanted)
        with open(argv[2], "w", encoding="utf-8") as f:
            yaml.safe_dump_all(chosen, f, sort_keys=False)
        print(f"{len(chosen)} objects: " + ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in chosen))
        return
    fail(_main.__doc__)


if __name__ == "__main__":
    _main(sys.argv[1:])
