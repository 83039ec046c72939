#!/usr/bin/env bash
# End-to-end throughput of `driftwatch run` from the local broker: N generated
# events (20 numeric + 2 categorical features) are produced to a topic with P
# partitions first, then the engine consumes them in a fresh consumer group;
# the figure is events / (time from the group's first assignment to the last
# event applied). Prints events/s, peak RSS and the window-close → evaluation
# latency from /metrics. The broker shares the CPU with the engine.
# Usage: benches/live.sh [events] [partitions] [shards]
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1000000}
partitions=${2:-4}
shards=${3:-2}
bin=target/release/driftwatch
[[ -x "$bin" ]] || cargo build --workspace --release --all-targets
scripts/broker.sh install >/dev/null
export BROKER_DIR="$PWD/target/bench-broker"
port=29092
brokers="127.0.0.1:$port"
dir=$(mktemp -d)
engine_pid=""
cleanup() {
    [[ -n "$engine_pid" ]] && kill "$engine_pid" 2>/dev/null || true
    scripts/broker.sh stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
scripts/broker.sh stop >/dev/null 2>&1 || true
scripts/broker.sh start --port "$port" >/dev/null
topic="bench-$partitions-$$"
scripts/broker.sh topic create "$topic" --partitions "$partitions" --port "$port" >/dev/null
"$bin" generate --events "$events" --drift-start $((events / 2)) --events-per-second 100000 \
    --kafka-brokers "$brokers" --kafka-topic "$topic" 2>/dev/null
sed -e "s/^  brokers: .*/  brokers: $brokers/" -e "s/^  topics: .*/  topics: [$topic]/" -e "s/^  group_id: .*/  group_id: bench-$$/" \
    -e '/type: kafka, brokers/d' -e '/dead_letter_topic/d' "${CONFIG:-configs/demo.yaml}" >"$dir/config.yaml"
metrics_port=$((port + 1))
"$bin" run --config "$dir/config.yaml" --shards "$shards" --listen "127.0.0.1:$metrics_port" \
    >/dev/null 2>"$dir/engine.log" &
engine_pid=$!
scrape() { curl -s "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null || true; }
value() { scrape | awk -v n="$1" '$1 == n { print $2 }'; }
# Wait for the first assignment, then time until every event is read.
until [[ "$(scrape | grep -c '^driftwatch_source_partition_assigned{')" -gt 0 ]]; do sleep 0.05; done
start=$(date +%s.%N)
until [[ "$(value driftwatch_source_events_total)" == "$events" ]]; do sleep 0.05; done
end=$(date +%s.%N)
final=$(scrape)
kill -TERM "$engine_pid"
wait "$engine_pid" || true
engine_pid=""
python3 - "$events" "$start" "$end" "$dir/engine.log" "$partitions" "$shards" <<PY
import json, sys
events, start, end, log, partitions, shards = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
text = open(log).read()
summary = json.loads(text[text.rfind("\n{") + 1:])
rss_kb = (summary.get("peak_rss_bytes") or 0) / 1024
scrape = """$final"""
def family(name):
    return {l.split()[0]: float(l.split()[1]) for l in scrape.splitlines() if l.startswith(name)}
ev = family("driftwatch_window_evaluation_seconds")
count, total = ev.get("driftwatch_window_evaluation_seconds_count", 0), ev.get("driftwatch_window_evaluation_seconds_sum", 0)
buckets = sorted((float(k.split('le="')[1].rstrip('"}')), v) for k, v in ev.items() if "_bucket" in k)
p99 = next((le for le, c in buckets if c >= 0.99 * count), float("nan")) if count else float("nan")
print(f"partitions={partitions} shards={shards} events={events} seconds={end - start:.2f} events/s={events / (end - start):,.0f} "
      f"peak_rss={rss_kb / 1024:.0f} MiB windows={count:.0f} eval_mean={1000 * total / max(count, 1):.2f} ms eval_p99<={1000 * p99:.1f} ms")
PY
