#!/bin/bash
# perf profile of the node under 1 KiB acks=1 produce in 1 MB batches (bench/RESULTS.md (20)).
# The node runs in the full memory cgroup (scripts/bench-lib.sh) on core 0, the load on core 1;
# perf samples the node for 4 s of an 8 s run. Prints the node's CPU per GiB and the top symbols.
#
#   bash scripts/probes/profile-produce.sh target/release/sluice main [sluice-bench|rdkafka]
#
# rdkafka needs rdkafka_performance built as scripts/rdkafka-perf.sh builds it.
# PERF=stat counts instead of sampling: recvfrom, io_uring_enter, pwritev, sendto (one per
# response) and context switches over the same 4 s (divide by the MB moved for per-MB figures).
set -euo pipefail
bin="$1" label="$2" load="${3:-sluice-bench}"
cd "$(dirname "$0")/../.."
source scripts/bench-lib.sh
MEMCG_NAME=sluice-prof
memcg_enter 4096 2>/dev/null
d="/var/tmp/prof-$label"
rm -rf "$d"
mkdir -p "$d"
taskset -c 0 "$bin" --cores 0 --data-dir "$d" --listen 127.0.0.1:19093 --admin off >"/tmp/prof-$label.out" 2>&1 &
pid=$!
sleep 1.5
if [ "$load" = rdkafka ]; then
    target/release/sluice-bench produce --bootstrap 127.0.0.1:19093 --topic floor --partitions 6 --count 1000 \
        --quiet 1 --out "/tmp/prof-$label-create" >/dev/null
    count=9000000
    c0="$(proc_cpu "$pid")"
    taskset -c 1 target/rdkafka-perf/rdkafka_performance -P -t floor -b 127.0.0.1:19093 -s 1024 -c $count -a 1 \
        -X batch.size=1000000 -X linger.ms=5 -X queue.buffering.max.messages=1000000 -q >"/tmp/prof-$label.txt" 2>&1 &
else
    target/release/sluice-bench produce --bootstrap 127.0.0.1:19093 --topic floor --partitions 6 --size 1024 --acks 1 \
        --batch-bytes 1000000 --in-flight 5 --cores 1 --warmup 2 --duration 8 --node-pid "$pid" --quiet 1 \
        --out "/tmp/prof-$label-bench" >"/tmp/prof-$label.txt" &
fi
load_pid=$!
sleep 4
if [ "${PERF:-record}" = stat ]; then
    perf stat -e syscalls:sys_enter_recvfrom,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_pwritev \
        -e syscalls:sys_enter_sendto,context-switches -p "$pid" -o "/tmp/prof-$label.stat" -- sleep 4 >/dev/null 2>&1
else
    perf record -F 2000 -g -p "$pid" -o "/tmp/prof-$label.data" -- sleep 4 >/dev/null 2>&1
fi
wait "$load_pid"
if [ "$load" = rdkafka ]; then
    python3 -c "print('node CPU %.3f CPU-s/GiB' % (($(proc_cpu "$pid") - $c0) / ($count * 1024 / 2**30)))"
else
    grep -E "node CPU|produce:" "/tmp/prof-$label.txt" | tail -2
fi
kill "$pid"
wait "$pid" || true
memcg_refill "$d"
[ "${PERF:-record}" = stat ] && exec grep -E "^ +[0-9]" "/tmp/prof-$label.stat"
perf report -i "/tmp/prof-$label.data" --no-children --sort symbol --stdio 2>/dev/null | grep -E "^ +[0-9]" | head -25
