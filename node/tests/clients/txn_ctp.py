"""A transactional consume-transform-produce loop for node/tests/e2e_txn.rs.

--client ck (confluent-kafka / librdkafka) or kp (kafka-python). One consumer in --group
(subscribe, enable.auto.commit off, isolation.level read_committed) reads --input; one
producer with --txn-id turns each batch of up to --batch records into one transaction:

  begin_transaction
  produce to --output, per input record (partition P, offset O, value "val-{i}"):
      key = the input key, value = "out-{i}-t{n}" (n: the transaction's number, from 1),
      header src = "P:O"
  flush (every record delivered, so even an aborted transaction's records are in the log)
  send_offsets_to_transaction(the positions after the batch, the consumer's group metadata)
  commit_transaction — or, every --abort-every-th transaction, abort_transaction, then read
      the group's committed offsets back (consumer.committed) and seek there (the beginning
      where nothing is committed), so the aborted batch is processed again

until the committed transactions hold --expect input records. The positions sent are tracked
from the records processed (offset + 1 of the last one per partition, reset to the committed
offsets after an abort), which is what consumer.position() gives in this loop, without
depending on whether a client's position() follows a seek.

Output: one JSON line per transaction
  {"ev": "txn", "n", "action": "commit" | "abort",
   "in": [[p, o, i], ...], "out": [[p, o, i], ...] (output partition and offset from the
   delivery reports), "sent": [[p, offset], ...] (offsets sent to the transaction),
   "committed_after": [[p, offset], ...] (abort only: consumer.committed() afterwards; -1 none)}
and at the end the summary
  {"client", "group", "txn_id", "txns": [the txn objects above], "committed_records",
   "aborted_records", "elapsed_s"}.
Any client error fails the script (exit 1, the exception on stderr).
"""

import argparse
import sys
import time

from grp_common import emit, emit_result, index_of, log


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--client", choices=["ck", "kp"], required=True)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--txn-id", required=True)
    p.add_argument("--expect", type=int, required=True, help="input records to commit in all")
    p.add_argument("--batch", type=int, default=50, help="input records per transaction at most")
    p.add_argument("--abort-every", type=int, default=3, help="abort every k-th transaction (0: never)")
    p.add_argument("--txn-timeout-ms", type=int, default=60000)
    p.add_argument("--timeout", type=float, default=50.0, help="give up after this many seconds")
    return p.parse_args()


class Loop:
    """The bookkeeping both clients share."""

    def __init__(self, a):
        self.a = a
        self.t0 = time.monotonic()
        self.end = self.t0 + a.timeout
        self.txns = []
        self.committed_records = 0
        self.aborted_records = 0
        # input partition -> next offset to process (offset + 1 of the last processed record)
        self.pos = {}

    def left(self):
        return self.end - time.monotonic()

    def check_time(self):
        if time.monotonic() >= self.end:
            raise SystemExit(
                f"timed out after {self.a.timeout}s: {self.committed_records} of {self.a.expect} input "
                f"records committed in {len(self.txns)} transactions")

    def done(self):
        return self.committed_records >= self.a.expect

    def number(self):
        return len(self.txns) + 1

    def aborts(self, n):
        return self.a.abort_every > 0 and n % self.a.abort_every == 0

    def value(self, i, n):
        return f"out-{i}-t{n}".encode()

    def finish(self, n, action, ins, outs, sent, committed_after=None):
        txn = {"n": n, "action": action, "in": ins, "out": sorted(outs), "sent": sent}
        if committed_after is not None:
            txn["committed_after"] = committed_after
        self.txns.append(txn)
        if action == "commit":
            self.committed_records += len(ins)
        else:
            self.aborted_records += len(ins)
        emit("txn", **txn)


