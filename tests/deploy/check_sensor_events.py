"""The Sensor against real drift events from the engine.

Usage: check_sensor_events.py RENDERED.yaml EVENTS.jsonl [--models a,b] [--metrics x,y]

--models / --metrics: the values' argo.filters (what the Sensor should let through besides
body.type == drift); without them every drift event must be selected.

EVENTS.jsonl is `driftwatch replay --output-events` on tests/fixtures/drift_episode. Each event
is wrapped as its EventSource delivers it (webhook: {"header": …, "body": event}; Kafka:
{"topic", "partition", "body", "timestamp"}), run through every dependency's data filters with
Argo Events' semantics (a missing path fails the filter; string values are regular expressions
matched anywhere, `=`/`!=`; numbers compared as floats; bools), and for each event that passes,
its trigger's parameters are resolved (gjson dataKey, rendered as a string) and written into the
Workflow (sjson dest, append/prepend/overwrite). Asserts: drift events are selected, resolved
events skipped (and drift events of other models or metrics when filters are set), every parameter finds a value, the Workflow is valid for Argo Workflows (Hera,
strict), is named retrain-<event_id> (idempotency: unique per event, a valid name) and carries
the event's model, feature, metric, value and event id as arguments. With model or metric filters
in the Sensor, a look-alike model name (a prefix of the filter plus a suffix) must be refused.
"""

import copy
import hashlib
import hmac
import json
import re
import sys

from hera.workflows.models import Workflow

from argo_paths import MISSING, as_float, as_string, get, set_path
from manifests import fail, load, of_kind, one
from strict_models import validate_strict

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def webhook_delivery(event):
    """What the webhook EventSource puts in the event's data: the request's headers and body."""
    body = json.dumps(event, separators=(",", ":")).encode()
    signature = hmac.new(b"check-key", body, hashlib.sha256).hexdigest()
    header = {
        "Content-Type": ["application/json"],
        "Idempotency-Key": [event["event_id"]],
        "Ce-Id": [event["event_id"]],
        "Ce-Type": [f"io.driftwatch.{event['type']}"],
        "Ce-Source": ["driftwatch"],
        "Ce-Specversion": ["1.0"],
        "X-Driftwatch-Signature": [f"sha256={signature}"],
    }
    return {"header": header, "body": json.loads(body)}


def kafka_delivery(event):
    """What the Kafka EventSource (jsonBody: true) puts in the event's data."""
    return {"topic": "drift-events", "partition": 0, "body": copy.deepcopy(event), "timestamp": "2026-11-23T00:00:03Z"}


def data_filters_pass(filters, data):
    """Argo Events' filterData (dataLogicalOperator and / or)."""
    data_filters = (filters or {}).get("data") or []
    if not data_filters:
        return True
    results = []
    for f in data_filters:
        value = get(data, f["path"])
        if value is MISSING:
            results.append(False)
            continue
        cmp = f.get("comparator", "")
        ok = False
        for want in f["value"]:
            if f["type"] == "string":
                match = re.search(want, as_string(value)) is not None
                ok = match if cmp in ("", "=") else (not match if cmp == "!=" else False)
            elif f["type"] == "number":
                x, y = as_float(value), float(want)
                ok = {"": x == y, "=": x == y, "!=": x != y, ">": x > y, ">=": x >= y, "<": x < y, "<=": x <= y}[cmp]
            elif f["type"] == "bool":
                ok = (want.lower() in ("1", "t", "true")) == bool(value)
            if ok:
                break
        results.append(ok)
    if (filters or {}).get("dataLogicalOperator") == "or":
        return any(results)
    return all(results)


