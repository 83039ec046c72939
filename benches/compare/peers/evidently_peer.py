"""Evidently: a Report with DataDriftPreset per tumbling window against the reference (documented API:
Report([DataDriftPreset()]).run(current, reference) on Datasets with a DataDefinition). Evidently picks
each column's test itself (for these sizes: normed Wasserstein distance for numeric columns, Jensen-Shannon
for categorical ones); a window's flagged columns are its DriftedColumnsCount. Report.run also renders the report's plotly widgets
(about 40 % of its time in a cProfile of one window); that is part of the documented call."""

from common import main


class Peer:
    name = "Evidently"
    packages = ("evidently", "pandas", "numpy", "scipy")
    note = ("Report([DataDriftPreset()]) per window, default per-column tests; run() also builds the report's "
            "plotly widgets (~40 % of its time in a profile; the API has no switch to skip them)")

    def features_per_row(self, data):
        return len(data.numeric) + len(data.categorical)

    def prepare(self, data, args):
        from evidently import DataDefinition

        ref, cur = data.frames()
        dd = DataDefinition(numerical_columns=data.numeric, categorical_columns=data.categorical)
        return {"ref": ref, "cur": cur, "dd": dd}

    def fit(self, s):
        from evidently import Dataset

        s["ref_ds"] = Dataset.from_pandas(s["ref"], data_definition=s["dd"])

    def window(self, s, i, start, end):
        from evidently import Dataset, Report
        from evidently.presets import DataDriftPreset

        cur = Dataset.from_pandas(s["cur"].iloc[start:end], data_definition=s["dd"])
        snapshot = Report([DataDriftPreset()]).run(cur, s["ref_ds"])
        for m in snapshot.dict()["metrics"]:
            if m["metric_name"].startswith("DriftedColumnsCount"):
                return int(m["value"]["count"])
        raise RuntimeError("no DriftedColumnsCount in the report")


if __name__ == "__main__":
    main(Peer)
