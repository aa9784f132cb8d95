"""Consumer-group administration through a client's admin API, for node/tests/e2e_groups.rs:
confluent-kafka's AdminClient (--client ck) or kafka-python's KafkaAdminClient (--client kp).
Prints one JSON object (the last line of stdout), normalised so both clients read the same:
errors as Kafka's names and codes ("NON_EMPTY_GROUP", 68), states as Kafka spells them
("Stable", "Empty", ...), partitions as [topic, p].

Ops:
  list                              {"groups": [{"group", "state", "protocol_type", "type" (ck)}]}
  describe --group G [--group G2]   {"groups": {G: {"error", "code", "state", "protocol",
                                      "protocol_type", "members": [{"member_id", "client_id",
                                      "host", "instance_id", "assignment": [[t, p], ...]}]}}}
  delete --group G [...]            {"results": {G: {"error", "code"}}}   (error null: deleted)
  offsets --group G                 {"error", "code", "offsets": [[t, p, committed], ...]}
  alter-offsets --group G --set t:p:o,...        {"error", "code", "results": [[t, p, error]]}
  delete-offsets --group G --partitions t:p,...  (kafka-python only: confluent-kafka has no
                                    OffsetDelete) {"error", "code", "results": [[t, p, error]]}
  watermarks --topic T              {"partitions": {"P": [low, high]}}   (ck consumer)
  produce --topic T --count N ...   ck producer; --one-per-batch sends each message in a batch
                                    of its own (small segments roll often); {"acked", "errors",
                                    "offsets": [[i, p, o], ...]}
Exit status 0 whenever the op ran (errors are data); 2 on bad usage.
"""

import argparse
import re
import sys
import time

from grp_common import emit_result, log, state_name


def type_name(t):
    """A confluent-kafka ConsumerGroupType as Kafka spells group types ("consumer", "classic")."""
    return None if t is None else t.name.lower()


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("op", choices=["list", "describe", "delete", "offsets", "alter-offsets",
                                  "delete-offsets", "watermarks", "produce"])
    p.add_argument("--client", choices=["ck", "kp"], default="ck")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--group", action="append", default=[])
    p.add_argument("--topic", default=None)
    p.add_argument("--set", default="", help="t:p:offset,... (alter-offsets)")
    p.add_argument("--partitions", default="", help="t:p,... (delete-offsets)")
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--value-size", type=int, default=0)
    p.add_argument("--partition", type=int, default=None)
    p.add_argument("--one-per-batch", action="store_true")
    p.add_argument("--timeout", type=float, default=20.0)
    return p.parse_args()


def tp_specs(text, with_offset):
    out = []
    for item in [x for x in text.split(",") if x]:
        f = item.rsplit(":", 2 if with_offset else 1)
        out.append((f[0], int(f[1]), int(f[2])) if with_offset else (f[0], int(f[1])))
    return out


# ---------------------------------------------------------------------------------------------
# Error normalisation


def ck_err(e):
    """(name, code) of a confluent-kafka exception or KafkaError."""
    import confluent_kafka as ck
    err = e
    if isinstance(e, ck.KafkaException) and e.args:
        err = e.args[0]
    if isinstance(err, ck.KafkaError):
        return err.name(), err.code()
    return f"{type(e).__name__}: {e}", None


def kp_err(e):
    """(name, code) of a kafka-python error class, instance or '[Error N] Name: ...' string."""
    import kafka.errors as Errors
    if e is None:
        return None, None
    if isinstance(e, str):
        m = re.match(r"\[Error (-?\d+)\]", e)
        if m:
            cls = Errors.for_code(int(m.group(1)))
            return getattr(cls, "message", e), int(m.group(1))
        return e, None
    cls = e if isinstance(e, type) else type(e)
    if cls is Errors.NoError:
        return None, None
    errno = getattr(cls, "errno", None)
    name = getattr(cls, "message", None) or cls.__name__
    if errno is None:
        return f"{cls.__name__}: {e}", None
    return name, errno


# ---------------------------------------------------------------------------------------------
# confluent-kafka


def ck_admin(a):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": a.bootstrap, "socket.timeout.ms": int(a.timeout * 1000)})


