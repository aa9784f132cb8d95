//! Damaged files and damaged input: recovery cuts exactly the torn or corrupt batches and
//! rebuilds the derived indexes from the log; append refuses bad batches before any byte
//! reaches a file.

mod common;

use common::{batch, headers};
use sluice::log::batch::{validate, BatchError, BatchHeader, Check};
use sluice::log::index::{OffsetIndex, TimeIndex};
use sluice::log::{LogConfig, LogError, OpenHint, PartitionLog};
use sluice::runtime::test_executor;
use sluice::testing::TempDir;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Small segments and a dense index, so a few dozen batches make several segments and
/// every segment has index entries.
fn config() -> LogConfig {
    LogConfig { segment_bytes: 4096, index_interval_bytes: 256, ..LogConfig::default() }
}

/// Batches written by `write_log`. Enough for five or more 4 KiB segments.
const BATCHES: usize = 60;

/// A batch as stored: where it starts in its `.log` and its header.
#[derive(Debug, Clone, Copy)]
struct Stored {
    position: u64,
    header: BatchHeader,
}

fn segment_path(dir: &Path, base: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base:020}.{ext}"))
}

/// The value of record `record` of batch `n`: its bytes name both, so a misplaced or
/// damaged record cannot compare equal.
fn value(n: usize, record: usize) -> Vec<u8> {
    let mut v = format!("batch {n} record {record} ").into_bytes();
    v.resize(60 + (n * 37 + record * 11) % 200, b'a' + (n % 26) as u8);
    v
}

/// Appends `BATCHES` batches of 1–3 records (timestamps increasing by batch) and closes the
/// log cleanly. Returns the log and, per segment base, its stored batches.
async fn write_log(dir: &Path) -> (Rc<PartitionLog>, Vec<(i64, Vec<Stored>)>) {
    let log = PartitionLog::open(dir, config(), OpenHint::default()).await.unwrap();
    for n in 0..BATCHES {
        let values: Vec<Vec<u8>> = (0..1 + n % 3).map(|r| value(n, r)).collect();
        let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
        log.append(&batch(&refs, 1_000 * n as i64), 0, 0).await.unwrap();
    }
    log.close().await.unwrap();
    let segments = stored_segments(dir, &log.segment_bases());
    assert!(segments.len() >= 5, "{} segments", segments.len());
    (log, segments)
}

fn stored_segments(dir: &Path, bases: &[i64]) -> Vec<(i64, Vec<Stored>)> {
    bases.iter().map(|&base| (base, stored_batches(&segment_path(dir, base, "log")))).collect()
}

/// Every batch of a `.log` file, each validated the way recovery validates it; panics on
/// anything else (a torn tail included).
fn stored_batches(path: &Path) -> Vec<Stored> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        let header =
            validate(&bytes[position..], position, Check::Stored).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.push(Stored { position: position as u64, header });
        position += header.size_bytes();
    }
    out
}

/// The entries Kafka's `LogSegment.append` writes for these batches: one offset entry per
/// `index.interval.bytes`, keyed by the batch's last offset and pointing at its start, with
/// a time entry beside it (the newest timestamp so far and its offset) when that is newer.
fn kafka_index_entries(batches: &[Stored], interval: u64) -> (Vec<(i64, u32)>, Vec<(i64, i64)>) {
    let mut since_last_entry = 0u64;
    let mut newest = (-1i64, 0i64);
    let (mut offsets, mut times): (Vec<(i64, u32)>, Vec<(i64, i64)>) = (Vec::new(), Vec::new());
    for b in batches {
        if b.header.max_timestamp > newest.0 {
            newest = (b.header.max_timestamp, b.header.last_offset());
        }
        if since_last_entry > interval {
            offsets.push((b.header.last_offset(), b.position as u32));
            if times.last().is_none_or(|t| newest.0 > t.0) {
                times.push(newest);
            }
            since_last_entry = 0;
        }
        since_last_entry += b.header.size_bytes() as u64;
    }
    (offsets, times)
}

