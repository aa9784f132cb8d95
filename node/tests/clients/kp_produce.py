"""Produce COUNT messages with kafka-python (pure Python protocol stack); print the acks as JSON.

Same arguments and output as ck_produce.py. The producer is NOT idempotent unless --idempotence
is given: kafka-python 3.x defaults to enable_idempotence=True, which needs InitProducerId.
"""

import time

import kafka
from kafka import KafkaProducer

from common import AckTally, Deadline, headers, log, message, producer_args, timestamp


def main():
    args = producer_args(__doc__)
    acks = "all" if args.acks in ("all", "-1") else int(args.acks)
    kw = dict(
        bootstrap_servers=[args.bootstrap],
        acks=acks,
        linger_ms=5,
        enable_idempotence=bool(args.idempotence),
        request_timeout_ms=30000,
        max_block_ms=int(args.timeout * 1000),
        client_id="sluice-e2e-kp-produce",
    )
    if args.idempotence:
        del kw["acks"]  # idempotence requires acks=all, which is its default
    p = KafkaProducer(**kw)
    tally = AckTally(args.report_acks)

    def ok(i):
        return lambda md: tally.ok(i, md.partition, md.offset)

    def fail(i):
        return lambda exc: tally.error(f"message {i}: {exc!r}")

    t0 = time.monotonic()
    for i in range(args.start, args.start + args.count):
        key, value = message(i, args)
        skw = {"key": key, "value": value}
        if args.headers:
            skw["headers"] = headers(i, "kp")
        ts = timestamp(i, args)
        if ts is not None:
            skw["timestamp_ms"] = ts
        if args.partition is not None:
            skw["partition"] = args.partition
        try:
            fut = p.send(args.topic, **skw)
        except Exception as e:  # noqa: BLE001 - report, do not hide
            tally.error(f"send {i}: {e!r}")
            continue
        fut.add_callback(ok(i))
        fut.add_errback(fail(i))

    deadline = Deadline(args.timeout)
    try:
        p.flush(timeout=max(1.0, deadline.left()))
    except Exception as e:  # noqa: BLE001
        tally.samples.append(f"flush: {e!r}")
        log("kp_produce flush:", repr(e))
    missing = args.count - tally.acked - tally.errors
    if missing > 0:
        tally.errors += missing
        tally.samples.append(f"{missing} messages neither acked nor failed after {args.timeout}s")
    try:
        p.close(timeout=5)
    except Exception as e:  # noqa: BLE001
        log("kp_produce close:", repr(e))
    tally.emit("kafka-python " + kafka.__version__, args, t0)

if __name__ == "__main__":
    main()
