#!/usr/bin/env python3
"""Generate node/src/protocol_guard/schema.rs from Kafka's JSON request specs.

Usage (from the repository root):

    python3 scripts/gen-protocol-guard.py           # rewrite the generated file
    python3 scripts/gen-protocol-guard.py --check   # exit 1 if it is out of date

Input: node/protocol-specs/*Request.json, copies of Apache Kafka's
clients/src/main/resources/common/message/*.json (JSON with // comments).
Output: static tables the Rust walker in node/src/protocol_guard.rs interprets.

The tables must describe exactly what the `kafka-protocol` crate decodes, because the
guard exists to vet bytes before that crate sees them. Two adjustments make the specs
agree with the crate (kafka-protocol 0.18, generated from Kafka 4.1.0):

* CRATE_VERSIONS caps every message's validVersions at the crate's range. Newer specs
  only add versions at the top (Kafka never changes the layout of a released version),
  and the crate refuses versions outside its range before reading a byte, so versions
  beyond the cap need no table.
* LEGACY_VERSIONS extend a message's range below the crate's by the versions Kafka 4.0
  dropped (KIP-896) that the node still serves, as Kafka 3.9 did. The crate no longer
  decodes them; the node reads them with its own decoders (node/src/api/legacy.rs), after
  the guard walked them, and the Rust tests check those layouts against kafka-protocol
  0.14 (generated from Kafka 3.7, which still had them).
* AMENDMENTS bring a spec that predates Kafka 4.1.0 up to it, one documented edit per
  KIP. They exist because the stored copies available when this was written were not all
  from 4.1.0; node/protocol-specs/SOURCES.md says where each file came from. The Rust
  tests encode every version with the crate and check the walk agrees byte for byte.

Standard library only: the node takes no JSON dependency for this.
"""

import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC_DIR = os.path.join(ROOT, "node", "protocol-specs")
OUT = os.path.join(ROOT, "node", "src", "protocol_guard", "schema.rs")

# Message name -> (min, max) version the kafka-protocol crate (0.18) decodes; its
# `<XRequest as Message>::VERSIONS`. A Rust test asserts these still match the crate.
CRATE_VERSIONS = {
    "ProduceRequest": (3, 13),
    "FetchRequest": (4, 18),
    "ListOffsetsRequest": (1, 10),
    "MetadataRequest": (0, 13),
    "OffsetCommitRequest": (2, 9),
    "OffsetFetchRequest": (1, 9),
    "FindCoordinatorRequest": (0, 6),
    "JoinGroupRequest": (0, 9),
    "HeartbeatRequest": (0, 4),
    "LeaveGroupRequest": (0, 5),
    "SyncGroupRequest": (0, 5),
    "DescribeGroupsRequest": (0, 6),
    "ListGroupsRequest": (0, 5),
    "ApiVersionsRequest": (0, 4),
    "CreateTopicsRequest": (2, 7),
    "DeleteTopicsRequest": (1, 6),
    "DeleteRecordsRequest": (0, 2),
    "InitProducerIdRequest": (0, 5),
    "AddPartitionsToTxnRequest": (0, 5),
    "AddOffsetsToTxnRequest": (0, 4),
    "EndTxnRequest": (0, 5),
    "TxnOffsetCommitRequest": (0, 5),
    "CreatePartitionsRequest": (0, 3),
    "DeleteGroupsRequest": (0, 2),
    "OffsetDeleteRequest": (0, 0),
    "DescribeClusterRequest": (0, 2),
    "DescribeTransactionsRequest": (0, 0),
    # The crate knows v2 (KIP-1152's TransactionalIdPattern); the spec copy here ends at v1.
    "ListTransactionsRequest": (0, 1),
    "DescribeLogDirsRequest": (1, 4),
    "DescribeProducersRequest": (0, 0),
    # Kafka 4.0 removed v0; the node decodes a v0 request as v1 (see api/describe_configs.rs).
    "DescribeConfigsRequest": (1, 4),
    "AlterConfigsRequest": (0, 2),
    "IncrementalAlterConfigsRequest": (0, 1),
    "ConsumerGroupHeartbeatRequest": (0, 1),
    "ConsumerGroupDescribeRequest": (0, 1),
    # Broker to broker (a transaction coordinator to a partition's leader); Kafka 4.0 removed v0.
    "WriteTxnMarkersRequest": (1, 1),
    "ElectLeadersRequest": (0, 2),
    "OffsetForLeaderEpochRequest": (2, 4),
    "AlterPartitionReassignmentsRequest": (0, 1),
    "ListPartitionReassignmentsRequest": (0, 0),
}

