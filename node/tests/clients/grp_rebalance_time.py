"""Rebalance time of one consumer group, for bench/RESULTS.md (run by hand, not by the tests):
N confluent-kafka consumers (one thread each) in one group on one topic.

Measured, each --rounds times (a fresh group per round):
  initial_ms   all N subscribe at once → every member has its assignment and together they
               cover every partition exactly once (includes the node's
               group.initial.rebalance.delay.ms: run the node with it at 0 to leave it out,
               or subtract it)
  join_ms      one more member subscribes → the N+1 members again hold a complete, disjoint
               assignment that includes the newcomer (when it can get a partition)
  leave_ms     one member close()s (LeaveGroup) → the other N hold a complete, disjoint
               assignment again
join_ms and leave_ms include up to one heartbeat.interval.ms (--heartbeat-ms, default 1000):
the members already in the group learn of a rebalance from their next heartbeat, as in Kafka.

--group-protocol consumer measures the same with KIP-848's protocol (group.protocol=consumer):
the node assigns (--remote-assignor, default the node's first group.consumer.assignors), the
heartbeat interval and session timeout are the node's (group.consumer.heartbeat.interval.ms,
group.consumer.session.timeout.ms; --heartbeat-ms / --session-timeout-ms are not sent), and
assignments are incremental (a revocation names only what moves). A new member gets a
partition only after its owner's next heartbeat acknowledged giving it up, so join_ms and
leave_ms include up to two of the node's heartbeat intervals.

Usage (node started with e.g. --set group.initial.rebalance.delay.ms=0):
  .venv/bin/python node/tests/clients/grp_rebalance_time.py --bootstrap 127.0.0.1:9092 \\
      --members 3 --partitions 60
  ... --members 30 --partitions 60
The topic (default "rebalance-time") is created with --partitions partitions if missing.
Prints one JSON line: {"members", "partitions", "strategy", "rounds": [{...}], "initial_ms":
{"min", "median", "max"}, "join_ms": {...}, "leave_ms": {...}, "client"}.
"""

import argparse
import statistics
import threading
import time

from grp_common import emit_result, log


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", default="rebalance-time")
    p.add_argument("--partitions", type=int, default=60)
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--strategy", default="range", choices=["range", "roundrobin", "cooperative-sticky"])
    p.add_argument("--session-timeout-ms", type=int, default=10000)
    p.add_argument("--heartbeat-ms", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=120.0, help="give up on one phase after this long")
    p.add_argument("--group-prefix", default="rebalance-time-")
    p.add_argument("--group-protocol", default="classic", choices=["classic", "consumer"])
    p.add_argument("--remote-assignor", default=None, help="group.remote.assignor (consumer protocol)")
    return p.parse_args()


class Member(threading.Thread):
    def __init__(self, a, group, name, board):
        super().__init__(daemon=True)
        self.a, self.group, self.name, self.board = a, group, name, board
        self.stop = threading.Event()
        self.closed = threading.Event()
        self.subscribed_at = None

    def run(self):
        import confluent_kafka as ck

        a = self.a
        incremental = a.strategy == "cooperative-sticky" or a.group_protocol == "consumer"

        def on_assign(c, parts):
            with self.board.lock:
                if incremental:
                    self.board.assign[self.name] |= {p.partition for p in parts}
                else:
                    self.board.assign[self.name] = {p.partition for p in parts}
                self.board.assigned[self.name] = True
                self.board.changed.notify_all()

        def on_revoke(c, parts):
            with self.board.lock:
                if incremental:
                    self.board.assign[self.name] -= {p.partition for p in parts}
                else:
                    self.board.assign[self.name] = set()
                    self.board.assigned[self.name] = False
                self.board.changed.notify_all()

        conf = {
            "bootstrap.servers": a.bootstrap,
            "group.id": self.group,
            "client.id": self.name,
            "session.timeout.ms": a.session_timeout_ms,
            "heartbeat.interval.ms": a.heartbeat_ms,
            "partition.assignment.strategy": a.strategy,
            "enable.auto.commit": False,
            "auto.offset.reset": "latest",
        }
        if a.group_protocol == "consumer":
            # librdkafka refuses these under KIP-848: the broker owns them.
            for k in ("session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"):
                del conf[k]
            conf["group.protocol"] = "consumer"
            if a.remote_assignor:
                conf["group.remote.assignor"] = a.remote_assignor
        c = ck.Consumer(conf)
        with self.board.lock:
            self.board.assign[self.name] = set()
            self.board.assigned[self.name] = False
        self.subscribed_at = time.monotonic()
        c.subscribe([a.topic], on_assign=on_assign, on_revoke=on_revoke)
        while not self.stop.is_set():
            c.consume(num_messages=100, timeout=0.05)
        c.close()
        with self.board.lock:
            self.board.assign.pop(self.name, None)
            self.board.assigned.pop(self.name, None)
            self.board.changed.notify_all()
        self.closed.set()


