#!/usr/bin/env bash
# Catch-up fetch from the page cache: fetch.send.method sendfile vs splice vs copy on the same
# data in the same run, node CPU per GiB against the loopback-send floor.
#
# Inside one memory cgroup kept full of clean cache (bench-lib.sh `memcg_enter`): MIB MiB are
# produced once into a node on NODE_CORE, synced and read once; then per round, for each
# method, the node is restarted on the same data with that method and sluice-bench (on
# LOAD_CORE) consumes everything from the beginning, reporting the node's CPU per GiB
# (`--node-pid`); the loopback-send floor is measured in every round too.
#
# Usage: bash scripts/bench-fetch.sh [MIB=2560] [ROUNDS=3]
# Environment: MEMCG_MIB [4096] (MIB must fit in it beside the node), NODE_CORE [0],
# LOAD_CORE [1], METHODS ["sendfile splice copy"], PARTITIONS [6], FETCH_BYTES [1048576].
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
mib="${1:-2560}"
rounds="${2:-3}"
methods="${METHODS:-sendfile splice copy}"
partitions="${PARTITIONS:-6}"
load_core="${LOAD_CORE:-1}"
bench=target/release/sluice-bench
need_binaries target/release/sluice "$bench"
dir="$(mktemp -d /var/tmp/sluice-bench-fetch.XXXXXX)"
trap 'node_stop; rm -rf "$dir"' EXIT
memcg_enter "${MEMCG_MIB:-4096}"
count=$((mib * 1024))

node_start "$dir/fill" --admin 127.0.0.1:0
"$bench" produce --bootstrap "$kafka" --topic catchup --partitions "$partitions" --count "$count" \
    --batch-bytes 1000000 --cores "$load_core" --quiet 1 --out "$dir/out-fill" >/dev/null
node_stop
sync
cat "$dir"/fill/data/catchup-*/*.log >/dev/null
consume_once() {
    "$bench" consume --bootstrap "$kafka" --topic catchup --partitions "$partitions" --count "$count" \
        --fetch-bytes "${FETCH_BYTES:-1048576}" --cores "$load_core" --node-pid "$node" --quiet 1 \
        --out "$dir/out-$1" >"$dir/c.txt"
    echo "$1 $(awk '/^node CPU/ { print $3 }' "$dir/c.txt") $(awk '/^consume: .*msg\/s/ { print $4 }' "$dir/c.txt")" >"$dir/one"
}
: >"$dir/rows"
for r in $(seq "$rounds"); do
    "$bench" baseline --mib 2048 --passes 1 --core "${NODE_CORE:-0}" --peer-core "$load_core" --dir "$dir/floor" |
        awk -v r="$r" '/loopback send/ { print "floor-send", $(NF-1), $(NF-3) }' | tee -a "$dir/rows"
    for m in $methods; do
        NODE_KEEP_DATA=1 node_start "$dir/fill" --set "fetch.send.method=$m"
        measured consume_once "$m"
        node_stop
        tee -a "$dir/rows" <"$dir/one"
    done
done
python3 - "$dir/rows" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
floors = [float(c) for t, c, _ in rows if t == "floor-send"]
print("\nmethod      node CPU-s/GiB (median, min-max)   MB/s (median)   node / loopback-send floor")
floor = statistics.median(floors)
print(f"{'floor-send':<11} {floor:.3f} ({min(floors):.3f}-{max(floors):.3f})")
for m in dict.fromkeys(t for t, _, _ in rows if t != "floor-send"):
    cpu = [float(c) for t, c, _ in rows if t == m]
    mbs = [float(b) for t, _, b in rows if t == m]
    print(f"{m:<11} {statistics.median(cpu):.3f} ({min(cpu):.3f}-{max(cpu):.3f}) {statistics.median(mbs):>18.0f} {statistics.median(cpu) / floor:>20.2f}")
EOF
