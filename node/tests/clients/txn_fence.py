"""A zombie transactional producer is fenced, for node/tests/e2e_txn.rs.

--client ck (confluent-kafka / librdkafka) or kp (kafka-python); --topic must have 2
partitions. Two producers A and B with the same --txn-id, in this order:

  A  init_transactions, begin_transaction, produce --count records "a-early-{j}" to
     partition 0, flush (they are in the log, in A's open transaction)
  B  init_transactions: bumps the epoch, which must abort A's open transaction
  A  (the zombie) goes on: produce --count records "a-late-{j}" to partitions 0 and 1 (1 is
     new to the transaction: AddPartitionsToTxn), flush, commit_transaction; if the commit
     fails with an error that is not fatal, abort_transaction as well (an application would)
  B  begin_transaction, produce --count records "b-{j}" to partitions 0 and 1, commit

Every error A sees is kept: {"stage": produce | flush | delivery | commit | abort | error_cb,
"name", "code", "fatal", "retriable", "abortable", "msg"} (kafka-python: the exception's class
name; "fatal" is its transaction manager's fatal-error state at the time).

Output (one JSON object): {"client", "a_early": [[p, o], ...], "a_late_delivered": [[p, o], ...]
(late records the node acknowledged, kafka-python only: must be none), "a_commit_ok", "a_errors": [...],
"b_init_ms", "b_offsets": [[p, o], ...], "b_commit_ok", "b_error"}.
"""

import argparse
import sys
import time

from grp_common import emit_result, log


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--client", choices=["ck", "kp"], required=True)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--txn-id", required=True)
    p.add_argument("--count", type=int, default=4)
    return p.parse_args()


def run_ck(a):
    import confluent_kafka as ck

    out = {"a_errors": [], "a_late_delivered": [], "a_commit_ok": False, "b_commit_ok": False,
           "b_error": None}

    def err_obj(stage, err):
        return {"stage": stage, "name": err.name(), "code": err.code(), "fatal": err.fatal(),
                "retriable": err.retriable(), "abortable": err.txn_requires_abort(), "msg": err.str()}

    def a_error_cb(err):
        log("A error_cb:", err)
        out["a_errors"].append(err_obj("error_cb", err))

    def producer(name, error_cb):
        return ck.Producer({
            "bootstrap.servers": a.bootstrap,
            "client.id": name,
            "transactional.id": a.txn_id,
            "linger.ms": 5,
            "message.timeout.ms": 10000,
            "error_cb": error_cb,
        })

    pa = producer("zombie-a", a_error_cb)
    pa.init_transactions(30)
    pa.begin_transaction()
    early = []

    def early_cb(err, msg):
        if err is not None:
            raise RuntimeError(f"A's first records failed: {err}")
        early.append([msg.partition(), msg.offset()])

    for j in range(a.count):
        pa.produce(a.topic, key=f"a-{j}".encode(), value=f"a-early-{j}".encode(), partition=0,
                   on_delivery=early_cb)
    if pa.flush(30):
        raise RuntimeError("A's first records were not delivered")
    out["a_early"] = sorted(early)

    pb = producer("fencer-b", lambda err: log("B error_cb:", err))
    t = time.monotonic()
    pb.init_transactions(30)
    out["b_init_ms"] = round((time.monotonic() - t) * 1000, 1)

    # No delivery callback here: confluent-kafka 2.16 cannot raise the fatal error that a
    # failed delivery triggers from flush() while it runs a delivery callback (it leaves a
    # non-exception KafkaError pending and the interpreter dies). Without one, flush() raises
    # it as a KafkaException; whether a late record was stored anyway is for the test's
    # read_uncommitted reader to tell.
    for j in range(a.count):
        try:
            pa.produce(a.topic, key=f"a-{j}".encode(), value=f"a-late-{j}".encode(), partition=j % 2)
            pa.poll(0)
        except ck.KafkaException as e:
            out["a_errors"].append(err_obj("produce", e.args[0]))
    try:
        pa.flush(15)
    except ck.KafkaException as e:
        out["a_errors"].append(err_obj("flush", e.args[0]))
    try:
        pa.commit_transaction(15)
        out["a_commit_ok"] = True
    except ck.KafkaException as e:
        err = e.args[0]
        out["a_errors"].append(err_obj("commit", err))
        if not err.fatal():
            try:
                pa.abort_transaction(15)
            except ck.KafkaException as e2:
                out["a_errors"].append(err_obj("abort", e2.args[0]))

    pb.begin_transaction()
    b_offs, b_fail = [], []

    def b_cb(err, msg):
        if err is not None:
            b_fail.append(f"{err.name()}: {err}")
        else:
            b_offs.append([msg.partition(), msg.offset()])

    for j in range(a.count):
        pb.produce(a.topic, key=f"b-{j}".encode(), value=f"b-{j}".encode(), partition=j % 2, on_delivery=b_cb)
    pb.flush(30)
    try:
        if b_fail:
            raise RuntimeError(f"B's records failed: {b_fail}")
        pb.commit_transaction(30)
        out["b_commit_ok"] = True
    except (ck.KafkaException, RuntimeError) as e:
        out["b_error"] = str(e)
    out["b_offsets"] = sorted(b_offs)
    out["client"] = "confluent-kafka " + ck.__version__ + " / librdkafka " + ck.libversion()[0]
    return out


