#!/usr/bin/env bash
# Memory soak of `driftwatch run`: `driftwatch generate` produces at RATE events/s
# (event time = wall time) into a 4-partition topic of the local broker for
# MINUTES, while the engine runs configs/demo.yaml; the engine's resident
# memory (VmRSS) and sketch bytes are sampled every 30 s. Steady memory = the
# samples after warm-up stay within a few MiB.
# Usage: benches/soak.sh [minutes] [rate]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
rate=${2:-50000}
bin=target/release/driftwatch
[[ -x "$bin" ]] || cargo build --workspace --release --all-targets
scripts/broker.sh install >/dev/null
export BROKER_DIR="$PWD/target/soak-broker"
port=39092
brokers="127.0.0.1:$port"
dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    scripts/broker.sh stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
scripts/broker.sh stop >/dev/null 2>&1 || true
scripts/broker.sh start --port "$port" >/dev/null
scripts/broker.sh topic create soak --partitions 4 --port "$port" >/dev/null
sed -e "s/^  brokers: .*/  brokers: $brokers/" -e "s/^  topics: .*/  topics: [soak]/" -e "s/^  group_id: .*/  group_id: soak/" \
    -e '/type: kafka, brokers/d' -e '/dead_letter_topic/d' configs/demo.yaml >"$dir/config.yaml"
metrics_port=$((port + 1))
"$bin" run --config "$dir/config.yaml" --listen "127.0.0.1:$metrics_port" >/dev/null 2>"$dir/engine.log" &
engine=$!
pids+=("$engine")
events=$((minutes * 60 * rate + rate * 30))
# Drift comes and goes every 2 minutes of traffic, so windows, episodes and events keep churning.
"$bin" generate --events "$events" --drift-start $((rate * 120)) --drift-end $((rate * 240)) --kafka-brokers "$brokers" \
    --kafka-topic soak --rate "$rate" --events-per-second "$rate" --start-time "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >/dev/null 2>&1 &
pids+=("$!")
echo "minute,rss_mib,sketch_bytes,events_total,drift_events_total"
for ((i = 1; i <= minutes * 2; i++)); do
    sleep 30
    rss=$(awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$engine/status")
    scrape=$(curl -s "http://127.0.0.1:$metrics_port/metrics")
    sketch=$(awk '$1 ~ /^driftwatch_window_sketch_bytes/ { print $2 }' <<<"$scrape")
    total=$(awk '$1 == "driftwatch_source_events_total" { print $2 }' <<<"$scrape")
    drift=$(awk '$1 ~ /^driftwatch_drift_events_total/ { s += $2 } END { print s + 0 }' <<<"$scrape")
    echo "$(awk "BEGIN { print $i / 2 }"),$rss,$sketch,$total,$drift"
done
