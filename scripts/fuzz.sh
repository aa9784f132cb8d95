#!/usr/bin/env bash
# Runs the request fuzz target (node/fuzz/fuzz_targets/request.rs) for SECONDS (default 300)
# and prints libFuzzer's executions, coverage and corpus size at the end.
#
#   bash scripts/fuzz.sh [SECONDS] [extra libFuzzer flags, e.g. -jobs=2]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a nightly toolchain (installed
# with rustup if missing: sanitizer flags). Seeds: node/fuzz/seeds/request/ (frames real
# clients sent, `scripts/fuzz-corpus.sh`), read-only; what the fuzzer finds goes to
# node/fuzz/corpus/request/, crashes to node/fuzz/artifacts/request/ (both git-ignored).
# Takes /tmp/sluice-machine.lock for the whole run (build and fuzzing): a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../node"
SECONDS_TO_RUN=${1:-300}
shift || true
command -v cargo-fuzz >/dev/null || { echo "fuzz.sh: cargo-fuzz missing: cargo install cargo-fuzz --locked" >&2; exit 2; }
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
mkdir -p fuzz/corpus/request
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
set +e
flock /tmp/sluice-machine.lock cargo +nightly fuzz run request --fuzz-dir fuzz fuzz/corpus/request fuzz/seeds/request -- \
  -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 "$@" 2>&1 |
  tee "$LOG" | grep --line-buffered -E '^#[0-9]+[[:space:]]+(INITED|pulse|DONE)|ERROR|panicked|^SUMMARY|^error'
status=${PIPESTATUS[0]}
set -e
echo "---"
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$LOG" || true
grep -E '^#[0-9]+[[:space:]]+DONE' "$LOG" | tail -1 | sed 's/^/final: /' || true
echo "corpus: $(ls fuzz/corpus/request | wc -l) files found by the fuzzer, $(ls fuzz/seeds/request | wc -l) seeds"
exit "$status"
