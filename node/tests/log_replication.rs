//! The partition log as a replica (issue #15, Build 3, its log part): a follower's log fed
//! with what its leader's log reads back ends byte for byte the same, leader epochs
//! included; batches that do not continue the log are refused whole; and the leader-epoch
//! answer (Kafka's OffsetForLeaderEpoch) tells a diverged follower exactly where to cut.

mod common;

use bytes::Bytes;
use common::{batch, small_segments};
use sluice::log::{OpenHint, PartitionLog};
use sluice::runtime::test_executor;
use sluice::testing::TempDir;
use std::path::Path;
use std::rc::Rc;

/// Copies everything `leader` has past `follower`'s log end into `follower`, as a follower's
/// fetcher does (whole batches, a bounded read at a time).
async fn catch_up(leader: &PartitionLog, follower: &Rc<PartitionLog>) {
    while follower.log_end_offset() < leader.log_end_offset() {
        let (bytes, info) = leader.read_copy(follower.log_end_offset(), 1500, true).await.unwrap();
        assert!(!bytes.is_empty(), "a read below the log end returns batches: {info:?}");
        follower.append_replicated(&Bytes::from(bytes), 0).await.unwrap();
    }
}

/// The segment files (`.log`) of a partition directory, by name, with their bytes.
fn segments(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn a_follower_fed_from_its_leader_holds_the_same_bytes_and_epochs() {
    let tmp = TempDir::new("replica");
    let (ldir, fdir) = (tmp.path().join("t-0-leader"), tmp.path().join("t-0-follower"));
    let (l2, f2) = (ldir.clone(), fdir.clone());
    test_executor().run(async move {
        let leader = PartitionLog::open(&ldir, small_segments(), OpenHint::default()).await.unwrap();
        let follower = PartitionLog::open(&fdir, small_segments(), OpenHint::default()).await.unwrap();
        let value = vec![7u8; 300];
        for (i, epoch) in [0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 5, 5, 5].into_iter().enumerate() {
            leader.append(&batch(&[&value, &value], 1000 + i as i64), epoch, 0).await.unwrap();
        }
        assert!(leader.segment_count() > 2, "the copy crosses rolls");
        catch_up(&leader, &follower).await;
        assert_eq!(follower.log_end_offset(), leader.log_end_offset());
        assert_eq!(follower.leader_epochs(), leader.leader_epochs(), "epochs from the batches");
        for e in -1..7 {
            assert_eq!(follower.end_offset_for_epoch(e), leader.end_offset_for_epoch(e), "epoch {e}");
        }
        // Kafka's answers: latest → log end; an older one → the next epoch's start; past
        // the latest → undefined; before the first → the first epoch's start.
        let starts: Vec<i64> = leader.leader_epochs().iter().map(|e| e.start_offset).collect();
        assert_eq!(leader.end_offset_for_epoch(5), (5, leader.log_end_offset()));
        assert_eq!(leader.end_offset_for_epoch(3), (2, starts[2]));
        assert_eq!(leader.end_offset_for_epoch(0), (0, starts[1]));
        assert_eq!(leader.end_offset_for_epoch(9), (-1, -1));

        // The same batches again do not continue the log: refused, nothing written.
        let (again, _) = leader.read_copy(0, 1500, true).await.unwrap();
        let end = follower.log_end_offset();
        let err = follower.append_replicated(&Bytes::from(again), 0).await.unwrap_err();
        assert!(err.to_string().contains("do not continue the log"), "{err}");
        assert_eq!(follower.log_end_offset(), end);
        leader.close().await.unwrap();
        follower.close().await.unwrap();
    });
    assert_eq!(segments(&f2), segments(&l2), "the follower's segments are the leader's, byte for byte");
}

/// A follower that took batches from a leader that then lost leadership (epoch 1, never
/// replicated further) asks the new leader where epoch 1 ends, cuts its log there, and then
/// holds exactly the new leader's log.
#[test]
fn a_diverged_follower_cuts_where_the_new_leader_says_and_converges() {
    let tmp = TempDir::new("diverged");
    let (ldir, fdir) = (tmp.path().join("t-0-leader"), tmp.path().join("t-0-follower"));
    let (l2, f2, odir) = (ldir.clone(), fdir.clone(), tmp.path().join("t-0-old"));
    test_executor().run(async move {
        let leader = PartitionLog::open(&ldir, small_segments(), OpenHint::default()).await.unwrap();
        let follower = PartitionLog::open(&fdir, small_segments(), OpenHint::default()).await.unwrap();
        let value = vec![1u8; 200];
        for i in 0..6 {
            leader.append(&batch(&[&value], i), 0, 0).await.unwrap();
        }
        catch_up(&leader, &follower).await;
        // The old leader (epoch 1) wrote three batches only the follower got...
        let stray = PartitionLog::open(&odir, small_segments(), OpenHint::default()).await.unwrap();
        catch_up(&leader, &stray).await;
        for i in 0..3 {
            stray.append(&batch(&[b"lost"], 100 + i), 1, 0).await.unwrap();
        }
        catch_up(&stray, &follower).await;
        // ...while the new leader (epoch 2) wrote its own from offset 6 on.
        for i in 0..4 {
            leader.append(&batch(&[&value], 200 + i), 2, 0).await.unwrap();
        }
        let last = follower.leader_epochs().last().unwrap().epoch;
        assert_eq!(last, 1);
        let (epoch, cut) = leader.end_offset_for_epoch(last);
        assert_eq!((epoch, cut), (0, 6), "epoch 1 is unknown to the new leader: cut where epoch 2 starts");
        follower.truncate_to(cut.min(follower.log_end_offset())).await.unwrap();
        catch_up(&leader, &follower).await;
        assert_eq!(follower.leader_epochs(), leader.leader_epochs());
        leader.close().await.unwrap();
        follower.close().await.unwrap();
        stray.close().await.unwrap();
    });
    assert_eq!(segments(&f2), segments(&l2), "converged, byte for byte");
}

/// A leader's high watermark is the lowest log end of its replicas: consumers read below it,
/// followers read past it, and it moves as each follower's fetch offset does.
#[test]
fn a_leaders_high_watermark_follows_its_slowest_replica() {
    let tmp = TempDir::new("hw");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let log = PartitionLog::open(&dir, small_segments(), OpenHint::default()).await.unwrap();
        log.lead(0, &[2, 3], &[2, 3]);
        let value = vec![9u8; 100];
        for i in 0..4 {
            log.append(&batch(&[&value, &value], i), 0, 0).await.unwrap();
        }
        assert_eq!(log.log_end_offset(), 8);
        assert_eq!(log.high_watermark(), 0, "no follower has fetched");
        assert!(log.read(0, 1 << 20, true).await.unwrap().range.is_none(), "consumers see nothing yet");
        let replica = log.read_replica(0, 1 << 20).await.unwrap();
        assert_eq!(replica.next_offset, 8, "a follower reads to the log end");
        assert_eq!(replica.high_watermark, 0);
        log.follower_fetched(2, 8);
        assert_eq!(log.high_watermark(), 0, "node 3 has not fetched");
        log.follower_fetched(3, 4);
        assert_eq!(log.high_watermark(), 4);
        let seen = log.read(0, 1 << 20, true).await.unwrap();
        assert_eq!(seen.next_offset, 4, "consumers stop at the high watermark: {seen:?}");
        log.follower_fetched(3, 8);
        assert_eq!(log.high_watermark(), 8);
        assert_eq!(log.read(0, 1 << 20, true).await.unwrap().next_offset, 8);
    });
}

