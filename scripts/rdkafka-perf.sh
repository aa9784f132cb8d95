#!/usr/bin/env bash
# Cross-check of sluice-bench's produce figures with librdkafka's own perf tool,
# `rdkafka_performance` (its source ships inside the rdkafka-sys crate).
#
# Builds the tool once into target/rdkafka-perf/ (crate from cargo's registry cache, fetched
# with `cargo fetch` if missing; librdkafka configured without SSL, SASL, zstd, zlib, curl),
# then runs the same produce workload through both tools in alternation and prints msg/s of
# each and the ratio sluice-bench / rdkafka_performance per round.
#
# Workload (both tools): SIZE-byte values without key, acks=1, one topic of PARTITIONS
# partitions, batch.size BATCH, linger.ms LINGER, IN_FLIGHT requests in flight, one producer
# (one thread and one connection in sluice-bench; one rd_kafka_t in rdkafka_performance),
# COUNT messages per run, throughput = messages acknowledged / time from first send to last
# acknowledgement.
#
# Each run waits for the rest of the machine to be quiet and is repeated if another process
# used the CPU meanwhile (scripts/bench-lib.sh).
#
# NODE_CPU_QUOTA=P caps the started node at P % of one core (cgroup v1 cpu controller, CFS
# period 10 ms so that throttling is smooth rather than 100 ms on / off). Why: a cross-check
# of two load tools only means something when both hit the same bottleneck, the broker.
# Without the cap, at 1 KiB values rdkafka_performance is limited by its own per-message CPU
# (its application thread and its broker thread share the one load core), while sluice-bench
# keeps the node at its limit -- the two then measure different things. Limiting the
# broker's CPU makes the broker the bottleneck for both tools. Each run then also reports
# whether the node was throttled (CFS periods throttled / periods elapsed, throttled time);
# a node that was seldom throttled in a run was not the bottleneck of that run.
#
# Usage: bash scripts/rdkafka-perf.sh [ROUNDS] [COUNT]
#        bash scripts/rdkafka-perf.sh build        (only build rdkafka_performance)
# Environment: BOOTSTRAP=ADDR to use a running broker (else a release node is started with
# `--cores 0` on core NODE_CORE); LOAD_CORE (core for both producers) [1]; PARTITIONS [1];
# SIZE [1024]; BATCH [16384]; LINGER [5]; IN_FLIGHT [5]; ACKS (1 or all) [1];
# EXTRA_X="k=v ..." more -X settings for rdkafka_performance; EXTRA_ARGS="..." more
# rdkafka_performance flags (e.g. -q); NODE_CPU_QUOTA=P (percent of one core, 1-100; needs
# root and the cgroup v1 cpu controller at /sys/fs/cgroup/cpu; not with BOOTSTRAP).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh

VERSION=4.10.0+2.12.1 # rdkafka-sys 4.10.0 bundles librdkafka 2.12.1
cache=target/rdkafka-perf
perf="$cache/rdkafka_performance"

build_perf() {
    [ -x "$perf" ] && return 0
    mkdir -p "$cache"
    local crate
    crate="$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/rdkafka-sys-"$VERSION".crate 2>/dev/null | head -1 || true)"
    if [ -z "$crate" ]; then
        # A throwaway package that depends on the crate: cargo fetches it into its cache.
        mkdir -p "$cache/fetch/src"
        cat >"$cache/fetch/Cargo.toml" <<EOF
[package]
name = "rdkafka-perf-fetch"
version = "0.0.0"
edition = "2021"

[workspace]

[dependencies]
rdkafka-sys = { version = "=$VERSION", default-features = false }
EOF
        : >"$cache/fetch/src/lib.rs"
        cargo fetch --manifest-path "$cache/fetch/Cargo.toml"
        crate="$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/rdkafka-sys-"$VERSION".crate | head -1)"
    fi
    echo "rdkafka-perf: building rdkafka_performance from $crate" >&2
    rm -rf "$cache/rdkafka-sys-$VERSION"
    tar xzf "$crate" -C "$cache"
    local src="$cache/rdkafka-sys-$VERSION/librdkafka"
    (
        cd "$src"
        chmod +x configure lds-gen.py 2>/dev/null || true
        ./configure --no-download --disable-ssl --disable-gssapi --disable-zstd --disable-zlib \
            --disable-curl --disable-lz4-ext --disable-syslog >cfg-out.txt 2>&1 ||
            { cat cfg-out.txt >&2; exit 1; }
        nice make -C src -j1 librdkafka.a >make-out.txt 2>&1 || { tail -40 make-out.txt >&2; exit 1; }
        nice make -C examples rdkafka_performance >>make-out.txt 2>&1 || { tail -40 make-out.txt >&2; exit 1; }
    )
    cp "$src/examples/rdkafka_performance" "$perf"
    echo "rdkafka-perf: built $perf" >&2
}

