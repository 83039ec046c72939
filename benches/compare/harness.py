"""Peer comparison harness (run through benches/compare/run.sh, which prepares the virtualenvs).

For each stream size: generate data with `driftwatch generate`, pre-parse it into columns for the Python
peers (convert.py), then, `--repeats` times, run every tool in its own subprocess (peak RSS from wait4's
ru_maxrss of that process), and finally report medians, the same-answers check against the SciPy script,
and the targets. Standard library only.
"""

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NUMERIC = [f"f{i:02d}" for i in range(20)]
CATEGORICAL = ["c0", "c1"]

# key, label, virtualenv, script, kind
PEERS = [
    ("scipy", "SciPy/NumPy script", "base", "scipy_manual.py", "batch"),
    ("evidently", "Evidently", "evidently", "evidently_peer.py", "batch"),
    ("nannyml", "NannyML", "nannyml", "nannyml_peer.py", "batch"),
    ("whylogs", "whylogs", "whylogs", "whylogs_peer.py", "batch"),
    ("alibi-detect", "Alibi Detect", "alibi-detect", "alibi_peer.py", "batch"),
    ("frouros", "Frouros", "frouros", "frouros_peer.py", "batch"),
    ("river", "River (ADWIN)", "river", "river_peer.py", "streaming"),
]
DRIFTWATCH = [
    ("driftwatch", "Driftwatch replay, tumbling 10 000 (same statistics)", "tumbling.yaml"),
    ("driftwatch-sliding", "Driftwatch replay, sliding 10 000 / 1 000, exact KS", "sliding.yaml"),
    ("driftwatch-sliding-sketch", "Driftwatch replay, sliding 10 000 / 1 000, sketch KS", "sliding-sketch.yaml"),
]
# Same answers: statistics within 1e-9 relative (1e-12 absolute near zero); p-values within 1e-6 absolute,
# and 1e-6 relative where p > 1e-300 and both used the same method.
STAT_REL, STAT_ABS, P_ABS, P_REL, P_TINY = 1e-9, 1e-12, 1e-6, 1e-6, 1e-300


def log(msg):
    print(f"[compare {datetime.datetime.now():%H:%M:%S}] {msg}", flush=True)


def machine():
    model, mem = "unknown CPU", 0
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model)
        with open("/proc/meminfo") as f:
            mem = int(next(ln.split()[1] for ln in f if ln.startswith("MemTotal"))) * 1024
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, {mem / 2**30:.0f} GiB RAM, {platform.system()} {platform.release()}"


def run_measured(cmd, log_path, timeout):
    """Run `cmd` as its own process; return (exit code, peak RSS in bytes of that process, wall seconds)."""
    with open(log_path, "w") as out:
        out.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n")
        out.flush()
        t0 = time.perf_counter()
        env = dict(os.environ, NML_DISABLE_USAGE_LOGGING="1", DO_NOT_TRACK="1", WHYLOGS_NO_ANALYTICS="1")
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
    rc = p.returncode
    if rc == -9 and wall >= timeout:
        rc = "timeout"
    return rc, usage.ru_maxrss * 1024, wall


def tail(path, n=1500):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:].strip()
    except OSError as e:
        return str(e)


