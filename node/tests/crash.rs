//! The crash test (issue "Show 3"): a child process appends with group-commit sync and
//! reports every synced append; the parent SIGKILLs it at random moments and, after every
//! kill, recovers the log and checks that every reported record is there and intact and
//! that no partial batch is visible. The child keeps appending to the same directory in the
//! next round, so it recovers a crashed log every time it starts.
//!
//! A SIGKILL keeps the page cache, so on its own it almost never tears a batch; one round in
//! three the parent also cuts the newest `.log` at a random byte past the last reported
//! append, as a power loss could, so recovery's cut is exercised too.
//!
//! The child is this test binary run again (`crash_child_entry`), which works the same under
//! `cargo test` and `cargo nextest run`. It writes one protocol line per event to stdout;
//! the test harness's own lines are told apart by a marker.
//!
//! Knobs: `SLUICE_CRASH_ROUNDS` (more rounds than the default 50), `SLUICE_CRASH_SEED`
//! (replay the kill timings of a failed run; the seed is printed), `SLUICE_CRASH_NO_KICK=1`
//! (run without the [`Kicker`]).

mod common;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use sluice::log::batch::{validate, BatchHeader, Check};
use sluice::log::{LogConfig, OpenHint, PartitionLog};
use sluice::runtime::{now_ms, test_executor};
use sluice::testing::TempDir;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The child's partition directory; set only for the child.
const CHILD_DIR_ENV: &str = "SLUICE_CRASH_CHILD_DIR";
/// The round number, so the child's tags are unique across rounds.
const CHILD_ROUND_ENV: &str = "SLUICE_CRASH_CHILD_ROUND";
const ROUNDS_ENV: &str = "SLUICE_CRASH_ROUNDS";
const SEED_ENV: &str = "SLUICE_CRASH_SEED";
const ROUNDS_MIN: u64 = 50;
/// Concurrent appenders in the child: their appends coalesce into shared writes and their
/// syncs into shared fdatasyncs.
const APPENDERS: u64 = 4;
/// Starts every protocol line, so the test harness's own output is skipped.
const MARK: &str = "sluice-crash ";
/// A child the parent never kills (the parent failed) stops on its own after this.
const CHILD_LIFETIME: Duration = Duration::from_secs(30);
/// How long the parent waits for a child to open its log before calling it hung.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest one step of a round (run a child, verify) may take before the test aborts;
/// a step normally takes well under a second.
const STEP_LIMIT: Duration = Duration::from_secs(60);
/// Set to 1 to run without the [`Kicker`] (to reproduce the stall it works around).
const NO_KICK_ENV: &str = "SLUICE_CRASH_NO_KICK";
/// How often the [`Kicker`] interrupts an executor thread's io_uring wait.
const KICK_INTERVAL: Duration = Duration::from_millis(50);
const KICK_SIGNAL: libc::c_int = libc::SIGUSR2;

/// Small segments, so rolls happen every few rounds, and a dense index.
fn config() -> LogConfig {
    LogConfig { segment_bytes: 64 << 10, index_interval_bytes: 512, ..LogConfig::default() }
}

/// The value of record `index` of the append tagged `tag`: the tag and index, then bytes
/// derived from both. A value alone tells what it must be, so the parent can check every
/// record in the log, reported or not.
fn value(tag: u64, index: u32) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(tag.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index as u64);
    let mut v = Vec::with_capacity(12 + 300);
    v.extend_from_slice(&tag.to_be_bytes());
    v.extend_from_slice(&index.to_be_bytes());
    let len = rng.usize(0..300);
    v.extend((0..len).map(|_| rng.u8(..)));
    v
}

/// Parses a value back to (tag, index), checking every byte.
fn check_value(v: &[u8], offset: i64) -> (u64, u32) {
    assert!(v.len() >= 12, "offset {offset}: value of {} bytes", v.len());
    let tag = u64::from_be_bytes(v[..8].try_into().unwrap());
    let index = u32::from_be_bytes(v[8..12].try_into().unwrap());
    assert!(v == value(tag, index), "offset {offset}: value does not match its tag {tag:#x} / index {index}");
    (tag, index)
}

