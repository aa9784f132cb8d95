"""An idempotent (enable.idempotence, acks=all) confluent-kafka producer that runs while the
test moves partitions between the node's shards (node/tests/e2e_moves.rs).

Record i (i = 0, 1, 2, ... in send order, over all partitions) has the key f"key-{i % keys}"
(the default partitioner spreads the keys over the topic's partitions) and the value
f"val-{i}" padded with '.' to --value-size, so a consumer can tell which record it got
(grp_common.index_of) and the test can check the order per partition against the send order.

It sends record 0 and waits for its acknowledgement (the warm-up: producer id, metadata and
connections are set up; its latency is not counted), then sends at --rate records/s until --stop-file exists (or --duration passes), waits for every
delivery report, then reads --moves-file (written by the test before the stop file: a JSON
list of [start_ms, end_ms, ...] wall-clock times of each move, request sent to answer read)
and reports the produce-ack latency (librdkafka's own from produce() to the broker's ack,
msg.latency(); the delivery callback's time minus the send time when it has none):
overall, for the records whose produce-to-ack interval overlaps a move's window widened by
--window-ms on each side, and for the others.

Output (stdout, one JSON object per line):
  {"ev": "producing", "t": ms}                          the first record was handed to librdkafka
  {"ev": "result", "client", "sent", "acked", "errors", "error_samples", "client_errors",
   "fatal", "stats": {eos fields idemp_state, producer_id, producer_epoch, epoch_cnt},
   "moves": N, "latency_ms": {"all"|"in_moves"|"outside": {"n", "p50", "p99", "p999", "max"}},
   "elapsed_s"}
--acks-file receives {"acks": [[i, partition, offset, send_ms, latency_ms], ...]} (sorted by i)
before the result line is printed. Exit 0 even when records failed (the test decides).
"""

import argparse
import json
import math
import os
import time

import confluent_kafka as ck

from grp_common import emit, emit_result, log


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--rate", type=float, default=1000.0, help="records per second")
    p.add_argument("--keys", type=int, default=1000)
    p.add_argument("--value-size", type=int, default=100)
    p.add_argument("--stop-file", required=True, help="stop sending once this file exists")
    p.add_argument("--duration", type=float, default=60.0, help="stop sending after this long anyway")
    p.add_argument("--moves-file", default=None, help="JSON list of [start_ms, end_ms, ...] per move")
    p.add_argument("--window-ms", type=float, default=100.0, help="widen each move's window by this much")
    p.add_argument("--acks-file", required=True)
    p.add_argument("--timeout", type=float, default=60.0, help="message.timeout.ms and flush limit (s)")
    return p.parse_args()


def value(i, size):
    v = f"val-{i}"
    if len(v) < size:
        v += "." * (size - len(v))
    return v.encode()


def percentiles(lat):
    if not lat:
        return {"n": 0, "p50": None, "p99": None, "p999": None, "max": None}
    s = sorted(lat)

    def q(f):
        return round(s[max(0, math.ceil(f * len(s)) - 1)], 3)

    return {"n": len(s), "p50": q(0.5), "p99": q(0.99), "p999": q(0.999), "max": round(s[-1], 3)}


def main():
    a = parse()
    fatal = [None]
    client_errors = []
    stats = {}

    def on_error(err):
        if err.fatal():
            fatal[0] = f"{err.name()}: {err.str()}"
        log(f"mv_produce error_cb: {err.name()}: {err.str()}")
        if len(client_errors) < 50:
            client_errors.append([err.name(), err.str()])

    def on_stats(text):
        eos = json.loads(text).get("eos") or {}
        for k in ("idemp_state", "producer_id", "producer_epoch", "epoch_cnt"):
            if k in eos:
                stats[k] = eos[k]

    p = ck.Producer({
        "bootstrap.servers": a.bootstrap,
        "client.id": "mv-produce",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": int(a.timeout * 1000),
        "queue.buffering.max.messages": 200000,
        "error_cb": on_error,
        "statistics.interval.ms": 1000,
        "stats_cb": on_stats,
    })

    acks = []  # [i, partition, offset, send_ms, latency_ms]
    errors = [0]
    samples = []

    def on_delivery(i, send_ms):
        def cb(err, msg):
            if err is not None:
                errors[0] += 1
                if len(samples) < 10:
                    samples.append(f"record {i}: {err}")
                return
            lat = msg.latency()
            lat_ms = lat * 1000.0 if lat is not None else time.time() * 1000.0 - send_ms
            acks.append([i, msg.partition(), msg.offset(), round(send_ms, 3), round(lat_ms, 3)])
        return cb

    # Warm-up: record 0 alone, acknowledged before the paced run starts, so the producer id,
    # metadata and connection set-up (hundreds of ms) are not counted as produce latency.
    p.produce(a.topic, key=f"key-{0 % a.keys}".encode(), value=value(0, a.value_size),
              on_delivery=on_delivery(0, time.time() * 1000.0))
    p.flush(a.timeout)
    warm = list(acks)
    acks.clear()
    t0 = time.monotonic()
    end = t0 + a.duration
    i = 1
    while time.monotonic() < end and not os.path.exists(a.stop_file):
        # Pace: poll (serving delivery reports) while ahead of rate * elapsed.
        ahead = (i - 1) - a.rate * (time.monotonic() - t0)
        if ahead > 0:
            p.poll(min(ahead / a.rate, 0.01))
            continue
        send_ms = time.time() * 1000.0
        while True:
            try:
                p.produce(a.topic, key=f"key-{i % a.keys}".encode(), value=value(i, a.value_size),
                          on_delivery=on_delivery(i, send_ms))
                break
            except BufferError:
                p.poll(0.05)
        if i == 1:
            emit("producing")
        i += 1
        p.poll(0)
    sent = i
    flush_end = time.monotonic() + a.timeout
    while len(p) > 0 and time.monotonic() < flush_end:
        p.flush(0.5)
    left = len(p)
    if left:
        errors[0] += left
        samples.append(f"{left} records still unacknowledged {a.timeout} s after the last send")

    moves = []
    if a.moves_file:
        deadline = time.monotonic() + 30
        while not os.path.exists(a.moves_file) and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            with open(a.moves_file) as f:
                moves = json.load(f)
        except (OSError, ValueError) as e:
            log("mv_produce: cannot read the moves file:", repr(e))
    windows = sorted((m[0] - a.window_ms, m[1] + a.window_ms) for m in moves)

    def in_moves(send_ms, lat_ms):
        done = send_ms + lat_ms
        return any(s <= done and send_ms <= e for s, e in windows)

    inside, outside = [], []
    for _, _, _, send_ms, lat_ms in acks:  # the warm-up record is not in it yet
        (inside if in_moves(send_ms, lat_ms) else outside).append(lat_ms)

    acks.extend(warm)
    acks.sort()
    with open(a.acks_file + ".tmp", "w") as f:
        json.dump({"acks": acks}, f, separators=(",", ":"))
    os.replace(a.acks_file + ".tmp", a.acks_file)
    emit_result({
        "ev": "result",
        "client": "confluent-kafka " + ck.__version__ + " / librdkafka " + ck.libversion()[0],
        "sent": sent,
        "acked": len(acks),
        "errors": errors[0],
        "error_samples": samples,
        "client_errors": client_errors,
        "fatal": fatal[0],
        "stats": stats,
        "moves": len(moves),
        "latency_ms": {
            "all": percentiles([x[4] for x in acks if x[0] != 0]),
            "in_moves": percentiles(inside),
            "outside": percentiles(outside),
        },
        "elapsed_s": round(time.monotonic() - t0, 3),
    })


if __name__ == "__main__":
    main()
