"""Long-poll fetch probes.

consumer-wake  A confluent-kafka consumer sits at the log end of one partition with
               fetch.wait.max.ms=--wait-ms (default 5000, so a broker that does not wake a
               parked fetch on append shows up as seconds of latency). Each round another
               thread produces one message (acks=1, linger 0); the latency is from just before
               produce() to the consumer receiving it.
raw-wake       The same at the protocol level: one Fetch (v4, max_wait --wait-ms, min_bytes 1)
               at the log end, sent on a plain socket with kafka-python's codec; another
               thread produces after --delay-ms; the latency is from just before produce() to
               the fetch response.
raw-empty      Fetch (v4, max_wait --wait-ms, default 500, min_bytes 1) at the log end of an
               idle partition, --rounds times: how long the broker held each empty fetch.

The topic must exist with the partition. Output: {"mode", "wait_ms", "latencies_ms": [...]
(wake modes) | "durations_ms": [...] (raw-empty), "records": [...] (records per response,
raw modes), "errors": [...]}.
"""

import argparse
import socket
import sys
import threading
import time

from common import emit, log


def parse():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("mode", choices=["consumer-wake", "raw-wake", "raw-empty"])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--partition", type=int, default=0)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--wait-ms", type=int, default=None)
    p.add_argument("--delay-ms", type=int, default=300, help="raw-wake: produce this long after the fetch")
    p.add_argument("--settle", type=float, default=1.0,
                   help="consumer-wake: seconds at the log end before each produce")
    return p.parse_args()


def ck_producer(args):
    import confluent_kafka as ck
    p = ck.Producer({"bootstrap.servers": args.bootstrap, "acks": "1", "linger.ms": 0,
                     "error_cb": lambda e: log("longpoll producer error_cb:", e)})
    return p


def produce_one(p, args, value):
    """Produce and wait for the ack; returns the offset."""
    res = {}

    def cb(err, msg):
        res["err"], res["offset"] = err, (msg.offset() if err is None else None)

    p.produce(args.topic, value=value, partition=args.partition, on_delivery=cb)
    p.flush(30)
    if res.get("err") is not None or "offset" not in res:
        raise SystemExit(f"produce failed: {res}")
    return res["offset"]


def consumer_wake(args):
    import confluent_kafka as ck
    wait_ms = args.wait_ms or 5000
    errors = []
    p = ck_producer(args)
    next_offset = produce_one(p, args, b"warmup") + 1
    c = ck.Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "sluice-e2e-unused",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": wait_ms,
        "fetch.min.bytes": 1,
        "error_cb": lambda e: (log("longpoll consumer error_cb:", e), errors.append(str(e))),
    })
    c.assign([ck.TopicPartition(args.topic, args.partition, next_offset)])
    latencies = []
    for r in range(args.rounds):
        # Sit at the log end so the consumer's fetch is parked on the broker.
        settle_end = time.monotonic() + args.settle
        while time.monotonic() < settle_end:
            m = c.poll(0.05)
            if m is not None:
                errors.append(f"unexpected message before round {r}: {m.error() or m.value()!r}")
        sent = {}
        want = f"wake-{r}".encode()

        def send():
            sent["t"] = time.monotonic()
            p.produce(args.topic, value=want, partition=args.partition)
            p.flush(30)

        th = threading.Thread(target=send)
        th.start()
        got = None
        deadline = time.monotonic() + wait_ms / 1000.0 + 10
        while time.monotonic() < deadline:
            m = c.poll(0.001)
            if m is None:
                continue
            if m.error() is not None:
                errors.append(str(m.error()))
                continue
            if m.value() == want:
                got = time.monotonic()
                break
            errors.append(f"round {r}: unexpected value {m.value()!r}")
        th.join()
        if got is None:
            errors.append(f"round {r}: message not received")
            latencies.append(None)
        else:
            latencies.append(round((got - sent["t"]) * 1000.0, 2))
    c.close()
    return {"mode": args.mode, "wait_ms": wait_ms, "latencies_ms": latencies, "errors": errors}


