//! End-to-end test support: a real `sluice` node in a child process, and the client tools
//! (kcat, the Python scripts under `node/tests/clients/`) run against it with timeouts.
//!
//! The node is started with `--listen 127.0.0.1:0 --admin 127.0.0.1:0` on its own data
//! directory and announces itself with one stdout line:
//! `sluice: ready kafka=127.0.0.1:PORT admin=127.0.0.1:PORT shards=N` (admin=- without admin).
//! `SLUICE_BIN` overrides the binary (e.g. a release build); default: cargo's `sluice`.
#![allow(dead_code)]

pub mod cluster;
pub mod json;
pub mod wire;

use sluice::testing::TempDir;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a node may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time limit of one client script or kcat run.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// Root of the repository (the workspace).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn sluice_bin() -> PathBuf {
    match std::env::var_os("SLUICE_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_sluice")),
    }
}

/// Lines a child wrote to one of its pipes, kept for failure messages.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn push(&self, line: String) {
        let mut v = self.0.lock().unwrap();
        // Bounded: a chatty node must not grow the test's memory without limit.
        if v.len() >= 20_000 {
            v.drain(..10_000);
        }
        v.push(line);
    }

    fn tail(&self, n: usize) -> String {
        let v = self.0.lock().unwrap();
        let start = v.len().saturating_sub(n);
        v[start..].join("\n")
    }
}

/// A running (or stopped) `sluice` node on a private data directory.
pub struct Node {
    child: Option<Child>,
    /// Arguments given to `start`, reused by `restart`.
    args: Vec<String>,
    data: TempDir,
    kafka: String,
    admin: Option<String>,
    shards: usize,
    stdout: Lines,
    stderr: Lines,
    /// Every start of this node so far (1 after `start`).
    starts: usize,
    /// `RLIMIT_NOFILE` (soft and hard) the node runs under, if not the test's.
    nofile: Option<u64>,
}

impl Node {
    /// Starts a node with `args` (e.g. `&["--cores", "0", "--set", "num.partitions=6"]`) on a
    /// fresh data directory, and waits for its ready line.
    pub fn start(args: &[&str]) -> Node {
        Node::start_with_nofile(args, None)
    }

