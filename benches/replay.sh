#!/usr/bin/env bash
# Replay throughput: 1 000 000 generated events (20 numeric + 2 categorical
# features, drift in the second half) through `driftwatch replay` with
# configs/throughput.yaml, once per shard count. Prints events/s and peak RSS.
# Usage: benches/replay.sh [events] [shard counts...]
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1000000}; shift || true
shards=("${@:-1 2}")
config=${CONFIG:-configs/throughput.yaml}
bin=target/release/driftwatch
# The same build as the test suite (one profile, one feature set), only if missing.
[[ -x "$bin" ]] || cargo build --workspace --release --all-targets
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$bin" generate --events "$events" --drift-start $((events / 2)) -o "$dir/events.jsonl"
echo "input: $events events, $(du -h "$dir/events.jsonl" | cut -f1), $(nproc) cores"
for s in ${shards[@]}; do
    for run in 1 2 3; do
        "$bin" replay --config "$config" --input "$dir/events.jsonl" --shards "$s" \
            --output-events "$dir/events-out.jsonl" --report "$dir/report.json" 2>/dev/null
        python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f\"shards={r['shards']} run=$run events/s={r['events_per_second']:,.0f} elapsed={r['elapsed_seconds']:.2f}s peak_rss={r['peak_rss_bytes']/2**20:.0f} MiB windows={r['models']['fraud']['windows']} drift_events={r['drift_events']}\")" "$dir/report.json"
    done
done
