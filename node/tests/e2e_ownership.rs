//! One owner per data directory and per address (issue #14, Build 3): a second node on a
//! running node's data directory, Kafka address or admin address refuses to start, says
//! why, and leaves the first one serving; the lock goes with the node that held it.

mod support;

use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use sluice::testing::TempDir;
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime};
use support::wire::Client;
use support::{free_port, http_get, run, sluice_command, Node};

/// A refused start must end within this (it fails before opening any partition).
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a second `sluice` on `data_dir` with `listen`/`admin` and returns how it ended
/// (panics if it is still running after `REFUSAL_TIMEOUT`, e.g. because it started).
fn second_node(data_dir: &Path, listen: &str, admin: &str) -> Output {
    let mut cmd = sluice_command();
    cmd.args(["--cores", "0", "--listen", listen, "--admin", admin, "--data-dir"]).arg(data_dir);
    run(cmd, None, REFUSAL_TIMEOUT)
}

fn assert_refused(out: &Output, wanted: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "the second node did not refuse ({})\n{stdout}\n{stderr}", out.status);
    assert!(!stdout.contains("sluice: ready"), "the second node got ready:\n{stdout}");
    for w in wanted {
        assert!(stderr.contains(w), "the refusal does not mention {w:?}:\n{stderr}");
    }
    stderr
}

/// Every file under `dir` with its length and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            out.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    out
}

/// ApiVersions on a new connection answers, and a topic can be created (the node writes).
fn serves(node: &Node, topic: &str) {
    let mut c = Client::connect(node.bootstrap());
    c.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let r: ApiVersionsResponse = c.recv(ApiKey::ApiVersions, 3);
    assert_eq!(r.error_code, 0);
    assert!(!r.api_keys.is_empty());
    c.create_topic(topic, 2);
}

#[test]
fn a_second_node_on_the_same_data_dir_is_refused_and_the_lock_goes_with_the_first() {
    let mut node = Node::start(&["--cores", "0"]);
    serves(&node, "before");
    let dir = node.data_dir().to_path_buf();
    assert!(dir.join(".lock").is_file(), "no .lock in {}", dir.display());
    let before = snapshot(&dir);

    let out = second_node(&dir, "127.0.0.1:0", "127.0.0.1:0");
    let shown = std::path::absolute(&dir).unwrap().display().to_string();
    assert_refused(&out, &[&shown, ".lock", "in use"]);
    assert_eq!(snapshot(&dir), before, "the refused node changed the data directory");
    assert!(node.is_running());
    serves(&node, "after");

    // A clean stop releases the lock: the next node on the directory starts and has the topics.
    node.restart();
    serves(&node, "after-restart");
    // So does a crash: the kernel drops the lock with the process's descriptors.
    node.kill();
    node.restart();
    serves(&node, "after-crash");
}

/// Kafka takes its `.lock` with fcntl record locks (Java's FileChannel.tryLock), which flock
/// does not see; the node takes one too, so a Kafka broker on the directory keeps it out.
#[test]
fn a_directory_locked_with_fcntl_as_kafka_does_is_refused() {
    let dir = TempDir::new("kafka-locked");
    let lock = std::fs::File::create(dir.path().join(".lock")).unwrap();
    // SAFETY: an all-zero struct flock is valid; fcntl reads it during the call.
    let mut range: libc::flock = unsafe { std::mem::zeroed() };
    range.l_type = libc::F_WRLCK as libc::c_short;
    range.l_whence = libc::SEEK_SET as libc::c_short;
    assert_eq!(unsafe { libc::fcntl(lock.as_raw_fd(), libc::F_SETLK, &range) }, 0, "taking the POSIX lock");
    let before = snapshot(dir.path());
    let out = second_node(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
    assert_refused(&out, &[".lock", "fcntl"]);
    assert_eq!(snapshot(dir.path()), before, "the refused node changed the data directory");
}

#[test]
fn a_second_node_on_the_same_kafka_or_admin_address_is_refused() {
    let node = Node::start(&["--cores", "0"]);
    let other = TempDir::new("second-node");

    let out = second_node(other.path(), node.bootstrap(), "127.0.0.1:0");
    assert_refused(&out, &[node.bootstrap(), "in use", "--listen"]);

    let admin = node.admin().expect("the node has an admin listener");
    let out = second_node(other.path(), "127.0.0.1:0", admin);
    assert_refused(&out, &[admin, "in use", "--admin"]);

    // The first node keeps both: new connections reach it (none went to a second listener).
    for i in 0..4 {
        serves(&node, &format!("still-mine-{i}"));
    }
    assert_eq!(http_get(admin, "/metrics").0, 200);
}

/// Connections the node closes itself linger in TIME_WAIT on its port; they must not make the
/// address probe of the next start on the same port refuse it.
#[test]
fn a_restart_on_the_same_ports_is_not_refused_by_its_own_closed_connections() {
    let (kafka, admin) = (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
    let mut node = Node::start(&["--cores", "0", "--listen", &kafka, "--admin", &admin]);
    serves(&node, "t");
    // The admin endpoint closes each connection after its answer; the Kafka connection left
    // open is closed by the node when it stops.
    for _ in 0..3 {
        assert_eq!(http_get(&admin, "/metrics").0, 200);
    }
    let _open = Client::connect(node.bootstrap());
    node.stop();
    node.restart();
    assert_eq!(node.bootstrap(), kafka);
    assert_eq!(node.admin(), Some(admin.as_str()));
    serves(&node, "t2");
}