build_perf
[ "${1:-}" = build ] && exit 0

rounds="${1:-3}"
count="${2:-2000000}"
load_core="${LOAD_CORE:-1}"
node_core="${NODE_CORE:-0}"
partitions="${PARTITIONS:-1}"
size="${SIZE:-1024}"
batch="${BATCH:-16384}"
linger="${LINGER:-5}"
in_flight="${IN_FLIGHT:-5}"
acks="${ACKS:-1}" # 1 or all
quota="${NODE_CPU_QUOTA:-}"
bench=target/release/sluice-bench
[ -x "$bench" ] || { echo "build first: cargo build --release -p sluice-node -p sluice-bench" >&2; exit 1; }
if [ -n "$quota" ]; then
    [[ "$quota" =~ ^[0-9]+$ ]] && [ "$quota" -ge 1 ] && [ "$quota" -le 100 ] ||
        { echo "rdkafka-perf: NODE_CPU_QUOTA must be a whole percentage of one core, 1-100 (got '$quota')" >&2; exit 1; }
    [ -z "${BOOTSTRAP:-}" ] ||
        { echo "rdkafka-perf: NODE_CPU_QUOTA caps the node this script starts; it cannot be used with BOOTSTRAP" >&2; exit 1; }
fi

tmp="$(mktemp -d)"
node=""
cg="" # the node's cgroup directory (NODE_CPU_QUOTA)
cleanup() {
    # A CPU sampler of bench-lib.sh still running if a run failed midway (only if it is ours).
    if [ -n "${_watch_pid:-}" ] && [ "$(ps -o ppid= -p "$_watch_pid" 2>/dev/null | tr -d ' ')" = "$$" ]; then
        kill "$_watch_pid" 2>/dev/null || true
    fi
    if [ -n "$node" ]; then kill "$node" 2>/dev/null || true; wait "$node" 2>/dev/null || true; fi
    if [ -n "$cg" ] && [ -d "$cg" ]; then
        rmdir "$cg" 2>/dev/null || echo "rdkafka-perf: could not remove cgroup $cg" >&2
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
if [ -n "$quota" ]; then
    cgroot=/sys/fs/cgroup/cpu
    [ -w "$cgroot/cgroup.procs" ] && [ -e "$cgroot/cpu.cfs_quota_us" ] ||
        { echo "rdkafka-perf: NODE_CPU_QUOTA needs the cgroup v1 cpu controller, writable, at $cgroot (run as root)" >&2; exit 1; }
    mkdir "$cgroot/sluice-node-$$" ||
        { echo "rdkafka-perf: cannot create cgroup $cgroot/sluice-node-$$ for NODE_CPU_QUOTA" >&2; exit 1; }
    cg="$cgroot/sluice-node-$$"
    { echo 10000 >"$cg/cpu.cfs_period_us" && echo $((quota * 100)) >"$cg/cpu.cfs_quota_us"; } ||
        { echo "rdkafka-perf: cannot set the CPU quota of cgroup $cg" >&2; exit 1; }
fi
if [ -n "${BOOTSTRAP:-}" ]; then
    kafka="$BOOTSTRAP"
else
    [ -x target/release/sluice ] || { echo "build first: cargo build --release -p sluice-node" >&2; exit 1; }
    taskset -c "$node_core" target/release/sluice --listen 127.0.0.1:0 --data-dir "$tmp/data" \
        --cores "$node_core" --admin 127.0.0.1:0 >"$tmp/node.log" 2>&1 &
    node=$!
    if [ -n "$cg" ]; then
        # Writing a pid to cgroup.procs moves the whole thread group, threads already started too.
        echo "$node" >"$cg/cgroup.procs" ||
            { echo "rdkafka-perf: cannot move the node (pid $node) into cgroup $cg" >&2; exit 1; }
        grep -qx "$node" "$cg/cgroup.procs" ||
            { echo "rdkafka-perf: the node (pid $node) is not in cgroup $cg" >&2; exit 1; }
    fi
    for _ in $(seq 100); do grep -q "sluice: ready" "$tmp/node.log" && break; sleep 0.1; done
    kafka="$(grep -o 'kafka=[^ ]*' "$tmp/node.log" | cut -d= -f2)"
fi
topic="rdkperf-$$"
if [ -n "$quota" ]; then
    quota_text="node CPU quota $quota % of a core (cgroup $cg, CFS period 10 ms)"
else
    quota_text="no node CPU quota"
fi
echo "rdkafka-perf: broker $kafka, topic $topic ($partitions partitions), $count × $size B per run," \
    "acks=$acks, batch $batch B, linger $linger ms, $in_flight in flight, producer on core $load_core," \
    "$quota_text"
# Creates the topic (rdkafka_performance does not) and warms the node up.
"$bench" produce --bootstrap "$kafka" --topic "$topic" --partitions "$partitions" --count 100000 \
    --size "$size" --quiet 1 --out "$tmp/warm" >/dev/null

xopts=(-X "linger.ms=$linger" -X "batch.size=$batch" -X "max.in.flight=$in_flight")
for kv in ${EXTRA_X:-}; do xopts+=(-X "$kv"); done
# shellcheck disable=SC2206 # word splitting wanted
xopts+=(${EXTRA_ARGS:-})
if [ -n "${EXTRA_X:-}${EXTRA_ARGS:-}" ]; then
    echo "rdkafka-perf: rdkafka_performance extra settings: ${xopts[*]:6}"
fi

# CPU seconds "user system" the node (all its threads, io_uring workers too) has used so
# far; "0 0" with BOOTSTRAP.
node_cpu() {
    if [ -n "$node" ]; then
        awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f %.3f\n", $14 / hz, $15 / hz }' "/proc/$node/stat"
    else
        echo 0 0
    fi
}

# "nr_periods nr_throttled throttled_time_ns" of the node's cgroup so far; nothing without
# NODE_CPU_QUOTA.
node_throttle() {
    [ -n "$cg" ] || return 0
    awk '$1 == "nr_periods" { p = $2 } $1 == "nr_throttled" { n = $2 } $1 == "throttled_time" { t = $2 }
        END { printf "%.0f %.0f %.0f\n", p, n, t }' "$cg/cpu.stat"
}

# Runs a command; leaves "CPU-seconds wall-seconds" of the client in $tmp/time.
timed() {
    /usr/bin/time -f '%U %S %e' -o "$tmp/time.raw" "$@"
    awk '{ printf "%.3f %.3f\n", $1 + $2, $3 }' "$tmp/time.raw" >"$tmp/time"
}

# "client x%, node y% (user u + system s µs per message)" of one core over the last run
# ($1, $2: node_cpu before and after); with NODE_CPU_QUOTA also how much the node was
# throttled ($3: node_throttle before).
cpu_line() {
    local c w thr="" p0 t0 ns0 p1 t1 ns1 u0 s0 u1 s1
    read -r c w <"$tmp/time"
    read -r u0 s0 <<<"$1"
    read -r u1 s1 <<<"$2"
    if [ -n "$cg" ]; then
        read -r p0 t0 ns0 <<<"$3"
        read -r p1 t1 ns1 <<<"$(node_throttle)"
        thr=", node throttled in $((t1 - t0))/$((p1 - p0)) periods ($(((ns1 - ns0) / 1000000)) ms)"
    fi
    echo "$(python3 -c "print(f'client {100 * $c / $w:.0f}% of a core, node {100 * ($u1 + $s1 - $u0 - $s0) / $w:.0f}%' +
        f' (user {1e6 * ($u1 - $u0) / $count:.1f} + system {1e6 * ($s1 - $s0) / $count:.1f} µs per message)')")$thr"
}

# Each run leaves msg/s in $tmp/rate and the CPU line in $tmp/cpu.
run_rdkafka() {
    local n0 th0
    n0="$(node_cpu)" th0="$(node_throttle)"
    timed taskset -c "$load_core" "$perf" -P -t "$topic" -b "$kafka" -s "$size" -c "$count" -a "${acks/all/-1}" \
        "${xopts[@]}" >"$tmp/rdk.out" 2>&1 || { cat "$tmp/rdk.out" >&2; exit 1; }
    cpu_line "$n0" "$(node_cpu)" "$th0" >"$tmp/cpu"
    # "... delivered (offset X, F failed) in T ms: R msgs/s and M MB/s ..."
    grep -E 'messages produced' "$tmp/rdk.out" | tail -1 | sed -E 's/.* ([0-9]+) msgs\/s.*/\1/' >"$tmp/rate"
}

run_bench() {
    local n0 th0
    n0="$(node_cpu)" th0="$(node_throttle)"
    timed "$bench" produce --bootstrap "$kafka" --topic "$topic" --partitions "$partitions" \
        --count "$count" --size "$size" --acks "$acks" --batch-bytes "$batch" --linger-ms "$linger" \
        --in-flight "$in_flight" --connections 1 --producers 1 --cores "$load_core" --quiet 1 \
        --out "$tmp/bench" >"$tmp/bench.out" 2>&1 || { cat "$tmp/bench.out" >&2; exit 1; }
    cpu_line "$n0" "$(node_cpu)" "$th0" >"$tmp/cpu"
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(round(r["produce"]["msgs_per_s"]))' \
        "$tmp/bench/result.json" >"$tmp/rate"
}

ratios=() rates_a=() rates_b=()
for r in $(seq "$rounds"); do
    sync # the previous run's data written back first, not during the next run
    measured run_rdkafka
    a="$(cat "$tmp/rate")" cpu_a="$(cat "$tmp/cpu")"
    sync
    measured run_bench
    b="$(cat "$tmp/rate")" cpu_b="$(cat "$tmp/cpu")"
    ratio="$(python3 -c "print(f'{$b / $a:.3f}')")"
    ratios+=("$ratio") rates_a+=("$a") rates_b+=("$b")
    printf 'round %d/%d: rdkafka_performance %s msg/s (%s); sluice-bench %s msg/s (%s); sluice-bench / rdkafka_performance %s\n' \
        "$r" "$rounds" "$a" "$cpu_a" "$b" "$cpu_b" "$ratio"
done
[ "${#ratios[@]}" -gt 0 ] || exit 1
python3 - "${rates_a[*]}" "${rates_b[*]}" "${ratios[*]}" <<'EOF'
import statistics, sys
a, b, r = ([float(x) for x in arg.split()] for arg in sys.argv[1:])
for name, v in (("rdkafka_performance", a), ("sluice-bench", b)):
    v = sorted(v)
    print(f"{name} msg/s: median {statistics.median(v):,.0f}, spread {v[0]:,.0f}–{v[-1]:,.0f}")
v = sorted(r)
print(f"ratio sluice-bench / rdkafka_performance: median {statistics.median(v):.3f}, spread {v[0]:.3f}–{v[-1]:.3f} over {len(v)} rounds")
EOF
