#!/usr/bin/env bash
# The whole test suite, as the README gives it and .ci/run calls it.
# Installs what it needs, builds once (release profile, one shared target/),
# then runs every test: unit, integration (fixtures, properties) and doctests.
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

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
cargo build --workspace --release --all-targets
cargo nextest run --workspace --release --no-fail-fast
cargo test --workspace --release --doc
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --release