/// `batch(values, timestamp)` as an idempotent producer sends it: `producer_id`, epoch 0,
/// base sequence `sequence`.
fn idempotent(values: &[&[u8]], timestamp: i64, producer_id: i64, sequence: i32) -> Vec<u8> {
    let mut b = batch(values, timestamp);
    b[43..51].copy_from_slice(&producer_id.to_be_bytes());
    b[51..53].copy_from_slice(&0i16.to_be_bytes());
    b[53..57].copy_from_slice(&sequence.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// The files of a partition directory whose names end with `suffix`, sorted.
fn files_ending(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

/// The producer ids a log knows.
fn producer_ids(log: &PartitionLog) -> Vec<i64> {
    log.active_producers().iter().map(|p| p.0).collect()
}

/// Every byte a log holds from `from` to its end, read as a follower reads it.
async fn bytes_from(log: &PartitionLog, from: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset() {
        let (bytes, info) = log.read_copy(offset, 1500, true).await.unwrap();
        assert!(!bytes.is_empty(), "a read below the log end returns batches: {info:?}");
        out.extend_from_slice(&bytes);
        offset = info.next_offset;
    }
    out
}

/// A follower whose log ends below its leader's log start (the leader deleted the offsets
/// it lacks while it was away) starts again, empty, at that log start (Kafka's
/// truncateFullyAndStartAt): no segment, leader epoch, producer or snapshot of its old log
/// is left; the leader's batches from there on continue it; a restart finds it as it was
/// left, both before and after those batches; and appends go on at its end.
#[test]
fn a_follower_below_the_leaders_log_start_starts_again_empty_there_and_keeps_it_across_restarts() {
    let tmp = TempDir::new("start-at");
    let (ldir, fdir) = (tmp.path().join("t-0-leader"), tmp.path().join("t-0-follower"));
    test_executor().run(async move {
        let leader = PartitionLog::open(&ldir, small_segments(), OpenHint::default()).await.unwrap();
        let follower = PartitionLog::open(&fdir, small_segments(), OpenHint::default()).await.unwrap();
        let value = vec![3u8; 300];
        // Epoch 0, producer 7: offsets 0-9, copied by the follower.
        for i in 0..5 {
            leader.append(&idempotent(&[&value, &value], i, 7, 2 * i as i32), 0, 0).await.unwrap();
        }
        catch_up(&leader, &follower).await;
        assert_eq!(follower.log_end_offset(), 10);
        assert_eq!(producer_ids(&follower), vec![7]);
        // The follower away: the leader goes on in epoch 3 with producer 9 (offsets 10-39)
        // and deletes the records below 24.
        for i in 0..15 {
            leader.append(&idempotent(&[&value, &value], 100 + i, 9, 2 * i as i32), 3, 0).await.unwrap();
        }
        assert_eq!(leader.advance_log_start(24).await.unwrap(), 24);
        assert!(leader.read_replica(10, 1 << 20).await.is_err(), "the follower's end is below the leader's log start");
        let old_segments = follower.segment_count();
        follower.close().await.unwrap(); // leaves a snapshot of producer 7 at 10
        let snapshot = std::fs::read(fdir.join("00000000000000000010.snapshot")).unwrap();
        let follower = PartitionLog::open(&fdir, small_segments(), OpenHint::default()).await.unwrap();
        assert_eq!(files_ending(&fdir, ".log").len(), old_segments);
        // A stale snapshot at the offset the log will start at: a start would load it.
        std::fs::write(fdir.join("00000000000000000024.snapshot"), &snapshot).unwrap();
        follower.append(&batch(&[b"unsynced"], 5), 0, 0).await.unwrap(); // offset 10, never synced

        assert!(follower.truncate_fully_and_start_at(-1).await.is_err(), "a negative offset is refused");
        assert_eq!(follower.log_end_offset(), 11, "and changes nothing");

        follower.truncate_fully_and_start_at(24).await.unwrap();
        let empty_at_24 = |log: &PartitionLog, what: &str| {
            assert_eq!(
                (log.log_start_offset(), log.log_end_offset(), log.next_offset(), log.high_watermark()),
                (24, 24, 24, 24),
                "{what}: log start, log end, next offset, high watermark"
            );
            assert_eq!(log.leader_epochs(), vec![], "{what}: no leader epoch of the old log");
            assert_eq!(log.end_offset_for_epoch(0), (-1, -1), "{what}");
            assert_eq!(log.producer_count(), 0, "{what}: no producer of the old log");
            assert_eq!(log.segment_bases(), vec![24], "{what}");
        };
        empty_at_24(&follower, "started again");
        assert_eq!(follower.recovery_point(), 24);
        assert_eq!(files_ending(&fdir, ".log"), vec!["00000000000000000024.log".to_string()]);
        assert_eq!(files_ending(&fdir, ".snapshot"), Vec::<String>::new());
        assert!(follower.read(10, 1 << 20, true).await.is_err(), "the old offsets are gone");
        assert!(follower.read(24, 1 << 20, true).await.unwrap().range.is_none());
        drop(follower); // a crash: no close, no snapshot of its own
        let follower = PartitionLog::open(&fdir, small_segments(), OpenHint::default()).await.unwrap();
        empty_at_24(&follower, "reopened after a crash");

        // The leader's batches from its log start continue the log.
        catch_up(&leader, &follower).await;
        assert_eq!((follower.log_start_offset(), follower.log_end_offset()), (24, 40));
        assert_eq!(follower.leader_epochs().iter().map(|e| (e.epoch, e.start_offset)).collect::<Vec<_>>(), [(3, 24)]);
        assert_eq!(follower.end_offset_for_epoch(3), leader.end_offset_for_epoch(3));
        assert_eq!(producer_ids(&follower), vec![9], "producer state from the copied batches only");
        assert_eq!(bytes_from(&follower, 24).await, bytes_from(&leader, 24).await);
        follower.close().await.unwrap();
        let follower = PartitionLog::open(&fdir, small_segments(), OpenHint::default()).await.unwrap();
        assert_eq!((follower.log_start_offset(), follower.log_end_offset()), (24, 40), "after a restart");
        assert_eq!(producer_ids(&follower), vec![9]);
        assert_eq!(bytes_from(&follower, 24).await, bytes_from(&leader, 24).await);
        let next = follower.append(&batch(&[b"next"], 500), 4, 0).await.unwrap();
        assert_eq!(next.first_offset, 40, "appends go on at the log end");
        follower.close().await.unwrap();
        leader.close().await.unwrap();
    });
}

/// Starting again at an offset inside the log or at its first offset (the general case of
/// the same operation): nothing at or past it survives either, the log is empty there, and
/// so it is after a restart.
#[test]
fn starting_again_inside_the_log_or_at_its_start_leaves_it_empty_there() {
    let tmp = TempDir::new("start-inside");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let mut log = PartitionLog::open(&dir, small_segments(), OpenHint::default()).await.unwrap();
        let value = vec![5u8; 300];
        for i in 0..20 {
            log.append(&batch(&[&value, &value], i), 1, 0).await.unwrap();
        }
        assert!(log.segment_count() > 2);
        let state = |log: &PartitionLog| {
            (log.log_start_offset(), log.log_end_offset(), log.segment_bases(), log.leader_epochs().len())
        };
        for (offset, what) in [(15, "inside the log, inside a batch"), (15, "at its first offset"), (0, "below it")] {
            log.truncate_fully_and_start_at(offset).await.unwrap();
            assert_eq!(state(&log), (offset, offset, vec![offset], 0), "{what}");
            assert_eq!(files_ending(&dir, ".log"), vec![format!("{offset:020}.log")], "{what}");
            log.close().await.unwrap();
            log = PartitionLog::open(&dir, small_segments(), OpenHint::default()).await.unwrap();
            assert_eq!(state(&log), (offset, offset, vec![offset], 0), "{what}, reopened");
            let info = log.append(&batch(&[&value], 99), 2, 0).await.unwrap();
            assert_eq!(info.first_offset, offset, "{what}: appends start there");
            assert_eq!(state(&log), (offset, offset + 1, vec![offset], 1), "{what}");
        }
        log.close().await.unwrap();
    });
}

/// `batch(values, timestamp)` as a leader stored it: at `base_offset`, in `epoch`. Both lie
/// outside the CRC, so the batch still checks out whatever they say.
fn stored_at(values: &[&[u8]], timestamp: i64, base_offset: i64, epoch: i32) -> Vec<u8> {
    let mut b = batch(values, timestamp);
    b[0..8].copy_from_slice(&base_offset.to_be_bytes());
    b[12..16].copy_from_slice(&epoch.to_be_bytes());
    b
}

/// The offsets of every batch a log holds, read as a follower reads them.
async fn batch_offsets(log: &PartitionLog) -> Vec<(i64, i64)> {
    common::headers(&bytes_from(log, log.log_start_offset()).await)
        .iter()
        .map(|h| (h.base_offset, h.last_offset()))
        .collect()
}

/// A replicated batch's base offset is not covered by its CRC: one whose records would run
/// past the largest offset (i64::MAX - 1 with three records) is refused as corrupt, alone or
/// behind a good batch, with nothing written — no overflow, no panic — and the log takes the
/// leader's next batches, and its own, as before.
#[test]
fn a_replicated_batch_whose_offsets_pass_the_largest_offset_is_refused_and_the_log_goes_on() {
    let tmp = TempDir::new("overflow");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let log = PartitionLog::open(&dir, small_segments(), OpenHint::default()).await.unwrap();
        log.append_replicated(&Bytes::from(stored_at(&[b"a", b"b"], 1, 0, 0)), 0).await.unwrap();
        assert_eq!(log.log_end_offset(), 2);
        let crafted = stored_at(&[b"x", b"y", b"z"], 2, i64::MAX - 1, 0);
        let behind_a_good_one = [stored_at(&[b"c"], 3, 2, 0), crafted.clone()].concat();
        for (records, what) in [(crafted, "alone"), (behind_a_good_one, "behind a good batch")] {
            let err = log.append_replicated(&Bytes::from(records), 0).await.unwrap_err();
            assert_eq!(err.kafka_error_code(), 2, "{what}: CORRUPT_MESSAGE: {err}");
            assert!(err.to_string().contains("baseOffset 9223372036854775806"), "{what}: {err}");
            assert_eq!((log.log_end_offset(), log.next_offset()), (2, 2), "{what}: nothing written");
            assert_eq!(log.segment_bases(), vec![0], "{what}");
        }
        log.append_replicated(&Bytes::from(stored_at(&[b"c"], 3, 2, 1)), 0).await.unwrap();
        let own = log.append(&batch(&[b"d"], 4), 1, 0).await.unwrap();
        assert_eq!((own.first_offset, log.log_end_offset()), (3, 4));
        assert_eq!(batch_offsets(&log).await, vec![(0, 1), (2, 2), (3, 3)]);
        log.close().await.unwrap();
        let log = PartitionLog::open(&dir, small_segments(), OpenHint::default()).await.unwrap();
        assert_eq!(batch_offsets(&log).await, vec![(0, 1), (2, 2), (3, 3)], "reopened");
    });
}

