"""Config administration through a real admin client: confluent-kafka's AdminClient (--client
ck) or kafka-python's KafkaAdminClient (--client kp). Runs a list of operations in order
(--ops, a JSON list) and prints one JSON object: {"results": [one per operation]}.

Operations:
  {"op": "describe", "type": "topic"|"broker", "name": N}
      -> {"error": null|"ERROR_NAME", "configs": {name: {"value", "source", "read_only",
          "synonyms": [[name, value, source], ...]}}}   (sources by Kafka's names)
  {"op": "alter", "type", "name", "set": {k: v}, "validate_only": bool}     (AlterConfigs)
  {"op": "incremental", "type", "name", "ops": [[k, "SET"|"DELETE"|"APPEND"|"SUBTRACT", v]],
   "validate_only": bool}                                   (IncrementalAlterConfigs)
  {"op": "create", "name", "partitions": n (-1: none), "config": {k: v},
   "assignment": [[broker ids] per partition] or null, "validate_only": bool}
      -> {"error": null|"ERROR_NAME", "message": text}
An alter's or create's refusal is reported, never raised: the test decides.
"""

import argparse
import json

from common import emit

SOURCES = {
    0: "UNKNOWN",
    1: "DYNAMIC_TOPIC_CONFIG",
    2: "DYNAMIC_BROKER_CONFIG",
    3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
    4: "STATIC_BROKER_CONFIG",
    5: "DEFAULT_CONFIG",
}


class Ck:
    def __init__(self, bootstrap):
        from confluent_kafka.admin import AdminClient

        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    @staticmethod
    def resource(kind, name, **kw):
        from confluent_kafka.admin import ConfigResource, ResourceType

        return ConfigResource(ResourceType.TOPIC if kind == "topic" else ResourceType.BROKER, name, **kw)

    @staticmethod
    def error_name(err):
        # librdkafka shortens one of Kafka's names.
        name = err.name()
        return {"UNKNOWN_TOPIC_OR_PART": "UNKNOWN_TOPIC_OR_PARTITION"}.get(name, name)

    @staticmethod
    def source(s):
        return SOURCES.get(int(getattr(s, "value", s)), str(s))

    def outcome(self, future):
        from confluent_kafka import KafkaException

        try:
            future.result(timeout=30)
            return {"error": None, "message": ""}
        except KafkaException as e:
            err = e.args[0]
            return {"error": self.error_name(err), "message": err.str()}

    def describe(self, kind, name):
        from confluent_kafka import KafkaException

        futures = self.admin.describe_configs([self.resource(kind, name)], request_timeout=30)
        try:
            entries = list(futures.values())[0].result(timeout=30)
        except KafkaException as e:
            return {"error": self.error_name(e.args[0]), "message": e.args[0].str(), "configs": {}}
        configs = {}
        for name, e in entries.items():
            configs[name] = {
                "value": e.value,
                "source": self.source(e.source),
                "read_only": e.is_read_only,
                "is_default": e.is_default,
                # A dict by name in this client: one entry per synonym name.
                "synonyms": [[s.name, s.value, self.source(s.source)] for s in e.synonyms.values()],
            }
        return {"error": None, "configs": configs}

    def alter(self, kind, name, values, validate_only):
        res = self.resource(kind, name, set_config=values)
        return self.outcome(list(self.admin.alter_configs([res], validate_only=validate_only).values())[0])

    def incremental(self, kind, name, ops, validate_only):
        from confluent_kafka.admin import AlterConfigOpType, ConfigEntry

        entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType[op]) for k, op, v in ops]
        res = self.resource(kind, name, incremental_configs=entries)
        futures = self.admin.incremental_alter_configs([res], validate_only=validate_only)
        return self.outcome(list(futures.values())[0])

    def create(self, name, partitions, config, assignment, validate_only):
        from confluent_kafka.admin import NewTopic

        if assignment is not None:
            # librdkafka wants the count beside an assignment (and sends -1 for both).
            topic = NewTopic(name, len(assignment), -1, replica_assignment=assignment, config=config)
        else:
            topic = NewTopic(name, partitions, 1, config=config)
        futures = self.admin.create_topics([topic], request_timeout=30, validate_only=validate_only)
        return self.outcome(futures[name])


