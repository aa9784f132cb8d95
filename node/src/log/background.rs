//! Background log maintenance: retention and `flush.ms`, in a task queue with fewer shares
//! than request handling, so it cannot steal latency from produce and fetch.
//!
//! glommio divides a core's time between task queues in proportion to their shares when
//! both have work; request handling runs in the default queue (1000 shares), this queue
//! gets [`BACKGROUND_SHARES`]. Work here yields between partitions.

use super::partition::PartitionLog;
use crate::runtime::now_ms;
use glommio::{Latency, Shares, TaskQueueHandle};
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

/// Shares of the background queue against the default queue's 1000.
pub const BACKGROUND_SHARES: usize = 100;

/// Creates this shard's background task queue.
pub fn background_queue() -> TaskQueueHandle {
    glommio::executor().create_task_queue(Shares::Static(BACKGROUND_SHARES), Latency::NotImportant, "log-background")
}

/// The partitions a shard maintains. Weak references: a deleted partition drops out.
#[derive(Debug, Default)]
pub struct Maintained {
    logs: RefCell<Vec<Weak<PartitionLog>>>,
}

impl Maintained {
    pub fn add(&self, log: &Rc<PartitionLog>) {
        self.logs.borrow_mut().push(Rc::downgrade(log));
    }

    /// Stops maintaining `log` (it moved to another shard; a fetch may still hold it).
    pub fn remove(&self, log: &Rc<PartitionLog>) {
        self.logs.borrow_mut().retain(|w| !std::ptr::eq(w.as_ptr(), Rc::as_ptr(log)));
    }

    fn live(&self) -> Vec<Rc<PartitionLog>> {
        let mut logs = self.logs.borrow_mut();
        logs.retain(|w| w.strong_count() > 0);
        logs.iter().filter_map(Weak::upgrade).collect()
    }

    /// One pass: retention and due flushes for every partition. Returns the segments deleted.
    pub async fn run_once(&self, now_ms: i64) -> usize {
        let mut deleted = 0;
        for log in self.live() {
            match log.enforce_retention(now_ms).await {
                Ok(outcome) => deleted += outcome.deleted_segments,
                Err(e) => eprintln!("sluice: retention of {} failed: {e}", log.dir().display()),
            }
            if let Err(e) = log.flush_if_due(now_ms).await {
                eprintln!("sluice: flush of {} failed: {e}", log.dir().display());
            }
            glommio::yield_if_needed().await;
        }
        deleted
    }
}

impl Maintained {
    /// The log cleaner's one step: cleans the compacted log that is due and dirtiest (Kafka's
    /// choice), if any. Returns whether one was cleaned.
    pub async fn clean_once(&self, now_ms: i64, map_budget: usize) -> bool {
        let mut best: Option<(f64, Rc<PartitionLog>)> = None;
        for log in self.live() {
            if let Some(c) = log.cleanable(now_ms).filter(|c| c.due) {
                if best.as_ref().is_none_or(|(ratio, _)| c.dirty_ratio > *ratio) {
                    best = Some((c.dirty_ratio, log));
                }
            }
        }
        let Some((_, log)) = best else { return false };
        match log.clean(now_ms, map_budget).await {
            Ok(Some(s)) => {
                let secs = (s.elapsed_ms.max(1)) as f64 / 1000.0;
                eprintln!(
                    "sluice: cleaned {}: read {} bytes, wrote {}, {} -> {} segments, {} keys, {} batches dropped and {} rewritten, clean below offset {}, {:.0} ms ({:.1} MB/s)",
                    log.dir().display(),
                    s.bytes_read,
                    s.bytes_written,
                    s.segments_before,
                    s.segments_after,
                    s.keys,
                    s.batches_dropped,
                    s.batches_rewritten,
                    s.cleaned_upto,
                    secs * 1000.0,
                    s.bytes_read as f64 / 1e6 / secs,
                );
                true
            }
            Ok(None) => false,
            Err(_) if log.cleaning_stopped() => false, // closed or deleted meanwhile
            Err(e) => {
                eprintln!("sluice: cleaning {} failed: {e}", log.dir().display());
                false
            }
        }
    }
}

/// Runs the shard's log cleaner in `queue`: cleans one due log after another, and sleeps
/// `backoff` (`log.cleaner.backoff.ms`) when none is due. `map_budget` bounds a cleaning's
/// key map (`log.cleaner.dedupe.buffer.size` divided between the shards).
pub fn spawn_cleaner(maintained: &Rc<Maintained>, queue: TaskQueueHandle, backoff: Duration, map_budget: usize) {
    let weak = Rc::downgrade(maintained);
    glommio::spawn_local_into(
        async move {
            loop {
                let Some(m) = weak.upgrade() else { return };
                let cleaned = m.clean_once(now_ms(), map_budget).await;
                drop(m);
                if cleaned {
                    glommio::yield_if_needed().await;
                } else {
                    glommio::timer::sleep(backoff).await;
                }
            }
        },
        queue,
    )
    .expect("the background queue belongs to this executor")
    .detach();
}

/// Runs maintenance every `interval` in `queue` until `maintained` is dropped.
/// (`log.retention.check.interval.ms` is Kafka's name for the interval; default 5 minutes.)
pub fn spawn_maintenance(maintained: &Rc<Maintained>, queue: TaskQueueHandle, interval: Duration) {
    let weak = Rc::downgrade(maintained);
    glommio::spawn_local_into(
        async move {
            loop {
                glommio::timer::sleep(interval).await;
                let Some(m) = weak.upgrade() else { return };
                m.run_once(now_ms()).await;
            }
        },
        queue,
    )
    .expect("the background queue belongs to this executor")
    .detach();
}
