"""The rendered EventSources and Sensor against our Argo Events schema, and their wiring.

Usage: check_argo_events.py RENDERED.yaml [--alertmanager ALERTMANAGER.yaml | --without-alertmanager]

Argo Events ships no validator we can install, so tests/deploy/argo-events.schema.json (written
from its API types and documentation, additionalProperties false everywhere) checks each
EventSource and Sensor. Then: every Sensor dependency names a rendered EventSource and one of its
events, trigger conditions and parameter sources name declared dependencies, the webhook
listens on POST /drift port "12000", and the submitted Workflow refers to the rendered
WorkflowTemplate with exactly its parameters.

The webhook EventSource's second event, `alertmanager` (argo.webhook.alertmanager.enabled), must
be POST /alertmanager on port "12000"; no Sensor dependency may use it (the chart adds no trigger
for Alertmanager's payload), and an Alertmanager notification, wrapped as the webhook EventSource
delivers it, must not pass the Sensor's drift filters. --alertmanager: the entry must be there,
and every webhook URL of the receivers that the Alertmanager config's drift route
(category="drift") sends to must be that EventSource's Service
(<name>-eventsource-svc.<namespace>.svc), the endpoint's port and path. --without-alertmanager:
the entry must be absent.
"""

import json
import os
import re
import sys

import jsonschema
import yaml
from urllib.parse import urlsplit

from check_sensor_events import data_filters_pass
from manifests import fail, load, of_kind, one

HERE = os.path.dirname(os.path.abspath(__file__))

# The webhook EventSource's events: name -> (endpoint, method, port).
WEBHOOKS = {"drift": ("/drift", "POST", "12000"), "alertmanager": ("/alertmanager", "POST", "12000")}

