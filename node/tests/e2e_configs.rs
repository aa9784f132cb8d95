//! End to end for configs (issue 13, Build/Show 2): DescribeConfigs, AlterConfigs and
//! IncrementalAlterConfigs for a topic and for the broker, and CreateTopics' `validate_only`
//! and manual assignments, with real admin clients (confluent-kafka's AdminClient and
//! kafka-python's KafkaAdminClient, `tests/clients/cfg_admin.py`) against a real two-shard
//! node: every change visible at once and after a restart, invalid changes refused whole,
//! and altered settings in force on the open partitions of every shard. The request shapes
//! the clients never send (DescribeConfigs v0, duplicate resources or keys, unknown
//! operations) go through the wire client.
//!
//! Needs `bash scripts/test-deps.sh` (the `.venv`).

mod support;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};
use support::json::{Json, Value};
use support::wire::Client;
use support::{py_json, Node};

/// Runs `ops` through one client; the per-operation results.
fn run(node: &Node, client: &str, ops: Value) -> Vec<Value> {
    let ops = ops.to_string();
    let out = py_json(node, "cfg_admin.py", &["--bootstrap", node.bootstrap(), "--client", client, "--ops", &ops]);
    out["results"].arr().to_vec()
}

/// One operation's result.
fn one(node: &Node, client: &str, op: Value) -> Value {
    run(node, client, json!([op])).remove(0)
}

fn describe(node: &Node, client: &str, kind: &str, name: &str) -> Value {
    let r = one(node, client, json!({"op": "describe", "type": kind, "name": name}));
    assert!(r["error"].is_null(), "{client} describe {kind} {name:?}: {r}");
    r["configs"].clone()
}

/// (value, source) of one described config.
fn vs(configs: &Value, name: &str) -> (Option<String>, String) {
    let c = &configs[name];
    assert!(!c.is_null(), "{name} not described: {configs}");
    (c["value"].opt_str().map(str::to_string), c["source"].str().to_string())
}

fn expect(configs: &Value, name: &str, value: Option<&str>, source: &str) {
    assert_eq!(vs(configs, name), (value.map(str::to_string), source.to_string()), "{name} in {configs}");
}

fn incremental(kind: &str, name: &str, ops: Value) -> Value {
    json!({"op": "incremental", "type": kind, "name": name, "ops": ops})
}

fn assert_error(r: &Value, want: Option<&str>, what: &str) {
    assert_eq!(r["error"].opt_str(), want, "{what}: {r}");
}

/// A node on two shards (so every change must reach another core), with one static
/// setting to see as STATIC_BROKER_CONFIG.
fn node(extra: &[&str]) -> Node {
    let mut args = vec!["--cores", "0-1", "--set", "log.segment.bytes=2097152"];
    args.extend_from_slice(extra);
    Node::start(&args)
}