def run_kp(a):
    import kafka
    from kafka import KafkaProducer

    out = {"a_errors": [], "a_late_delivered": [], "a_commit_ok": False, "b_commit_ok": False,
           "b_error": None}

    def producer(name):
        return KafkaProducer(bootstrap_servers=[a.bootstrap], client_id=name, transactional_id=a.txn_id,
                             linger_ms=5, delivery_timeout_ms=10000, request_timeout_ms=5000)

    def fatal(p):
        try:
            return bool(p._transaction_manager.has_fatal_error())  # noqa: SLF001 - diagnostics only
        except Exception:  # noqa: BLE001
            return None

    def err_obj(stage, p, e):
        return {"stage": stage, "name": type(e).__name__, "code": getattr(e, "errno", None),
                "fatal": fatal(p), "retriable": bool(getattr(e, "retriable", False)),
                "abortable": None, "msg": str(e)}

    pa = producer("zombie-a")
    pa.init_transactions()
    pa.begin_transaction()
    futs = [pa.send(a.topic, key=f"a-{j}".encode(), value=f"a-early-{j}".encode(), partition=0)
            for j in range(a.count)]
    pa.flush(timeout=30)
    out["a_early"] = sorted([f.get(timeout=30).partition, f.get(timeout=30).offset] for f in futs)

    pb = producer("fencer-b")
    t = time.monotonic()
    pb.init_transactions()
    out["b_init_ms"] = round((time.monotonic() - t) * 1000, 1)

    late = []
    for j in range(a.count):
        try:
            late.append(pa.send(a.topic, key=f"a-{j}".encode(), value=f"a-late-{j}".encode(), partition=j % 2))
        except Exception as e:  # noqa: BLE001 - every error is the test's business
            out["a_errors"].append(err_obj("produce", pa, e))
    try:
        pa.flush(timeout=15)
    except Exception as e:  # noqa: BLE001
        out["a_errors"].append(err_obj("flush", pa, e))
    for f in late:
        try:
            md = f.get(timeout=15)
            out["a_late_delivered"].append([md.partition, md.offset])
        except Exception as e:  # noqa: BLE001
            out["a_errors"].append(err_obj("delivery", pa, e))
    try:
        pa.commit_transaction()
        out["a_commit_ok"] = True
    except Exception as e:  # noqa: BLE001
        out["a_errors"].append(err_obj("commit", pa, e))
        if not fatal(pa):
            try:
                pa.abort_transaction()
            except Exception as e2:  # noqa: BLE001
                out["a_errors"].append(err_obj("abort", pa, e2))

    pb.begin_transaction()
    bf = [pb.send(a.topic, key=f"b-{j}".encode(), value=f"b-{j}".encode(), partition=j % 2)
          for j in range(a.count)]
    try:
        pb.flush(timeout=30)
        offs = []
        for f in bf:
            md = f.get(timeout=30)
            offs.append([md.partition, md.offset])
        out["b_offsets"] = sorted(offs)
        pb.commit_transaction()
        out["b_commit_ok"] = True
    except Exception as e:  # noqa: BLE001
        out["b_error"] = f"{type(e).__name__}: {e}"
        out.setdefault("b_offsets", [])
    for p in (pa, pb):
        try:
            p.close(timeout=5)
        except Exception as e:  # noqa: BLE001
            log("close:", e)
    out["client"] = "kafka-python " + kafka.__version__
    return out


def main():
    a = parse_args()
    emit_result((run_ck if a.client == "ck" else run_kp)(a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