/// One append request of the child: one or two batches, 1–6 records each, their records
/// numbered across the request.
fn request(tag: u64, rng: &mut fastrand::Rng) -> (Vec<u8>, u32) {
    let mut out = Vec::new();
    let mut index = 0u32;
    for _ in 0..rng.usize(1..=2) {
        let values: Vec<Vec<u8>> = (0..rng.u32(1..=6)).map(|i| value(tag, index + i)).collect();
        index += values.len() as u32;
        let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
        out.extend_from_slice(&common::batch(&refs, now_ms()));
    }
    (out, index)
}

/// Writes one protocol line in one `write`; exits when the parent is gone.
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    if out.write_all(format!("{MARK}{line}\n").as_bytes()).and_then(|_| out.flush()).is_err() {
        std::process::exit(1);
    }
}

/// The crash test's child process (ignored: only the crash test starts it, and kills it).
#[test]
#[ignore = "the crash test's child process, started by sigkilled_appends_lose_nothing_that_was_synced"]
fn crash_child_entry() {
    let dir = std::env::var_os(CHILD_DIR_ENV).expect("only the crash test runs this, with SLUICE_CRASH_CHILD_DIR");
    let round: u64 = std::env::var(CHILD_ROUND_ENV).expect("round").parse().expect("round number");
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets an attribute of this process. If the parent
    // dies (a failed test), the child dies with it instead of appending on.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    let _kicker = Kicker::start();
    test_executor().run(async move {
        let log = PartitionLog::open(Path::new(&dir), config(), OpenHint::default()).await.unwrap();
        report(&format!("ready {}", log.log_end_offset()));
        let deadline = Instant::now() + CHILD_LIFETIME;
        let appenders: Vec<_> = (0..APPENDERS)
            .map(|task| {
                let log = log.clone();
                glommio::spawn_local(async move {
                    let mut rng = fastrand::Rng::with_seed(round << 8 | task);
                    for seq in 0u64.. {
                        if Instant::now() > deadline {
                            return;
                        }
                        let tag = round << 32 | task << 24 | seq;
                        let (records, count) = request(tag, &mut rng);
                        let info = log.append(&records, 0, now_ms()).await.unwrap();
                        assert_eq!(info.last_offset - info.first_offset + 1, count as i64);
                        log.sync_to(info.last_offset + 1).await.unwrap();
                        report(&format!("synced {} {} {tag}", info.first_offset, info.last_offset));
                    }
                })
            })
            .collect();
        for a in appenders {
            a.await;
        }
    });
}

/// What the parent learnt from one child.
#[derive(Debug, Default)]
struct ChildRun {
    /// The log end the child's recovery found, if it got that far.
    ready: Option<i64>,
    /// (first offset, last offset, tag) of every append the child reported synced.
    synced: Vec<(i64, i64, u64)>,
    /// Killed before it reported being ready (possibly inside recovery).
    early: bool,
}

/// Starts a child on `dir`, kills it with SIGKILL at a random moment and collects its
/// complete protocol lines. One round in eight kills within 30 ms of the start, whatever
/// the child is doing (starting, recovering); the others 5–60 ms after it is appending.
fn run_child(dir: &Path, round: u64, rng: &mut fastrand::Rng) -> ChildRun {
    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new(exe);
    command
        .args(["crash_child_entry", "--exact", "--nocapture", "--ignored"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_ROUND_ENV, round.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // A `cargo test` elsewhere in the workspace may be relinking this very binary: its path
    // is briefly missing.
    let mut attempts = 0;
    let mut child = loop {
        match command.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 50 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            spawned => break spawned.unwrap(),
        }
    };
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match stdout.read_until(b'\n', &mut line) {
                // A line cut by the kill has no newline: it was not reported.
                Ok(n) if n > 0 && line.ends_with(b"\n") => {
                    let text = String::from_utf8_lossy(&line);
                    if let Some(at) = text.find(MARK) {
                        let _ = tx.send(text[at + MARK.len()..].trim_end().to_string());
                    }
                }
                _ => return,
            }
        }
    });
    let early = rng.u8(0..8) == 0;
    let mut lines = Vec::new();
    if early {
        std::thread::sleep(Duration::from_millis(rng.u64(0..=30)));
    } else {
        let start = Instant::now();
        loop {
            let left = READY_TIMEOUT.checked_sub(start.elapsed()).unwrap_or_default();
            let line = rx.recv_timeout(left).unwrap_or_else(|e| panic!("round {round}: child not ready: {e}"));
            let ready = line.starts_with("ready ");
            lines.push(line);
            if ready {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(rng.u64(5..=60)));
    }
    // SAFETY: kill(2) on our own child's pid, which is not reaped until `wait` below.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "round {round}: the child ended on its own: {status}");
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    let mut run = ChildRun { early, ..ChildRun::default() };
    for line in lines {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields[..] {
            ["ready", end] => run.ready = Some(end.parse().unwrap()),
            ["synced", first, last, tag] => {
                run.synced.push((first.parse().unwrap(), last.parse().unwrap(), tag.parse().unwrap()))
            }
            _ => panic!("round {round}: unknown protocol line {line:?}"),
        }
    }
    run
}

