"""River: the streaming peer. One ADWIN (default parameters) per numeric column, updated with every event
in stream order; a window is flagged when any ADWIN signals drift inside it. ADWIN needs no reference and
does not handle categorical columns, so 20 of the 22 values per event are processed. Rows are turned into
Python floats 10 000 at a time inside the timed loop (ndarray.tolist, a few ms per window)."""

from common import main


class Peer:
    name = "River (ADWIN)"
    packages = ("river", "numpy")
    note = "ADWIN per numeric feature, per event; no reference, categorical columns not monitored"

    def features_per_row(self, data):
        return len(data.numeric)

    def prepare(self, data, args):
        return {"cur": data.cur_num}

    def fit(self, s):
        from river import drift

        s["adwins"] = [drift.ADWIN() for _ in range(s["cur"].shape[1])]

    def window(self, s, i, start, end):
        adwins = s["adwins"]
        flagged = set()
        for row in s["cur"][start:end].tolist():
            for j, x in enumerate(row):
                a = adwins[j]
                a.update(x)
                if a.drift_detected:
                    flagged.add(j)
        return len(flagged)


if __name__ == "__main__":
    main(Peer)