/// Asserts that a segment's `.index` and `.timeindex` decode, that every offset entry points
/// at the start of a batch whose last offset is the entry's offset, and that both hold
/// exactly Kafka's entries. A closed segment's time index ends with its newest timestamp
/// (Kafka appends it on roll and on recovery); the active one's may.
fn assert_indexes_match_log(dir: &Path, base: i64, batches: &[Stored], closed: bool) {
    let log_bytes = std::fs::metadata(segment_path(dir, base, "log")).unwrap().len();
    let index_bytes = std::fs::read(segment_path(dir, base, "index")).unwrap();
    let time_bytes = std::fs::read(segment_path(dir, base, "timeindex")).unwrap();
    let max_index_bytes = config().segment_index_bytes;
    let index = OffsetIndex::decode(base, &index_bytes, log_bytes, max_index_bytes)
        .unwrap_or_else(|e| panic!("segment {base}: {e}"));
    let time_index =
        TimeIndex::decode(base, &time_bytes, max_index_bytes).unwrap_or_else(|e| panic!("segment {base}: {e}"));
    for (offset, position) in index.entries() {
        let b = batches.iter().find(|b| b.position == position as u64);
        let b = b.unwrap_or_else(|| panic!("segment {base}: index entry ({offset}, {position}) is not a batch start"));
        assert_eq!(b.header.last_offset(), offset, "segment {base}: entry at {position}");
    }
    let (offsets, mut times) = kafka_index_entries(batches, config().index_interval_bytes);
    assert_eq!(index.entries().collect::<Vec<_>>(), offsets, "segment {base}");
    let actual: Vec<(i64, i64)> = time_index.entries().collect();
    let newest = batches.iter().map(|b| (b.header.max_timestamp, b.header.last_offset())).max();
    let seal = newest.filter(|n| times.last().is_none_or(|t| n.0 > t.0));
    if let Some(seal) = seal.filter(|_| closed || actual.len() > times.len()) {
        times.push(seal);
    }
    assert_eq!(actual, times, "segment {base}: time index");
}

/// Reads the whole log from its start through the API; asserts every batch is valid and
/// the offsets contiguous. Returns the bytes (all batches, back to back).
async fn read_all(log: &PartitionLog) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let (bytes, info) = log.read_copy(offset, 1 << 20, true).await.unwrap();
        assert!(info.range.is_some(), "a read at {offset}, below the log end, returned nothing");
        assert_eq!(info.first_offset, offset);
        for h in headers(&bytes) {
            assert_eq!(h.base_offset, offset, "offsets are contiguous");
            offset = h.last_offset() + 1;
        }
        assert_eq!(offset, info.next_offset);
        for b in batches_of(&bytes) {
            validate(b, 0, Check::Stored).unwrap();
        }
        out.extend_from_slice(&bytes);
    }
    out
}

/// Splits a run of whole batches into the batches' bytes.
fn batches_of(mut bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let size = BatchHeader::read(bytes).unwrap().size_bytes();
        out.push(&bytes[..size]);
        bytes = &bytes[size..];
    }
    out
}

/// The concatenated `.log` files, oldest first, up to `end_offset` (whole batches).
fn file_bytes_below(dir: &Path, segments: &[(i64, Vec<Stored>)], end_offset: i64) -> Vec<u8> {
    let mut out = Vec::new();
    for (base, batches) in segments {
        let file = std::fs::read(segment_path(dir, *base, "log")).unwrap();
        for b in batches.iter().filter(|b| b.header.last_offset() < end_offset) {
            out.extend_from_slice(&file[b.position as usize..b.position as usize + b.header.size_bytes()]);
        }
    }
    out
}