# Message name -> the lowest version the node decodes itself, below the crate's range.
LEGACY_VERSIONS = {
    "ListOffsetsRequest": 0,
    "OffsetCommitRequest": 0,
    "OffsetFetchRequest": 0,
}

PRIMITIVES = {
    "bool": "Bool",
    "int8": "Int8",
    "int16": "Int16",
    "uint16": "Uint16",
    "int32": "Int32",
    "uint32": "Uint32",
    "int64": "Int64",
    "float64": "Float64",
    "uuid": "Uuid",
    "string": "String",
    "bytes": "Bytes",
    "records": "Records",
}


def field(struct, name):
    """The field called `name` in a spec dict that has "fields"."""
    for f in struct["fields"]:
        if f["name"] == name:
            return f
    raise KeyError(name)


def nullable_string(name, since):
    return {"name": name, "type": "string", "versions": since, "nullableVersions": since}


def amend_produce(spec):
    # The stored copy is a Kafka 4.0 development snapshot ("7-12"); 4.0 kept 3 as the
    # baseline (KAFKA-18659), and 4.1 added v13, which names topics by id (KIP-516).
    spec["validVersions"] = "3-13"
    topic = field(spec, "TopicData")
    field(topic, "Name")["versions"] = "0-12"
    topic["fields"].insert(1, {"name": "TopicId", "type": "uuid", "versions": "13+"})


def amend_api_versions(spec):
    # v4 has the v3 layout (KAFKA-17011: lets SupportedFeatures.MinVersion be 0).
    spec["validVersions"] = "0-4"


def amend_join_group(spec):
    # v8 adds Reason (KIP-800); v9 has the v8 layout (KIP-814).
    spec["validVersions"] = "0-9"
    spec["fields"].append(nullable_string("Reason", "8+"))


def amend_sync_group(spec):
    # v4 is the first flexible version (KIP-482); v5 adds ProtocolType and ProtocolName
    # after GroupInstanceId (KIP-559).
    spec["validVersions"] = "0-5"
    spec["flexibleVersions"] = "4+"
    at = spec["fields"].index(field(spec, "GroupInstanceId")) + 1
    spec["fields"][at:at] = [nullable_string("ProtocolType", "5+"), nullable_string("ProtocolName", "5+")]


def amend_leave_group(spec):
    # v5 adds a Reason to each member (KIP-800).
    spec["validVersions"] = "0-5"
    field(spec, "Members")["fields"].append(nullable_string("Reason", "5+"))


def amend_same_layout(versions):
    def amend(spec):
        spec["validVersions"] = versions

    return amend


def amend_delete_records(spec):
    # v2 is the first flexible version (KIP-482), same fields.
    spec["validVersions"] = "0-2"
    spec["flexibleVersions"] = "2+"


def amend_alter_partition_reassignments(spec):
    # v1 adds AllowReplicationFactorChange after TimeoutMs (KIP-860).
    spec["validVersions"] = "0-1"
    at = spec["fields"].index(field(spec, "TimeoutMs")) + 1
    spec["fields"].insert(at, {"name": "AllowReplicationFactorChange", "type": "bool", "versions": "1+"})


def amend_list_offsets(spec):
    # Kafka 4.0 dropped v0 (KIP-896); Kafka 3.9's spec has it: MaxNumOffsets, v0 only,
    # after Timestamp (v1 removed it).
    spec["validVersions"] = "0-12"
    partition = field(field(spec, "Topics"), "Partitions")
    at = partition["fields"].index(field(partition, "Timestamp")) + 1
    partition["fields"].insert(at, {"name": "MaxNumOffsets", "type": "int32", "versions": "0"})


def amend_offset_commit(spec):
    # Kafka 4.0 dropped v0 and v1 (KIP-896); their fields (v1's CommitTimestamp,
    # GenerationIdOrMemberEpoch and MemberId from v1) are still in the spec, as in 3.9.
    spec["validVersions"] = "0-9"


