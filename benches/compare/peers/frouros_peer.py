"""Frouros: one KSTest and one PSI (10 bins) detector per numeric column and one ChiSquareTest per
categorical column, each fitted on the reference column, `compare` per tumbling window. Flagged: KS p < 0.01
or PSI >= 0.2; chi-square p < 0.01."""

from common import main


class Peer:
    name = "Frouros"
    packages = ("frouros", "numpy", "scipy")
    note = "KSTest + PSI(10 bins) per numeric column, ChiSquareTest per categorical column"

    def features_per_row(self, data):
        return len(data.numeric) + len(data.categorical)

    def prepare(self, data, args):
        return {"d": data}

    def fit(self, s):
        from frouros.detectors.data_drift import PSI, ChiSquareTest, KSTest

        d = s["d"]
        s["num"] = []
        for j in range(d.ref_num.shape[1]):
            ks, psi = KSTest(), PSI(num_bins=10)
            ks.fit(X=d.ref_num[:, j])
            psi.fit(X=d.ref_num[:, j])
            s["num"].append((ks, psi))
        s["cat"] = []
        for j in range(d.ref_cat.shape[1]):
            chi = ChiSquareTest()
            chi.fit(X=d.ref_cat[:, j])
            s["cat"].append(chi)

    def window(self, s, i, start, end):
        d = s["d"]
        flagged = 0
        for j, (ks, psi) in enumerate(s["num"]):
            x = d.cur_num[start:end, j]
            k = ks.compare(X=x)[0]
            p = psi.compare(X=x)[0]
            flagged += (k.p_value < 0.01) or (p.distance >= 0.2)
        for j, chi in enumerate(s["cat"]):
            c = chi.compare(X=d.cur_cat[start:end, j])[0]
            flagged += c.p_value < 0.01
        return flagged


if __name__ == "__main__":
    main(Peer)
