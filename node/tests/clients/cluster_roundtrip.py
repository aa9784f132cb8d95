"""One step of a client round trip through a cluster, for node/tests/e2e_cluster_clients.rs.

--client ck (confluent-kafka / librdkafka) or kp (kafka-python); --bootstrap is the list of
every node. --step:

  create    create --topic with --partitions and --replication-factor (the client's admin API)
            -> {"client", "error"}
  produce   --count records, record i = key "k{i % --keys}", value "v{i}", keyed (the client's
            partitioner), acks=all, idempotent -> {"client", "acked", "errors", "error_samples",
            "partitions": {p: acked}, "elapsed_s"}
  consume   subscribe to --topic in --group (auto.offset.reset earliest, no auto commit),
            commit synchronously after every poll batch, stop after --count records and
            --linger more seconds of polling (--count 0: --linger seconds once the partitions
            are assigned), commit, read the group's committed offsets back, close
            -> {"client", "records": [[p, offset, key, value], ...] in delivery order,
                "assigned": [p, ...], "committed": {p: offset}, "timed_out", "elapsed_s"}
            With --isolation read_committed it reads committed transactions only.
  txn       (ck) a transactional producer (--txn-id): one transaction of --count records
            "a{j}" spread over every partition (j % partitions) aborted, then one of --count
            records "c{j}" committed -> {"client", "aborted": n, "committed": n, "elapsed_s"}

Exactly one JSON object on stdout, the last line; diagnostics on stderr. A client error
fails the script (exit 1) unless the step reports it.
"""

import argparse
import json
import sys
import time


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--client", choices=["ck", "kp"], required=True)
    p.add_argument("--step", choices=["create", "produce", "consume", "txn"], required=True)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--replication-factor", type=int, default=3)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--keys", type=int, default=100)
    p.add_argument("--group", default=None)
    p.add_argument("--isolation", choices=["read_committed", "read_uncommitted"], default="read_uncommitted")
    p.add_argument("--linger", type=float, default=1.0)
    p.add_argument("--txn-id", default=None)
    p.add_argument("--timeout", type=float, default=90.0)
    return p.parse_args()


def text(b):
    return None if b is None else b.decode("utf-8", "replace")


def ck_name():
    import confluent_kafka as ck
    return "confluent-kafka " + ck.__version__ + " / librdkafka " + ck.libversion()[0]


def kp_name():
    import kafka
    return "kafka-python " + kafka.__version__


# --- create -----------------------------------------------------------------------------------

def create_ck(a):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    futures = admin.create_topics([NewTopic(a.topic, a.partitions, a.replication_factor)], request_timeout=30)
    try:
        futures[a.topic].result(60)
        return None
    except Exception as e:  # noqa: BLE001 - reported to the test
        return str(e)


def create_kp(a):
    from kafka.admin import KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=a.bootstrap.split(","), request_timeout_ms=30000)
    try:
        topics = {a.topic: {"num_partitions": a.partitions, "replication_factor": a.replication_factor}}
        admin.create_topics(topics, timeout_ms=30000, raise_errors=True)
        return None
    except Exception as e:  # noqa: BLE001 - reported to the test
        return repr(e)
    finally:
        admin.close()


# --- produce ----------------------------------------------------------------------------------

def record(a, i):
    return f"k{i % a.keys}".encode(), f"v{i}".encode()


def produce_ck(a):
    import confluent_kafka as ck
    p = ck.Producer({
        "bootstrap.servers": a.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "error_cb": lambda err: log("produce error_cb:", err),
    })
    acked, errors, samples, parts = 0, 0, [], {}

    def cb(err, msg):
        nonlocal acked, errors
        if err is not None:
            errors += 1
            if len(samples) < 10:
                samples.append(f"{err.name()}: {err}")
        else:
            acked += 1
            parts[str(msg.partition())] = parts.get(str(msg.partition()), 0) + 1

    for i in range(a.count):
        k, v = record(a, i)
        while True:
            try:
                p.produce(a.topic, key=k, value=v, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(a.timeout)
    if left:
        errors += left
        samples.append(f"{left} records undelivered after {a.timeout}s")
    return acked, errors, samples, parts


def produce_kp(a):
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=a.bootstrap.split(","), acks="all", enable_idempotence=True,
                      linger_ms=5)
    futs = []
    for i in range(a.count):
        k, v = record(a, i)
        futs.append(p.send(a.topic, key=k, value=v))
    p.flush(timeout=a.timeout)
    acked, errors, samples, parts = 0, 0, [], {}
    for f in futs:
        try:
            md = f.get(timeout=a.timeout)
            acked += 1
            parts[str(md.partition)] = parts.get(str(md.partition), 0) + 1
        except Exception as e:  # noqa: BLE001
            errors += 1
            if len(samples) < 10:
                samples.append(repr(e))
    p.close(timeout=10)
    return acked, errors, samples, parts


# --- consume ----------------------------------------------------------------------------------

