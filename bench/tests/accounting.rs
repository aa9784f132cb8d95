//! Accounting is exact: a fixed message count run end to end against a real node gives
//! produced == acknowledged == consumed == count, and both histograms hold exactly `count`
//! samples (warm-up 0, so every record is measured).
//!
//! The node: `support::start_node` (`$SLUICE_BIN`, else `target/debug/sluice`).

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::{start_node, Node};

/// The unsigned integer `result[section][name]` of a result.json.
fn field(result: &Value, section: &str, name: &str) -> u64 {
    result[section][name].as_u64().unwrap_or_else(|| panic!("{section}.{name} is not an unsigned integer in {result}"))
}

/// The signed integer `result[section][name]` of a result.json.
fn signed(result: &Value, section: &str, name: &str) -> i64 {
    result[section][name].as_i64().unwrap_or_else(|| panic!("{section}.{name} is not an integer in {result}"))
}

/// The result.json `sluice-bench` wrote into `out`.
fn result(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("result.json")).expect("result.json");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("result.json is not JSON ({e}): {text}"))
}

/// `sluice-bench ARGS --bootstrap NODE --quiet 1 --out OUT`.
fn bench(node: &Node, out: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice-bench"));
    cmd.args(args).args(["--bootstrap", &node.kafka, "--quiet", "1", "--out"]).arg(out);
    cmd
}

