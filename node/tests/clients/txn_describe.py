"""DescribeTransactions of one transactional id through kafka-python's admin client.

Output: {"id", "state", "producer_id", "producer_epoch"}, or {"id", "error": error class name}.
"""

import argparse

from common import emit


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--id", required=True)
    args = p.parse_args()

    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap)
    try:
        d = admin.describe_transactions([args.id])[args.id]
    except Exception as e:  # kafka-python raises the broker's error class
        emit({"id": args.id, "error": type(e).__name__})
        return
    emit({"id": args.id, "state": d.state.value, "producer_id": d.producer_id, "producer_epoch": d.producer_epoch})


if __name__ == "__main__":
    main()
