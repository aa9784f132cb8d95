//! The partition log's public behaviour: append, read, roll, sync, truncate, retention.

mod common;

use common::{batch, headers, small_segments};
use sluice::log::{LogConfig, LogDir, OpenHint, PartitionLog, TopicPartition};
use sluice::runtime::test_executor;
use sluice::testing::TempDir;

#[test]
fn appended_batches_get_consecutive_offsets_and_read_back_whole() {
    let tmp = TempDir::new("basics");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let log = PartitionLog::open(&dir, LogConfig::default(), OpenHint::default()).await.unwrap();
        let a = log.append(&batch(&[b"a", b"b", b"c"], 1000), 0, 0).await.unwrap();
        let b = log.append(&batch(&[b"d"], 2000), 0, 0).await.unwrap();
        assert_eq!((a.first_offset, a.last_offset), (0, 2));
        assert_eq!((b.first_offset, b.last_offset), (3, 3));
        assert_eq!(log.log_end_offset(), 4);
        let (bytes, info) = log.read_copy(1, 1 << 20, true).await.unwrap();
        assert_eq!(info.first_offset, 0, "a batch is never split");
        assert_eq!(info.next_offset, 4);
        let hs = headers(&bytes);
        assert_eq!(hs.iter().map(|h| h.base_offset).collect::<Vec<_>>(), vec![0, 3]);
        let (rest, info) = log.read_copy(3, 1 << 20, true).await.unwrap();
        assert_eq!(headers(&rest).len(), 1);
        assert_eq!(info.next_offset, 4);
        let (empty, info) = log.read_copy(4, 1 << 20, true).await.unwrap();
        assert!(empty.is_empty() && info.range.is_none());
        assert!(log.read(5, 100, true).await.is_err(), "past the log end is out of range");
    });
}

#[test]
fn segments_roll_at_segment_bytes_and_reads_cross_them() {
    let tmp = TempDir::new("roll");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let log = PartitionLog::open(&dir, small_segments(), OpenHint::default()).await.unwrap();
        let value = vec![7u8; 300];
        for i in 0..60 {
            log.append(&batch(&[&value, &value], i), 0, 0).await.unwrap();
        }
        assert!(log.segment_count() > 5, "{} segments", log.segment_count());
        let mut offset = 0;
        let mut seen = 0;
        while offset < log.log_end_offset() {
            let (bytes, info) = log.read_copy(offset, 1000, true).await.unwrap();
            let hs = headers(&bytes);
            assert_eq!(hs[0].base_offset, offset);
            seen += hs.iter().map(|h| h.record_count).sum::<i32>();
            offset = info.next_offset;
        }
        assert_eq!(seen, 120);
        for base in log.segment_bases() {
            let name = format!("{base:020}.log");
            assert!(dir.join(&name).exists(), "{name}");
            assert!(std::fs::metadata(dir.join(&name)).unwrap().len() <= 4096);
        }
    });
}

#[test]
fn max_bytes_limits_a_read_to_whole_batches_but_returns_at_least_one() {
    let tmp = TempDir::new("maxbytes");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let log = PartitionLog::open(&dir, LogConfig::default(), OpenHint::default()).await.unwrap();
        let big = vec![1u8; 5000];
        for _ in 0..4 {
            log.append(&batch(&[&big], 0), 0, 0).await.unwrap();
        }
        let one = batch(&[&big], 0).len();
        let (bytes, _) = log.read_copy(0, one * 2 + 10, true).await.unwrap();
        assert_eq!(bytes.len(), one * 2);
        let (bytes, info) = log.read_copy(1, 100, true).await.unwrap();
        assert_eq!(bytes.len(), one, "at least one batch even when it exceeds max_bytes");
        assert_eq!(info.next_offset, 2);
        let info = log.read(1, 100, false).await.unwrap();
        assert!(info.range.is_none(), "without at_least_one nothing fits");
    });
}

#[test]
fn group_commit_shares_fdatasyncs_and_advances_the_recovery_point() {
    const APPENDS: u64 = 32;
    let tmp = TempDir::new("sync");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let log = PartitionLog::open(&dir, LogConfig::default(), OpenHint::default()).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..APPENDS {
            let log = log.clone();
            tasks.push(glommio::spawn_local(async move {
                let info = log.append(&batch(&[b"x"], i as i64), 0, 0).await.unwrap();
                log.sync_to(info.last_offset + 1).await.unwrap();
                info.last_offset
            }));
        }
        for t in tasks {
            let last = t.await;
            assert!(log.recovery_point() > last);
        }
        assert_eq!(log.recovery_point(), APPENDS as i64);
        // 32 appends each waited for their own offset to be synced; concurrent waiters share
        // a round (one waiter runs it, the rest wait for it and are covered by it or the next),
        // so a handful of rounds serve all 32. One round per append would be 32.
        let rounds = log.sync_rounds();
        assert!(rounds >= 1, "nothing was synced");
        assert!(rounds <= APPENDS / 4, "{rounds} fdatasync rounds for {APPENDS} concurrent synced appends");
    });
}

