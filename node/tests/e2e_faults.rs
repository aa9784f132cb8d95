//! Faults the node meets: the panic policy (any panic aborts the node; a restart recovers
//! every acknowledged record from the log).

mod support;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;
use support::json::Json;
use support::{ck_produce_all, create_topic, py_json, run_py_timeout, Node};

#[test]
fn a_panic_in_a_shard_aborts_the_node_and_a_restart_recovers_every_acknowledged_record() {
    // Inherited by the node started next (nextest runs each test in its own process).
    std::env::set_var("SLUICE_FAULT_PANIC_TOPIC", "boom");
    let mut node = Node::start(&["--set", "num.partitions=4"]);
    std::env::remove_var("SLUICE_FAULT_PANIC_TOPIC");
    create_topic(&node, "kept", 4);
    ck_produce_all(&node, "kept", 0, 3000, &[]);

    let bootstrap = node.bootstrap().to_string();
    let _ = run_py_timeout(
        "ck_produce.py",
        &["--bootstrap", &bootstrap, "--topic", "boom", "--count", "1", "--timeout", "5"],
        Duration::from_secs(30),
    );
    let status = node.wait_exit(Duration::from_secs(15)).unwrap_or_else(|| {
        panic!("the node is still running after a shard panicked\n{}", node.logs(40));
    });
    assert_eq!(status.signal(), Some(libc::SIGABRT), "aborted, not exited: {status}\n{}", node.logs(40));
    let logs = node.logs(200);
    assert!(logs.contains("SLUICE_FAULT_PANIC_TOPIC") && logs.contains("aborting after a panic"), "{logs}");

    node.restart();
    let got = py_json(
        &node,
        "ck_consume.py",
        &["--bootstrap", node.bootstrap(), "--topic", "kept", "--count", "3000", "--timeout", "60"],
    );
    assert_eq!(got["count"].i64(), 3000, "every record acknowledged before the abort: {}", got["errors"]);
    node.stop();
}
