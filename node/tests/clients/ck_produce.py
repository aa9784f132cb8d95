"""Produce COUNT messages with confluent-kafka (librdkafka); print the acks as JSON.

Output: {"client", "topic", "sent", "acked", "errors", "error_samples", "partitions":
{"P": {"count", "first", "last", "in_order"}}, "acks": [[i, p, o], ...] (with --report-acks),
"elapsed_s"}. "in_order": the offsets acked for that partition grew in send order.
Exit code 0 even when some messages failed: the test decides; 2 on a usage/setup error.
"""

import time

import confluent_kafka as ck

from common import AckTally, Deadline, headers, log, message, producer_args, timestamp


def main():
    args = producer_args(__doc__)
    conf = {
        "bootstrap.servers": args.bootstrap,
        "acks": args.acks,
        "linger.ms": 5,
        "message.timeout.ms": int(args.timeout * 1000),
        "enable.idempotence": bool(args.idempotence),
        "queue.buffering.max.messages": 200000,
        "error_cb": lambda err: log("ck_produce error_cb:", err),
    }
    p = ck.Producer(conf)
    tally = AckTally(args.report_acks)

    def on_delivery(i):
        def cb(err, msg):
            if err is not None:
                tally.error(f"message {i}: {err}")
            else:
                tally.ok(i, msg.partition(), msg.offset())
        return cb

    t0 = time.monotonic()
    for i in range(args.start, args.start + args.count):
        key, value = message(i, args)
        kw = {"key": key, "value": value, "on_delivery": on_delivery(i)}
        if args.headers:
            kw["headers"] = headers(i, "ck")
        ts = timestamp(i, args)
        if ts is not None:
            kw["timestamp"] = ts
        if args.partition is not None:
            kw["partition"] = args.partition
        while True:
            try:
                p.produce(args.topic, **kw)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)

    deadline = Deadline(args.timeout)
    while len(p) > 0 and not deadline.passed():
        p.flush(min(1.0, max(0.0, deadline.left())))
    left = len(p)
    if left:
        tally.errors += left
        tally.samples.append(f"{left} messages still unacknowledged after {args.timeout}s")
    tally.emit("confluent-kafka " + ck.__version__ + " / librdkafka " + ck.libversion()[0], args, t0)

if __name__ == "__main__":
    main()
