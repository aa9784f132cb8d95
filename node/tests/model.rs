//! Property test: random operation sequences (append, roll, read, truncate, reopen after a
//! clean close or a crash, retention, log start moves) against a simple in-memory model.
//!
//! Every case is one seed. A failure prints it; `SLUICE_MODEL_SEED=<seed>` replays that
//! case alone, `SLUICE_MODEL_CASES=<n>` runs more cases (seeds `seed`, `seed + 1`, ...).

mod common;

use common::batch;
use sluice::log::checkpoint::EpochEntry;
use sluice::log::{LogConfig, LogError, OpenHint, PartitionLog};
use sluice::runtime::test_executor;
use sluice::testing::TempDir;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

const DEFAULT_SEED: u64 = 0x5155_1ce0;
const DEFAULT_CASES: u64 = 64;
const OPS_PER_CASE: usize = 60;

/// One batch as the log must store it: offsets and epoch patched.
#[derive(Debug, Clone)]
struct ModelBatch {
    base: i64,
    last: i64,
    max_timestamp: i64,
    bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
struct ModelSegment {
    base: i64,
    batches: Vec<ModelBatch>,
}

impl ModelSegment {
    fn new(base: i64) -> ModelSegment {
        ModelSegment { base, batches: Vec::new() }
    }

    fn size(&self) -> u64 {
        self.batches.iter().map(|b| b.bytes.len() as u64).sum()
    }

    fn max_timestamp(&self) -> i64 {
        self.batches.iter().map(|b| b.max_timestamp).max().unwrap_or(-1)
    }

    fn next_offset(&self) -> i64 {
        self.batches.last().map_or(self.base, |b| b.last + 1)
    }
}

/// The log as a list of segments of batches, following the documented rules: Kafka's roll
/// predicate, whole-batch reads bounded by their segment, truncation of whole batches,
/// retention of whole closed segments.
#[derive(Debug)]
struct Model {
    config: LogConfig,
    segments: Vec<ModelSegment>,
    log_start: i64,
    epochs: Vec<EpochEntry>,
    /// How often each interesting situation came up: the run asserts that all of them did.
    hits: BTreeMap<&'static str, usize>,
}

impl Model {
    fn hit(&mut self, what: &'static str) {
        *self.hits.entry(what).or_default() += 1;
    }

    fn next_offset(&self) -> i64 {
        self.segments.last().expect("a segment").next_offset()
    }

    fn bases(&self) -> Vec<i64> {
        self.segments.iter().map(|s| s.base).collect()
    }

    fn size(&self) -> u64 {
        self.segments.iter().map(ModelSegment::size).sum()
    }

    /// `request` holds the producer's batches; `batches` their (record count, max timestamp).
    fn append(&mut self, request: &[u8], batches: &[(usize, i64)], epoch: i32) -> (i64, i64) {
        let first_offset = self.next_offset();
        let incoming_max = batches.iter().map(|b| b.1).max().expect("a batch");
        let active = self.segments.last().expect("a segment");
        let size = active.size();
        let too_big = size + request.len() as u64 > self.config.segment_bytes;
        let too_old = active.batches.first().is_some_and(|first| {
            first.max_timestamp >= 0 && incoming_max.saturating_sub(first.max_timestamp) > self.config.segment_ms
        });
        if size > 0 && (too_big || too_old) {
            self.hit(if too_big { "roll at segment.bytes" } else { "roll at segment.ms" });
            self.segments.push(ModelSegment::new(first_offset));
        }
        if batches.len() > 1 {
            self.hit("append of several batches");
        }
        let active = self.segments.last_mut().expect("a segment");
        let mut at = 0;
        let mut offset = first_offset;
        for &(count, max_timestamp) in batches {
            let mut bytes = request[at..].to_vec();
            let len = 12 + i32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
            bytes.truncate(len);
            at += len;
            bytes[0..8].copy_from_slice(&offset.to_be_bytes());
            bytes[12..16].copy_from_slice(&epoch.to_be_bytes());
            let last = offset + count as i64 - 1;
            active.batches.push(ModelBatch { base: offset, last, max_timestamp, bytes });
            offset = last + 1;
        }
        assert_eq!(at, request.len(), "model: batches cover the request");
        if self.epochs.last().is_some_and(|e| epoch < e.epoch) {
            self.hit("append with a stale epoch");
        }
        if epoch >= 0 && self.epochs.last().is_none_or(|e| epoch > e.epoch) {
            self.epochs.push(EpochEntry { epoch, start_offset: first_offset });
        }
        (first_offset, offset - 1)
    }

