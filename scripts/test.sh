#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, integration tests against real
# `basalt` processes, and the redis-compat differential tests against a real redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all --locked
