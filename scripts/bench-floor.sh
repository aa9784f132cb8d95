#!/usr/bin/env bash
# Produce and consume through one node core, as fractions of the machine's floor, measured
# the way bench/RESULTS.md and README ("Measuring against the floor") describe:
#
# - everything -- floors, node, load generators, peer -- runs inside one memory cgroup capped
#   at MEMCG_MIB and kept full of clean page cache (bench-lib.sh `memcg_enter`); nothing is
#   deleted during a run; after each run its files are deleted and the cgroup is refilled
#   with clean cache at once (`memcg_refill`, which also syncs);
# - the node (and the peer's server) is pinned to NODE_CORE, load generators to LOAD_CORE;
# - per round, in this order: the floors (`sluice-bench baseline`: page-cache write of
#   FLOOR_MIB in 1 MiB writes, loopback receive and send), produce with sluice-bench, produce
#   with librdkafka's rdkafka_performance, Apache Iggy's server under iggy-bench (when
#   IGGY_DIR points at a built checkout), and a catch-up consume with sluice-bench;
# - the figure is the node's CPU seconds per GiB of payload (all its threads, io_uring workers
#   included, from /proc/PID/stat) and "fraction of floor" = floor CPU/GiB / node CPU/GiB
#   (produce floor: page-cache write + loopback receive; consume floor: loopback send);
#   medians over the rounds with min-max.
#
# Usage: bash scripts/bench-floor.sh [ROUNDS] [SECONDS]
# Environment: SIZE [1024] value bytes; PARTITIONS [6]; BATCH [1000000] batch.size of both
# Kafka load generators; ACKS [1]; FLOOR_MIB [8192]; CONSUME_MIB [2560] (must fit the cgroup
# beside the node); MEMCG_MIB [4096]; NODE_CORE [0];
# LOAD_CORE [1]; TOOLS ["floor sluice-bench rdkafka iggy consume"; also "latency": produce-ack
# p99/p99.9 at LAT_SHARE [0.5] of the round's maximum rate, LAT_BATCH [16384], linger 1 ms,
# into latency.txt; "acks-all": acks=all on disk against write+fdatasync at the node's own
# bytes per group commit, AA_BATCH [262144], into acks-all.txt; "small": SMALL_SIZE [100] B values
# at BATCH, msg/s into small.txt; "partitions": PARTITIONS and then PART_MANY [1000] partitions
# back to back, PART_BATCH [16384] batches over 2 connections, msg/s and their ratio into
# partitions.txt]; NODE_SET ["--set k=v ..."]
# extra node settings; IGGY_DIR (a built apache/iggy checkout: target/release/iggy-server and
# iggy-bench; the iggy run is skipped without it); IGGY_MB [4000] data per iggy-bench run (more
# than ~10 GB does not fit iggy-bench in the 4 GiB cgroup: it aborts on an allocation); BASE_BIN (another sluice binary, e.g. an
# earlier commit's, measured like sluice-bench by the tool "base"; default this build); BASE_SET
# [NODE_SET] the base run's node settings (the same binary under other settings); OUT [bench/out/floor-<UTC time>].
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh

rounds="${1:-5}"
secs="${2:-10}"
size="${SIZE:-1024}"
partitions="${PARTITIONS:-6}"
batch="${BATCH:-1000000}"
acks="${ACKS:-1}"
floor_mib="${FLOOR_MIB:-8192}"
consume_mib="${CONSUME_MIB:-2560}"
node_core="${NODE_CORE:-0}"
load_core="${LOAD_CORE:-1}"
tools="${TOOLS:-floor sluice-bench rdkafka iggy consume}"
out="${OUT:-bench/out/floor-$(date -u +%Y%m%dT%H%M%SZ)}"
bench=target/release/sluice-bench
rdk=target/rdkafka-perf/rdkafka_performance
need_binaries target/release/sluice "$bench"
case " $tools " in *" rdkafka "*) bash scripts/rdkafka-perf.sh build ;; esac
iggy_ok=0
if [ -n "${IGGY_DIR:-}" ] && [ -x "$IGGY_DIR/target/release/iggy-server" ] && [ -x "$IGGY_DIR/target/release/iggy-bench" ]; then
    iggy_ok=1
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$out/work" # everything written during the run; deleted at the end
mkdir -p "$work"
results="$out/rounds.txt"
: >"$results"