    /// The batches a read from `from` returns: the one holding `from` and those after it in
    /// the same segment, as many as fit in `max_bytes` (at least one with `at_least_one`).
    fn read(&mut self, from: i64, max_bytes: usize, at_least_one: bool) -> Vec<ModelBatch> {
        if from == self.next_offset() {
            self.hit("read at the log end");
            return Vec::new();
        }
        let segment = self
            .segments
            .iter()
            .find(|s| s.batches.iter().any(|b| b.base <= from && from <= b.last))
            .expect("model: every offset in range is in a batch");
        let start = segment.batches.iter().position(|b| from <= b.last).expect("holding batch");
        let mut taken = Vec::new();
        let mut bytes = 0;
        for b in &segment.batches[start..] {
            if bytes + b.bytes.len() > max_bytes && !(taken.is_empty() && at_least_one) {
                break;
            }
            bytes += b.bytes.len();
            taken.push(b.clone());
        }
        let whole_segment_fit = start + taken.len() == segment.batches.len();
        let more_segments = segment.base != self.segments.last().expect("a segment").base;
        let situation = match taken.len() {
            0 => "read where nothing fits",
            1 if bytes > max_bytes => "read of one batch larger than max_bytes",
            1 => "read of one batch",
            _ if whole_segment_fit && more_segments => "read stopped by the segment's end",
            _ => "read of several batches",
        };
        if taken.first().is_some_and(|b| b.base < from) {
            self.hit("read from inside a batch");
        }
        self.hit(situation);
        taken
    }

    fn truncate(&mut self, offset: i64) {
        if offset >= self.next_offset() {
            return;
        }
        let offset = offset.max(0);
        if offset <= self.segments[0].base {
            self.hit("truncate everything");
            self.segments = vec![ModelSegment::new(offset)];
            self.log_start = offset;
        } else {
            let segments = self.segments.len();
            self.segments.retain(|s| s.base < offset);
            if self.segments.len() < segments {
                self.hit("truncate removing segments");
            }
            let kept = self.segments.last_mut().expect("first kept");
            let batches = kept.batches.len();
            kept.batches.retain(|b| b.last < offset);
            if kept.batches.len() < batches {
                self.hit("truncate inside a segment");
            }
            if self.log_start > self.next_offset() {
                self.hit("truncate below the log start");
            }
        }
        let end = self.next_offset();
        self.log_start = self.log_start.min(end);
        self.epochs.retain(|e| e.start_offset < end);
    }

    /// Deletes closed segments from the front while `delete` says so or they lie wholly below
    /// the log start. Returns (segments, bytes) deleted.
    fn delete_front(&mut self, delete: impl Fn(&ModelSegment, u64) -> bool) -> (usize, u64) {
        let (mut count, mut bytes) = (0, 0);
        while self.segments.len() > 1 {
            let next_base = self.segments[1].base;
            if !(next_base <= self.log_start || delete(&self.segments[0], bytes)) {
                break;
            }
            bytes += self.segments[0].size();
            count += 1;
            self.log_start = self.log_start.max(next_base);
            self.segments.remove(0);
        }
        // Kafka's `truncateFromStart`: the entries wholly below the log start go, and the
        // last one at or below it starts there.
        let below = self.epochs.iter().take_while(|e| e.start_offset <= self.log_start).count();
        if below > 1 || (below == 1 && self.epochs[0].start_offset < self.log_start) {
            self.hit("leader epochs truncated from the start");
            self.epochs.drain(..below - 1);
            self.epochs[0].start_offset = self.log_start;
        }
        (count, bytes)
    }