/// Offsets near the largest one: a follower takes a batch ending just below it (its last
/// offset i64::MAX - 1, so the log end is i64::MAX), and then every append that would pass
/// it is refused — the leader's next batch, and this log's own once it leads — with the log
/// left as it was, across a restart too.
#[test]
fn appends_that_would_pass_the_largest_offset_are_refused_replicas_and_leaders_alike() {
    let tmp = TempDir::new("overflow-end");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let log = PartitionLog::open(&dir, small_segments(), OpenHint::default()).await.unwrap();
        log.follow();
        let last_base = i64::MAX - 3;
        log.append_replicated(&Bytes::from(stored_at(&[b"a", b"b", b"c"], 1, last_base, 0)), 0).await.unwrap();
        assert_eq!(log.log_end_offset(), i64::MAX);
        assert_eq!(log.segment_bases(), vec![0, last_base], "a segment of its own: its base is far past 0");
        let next = stored_at(&[b"d"], 2, i64::MAX, 0);
        let err = log.append_replicated(&Bytes::from(next), 0).await.unwrap_err();
        assert_eq!(err.kafka_error_code(), 2, "{err}");
        log.lead(1, &[], &[]);
        let err = log.append(&batch(&[b"e"], 3), 1, 0).await.unwrap_err();
        assert_eq!(err.kafka_error_code(), 2, "{err}");
        assert!(err.to_string().contains("largest offset"), "{err}");
        assert_eq!((log.log_end_offset(), log.next_offset()), (i64::MAX, i64::MAX));
        assert_eq!(batch_offsets(&log).await, vec![(last_base, i64::MAX - 1)]);
        log.close().await.unwrap();
        let log = PartitionLog::open(&dir, small_segments(), OpenHint::default()).await.unwrap();
        assert_eq!(log.log_end_offset(), i64::MAX, "reopened");
        assert_eq!(batch_offsets(&log).await, vec![(last_base, i64::MAX - 1)]);
    });
}