def write_configs(d, window, slide):
    feats = "\n".join(f"      - {{ name: {n}, type: numeric }}" for n in NUMERIC)
    feats += "\n" + "\n".join(f"      - {{ name: {n}, type: categorical }}" for n in CATEGORICAL)

    def cfg(window_spec, ks_mode, comment):
        return f"""# {comment}
# Written by benches/compare/harness.py. Reference: the generated 50 000-row undrifted sample (ref.csv).
engine: {{ batch_events: 4096 }}
models:
  - name: fraud
    reference: {{ path: ref.csv }}
    window: {window_spec}
    features:
{feats}
    detectors:
      - {{ metric: psi, threshold: 0.2, bins: 10, features: [{", ".join(NUMERIC)}] }}
      - {{ metric: ks, p_value: 0.01, mode: {ks_mode}, p_value_method: auto }}
      - {{ metric: chi2, p_value: 0.01 }}
      - {{ metric: jensen_shannon, threshold: 0.1, features: [{", ".join(CATEGORICAL)}] }}
    correction: none
    alerting: {{ consecutive: 3, recover_after: 3 }}
"""

    files = {
        "tumbling.yaml": cfg(f"{{ type: tumbling, events: {window} }}", "exact",
                             "Same windows and statistics as the SciPy script: PSI + KS (D on raw values) + chi2 + JS."),
        "sliding.yaml": cfg(f"{{ type: sliding, events: {window}, slide: {slide} }}", "exact",
                            "Sliding window, same statistics, exact KS D on raw values."),
        "sliding-sketch.yaml": cfg(f"{{ type: sliding, events: {window}, slide: {slide} }}", "sketch",
                                   "Sliding window, same statistics, KS from the bounded sketch (with error bound)."),
    }
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    return list(files)