iggy_pid=""
cleanup() {
    # A CPU sampler of bench-lib.sh left by a run that failed midway would run forever.
    if [ -n "${_watch_pid:-}" ]; then kill "$_watch_pid" 2>/dev/null || true; fi
    node_stop
    if [ -n "$iggy_pid" ]; then kill "$iggy_pid" 2>/dev/null || true; wait "$iggy_pid" 2>/dev/null || true; fi
    memcg_cleanup "$work"
}
trap cleanup EXIT

memcg_enter "${MEMCG_MIB:-4096}"
echo "bench-floor: $rounds rounds, $secs s runs, ${size} B values, $partitions partitions, batch $batch B," \
    "acks=$acks, node on core $node_core, load on core $load_core, floors of $floor_mib MiB; results in $out" >&2

# A directory no earlier run (or repeated run) used: nothing is deleted mid-run.
fresh() { echo "$work/$1-$(date +%s%N)"; }
# record ROUND TOOL CPU_S_PER_GIB MBS: one line of the results file.
record() { echo "$1 $2 $3 $4" | tee -a "$results"; }

run_floor() {
    local d w r s
    d="$(fresh floor-$1)"
    "$bench" baseline --mib "$floor_mib" --passes 1 --core "$node_core" --peer-core "$load_core" --keep 1 \
        --dir "$d" >"$out/floor-$1.txt"
    memcg_refill "$d"
    w="$(awk '/page-cache write/ { print $(NF-3), $(NF-1) }' "$out/floor-$1.txt")"
    r="$(awk '/loopback receive/ { print $(NF-3), $(NF-1) }' "$out/floor-$1.txt")"
    s="$(awk '/loopback send/ { print $(NF-3), $(NF-1) }' "$out/floor-$1.txt")"
    record "$1" floor-write "${w#* }" "${w% *}"
    record "$1" floor-receive "${r#* }" "${r% *}"
    record "$1" floor-send "${s#* }" "${s% *}"
}

run_sluice_bench() {
    local d tool="${2:-sluice-bench}"
    local set="${NODE_SET:-}"
    [ "$tool" = base ] && set="${BASE_SET:-$set}"
    d="$(fresh sb-$1)"
    NODE_BIN="${3:-target/release/sluice}" node_start "$d" $set
    "$bench" produce --bootstrap "$kafka" --topic floor --partitions "$partitions" --size "$size" --acks "$acks" \
        --batch-bytes "$batch" --in-flight 5 --cores "$load_core" --warmup 2 --duration "$secs" --node-pid "$node" \
        --quiet 1 --out "$out/$tool-$1" >"$out/$tool-$1.txt"
    node_stop
    memcg_refill "$d"
    local cpu mbs
    cpu="$(awk '/^node CPU/ { print $3 }' "$out/$tool-$1.txt")"
    mbs="$(awk '/^produce: .*msg\/s/ { print $4 }' "$out/$tool-$1.txt")"
    record "$1" "$tool" "$cpu" "$mbs"
}

run_rdkafka() {
    local d
    d="$(fresh rdk-$1)"
    node_start "$d" ${NODE_SET:-}
    # The topic first (rdkafka_performance does not create it).
    "$bench" produce --bootstrap "$kafka" --topic floor --partitions "$partitions" --count 1000 --quiet 1 \
        --out "$out/rdk-$1-create" >/dev/null
    local count c0 c1 t0 t1
    count=$(python3 -c "print(int(1.1e9 * $secs / $size))")
    c0="$(proc_cpu "$node")" t0="$(date +%s.%N)"
    taskset -c "$load_core" "$rdk" -P -t floor -b "$kafka" -s "$size" -c "$count" -a "${acks/all/-1}" \
        -X "batch.size=$batch" -X linger.ms=5 -X queue.buffering.max.messages=1000000 -q \
        >"$out/rdk-$1.txt" 2>&1 || { tail "$out/rdk-$1.txt" >&2; return 1; }
    c1="$(proc_cpu "$node")" t1="$(date +%s.%N)"
    node_stop
    memcg_refill "$d"
    record "$1" rdkafka "$(python3 -c "print(f'{($c1 - $c0) / ($count * $size / 2**30):.3f}')")" \
        "$(python3 -c "print(f'{$count * $size / ($t1 - $t0) / 1e6:.1f}')")"
}