#[test]
fn truncation_removes_whole_batches_and_appends_continue_from_there() {
    let tmp = TempDir::new("truncate");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let log = PartitionLog::open(&dir, small_segments(), OpenHint::default()).await.unwrap();
        let value = vec![3u8; 500];
        for i in 0..30 {
            log.append(&batch(&[&value], i), 0, 0).await.unwrap();
        }
        let segments_before = log.segment_count();
        assert_eq!(log.truncate_to(12).await.unwrap(), 12);
        assert!(log.segment_count() < segments_before);
        assert_eq!(log.log_end_offset(), 12);
        let info = log.append(&batch(&[b"after"], 99), 0, 0).await.unwrap();
        assert_eq!(info.first_offset, 12);
        let (bytes, _) = log.read_copy(12, 1 << 20, true).await.unwrap();
        assert_eq!(headers(&bytes)[0].base_offset, 12);
    });
}

#[test]
fn retention_deletes_old_closed_segments_and_moves_the_log_start() {
    let tmp = TempDir::new("retention");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let config = LogConfig { retention_ms: 1000, ..small_segments() };
        let log = PartitionLog::open(&dir, config, OpenHint::default()).await.unwrap();
        let value = vec![3u8; 500];
        for i in 0..20 {
            // Old records first, then recent ones.
            let ts = if i < 10 { 1_000 } else { 100_000 };
            log.append(&batch(&[&value], ts + i), 0, 0).await.unwrap();
        }
        let out = log.enforce_retention(100_500).await.unwrap();
        assert!(out.deleted_segments > 0);
        assert!(out.log_start_offset > 0 && out.log_start_offset <= 10, "{out:?}");
        assert!(log.read(0, 100, true).await.is_err(), "below the log start is out of range");
        let (bytes, _) = log.read_copy(out.log_start_offset, 1 << 20, true).await.unwrap();
        assert_eq!(headers(&bytes)[0].base_offset, out.log_start_offset);
        assert_eq!(log.advance_log_start(15).await.unwrap(), 15);
        assert!(log.segment_bases()[0] <= 15);
    });
}

/// Descriptors of this process open on files of `dir` that have been deleted.
fn deleted_files_held(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|t| t.starts_with(&*dir.to_string_lossy()) && t.ends_with(" (deleted)"))
        .collect()
}

