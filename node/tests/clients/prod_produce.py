"""Produce COUNT messages with confluent-kafka or kafka-python, with a compression codec and/or
the idempotent producer, optionally rate-limited, printing progress lines while it runs
(for node/tests/e2e_producer.rs).

The message pattern is common.message()/common.headers() (key f"key-{i % keys}", value
f"val-{i}" padded with '.' to --value-size): message i carries its sequence number i.

Output, one JSON object per line on stdout:
  while running (with --progress S, every S seconds):
    {"progress": true, "produced": N, "acked": N, "errors": N, "t": seconds since start}
  at the end (the last line):
    {"client", "codec", "idempotence", "topic", "sent", "acked", "errors", "error_samples",
     "client_errors": [[code name, text], ...] (error_cb / kafka-python exceptions, first 50),
     "fatal": text or null, "stats": {librdkafka's statistics "eos" fields "idemp_state",
     "producer_id", "producer_epoch", "epoch_cnt", last seen; {} for kafka-python}, "partitions": {"P": {"count", "first", "last", "in_order"}},
     "acks": [[i, p, o, ack wall-clock ms], ...] (with --report-acks), "elapsed_s"}
Exit 0 even when messages failed (the test decides); 2 when the client cannot use the codec
(the missing pip package is named in the JSON "error" field and on stderr).
"""

import argparse
import json
import sys
import threading
import time

from common import AckTally, Deadline, headers, log, message

_LOCK = threading.Lock()

# kafka-python compresses and decompresses with optional pip packages.
KP_CODEC_PACKAGES = {"snappy": "python-snappy", "lz4": "lz4", "zstd": "zstandard"}


def out(obj):
    line = json.dumps(obj, separators=(",", ":"))
    with _LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def kp_codec_missing(codec):
    """The pip package kafka-python lacks for `codec`, or None when it can use it."""
    from kafka import codec as kc
    have = {"none": True, "gzip": kc.has_gzip(), "snappy": kc.has_snappy(), "lz4": kc.has_lz4(),
            "zstd": kc.has_zstd()}[codec]
    return None if have else KP_CODEC_PACKAGES.get(codec, codec)


def parse():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--client", choices=["ck", "kp"], required=True)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--codec", default="none", choices=["none", "gzip", "snappy", "lz4", "zstd"])
    p.add_argument("--idempotence", action="store_true")
    p.add_argument("--keys", type=int, default=1000)
    p.add_argument("--key-prefix", default="key-")
    p.add_argument("--value-size", type=int, default=0)
    p.add_argument("--headers", action="store_true")
    p.add_argument("--rate", type=float, default=0.0, help="messages per second (0: as fast as it can)")
    p.add_argument("--progress", type=float, default=0.0, help="seconds between progress lines (0: none)")
    p.add_argument("--report-acks", action="store_true")
    p.add_argument("--timeout", type=float, default=120.0, help="message timeout and flush limit (s)")
    a = p.parse_args()
    a.null_key_every = 0
    a.null_value_every = 0
    return a


class Run:
    def __init__(self, args):
        self.args = args
        self.tally = AckTally(args.report_acks)
        self.produced = 0
        self.client_errors = []
        self.fatal = None
        self.stats = {}
        self.t0 = time.monotonic()
        self.done = threading.Event()

    def ack(self, i, part, off):
        """An acknowledgement; with --report-acks kept as [i, p, o, wall-clock ms]."""
        self.tally.ok(i, part, off)
        if self.args.report_acks:
            self.tally.acks[-1].append(int(time.time() * 1000))

    def client_error(self, code, text):
        log(f"prod_produce client error: {code}: {text}")
        if len(self.client_errors) < 50:
            self.client_errors.append([code, text])

    def progress_loop(self):
        while not self.done.wait(self.args.progress):
            out({"progress": True, "produced": self.produced, "acked": self.tally.acked,
                 "errors": self.tally.errors, "t": round(time.monotonic() - self.t0, 3)})

    def pace(self):
        """Sleeps while more than `rate * elapsed` messages have been produced."""
        if self.args.rate > 0:
            ahead = self.produced - self.args.rate * (time.monotonic() - self.t0)
            if ahead > 0:
                time.sleep(ahead / self.args.rate)

    def kwargs(self, i):
        key, value = message(i, self.args)
        kw = {"key": key, "value": value}
        if self.args.headers:
            kw["headers"] = headers(i, self.args.client)
        return kw


