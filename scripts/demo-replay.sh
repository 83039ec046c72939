#!/usr/bin/env bash
# Interim demo until the live pipeline lands: generate 300 000 events whose
# first half of numeric features (and c0) drift between events 150 000 and
# 250 000, replay them through the engine on configs/example.yaml, and print
# the drift and resolved events.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p driftwatch-engine --bin driftwatch
bin=target/release/driftwatch
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$bin" generate --events 300000 --drift-start 150000 --drift-end 250000 -o "$dir/events.jsonl"
"$bin" replay --config configs/example.yaml --input "$dir/events.jsonl" \
    --output-events "$dir/drift.jsonl" --output-evaluations "$dir/evaluations.jsonl" --report "$dir/report.json" 2>/dev/null
echo "drift events (type feature metric value window-end):"
python3 - "$dir/drift.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    print(f"  {e['type']:<8} {e['feature']:<6} {e['metric']:<15} {e['value']:.3f}  end={e['window']['end_index']}  id={e['event_id']}")
PY
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f\"{r['events_read']} events, {r['evaluations']} evaluations, {r['drift_events']} drift / {r['resolved_events']} resolved events, {r['events_per_second']:,.0f} events/s\")" "$dir/report.json"
