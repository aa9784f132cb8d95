"""Partition reassignments through kafka-python's KafkaAdminClient (what an operator's
script does), for node/tests/e2e_cluster.rs.

  --replicas 3,2   alter_partition_reassignments: move --topic/--partition to these brokers
  --cancel         alter_partition_reassignments with None: cancel the move in progress
  (neither)        list_partition_reassignments of every partition

Output: {"result": null | "<error class name>"} for an alteration, or
{"ongoing": {"topic/p": {"replicas": [...], "adding_replicas": [...], "removing_replicas": [...]}}}.
"""

import argparse

from common import emit


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic")
    p.add_argument("--partition", type=int, default=0)
    p.add_argument("--replicas")
    p.add_argument("--cancel", action="store_true")
    args = p.parse_args()

    from kafka import KafkaAdminClient
    from kafka.structs import TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap)
    if args.replicas or args.cancel:
        target = None if args.cancel else [int(r) for r in args.replicas.split(",")]
        tp = TopicPartition(args.topic, args.partition)
        results = admin.alter_partition_reassignments({tp: target}, timeout_ms=30000)
        error = results.get(tp)
        emit({"result": None if error is None else error.__name__})
    else:
        ongoing = admin.list_partition_reassignments(timeout_ms=30000)
        emit({"ongoing": {f"{tp.topic}/{tp.partition}": v for tp, v in ongoing.items()}})
    admin.close()


if __name__ == "__main__":
    main()
