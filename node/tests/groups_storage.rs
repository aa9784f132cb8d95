//! Committed offsets in `__consumer_offsets` (issue 5, build item 2): every commit is in the
//! log before it is acknowledged, a SIGKILL loses none, and the topic stays small however
//! many commits it takes (the coordinator compacts it to one record per live key).

mod support;

use support::json::Json;
use support::{py_json, Node};

/// Bytes of all files in a directory.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

#[test]
fn commits_survive_sigkill_and_the_offsets_topic_is_compacted() {
    let segment = 16_384u64;
    let seg_setting = format!("offsets.topic.segment.bytes={segment}");
    let mut node = Node::start(&[
        "--cores",
        "0-1",
        "--set",
        "offsets.topic.num.partitions=2",
        "--set",
        &seg_setting,
        "--set",
        "num.partitions=4",
    ]);
    let rounds = 400;
    let groups = 5;
    let args = |bootstrap: &str, mode: &str| -> Vec<String> {
        vec![
            "--bootstrap".into(),
            bootstrap.to_string(),
            "--topic".into(),
            "commit-loop".into(),
            "--mode".into(),
            mode.into(),
            "--rounds".into(),
            rounds.to_string(),
            "--groups".into(),
            groups.to_string(),
        ]
    };
    let write_args = args(node.bootstrap(), "write");
    let written = py_json(&node, "grp_commit_loop.py", &write_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(written["commits"].i64(), rounds * groups);
    let expected: Vec<i64> = (0..4).map(|p| (rounds - 1) * 10 + p).collect();
    let check = |v: &support::json::Value, when: &str| {
        for (group, offsets) in v["committed"].obj() {
            let got: Vec<i64> = offsets.arr().iter().map(|o| o.i64()).collect();
            assert_eq!(got, expected, "{when}: group {group} committed offsets");
        }
        assert_eq!(v["committed"].obj().len(), groups as usize, "{when}: every group is there");
    };
    check(&written, "before the kill");

    // 2000 commits of 4 offsets each: about 8000 records, several hundred KiB uncompacted.
    // Compaction runs about once a second; give it a few.
    let dirs: Vec<_> = (0..2).map(|p| node.data_dir().join(format!("__consumer_offsets-{p}"))).collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let bound = 3 * segment + 32_768;
    loop {
        let sizes: Vec<u64> = dirs.iter().map(|d| dir_bytes(d)).collect();
        if sizes.iter().all(|s| *s <= bound) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "__consumer_offsets partitions stayed large: {sizes:?} bytes (bound {bound})\n{}",
            node.logs(40)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    node.kill();
    node.restart();
    let read_args = args(node.bootstrap(), "read");
    let read = py_json(&node, "grp_commit_loop.py", &read_args.iter().map(String::as_str).collect::<Vec<_>>());
    check(&read, "after SIGKILL and restart");
}