def ck_op(a):
    import confluent_kafka as ck
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    if a.op == "watermarks":
        c = ck.Consumer({"bootstrap.servers": a.bootstrap, "group.id": "sluice-e2e-watermarks",
                         "enable.auto.commit": False})
        md = c.list_topics(a.topic, timeout=a.timeout)
        parts = sorted(md.topics[a.topic].partitions)
        out = {}
        for p in parts:
            lo, hi = c.get_watermark_offsets(TopicPartition(a.topic, p), timeout=a.timeout, cached=False)
            out[str(p)] = [lo, hi]
        c.close()
        return {"partitions": out}

    if a.op == "produce":
        prod = ck.Producer({"bootstrap.servers": a.bootstrap, "acks": "all",
                            "linger.ms": 0 if a.one_per_batch else 5, "enable.idempotence": False})
        acked, errors, offsets = 0, [], []

        def cb(i):
            def f(err, msg):
                nonlocal acked
                if err is not None:
                    errors.append(f"{i}: {err}")
                else:
                    acked += 1
                    offsets.append([i, msg.partition(), msg.offset()])
            return f

        for i in range(a.start, a.start + a.count):
            v = f"val-{i}"
            if len(v) < a.value_size:
                v += "." * (a.value_size - len(v))
            kw = {"key": f"key-{i}".encode(), "value": v.encode(), "on_delivery": cb(i)}
            if a.partition is not None:
                kw["partition"] = a.partition
            prod.produce(a.topic, **kw)
            if a.one_per_batch:
                prod.flush(a.timeout)
            else:
                prod.poll(0)
        prod.flush(a.timeout)
        offsets.sort()
        return {"acked": acked, "errors": errors[:10], "offsets": offsets}

    admin = ck_admin(a)
    if a.op == "list":
        res = admin.list_consumer_groups(request_timeout=a.timeout).result()
        return {
            "groups": [{"group": g.group_id, "state": state_name(g.state),
                        "protocol_type": "" if g.is_simple_consumer_group else "consumer",
                        "type": type_name(getattr(g, "type", None))}
                       for g in res.valid],
            "errors": [ck_err(e)[0] for e in (res.errors or [])],
        }
    if a.op == "describe":
        out = {}
        for g, fut in admin.describe_consumer_groups(a.group, request_timeout=a.timeout).items():
            try:
                d = fut.result()
            except Exception as e:  # noqa: BLE001
                name, code = ck_err(e)
                out[g] = {"error": name, "code": code, "state": None, "members": []}
                continue
            out[g] = {
                "error": None,
                "code": 0,
                "state": state_name(d.state),
                "protocol": d.partition_assignor,
                "protocol_type": "" if d.is_simple_consumer_group else "consumer",
                "type": type_name(getattr(d, "type", None)),
                "members": [{
                    "member_id": m.member_id,
                    "client_id": m.client_id,
                    "host": m.host,
                    "instance_id": m.group_instance_id,
                    "assignment": sorted([tp.topic, tp.partition] for tp in
                                         ((m.assignment.topic_partitions if m.assignment else None) or [])),
                    "target": sorted([tp.topic, tp.partition] for tp in
                                     ((m.target_assignment.topic_partitions
                                       if getattr(m, "target_assignment", None) else None) or [])),
                } for m in d.members],
            }
        return {"groups": out}
    if a.op == "delete":
        out = {}
        for g, fut in admin.delete_consumer_groups(a.group, request_timeout=a.timeout).items():
            try:
                fut.result()
                out[g] = {"error": None, "code": 0}
            except Exception as e:  # noqa: BLE001
                name, code = ck_err(e)
                out[g] = {"error": name, "code": code}
        return {"results": out}
    if a.op == "offsets":
        g = a.group[0]
        fut = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(g)], request_timeout=a.timeout)[g]
        try:
            r = fut.result()
        except Exception as e:  # noqa: BLE001
            name, code = ck_err(e)
            return {"error": name, "code": code, "offsets": []}
        offs, errs = [], []
        for tp in r.topic_partitions or []:
            if tp.error is not None:
                errs.append([tp.topic, tp.partition, ck_err(tp.error)[0]])
            elif tp.offset >= 0:
                offs.append([tp.topic, tp.partition, tp.offset])
        return {"error": None, "code": 0, "offsets": sorted(offs), "partition_errors": errs}
    if a.op == "alter-offsets":
        g = a.group[0]
        tps = [TopicPartition(t, p, o) for t, p, o in tp_specs(a.set, True)]
        fut = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(g, tps)],
                                                 request_timeout=a.timeout)[g]
        try:
            r = fut.result()
        except Exception as e:  # noqa: BLE001
            name, code = ck_err(e)
            return {"error": name, "code": code, "results": []}
        return {"error": None, "code": 0,
                "results": [[tp.topic, tp.partition, ck_err(tp.error)[0] if tp.error else None]
                            for tp in r.topic_partitions]}
    if a.op == "delete-offsets":
        return {"error": "UNSUPPORTED_BY_CLIENT", "code": None,
                "results": [], "note": "confluent-kafka has no OffsetDelete admin call"}
    raise SystemExit(2)


