//! Faults the node meets: the panic policy (any panic aborts the node; a restart recovers
//! every acknowledged record from the log).

mod support;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;
use support::json::Json;
use support::{ck_produce_all, create_topic, py_json, run_py_timeout, Bg, Node};

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

/// Mounts a tmpfs of `mib` MiB on `dir` (the suite runs as root); unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, mib: u32) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount(8)");
        assert!(out.status.success(), "mounting a tmpfs (needs root): {}", String::from_utf8_lossy(&out.stderr));
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_loses_and_exposes_nothing_and_produce_resumes_by_itself_once_space_returns() {
    let root = sluice::testing::TempDir::new("diskfull");
    let mnt = root.path().join("mnt");
    let _tmpfs = Tmpfs::mount(&mnt, 48);
    let data = mnt.join("data");
    let data_arg = data.to_string_lossy().into_owned();
    let mut node = Node::start(&[
        "--cores",
        "0",
        "--data-dir",
        &data_arg,
        "--set",
        "offsets.topic.num.partitions=1",
        "--set",
        "transaction.state.log.num.partitions=1",
    ]);
    create_topic(&node, "full", 2);
    // Leave about 1 MiB free: the producer below writes about 2.5 MiB.
    let free = || {
        let out = std::process::Command::new("df").args(["-B1", "--output=avail"]).arg(&mnt).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim().parse::<u64>().unwrap()
    };
    let filler = mnt.join("filler");
    let fill = free().saturating_sub(1 << 20);
    std::fs::write(&filler, vec![7u8; fill as usize]).unwrap();

    let count = 12_000usize;
    let bootstrap = node.bootstrap().to_string();
    let args: Vec<String> = [
        "--client",
        "ck",
        "--bootstrap",
        &bootstrap,
        "--topic",
        "full",
        "--count",
        &count.to_string(),
        "--value-size",
        "150",
        "--idempotence",
        "--rate",
        "3000",
        "--progress",
        "0.2",
        "--report-acks",
        "--timeout",
        "120",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut prod = Bg::py("diskfull-producer", "prod_produce.py", &args);
    let progress = |bg: &Bg| -> (i64, i64) {
        bg.events()
            .iter()
            .rev()
            .find(|e| !e["progress"].is_null())
            .map_or((0, 0), |e| (e["acked"].i64(), e["errors"].i64()))
    };
    support::wait_for(
        "the disk to fill",
        Duration::from_secs(60),
        || node.logs(20),
        || node.logs(2000).contains("No space left on device"),
    );
    // Acks of records written before the disk filled may still be on their way: let them
    // land. Then produce stalls while the disk stays full (a repair that cuts a partial batch
    // frees a few KiB, which may let a batch or two through: a few dozen records at most).
    std::thread::sleep(Duration::from_secs(1));
    let stuck_at = progress(&prod).0;
    std::thread::sleep(Duration::from_secs(2));
    let still = progress(&prod).0;
    assert!(still - stuck_at < 100, "produce stalls while the disk is full ({stuck_at} -> {still} acks in 2 s)");
    std::fs::remove_file(&filler).unwrap();
    let freed_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!(prod.wait(Duration::from_secs(150)).is_some(), "the producer finished\n{}", prod.logs(20));
    let line = prod.lines().into_iter().rev().find(|l| l.starts_with("{\"client\"")).expect("a result line");
    let out = support::json::parse(&line).unwrap();
    // When did acknowledgements resume (the script's acks carry their wall-clock ms)?
    let first_after = out["acks"]
        .arr()
        .iter()
        .map(|a| a.arr()[3].i64())
        .filter(|t| *t >= freed_ms)
        .min()
        .expect("acks after the space was freed");
    let resumed_ms = first_after - freed_ms;
    eprintln!("figure: disk full at ~{stuck_at} acks; the first ack {resumed_ms} ms after space was freed");
    assert!(resumed_ms < 10_000, "produce resumed by itself within seconds, not {resumed_ms} ms");
    assert_eq!(
        (out["acked"].i64(), out["errors"].i64()),
        (count as i64, 0),
        "every message acknowledged in the end: {}",
        out["error_samples"]
    );

    // Every acknowledged record is there once, at its offset, and nothing else: no partial
    // batch was ever served (a consumer would fail on one).
    let got = py_json(
        &node,
        "ck_consume.py",
        &["--bootstrap", node.bootstrap(), "--topic", "full", "--count", &count.to_string(), "--timeout", "60"],
    );
    assert_eq!(got["count"].i64(), count as i64, "{}", got["errors"]);
    assert!(got["errors"].arr().is_empty(), "the consumer met no error: {}", got["errors"]);
    let mut at: std::collections::BTreeMap<(i64, i64), i64> = std::collections::BTreeMap::new();
    for (p, records) in got["partitions"].obj() {
        for r in records.arr() {
            let i: i64 = r["v"].str().trim_end_matches('.').trim_start_matches("val-").parse().unwrap();
            assert!(at.insert((p.parse().unwrap(), r["o"].i64()), i).is_none());
        }
    }
    for a in out["acks"].arr() {
        let a = a.arr();
        assert_eq!(at.get(&(a[1].i64(), a[2].i64())), Some(&a[0].i64()), "ack {a:?} is where it was acknowledged");
    }
    node.stop(); // SIGTERM after the episode: exit 0 (asserted by stop)
}
