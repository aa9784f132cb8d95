//! Accounting is exact: a fixed message count run end to end against a real node gives
//! produced == acknowledged == consumed == count, and both histograms hold exactly `count`
//! samples (warm-up 0, so every record is measured).
//!
//! The node binary is `$SLUICE_BIN`, else `target/debug/sluice` of this workspace (built
//! with `cargo build -p sluice-node` here if it is missing).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A node started for one test, killed when dropped.
struct Node {
    child: Child,
    kafka: String,
    dir: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn node_binary() -> PathBuf {
    if let Ok(bin) = std::env::var("SLUICE_BIN") {
        return PathBuf::from(bin);
    }
    let workspace =
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("bench/ is inside the workspace").to_path_buf();
    let bin = workspace.join("target/debug/sluice");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "sluice-node"])
            .current_dir(&workspace)
            .status()
            .expect("running cargo build -p sluice-node");
        assert!(status.success(), "cargo build -p sluice-node failed");
    }
    bin
}

fn start_node(name: &str) -> Node {
    let dir = std::env::temp_dir().join(format!("sluice-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut child = Command::new(node_binary())
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--cores", "0", "--data-dir"])
        .arg(dir.join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the node");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    let mut reader = BufReader::new(stdout);
    while !line.contains("sluice: ready") {
        line.clear();
        if reader.read_line(&mut line).expect("reading the node's stdout") == 0 {
            let _ = child.kill();
            panic!("the node exited before it was ready");
        }
    }
    // Keep draining stdout so the node never blocks on a full pipe.
    std::thread::spawn(move || for _ in reader.lines() {});
    let kafka = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("kafka="))
        .expect("kafka=ADDR in the ready line")
        .to_string();
    Node { child, kafka, dir }
}

/// The integer value of `"name":N` in the result JSON (first occurrence after `after`).
fn field(json: &str, after: &str, name: &str) -> u64 {
    let from = json.find(after).unwrap_or_else(|| panic!("{after} in result.json"));
    let rest = &json[from..];
    let at = rest.find(&format!("\"{name}\":")).unwrap_or_else(|| panic!("{name} in {after}")) + name.len() + 3;
    let digits: String = rest[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().expect("a number")
}

fn run_bench(node: &Node, out: &Path, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice-bench"))
        .args(["e2e", "--bootstrap", &node.kafka, "--quiet", "1", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .expect("running sluice-bench");
    assert!(
        output.status.success(),
        "sluice-bench failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read_to_string(out.join("result.json")).expect("result.json")
}

fn assert_exact(json: &str, count: u64) {
    assert_eq!(field(json, "\"accounting\"", "produced"), count, "{json}");
    assert_eq!(field(json, "\"accounting\"", "acknowledged"), count, "{json}");
    assert_eq!(field(json, "\"accounting\"", "errors"), 0, "{json}");
    assert_eq!(field(json, "\"accounting\"", "consumed"), count, "{json}");
    assert_eq!(field(json, "\"produce_ack_latency\"", "samples"), count, "{json}");
    assert_eq!(field(json, "\"end_to_end_latency\"", "samples"), count, "{json}");
}

/// Closed loop, 2 producers × 2 connections, keyed records over 4 partitions, 2 consumers.
#[test]
fn closed_loop_counts_every_record_once() {
    let node = start_node("closed");
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
    let node = start_node("open");
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
