"""Authorized operations through confluent-kafka's AdminClient (librdkafka), for
node/tests/e2e_admin_records.rs: describe_topics, describe_cluster and
describe_consumer_groups with include_authorized_operations on and off.

Output: {"topic": [op names] or null, "topic_off": ..., "cluster": [...], "cluster_off": ...,
"group": [...], "group_off": ...} (op names as librdkafka reports them; null when the broker
says "not requested").
"""

import argparse

from common import emit


def names(ops):
    return None if ops is None else sorted(o.name for o in ops)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    args = p.parse_args()

    from confluent_kafka import Consumer, TopicCollection
    from confluent_kafka.admin import AdminClient

    # A group that exists: one member commits once and leaves.
    c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 6000})
    c.subscribe([args.topic])
    c.poll(5.0)
    c.close()

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    out = {}
    for suffix, flag in (("", True), ("_off", False)):
        t = admin.describe_topics(TopicCollection([args.topic]), include_authorized_operations=flag)[args.topic].result()
        out["topic" + suffix] = names(t.authorized_operations)
        cl = admin.describe_cluster(include_authorized_operations=flag).result()
        out["cluster" + suffix] = names(cl.authorized_operations)
        g = admin.describe_consumer_groups([args.group], include_authorized_operations=flag)[args.group].result()
        out["group" + suffix] = names(g.authorized_operations)
    emit(out)


if __name__ == "__main__":
    main()
