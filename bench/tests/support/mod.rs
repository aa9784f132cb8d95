//! Test support: a real `sluice` node in a child process on its own data directory, with
//! its Kafka listener and admin endpoint on ephemeral ports (`--listen 127.0.0.1:0 --admin
//! 127.0.0.1:0`), both read from its ready line.
//!
//! The node binary is `$SLUICE_BIN`, else `target/debug/sluice` of this workspace (built
//! with `cargo build -p sluice-node` here if it is missing).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A node started for one test, killed when dropped.
pub struct Node {
    child: Child,
    pub kafka: String,
    pub admin: String,
    pub dir: PathBuf,
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
    // The build's own target directory (CARGO_TARGET_DIR, when set, moves it).
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), PathBuf::from);
    let bin = target.join("debug/sluice");
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

/// The value of `name=` in the node's ready line.
fn ready_field(line: &str, name: &str) -> String {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{name}=ADDR in the ready line {line:?}"))
        .to_string()
}

/// Starts a node with shards on `cores` (`--cores`, e.g. "0" or "0-1") in a fresh directory
/// named after `name`, and waits for its ready line.
pub fn start_node(name: &str, cores: &str) -> Node {
    let dir = std::env::temp_dir().join(format!("sluice-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut child = Command::new(node_binary())
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--cores", cores, "--data-dir"])
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
    let (kafka, admin) = (ready_field(&line, "kafka"), ready_field(&line, "admin"));
    Node { child, kafka, admin, dir }
}
