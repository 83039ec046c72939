"""The rendered WorkflowTemplate against Argo Workflows' models (PyPI hera), plus its wiring.

Usage: check_workflow.py RENDERED.yaml [--manual-approval]

Hera's WorkflowTemplate model validates types and, through strict_models, refuses unknown
fields. Then the DAG is checked as Argo would run it: the entrypoint and every task's template
exist, `depends` names existing tasks, every {{tasks.X.outputs.parameters.Y}},
{{inputs.parameters.Y}} and {{workflow.parameters.Y}} resolves to something declared, every
task supplies exactly its template's inputs, containers retry with backoff, the run has a
deadline and a per-model mutex, and (with --manual-approval) an approval suspend gates promote.
"""

import re
import sys

from hera.workflows.models import WorkflowTemplate

from manifests import fail, load, one
from strict_models import validate_strict

VAR = re.compile(r"\{\{\s*([^}=][^}]*?)\s*\}\}")


def strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)


def main(rendered, manual_approval):
    objects = load(rendered)
    wt = one(objects, "WorkflowTemplate")
    try:
        validate_strict(WorkflowTemplate, wt)
    except Exception as e:  # pydantic.ValidationError or unknown fields
        fail(f"WorkflowTemplate {wt['metadata']['name']} does not match Argo Workflows' model:\n{e}")

    spec = wt["spec"]
    problems = []
    templates = {t["name"]: t for t in spec["templates"]}
    wf_params = {p["name"] for p in spec.get("arguments", {}).get("parameters", [])}
    if spec.get("entrypoint") not in templates:
        problems.append(f"entrypoint {spec.get('entrypoint')!r} is not a template")
    if not spec.get("activeDeadlineSeconds", 0) > 0:
        problems.append("no activeDeadlineSeconds")
    mutexes = (spec.get("synchronization") or {}).get("mutexes") or []
    if not any("{{workflow.parameters.model}}" in m.get("name", "") for m in mutexes):
        problems.append("no synchronization mutex per model ({{workflow.parameters.model}} in its name)")
    for name in ("model", "feature", "metric", "value", "event-id"):
        if name not in wf_params:
            problems.append(f"workflow parameter {name!r} missing")

    def outputs_of(tname):
        return {p["name"] for p in (templates[tname].get("outputs") or {}).get("parameters", [])}

    def inputs_of(tname):
        return {p["name"]: p for p in (templates[tname].get("inputs") or {}).get("parameters", [])}

    for tname, t in templates.items():
        if "container" in t or "script" in t:
            r = t.get("retryStrategy") or {}
            if not r.get("limit") or not (r.get("backoff") or {}).get("duration"):
                problems.append(f"template {tname}: no retryStrategy with backoff")
        declared_inputs = inputs_of(tname)
        body = {k: v for k, v in t.items() if k != "dag"}
        for s in strings(body):
            for var in VAR.findall(s):
                parts = var.split(".")
                if parts[:2] == ["inputs", "parameters"] and parts[2] not in declared_inputs:
                    problems.append(f"template {tname}: {{{{{var}}}}} is not an input")
                if parts[:2] == ["workflow", "parameters"] and parts[2] not in wf_params:
                    problems.append(f"template {tname}: {{{{{var}}}}} is not a workflow parameter")
        if "dag" not in t:
            continue
        tasks = {k["name"]: k for k in t["dag"]["tasks"]}
        direct = {n: set(re.findall(r"([A-Za-z0-9-]+)(?:\.[A-Za-z]+)?", k.get("depends", ""))) for n, k in tasks.items()}

        def ancestors(n, seen=None):
            seen = set() if seen is None else seen
            for d in direct.get(n, ()):
                if d not in seen:
                    seen.add(d)
                    ancestors(d, seen)
            return seen
        for task in tasks.values():
            where = f"{tname}.{task['name']}"
            if task["template"] not in templates:
                problems.append(f"{where}: template {task['template']!r} does not exist")
                continue
            for dep in direct[task["name"]]:
                if dep not in tasks:
                    problems.append(f"{where}: depends on unknown task {dep!r}")
            for s in strings(task):
                for var in VAR.findall(s):
                    parts = var.split(".")
                    if parts[0] == "tasks":
                        if parts[1] not in tasks:
                            problems.append(f"{where}: {{{{{var}}}}} names no task")
                        elif parts[2:4] == ["outputs", "parameters"] and parts[4] not in outputs_of(tasks[parts[1]]["template"]):
                            problems.append(f"{where}: {{{{{var}}}}} is no output of {parts[1]}")
                        elif parts[1] not in ancestors(task["name"]):
                            problems.append(f"{where}: uses {parts[1]}, which it does not depend on")
                    elif parts[:2] == ["workflow", "parameters"] and parts[2] not in wf_params:
                        problems.append(f"{where}: {{{{{var}}}}} is not a workflow parameter")
            given = {p["name"] for p in (task.get("arguments") or {}).get("parameters", [])}
            needed = {n for n, p in inputs_of(task["template"]).items() if "default" not in p and "value" not in p}
            if needed - given:
                problems.append(f"{where}: missing arguments {sorted(needed - given)}")
            if given - set(inputs_of(task["template"])):
                problems.append(f"{where}: arguments {sorted(given - set(inputs_of(task['template'])))} are not inputs")
        steps = {"train", "evaluate", "promote", "keep", "notify"}
        if not steps <= set(tasks):
            problems.append(f"{tname}: the DAG lacks {sorted(steps - set(tasks))}")
        else:
            gate = [tasks[n].get("when", "") for n in ("keep",)] + [tasks.get("approve" if manual_approval else "promote", {}).get("when", "")]
            if not all("candidate-score" in w and "production-score" in w for w in gate):
                problems.append(f"{tname}: the quality gate does not compare candidate and production scores: {gate}")
        if manual_approval:
            approve = tasks.get("approve")
            if not approve or "suspend" not in templates[approve["template"]]:
                problems.append(f"{tname}: manual approval enabled but no suspend step 'approve'")
            elif "approve" not in ancestors("promote"):
                problems.append(f"{tname}: promote does not wait for approval")
        elif "approve" in tasks:
            problems.append(f"{tname}: an approval step although manualApproval is off")
    if problems:
        fail("\n".join(problems))
    print(f"WorkflowTemplate {wt['metadata']['name']}: {len(templates)} templates, model ok, wiring ok")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        fail(__doc__)
    main(args[0], "--manual-approval" in sys.argv)