#[test]
fn topic_configs_describe_alter_incremental_and_survive_a_restart() {
    let mut node = node(&[]);
    let t = "cfg-topic";
    let created = one(
        &node,
        "ck",
        json!({"op": "create", "name": t, "partitions": 2,
               "config": {"retention.ms": "604800000", "max.message.bytes": "5000"}}),
    );
    assert_error(&created, None, "create");

    // As Kafka reports it: given at creation = the topic's own, even when equal to the default.
    for client in ["ck", "kp"] {
        let c = describe(&node, client, "topic", t);
        expect(&c, "retention.ms", Some("604800000"), "DYNAMIC_TOPIC_CONFIG");
        expect(&c, "max.message.bytes", Some("5000"), "DYNAMIC_TOPIC_CONFIG");
        expect(&c, "segment.bytes", Some("2097152"), "STATIC_BROKER_CONFIG");
        expect(&c, "retention.bytes", Some("-1"), "DEFAULT_CONFIG");
        expect(&c, "cleanup.policy", Some("delete"), "DEFAULT_CONFIG");
        expect(&c, "compression.type", Some("producer"), "DEFAULT_CONFIG");
        assert!(!c["segment.bytes"]["read_only"].bool());
    }
    let c = describe(&node, "kp", "topic", t);
    assert_eq!(
        c["segment.bytes"]["synonyms"],
        json!([
            ["log.segment.bytes", "2097152", "STATIC_BROKER_CONFIG"],
            ["log.segment.bytes", "1073741824", "DEFAULT_CONFIG"]
        ])
    );
    assert_eq!(c["retention.ms"]["synonyms"], json!([["retention.ms", "604800000", "DYNAMIC_TOPIC_CONFIG"]]));

    // Incremental: set and delete (back to the default), each client.
    let r = one(
        &node,
        "ck",
        incremental("topic", t, json!([["retention.bytes", "SET", "1048576"], ["max.message.bytes", "DELETE", null]])),
    );
    assert_error(&r, None, "ck incremental");
    let r = one(&node, "kp", incremental("topic", t, json!([["segment.ms", "SET", "3600000"]])));
    assert_error(&r, None, "kp incremental");
    for client in ["ck", "kp"] {
        let c = describe(&node, client, "topic", t);
        expect(&c, "retention.bytes", Some("1048576"), "DYNAMIC_TOPIC_CONFIG");
        expect(&c, "max.message.bytes", Some("1048588"), "DEFAULT_CONFIG");
        expect(&c, "segment.ms", Some("3600000"), "DYNAMIC_TOPIC_CONFIG");
    }

    // Refused whole: one bad entry and nothing of the request applies.
    let refusals = [
        ("ck", json!([["retention.ms", "SET", "5000"], ["segment.bytes", "SET", "abc"]]), "INVALID_CONFIG"),
        ("kp", json!([["retention.ms", "SET", "5000"], ["no.such.config", "SET", "1"]]), "INVALID_CONFIG"),
        ("ck", json!([["retention.ms", "SET", "5000"], ["cleanup.policy", "APPEND", "shred"]]), "INVALID_CONFIG"),
        ("kp", json!([["min.cleanable.dirty.ratio", "SET", "1.5"]]), "INVALID_CONFIG"),
        (
            "ck",
            json!([["min.compaction.lag.ms", "SET", "10"], ["max.compaction.lag.ms", "SET", "5"]]),
            "INVALID_CONFIG",
        ),
        ("ck", json!([["retention.ms", "APPEND", "5000"]]), "INVALID_CONFIG"),
        ("kp", json!([["retention.ms", "SET", "-7"]]), "INVALID_CONFIG"),
    ];
    for (client, ops, code) in refusals {
        let r = one(&node, client, incremental("topic", t, ops.clone()));
        assert_error(&r, Some(code), &format!("{client} {ops}"));
        assert!(!r["message"].str().is_empty(), "a refusal says why: {r}");
    }
    let r = one(
        &node,
        "ck",
        json!({"op": "incremental", "type": "topic", "name": t, "validate_only": true,
                                    "ops": [["retention.ms", "SET", "5000"]]}),
    );
    assert_error(&r, None, "validate_only");
    let c = describe(&node, "ck", "topic", t);
    expect(&c, "retention.ms", Some("604800000"), "DYNAMIC_TOPIC_CONFIG");
    expect(&c, "segment.bytes", Some("2097152"), "STATIC_BROKER_CONFIG");

    // AlterConfigs replaces the topic's whole set: what it does not name reverts.
    let r = one(&node, "ck", json!({"op": "alter", "type": "topic", "name": t, "set": {"retention.ms": "120000"}}));
    assert_error(&r, None, "ck alter");
    let r = one(&node, "kp", json!({"op": "alter", "type": "topic", "name": t, "set": {"retention.ms": "x"}}));
    assert_error(&r, Some("INVALID_CONFIG"), "kp alter with a bad value");
    let before_restart = describe(&node, "ck", "topic", t);
    expect(&before_restart, "retention.ms", Some("120000"), "DYNAMIC_TOPIC_CONFIG");
    expect(&before_restart, "retention.bytes", Some("-1"), "DEFAULT_CONFIG");
    expect(&before_restart, "segment.ms", Some("604800000"), "DEFAULT_CONFIG");

    let r = one(&node, "ck", json!({"op": "describe", "type": "topic", "name": "no-such-topic"}));
    assert_error(&r, Some("UNKNOWN_TOPIC_OR_PARTITION"), "describe an unknown topic");
    let r = one(&node, "ck", incremental("topic", "no-such-topic", json!([["retention.ms", "SET", "1"]])));
    assert_error(&r, Some("UNKNOWN_TOPIC_OR_PARTITION"), "alter an unknown topic");

    node.restart();
    for client in ["ck", "kp"] {
        let after = describe(&node, client, "topic", t);
        for name in ["retention.ms", "retention.bytes", "segment.ms", "max.message.bytes", "segment.bytes"] {
            assert_eq!(vs(&after, name), vs(&before_restart, name), "{client}: {name} after the restart");
        }
    }
    node.stop();
}