def main(rendered, events_path, models=(), metrics=()):
    objects = load(rendered)
    sensor = one(objects, "Sensor")
    sources = {es["metadata"]["name"]: es for es in of_kind(objects, "EventSource")}
    with open(events_path, encoding="utf-8") as f:
        events = [json.loads(line) for line in f if line.strip()]
    kinds = {e["type"] for e in events}
    if not {"drift", "resolved"} <= kinds:
        fail(f"the replay gave event types {sorted(kinds)}; need drift and resolved events")
    for field in ("type", "event_id", "model", "feature", "metric", "value"):
        if any(field not in e for e in events):
            fail(f"a drift event lacks the field {field!r}: the Sensor's paths would find nothing")

    problems = []
    names = {}
    deps = sensor["spec"]["dependencies"]
    for dep in deps:
        spec = sources[dep["eventSourceName"]]["spec"]
        deliver = webhook_delivery if dep["eventName"] in (spec.get("webhook") or {}) else kafka_delivery
        triggers = [t for t in sensor["spec"]["triggers"] if t["template"].get("conditions") == dep["name"]]
        if len(triggers) != 1:
            problems.append(f"dependency {dep['name']}: {len(triggers)} triggers run on it alone, expected 1")
            continue
        aw = triggers[0]["template"]["argoWorkflow"]
        selected = 0
        for event in events:
            data = deliver(event)
            passed = data_filters_pass(dep.get("filters"), data)
            if event["type"] == "resolved":
                if passed:
                    problems.append(f"{dep['name']}: resolved event {event['event_id']} was selected")
                continue
            wanted = (not models or event["model"] in models) and (not metrics or event["metric"] in metrics)
            if not wanted:
                if passed:
                    problems.append(f"{dep['name']}: drift event {event['event_id']} ({event['model']}/{event['metric']}) passed the model/metric filters")
                continue
            if not passed:
                problems.append(f"{dep['name']}: drift event {event['event_id']} ({event['model']}/{event['feature']}/{event['metric']}) was skipped")
                continue
            selected += 1
            wf = aw["source"]["resource"]
            for p in aw.get("parameters", []):
                src = p["src"]
                value = get(data, src["dataKey"]) if "dataKey" in src else MISSING
                if value is MISSING:
                    if "value" not in src:
                        problems.append(f"{dep['name']}: parameter {src.get('dataKey')} -> {p['dest']} finds nothing in {event['event_id']}")
                        continue
                    value = src["value"]
                text = json.dumps(value) if src.get("useRawData") and not isinstance(value, str) else as_string(value)
                wf = set_path(wf, p["dest"], text, p.get("operation", ""))
            try:
                validate_strict(Workflow, wf)
            except Exception as e:
                problems.append(f"{dep['name']}: the Workflow for {event['event_id']} is not valid: {e}")
            name = wf["metadata"].get("name", "")
            if name != f"retrain-{event['event_id']}" or not DNS_SUBDOMAIN.match(name) or len(name) > 63:
                problems.append(f"{dep['name']}: Workflow name {name!r} is not retrain-<event_id> or not a valid name")
            label = wf["metadata"].get("labels", {}).get("driftwatch.io/event-id")
            if label != event["event_id"] or not LABEL_VALUE.match(label or "") or len(label) > 63:
                problems.append(f"{dep['name']}: label driftwatch.io/event-id is {label!r}")
            args = {a["name"]: a.get("value") for a in wf["spec"]["arguments"]["parameters"]}
            expected = {"model": event["model"], "feature": event["feature"], "metric": event["metric"],
                        "value": as_string(event["value"]), "event-id": event["event_id"]}
            if args != expected:
                problems.append(f"{dep['name']}: workflow arguments {args} != {expected}")
            other = names.setdefault(name, event["event_id"])
            if other != event["event_id"]:
                problems.append(f"two events ({other}, {event['event_id']}) map to one Workflow name {name}")
        drift = sum(1 for e in events if e["type"] == "drift")
        if selected == 0:
            problems.append(f"{dep['name']}: no drift event selected")
        print(f"{dep['name']}: {selected} of {drift} drift events selected, "
              f"{sum(1 for e in events if e['type'] == 'resolved')} resolved skipped, parameters resolved")
        # Filters are anchored: a model (or metric) that only starts like an allowed one is refused.
        for f in (dep.get("filters") or {}).get("data") or []:
            if f["path"] in ("body.model", "body.metric") and f["type"] == "string":
                drift_event = next(e for e in events if e["type"] == "drift")
                allowed = re.sub(r"\\(.)", r"\1", f["value"][0].strip("^$"))
                look_alike = dict(drift_event, **{f["path"].split(".")[1]: allowed + "-v2"})
                if data_filters_pass(dep["filters"], deliver(look_alike)):
                    problems.append(f"{dep['name']}: {f['path']} = {allowed}-v2 passes a filter for {allowed!r} (unanchored)")
                exact = dict(drift_event, **{f["path"].split(".")[1]: allowed})
                if not data_filters_pass({"data": [f]}, deliver(exact)):
                    problems.append(f"{dep['name']}: {f['path']} = {allowed} is refused by its own filter")
    if problems:
        fail("\n".join(problems))


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rendered")
    ap.add_argument("events")
    ap.add_argument("--models", default="")
    ap.add_argument("--metrics", default="")
    a = ap.parse_args()
    main(a.rendered, a.events, [m for m in a.models.split(",") if m], [m for m in a.metrics.split(",") if m])