# An Alertmanager webhook notification (version 4), as its documentation defines it.
ALERTMANAGER_NOTIFICATION = {
    "version": "4",
    "groupKey": '{}/{category="drift"}:{alertname="DriftwatchFeatureDrift", model="fraud"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "argo-events-retrain",
    "groupLabels": {"alertname": "DriftwatchFeatureDrift", "model": "fraud"},
    "commonLabels": {"alertname": "DriftwatchFeatureDrift", "category": "drift", "model": "fraud", "severity": "warning"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "alerts": [{
        "status": "firing",
        "labels": {"alertname": "DriftwatchFeatureDrift", "category": "drift", "model": "fraud", "feature": "f00", "metric": "psi"},
        "annotations": {"summary": "fraud/f00 drifts (psi)"},
        "startsAt": "2026-11-23T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": "0123456789abcdef",
    }],
}


def drift_receivers(route):
    """Receivers of the routes (at any depth) whose matchers select category="drift"."""
    found = []
    for sub in route.get("routes") or []:
        matchers = [m.replace(" ", "") for m in sub.get("matchers") or []]
        if any(m in ('category="drift"', "category=drift") for m in matchers) or (sub.get("match") or {}).get("category") == "drift":
            found.append(sub.get("receiver") or route.get("receiver"))
        found += drift_receivers(sub)
    return found


def alertmanager_problems(config_path, es, hook):
    """The Alertmanager config's drift webhook URLs against the rendered EventSource."""
    with open(config_path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    receivers = {r["name"]: r for r in config.get("receivers") or []}
    names = drift_receivers(config.get("route") or {})
    if not names:
        return [f"{config_path}: no route matches category=\"drift\""]
    name, namespace = es["metadata"]["name"], es["metadata"]["namespace"]
    host = f"{name}-eventsource-svc.{namespace}.svc"
    problems, urls = [], 0
    for receiver in names:
        for hook_config in (receivers.get(receiver) or {}).get("webhook_configs") or []:
            urls += 1
            url = urlsplit(hook_config.get("url", ""))
            where = f"{config_path}: receiver {receiver} url {hook_config.get('url')!r}"
            if url.scheme != "http":
                problems.append(f"{where}: the EventSource serves plain http, not {url.scheme!r}")
            if url.hostname not in (host, host + ".cluster.local"):
                problems.append(f"{where}: host {url.hostname!r} is not the rendered EventSource's Service {host!r}")
            # The URL names a Service port; the endpoint listens on its targetPort.
            target = {str(p.get("port")): str(p.get("targetPort", p.get("port"))) for p in (es["spec"].get("service") or {}).get("ports", [])}
            if str(url.port) not in target:
                problems.append(f"{where}: port {url.port} is not a port of the EventSource's Service ({sorted(target)})")
            elif target[str(url.port)] != hook["port"]:
                problems.append(f"{where}: Service port {url.port} leads to {target[str(url.port)]}, not the endpoint's port {hook['port']}")
            if url.path != hook["endpoint"]:
                problems.append(f"{where}: path {url.path!r} is not the endpoint {hook['endpoint']!r}")
    if not urls:
        problems.append(f"{config_path}: the drift route's receivers {names} have no webhook_configs")
    return problems


def main(rendered, alertmanager=None, without_alertmanager=False):
    with open(os.path.join(HERE, "argo-events.schema.json"), encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft7Validator.check_schema(schema)
    objects = load(rendered)
    problems = check(schema, objects, alertmanager, without_alertmanager)
    if problems:
        fail("\n".join(problems))
    sources = of_kind(objects, "EventSource")
    sensor = one(objects, "Sensor")
    events = sorted(f"{es['metadata']['name']}/{e}" for es in sources for kind in ("webhook", "kafka") for e in es["spec"].get(kind) or {})
    am = ", Alertmanager URL matches /alertmanager" if alertmanager else ""
    print(f"{len(sources)} EventSource(s) ({', '.join(events)}) and Sensor {sensor['metadata']['name']} "
          f"({len(sensor['spec']['dependencies'])} dependencies) match the schema{am}")


def check(schema, objects, alertmanager=None, without_alertmanager=False):
    """The problems of the rendered objects (a list of strings; empty: all good)."""
    problems = []
    for obj in of_kind(objects, "EventSource", "Sensor"):
        definition = "eventSource" if obj["kind"] == "EventSource" else "sensor"
        root = {k: v for k, v in schema.items() if k != "oneOf"}
        root["$ref"] = f"#/definitions/{definition}"
        validator = jsonschema.Draft7Validator(root)
        for e in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
            path = "/".join(str(p) for p in e.absolute_path)
            problems.append(f"{obj['kind']} {obj['metadata']['name']}: /{path}: {e.message}")

    sources = {es["metadata"]["name"]: es for es in of_kind(objects, "EventSource")}
    for es in sources.values():
        hooks = es["spec"].get("webhook") or {}
        if hooks and "drift" not in hooks:
            problems.append(f"EventSource {es['metadata']['name']}: no webhook event `drift`")
        for name, hook in hooks.items():
            if name not in WEBHOOKS:
                problems.append(f"EventSource {es['metadata']['name']}.webhook.{name}: unexpected event (expected {sorted(WEBHOOKS)})")
                continue
            endpoint, method, port = WEBHOOKS[name]
            if (hook.get("endpoint"), hook.get("method"), hook.get("port")) != WEBHOOKS[name]:
                problems.append(f"EventSource {es['metadata']['name']}.webhook.{name}: expected {method} {endpoint} on port \"{port}\", "
                                f"got {hook.get('method')} {hook.get('endpoint')} on port {hook.get('port')!r}")
            ports = [p.get("targetPort") for p in (es["spec"].get("service") or {}).get("ports", [])]
            if hook.get("port") not in [str(p) for p in ports]:
                problems.append(f"EventSource {es['metadata']['name']}: its Service does not expose webhook.{name}'s port {hook.get('port')}")
        for name, kafka in (es["spec"].get("kafka") or {}).items():
            if not kafka.get("jsonBody"):
                problems.append(f"EventSource {es['metadata']['name']}.kafka.{name}: jsonBody must be true (the Sensor reads body.*)")
    webhook_sources = [es for es in sources.values() if es["spec"].get("webhook")]
    with_am = [(es, es["spec"]["webhook"]["alertmanager"]) for es in webhook_sources if "alertmanager" in es["spec"]["webhook"]]
    if alertmanager:
        if len(with_am) != 1:
            problems.append(f"expected one webhook EventSource with an `alertmanager` event, found {len(with_am)}")
        else:
            problems += alertmanager_problems(alertmanager, *with_am[0])
    if without_alertmanager and with_am:
        problems.append(f"EventSource {with_am[0][0]['metadata']['name']} has an `alertmanager` event; expected none")

    sensor = one(objects, "Sensor")
    deps = {d["name"]: d for d in sensor["spec"]["dependencies"]}
    for name in deps:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            problems.append(f"dependency {name!r}: trigger conditions are boolean expressions; use a plain identifier")
    for d in deps.values():
        es = sources.get(d["eventSourceName"])
        if es is None:
            problems.append(f"dependency {d['name']}: no EventSource {d['eventSourceName']!r} rendered")
            continue
        events = set(es["spec"].get("webhook") or {}) | set(es["spec"].get("kafka") or {})
        if d["eventName"] not in events:
            problems.append(f"dependency {d['name']}: EventSource {d['eventSourceName']} has no event {d['eventName']!r}")
        if d["eventName"] == "alertmanager":
            problems.append(f"dependency {d['name']}: the chart's Sensor must not depend on Alertmanager's notifications")
        notification = {"header": {"Content-Type": ["application/json"]}, "body": ALERTMANAGER_NOTIFICATION}
        if data_filters_pass(d.get("filters"), notification):
            problems.append(f"dependency {d['name']}: its filters let an Alertmanager notification through")
    wt = one(objects, "WorkflowTemplate")
    wt_params = [p["name"] for p in wt["spec"]["arguments"]["parameters"]]
    for trig in sensor["spec"]["triggers"]:
        tpl = trig["template"]
        cond = tpl.get("conditions", "")
        for name in [c for c in cond.replace("(", " ").replace(")", " ").replace("&&", " ").replace("||", " ").split() if c]:
            if name not in deps:
                problems.append(f"trigger {tpl['name']}: condition names unknown dependency {name!r}")
        aw = tpl.get("argoWorkflow")
        if not aw:
            problems.append(f"trigger {tpl['name']}: not an argoWorkflow trigger")
            continue
        for p in aw.get("parameters", []) + trig.get("parameters", []):
            if p.get("src", {}).get("dependencyName") not in deps:
                problems.append(f"trigger {tpl['name']}: parameter source {p.get('src')} names no dependency")
        wf = aw["source"]["resource"]
        ref = (wf.get("spec") or {}).get("workflowTemplateRef", {}).get("name")
        if ref != wt["metadata"]["name"]:
            problems.append(f"trigger {tpl['name']}: workflowTemplateRef {ref!r} is not the rendered {wt['metadata']['name']!r}")
        given = [p["name"] for p in wf["spec"].get("arguments", {}).get("parameters", [])]
        if given != wt_params:
            problems.append(f"trigger {tpl['name']}: workflow arguments {given} differ from the template's {wt_params}")
    return problems


if __name__ == "__main__":
    args = sys.argv[1:]
    opts = {}
    if "--alertmanager" in args:
        i = args.index("--alertmanager")
        opts["alertmanager"] = args[i + 1]
        del args[i:i + 2]
    if "--without-alertmanager" in args:
        args.remove("--without-alertmanager")
        opts["without_alertmanager"] = True
    if len(args) != 1 or len(opts) > 1:
        fail(__doc__)
    main(args[0], **opts)