#[test]
fn broker_configs_have_kafkas_layers_and_survive_a_restart() {
    let mut node = node(&[]);
    let t = "cfg-plain";
    assert_error(&one(&node, "ck", json!({"op": "create", "name": t, "partitions": 2})), None, "create");

    let c = describe(&node, "ck", "broker", "0");
    expect(&c, "log.segment.bytes", Some("2097152"), "STATIC_BROKER_CONFIG");
    expect(&c, "log.retention.ms", None, "DEFAULT_CONFIG");
    expect(&c, "log.retention.hours", Some("168"), "DEFAULT_CONFIG");
    expect(&c, "num.partitions", Some("1"), "DEFAULT_CONFIG");
    assert!(c["num.partitions"]["read_only"].bool(), "num.partitions is not dynamic");
    assert!(!c["log.retention.ms"]["read_only"].bool(), "log.retention.ms is dynamic");

    // This broker's layer, then the cluster-wide default ("").
    let r = one(&node, "ck", incremental("broker", "0", json!([["log.retention.ms", "SET", "3600000"]])));
    assert_error(&r, None, "set log.retention.ms for broker 0");
    // Neither client addresses the cluster-wide default (resource name ""): the wire client.
    let mut wire = Client::connect(node.bootstrap());
    assert_eq!(wire_set(&mut wire, "", "message.max.bytes", Some("2000000")), (0, None), "cluster default");
    for client in ["ck", "kp"] {
        let c = describe(&node, client, "broker", "0");
        expect(&c, "log.retention.ms", Some("3600000"), "DYNAMIC_BROKER_CONFIG");
        expect(&c, "message.max.bytes", Some("2000000"), "DYNAMIC_DEFAULT_BROKER_CONFIG");
        // A topic without its own setting follows the broker's, with that source.
        let topic = describe(&node, client, "topic", t);
        expect(&topic, "retention.ms", Some("3600000"), "DYNAMIC_BROKER_CONFIG");
        expect(&topic, "max.message.bytes", Some("2000000"), "DYNAMIC_DEFAULT_BROKER_CONFIG");
    }
    let c = describe(&node, "kp", "broker", "0");
    assert_eq!(
        c["log.retention.ms"]["synonyms"],
        json!([
            ["log.retention.ms", "3600000", "DYNAMIC_BROKER_CONFIG"],
            ["log.retention.hours", "168", "DEFAULT_CONFIG"]
        ])
    );
    let defaults = wire_describe(&mut wire, 4, "");
    assert_eq!(defaults.error_code, 0);
    let listed: Vec<(&str, Option<&str>, i8)> =
        defaults.configs.iter().map(|c| (c.name.as_str(), c.value.as_deref(), c.config_source)).collect();
    assert_eq!(listed, vec![("message.max.bytes", Some("2000000"), 3)], "only the cluster-default layer");

    // Refused whole (Kafka answers INVALID_REQUEST for broker configs).
    let refusals = [
        ("ck", "0", json!([["log.retention.bytes", "SET", "1000"], ["num.partitions", "SET", "4"]])),
        ("kp", "0", json!([["log.retention.bytes", "SET", "1000"], ["log.segment.bytes", "SET", "foo"]])),
        ("ck", "0", json!([["log.retention.bytes", "SET", "1000"], ["no.such.setting", "SET", "1"]])),
    ];
    for (client, name, ops) in refusals {
        let r = one(&node, client, incremental("broker", name, ops.clone()));
        assert_error(&r, Some("INVALID_REQUEST"), &format!("{client} broker {name:?} {ops}"));
    }
    let (code, message) = wire_set(&mut wire, "", "log.roll.ms", Some("soon"));
    assert_eq!(code, 42, "a bad value for the cluster default: {message:?}");
    // (The clients send a broker's resource to that broker: another id only over the wire.)
    let (code, message) = wire_set(&mut wire, "7", "log.retention.bytes", Some("1000"));
    assert_eq!(code, 42, "broker 7 is not this node: {message:?}");
    let c = describe(&node, "ck", "broker", "0");
    expect(&c, "log.retention.bytes", Some("-1"), "DEFAULT_CONFIG");
    expect(&c, "num.partitions", Some("1"), "DEFAULT_CONFIG");
    expect(&c, "log.roll.ms", None, "DEFAULT_CONFIG");

    // Delete back to the default; set another.
    let r = one(
        &node,
        "kp",
        incremental(
            "broker",
            "0",
            json!([["log.retention.ms", "DELETE", null], ["log.retention.bytes", "SET", "5000000"]]),
        ),
    );
    assert_error(&r, None, "kp delete and set");
    let before_restart = describe(&node, "ck", "broker", "0");
    expect(&before_restart, "log.retention.ms", None, "DEFAULT_CONFIG");
    expect(&before_restart, "log.retention.bytes", Some("5000000"), "DYNAMIC_BROKER_CONFIG");
    expect(&describe(&node, "ck", "topic", t), "retention.ms", Some("604800000"), "DEFAULT_CONFIG");

    node.restart();
    let after = describe(&node, "ck", "broker", "0");
    for name in ["log.retention.ms", "log.retention.bytes", "message.max.bytes", "log.segment.bytes", "num.partitions"]
    {
        assert_eq!(vs(&after, name), vs(&before_restart, name), "{name} after the restart");
    }
    let topic = describe(&node, "kp", "topic", t);
    expect(&topic, "retention.bytes", Some("5000000"), "DYNAMIC_BROKER_CONFIG");
    expect(&topic, "max.message.bytes", Some("2000000"), "DYNAMIC_DEFAULT_BROKER_CONFIG");
    node.stop();
}