/// Tears the tail the way a power loss could: cuts the newest `.log` at a random byte at or
/// after the end of the last batch holding a reported (synced) offset. A SIGKILL alone
/// almost never leaves a torn batch (the page cache keeps each write whole), so without
/// this recovery's cut would go untested. Returns the bytes cut.
fn tear_tail(dir: &Path, reported_last: Option<i64>, rng: &mut fastrand::Rng) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0; // killed before it created the directory
    };
    let logs = entries.map(|e| e.unwrap().path()).filter(|p| p.extension() == Some("log".as_ref()));
    let Some(newest) = logs.max() else {
        return 0;
    };
    let bytes = std::fs::read(&newest).unwrap();
    let mut keep = 0;
    let mut position = 0;
    while let Some(h) = BatchHeader::read(&bytes[position..]) {
        if position + h.size_bytes() > bytes.len() {
            break;
        }
        position += h.size_bytes();
        if reported_last.is_some_and(|last| h.base_offset <= last) {
            keep = position;
        }
    }
    let cut_at = rng.usize(keep..=bytes.len());
    std::fs::OpenOptions::new().write(true).open(&newest).unwrap().set_len(cut_at as u64).unwrap();
    (bytes.len() - cut_at) as u64
}

/// Copies the files of a partition directory, as the killed child left them.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    if !from.exists() {
        return; // killed before it created the directory
    }
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// What one verification found.
struct Verified {
    log_end: i64,
    segments: usize,
    /// Bytes recovery cut: a torn or unfinished tail.
    cut_bytes: u64,
}

fn log_file_bytes(dir: &Path) -> u64 {
    let logs =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap()).filter(|e| e.path().extension() == Some("log".as_ref()));
    logs.map(|e| e.metadata().unwrap().len()).sum()
}

