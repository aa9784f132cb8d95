#!/usr/bin/env bash
# Catch-up fetch from page cache: zero-copy (splice) vs copying path, same data, same run.
# Usage: scripts/bench-fetch.sh [MiB=2560] [rounds=2]
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-2560}
ROUNDS=${2:-2}
cargo build --release -q -p sluice-node -p sluice-bench
DIR=$(mktemp -d /tmp/sluice-bench-fetch.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$DIR"' EXIT
start_node() { # $1 = zero copy true/false
  ./target/release/sluice --listen 127.0.0.1:0 --data-dir "$DIR/data" --cores 0 \
    --set fetch.zero.copy.enable="$1" > "$DIR/node.out" 2>&1 &
  NODE=$!
  for _ in $(seq 100); do grep -q ready "$DIR/node.out" && break; sleep 0.1; done
  ADDR=$(grep -o 'kafka=[0-9.:]*' "$DIR/node.out" | cut -d= -f2)
}
stop_node() { kill -TERM "$NODE"; wait "$NODE" || true; }
start_node true
taskset -c 1 ./target/release/sluice-bench produce --bootstrap "$ADDR" --topic catchup --partitions 4 \
  --mib "$MIB" --batch-bytes 65536 --in-flight 8 --node-pid "$NODE"
stop_node
cat "$DIR"/data/catchup-*/*.log > /dev/null   # make sure every segment is in the page cache
taskset -c 1 ./target/release/sluice-bench baseline --dir "$DIR" --mib 1024
for round in $(seq "$ROUNDS"); do
  for zc in true false; do
    start_node "$zc"
    echo -n "round $round zero-copy=$zc: "
    taskset -c 1 ./target/release/sluice-bench consume --bootstrap "$ADDR" --topic catchup --partitions 4 \
      --mib "$MIB" --fetch-bytes 1048576 --node-pid "$NODE"
    stop_node
  done
done