/// A gap of more offsets than a segment can address (Kafka's indexes hold 32-bit offsets
/// relative to the segment's base) between a follower's log end and the leader's next
/// batches — compaction on the leader leaves such gaps — starts a segment at the first of
/// them, as Kafka's follower rolls to `max(firstOffset, logEndOffset)`: the batches read
/// back at their offsets, before and after a restart, and appends go on after them.
#[test]
fn replicated_batches_past_a_gap_wider_than_a_segment_can_address_start_a_segment_there() {
    let tmp = TempDir::new("gap");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let log = PartitionLog::open(&dir, small_segments(), OpenHint::default()).await.unwrap();
        let value = vec![4u8; 300]; // past `index.interval.bytes`: the second batch gets an index entry
        log.append_replicated(&Bytes::from(stored_at(&[&value, &value], 1, 0, 0)), 0).await.unwrap();
        let gap = 5_000_000_000i64; // past u32::MAX as well as i32::MAX
        let far = [stored_at(&[&value, &value], 2, gap, 0), stored_at(&[&value, &value], 3, gap + 2, 0)].concat();
        log.append_replicated(&Bytes::from(far), 0).await.unwrap();
        assert_eq!(log.segment_bases(), vec![0, gap]);
        assert_eq!(log.log_end_offset(), gap + 4);
        let want = vec![(0, 1), (gap, gap + 1), (gap + 2, gap + 3)];
        assert_eq!(batch_offsets(&log).await, want);
        let (_, from_the_gap) = log.read_copy(2, 1 << 20, true).await.unwrap();
        assert_eq!(from_the_gap.first_offset, gap, "a read inside the gap returns the next batch");
        let own = log.append(&batch(&[b"next"], 4), 0, 0).await.unwrap();
        assert_eq!(own.first_offset, gap + 4);
        log.close().await.unwrap();
        for clean_shutdown in [true, false] {
            let hint = OpenHint { clean_shutdown, ..OpenHint::default() };
            let log = PartitionLog::open(&dir, small_segments(), hint).await.unwrap();
            assert_eq!(log.segment_bases(), vec![0, gap], "clean_shutdown={clean_shutdown}");
            assert_eq!(log.log_end_offset(), gap + 5, "clean_shutdown={clean_shutdown}");
            assert_eq!(batch_offsets(&log).await.len(), 4, "clean_shutdown={clean_shutdown}");
            log.close().await.unwrap();
        }
    });
}

