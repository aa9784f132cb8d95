"""One consumer-group member for node/tests/e2e_groups.rs: confluent-kafka (--client ck,
librdkafka) or kafka-python (--client kp), subscribed to --topic in --group.

It runs until --stop-file exists, --duration passes, --max-records were consumed, or (with
--stop-on-error) a consume error, then closes cleanly (LeaveGroup for a dynamic member) —
unless the test SIGKILLs it first. Everything it sees is printed as it happens, one JSON
object per line (grp_common.emit: "ev" and wall-clock "t" in ms):

  start    {name, client, pid, group, instance_id, strategy}
  assign   {parts: [[topic, p], ...] given now, now: the whole assignment after it,
            proto: "EAGER" | "COOPERATIVE", member: member id if known}
  revoke   {parts, now, proto}      (eager: everything; cooperative: only what moves)
  lost     {parts, now, proto}      (assignment lost without a revoke: session expired etc.)
  recs     {r: [[topic, p, offset, i], ...]}   one per poll batch; i from the value "val-{i}"
  commit   {via: sync|async|auto|revoke, ok, err, offsets: [[topic, p, offset], ...]}
           (ok: the offsets listed were acknowledged by the coordinator)
  error    {name, code, msg, fatal}  a consume/poll error (e.g. no offset and reset=none)
  cerr     {msg}                     a client-level error callback (connection lost, ...)
  closing  {reason, count}           about to close()
  end      {reason, count, close_ms} close() returned

Commit modes: none · auto (enable.auto.commit, --auto-commit-interval-ms) · sync (commit the
batch's offsets and wait, after every poll batch) · async (commit them without waiting).
With sync/async, offsets processed but not yet acknowledged are also committed synchronously
in the revoke callback (confluent-kafka; kafka-python runs listeners on its I/O loop, where a
blocking commit is not allowed, so it relies on the per-batch commit).
"""

import argparse
import os
import signal
import sys
import time

from grp_common import emit, index_of, log, tps


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--client", choices=["ck", "kp"], required=True)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True, help="comma-separated topics")
    p.add_argument("--group", required=True)
    p.add_argument("--name", default=None, help="label; also the client id (default: client-pid)")
    p.add_argument("--instance-id", default=None, help="group.instance.id (static membership)")
    p.add_argument("--strategy", default="range",
                   choices=["range", "roundrobin", "cooperative-sticky", "sticky"])
    p.add_argument("--session-timeout-ms", type=int, default=6000)
    p.add_argument("--heartbeat-ms", type=int, default=500)
    p.add_argument("--max-poll-interval-ms", type=int, default=300000)
    p.add_argument("--commit", choices=["none", "auto", "sync", "async"], default="sync")
    p.add_argument("--auto-commit-interval-ms", type=int, default=500)
    p.add_argument("--reset", choices=["earliest", "latest", "none"], default="earliest")
    p.add_argument("--stop-file", default=None, help="close and exit once this file exists")
    p.add_argument("--duration", type=float, default=300.0, help="close and exit after this long")
    p.add_argument("--max-records", type=int, default=0, help="close after this many records (0: no limit)")
    p.add_argument("--rate", type=float, default=0.0, help="consume at most this many records/s (0: no limit)")
    p.add_argument("--batch", type=int, default=100, help="records per poll at most")
    p.add_argument("--stop-on-error", action="store_true", help="close after the first consume error")
    p.add_argument("--no-records", action="store_true", help="do not print recs events (counts only)")
    p.add_argument("--group-protocol", choices=["classic", "consumer"], default="classic",
                   help="confluent-kafka's group.protocol: consumer = KIP-848 (the coordinator assigns; "
                        "session timeout, heartbeat interval and strategy are the broker's then)")
    p.add_argument("--remote-assignor", default=None,
                   help="group.remote.assignor (server-side assignor) with --group-protocol consumer")
    return p.parse_args()


