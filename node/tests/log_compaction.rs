//! Log compaction on the partition log: the latest record per key survives at its original
//! offset, tombstones go after `delete.retention.ms`, aborted transactions are dropped, and
//! a cleaning cut short by a crash is finished (or undone) when the log is opened again.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice::log::{LogConfig, LogError, OpenHint, PartitionLog};
use sluice::runtime::test_executor;
use sluice::testing::TempDir;
use std::collections::BTreeMap;
use std::rc::Rc;

const BUDGET: usize = 64 << 20;
const DAY: i64 = 86_400_000;

fn compacted() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        cleanup_compact: true,
        cleanup_delete: false,
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: DAY,
        ..LogConfig::default()
    }
}

struct Rec {
    key: Option<String>,
    value: Option<String>,
    timestamp: i64,
}

fn rec(key: &str, value: Option<&str>, timestamp: i64) -> Rec {
    Rec { key: Some(key.to_string()), value: value.map(str::to_string), timestamp }
}

/// A produced batch of `records` (offsets from 0), with a codec and, for an idempotent or
/// transactional producer, its fields.
fn encode(records: &[Rec], compression: Compression, producer: Option<(i64, i32, bool)>) -> Vec<u8> {
    let (producer_id, sequence, transactional) = producer.unwrap_or((-1, -1, false));
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: if producer_id >= 0 { 0 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: if producer_id >= 0 { sequence + i as i32 } else { -1 },
            timestamp: r.timestamp,
            key: r.key.as_ref().map(|k| Bytes::from(k.clone().into_bytes())),
            value: r.value.as_ref().map(|v| Bytes::from(v.clone().into_bytes())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression }).unwrap();
    buf.to_vec()
}

/// Every record readable from the log start: offset → (key, value, timestamp), plus the
/// control records' offsets.
async fn read_all(log: &Rc<PartitionLog>) -> (BTreeMap<i64, (Option<String>, Option<String>, i64)>, Vec<i64>) {
    let mut out = BTreeMap::new();
    let mut controls = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let (bytes, info) = log.read_copy(offset, 1 << 20, true).await.unwrap();
        let mut buf = Bytes::from(bytes);
        while !buf.is_empty() {
            let set = RecordBatchDecoder::decode(&mut buf).unwrap();
            for r in set.records {
                if r.control {
                    controls.push(r.offset);
                    continue;
                }
                let text = |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
                out.insert(r.offset, (text(r.key), text(r.value), r.timestamp));
            }
        }
        assert!(info.next_offset > offset, "reads advance");
        offset = info.next_offset;
    }
    (out, controls)
}

/// The latest (offset, value) per key of what was appended.
fn latest(history: &[(i64, String, Option<String>)]) -> BTreeMap<String, (i64, Option<String>)> {
    let mut m = BTreeMap::new();
    for (offset, key, value) in history {
        m.insert(key.clone(), (*offset, value.clone()));
    }
    m
}

/// Appends `rounds` × 10 keys of updates in small batches of assorted codecs; returns the
/// history (offset, key, value).
async fn append_updates(log: &Rc<PartitionLog>, rounds: usize, ts: i64) -> Vec<(i64, String, Option<String>)> {
    let codecs = [Compression::None, Compression::Lz4, Compression::Zstd, Compression::Gzip, Compression::Snappy];
    let mut history = Vec::new();
    for round in 0..rounds {
        for chunk in 0..2 {
            let recs: Vec<Rec> = (0..5)
                .map(|i| {
                    let k = chunk * 5 + i;
                    rec(&format!("k{k}"), Some(&format!("v{k}-{round}-{}", "x".repeat(20))), ts + round as i64)
                })
                .collect();
            let bytes = encode(&recs, codecs[(round + chunk) % codecs.len()], None);
            let info = log.append(&bytes, 0, ts).await.unwrap();
            for (i, r) in recs.iter().enumerate() {
                history.push((info.first_offset + i as i64, r.key.clone().unwrap(), r.value.clone()));
            }
        }
    }
    history
}

