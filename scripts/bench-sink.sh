#!/usr/bin/env bash
# Is the harness the bottleneck? The same produce workload, in alternation, against a fresh
# release node and against sluice-bench's in-process discarding sink; prints msg/s of both
# and the ratio sink / node per round, with median and spread.
#
# Placement (2 cores): the node runs on core 0 (process pinned, one shard), the load threads
# on core 1; in the sink run the sink's connection threads take core 0 and the load threads
# core 1 again. The node is stopped (and its data written back) before each sink run.
#
# Usage: bash scripts/bench-sink.sh [ROUNDS] [SECONDS] [-- MORE WORKLOAD FLAGS]
#   default workload: produce 1 KiB, acks=1, 6 partitions, 16 KiB batches, linger 5 ms,
#   2 connections × 5 in flight, 2 s warm-up.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
rounds="${1:-3}"
secs="${2:-10}"
shift $(($# < 2 ? $# : 2))
[ "${1:-}" = "--" ] && shift
node_core="${NODE_CORE:-0}"
load_core="${LOAD_CORE:-1}"
flags=(--topic sink-check --connections 2 --warmup 2 --duration "$secs" --cores "$load_core" --quiet 1 "$@")
bench=target/release/sluice-bench
need_binaries "$bench" target/release/sluice

tmp="$(mktemp -d)"
trap 'node_stop; rm -rf "$tmp"' EXIT
rate() {
    python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["produce"]["msgs_per_s"]))' "$1/result.json"
}

echo "bench-sink: ${flags[*]}; node/sink on core $node_core, load threads on core $load_core"
# Against a fresh node on its core; the node is stopped and its data written back after.
node_run() {
    local r="$1"
    NODE_CORE="$node_core" node_start "$tmp" --admin 127.0.0.1:0
    "$bench" produce --bootstrap "$kafka" "${flags[@]}" --out "$tmp/node-$r" >"$tmp/node-$r.txt" 2>&1 ||
        { cat "$tmp/node-$r.txt" >&2; exit 1; }
    node_stop
}

sink_run() {
    "$bench" sink --sink-cores "$node_core" "${flags[@]}" --out "$tmp/sink-$1" >"$tmp/sink-$1.txt" 2>&1 ||
        { cat "$tmp/sink-$1.txt" >&2; exit 1; }
}

ratios=()
for r in $(seq "$rounds"); do
    sync
    measured node_run "$r"
    sync
    measured sink_run "$r"
    a="$(rate "$tmp/node-$r")"
    b="$(rate "$tmp/sink-$r")"
    ratio="$(python3 -c "print(f'{$b / $a:.2f}')")"
    ratios+=("$ratio")
    echo "round $r/$rounds: node $a msg/s, sink $b msg/s, sink / node $ratio"
done
python3 - "${ratios[@]}" <<'EOF'
import statistics, sys
v = sorted(float(x) for x in sys.argv[1:])
print(f"sink / node: median {statistics.median(v):.2f}, spread {v[0]:.2f}–{v[-1]:.2f} over {len(v)} rounds")
EOF
