#!/usr/bin/env bash
# Seeds the request fuzz target with frames real clients send: starts a node with
# SLUICE_CAPTURE_REQUESTS (every request frame it reads is written to a directory, one file
# per distinct frame, correlation ids zeroed — see node/src/net.rs), runs kcat,
# confluent-kafka and kafka-python through produce, consume, consumer groups, transactions,
# offsets and config administration against it, and copies the frames into
# node/fuzz/seeds/request/ (committed; which `scripts/fuzz.sh` and `node/tests/fuzz_smoke.rs` read).
#
#   bash scripts/fuzz-corpus.sh
#
# Needs `bash scripts/test-deps.sh` (kcat, the .venv). The procedure is reproducible; the
# bytes are not quite (client ids, member ids, timestamps), so a rerun adds a few files
# rather than reproducing the set exactly. Re-running keeps the files already there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
CLIENTS=$ROOT/node/tests/clients
CORPUS=$ROOT/node/fuzz/seeds/request
[[ -x $PY ]] || { echo "no .venv: run bash scripts/test-deps.sh" >&2; exit 2; }
command -v kcat >/dev/null || { echo "no kcat: run bash scripts/test-deps.sh" >&2; exit 2; }
flock /tmp/sluice-machine.lock cargo build -q -p sluice-node --bin sluice
CAPTURE=$(mktemp -d)
DATA=$(mktemp -d)
OUT=$(mktemp)
trap 'kill "$NODE" 2>/dev/null || true; wait "$NODE" 2>/dev/null || true; rm -rf "$CAPTURE" "$DATA" "$OUT"' EXIT
SLUICE_CAPTURE_REQUESTS=$CAPTURE target/debug/sluice --listen 127.0.0.1:0 --admin off --data-dir "$DATA" \
  --cores 0-1 --set num.partitions=3 --set group.initial.rebalance.delay.ms=0 >"$OUT" 2>&1 &
NODE=$!
for _ in $(seq 300); do grep -q "sluice: ready" "$OUT" && break; sleep 0.1; done
B=$(grep -o 'kafka=[^ ]*' "$OUT" | cut -d= -f2)
[[ -n $B ]] || { cat "$OUT" >&2; exit 1; }
py() { (cd "$CLIENTS" && "$PY" -u "$@" >/dev/null) || echo "fuzz-corpus: $1 failed (its frames are still captured)" >&2; }

# kcat (librdkafka as Debian ships it): metadata, produce (keys, each codec), consume.
kcat -b "$B" -L >/dev/null
for codec in none gzip snappy lz4 zstd; do
  seq 1 50 | sed 's/^/k:v/' | kcat -b "$B" -P -t "kc-$codec" -K: -z "$codec" -X acks=all
  kcat -b "$B" -C -t "kc-$codec" -e -o beginning -q >/dev/null
done
# confluent-kafka: idempotent produce with headers, consume.
py ck_produce.py --bootstrap "$B" --topic ck --count 200 --headers --idempotence --null-value-every 7
py ck_consume.py --bootstrap "$B" --topic ck --count 200
# kafka-python: produce, consume.
py kp_produce.py --bootstrap "$B" --topic kp --count 200 --headers
py kp_consume.py --bootstrap "$B" --topic kp --count 200
# Consumer groups (join, sync, heartbeat, commit, leave), both clients.
for client in ck kp; do
  py grp_consumer.py --client "$client" --bootstrap "$B" --topic ck,kp --group "g-$client" \
    --max-records 300 --duration 20 --commit sync --no-records
done
# Offsets by time, earliest, latest.
for client in ck kp; do py offsets.py --client "$client" --bootstrap "$B" --topic ck; done
# Transactions: commit and abort, both clients.
for client in ck kp; do
  py txn_produce.py --client "$client" --bootstrap "$B" --topic "tx-$client" --txn-id "t-$client" --end commit
  py txn_produce.py --client "$client" --bootstrap "$B" --topic "tx-$client" --txn-id "t-$client" --end abort
done
# Config administration: describe, alter, incremental, create with configs, both clients.
for client in ck kp; do
  py cfg_admin.py --bootstrap "$B" --client "$client" --ops '[
    {"op": "describe", "type": "broker", "name": "0"},
    {"op": "create", "name": "cfg-'"$client"'", "partitions": 2, "config": {"retention.ms": "60000"}},
    {"op": "describe", "type": "topic", "name": "cfg-'"$client"'"},
    {"op": "alter", "type": "topic", "name": "cfg-'"$client"'", "set": {"retention.ms": "70000"}},
    {"op": "incremental", "type": "topic", "name": "cfg-'"$client"'", "ops": [["retention.bytes", "SET", "1000000"]]}
  ]'
done
mkdir -p "$CORPUS"
before=$(ls "$CORPUS" | wc -l)
cp -n "$CAPTURE"/* "$CORPUS"/ 2>/dev/null || true
after=$(ls "$CORPUS" | wc -l)
echo "fuzz-corpus: $(ls "$CAPTURE" | wc -l) distinct frames captured; $CORPUS holds $after ($((after - before)) new)"
ls "$CORPUS" | cut -d- -f1,2 | sort | uniq -c | awk '{printf "%s:%s ", $2, $1} END {print ""}'
