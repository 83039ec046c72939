"""whylogs: profile the reference once and each tumbling window (why.log(pandas=...).view()), then
calculate_drift_scores(target_view, reference_view) per window: whylogs' default per-column algorithm
(KS on the KLL sketch for numeric columns, chi-square on frequent items for categorical ones); a column is
flagged when its drift_category is DRIFT."""

from common import main


class Peer:
    name = "whylogs"
    packages = ("whylogs", "pandas", "numpy", "scipy")
    note = "profiles (why.log) + calculate_drift_scores per window; sketch-based KS / chi2"

    def features_per_row(self, data):
        return len(data.numeric) + len(data.categorical)

    def prepare(self, data, args):
        ref, cur = data.frames()
        return {"ref": ref, "cur": cur}

    def fit(self, s):
        import whylogs as why

        s["ref_view"] = why.log(pandas=s["ref"]).view()

    def window(self, s, i, start, end):
        import whylogs as why
        from whylogs.viz.drift.column_drift_algorithms import calculate_drift_scores

        view = why.log(pandas=s["cur"].iloc[start:end]).view()
        scores = calculate_drift_scores(target_view=view, reference_view=s["ref_view"], with_thresholds=True)
        return sum(1 for v in scores.values() if v and v.get("drift_category") == "DRIFT")


if __name__ == "__main__":
    main(Peer)