class Member:
    """What both client flavours share: bookkeeping of assignment, counts, stop conditions."""

    def __init__(self, a):
        self.a = a
        self.name = a.name or f"{a.client}-{os.getpid()}"
        self.topics = [t for t in a.topic.split(",") if t]
        self.current = set()
        self.count = 0
        self.errors = 0
        self.t0 = time.monotonic()
        self.end = self.t0 + a.duration
        # (topic, p) -> next offset processed but not yet acknowledged as committed
        self.pending = {}

    def on_assign(self, parts, cooperative, member=None):
        if cooperative:
            self.current |= {(t, p) for t, p in tps(parts)}
        else:
            self.current = {(t, p) for t, p in tps(parts)}
        emit("assign", name=self.name, parts=tps(parts), now=tps(self.current),
             proto="COOPERATIVE" if cooperative else "EAGER", member=member)

    def on_revoke(self, parts, cooperative, ev="revoke"):
        gone = {(t, p) for t, p in tps(parts)}
        if cooperative:
            self.current -= gone
        else:
            self.current = set()
        emit(ev, name=self.name, parts=tps(parts), now=tps(self.current),
             proto="COOPERATIVE" if cooperative else "EAGER")

    def stop_reason(self):
        a = self.a
        if a.stop_file and os.path.exists(a.stop_file):
            return "stop-file"
        if time.monotonic() >= self.end:
            return "duration"
        if a.max_records and self.count >= a.max_records:
            return "max-records"
        if a.stop_on_error and self.errors:
            return "error"
        return None

    def batch_size(self):
        n = self.a.batch
        if self.a.max_records:
            n = max(1, min(n, self.a.max_records - self.count))
        return n

    def throttle(self):
        if self.a.rate > 0:
            ahead = self.count / self.a.rate - (time.monotonic() - self.t0)
            if ahead > 0:
                time.sleep(min(ahead, 1.0))

    def records(self, recs):
        """recs: [(topic, p, offset, value)] of one poll batch, in delivery order."""
        if not recs:
            return
        self.count += len(recs)
        for t, p, o, _ in recs:
            self.pending[(t, p)] = o + 1
        if not self.a.no_records:
            emit("recs", name=self.name, r=[[t, p, o, index_of(v)] for t, p, o, v in recs])

    def committed(self, via, offsets, err=None):
        """offsets: [(topic, p, offset)] acknowledged (err None) or failed."""
        offs = [[t, p, o] for t, p, o in sorted(offsets)]
        if err is None:
            for t, p, o in offsets:
                if self.pending.get((t, p), -1) <= o:
                    self.pending.pop((t, p), None)
        emit("commit", name=self.name, via=via, ok=err is None, err=err, offsets=offs)


# ---------------------------------------------------------------------------------------------
# confluent-kafka


