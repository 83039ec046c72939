#!/usr/bin/env python3
"""Helpers of scripts/check-observability.sh (run with its venv: PyYAML, confluent-kafka).

Subcommands (each exits non-zero with a message on failure):
  test-rules SRC OUT --for D          copy of a rule file with every `for:` set to D
  rule-groups RENDERED OUT            the spec.groups of the PrometheusRule in `helm template` output, as a rule file
  same-groups FILE GROUPS --rules-for D
                                      GROUPS equals FILE's groups with the driftwatch-drift group's `for:` set to D
  rendered FILE --kind K [--name N] [--absent] [--label K=V]... [--annotation K=V]... [--data-equals KEY=PATH]
                                      checks an object of `helm template` output (or that there is none)
  alert-labels RULES                  "alertname category severity" per alert (for amtool's route test)
  check-alert-fields RULES RUNBOOKS   every alert has severity, category, summary, description and a
                                      runbook_url whose anchor is a section of RUNBOOKS
  alertmanager-test SRC OUT --url U   copy of an Alertmanager config: every webhook to U, group_wait/interval 1s
  engine-config TEMPLATE OUT KEY=VALUE...
                                      TEMPLATE with each @KEY@ replaced
  wait-http URL --timeout S           until URL answers 200
  produce-bad --brokers B --topic T   a few unusable messages (malformed JSON, not an object, unknown model, bad timestamp, empty)
  wait-alert --prometheus URL --alert NAME --timeout S
                                      until NAME is firing in /api/v1/alerts
  check-received LOG --alert NAME --model M --timeout S
                                      until the receiver's LOG holds Alertmanager's notification of NAME
                                      (and the engine's own drift event), then checks their content
  exprs --prometheus URL --rules F --dashboard D --var NAME=VALUE ...
                                      every PromQL expression of F and D returns data (see below)

`exprs`, the rule for "returns data": a dashboard expression (panel targets and annotations, with
the variables substituted) must return a non-empty result, and every query variable's
label_values(SELECTOR, LABEL) must find LABEL on SELECTOR. A rule expression must return a
non-empty result too, or, when it is empty because the condition is false right now (an alert
that must stay quiet in a healthy run), it is split at its top-level comparison or set operator
(or, and, unless, ==, !=, <, <=, >, >=; absent(X) becomes X) and each operand that is not a
number must return data by the same rule, recursively: the series the alert looks at exist and
only the condition is false.
"""
import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml


def die(msg):
    print(f"obs.py: {msg}", file=sys.stderr)
    sys.exit(1)


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def dump_yaml(doc, path):
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(doc, f, sort_keys=False, allow_unicode=True, width=1000)


def rules_of(doc):
    for group in doc.get("groups") or []:
        for rule in group.get("rules") or []:
            yield group, rule


# --- rule files ------------------------------------------------------------------------------

def cmd_test_rules(a):
    doc = load_yaml(a.src)
    for _, rule in rules_of(doc):
        if "for" in rule:
            rule["for"] = a.for_
    dump_yaml(doc, a.out)


def cmd_rule_groups(a):
    docs = [d for d in yaml.safe_load_all(Path(a.rendered).read_text()) if d]
    rules = [d for d in docs if d.get("kind") == "PrometheusRule"]
    if len(rules) != 1:
        die(f"{a.rendered}: expected one PrometheusRule, found {len(rules)}")
    groups = (rules[0].get("spec") or {}).get("groups")
    if not groups:
        die(f"{a.rendered}: the PrometheusRule has no spec.groups")
    dump_yaml({"groups": groups}, a.out)


def cmd_same_groups(a):
    want = load_yaml(a.file)
    for group, rule in rules_of(want):
        if group["name"] == "driftwatch-drift":
            rule["for"] = a.rules_for
    got = load_yaml(a.groups)
    if got != want:
        die(f"{a.groups} differs from {a.file} (with for: {a.rules_for} in driftwatch-drift):\n"
            f"--- file\n{yaml.safe_dump(want, sort_keys=True)}\n--- rendered\n{yaml.safe_dump(got, sort_keys=True)}")


