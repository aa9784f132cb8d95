"""End offsets of a topic's partitions by isolation level (ListOffsets latest), for
node/tests/e2e_txn.rs.

--client ck: confluent-kafka AdminClient.list_offsets(OffsetSpec.latest(), isolation_level=...).
--client kp: kafka-python KafkaConsumer(isolation_level=...).end_offsets().

read_committed gives the last stable offset (the first offset of the oldest open transaction,
or the high watermark when none is open); read_uncommitted the high watermark.

Output: {"client", "committed": {"P": offset}, "uncommitted": {"P": offset}}.
"""

import argparse
import sys
import time

from grp_common import emit_result


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--client", choices=["ck", "kp"], required=True)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--timeout", type=float, default=20.0)
    return p.parse_args()


def with_ck(a):
    import confluent_kafka as ck
    from confluent_kafka.admin import AdminClient, OffsetSpec

    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    md = admin.list_topics(a.topic, timeout=a.timeout)
    t = md.topics.get(a.topic)
    if t is None or t.error is not None:
        raise SystemExit(f"metadata for {a.topic}: {t.error if t else 'absent'}")
    out = {}
    for name, level in (("committed", ck.IsolationLevel.READ_COMMITTED),
                        ("uncommitted", ck.IsolationLevel.READ_UNCOMMITTED)):
        req = {ck.TopicPartition(a.topic, p): OffsetSpec.latest() for p in sorted(t.partitions)}
        futs = admin.list_offsets(req, isolation_level=level, request_timeout=a.timeout)
        out[name] = {str(tp.partition): f.result(timeout=a.timeout).offset for tp, f in futs.items()}
    return "confluent-kafka " + ck.__version__ + " / librdkafka " + ck.libversion()[0], out


def with_kp(a):
    import kafka
    from kafka import KafkaConsumer, TopicPartition

    out = {}
    for name, level in (("committed", "read_committed"), ("uncommitted", "read_uncommitted")):
        c = KafkaConsumer(bootstrap_servers=[a.bootstrap], group_id=None, enable_auto_commit=False,
                          isolation_level=level, client_id="sluice-e2e-txn-offsets")
        parts = None
        end = time.monotonic() + a.timeout
        while not parts and time.monotonic() < end:
            parts = c.partitions_for_topic(a.topic)
            if not parts:
                time.sleep(0.2)
        if not parts:
            raise SystemExit(f"no partitions for {a.topic}")
        tps = [TopicPartition(a.topic, p) for p in sorted(parts)]
        hi = c.end_offsets(tps, timeout_ms=int(a.timeout * 1000))
        out[name] = {str(tp.partition): hi[tp] for tp in tps}
        c.close(autocommit=False)
    return "kafka-python " + kafka.__version__, out


def main():
    a = parse_args()
    client, out = (with_ck if a.client == "ck" else with_kp)(a)
    out["client"] = client
    emit_result(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