#[test]
fn cleaning_keeps_the_latest_value_per_key_at_its_offset_and_drops_tombstones_after_the_horizon() {
    let tmp = TempDir::new("compact");
    let dir = tmp.path().join("c-0");
    test_executor().run(async move {
        let now = 1_700_000_000_000i64;
        let log = PartitionLog::open(&dir, compacted(), OpenHint::default()).await.unwrap();
        let mut history = append_updates(&log, 30, now).await;
        let tomb = log.append(&encode(&[rec("k3", None, now + 100)], Compression::None, None), 0, now).await.unwrap();
        history.push((tomb.first_offset, "k3".into(), None));
        log.roll_now().await.unwrap();
        let end = log.log_end_offset();
        let before = log.size_bytes();
        let segments_before = log.segment_count();

        let stats = log.clean(now, BUDGET).await.unwrap().expect("a dirty log with ratio 0 is due");
        assert!(stats.batches_dropped > 0 && stats.keys == 10, "{stats:?}");
        assert_eq!(log.log_end_offset(), end, "cleaning never moves the log end");
        assert!(log.size_bytes() < before / 5, "{} of {before} bytes left", log.size_bytes());
        let (records, _) = read_all(&log).await;
        let want = latest(&history);
        let got: BTreeMap<String, (i64, Option<String>)> =
            records.iter().map(|(o, (k, v, _))| (k.clone().unwrap(), (*o, v.clone()))).collect();
        assert_eq!(got, want, "exactly the latest record of every key, at its original offset");
        assert_eq!(records.len(), 10, "one record per key (the tombstone counts until its horizon)");
        let tomb_ts = records[&tomb.first_offset].2;
        assert_eq!(tomb_ts, now + 100, "timestamps survive the delete-horizon rebase");
        assert!(log.clean(now, BUDGET).await.unwrap().is_none(), "nothing dirty: nothing to do");

        // New updates make the log dirty again; past the horizon the tombstone goes.
        let k0 =
            log.append(&encode(&[rec("k0", Some("new"), now + 1000)], Compression::Lz4, None), 0, now).await.unwrap();
        history.push((k0.first_offset, "k0".into(), Some("new".into())));
        log.roll_now().await.unwrap();
        log.clean(now + DAY + 1, BUDGET).await.unwrap().expect("dirty again");
        assert!(
            log.segment_count() <= 3,
            "{} of {segments_before} segments: small cleaned ones are merged",
            log.segment_count()
        );
        let (records, _) = read_all(&log).await;
        let mut want = latest(&history);
        want.remove("k3");
        let got: BTreeMap<String, (i64, Option<String>)> =
            records.iter().map(|(o, (k, v, _))| (k.clone().unwrap(), (*o, v.clone()))).collect();
        assert_eq!(got, want, "the tombstone is gone once its delete horizon passed");

        // A restart (clean and after a crash) reads the same log.
        let end = log.log_end_offset();
        log.close().await.unwrap();
        drop(log);
        for clean_shutdown in [true, false] {
            let hint = OpenHint { clean_shutdown, ..OpenHint::default() };
            let log = PartitionLog::open(&dir, compacted(), hint).await.unwrap();
            assert_eq!(log.log_end_offset(), end);
            let (again, _) = read_all(&log).await;
            assert_eq!(again, records, "clean_shutdown={clean_shutdown}");
            log.close().await.unwrap();
        }
    });
}

#[test]
fn compacted_topics_refuse_records_without_a_key() {
    let tmp = TempDir::new("keyless");
    let dir = tmp.path().join("c-0");
    test_executor().run(async move {
        let log = PartitionLog::open(&dir, compacted(), OpenHint::default()).await.unwrap();
        let keyless = Rec { key: None, value: Some("v".into()), timestamp: 1 };
        let err = log.append(&encode(&[rec("a", Some("1"), 1), keyless], Compression::Lz4, None), 0, 1).await;
        match err {
            Err(LogError::InvalidBatch(e)) => assert_eq!(e.kafka_error_code(), 87, "INVALID_RECORD: {e}"),
            other => panic!("expected INVALID_RECORD, got {other:?}"),
        }
        assert_eq!(log.log_end_offset(), 0, "nothing of the batch was written");
        log.append(&encode(&[rec("a", Some("1"), 1)], Compression::None, None), 0, 1).await.unwrap();
        assert_eq!(log.log_end_offset(), 1);
    });
}

