"""The load, the sampling and the checks of scripts/soak.sh (issue #14 Build 9). Not in CI.

  soak.py run --bootstrap ADDR --admin ADDR --node-pid PID --node-log FILE --data-dir DIR
              --out DIR --duration SECONDS [rates ...]
      creates the topics, runs every stream at once for DURATION seconds, drains, verifies,
      and writes OUT/result.json; OUT/samples.csv gets one row every --sample-s seconds.
      Progress goes to stdout, one line per sample.
  soak.py summary --out DIR --exit-code N [--command TEXT --binary PATH]
      prints the summary block (Markdown, for bench/RESULTS.md) from result.json, samples.csv
      and the node log; exits 1 if a check failed.

The streams (all at once):
  all    acks=all idempotent confluent-kafka producer -> soak-all (6 partitions), keys
         "0", "1", ... in order; every acknowledged key is recorded. Read by the group
         soak-group: 3 confluent-kafka members, manual commits (every 5 s asynchronously, on
         revocation and at the end synchronously); every --churn-s seconds one member leaves
         (commit, close) and rejoins --rejoin-s seconds later.
  one    acks=1 kafka-python producer (idempotence off) -> soak-one (3 partitions), read by the
         group soak-one (one confluent-kafka member, auto commit).
  txn    transactional confluent-kafka producer -> soak-txn (3 partitions): transactions of
         --txn-size records, committed and aborted alternately; keys c<txn>-<n> / a<txn>-<n>.
         Read from the beginning by a read_committed consumer (no group) that must never see
         a record of an aborted transaction.
  ret    acks=1 confluent-kafka producer -> soak-ret-bytes (retention.bytes) and soak-ret-time
         (retention.ms), 2 partitions each, segment.bytes 1 MiB, so retention deletes segments
         all the time; read by the group soak-ret.

Checks (summary): acks=all keys acknowledged but never consumed by the group = 0; read by a
full scan of soak-all after the run, every acknowledged key is in the log, none twice
(idempotence); the group's committed offsets reached the log end; acks=1 keys lost = 0;
read_committed saw 0 aborted records and every committed one; no delivery/transaction/consume
error on any client; retention advanced the log start of every retention partition and kept
each partition under a bound; once every client has left, no descriptor of the node on a
deleted file (a segment retention deleted but something still holds open); no error line in
the node log; the node alive throughout and exit code 0 after SIGTERM.
"""

import argparse
import csv
import json
import os
import re
import statistics
import sys
import threading
import time
import traceback
import urllib.request

ALL, ONE, TXN, RET_BYTES, RET_TIME = "soak-all", "soak-one", "soak-txn", "soak-ret-bytes", "soak-ret-time"
SEGMENT_BYTES = 1 << 20
RET_BYTES_LIMIT = 4 << 20  # retention.bytes of soak-ret-bytes, per partition
RET_MS = 30000  # retention.ms of soak-ret-time
RET_SIZE_BOUND = 16 << 20  # a retention partition above this at any sample fails the run
TOPICS = {
    ALL: (6, {}),
    ONE: (3, {}),
    TXN: (3, {}),
    RET_BYTES: (2, {"segment.bytes": str(SEGMENT_BYTES), "retention.bytes": str(RET_BYTES_LIMIT)}),
    RET_TIME: (2, {"segment.bytes": str(SEGMENT_BYTES), "retention.ms": str(RET_MS)}),
}
GROUP = "soak-group"
MEMBERS = 3

# Node log lines that are expected in a healthy run; any other line is a warning, and one
# that matches ERROR_LINE is an error.
INFO_LINES = [re.compile(p) for p in (
    r"^sluice: ready ",
    r"^sluice: shard \d+: \d+ groups loaded$",
    r"^sluice: cleaned ",
)]
# A client that closes its connection while a response is on its way (a member leaving
# during a long-poll fetch): expected under churn, counted as a warning.
BENIGN_LINES = [re.compile(p) for p in (
    r"^sluice: closing connection: write failed: (Broken pipe|Connection reset by peer)",
    r"^sluice: closing connection: .*Connection reset by peer",
)]
ERROR_LINE = re.compile(r"panic|fail|offline|abort|refusing|not found|no descriptor|error", re.I)


def classify(line):
    """'info', 'warn' or 'error' for one node log line."""
    line = line.rstrip("\n")
    if not line.strip():
        return "info"
    if any(p.search(line) for p in INFO_LINES):
        return "info"
    if any(p.search(line) for p in BENIGN_LINES):
        return "warn"
    return "error" if ERROR_LINE.search(line) else "warn"


def log(*a):
    """To stdout, with the progress lines (stderr is the clients' own log, kept in a file)."""
    print(*a, flush=True)


