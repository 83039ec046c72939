"""Alibi Detect: KSDrift on the 20 numeric columns and ChiSquareDrift on the 2 categorical ones (integer
codes, categories from the reference), both fitted on the reference, `predict` per tumbling window.
p_val 0.01; flagged = features with p < 0.01 (predict(drift_type="feature"): per-feature decisions, which
the detectors' default Bonferroni correction does not touch). The categorical strings are mapped to integer codes before timing (Alibi's
ChiSquareDrift takes numeric codes)."""

import numpy as np

from common import main


class Peer:
    name = "Alibi Detect"
    packages = ("alibi-detect", "numpy", "scipy")
    note = "KSDrift (20 numeric) + ChiSquareDrift (2 categorical, int codes), predict per window"

    def features_per_row(self, data):
        return len(data.numeric) + len(data.categorical)

    def prepare(self, data, args):
        cats = [np.unique(np.concatenate([data.ref_cat[:, j], data.cur_cat[:, j]])) for j in range(data.ref_cat.shape[1])]
        codes = lambda a: np.stack([np.searchsorted(c, a[:, j]) for j, c in enumerate(cats)], axis=1).astype(np.int64)
        return {"ref_num": np.ascontiguousarray(data.ref_num), "cur_num": np.ascontiguousarray(data.cur_num),
                "ref_cat": codes(data.ref_cat), "cur_cat": codes(data.cur_cat)}

    def fit(self, s):
        from alibi_detect.cd import ChiSquareDrift, KSDrift

        s["ks"] = KSDrift(s["ref_num"], p_val=0.01)
        s["chi2"] = ChiSquareDrift(s["ref_cat"], p_val=0.01)

    def window(self, s, i, start, end):
        a = s["ks"].predict(s["cur_num"][start:end], drift_type="feature")
        b = s["chi2"].predict(s["cur_cat"][start:end], drift_type="feature")
        return int(np.sum(a["data"]["is_drift"])) + int(np.sum(b["data"]["is_drift"]))


if __name__ == "__main__":
    main(Peer)
