//! Disk errors on the partition log, injected through the test fault layer
//! (`SLUICE_FAULT_DIR`, see `sluice::fault`): a failed write leaves nothing of its batch
//! visible and the log repairs itself once writes succeed again; a failed fdatasync takes
//! the partition offline until it is reopened, and nothing it covered is acknowledged.

mod common;

use common::{batch, headers};
use sluice::log::{LogConfig, OpenHint, PartitionLog};
use sluice::runtime::test_executor;
use sluice::testing::TempDir;
use std::time::Duration;

#[test]
fn a_failed_write_is_never_visible_and_the_log_repairs_itself_when_writes_succeed_again() {
    let tmp = TempDir::new("faults");
    let faults = tmp.path().join("faults");
    std::fs::create_dir_all(&faults).unwrap();
    // Read once by the node's code; nextest runs each test in a process of its own.
    std::env::set_var("SLUICE_FAULT_DIR", &faults);
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let config = LogConfig { segment_bytes: 4096, ..LogConfig::default() };
        let log = PartitionLog::open(&dir, config.clone(), OpenHint::default()).await.unwrap();
        for i in 0..20 {
            log.append(&batch(&[b"before", b"fault"], i), 0, 0).await.unwrap();
        }
        let end = log.log_end_offset();
        assert_eq!(end, 40);

        std::fs::write(faults.join("write"), "ENOSPC").unwrap();
        let err = log.append(&batch(&[b"lost"], 100), 0, 0).await.unwrap_err();
        assert_eq!(err.kafka_error_code(), 56, "KAFKA_STORAGE_ERROR: {err}");
        assert_eq!(log.log_end_offset(), end, "nothing of the failed batch is visible");
        let (bytes, _) = log.read_copy(0, 1 << 20, true).await.unwrap();
        assert_eq!(headers(&bytes).iter().map(|h| h.record_count).sum::<i32>(), 40);
        assert!(log.append(&batch(&[b"refused"], 101), 0, 0).await.is_err(), "refused until repaired");

        std::fs::remove_file(faults.join("write")).unwrap();
        let mut info = None;
        for _ in 0..50 {
            glommio::timer::sleep(Duration::from_millis(100)).await;
            if let Ok(i) = log.append(&batch(&[b"after"], 102), 0, 0).await {
                info = Some(i);
                break;
            }
        }
        let info = info.expect("the log takes writes again within 5 s of the fault's end");
        assert_eq!(info.first_offset, end, "offsets continue where the written log ended");
        let mut offset = 0;
        let mut seen = 0;
        while offset < log.log_end_offset() {
            let (bytes, read) = log.read_copy(offset, 1 << 20, true).await.unwrap();
            seen += headers(&bytes).iter().map(|h| h.record_count).sum::<i32>();
            offset = read.next_offset;
        }
        assert_eq!(seen, 41, "the 40 records before the fault and the one after");

        // A failed fdatasync: acks=all never hears "done"; the partition stays offline.
        log.append(&batch(&[b"unsynced"], 103), 0, 0).await.unwrap();
        std::fs::write(faults.join("sync"), "EIO").unwrap();
        let err = log.sync_to(log.next_offset()).await.unwrap_err();
        assert_eq!(err.kafka_error_code(), 56, "{err}");
        std::fs::remove_file(faults.join("sync")).unwrap();
        assert!(log.append(&batch(&[b"x"], 104), 0, 0).await.is_err(), "offline after a failed fdatasync");
        assert!(log.sync_to(log.next_offset()).await.is_err(), "and it never claims the sync happened");
        drop(log);
        let log = PartitionLog::open(&dir, config, OpenHint::default()).await.unwrap();
        assert_eq!(log.log_end_offset(), 42, "reopened: recovery decides from the file");
        log.append(&batch(&[b"again"], 105), 0, 0).await.unwrap();
    });
}