def amend_consumer_group_heartbeat(spec):
    # The stored copy is KIP-848's early-access v0 (marked unstable), before Kafka 4.0
    # released it: 4.0 dropped ClientAssignors (client-side assignors were never built),
    # and v1 (KIP-1082, member ids chosen by the member) has SubscribedTopicRegex, which
    # v0 no longer carries.
    spec["validVersions"] = "0-1"
    spec.pop("latestVersionUnstable", None)
    spec["fields"].remove(field(spec, "ClientAssignors"))
    field(spec, "SubscribedTopicRegex")["versions"] = "1+"
    field(spec, "SubscribedTopicRegex")["nullableVersions"] = "1+"


AMENDMENTS = {
    "ConsumerGroupHeartbeatRequest": amend_consumer_group_heartbeat,
    "ListOffsetsRequest": amend_list_offsets,
    "OffsetCommitRequest": amend_offset_commit,
    "ProduceRequest": amend_produce,
    "ApiVersionsRequest": amend_api_versions,
    "JoinGroupRequest": amend_join_group,
    "SyncGroupRequest": amend_sync_group,
    "LeaveGroupRequest": amend_leave_group,
    # v6: same layout, new error semantics (KIP-1043).
    "DescribeGroupsRequest": amend_same_layout("0-6"),
    # v5: same layout, TRANSACTION_ABORTABLE (KIP-890).
    "InitProducerIdRequest": amend_same_layout("0-5"),
    # v4 and v5: same layout (KIP-890 parts 1 and 2).
    "TxnOffsetCommitRequest": amend_same_layout("0-5"),
    "DeleteRecordsRequest": amend_delete_records,
    "AlterPartitionReassignmentsRequest": amend_alter_partition_reassignments,
}


def strip_comments(text):
    """Drops // and /* */ comments outside string literals."""
    out = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
        elif c == '"':
            in_string = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise ValueError("unterminated /* comment")
            i = end + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


I16_MAX = 32767


def parse_versions(text):
    """Kafka version range text -> (lo, hi); "none" is the empty range (1, 0)."""
    text = (text or "none").strip()
    if text == "none":
        return (1, 0)
    if text.endswith("+"):
        return (int(text[:-1]), I16_MAX)
    if "-" in text:
        lo, hi = text.split("-")
        return (int(lo), int(hi))
    return (int(text), int(text))


def contains(outer, inner):
    return inner[0] > inner[1] or (outer[0] <= inner[0] and inner[1] <= outer[1])