class Board:
    """Every member's current assignment, and whether it has one from the last rebalance."""

    def __init__(self):
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.assign = {}
        self.assigned = {}

    def complete(self, names, partitions, must_have=None):
        """Called with the lock held: every member in `names` assigned, the union of their
        assignments is every partition, no partition twice (and `must_have` holds one if it
        can)."""
        if any(not self.assigned.get(n) for n in names):
            return False
        seen = []
        for n in names:
            seen.extend(self.assign.get(n, ()))
        if len(seen) != partitions or set(seen) != set(range(partitions)):
            return False
        if must_have is not None and len(names) <= partitions and not self.assign.get(must_have):
            return False
        return True

    def wait(self, names, partitions, timeout, must_have=None):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not self.complete(names, partitions, must_have):
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.changed.wait(min(left, 0.05))
            return time.monotonic()


def ensure_topic(a):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    md = admin.list_topics(timeout=20)
    t = md.topics.get(a.topic)
    if t is not None and t.error is None and t.partitions:
        if len(t.partitions) != a.partitions:
            log(f"grp_rebalance_time: {a.topic} has {len(t.partitions)} partitions, using that")
            a.partitions = len(t.partitions)
        return
    fut = admin.create_topics([NewTopic(a.topic, num_partitions=a.partitions, replication_factor=1)])[a.topic]
    fut.result(timeout=30)


def summary(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {"min": round(min(vals), 1), "median": round(statistics.median(vals), 1), "max": round(max(vals), 1)}


def one_round(a, r):
    board = Board()
    group = f"{a.group_prefix}{int(time.time() * 1000)}-{r}"
    members = [Member(a, group, f"m{i}", board) for i in range(a.members)]
    names = [m.name for m in members]
    t0 = time.monotonic()
    for m in members:
        m.start()
    t1 = board.wait(names, a.partitions, a.timeout)
    initial = None if t1 is None else (t1 - t0) * 1000.0

    extra = Member(a, group, f"m{a.members}", board)
    t0 = time.monotonic()
    extra.start()
    t1 = board.wait(names + [extra.name], a.partitions, a.timeout, must_have=extra.name)
    join = None if t1 is None else (t1 - t0) * 1000.0

    leaver = members[0]
    rest = [n for n in names[1:]] + [extra.name]
    with board.lock:
        # A leave revokes first: wait for the others' revocations, not their old assignment.
        for n in rest:
            board.assigned[n] = board.assigned.get(n, False) and (
                a.strategy == "cooperative-sticky" or a.group_protocol == "consumer")
    t0 = time.monotonic()
    leaver.stop.set()
    leaver.closed.wait(a.timeout)
    t1 = board.wait(rest, a.partitions, a.timeout)
    leave = None if t1 is None else (t1 - t0) * 1000.0

    for m in members[1:] + [extra]:
        m.stop.set()
    for m in members + [extra]:
        m.join(30)
    return {"group": group, "initial_ms": initial and round(initial, 1), "join_ms": join and round(join, 1),
            "leave_ms": leave and round(leave, 1)}


def main():
    a = parse_args()
    import confluent_kafka as ck
    ensure_topic(a)
    rounds = [one_round(a, r) for r in range(a.rounds)]
    emit_result({
        "members": a.members,
        "partitions": a.partitions,
        "group_protocol": a.group_protocol,
        "strategy": a.strategy if a.group_protocol == "classic" else (a.remote_assignor or "node default"),
        # The node's under the consumer protocol (not sent by the client).
        "session_timeout_ms": a.session_timeout_ms if a.group_protocol == "classic" else None,
        "heartbeat_ms": a.heartbeat_ms if a.group_protocol == "classic" else None,
        "rounds": rounds,
        "initial_ms": summary([r["initial_ms"] for r in rounds]),
        "join_ms": summary([r["join_ms"] for r in rounds]),
        "leave_ms": summary([r["leave_ms"] for r in rounds]),
        "client": "confluent-kafka " + ck.__version__ + " / librdkafka " + ck.libversion()[0],
    })


if __name__ == "__main__":
    main()
