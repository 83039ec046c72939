#!/usr/bin/env bash
# The whole test suite, as the README gives it and .ci/run calls it.
# Checks formatting (rustfmt) and lints (clippy, warnings denied), installs
# what it needs (cargo-nextest, OpenSSL's headers, promtool, the Tansu broker), builds
# once (release profile, one shared target/), starts a local Kafka-compatible
# broker on 127.0.0.1, then runs every test: unit, integration (fixtures,
# properties, engine, live end-to-end on the broker) and doctests.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install the Rust toolchain (https://rustup.rs) first" >&2
    exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "installing cargo-nextest from crates.io"
    cargo install cargo-nextest --locked
fi
# Debian packages: librdkafka's TLS links the system OpenSSL (libssl-dev, found
# through pkg-config), the TLS test makes its certificates with the openssl
# command, and promtool checks a live /metrics scrape (package prometheus).
packages=()
pkg-config --exists openssl 2>/dev/null || packages+=(libssl-dev pkg-config)
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
command -v promtool >/dev/null 2>&1 || packages+=(prometheus)
if ((${#packages[@]})); then
    sudo=""
    [[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
    echo "installing ${packages[*]} (Debian packages)"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
export DRIFTWATCH_REQUIRE_PROMTOOL=1

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Formatting and lints first: they fail in seconds. Clippy uses the release
# profile and target/ of the build below (it checks the dependencies once, in
# check mode; the build reuses nothing of that, but nothing is built twice).
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --all --check
cargo clippy --workspace --release --all-targets -- -D warnings
cargo build --workspace --release --all-targets

# The broker for the end-to-end tests: its own port and state folder, stopped on exit.
scripts/broker.sh install
export BROKER_DIR="$PWD/target/test-broker"
port="${DRIFTWATCH_TEST_BROKER_PORT:-19092}"
trap 'scripts/broker.sh stop >/dev/null 2>&1 || true' EXIT
scripts/broker.sh stop >/dev/null 2>&1 || true
scripts/broker.sh start --port "$port"
export DRIFTWATCH_TEST_BROKERS="127.0.0.1:${port}"

cargo nextest run --workspace --release --no-fail-fast
# The deployment, checked by the real tools (each script installs its own and
# fails loudly when an install fails): the Helm chart, its values schema, the
# rendered objects against the Kubernetes, Prometheus Operator, Argo Workflows
# and our Argo Events schemas, the Sensor against real drift events, the
# image's root filesystem; then the alert rules (promtool), the Alertmanager
# example (amtool), the dashboard (Grafana's schema, tsc) and a live
# Prometheus + Alertmanager scraping an engine fed through the broker.
scripts/check-chart.sh
scripts/check-observability.sh
cargo test --workspace --release --doc
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --release
