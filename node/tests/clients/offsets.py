"""ListOffsets through a real client: offsets for timestamps, and earliest/latest per partition.

--client ck: confluent-kafka offsets_for_times() and get_watermark_offsets(cached=False).
--client kp: kafka-python offsets_for_times(), beginning_offsets(), end_offsets().

--query "P:TS,P:TS,..." asks, for each pair, the earliest offset of partition P whose
timestamp is >= TS (Kafka's ListOffsets by timestamp).

Output: {"client", "times": [[P, TS, OFFSET, FOUND_TS], ...] (OFFSET -1 when no record has a
timestamp >= TS; FOUND_TS -1 when the client does not report it), "watermarks":
{"P": [earliest, latest]}}.
"""

import argparse
import sys
import time

from common import emit


def parse():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--client", choices=["ck", "kp"], required=True)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--query", default="")
    p.add_argument("--timeout", type=float, default=30.0)
    return p.parse_args()


def queries(args):
    out = []
    for item in filter(None, args.query.split(",")):
        p, ts = item.split(":")
        out.append((int(p), int(ts)))
    return out


def with_ck(args, qs):
    import confluent_kafka as ck
    c = ck.Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "sluice-e2e-unused",
        "enable.auto.commit": False,
        "error_cb": lambda e: print("offsets error_cb:", e, file=sys.stderr, flush=True),
    })
    md = c.list_topics(args.topic, timeout=args.timeout)
    t = md.topics.get(args.topic)
    if t is None or t.error is not None:
        raise SystemExit(f"metadata for {args.topic}: {t.error if t else 'absent'}")
    times = []
    # One query per call: librdkafka merges entries for the same partition into one (the
    # last timestamp wins for all of them).
    for p, ts in qs:
        tp = c.offsets_for_times([ck.TopicPartition(args.topic, p, ts)], timeout=args.timeout)[0]
        if tp.error is not None:
            raise SystemExit(f"offsets_for_times {p}:{ts}: {tp.error}")
        times.append([p, ts, tp.offset if tp.offset >= 0 else -1, -1])
    wm = {}
    for p in sorted(t.partitions):
        lo, hi = c.get_watermark_offsets(ck.TopicPartition(args.topic, p), timeout=args.timeout,
                                         cached=False)
        wm[str(p)] = [lo, hi]
    c.close()
    return "confluent-kafka " + ck.__version__ + " / librdkafka " + ck.libversion()[0], times, wm


def with_kp(args, qs):
    import kafka
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=[args.bootstrap], group_id=None, enable_auto_commit=False,
                      client_id="sluice-e2e-kp-offsets")
    parts = None
    end = time.monotonic() + args.timeout
    while not parts and time.monotonic() < end:
        parts = c.partitions_for_topic(args.topic)
        if not parts:
            time.sleep(0.2)
    if not parts:
        raise SystemExit(f"no partitions for {args.topic}")
    times = []
    ms = int(args.timeout * 1000)
    # One query per call: a dict cannot hold two timestamps for the same partition.
    for p, ts in qs:
        tp = TopicPartition(args.topic, p)
        r = c.offsets_for_times({tp: ts}, timeout_ms=ms).get(tp)
        times.append([p, ts, -1, -1] if r is None else [p, ts, r.offset, r.timestamp])
    tps = [TopicPartition(args.topic, p) for p in sorted(parts)]
    lo = c.beginning_offsets(tps, timeout_ms=ms)
    hi = c.end_offsets(tps, timeout_ms=ms)
    wm = {str(tp.partition): [lo[tp], hi[tp]] for tp in tps}
    c.close(autocommit=False)
    return "kafka-python " + kafka.__version__, times, wm


def main():
    args = parse()
    qs = queries(args)
    client, times, wm = (with_ck if args.client == "ck" else with_kp)(args, qs)
    emit({"client": client, "topic": args.topic, "times": times, "watermarks": wm})


if __name__ == "__main__":
    main()
