"""One transaction of one transactional producer, for node/tests/e2e_txn.rs.

--client ck (confluent-kafka / librdkafka) or kp (kafka-python). init_transactions with
--txn-id (and transaction.timeout.ms --txn-timeout-ms), begin_transaction, produce --count
records "{prefix}-{j}" (key "k-{j}") to --topic (--partition, default: by key), flush, then
--end:
  commit   commit_transaction
  abort    abort_transaction
  hang     nothing more: sleep until SIGKILLed (or --hang-secs pass, then exit without
           ending the transaction; the test means to kill it first)

JSON lines as it goes (flushed at once, so a test watching it in the background can act):
  {"ev": "init", "t", "ms"}                       init_transactions returned after ms
  {"ev": "began", "t"}                            right before the first produce
  {"ev": "flushed", "t", "offsets": [[p, o], ...]} every record delivered (in the log)
  {"ev": "ended", "t", "action", "ms"}            commit/abort returned
and for commit/abort the summary last: {"client", "txn_id", "action", "offsets", "init_ms"}.
Any client error fails the script (exit 1).
"""

import argparse
import sys
import time

from grp_common import emit, emit_result, log


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--client", choices=["ck", "kp"], default="ck")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--txn-id", required=True)
    p.add_argument("--count", type=int, default=5)
    p.add_argument("--prefix", default="txn")
    p.add_argument("--partition", type=int, default=None)
    p.add_argument("--end", choices=["commit", "abort", "hang"], required=True)
    p.add_argument("--txn-timeout-ms", type=int, default=60000)
    p.add_argument("--hang-secs", type=float, default=120.0)
    return p.parse_args()


def record(a, j):
    return f"k-{j}".encode(), f"{a.prefix}-{j}".encode()


def run_ck(a):
    import confluent_kafka as ck

    p = ck.Producer({
        "bootstrap.servers": a.bootstrap,
        "transactional.id": a.txn_id,
        "transaction.timeout.ms": a.txn_timeout_ms,
        "linger.ms": 5,
        "error_cb": lambda err: log("txn_produce error_cb:", err, "fatal" if err.fatal() else ""),
    })
    t = time.monotonic()
    p.init_transactions(30)
    init_ms = round((time.monotonic() - t) * 1000, 1)
    emit("init", ms=init_ms)
    p.begin_transaction()
    emit("began")
    offsets, failed = [], []

    def cb(err, msg):
        if err is not None:
            failed.append(f"{err.name()}: {err}")
        else:
            offsets.append([msg.partition(), msg.offset()])

    for j in range(a.count):
        k, v = record(a, j)
        kw = {"key": k, "value": v, "on_delivery": cb}
        if a.partition is not None:
            kw["partition"] = a.partition
        p.produce(a.topic, **kw)
        p.poll(0)
    left = p.flush(30)
    if left or failed:
        raise RuntimeError(f"{left} records undelivered, failed: {failed[:5]}")
    emit("flushed", offsets=sorted(offsets))
    if a.end == "hang":
        time.sleep(a.hang_secs)
        return None, offsets, init_ms
    t = time.monotonic()
    if a.end == "commit":
        p.commit_transaction(30)
    else:
        p.abort_transaction(30)
    emit("ended", action=a.end, ms=round((time.monotonic() - t) * 1000, 1))
    return "confluent-kafka " + ck.__version__ + " / librdkafka " + ck.libversion()[0], offsets, init_ms


def run_kp(a):
    import kafka
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=[a.bootstrap], transactional_id=a.txn_id,
                      transaction_timeout_ms=a.txn_timeout_ms, linger_ms=5)
    t = time.monotonic()
    p.init_transactions()
    init_ms = round((time.monotonic() - t) * 1000, 1)
    emit("init", ms=init_ms)
    p.begin_transaction()
    emit("began")
    futs = []
    for j in range(a.count):
        k, v = record(a, j)
        futs.append(p.send(a.topic, key=k, value=v, partition=a.partition))
    p.flush(timeout=30)
    offsets = []
    for f in futs:
        md = f.get(timeout=30)
        offsets.append([md.partition, md.offset])
    emit("flushed", offsets=sorted(offsets))
    if a.end == "hang":
        time.sleep(a.hang_secs)
        return None, offsets, init_ms
    t = time.monotonic()
    if a.end == "commit":
        p.commit_transaction()
    else:
        p.abort_transaction()
    emit("ended", action=a.end, ms=round((time.monotonic() - t) * 1000, 1))
    p.close(timeout=5)
    return "kafka-python " + kafka.__version__, offsets, init_ms


def main():
    a = parse_args()
    client, offsets, init_ms = (run_ck if a.client == "ck" else run_kp)(a)
    if client is None:
        return 0
    emit_result({"client": client, "txn_id": a.txn_id, "action": a.end, "offsets": sorted(offsets),
                 "init_ms": init_ms})
    return 0


if __name__ == "__main__":
    sys.exit(main())