#[test]
fn aborted_transactions_are_dropped_and_markers_outlive_their_data_until_the_horizon() {
    let tmp = TempDir::new("compact-txn");
    let dir = tmp.path().join("c-0");
    test_executor().run(async move {
        let now = 1_700_000_000_000i64;
        let log = PartitionLog::open(&dir, compacted(), OpenHint::default()).await.unwrap();
        // Producer 7 commits t1=committed; producer 8 writes t1 and t2 then aborts.
        let committed = encode(&[rec("t1", Some("committed"), now)], Compression::None, Some((7, 0, true)));
        let c = log.append(&committed, 0, now).await.unwrap();
        log.append_marker(7, 0, 1, 0, now).await.unwrap();
        let aborted = encode(
            &[rec("t1", Some("aborted"), now), rec("t2", Some("aborted"), now)],
            Compression::Zstd,
            Some((8, 0, true)),
        );
        log.append(&aborted, 0, now).await.unwrap();
        log.append_marker(8, 0, 0, 0, now).await.unwrap();
        // Padding, so the transactions sit in closed segments.
        append_updates(&log, 10, now).await;
        log.roll_now().await.unwrap();
        log.clean(now, BUDGET).await.unwrap().expect("due");
        let (records, controls) = read_all(&log).await;
        assert!(records.values().all(|(_, v, _)| v.as_deref() != Some("aborted")), "aborted data is gone");
        assert_eq!(
            records.get(&c.first_offset).map(|r| r.1.clone()),
            Some(Some("committed".into())),
            "t1: the committed value"
        );
        assert_eq!(controls.len(), 2, "both markers stay until their horizon: {controls:?}");
        assert_eq!(log.last_stable_offset(), log.log_end_offset(), "no transaction reopened");

        // Past the horizon: the abort marker has no data left and goes; the commit marker's
        // transaction still has t1 in the log, so it stays.
        append_updates(&log, 1, now).await;
        log.roll_now().await.unwrap();
        log.clean(now + DAY + 1, BUDGET).await.unwrap().expect("due");
        let (_, controls) = read_all(&log).await;
        assert_eq!(controls.len(), 1, "only the commit marker is left: {controls:?}");
        let end = log.log_end_offset();
        log.close().await.unwrap();
        drop(log);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "snapshot") {
                std::fs::remove_file(path).unwrap(); // rebuild producer state from the log
            }
        }
        let log = PartitionLog::open(&dir, compacted(), OpenHint::default()).await.unwrap();
        assert_eq!(log.last_stable_offset(), end, "replaying the cleaned log opens no transaction");
        // Producer 8's idempotence state survives in its empty last batch: its next
        // sequence is accepted, a replay of its last one is a duplicate.
        let next = encode(&[rec("k9", Some("after"), now)], Compression::None, Some((8, 2, false)));
        log.append(&next, 0, now).await.unwrap();
    });
}