class Kp:
    def __init__(self, bootstrap):
        from kafka import KafkaAdminClient

        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)

    @staticmethod
    def resource(kind, name, configs=None):
        from kafka.admin import ConfigResource, ConfigResourceType

        t = ConfigResourceType.TOPIC if kind == "topic" else ConfigResourceType.BROKER
        return ConfigResource(t, name, configs)

    @staticmethod
    def result(out, kind, name):
        r = out[kind][name]
        if r == "OK":
            return {"error": None, "message": ""}
        # "[Error 40] InvalidConfigurationError: message" -> the Kafka name by code.
        import kafka.errors as Errors

        code = int(r.split("]")[0].split()[-1])
        return {"error": Kp.kafka_name(Errors.for_code(code).message), "message": r}

    @staticmethod
    def kafka_name(name):
        # kafka-python names one code differently from Kafka's Errors.java.
        return {"INVALID_REPLICATION_ASSIGNMENT": "INVALID_REPLICA_ASSIGNMENT"}.get(name, name)

    def describe(self, kind, name):
        out = self.admin.describe_configs([self.resource(kind, name)], include_synonyms=True, config_filter="all")
        raw = out.get(kind, {}).get(name, {})
        configs = {}
        for key, c in raw.items():
            configs[key] = {
                "value": c["value"],
                "source": c["config_source"],
                "read_only": c["read_only"],
                "synonyms": [[s["name"], s["value"], s["source"]] for s in c.get("synonyms", [])],
            }
        return {"error": None, "configs": configs}

    def alter(self, kind, name, values, validate_only):
        try:
            out = self.admin.alter_configs(
                [self.resource(kind, name, dict(values))], validate_only=validate_only, raise_on_unknown=False, incremental=False
            )
        except Exception as e:  # noqa: BLE001 - reported to the test
            return {"error": type(e).__name__, "message": str(e)}
        return self.result(out, kind, name)

    def incremental(self, kind, name, ops, validate_only):
        configs = {k: (op, v) for k, op, v in ops}
        try:
            out = self.admin.alter_configs(
                [self.resource(kind, name, configs)], validate_only=validate_only, raise_on_unknown=False, incremental=True
            )
        except Exception as e:  # noqa: BLE001
            return {"error": type(e).__name__, "message": str(e)}
        return self.result(out, kind, name)

    def create(self, name, partitions, config, assignment, validate_only):
        import kafka.errors as Errors
        from kafka.admin import NewTopic

        if assignment is not None:
            topic = NewTopic(name, replica_assignments={p: r for p, r in enumerate(assignment)}, topic_configs=config)
        else:
            topic = NewTopic(name, partitions, 1, topic_configs=config)
        try:
            self.admin.create_topics([topic], validate_only=validate_only)
            return {"error": None, "message": ""}
        except Errors.KafkaError as e:
            return {"error": self.kafka_name(getattr(e, "message", type(e).__name__)), "message": str(e)}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--client", choices=["ck", "kp"], required=True)
    p.add_argument("--ops", required=True, help="JSON list of operations")
    args = p.parse_args()
    client = Ck(args.bootstrap) if args.client == "ck" else Kp(args.bootstrap)
    results = []
    for op in json.loads(args.ops):
        kind, name, vo = op.get("type"), op.get("name"), op.get("validate_only", False)
        if op["op"] == "describe":
            results.append(client.describe(kind, name))
        elif op["op"] == "alter":
            results.append(client.alter(kind, name, op["set"], vo))
        elif op["op"] == "incremental":
            results.append(client.incremental(kind, name, op["ops"], vo))
        elif op["op"] == "create":
            results.append(
                client.create(name, op.get("partitions", -1), op.get("config", {}), op.get("assignment"), vo)
            )
        else:
            raise SystemExit(f"unknown op {op['op']!r}")
    emit({"results": results})


if __name__ == "__main__":
    main()
