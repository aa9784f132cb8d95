#!/usr/bin/env bash
# Runs the request fuzz target for SECONDS (default 300). Needs cargo-fuzz
# (`cargo install cargo-fuzz`); on a stable toolchain RUSTC_BOOTSTRAP=1 enables the
# sanitizer flags cargo-fuzz passes. Seeds: valid requests from the e2e corpus, if any.
set -euo pipefail
cd "$(dirname "$0")/../node"
SECONDS_TO_RUN=${1:-300}
mkdir -p fuzz/corpus/request
RUSTC_BOOTSTRAP=1 cargo fuzz run request --fuzz-dir fuzz -- -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=2048 -max_len=65536