def run_ck(a, m):
    import confluent_kafka as ck

    def on_error(err):
        emit("cerr", name=m.name, msg=str(err), code=err.code(), fatal=err.fatal())

    def on_commit(err, parts):
        # Called for auto commits and async commits (and also for sync ones: harmless, the
        # test takes the highest acknowledged offset per partition).
        via = "auto" if a.commit == "auto" else ("async" if a.commit == "async" else "cb")
        ok = [(tp.topic, tp.partition, tp.offset) for tp in (parts or [])
              if tp.error is None and tp.offset >= 0]
        bad = [(tp.topic, tp.partition, tp.offset) for tp in (parts or []) if tp.error is not None]
        if err is not None:
            if err.code() == ck.KafkaError._NO_OFFSET:
                return  # nothing to commit
            m.committed(via, [(t, p, o) for t, p, o in ok + bad], str(err))
            return
        if ok:
            m.committed(via, ok)
        if bad:
            m.committed(via, bad, "; ".join(str(tp.error) for tp in parts if tp.error is not None))

    conf = {
        "bootstrap.servers": a.bootstrap,
        "group.id": a.group,
        "client.id": m.name,
        "session.timeout.ms": a.session_timeout_ms,
        "heartbeat.interval.ms": a.heartbeat_ms,
        "max.poll.interval.ms": a.max_poll_interval_ms,
        "partition.assignment.strategy": a.strategy,
        "auto.offset.reset": {"earliest": "earliest", "latest": "latest", "none": "error"}[a.reset],
        "enable.auto.commit": a.commit == "auto",
        "auto.commit.interval.ms": a.auto_commit_interval_ms,
        "enable.auto.offset.store": True,
        "enable.partition.eof": False,
        "error_cb": on_error,
        "on_commit": on_commit,
    }
    if a.instance_id:
        conf["group.instance.id"] = a.instance_id
    if a.group_protocol == "consumer":
        # librdkafka refuses the classic knobs under KIP-848: the broker owns them.
        for k in ("session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"):
            conf.pop(k)
        conf["group.protocol"] = "consumer"
        if a.remote_assignor:
            conf["group.remote.assignor"] = a.remote_assignor
    c = ck.Consumer(conf)

    def coop():
        if a.group_protocol == "consumer":
            return True  # KIP-848: always incremental (assign/revoke name only what changes)
        try:
            return c.rebalance_protocol() == "COOPERATIVE"
        except Exception:  # noqa: BLE001
            return a.strategy == "cooperative-sticky"

    def member_id():
        try:
            return c.memberid()
        except Exception:  # noqa: BLE001
            return None

    def commit_pending(parts, via):
        want = [(t, p, m.pending[(t, p)]) for t, p in tps(parts) if (t, p) in m.pending]
        if not want or a.commit not in ("sync", "async"):
            return
        try:
            res = c.commit(offsets=[ck.TopicPartition(t, p, o) for t, p, o in want], asynchronous=False)
            m.committed(via, [(tp.topic, tp.partition, tp.offset) for tp in res if tp.error is None])
        except ck.KafkaException as e:
            m.committed(via, want, str(e))

    def on_assign(consumer, parts):
        m.on_assign(parts, coop(), member_id())

    def on_revoke(consumer, parts):
        commit_pending(parts, "revoke")
        m.on_revoke(parts, coop())

    def on_lost(consumer, parts):
        m.on_revoke(parts, coop(), "lost")

    c.subscribe(m.topics, on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    reason = None
    while reason is None:
        msgs = c.consume(num_messages=m.batch_size(), timeout=0.1)
        recs = []
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.code() == ck.KafkaError._PARTITION_EOF:
                    continue
                m.errors += 1
                emit("error", name=m.name, code=err.code(), msg=str(err), fatal=err.fatal(),
                     err_name=err.name(), topic=msg.topic(), partition=msg.partition())
                continue
            recs.append((msg.topic(), msg.partition(), msg.offset(), msg.value()))
        m.records(recs)
        if recs and a.commit in ("sync", "async"):
            last = {}
            for t, p, o, _ in recs:
                last[(t, p)] = o + 1
            offs = [ck.TopicPartition(t, p, o) for (t, p), o in sorted(last.items())]
            if a.commit == "sync":
                try:
                    res = c.commit(offsets=offs, asynchronous=False)
                    okl = [(tp.topic, tp.partition, tp.offset) for tp in res if tp.error is None]
                    bad = [tp for tp in res if tp.error is not None]
                    if okl:
                        m.committed("sync", okl)
                    if bad:
                        m.committed("sync", [(tp.topic, tp.partition, tp.offset) for tp in bad],
                                    "; ".join(str(tp.error) for tp in bad))
                except ck.KafkaException as e:
                    m.committed("sync", [(t, p, o) for (t, p), o in last.items()], str(e))
            else:
                try:
                    c.commit(offsets=offs, asynchronous=True)
                except ck.KafkaException as e:
                    m.committed("async", [(t, p, o) for (t, p), o in last.items()], str(e))
        m.throttle()
        reason = m.stop_reason()
    emit("closing", name=m.name, reason=reason, count=m.count)
    t = time.monotonic()
    c.close()
    return reason, t


# ---------------------------------------------------------------------------------------------
# kafka-python


def run_kp(a, m):
    import kafka
    import kafka.errors as Errors
    from kafka import KafkaConsumer, TopicPartition
    from kafka.consumer.subscription_state import ConsumerRebalanceListener
    from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
    from kafka.structs import OffsetAndMetadata

    assignor = {
        "range": RangePartitionAssignor,
        "roundrobin": RoundRobinPartitionAssignor,
        "cooperative-sticky": CooperativeStickyAssignor,
        "sticky": StickyPartitionAssignor,
    }[a.strategy]
    cooperative = a.strategy == "cooperative-sticky"

    def commit_cb(via):
        def cb(offsets, res_or_exc):
            offs = [(tp.topic, tp.partition, om.offset) for tp, om in (offsets or {}).items()]
            if isinstance(res_or_exc, Exception):
                m.committed(via, offs, f"{type(res_or_exc).__name__}: {res_or_exc}")
            elif offs:
                m.committed(via, offs)
        return cb

    kw = dict(
        bootstrap_servers=[a.bootstrap],
        group_id=a.group,
        client_id=m.name,
        session_timeout_ms=a.session_timeout_ms,
        heartbeat_interval_ms=a.heartbeat_ms,
        max_poll_interval_ms=a.max_poll_interval_ms,
        partition_assignment_strategy=[assignor],
        auto_offset_reset=a.reset,
        enable_auto_commit=a.commit == "auto",
        auto_commit_interval_ms=a.auto_commit_interval_ms,
        default_offset_commit_callback=commit_cb("auto"),
        max_poll_records=a.batch,
    )
    if a.instance_id:
        kw["group_instance_id"] = a.instance_id
    c = KafkaConsumer(**kw)

    def member_id():
        try:
            return c._coordinator._generation.member_id  # noqa: SLF001 - diagnostics only
        except Exception:  # noqa: BLE001
            return None

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            m.on_revoke(revoked, cooperative)

        def on_partitions_assigned(self, assigned):
            m.on_assign(assigned, cooperative, member_id())

        def on_partitions_lost(self, lost):
            m.on_revoke(lost, cooperative, "lost")

    c.subscribe(topics=m.topics, listener=Listener())
    reason = None
    while reason is None:
        try:
            batches = c.poll(timeout_ms=100, max_records=m.batch_size())
        except (Errors.NoOffsetForPartitionError, Errors.OffsetOutOfRangeError) as e:
            m.errors += 1
            emit("error", name=m.name, code=getattr(e, "errno", None), msg=str(e), fatal=False,
                 err_name=type(e).__name__)
            batches = {}
            time.sleep(0.05)
        except Errors.KafkaError as e:
            m.errors += 1
            emit("error", name=m.name, code=getattr(e, "errno", None), msg=str(e), fatal=False,
                 err_name=type(e).__name__)
            batches = {}
            time.sleep(0.05)
        recs = []
        for tp, rs in batches.items():
            for r in rs:
                recs.append((tp.topic, tp.partition, r.offset, r.value))
        m.records(recs)
        if recs and a.commit in ("sync", "async"):
            last = {}
            for t, p, o, _ in recs:
                last[(t, p)] = o + 1
            offs = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in last.items()}
            if a.commit == "sync":
                try:
                    c.commit(offsets=offs)
                    m.committed("sync", [(t, p, o) for (t, p), o in last.items()])
                except Errors.KafkaError as e:
                    m.committed("sync", [(t, p, o) for (t, p), o in last.items()], f"{type(e).__name__}: {e}")
            else:
                try:
                    c.commit_async(offsets=offs, callback=commit_cb("async"))
                except Errors.KafkaError as e:
                    m.committed("async", [(t, p, o) for (t, p), o in last.items()], f"{type(e).__name__}: {e}")
        m.throttle()
        reason = m.stop_reason()
    emit("closing", name=m.name, reason=reason, count=m.count)
    t = time.monotonic()
    c.close()
    return reason, t


def main():
    a = parse_args()
    m = Member(a)
    # SIGTERM: close cleanly like the stop file (the tests use SIGKILL for a crash).
    signal.signal(signal.SIGTERM, lambda *_: setattr(m, "end", 0))
    if a.client == "ck":
        import confluent_kafka as ck
        version = "confluent-kafka " + ck.__version__ + " / librdkafka " + ck.libversion()[0]
    else:
        import kafka
        version = "kafka-python " + kafka.__version__
    emit("start", group_protocol=a.group_protocol, name=m.name, client=version, pid=os.getpid(), group=a.group,
         instance_id=a.instance_id, strategy=a.strategy, commit=a.commit, reset=a.reset)
    try:
        reason, t = (run_ck if a.client == "ck" else run_kp)(a, m)
    except Exception as e:  # noqa: BLE001 - report, then fail
        emit("error", name=m.name, code=None, msg=f"{type(e).__name__}: {e}", fatal=True,
             err_name=type(e).__name__)
        log("grp_consumer:", repr(e))
        raise
    emit("end", name=m.name, reason=reason, count=m.count, close_ms=round((time.monotonic() - t) * 1000, 1))


if __name__ == "__main__":
    main()