    fn enforce_retention(&mut self, now_ms: i64) -> (usize, u64) {
        let (retention_ms, retention_bytes, total) =
            (self.config.retention_ms, self.config.retention_bytes, self.size());
        let too_old = |segment: &ModelSegment| {
            let max = segment.max_timestamp();
            retention_ms >= 0 && max >= 0 && now_ms - max > retention_ms
        };
        let too_big = |segment: &ModelSegment, deleted: u64| {
            retention_bytes >= 0 && total - deleted >= retention_bytes as u64 + segment.size()
        };
        if self.segments.len() > 1 {
            if too_old(&self.segments[0]) {
                self.hit("retention by time");
            } else if too_big(&self.segments[0], 0) {
                self.hit("retention by size");
            }
        }
        self.delete_front(|segment, deleted| too_old(segment) || too_big(segment, deleted))
    }

    fn advance_log_start(&mut self, offset: i64) {
        if offset > self.log_start
            && self.segments.iter().flat_map(|s| &s.batches).any(|b| b.base < offset && offset <= b.last)
        {
            self.hit("log start moved inside a batch");
        }
        self.log_start = self.log_start.max(offset);
        if self.delete_front(|_, _| false).0 > 0 {
            self.hit("log start move deleting segments");
        }
    }
}

/// Prints the seed (and the last operations) if the case panics.
struct CaseReport {
    seed: u64,
    /// Operations per case, when not the default (a replay needs the same number).
    ops_per_case: Option<usize>,
    ops: Vec<String>,
}

impl Drop for CaseReport {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let from = self.ops.len().saturating_sub(25);
            let ops = self.ops_per_case.map_or(String::new(), |n| format!("SLUICE_MODEL_OPS={n} "));
            eprintln!(
                "\nmodel case failed: replay with SLUICE_MODEL_SEED={} {ops}cargo test -p sluice-node --test model\n\
                 last operations (of {}):\n  {}",
                self.seed,
                self.ops.len(),
                self.ops[from..].join("\n  ")
            );
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|_| panic!("{name} must be a number, got {value:?}")))
}

fn random_config(rng: &mut fastrand::Rng) -> LogConfig {
    LogConfig {
        segment_bytes: rng.u64(2048..=8192),
        index_interval_bytes: rng.u64(64..=1024),
        segment_ms: if rng.bool() { rng.i64(200..=3_000) } else { i64::MAX },
        retention_ms: if rng.bool() { rng.i64(1_000..=8_000) } else { -1 },
        retention_bytes: if rng.bool() { rng.i64(4_096..=40_000) } else { -1 },
        // Roll flushes at once or a little later, racing the model's next operations.
        roll_flush_delay_ms: rng.i64(0..=20),
        ..LogConfig::default()
    }
}

/// Checks what the log reports (offsets, segments, size, epochs) against the model.
fn check_state(log: &PartitionLog, model: &Model) {
    let next = model.next_offset();
    assert_eq!(log.next_offset(), next, "next offset");
    assert_eq!(log.log_end_offset(), next, "log end offset");
    assert_eq!(log.log_start_offset(), model.log_start, "log start offset");
    assert_eq!(log.segment_bases(), model.bases(), "segments");
    assert_eq!(log.size_bytes(), model.size(), "size in bytes");
    assert_eq!(log.leader_epochs(), model.epochs, "leader epochs");
}

/// Compares every segment file with the model's batches, byte for byte.
fn check_files(model: &Model, dir: &Path) {
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    on_disk.sort();
    let expected: Vec<String> = model.segments.iter().map(|s| format!("{:020}.log", s.base)).collect();
    assert_eq!(on_disk, expected, "segment files");
    for segment in &model.segments {
        let bytes = std::fs::read(dir.join(format!("{:020}.log", segment.base))).unwrap();
        let want: Vec<u8> = segment.batches.iter().flat_map(|b| b.bytes.iter().copied()).collect();
        assert!(
            bytes == want,
            "{:020}.log differs from the model ({} vs {} bytes)",
            segment.base,
            bytes.len(),
            want.len()
        );
    }
}

