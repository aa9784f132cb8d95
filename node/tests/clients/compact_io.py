"""Keyed updates and tombstones for a compacted topic, and a full read of it.

produce (confluent-kafka, idempotent, acks=all): ROUNDS rounds over KEYS keys; key k of
round r is "{prefix}{k}" = "r{r}-{prefix}{k}" (prefix "key-" unless --key-prefix) (padded to --value-size); with --tombstone-every N the
last round writes a tombstone (null value) for every key k with k % N == 0. --rate paces the
sends (messages/s). Output: {"acks": [[key, value|null, partition, offset], ...], "errors"};
with --lines, one JSON line per ack as it arrives ({"k", "v", "p", "o"}), then {"done": ...}.

consume (--client ck: confluent-kafka; kp: kafka-python): reads every partition from the log
start to the high watermark taken at the start. Output: {"records": [[partition, offset,
key, value|null], ...], "high": {"P": high watermark}, "low": {"P": log start}}.
"""

import argparse
import json
import sys
import time

from common import Deadline, emit, log


def produce(args):
    import confluent_kafka as ck

    p = ck.Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "message.timeout.ms": int(args.timeout * 1000),
        "error_cb": lambda err: log("compact_io error_cb:", err),
    })
    acks, errors = [], []

    def on_delivery(key, value):
        def cb(err, msg):
            if err is not None:
                if len(errors) < 20:
                    errors.append(str(err))
                return
            entry = [key, value, msg.partition(), msg.offset()]
            if args.lines:
                print(json.dumps({"k": key, "v": value, "p": entry[2], "o": entry[3]}), flush=True)
            else:
                acks.append(entry)
        return cb

    sent = 0
    t0 = time.monotonic()
    last_round = args.round_start + args.rounds - 1
    for r in range(args.round_start, args.round_start + args.rounds):
        for k in range(args.keys):
            key = f"{args.key_prefix}{k}"
            value = f"r{r}-{key}".ljust(args.value_size, ".")
            if args.tombstone_every and r == last_round and k % args.tombstone_every == 0:
                value = None
            while True:
                try:
                    p.produce(args.topic, key=key.encode(), value=None if value is None else value.encode(),
                              on_delivery=on_delivery(key, value))
                    break
                except BufferError:
                    p.poll(0.05)
            sent += 1
            p.poll(0)
            if args.rate:
                ahead = sent / args.rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
    deadline = Deadline(args.timeout)
    while len(p) > 0 and not deadline.passed():
        p.flush(min(1.0, max(0.0, deadline.left())))
    summary = {"sent": sent, "unacked": len(p), "errors": errors}
    if args.lines:
        print(json.dumps(dict(summary, done=True)), flush=True)
    else:
        emit(dict(summary, acks=acks))


def consume_ck(args):
    import confluent_kafka as ck

    c = ck.Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "sluice-compact-unused",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "error_cb": lambda err: log("compact_io error_cb:", err),
    })
    md = c.list_topics(args.topic, timeout=10)
    parts = sorted(md.topics[args.topic].partitions)
    low, high = {}, {}
    for p in parts:
        lo, hi = c.get_watermark_offsets(ck.TopicPartition(args.topic, p), timeout=10)
        low[p], high[p] = lo, hi
    c.assign([ck.TopicPartition(args.topic, p, ck.OFFSET_BEGINNING) for p in parts])
    records = []
    deadline = Deadline(args.timeout)
    idle_since = time.monotonic()
    while not deadline.passed():
        done = all(
            tp.offset >= high[tp.partition] or high[tp.partition] == low[tp.partition]
            for tp in c.position([ck.TopicPartition(args.topic, p) for p in parts])
        )
        if done or time.monotonic() - idle_since > args.idle:
            break
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            log("compact_io consume error:", m.error())
            continue
        idle_since = time.monotonic()
        value = m.value()
        records.append([m.partition(), m.offset(), m.key().decode() if m.key() else None,
                        None if value is None else value.decode()])
    c.close()
    emit({"records": records, "low": {str(p): low[p] for p in parts}, "high": {str(p): high[p] for p in parts}})


def consume_kp(args):
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=args.bootstrap, enable_auto_commit=False, group_id=None,
                      auto_offset_reset="earliest")
    parts = sorted(c.partitions_for_topic(args.topic) or [])
    tps = [TopicPartition(args.topic, p) for p in parts]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    high = {tp.partition: o for tp, o in c.end_offsets(tps).items()}
    low = {tp.partition: o for tp, o in c.beginning_offsets(tps).items()}
    records = []
    deadline = Deadline(args.timeout)
    idle_since = time.monotonic()
    while not deadline.passed():
        if all(c.position(tp) >= high[tp.partition] for tp in tps) or time.monotonic() - idle_since > args.idle:
            break
        batch = c.poll(timeout_ms=200)
        for tp, msgs in batch.items():
            for m in msgs:
                idle_since = time.monotonic()
                records.append([tp.partition, m.offset, m.key.decode() if m.key else None,
                                None if m.value is None else m.value.decode()])
    c.close()
    emit({"records": records, "low": {str(p): low[p] for p in parts}, "high": {str(p): high[p] for p in parts}})


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("command", choices=["produce", "consume"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--key-prefix", default="key-")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--round-start", type=int, default=0)
    ap.add_argument("--value-size", type=int, default=0)
    ap.add_argument("--tombstone-every", type=int, default=0)
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--lines", action="store_true")
    ap.add_argument("--client", choices=["ck", "kp"], default="ck")
    ap.add_argument("--idle", type=float, default=5.0, help="consume: stop after this long without a record")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    if args.command == "produce":
        produce(args)
    elif args.client == "ck":
        consume_ck(args)
    else:
        consume_kp(args)


if __name__ == "__main__":
    sys.exit(main())
