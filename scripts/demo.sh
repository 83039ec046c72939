#!/usr/bin/env bash
# The demo: a local Kafka-compatible broker (Tansu) on 127.0.0.1, `driftwatch
# generate` producing drifting traffic into the topic `predictions` (and its
# delayed labels into `labels`), and
# `driftwatch run` on configs/demo.yaml with live progress, drift events on
# stdout and the topic `drift-events`, and Prometheus metrics on
# http://127.0.0.1:9100/metrics. Ctrl-C stops everything it started.
#
#   scripts/demo.sh [--events N] [--rate EVENTS_PER_S] [--port 9092]
set -euo pipefail
cd "$(dirname "$0")/.."

events=3000000
rate=20000
port=9092
while [[ $# -gt 0 ]]; do
    case "$1" in
        --events) events="$2"; shift 2 ;;
        --rate) rate="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        *) echo "usage: scripts/demo.sh [--events N] [--rate EVENTS_PER_S] [--port P]" >&2; exit 2 ;;
    esac
done
brokers="127.0.0.1:${port}"

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install the Rust toolchain (https://rustup.rs) first" >&2
    exit 1
fi
# librdkafka's TLS links the system OpenSSL: its headers (Debian libssl-dev, found through pkg-config).
if ! pkg-config --exists openssl 2>/dev/null; then
    sudo=""
    [[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
    echo "installing libssl-dev pkg-config (Debian packages)"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends libssl-dev pkg-config >/dev/null
fi
# The same build as the test suite (one profile, one target/), so neither rebuilds the other.
cargo build --workspace --release --all-targets
bin=target/release/driftwatch

scripts/broker.sh install
demo_dir=target/demo
mkdir -p "$demo_dir"
export BROKER_DIR="$demo_dir/broker"
generator_pid=""
cleanup() {
    trap - INT TERM EXIT
    [[ -n "$generator_pid" ]] && kill "$generator_pid" 2>/dev/null || true
    scripts/broker.sh stop >/dev/null 2>&1 || true
}
trap cleanup INT TERM EXIT
scripts/broker.sh start --port "$port"
scripts/broker.sh topic create predictions --partitions 4 --port "$port"
scripts/broker.sh topic create labels --partitions 4 --port "$port"
scripts/broker.sh topic create drift-events --partitions 1 --port "$port"
scripts/broker.sh topic create predictions-dead-letter --partitions 1 --port "$port"

# Drift starts after 1/3 of the events and ends after 2/3 (so a `resolved` follows).
"$bin" generate --events "$events" --drift-start $((events / 3)) --drift-end $((2 * events / 3)) \
    --kafka-brokers "$brokers" --kafka-topic predictions --labels-topic labels --label-delay 30 \
    --rate "$rate" >"$demo_dir/generate.log" 2>&1 &
generator_pid=$!
echo "demo: producing $events events at $rate/s to $brokers/predictions (drift from event $((events / 3)) to $((2 * events / 3)))" >&2
echo "demo: metrics on http://127.0.0.1:9100/metrics; Ctrl-C stops everything" >&2

# In the foreground: Ctrl-C reaches driftwatch, which drains, commits and exits; then cleanup runs.
# configs/demo.yaml names the default broker; --port points a copy at the one started above (its
# reference path, relative to configs/, made absolute for the copy).
sed -e "s/127\.0\.0\.1:9092/$brokers/g" -e "s#\.\./tests/fixtures/#$PWD/tests/fixtures/#g" configs/demo.yaml >"$demo_dir/demo.yaml"
"$bin" run --config "$demo_dir/demo.yaml" --progress || true
