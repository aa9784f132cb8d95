"""Create a topic with topic configs through confluent-kafka's AdminClient.

Output: {"topic", "error": null or "ERROR_NAME", "message": text} — a refused config is
reported, not raised (the test decides).
"""

import argparse

from common import emit


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--config", action="append", default=[], help="NAME=VALUE (repeatable)")
    args = p.parse_args()

    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    configs = dict(c.split("=", 1) for c in args.config)
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    futures = admin.create_topics([NewTopic(args.topic, args.partitions, 1, config=configs)], request_timeout=30)
    try:
        futures[args.topic].result(timeout=30)
        emit({"topic": args.topic, "error": None, "message": ""})
    except KafkaException as e:
        err = e.args[0]
        emit({"topic": args.topic, "error": err.name(), "message": err.str()})


if __name__ == "__main__":
    main()