def cmd_rendered(a):
    docs = [d for d in yaml.safe_load_all(Path(a.file).read_text()) if d]
    found = [d for d in docs if d.get("kind") == a.kind and (a.name is None or d.get("metadata", {}).get("name") == a.name)]
    what = a.kind + (f" {a.name}" if a.name else "")
    if a.absent:
        if found:
            die(f"{a.file}: {what} is rendered, but must not be")
        return
    if len(found) != 1:
        die(f"{a.file}: expected one {what}, found {len(found)} (kinds: {sorted({d.get('kind') for d in docs})})")
    obj = found[0]
    meta = obj.get("metadata") or {}
    problems = []
    for field, pairs in (("labels", a.label), ("annotations", a.annotation)):
        have = meta.get(field) or {}
        for pair in pairs:
            k, _, v = pair.partition("=")
            if str(have.get(k)) != v:
                problems.append(f"metadata.{field}.{k} is {have.get(k)!r}, want {v!r}")
    for pair in a.data_equals:
        k, _, path = pair.partition("=")
        got = (obj.get("data") or {}).get(k)
        want = Path(path).read_text()
        if got is None or got.rstrip("\n") != want.rstrip("\n"):
            problems.append(f"data.{k} differs from {path}")
    if problems:
        die(f"{a.file}: {what}: " + "; ".join(problems))


def cmd_alert_labels(a):
    for _, rule in rules_of(load_yaml(a.rules)):
        if "alert" in rule:
            labels = rule.get("labels") or {}
            print(rule["alert"], labels.get("category", "-"), labels.get("severity", "-"))


def github_anchor(heading):
    anchor = heading.strip().lower()
    anchor = re.sub(r"[^\w\- ]", "", anchor)
    return anchor.replace(" ", "-")


def cmd_check_alert_fields(a):
    anchors = {github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+)$", Path(a.runbooks).read_text(), re.M)}
    problems = []
    n = 0
    for _, rule in rules_of(load_yaml(a.rules)):
        if "alert" not in rule:
            continue
        n += 1
        name = rule["alert"]
        labels, ann = rule.get("labels") or {}, rule.get("annotations") or {}
        if labels.get("severity") not in ("critical", "warning", "info"):
            problems.append(f"{name}: label severity is {labels.get('severity')!r}")
        if labels.get("category") not in ("drift", "pipeline"):
            problems.append(f"{name}: label category is {labels.get('category')!r}")
        for key in ("summary", "description", "runbook_url"):
            if not ann.get(key):
                problems.append(f"{name}: annotation {key} missing")
        url = ann.get("runbook_url", "")
        prefix = "https://github.com/driftwatch/driftwatch/blob/main/docs/runbooks.md#"
        if not url.startswith(prefix):
            problems.append(f"{name}: runbook_url {url!r} does not point into docs/runbooks.md")
        elif url[len(prefix):] != name.lower() or name.lower() not in anchors:
            problems.append(f"{name}: runbook_url anchor {url[len(prefix):]!r} is not the section '## {name}' of {a.runbooks}")
    if problems:
        die("\n".join(problems))
    print(f"{n} alerts, each with severity, category, summary, description and a runbook section")


# --- Alertmanager and the engine's config ------------------------------------------------------

def cmd_alertmanager_test(a):
    doc = load_yaml(a.src)
    hooks = 0
    for receiver in doc.get("receivers") or []:
        for hook in receiver.get("webhook_configs") or []:
            hook["url"] = a.url
            hooks += 1
    if not hooks:
        die(f"{a.src}: no webhook receiver")

    def fast(route):
        for key in ("group_wait", "group_interval"):
            if key in route or route is doc["route"]:
                route[key] = "1s"
        for sub in route.get("routes") or []:
            fast(sub)

    fast(doc["route"])
    dump_yaml(doc, a.out)