/// IncrementalAlterConfigs SET (or DELETE, value None) of one broker setting through the wire
/// client: (error code, message).
fn wire_set(c: &mut Client, broker: &str, name: &str, value: Option<&str>) -> (i16, Option<String>) {
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let op = if value.is_some() { 0 } else { 1 };
    let config = AlterableConfig::default().with_name(s(name)).with_config_operation(op).with_value(value.map(s));
    let resource =
        AlterConfigsResource::default().with_resource_type(4).with_resource_name(s(broker)).with_configs(vec![config]);
    c.send(
        ApiKey::IncrementalAlterConfigs,
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![resource]),
    );
    let response: IncrementalAlterConfigsResponse = c.recv(ApiKey::IncrementalAlterConfigs, 1);
    let r = &response.responses[0];
    (r.error_code, r.error_message.as_ref().map(|m| m.to_string()))
}

/// DescribeConfigs v4 of one resource through the wire client.
fn wire_describe(
    c: &mut Client,
    kind: i8,
    name: &str,
) -> kafka_protocol::messages::describe_configs_response::DescribeConfigsResult {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    let resource = DescribeConfigsResource::default().with_resource_type(kind).with_resource_name(s(name));
    c.send(ApiKey::DescribeConfigs, 4, &DescribeConfigsRequest::default().with_resources(vec![resource]));
    let mut response: DescribeConfigsResponse = c.recv(ApiKey::DescribeConfigs, 4);
    response.results.remove(0)
}

