//! What the two coordinators (groups, transactions) share about their internal topics
//! (`__consumer_offsets`, `__transaction_state`): a write gate per partition, and
//! compaction by rewriting the live state.
//!
//! Writers hold a shared permit of their partition's gate from their append until memory
//! reflects it; compaction takes the gate exclusively, so the state it copies from memory is
//! exactly the state in the log. Compaction then seals the active segment, appends the
//! current value of every live key (original timestamps inside the values), fdatasyncs, and
//! moves the log start to the first rewritten record, which deletes every older segment.
//! Kafka's log cleaner reaches the same end (one record per live key; tombstones and
//! overwritten values gone) by rewriting old segments in place; a coordinator already holds
//! the live state, so it writes it once more instead. A crash in between loses nothing:
//! until the log start moves the old records are all there, and replaying old then new
//! gives the same state.

use crate::log::{PartitionLog, TopicPartition};
use crate::shard::Shard;
use bytes::Bytes;
use glommio::sync::{Semaphore, StaticPermit};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Permits of a partition's gate (more writers than can ever be in flight).
const GATE_PERMITS: u64 = 1 << 20;

/// Records per batch when compaction rewrites the live state.
const COMPACTION_BATCH_RECORDS: usize = 1000;

/// A key and its value (`None`: a tombstone).
pub type KeyValue = (Bytes, Option<Bytes>);

#[derive(Debug, Default)]
pub struct WriteGates {
    gates: RefCell<HashMap<i32, Rc<Semaphore>>>,
    /// Per partition: its size right after the last compaction.
    compacted_bytes: RefCell<HashMap<i32, u64>>,
}

impl WriteGates {
    async fn acquire(&self, partition: i32, permits: u64) -> Option<StaticPermit> {
        let gate =
            self.gates.borrow_mut().entry(partition).or_insert_with(|| Rc::new(Semaphore::new(GATE_PERMITS))).clone();
        gate.acquire_static_permit(permits).await.ok()
    }

    /// A writer's permit for `partition`.
    pub async fn shared(&self, partition: i32) -> Option<StaticPermit> {
        self.acquire(partition, 1).await
    }

    /// This shard's partitions of `topic` grown past `limit` and past twice their size
    /// after their last compaction.
    pub fn due(&self, shard: &Shard, topic: &str, limit: u64) -> Vec<(TopicPartition, Rc<PartitionLog>)> {
        let compacted = self.compacted_bytes.borrow();
        shard
            .logs
            .borrow()
            .iter()
            .filter(|(tp, _)| tp.topic == topic)
            .filter(|(tp, log)| {
                let floor = compacted.get(&tp.partition).copied().unwrap_or(0).saturating_mul(2);
                log.size_bytes() >= limit.max(floor)
            })
            .map(|(tp, log)| (tp.clone(), log.clone()))
            .collect()
    }

    /// Compacts one partition down to `live()` (called once every writer is held off).
    pub async fn rewrite(
        &self,
        shard: &Rc<Shard>,
        tp: &TopicPartition,
        log: &Rc<PartitionLog>,
        live: impl FnOnce() -> Vec<KeyValue>,
    ) -> Result<(), String> {
        let _all = self.acquire(tp.partition, GATE_PERMITS).await.ok_or("the write gate is closed")?;
        log.roll_now().await.map_err(|e| e.to_string())?;
        let start = log.log_end_offset();
        for chunk in live().chunks(COMPACTION_BATCH_RECORDS) {
            crate::group::write_to(shard, tp, chunk.to_vec(), None).await?;
        }
        log.advance_log_start(start).await.map_err(|e| e.to_string())?;
        self.compacted_bytes.borrow_mut().insert(tp.partition, log.size_bytes());
        Ok(())
    }
}