/// A producer's append whose offsets span more than one segment can address (here 1100
/// header-only batches each claiming 2^22 compressed records: 4.6 billion offsets) is
/// refused whole, as Kafka refuses an append no segment can hold, and the log goes on.
#[test]
fn an_append_spanning_more_offsets_than_a_segment_can_address_is_refused_whole() {
    let tmp = TempDir::new("span");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let config = sluice::log::LogConfig { validate_records: false, ..small_segments() };
        let log = PartitionLog::open(&dir, config, OpenHint::default()).await.unwrap();
        log.append(&batch(&[b"first"], 1), 0, 0).await.unwrap();
        let mut claim = [0u8; 61];
        claim[8..12].copy_from_slice(&49i32.to_be_bytes()); // batchLength: the header alone
        claim[12..16].copy_from_slice(&(-1i32).to_be_bytes());
        claim[16] = 2;
        claim[21..23].copy_from_slice(&1i16.to_be_bytes()); // gzip: the count is not checked against the bytes
        claim[23..27].copy_from_slice(&((1i32 << 22) - 1).to_be_bytes());
        claim[43..51].copy_from_slice(&(-1i64).to_be_bytes());
        claim[51..53].copy_from_slice(&(-1i16).to_be_bytes());
        claim[53..57].copy_from_slice(&(-1i32).to_be_bytes());
        claim[57..61].copy_from_slice(&(1i32 << 22).to_be_bytes());
        let crc = crc32c::crc32c(&claim[21..]);
        claim[17..21].copy_from_slice(&crc.to_be_bytes());
        let records = claim.repeat(1100);
        let err = log.append(&records, 0, 0).await.unwrap_err();
        assert_eq!(err.kafka_error_code(), 2, "{err}");
        assert_eq!((log.log_end_offset(), log.next_offset(), log.segment_count()), (1, 1, 1), "nothing written");
        let next = log.append(&batch(&[b"next"], 2), 0, 0).await.unwrap();
        assert_eq!(next.first_offset, 1);
    });
}

