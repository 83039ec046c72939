#!/usr/bin/env bash
# Peer comparison: Driftwatch `replay` against a hand-written SciPy/NumPy script, Evidently, NannyML,
# whylogs, Alibi Detect, Frouros and River on the same generated data. See benches/README.md, "Peer comparison".
#
# Usage: benches/compare/run.sh [--events 200000,1000000] [--repeats 3] [--max-seconds 60]
#                               [--peers scipy,evidently,nannyml,whylogs,alibi-detect,frouros,river] [--out DIR]
#
# Creates one private virtualenv per peer (benches/compare/.venv-<peer>, git-ignored; the peers' pins
# conflict: Alibi Detect needs numpy 1.x, Frouros scipy < 1.15) from the pinned requirements/<peer>.txt,
# re-installing when a requirements file changes. A peer that fails to install is reported in the results
# with its pip error. Writes target/compare/results.md and results.json and prints the table.
# Exits nonzero if Driftwatch and the SciPy script disagree beyond the stated tolerances.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
python=${PYTHON:-python3}
out="$root/target/compare"
peers="scipy,evidently,nannyml,whylogs,alibi-detect,frouros,river"
args=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --out=*) out="${1#--out=}"; shift ;;
        --peers) peers="$2"; shift 2 ;;
        --peers=*) peers="${1#--peers=}"; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) shift ;;
    esac
done
mkdir -p "$out"

bin="$root/target/release/driftwatch"
if [ ! -x "$bin" ]; then
    echo "target/release/driftwatch is missing: building it (cargo build --workspace --release --all-targets, the test suite's build)"
    cargo build --workspace --release --all-targets
fi

# The virtualenvs: base (SciPy script, data conversion, harness) plus one per selected peer.
venvs="base"
for p in ${peers//,/ }; do
    case "$p" in scipy) ;; *) venvs="$venvs $p" ;; esac
done
for v in $venvs; do
    dir="$here/.venv-$v"
    req="$here/requirements/$v.txt"
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$want" ]; then
        continue
    fi
    echo "[compare] installing $v into $dir (pinned: requirements/$v.txt; log: $out/install-$v.log)"
    rm -rf "$dir"
    if "$python" -m venv "$dir" > "$out/install-$v.log" 2>&1 \
        && "$dir/bin/pip" install --disable-pip-version-check -q -r "$req" >> "$out/install-$v.log" 2>&1; then
        echo "$want" > "$dir/.installed"
    else
        echo "[compare] installing $v FAILED (reported in the results): $(tail -n 3 "$out/install-$v.log")"
        if [ "$v" = base ]; then
            echo "the base virtualenv (numpy, scipy, pandas, pyarrow) is required" >&2
            exit 1
        fi
    fi
done

exec "$here/.venv-base/bin/python" "$here/harness.py" --bin "$bin" --out "$out" \
    --command "benches/compare/run.sh${args[*]:+ ${args[*]}}" "${args[@]}"