class Errors:
    """Client-side errors of one stream: counted by kind, the first few kept as samples."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_kind = {}
        self.samples = []

    def add(self, kind, what):
        with self.lock:
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            if len(self.samples) < 10:
                self.samples.append(f"{kind}: {what}")

    def total(self, kinds=None):
        with self.lock:
            return sum(v for k, v in self.by_kind.items() if kinds is None or k in kinds)


class Bitmap:
    """One byte per sequential key (a counter capped at 255), grown on demand."""

    def __init__(self, n=1 << 20):
        self.a = bytearray(n)
        self.lock = threading.Lock()

    def inc(self, i):
        if i >= len(self.a):
            with self.lock:
                if i >= len(self.a):
                    self.a.extend(bytearray(max(i + 1 - len(self.a), len(self.a))))
        v = self.a[i]
        if v < 255:
            self.a[i] = v + 1
        return v

    def get(self, i):
        return self.a[i] if i < len(self.a) else 0


class Stream:
    def __init__(self, name):
        self.name = name
        self.produced = 0  # handed to the client
        self.acked = 0
        self.acked_bytes = 0
        self.consumed = 0
        self.consumed_bytes = 0
        self.errors = Errors()


class Ctx:
    def __init__(self, a):
        self.a = a
        self.stop_load = threading.Event()  # producers stop and flush
        self.abort = threading.Event()  # the node died or the driver failed: stop everything
        self.abort_reason = None
        self.all = Stream("all")
        self.one = Stream("one")
        self.txn = Stream("txn")
        self.ret = Stream("ret")
        self.all_acked = Bitmap(int(a.rate_all * a.duration * 1.2) + 1024)
        self.all_seen = Bitmap(int(a.rate_all * a.duration * 1.2) + 1024)
        self.all_seen_unique = 0
        self.one_acked = Bitmap(int(a.rate_one * a.duration * 1.2) + 1024)
        self.one_seen = Bitmap(int(a.rate_one * a.duration * 1.2) + 1024)
        self.one_seen_unique = 0
        self.one_sent = 0
        # transactions: ids of committed / aborted / uncertain transactions, records seen
        self.txn_lock = threading.Lock()
        self.txn_committed = {}  # txn id -> records
        self.txn_aborted = {}
        self.txn_uncertain = {}
        self.txn_committed_records = 0
        self.txn_aborted_records = 0
        self.rc_seen = set()  # txn id * 100000 + n, committed keys seen by read_committed
        self.rc_seen_dups = 0
        self.rc_aborted_seen = 0  # records with an "a" key seen, live
        self.rc_aborted_samples = []
        self.ret_by_topic = {RET_BYTES: [0, 0], RET_TIME: [0, 0]}  # produced, consumed
        self.rebalances = 0
        self.leaves = 0
        self.commit_errors = Errors()  # offset commits that failed (reported, not a failure)
        self.t0 = time.monotonic()

    def fail(self, reason):
        if not self.abort.is_set():
            self.abort_reason = reason
            log("soak:", reason)
            self.abort.set()


def paced(ctx, rate, t_start):
    """How many records are due by now at `rate` per second since t_start."""
    return int((time.monotonic() - t_start) * rate)


def error_cb(stream, label):
    def cb(err):
        kind = "fatal" if err.fatal() else "error_cb:" + err.name()
        stream.errors.add(kind, f"{label}: {err}")
    return cb


# ---------------------------------------------------------------- producers

def produce_loop(ctx, stream, producer, topic, rate, size, key_of, on_delivery):
    """Produces to `topic` at `rate`/s until stop_load; returns after flushing."""
    import confluent_kafka as ck
    value = (b"soak-" + topic.encode() + b"-") * (size // 10 + 1)
    value = value[:size]
    seq = 0
    t_start = time.monotonic()
    while not ctx.stop_load.is_set() and not ctx.abort.is_set():
        due = paced(ctx, rate, t_start)
        if due - seq > rate:  # fell more than a second behind (a stall): do not burst
            t_start = time.monotonic() - seq / rate
            due = seq
        while seq < due:
            key = key_of(seq)
            try:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
            except BufferError:
                producer.poll(0.05)
                continue
            except ck.KafkaException as e:
                stream.errors.add("produce", str(e))
                time.sleep(0.1)
                break
            seq += 1
            stream.produced += 1
        producer.poll(0.01)
    wait = 5 if ctx.abort.is_set() else 120
    left = producer.flush(wait)
    if left:
        stream.errors.add("undelivered", f"{topic}: {left} records not delivered {wait} s after the end")
    return seq


def run_all_producer(ctx):
    import confluent_kafka as ck
    s = ctx.all
    p = ck.Producer({
        "bootstrap.servers": ctx.a.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "client.id": "soak-all-producer",
        "error_cb": error_cb(s, "all producer"),
    })

    def delivered(err, msg):
        if err is not None:
            s.errors.add("delivery", f"{err.name()}: {err}")
            return
        ctx.all_acked.inc(int(msg.key()))
        s.acked += 1
        s.acked_bytes += len(msg.value()) + len(msg.key())

    produce_loop(ctx, s, p, ALL, ctx.a.rate_all, ctx.a.size, lambda n: b"%d" % n, delivered)


def run_ret_producer(ctx, topic, rate):
    import confluent_kafka as ck
    s = ctx.ret
    counts = ctx.ret_by_topic[topic]
    p = ck.Producer({
        "bootstrap.servers": ctx.a.bootstrap,
        "acks": "1",
        "enable.idempotence": False,
        "linger.ms": 5,
        "client.id": "soak-ret-producer-" + topic,
        "error_cb": error_cb(s, topic + " producer"),
    })

    def delivered(err, msg):
        if err is not None:
            s.errors.add("delivery", f"{topic}: {err.name()}: {err}")
            return
        s.acked += 1
        s.acked_bytes += len(msg.value())
        counts[0] += 1

    produce_loop(ctx, s, p, topic, rate, ctx.a.size, lambda n: None, delivered)


def run_one_producer(ctx):
    """acks=1 through kafka-python (another client's produce path), idempotence off."""
    from kafka import KafkaProducer
    s = ctx.one
    p = KafkaProducer(
        bootstrap_servers=[ctx.a.bootstrap],
        acks=1,
        enable_idempotence=False,
        linger_ms=5,
        client_id="soak-one-producer",
        max_block_ms=30000,
    )
    value = (b"soak-one-") * (ctx.a.size // 9 + 1)
    value = value[:ctx.a.size]

    def ok(key, meta):
        ctx.one_acked.inc(key)
        s.acked += 1
        s.acked_bytes += len(value)

    def bad(key, exc):
        s.errors.add("delivery", f"key {key}: {type(exc).__name__}: {exc}")

    seq = 0
    rate = ctx.a.rate_one
    t_start = time.monotonic()
    while not ctx.stop_load.is_set() and not ctx.abort.is_set():
        due = paced(ctx, rate, t_start)
        if due - seq > rate:
            t_start = time.monotonic() - seq / rate
            due = seq
        while seq < due:
            try:
                f = p.send(ONE, key=b"%d" % seq, value=value)
            except Exception as e:  # noqa: BLE001 (kafka-python raises several kinds)
                s.errors.add("produce", f"{type(e).__name__}: {e}")
                time.sleep(0.1)
                break
            f.add_callback(ok, seq)
            f.add_errback(bad, seq)
            seq += 1
            s.produced += 1
        time.sleep(0.01)
    try:
        p.flush(timeout=5 if ctx.abort.is_set() else 120)
    except Exception as e:  # noqa: BLE001
        s.errors.add("undelivered", f"flush: {type(e).__name__}: {e}")
    p.close(timeout=30)
    ctx.one_sent = seq


def run_txn_producer(ctx):
    import confluent_kafka as ck
    s = ctx.txn
    a = ctx.a
    txn_id = "soak-txn-%d" % time.time_ns()
    value = (b"soak-txn-") * (a.txn_record_size // 9 + 1)
    value = value[:a.txn_record_size]

    def make():
        p = ck.Producer({
            "bootstrap.servers": a.bootstrap,
            "transactional.id": txn_id,
            "transaction.timeout.ms": 60000,
            "linger.ms": 5,
            "client.id": "soak-txn-producer",
            "error_cb": error_cb(s, "txn producer"),
        })
        p.init_transactions(60)
        return p

    def delivered(err, msg):
        if err is not None:
            # records of an aborted transaction may be purged before delivery: not an error
            if err.code() != ck.KafkaError._PURGE_QUEUE:
                s.errors.add("delivery", f"{err.name()}: {err}")
            return
        s.acked += 1
        s.acked_bytes += len(msg.value())

    p = make()
    i = 0
    t_start = time.monotonic()
    while not ctx.stop_load.is_set() and not ctx.abort.is_set():
        if i >= (time.monotonic() - t_start) * a.txn_per_s:
            time.sleep(0.02)
            continue
        commit = i % 2 == 0
        prefix = b"c" if commit else b"a"
        try:
            p.begin_transaction()
            for n in range(a.txn_size):
                while True:
                    try:
                        p.produce(TXN, key=prefix + b"%d-%d" % (i, n), value=value, on_delivery=delivered)
                        break
                    except BufferError:
                        p.poll(0.05)
                s.produced += 1
                p.poll(0)
            # Aborted records are flushed first too, so that they are in the log (and must
            # be filtered by read_committed), not only dropped from the client's queue.
            left = p.flush(60)
            if left:
                raise RuntimeError(f"{left} records of transaction {i} not delivered in 60 s")
            if commit:
                p.commit_transaction(60)
                with ctx.txn_lock:
                    ctx.txn_committed[i] = a.txn_size
                    ctx.txn_committed_records += a.txn_size
            else:
                p.abort_transaction(60)
                with ctx.txn_lock:
                    ctx.txn_aborted[i] = a.txn_size
                    ctx.txn_aborted_records += a.txn_size
        except Exception as e:  # noqa: BLE001
            s.errors.add("transaction", f"txn {i} ({'commit' if commit else 'abort'}): {type(e).__name__}: {e}")
            with ctx.txn_lock:
                ctx.txn_uncertain[i] = a.txn_size
            try:
                p.abort_transaction(60)
            except Exception:  # noqa: BLE001
                try:
                    p = make()
                except Exception as e2:  # noqa: BLE001
                    s.errors.add("transaction", f"new producer: {type(e2).__name__}: {e2}")
                    time.sleep(1)
        i += 1
    try:
        p.flush(30)
    except Exception:  # noqa: BLE001
        pass


# ---------------------------------------------------------------- consumers

class Slot:
    """One member slot of the churning group on soak-all."""

    def __init__(self, ctx, idx):
        self.ctx = ctx
        self.idx = idx
        self.leave = threading.Event()
        self.up = threading.Event()  # a consumer is in the group with an assignment
        self.commit_req = threading.Event()
        self.committed = threading.Event()
        self.close_req = threading.Event()
        self.closed = threading.Event()
        self.joins = 0

    def run(self):
        import confluent_kafka as ck
        ctx = self.ctx
        s = ctx.all
        while not ctx.abort.is_set():
            c = ck.Consumer({
                "bootstrap.servers": ctx.a.bootstrap,
                "group.id": GROUP,
                "client.id": f"soak-group-{self.idx}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
                "session.timeout.ms": 10000,
                "heartbeat.interval.ms": 1000,
                "error_cb": error_cb(s, f"group member {self.idx}"),
                "on_commit": self.on_commit,
            })

            def on_assign(consumer, parts, self=self):
                ctx.rebalances += 1
                self.up.set()

            def on_revoke(consumer, parts, self=self):
                self.commit(consumer)

            c.subscribe([ALL], on_assign=on_assign, on_revoke=on_revoke)
            self.joins += 1
            last_commit = time.monotonic()
            final = False
            while not ctx.abort.is_set():
                for m in c.consume(num_messages=500, timeout=0.2):
                    err = m.error()
                    if err is not None:
                        s.errors.add("consume", f"member {self.idx}: {err.name()}: {err}")
                        continue
                    k = int(m.key())
                    if ctx.all_seen.inc(k) == 0:
                        ctx.all_seen_unique += 1
                    s.consumed += 1
                    s.consumed_bytes += len(m.value()) + len(m.key())
                now = time.monotonic()
                if now - last_commit >= 5:
                    last_commit = now
                    try:
                        c.commit(asynchronous=True)
                    except ck.KafkaException as e:
                        if e.args[0].code() != ck.KafkaError._NO_OFFSET:
                            ctx.commit_errors.add(e.args[0].name(), f"member {self.idx} async: {e}")
                if self.commit_req.is_set() and not self.committed.is_set():
                    self.commit(c)
                    self.committed.set()
                if self.close_req.is_set():
                    final = True
                    break
                if self.leave.is_set():
                    break
            if not final or not self.committed.is_set():
                self.commit(c)
            self.up.clear()
            try:
                c.close()
            except Exception as e:  # noqa: BLE001
                s.errors.add("close", f"member {self.idx}: {type(e).__name__}: {e}")
            if final or ctx.abort.is_set():
                self.closed.set()
                return
            ctx.leaves += 1
            self.leave.clear()
            t = time.monotonic() + ctx.a.rejoin_s
            while time.monotonic() < t and not ctx.abort.is_set() and not self.close_req.is_set():
                time.sleep(0.1)
            if self.close_req.is_set():
                break
        self.closed.set()

    def on_commit(self, err, parts):
        import confluent_kafka as ck
        if err is not None and err.code() != ck.KafkaError._NO_OFFSET:
            self.ctx.commit_errors.add(err.name(), f"member {self.idx}: {err}")

    def commit(self, c):
        """A synchronous commit of the consumed positions, retried a few times."""
        import confluent_kafka as ck
        for attempt in range(5):
            try:
                c.commit(asynchronous=False)
                return True
            except ck.KafkaException as e:
                err = e.args[0]
                if err.code() == ck.KafkaError._NO_OFFSET:
                    return True
                self.ctx.commit_errors.add(err.name(), f"member {self.idx} sync (attempt {attempt + 1}): {err}")
                time.sleep(0.2)
        return False


def run_one_consumer(ctx, done):
    import confluent_kafka as ck
    s = ctx.one
    c = ck.Consumer({
        "bootstrap.servers": ctx.a.bootstrap,
        "group.id": "soak-one",
        "client.id": "soak-one-consumer",
        "enable.auto.commit": True,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "error_cb": error_cb(s, "one consumer"),
    })
    c.subscribe([ONE])
    while not done.is_set() and not ctx.abort.is_set():
        for m in c.consume(num_messages=500, timeout=0.2):
            err = m.error()
            if err is not None:
                s.errors.add("consume", f"{err.name()}: {err}")
                continue
            if ctx.one_seen.inc(int(m.key())) == 0:
                ctx.one_seen_unique += 1
            s.consumed += 1
            s.consumed_bytes += len(m.value())
    c.close()


def partitions_of(c, topic):
    import confluent_kafka as ck
    md = c.list_topics(topic, timeout=10)
    t = md.topics[topic]
    if t.error is not None:
        raise ck.KafkaException(t.error)
    return sorted(t.partitions)


def run_rc_consumer(ctx, done):
    """read_committed from the beginning of soak-txn, no group."""
    import confluent_kafka as ck
    s = ctx.txn
    c = ck.Consumer({
        "bootstrap.servers": ctx.a.bootstrap,
        "group.id": "soak-rc-unused",
        "client.id": "soak-rc-consumer",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "isolation.level": "read_committed",
        "error_cb": error_cb(s, "read_committed consumer"),
    })
    c.assign([ck.TopicPartition(TXN, p, ck.OFFSET_BEGINNING) for p in partitions_of(c, TXN)])
    while not done.is_set() and not ctx.abort.is_set():
        for m in c.consume(num_messages=500, timeout=0.2):
            err = m.error()
            if err is not None:
                s.errors.add("consume", f"read_committed: {err.name()}: {err}")
                continue
            key = m.key()
            s.consumed += 1
            s.consumed_bytes += len(m.value())
            i, n = key[1:].split(b"-")
            if key[:1] == b"a":
                ctx.rc_aborted_seen += 1
                if len(ctx.rc_aborted_samples) < 10:
                    ctx.rc_aborted_samples.append(f"{key.decode()} at {m.partition()}/{m.offset()}")
            else:
                k = int(i) * 100000 + int(n)
                if k in ctx.rc_seen:
                    ctx.rc_seen_dups += 1
                else:
                    ctx.rc_seen.add(k)
    c.close()


def run_ret_consumer(ctx, done):
    import confluent_kafka as ck
    s = ctx.ret
    c = ck.Consumer({
        "bootstrap.servers": ctx.a.bootstrap,
        "group.id": "soak-ret",
        "client.id": "soak-ret-consumer",
        "enable.auto.commit": True,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "error_cb": error_cb(s, "retention consumer"),
    })
    c.subscribe([RET_BYTES, RET_TIME])
    while not done.is_set() and not ctx.abort.is_set():
        for m in c.consume(num_messages=500, timeout=0.2):
            err = m.error()
            if err is not None:
                s.errors.add("consume", f"retention: {err.name()}: {err}")
                continue
            s.consumed += 1
            s.consumed_bytes += len(m.value())
            ctx.ret_by_topic[m.topic()][1] += 1
    c.close()


# ---------------------------------------------------------------- sampling

def proc_status(pid):
    """RSS KiB, threads, descriptors, descriptors on deleted files, their bytes, CPU seconds;
    None if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            st = f.read()
        rss = int(re.search(r"^VmRSS:\s+(\d+)", st, re.M).group(1))
        threads = int(re.search(r"^Threads:\s+(\d+)", st, re.M).group(1))
        fds = os.listdir(f"/proc/{pid}/fd")
        deleted = deleted_bytes = 0
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").endswith(" (deleted)"):
                    deleted += 1
                    deleted_bytes += os.stat(f"/proc/{pid}/fd/{fd}").st_size
            except OSError:
                pass
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        if fields[0] == "Z":
            return None
        return rss, threads, len(fds), deleted, deleted_bytes, cpu
    except (OSError, AttributeError):
        return None


METRIC = re.compile(r"^(sluice_[a-z_]+)(?:\{([^}]*)\})?\s+([-0-9.eE+]+|NaN)$")


def metrics(admin):
    """{(name, frozenset(labels)): value} from the admin endpoint, {} if it does not answer."""
    out = {}
    try:
        with urllib.request.urlopen(f"http://{admin}/metrics", timeout=5) as r:
            text = r.read().decode()
    except Exception:  # noqa: BLE001
        return out
    for line in text.splitlines():
        m = METRIC.match(line)
        if not m:
            continue
        labels = frozenset(tuple(kv.split("=", 1)) for kv in re.findall(r'[a-z_]+="[^"]*"', m.group(2) or ""))
        labels = frozenset((k, v.strip('"')) for k, v in labels)
        try:
            out[(m.group(1), labels)] = float(m.group(3))
        except ValueError:
            pass
    return out


def metric_sum(ms, name, **want):
    return sum(v for (n, labels), v in ms.items()
               if n == name and all((k, str(x)) in labels for k, x in want.items()))


def metric_by_partition(ms, name, topic):
    return {int(dict(labels)["partition"]): v for (n, labels), v in ms.items()
            if n == name and ("topic", topic) in labels}


class NodeLog:
    """Reads the node log incrementally; counts lines by class; keeps the non-info ones."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.counts = {"info": 0, "warn": 0, "error": 0}
        self.notable = []

    def scan(self):
        try:
            with open(self.path, errors="replace") as f:
                f.seek(self.pos)
                chunk = f.read()
        except OSError:
            return
        end = chunk.rfind("\n") + 1
        self.pos += len(chunk[:end].encode(errors="replace"))
        for line in chunk[:end].splitlines():
            k = classify(line)
            self.counts[k] += 1
            if k != "info" and len(self.notable) < 50:
                self.notable.append(line)


COLUMNS = ["t_s", "phase", "node_alive", "rss_kib", "threads", "fds", "fds_deleted", "deleted_bytes_held", "node_cpu_s",
           "connections_open", "executor_kicks", "node_log_warn", "node_log_error", "client_errors",
           "commit_errors", "all_produced", "all_acked", "all_consumed", "all_consumed_unique",
           "one_acked", "one_consumed", "txn_committed_records", "txn_aborted_records", "rc_consumed",
           "rc_aborted_seen", "ret_acked", "ret_consumed", "ret_bytes_size", "ret_time_size",
           "ret_bytes_log_start", "ret_time_log_start", "ret_segments", "rebalances", "leaves"]


class Sampler:
    def __init__(self, ctx):
        self.ctx = ctx
        self.phase = "load"
        self.rows = []
        self.nodelog = NodeLog(ctx.a.node_log)
        self.ret_max = {RET_BYTES: 0, RET_TIME: 0}  # largest partition size seen
        self.ret_log_start = {}
        self.last_metrics = {}
        self.f = open(os.path.join(ctx.a.out, "samples.csv"), "w", newline="")
        self.w = csv.writer(self.f)
        self.w.writerow(COLUMNS)
        self.f.flush()
        self.stopped = threading.Event()

    def client_errors(self):
        c = self.ctx
        return sum(s.errors.total() for s in (c.all, c.one, c.txn, c.ret))

    def sample(self):
        c = self.ctx
        st = proc_status(c.a.node_pid)
        self.nodelog.scan()
        ms = metrics(c.a.admin) if st else {}
        if ms:
            self.last_metrics = ms
        sizes = {t: metric_by_partition(ms, "sluice_partition_size_bytes", t) for t in (RET_BYTES, RET_TIME)}
        starts = {t: metric_by_partition(ms, "sluice_partition_log_start_offset", t) for t in (RET_BYTES, RET_TIME)}
        for t in sizes:
            if sizes[t]:
                self.ret_max[t] = max(self.ret_max[t], max(sizes[t].values()))
            if starts[t]:
                self.ret_log_start[t] = starts[t]
        segs = sum(metric_sum(ms, "sluice_partition_segments", topic=t) for t in (RET_BYTES, RET_TIME))
        with c.txn_lock:
            tc, ta = c.txn_committed_records, c.txn_aborted_records
        row = {
            "t_s": round(time.monotonic() - c.t0, 1), "phase": self.phase, "node_alive": int(st is not None),
            "rss_kib": st[0] if st else "", "threads": st[1] if st else "", "fds": st[2] if st else "",
            "fds_deleted": st[3] if st else "", "deleted_bytes_held": st[4] if st else "",
            "node_cpu_s": round(st[5], 2) if st else "",
            "connections_open": int(metric_sum(ms, "sluice_connections_open")) if ms else "",
            "executor_kicks": int(metric_sum(ms, "sluice_executor_kicks_total")) if ms else "",
            "node_log_warn": self.nodelog.counts["warn"], "node_log_error": self.nodelog.counts["error"],
            "client_errors": self.client_errors(), "commit_errors": c.commit_errors.total(),
            "all_produced": c.all.produced, "all_acked": c.all.acked, "all_consumed": c.all.consumed,
            "all_consumed_unique": c.all_seen_unique, "one_acked": c.one.acked, "one_consumed": c.one.consumed,
            "txn_committed_records": tc, "txn_aborted_records": ta, "rc_consumed": c.txn.consumed,
            "rc_aborted_seen": c.rc_aborted_seen, "ret_acked": c.ret.acked, "ret_consumed": c.ret.consumed,
            "ret_bytes_size": int(sum(sizes[RET_BYTES].values())) if ms else "",
            "ret_time_size": int(sum(sizes[RET_TIME].values())) if ms else "",
            "ret_bytes_log_start": int(sum(starts[RET_BYTES].values())) if ms else "",
            "ret_time_log_start": int(sum(starts[RET_TIME].values())) if ms else "",
            "ret_segments": int(segs) if ms else "", "rebalances": c.rebalances, "leaves": c.leaves,
        }
        self.rows.append(row)
        self.w.writerow([row[k] for k in COLUMNS])
        self.f.flush()
        rss = f"{st[0] / 1024:.1f} MiB" if st else "-"
        print(f"[{row['t_s']:7.1f}s {self.phase}] node rss {rss} fds {row['fds']} (deleted {row['fds_deleted']}) "
              f"thr {row['threads']} "
              f"cpu {row['node_cpu_s']}s | all {c.all.acked}/{c.all_seen_unique} one {c.one.acked}/{c.one_seen_unique} "
              f"txn c{tc}/a{ta} rc {len(c.rc_seen)} aborted-seen {c.rc_aborted_seen} | ret {c.ret.acked}/{c.ret.consumed} "
              f"start {row['ret_bytes_log_start']}+{row['ret_time_log_start']} | rebal {c.rebalances} leaves {c.leaves} "
              f"| node log warn {row['node_log_warn']} err {row['node_log_error']} client err {row['client_errors']}",
              flush=True)
        if st is None:
            c.fail("the node is gone (no /proc entry or a zombie)")

    def run(self):
        period = self.ctx.a.sample_s
        nxt = time.monotonic()
        while not self.stopped.is_set():
            try:
                self.sample()
            except Exception:  # noqa: BLE001
                traceback.print_exc()
            nxt += period
            self.stopped.wait(max(0.0, nxt - time.monotonic()))


# ---------------------------------------------------------------- run

def create_topics(a):
    import confluent_kafka as ck
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    fs = admin.create_topics([NewTopic(t, n, 1, config=cfg) for t, (n, cfg) in TOPICS.items()],
                             operation_timeout=30, request_timeout=30)
    for t, f in fs.items():
        try:
            f.result(60)
        except ck.KafkaException as e:
            if e.args[0].code() != ck.KafkaError.TOPIC_ALREADY_EXISTS:
                raise


def start(target, *args, name):
    def wrapped():
        try:
            target(*args)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            CTX.fail(f"{name} thread died: {type(e).__name__}: {e}")
    t = threading.Thread(target=wrapped, name=name, daemon=True)
    t.start()
    return t


CTX = None


def verify_group_offsets(a):
    """The group's committed offsets and the log end offsets of soak-all, per partition."""
    import confluent_kafka as ck
    c = ck.Consumer({"bootstrap.servers": a.bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    parts = partitions_of(c, ALL)
    committed = c.committed([ck.TopicPartition(ALL, p) for p in parts], timeout=30)
    out = []
    for tp in committed:
        lo, hi = c.get_watermark_offsets(ck.TopicPartition(ALL, tp.partition), timeout=10)
        out.append({"partition": tp.partition, "committed": tp.offset, "log_start": lo, "log_end": hi})
    c.close()
    return out


def scan_all(a, ctx):
    """Reads soak-all from the beginning to its end: how often each key is in the log."""
    import confluent_kafka as ck
    c = ck.Consumer({"bootstrap.servers": a.bootstrap, "group.id": "soak-scan-unused", "enable.auto.commit": False,
                     "enable.auto.offset.store": False, "enable.partition.eof": True,
                     "fetch.max.bytes": 16 << 20, "max.partition.fetch.bytes": 4 << 20})
    parts = partitions_of(c, ALL)
    ends = {p: c.get_watermark_offsets(ck.TopicPartition(ALL, p), timeout=10)[1] for p in parts}
    in_log = Bitmap(len(ctx.all_acked.a))
    c.assign([ck.TopicPartition(ALL, p, ck.OFFSET_BEGINNING) for p in parts if ends[p] > 0])
    left = {p for p in parts if ends[p] > 0}
    records, dups, errors = 0, 0, []
    deadline = time.monotonic() + 600
    while left and time.monotonic() < deadline:
        for m in c.consume(num_messages=5000, timeout=0.5):
            err = m.error()
            if err is not None:
                if err.code() == ck.KafkaError._PARTITION_EOF:
                    if m.offset() >= ends[m.partition()]:
                        left.discard(m.partition())
                elif len(errors) < 10:
                    errors.append(f"{err.name()}: {err}")
                continue
            records += 1
            if in_log.inc(int(m.key())) > 0:
                dups += 1
            if m.offset() + 1 >= ends[m.partition()]:
                left.discard(m.partition())
    c.close()
    acked, in_log_a = ctx.all_acked.a, in_log.a
    n = max(len(acked), len(in_log_a))
    missing = unacked_in_log = 0
    missing_samples = []
    for i in range(n):
        ak = acked[i] if i < len(acked) else 0
        il = in_log_a[i] if i < len(in_log_a) else 0
        if ak and not il:
            missing += 1
            if len(missing_samples) < 10:
                missing_samples.append(i)
        elif il and not ak:
            unacked_in_log += 1
    return {"records": records, "duplicates": dups, "acked_missing": missing, "missing_samples": missing_samples,
            "in_log_not_acked": unacked_in_log, "unfinished_partitions": sorted(left), "errors": errors,
            "log_end_total": sum(ends.values())}


def dir_usage(data_dir, topic):
    """Per partition directory of `topic`: .log files and bytes on disk."""
    out = {}
    for name in sorted(os.listdir(data_dir)):
        m = re.fullmatch(re.escape(topic) + r"-(\d+)", name)
        if not m:
            continue
        d = os.path.join(data_dir, name)
        logs = [f for f in os.listdir(d) if f.endswith(".log")]
        size = sum(os.path.getsize(os.path.join(d, f)) for f in logs)
        out[int(m.group(1))] = {"segments": len(logs), "log_bytes": size}
    return out


def cmd_run(a):
    global CTX
    import confluent_kafka as ck
    import kafka
    os.makedirs(a.out, exist_ok=True)
    ctx = CTX = Ctx(a)
    create_topics(a)
    sampler = Sampler(ctx)
    threads = {}
    sampler_t = threading.Thread(target=sampler.run, name="sampler", daemon=True)
    sampler_t.start()
    consumers_done = threading.Event()
    slots = [Slot(ctx, i) for i in range(MEMBERS)]
    for s in slots:
        threads[f"member{s.idx}"] = start(s.run, name=f"member{s.idx}")
    threads["one-consumer"] = start(run_one_consumer, ctx, consumers_done, name="one-consumer")
    threads["rc-consumer"] = start(run_rc_consumer, ctx, consumers_done, name="rc-consumer")
    threads["ret-consumer"] = start(run_ret_consumer, ctx, consumers_done, name="ret-consumer")
    producers = {
        "all-producer": start(run_all_producer, ctx, name="all-producer"),
        "one-producer": start(run_one_producer, ctx, name="one-producer"),
        "txn-producer": start(run_txn_producer, ctx, name="txn-producer"),
        "ret-bytes-producer": start(run_ret_producer, ctx, RET_BYTES, a.rate_ret_bytes, name="ret-bytes-producer"),
        "ret-time-producer": start(run_ret_producer, ctx, RET_TIME, a.rate_ret_time, name="ret-time-producer"),
    }
    t_load = time.monotonic()
    end = t_load + a.duration
    # churn: every churn_s one member (in turn) leaves and rejoins rejoin_s later
    next_churn = t_load + a.churn_s
    k = 0
    while time.monotonic() < end and not ctx.abort.is_set():
        time.sleep(0.2)
        if time.monotonic() >= next_churn and end - time.monotonic() > a.rejoin_s + 10:
            slots[k % MEMBERS].leave.set()
            k += 1
            next_churn += a.churn_s
    load_seconds = time.monotonic() - t_load
    print(f"soak: load ran {load_seconds:.0f} s; stopping the producers, draining", flush=True)
    ctx.stop_load.set()
    sampler.phase = "drain"
    for name, t in producers.items():
        t.join(180)
        if t.is_alive():
            ctx.fail(f"{name} did not finish 180 s after the end")
    # Every member back in the group, then drain: every acknowledged key consumed.
    t_drain = time.monotonic()
    deadline = t_drain + a.drain_timeout
    while time.monotonic() < deadline and not ctx.abort.is_set() and not all(s.up.is_set() for s in slots):
        time.sleep(0.2)
    with ctx.txn_lock:
        committed_expected = ctx.txn_committed_records
    while time.monotonic() < deadline and not ctx.abort.is_set():
        if (ctx.all_seen_unique >= ctx.all.acked and ctx.one_seen_unique >= ctx.one.acked
                and len(ctx.rc_seen) >= committed_expected):
            break
        time.sleep(0.5)
    drain_seconds = time.monotonic() - t_drain
    # A last synchronous commit by every member before any of them leaves, then close.
    for s in slots:
        s.commit_req.set()
    t = time.monotonic() + 60
    while time.monotonic() < t and not all(s.committed.is_set() or not s.up.is_set() for s in slots):
        time.sleep(0.1)
    for s in slots:
        s.close_req.set()
    consumers_done.set()
    for name, th in threads.items():
        th.join(60)
        if th.is_alive():
            log(f"soak: {name} still running 60 s after the drain")
    sampler.phase = "verify"
    sampler.sample()
    result = {"duration_s": a.duration, "load_s": round(load_seconds, 1), "drain_s": round(drain_seconds, 1),
              "aborted": ctx.abort_reason,
              "clients": {"confluent_kafka": ck.__version__, "librdkafka": ck.libversion()[0],
                          "kafka_python": kafka.__version__},
              "rates": {"all": a.rate_all, "one": a.rate_one, "ret_bytes": a.rate_ret_bytes,
                        "ret_time": a.rate_ret_time, "txn_per_s": a.txn_per_s, "txn_size": a.txn_size,
                        "size": a.size, "txn_record_size": a.txn_record_size},
              "churn": {"every_s": a.churn_s, "rejoin_s": a.rejoin_s, "leaves": ctx.leaves,
                        "rebalances": ctx.rebalances, "joins": sum(s.joins for s in slots)},
              "commit_errors": dict(ctx.commit_errors.by_kind), "commit_error_samples": ctx.commit_errors.samples}
    streams = {}
    for s in (ctx.all, ctx.one, ctx.txn, ctx.ret):
        streams[s.name] = {"produced": s.produced, "acked": s.acked, "acked_bytes": s.acked_bytes,
                           "consumed": s.consumed, "consumed_bytes": s.consumed_bytes,
                           "errors": dict(s.errors.by_kind), "error_samples": s.errors.samples}
    result["streams"] = streams
    # acks=all: acknowledged but never consumed by the group
    acked, seen = ctx.all_acked.a, ctx.all_seen.a
    lost = [i for i in range(len(acked)) if acked[i] and not (seen[i] if i < len(seen) else 0)]
    result["all"] = {"lost": len(lost), "lost_samples": lost[:10], "consumed_unique": ctx.all_seen_unique,
                     "consumed_more_than_once": sum(1 for v in seen if v > 1)}
    acked, seen = ctx.one_acked.a, ctx.one_seen.a
    lost1 = [i for i in range(len(acked)) if acked[i] and not (seen[i] if i < len(seen) else 0)]
    result["one"] = {"lost": len(lost1), "lost_samples": lost1[:10], "consumed_unique": ctx.one_seen_unique}
    with ctx.txn_lock:
        committed, aborted, uncertain = dict(ctx.txn_committed), dict(ctx.txn_aborted), dict(ctx.txn_uncertain)
    seen_by_txn = {}
    for key in ctx.rc_seen:
        seen_by_txn[key // 100000] = seen_by_txn.get(key // 100000, 0) + 1
    result["txn"] = {
        "committed_txns": len(committed), "aborted_txns": len(aborted), "uncertain_txns": len(uncertain),
        "committed_records": sum(committed.values()), "aborted_records": sum(aborted.values()),
        "rc_committed_seen": sum(v for i, v in seen_by_txn.items() if i in committed),
        "rc_committed_missing": sum(n - seen_by_txn.get(i, 0) for i, n in committed.items()),
        "rc_aborted_seen": ctx.rc_aborted_seen + sum(v for i, v in seen_by_txn.items() if i in aborted),
        "rc_aborted_samples": ctx.rc_aborted_samples, "rc_duplicates": ctx.rc_seen_dups,
        "rc_seen_of_uncertain": sum(v for i, v in seen_by_txn.items() if i in uncertain),
    }
    result["ret"] = {"by_topic": {t: {"acked": v[0], "consumed": v[1]} for t, v in ctx.ret_by_topic.items()},
                     "max_partition_bytes": sampler.ret_max, "log_start_at_end": {t: {str(p): int(o) for p, o in v.items()}
                                                                                 for t, v in sampler.ret_log_start.items()},
                     "on_disk_at_end": {t: dir_usage(a.data_dir, t) for t in (RET_BYTES, RET_TIME)},
                     "size_bound": RET_SIZE_BOUND, "retention_bytes": RET_BYTES_LIMIT, "retention_ms": RET_MS,
                     "segment_bytes": SEGMENT_BYTES}
    if not ctx.abort.is_set():
        try:
            result["group_offsets"] = verify_group_offsets(a)
        except Exception as e:  # noqa: BLE001
            result["group_offsets_error"] = f"{type(e).__name__}: {e}"
        print("soak: scanning soak-all from the beginning", flush=True)
        t_scan = time.monotonic()
        try:
            result["scan"] = scan_all(a, ctx)
        except Exception as e:  # noqa: BLE001
            result["scan_error"] = f"{type(e).__name__}: {e}"
        result["scan_s"] = round(time.monotonic() - t_scan, 1)
    sampler.stopped.set()
    sampler_t.join(30)
    time.sleep(5)  # every client is gone: leases on segments are released by now
    sampler.phase = "idle"
    sampler.sample()  # the last row: nothing connected
    sampler.f.close()
    result["node_log_live"] = dict(sampler.nodelog.counts)
    with open(os.path.join(a.out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    print("soak: load done" + (f" (aborted: {ctx.abort_reason})" if ctx.abort_reason else ""), flush=True)
    return 0


# ---------------------------------------------------------------- summary

def fnum(x, d=1):
    return f"{x:,.{d}f}"


def cmd_summary(a):
    out = a.out
    checks = []  # (name, value, ok)
    try:
        with open(os.path.join(out, "result.json")) as f:
            r = json.load(f)
    except (OSError, ValueError) as e:
        r = None
        checks.append(("the load driver finished (result.json)", f"missing: {e}", False))
    rows = []
    try:
        with open(os.path.join(out, "samples.csv")) as f:
            rows = list(csv.DictReader(f))
    except OSError:
        pass
    nl = NodeLog(os.path.join(out, "node.log"))
    nl.scan()
    try:
        with open(os.path.join(out, "node.log"), errors="replace") as f:
            tail = f.read()
        if tail and not tail.endswith("\n"):  # a last line without newline
            k = classify(tail.rsplit("\n", 1)[-1])
            nl.counts[k] += 1
            if k != "info":
                nl.notable.append(tail.rsplit("\n", 1)[-1])
    except OSError:
        pass

    lines = []
    p = lines.append
    dur = r["duration_s"] if r else None
    p(f"## {time.strftime('%Y-%m-%d')} — soak, {dur} s of mixed load (issue #14 Build 9)")
    p("")
    if a.binary:
        p(f"Node: `{a.binary}`" + (f" ({a.binary_info})" if a.binary_info else "") + f", {a.shards} shards, "
          f"data in `{a.data_dir_shown}`. Command: `{a.command}`.")
    if r:
        c = r["clients"]
        p(f"Clients: confluent-kafka {c['confluent_kafka']} (librdkafka {c['librdkafka']}), kafka-python "
          f"{c['kafka_python']}. Load {r['load_s']} s, drain {r['drain_s']} s, scan of soak-all {r.get('scan_s', '-')} s.")
        if r.get("aborted"):
            p(f"**Run cut short: {r['aborted']}**")
    p("")
    if r:
        st = r["streams"]
        ld = max(r["load_s"], 1e-9)
        churn = r["churn"]
        txn = r["txn"]
        rt = r["ret"]
        p("| stream | produced (acknowledged) | MB acknowledged | MB/s | consumed | client errors |")
        p("| --- | ---: | ---: | ---: | ---: | ---: |")

        def errs(s):
            e = s["errors"]
            return ", ".join(f"{k} {v}" for k, v in sorted(e.items())) or "0"
        s = st["all"]
        p(f"| acks=all idempotent (confluent-kafka) → {ALL}, 6 partitions, {r['rates']['all']}/s × {r['rates']['size']} B; "
          f"group of {MEMBERS} with churn ({churn['leaves']} leaves, {churn['rebalances']} assignments) | "
          f"{s['produced']:,} ({s['acked']:,}) | {fnum(s['acked_bytes'] / 1e6)} | {fnum(s['acked_bytes'] / 1e6 / ld, 2)} | "
          f"{s['consumed']:,} ({r['all']['consumed_unique']:,} distinct) | {errs(s)} |")
        s = st["one"]
        p(f"| acks=1 (kafka-python) → {ONE}, 3 partitions, {r['rates']['one']}/s; one member, auto commit | "
          f"{s['produced']:,} ({s['acked']:,}) | {fnum(s['acked_bytes'] / 1e6)} | {fnum(s['acked_bytes'] / 1e6 / ld, 2)} | "
          f"{s['consumed']:,} ({r['one']['consumed_unique']:,} distinct) | {errs(s)} |")
        s = st["txn"]
        p(f"| transactions → {TXN}, 3 partitions, {r['rates']['txn_per_s']}/s × {r['rates']['txn_size']} records, "
          f"commit/abort alternately ({txn['committed_txns']:,} committed, {txn['aborted_txns']:,} aborted); "
          f"read_committed reader | {s['produced']:,} ({s['acked']:,}) | {fnum(s['acked_bytes'] / 1e6)} | "
          f"{fnum(s['acked_bytes'] / 1e6 / ld, 2)} | {s['consumed']:,} | {errs(s)} |")
        s = st["ret"]
        bt = rt["by_topic"]
        p(f"| retention (acks=1) → {RET_BYTES} (retention.bytes {RET_BYTES_LIMIT >> 20} MiB) "
          f"{r['rates']['ret_bytes']}/s and {RET_TIME} (retention.ms {RET_MS}) {r['rates']['ret_time']}/s, "
          f"2 partitions each, segment.bytes 1 MiB | {s['produced']:,} ({bt[RET_BYTES]['acked']:,} + {bt[RET_TIME]['acked']:,}) | "
          f"{fnum(s['acked_bytes'] / 1e6)} | {fnum(s['acked_bytes'] / 1e6 / ld, 2)} | {s['consumed']:,} | {errs(s)} |")
        p("")
    # node resources
    load_rows = [x for x in rows if x["phase"] == "load" and x.get("rss_kib")]
    if load_rows:
        t_end = float(load_rows[-1]["t_s"])
        t_first = float(load_rows[0]["t_s"])
        window = min(300.0, (t_end - t_first) / 3) if t_end > t_first else 0
        first = [x for x in load_rows if float(x["t_s"]) <= t_first + window]
        last = [x for x in load_rows if float(x["t_s"]) >= t_end - window]

        def stat(name, scale=1.0, d=1):
            v = [float(x[name]) / scale for x in load_rows]
            f1 = statistics.median(float(x[name]) / scale for x in first)
            l1 = statistics.median(float(x[name]) / scale for x in last)
            return (f"{fnum(min(v), d)} | {fnum(statistics.median(v), d)} | {fnum(max(v), d)} | {fnum(f1, d)} | "
                    f"{fnum(l1, d)} | {fnum(float(load_rows[-1][name]) / scale, d)}")
        wl = f"{window / 60:.1f} min" if window < 300 else "5 min"
        p(f"Node, sampled every {a.sample_s} s under load ({len(load_rows)} samples; first / last = median of the "
          f"first / last {wl} of the load):")
        p("")
        p("| | min | median | max | first | last | at the end of the load |")
        p("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        p(f"| RSS (MiB) | {stat('rss_kib', 1024)} |")
        p(f"| descriptors | {stat('fds', 1, 0)} |")
        p(f"| descriptors on deleted files | {stat('fds_deleted', 1, 0)} |")
        p(f"| MiB held by deleted files | {stat('deleted_bytes_held', 1048576)} |")
        p(f"| threads | {stat('threads', 1, 0)} |")
        if all(x.get("connections_open") for x in load_rows):
            p(f"| connections open | {stat('connections_open', 1, 0)} |")
        cpu0, cpu1 = float(load_rows[0]["node_cpu_s"]), float(load_rows[-1]["node_cpu_s"])
        p("")

        def med(rs, name, scale=1.0):
            return statistics.median(float(x[name]) / scale for x in rs)
        p(f"Trend, last vs first {wl} of the load (medians): RSS ×{med(last, 'rss_kib') / max(med(first, 'rss_kib'), 1):.2f}, "
          f"descriptors {med(last, 'fds') - med(first, 'fds'):+.0f}, on deleted files "
          f"{med(last, 'fds_deleted') - med(first, 'fds_deleted'):+.0f}, threads {med(last, 'threads') - med(first, 'threads'):+.0f}.")
        p(f"Node CPU {fnum(cpu1 - cpu0)} s over {fnum(t_end - t_first, 0)} s of load "
          f"({fnum((cpu1 - cpu0) / max(t_end - t_first, 1e-9) * 100, 0)} % of one core); executor kicks (watchdog) "
          f"{rows[-1].get('executor_kicks') or '-'}.")
        p("")
    # checks
    if r:
        scan = r.get("scan")
        checks.append(("acks=all keys acknowledged but never consumed by the group (lost)", r["all"]["lost"],
                       r["all"]["lost"] == 0))
        if scan:
            checks.append(("acks=all keys acknowledged but not in the log (full scan)", scan["acked_missing"],
                           scan["acked_missing"] == 0 and not scan["unfinished_partitions"]))
            checks.append(("acks=all records in the log twice (idempotence)", scan["duplicates"], scan["duplicates"] == 0))
            checks.append(("scan errors", len(scan["errors"]), not scan["errors"]))
        else:
            checks.append(("full scan of soak-all", r.get("scan_error", "not run"), False))
        go = r.get("group_offsets")
        if go:
            behind = [x for x in go if x["committed"] != x["log_end"]]
            checks.append((f"group {GROUP}: partitions whose committed offset is not the log end", len(behind)
                           if not behind else f"{len(behind)}: " + ", ".join(f"{x['partition']}: {x['committed']} of {x['log_end']}" for x in behind),
                           not behind))
        else:
            checks.append(("group committed offsets", r.get("group_offsets_error", "not read"), False))
        checks.append(("acks=1 keys acknowledged but never consumed (lost)", r["one"]["lost"], r["one"]["lost"] == 0))
        t = r["txn"]
        checks.append(("read_committed: records of aborted transactions seen", t["rc_aborted_seen"], t["rc_aborted_seen"] == 0))
        checks.append(("read_committed: records of committed transactions not seen", t["rc_committed_missing"],
                       t["rc_committed_missing"] == 0))
        checks.append(("read_committed: records seen twice", t["rc_duplicates"], t["rc_duplicates"] == 0))
        checks.append(("transactions: committed / aborted (both > 0)", f"{t['committed_txns']} / {t['aborted_txns']}",
                       t["committed_txns"] > 0 and t["aborted_txns"] > 0))
        failing = {"fatal", "delivery", "undelivered", "produce", "transaction", "consume", "close"}
        for name, s in r["streams"].items():
            bad = {k: v for k, v in s["errors"].items() if k in failing}
            other = {k: v for k, v in s["errors"].items() if k not in failing}
            checks.append((f"client errors, {name} (fatal, delivery, produce, transaction, consume)",
                           ", ".join(f"{k} {v}" for k, v in bad.items()) or 0, not bad))
            if other:
                checks.append((f"client error callbacks, {name} (not failing the run)",
                               ", ".join(f"{k} {v}" for k, v in other.items()), None))
        if r.get("commit_errors"):
            checks.append(("offset commit errors (not failing the run)",
                           ", ".join(f"{k} {v}" for k, v in r["commit_errors"].items()), None))
        rt = r["ret"]
        for topic in (RET_BYTES, RET_TIME):
            starts = rt["log_start_at_end"].get(topic, {})
            ok = len(starts) == TOPICS[topic][0] and all(v > 0 for v in starts.values())
            disk = rt["on_disk_at_end"].get(topic, {})
            checks.append((f"retention, {topic}: log start offsets at the end (segments deleted)",
                           ", ".join(f"p{k} {v:,}" for k, v in sorted(starts.items())) or "none", ok))
            mx = rt["max_partition_bytes"].get(topic, 0)
            checks.append((f"retention, {topic}: largest partition seen, MiB (bound {RET_SIZE_BOUND >> 20})",
                           f"{mx / 1048576:.1f}; on disk at the end: " + ", ".join(
                               f"p{k} {v['segments']} segments {v['log_bytes'] / 1048576:.1f} MiB" for k, v in sorted(disk.items())),
                           0 < mx <= RET_SIZE_BOUND))
    idle = [x for x in rows if x["phase"] == "idle" and x.get("fds")]
    if idle:
        x = idle[-1]
        checks.append(("descriptors on deleted files with no client connected (5 s after the last one left)",
                       f"{x['fds_deleted']} ({int(x['deleted_bytes_held']) / 1048576:.1f} MiB held); descriptors "
                       f"{x['fds']}, at the first sample {rows[0]['fds']}", x["fds_deleted"] == "0"))
    dead = [x for x in rows if x.get("node_alive") == "0"]
    checks.append(("node alive at every sample", "yes" if not dead else f"gone at {dead[0]['t_s']} s", not dead))
    checks.append(("node log: error lines / other unexpected lines", f"{nl.counts['error']} / {nl.counts['warn']}",
                   nl.counts["error"] == 0))
    checks.append(("node exit code after SIGTERM", f"{a.exit_code} (after {float(a.stop_s):.1f} s)" if a.stop_s else a.exit_code,
                   a.exit_code == 0))
    p("| check | value | |")
    p("| --- | --- | --- |")
    failed = 0
    for name, value, ok in checks:
        mark = "ok" if ok else ("FAIL" if ok is False else "note")
        failed += ok is False
        p(f"| {name} | {value} | {mark} |")
    p("")
    if nl.notable:
        p("Node log lines other than ready / groups loaded / cleaned (first 20):")
        p("")
        p("```")
        for line in nl.notable[:20]:
            p(line[:300])
        p("```")
        p("")
    if r:
        samples = []
        for name, s in r["streams"].items():
            samples += [f"{name}: {x}" for x in s["error_samples"][:3]]
        samples += [f"commit: {x}" for x in r.get("commit_error_samples", [])[:3]]
        if samples:
            p("Client error samples:")
            p("")
            p("```")
            for x in samples:
                p(x[:300])
            p("```")
            p("")
    p(f"Result: {'PASS' if not failed else f'FAIL ({failed} checks)'}. Samples: `{os.path.join(out, 'samples.csv')}`.")
    print("\n".join(lines))
    return 1 if failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--bootstrap", required=True)
    r.add_argument("--admin", required=True)
    r.add_argument("--node-pid", type=int, required=True)
    r.add_argument("--node-log", required=True)
    r.add_argument("--data-dir", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--duration", type=float, default=1800)
    r.add_argument("--sample-s", type=float, default=10)
    r.add_argument("--size", type=int, default=1024, help="value bytes of the all, one and ret streams")
    r.add_argument("--rate-all", type=float, default=800)
    r.add_argument("--rate-one", type=float, default=800)
    r.add_argument("--rate-ret-bytes", type=float, default=600)
    r.add_argument("--rate-ret-time", type=float, default=300)
    r.add_argument("--txn-per-s", type=float, default=4)
    r.add_argument("--txn-size", type=int, default=20)
    r.add_argument("--txn-record-size", type=int, default=512)
    r.add_argument("--churn-s", type=float, default=30)
    r.add_argument("--rejoin-s", type=float, default=5)
    r.add_argument("--drain-timeout", type=float, default=300)
    s = sub.add_parser("summary")
    s.add_argument("--out", required=True)
    s.add_argument("--exit-code", type=int, required=True)
    s.add_argument("--sample-s", type=float, default=10)
    s.add_argument("--stop-s", default="", help="seconds from SIGTERM to the node's exit")
    s.add_argument("--command", default="")
    s.add_argument("--binary", default="")
    s.add_argument("--binary-info", default="")
    s.add_argument("--shards", default="?")
    s.add_argument("--data-dir-shown", default="")
    a = p.parse_args()
    return cmd_run(a) if a.cmd == "run" else cmd_summary(a)


if __name__ == "__main__":
    sys.exit(main())