def run_ck(a, loop):
    import confluent_kafka as ck

    def on_error(err):
        log("txn_ctp error_cb:", err, "fatal" if err.fatal() else "")

    c = ck.Consumer({
        "bootstrap.servers": a.bootstrap,
        "group.id": a.group,
        "client.id": "txn-ctp-consumer",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "error_cb": on_error,
    })
    p = ck.Producer({
        "bootstrap.servers": a.bootstrap,
        "client.id": "txn-ctp-producer",
        "transactional.id": a.txn_id,
        "transaction.timeout.ms": a.txn_timeout_ms,
        "linger.ms": 5,
        "error_cb": on_error,
    })
    p.init_transactions(30)
    c.subscribe([a.input])

    while not loop.done():
        loop.check_time()
        batch = []
        while len(batch) < a.batch:
            loop.check_time()
            msgs = c.consume(num_messages=a.batch - len(batch), timeout=0.3)
            for m in msgs:
                if m.error() is not None:
                    raise RuntimeError(f"consume error: {m.error().name()}: {m.error()}")
                batch.append(m)
            if not msgs and (batch or loop.done()):
                break
        if not batch:
            continue
        n = loop.number()
        outs, failed = [], []

        def delivered(i):
            def cb(err, msg):
                if err is not None:
                    failed.append(f"out-{i}-t{n}: {err.name()}: {err}")
                else:
                    outs.append([msg.partition(), msg.offset(), i])
            return cb

        p.begin_transaction()
        ins = []
        for m in batch:
            i = index_of(m.value())
            ins.append([m.partition(), m.offset(), i])
            while True:
                try:
                    p.produce(a.output, key=m.key(), value=loop.value(i, n),
                              headers=[("src", f"{m.partition()}:{m.offset()}".encode())],
                              on_delivery=delivered(i))
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
            loop.pos[m.partition()] = m.offset() + 1
        left = p.flush(max(1.0, loop.left()))
        if left or failed:
            raise RuntimeError(f"transaction {n}: {left} records undelivered, failed: {failed[:5]}")
        sent = sorted([part, off] for part, off in loop.pos.items())
        p.send_offsets_to_transaction([ck.TopicPartition(a.input, part, off) for part, off in sent],
                                      c.consumer_group_metadata(), 30)
        if loop.aborts(n):
            p.abort_transaction(30)
            assignment = c.assignment()
            committed = c.committed(assignment, timeout=30)
            after = []
            for tp in committed:
                if tp.error is not None:
                    raise RuntimeError(f"committed({tp.topic}-{tp.partition}): {tp.error}")
                off = tp.offset if tp.offset >= 0 else -1
                after.append([tp.partition, off])
                c.seek(ck.TopicPartition(a.input, tp.partition, off if off >= 0 else ck.OFFSET_BEGINNING))
                if off >= 0:
                    loop.pos[tp.partition] = off
                else:
                    loop.pos.pop(tp.partition, None)
            loop.finish(n, "abort", ins, outs, sent, sorted(after))
        else:
            p.commit_transaction(30)
            loop.finish(n, "commit", ins, outs, sent)
    c.close()
    p.flush(5)
    return "confluent-kafka " + ck.__version__ + " / librdkafka " + ck.libversion()[0]


def run_kp(a, loop):
    import kafka
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    c = KafkaConsumer(
        bootstrap_servers=[a.bootstrap],
        group_id=a.group,
        client_id="txn-ctp-consumer",
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
        max_poll_records=a.batch,
    )
    p = KafkaProducer(
        bootstrap_servers=[a.bootstrap],
        client_id="txn-ctp-producer",
        transactional_id=a.txn_id,
        transaction_timeout_ms=a.txn_timeout_ms,
        linger_ms=5,
    )
    p.init_transactions()
    c.subscribe([a.input])

    while not loop.done():
        loop.check_time()
        batch = []
        while len(batch) < a.batch:
            loop.check_time()
            got = c.poll(timeout_ms=300, max_records=a.batch - len(batch))
            recs = [r for rs in got.values() for r in rs]
            batch.extend(recs)
            if not recs and (batch or loop.done()):
                break
        if not batch:
            continue
        n = loop.number()
        p.begin_transaction()
        ins, futs = [], []
        for m in batch:
            i = index_of(m.value)
            ins.append([m.partition, m.offset, i])
            futs.append((i, p.send(a.output, key=m.key, value=loop.value(i, n),
                                   headers=[("src", f"{m.partition}:{m.offset}".encode())])))
            loop.pos[m.partition] = m.offset + 1
        p.flush(timeout=max(1.0, loop.left()))
        outs = []
        for i, f in futs:
            md = f.get(timeout=max(1.0, loop.left()))
            outs.append([md.partition, md.offset, i])
        sent = sorted([part, off] for part, off in loop.pos.items())
        p.send_offsets_to_transaction(
            {TopicPartition(a.input, part): OffsetAndMetadata(off, "", -1) for part, off in sent},
            c.group_metadata())
        if loop.aborts(n):
            p.abort_transaction()
            after = []
            for tp in sorted(c.assignment()):
                off = c.committed(tp, timeout_ms=30000)
                off = -1 if off is None or off < 0 else off
                after.append([tp.partition, off])
                if off >= 0:
                    c.seek(tp, off)
                    loop.pos[tp.partition] = off
                else:
                    c.seek_to_beginning(tp)
                    loop.pos.pop(tp.partition, None)
            loop.finish(n, "abort", ins, outs, sent, after)
        else:
            p.commit_transaction()
            loop.finish(n, "commit", ins, outs, sent)
    c.close(autocommit=False)
    p.close(timeout=5)
    return "kafka-python " + kafka.__version__


def main():
    a = parse_args()
    loop = Loop(a)
    client = (run_ck if a.client == "ck" else run_kp)(a, loop)
    emit_result({
        "client": client,
        "group": a.group,
        "txn_id": a.txn_id,
        "txns": loop.txns,
        "committed_records": loop.committed_records,
        "aborted_records": loop.aborted_records,
        "elapsed_s": round(time.monotonic() - loop.t0, 3),
    })


if __name__ == "__main__":
    sys.exit(main())