/// Closed plus active segment files of one partition.
fn segments(data: &Path, topic: &str, partition: i32) -> usize {
    let dir = data.join(format!("{topic}-{partition}"));
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".log"))
        .count()
}

/// kafka-python's producer: batches of at most 16 KiB, so a 16 KiB segment holds about one.
fn produce(node: &Node, topic: &str, count: usize) {
    let n = count.to_string();
    let out = py_json(
        node,
        "kp_produce.py",
        &["--bootstrap", node.bootstrap(), "--topic", topic, "--count", &n, "--value-size", "1000"],
    );
    assert_eq!(out["acked"].i64(), count as i64, "produce to {topic}: {out}");
}

/// Waits until every partition of `topic` holds at most `max` segments.
fn wait_for_segments(node: &Node, topic: &str, partitions: i32, max: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let counts: Vec<usize> = (0..partitions).map(|p| segments(node.data_dir(), topic, p)).collect();
        if counts.iter().all(|c| *c <= max) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: segments per partition still {counts:?} (want at most {max})");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn altered_settings_apply_to_open_partitions_on_every_shard() {
    let node = node(&["--set", "log.retention.check.interval.ms=100"]);
    // Two partitions over two shards, small segments: many closed segments each.
    for t in ["live-topic", "live-broker"] {
        let r =
            one(&node, "ck", json!({"op": "create", "name": t, "partitions": 2, "config": {"segment.bytes": "16384"}}));
        assert_error(&r, None, "create");
        produce(&node, t, 300);
        for p in 0..2 {
            assert!(segments(node.data_dir(), t, p) > 4, "{t}-{p} should have rolled many segments");
        }
    }
    // The topic's own retention.bytes, altered: its partitions are trimmed.
    let r = one(&node, "ck", incremental("topic", "live-topic", json!([["retention.bytes", "SET", "20000"]])));
    assert_error(&r, None, "set retention.bytes");
    wait_for_segments(&node, "live-topic", 2, 3, "after retention.bytes=20000 on the topic");
    assert!(segments(node.data_dir(), "live-broker", 0) > 4, "the other topic keeps its segments");
    // The broker's default, altered: topics without their own follow it.
    let r = one(&node, "kp", incremental("broker", "0", json!([["log.retention.bytes", "SET", "20000"]])));
    assert_error(&r, None, "set log.retention.bytes");
    wait_for_segments(&node, "live-broker", 2, 3, "after log.retention.bytes=20000 on the broker");
    // max.message.bytes, altered on the topic: a larger batch is refused at once.
    let r = one(&node, "ck", incremental("topic", "live-topic", json!([["max.message.bytes", "SET", "600"]])));
    assert_error(&r, None, "set max.message.bytes");
    let out = py_json(
        &node,
        "ck_produce.py",
        &[
            "--bootstrap",
            node.bootstrap(),
            "--topic",
            "live-topic",
            "--count",
            "3",
            "--value-size",
            "1000",
            "--timeout",
            "10",
        ],
    );
    assert_eq!(out["acked"].i64(), 0, "1000-byte records over max.message.bytes=600: {out}");
}