#[test]
fn a_cleaning_cut_short_is_finished_or_undone_on_open() {
    let tmp = TempDir::new("compact-crash");
    let dir = tmp.path().join("c-0");
    let copy = tmp.path().join("copy-0");
    test_executor().run(async move {
        let now = 1_700_000_000_000i64;
        let log = PartitionLog::open(&dir, compacted(), OpenHint::default()).await.unwrap();
        append_updates(&log, 20, now).await;
        log.roll_now().await.unwrap();
        log.close().await.unwrap();
        let (before, _) = read_all(&PartitionLog::open(&dir, compacted(), OpenHint::default()).await.unwrap()).await;
        // Keep a copy of the uncleaned log, then clean the original.
        std::fs::create_dir_all(&copy).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
        // Segments big enough that the whole log cleans into one segment (one swap file).
        let one_group = LogConfig { segment_bytes: 1 << 20, ..compacted() };
        let log = PartitionLog::open(&dir, one_group, OpenHint::default()).await.unwrap();
        log.clean(now, BUDGET).await.unwrap().expect("due");
        assert_eq!(log.segment_count(), 2, "one cleaned segment and the active one");
        let (cleaned, _) = read_all(&log).await;
        log.close().await.unwrap();
        let first = log.segment_bases()[0];
        let cleaned_file = dir.join(format!("{first:020}.log"));

        // Crash before the commit point: a `.cleaned` file beside intact segments.
        let crash = tmp.path().join("crash1-0");
        copy_dir(&copy, &crash);
        std::fs::copy(&cleaned_file, crash.join(format!("{first:020}.log.cleaned"))).unwrap();
        let log = PartitionLog::open(&crash, compacted(), OpenHint::default()).await.unwrap();
        assert_eq!(read_all(&log).await.0, before, "undone: the old segments are the log");
        assert!(!crash.join(format!("{first:020}.log.cleaned")).exists());

        // Crash after it: a `.swap` file, with all or some of the old segments still there.
        for remove_some in [false, true] {
            let crash = tmp.path().join(format!("crash2-{}", remove_some as u8));
            copy_dir(&copy, &crash);
            std::fs::copy(&cleaned_file, crash.join(format!("{first:020}.log.swap"))).unwrap();
            if remove_some {
                let second = sluice_segments(&crash)[1];
                std::fs::remove_file(crash.join(format!("{second:020}.log"))).unwrap();
            }
            let log = PartitionLog::open(&crash, compacted(), OpenHint::default()).await.unwrap();
            let (got, _) = read_all(&log).await;
            assert_eq!(got, cleaned, "finished: the log is what the cleaning made it");
            assert!(!crash.join(format!("{first:020}.log.swap")).exists());
        }
    });
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn sluice_segments(dir: &std::path::Path) -> Vec<i64> {
    let mut bases: Vec<i64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".log").and_then(|s| s.parse().ok())
        })
        .collect();
    bases.sort_unstable();
    bases
}

#[test]
fn a_key_map_smaller_than_the_dirty_log_cleans_it_in_several_passes() {
    let tmp = TempDir::new("compact-budget");
    let dir = tmp.path().join("c-0");
    test_executor().run(async move {
        let now = 1_700_000_000_000i64;
        let log = PartitionLog::open(&dir, compacted(), OpenHint::default()).await.unwrap();
        let history = append_updates(&log, 30, now).await;
        log.roll_now().await.unwrap();
        let mut passes = 0;
        // A budget of one byte: each pass takes one dirty segment into its map.
        while let Some(stats) = log.clean(now, 1).await.unwrap() {
            passes += 1;
            assert!(stats.cleaned_upto <= log.log_end_offset());
            assert!(passes < 100, "cleaning must converge");
        }
        assert!(passes > 3, "one dirty segment per pass: {passes} passes");
        let (records, _) = read_all(&log).await;
        let got: BTreeMap<String, (i64, Option<String>)> =
            records.iter().map(|(o, (k, v, _))| (k.clone().unwrap(), (*o, v.clone()))).collect();
        assert_eq!(got, latest(&history));
        assert_eq!(records.len(), 10, "fully compacted in the end");
    });
}

/// The latest offset of every key among the records a log holds.
fn latest_read(records: &BTreeMap<i64, (Option<String>, Option<String>, i64)>) -> BTreeMap<String, i64> {
    records.iter().map(|(o, (k, _, _))| (k.clone().unwrap(), *o)).collect()
}

