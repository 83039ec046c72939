"""The hand-written SciPy/NumPy drift script most teams write: per tumbling window and feature,
scipy.stats.ks_2samp and a quantile-bin PSI on numeric features, scipy.stats.chi2_contingency and the
Jensen-Shannon distance on categorical ones.

Definitions are Driftwatch's (README "Numeric features" / "Categorical features"), so the per-window
values double as the reference for the harness's same-answers check:
- KS: ks_2samp(reference, window), default method='auto' (exact when both sizes <= 10 000, else asymptotic);
- PSI: interior edges unique(numpy.quantile(reference, linspace(0, 1, bins + 1)[1:-1])) (numpy 'linear'),
  bin i holds edges[i-1] < x <= edges[i], outer bins open; shares of exactly 0 replaced by 1e-4;
  PSI = sum((q - p) * ln(q / p)) with p the reference and q the window shares;
- chi-square: chi2_contingency(correction=False) on the 2 x K table over the categories seen in either sample;
- Jensen-Shannon: scipy.spatial.distance.jensenshannon(p, q, base=2) over the same categories.
"""

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from common import main

BINS = 10
PSI_EPSILON = 1e-4
KS_P = 0.01
PSI_T = 0.2
CHI2_P = 0.01
JS_T = 0.1


def psi_from_counts(ref_counts, cur_counts):
    p = ref_counts / ref_counts.sum()
    q = cur_counts / cur_counts.sum()
    p = np.where(ref_counts == 0, PSI_EPSILON, p)
    q = np.where(cur_counts == 0, PSI_EPSILON, q)
    return float(np.sum((q - p) * np.log(q / p)))


class Peer:
    name = "SciPy/NumPy script"
    packages = ("numpy", "scipy")
    note = "ks_2samp + quantile-bin PSI per numeric feature, chi2_contingency + JS per categorical feature"

    def features_per_row(self, data):
        return len(data.numeric) + len(data.categorical)

    def prepare(self, data, args):
        return {"data": data, "records": [], "keep": bool(args.evaluations)}

    def fit(self, s):
        d = s["data"]
        s["edges"], s["ref_counts"] = [], []
        for j in range(len(d.numeric)):
            ref = d.ref_num[:, j]
            edges = np.unique(np.quantile(ref, np.linspace(0, 1, BINS + 1)[1:-1]))
            s["edges"].append(edges)
            s["ref_counts"].append(np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1))
        s["ref_cats"] = [np.unique(d.ref_cat[:, j], return_counts=True) for j in range(len(d.categorical))]

    def window(self, s, i, start, end):
        d = s["data"]
        keep, out = s["keep"], s["records"]
        flagged = 0
        for j, name in enumerate(d.numeric):
            ref = d.ref_num[:, j]
            cur = d.cur_num[start:end, j]
            ks = stats.ks_2samp(ref, cur)
            method = "exact" if max(len(ref), len(cur)) <= 10000 else "asymptotic"
            edges = s["edges"][j]
            cur_counts = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=len(edges) + 1)
            psi = psi_from_counts(s["ref_counts"][j], cur_counts)
            flagged += (ks.pvalue < KS_P) or (psi >= PSI_T)
            if keep:
                out.append({"window": i, "feature": name, "metric": "ks", "value": float(ks.statistic),
                            "p_value": float(ks.pvalue), "method": method})
                out.append({"window": i, "feature": name, "metric": "psi", "value": psi, "p_value": None})
        for j, name in enumerate(d.categorical):
            ref_names, ref_counts = s["ref_cats"][j]
            cur_names, cur_counts = np.unique(d.cur_cat[start:end, j], return_counts=True)
            names = np.union1d(ref_names, cur_names)
            table = np.zeros((2, len(names)), dtype=np.int64)
            table[0, np.searchsorted(names, ref_names)] = ref_counts
            table[1, np.searchsorted(names, cur_names)] = cur_counts
            table = table[:, table.sum(axis=0) > 0]
            chi2 = stats.chi2_contingency(table, correction=False)
            js = float(jensenshannon(table[0], table[1], base=2))
            flagged += (chi2.pvalue < CHI2_P) or (js >= JS_T)
            if keep:
                out.append({"window": i, "feature": name, "metric": "chi2", "value": float(chi2.statistic),
                            "p_value": float(chi2.pvalue), "dof": int(chi2.dof), "method": "asymptotic"})
                out.append({"window": i, "feature": name, "metric": "jensen_shannon", "value": js, "p_value": None})
        return flagged

    def evaluations(self, s):
        return s["records"]


if __name__ == "__main__":
    main(Peer)
