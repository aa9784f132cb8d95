"""Runs COUNT small committed transactions with one confluent-kafka transactional producer,
then describes the transactional id (kafka-python admin).

Output: {"transactions": COUNT, "seconds": S, "state", "producer_id", "producer_epoch"}.
"""

import argparse
import time

from common import emit


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--count", type=int, default=300)
    args = p.parse_args()

    from confluent_kafka import Producer
    from kafka import KafkaAdminClient

    producer = Producer({"bootstrap.servers": args.bootstrap, "transactional.id": args.id})
    producer.init_transactions(30)
    t0 = time.time()
    for i in range(args.count):
        producer.begin_transaction()
        producer.produce(args.topic, b"%d" % i, partition=0)
        producer.commit_transaction(30)
    seconds = time.time() - t0
    d = KafkaAdminClient(bootstrap_servers=args.bootstrap).describe_transactions([args.id])[args.id]
    emit({
        "transactions": args.count,
        "seconds": round(seconds, 3),
        "state": d.state.value,
        "producer_id": d.producer_id,
        "producer_epoch": d.producer_epoch,
    })


if __name__ == "__main__":
    main()