/// A truncation below the cleaner checkpoint (a follower cut back to its leader's log)
/// brings the checkpoint down to the new log end, on disk too, as Kafka's
/// `maybeTruncateCheckpoint` does: what is appended again there is dirty, and the next
/// cleaning keeps only the latest record of each of its keys.
#[test]
fn a_truncation_below_the_cleaner_checkpoint_lowers_it_and_what_is_appended_again_gets_cleaned() {
    let tmp = TempDir::new("compact-truncate");
    let dir = tmp.path().join("c-0");
    test_executor().run(async move {
        let now = 1_700_000_000_000i64;
        let log = PartitionLog::open(&dir, compacted(), OpenHint::default()).await.unwrap();
        append_updates(&log, 30, now).await;
        log.roll_now().await.unwrap();
        let checkpoint = log.clean(now, BUDGET).await.unwrap().expect("due").cleaned_upto;
        assert_eq!(checkpoint, log.log_end_offset(), "everything closed was cleaned");
        let end = log.truncate_to(checkpoint / 2).await.unwrap();
        assert!(end > 0 && end <= checkpoint / 2);
        assert_eq!(log.cleaned_upto(), end, "the checkpoint comes down to the new end");
        let on_disk = std::fs::read_to_string(dir.join("cleaner-offset-checkpoint")).unwrap();
        assert_eq!(on_disk.trim(), end.to_string());

        // The same key three times, well below the old checkpoint.
        let mut appended = Vec::new();
        for round in 0..3 {
            let bytes = encode(&[rec("again", Some("v"), now + round)], Compression::None, None);
            appended.push(log.append(&bytes, 0, now).await.unwrap().first_offset);
        }
        assert!(log.log_end_offset() < checkpoint);
        log.roll_now().await.unwrap();
        log.clean(now, BUDGET).await.unwrap().expect("what was appended again is dirty");
        let (records, _) = read_all(&log).await;
        let again: Vec<i64> =
            records.iter().filter(|(_, (k, _, _))| k.as_deref() == Some("again")).map(|(o, _)| *o).collect();
        assert_eq!(again, vec![appended[2]], "only the latest record of the key is left");
        log.close().await.unwrap();
        let log = PartitionLog::open(&dir, compacted(), OpenHint::default()).await.unwrap();
        assert_eq!(log.cleaned_upto(), log.log_end_offset(), "reopened: cleaned up to the end");
    });
}

/// A truncation while a cleaning is under way (here at a segment boundary, after the
/// cleaning took the log's segments and began its key map) makes the cleaning give up:
/// its map holds offsets the truncation removed, and cleaning with it would drop the
/// records that are now the latest of their keys. After it, every key's latest record
/// below the cut is still there, and a cleaning started afterwards cleans the truncated log.
#[test]
fn a_truncation_during_a_cleaning_makes_it_give_up_rather_than_drop_what_is_now_latest() {
    let tmp = TempDir::new("compact-truncate-race");
    let dir = tmp.path().join("c-0");
    test_executor().run(async move {
        let now = 1_700_000_000_000i64;
        let log = PartitionLog::open(&dir, compacted(), OpenHint::default()).await.unwrap();
        let history = append_updates(&log, 30, now).await;
        log.roll_now().await.unwrap();
        let bases = log.segment_bases();
        let cut = bases[bases.len() / 2];
        let cleaning = {
            let log = log.clone();
            glommio::spawn_local(async move { log.clean(now, BUDGET).await })
        };
        futures_lite::future::yield_now().await; // the cleaning takes the segments and starts reading
        assert_eq!(log.truncate_to(cut).await.unwrap(), cut);
        cleaning.await.unwrap();
        let below_cut: Vec<_> = history.iter().filter(|(o, _, _)| *o < cut).cloned().collect();
        let want: BTreeMap<String, i64> = latest(&below_cut).into_iter().map(|(k, (o, _))| (k, o)).collect();
        let (records, _) = read_all(&log).await;
        assert!(records.keys().all(|o| *o < cut), "nothing past the cut came back");
        assert_eq!(latest_read(&records), want, "every key's latest record below the cut is there");
        assert!(log.cleaned_upto() <= cut);

        log.roll_now().await.unwrap(); // the segment the cut left last is active: seal it
        log.clean(now, BUDGET).await.unwrap().expect("due");
        let (records, _) = read_all(&log).await;
        assert_eq!(latest_read(&records), want);
        assert_eq!(records.len(), want.len(), "cleaned: one record per key");
    });
}