run_iggy() {
    [ "$iggy_ok" = 1 ] || return 0
    local dir c0 c1
    dir="$(fresh iggy-$1)"
    mkdir -p "$dir"
    (cd "$dir" && IGGY_ROOT_USERNAME=iggy IGGY_ROOT_PASSWORD=iggy IGGY_SYSTEM_SHARDING_CPU_ALLOCATION=1 \
        exec taskset -c "$node_core" "$IGGY_DIR/target/release/iggy-server") >"$out/iggy-server-$1.txt" 2>&1 &
    iggy_pid=$!
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/8090) 2>/dev/null && break
        sleep 0.2
    done
    c0="$(proc_cpu "$iggy_pid")"
    taskset -c "$load_core" "$IGGY_DIR/target/release/iggy-bench" -m "$size" -T "${IGGY_MB:-4000}MB" \
        pinned-producer -p 1 tcp >"$out/iggy-$1.txt" 2>&1 || { tail "$out/iggy-$1.txt" >&2; return 1; }
    c1="$(proc_cpu "$iggy_pid")"
    kill "$iggy_pid"
    wait "$iggy_pid" 2>/dev/null || true
    iggy_pid=""
    memcg_refill "$dir"
    # iggy-bench's summary: "Benchmark: ... N messages, 1000 messages per batch, ..." and
    # "Producers Results: Total throughput: X MB/s, ...".
    local mbs msgs
    mbs="$(grep -oE 'Total throughput: [0-9.]+ MB/s' "$out/iggy-$1.txt" | head -1 | awk '{ print $3 }')"
    msgs="$(grep -oE '[0-9]+ messages, [0-9]+ messages per batch' "$out/iggy-$1.txt" | head -1 | awk '{ print $1 }')"
    local bytes=$((${msgs:-0} * size))
    record "$1" iggy "$(python3 -c "print(f'{($c1 - $c0) / ($bytes / 2**30):.3f}')")" "${mbs:-0}"
}

run_consume() {
    # Catch-up from the page cache: CONSUME_MIB written, synced, read once to warm (what the
    # cgroup evicted comes back), then measured.
    local d
    d="$(fresh cons-$1)"
    node_start "$d" ${NODE_SET:-}
    local count=$((consume_mib * 1048576 / size))
    "$bench" produce --bootstrap "$kafka" --topic floor --partitions "$partitions" --size "$size" \
        --batch-bytes "$batch" --count "$count" --cores "$load_core" --quiet 1 --out "$out/cons-$1-fill" >/dev/null
    sync
    "$bench" consume --bootstrap "$kafka" --topic floor --partitions "$partitions" --count "$count" \
        --cores "$load_core" --quiet 1 --out "$out/cons-$1-warm" >/dev/null
    "$bench" consume --bootstrap "$kafka" --topic floor --partitions "$partitions" --count "$count" \
        --cores "$load_core" --node-pid "$node" --quiet 1 --out "$out/cons-$1" >"$out/cons-$1.txt"
    node_stop
    memcg_refill "$d"
    record "$1" consume "$(awk '/^node CPU/ { print $3 }' "$out/cons-$1.txt")" \
        "$(awk '/^consume: .*msg\/s/ { print $4 }' "$out/cons-$1.txt")"
}

