"""Produce COUNT messages with confluent-kafka (librdkafka); print the acks as JSON.

Output: {"client", "topic", "sent", "acked", "errors", "error_samples", "partitions":
{"P": {"count", "first", "last", "in_order"}}, "acks": [[i, p, o], ...] (with --report-acks),
"elapsed_s"}. "in_order": the offsets acked for that partition grew in send order.
Exit code 0 even when some messages failed: the test decides; 2 on a usage/setup error.
"""

import time

import confluent_kafka as ck

from common import Deadline, emit, headers, log, message, producer_args, timestamp


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
    state = {"acked": 0, "errors": 0, "samples": [], "parts": {}, "acks": []}

    def on_delivery(i):
        def cb(err, msg):
            if err is not None:
                state["errors"] += 1
                if len(state["samples"]) < 10:
                    state["samples"].append(f"message {i}: {err}")
                return
            state["acked"] += 1
            part, off = msg.partition(), msg.offset()
            s = state["parts"].setdefault(str(part), {"count": 0, "first": off, "last": off, "in_order": True})
            if s["count"] and off <= s["last"] and off >= 0:
                s["in_order"] = False
            s["count"] += 1
            s["last"] = off
            if args.report_acks:
                state["acks"].append([i, part, off])
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
        state["errors"] += left
        state["samples"].append(f"{left} messages still unacknowledged after {args.timeout}s")
    if args.report_acks:
        state["acks"].sort()
    emit({
        "client": "confluent-kafka " + ck.__version__ + " / librdkafka " + ck.libversion()[0],
        "topic": args.topic,
        "sent": args.count,
        "acked": state["acked"],
        "errors": state["errors"],
        "error_samples": state["samples"],
        "partitions": state["parts"],
        "acks": state["acks"],
        "elapsed_s": round(time.monotonic() - t0, 3),
    })


if __name__ == "__main__":
    main()
