#!/usr/bin/env bash
# Soak (issue #14 Build 9; not in CI): one node under DURATION seconds of mixed load, all at
# once — an acks=all idempotent producer read by a consumer group of 3 whose members leave and
# rejoin in turn (every 30 s), an acks=1 producer (kafka-python) and its reader, a
# transactional producer committing and aborting alternately with a read_committed reader, and
# two topics with 1 MiB segments and small retention.bytes / retention.ms so that retention
# deletes segments all the time (~2.5 MB/s produced in all). Every 10 s the node's RSS,
# descriptors, threads, CPU, node log warnings/errors, client errors and per-stream counts go
# to samples.csv. At the end: drain, then check that every acknowledged acks=all key was
# consumed by the group (and is in the log exactly once), read_committed saw no aborted
# record, retention deleted segments and bounded the partitions, and the node exits 0 on
# SIGTERM. Prints a summary block for bench/RESULTS.md; exits 1 if a check failed.
# The load, sampling and checks are scripts/soak.py (its docstring lists the streams).
#
# Usage (the machine has 2 cores; hold the machine lock):
#   flock /tmp/sluice-machine.lock env SLUICE_BIN=/work/bins/sluice-soak bash scripts/soak.sh
# Environment:
#   SLUICE_BIN    node binary (default target/release/sluice)
#   DURATION      seconds of load (default 1800)
#   SOAK_DIR      where the data dir, node.log, samples.csv, result.json, summary.md and
#                 driver.log (the clients' stderr: librdkafka's log, tracebacks) go
#                 (default: a new /tmp/sluice-soak.XXXXXX)
#   SOAK_KEEP_DATA  1: keep the data dir; 0: delete it; default: keep it only if a check failed
#   SOAK_CORES    the node's --cores (default: all)
#   SOAK_NODE_ARGS  extra node arguments, e.g. "--set log.flush.interval.ms=1000"
#   SOAK_ARGS     extra arguments for scripts/soak.py run (rates: --rate-all 800 --rate-one 800
#                 --rate-ret-bytes 600 --rate-ret-time 300 --txn-per-s 4 --txn-size 20
#                 --size 1024 --churn-s 30 --rejoin-s 5 --sample-s 10)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SLUICE_BIN=${SLUICE_BIN:-target/release/sluice}
DURATION=${DURATION:-1800}
PY=${PYTHON:-$ROOT/.venv/bin/python}

[ -x "$SLUICE_BIN" ] || { echo "soak: no node binary at $SLUICE_BIN (set SLUICE_BIN)" >&2; exit 2; }
SLUICE_BIN=$(readlink -f "$SLUICE_BIN")
if ! "$PY" -c 'import confluent_kafka, kafka' 2>/dev/null; then
    echo "soak: $PY lacks confluent-kafka / kafka-python: run bash scripts/test-deps.sh" >&2
    exit 2
fi
if [ -n "${SOAK_DIR:-}" ]; then
    mkdir -p "$SOAK_DIR"
else
    SOAK_DIR=$(mktemp -d /tmp/sluice-soak.XXXXXX)
fi
SOAK_DIR=$(readlink -f "$SOAK_DIR")
DATA=$SOAK_DIR/data
NODE_LOG=$SOAK_DIR/node.log
if [ -e "$DATA" ]; then
    echo "soak: $DATA exists; use a fresh SOAK_DIR" >&2
    exit 2
fi

node=""
driver=""
stop_s=""
stop_node() { # SIGTERM, up to 60 s for a clean exit, then SIGKILL; sets node_rc
    node_rc=""
    [ -n "$node" ] || return 0
    local t0
    t0=$(date +%s.%N)
    kill -TERM "$node" 2>/dev/null || true
    for _ in $(seq 600); do
        kill -0 "$node" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$node" 2>/dev/null; then
        echo "soak: the node did not exit within 60 s of SIGTERM: SIGKILL" >&2
        kill -KILL "$node" 2>/dev/null || true
    fi
    node_rc=0
    wait "$node" || node_rc=$?
    stop_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    node=""
}
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    if [ -n "$driver" ]; then kill -TERM "$driver" 2>/dev/null || true; wait "$driver" 2>/dev/null || true; fi
    stop_node
}
trap cleanup EXIT
trap 'echo "soak: interrupted" >&2; exit 130' INT TERM