# ---------------------------------------------------------------------------------------------
# kafka-python


def kp_op(a):
    import kafka.errors as Errors
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.structs import OffsetAndMetadata

    if a.op in ("watermarks", "produce"):
        return ck_op(a)
    admin = KafkaAdminClient(bootstrap_servers=[a.bootstrap], client_id="sluice-e2e-kp-admin",
                             request_timeout_ms=int(a.timeout * 1000))
    try:
        if a.op == "list":
            groups = admin.list_groups()
            return {"groups": [{"group": g.get("group_id"), "state": state_name(g.get("group_state")),
                                "protocol_type": g.get("protocol_type")} for g in groups],
                    "errors": []}
        if a.op == "describe":
            out = {}
            try:
                res = admin.describe_groups(a.group)
            except Errors.KafkaError as e:
                name, code = kp_err(e)
                return {"groups": {g: {"error": name, "code": code, "state": None, "members": []}
                                   for g in a.group}}
            for g, d in res.items():
                name, code = kp_err(d.get("error"))
                members = []
                for m in d.get("members") or []:
                    asg = m.get("member_assignment")
                    parts = []
                    if isinstance(asg, dict):
                        for tpp in asg.get("assigned_partitions") or []:
                            for p in tpp.get("partitions") or []:
                                parts.append([tpp.get("topic"), p])
                    elif hasattr(asg, "partitions"):
                        parts = [[tp.topic, tp.partition] for tp in asg.partitions()]
                    members.append({
                        "member_id": m.get("member_id"),
                        "client_id": m.get("client_id"),
                        "host": m.get("client_host"),
                        "instance_id": m.get("group_instance_id"),
                        "assignment": sorted(parts),
                    })
                out[g] = {
                    "error": name,
                    "code": code or 0,
                    "state": state_name(d.get("group_state")),
                    "protocol": d.get("protocol_data"),
                    "protocol_type": d.get("protocol_type"),
                    "members": members,
                }
            return {"groups": out}
        if a.op == "delete":
            try:
                res = admin.delete_groups(a.group)
            except Errors.KafkaError as e:
                name, code = kp_err(e)
                return {"results": {g: {"error": name, "code": code} for g in a.group}}
            out = {}
            for g, r in dict(res).items():
                if r == "OK":
                    out[g] = {"error": None, "code": 0}
                else:
                    cls = getattr(Errors, r, None) if isinstance(r, str) else r
                    name, code = kp_err(cls if cls is not None else str(r))
                    out[g] = {"error": name, "code": code}
            return {"results": out}
        if a.op == "offsets":
            g = a.group[0]
            try:
                res = admin.list_group_offsets({g: None})
            except Errors.KafkaError as e:
                name, code = kp_err(e)
                return {"error": name, "code": code, "offsets": []}
            offs = [[tp.topic, tp.partition, om.offset] for tp, om in res.get(g, {}).items() if om.offset >= 0]
            return {"error": None, "code": 0, "offsets": sorted(offs), "partition_errors": []}
        if a.op == "alter-offsets":
            g = a.group[0]
            offs = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for t, p, o in tp_specs(a.set, True)}
            try:
                res = admin.alter_group_offsets(g, offs)
            except Errors.KafkaError as e:
                name, code = kp_err(e)
                return {"error": name, "code": code, "results": []}
            return {"error": None, "code": 0,
                    "results": [[tp.topic, tp.partition, kp_err(err)[0]] for tp, err in res.items()]}
        if a.op == "delete-offsets":
            g = a.group[0]
            parts = [TopicPartition(t, p) for t, p in tp_specs(a.partitions, False)]
            try:
                res = admin.delete_group_offsets(g, parts)
            except Errors.KafkaError as e:
                name, code = kp_err(e)
                return {"error": name, "code": code, "results": []}
            return {"error": None, "code": 0,
                    "results": sorted([tp.topic, tp.partition, kp_err(err)[0]] for tp, err in res.items())}
    finally:
        try:
            admin.close()
        except Exception as e:  # noqa: BLE001
            log("grp_admin close:", repr(e))
    raise SystemExit(2)


def main():
    a = parse_args()
    if a.op in ("describe", "delete", "offsets", "alter-offsets", "delete-offsets") and not a.group:
        log("--group is required for", a.op)
        sys.exit(2)
    t0 = time.monotonic()
    out = (ck_op if a.client == "ck" else kp_op)(a)
    out["client"] = a.client
    out["op"] = a.op
    out["elapsed_s"] = round(time.monotonic() - t0, 3)
    emit_result(out)


if __name__ == "__main__":
    main()