/// Damages the last batch of the last segment with `damage` (given the file and the batch),
/// reopens as after a crash, and checks that exactly that batch is gone.
fn assert_recovery_cuts_only_the_last_batch(label: &str, damage: impl FnOnce(&Path, &Stored) + 'static) {
    let tmp = TempDir::new(label);
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let (log, segments) = write_log(&dir).await;
        let end_before = log.log_end_offset();
        drop(log);
        let (last_base, last_batches) = segments.last().unwrap();
        let victim = *last_batches.last().unwrap();
        assert_eq!(victim.header.last_offset() + 1, end_before);
        let kept_bytes = file_bytes_below(&dir, &segments, victim.header.base_offset);
        let last_log = segment_path(&dir, *last_base, "log");
        damage(&last_log, &victim);

        // As after a crash: the checkpoint says only the last segment may hold unflushed data.
        let hint = OpenHint { recovery_point: *last_base, ..OpenHint::default() };
        let log = PartitionLog::open(&dir, config(), hint).await.unwrap();
        assert_eq!(log.log_end_offset(), victim.header.base_offset, "the damaged batch is cut");
        assert_eq!(log.segment_bases(), segments.iter().map(|(b, _)| *b).collect::<Vec<_>>());
        assert_eq!(read_all(&log).await, kept_bytes, "every earlier batch reads back byte for byte");
        assert_eq!(
            std::fs::metadata(&last_log).unwrap().len(),
            victim.position,
            "the file ends after the valid batches"
        );
        for (i, (base, _)) in segments.iter().enumerate() {
            let closed = i + 1 < segments.len();
            assert_indexes_match_log(&dir, *base, &stored_batches(&segment_path(&dir, *base, "log")), closed);
        }
        let next = log.append(&batch(&[b"after recovery"], 1_000_000), 0, 0).await.unwrap();
        assert_eq!(next.first_offset, victim.header.base_offset, "appends continue where the valid log ends");
        let (bytes, _) = log.read_copy(next.first_offset, 1 << 20, true).await.unwrap();
        assert_eq!(headers(&bytes).len(), 1);
    });
}

/// A `.log` cut inside its last batch (a torn write) loses that batch and nothing else.
#[test]
fn a_tail_cut_mid_batch_is_truncated_to_the_last_whole_batch() {
    assert_recovery_cuts_only_the_last_batch("tailcut", |path, victim| {
        let inside = victim.position + victim.header.size_bytes() as u64 / 2;
        std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(inside).unwrap();
    });
}

/// One flipped bit inside the last batch's CRC range makes recovery cut that batch only.
#[test]
fn a_flipped_byte_in_the_last_batch_cuts_that_batch_only() {
    assert_recovery_cuts_only_the_last_batch("bitflip", |path, victim| {
        let mut bytes = std::fs::read(path).unwrap();
        // Inside the records, well past the header: only the CRC can notice.
        let at = (victim.position + victim.header.size_bytes() as u64 - 5) as usize;
        bytes[at] ^= 0x10;
        std::fs::write(path, bytes).unwrap();
    });
}

/// An empty last segment above never-written offsets (a crash during a roll) is dropped.
#[test]
fn an_empty_segment_above_unwritten_offsets_is_dropped() {
    // A roll creates the next segment while the batches queued for the previous one may
    // still be unwritten: its base would become the log end, past offsets no file holds.
    let tmp = TempDir::new("hole");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let (log, segments) = write_log(&dir).await;
        let end_before = log.log_end_offset();
        drop(log);
        let (last_base, last_batches) = segments.last().unwrap();
        let unwritten = last_batches[last_batches.len() - 2];
        let last_log = segment_path(&dir, *last_base, "log");
        std::fs::OpenOptions::new().write(true).open(&last_log).unwrap().set_len(unwritten.position).unwrap();
        for ext in ["log", "index", "timeindex"] {
            std::fs::write(segment_path(&dir, end_before, ext), b"").unwrap();
        }

        let hint = OpenHint { recovery_point: *last_base, ..OpenHint::default() };
        let log = PartitionLog::open(&dir, config(), hint).await.unwrap();
        assert_eq!(log.log_end_offset(), unwritten.header.base_offset, "the log ends where its data ends");
        assert_eq!(log.segment_bases(), segments.iter().map(|(b, _)| *b).collect::<Vec<_>>());
        assert!(!segment_path(&dir, end_before, "log").exists(), "the empty segment's files are gone");
        let kept = file_bytes_below(&dir, &segments, unwritten.header.base_offset);
        assert_eq!(read_all(&log).await, kept);
        let next = log.append(&batch(&[b"after the hole"], 1_000_000), 0, 0).await.unwrap();
        assert_eq!(next.first_offset, unwritten.header.base_offset, "no offset is skipped");
    });
}

