#!/usr/bin/env bash
# Log compaction's cost (issue #13 Show 1), measured as bench/RESULTS.md asks (one memory
# cgroup kept full of clean cache, the node pinned to NODE_CORE, load to LOAD_CORE):
#
# - "clean": a release node with the cleaner off takes FILL_MIB of keyed 1 KiB records
#   (uniform over KEYS keys) into a one-partition compacted topic with 128 MiB segments; it
#   is stopped and started again with the cleaner on; the first cleaning's own log line
#   gives bytes read/written and its wall time, /proc the node's CPU seconds from the start
#   to that line. Cleaning throughput = the closed segments' bytes / wall time, and per
#   CPU-second of the node.
# - "latency": produce-ack latency (sluice-bench open loop, CO-corrected, 16 KiB batches,
#   linger 1 ms, keyed) at LAT_SHARE of the maximum measured just before, into a 6-partition
#   topic with 8 MiB segments (so the cleaner has work all through the run), once with
#   cleanup.policy=compact (Kafka's default min.cleanable.dirty.ratio, 0.5) and once with
#   delete (no cleaner work);
#   the number of cleanings during the run is counted from the node's log.
# The two latency runs alternate their order round by round.
#
# Usage: bash scripts/bench-compaction.sh [ROUNDS] [SECONDS]
# Environment: FILL_MIB [1024]; KEYS [100000]; LAT_SHARE [0.5]; MEMCG_MIB [4096];
# NODE_CORE [0]; LOAD_CORE [1]; OUT [bench/out/compaction-<UTC time>].
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh

rounds="${1:-3}"
secs="${2:-10}"
fill_mib="${FILL_MIB:-1024}"
keys="${KEYS:-100000}"
load_core="${LOAD_CORE:-1}"
out="${OUT:-bench/out/compaction-$(date -u +%Y%m%dT%H%M%SZ)}"
bench=target/release/sluice-bench
python=.venv/bin/python
need_binaries target/release/sluice "$bench" "$python"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$out/work"
mkdir -p "$work"
fresh() { echo "$work/$1-$(date +%s%N)"; }
node=""
trap 'node_stop; [ -z "${_watch_pid:-}" ] || kill "$_watch_pid" 2>/dev/null || true; memcg_cleanup "$work"' EXIT
memcg_enter "${MEMCG_MIB:-4096}"

create() { # TOPIC PARTITIONS CONFIG...
    local topic="$1" parts="$2" args=()
    shift 2
    for c in "$@"; do args+=(--config "$c"); done
    "$python" node/tests/clients/prod_create_topic.py --bootstrap "$kafka" --topic "$topic" --partitions "$parts" \
        "${args[@]}" | grep -q '"error":null' || { echo "bench: creating $topic failed" >&2; exit 1; }
}

run_clean() {
    local d closed t0 cpu0 cpu1 wall line
    d="$(fresh clean-$1)"
    node_start "$d" --set log.cleaner.enable=false
    create ck 1 cleanup.policy=compact segment.bytes=134217728
    "$bench" produce --bootstrap "$kafka" --topic ck --partitions 1 --keys uniform --key-space "$keys" --size 1024 \
        --acks 1 --batch-bytes 1000000 --cores "$load_core" --count $((fill_mib * 1024)) --quiet 1 >"$out/fill-$1.txt"
    node_stop
    sync
    # The closed segments' bytes: every .log but the newest.
    closed="$(ls -1 "$d"/data/ck-0/*.log | sort | head -n -1 | xargs stat -c %s | awk '{ s += $1 } END { print s + 0 }')"
    t0="$(date +%s%N)"
    NODE_KEEP_DATA=1 node_start "$d" --set log.cleaner.backoff.ms=100
    cpu0="$(proc_cpu "$node")"
    for _ in $(seq 3000); do grep -q "sluice: cleaned" "$d/node.log" && break; sleep 0.1; done
    cpu1="$(proc_cpu "$node")"
    wall=$(( ($(date +%s%N) - t0) / 1000000 ))
    line="$(grep -m1 "sluice: cleaned" "$d/node.log" || echo "no cleaning")"
    node_stop
    memcg_refill "$d"
    local ms
    ms="$(echo "$line" | grep -o ', [0-9]* ms' | grep -o '[0-9]*' || echo 0)"
    echo "$1 clean: closed segments $closed bytes, cleaning ${ms} ms ($(python3 -c "print(round($closed / 1e6 / max($ms, 1) * 1000))") MB/s), node CPU $(python3 -c "print(round($cpu1 - $cpu0, 2))") s from start to the line ($(python3 -c "print(round($closed / 1e6 / max($cpu1 - $cpu0, 0.001)))") MB per CPU-s), wall to the line $wall ms :: $line" |
        tee -a "$out/clean.txt"
}

run_latency() { # ROUND POLICY
    local d max target cleanings p99 p999
    d="$(fresh lat-$1-$2)"
    node_start "$d" --set log.cleaner.backoff.ms=100
    if [ "$2" = compact ]; then
        create lat 6 cleanup.policy=compact segment.bytes=8388608
    else
        create lat 6 cleanup.policy=delete segment.bytes=8388608
    fi
    "$bench" produce --bootstrap "$kafka" --topic lat --partitions 6 --size 1024 --keys uniform --key-space "$keys" \
        --batch-bytes 16384 --linger-ms 1 --connections 2 --cores "$load_core" --warmup 2 --duration "$secs" \
        --quiet 1 --out "$out/latmax-$1-$2" >"$out/latmax-$1-$2.txt"
    max="$(awk '/^produce: .*msg\/s/ { print $2 }' "$out/latmax-$1-$2.txt")"
    target="$(python3 -c "print(int($max * ${LAT_SHARE:-0.5}))")"
    local before
    before="$(grep -c "sluice: cleaned" "$d/node.log" || true)"
    "$bench" produce --bootstrap "$kafka" --topic lat --partitions 6 --size 1024 --keys uniform --key-space "$keys" \
        --batch-bytes 16384 --linger-ms 1 --connections 2 --cores "$load_core" --warmup 2 --duration "$secs" \
        --rate "$target" --quiet 1 --out "$out/lat-$1-$2" >"$out/lat-$1-$2.txt"
    cleanings=$(( $(grep -c "sluice: cleaned" "$d/node.log" || true) - before ))
    node_stop
    memcg_refill "$d"
    p99="$(python3 -c "import json; r=json.load(open('$out/lat-$1-$2/result.json')); print(r['produce_ack_latency']['p99'])")"
    p999="$(python3 -c "import json; r=json.load(open('$out/lat-$1-$2/result.json')); print(r['produce_ack_latency']['p99.9'])")"
    echo "$1 $2 max $max msg/s, target $target msg/s: produce-ack p99 $p99 us, p99.9 $p999 us, $cleanings cleanings during the run" |
        tee -a "$out/latency.txt"
}

for r in $(seq "$rounds"); do
    measured run_clean "$r"
    if [ $((r % 2)) = 1 ]; then
        measured run_latency "$r" compact
        measured run_latency "$r" delete
    else
        measured run_latency "$r" delete
        measured run_latency "$r" compact
    fi
done
echo "bench: results in $out (clean.txt, latency.txt)"