def run_ck(r):
    import confluent_kafka as ck
    args = r.args

    def on_error(err):
        if err.fatal():
            r.fatal = f"{err.name()}: {err.str()}"
        r.client_error(err.name(), err.str())

    def on_stats(text):
        st = json.loads(text)
        eos = st.get("eos") or {}
        for k in ("idemp_state", "producer_id", "producer_epoch", "epoch_cnt"):
            if k in eos:
                r.stats[k] = eos[k]

    conf = {
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": args.codec,
        "enable.idempotence": bool(args.idempotence),
        "message.timeout.ms": int(args.timeout * 1000),
        "retries": 2147483647,
        "retry.backoff.ms": 100,
        "retry.backoff.max.ms": 1000,
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 1000,
        "queue.buffering.max.messages": 200000,
        "error_cb": on_error,
        "statistics.interval.ms": 500,
        "stats_cb": on_stats,
    }
    p = ck.Producer(conf)

    def on_delivery(i):
        def cb(err, msg):
            if err is not None:
                r.tally.error(f"message {i}: {err}")
            else:
                r.ack(i, msg.partition(), msg.offset())
        return cb

    for i in range(args.start, args.start + args.count):
        r.pace()
        kw = r.kwargs(i)
        kw["on_delivery"] = on_delivery(i)
        while True:
            try:
                p.produce(args.topic, **kw)
                break
            except BufferError:
                p.poll(0.05)
        r.produced += 1
        p.poll(0)
    deadline = Deadline(args.timeout)
    while len(p) > 0 and not deadline.passed():
        p.flush(min(0.5, max(0.0, deadline.left())))
    left = len(p)
    if left:
        r.tally.errors += left
        r.tally.samples.append(f"{left} messages still unacknowledged after {args.timeout}s")
    return "confluent-kafka " + ck.__version__ + " / librdkafka " + ck.libversion()[0]


def run_kp(r):
    import kafka
    from kafka import KafkaProducer
    args = r.args
    kw = dict(
        bootstrap_servers=[args.bootstrap],
        acks="all",
        linger_ms=5,
        enable_idempotence=bool(args.idempotence),
        compression_type=None if args.codec == "none" else args.codec,
        delivery_timeout_ms=int(args.timeout * 1000),
        request_timeout_ms=30000,
        max_block_ms=int(args.timeout * 1000),
        retry_backoff_ms=100,
        reconnect_backoff_ms=100,
        reconnect_backoff_max_ms=1000,
        client_id="sluice-e2e-prod-produce",
    )
    p = KafkaProducer(**kw)

    def ok(i):
        return lambda md: r.ack(i, md.partition, md.offset)

    def fail(i):
        def cb(exc):
            r.tally.error(f"message {i}: {exc!r}")
            r.client_error(type(exc).__name__, repr(exc))
        return cb

    for i in range(args.start, args.start + args.count):
        r.pace()
        try:
            fut = p.send(args.topic, **r.kwargs(i))
        except Exception as e:  # noqa: BLE001 - report, do not hide
            r.tally.error(f"send {i}: {e!r}")
            r.client_error(type(e).__name__, repr(e))
            r.produced += 1
            continue
        r.produced += 1
        fut.add_callback(ok(i))
        fut.add_errback(fail(i))
    deadline = Deadline(args.timeout)
    try:
        p.flush(timeout=max(1.0, deadline.left()))
    except Exception as e:  # noqa: BLE001
        r.tally.samples.append(f"flush: {e!r}")
        r.client_error(type(e).__name__, f"flush: {e!r}")
    missing = args.count - r.tally.acked - r.tally.errors
    if missing > 0:
        r.tally.errors += missing
        r.tally.samples.append(f"{missing} messages neither acked nor failed after {args.timeout}s")
    try:
        p.close(timeout=5)
    except Exception as e:  # noqa: BLE001
        log("prod_produce close:", repr(e))
    return "kafka-python " + kafka.__version__


def main():
    args = parse()
    if args.client == "kp":
        missing = kp_codec_missing(args.codec)
        if missing:
            msg = (f"kafka-python cannot compress {args.codec}: pip package '{missing}' is not "
                   f"installed in the test venv")
            log(msg)
            out({"error": msg, "missing_package": missing})
            sys.exit(2)
    r = Run(args)
    ticker = None
    if args.progress > 0:
        ticker = threading.Thread(target=r.progress_loop, daemon=True)
        ticker.start()
    client = run_ck(r) if args.client == "ck" else run_kp(r)
    r.done.set()
    if ticker is not None:
        ticker.join()
    t = r.tally
    t.acks.sort()
    out({
        "client": client,
        "codec": args.codec,
        "idempotence": bool(args.idempotence),
        "topic": args.topic,
        "sent": args.count,
        "acked": t.acked,
        "errors": t.errors,
        "error_samples": t.samples,
        "client_errors": r.client_errors,
        "fatal": r.fatal,
        "stats": r.stats,
        "partitions": t.parts,
        "acks": t.acks,
        "elapsed_s": round(time.monotonic() - r.t0, 3),
    })


if __name__ == "__main__":
    main()