echo "soak: $DURATION s, node $SLUICE_BIN, output in $SOAK_DIR"
cores_args=()
[ -n "${SOAK_CORES:-}" ] && cores_args=(--cores "$SOAK_CORES")
read -r -a node_args <<<"${SOAK_NODE_ARGS:-}"
# Port 0: the node picks free ports and names them in its ready line. Retention is checked
# every 5 s (Kafka's default is 5 min) so that the retention topics are trimmed continuously.
"$SLUICE_BIN" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --data-dir "$DATA" "${cores_args[@]}" \
    --set log.retention.check.interval.ms=5000 "${node_args[@]}" >"$NODE_LOG" 2>&1 &
node=$!
for _ in $(seq 300); do
    grep -q '^sluice: ready' "$NODE_LOG" && break
    kill -0 "$node" 2>/dev/null || break
    sleep 0.1
done
if ! grep -q '^sluice: ready' "$NODE_LOG"; then
    echo "soak: the node did not become ready:" >&2
    cat "$NODE_LOG" >&2
    exit 1
fi
ready=$(grep -m1 '^sluice: ready' "$NODE_LOG")
echo "soak: $ready (pid $node)"
kafka=$(sed -E 's/.*kafka=([^ ]+).*/\1/' <<<"$ready")
admin=$(sed -E 's/.*admin=([^ ]+).*/\1/' <<<"$ready")
shards=$(sed -E 's/.*shards=([0-9]+).*/\1/' <<<"$ready")
ls -l "/proc/$node/fd" >"$SOAK_DIR/fds-at-start.txt" 2>&1 || true

# The driver gets DURATION plus time for the drain (up to 300 s), the scan and flushes; past
# that it is stopped and the run fails (no result.json).
read -r -a extra <<<"${SOAK_ARGS:-}"
driver_rc=0
timeout --signal=TERM --kill-after=30 "$((DURATION + 1200))" \
    "$PY" -u scripts/soak.py run --bootstrap "$kafka" --admin "$admin" --node-pid "$node" \
    --node-log "$NODE_LOG" --data-dir "$DATA" --out "$SOAK_DIR" --duration "$DURATION" "${extra[@]}" \
    2>"$SOAK_DIR/driver.log" &
driver=$!
wait "$driver" || driver_rc=$?
driver=""
if [ "$driver_rc" != 0 ]; then
    echo "soak: the load driver exited $driver_rc; the end of its stderr ($SOAK_DIR/driver.log):" >&2
    tail -n 30 "$SOAK_DIR/driver.log" >&2
elif [ -s "$SOAK_DIR/driver.log" ]; then
    echo "soak: the clients logged $(wc -l <"$SOAK_DIR/driver.log") lines to $SOAK_DIR/driver.log"
fi

# What the node holds open at the end (descriptors on deleted files show as "(deleted)").
ls -l "/proc/$node/fd" >"$SOAK_DIR/fds-at-end.txt" 2>&1 || true
echo "soak: stopping the node (SIGTERM)"
stop_node
echo "soak: node exit code $node_rc, ${stop_s} s after SIGTERM"

bin_info="sha256 $(sha256sum "$SLUICE_BIN" | cut -c1-12), modified $(date -u -r "$SLUICE_BIN" +%Y-%m-%dT%H:%MZ)"
args_shown=""
[ -n "${SOAK_ARGS:-}" ] && args_shown=" SOAK_ARGS=\"$SOAK_ARGS\""
[ -n "${SOAK_NODE_ARGS:-}" ] && args_shown="$args_shown SOAK_NODE_ARGS=\"$SOAK_NODE_ARGS\""
summary_rc=0
"$PY" scripts/soak.py summary --out "$SOAK_DIR" --exit-code "$node_rc" --stop-s "$stop_s" \
    --command "flock /tmp/sluice-machine.lock env SLUICE_BIN=$SLUICE_BIN DURATION=$DURATION$args_shown bash scripts/soak.sh" \
    --binary "$SLUICE_BIN" --binary-info "$bin_info" --shards "$shards" --data-dir-shown "$DATA" \
    >"$SOAK_DIR/summary.md" || summary_rc=$?
[ "$driver_rc" = 0 ] || summary_rc=1
echo
echo "=================== summary (also in $SOAK_DIR/summary.md) ==================="
cat "$SOAK_DIR/summary.md"
echo "==============================================================================="

keep=${SOAK_KEEP_DATA:-}
if [ -z "$keep" ]; then keep=$([ "$summary_rc" = 0 ] && echo 0 || echo 1); fi
if [ "$keep" = 1 ]; then
    echo "soak: data kept in $DATA ($(du -sh "$DATA" | cut -f1))"
else
    rm -rf "$DATA"
fi
[ "$summary_rc" = 0 ] && echo "soak: PASS" || echo "soak: FAIL"
exit "$summary_rc"