def cmd_engine_config(a):
    text = Path(a.template).read_text()
    for pair in a.pairs:
        key, _, value = pair.partition("=")
        text = text.replace(f"@{key}@", value)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        die(f"{a.template}: placeholders left: {sorted(set(left))}")
    Path(a.out).write_text(text)


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def cmd_wait_http(a):
    deadline = time.monotonic() + a.timeout
    last = None
    while time.monotonic() < deadline:
        try:
            status, _ = http_get(a.url, 2)
            if status == 200:
                return
            last = status
        except urllib.error.HTTPError as e:
            last = f"{e.code} {e.read().decode(errors='replace').strip()}"
        except OSError as e:
            last = e
        time.sleep(0.25)
    die(f"{a.url} did not answer 200 within {a.timeout}s (last: {last})")


def cmd_produce_bad(a):
    from confluent_kafka import Producer

    now_ms = int(time.time() * 1000)
    good_shape = {"model_version": "v1", "prediction_id": "bad", "timestamp": now_ms, "features": {"f0": 1.0}, "score": 0.5}
    messages = [
        b'{"model": "fraud", "features": {"f0": ',                       # malformed_json
        b"[1, 2, 3]",                                                    # not_an_object
        json.dumps({**good_shape, "model": "no-such-model"}).encode(),   # unknown_model
        json.dumps({**good_shape, "model": "fraud", "timestamp": "yesterday"}).encode(),  # bad_timestamp
        b"",                                                             # malformed_json (empty)
    ]
    producer = Producer({"bootstrap.servers": a.brokers, "acks": "all"})
    errors = []
    for i in range(a.rounds):
        for m in messages:
            producer.produce(a.topic, m, key=f"bad-{i}".encode(), on_delivery=lambda err, _msg: err and errors.append(err))
    left = producer.flush(30)
    if left or errors:
        die(f"producing bad messages to {a.topic}: {left} undelivered, errors {errors[:3]}")
    print(f"{a.rounds * len(messages)} unusable messages produced to {a.topic}")


# --- Prometheus and the receiver ----------------------------------------------------------------

def prom_api(base, path, **params):
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else f"{base}{path}"
    try:
        _, body = http_get(url, 10)
    except urllib.error.HTTPError as e:
        return {"status": "error", "error": e.read().decode(errors="replace")}
    return json.loads(body)


def cmd_wait_alert(a):
    deadline = time.monotonic() + a.timeout
    states = {}
    while time.monotonic() < deadline:
        doc = prom_api(a.prometheus, "/api/v1/alerts")
        alerts = [x for x in doc.get("data", {}).get("alerts", []) if x["labels"].get("alertname") == a.alert]
        states = {x["state"] for x in alerts}
        firing = [x for x in alerts if x["state"] == "firing"]
        if firing:
            labels = firing[0]["labels"]
            print(f"{a.alert} firing: " + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())))
            return
        time.sleep(0.5)
    die(f"{a.alert} not firing within {a.timeout}s (states seen: {sorted(states) or 'none'})")


