#!/usr/bin/env python3
"""The client side of scripts/bench-cluster.sh (issue #15 Show 5), with confluent-kafka
(librdkafka): acks=all produce throughput and delivery latency, and failover time.

  bench_cluster.py load BOOTSTRAP TOPIC SECONDS RATE SIZE
      produce SIZE-byte values with acks=all (idempotent) for SECONDS, at RATE msg/s (0: as
      fast as the client goes), and print one JSON line: acknowledged msg/s, MB/s, and the
      delivery latency p50/p99/p99.9 in ms (librdkafka's own per-message latency, from
      produce() to the acknowledgement).

  bench_cluster.py create BOOTSTRAP TOPIC PARTITIONS REPLICATION_FACTOR

  bench_cluster.py failover BOOTSTRAP TOPIC RATE PIDS
      produce to partition 0 at RATE msg/s; after 3 s SIGKILL its leader (PIDS: "1:PID,2:PID,
      3:PID", node id to process), keep producing for 12 s more, then flush and read the
      partition back: print one JSON line with the failover time (from the kill to the first
      acknowledgement of a record sent after it), records acknowledged, and the acknowledged
      records missing or doubled in the log.
"""
import json
import os
import signal
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def producer(bootstrap):
    return Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 1,
        "queue.buffering.max.messages": 1000000,
        "message.timeout.ms": 60000,
    })


def load(bootstrap, topic, seconds, rate, size):
    p = producer(bootstrap)
    latencies, acked, failed = [], [0], [0]

    def done(err, msg):
        if err is None:
            acked[0] += 1
            latency = msg.latency()
            # Records sent in the first second (connections, producer id, metadata) are
            # counted, not timed.
            if time.perf_counter() - latency - start >= 1:
                latencies.append(latency)
        else:
            failed[0] += 1

    value = b"x" * size
    start = time.perf_counter()
    sent = 0
    while time.perf_counter() - start < seconds:
        if rate > 0:
            due = start + sent / rate
            now = time.perf_counter()
            if now < due:
                p.poll(min(due - now, 0.01))
                continue
        try:
            p.produce(topic, value, on_delivery=done)
            sent += 1
        except BufferError:
            p.poll(0.001)
        p.poll(0)
    p.flush(120)
    elapsed = time.perf_counter() - start
    ms = [l * 1000 for l in latencies]
    print(json.dumps({
        "acked": acked[0],
        "failed": failed[0],
        "msg_per_s": round(acked[0] / elapsed),
        "mb_per_s": round(acked[0] * size / elapsed / 1e6, 1),
        "p50_ms": round(percentile(ms, 0.5), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "p999_ms": round(percentile(ms, 0.999), 2),
    }))


def create(bootstrap, topic, partitions, rf):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, partitions, rf)]).values():
        f.result(30)
    # Until every partition has a leader in the cluster's answers.
    deadline = time.time() + 30
    while time.time() < deadline:
        t = admin.list_topics(topic, timeout=5).topics.get(topic)
        if t and len(t.partitions) == partitions and all(p.leader >= 0 for p in t.partitions.values()):
            return
        time.sleep(0.1)
    sys.exit(f"topic {topic} has no leaders")


def leader_of(bootstrap, topic):
    t = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10).topics[topic]
    return t.partitions[0].leader


def failover(bootstrap, topic, rate, pids):
    pids = {int(a): int(b) for a, b in (x.split(":") for x in pids.split(","))}
    victim = leader_of(bootstrap, topic)
    p = producer(bootstrap)
    acks = []  # (ack time, key)

    def done(err, msg):
        if err is None:
            acks.append((time.perf_counter(), msg.key().decode()))

    sent_at = {}
    start = time.perf_counter()
    killed_at = None
    i = 0
    while time.perf_counter() - start < 15:
        now = time.perf_counter()
        if killed_at is None and now - start >= 3:
            os.kill(pids[victim], signal.SIGKILL)
            killed_at = time.perf_counter()
        due = start + i / rate
        if now < due:
            p.poll(min(due - now, 0.005))
            continue
        key = f"k{i}"
        sent_at[key] = time.perf_counter()
        p.produce(topic, b"v", key=key.encode(), partition=0, on_delivery=done)
        i += 1
        p.poll(0)
    p.flush(120)
    after = [t for t, k in acks if sent_at[k] > killed_at]
    failover_s = (min(after) - killed_at) if after else None
    acked_keys = [k for _, k in acks]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{time.time()}", "enable.auto.commit": False})
    tp = TopicPartition(topic, 0, 0)
    c.assign([tp])
    seen = {}
    idle = time.time()
    while time.time() - idle < 5:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        idle = time.time()
        k = m.key().decode()
        seen[k] = seen.get(k, 0) + 1
    c.close()
    missing = [k for k in acked_keys if k not in seen]
    doubled = [k for k, n in seen.items() if n > 1]
    print(json.dumps({
        "killed": victim,
        "failover_s": round(failover_s, 2) if failover_s is not None else None,
        "acked": len(acked_keys),
        "missing": len(missing),
        "doubled": len(doubled),
    }))


if __name__ == "__main__":
    if sys.argv[1] == "load":
        load(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]))
    elif sys.argv[1] == "create":
        create(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == "failover":
        failover(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