/// Damages an index file of a closed segment and of the active one, reopens as after a
/// clean shutdown (no scan would run), and checks that both indexes were rebuilt and that
/// a read from any offset returns the batch holding it.
fn assert_damaged_index_is_rebuilt(label: &str, damage: impl Fn(&Path) + 'static) {
    let tmp = TempDir::new(label);
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let (log, segments) = write_log(&dir).await;
        let end = log.log_end_offset();
        drop(log);
        for (i, (base, batches)) in segments.iter().enumerate() {
            assert_indexes_match_log(&dir, *base, batches, i + 1 < segments.len());
        }
        let closed = segments[1].0;
        let active = segments.last().unwrap().0;
        for (base, batches) in segments.iter().filter(|(b, _)| [closed, active].contains(b)) {
            let (entries, _) = kafka_index_entries(batches, config().index_interval_bytes);
            assert!(!entries.is_empty(), "segment {base} has entries to lose");
            damage(&segment_path(&dir, *base, "index"));
        }
        let all_bytes = file_bytes_below(&dir, &segments, end);

        let hint = OpenHint { recovery_point: end, log_start_offset: 0, clean_shutdown: true };
        let log = PartitionLog::open(&dir, config(), hint).await.unwrap();
        assert_eq!(log.log_end_offset(), end);
        for (i, (base, batches)) in segments.iter().enumerate() {
            assert_indexes_match_log(&dir, *base, batches, i + 1 < segments.len());
        }
        // Lookups through the rebuilt indexes: every offset finds the batch that holds it.
        let all: Vec<(BatchHeader, &[u8])> = batches_of(&all_bytes).into_iter().map(|b| (headers(b)[0], b)).collect();
        for offset in 0..end {
            let (bytes, info) = log.read_copy(offset, 1, true).await.unwrap();
            let (h, original) = all.iter().find(|(h, _)| h.base_offset <= offset && offset <= h.last_offset()).unwrap();
            assert_eq!(info.first_offset, h.base_offset, "offset {offset}");
            assert_eq!(bytes, *original, "offset {offset}");
        }
        assert_eq!(read_all(&log).await, all_bytes);
        let next = log.append(&batch(&[b"after rebuild"], 1_000_000), 0, 0).await.unwrap();
        assert_eq!(next.first_offset, end);
    });
}

/// A deleted `.index` is rebuilt from the log, even below the recovery point.
#[test]
fn a_deleted_index_is_rebuilt_even_below_the_recovery_point() {
    assert_damaged_index_is_rebuilt("noindex", |path| std::fs::remove_file(path).unwrap());
}

/// An `.index` whose length is not a whole number of entries is rebuilt from the log.
#[test]
fn an_index_cut_to_a_partial_entry_is_rebuilt() {
    assert_damaged_index_is_rebuilt("shortindex", |path| {
        std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(5).unwrap();
    });
}

