"""ListTransactions and DescribeTransactions through kafka-python's admin client, with one
transaction left open by a confluent-kafka producer.

Output: {"listed": [[id, producer_id, state], ...], "described": {id, state, producer_id,
producer_epoch, timeout_ms, partitions: [[topic, p], ...]}, "unknown_error": error name for
an id that does not exist, "open_producer_id": the open transaction's producer id}.
"""

import argparse

from common import emit


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--id", required=True)
    args = p.parse_args()

    from confluent_kafka import Producer
    from kafka import KafkaAdminClient

    producer = Producer({"bootstrap.servers": args.bootstrap, "transactional.id": args.id, "transaction.timeout.ms": 60000})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(args.topic, b"open", partition=1)
    producer.produce(args.topic, b"open", partition=2)
    producer.flush(30)

    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap)
    listed = []
    for listings in admin.list_transactions().values():
        listed.extend([t.transactional_id, t.producer_id, t.state.value] for t in listings)
    d = admin.describe_transactions([args.id])[args.id]
    described = {
        "id": args.id,
        "state": d.state.value,
        "producer_id": d.producer_id,
        "producer_epoch": d.producer_epoch,
        "timeout_ms": d.transaction_timeout_ms,
        "partitions": sorted([tp.topic, tp.partition] for tp in d.topic_partitions),
    }
    try:
        admin.describe_transactions(["no-such-transactional-id"])
        unknown = None
    except Exception as e:  # kafka-python raises the broker's error class
        unknown = type(e).__name__
    emit({"listed": listed, "described": described, "unknown_error": unknown})


if __name__ == "__main__":
    main()