/// A partition that is only ever written with acks=1 (no sync asked for, no `flush.*`):
/// each rolled segment is still flushed in the background, `log.roll.flush.delay.ms` after
/// its roll (Kafka flushes at the roll itself), so the recovery point follows the rolls; the
/// active segment is not part of that flush. A segment retention deletes before its flush is
/// let go of at once — its descriptor and its disk space are not held until the flush.
#[test]
fn rolled_segments_are_flushed_after_the_delay_and_let_go_of_without_any_sync_asked_for() {
    let tmp = TempDir::new("roll-flush");
    let dir = tmp.path().join("t-0");
    let dir2 = dir.clone();
    test_executor().run(async move {
        let config = LogConfig { retention_ms: 1000, roll_flush_delay_ms: 1500, ..small_segments() };
        let log = PartitionLog::open(&dir, config, OpenHint::default()).await.unwrap();
        let value = vec![3u8; 500];
        for i in 0..40 {
            let ts = if i < 30 { 1_000 } else { 100_000 };
            log.append(&batch(&[&value], ts + i), 0, 0).await.unwrap();
        }
        let last_base = *log.segment_bases().last().unwrap();
        assert!(last_base > 20, "{:?}", log.segment_bases());
        assert!(log.next_offset() > last_base, "the active segment holds data");
        assert_eq!(log.recovery_point(), 0, "nothing is flushed before the delay");
        // Retention before the flush: the deleted segments' descriptors go now.
        let out = log.enforce_retention(100_500).await.unwrap();
        assert!(out.deleted_segments >= 3, "{out:?}");
        // glommio closes a dropped file through the ring: give the executor a moment.
        let mut held = deleted_files_held(&dir2);
        for _ in 0..20 {
            if held.is_empty() {
                break;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            held = deleted_files_held(&dir2);
        }
        assert!(held.is_empty(), "deleted segments still held open: {held:?}");
        assert_eq!(log.recovery_point(), 0, "still nothing flushed");
        for _ in 0..500 {
            if log.recovery_point() >= last_base {
                break;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(log.recovery_point(), last_base, "the sealed segments were flushed, the active one was not");
    });
}

#[test]
fn offsets_are_found_by_timestamp_at_record_granularity() {
    let tmp = TempDir::new("timestamp");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let log = PartitionLog::open(&dir, small_segments(), OpenHint::default()).await.unwrap();
        let value = vec![0u8; 200];
        // Batch i holds 3 records with timestamps 1000*i, 1000*i+1, 1000*i+2.
        for i in 0..40i64 {
            log.append(&batch(&[&value, &value, &value], 1000 * i), 0, 0).await.unwrap();
        }
        assert_eq!(log.offset_for_timestamp(0).await.unwrap(), Some((0, 0)));
        assert_eq!(log.offset_for_timestamp(5001).await.unwrap(), Some((16, 5001)));
        assert_eq!(log.offset_for_timestamp(5003).await.unwrap(), Some((18, 6000)));
        assert_eq!(log.offset_for_timestamp(39_002).await.unwrap(), Some((119, 39_002)));
        assert_eq!(log.offset_for_timestamp(39_003).await.unwrap(), None);
        assert_eq!(log.max_timestamp_offset().await.unwrap(), Some((119, 39_002)));
    });
}

#[test]
fn a_clean_close_and_reopen_keeps_everything_and_writes_kafka_checkpoints() {
    let tmp = TempDir::new("reopen");
    let path = tmp.path().to_path_buf();
    test_executor().run(async move {
        let tp = TopicPartition::new("orders", 0);
        let mut dir = LogDir::open(&path, &LogConfig::default()).await.unwrap();
        let log = dir.open_partition(tp.clone(), small_segments()).await.unwrap();
        for i in 0..50 {
            log.append(&batch(&[&[i as u8; 300]], i), 5, 0).await.unwrap();
        }
        dir.close().await.unwrap();
        assert!(path.join(".kafka_cleanshutdown").exists());
        let rp = std::fs::read_to_string(path.join("recovery-point-offset-checkpoint")).unwrap();
        assert_eq!(rp, "0\n1\norders 0 50\n");
        let epochs = std::fs::read_to_string(path.join("orders-0/leader-epoch-checkpoint")).unwrap();
        assert_eq!(epochs, "0\n1\n5 0\n");

        let dir = LogDir::open(&path, &small_segments()).await.unwrap();
        assert!(!path.join(".kafka_cleanshutdown").exists(), "the marker is consumed on open");
        let log = dir.get(&tp).unwrap().clone();
        assert_eq!(log.log_end_offset(), 50);
        let info = log.append(&batch(&[b"next"], 99), 5, 0).await.unwrap();
        assert_eq!(info.first_offset, 50);
        let (bytes, _) = log.read_copy(20, 1 << 20, true).await.unwrap();
        assert_eq!(headers(&bytes)[0].base_offset, 20);
    });
}

#[test]
fn background_maintenance_applies_retention_from_its_low_share_queue() {
    let tmp = TempDir::new("background");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        use sluice::log::background::{background_queue, spawn_maintenance, Maintained};
        let config = LogConfig { retention_ms: 60_000, ..small_segments() };
        let log = PartitionLog::open(&dir, config, OpenHint::default()).await.unwrap();
        let value = vec![1u8; 500];
        for i in 0..20 {
            // Timestamps from 1970: long past retention.ms by the wall clock.
            log.append(&batch(&[&value], 1_000 + i), 0, 0).await.unwrap();
        }
        let before = log.segment_count();
        let maintained = std::rc::Rc::new(Maintained::default());
        maintained.add(&log);
        spawn_maintenance(&maintained, background_queue(), std::time::Duration::from_millis(5));
        for _ in 0..200 {
            if log.segment_count() == 1 {
                break;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(before > 1);
        assert_eq!(log.segment_count(), 1, "every closed segment expired; the active one stays");
        assert_eq!(log.log_start_offset(), log.segment_bases()[0]);
    });
}

#[test]
fn flush_messages_syncs_without_anyone_waiting() {
    let tmp = TempDir::new("flushmsgs");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let config = LogConfig { flush_messages: 10, ..LogConfig::default() };
        let log = PartitionLog::open(&dir, config, OpenHint::default()).await.unwrap();
        for i in 0..9 {
            log.append(&batch(&[b"v"], i), 0, 0).await.unwrap();
        }
        glommio::timer::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(log.recovery_point(), 0, "below flush.messages nothing is synced");
        log.append(&batch(&[b"v"], 9), 0, 0).await.unwrap();
        for _ in 0..200 {
            if log.recovery_point() == 10 {
                break;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(log.recovery_point(), 10);
    });
}

#[test]
fn flush_ms_syncs_old_unsynced_appends() {
    let tmp = TempDir::new("flushms");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let config = LogConfig { flush_ms: 1000, ..LogConfig::default() };
        let log = PartitionLog::open(&dir, config, OpenHint::default()).await.unwrap();
        log.append(&batch(&[b"v"], 0), 0, 50_000).await.unwrap();
        assert!(!log.flush_if_due(50_999).await.unwrap(), "not yet due");
        assert_eq!(log.recovery_point(), 0);
        assert!(log.flush_if_due(51_000).await.unwrap());
        assert_eq!(log.recovery_point(), 1);
    });
}

