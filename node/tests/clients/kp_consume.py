"""Consume a topic from the earliest offset with kafka-python (pure Python), no consumer group.

group_id=None, partitions assigned explicitly, nothing committed. Same arguments and output as
ck_consume.py.
"""

import sys
import time

import kafka
from kafka import KafkaConsumer, TopicPartition

from common import Deadline, consumer_args, emit, log, record

TS_TYPES = {0: "create", 1: "append"}


def main():
    args = consumer_args(__doc__)
    deadline = Deadline(args.timeout)
    errors = []
    c = KafkaConsumer(
        bootstrap_servers=[args.bootstrap],
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="sluice-e2e-kp-consume",
        max_poll_records=10000,
        request_timeout_ms=30000,
    )
    parts = None
    while parts is None and not deadline.passed():
        try:
            ps = c.partitions_for_topic(args.topic)
        except Exception as e:  # noqa: BLE001
            log("kp_consume partitions_for_topic:", repr(e))
            ps = None
        if ps:
            parts = sorted(ps)
        else:
            time.sleep(0.2)
    if parts is None:
        emit({"error": f"no partitions for {args.topic}", "errors": errors})
        sys.exit(1)
    if args.partitions:
        parts = [int(p) for p in args.partitions.split(",")]
    tps = [TopicPartition(args.topic, p) for p in parts]
    c.assign(tps)
    if args.offset is None:
        c.seek_to_beginning(*tps)
    else:
        for tp in tps:
            c.seek(tp, args.offset)

    out = {str(p): [] for p in parts}
    total = 0
    t0 = time.monotonic()
    linger_end = None
    while not deadline.passed():
        if total >= args.count:
            if linger_end is None:
                linger_end = time.monotonic() + args.linger
            if time.monotonic() >= linger_end:
                break
        try:
            batch = c.poll(timeout_ms=200, max_records=10000)
        except Exception as e:  # noqa: BLE001
            log("kp_consume poll:", repr(e))
            if len(errors) < 20:
                errors.append(repr(e))
            time.sleep(0.1)
            continue
        for tp, recs in batch.items():
            lst = out.setdefault(str(tp.partition), [])
            for r in recs:
                lst.append(record(r.offset, r.key, r.value, r.headers, r.timestamp,
                                  TS_TYPES.get(r.timestamp_type, "none"), args.values))
                total += 1
    timed_out = total < args.count
    c.close(autocommit=False)
    emit({
        "client": "kafka-python " + kafka.__version__,
        "topic": args.topic,
        "count": total,
        "timed_out": timed_out,
        "errors": errors,
        "partitions": out,
        "elapsed_s": round(time.monotonic() - t0, 3),
    })


if __name__ == "__main__":
    main()
