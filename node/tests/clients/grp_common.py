"""Shared by the consumer-group scripts (grp_*.py) of node/tests/e2e_groups.rs.

These scripts run in the background while the test watches them, so instead of one JSON
object at the end they print one JSON object per line as things happen, each with
"ev" (what happened) and "t" (wall-clock ms since the epoch, so events of several processes
can be ordered and timed against each other), flushed at once. Diagnostics go to stderr.
"""

import json
import sys
import threading
import time

_LOCK = threading.Lock()


def now_ms():
    return round(time.time() * 1000.0, 1)


def emit(ev, **fields):
    """Prints one event line (thread-safe: client callbacks may run on other threads)."""
    obj = {"ev": ev, "t": now_ms()}
    obj.update(fields)
    line = json.dumps(obj, separators=(",", ":"))
    with _LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def emit_result(obj):
    """The one-result-line style of the other client scripts (py_json reads the last line)."""
    with _LOCK:
        sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
        sys.stdout.flush()


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def index_of(value):
    """The i of a common.py message value b"val-{i}..." (padding dots allowed); -1 otherwise."""
    if value is None:
        return -1
    try:
        s = value.decode("utf-8")
    except UnicodeDecodeError:
        return -1
    if not s.startswith("val-"):
        return -1
    s = s[4:].rstrip(".")
    return int(s) if s.isdigit() else -1


def tps(parts):
    """[[topic, partition], ...] sorted, from (topic, partition) pairs or TopicPartition objects."""
    out = set()
    for p in parts:
        if isinstance(p, (tuple, list)):
            out.add((p[0], int(p[1])))
        else:
            out.add((p.topic, int(p.partition)))
    return [[t, p] for (t, p) in sorted(out)]


def state_name(s):
    """A group state from either client as Kafka spells it: Stable, Empty, PreparingRebalance,
    CompletingRebalance, Dead, Unknown (confluent-kafka gives enums such as
    ConsumerGroupState.PREPARING_REBALANCING, kafka-python the protocol's string)."""
    if s is None:
        return None
    name = getattr(s, "name", None) or str(s)
    name = name.split(".")[-1]
    key = name.replace("_", "").replace("-", "").lower()
    return {
        "stable": "Stable",
        "empty": "Empty",
        "preparingrebalance": "PreparingRebalance",
        "preparingrebalancing": "PreparingRebalance",
        "completingrebalance": "CompletingRebalance",
        "completingrebalancing": "CompletingRebalance",
        "dead": "Dead",
        "unknown": "Unknown",
    }.get(key, name)