def const_name(*parts):
    words = []
    for part in parts:
        words.append(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", part).upper())
    return "__".join(words)


def rust_versions(v):
    if v[0] > v[1]:
        return "Versions::NONE"
    if v[1] == I16_MAX:
        return f"Versions::from({v[0]})"
    return f"Versions::new({v[0]}, {v[1]})"


class Generator:
    def __init__(self):
        self.statics = []  # (const name, [field lines])

    def message(self, spec):
        name = spec["name"]
        common = {s["name"]: s for s in spec.get("commonStructs", [])}
        emitted = {}  # struct type name -> const name, within this message
        lo, hi = CRATE_VERSIONS[name]
        lo = min(lo, LEGACY_VERSIONS.get(name, lo))
        valid = parse_versions(spec["validVersions"])
        if not (valid[0] <= lo and hi <= valid[1]):
            raise ValueError(f"{name}: spec validVersions {valid} does not cover the node's {lo}-{hi}")
        flexible = parse_versions(spec.get("flexibleVersions", "none"))
        top = self.struct(name, None, spec["fields"], common, emitted, flexible)
        return (name, spec["apiKey"], (lo, hi), flexible, top)

    def struct(self, message, struct_name, fields, common, emitted, flexible):
        const = const_name(message) if struct_name is None else const_name(message, struct_name)
        if struct_name is not None:
            emitted[struct_name] = const
        lines = []
        for f in fields:
            lines.append(self.field(message, f, common, emitted, flexible))
        self.statics.append((const, lines))
        return const

    def field(self, message, f, common, emitted, flexible):
        ty = f["type"]
        array = ty.startswith("[]")
        elem = ty[2:] if array else ty
        versions = parse_versions(f.get("versions"))
        nullable = parse_versions(f.get("nullableVersions", "none"))
        tagged = parse_versions(f.get("taggedVersions", "none"))
        if not contains(versions, tagged):
            raise ValueError(f"{message}.{f['name']}: taggedVersions outside versions")
        if not contains(flexible, tagged):
            raise ValueError(f"{message}.{f['name']}: tagged in a non-flexible version")
        if tagged[0] <= tagged[1] and "tag" not in f:
            raise ValueError(f"{message}.{f['name']}: taggedVersions without a tag")
        if elem in PRIMITIVES:
            if "fields" in f:
                raise ValueError(f"{message}.{f['name']}: primitive with fields")
            rust_ty = f"Type::{PRIMITIVES[elem]}"
        elif "fields" in f:
            rust_ty = f"Type::Struct(&{self.struct(message, elem, f['fields'], common, emitted, flexible)})"
        elif elem in emitted:
            rust_ty = f"Type::Struct(&{emitted[elem]})"
        elif elem in common:
            sub = self.struct(message, elem, common[elem]["fields"], common, emitted, flexible)
            rust_ty = f"Type::Struct(&{sub})"
        else:
            raise ValueError(f"{message}.{f['name']}: unknown type {ty}")
        tag = f.get("tag", 0)
        return (
            f"Field {{ name: {json.dumps(f['name'])}, versions: {rust_versions(versions)}, "
            f"nullable: {rust_versions(nullable)}, tagged: {rust_versions(tagged)}, tag: {tag}, "
            f"array: {'true' if array else 'false'}, ty: {rust_ty} }}"
        )


def load_specs():
    specs = []
    for entry in sorted(os.listdir(SPEC_DIR)):
        if not entry.endswith("Request.json"):
            continue
        with open(os.path.join(SPEC_DIR, entry), encoding="utf-8") as fh:
            spec = json.loads(strip_comments(fh.read()))
        if spec.get("type") != "request":
            raise ValueError(f"{entry}: not a request spec")
        amend = AMENDMENTS.get(spec["name"])
        if amend is not None:
            amend(spec)
        specs.append(spec)
    missing = set(CRATE_VERSIONS) - {s["name"] for s in specs}
    if missing:
        raise ValueError(f"no spec file for {sorted(missing)}")
    return sorted(specs, key=lambda s: s["apiKey"])


def render(specs):
    gen = Generator()
    messages = [gen.message(spec) for spec in specs]
    out = [
        "// @generated by scripts/gen-protocol-guard.py from node/protocol-specs/*Request.json.",
        "// Do not edit by hand: change the specs or the script and regenerate.",
        "//",
        "// One static per struct: its fields in wire order. Version ranges are inclusive,",
        "// `Versions::from(n)` is \"n+\" and `Versions::NONE` never matches. Message ranges are",
        "// capped at what kafka-protocol 0.18 decodes, plus the legacy versions below it that",
        "// the node decodes itself (see the script).",
        "",
        "use super::{Field, Message, Type, Versions};",
        "",
    ]
    for const, lines in gen.statics:
        out.append(f"static {const}: [Field; {len(lines)}] = [")
        out.extend(f"    {line}," for line in lines)
        out.append("];")
        out.append("")
    for name, api_key, valid, flexible, top in messages:
        out.append(f"static {const_name(name)}_MESSAGE: Message = Message {{")
        out.append(f"    name: {json.dumps(name)},")
        out.append(f"    api_key: {api_key},")
        out.append(f"    valid: {rust_versions(valid)},")
        out.append(f"    flexible: {rust_versions(flexible)},")
        out.append(f"    fields: &{top},")
        out.append("};")
        out.append("")
    out.append("/// The schema of request `api_key`, if one was generated.")
    out.append("pub(super) fn message(api_key: i16) -> Option<&'static Message> {")
    out.append("    match api_key {")
    for name, api_key, _, _, _ in messages:
        out.append(f"        {api_key} => Some(&{const_name(name)}_MESSAGE),")
    out.append("        _ => None,")
    out.append("    }")
    out.append("}")
    out.append("")
    out.append("/// Every generated message, by API key.")
    out.append("#[cfg(test)]")
    out.append(f"pub(super) static MESSAGES: [&Message; {len(messages)}] = [")
    for name, _, _, _, _ in messages:
        out.append(f"    &{const_name(name)}_MESSAGE,")
    out.append("];")
    return "\n".join(out) + "\n"


def main():
    text = render(load_specs())
    if "--check" in sys.argv[1:]:
        with open(OUT, encoding="utf-8") as fh:
            if fh.read() != text:
                print(f"{OUT} is out of date; run scripts/gen-protocol-guard.py", file=sys.stderr)
                return 1
        return 0
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as fh:
        fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