/// Reads from `from` and compares with the model; returns where the next read starts.
async fn check_read(log: &PartitionLog, model: &mut Model, from: i64, max_bytes: usize, at_least_one: bool) -> i64 {
    let (bytes, info) = log.read_copy(from, max_bytes, at_least_one).await.unwrap();
    let want = model.read(from, max_bytes, at_least_one);
    let want_bytes: Vec<u8> = want.iter().flat_map(|b| b.bytes.iter().copied()).collect();
    assert!(
        bytes == want_bytes,
        "read({from}, {max_bytes}, {at_least_one}): {} bytes, model has {} bytes in batches {:?}",
        bytes.len(),
        want_bytes.len(),
        want.iter().map(|b| (b.base, b.last)).collect::<Vec<_>>()
    );
    match (want.first(), want.last()) {
        (Some(first), Some(last)) => {
            assert_eq!(info.first_offset, first.base, "read({from}): first offset");
            assert_eq!(info.next_offset, last.last + 1, "read({from}): next offset");
        }
        _ => assert!(info.range.is_none(), "read({from}): nothing to return"),
    }
    assert_eq!(info.log_start_offset, model.log_start);
    assert_eq!(info.high_watermark, model.next_offset());
    info.next_offset
}

/// State of one case besides the log and the model.
struct Case {
    rng: fastrand::Rng,
    /// Record timestamps and retention's "now" follow this clock.
    clock_ms: i64,
    epoch: i32,
}

impl Case {
    /// 1–5 batches of 1–20 records with values of 0–2000 bytes; returns the request and each
    /// batch's (record count, max timestamp).
    fn request(&mut self) -> (Vec<u8>, Vec<(usize, i64)>) {
        let rng = &mut self.rng;
        let mut request = Vec::new();
        let mut batches = Vec::new();
        for _ in 0..rng.usize(1..=5) {
            let count = rng.usize(1..=20);
            let value_max = if rng.bool() { rng.usize(0..=100) } else { rng.usize(0..=2000) };
            let values: Vec<Vec<u8>> = (0..count)
                .map(|_| {
                    let mut v = vec![0u8; rng.usize(0..=value_max)];
                    rng.fill(&mut v);
                    v
                })
                .collect();
            let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            let timestamp = self.clock_ms - rng.i64(0..3_000);
            request.extend_from_slice(&batch(&refs, timestamp));
            batches.push((count, timestamp + count as i64 - 1));
        }
        (request, batches)
    }

    fn next_epoch(&mut self) -> i32 {
        match self.rng.u8(0..10) {
            0 => self.epoch += 1,
            1 => return (self.epoch - 1).max(0), // a stale leader's epoch is stored as given
            _ => {}
        }
        self.epoch
    }

    /// An offset for truncation or log start moves: mostly inside the log, sometimes at its
    /// edges or just past them.
    fn offset_near(&mut self, model: &Model) -> i64 {
        let (first, start, end) = (model.segments[0].base, model.log_start, model.next_offset());
        match self.rng.u8(0..10) {
            0 => first,
            1 => end,
            2 => end + 1,
            3 => self.rng.i64(first..=start),
            _ => self.rng.i64(start..=end),
        }
    }
}

async fn open(dir: &Path, config: &LogConfig, hint: OpenHint) -> Rc<PartitionLog> {
    PartitionLog::open(dir, config.clone(), hint).await.unwrap()
}

