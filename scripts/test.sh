#!/usr/bin/env bash
# The whole test suite. Idempotent: installs what it needs, then runs every test once.
# README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Knobs: SLUICE_CRASH_ROUNDS raises the SIGKILL rounds of the crash test (default 50).
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}

# kcat, and a .venv with confluent-kafka + kafka-python for node/tests/e2e_clients.rs.
bash scripts/test-deps.sh

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "cargo-nextest not found: installing it (one time)" >&2
  cargo install cargo-nextest --locked
fi

# Free disk where the build and the tests' temp dirs go (the suite needs about 4 GiB).
df -h . "${TMPDIR:-/tmp}" | sed 's/^/test: /'

# One build of every test binary, then run them all; nextest prints the summary line.
cargo nextest run --workspace --no-fail-fast --failure-output final
