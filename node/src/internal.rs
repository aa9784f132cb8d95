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

//!
//! It is also the coordinators' whole view of the shard they run on ([`Host`]): they look
//! up their partitions' logs, read the broker config, ask for producer ids and have
//! transaction markers written, and nothing else — so `group` and `txn` never import the
//! router (`shard`), which implements `Host` and carries their requests.

use crate::config::BrokerConfig;
use crate::log::{PartitionLog, TopicPartition};
use bytes::Bytes;
use glommio::sync::{Semaphore, StaticPermit};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;

/// What a coordinator may ask of the shard it runs on.
pub trait Host: 'static {
    /// This shard's index.
    fn shard_id(&self) -> usize;
    /// The broker settings in force (a snapshot).
    fn config(&self) -> Rc<BrokerConfig>;
    /// A partition's log, if this shard has it open.
    fn log(&self, tp: &TopicPartition) -> Option<Rc<PartitionLog>>;
    /// This shard's open partitions of `topic`.
    fn logs_of(&self, topic: &str) -> Vec<(TopicPartition, Rc<PartitionLog>)>;
    /// In a cluster: whether this node leads internal partition `tp`, so its coordinator is
    /// (about to be) opening and loading it — COORDINATOR_LOAD_IN_PROGRESS rather
    /// than NOT_COORDINATOR meanwhile, as Kafka answers (or has not learnt of the topic).
    fn loading(&self, tp: &TopicPartition) -> bool;
    /// How many partitions `topic` has (0: no such topic).
    fn partition_count(&self, topic: &str) -> i32;
    /// Every topic: (name, topic id, partitions), by name.
    fn topics(&self) -> Vec<(String, u128, i32)>;
    /// A new producer id (allocated by the controller shard).
    fn new_producer_id(self: &Rc<Self>) -> impl Future<Output = Result<i64, String>>;
    /// Writes a COMMIT or ABORT marker for the producer into each partition (wherever it is
    /// owned) and waits until every one is fdatasynced.
    fn write_markers(
        self: &Rc<Self>,
        parts: Vec<TopicPartition>,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> impl Future<Output = Result<(), String>>;
}

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

    /// Every permit of `partition`'s gate: waits for the writers under way and holds off new
    /// ones until dropped.
    pub async fn exclusive(&self, partition: i32) -> Option<StaticPermit> {
        self.acquire(partition, GATE_PERMITS).await
    }

    /// This shard's partitions of `topic` grown past `limit` and past twice their size
    /// after their last compaction.
    pub fn due(&self, host: &Rc<impl Host>, topic: &str, limit: u64) -> Vec<(TopicPartition, Rc<PartitionLog>)> {
        let compacted = self.compacted_bytes.borrow();
        host.logs_of(topic)
            .into_iter()
            .filter(|(tp, log)| {
                let floor = compacted.get(&tp.partition).copied().unwrap_or(0).saturating_mul(2);
                log.size_bytes() >= limit.max(floor)
            })
            .collect()
    }

    /// Compacts one partition down to `live()` (called once every writer is held off).
    pub async fn rewrite(
        &self,
        host: &Rc<impl Host>,
        tp: &TopicPartition,
        log: &Rc<PartitionLog>,
        live: impl FnOnce() -> Vec<KeyValue>,
    ) -> Result<(), String> {
        let _all = self.exclusive(tp.partition).await.ok_or("the write gate is closed")?;
        log.roll_now().await.map_err(|e| e.to_string())?;
        let start = log.log_end_offset();
        for chunk in live().chunks(COMPACTION_BATCH_RECORDS) {
            write(host, tp, chunk.to_vec(), None).await?;
        }
        log.advance_log_start(start).await.map_err(|e| e.to_string())?;
        self.compacted_bytes.borrow_mut().insert(tp.partition, log.size_bytes());
        Ok(())
    }
}

/// Appends key/value records to an internal topic's partition owned by this shard, as one
/// uncompressed batch, and fdatasyncs it (`acks=all`). With `producer`, the batch is
/// transactional for that producer id and epoch (unsequenced: written by a coordinator).
pub async fn write(
    host: &Rc<impl Host>,
    tp: &TopicPartition,
    records: Vec<(Bytes, Option<Bytes>)>,
    producer: Option<(i64, i16)>,
) -> Result<(), String> {
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let log = host.log(tp).ok_or_else(|| format!("{tp} is not open on shard {}", host.shard_id()))?;
    let now = crate::runtime::now_ms();
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records with equal offset − sequence in one batch, whose base
            // sequence is then -1 (unsequenced).
            sequence: i as i32 - 1,
            timestamp: now,
            key: Some(key),
            value,
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, &records, &options).map_err(|e| e.to_string())?;
    let info = log.append(&buf, log.leader_epoch(), now).await.map_err(|e| e.to_string())?;
    log.sync_to(info.last_offset + 1).await.map_err(|e| e.to_string())?;
    replicated(&log, tp, info.last_offset + 1).await
}

/// acks=all for a coordinator's write (state, offsets, a transaction marker) in a cluster:
/// done once every in-sync replica has the log below `end`; Kafka waits
/// `offsets.commit.timeout.ms`, 5 s by default, and then fails the write.
pub async fn replicated(log: &PartitionLog, tp: &TopicPartition, end: i64) -> Result<(), String> {
    match log.until_replicated(end, REPLICATION_TIMEOUT).await {
        Some(true) => Ok(()),
        Some(false) => Err(format!("{tp}: stopped being led here before its in-sync replicas had the write")),
        None => Err(format!("{tp}: the in-sync replicas did not have the write within {REPLICATION_TIMEOUT:?}")),
    }
}

/// How long a coordinator's write waits for the partition's in-sync replicas.
const REPLICATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Calls `f` with every record of an internal topic's partition, from its log start to its
/// end, in order (batches of any codec, control records included).
pub async fn for_each_record(
    log: &Rc<PartitionLog>,
    tp: &TopicPartition,
    mut f: impl FnMut(&kafka_protocol::records::Record),
) -> Result<(), String> {
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let (bytes, _) = log.read_copy(offset, 1 << 20, true).await.map_err(|e| format!("reading {tp}: {e}"))?;
        if bytes.is_empty() {
            break;
        }
        let mut buf = Bytes::from(bytes);
        let mut next = offset;
        while !buf.is_empty() {
            let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf)
                .map_err(|e| format!("decoding {tp} near offset {next}: {e}"))?;
            for r in &set.records {
                next = next.max(r.offset + 1);
                if r.offset >= offset {
                    f(r);
                }
            }
        }
        if next <= offset {
            break;
        }
        offset = next;
    }
    Ok(())
}