/// Recovers `dir` as after a crash (recovery point 0, no clean-shutdown marker), reads the
/// whole log from its start and checks it: every batch valid as stored, offsets contiguous
/// from 0, every record's value the one its tag and index name, every append's records
/// together and in order, and every reported append present exactly where it was reported.
async fn verify(dir: &Path, reported: &BTreeMap<i64, (i64, u64)>, round: u64) -> Verified {
    let bytes_before = log_file_bytes(dir);
    let log = PartitionLog::open(dir, config(), OpenHint::default()).await.unwrap();
    let cut_bytes = bytes_before - log.size_bytes();
    let log_end = log.log_end_offset();
    assert_eq!(log.log_start_offset(), 0);
    // Per offset: (tag, index within its append).
    let mut records: Vec<(u64, u32)> = Vec::with_capacity(log_end as usize);
    let mut offset = 0;
    while offset < log_end {
        let (bytes, info) = log.read_copy(offset, 1 << 20, true).await.unwrap();
        assert!(
            info.range.is_some(),
            "round {round}: a read at {offset}, below the log end {log_end}, returned nothing; segments {:?}",
            log.segment_bases()
        );
        assert_eq!(info.first_offset, offset, "round {round}");
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let header = validate(rest, 0, Check::Stored)
                .unwrap_or_else(|e| panic!("round {round}: a read returned an invalid batch at offset {offset}: {e}"));
            assert_eq!(header.base_offset, offset, "round {round}: offsets are contiguous");
            let size = header.size_bytes();
            let set = RecordBatchDecoder::decode(&mut Bytes::copy_from_slice(&rest[..size])).unwrap();
            assert_eq!(set.records.len() as i64, header.last_offset() - offset + 1, "round {round}: a dense batch");
            for (i, r) in set.records.iter().enumerate() {
                assert_eq!(r.offset, offset + i as i64);
                records.push(check_value(r.value.as_ref().expect("a value"), r.offset));
            }
            offset = header.last_offset() + 1;
            rest = &rest[size..];
        }
        assert_eq!(offset, info.next_offset, "round {round}");
    }
    assert_eq!(records.len() as i64, log_end);
    // An append's records are contiguous, in order, and appear once: offset - index is the
    // same first offset for all of them.
    let mut appends: HashMap<u64, (i64, i64)> = HashMap::new();
    for (offset, &(tag, index)) in records.iter().enumerate() {
        let first = offset as i64 - index as i64;
        let (seen_first, count) = appends.entry(tag).or_insert((first, 0));
        assert_eq!(*seen_first, first, "round {round}: append {tag:#x} is split or duplicated (offset {offset})");
        *count += 1;
    }
    for (&first, &(last, tag)) in reported {
        assert!(last < log_end, "round {round}: synced offset {last} lost (log end {log_end})");
        assert_eq!(appends.get(&tag), Some(&(first, last - first + 1)), "round {round}: synced append {tag:#x}");
    }
    let segments = log.segment_count();
    drop(log);
    Verified { log_end, segments, cut_bytes }
}

/// Every append reported synced survives SIGKILL intact at its offsets; no partial batch shows.
#[test]
fn sigkilled_appends_lose_nothing_that_was_synced() {
    let rounds = std::env::var(ROUNDS_ENV).ok().and_then(|r| r.parse().ok()).unwrap_or(0).max(ROUNDS_MIN);
    let seed = std::env::var(SEED_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    eprintln!("crash test: {rounds} rounds, {SEED_ENV}={seed}");
    let tmp = TempDir::new("crash");
    let live = tmp.path().join("t-0");
    let scratch = tmp.path().join("verify");
    let started = Instant::now();
    let watchdog = Watchdog::start();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut reported: BTreeMap<i64, (i64, u64)> = BTreeMap::new();
    let mut recovered_end: Option<i64> = None;
    let (mut early_kills, mut torn_tails, mut torn_bytes) = (0, 0, 0);
    let mut last = None;
    for round in 0..rounds {
        // The child is driven from this thread, outside any executor: blocking an executor
        // thread for the kill delay is exactly what an executor must never see.
        watchdog.step(format!("round {round}: running the child"));
        let run = run_child(&live, round, &mut rng);
        early_kills += run.early as u64;
        if let (Some(ready), Some(end)) = (run.ready, recovered_end) {
            assert_eq!(ready, end, "round {round}: the child recovered the log end the parent's recovery found");
        }
        for (first, last, tag) in run.synced {
            assert!(reported.insert(first, (last, tag)).is_none(), "round {round}: offset {first} reported twice");
        }
        if rng.u8(0..3) == 0 {
            let reported_last = reported.values().map(|(last, _)| *last).max();
            torn_bytes += tear_tail(&live, reported_last, &mut rng);
        }
        // Recover a copy, so the child's next start recovers the crashed files itself.
        watchdog.step(format!("round {round}: recovering and verifying"));
        let _ = std::fs::remove_dir_all(&scratch);
        copy_dir(&live, &scratch);
        let verified = {
            let _kicker = Kicker::start();
            test_executor().run(verify(&scratch, &reported, round))
        };
        recovered_end = Some(verified.log_end);
        torn_tails += (verified.cut_bytes > 0) as u64;
        last = Some(verified);
    }
    let last = last.expect("at least one round");
    let synced_offsets: i64 = reported.iter().map(|(first, (last, _))| last - first + 1).sum();
    assert!(reported.len() as u64 > rounds, "the child reported too few synced appends to prove anything");
    assert!(last.segments > 2, "segments rolled ({} segments)", last.segments);
    eprintln!(
        "crash test: {rounds} rounds ({early_kills} killed within 30 ms of starting, {torn_tails} recovered from a \
         torn tail, {torn_bytes} bytes torn), {} synced appends = {synced_offsets} synced offsets verified after \
         every kill; final log end {}, {} segments; {:.1} s",
        reported.len(),
        last.log_end,
        last.segments,
        started.elapsed().as_secs_f64()
    );
}

/// Turns a hang into a failure that names the step: without it a stuck round would keep
/// `cargo test` waiting forever.
struct Watchdog {
    steps: mpsc::Sender<String>,
}

impl Watchdog {
    fn start() -> Watchdog {
        let (steps, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut current = String::from("starting");
            loop {
                match rx.recv_timeout(STEP_LIMIT) {
                    Ok(step) => current = step,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        eprintln!("crash test: stuck for {STEP_LIMIT:?} at {current}");
                        dump_threads_and_rings();
                        std::process::abort();
                    }
                }
            }
        });
        Watchdog { steps }
    }

    fn step(&self, step: String) {
        let _ = self.steps.send(step);
    }
}