/// Runs one case: `ops` random operations, checking the log against the model after each.
/// Returns how often each situation came up.
async fn run_case(seed: u64, ops: usize) -> BTreeMap<&'static str, usize> {
    let ops_per_case = (ops != OPS_PER_CASE).then_some(ops);
    let mut report = CaseReport { seed, ops_per_case, ops: Vec::new() };
    let tmp = TempDir::new("model");
    let dir = tmp.path().join("t-0");
    let mut case = Case { rng: fastrand::Rng::with_seed(seed), clock_ms: 1_000_000, epoch: 0 };
    let config = random_config(&mut case.rng);
    report.ops.push(format!("{config:?}"));
    let mut model = Model {
        config: config.clone(),
        segments: vec![ModelSegment::new(0)],
        log_start: 0,
        epochs: vec![],
        hits: BTreeMap::new(),
    };
    let mut log = open(&dir, &config, OpenHint::default()).await;
    for _ in 0..ops {
        let roll = case.rng.u8(0..100);
        match roll {
            0..=39 => {
                case.clock_ms += case.rng.i64(0..=500);
                let (request, batches) = case.request();
                let epoch = case.next_epoch();
                report.ops.push(format!("append {} batches, {} bytes, epoch {epoch}", batches.len(), request.len()));
                let info = log.append(&request, epoch, case.clock_ms).await.unwrap();
                let (first, last) = model.append(&request, &batches, epoch);
                assert_eq!((info.first_offset, info.last_offset), (first, last), "assigned offsets");
                check_files(&model, &dir);
            }
            40..=64 => {
                let (start, end) = (model.log_start, model.next_offset());
                let from = if case.rng.u8(0..5) == 0 { end } else { case.rng.i64(start..=end) };
                let max_bytes = case.rng.usize(0..=3 * config.segment_bytes as usize);
                let at_least_one = case.rng.u8(0..5) != 0;
                report.ops.push(format!("read from {from} max {max_bytes} at_least_one {at_least_one}"));
                check_read(&log, &mut model, from, max_bytes, at_least_one).await;
            }
            65..=67 => {
                let (start, end) = (model.log_start, model.next_offset());
                report.ops.push(format!("read out of range around [{start}, {end}]"));
                let past_end = log.read(end + 1, 1 << 20, true).await;
                assert!(matches!(past_end, Err(LogError::OffsetOutOfRange { .. })), "read past the end");
                if start > 0 {
                    let below = log.read(start - 1, 1 << 20, true).await;
                    assert!(matches!(below, Err(LogError::OffsetOutOfRange { .. })), "read below the start");
                }
            }
            68..=74 => {
                let offset = case.offset_near(&model);
                report.ops.push(format!("truncate_to {offset}"));
                let end = log.truncate_to(offset).await.unwrap();
                model.truncate(offset);
                assert_eq!(end, model.next_offset(), "truncate_to returns the new log end");
                check_files(&model, &dir);
            }
            75..=84 => {
                let mode = case.rng.u8(0..5);
                report.ops.push(format!("reopen (mode {mode})"));
                model.hit(
                    [
                        "reopen after close",
                        "reopen after close, no marker",
                        "reopen after sync, checkpointed",
                        "reopen after sync",
                        "reopen after a crash",
                    ][mode as usize],
                );
                log = reopen(log, &dir, &config, &mut model, mode).await;
                check_files(&model, &dir);
            }
            85..=90 => {
                let now_ms = case.clock_ms + case.rng.i64(0..=5_000);
                report.ops.push(format!("enforce_retention at {now_ms}"));
                let outcome = log.enforce_retention(now_ms).await.unwrap();
                let (segments, bytes) = model.enforce_retention(now_ms);
                assert_eq!((outcome.deleted_segments, outcome.deleted_bytes), (segments, bytes), "retention deleted");
                assert_eq!(outcome.log_start_offset, model.log_start);
                check_files(&model, &dir);
            }
            91..=95 => {
                let offset = case.offset_near(&model);
                report.ops.push(format!("advance_log_start {offset}"));
                match log.advance_log_start(offset).await {
                    Ok(start) => {
                        model.advance_log_start(offset);
                        assert_eq!(start, model.log_start);
                    }
                    Err(e) => {
                        model.hit("log start move past the end refused");
                        assert!(offset > model.next_offset(), "advance_log_start({offset}) refused: {e}");
                        assert!(matches!(e, LogError::OffsetOutOfRange { .. }));
                    }
                }
                check_files(&model, &dir);
            }
            _ => {
                let end = model.next_offset();
                report.ops.push(format!("sync_to {end}"));
                log.sync_to(end).await.unwrap();
                assert_eq!(log.recovery_point(), end);
            }
        }
        check_state(&log, &model);
    }
    // Read everything back in random steps.
    let mut from = model.log_start;
    while from < model.next_offset() {
        let max_bytes = case.rng.usize(0..=2 * config.segment_bytes as usize);
        let next = check_read(&log, &mut model, from, max_bytes, true).await;
        assert!(next > from, "a read with at_least_one makes progress");
        from = next;
    }
    log.close().await.unwrap();
    drop(log);
    drop(report);
    model.hits
}