#[test]
fn create_topics_validate_only_and_manual_assignments() {
    let node = node(&["--set", "num.partitions=6"]);
    for client in ["ck", "kp"] {
        let name = format!("vo-{client}");
        let r = one(
            &node,
            client,
            json!({"op": "create", "name": name, "partitions": 3, "validate_only": true,
                                          "config": {"retention.ms": "1000"}}),
        );
        assert_error(&r, None, &format!("{client} validate_only"));
        assert!(!node.data_dir().join(format!("{name}-0")).exists(), "validate_only created {name}");
        let r = one(&node, client, json!({"op": "describe", "type": "topic", "name": name}));
        if client == "ck" {
            assert_error(&r, Some("UNKNOWN_TOPIC_OR_PARTITION"), "the validated topic does not exist");
        } else {
            assert!(r["configs"].obj().is_empty(), "the validated topic does not exist: {r}");
        }
        let r = one(
            &node,
            client,
            json!({"op": "create", "name": name, "partitions": 3, "validate_only": true,
                                          "config": {"retention.ms": "soon"}}),
        );
        assert_error(&r, Some("INVALID_CONFIG"), &format!("{client} validate_only with a bad config"));
    }

    // A manual assignment gives the partition count (not num.partitions=6).
    let ok = [("ck", "one-assigned", json!([[0]])), ("kp", "three-assigned", json!([[0], [0], [0]]))];
    for (client, name, assignment) in ok {
        let r = one(&node, client, json!({"op": "create", "name": name, "assignment": assignment}));
        assert_error(&r, None, &format!("{client} create {name}"));
        let n = assignment.arr().len() as i32;
        for p in 0..6 {
            let exists = node.data_dir().join(format!("{name}-{p}")).exists();
            assert_eq!(exists, p < n, "{name}-{p}: the assignment has {n} partitions");
        }
    }
    for (client, name, assignment) in [("ck", "foreign", json!([[1]])), ("kp", "twice", json!([[0, 0]]))] {
        let r = one(&node, client, json!({"op": "create", "name": name, "assignment": assignment}));
        assert_error(&r, Some("INVALID_REPLICA_ASSIGNMENT"), &format!("{client} create {name} {assignment}"));
        assert!(!node.data_dir().join(format!("{name}-0")).exists());
    }
}