class Raw:
    """One connection speaking the protocol through kafka-python's codec."""

    def __init__(self, bootstrap):
        from kafka.protocol.parser import KafkaProtocol
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.proto = KafkaProtocol(client_id="sluice-e2e-raw")

    def call(self, req):
        self.proto.send_request(req)
        self.sock.sendall(self.proto.send_bytes())
        while True:
            data = self.sock.recv(1 << 20)
            if not data:
                raise SystemExit("connection closed by the broker")
            resps = self.proto.receive_bytes(data)
            if resps:
                return resps[0][1]

    def log_end(self, topic, partition):
        from kafka.protocol.consumer import ListOffsetsRequest as L
        req = L(version=1, replica_id=-1, topics=[L.ListOffsetsTopic(
            name=topic, partitions=[L.ListOffsetsTopic.ListOffsetsPartition(
                partition_index=partition, timestamp=-1)])])
        resp = self.call(req)
        part = resp.topics[0].partitions[0]
        if part.error_code != 0:
            raise SystemExit(f"ListOffsets latest: error {part.error_code}")
        return part.offset

    def fetch(self, topic, partition, offset, wait_ms):
        from kafka.protocol.consumer import FetchRequest as F
        req = F(version=4, replica_id=-1, max_wait_ms=wait_ms, min_bytes=1, max_bytes=1 << 20,
                isolation_level=0, topics=[F.FetchTopic(topic=topic, partitions=[
                    F.FetchTopic.FetchPartition(partition=partition, fetch_offset=offset,
                                                partition_max_bytes=1 << 20)])])
        t0 = time.monotonic()
        resp = self.call(req)
        elapsed = time.monotonic() - t0
        part = resp.responses[0].partitions[0]
        return elapsed, part.error_code, len(part.records or b"")


def raw_empty(args):
    wait_ms = args.wait_ms or 500
    raw = Raw(args.bootstrap)
    end = raw.log_end(args.topic, args.partition)
    durations, sizes, errors = [], [], []
    for _ in range(args.rounds):
        elapsed, err, n = raw.fetch(args.topic, args.partition, end, wait_ms)
        if err != 0:
            errors.append(f"fetch error {err}")
        durations.append(round(elapsed * 1000.0, 2))
        sizes.append(n)
    return {"mode": args.mode, "wait_ms": wait_ms, "log_end": end, "durations_ms": durations,
            "records": sizes, "errors": errors}


def raw_wake(args):
    wait_ms = args.wait_ms or 5000
    p = ck_producer(args)
    produce_one(p, args, b"warmup")
    raw = Raw(args.bootstrap)
    latencies, sizes, errors = [], [], []
    for r in range(args.rounds):
        end = raw.log_end(args.topic, args.partition)
        sent = {}

        def send():
            time.sleep(args.delay_ms / 1000.0)
            sent["t"] = time.monotonic()
            produce_one(p, args, f"wake-{r}".encode())

        th = threading.Thread(target=send)
        th.start()
        _, err, n = raw.fetch(args.topic, args.partition, end, wait_ms)
        got = time.monotonic()
        th.join()
        if err != 0:
            errors.append(f"round {r}: fetch error {err}")
        if n == 0:
            errors.append(f"round {r}: fetch returned no records")
        latencies.append(round((got - sent.get("t", got)) * 1000.0, 2))
        sizes.append(n)
    return {"mode": args.mode, "wait_ms": wait_ms, "latencies_ms": latencies, "records": sizes,
            "errors": errors}


def main():
    args = parse()
    fn = {"consumer-wake": consumer_wake, "raw-wake": raw_wake, "raw-empty": raw_empty}[args.mode]
    emit(fn(args))


if __name__ == "__main__":
    sys.exit(main())
