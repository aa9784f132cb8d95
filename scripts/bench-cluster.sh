#!/usr/bin/env bash
# Replication's cost and failover (issue #15 Show 5), not in CI: acks=all produce with
# replication factor 3 on three nodes (127.0.0.1-3, one core each, all on NODE_CORE)
# against one node alone with replication factor 1, the same client (confluent-kafka, i.e.
# librdkafka, idempotent, linger 1 ms, on LOAD_CORE) — as fast as it goes for throughput,
# and at RATE msg/s for delivery latency — and the failover time: a 1-partition,
# replication-factor-3 topic under RATE_FO msg/s whose leader is SIGKILLed (Kafka's default
# broker.session.timeout.ms, 9 s, and heartbeats, 2 s, unless NODE_ARGS says otherwise).
# Alternates cluster and single node per round; prints each round's JSON lines.
#
# Usage: bash scripts/bench-cluster.sh [ROUNDS] [SECONDS]
# Environment: SLUICE_BIN [target/release/sluice]; SIZE [1024]; RATE [2000]; RATE_FO [500];
# NODE_CORE [0]; LOAD_CORE [1]; NODE_ARGS extra node arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
secs="${2:-10}"
bin="$(readlink -f "${SLUICE_BIN:-target/release/sluice}")"
py="$PWD/.venv/bin/python"
size="${SIZE:-1024}" rate="${RATE:-2000}" rate_fo="${RATE_FO:-500}"
node_core="${NODE_CORE:-0}" load_core="${LOAD_CORE:-1}"
work="$(mktemp -d /tmp/sluice-bench-cluster.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

start() { # start N: N nodes (1: alone; 3: a cluster), wait until ready
    local n="$1" i voters=""
    pids=()
    if [ "$n" = 3 ]; then
        voters="1@127.0.0.1:19093,2@127.0.0.2:19093,3@127.0.0.3:19093"
    fi
    for i in $(seq 1 "$n"); do
        mkdir -p "$work/n$i"
        local args=(--listen "127.0.0.$i:19092" --admin "127.0.0.$i:19644" --data-dir "$work/n$i/data" --cores "$node_core")
        [ -n "$voters" ] && args+=(--set "node.id=$i" --set "controller.quorum.voters=$voters")
        # shellcheck disable=SC2086
        "$bin" "${args[@]}" ${NODE_ARGS:-} >"$work/n$i/log" 2>&1 &
        pids+=("$!")
    done
    for i in $(seq 1 "$n"); do
        for _ in $(seq 1 300); do grep -q 'sluice: ready' "$work/n$i/log" && break; sleep 0.1; done
    done
    if [ "$n" = 3 ]; then # three registered brokers
        for _ in $(seq 1 300); do
            [ "$(python3 -c "import json,urllib.request;print(len(json.load(urllib.request.urlopen('http://127.0.0.1:19644/v1/brokers'))))" 2>/dev/null)" = 3 ] && break
            sleep 0.1
        done
    fi
}

stop() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
    rm -rf "$work"/n*
}

client() { taskset -c "$load_core" "$py" scripts/bench_cluster.py "$@"; }

for r in $(seq 1 "$rounds"); do
    start 3
    b="127.0.0.1:19092,127.0.0.2:19092,127.0.0.3:19092"
    client create "$b" rf3 3 3
    echo "$r cluster-rf3 max $(client load "$b" rf3 "$secs" 0 "$size")"
    echo "$r cluster-rf3 rate $(client load "$b" rf3 "$secs" "$rate" "$size")"
    client create "$b" fo 1 3
    echo "$r cluster-rf3 failover $(client failover "$b" fo "$rate_fo" "1:${pids[0]},2:${pids[1]},3:${pids[2]}")"
    stop
    start 1
    b="127.0.0.1:19092"
    client create "$b" rf1 3 1
    echo "$r single-rf1 max $(client load "$b" rf1 "$secs" 0 "$size")"
    echo "$r single-rf1 rate $(client load "$b" rf1 "$secs" "$rate" "$size")"
    stop
done
