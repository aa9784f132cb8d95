"""Produce throughput of a confluent-kafka producer: plain, idempotent, or transactional with
PER_TXN messages per transaction (scripts/bench-guarantees.sh runs it).

Prints one JSON line: {"mode", "per_txn", "count", "seconds", "msgs_per_s"}.
"""

import argparse
import json
import time


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, default=100000)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--mode", choices=["plain", "idempotent", "transactional"], required=True)
    p.add_argument("--per-txn", type=int, default=10)
    a = p.parse_args()

    from confluent_kafka import Producer

    conf = {"bootstrap.servers": a.bootstrap, "linger.ms": 5, "batch.size": 16384, "acks": "all"}
    if a.mode == "idempotent":
        conf["enable.idempotence"] = True
    if a.mode == "transactional":
        conf["transactional.id"] = "bench-txn-%d" % time.time_ns()
    producer = Producer(conf)
    value = b"v" * a.size
    t0 = time.time()
    if a.mode == "transactional":
        producer.init_transactions(30)
        t0 = time.time()
        sent = 0
        while sent < a.count:
            producer.begin_transaction()
            for _ in range(min(a.per_txn, a.count - sent)):
                while True:
                    try:
                        producer.produce(a.topic, value)
                        break
                    except BufferError:
                        producer.poll(0.01)
                sent += 1
            producer.commit_transaction(60)
    else:
        for _ in range(a.count):
            while True:
                try:
                    producer.produce(a.topic, value)
                    break
                except BufferError:
                    producer.poll(0.01)
        producer.flush(120)
    seconds = time.time() - t0
    print(json.dumps({"mode": a.mode, "per_txn": a.per_txn if a.mode == "transactional" else None,
                      "count": a.count, "seconds": round(seconds, 3), "msgs_per_s": round(a.count / seconds)}))


if __name__ == "__main__":
    main()
