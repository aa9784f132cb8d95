#!/usr/bin/env bash
# Runs the four seed presets of sluice-bench against a fresh release node, the layout,
# then one produce run against the node and (node stopped) the same against the harness's
# in-process sink on the node's core (a single pair: scripts/bench-sink.sh alternates
# several). The node gets core 0, the load threads core 1 (on a 2-core machine).
#
# Usage: bash scripts/bench-presets.sh [SECONDS_PER_PRESET] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
out="${2:-bench/out/presets-$(date -u +%Y%m%dT%H%M%SZ)}"
cargo build --release -p sluice-node -p sluice-bench
data="$(mktemp -d)"
log="$data/node.log"
taskset -c 0 target/release/sluice --listen 127.0.0.1:0 --data-dir "$data/data" --cores 0 --admin 127.0.0.1:0 >"$log" 2>&1 &
node=$!
trap 'kill $node 2>/dev/null || true; wait $node 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 100); do grep -q "sluice: ready" "$log" && break; sleep 0.1; done
kafka="$(grep -o 'kafka=[^ ]*' "$log" | cut -d= -f2)"
admin="$(grep -o 'admin=[^ ]*' "$log" | cut -d= -f2)"
bench=target/release/sluice-bench
for preset in 1p-1part-1c 1p-npart-1c 1p-npart-group np-npart-group; do
    echo "=== preset $preset"
    "$bench" preset "$preset" --bootstrap "$kafka" --duration "$secs" --warmup 2 --cores 1 --out "$out/$preset"
done
echo "=== layout"
"$bench" layout --admin "$admin"
echo "=== produce path against the discarding sink (same workload as produce against the node)"
"$bench" produce --bootstrap "$kafka" --topic sink-check --duration "$secs" --cores 1 --quiet 1 --out "$out/node-produce"
kill $node
wait $node 2>/dev/null || true
"$bench" sink --sink-cores 0 --topic sink-check --duration "$secs" --cores 1 --quiet 1 --out "$out/sink-produce"