def read_log(path):
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def cmd_check_received(a):
    deadline = time.monotonic() + a.timeout
    note = None
    while time.monotonic() < deadline:
        records = read_log(a.log)
        notes = [r for r in records if r["path"] == "/alertmanager" and isinstance(r["body"], dict)]
        matching = [n for n in notes if any(x.get("labels", {}).get("alertname") == a.alert for x in n["body"].get("alerts", []))]
        if matching:
            note = matching[0]
            break
        time.sleep(0.5)
    if note is None:
        die(f"no Alertmanager notification of {a.alert} reached the receiver within {a.timeout}s "
            f"({len(read_log(a.log))} requests received: {sorted({r['path'] for r in read_log(a.log)})})")
    body = note["body"]
    problems = []
    if body.get("status") != "firing":
        problems.append(f"status {body.get('status')!r}, want 'firing'")
    if body.get("receiver") != "argo-events-retrain":
        problems.append(f"receiver {body.get('receiver')!r}, want 'argo-events-retrain'")
    if body.get("groupLabels", {}).get("model") != a.model:
        problems.append(f"groupLabels {body.get('groupLabels')}, want model={a.model}")
    alert = next(x for x in body["alerts"] if x["labels"]["alertname"] == a.alert)
    want = {"alertname": a.alert, "model": a.model, "severity": "warning", "category": "drift", "job": "driftwatch"}
    for k, v in want.items():
        if alert["labels"].get(k) != v:
            problems.append(f"label {k}={alert['labels'].get(k)!r}, want {v!r}")
    for k in ("feature", "metric", "kind"):
        if not alert["labels"].get(k):
            problems.append(f"label {k} missing")
    if not alert.get("annotations", {}).get("runbook_url", "").endswith("#" + a.alert.lower()):
        problems.append(f"annotation runbook_url {alert.get('annotations', {}).get('runbook_url')!r}")
    if alert.get("status") != "firing":
        problems.append(f"alert status {alert.get('status')!r}")
    # The engine's own webhook sink reached the same stand-in (/drift): a drift event, with its id.
    drift = [r for r in read_log(a.log) if r["path"] == "/drift" and isinstance(r["body"], dict) and r["body"].get("type") == "drift"]
    if not drift:
        problems.append("the engine's webhook sink delivered no drift event to /drift")
    else:
        d = drift[0]
        if d["body"].get("model") != a.model:
            problems.append(f"drift event for model {d['body'].get('model')!r}")
        if d["headers"].get("idempotency-key") != d["body"].get("event_id") or d["headers"].get("ce-type") != "io.driftwatch.drift":
            problems.append(f"drift event headers {d['headers']}")
    if problems:
        die(f"the notification of {a.alert} is not as expected: " + "; ".join(problems) + f"\n{json.dumps(body, indent=2)}")
    labels = alert["labels"]
    print(f"receiver got {a.alert} via {body['receiver']} (model={labels['model']} kind={labels['kind']} "
          f"feature={labels['feature']} metric={labels['metric']} severity={labels['severity']}), "
          f"and {len(drift)} drift event(s) from the engine's webhook sink")


# --- PromQL: extraction, substitution, splitting -------------------------------------------------

PRECEDENCE = {"or": 1, "and": 2, "unless": 2, "==": 3, "!=": 3, "<=": 3, ">=": 3, "<": 3, ">": 3}
MODIFIER = re.compile(r"^\s*(bool\s+)?((on|ignoring)\s*\([^)]*\)\s*)?((group_left|group_right)\s*(\([^)]*\))?\s*)?", re.S)
NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


def top_level_operators(expr):
    """(position, operator) of every binary operator outside brackets and strings."""
    ops = []
    depth = 0
    i = 0
    n = len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'`":
            j = i + 1
            while j < n and expr[j] != c:
                j += 2 if expr[j] == "\\" and c != "`" else 1
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            two = expr[i:i + 2]
            if two in ("==", "!=", "<=", ">="):
                ops.append((i, two))
                i += 2
                continue
            if c in "<>":
                ops.append((i, c))
            elif c.isalpha() and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] in "_:")):
                m = re.match(r"(or|and|unless)(?![\w:])", expr[i:])
                if m:
                    ops.append((i, m.group(1)))
                    i += len(m.group(1))
                    continue
                m = re.match(r"[\w:]+", expr[i:])
                i += len(m.group(0))
                continue
        i += 1
    return ops


def strip_parens(expr):
    e = expr.strip()
    while e.startswith("(") and e.endswith(")"):
        depth = 0
        for i, c in enumerate(e):
            depth += c == "("
            depth -= c == ")"
            if depth == 0 and i < len(e) - 1:
                return e
        e = e[1:-1].strip()
    return e


