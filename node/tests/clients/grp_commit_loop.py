"""Commits offsets in a loop for several groups (confluent-kafka), then reads them back.

--mode write: for i in 0..N, each group commits offset i*10+p for partitions p of --topic
(synchronous commits, standalone: no subscription, generation -1), then reads back. The
topic is created first by producing one record (auto-create: the node's num.partitions).
--mode read: only reads back.

Output: {"commits": C, "seconds": S, "committed": {"GROUP": [offset per partition]}}.
"""

import argparse
import time

from common import emit


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--groups", type=int, default=5)
    p.add_argument("--rounds", type=int, default=400)
    p.add_argument("--mode", choices=["write", "read"], required=True)
    args = p.parse_args()

    from confluent_kafka import Consumer, Producer, TopicPartition

    if args.mode == "write":
        # Commits name existing partitions only (else UNKNOWN_TOPIC_OR_PARTITION): create the
        # topic by producing to it (auto-create, the node's num.partitions).
        producer = Producer({"bootstrap.servers": args.bootstrap})
        producer.produce(args.topic, b"x", partition=0)
        producer.flush(30)

    groups = ["commit-loop-%d" % i for i in range(args.groups)]
    consumers = {
        g: Consumer({"bootstrap.servers": args.bootstrap, "group.id": g, "enable.auto.commit": False})
        for g in groups
    }
    parts = range(args.partitions)
    commits = 0
    t0 = time.time()
    if args.mode == "write":
        for i in range(args.rounds):
            for c in consumers.values():
                c.commit(offsets=[TopicPartition(args.topic, q, i * 10 + q) for q in parts], asynchronous=False)
                commits += 1
    seconds = time.time() - t0
    committed = {}
    for g, c in consumers.items():
        got = c.committed([TopicPartition(args.topic, q) for q in parts], timeout=30)
        committed[g] = [tp.offset for tp in got]
        c.close()
    emit({"commits": commits, "seconds": round(seconds, 3), "committed": committed})


if __name__ == "__main__":
    main()
