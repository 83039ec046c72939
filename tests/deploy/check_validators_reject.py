"""The validators used by check-chart.sh refuse broken manifests (each check can fail).

Usage: check_validators_reject.py RENDERED.yaml EVENTS.jsonl ALERTMANAGER.yaml

Mutates the rendered Argo objects and expects a refusal: a misspelt Sensor field, the webhook
port as a number, an event source type the schema does not know (argo-events.schema.json); a
misspelt WorkflowTemplate field and a wrong type (Hera, strict); a Sensor filter path that
events do not have and a parameter key that finds nothing (the Sensor check against events);
the /alertmanager endpoint moved, the Alertmanager example's URL with another port or namespace,
and a Sensor dependency on the `alertmanager` event (check_argo_events.py's cross-check).
"""

import copy
import io
import json
import os
import sys
from contextlib import redirect_stderr, redirect_stdout

import jsonschema
import yaml
from hera.workflows.models import WorkflowTemplate

import check_argo_events
import check_sensor_events
from manifests import fail, load, one
from strict_models import validate_strict

HERE = os.path.dirname(os.path.abspath(__file__))


def schema_errors(schema, definition, obj):
    root = {k: v for k, v in schema.items() if k != "oneOf"}
    root["$ref"] = f"#/definitions/{definition}"
    return list(jsonschema.Draft7Validator(root).iter_errors(obj))


def sensor_check_fails(objects, events_path):
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"mutated-{os.getpid()}.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join("---\n" + json.dumps(o) + "\n" for o in objects))
    try:
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            check_sensor_events.main(path, events_path)
    except SystemExit as e:
        return e.code not in (0, None)
    finally:
        os.unlink(path)
    return False


def argo_check_fails(schema, objects, alertmanager):
    return bool(check_argo_events.check(schema, objects, alertmanager=alertmanager))


def main(rendered, events_path, alertmanager):
    with open(os.path.join(HERE, "argo-events.schema.json"), encoding="utf-8") as f:
        schema = json.load(f)
    objects = load(rendered)
    sensor = one(objects, "Sensor")
    webhook = next(o for o in objects if o["kind"] == "EventSource" and "webhook" in o["spec"])
    wt = one(objects, "WorkflowTemplate")
    problems = []

    s = copy.deepcopy(sensor)
    p = s["spec"]["triggers"][0]["template"]["argoWorkflow"]["parameters"][0]
    p["src"]["datakey"] = p["src"].pop("dataKey")
    if not schema_errors(schema, "sensor", s):
        problems.append("schema accepted a Sensor parameter with `datakey`")
    w = copy.deepcopy(webhook)
    w["spec"]["webhook"]["drift"]["port"] = 12000
    if not schema_errors(schema, "eventSource", w):
        problems.append("schema accepted a webhook port given as a number")
    w = copy.deepcopy(webhook)
    w["spec"]["webhooks"] = w["spec"].pop("webhook")
    if not schema_errors(schema, "eventSource", w):
        problems.append("schema accepted `spec.webhooks`")

    t = copy.deepcopy(wt)
    t["spec"]["templates"][1]["container"]["imagePullPolcy"] = "Always"
    try:
        validate_strict(WorkflowTemplate, t)
        problems.append("Hera (strict) accepted container.imagePullPolcy")
    except ValueError:
        pass
    t = copy.deepcopy(wt)
    t["spec"]["activeDeadlineSeconds"] = "six hours"
    try:
        validate_strict(WorkflowTemplate, t)
        problems.append("Hera accepted activeDeadlineSeconds: 'six hours'")
    except Exception:
        pass

    s = copy.deepcopy(sensor)
    for dep in s["spec"]["dependencies"]:
        dep["filters"]["data"][0]["path"] = "body.kind"
    mutated = [o if o["kind"] != "Sensor" else s for o in objects]
    if not sensor_check_fails(mutated, events_path):
        problems.append("the Sensor check passed a filter on body.kind, which events do not have")
    s = copy.deepcopy(sensor)
    for trig in s["spec"]["triggers"]:
        trig["template"]["argoWorkflow"]["parameters"][2]["src"]["dataKey"] = "body.model_name"
    mutated = [o if o["kind"] != "Sensor" else s for o in objects]
    if not sensor_check_fails(mutated, events_path):
        problems.append("the Sensor check passed a parameter body.model_name, which events do not have")
    refused = 7

    if argo_check_fails(schema, objects, alertmanager):
        problems.append(f"check_argo_events refuses the unmodified manifests and {alertmanager}")
    w = copy.deepcopy(webhook)
    w["spec"]["webhook"]["alertmanager"]["endpoint"] = "/alerts"
    mutated = [o if o is not webhook else w for o in objects]
    if not argo_check_fails(schema, mutated, alertmanager):
        problems.append("check_argo_events accepted the alertmanager endpoint at /alerts")
    with open(alertmanager, encoding="utf-8") as f:
        am_text = f.read()
    url = next(h["url"] for r in yaml.safe_load(am_text)["receivers"] for h in r.get("webhook_configs") or [])
    for bad, what in ((url.replace(":12000/", ":12001/"), "port 12001"),
                      (url.replace(f".{webhook['metadata']['namespace']}.svc", ".elsewhere.svc"), "another namespace")):
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"alertmanager-{os.getpid()}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(am_text.replace(url, bad))
        try:
            if bad == url or not argo_check_fails(schema, objects, path):
                problems.append(f"check_argo_events accepted an Alertmanager URL with {what}: {bad}")
        finally:
            os.unlink(path)
    s = copy.deepcopy(sensor)
    s["spec"]["dependencies"][0]["eventName"] = "alertmanager"
    mutated = [o if o["kind"] != "Sensor" else s for o in objects]
    if not argo_check_fails(schema, mutated, alertmanager):
        problems.append("check_argo_events accepted a Sensor dependency on the alertmanager event")
    refused += 4
    if problems:
        fail("\n".join(problems))
    print(f"{refused} broken manifests refused by the schema, Hera, the Sensor check and the Alertmanager cross-check")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        fail(__doc__)
    main(*sys.argv[1:])