/// Interrupts the calling thread's io_uring waits with a no-op signal every
/// `KICK_INTERVAL`, until dropped.
///
/// Why: on the test VM (kernel 6.18, glommio-ng 0.12), under CPU contention, an executor
/// sometimes sleeps in `io_uring_enter` while one of its requests never completes: fdinfo
/// shows it submitted with no CQE and the io-wq worker idle, and nothing moves until the
/// process gets a signal (SIGSTOP + SIGCONT, or a debugger attaching, resumed it). With two
/// CPU hogs running, 2 of 30 runs stalled without this and none of 30 with it. The cause
/// (kernel or glommio) is not pinned down; this test is about what survives a crash, not
/// about liveness, so it works around the stall and says so. A signal makes the wait return
/// EINTR, which glommio treats as a spurious wakeup.
struct Kicker {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Kicker {
    fn start() -> Kicker {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        if std::env::var(NO_KICK_ENV).is_ok_and(|v| v == "1") {
            return Kicker { stop, thread: None };
        }
        extern "C" fn no_op(_: libc::c_int) {}
        // SAFETY: installs a handler that does nothing, without SA_RESTART so the interrupted
        // wait returns; `target` is this thread, which outlives the kicker thread (joined on drop).
        let target = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = no_op as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(libc::sigaction(KICK_SIGNAL, &action, std::ptr::null_mut()), 0);
            libc::pthread_self()
        };
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Acquire) {
                std::thread::sleep(KICK_INTERVAL);
                // SAFETY: the target thread is alive until it has joined this one.
                unsafe { libc::pthread_kill(target, KICK_SIGNAL) };
            }
        });
        Kicker { stop, thread: Some(thread) }
    }
}

impl Drop for Kicker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a stuck step leaves for diagnosis: every thread's kernel wait channel and CPU ticks,
/// and every io_uring's queue positions and in-flight ops (from `/proc/self`).
fn dump_threads_and_rings() {
    for t in std::fs::read_dir("/proc/self/task").unwrap() {
        let t = t.unwrap().path();
        let r = |f: &str| std::fs::read_to_string(t.join(f)).unwrap_or_default();
        eprintln!(
            "DIAG {} {} wchan={} stat={}",
            t.display(),
            r("comm").trim(),
            r("wchan"),
            r("stat").split(' ').skip(13).take(2).collect::<Vec<_>>().join(",")
        );
    }
    for fd in std::fs::read_dir("/proc/self/fd").unwrap() {
        let fd = fd.unwrap();
        if std::fs::read_link(fd.path()).map(|l| l.to_string_lossy().contains("io_uring")).unwrap_or(false) {
            let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.file_name().to_string_lossy()))
                .unwrap_or_default();
            let keep: Vec<&str> =
                info.lines().filter(|l| l.starts_with("Sq") || l.starts_with("Cq") || l.contains("op=")).collect();
            eprintln!("DIAG ring fd {}: {}", fd.file_name().to_string_lossy(), keep.join(" | "));
        }
    }
}
