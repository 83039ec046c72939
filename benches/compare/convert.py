"""Pre-parse the generated data into columns for the Python peers (not timed as anyone's detection work).

    convert.py EVENTS.jsonl REF.csv OUTDIR

Writes OUTDIR/stream.npz and OUTDIR/reference.npz, each with `num` (rows x 20 float64, f00..f19) and
`cat` (rows x 2 unicode, c0, c1). Numbers are parsed by Arrow (correctly rounded, like Driftwatch's own
parsers); a sample is cross-checked against Python's json/float parsing so both sides see identical values.
"""

import json
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
from common import CATEGORICAL, NUMERIC  # noqa: E402


def columns(table):
    num = np.empty((table.num_rows, len(NUMERIC)), dtype=np.float64, order="F")
    for j, name in enumerate(NUMERIC):
        num[:, j] = table.column(name).to_numpy()
    cat = np.stack([np.asarray(table.column(name).to_pylist(), dtype="U") for name in CATEGORICAL], axis=1)
    return num, cat


def main():
    events, ref_csv, out = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    block = 64 << 20
    table = pajson.read_json(events, read_options=pajson.ReadOptions(block_size=block))
    feats = table.column("features").combine_chunks()
    flat = pa.Table.from_arrays([feats.field(n) for n in NUMERIC + CATEGORICAL], names=NUMERIC + CATEGORICAL)
    num, cat = columns(flat)
    ref = pacsv.read_csv(ref_csv, convert_options=pacsv.ConvertOptions(
        column_types={**{n: pa.float64() for n in NUMERIC}, **{n: pa.string() for n in CATEGORICAL}}))
    rnum, rcat = columns(ref)

    # Cross-check a sample against Python's own (correctly rounded) parsing.
    with open(events) as f:
        for i, line in enumerate(f):
            if i >= 2000:
                break
            feat = json.loads(line)["features"]
            assert all(feat[n] == num[i, j] for j, n in enumerate(NUMERIC)), f"event {i}: parse mismatch"
            assert all(feat[n] == cat[i, j] for j, n in enumerate(CATEGORICAL)), f"event {i}: parse mismatch"
    with open(ref_csv) as f:
        header = f.readline().rstrip("\n").split(",")
        for i, line in enumerate(f):
            if i >= 2000:
                break
            row = dict(zip(header, line.rstrip("\n").split(",")))
            assert all(float(row[n]) == rnum[i, j] for j, n in enumerate(NUMERIC)), f"ref row {i}: parse mismatch"
    assert not np.isnan(num).any() and not np.isnan(rnum).any(), "unexpected missing values"

    np.savez(os.path.join(out, "stream.npz"), num=num, cat=cat)
    np.savez(os.path.join(out, "reference.npz"), num=rnum, cat=rcat)
    print(f"converted {num.shape[0]} events, {rnum.shape[0]} reference rows into {out}")


if __name__ == "__main__":
    main()
