"""Shared by the client scripts of node/tests/e2e_clients.rs.

Every script is argument-driven and prints exactly one JSON object on stdout (diagnostics go
to stderr). The message pattern is deterministic, so a consumer's output can be checked
against the producer's arguments alone:

    message i:  key   = f"{key_prefix}{i % keys}"   (null when i % null_key_every == null_key_every - 1)
                value = f"val-{i}" padded with '.' to value_size
                        (null when i % null_value_every == null_value_every - 1, unless the key is null)
                headers (with --headers) = HEADERS(i, client)
                timestamp (with --ts-base T) = T + i * ts_step  (CreateTime, set by the producer)
"""

import argparse
import json
import sys
import time
import zlib


def message(i, args):
    """(key, value) of message i as bytes (or None)."""
    key = None
    if not (args.null_key_every > 0 and i % args.null_key_every == args.null_key_every - 1):
        key = f"{args.key_prefix}{i % args.keys}".encode()
    value = None
    # Never both null: kafka-python refuses a record with neither key nor value.
    if key is None or not (args.null_value_every > 0 and i % args.null_value_every == args.null_value_every - 1):
        v = f"val-{i}"
        if len(v) < args.value_size:
            v = v + "." * (args.value_size - len(v))
        value = v.encode()
    return key, value


def headers(i, client):
    """Headers of message i: a duplicate key, an empty value and (but for kafka-python, whose
    send() accepts only (str, bytes) headers) a null value."""
    h = [
        ("idx", str(i).encode()),
        ("client", client.encode()),
        ("dup", b"1"),
        ("dup", b"2"),
        ("empty", b""),
    ]
    if client != "kp":
        h.append(("null", None))
    return h


def timestamp(i, args):
    return None if args.ts_base is None else args.ts_base + i * args.ts_step


def producer_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--start", type=int, default=0, help="index of the first message")
    p.add_argument("--acks", default="all", choices=["all", "-1", "1", "0"])
    p.add_argument("--keys", type=int, default=1000, help="distinct keys (key-0 .. key-{keys-1})")
    p.add_argument("--key-prefix", default="key-")
    p.add_argument("--value-size", type=int, default=0, help="pad values with '.' to this size")
    p.add_argument("--null-key-every", type=int, default=0)
    p.add_argument("--null-value-every", type=int, default=0)
    p.add_argument("--headers", action="store_true")
    p.add_argument("--ts-base", type=int, default=None, help="explicit CreateTime of message 0 (ms)")
    p.add_argument("--ts-step", type=int, default=1)
    p.add_argument("--partition", type=int, default=None, help="explicit partition (default: by key)")
    p.add_argument("--report-acks", action="store_true",
                   help="list every ack as [i, partition, offset] (small counts only)")
    p.add_argument("--timeout", type=float, default=100.0, help="seconds to wait for all acks")
    p.add_argument("--idempotence", action="store_true",
                   help="enable the idempotent producer (needs InitProducerId on the broker)")
    return p.parse_args()


def consumer_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, required=True, help="stop after this many records")
    p.add_argument("--partitions", default=None,
                   help="comma-separated partitions (default: all, from metadata)")
    p.add_argument("--offset", type=int, default=None,
                   help="start offset for every partition (default: earliest)")
    p.add_argument("--timeout", type=float, default=100.0, help="give up after this many seconds")
    p.add_argument("--linger", type=float, default=0.3,
                   help="after COUNT records keep polling this long to catch extra records")
    p.add_argument("--values", choices=["text", "hash"], default="text",
                   help="text: print values up to 200 bytes as text; hash: lengths and CRC32 only")
    return p.parse_args()


def text(b, limit=None):
    if b is None:
        return None
    if limit is not None and len(b) > limit:
        return None
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return None


def record(offset, key, value, hdrs, ts, ts_type, values_mode="text"):
    """One consumed record as a compact JSON object.

    o offset · k key text (null key → null) · kl key length (-1 for null) · v value text (null
    when null, not UTF-8, longer than 200 bytes or --values hash) · vl value length (-1 for null)
    · vh CRC32 (zlib) of the value (0 for null) · h headers [[key, value-text-or-null], ...]
    · ts timestamp ms · tt "create" | "append" | "none".
    """
    return {
        "o": offset,
        "k": text(key),
        "kl": -1 if key is None else len(key),
        "v": text(value, 200) if values_mode == "text" else None,
        "vl": -1 if value is None else len(value),
        "vh": 0 if value is None else zlib.crc32(value),
        "h": [[k, text(v)] for (k, v) in (hdrs or [])],
        "ts": ts,
        "tt": ts_type,
    }


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")))
    sys.stdout.write("\n")
    sys.stdout.flush()


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return self.end - time.monotonic()

    def passed(self):
        return time.monotonic() >= self.end


class AckTally:
    """What a producer script reports: acks per partition (in send order?), errors, samples.

    Shared by ck_produce.py and kp_produce.py so both print the same JSON."""

    def __init__(self, report_acks):
        self.acked = 0
        self.errors = 0
        self.samples = []
        self.parts = {}
        self.acks = []
        self.report_acks = report_acks

    def ok(self, i, part, off):
        self.acked += 1
        s = self.parts.setdefault(str(part), {"count": 0, "first": off, "last": off, "in_order": True})
        if s["count"] and off <= s["last"] and off >= 0:
            s["in_order"] = False
        s["count"] += 1
        s["last"] = off
        if self.report_acks:
            self.acks.append([i, part, off])

    def error(self, what, count=1):
        self.errors += count
        if len(self.samples) < 10:
            self.samples.append(what)

    def emit(self, client, args, t0):
        self.acks.sort()
        emit({
            "client": client,
            "topic": args.topic,
            "sent": args.count,
            "acked": self.acked,
            "errors": self.errors,
            "error_samples": self.samples,
            "partitions": self.parts,
            "acks": self.acks,
            "elapsed_s": round(time.monotonic() - t0, 3),
        })
