//! Issue #13 Show 3 through real admin clients (clients/records_admin.py): DeleteRecords moves
//! the low watermark, consumers from the beginning start there, and it survives a SIGKILL;
//! DescribeLogDirs reports each partition's size; DescribeProducers lists the idempotent
//! producer with its last sequence.

mod support;

use std::time::Duration;
use support::json::Json;
use support::{create_topic, py_json_timeout, Node};

#[test]
fn delete_records_describe_log_dirs_and_describe_producers() {
    let mut node = Node::start(&["--cores", "0-1"]);
    let topic = "trimmed";
    create_topic(&node, topic, 3);
    let args =
        ["--bootstrap", node.bootstrap(), "--topic", topic, "--partitions", "3", "--count", "300", "--delete-to", "40"];
    let v = py_json_timeout(&node, "records_admin.py", &args, Duration::from_secs(90));
    eprintln!("records_admin.py: {v}");

    // DeleteRecords: partition 0 to 40, partition 1 to its high watermark (100 records each).
    assert_eq!(v["deleted"]["0"].i64(), 40, "partition 0's new low watermark: {v}\n{}", node.logs(30));
    assert_eq!(v["deleted"]["1"].i64(), 100, "partition 1 trimmed to its high watermark: {v}");
    assert_eq!(v["past_end_error"].str(), "OffsetOutOfRangeError", "deleting past the end: {v}");
    assert_eq!(v["first_offset_p0"].i64(), 40, "a consumer from the beginning starts at the low watermark: {v}");

    // DescribeLogDirs: the data directory, every partition of the topic with a size.
    let dirs = v["log_dirs"].arr();
    assert_eq!(dirs.len(), 1, "one log dir: {v}");
    let want_dir = std::fs::canonicalize(node.data_dir()).unwrap();
    assert_eq!(dirs[0]["dir"].str(), want_dir.to_str().unwrap(), "{v}");
    assert_eq!(dirs[0]["error"].i64(), 0, "{v}");
    for p in 0..3 {
        let size = dirs[0]["sizes"][format!("{topic}/{p}").as_str()].i64();
        let on_disk: u64 = std::fs::read_dir(node.data_dir().join(format!("{topic}-{p}")))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert_eq!(size as u64, on_disk, "{topic}/{p}: DescribeLogDirs size vs the .log files on disk: {v}");
    }
    assert!(dirs[0]["sizes"][format!("{topic}/2").as_str()].i64() > 0, "partition 2 kept its records: {v}");

    // DescribeProducers: one idempotent producer per partition, 100 records each (sequences 0..99).
    for p in 0..3 {
        let list = v["producers"][p.to_string().as_str()].arr();
        assert_eq!(list.len(), 1, "partition {p}: one active producer: {v}");
        assert_eq!(list[0][2].i64(), 99, "partition {p}: last sequence of 100 records: {v}");
    }

    // The low watermark is checkpointed: a SIGKILL does not bring records 0..39 back.
    node.kill();
    node.restart();
    let w = py_json_timeout(
        &node,
        "offsets.py",
        &["--client", "ck", "--bootstrap", node.bootstrap(), "--topic", topic],
        Duration::from_secs(60),
    );
    assert_eq!(
        w["watermarks"]["0"].arr()[0].i64(),
        40,
        "partition 0's earliest offset after a SIGKILL: {w}\n{}",
        node.logs(30)
    );
    assert_eq!(w["watermarks"]["1"].arr()[0].i64(), 100, "partition 1's earliest offset after a SIGKILL: {w}");
    assert_eq!(w["watermarks"]["2"].arr()[0].i64(), 0, "partition 2 untouched: {w}");
}

/// Issue #13 Build 6: asked for authorized operations (librdkafka's describe_topics,
/// describe_cluster, describe_consumer_groups), a node without an authorizer answers every
/// operation of the resource type, as Kafka does; not asked, none.
#[test]
fn authorized_operations_are_every_supported_operation_when_asked() {
    let node = Node::start(&["--set", "group.initial.rebalance.delay.ms=0"]);
    let topic = "ops";
    create_topic(&node, topic, 1);
    let v = py_json_timeout(
        &node,
        "authorized_ops.py",
        &["--bootstrap", node.bootstrap(), "--topic", topic, "--group", "ops-group"],
        Duration::from_secs(60),
    );
    eprintln!("authorized_ops.py: {v}");
    let names = |key: &str| -> Vec<String> { v[key].arr().iter().map(|x| x.str().to_string()).collect() };
    let want = |ops: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ops.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(
        names("topic"),
        want(&["READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"]),
        "{v}"
    );
    assert_eq!(
        names("cluster"),
        want(&[
            "CREATE",
            "CLUSTER_ACTION",
            "DESCRIBE_CONFIGS",
            "ALTER_CONFIGS",
            "IDEMPOTENT_WRITE",
            "ALTER",
            "DESCRIBE"
        ]),
        "{v}"
    );
    assert_eq!(names("group"), want(&["READ", "DESCRIBE", "DELETE"]), "{v}");
    for key in ["topic_off", "cluster_off", "group_off"] {
        assert!(v[key].is_null() || v[key].arr().is_empty(), "{key}: not asked, none: {v}");
    }
}