def operands(expr):
    """The operands of expr's lowest-precedence top-level operator (none: not splittable)."""
    e = strip_parens(expr)
    m = re.match(r"^(absent|absent_over_time)\s*\((.*)\)$", e, re.S)
    if m and not top_level_operators(e):
        inner = m.group(2).strip()
        return [re.sub(r"\[[^\]]*\]\s*$", "", inner)]
    ops = top_level_operators(e)
    if not ops:
        return []
    low = min(PRECEDENCE[o] for _, o in ops)
    cuts = [(p, o) for p, o in ops if PRECEDENCE[o] == low]
    parts, start = [], 0
    for p, o in cuts:
        parts.append(e[start:p])
        start = p + len(o)
    parts.append(e[start:])
    return [MODIFIER.sub("", part, count=1).strip() for part in parts]


def substitute(expr, values):
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    if "$" in expr:
        die(f"a variable is left in {expr!r}: give it with --var")
    return expr


def dashboard_sources(dash):
    """(where, expr) of every panel target and annotation; (where, query) of every query variable."""
    exprs, variables = [], []

    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels") or [])

    for p in panels(dash.get("panels") or []):
        for t in p.get("targets") or []:
            if "expr" not in t:
                die(f"panel {p.get('title')!r}: target {t.get('refId')} has no expr")
            exprs.append((f"panel {p.get('title')!r} {t.get('refId')}", t["expr"]))
    for an in (dash.get("annotations") or {}).get("list") or []:
        if (an.get("target") or {}).get("expr"):
            exprs.append((f"annotation {an['name']!r}", an["target"]["expr"]))
    for v in (dash.get("templating") or {}).get("list") or []:
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            variables.append((f"variable ${v['name']}", q))
    return exprs, variables


