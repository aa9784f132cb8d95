#!/usr/bin/env bash
# Idempotent vs plain produce throughput (goal: idempotent / plain ≥ 0.95), with sluice-bench
# as the client: the same produce workload with and without `--idempotent 1`, in
# alternation (the order swapped every round), each run against a fresh release node.
# Prints msg/s of each run with the node's and the client's CPU use, the ratio idempotent /
# plain per round, and at the end the medians and the ratio's min–max.
#
# Why the data dir is on tmpfs (/dev/shm) by default: both runs use acks=all (idempotence
# requires it), so every produce answer waits for the group-commit fdatasync. On this VM's
# virtio disk a flush takes long and varies from run to run, and the throughput of an
# fdatasync-bound run measures the disk, not the node (earlier rdkafka_performance rounds
# ranged 7k–19k msg/s for one workload: bench/RESULTS.md). On tmpfs fdatasync is nearly
# free, so the run measures what idempotence costs the node's CPU (producer-state lookups
# and sequence checks in the append path, the InitProducerId call) rather than flush time.
# DISK=1 puts the data dir on the normal disk (under target/) to see the fsync-bound case.
#
# Placement (2 cores): the node is pinned to core 0 (`taskset -c 0`, `--cores 0`: one
# shard), the producer threads to core 1 (`--cores 1`). Workload (both modes): 1 KiB values
# without key, 6 partitions, 16 KiB batches, linger 5 ms, two producer threads with one
# connection × 5 requests in flight each, acks=all, COUNT messages per run (or DURATION seconds
# after a 1 s warm-up), a fresh topic per run. The node is restarted with an empty data dir
# for every run (so the data of earlier runs neither fills tmpfs nor sits in the node), and
# its CPU is counted over the client's run only (startup excluded).
#
# One connection per producer, as Kafka's clients keep one connection per broker: with one
# connection both modes schedule requests the same way (every partition's oldest ready
# batch in the next request). With several connections per producer the harness's
# idempotent mode keeps each partition on one connection (so its sequences stay in order)
# while plain mode packs any partition into any connection, and the ratio would measure that
# scheduling difference rather than the node (measured: 0.79 with 2 connections vs 0.95
# with 1, on the same node build).
#
# Each run waits for the rest of the machine to be quiet and is repeated if another process
# used the CPU meanwhile (scripts/bench-lib.sh).
#
# Usage: bash scripts/bench-idempotence.sh [ROUNDS] [COUNT] [-- MORE WORKLOAD FLAGS]
# Environment: SLUICE_BIN (node binary) [target/release/sluice]; BENCH (sluice-bench binary)
# [target/release/sluice-bench of this tree]; DISK=1 data dir on disk (target/) instead of
# /dev/shm; DURATION=S run S seconds (after a 1 s warm-up) instead of COUNT messages;
# NODE_CORE [0]; LOAD_CORE [1].
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh

