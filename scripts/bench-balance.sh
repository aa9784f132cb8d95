#!/usr/bin/env bash
# A skewed load on two shards, before and after `rebalance_cores` (issue #12, Show 2).
#
# Per round: a fresh release node on cores 0-1 (--cores 0-1), a topic "hot" with one
# partition and a topic "cold" with COLD [5] partitions; the hot partition and some cold ones
# (SKEW [2] of them) are placed on shard 0, the other cold ones on shard 1 (`sluice layout move`). Two
# sluice-bench producers run at once, closed loop, for the whole round: one into hot, one into
# cold (1 KiB, acks=1, 16 KiB batches, 2 connections each). After a 3 s warm-up /layout is
# sampled every second for SECS seconds ("before": each shard's busy fraction, and the bytes/s
# produced into both topics as the node counts them); then `sluice layout rebalance` runs
# under that load (it samples for 5 s itself); 2 s later the same sampling again ("after"), the
# producers still running. Printed per round: the mean
# busy fractions and imbalance ((busiest - idlest) / busiest) in each window, the moves, and
# the produce throughput in each window with after / before.
#
# The machine has two cores and both run shards, so the load generators share them with the
# node (unpinned): their CPU is part of what each shard's core does besides its shard, and
# where the kernel puts a connection (SO_REUSEPORT) decides which shard parses its requests —
# work that does not move with a partition. Read the figures with that in mind.
#
# A round writes ~10 GB into the 4 GiB memory cgroup, so its second window runs with more
# reclaim than its first: REBALANCE=0 runs the same rounds without the rebalance, as the
# control for the throughput ratio.
#
# Usage: bash scripts/bench-balance.sh [ROUNDS] [SECS]   (OUT [bench/out/balance-<UTC time>],
#        SKEW, COLD, REBALANCE [1], CONNECTIONS [2] per producer: more connections spread the
#        connection work more evenly over the shards, so that the partitions make the skew)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh

rounds="${1:-3}"
secs="${2:-10}"
cold="${COLD:-5}"
out="${OUT:-bench/out/balance-$(date -u +%Y%m%dT%H%M%SZ)}"
bench=target/release/sluice-bench
sluice=target/release/sluice
need_binaries "$sluice" "$bench"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
trap node_stop EXIT
memcg_enter "${MEMCG_MIB:-4096}"

# sample ADMIN SECS FILE: /layout once a second; per sample a line: the busy fraction of each
# shard, then the bytes/s produced into the topics hot and cold together.
layout_py='import json, sys
d = json.load(sys.stdin)
busy = [c["busy_ratio"] for c in sorted(d["cores"], key=lambda c: c["shard"])]
produced = sum(p["produce_bytes_per_s"] for p in d["partitions"] if p["topic"] in ("hot", "cold"))
print(" ".join("%.4f" % b for b in busy), "%.0f" % produced)'
sample() {
    local i
    for i in $(seq "$2"); do
        curl -s "$1/layout" | python3 -c "$layout_py" >>"$3" || true
        sleep 1
    done
}

summary_py='import sys
out, r = sys.argv[1], sys.argv[2]
def window(name):
    rows = [list(map(float, l.split())) for l in open(f"{out}/{name}-{r}.txt") if l.strip()]
    cols = [sum(c) / len(c) for c in zip(*rows)]
    busy, mbs = cols[:-1], cols[-1] / 1e6
    return busy, (max(busy) - min(busy)) / max(busy) if max(busy) > 0 else 0.0, mbs
(b, ib, mb), (a, ia, ma) = window("before"), window("after")
moves = [l.strip() for l in open(f"{out}/rebalance-{r}.txt") if l.startswith("moved")]
print(f"round {r}: before busy {[round(x, 3) for x in b]} imbalance {ib:.3f}, {mb:.1f} MB/s; "
      f"{len(moves)} moves; after busy {[round(x, 3) for x in a]} imbalance {ia:.3f}, {ma:.1f} MB/s; "
      f"after/before {ma / mb:.3f}")
for m in moves:
    print(f"  {m}")'

for r in $(seq "$rounds"); do
    d="$out/work-$r"
    NODE_CORE=0-1 node_start "$d" --admin 127.0.0.1:0
    admin="$(grep -o 'admin=[^ ]*' "$d/node.log" | cut -d= -f2)"
    # Create both topics with a few records, then skew the placement.
    "$bench" produce --bootstrap "$kafka" --topic hot --partitions 1 --count 100 --quiet 1 --out "$out/c1-$r" >/dev/null
    "$bench" produce --bootstrap "$kafka" --topic cold --partitions "$cold" --count 100 --quiet 1 --out "$out/c2-$r" >/dev/null
    "$sluice" layout move hot 0 0 --admin "$admin" >/dev/null
    for p in $(seq 0 $((cold - 1))); do
        "$sluice" layout move cold "$p" $((p < ${SKEW:-2} ? 0 : 1)) --admin "$admin" >/dev/null
    done
    pids=()
    for t in hot cold; do
        p=$([ "$t" = hot ] && echo 1 || echo "$cold")
        "$bench" produce --bootstrap "$kafka" --topic "$t" --partitions "$p" --size 1024 --acks 1 \
            --batch-bytes 16384 --connections "${CONNECTIONS:-2}" --in-flight 5 --warmup 1 --duration $((2 * secs + 15)) \
            --quiet 1 --out "$out/$t-$r" >"$out/$t-$r.txt" &
        pids+=($!)
    done
    sleep 3
    sample "$admin" "$secs" "$out/before-$r.txt"
    if [ "${REBALANCE:-1}" = 1 ]; then
        "$sluice" layout rebalance --admin "$admin" >"$out/rebalance-$r.txt"
    else
        : >"$out/rebalance-$r.txt" # the control: how the two windows differ without a rebalance
    fi
    sleep 2
    sample "$admin" "$secs" "$out/after-$r.txt"
    wait "${pids[@]}" # not the node, which is a child of this shell too
    node_stop
    python3 -c "$summary_py" "$out" "$r" | tee -a "$out/rounds.txt"
    memcg_refill "$d"
done