def cmd_exprs(a):
    values = dict(kv.split("=", 1) for kv in a.var)
    dash = json.loads(Path(a.dashboard).read_text())
    dash_exprs, variables = dashboard_sources(dash)
    rule_exprs = [(f"alert {r['alert']}" if "alert" in r else f"record {r['record']}", r["expr"].strip())
                  for _, r in rules_of(load_yaml(a.rules))]
    counts = {"dashboard": 0, "rules": 0, "variables": 0, "split": 0}
    lines = []

    def note(line):
        lines.append(line)

    def query(expr):
        doc = prom_api(a.prometheus, "/api/v1/query", query=expr)
        if doc.get("status") != "success":
            return None, doc.get("error", doc)
        data = doc["data"]
        if data["resultType"] in ("scalar", "string"):
            return 1, None
        return len(data["result"]), None

    def returns_data(expr, depth=0):
        n, err = query(expr)
        pad = "    " * depth
        if err is not None:
            note(f"{pad}ERROR {expr}: {err}")
            return False
        if n:
            note(f"{pad}ok ({n} series) {expr}")
            return True
        return False

    def rule_returns_data(expr, depth=0):
        if returns_data(expr, depth):
            return True
        parts = operands(expr)
        pad = "    " * depth
        if not parts:
            note(f"{pad}EMPTY {expr}")
            return False
        note(f"{pad}empty now (condition false), so each operand must return data: {expr}")
        counts["split"] += 1
        ok = True
        for part in parts:
            if NUMBER.match(part):
                continue
            ok = rule_returns_data(part, depth + 1) and ok
        return ok

    def check_dashboard(where, expr):
        note(f"{where}:")
        e = substitute(expr, values)
        if returns_data(e, 1):
            return True
        note(f"    EMPTY {e}")
        return False

    def check_rule(where, expr):
        note(f"{where}:")
        return rule_returns_data(expr, 1)

    def check_variable(where, q):
        m = re.match(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", substitute(q, values), re.S)
        if not m:
            note(f"{where}: {q!r} is not label_values(SELECTOR, LABEL)")
            return False
        selector, label = m.group(1), m.group(2)
        doc = prom_api(a.prometheus, "/api/v1/query", query=f"group by ({label}) ({selector})")
        found = sorted(r["metric"].get(label, "") for r in doc.get("data", {}).get("result", []))
        note(f"{where}: {label} = {found}")
        return bool([x for x in found if x])

    checks = []
    for where, expr in dash_exprs:
        counts["dashboard"] += 1
        checks.append((where, expr, check_dashboard))
    for where, expr in rule_exprs:
        counts["rules"] += 1
        checks.append((where, expr, check_rule))
    for where, q in variables:
        counts["variables"] += 1
        checks.append((where, q, check_variable))

    # Series appear as the run goes on (a counter's first increment, a rate's second sample): a
    # check that finds no data is asked again until --settle seconds have passed.
    deadline = time.monotonic() + a.settle
    pending = checks
    while True:
        failed = []
        for where, expr, check in pending:
            before = len(lines)
            split_before = counts["split"]
            if not check(where, expr):
                failed.append((where, expr, check))
                if time.monotonic() < deadline:
                    del lines[before:]  # only the final attempt is logged
                    counts["split"] = split_before
        pending = failed
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(1)
    failures = [f"{where}: {substitute(expr, values)}" for where, expr, _ in pending]
    if a.log:
        Path(a.log).write_text("\n".join(lines) + "\n", encoding="utf-8")
    if failures:
        die("these return no data:\n  " + "\n  ".join(failures))
    print(f"{counts['dashboard']} dashboard and {counts['rules']} rule expressions and {counts['variables']} variables return data "
          f"({counts['split']} quiet conditions checked through their operands)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("test-rules"); s.add_argument("src"); s.add_argument("out"); s.add_argument("--for", dest="for_", required=True)
    s = sub.add_parser("rule-groups"); s.add_argument("rendered"); s.add_argument("out")
    s = sub.add_parser("same-groups"); s.add_argument("file"); s.add_argument("groups"); s.add_argument("--rules-for", required=True)
    s = sub.add_parser("rendered"); s.add_argument("file"); s.add_argument("--kind", required=True); s.add_argument("--name"); s.add_argument("--absent", action="store_true")
    s.add_argument("--label", action="append", default=[]); s.add_argument("--annotation", action="append", default=[]); s.add_argument("--data-equals", action="append", default=[])
    s = sub.add_parser("alert-labels"); s.add_argument("rules")
    s = sub.add_parser("check-alert-fields"); s.add_argument("rules"); s.add_argument("runbooks")
    s = sub.add_parser("alertmanager-test"); s.add_argument("src"); s.add_argument("out"); s.add_argument("--url", required=True)
    s = sub.add_parser("engine-config"); s.add_argument("template"); s.add_argument("out"); s.add_argument("pairs", nargs="*")
    s = sub.add_parser("wait-http"); s.add_argument("url"); s.add_argument("--timeout", type=float, default=30)
    s = sub.add_parser("produce-bad"); s.add_argument("--brokers", required=True); s.add_argument("--topic", required=True); s.add_argument("--rounds", type=int, default=4)
    s = sub.add_parser("wait-alert"); s.add_argument("--prometheus", required=True); s.add_argument("--alert", required=True); s.add_argument("--timeout", type=float, default=120)
    s = sub.add_parser("check-received"); s.add_argument("log"); s.add_argument("--alert", required=True); s.add_argument("--model", required=True); s.add_argument("--timeout", type=float, default=60)
    s = sub.add_parser("exprs")
    s.add_argument("--prometheus", required=True); s.add_argument("--rules", required=True); s.add_argument("--dashboard", required=True)
    s.add_argument("--var", action="append", default=[]); s.add_argument("--log")
    s.add_argument("--settle", type=float, default=30, help="seconds to keep asking a check that finds no data")
    a = p.parse_args()
    globals()["cmd_" + a.cmd.replace("-", "_")](a)


if __name__ == "__main__":
    main()