run_latency() {
    # Produce-ack latency at LAT_SHARE of the maximum rate found in the same round: closed loop
    # first, then open loop (sluice-bench measures from each record's intended send time, so
    # coordinated omission is corrected), Kafka's default batch.size, linger 1 ms.
    local d max target
    d="$(fresh lat-$1)"
    node_start "$d" ${NODE_SET:-}
    "$bench" produce --bootstrap "$kafka" --topic lat --partitions "$partitions" --size "$size" --acks "$acks" \
        --batch-bytes "${LAT_BATCH:-16384}" --linger-ms 1 --connections 2 --cores "$load_core" --warmup 2 \
        --duration "$secs" --quiet 1 --out "$out/latmax-$1" >"$out/latmax-$1.txt"
    max="$(awk '/^produce: .*msg\/s/ { print $2 }' "$out/latmax-$1.txt")"
    target="$(python3 -c "print(int($max * ${LAT_SHARE:-0.5}))")"
    "$bench" produce --bootstrap "$kafka" --topic lat --partitions "$partitions" --size "$size" --acks "$acks" \
        --batch-bytes "${LAT_BATCH:-16384}" --linger-ms 1 --connections 2 --cores "$load_core" --warmup 2 \
        --duration "$secs" --rate "$target" --quiet 1 --out "$out/lat-$1" >"$out/lat-$1.txt"
    node_stop
    memcg_refill "$d"
    local p99 p999
    p99="$(python3 -c "import json; r=json.load(open('$out/lat-$1/result.json')); print(r['produce_ack_latency']['p99'])")"
    p999="$(python3 -c "import json; r=json.load(open('$out/lat-$1/result.json')); print(r['produce_ack_latency']['p99.9'])")"
    echo "$1 latency max $max msg/s, target $target msg/s: produce-ack p99 $p99 us, p99.9 $p999 us" | tee -a "$out/latency.txt"
}

run_acks_all() {
    # acks=all on the data directory's disk against write+fdatasync at the node's own write
    # size per group commit (produced bytes / fdatasync rounds, both from /metrics).
    local d admin bytes syncs node_mbs floor
    d="$(fresh aa-$1)"
    node_start "$d" --admin 127.0.0.1:0 ${NODE_SET:-}
    admin="$(grep -o 'admin=[^ ]*' "$d/node.log" | cut -d= -f2)"
    "$bench" produce --bootstrap "$kafka" --topic aa --partitions "$partitions" --size "$size" --acks all \
        --producers 2 --connections 1 --in-flight 5 --batch-bytes "${AA_BATCH:-262144}" --cores "$load_core" \
        --duration "$secs" --quiet 1 --out "$out/aa-$1" >"$out/aa-$1.txt"
    metric() { curl -s "$admin/metrics" | awk -v n="$1" 'index($0, n"{") == 1 { s += $NF } END { printf "%.0f", s }'; }
    bytes="$(metric sluice_produce_bytes_total)" syncs="$(metric sluice_partition_sync_rounds_total)"
    node_stop
    local per_sync=$((bytes / (syncs > 0 ? syncs : 1)))
    node_mbs="$(awk '/^produce: .*msg\/s/ { print $4 }' "$out/aa-$1.txt")"
    "$bench" baseline --mib 64 --passes 1 --core "$node_core" --peer-core "$load_core" --sync-bytes "$per_sync" \
        --sync-secs 4 --keep 1 --dir "$d/floor" >"$out/aa-floor-$1.txt"
    floor="$(awk '/fdatasync/ { print $(NF-5) }' "$out/aa-floor-$1.txt")"
    memcg_refill "$d"
    echo "$1 acks=all: node $node_mbs MB/s, $syncs fdatasync rounds, $per_sync B per round; floor at that size" \
        "$floor MB/s; node / floor $(python3 -c "print(f'{$node_mbs / $floor:.3f}')")" | tee -a "$out/acks-all.txt"
}