/// Drops the log in one of five ways and opens it again, updating what the model expects
/// of the log start (which only the caller's checkpoint remembers).
async fn reopen(
    log: Rc<PartitionLog>,
    dir: &Path,
    config: &LogConfig,
    model: &mut Model,
    mode: u8,
) -> Rc<PartitionLog> {
    let end = model.next_offset();
    let checkpointed =
        |recovery_point: i64| OpenHint { recovery_point, log_start_offset: model.log_start, clean_shutdown: false };
    let hint = match mode {
        // A clean stop: everything flushed, the marker written, the checkpoints current.
        0 => {
            log.close().await.unwrap();
            OpenHint { clean_shutdown: true, ..checkpointed(log.recovery_point()) }
        }
        // A clean stop whose marker and checkpoints were lost.
        1 => {
            log.close().await.unwrap();
            OpenHint::default()
        }
        // A crash after a group commit, with checkpoints written at that point.
        2 => {
            log.sync_to(end).await.unwrap();
            checkpointed(log.recovery_point())
        }
        // A crash after a group commit, with no checkpoints.
        3 => {
            log.sync_to(end).await.unwrap();
            OpenHint::default()
        }
        // A process crash with nothing synced: the page cache keeps what was written.
        _ => OpenHint::default(),
    };
    drop(log);
    // The log start survives only through the caller's checkpoint; without one it is the
    // first segment's base.
    model.log_start = hint.log_start_offset.max(model.segments[0].base).min(end);
    open(dir, config, hint).await
}

/// Random operation sequences keep the log's files, reads, offsets and epochs equal to the in-memory model's.
#[test]
fn random_operations_agree_with_the_model() {
    let explicit = env_u64("SLUICE_MODEL_SEED");
    let start = explicit.unwrap_or(DEFAULT_SEED);
    let cases = env_u64("SLUICE_MODEL_CASES").unwrap_or(if explicit.is_some() { 1 } else { DEFAULT_CASES });
    let ops = env_u64("SLUICE_MODEL_OPS").map_or(OPS_PER_CASE, |n| n as usize);
    let hits = test_executor().run(async move {
        let mut hits = BTreeMap::new();
        for i in 0..cases {
            for (what, n) in run_case(start.wrapping_add(i), ops).await {
                *hits.entry(what).or_insert(0) += n;
            }
        }
        hits
    });
    println!("{cases} cases of {ops} operations from seed {start}: {hits:#?}");
    if explicit.is_none() {
        // The default run must reach every situation the model knows, or it proves less than
        // it claims.
        let expected = [
            "append of several batches",
            "append with a stale epoch",
            "roll at segment.bytes",
            "roll at segment.ms",
            "read at the log end",
            "read where nothing fits",
            "read of one batch larger than max_bytes",
            "read of one batch",
            "read stopped by the segment's end",
            "read of several batches",
            "read from inside a batch",
            "truncate everything",
            "truncate removing segments",
            "truncate inside a segment",
            "truncate below the log start",
            "retention by time",
            "retention by size",
            "log start moved inside a batch",
            "log start move deleting segments",
            "log start move past the end refused",
            "leader epochs truncated from the start",
            "reopen after close",
            "reopen after close, no marker",
            "reopen after sync, checkpointed",
            "reopen after sync",
            "reopen after a crash",
        ];
        for what in expected {
            assert!(hits.get(what).copied().unwrap_or(0) > 0, "no case reached: {what}");
        }
    }
}
