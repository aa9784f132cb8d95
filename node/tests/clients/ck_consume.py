"""Consume a topic from the earliest offset with confluent-kafka (librdkafka), no consumer group.

Partitions are assigned explicitly (assign(), not subscribe()); group.id is a dummy that
librdkafka insists on, offsets are never committed. Stops after COUNT records (then keeps
polling --linger seconds to catch extras) or at --timeout.

Output: {"client", "topic", "count", "timed_out", "errors", "partitions": {"P": [record, ...]},
"elapsed_s"}; a record is common.record(). Exit 1 when the topic's metadata cannot be had.
"""

import sys
import time

import confluent_kafka as ck

from common import Deadline, consumer_args, emit, log, record

TS_TYPES = {ck.TIMESTAMP_CREATE_TIME: "create", ck.TIMESTAMP_LOG_APPEND_TIME: "append"}


def main():
    args = consumer_args(__doc__)
    deadline = Deadline(args.timeout)
    errors = []

    def on_error(err):
        log("ck_consume error_cb:", err)
        if len(errors) < 20:
            errors.append(str(err))

    c = ck.Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "sluice-e2e-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "error_cb": on_error,
    })
    parts = None
    last_err = None
    while parts is None and not deadline.passed():
        try:
            md = c.list_topics(args.topic, timeout=max(1.0, min(10.0, deadline.left())))
            t = md.topics.get(args.topic)
            if t is None or t.error is not None or not t.partitions:
                last_err = "no partitions: " + (str(t.error) if t is not None else "topic absent")
                time.sleep(0.2)
                continue
            parts = sorted(t.partitions)
        except ck.KafkaException as e:
            last_err = str(e)
            time.sleep(0.2)
    if parts is None:
        emit({"error": f"metadata for {args.topic}: {last_err}", "errors": errors})
        sys.exit(1)
    if args.partitions:
        parts = [int(p) for p in args.partitions.split(",")]
    start = ck.OFFSET_BEGINNING if args.offset is None else args.offset
    c.assign([ck.TopicPartition(args.topic, p, start) for p in parts])

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
        msgs = c.consume(num_messages=10000, timeout=0.2)
        for m in msgs:
            if m.error() is not None:
                if m.error().code() == ck.KafkaError._PARTITION_EOF:
                    continue
                log("ck_consume message error:", m.error())
                if len(errors) < 20:
                    errors.append(str(m.error()))
                continue
            tt, ts = m.timestamp()
            out.setdefault(str(m.partition()), []).append(
                record(m.offset(), m.key(), m.value(), m.headers(), ts, TS_TYPES.get(tt, "none"), args.values))
            total += 1
    timed_out = total < args.count
    c.close()
    emit({
        "client": "confluent-kafka " + ck.__version__ + " / librdkafka " + ck.libversion()[0],
        "topic": args.topic,
        "count": total,
        "timed_out": timed_out,
        "errors": errors,
        "partitions": out,
        "elapsed_s": round(time.monotonic() - t0, 3),
    })


if __name__ == "__main__":
    main()