/// Leader epochs and their start offsets.
fn epochs(log: &PartitionLog) -> Vec<(i32, i64)> {
    log.leader_epochs().iter().map(|e| (e.epoch, e.start_offset)).collect()
}

/// When the log start moves (DeleteRecords, a follower taking its leader's, retention), the
/// leader-epoch cache loses the entries wholly below it and the last one at or below it
/// starts there (Kafka's `LeaderEpochFileCache.truncateFromStart`), in
/// `leader-epoch-checkpoint` too: epochs 0@0, 1@10, 2@20 with the log start at 15 are
/// 1@15, 2@20, and stay so after a restart.
#[test]
fn leader_epochs_below_the_log_start_go_and_the_first_left_starts_there() {
    let tmp = TempDir::new("epochs-start");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let config = sluice::log::LogConfig { retention_bytes: 0, ..small_segments() };
        let log = PartitionLog::open(&dir, config.clone(), OpenHint::default()).await.unwrap();
        let ten: Vec<&[u8]> = vec![b"0123456789"; 10];
        for epoch in 0..3 {
            log.append(&batch(&ten, epoch as i64), epoch, 0).await.unwrap();
        }
        assert_eq!(epochs(&log), [(0, 0), (1, 10), (2, 20)]);
        assert_eq!(log.advance_log_start(15).await.unwrap(), 15);
        assert_eq!(epochs(&log), [(1, 15), (2, 20)]);
        assert_eq!(log.end_offset_for_epoch(1), (1, 20));
        let file = std::fs::read_to_string(dir.join("leader-epoch-checkpoint")).unwrap();
        assert_eq!(file, "0\n2\n1 15\n2 20\n");
        log.close().await.unwrap();
        for log_start_offset in [15, 0] {
            // As the data directory's log-start checkpoint says, or with none at all.
            let hint = OpenHint { log_start_offset, clean_shutdown: true, ..OpenHint::default() };
            let log = PartitionLog::open(&dir, config.clone(), hint).await.unwrap();
            assert_eq!(epochs(&log), [(1, 15), (2, 20)], "reopened, log start hint {log_start_offset}");
            log.close().await.unwrap();
        }

        // Retention: the log start moves to the first segment kept.
        let log = PartitionLog::open(&dir, config.clone(), OpenHint { log_start_offset: 15, ..OpenHint::default() })
            .await
            .unwrap();
        let value = vec![1u8; 1000];
        for i in 0..8 {
            log.append(&batch(&[&value], 100 + i), 3, 0).await.unwrap();
        }
        assert_eq!(epochs(&log), [(1, 15), (2, 20), (3, 30)]);
        let out = log.enforce_retention(0).await.unwrap();
        assert!(out.log_start_offset > 30, "{out:?}");
        assert_eq!(epochs(&log), [(3, out.log_start_offset)]);
        log.close().await.unwrap();
        let log = PartitionLog::open(&dir, config, OpenHint::default()).await.unwrap();
        assert_eq!(epochs(&log), [(3, out.log_start_offset)], "reopened");
    });
}

