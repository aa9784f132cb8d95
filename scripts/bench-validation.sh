#!/usr/bin/env bash
# What record validation costs the node (issue #6: "validate compressed batches as far as
# Kafka does; measure what that costs").
#
# The node walks every record of every produced batch and decompresses compressed batches
# (node/src/log/records.rs); `record.validation.enable=false` skips that walk and checks only
# the batch header and CRC. The cost is measured as node CPU time per GiB of record payload
# produced, with validation on and off, per codec: a fixed number of messages is produced by
# sluice-bench (its own compression, one thread per --producers), and the node's user+system
# time (from /proc) over the run is divided by the payload it stored. CPU per GiB rather than
# msg/s because on this 2-core machine the client's compressor, not the node, is the
# bottleneck for gzip/zstd (one core for the client); CPU per GiB is the same figure whichever
# side is the bottleneck.
#
# Each round starts a fresh release node (pinned to NODE_CORE with `--cores NODE_CORE`) with
# validation on, then off (order swapped every other round), client on LOAD_CORE; runs wait
# for a quiet machine and are repeated when something else used the CPU (bench-lib.sh).
#
# Usage: bash scripts/bench-validation.sh [ROUNDS] [COUNT]
# Environment: CODECS ["none gzip snappy lz4 zstd"], SIZE [1024], PRODUCERS [2],
# NODE_CORE [0], LOAD_CORE [1], SLUICE_BIN, BENCH.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh

rounds="${1:-3}"
count="${2:-300000}"
codecs="${CODECS:-none gzip snappy lz4 zstd}"
size="${SIZE:-1024}"
producers="${PRODUCERS:-2}"
node_core="${NODE_CORE:-0}"
load_core="${LOAD_CORE:-1}"
sluice="${SLUICE_BIN:-target/release/sluice}"
bench="${BENCH:-target/release/sluice-bench}"
need_binaries "$sluice" "$bench"

tmp="$(mktemp -d)"
trap 'node_stop; rm -rf "$tmp"' EXIT

node_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f\n", ($14 + $15) / hz }' "/proc/$node/stat"; }

# One run: leaves "node-CPU-s-per-GiB client-msg/s" in $tmp/run.
run_one() { # codec
    local c0 c1
    c0="$(node_cpu)"
    "$bench" produce --bootstrap "$kafka" --topic "v-$1-$RANDOM" --partitions 6 --compression "$1" \
        --size "$size" --count "$count" --producers "$producers" --acks 1 --cores "$load_core" --quiet 1 \
        --out "$tmp/out" >"$tmp/bench.out" 2>&1 || { cat "$tmp/bench.out" >&2; exit 1; }
    c1="$(node_cpu)"
    python3 - "$tmp/out/result.json" "$c0" "$c1" >"$tmp/run" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
cpu = float(sys.argv[3]) - float(sys.argv[2])
gib = r["produce"]["bytes"] / 2**30
print(f"{cpu / gib:.3f} {r['produce']['msgs_per_s']:.0f}")
EOF
}

echo "bench-validation: $count × $size B per run, $producers producer threads on core $load_core, node on core $node_core, $rounds rounds"
printf '%-7s %-5s %12s %12s %12s %12s %8s\n' codec round "on CPU-s/GiB" "off CPU-s/GiB" "on msg/s" "off msg/s" "off/on"
summary=()
for codec in $codecs; do
    shares=()
    for r in $(seq "$rounds"); do
        order="true false"
        [ $((r % 2)) = 0 ] && order="false true"
        declare -A cpu=() rate=()
        for v in $order; do
            NODE_BIN="$sluice" NODE_CORE="$node_core" node_start "$tmp" --set "record.validation.enable=$v"
            # warm the node (first segment files, page cache) before the measured run
            "$bench" produce --bootstrap "$kafka" --topic warm --partitions 6 --count 20000 --quiet 1 \
                --out "$tmp/warm" >/dev/null 2>&1
            measured run_one "$codec"
            read -r cpu[$v] rate[$v] <"$tmp/run"
            node_stop
        done
        share="$(python3 -c "print(f'{${cpu[false]} / ${cpu[true]}:.3f}')")"
        shares+=("$share")
        printf '%-7s %-5s %12s %12s %12s %12s %8s\n' "$codec" "$r" "${cpu[true]}" "${cpu[false]}" "${rate[true]}" \
            "${rate[false]}" "$share"
    done
    summary+=("$codec: node CPU per GiB, validation off / on: $(python3 -c 'import statistics,sys; v=sorted(float(x) for x in sys.argv[1:]); print(f"median {statistics.median(v):.3f}, spread {v[0]:.3f}-{v[-1]:.3f}")' "${shares[@]}")")
done
printf '%s\n' "${summary[@]}"