/// Rewrites the count fields and re-signs the CRC, so only the count rule can refuse it.
fn with_counts(mut b: Vec<u8>, record_count: i32, last_offset_delta: i32) -> Vec<u8> {
    b[23..27].copy_from_slice(&last_offset_delta.to_be_bytes());
    b[57..61].copy_from_slice(&record_count.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn with_batch_length(mut b: Vec<u8>, batch_length: i32) -> Vec<u8> {
    b[8..12].copy_from_slice(&batch_length.to_be_bytes());
    b
}

/// Bad batches are refused with the right Kafka error, and no byte of the request is written.
#[test]
fn bad_batches_are_refused_with_kafka_errors_and_nothing_is_written() {
    let tmp = TempDir::new("badinput");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let log = PartitionLog::open(&dir, config(), OpenHint::default()).await.unwrap();
        for n in 0..20 {
            log.append(&batch(&[&value(n, 0), &value(n, 1)], n as i64), 0, 0).await.unwrap();
        }
        log.sync_to(log.next_offset()).await.unwrap();
        fn good() -> Vec<u8> {
            batch(&[b"one", b"two", b"three"], 5_000)
        }
        let valid_len = good().len();

        let mut bad_crc = good();
        bad_crc[valid_len - 2] ^= 0x01;
        let mut wrong_magic = good();
        wrong_magic[16] = 1;
        let mut second_bad = good();
        second_bad.extend_from_slice(&bad_crc);
        let cases: Vec<(&str, Vec<u8>, fn(&BatchError) -> bool, i16)> = vec![
            ("bad crc", bad_crc, |e| matches!(e, BatchError::CrcMismatch { position: 0, .. }), 2),
            ("wrong magic", wrong_magic, |e| matches!(e, BatchError::WrongMagic { position: 0, magic: 1 }), 87),
            (
                "batchLength past the buffer",
                with_batch_length(good(), valid_len as i32 - 12 + 100),
                |e| matches!(e, BatchError::Truncated { position: 0, .. }),
                2,
            ),
            (
                "batchLength smaller than the header",
                with_batch_length(good(), 10),
                |e| matches!(e, BatchError::LengthTooSmall { position: 0, batch_length: 10 }),
                2,
            ),
            (
                "recordCount 2^31-1",
                with_counts(good(), i32::MAX, i32::MAX - 1),
                |e| matches!(e, BatchError::InvalidRecordCount { position: 0, record_count: i32::MAX, .. }),
                87,
            ),
            (
                "valid batch then a corrupt one",
                second_bad,
                // The position names the second batch: the first was fine and is not written either.
                |e| matches!(e, BatchError::CrcMismatch { position, .. } if *position == good().len()),
                2,
            ),
            ("no batch at all", Vec::new(), |e| matches!(e, BatchError::Empty), 2),
        ];
        let files_before = dir_file_sizes(&dir);
        let end_before = log.log_end_offset();
        for (label, records, expected, code) in cases {
            match log.append(&records, 0, 0).await {
                Err(e @ LogError::InvalidBatch(_)) => {
                    let LogError::InvalidBatch(inner) = &e else { unreachable!() };
                    assert!(expected(inner), "{label}: got {inner:?}");
                    assert_eq!(e.kafka_error_code(), code, "{label}");
                }
                other => panic!("{label}: expected InvalidBatch, got {other:?}"),
            }
            assert_eq!(log.log_end_offset(), end_before, "{label}");
            assert_eq!(log.next_offset(), end_before, "{label}");
        }
        log.sync_to(log.next_offset()).await.unwrap();
        assert_eq!(dir_file_sizes(&dir), files_before, "no byte of a refused append reached a file");
        let info = log.append(&good(), 0, 0).await.unwrap();
        assert_eq!((info.first_offset, info.last_offset), (end_before, end_before + 2));
        let (bytes, _) = log.read_copy(end_before, 1 << 20, true).await.unwrap();
        assert_eq!(headers(&bytes).len(), 1, "only the valid batch follows");
        read_all(&log).await;
    });
}

/// Every file of the partition directory and its size, sorted by name.
fn dir_file_sizes(dir: &Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len()))
        .collect();
    out.sort();
    out
}

/// Rebuilt time indexes end with the segment's newest timestamp, found after a clean restart.
#[test]
fn rebuilt_time_indexes_keep_each_segments_newest_timestamp() {
    // Kafka's `recover` appends that entry too. Without it a clean restart reads a closed
    // segment's max timestamp from its last sparse entry and skips the segment's tail.
    let tmp = TempDir::new("sealrebuild");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let (log, segments) = write_log(&dir).await;
        drop(log);
        // As after a crash with no checkpoint: every segment is re-validated and re-indexed.
        let log = PartitionLog::open(&dir, config(), OpenHint::default()).await.unwrap();
        let end = log.log_end_offset();
        log.close().await.unwrap();
        drop(log);
        let hint = OpenHint { recovery_point: end, log_start_offset: 0, clean_shutdown: true };
        let log = PartitionLog::open(&dir, config(), hint).await.unwrap();
        for (base, batches) in &segments {
            let newest = batches.last().unwrap().header;
            let found = log.offset_for_timestamp(newest.max_timestamp).await.unwrap();
            assert_eq!(found, Some((newest.last_offset(), newest.max_timestamp)), "segment {base}");
        }
    });
}
