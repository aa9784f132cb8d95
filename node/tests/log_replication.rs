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