class Stop:
    """When a consumer stops: --count records then --linger seconds, or --linger seconds after
    the assignment when --count is 0; at --timeout in any case."""

    def __init__(self, a):
        self.a = a
        self.t0 = time.monotonic()
        self.linger_end = None
        self.timed_out = False

    def done(self, records, assigned):
        now = time.monotonic()
        if now >= self.t0 + self.a.timeout:
            self.timed_out = True
            return True
        if self.linger_end is None and assigned and records >= self.a.count:
            self.linger_end = now + self.a.linger
        return self.linger_end is not None and now >= self.linger_end


def consume_ck(a):
    import confluent_kafka as ck
    c = ck.Consumer({
        "bootstrap.servers": a.bootstrap,
        "group.id": a.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "isolation.level": a.isolation,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "error_cb": lambda err: log("consume error_cb:", err),
    })
    assigned = set()

    def on_assign(consumer, parts):
        assigned.update(p.partition for p in parts)
        log("assigned", sorted(assigned))

    c.subscribe([a.topic], on_assign=on_assign)
    records, stop = [], Stop(a)
    while not stop.done(len(records), assigned):
        batch = c.consume(500, 0.2)
        good = []
        for m in batch:
            if m.error() is not None:
                raise RuntimeError(f"consume error: {m.error()}")
            good.append(m)
            records.append([m.partition(), m.offset(), text(m.key()), text(m.value())])
        if good:
            c.commit(asynchronous=False)
    committed = {}
    parts = [ck.TopicPartition(a.topic, p) for p in range(a.partitions)]
    for tp in c.committed(parts, timeout=30):
        if tp.error is not None:
            raise RuntimeError(f"committed: {tp.error}")
        committed[str(tp.partition)] = tp.offset
    c.close()
    return records, sorted(assigned), committed, stop.timed_out


def consume_kp(a):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(a.topic, bootstrap_servers=a.bootstrap.split(","), group_id=a.group,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      isolation_level=a.isolation, session_timeout_ms=6000, heartbeat_interval_ms=500)
    records, stop = [], Stop(a)
    assigned = set()
    while not stop.done(len(records), assigned):
        polled = c.poll(timeout_ms=200, max_records=500)
        assigned = {tp.partition for tp in c.assignment()}
        n = 0
        for tp, msgs in polled.items():
            for m in msgs:
                records.append([m.partition, m.offset, text(m.key), text(m.value)])
                n += 1
        if n:
            c.commit()
    committed = {}
    for p in range(a.partitions):
        off = c.committed(TopicPartition(a.topic, p))
        committed[str(p)] = -1001 if off is None else off
    c.close()
    return records, sorted(assigned), committed, stop.timed_out


# --- txn --------------------------------------------------------------------------------------

def txn_ck(a):
    import confluent_kafka as ck
    p = ck.Producer({
        "bootstrap.servers": a.bootstrap,
        "transactional.id": a.txn_id,
        "linger.ms": 5,
        "error_cb": lambda err: log("txn error_cb:", err),
    })
    p.init_transactions(60)
    failed = []

    def cb(err, msg):
        if err is not None:
            failed.append(f"{err.name()}: {err}")

    for prefix, end in (("a", p.abort_transaction), ("c", p.commit_transaction)):
        p.begin_transaction()
        for j in range(a.count):
            p.produce(a.topic, key=f"k{j % a.keys}".encode(), value=f"{prefix}{j}".encode(),
                      partition=j % a.partitions, on_delivery=cb)
            p.poll(0)
        left = p.flush(60)
        if left or failed:
            raise RuntimeError(f"{left} records undelivered, failed: {failed[:5]}")
        end(60)
        log("transaction", prefix, "ended")
    return a.count, a.count


def main():
    a = parse_args()
    ck = a.client == "ck"
    name = ck_name() if ck else kp_name()
    t0 = time.monotonic()
    if a.step == "create":
        error = (create_ck if ck else create_kp)(a)
        emit({"client": name, "error": error, "elapsed_s": round(time.monotonic() - t0, 3)})
    elif a.step == "produce":
        acked, errors, samples, parts = (produce_ck if ck else produce_kp)(a)
        emit({"client": name, "acked": acked, "errors": errors, "error_samples": samples, "partitions": parts,
              "elapsed_s": round(time.monotonic() - t0, 3)})
    elif a.step == "consume":
        if not a.group:
            sys.exit("--group is required")
        records, assigned, committed, timed_out = (consume_ck if ck else consume_kp)(a)
        emit({"client": name, "records": records, "assigned": assigned, "committed": committed,
              "timed_out": timed_out, "elapsed_s": round(time.monotonic() - t0, 3)})
    else:
        if not ck or not a.txn_id:
            sys.exit("--step txn needs --client ck and --txn-id")
        aborted, committed = txn_ck(a)
        emit({"client": name, "aborted": aborted, "committed": committed,
              "elapsed_s": round(time.monotonic() - t0, 3)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