#[test]
fn segments_roll_on_segment_ms_and_on_a_full_index() {
    let tmp = TempDir::new("rollreasons");
    test_executor().run(async move {
        // segment.ms counts from the first batch's timestamp to the incoming batch's.
        let by_time = LogConfig { segment_ms: 1000, ..LogConfig::default() };
        let log = PartitionLog::open(&tmp.path().join("time-0"), by_time, OpenHint::default()).await.unwrap();
        log.append(&batch(&[b"a"], 10_000), 0, 0).await.unwrap();
        log.append(&batch(&[b"b"], 10_900), 0, 0).await.unwrap();
        assert_eq!(log.segment_count(), 1, "900 ms apart: same segment");
        log.append(&batch(&[b"c"], 11_001), 0, 0).await.unwrap();
        assert_eq!(log.segment_bases(), vec![0, 2], "1001 ms after the first batch: rolled");

        // segment.index.bytes = 24 holds two 12-byte time index entries (three offset entries):
        // the first batch gets none, the next two get one each, the fourth append rolls.
        let by_index = LogConfig { segment_index_bytes: 24, index_interval_bytes: 1, ..LogConfig::default() };
        let log = PartitionLog::open(&tmp.path().join("index-0"), by_index, OpenHint::default()).await.unwrap();
        for i in 0..4 {
            log.append(&batch(&[b"x"], i), 0, 0).await.unwrap();
        }
        assert_eq!(log.segment_bases(), vec![0, 3]);
        let (bytes, _) = log.read_copy(0, 1 << 20, true).await.unwrap();
        assert_eq!(headers(&bytes).len(), 3, "the first segment holds the three batches before the roll");
    });
}

#[test]
fn both_write_methods_put_the_same_bytes_in_the_segment() {
    // One append of 700 small batches (1400 pieces: more than one pwritev's 1024 iovecs) and
    // one of a 3 MiB batch (more than one pwritev's 1 MiB), then more appends: pwritev and
    // io_uring must leave the same file, with every batch at its offset.
    use sluice::log::config::WriteMethod;
    let tmp = TempDir::new("methods");
    test_executor().run(async move {
        let mut small = Vec::new();
        for i in 0..700u32 {
            small.extend_from_slice(&batch(&[format!("value-{i}").as_bytes()], i as i64));
        }
        let big_value = vec![0xabu8; 3 << 20];
        let big = batch(&[&big_value], 5000);
        let mut files = Vec::new();
        for method in [WriteMethod::Pwritev, WriteMethod::IoUring] {
            let dir = tmp.path().join(format!("{method:?}-0"));
            let config = LogConfig { write_method: method, max_message_bytes: 4 << 20, ..LogConfig::default() };
            let log = PartitionLog::open(&dir, config, OpenHint::default()).await.unwrap();
            let a = log.append_shared(&bytes::Bytes::from(small.clone()), 0, 0).await.unwrap();
            assert_eq!((a.first_offset, a.last_offset), (0, 699));
            let b = log.append_shared(&bytes::Bytes::from(big.clone()), 0, 0).await.unwrap();
            assert_eq!(b.first_offset, 700);
            let c = log.append(&batch(&[b"after"], 6000), 0, 0).await.unwrap();
            assert_eq!(c.first_offset, 701);
            let (read, _) = log.read_copy(0, 16 << 20, true).await.unwrap();
            let offsets: Vec<i64> = headers(&read).iter().map(|h| h.base_offset).collect();
            assert_eq!(offsets, (0..=701).collect::<Vec<i64>>());
            log.close().await.unwrap();
            files.push(std::fs::read(dir.join(format!("{:020}.log", 0))).unwrap());
        }
        assert_eq!(files[0].len(), small.len() + big.len() + batch(&[b"after"], 6000).len());
        assert!(files[0] == files[1], "pwritev and io_uring wrote different bytes");
    });
}

