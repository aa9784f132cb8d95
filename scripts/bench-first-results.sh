#!/usr/bin/env bash
# sluice-bench's headline figures against a fresh release node (issue #4, Show 4), each
# round measuring the machine's limits in the same run:
#   1. produce 1 KiB, acks=1, closed loop          as a ratio to page-cache sequential write
#   2. consume catch-up of what (1) wrote          as a ratio to loopback TCP bandwidth
#   3. produce 100 B messages, closed loop         msg/s
#   4. produce 1 KiB, acks=1, open loop at 50 % of (1)'s rate: produce-ack p99 / p99.9
#      (coordinated omission corrected: latency from each record's intended send time)
# Node on core 0 (`--cores 0`), load threads on core 1; each run waits for a quiet machine
# and is repeated when another process used the CPU meanwhile (bench-lib.sh).
#
# Usage: bash scripts/bench-first-results.sh [ROUNDS] [SECONDS]
# Environment: SLUICE_BIN, BENCH (binaries), BASELINE_MIB [1024], OUT [bench/out/first-<time>].
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh

rounds="${1:-3}"
secs="${2:-10}"
sluice="${SLUICE_BIN:-target/release/sluice}"
bench="${BENCH:-target/release/sluice-bench}"
mib="${BASELINE_MIB:-1024}"
out="${OUT:-bench/out/first-$(date -u +%Y%m%dT%H%M%SZ)}"
need_binaries "$sluice" "$bench"
tmp="$(mktemp -d)"
trap 'node_stop; rm -rf "$tmp"' EXIT

# A field of a result.json: get FILE python-expression-on-r
get() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }
common=(--bootstrap "" --cores 1 --quiet 1 --warmup 2 --duration "$secs" --connections 2)

run() { # name, then sluice-bench arguments; output in $out/rROUND-name
    local name="$1"; shift
    "$bench" "$@" --out "$out/r$round-$name" >"$tmp/$name.out" 2>&1 || { cat "$tmp/$name.out" >&2; exit 1; }
}

rows=()
for round in $(seq "$rounds"); do
    NODE_BIN="$sluice" NODE_CORE=0 node_start "$tmp"
    common[1]="$kafka"
    sync
    measured run produce-1k produce "${common[@]}" --topic p1k --baseline-mib "$mib" --dir "$tmp/baseline"
    r1="$out/r$round-produce-1k/result.json"
    pc="$(awk '/^floor: page-cache write/ { print $(NF-3) }' "$tmp/produce-1k.out")"
    lo="$(awk '/^floor: loopback send/ { print $(NF-3) }' "$tmp/produce-1k.out")"
    p_msgs="$(get "$r1" 'round(r["produce"]["msgs_per_s"])')"
    p_mbs="$(get "$r1" 'r["produce"]["mb_per_s"]')"
    sync
    measured run consume consume --bootstrap "$kafka" --cores 1 --quiet 1 --topic p1k --baseline-mib "$mib" --dir "$tmp/baseline"
    r2="$out/r$round-consume/result.json"
    lo2="$(awk '/^floor: loopback send/ { print $(NF-3) }' "$tmp/consume.out")"
    c_msgs="$(get "$r2" 'round(r["consume"]["msgs_per_s"])')"
    c_mbs="$(get "$r2" 'r["consume"]["mb_per_s"]')"
    sync
    measured run produce-100 produce "${common[@]}" --topic p100 --size 100
    s_msgs="$(get "$out/r$round-produce-100/result.json" 'round(r["produce"]["msgs_per_s"])')"
    half=$((p_msgs / 2))
    sync
    measured run half produce "${common[@]}" --topic phalf --rate "$half"
    r4="$out/r$round-half/result.json"
    p99="$(get "$r4" 'r["produce_ack_latency"]["p99"]')"
    p999="$(get "$r4" 'r["produce_ack_latency"]["p99.9"]')"
    h_msgs="$(get "$r4" 'round(r["produce"]["msgs_per_s"])')"
    row="round $round: produce 1 KiB $p_msgs msg/s $p_mbs MB/s = $(python3 -c "print(f'{$p_mbs / $pc:.3f}')") x page-cache write ($pc MB/s)"
    row+=" | catch-up $c_msgs msg/s $c_mbs MB/s = $(python3 -c "print(f'{$c_mbs / $lo2:.3f}')") x loopback ($lo2 MB/s; $lo in the produce run)"
    row+=" | 100 B $s_msgs msg/s | at 50 % ($half msg/s target, $h_msgs reached) ack p99 ${p99} µs p99.9 ${p999} µs"
    echo "$row"
    rows+=("$row")
    node_stop
done
echo "outputs in $out"