run_small() {
    # Small records through one node core: msg/s at SMALL_SIZE bytes, 1 producer.
    local d small="${SMALL_SIZE:-100}"
    d="$(fresh small-$1)"
    node_start "$d" ${NODE_SET:-}
    "$bench" produce --bootstrap "$kafka" --topic small --partitions "$partitions" --size "$small" --acks "$acks" \
        --batch-bytes "$batch" --in-flight 5 --cores "$load_core" --warmup 2 --duration "$secs" --node-pid "$node" \
        --quiet 1 --out "$out/small-$1" >"$out/small-$1.txt"
    node_stop
    memcg_refill "$d"
    local msgs cpu busy
    msgs="$(awk '/^produce: .*msg\/s/ { print $2 }' "$out/small-$1.txt")"
    cpu="$(awk '/^node CPU/ { print $3 }' "$out/small-$1.txt")"
    busy="$(grep -o '[0-9.]* cores busy' "$out/small-$1.txt" | awk '{ print $1 }')"
    echo "$1 small ${small} B: $msgs msg/s, node $cpu CPU-s/GiB, $busy cores busy" | tee -a "$out/small.txt"
}

run_partitions() {
    # Per-partition costs: the same produce into PARTITIONS and into PART_MANY partitions.
    local many="${PART_MANY:-1000}" n d
    local -A rate
    for n in "$partitions" "$many"; do
        d="$(fresh parts-$n-$1)"
        node_start "$d" ${NODE_SET:-}
        "$bench" produce --bootstrap "$kafka" --topic parts --partitions "$n" --size "$size" --acks "$acks" \
            --batch-bytes "${PART_BATCH:-16384}" --connections 2 --in-flight 5 --cores "$load_core" --warmup 2 \
            --duration "$secs" --node-pid "$node" --quiet 1 --out "$out/parts-$n-$1" >"$out/parts-$n-$1.txt"
        node_stop
        memcg_refill "$d"
        rate[$n]="$(awk '/^produce: .*msg\/s/ { print $2 }' "$out/parts-$n-$1.txt")"
    done
    echo "$1 partitions: $partitions: ${rate[$partitions]} msg/s, $many: ${rate[$many]} msg/s, ratio" \
        "$(python3 -c "print(f'{${rate[$many]} / ${rate[$partitions]}:.3f}')")" | tee -a "$out/partitions.txt"
}

for r in $(seq "$rounds"); do
    for t in $tools; do
        case "$t" in
            floor) measured run_floor "$r" ;;
            sluice-bench) measured run_sluice_bench "$r" ;;
            base) measured run_sluice_bench "$r" base "${BASE_BIN:-target/release/sluice}" ;;
            rdkafka) measured run_rdkafka "$r" ;;
            iggy) measured run_iggy "$r" ;;
            consume) measured run_consume "$r" ;;
            latency) measured run_latency "$r" ;;
            acks-all) measured run_acks_all "$r" ;;
            small) measured run_small "$r" ;;
            partitions) measured run_partitions "$r" ;;
            *) echo "bench-floor: unknown tool $t" >&2; exit 1 ;;
        esac
    done
done

python3 - "$results" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {}
for r, tool, cpu, mbs in rows:
    by.setdefault(int(r), {})[tool] = (float(cpu), float(mbs))
def med(v):
    return f"{statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f})" if v else "-"
print("\nfigure (median over rounds, min-max)          CPU-s/GiB               MB/s                  fraction of floor")
tools = ["floor-write", "floor-receive", "floor-send", "sluice-bench", "base", "rdkafka", "iggy", "consume"]
for tool in tools:
    cpus = [d[tool][0] for d in by.values() if tool in d]
    mbs = [d[tool][1] for d in by.values() if tool in d]
    if not cpus:
        continue
    fr = []
    for d in by.values():
        if tool not in d or "floor-write" not in d:
            continue
        floor = d["floor-send"][0] if tool == "consume" else d["floor-write"][0] + d["floor-receive"][0]
        if tool.startswith("floor"):
            continue
        fr.append(floor / d[tool][0])
    print(f"{tool:<44} {med(cpus):<23} {med([m for m in mbs]):<21} {med(fr)}")
EOF
