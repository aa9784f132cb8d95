"""Read a topic from the earliest offset with an isolation level, for node/tests/e2e_txn.rs.

--client ck (confluent-kafka / librdkafka) or kp (kafka-python); --isolation read_committed or
read_uncommitted. No consumer group: every partition (or --partitions) is assigned explicitly
from the beginning, nothing is committed.

It stops after --count records (then keeps polling --linger seconds to catch records it must
not see), at --timeout, or once --stop-file exists (--count 0: no record limit).

With --follow, every poll batch is printed at once as one JSON line
  {"ev": "recs", "t": wall-clock ms, "r": [[partition, offset, key, value], ...]}
(key/value as UTF-8 text, null when null or not text), so a test can watch it in the
background. The last line is always the summary:
  {"client", "isolation", "topic", "count", "timed_out", "errors": [...],
   "records": [[partition, offset, key, value], ...] in delivery order, "elapsed_s"}
"""

import argparse
import os
import sys
import time

from grp_common import emit, emit_result, log


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--client", choices=["ck", "kp"], required=True)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--isolation", choices=["read_committed", "read_uncommitted"], required=True)
    p.add_argument("--count", type=int, default=0, help="stop after this many records (0: no limit)")
    p.add_argument("--partitions", default=None, help="comma-separated partitions (default: all)")
    p.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds")
    p.add_argument("--linger", type=float, default=1.0, help="keep polling this long after COUNT records")
    p.add_argument("--stop-file", default=None, help="stop once this file exists")
    p.add_argument("--follow", action="store_true", help="print every poll batch as it comes")
    return p.parse_args()


def text(b):
    if b is None:
        return None
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return None


class Reader:
    def __init__(self, a):
        self.a = a
        self.records = []
        self.errors = []
        self.t0 = time.monotonic()
        self.end = self.t0 + a.timeout
        self.linger_end = None

    def got(self, recs):
        """recs: [(partition, offset, key, value)] of one poll batch."""
        if not recs:
            return
        rows = [[p, o, text(k), text(v)] for p, o, k, v in recs]
        self.records.extend(rows)
        if self.a.follow:
            emit("recs", r=rows)

    def error(self, what):
        log("txn_consume:", what)
        if len(self.errors) < 20:
            self.errors.append(what)

    def done(self):
        a = self.a
        now = time.monotonic()
        if now >= self.end:
            return True
        if a.stop_file and os.path.exists(a.stop_file):
            return True
        if a.count and len(self.records) >= a.count:
            if self.linger_end is None:
                self.linger_end = now + a.linger
            return now >= self.linger_end
        return False


def partitions_wanted(a, found):
    if a.partitions:
        return [int(p) for p in a.partitions.split(",")]
    return sorted(found)


def run_ck(a, r):
    import confluent_kafka as ck

    c = ck.Consumer({
        "bootstrap.servers": a.bootstrap,
        "group.id": "sluice-e2e-txn-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "isolation.level": a.isolation,
        "error_cb": lambda err: r.error(f"error_cb: {err}"),
    })
    parts = None
    while parts is None and time.monotonic() < r.end:
        try:
            md = c.list_topics(a.topic, timeout=5)
            t = md.topics.get(a.topic)
            if t is not None and t.error is None and t.partitions:
                parts = partitions_wanted(a, t.partitions)
                break
        except ck.KafkaException as e:
            log("txn_consume metadata:", e)
        time.sleep(0.2)
    if parts is None:
        raise SystemExit(f"no metadata for {a.topic}")
    c.assign([ck.TopicPartition(a.topic, p, ck.OFFSET_BEGINNING) for p in parts])
    while not r.done():
        recs = []
        for m in c.consume(num_messages=1000, timeout=0.1):
            err = m.error()
            if err is not None:
                if err.code() != ck.KafkaError._PARTITION_EOF:
                    r.error(f"{err.name()}: {err}")
                continue
            recs.append((m.partition(), m.offset(), m.key(), m.value()))
        r.got(recs)
    c.close()
    return "confluent-kafka " + ck.__version__ + " / librdkafka " + ck.libversion()[0]


def run_kp(a, r):
    import kafka
    import kafka.errors as Errors
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(
        bootstrap_servers=[a.bootstrap],
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=a.isolation,
        client_id="sluice-e2e-txn-consume",
    )
    parts = None
    while not parts and time.monotonic() < r.end:
        parts = c.partitions_for_topic(a.topic)
        if not parts:
            time.sleep(0.2)
    if not parts:
        raise SystemExit(f"no metadata for {a.topic}")
    tps = [TopicPartition(a.topic, p) for p in partitions_wanted(a, parts)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    while not r.done():
        try:
            batches = c.poll(timeout_ms=100, max_records=1000)
        except Errors.KafkaError as e:
            r.error(f"{type(e).__name__}: {e}")
            time.sleep(0.05)
            continue
        recs = []
        for tp, rs in batches.items():
            for m in rs:
                recs.append((tp.partition, m.offset, m.key, m.value))
        r.got(recs)
    c.close(autocommit=False)
    return "kafka-python " + kafka.__version__


def main():
    a = parse_args()
    r = Reader(a)
    client = (run_ck if a.client == "ck" else run_kp)(a, r)
    emit_result({
        "client": client,
        "isolation": a.isolation,
        "topic": a.topic,
        "count": len(r.records),
        "timed_out": bool(a.count) and len(r.records) < a.count,
        "errors": r.errors,
        "records": r.records,
        "elapsed_s": round(time.monotonic() - r.t0, 3),
    })


if __name__ == "__main__":
    sys.exit(main())
