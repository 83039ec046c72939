"""NannyML: UnivariateDriftCalculator fitted on the reference with chunk_size = the window, then
`calculate` on the stream in blocks of 10 windows (NannyML's chunker splits each block into 10 chunks of
10 000 rows: its designed batch pattern, and it keeps the run cap-able). Methods: Kolmogorov-Smirnov and
Jensen-Shannon for continuous columns, chi-square and Jensen-Shannon for categorical ones; a column is
flagged in a chunk when any of its methods raises NannyML's alert (thresholds from the reference chunks)."""

from common import main

BLOCK = 10  # windows per calculate() call


class Peer:
    name = "NannyML"
    packages = ("nannyml", "pandas", "numpy", "scipy")
    note = "UnivariateDriftCalculator (KS + JS numeric, chi2 + JS categorical), chunk_size 10 000"

    def features_per_row(self, data):
        return len(data.numeric) + len(data.categorical)

    def prepare(self, data, args):
        ref, cur = data.frames()
        return {"ref": ref, "cur": cur, "cols": data.numeric + data.categorical, "window": args.window,
                "categorical": data.categorical, "flags": {}}

    def fit(self, s):
        import nannyml as nml

        s["calc"] = nml.UnivariateDriftCalculator(
            column_names=s["cols"],
            treat_as_categorical=s["categorical"],
            continuous_methods=["kolmogorov_smirnov", "jensen_shannon"],
            categorical_methods=["chi2", "jensen_shannon"],
            chunk_size=s["window"],
        ).fit(s["ref"])

    def window(self, s, i, start, end):
        if i not in s["flags"]:
            w = s["window"]
            n_windows = min(BLOCK, len(s["cur"]) // w - i)
            res = s["calc"].calculate(s["cur"].iloc[start:start + n_windows * w])
            df = res.filter(period="analysis").to_df()
            if len(df) != n_windows:
                raise RuntimeError(f"expected {n_windows} chunks, got {len(df)}")
            per_col = [[c for c in df.columns if c[0] == col and c[-1] == "alert"] for col in s["cols"]]
            for k in range(n_windows):
                row = df.iloc[k]
                s["flags"][i + k] = sum(bool(row[cols].to_numpy().any()) for cols in per_col)
        return s["flags"][i]


if __name__ == "__main__":
    main(Peer)