rounds="${1:-6}"
count="${2:-1000000}"
shift $(($# < 2 ? $# : 2))
[ "${1:-}" = "--" ] && shift
node_core="${NODE_CORE:-0}"
load_core="${LOAD_CORE:-1}"
node_bin="${SLUICE_BIN:-target/release/sluice}"
bench="${BENCH:-target/release/sluice-bench}"
need_binaries "$node_bin" "$bench"
if [ "${DISK:-0}" = 1 ]; then
    mkdir -p target
    data_root="$PWD/target/bench-idempotence-$$"
    where="disk ($data_root)"
else
    data_root="/dev/shm/sluice-bench-idempotence-$$"
    where="tmpfs ($data_root)"
fi
if [ -n "${DURATION:-}" ]; then
    stop=(--warmup 1 --duration "$DURATION")
    amount="${DURATION} s after a 1 s warm-up"
else
    stop=(--count "$count")
    amount="$count messages"
fi
flags=(--acks all --size 1024 --partitions 6 --producers 2 --connections 1 --in-flight 5
    --batch-bytes 16384 --linger-ms 5 --cores "$load_core" --quiet 1 "${stop[@]}" "$@")

tmp="$(mktemp -d)"
node=""
stop_node() {
    if [ -n "$node" ]; then kill "$node" 2>/dev/null || true; wait "$node" 2>/dev/null || true; fi
    node=""
    rm -rf "$data_root"
}
trap 'stop_node; rm -rf "$tmp"' EXIT

# CPU seconds (user + system) of a process so far.
cpu_of() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f\n", ($14 + $15) / hz }' "/proc/$1/stat"
}

echo "bench-idempotence: node $node_bin on core $node_core, data on $where; client $bench on core $load_core"
echo "bench-idempotence: produce ${flags[*]}; $amount per run; $rounds rounds, order swapped every round"

# run MODE ROUND: one run against a fresh node; leaves "msg/s node% client% node-ns/msg" in
# $tmp/MODE-ROUND.fig.
run() {
    local mode="$1" r="$2" extra=() n0 n1
    [ "$mode" = idempotent ] && extra=(--idempotent 1)
    stop_node
    mkdir -p "$data_root"
    taskset -c "$node_core" "$node_bin" --listen 127.0.0.1:0 --data-dir "$data_root/data" \
        --cores "$node_core" --admin 127.0.0.1:0 >"$tmp/node.log" 2>&1 &
    node=$!
    for _ in $(seq 100); do grep -q "sluice: ready" "$tmp/node.log" && break; sleep 0.1; done
    grep -q "sluice: ready" "$tmp/node.log" || { cat "$tmp/node.log" >&2; exit 1; }
    local kafka
    kafka="$(grep -o 'kafka=[^ ]*' "$tmp/node.log" | cut -d= -f2)"
    n0="$(cpu_of "$node")"
    /usr/bin/time -f '%U %S %e' -o "$tmp/time" "$bench" produce --bootstrap "$kafka" \
        --topic "idem-$r-$mode-$$" "${extra[@]}" "${flags[@]}" --out "$tmp/$mode-$r" \
        >"$tmp/$mode-$r.txt" 2>&1 || { cat "$tmp/$mode-$r.txt" >&2; exit 1; }
    n1="$(cpu_of "$node")"
    stop_node
    python3 - "$tmp/$mode-$r/result.json" "$tmp/time" "$n0" "$n1" >"$tmp/$mode-$r.fig" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["accounting"]["errors"] == 0 and r["error"] is None, r["error"]
user, system, wall = (float(x) for x in open(sys.argv[2]).read().split()[-3:])
node = float(sys.argv[4]) - float(sys.argv[3])
acked = r["accounting"]["acknowledged"]
print(round(r["produce"]["msgs_per_s"]), f"{100 * node / wall:.0f}", f"{100 * (user + system) / wall:.0f}",
      f"{1e9 * node / max(acked, 1):.0f}")
EOF
}

describe() { # "X msg/s (node N%, client C%, node N ns/msg)"
    read -r rate node client per <"$1"
    echo "$rate msg/s (node $node%, client $client% of a core; node $per ns/msg)"
}

for r in $(seq "$rounds"); do
    if [ $((r % 2)) = 1 ]; then order=(plain idempotent); else order=(idempotent plain); fi
    for mode in "${order[@]}"; do
        sync # earlier writes go back to disk now, not during the run
        measured run "$mode" "$r"
    done
    p="$(cut -d' ' -f1 "$tmp/plain-$r.fig")"
    i="$(cut -d' ' -f1 "$tmp/idempotent-$r.fig")"
    ratio="$(python3 -c "print(f'{$i / $p:.3f}')")"
    echo "round $r/$rounds (${order[0]} first): plain $(describe "$tmp/plain-$r.fig"); idempotent $(describe "$tmp/idempotent-$r.fig"); idempotent / plain $ratio"
    echo "$p $i $ratio $(cut -d' ' -f2,4 "$tmp/plain-$r.fig") $(cut -d' ' -f2,4 "$tmp/idempotent-$r.fig")" >>"$tmp/rounds"
done
python3 - "$tmp/rounds" <<'EOF'
import statistics, sys
rows = [[float(x) for x in line.split()] for line in open(sys.argv[1])]
col = lambda i: sorted(r[i] for r in rows)
med = lambda i: statistics.median(col(i))
print(f"plain:      median {med(0):.0f} msg/s ({col(0)[0]:.0f}–{col(0)[-1]:.0f}), node {med(3):.0f}% of a core, {med(4):.0f} ns/msg")
print(f"idempotent: median {med(1):.0f} msg/s ({col(1)[0]:.0f}–{col(1)[-1]:.0f}), node {med(5):.0f}% of a core, {med(6):.0f} ns/msg")
r = col(2)
print(f"idempotent / plain: median {statistics.median(r):.3f}, min–max {r[0]:.3f}–{r[-1]:.3f} over {len(r)} rounds")
EOF