/// DescribeConfigs v0 (no client in the venv sends it): Kafka's v0 layout with IsDefault.
#[test]
fn describe_configs_v0_answers_in_the_v0_layout() {
    let node = node(&[]);
    let r = one(
        &node,
        "ck",
        json!({"op": "create", "name": "v0-topic", "partitions": 1, "config": {"retention.ms": "60000"}}),
    );
    assert_error(&r, None, "create");
    let mut c = Client::connect(node.bootstrap());
    let mut frame = BytesMut::new();
    frame.put_i16(ApiKey::DescribeConfigs as i16);
    frame.put_i16(0);
    frame.put_i32(77);
    frame.put_i16(5);
    frame.put_slice(b"tests");
    frame.put_i32(1); // one resource
    frame.put_i8(2); // TOPIC
    frame.put_i16(8);
    frame.put_slice(b"v0-topic");
    frame.put_i32(-1); // all keys
    c.stream.write_all(&(frame.len() as i32).to_be_bytes()).unwrap();
    c.stream.write_all(&frame).unwrap();
    let mut len = [0u8; 4];
    c.stream.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    c.stream.read_exact(&mut body).unwrap();
    let mut b = Bytes::from(body);
    let string = |b: &mut Bytes| -> Option<String> {
        let n = b.get_i16();
        (n >= 0).then(|| String::from_utf8(b.split_to(n as usize).to_vec()).unwrap())
    };
    assert_eq!(b.get_i32(), 77, "correlation id");
    assert_eq!(b.get_i32(), 0, "throttle");
    assert_eq!(b.get_i32(), 1, "one result");
    assert_eq!(b.get_i16(), 0, "error code");
    assert_eq!(string(&mut b), None, "error message");
    assert_eq!(b.get_i8(), 2);
    assert_eq!(string(&mut b).as_deref(), Some("v0-topic"));
    let n = b.get_i32();
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..n {
        let name = string(&mut b).unwrap();
        let value = string(&mut b);
        let (read_only, is_default, sensitive) = (b.get_u8(), b.get_u8(), b.get_u8());
        assert_eq!((read_only, sensitive), (0, 0), "{name}");
        seen.insert(name, (value, is_default));
    }
    assert!(b.is_empty(), "{} bytes left over", b.len());
    assert_eq!(seen["retention.ms"], (Some("60000".to_string()), 0));
    assert_eq!(seen["segment.bytes"], (Some("2097152".to_string()), 0), "static: not a default");
    assert_eq!(seen["retention.bytes"], (Some("-1".to_string()), 1));
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// The request-level rules clients do not exercise: duplicates, unknown operations and
/// resource types, keys filters, documentation.
#[test]
fn request_level_rules_follow_kafka() {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let node = node(&[]);
    for t in ["rules", "dup"] {
        let r = one(&node, "ck", json!({"op": "create", "name": t, "partitions": 1}));
        assert_error(&r, None, "create");
    }
    let mut c = Client::connect(node.bootstrap());
    let cfg = |name: &str, op: i8, value: Option<&str>| {
        AlterableConfig::default().with_name(s(name)).with_config_operation(op).with_value(value.map(s))
    };
    let res = |kind: i8, name: &str, configs: Vec<AlterableConfig>| {
        AlterConfigsResource::default().with_resource_type(kind).with_resource_name(s(name)).with_configs(configs)
    };
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        res(2, "dup", vec![cfg("retention.ms", 0, Some("1000"))]),
        res(2, "dup", vec![cfg("retention.bytes", 0, Some("1000"))]),
        res(4, "0", vec![cfg("log.retention.ms", 0, Some("1")), cfg("log.retention.ms", 1, None)]),
        res(2, "rules", vec![cfg("retention.ms", 9, Some("1"))]),
        res(8, "0", vec![cfg("root", 0, Some("INFO"))]),
        res(4, "", vec![cfg("log.retention.ms", 0, None)]),
        res(4, "zero", vec![]),
        res(2, "bad name!", vec![]),
    ]);
    c.send(ApiKey::IncrementalAlterConfigs, 1, &request);
    let response: IncrementalAlterConfigsResponse = c.recv(ApiKey::IncrementalAlterConfigs, 1);
    let codes: Vec<i16> = response.responses.iter().map(|r| r.error_code).collect();
    // Both copies of a duplicated resource fail; duplicate keys, an unknown operation or
    // resource type, a null SET and a non-numeric broker id are INVALID_REQUEST.
    assert_eq!(codes, vec![42, 42, 42, 42, 42, 42, 42, 17], "{response:?}");
    assert!(response.responses.iter().all(|r| r.error_message.is_some()));

    let request = DescribeConfigsRequest::default()
        .with_include_documentation(true)
        .with_include_synonyms(true)
        .with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("rules"))
                .with_configuration_keys(Some(vec![s("retention.ms"), s("not.a.config")])),
            DescribeConfigsResource::default().with_resource_type(4).with_resource_name(s("1")),
        ]);
    c.send(ApiKey::DescribeConfigs, 4, &request);
    let response: DescribeConfigsResponse = c.recv(ApiKey::DescribeConfigs, 4);
    let topic = &response.results[0];
    assert_eq!(topic.error_code, 0);
    assert_eq!(topic.configs.len(), 1, "only the keys asked for: {topic:?}");
    let retention = &topic.configs[0];
    assert_eq!((retention.name.as_str(), retention.value.as_deref()), ("retention.ms", Some("604800000")));
    assert_eq!(retention.config_type, 5, "LONG");
    assert!(retention.documentation.as_ref().is_some_and(|d| !d.is_empty()));
    assert_eq!(response.results[1].error_code, 42, "broker 1 is not this node");
    // Nothing of the refused requests applied.
    for t in ["rules", "dup"] {
        let r = describe(&node, "ck", "topic", t);
        expect(&r, "retention.ms", Some("604800000"), "DEFAULT_CONFIG");
        expect(&r, "retention.bytes", Some("-1"), "DEFAULT_CONFIG");
    }
    let b = describe(&node, "ck", "broker", "0");
    expect(&b, "log.retention.ms", None, "DEFAULT_CONFIG");
}