/// Regression: an append that finds a roll under way waits for the roller, which may itself
/// be waiting for a sync round's hold on the log structure. When that round ended, the
/// roller was woken but not yet run, and a waiting append could take and drop the free
/// permit and retry in a loop that never yielded: the shard spun at 100 % CPU and nothing
/// on it ever ran again. Many appends with acks=all-style syncs over small segments hit it.
#[test]
fn appends_racing_rolls_and_sync_rounds_all_complete() {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = done.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(30));
        if !watchdog.load(std::sync::atomic::Ordering::SeqCst) {
            eprintln!("appends_racing_rolls_and_sync_rounds_all_complete: no progress in 30 s (livelock)");
            std::process::exit(101);
        }
    });
    let tmp = TempDir::new("roll-race");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let log = PartitionLog::open(&dir, small_segments(), OpenHint::default()).await.unwrap();
        // Producers that append, wait for their fdatasync, and append again at once: the
        // sync round's end wakes them just before the roller it held up.
        let mut tasks = Vec::new();
        for p in 0..10 {
            let log = log.clone();
            tasks.push(glommio::spawn_local(async move {
                let value = vec![b'v'; 900];
                for i in 0..100 {
                    let info = log.append(&batch(&[&value], p * 100 + i), 0, 0).await.unwrap();
                    log.sync_to(info.last_offset + 1).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await;
        }
        assert_eq!(log.log_end_offset(), 1000);
        assert!(log.segment_count() > 100, "{} segments", log.segment_count());
    });
    done.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// A truncation whose deletion of the segments past the cut fails part way (here one
/// segment's `.log` cannot be unlinked: a directory stands in its name) leaves the newer
/// segments gone and the older ones in place: after a restart the log is shorter than it
/// was but has no hole — every offset from its start to its end reads back — and it takes
/// appends and truncations again.
#[test]
fn a_truncation_whose_deletions_fail_part_way_leaves_a_shorter_log_without_a_hole() {
    let tmp = TempDir::new("truncate-fail");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let log = PartitionLog::open(&dir, small_segments(), OpenHint::default()).await.unwrap();
        let value = vec![3u8; 500];
        for i in 0..40 {
            log.append(&batch(&[&value], i), 0, 0).await.unwrap();
        }
        let bases = log.segment_bases();
        assert!(bases.len() >= 5, "{bases:?}");
        // The cut removes bases[1..]; the second of them cannot be deleted.
        let stuck = dir.join(format!("{:020}.log", bases[2]));
        let aside = tmp.path().join("aside.log");
        std::fs::rename(&stuck, &aside).unwrap();
        std::fs::create_dir(&stuck).unwrap();
        std::fs::write(stuck.join("in-the-way"), b"").unwrap();
        assert!(log.truncate_to(1).await.is_err(), "a segment could not be deleted");
        drop(log); // as a crash: nothing more is written
        std::fs::remove_dir_all(&stuck).unwrap();
        std::fs::rename(&aside, &stuck).unwrap();
        let on_disk: Vec<i64> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().to_string_lossy().strip_suffix(".log").map(|s| s.parse().unwrap()))
            .collect::<std::collections::BTreeSet<i64>>()
            .into_iter()
            .collect();
        assert_eq!(on_disk, bases[..3].to_vec(), "the newest segments went first");

        let log = PartitionLog::open(&dir, small_segments(), OpenHint::default()).await.unwrap();
        assert_eq!(log.segment_bases(), bases[..3].to_vec());
        let end = log.log_end_offset();
        assert!(end > bases[2] && end < 40, "shorter than before: {end}");
        let mut offset = 0;
        while offset < end {
            let (bytes, info) = log.read_copy(offset, 1 << 20, true).await.unwrap();
            let hs = headers(&bytes);
            assert_eq!(hs[0].base_offset, offset, "no hole: offset {offset} reads back");
            offset = info.next_offset;
        }
        assert_eq!(log.append(&batch(&[b"after"], 99), 0, 0).await.unwrap().first_offset, end);
        assert_eq!(log.truncate_to(1).await.unwrap(), 1);
        assert_eq!(log.segment_bases(), vec![0]);
    });
}
