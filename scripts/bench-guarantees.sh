#!/usr/bin/env bash
# What producer guarantees and consumer groups cost (issues #5 and #6), each as a ratio to a
# baseline measured in the same run. Release build; node on core NODE_CORE, clients on
# LOAD_CORE. Prints one line per figure; copy them into bench/RESULTS.md.
#
#   1. idempotent vs plain produce: rdkafka_performance (librdkafka), 1 KiB, acks=all, both
#      with max.in.flight=5 (idempotence caps it at 5; plain librdkafka would allow 10^6),
#      alternating ROUNDS times (needs `bash scripts/rdkafka-perf.sh build` once)
#   2. transactional produce, 10 and 1000 messages per transaction, vs the same client
#      idempotent without transactions (confluent-kafka, scripts/bench_txn.py)
#   3. produce then catch-up fetch per codec (sluice-bench), and the cost of record
#      validation: the same produce with record.validation.enable=false
#   4. rebalance time (join -> every member assigned) for 3 and 30 members
#      (node/tests/clients/grp_rebalance_time.py, group.initial.rebalance.delay.ms=0)
#
# Usage: bash scripts/bench-guarantees.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
NODE_CORE=${NODE_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
PY=.venv/bin/python
BENCH=target/release/sluice-bench
PERF=target/rdkafka-perf/rdkafka_performance
tmp=$(mktemp -d)
node=""
cleanup() { [ -n "$node" ] && kill "$node" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

start_node() { # extra --set arguments
    [ -n "$node" ] && { kill "$node"; wait "$node" 2>/dev/null || true; }
    rm -rf "$tmp/data" && : >"$tmp/node.log"
    local sets=()
    for s in "$@"; do sets+=(--set "$s"); done
    taskset -c "$NODE_CORE" target/release/sluice --listen 127.0.0.1:0 --admin off --data-dir "$tmp/data" \
        --cores "$NODE_CORE" --set num.partitions=6 "${sets[@]}" >"$tmp/node.log" 2>&1 &
    node=$!
    for _ in $(seq 100); do grep -q "sluice: ready" "$tmp/node.log" && break; sleep 0.1; done
    kafka=$(grep -o 'kafka=[^ ]*' "$tmp/node.log" | cut -d= -f2)
}

median() { python3 -c 'import statistics,sys; v=sorted(float(x) for x in sys.argv[1:]); print(f"median {statistics.median(v):.3f}, spread {v[0]:.3f}-{v[-1]:.3f} over {len(v)}")' "$@"; }

# 1. idempotence
start_node
$BENCH produce --bootstrap "$kafka" --topic idem --partitions 6 --count 50000 --quiet 1 --out "$tmp/w" >/dev/null
rdk() { # enable.idempotence value -> msgs/s
    taskset -c "$LOAD_CORE" "$PERF" -P -t idem -b "$kafka" -s 1024 -c 300000 -a -1 -X linger.ms=5 \
        -X batch.size=16384 -X max.in.flight=5 -X "enable.idempotence=$1" 2>&1 | grep -E 'messages produced' | tail -1 |
        sed -E 's/.* ([0-9]+) msgs\/s.*/\1/'
}
ratios=()
for r in $(seq "$ROUNDS"); do
    plain=$(rdk false); idem=$(rdk true)
    ratio=$(python3 -c "print(f'{$idem / $plain:.3f}')")
    echo "idempotence round $r: plain $plain msg/s, idempotent $idem msg/s, ratio $ratio"
    ratios+=("$ratio")
done
echo "idempotent / plain (rdkafka_performance, 1 KiB, acks=all): $(median "${ratios[@]}")"

# 2. transactions
for per in 10 1000; do
    ratios=()
    for r in $(seq "$ROUNDS"); do
        count=$(( per == 10 ? 20000 : 100000 ))
        base=$(taskset -c "$LOAD_CORE" $PY scripts/bench_txn.py --bootstrap "$kafka" --topic txb --mode idempotent --count "$count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["msgs_per_s"])')
        txn=$(taskset -c "$LOAD_CORE" $PY scripts/bench_txn.py --bootstrap "$kafka" --topic txb --mode transactional --per-txn "$per" --count "$count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["msgs_per_s"])')
        ratio=$(python3 -c "print(f'{$txn / $base:.3f}')")
        echo "transactions of $per, round $r: idempotent $base msg/s, transactional $txn msg/s, ratio $ratio"
        ratios+=("$ratio")
    done
    echo "transactional ($per per transaction) / idempotent (confluent-kafka, 1 KiB): $(median "${ratios[@]}")"
done

# 3. codecs: produce, fetch; validation cost
rate() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); k=sys.argv[2]; print(round(r[k]["msgs_per_s"]), round(r[k]["mb_per_s"], 1))' "$1" "$2"; }
for validate in true false; do
    start_node "record.validation.enable=$validate"
    for codec in none gzip snappy lz4 zstd; do
        $BENCH produce --bootstrap "$kafka" --topic "c-$codec" --partitions 6 --compression "$codec" --count 300000 \
            --producers 1 --cores "$LOAD_CORE" --quiet 1 --out "$tmp/p-$codec" >/dev/null
        line="validation=$validate codec=$codec produce $(rate "$tmp/p-$codec/result.json" produce) (msg/s, MB/s)"
        if [ "$validate" = true ]; then
            $BENCH consume --bootstrap "$kafka" --topic "c-$codec" --count 300000 --cores "$LOAD_CORE" --quiet 1 \
                --out "$tmp/f-$codec" >/dev/null
            line="$line; catch-up fetch $(rate "$tmp/f-$codec/result.json" consume)"
        fi
        echo "$line"
    done
done

# 4. rebalance time
start_node "group.initial.rebalance.delay.ms=0"
for members in 3 30; do
    taskset -c "$LOAD_CORE" $PY node/tests/clients/grp_rebalance_time.py --bootstrap "$kafka" \
        --members "$members" --partitions 60 --rounds "$ROUNDS" | tail -1 |
        python3 -c 'import json,sys; r=json.load(sys.stdin); print("rebalance, %d members: initial %s, join %s, leave %s (ms; %s)" % (r["members"], r["initial_ms"], r["join_ms"], r["leave_ms"], r["client"]))'
done