/// ENOSPC on the index writes of a roll (only those: `SLUICE_FAULT_DIR/index`): the append
/// that rolled is acknowledged (indexes are derived data), the sealed segment's index files
/// are not left partial, and once writes succeed they are written whole — after a close,
/// byte for byte what a log that never met the fault wrote.
#[test]
fn an_index_write_that_fails_at_a_roll_is_redone_whole() {
    let tmp = TempDir::new("faults");
    let faults = tmp.path().join("faults");
    std::fs::create_dir_all(&faults).unwrap();
    std::env::set_var("SLUICE_FAULT_DIR", &faults);
    let (control, faulty) = (tmp.path().join("control-0"), tmp.path().join("faulty-0"));
    let (control2, faulty2) = (control.clone(), faulty.clone());
    test_executor().run(async move {
        let config = LogConfig { segment_bytes: 4096, index_interval_bytes: 256, ..LogConfig::default() };
        let value = [7u8; 100];
        let log = PartitionLog::open(&control, config.clone(), OpenHint::default()).await.unwrap();
        let mut before_roll = 0;
        while log.segment_count() == 1 {
            log.append(&batch(&[&value], 1000 + before_roll), 0, 0).await.unwrap();
            before_roll += 1;
        }
        for i in before_roll..before_roll + 5 {
            log.append(&batch(&[&value], 1000 + i), 0, 0).await.unwrap();
        }
        log.close().await.unwrap();

        let log = PartitionLog::open(&faulty, config.clone(), OpenHint::default()).await.unwrap();
        for i in 0..before_roll - 1 {
            log.append(&batch(&[&value], 1000 + i), 0, 0).await.unwrap();
        }
        std::fs::write(faults.join("index"), "ENOSPC").unwrap();
        log.append(&batch(&[&value], 1000 + before_roll - 1), 0, 0).await.expect("the append that rolled");
        assert_eq!(log.segment_count(), 2, "it rolled");
        let sealed_index = faulty.join(format!("{:020}.index", 0));
        assert!(!sealed_index.exists(), "no partial index is left while it cannot be written");
        log.sync_to(log.next_offset()).await.expect("acks=all is not refused for an index");
        assert!(!sealed_index.exists());
        std::fs::remove_file(faults.join("index")).unwrap();
        for i in before_roll..before_roll + 5 {
            log.append(&batch(&[&value], 1000 + i), 0, 0).await.unwrap();
        }
        log.close().await.unwrap();
    });
    for ext in ["index", "timeindex"] {
        let name = format!("{:020}.{ext}", 0);
        let want = std::fs::read(control2.join(&name)).unwrap();
        let got = std::fs::read(faulty2.join(&name)).unwrap_or_default();
        assert!(!want.is_empty(), "the control's {name} has entries");
        assert_eq!(got, want, "{name} of the segment whose roll met the fault");
    }
}

/// Resolves to `f`'s output, or None once `limit` has passed: a hang fails the test
/// instead of stalling it.
async fn within<T>(limit: Duration, f: impl std::future::Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(f.await) }, async {
        glommio::timer::sleep(limit).await;
        None
    })
    .await
}

/// A follower's truncation (`truncate_to`) after a failed write (ENOSPC) does not wait for
/// the failed appends' writes, which will never come, while holding the log's structure
/// lock, nor does a sync to the log end: it answers at once while the disk is still full,
/// and once there is room it cuts the log back to what was written and then to the offset
/// asked for; the log reads back whole, takes appends again and reopens the same.
#[test]
fn truncate_to_after_a_failed_write_repairs_first_and_never_hangs() {
    let tmp = TempDir::new("faults");
    let faults = tmp.path().join("faults");
    std::fs::create_dir_all(&faults).unwrap();
    std::env::set_var("SLUICE_FAULT_DIR", &faults);
    let dir = tmp.path().join("t-0");
    test_executor().run(async move {
        let config = LogConfig { segment_bytes: 4096, ..LogConfig::default() };
        let log = PartitionLog::open(&dir, config.clone(), OpenHint::default()).await.unwrap();
        for i in 0..20 {
            log.append(&batch(&[b"before", b"fault"], i), 0, 0).await.unwrap();
        }
        assert_eq!(log.log_end_offset(), 40);
        std::fs::write(faults.join("write"), "ENOSPC").unwrap();
        assert!(log.append(&batch(&[b"lost", b"too"], 100), 0, 0).await.is_err());
        assert_eq!(log.next_offset(), 42, "the failed append's offsets were assigned");

        let limit = Duration::from_secs(5);
        // A sync to the end (a `flush.*` round, the roll flush) does not wait for ever for the
        // failed append's offsets either.
        let sync = within(limit, log.sync_to(42)).await.expect("sync_to answered after the failed write");
        assert_eq!(sync.unwrap_err().kafka_error_code(), 56, "KAFKA_STORAGE_ERROR");
        // Still full: an answer (the repair's writes fail too), not a hang.
        let full = within(limit, log.truncate_to(30)).await.expect("truncate_to answered while the disk is full");
        assert_eq!(full.unwrap_err().kafka_error_code(), 56, "KAFKA_STORAGE_ERROR");
        assert_eq!(log.log_end_offset(), 40, "nothing was cut");
        std::fs::remove_file(faults.join("write")).unwrap();
        let end = within(limit, log.truncate_to(30)).await.expect("truncate_to answered").unwrap();
        assert_eq!(end, 30);
        assert_eq!((log.log_end_offset(), log.next_offset()), (30, 30));
        let mut offset = 0;
        let mut seen = 0;
        while offset < log.log_end_offset() {
            let (bytes, read) = log.read_copy(offset, 1 << 20, true).await.unwrap();
            let hs = headers(&bytes);
            assert_eq!(hs[0].base_offset, offset, "contiguous");
            seen += hs.iter().map(|h| h.record_count).sum::<i32>();
            offset = read.next_offset;
        }
        assert_eq!(seen, 30);
        let info = log.append(&batch(&[b"after"], 101), 0, 0).await.unwrap();
        assert_eq!(info.first_offset, 30, "appends continue at the cut");
        log.close().await.unwrap();
        let log =
            PartitionLog::open(&dir, config, OpenHint { clean_shutdown: true, ..OpenHint::default() }).await.unwrap();
        assert_eq!(log.log_end_offset(), 31, "reopened");
    });
}
