"""DeleteRecords, DescribeLogDirs and DescribeProducers through real admin clients, for
node/tests/e2e_admin_records.rs.

An idempotent confluent-kafka producer writes --count records "val-{i}" round-robin to
partition i % --partitions of --topic. Then:
  - confluent-kafka AdminClient.delete_records: partition 0 up to --delete-to, partition 1 up
    to OFFSET_END (its high watermark); and kafka-python's delete_records of partition 2 past
    its end (must fail with OffsetOutOfRange);
  - a confluent-kafka consumer assigned partition 0 from the beginning: the first offset it
    sees;
  - kafka-python describe_log_dirs: each partition's size in each log dir;
  - kafka-python describe_producers for every partition.

Output: {"producer_id", "deleted": {"0": low_watermark, "1": low_watermark}, "past_end_error",
"first_offset_p0", "log_dirs": [{"dir", "error", "sizes": {"topic/p": bytes}}],
"producers": {"p": [[producer_id, epoch, last_sequence], ...]}}.
"""

import argparse
import sys
import time

from common import emit


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--delete-to", type=int, default=40)
    args = p.parse_args()

    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient
    from kafka import KafkaAdminClient
    from kafka.structs import TopicPartition as KTP

    prod = Producer({"bootstrap.servers": args.bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for i in range(args.count):
        prod.produce(args.topic, f"val-{i}".encode(), partition=i % args.partitions)
    if prod.flush(30) != 0:
        sys.exit("records not delivered")

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    wanted = [TopicPartition(args.topic, 0, args.delete_to), TopicPartition(args.topic, 1, -1)]  # -1: OFFSET_END
    deleted = {}
    for tp, fut in admin.delete_records(wanted, request_timeout=30).items():
        r = fut.result()  # raises on a partition error
        deleted[str(tp.partition)] = r.low_watermark

    kadmin = KafkaAdminClient(bootstrap_servers=args.bootstrap)
    past_end_error = None
    try:
        kadmin.delete_records({KTP(args.topic, 2): args.count * 10})
    except Exception as e:  # kafka-python raises the broker's error class
        past_end_error = type(e).__name__

    cons = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "records-admin", "enable.auto.commit": False,
                     "auto.offset.reset": "earliest"})
    cons.assign([TopicPartition(args.topic, 0, -2)])  # OFFSET_BEGINNING
    first = None
    deadline = time.time() + 20
    while first is None and time.time() < deadline:
        m = cons.poll(1.0)
        if m is not None and m.error() is None:
            first = m.offset()
    cons.close()

    log_dirs = []
    for broker in kadmin.describe_log_dirs():
        for d in broker["log_dirs"]:
            sizes = {}
            for t in d["topics"]:
                for part in t["partitions"]:
                    sizes[f'{t["name"]}/{part["partition_index"]}'] = part["partition_size"]
            log_dirs.append({"dir": d["log_dir"], "error": d["error_code"], "sizes": sizes})

    producers = {}
    described = kadmin.describe_producers([KTP(args.topic, p) for p in range(args.partitions)])
    for tp, states in described.items():
        producers[str(tp.partition)] = [[s.producer_id, s.producer_epoch, s.last_sequence]
                                        for s in states.active_producers]

    emit({"deleted": deleted, "past_end_error": past_end_error, "first_offset_p0": first,
          "log_dirs": log_dirs, "producers": producers})


if __name__ == "__main__":
    main()
