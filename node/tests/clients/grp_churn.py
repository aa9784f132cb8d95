"""Group churn for node/tests/e2e_groups.rs (issue 5, Show 8): GROUPS groups × MEMBERS members
(confluent-kafka consumers, one thread per member slot) joining and leaving for DURATION seconds.

Each member slot loops: create a consumer, subscribe to --topic in group "{prefix}{g}", poll
until its first assignment arrives (the join time: subscribe → on_assign; a join that takes
longer than --join-timeout counts as stuck), stay a random --hold-min..--hold-max seconds
polling, then close() (a clean LeaveGroup). Every --resubscribe-every'th cycle of a slot first
unsubscribes and subscribes again on the same consumer (a leave and a new join without a new
connection), then holds and closes as usual.

Prints progress lines {"ev": "progress", ...} every 5 s and then one result line:
{"groups", "members", "cycles", "joins", "stuck_joins", "join_ms": {"p50", "p90", "p99", "max"},
 "errors": n, "error_samples": [...], "elapsed_s"}.
"""

import argparse
import random
import threading
import time

from grp_common import emit, emit_result, log


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--groups", type=int, default=100)
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--prefix", default="churn-")
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--hold-min", type=float, default=1.0)
    p.add_argument("--hold-max", type=float, default=4.0)
    p.add_argument("--join-timeout", type=float, default=30.0)
    p.add_argument("--session-timeout-ms", type=int, default=6000)
    p.add_argument("--heartbeat-ms", type=int, default=500)
    p.add_argument("--resubscribe-every", type=int, default=4,
                   help="every Nth cycle unsubscribes/resubscribes instead of closing (0: never)")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.cycles = 0
        self.joins = 0
        self.stuck = 0
        self.join_ms = []
        self.errors = 0
        self.samples = []

    def error(self, what):
        with self.lock:
            self.errors += 1
            if len(self.samples) < 20:
                self.samples.append(what)


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, int(round(q * (len(sorted_vals) - 1))))
    return round(sorted_vals[i], 1)


def slot(a, g, m, stats, end, rng):
    import confluent_kafka as ck

    group = f"{a.prefix}{g}"
    cycle = 0
    while time.time() < end:
        assigned = threading.Event()

        def on_assign(consumer, parts):
            assigned.set()

        def on_error(err):
            # Connection-level noise is expected while members come and go; count it.
            if err.fatal():
                stats.error(f"{group}/{m}: fatal {err}")

        c = ck.Consumer({
            "bootstrap.servers": a.bootstrap,
            "group.id": group,
            "client.id": f"churn-{g}-{m}",
            "session.timeout.ms": a.session_timeout_ms,
            "heartbeat.interval.ms": a.heartbeat_ms,
            "enable.auto.commit": False,
            "auto.offset.reset": "latest",
            "error_cb": on_error,
        })
        try:
            rounds = 1 if not a.resubscribe_every or cycle % a.resubscribe_every else 2
            for r in range(rounds):
                assigned.clear()
                t0 = time.time()
                c.subscribe([a.topic], on_assign=on_assign)
                while not assigned.is_set() and time.time() - t0 < a.join_timeout:
                    for msg in c.consume(num_messages=100, timeout=0.05):
                        if msg.error() is not None and msg.error().code() != ck.KafkaError._PARTITION_EOF:
                            stats.error(f"{group}/{m}: {msg.error()}")
                with stats.lock:
                    if assigned.is_set():
                        stats.joins += 1
                        stats.join_ms.append((time.time() - t0) * 1000.0)
                    else:
                        stats.stuck += 1
                        if len(stats.samples) < 20:
                            stats.samples.append(f"{group}/{m}: no assignment {a.join_timeout}s after subscribe")
                hold_end = time.time() + rng.uniform(a.hold_min, a.hold_max)
                while time.time() < min(hold_end, end):
                    c.consume(num_messages=100, timeout=0.1)
                if r + 1 < rounds:
                    c.unsubscribe()
                    for _ in range(3):
                        c.consume(num_messages=100, timeout=0.05)
        except Exception as e:  # noqa: BLE001
            stats.error(f"{group}/{m}: {type(e).__name__}: {e}")
        finally:
            try:
                c.close()
            except Exception as e:  # noqa: BLE001
                stats.error(f"{group}/{m}: close: {e}")
        with stats.lock:
            stats.cycles += 1
        cycle += 1


def main():
    a = parse_args()
    stats = Stats()
    t0 = time.time()
    end = t0 + a.duration
    threads = []
    for g in range(a.groups):
        for m in range(a.members):
            rng = random.Random(a.seed * 1_000_003 + g * 31 + m)
            t = threading.Thread(target=slot, args=(a, g, m, stats, end, rng), daemon=True)
            threads.append(t)
    # Stagger the starts over a second so the first joins do not all land at once.
    for i, t in enumerate(threads):
        t.start()
        time.sleep(1.0 / max(1, len(threads)))
    last = time.time()
    while any(t.is_alive() for t in threads):
        time.sleep(0.2)
        if time.time() - last >= 5:
            last = time.time()
            with stats.lock:
                emit("progress", cycles=stats.cycles, joins=stats.joins, stuck=stats.stuck,
                     errors=stats.errors, alive=sum(t.is_alive() for t in threads))
        if time.time() > end + a.join_timeout + 60:
            log("grp_churn: threads still alive long after the end")
            stats.error("member threads did not finish within join-timeout + 60 s of the end")
            break
    js = sorted(stats.join_ms)
    emit_result({
        "groups": a.groups,
        "members": a.members,
        "cycles": stats.cycles,
        "joins": stats.joins,
        "stuck_joins": stats.stuck,
        "join_ms": {"p50": pct(js, 0.5), "p90": pct(js, 0.9), "p99": pct(js, 0.99),
                    "max": round(js[-1], 1) if js else None},
        "errors": stats.errors,
        "error_samples": stats.samples,
        "elapsed_s": round(time.time() - t0, 3),
    })


if __name__ == "__main__":
    main()