fn run_bench(node: &Node, out: &Path, extra: &[&str]) -> Value {
    let args: Vec<&str> = ["e2e"].iter().chain(extra).copied().collect();
    let output = bench(node, out, &args).output().expect("running sluice-bench");
    assert!(
        output.status.success(),
        "sluice-bench failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    result(out)
}

fn assert_exact(json: &Value, count: u64) {
    assert_eq!(field(json, "accounting", "produced"), count, "{json}");
    assert_eq!(field(json, "accounting", "acknowledged"), count, "{json}");
    assert_eq!(field(json, "accounting", "errors"), 0, "{json}");
    assert_eq!(field(json, "accounting", "consumed"), count, "{json}");
    assert_eq!(field(json, "produce_ack_latency", "samples"), count, "{json}");
    assert_eq!(field(json, "end_to_end_latency", "samples"), count, "{json}");
}

/// Closed loop, 2 producers × 2 connections, keyed records over 4 partitions, 2 consumers.
#[test]
fn closed_loop_counts_every_record_once() {
    let node = start_node("closed", "0");
    let count = 30_000;
    let json = run_bench(
        &node,
        &node.dir.join("out"),
        &[
            "--topic",
            "acct-closed",
            "--partitions",
            "4",
            "--producers",
            "2",
            "--connections",
            "2",
            "--consumers",
            "2",
            "--keys",
            "uniform",
            "--size",
            "uniform:16-400",
            "--count",
            &count.to_string(),
        ],
    );
    assert_exact(&json, count);
}

/// Open loop at a target rate, acks=all, zstd: the same exact counts.
#[test]
fn open_loop_compressed_counts_every_record_once() {
    let node = start_node("open", "0");
    let count = 10_000;
    let json = run_bench(
        &node,
        &node.dir.join("out"),
        &[
            "--topic",
            "acct-open",
            "--partitions",
            "3",
            "--acks",
            "all",
            "--compression",
            "zstd",
            "--size",
            "200",
            "--rate",
            "20000",
            "--count",
            &count.to_string(),
        ],
    );
    assert_exact(&json, count);
}

/// The group preset forms a real consumer group (3 members, 6 partitions) before the clock
/// starts: exact counts, no rebalance during the run, and the group's committed offsets end
/// at the log end (every record committed once, none past the end).
#[test]
fn group_preset_counts_and_commits_every_record() {
    let node = start_node("group", "0");
    let count = 30_000;
    let out = node.dir.join("out");
    let output = bench(
        &node,
        &out,
        &["preset", "np-npart-group", "--topic", "acct-group", "--warmup", "0", "--count", &count.to_string()],
    )
    .output()
    .expect("running sluice-bench");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json = result(&out);
    assert_exact(&json, count);
    assert_eq!(field(&json, "group", "rebalances"), 0, "{json}");
    assert_eq!(signed(&json, "group", "committed_total"), count as i64, "{json}");
    assert_eq!(signed(&json, "group", "positions_total"), count as i64, "{json}");
}

/// A second harness process joins the same group mid-run and leaves again: partitions are
/// handed over through committed offsets both ways, so the two processes together consume
/// every record exactly once.
#[test]
fn group_shared_by_two_processes_hands_partitions_over_exactly() {
    let node = start_node("group2", "0");
    let count: u64 = 40_000;
    let group = format!("acct-shared-{}", std::process::id());
    let out_a = node.dir.join("out-a");
    let out_b = node.dir.join("out-b");
    // A: 2 consumers, 8 s of open-loop production.
    let mut a = bench(
        &node,
        &out_a,
        &[
            "e2e",
            "--topic",
            "acct-shared",
            "--partitions",
            "6",
            "--consumers",
            "2",
            "--group",
            &group,
            "--rate",
            "5000",
            "--count",
            &count.to_string(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("starting sluice-bench A");
    // B joins once A's group has formed (3 s initial rebalance delay) and stays 3 s.
    std::thread::sleep(std::time::Duration::from_secs(5));
    let b = bench(
        &node,
        &out_b,
        &[
            "consume",
            "--from",
            "latest",
            "--topic",
            "acct-shared",
            "--partitions",
            "6",
            "--group",
            &group,
            "--duration",
            "3",
        ],
    )
    .output()
    .expect("running sluice-bench B");
    assert!(b.status.success(), "B failed: {}", String::from_utf8_lossy(&b.stderr));
    assert!(a.wait().expect("waiting for A").success(), "A failed");
    let ja = result(&out_a);
    let jb = result(&out_b);
    assert_eq!(field(&ja, "accounting", "produced"), count, "{ja}");
    assert_eq!(field(&ja, "accounting", "acknowledged"), count, "{ja}");
    let consumed_a = field(&ja, "accounting", "consumed");
    let consumed_b = field(&jb, "accounting", "consumed");
    assert!(consumed_b > 0, "B was assigned partitions and read from them: {jb}");
    assert_eq!(consumed_a + consumed_b, count, "A {consumed_a} + B {consumed_b}:\n{ja}\n{jb}");
    assert!(field(&ja, "group", "rebalances") >= 2, "B's join and leave rebalance A: {ja}");
    assert_eq!(signed(&ja, "group", "committed_total"), count as i64, "{ja}");
}

/// Idempotent producers (`--idempotent 1`): a `produce --count` run (2 producers × 2
/// connections, keyed records over 5 partitions, uncompressed) and an end-to-end run with lz4
/// (the crate's encoder) are exact and error-free, and on the node's disk every batch carries
/// a producer id and epoch, and each producer's base sequences per partition run 0, then the
/// previous base sequence + the previous record count, without a gap.
#[test]
fn idempotent_batches_carry_contiguous_sequences() {
    let node = start_node("idem", "0");
    let count = 20_000u64;
    let out = node.dir.join("out-produce");
    let output = bench(&node, &out, &["produce"])
        .args(["--topic", "idem-plain", "--partitions", "5", "--producers", "2", "--connections", "2"])
        .args(["--keys", "uniform", "--size", "uniform:16-400", "--idempotent", "1", "--count", &count.to_string()])
        .output()
        .expect("running sluice-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "sluice-bench failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("acks -1") && stdout.contains("idempotent yes"), "{stdout}");
    let json = result(&out);
    assert_eq!(json["idempotent"], Value::Bool(true), "{json}");
    assert_eq!(field(&json, "accounting", "produced"), count, "{json}");
    assert_eq!(field(&json, "accounting", "acknowledged"), count, "{json}");
    assert_eq!(field(&json, "accounting", "errors"), 0, "{json}");
    assert_eq!(field(&json, "produce_ack_latency", "samples"), count, "{json}");
    assert!(json["error"].is_null(), "{json}");
    assert_sequences(&node, "idem-plain", 5, count, 2);

    let json = run_bench(
        &node,
        &node.dir.join("out-e2e"),
        &[
            "--topic",
            "idem-lz4",
            "--partitions",
            "3",
            "--connections",
            "2",
            "--compression",
            "lz4",
            "--size",
            "200",
            "--idempotent",
            "1",
            "--count",
            &count.to_string(),
        ],
    );
    assert_exact(&json, count);
    assert_sequences(&node, "idem-lz4", 3, count, 1);
}

/// Reads the v2 batch headers of `topic`'s segment files on the node's disk and checks the
/// producer fields: every batch has a producer id ≥ 0 and an epoch ≥ 0, and per partition
/// each producer id's base sequences start at 0 and each is the previous one plus the
/// previous batch's record count. `count` records in all, from `producers` producer ids.
fn assert_sequences(node: &Node, topic: &str, partitions: i32, count: u64, producers: usize) {
    let be = |b: &[u8], at: usize, n: usize| b[at..at + n].iter().fold(0u64, |v, &x| v << 8 | x as u64);
    let mut records = 0u64;
    let mut ids = std::collections::BTreeSet::new();
    for p in 0..partitions {
        let dir = node.dir.join("data").join(format!("{topic}-{p}"));
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .filter(|f| f.extension().is_some_and(|x| x == "log"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no .log file in {}", dir.display());
        // Producer id → (epoch, next base sequence).
        let mut next: std::collections::HashMap<i64, (i16, i32)> = Default::default();
        let mut batches = 0;
        for file in files {
            let log = std::fs::read(&file).expect("reading the segment");
            let mut at = 0;
            while at + 61 <= log.len() {
                let b = &log[at..];
                let base_offset = be(b, 0, 8) as i64;
                let length = be(b, 8, 4) as usize;
                assert_eq!(b[16], 2, "{topic}-{p}@{base_offset}: magic");
                let producer_id = be(b, 43, 8) as i64;
                let epoch = be(b, 51, 2) as u16 as i16;
                let base_sequence = be(b, 53, 4) as u32 as i32;
                let record_count = be(b, 57, 4) as u32 as i32;
                let what = format!(
                    "{topic}-{p}@{base_offset}: producer id {producer_id} epoch {epoch} base sequence {base_sequence}, {record_count} records"
                );
                assert!(producer_id >= 0 && epoch >= 0, "{what}: no producer id");
                let (want_epoch, want_seq) = next.get(&producer_id).copied().unwrap_or((epoch, 0));
                assert_eq!((epoch, base_sequence), (want_epoch, want_seq), "{what}: sequence gap or epoch change");
                next.insert(producer_id, (epoch, base_sequence + record_count));
                ids.insert(producer_id);
                records += record_count as u64;
                batches += 1;
                at += 12 + length;
            }
            assert_eq!(at, log.len(), "{}: a partial batch at the end", file.display());
        }
        assert!(batches > 0, "{topic}-{p}: no batches");
    }
    assert_eq!(records, count, "{topic}: records on disk");
    assert_eq!(ids.len(), producers, "{topic}: producer ids {ids:?}");
}

/// `--idempotent 1` refuses what Kafka's producer refuses with enable.idempotence: acks 0
/// or 1, and more than 5 requests in flight per connection.
#[test]
fn idempotent_needs_acks_all_and_at_most_five_in_flight() {
    for (extra, want) in [(["--acks", "1"], "needs --acks all"), (["--in-flight", "6"], "at most --in-flight 5")] {
        let output = Command::new(env!("CARGO_BIN_EXE_sluice-bench"))
            .args(["produce", "--bootstrap", "127.0.0.1:1", "--idempotent", "1"])
            .args(extra)
            .output()
            .expect("running sluice-bench");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains(want), "{extra:?}: {stderr}");
    }
}