/// A log start moved inside the first segment — a follower taking its leader's log start,
/// or DeleteRecords — is told to the listener the data directory's owner installs (the
/// node writes `log-start-offset-checkpoint` from it): without that checkpoint a start
/// takes the first segment's base instead, as the reopened log here shows. A move onto a
/// segment's base (the segments restore it) or none at all is not told.
#[test]
fn log_start_moves_the_segments_would_not_restore_are_told_to_the_listener() {
    let tmp = TempDir::new("log-start-told");
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let log = PartitionLog::open(&dir, small_segments(), OpenHint::default()).await.unwrap();
        let told = Rc::new(std::cell::RefCell::new(Vec::new()));
        log.on_log_start_moved({
            let told = told.clone();
            move |start| told.borrow_mut().push(start)
        });
        let value = vec![2u8; 300];
        for i in 0..20 {
            log.append(&batch(&[&value, &value], i), 0, 0).await.unwrap();
        }
        let bases = log.segment_bases();
        assert!(bases.len() > 3, "{bases:?}");
        assert_eq!(log.advance_log_start(3).await.unwrap(), 3);
        assert_eq!(log.advance_log_start(3).await.unwrap(), 3, "no move");
        assert_eq!(log.advance_log_start(1).await.unwrap(), 3, "never down");
        assert_eq!(*told.borrow(), vec![3]);
        assert_eq!(log.advance_log_start(bases[2]).await.unwrap(), bases[2]);
        assert_eq!(log.segment_bases()[0], bases[2], "onto a segment's base: it restores itself");
        assert_eq!(*told.borrow(), vec![3]);
        assert_eq!(log.advance_log_start(bases[2] + 1).await.unwrap(), bases[2] + 1);
        assert_eq!(*told.borrow(), vec![3, bases[2] + 1]);
        log.close().await.unwrap();

        let with = OpenHint { log_start_offset: bases[2] + 1, clean_shutdown: true, ..OpenHint::default() };
        let log = PartitionLog::open(&dir, small_segments(), with).await.unwrap();
        assert_eq!(log.log_start_offset(), bases[2] + 1, "the checkpointed log start");
        log.close().await.unwrap();
        let without = OpenHint { clean_shutdown: true, ..OpenHint::default() };
        let log = PartitionLog::open(&dir, small_segments(), without).await.unwrap();
        assert_eq!(log.log_start_offset(), bases[2], "without it: the first segment's base");
    });
}