def compare_answers(dw_path, scipy_path, window):
    """Max differences between Driftwatch's and the SciPy script's per-window values; list of failures."""
    dw = {}
    with open(dw_path) as f:
        for line in f:
            e = json.loads(line)
            w = e["window"]
            if w["count"] != window or w["start_index"] % window:
                continue
            dw[(w["start_index"] // window, e["feature"], e["metric"])] = e
    sp = {}
    with open(scipy_path) as f:
        for line in f:
            e = json.loads(line)
            sp[(e["window"], e["feature"], e["metric"])] = e
    stats, failures = {}, []
    missing = sorted(set(sp) ^ set(dw))
    for k in missing[:10]:
        failures.append(f"{k}: only in {'SciPy' if k in sp else 'Driftwatch'} output")
    if len(missing) > 10:
        failures.append(f"... {len(missing) - 10} more keys in only one output")
    for key in sorted(set(sp) & set(dw)):
        a, b = dw[key], sp[key]
        m = stats.setdefault(key[2], {"compared": 0, "value_abs": 0.0, "value_rel": 0.0, "p_abs": 0.0,
                                      "p_rel": 0.0, "p_rel_compared": 0, "methods": {}})
        m["compared"] += 1
        if a.get("status") != "ok":
            failures.append(f"{key}: Driftwatch status {a.get('status')}")
            continue
        va, vb = a["value"], b["value"]
        d = abs(va - vb)
        rel = d / max(abs(va), abs(vb)) if max(abs(va), abs(vb)) > 0 else 0.0
        m["value_abs"] = max(m["value_abs"], d)
        if d > STAT_ABS:
            m["value_rel"] = max(m["value_rel"], rel)
        if d > STAT_ABS and rel > STAT_REL:
            failures.append(f"{key}: value {va!r} vs SciPy {vb!r} (rel {rel:.2e})")
        if b.get("p_value") is not None:
            pa, pb = a.get("p_value_raw"), b["p_value"]
            if pa is None:
                failures.append(f"{key}: Driftwatch has no p-value")
                continue
            same_method = a.get("method") == b.get("method")
            mk = f"{a.get('method')}/{b.get('method')}"
            m["methods"][mk] = m["methods"].get(mk, 0) + 1
            d = abs(pa - pb)
            m["p_abs"] = max(m["p_abs"], d)
            if d > P_ABS:
                failures.append(f"{key}: p-value {pa!r} vs SciPy {pb!r} (abs {d:.2e})")
            if same_method and min(pa, pb) > P_TINY:
                rel = d / max(pa, pb)
                m["p_rel"] = max(m["p_rel"], rel)
                m["p_rel_compared"] += 1
                if rel > P_REL:
                    failures.append(f"{key}: p-value {pa!r} vs SciPy {pb!r} (rel {rel:.2e}, method {mk})")
    return {"metrics": stats, "keys_only_in_one": len(missing), "failures": failures}


def fmt_int(x):
    return "—" if x is None else f"{x:,.0f}".replace(",", " ")


def fmt_mib(b):
    return "—" if b is None else f"{b / 2**20:,.0f} MiB"


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", default="200000,1000000", help="comma-separated stream sizes")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--window", type=int, default=10000)
    ap.add_argument("--slide", type=int, default=1000)
    ap.add_argument("--reference-rows", type=int, default=50000)
    ap.add_argument("--max-seconds", type=float, default=60.0,
                    help="cap on a peer's detection time per run; beyond it rows/s is measured on the windows done")
    ap.add_argument("--peers", default=",".join(p[0] for p in PEERS), help="comma-separated subset of peers")
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "compare"))
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "driftwatch"))
    ap.add_argument("--command", default="", help="the command line, for the report")
    args = ap.parse_args()

    sizes = [int(s) for s in args.events.split(",") if s]
    wanted = [s for s in args.peers.split(",") if s]
    unknown = set(wanted) - {p[0] for p in PEERS}
    if unknown:
        sys.exit(f"unknown peers: {', '.join(sorted(unknown))}")
    peers = [p for p in PEERS if p[0] in wanted]
    os.makedirs(args.out, exist_ok=True)
    base_py = os.path.join(HERE, ".venv-base", "bin", "python")
    exit_code = 0
    results = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "command": args.command or " ".join(sys.argv),
        "repeats": args.repeats,
        "window": args.window,
        "slide": args.slide,
        "reference_rows": args.reference_rows,
        "max_seconds": args.max_seconds,
        "driftwatch": subprocess.run([args.bin, "--version"], capture_output=True, text=True).stdout.strip(),
        "sizes": {},
    }

    for n in sizes:
        d = os.path.join(args.out, f"n{n}")
        os.makedirs(d, exist_ok=True)
        log(f"{n} events: generating into {d}")
        subprocess.run([args.bin, "generate", "--events", str(n), "--drift-start", str(n // 2),
                        "-o", os.path.join(d, "events.jsonl"), "--reference-output", os.path.join(d, "ref.csv"),
                        "--reference-rows", str(args.reference_rows)], check=True)
        subprocess.run([base_py, os.path.join(HERE, "convert.py"), os.path.join(d, "events.jsonl"),
                        os.path.join(d, "ref.csv"), d], check=True)
        configs = write_configs(d, args.window, args.slide)
        for c in configs:
            subprocess.run([args.bin, "validate", "--config", os.path.join(d, c)], check=True)

        tools = {}
        for key, label, venv, script, kind in peers:
            py = os.path.join(HERE, f".venv-{venv}", "bin", "python")
            stamp = os.path.join(HERE, f".venv-{venv}", ".installed")
            entry = {"label": label, "kind": kind, "runs": [], "ok": True, "error": None}
            if not (os.path.exists(py) and os.path.exists(stamp)):
                entry.update(ok=False, error="install failed: " + tail(os.path.join(args.out, f"install-{venv}.log"), 800))
            tools[key] = entry
        tools["load-only"] = {"label": "(data loaded, no detection: Python RSS baseline)", "kind": "baseline",
                              "runs": [], "ok": True, "error": None}
        for key, label, _ in DRIFTWATCH:
            tools[key] = {"label": label, "kind": "driftwatch", "runs": [], "ok": True, "error": None}

        for r in range(1, args.repeats + 1):
            # Driftwatch first, then the peers, interleaved per repeat so machine noise spreads over all.
            for key, label, cfg in DRIFTWATCH:
                t = tools[key]
                rep = os.path.join(d, f"{key}-report-{r}.json")
                evals = os.path.join(d, f"{key}-evaluations.jsonl" if r == 1 else f"{key}-evaluations-last.jsonl")
                cmd = [args.bin, "replay", "--config", os.path.join(d, cfg), "--input", os.path.join(d, "events.jsonl"),
                       "--output-evaluations", evals, "--output-events", os.path.join(d, f"{key}-drift.jsonl"),
                       "--dead-letter", os.path.join(d, f"{key}-dead.jsonl"), "--report", rep]
                rc, rss, wall = run_measured(cmd, os.path.join(d, f"{key}-{r}.log"), 3600)
                if rc != 0:
                    t.update(ok=False, error=f"exit {rc}: {tail(os.path.join(d, f'{key}-{r}.log'))}")
                    continue
                with open(rep) as f:
                    report = json.load(f)
                run = {"rows": report["events_applied"], "seconds": report["elapsed_seconds"],
                       "rows_per_second": report["events_per_second"], "peak_rss": report["peak_rss_bytes"],
                       "peak_rss_wait4": rss, "wall": wall, "windows": report["models"]["fraud"]["windows"],
                       "evaluations": report["evaluations"], "drift_events": report["drift_events"],
                       "capped": False, "features_per_row": 22}
                t["runs"].append(run)
                log(f"{n} run {r} {label}: {fmt_int(run['rows_per_second'])} rows/s, {fmt_mib(run['peak_rss'])}")
            todo = [("load-only", "base", "scipy_manual.py", ["--load-only"])]
            todo += [(key, venv, script, []) for key, _, venv, script, _ in peers]
            for key, venv, script, extra in todo:
                t = tools[key]
                if not t["ok"] and t["error"] and t["error"].startswith("install failed"):
                    continue
                py = os.path.join(HERE, f".venv-{venv}", "bin", "python")
                out = os.path.join(d, f"{key}-result-{r}.json")
                if os.path.exists(out):
                    os.remove(out)
                cmd = [py, os.path.join(HERE, "peers", script), "--data", d, "--window", str(args.window),
                       "--max-seconds", str(args.max_seconds), "--out", out] + extra
                if key == "scipy" and r == 1:
                    cmd += ["--evaluations", os.path.join(d, "scipy-evaluations.jsonl")]
                logp = os.path.join(d, f"{key}-{r}.log")
                rc, rss, wall = run_measured(cmd, logp, args.max_seconds * 4 + 600)
                res = None
                if os.path.exists(out):
                    with open(out) as f:
                        res = json.load(f)
                if rc != 0 or not res or not res.get("ok"):
                    err = (res or {}).get("error") or f"exit {rc}: {tail(logp)}"
                    t.update(ok=False, error=err)
                    log(f"{n} run {r} {t['label']}: FAILED: {err[:300]}")
                    continue
                res.update(peak_rss=rss, wall=wall)
                t["runs"].append(res)
                if key != "load-only":
                    t["versions"] = res.get("versions")
                    t["note"] = res.get("note")
                log(f"{n} run {r} {t['label']}: {fmt_int(res.get('rows_per_second'))} rows/s"
                    f"{' (capped)' if res.get('capped') else ''}, {fmt_mib(rss)}")

        # Medians.
        for t in tools.values():
            runs = t["runs"]
            t["rows_per_second"] = median([x.get("rows_per_second") for x in runs])
            t["peak_rss"] = median([x.get("peak_rss") for x in runs])
            fpr = runs[0].get("features_per_row") if runs else None
            t["feature_values_per_second"] = t["rows_per_second"] * fpr if t["rows_per_second"] and fpr else None
            t["capped"] = any(x.get("capped") for x in runs)
            t["windows"] = runs[0].get("windows") if runs else None
            t["windows_total"] = runs[0].get("windows_total", runs[0].get("windows")) if runs else None
            t["flagged_windows"] = runs[0].get("flagged_windows") if runs else None
        dw = tools["driftwatch"]
        for t in tools.values():
            t["driftwatch_ratio"] = (dw["rows_per_second"] / t["rows_per_second"]
                                     if dw["rows_per_second"] and t["rows_per_second"] else None)

        # Driftwatch's flagged tumbling windows (any breaching column), for the same sanity column as the peers.
        dw_evals = os.path.join(d, "driftwatch-evaluations.jsonl")
        if dw["runs"] and os.path.exists(dw_evals):
            flagged = set()
            with open(dw_evals) as f:
                for line in f:
                    e = json.loads(line)
                    if e.get("breach"):
                        flagged.add(e["window"]["start_index"] // args.window)
            dw["flagged_windows"] = sorted(flagged)

        # Same answers.
        sp_evals = os.path.join(d, "scipy-evaluations.jsonl")
        if dw["ok"] and dw["runs"] and tools.get("scipy", {}).get("ok") and os.path.exists(sp_evals):
            answers = compare_answers(dw_evals, sp_evals, args.window)
        else:
            answers = {"failures": ["same-answers check could not run: Driftwatch or the SciPy script failed"],
                       "metrics": {}}
        if answers["failures"]:
            exit_code = 1

        # Targets.
        batch = [t for t in tools.values() if t["kind"] == "batch" and t["ok"] and t["rows_per_second"]]
        fastest = max(batch, key=lambda t: t["rows_per_second"]) if batch else None
        river = tools.get("river")
        targets = []
        if fastest and dw["rows_per_second"]:
            x = dw["rows_per_second"] / fastest["rows_per_second"]
            targets.append({"target": f"Driftwatch ≥ 20× the fastest batch peer ({fastest['label']})",
                            "measured": f"{x:.1f}×", "met": x >= 20})
        else:
            targets.append({"target": "Driftwatch ≥ 20× the fastest batch peer",
                            "measured": "not measured (no batch peer or Driftwatch run succeeded)", "met": False})
        if river and river["ok"] and river["rows_per_second"] and dw["rows_per_second"]:
            x = dw["rows_per_second"] / river["rows_per_second"]
            targets.append({"target": "Driftwatch ≥ 80× River", "measured": f"{x:.1f}×", "met": x >= 80})
        else:
            targets.append({"target": "Driftwatch ≥ 80× River", "measured": "not measured (River or Driftwatch failed)",
                            "met": False})
        others = [t for t in tools.values() if t["kind"] in ("batch", "streaming") and t["ok"] and t["peak_rss"]]
        if others and dw["peak_rss"]:
            low = min(others, key=lambda t: t["peak_rss"])
            targets.append({"target": "Driftwatch peak RSS below every peer's",
                            "measured": f"{fmt_mib(dw['peak_rss'])} vs lowest peer {fmt_mib(low['peak_rss'])} "
                                        f"({low['label']})",
                            "met": dw["peak_rss"] < low["peak_rss"]})
        results["sizes"][str(n)] = {"tools": tools, "same_answers": answers, "targets": targets}

    md = render(results)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(md)
    print(md)
    log(f"wrote {os.path.join(args.out, 'results.md')} and results.json")
    sys.exit(exit_code)


def render(res):
    lines = [
        "# Peer comparison",
        "",
        f"{res['date']} · {res['machine']} · {res['driftwatch']} · medians of {res['repeats']} runs · "
        f"tumbling windows of {fmt_int(res['window'])} rows against a {fmt_int(res['reference_rows'])}-row reference",
        "",
        f"Command: `{res['command']}`",
        "",
        "Rows/s: Driftwatch's includes reading the JSONL file and parsing every event, loading the reference CSV and "
        "building its profile (from `replay --report`); the Python peers get the same data as pre-parsed numpy/pandas "
        "columns loaded *before* timing starts, and are timed on the detection work only (reference fit + windows). "
        "Peak RSS is per process (Python peers: `wait4` ru_maxrss, which includes the loaded data; the "
        "baseline row is a process that only loads it; Driftwatch: its report). Ratio = Driftwatch tumbling rows/s ÷ "
        "the tool's rows/s. *capped*: the run stopped after the window that passed "
        f"{res['max_seconds']:.0f} s of detection time, rows/s is measured on the windows done (the first ones, "
        "so a capped peer may not reach the drifted half). Flagged windows: windows with at least one column "
        "flagged by the tool's own default decision rule, before / after the drift start (sanity only: the "
        "tools' tests and thresholds differ).",
        "",
    ]
    for n, s in res["sizes"].items():
        lines += [f"## {int(n):,} events".replace(",", " "), "",
                  "| tool | windows | rows/s | feature-values/s | peak RSS | ratio (Driftwatch ÷ tool) | flagged windows (before / after drift) | notes |",
                  "|---|---|---|---|---|---|---|---|"]
        for key, t in s["tools"].items():
            if not t["ok"] and not t["runs"]:
                lines.append(f"| {t['label']} | — | **failed** | — | — | — | — | {md_cell(t['error'])} |")
                continue
            wins = "—" if t["windows"] is None else f"{t['windows']}/{t['windows_total']}"
            if t["kind"] == "driftwatch":
                wins = str(t["windows"])
            notes = []
            if t["kind"] == "driftwatch":
                notes.append("reads and parses the JSONL itself, loads the reference CSV")
            if t["capped"]:
                notes.append(f"**capped**: {t['windows']} of {t['windows_total']} windows")
            if not t["ok"]:
                notes.append(f"**some runs failed**: {md_cell(t['error'])}")
            if t.get("note"):
                notes.append(t["note"])
            fl = t.get("flagged_windows")
            flagged = "—"
            if fl is not None and t["windows"]:
                half = int(n) // 2 // res["window"]
                done = t["windows"]
                flagged = (f"{sum(1 for i in fl if i < half)}/{min(half, done)} · "
                           f"{sum(1 for i in fl if i >= half)}/{max(0, done - half)}")
            rps = "—" if t["kind"] == "baseline" else fmt_int(t["rows_per_second"])
            fvs = "—" if t["kind"] == "baseline" else fmt_int(t["feature_values_per_second"])
            ratio = "—" if t["driftwatch_ratio"] is None or key.startswith("driftwatch-") else f"{t['driftwatch_ratio']:.2f}×"
            lines.append(f"| {t['label']} | {wins} | {rps} | {fvs} | {fmt_mib(t['peak_rss'])} | {ratio} | "
                         f"{flagged} | {'; '.join(notes)} |")
        lines += ["", "Targets:", ""]
        for tg in s["targets"]:
            lines.append(f"- {tg['target']}: {tg['measured']} — **{'met' if tg['met'] else 'missed'}**")
        a = s["same_answers"]
        lines += ["", "Same answers (Driftwatch tumbling evaluations vs the SciPy script, every window and feature):", ""]
        if a["metrics"]:
            lines += ["| metric | compared | max abs diff (value) | max rel diff (value, where abs > 1e-12) | max abs diff (p) | max rel diff (p, same method, p > 1e-300) | methods (Driftwatch/SciPy) |",
                      "|---|---|---|---|---|---|---|"]
            for m, x in a["metrics"].items():
                if x["methods"]:
                    p = (f"{x['p_abs']:.2e} | {x['p_rel']:.2e} ({x['p_rel_compared']} compared) | "
                         + ", ".join(f"{k}: {v}" for k, v in x["methods"].items()))
                else:
                    p = "— | — | —"
                lines.append(f"| {m} | {x['compared']} | {x['value_abs']:.2e} | {x['value_rel']:.2e} | {p} |")
        lines.append("")
        lines.append("**PASS**: within tolerances (statistics 1e-9 relative / 1e-12 absolute; p-values 1e-6 absolute, "
                     "1e-6 relative)." if not a["failures"] else
                     "**FAIL**:\n\n" + "\n".join(f"- {f}" for f in a["failures"][:30]))
        lines.append("")
    # Versions.
    lines += ["## Versions", ""]
    seen = {}
    for s in res["sizes"].values():
        for t in s["tools"].values():
            if t.get("versions"):
                seen[t["label"]] = t["versions"]
    for label, v in seen.items():
        lines.append(f"- {label}: " + ", ".join(f"{k} {x}" for k, x in v.items()))
    lines.append(f"- Driftwatch: {res['driftwatch']}")
    return "\n".join(lines) + "\n"


def md_cell(s):
    return (s or "").replace("|", "\\|").replace("\n", " ")[:400]


if __name__ == "__main__":
    main()
