"""Shared driver for the peer scripts of the peer comparison (benches/compare).

Each peer script defines a `Peer` with three hooks and calls `main(Peer)`:

- `prepare(data)`  (NOT timed): build the library's input from the pre-parsed columns
  (numpy arrays loaded from `stream.npz` / `reference.npz`, written by convert.py);
- `fit(state)`     (timed): everything computed from the reference once;
- `window(state, i, start, end)` (timed): drift detection on stream rows [start, end) against the
  reference; returns the number of columns flagged as drifted in that window.

The timed part is the detection work only: loading and parsing the data happen before the clock starts.
If `--max-seconds` is exceeded after a window, the run stops there and the result says so (`capped`):
rows/s is then measured on the windows done. The result is one JSON object written to `--out`.
Only numpy is needed here, so every peer's virtualenv can import this module.
"""

import argparse
import json
import os
import sys
import time
import traceback

# No usage telemetry from the peers (NannyML, Evidently and whylogs phone home by default; this harness
# makes no network calls). Set before any peer library is imported; harness.py sets them too.
for _var in ("NML_DISABLE_USAGE_LOGGING", "DO_NOT_TRACK", "WHYLOGS_NO_ANALYTICS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

NUMERIC = [f"f{i:02d}" for i in range(20)]
CATEGORICAL = ["c0", "c1"]


class Data:
    """The pre-parsed columns: `ref_num`, `cur_num` (rows × 20 float64, column-major), `ref_cat`,
    `cur_cat` (rows × 2 unicode strings)."""

    def __init__(self, directory):
        with np.load(os.path.join(directory, "reference.npz")) as z:
            self.ref_num = np.asfortranarray(z["num"])
            self.ref_cat = z["cat"]
        with np.load(os.path.join(directory, "stream.npz")) as z:
            self.cur_num = np.asfortranarray(z["num"])
            self.cur_cat = z["cat"]
        self.numeric = list(NUMERIC)
        self.categorical = list(CATEGORICAL)

    def frames(self):
        """(reference, stream) as pandas DataFrames: float64 numeric columns, object (str) categorical ones."""
        import pandas as pd

        def frame(num, cat):
            cols = {name: num[:, j] for j, name in enumerate(self.numeric)}
            cols.update({name: cat[:, j].astype(object) for j, name in enumerate(self.categorical)})
            return pd.DataFrame(cols)

        return frame(self.ref_num, self.ref_cat), frame(self.cur_num, self.cur_cat)


def versions(*modules):
    out = {}
    for name in modules:
        try:
            from importlib.metadata import version

            out[name] = version(name)
        except Exception:  # noqa: BLE001 - a version we cannot read is reported as unknown
            out[name] = "unknown"
    return out


def main(peer_cls):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="directory with stream.npz and reference.npz")
    ap.add_argument("--window", type=int, default=10000)
    ap.add_argument("--max-seconds", type=float, default=60.0, help="stop after the window that passes this")
    ap.add_argument("--out", required=True, help="result JSON")
    ap.add_argument("--evaluations", help="JSON lines of per-window statistics (peers that support it)")
    ap.add_argument("--load-only", action="store_true", help="load and prepare the data, then stop (RSS baseline)")
    args = ap.parse_args()

    result = {"tool": peer_cls.name, "ok": False}
    try:
        peer = peer_cls()
        result["versions"] = versions(*peer.packages)
        t_load = time.perf_counter()
        data = Data(args.data)
        state = peer.prepare(data, args)
        result["load_prepare_seconds"] = time.perf_counter() - t_load
        n = data.cur_num.shape[0]
        total_windows = n // args.window
        result.update(
            rows_total=n,
            windows_total=total_windows,
            features_per_row=peer.features_per_row(data),
            note=getattr(peer, "note", ""),
        )
        if args.load_only:
            result.update(ok=True, rows=0, windows=0, seconds=0.0, capped=False, flagged_windows=[])
        else:
            flagged = []
            t0 = time.perf_counter()
            peer.fit(state)
            done = 0
            capped = False
            for i in range(total_windows):
                start, end = i * args.window, (i + 1) * args.window
                if peer.window(state, i, start, end):
                    flagged.append(i)
                done += 1
                if time.perf_counter() - t0 > args.max_seconds and done < total_windows:
                    capped = True
                    break
            seconds = time.perf_counter() - t0
            rows = done * args.window
            result.update(
                ok=True,
                rows=rows,
                windows=done,
                seconds=seconds,
                rows_per_second=rows / seconds if seconds > 0 else None,
                capped=capped,
                flagged_windows=flagged,
            )
            if args.evaluations and hasattr(peer, "evaluations"):
                with open(args.evaluations, "w") as f:
                    for rec in peer.evaluations(state):
                        f.write(json.dumps(rec) + "\n")
    except BaseException as e:  # noqa: BLE001 - every failure is reported, never dropped
        result["ok"] = False
        result["error"] = f"{type(e).__name__}: {e}"
        result["traceback"] = traceback.format_exc()[-4000:]
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    sys.exit(0 if result["ok"] else 1)
