#!/usr/bin/env bash
# A three-node Sluice cluster on this machine, in one command (what `docker compose up` is
# for Kafka in KRaft mode): nodes 1, 2 and 3 on 127.0.0.1, 127.0.0.2 and 127.0.0.3, each
# with its Kafka listener on :9092, its admin endpoint on :9644 and its quorum (Raft)
# listener on :9093, all started with Kafka's settings:
#   --set node.id=N --set controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.2:9093,3@127.0.0.3:9093
#
#   bash scripts/cluster.sh start    build (release) if needed, start the three nodes, wait for
#                                    one leader and three registered brokers, print them
#   bash scripts/cluster.sh status   each node's view of the quorum, and the brokers
#   bash scripts/cluster.sh stop     SIGTERM each node and wait for a clean exit
#
# Environment: CLUSTER_DIR [./data/cluster] (each node's data dir, log and pid file);
# SLUICE_BIN [target/release/sluice]; CLUSTER_ARGS extra arguments for every node.
#
# What the cluster shares so far (issue #15): the metadata quorum, the broker registrations
# and liveness, the topics and their replicas (CreateTopics' replication_factor), with
# leader failover; README "A cluster of three nodes" says what is not there yet.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${CLUSTER_DIR:-data/cluster}"
bin="${SLUICE_BIN:-target/release/sluice}"
voters="1@127.0.0.1:9093,2@127.0.0.2:9093,3@127.0.0.3:9093"

get() { # GET http://$1$2, body only
    python3 - "$1" "$2" <<'EOF'
import sys, urllib.request
try:
    print(urllib.request.urlopen(f"http://{sys.argv[1]}{sys.argv[2]}", timeout=2).read().decode())
except Exception as e:
    print(f"unreachable ({e})")
EOF
}

running() { [ -f "$dir/n$1/pid" ] && kill -0 "$(cat "$dir/n$1/pid")" 2>/dev/null; }

status() {
    for i in 1 2 3; do
        echo "node $i: $(get 127.0.0.$i:9644 /v1/cluster/quorum)"
    done
    for i in 1 2 3; do
        if running "$i"; then
            echo "brokers (as node $i sees them): $(get 127.0.0.$i:9644 /v1/brokers)"
            return
        fi
    done
}

case "${1:-}" in
start)
    if [ ! -x "$bin" ]; then
        cargo build --release -p sluice-node --bin sluice
    fi
    for i in 1 2 3; do
        if running "$i"; then
            echo "cluster: node $i already runs (pid $(cat "$dir/n$i/pid"))" >&2
            exit 1
        fi
    done
    for i in 1 2 3; do
        mkdir -p "$dir/n$i"
        # shellcheck disable=SC2086
        "$bin" --listen "127.0.0.$i:9092" --admin "127.0.0.$i:9644" --data-dir "$dir/n$i/data" \
            --set "node.id=$i" --set "controller.quorum.voters=$voters" ${CLUSTER_ARGS:-} \
            >"$dir/n$i/node.log" 2>&1 &
        echo $! >"$dir/n$i/pid"
    done
    # One leader, named alike by all three, and three registered brokers.
    for _ in $(seq 1 300); do
        views="$(for i in 1 2 3; do get 127.0.0.$i:9644 /v1/cluster/quorum; done)"
        if python3 - "$views" "$(get 127.0.0.1:9644 /v1/brokers)" <<'EOF'
import json, sys
try:
    views = [json.loads(l) for l in sys.argv[1].splitlines()]
    brokers = json.loads(sys.argv[2])
except ValueError:
    sys.exit(1)
leaders = {v["leader_id"] for v in views}
sys.exit(0 if len(views) == 3 and len(leaders) == 1 and None not in leaders and len(brokers) == 3 else 1)
EOF
        then
            echo "cluster: up in $dir (logs: $dir/nN/node.log); bootstrap 127.0.0.1:9092,127.0.0.2:9092,127.0.0.3:9092"
            status
            exit 0
        fi
        for i in 1 2 3; do
            running "$i" || { echo "cluster: node $i exited:" >&2; tail -n 20 "$dir/n$i/node.log" >&2; exit 1; }
        done
        sleep 0.1
    done
    echo "cluster: no settled quorum after 30 s" >&2
    status >&2
    exit 1
    ;;
status)
    status
    ;;
stop)
    for i in 1 2 3; do
        running "$i" && kill -TERM "$(cat "$dir/n$i/pid")"
    done
    for i in 1 2 3; do
        for _ in $(seq 1 300); do running "$i" || break; sleep 0.1; done
        if running "$i"; then
            echo "cluster: node $i did not stop within 30 s" >&2
            exit 1
        fi
        rm -f "$dir/n$i/pid"
    done
    echo "cluster: stopped"
    ;;
*)
    echo "usage: bash scripts/cluster.sh start|status|stop" >&2
    exit 2
    ;;
esac