    /// `start`, under `RLIMIT_NOFILE` `nofile` (soft and hard, as `ulimit -n` sets them).
    pub fn start_with_nofile(args: &[&str], nofile: Option<u64>) -> Node {
        let data = TempDir::new("e2e");
        let mut node = Node {
            child: None,
            args: args.iter().map(|s| s.to_string()).collect(),
            data,
            kafka: String::new(),
            admin: None,
            shards: 0,
            stdout: Lines::default(),
            stderr: Lines::default(),
            starts: 0,
            nofile,
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "node already running");
        let bin = sluice_bin();
        let mut cmd = Command::new(&bin);
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--admin")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(self.data.path())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(n) = self.nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec the closure calls only setrlimit, which is
            // async-signal-safe, and allocates nothing.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit { rlim_cur: n, rlim_max: n };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        self.starts += 1;
        let start_no = self.starts;
        let (tx, rx) = mpsc::channel::<String>();
        let out = child.stdout.take().unwrap();
        let stdout = self.stdout.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("sluice: ready ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(line.clone());
                    }
                }
                stdout.push(format!("[start {start_no}] {line}"));
            }
        });
        let err = child.stderr.take().unwrap();
        let stderr = self.stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                stderr.push(format!("[start {start_no}] {line}"));
            }
        });
        let cmdline = format!("{cmd:?}");
        self.child = Some(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        let line = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => break line,
                Err(mpsc::RecvTimeoutError::Disconnected) | Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                        self.child = None;
                        std::thread::sleep(Duration::from_millis(100)); // let the readers drain
                        panic!("sluice exited ({status}) before its ready line\ncommand: {cmdline}\n{}", self.logs(60));
                    }
                    if Instant::now() >= deadline {
                        self.kill();
                        panic!(
                            "sluice printed no ready line within {READY_TIMEOUT:?}\ncommand: {cmdline}\n{}",
                            self.logs(60)
                        );
                    }
                }
            }
        };
        self.parse_ready(&line);
    }

    fn parse_ready(&mut self, line: &str) {
        let (mut kafka, mut admin, mut shards) = (None, None, None);
        for field in line.trim_start_matches("sluice: ready ").split_whitespace() {
            match field.split_once('=') {
                Some(("kafka", v)) => kafka = Some(v.to_string()),
                Some(("admin", "-")) => admin = Some(None),
                Some(("admin", v)) => admin = Some(Some(v.to_string())),
                Some(("shards", v)) => shards = v.parse::<usize>().ok(),
                _ => {}
            }
        }
        let kafka = kafka.unwrap_or_else(|| panic!("ready line without kafka=: {line:?}"));
        assert!(
            kafka.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok_and(|p| p != 0)),
            "ready line with a bad kafka address: {line:?}"
        );
        self.kafka = kafka;
        self.admin = admin.unwrap_or_else(|| panic!("ready line without admin=: {line:?}"));
        self.shards = shards.unwrap_or_else(|| panic!("ready line without shards=N: {line:?}"));
    }

    /// `127.0.0.1:PORT` of the Kafka listener.
    pub fn bootstrap(&self) -> &str {
        &self.kafka
    }

    /// `127.0.0.1:PORT` of the admin HTTP listener, if the node has one.
    pub fn admin(&self) -> Option<&str> {
        self.admin.as_deref()
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(c) => c.try_wait().unwrap().is_none(),
        }
    }

    /// The last `n` lines of the node's stdout and stderr (all starts), for failure messages.
    pub fn logs(&self, n: usize) -> String {
        format!(
            "--- sluice stdout (last {n} lines) ---\n{}\n--- sluice stderr (last {n} lines) ---\n{}",
            self.stdout.tail(n),
            self.stderr.tail(n)
        )
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(c) = self.child.as_ref() {
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            let rc = unsafe { libc::kill(c.id() as libc::pid_t, sig) };
            assert_eq!(rc, 0, "kill({}, {sig}): {}", c.id(), std::io::Error::last_os_error());
        }
    }

    fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` for the node to exit by itself; its status, or `None` if it is
    /// still running (or was not).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = self.wait_timeout(timeout)?;
        self.child = None;
        std::thread::sleep(Duration::from_millis(50)); // let the readers drain
        Some(status)
    }

    /// Clean shutdown: SIGTERM, wait (up to `STOP_TIMEOUT`), and assert exit status 0.
    pub fn stop(&mut self) {
        assert!(self.child.is_some(), "stop: node not running");
        self.signal(libc::SIGTERM);
        let status = self.wait_timeout(STOP_TIMEOUT);
        match status {
            None => {
                self.kill();
                panic!("sluice did not exit within {STOP_TIMEOUT:?} of SIGTERM\n{}", self.logs(60));
            }
            Some(status) => {
                self.child = None;
                std::thread::sleep(Duration::from_millis(50)); // let the readers drain
                assert!(status.success(), "sluice exited with {status} after SIGTERM\n{}", self.logs(60));
            }
        }
    }

    /// SIGKILL (no shutdown at all) and reap. No-op when not running.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the node again on the same data directory and arguments (the port may change:
    /// use `bootstrap()` afterwards). A running node is stopped cleanly first.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs(80));
        }
        self.kill();
    }
}

/// Path of the test venv's Python (created by `scripts/test-deps.sh`).
pub fn python() -> PathBuf {
    let p = repo_root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run `bash scripts/test-deps.sh` (installs kcat and a .venv with \
         confluent-kafka and kafka-python) before these tests",
        p.display()
    );
    p
}

/// `kcat` on PATH.
pub fn kcat() -> PathBuf {
    let found = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|d| d.join("kcat")).find(|p| p.is_file()));
    found.unwrap_or_else(|| panic!("kcat is not installed: run `bash scripts/test-deps.sh` before these tests"))
}

/// Directory of the Python client scripts.
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Runs `node/tests/clients/<script>` with the venv's Python, killed after `CLIENT_TIMEOUT`.
pub fn run_py(script: &str, args: &[&str]) -> Output {
    run_py_timeout(script, args, CLIENT_TIMEOUT)
}

pub fn run_py_timeout(script: &str, args: &[&str], timeout: Duration) -> Output {
    let path = clients_dir().join(script);
    assert!(path.is_file(), "no client script {}", path.display());
    let mut cmd = Command::new(python());
    cmd.arg("-u").arg(&path).args(args).env("PYTHONDONTWRITEBYTECODE", "1");
    run(cmd, None, timeout)
}

/// Runs `cmd` with `stdin` fed from a thread, collects stdout/stderr, and kills it after
/// `timeout` (then panics with what it printed).
pub fn run(mut cmd: Command, stdin: Option<Vec<u8>>, timeout: Duration) -> Output {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let feeder = stdin.map(|bytes| {
        let mut w = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = w.write_all(&bytes);
        })
    });
    let read_all = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = read_all(Box::new(child.stdout.take().unwrap()));
    let err = read_all(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    match status {
        Some(status) => Output { status, stdout, stderr },
        None => panic!(
            "{shown} did not finish within {timeout:?}\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
            tail(&stdout, 4000),
            tail(&stderr, 8000)
        ),
    }
}

/// The last `max` bytes of `bytes` as text.
pub fn tail(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// Asserts that `out` succeeded, panicking with its output (and the node's logs) if not.
pub fn check(out: &Output, what: &str, node: &Node) {
    assert!(
        out.status.success(),
        "{what} failed ({})\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}\n{}",
        out.status,
        tail(&out.stdout, 4000),
        tail(&out.stderr, 8000),
        node.logs(40)
    );
}

/// Runs a client script that must succeed and print one JSON object; returns it.
pub fn py_json(node: &Node, script: &str, args: &[&str]) -> json::Value {
    py_json_timeout(node, script, args, CLIENT_TIMEOUT)
}

pub fn py_json_timeout(node: &Node, script: &str, args: &[&str], timeout: Duration) -> json::Value {
    let out = run_py_timeout(script, args, timeout);
    let what = format!("{script} {}", args.join(" "));
    check(&out, &what, node);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or_else(|| {
        panic!(
            "{what} printed no JSON\n--- stdout ---\n{}\n--- stderr ---\n{}",
            tail(&out.stdout, 4000),
            tail(&out.stderr, 8000)
        )
    });
    json::parse(line).unwrap_or_else(|e| panic!("{what}: bad JSON ({e}): {}", &line[..line.len().min(500)]))
}

/// Creates `topic` with `partitions` partitions through confluent-kafka's AdminClient
/// (prod_create_topic.py); the creation must succeed.
pub fn create_topic(node: &Node, topic: &str, partitions: i32) {
    let n = partitions.to_string();
    let v = py_json_timeout(
        node,
        "prod_create_topic.py",
        &["--bootstrap", node.bootstrap(), "--topic", topic, "--partitions", &n],
        Duration::from_secs(60),
    );
    assert!(v["error"].is_null(), "creating {topic}: {v}\n{}", node.logs(30));
}

/// Runs ck_produce.py (confluent-kafka; record i = key-{i % 1000} / "val-{i}") on `topic`
/// with acks=all, records `start..start+count` and the `extra` arguments, and asserts that
/// every one was acknowledged without error; returns the script's summary.
pub fn ck_produce_all(node: &Node, topic: &str, start: i64, count: usize, extra: &[&str]) -> json::Value {
    use json::Json;
    let (c, s) = (count.to_string(), start.to_string());
    let mut args =
        vec!["--bootstrap", node.bootstrap(), "--topic", topic, "--count", &c, "--start", &s, "--acks", "all"];
    args.extend_from_slice(extra);
    let out = py_json_timeout(node, "ck_produce.py", &args, Duration::from_secs(120));
    assert_eq!(
        (out["acked"].i64(), out["errors"].i64()),
        (count as i64, 0),
        "producing {count} records to {topic}: not every one acknowledged: {}\n{}",
        out["error_samples"],
        node.logs(30)
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Background clients (consumer-group tests): a child whose stdout lines are collected as they
// come, so a test can watch several at once, wait for what they print, and SIGKILL them.

/// A client script running in the background; its stdout (JSON lines) and stderr are kept.
pub struct Bg {
    /// A label for failure messages (e.g. "ck-1").
    pub name: String,
    child: Option<Child>,
    pid: u32,
    stdout: Lines,
    stderr: Lines,
    /// How the child ended, once it has.
    status: Option<ExitStatus>,
}

impl Bg {
    /// Starts `node/tests/clients/<script>` with the venv's Python in the background.
    pub fn py(name: &str, script: &str, args: &[String]) -> Bg {
        let path = clients_dir().join(script);
        assert!(path.is_file(), "no client script {}", path.display());
        let mut cmd = Command::new(python());
        cmd.arg("-u").arg(&path).args(args).env("PYTHONDONTWRITEBYTECODE", "1");
        Bg::spawn(name, cmd)
    }

    pub fn spawn(name: &str, mut cmd: Command) -> Bg {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let shown = format!("{cmd:?}");
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
        let (stdout, stderr) = (Lines::default(), Lines::default());
        let out = child.stdout.take().unwrap();
        let o = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                o.push(line);
            }
        });
        let err = child.stderr.take().unwrap();
        let e = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                e.push(line);
            }
        });
        let pid = child.id();
        Bg { name: name.to_string(), child: Some(child), pid, stdout, stderr, status: None }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Every stdout line so far. (The buffer keeps the last 10–20k lines: scripts that
    /// print one line per poll batch stay far below that in these tests.)
    pub fn lines(&self) -> Vec<String> {
        self.stdout.0.lock().unwrap().clone()
    }

    /// Every stdout line so far that parses as a JSON object.
    pub fn events(&self) -> Vec<json::Value> {
        self.stdout
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.trim_start().starts_with('{'))
            .filter_map(|l| json::parse(l).ok())
            .collect()
    }

    /// The last `n` lines of its stdout and stderr (each cut to 400 characters), for failure
    /// messages.
    pub fn logs(&self, n: usize) -> String {
        let cut = |text: String| {
            text.lines()
                .map(|l| match l.char_indices().nth(400) {
                    Some((i, _)) => format!("{}…", &l[..i]),
                    None => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        format!(
            "--- {} stdout (last {n} lines) ---\n{}\n--- {} stderr (last {n} lines) ---\n{}",
            self.name,
            cut(self.stdout.tail(n)),
            self.name,
            cut(self.stderr.tail(n))
        )
    }

    /// Still running?
    pub fn is_running(&mut self) -> bool {
        self.poll_exit().is_none()
    }

    fn poll_exit(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Some(c) = self.child.as_mut() {
                if let Some(s) = c.try_wait().unwrap() {
                    self.status = Some(s);
                    self.child = None;
                }
            }
        }
        self.status
    }

    /// Waits up to `timeout` for the child to exit by itself; `None` if it is still running.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.poll_exit() {
                std::thread::sleep(Duration::from_millis(50)); // let the readers drain
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL (no goodbye of any kind) and reap. No-op when it has exited.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            if let Ok(s) = c.wait() {
                self.status = Some(s);
            }
            std::thread::sleep(Duration::from_millis(50)); // let the readers drain
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for a node that must keep its port
/// across restarts: pass `--listen 127.0.0.1:PORT`, the last `--listen` wins).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// GET on an HTTP endpoint (the node's admin listener); returns (status code, body).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("GET {path}: not HTTP: {text:?}"));
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, body.to_string())
}

/// A `sluice` command (the binary under test) for its subcommands (e.g. `sluice groups`).
pub fn sluice_command() -> Command {
    Command::new(sluice_bin())
}

/// A field of `/proc/PID/status` in KiB (e.g. "VmRSS", "RssAnon"); `None` if absent.
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    line[field.len() + 1..].split_whitespace().next()?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Big-endian fields of segment files (tests that parse `.log` batches themselves).

pub fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

pub fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

pub fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().unwrap())
}

/// Polls `ok` every 100 ms until it holds; panics after `timeout` with `what` and `diag()`.
pub fn wait_for(what: &str, timeout: Duration, diag: impl Fn() -> String, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}\n{}", diag());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
