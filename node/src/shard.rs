//! One shard: a pinned glommio executor that owns some partitions, a listener, and its
//! connections. Shared-nothing: what a shard knows of other shards' partitions comes
//! through messages, never through shared memory.
//!
//! This module is the router: `owner` is the one routing decision (the placement table),
//! and `invoke(owner, op)` the one way to reach the owner — inline when it is this shard,
//! otherwise one message over a glommio channel mesh carrying a cross-thread oneshot for
//! the operation's typed reply (`ops`). A request touching partitions on N shards sends at
//! most one message per shard (see `api::produce`, `api::fetch`). The coordinators see the
//! shard only through `internal::Host` (`coordinators`).
//! Fetch ranges cross shards as duplicated file descriptors: the owning shard `dup`s the
//! segment's descriptor, the connection's shard sends from it and closes it, which is the
//! lease release — no counter is shared between cores.

use crate::config::BrokerConfig;
use crate::log::background::Maintained;
use crate::log::checkpoint::{self, OffsetEntry};
use crate::log::{LogError, OpenHint, PartitionLog, TopicPartition};
use crate::metrics::Metrics;
use crate::topics::{self, Registry, TopicId, TopicInfo};
use bytes::Bytes;
use glommio::channels::channel_mesh::Senders;
use glommio::sync::Semaphore;
pub use moves::{balance_continuously, MoveError, Rebalanced};
pub use ops::{Op, ShardOp};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

mod coordinators;
mod moves;
pub mod ops;

/// Kafka error codes used across the node.
pub mod errors {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    /// Retriable: the partition is moving between shards (or just moved); ask again.
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const INVALID_REQUIRED_ACKS: i16 = 21;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REQUEST: i16 = 42;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
}

/// One partition's records of a produce request.
#[derive(Debug, Clone)]
pub struct ProducePart {
    pub tp: TopicPartition,
    pub records: Bytes,
}

/// What a produce did to one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceOutcome {
    pub error: i16,
    pub base_offset: i64,
    pub log_start_offset: i64,
    pub message: Option<String>,
}

/// One partition of a fetch.
#[derive(Debug, Clone)]
pub struct FetchPart {
    pub tp: TopicPartition,
    pub offset: i64,
    pub max_bytes: usize,
    pub at_least_one: bool,
    /// isolation_level=1: only up to the last stable offset, with the aborted transactions.
    pub read_committed: bool,
}

/// A fetched range as it crosses shards: a duplicated descriptor.
#[derive(Debug)]
pub struct SentRange {
    pub fd: OwnedFd,
    pub position: u64,
    pub length: u64,
}

/// What a fetch found in one partition; `D` is the data: a local range or a sent one.
#[derive(Debug)]
pub struct FetchOutcome<D> {
    pub error: i16,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub data: Option<D>,
    pub last_stable_offset: i64,
    /// read_committed: aborted transactions in the returned range (producer id, first offset).
    pub aborted: Vec<(i64, i64)>,
}

impl<D> FetchOutcome<D> {
    /// An outcome with no data and no offsets.
    pub fn failed(error: i16) -> Self {
        FetchOutcome {
            error,
            high_watermark: -1,
            log_start_offset: -1,
            data: None,
            last_stable_offset: -1,
            aborted: Vec::new(),
        }
    }
}

pub use crate::metrics::PartitionStat;

/// What every shard is given at start.
#[derive(Debug, Clone)]
pub struct ShardSetup {
    pub shards: usize,
    pub config: BrokerConfig,
    pub data_dir: PathBuf,
    pub registry: Registry,
    pub recovery_points: BTreeMap<TopicPartition, i64>,
    pub log_starts: BTreeMap<TopicPartition, i64>,
    pub clean_shutdown: bool,
    /// From `meta.properties`; Metadata v2+ reports it.
    pub cluster_id: String,
    /// The first producer id this run may hand out (the end of the last reserved block).
    pub producer_id_start: i64,
    /// Which shard owns which partition (`partition-placement`).
    pub placement: crate::placement::Placement,
}

#[derive(Debug)]
pub struct Shard {
    pub id: usize,
    pub setup: ShardSetup,
    pub registry: RefCell<Registry>,
    pub logs: RefCell<HashMap<TopicPartition, Rc<PartitionLog>>>,
    pub maintained: Rc<Maintained>,
    pub metrics: RefCell<Metrics>,
    /// Bytes in and out of the partitions this shard owns, and its load sampler's readings.
    pub load: RefCell<crate::metrics::Load>,
    /// Mesh senders, and the mesh peer id of each shard id.
    peers: Senders<Op>,
    peer_of_shard: Vec<usize>,
    /// Serialises topic creation on the controller.
    controller: Semaphore,
    /// The Kafka listener's address, for Metadata responses.
    pub advertised: RefCell<(String, i32)>,
    /// Set when the node is stopping: connections stop taking new requests.
    pub stopping: std::cell::Cell<bool>,
    /// Requests (from connections or other shards) being handled on this shard right now.
    pub in_flight: std::cell::Cell<usize>,
    /// Request bytes this shard may hold at once (`queued.max.request.bytes`): a connection
    /// takes permits for a frame before reading its body and returns them when answered.
    pub request_bytes: Rc<Semaphore>,
    /// What the checkpoints said of partitions present at start; taken on first open, so a
    /// topic deleted and created again starts from nothing.
    hints: RefCell<BTreeMap<TopicPartition, OpenHint>>,
    /// The consumer groups this shard coordinates.
    pub groups: crate::group::Coordinator,
    /// The transactions this shard coordinates.
    pub txns: crate::txn::TxnCoordinator,
    /// Shard 0: the next producer id and the end of the block reserved on disk.
    producer_ids: std::cell::Cell<(i64, i64)>,
    /// Shard 0: serialises reservations of producer id blocks.
    producer_id_block: Semaphore,
    /// This shard's copy of the placement table, read by `owner`.
    placement: RefCell<crate::placement::Placement>,
    /// Partitions being moved away from this shard (owner) or by this shard (controller):
    /// requests for them are answered NOT_LEADER_OR_FOLLOWER until the move is done.
    moving: RefCell<std::collections::BTreeSet<TopicPartition>>,
    /// Appends (produce, transaction markers) under way per partition; a move waits for 0.
    appending: Rc<RefCell<HashMap<TopicPartition, usize>>>,
}

/// Producer ids reserved on disk at a time (a restart skips what was left of a block).
const PRODUCER_ID_BLOCK: i64 = 1000;
/// The file on shard 0 that holds the end of the last reserved block.
pub const PRODUCER_ID_BLOCK_FILE: &str = "producer_id_block";

/// How long a clean stop waits for requests in flight (a long-poll fetch may park this long).
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

fn storage_error(e: &LogError) -> i16 {
    e.kafka_error_code()
}

impl Shard {
    pub fn new(id: usize, setup: ShardSetup, peers: Senders<Op>, peer_of_shard: Vec<usize>) -> Rc<Shard> {
        let hints = setup
            .registry
            .topics()
            .flat_map(|t| (0..t.partitions).map(move |p| TopicPartition::new(t.name.clone(), p)))
            .map(|tp| {
                let hint = OpenHint {
                    recovery_point: setup.recovery_points.get(&tp).copied().unwrap_or(0),
                    log_start_offset: setup.log_starts.get(&tp).copied().unwrap_or(0),
                    clean_shutdown: setup.clean_shutdown,
                };
                (tp, hint)
            })
            .collect();
        Rc::new(Shard {
            stopping: std::cell::Cell::new(false),
            in_flight: std::cell::Cell::new(0),
            request_bytes: Rc::new(Semaphore::new(setup.config.queued_max_request_bytes as u64)),
            hints: RefCell::new(hints),
            groups: crate::group::Coordinator::default(),
            txns: crate::txn::TxnCoordinator::default(),
            producer_ids: std::cell::Cell::new((setup.producer_id_start, setup.producer_id_start)),
            producer_id_block: Semaphore::new(1),
            placement: RefCell::new(setup.placement.clone()),
            moving: RefCell::new(Default::default()),
            appending: Rc::new(RefCell::new(HashMap::new())),
            id,
            registry: RefCell::new(setup.registry.clone()),
            setup,
            logs: RefCell::new(HashMap::new()),
            maintained: Rc::new(Maintained::default()),
            metrics: RefCell::new(Metrics::default()),
            load: RefCell::new(crate::metrics::Load::default()),
            peers,
            peer_of_shard,
            controller: Semaphore::new(1),
            advertised: RefCell::new(("127.0.0.1".into(), 9092)),
        })
    }

    pub fn shards(&self) -> usize {
        self.setup.shards
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.setup.config
    }

    /// The routing function's answer for a partition.
    pub fn owner(&self, tp: &TopicPartition) -> usize {
        self.placement.borrow().owner(tp, self.shards())
    }

    pub fn log(&self, tp: &TopicPartition) -> Option<Rc<PartitionLog>> {
        self.logs.borrow().get(tp).cloned()
    }

    /// The log a request may use, or the error code it gets: NOT_LEADER_OR_FOLLOWER
    /// (retriable) while the partition moves or after it moved away from this shard,
    /// UNKNOWN_TOPIC_OR_PARTITION when the topic does not exist.
    pub fn serving_log(&self, tp: &TopicPartition) -> Result<Rc<PartitionLog>, i16> {
        if self.moving.borrow().contains(tp) {
            return Err(errors::NOT_LEADER_OR_FOLLOWER);
        }
        match self.log(tp) {
            Some(log) => Ok(log),
            None if self.registry.borrow().get(&tp.topic).is_some_and(|t| tp.partition < t.partitions) => {
                Err(errors::NOT_LEADER_OR_FOLLOWER)
            }
            None => Err(errors::UNKNOWN_TOPIC_OR_PARTITION),
        }
    }

    /// Counts an append to `tp` under way until the guard is dropped (a move waits for 0).
    fn appending(&self, tp: &TopicPartition) -> moves::Appending {
        moves::Appending::new(&self.appending, tp)
    }

    /// Runs `work` counted as in flight, so a clean stop waits for it.
    pub async fn counted<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        self.in_flight.set(self.in_flight.get() + 1);
        let out = work.await;
        self.in_flight.set(self.in_flight.get() - 1);
        out
    }

    /// Waits (up to `limit`) until no request is being handled on this shard.
    pub async fn drain(&self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        while self.in_flight.get() > 0 && std::time::Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Appends each part to its (local) partition; with acks=-1 waits for the group commit.
    pub async fn produce_local(&self, parts: Vec<ProducePart>, acks: i16, timeout_ms: i32) -> Vec<ProduceOutcome> {
        let now = crate::runtime::now_ms();
        let tasks: Vec<_> = parts
            .into_iter()
            .map(|part| {
                let log = self.serving_log(&part.tp);
                let using = log.as_ref().ok().map(|_| self.appending(&part.tp));
                if log.is_ok() {
                    self.metrics.borrow_mut().produce_bytes += part.records.len() as u64;
                    self.load.borrow_mut().produced(&part.tp, part.records.len() as u64);
                }
                let target = match self.registry.borrow().get(&part.tp.topic) {
                    Some(t) => match crate::topic_config::compression(&t.configs) {
                        crate::topic_config::TopicCompression::Codec(c) => Some(c),
                        crate::topic_config::TopicCompression::Producer => None,
                    },
                    None => None,
                };
                glommio::spawn_local(async move {
                    let _using = using;
                    let log = match log {
                        Ok(log) => log,
                        Err(error) => {
                            return ProduceOutcome { error, base_offset: -1, log_start_offset: -1, message: None }
                        }
                    };
                    // The topic's compression.type: batches in another codec are re-encoded.
                    let records = match target.map(|c| crate::log::records::recompress(&part.records, c)) {
                        None => part.records,
                        Some(Ok(v)) => Bytes::from(v),
                        Some(Err(e)) => {
                            return ProduceOutcome {
                                error: e.kafka_error_code(),
                                base_offset: -1,
                                log_start_offset: log.log_start_offset(),
                                message: Some(e.to_string()),
                            }
                        }
                    };
                    produce_one(&log, &records, acks, timeout_ms, now).await
                })
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await);
        }
        out
    }

    /// Reads each part from its (local) partition.
    pub async fn fetch_local(&self, parts: &[FetchPart]) -> Vec<FetchOutcome<crate::log::FileRange>> {
        let mut out = Vec::with_capacity(parts.len());
        for part in parts {
            let log = match self.serving_log(&part.tp) {
                Ok(log) => log,
                Err(error) => {
                    out.push(FetchOutcome::failed(error));
                    continue;
                }
            };
            let outcome = match log.read_upto(part.offset, part.max_bytes, part.at_least_one, part.read_committed).await
            {
                Ok(info) => {
                    if let Some(range) = &info.range {
                        self.load.borrow_mut().fetched(&part.tp, range.length);
                    }
                    let lso = log.last_stable_offset();
                    let aborted = match (&info.range, part.read_committed) {
                        (Some(_), true) => log.aborted_between(info.first_offset, info.next_offset),
                        _ => Vec::new(),
                    };
                    FetchOutcome {
                        error: errors::NONE,
                        high_watermark: info.high_watermark,
                        log_start_offset: info.log_start_offset,
                        data: info.range,
                        last_stable_offset: lso,
                        aborted,
                    }
                }
                Err(e) => FetchOutcome {
                    error: storage_error(&e),
                    high_watermark: log.high_watermark(),
                    log_start_offset: log.log_start_offset(),
                    data: None,
                    last_stable_offset: log.last_stable_offset(),
                    aborted: Vec::new(),
                },
            };
            out.push(outcome);
        }
        out
    }

    /// Parks until one of the partitions has data past its offset, or `wait` elapses.
    pub async fn wait_local(&self, parts: &[(TopicPartition, i64)], wait: Duration) {
        let waits: Vec<crate::watch::WaitFor> = parts
            .iter()
            .filter_map(|(tp, offset)| Some(self.log(tp)?.end_watch().wait_for((*offset + 1).max(0) as u64)))
            .collect();
        futures_lite::future::or(
            async {
                let _ = crate::watch::first_of(waits).await;
            },
            glommio::timer::sleep(wait),
        )
        .await;
    }

    /// ListOffsets for local partitions: (error, timestamp, offset) per part.
    pub async fn list_offsets_local(&self, parts: &[(TopicPartition, i64, bool)]) -> Vec<(i16, i64, i64)> {
        let mut out = Vec::with_capacity(parts.len());
        for (tp, timestamp, committed) in parts {
            let log = match self.serving_log(tp) {
                Ok(log) => log,
                Err(error) => {
                    out.push((error, -1, -1));
                    continue;
                }
            };
            let found = match *timestamp {
                -2 => Ok(Some((log.log_start_offset(), -1))),
                -1 if *committed => Ok(Some((log.last_stable_offset(), -1))),
                -1 => Ok(Some((log.high_watermark(), -1))),
                -3 => log.max_timestamp_offset().await,
                ts if ts >= 0 => log.offset_for_timestamp(ts).await,
                _ => {
                    out.push((errors::INVALID_REQUEST, -1, -1));
                    continue;
                }
            };
            out.push(match found {
                Ok(Some((offset, ts))) => (errors::NONE, ts, offset),
                Ok(None) => (errors::NONE, -1, -1),
                Err(e) => (storage_error(&e), -1, -1),
            });
        }
        out
    }

    /// Appends a COMMIT or ABORT marker to local partitions and waits for the fsync; a
    /// marker in `__consumer_offsets` also settles the transaction's offsets.
    pub async fn write_markers_local(
        &self,
        parts: &[TopicPartition],
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), String> {
        let marker = if commit { crate::log::batch::CONTROL_COMMIT } else { crate::log::batch::CONTROL_ABORT };
        let now = crate::runtime::now_ms();
        let tasks: Vec<_> = parts
            .iter()
            .map(|tp| {
                let log = self.serving_log(tp);
                let using = log.as_ref().ok().map(|_| self.appending(tp));
                let tp = tp.clone();
                glommio::spawn_local(async move {
                    let _using = using;
                    let log = log.map_err(|e| format!("{tp} is not open here (error {e})"))?;
                    let info = log
                        .append_marker(producer_id, epoch, marker, 0, now)
                        .await
                        .map_err(|e| format!("{tp}: {e}"))?;
                    log.sync_to(info.last_offset + 1).await.map_err(|e| format!("{tp}: {e}"))
                })
            })
            .collect();
        for t in tasks {
            t.await?;
        }
        for tp in parts.iter().filter(|tp| tp.topic == crate::group::store::OFFSETS_TOPIC) {
            self.groups.complete_txn(self.config().offsets_topic_num_partitions, tp.partition, producer_id, commit);
        }
        Ok(())
    }

    /// A producer id never handed out before (any shard may call; shard 0 allocates).
    pub async fn allocate_producer_id(self: &Rc<Self>) -> Result<i64, String> {
        self.invoke(0, ops::AllocateProducerId).await?
    }

    /// Shard 0: the next producer id, reserving a new block on disk when one is used up.
    async fn allocate_producer_id_local(&self) -> Result<i64, String> {
        let _one = self.producer_id_block.acquire_permit(1).await.map_err(|_| "closed".to_string())?;
        let (next, end) = self.producer_ids.get();
        if next >= end {
            let new_end = next + PRODUCER_ID_BLOCK;
            let text = format!("{new_end}\n").into_bytes();
            checkpoint::write_atomic(&self.setup.data_dir, PRODUCER_ID_BLOCK_FILE, text)
                .await
                .map_err(|e| format!("reserving producer ids: {e}"))?;
            self.producer_ids.set((next, new_end));
        }
        let (next, end) = self.producer_ids.get();
        self.producer_ids.set((next + 1, end));
        Ok(next)
    }

    /// Runs a topic operation on shard 0, the controller (any shard may call).
    pub async fn controller<T: ShardOp<Reply = ops::TopicResult>>(self: &Rc<Self>, op: T) -> ops::TopicResult
    where
        Op: From<(T, glommio::channels::oneshot::SharedSender<ops::TopicResult>)>,
    {
        self.invoke(0, op).await.unwrap_or_else(|e| Err((errors::KAFKA_STORAGE_ERROR, e)))
    }

    /// Creates a topic; on shard 0 (see [`Shard::controller`]).
    async fn create_topic(
        self: &Rc<Self>,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<TopicInfo, (i16, String)> {
        topics::validate_topic_name(name).map_err(|e| (errors::INVALID_TOPIC_EXCEPTION, e))?;
        crate::topic_config::validate(&self.config().log, &configs)
            .map_err(|e| (crate::topic_config::INVALID_CONFIG, e))?;
        if partitions < 1 {
            return Err((errors::INVALID_PARTITIONS, "number of partitions must be at least 1".into()));
        }
        let _permit =
            self.controller.acquire_permit(1).await.map_err(|_| (errors::KAFKA_STORAGE_ERROR, "closed".into()))?;
        if let Some(existing) = self.registry.borrow().get(name) {
            return Err((errors::TOPIC_ALREADY_EXISTS, format!("topic {:?} already exists", existing.name)));
        }
        crate::topic_config::write(&self.setup.data_dir, name, &configs)
            .map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        let info = TopicInfo { name: name.to_string(), id: TopicId::random(), partitions, configs };
        self.place_new_partitions(name, 0, partitions).await.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        self.broadcast_topic(&info).await.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        Ok(info)
    }

    /// CreatePartitions: grows a topic; a count at or below the current one is refused, as
    /// Kafka does (partitions are never removed: keys would move).
    async fn grow_topic(self: &Rc<Self>, name: &str, partitions: i32) -> Result<TopicInfo, (i16, String)> {
        let _permit =
            self.controller.acquire_permit(1).await.map_err(|_| (errors::KAFKA_STORAGE_ERROR, "closed".into()))?;
        let current = self.registry.borrow().get(name).cloned();
        let Some(mut info) = current else {
            return Err((errors::UNKNOWN_TOPIC_OR_PARTITION, format!("topic {name:?} does not exist")));
        };
        if partitions <= info.partitions {
            let msg = format!("topic {name:?} has {} partitions; the count can only grow", info.partitions);
            return Err((errors::INVALID_PARTITIONS, msg));
        }
        self.place_new_partitions(name, info.partitions, partitions - info.partitions)
            .await
            .map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        info.partitions = partitions;
        self.broadcast_topic(&info).await.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        Ok(info)
    }

    /// DeleteTopics: every shard forgets the topic and deletes its partition directories.
    async fn delete_topic(self: &Rc<Self>, name: &str) -> Result<TopicInfo, (i16, String)> {
        let _permit =
            self.controller.acquire_permit(1).await.map_err(|_| (errors::KAFKA_STORAGE_ERROR, "closed".into()))?;
        let Some(info) = self.registry.borrow().get(name).cloned() else {
            return Err((errors::UNKNOWN_TOPIC_OR_PARTITION, format!("topic {name:?} does not exist")));
        };
        self.apply_delete(name).await.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        crate::topic_config::write(&self.setup.data_dir, name, &BTreeMap::new())
            .map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        let others = self.invoke_each(|s| s != self.id, || ops::ApplyDelete { name: name.to_string() }).await;
        for result in others.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))? {
            result.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        }
        self.unplace_topic(name).await.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        Ok(info)
    }

    /// Forgets a topic and deletes the directories of the partitions this shard owns.
    /// Fetches in flight keep their descriptors and finish; the files go with the last one.
    pub async fn apply_delete(&self, name: &str) -> Result<(), String> {
        self.registry.borrow_mut().remove(name);
        self.placement.borrow_mut().remove_topic(name);
        let owned: Vec<TopicPartition> = self.logs.borrow().keys().filter(|tp| tp.topic == name).cloned().collect();
        for tp in owned {
            self.logs.borrow_mut().remove(&tp);
            self.load.borrow_mut().forget(&tp);
            let dir = self.setup.data_dir.join(tp.dir_name());
            std::fs::remove_dir_all(&dir).map_err(|e| format!("deleting {}: {e}", dir.display()))?;
        }
        Ok(())
    }

    /// Every shard (this one first) records the topic and opens its partitions.
    async fn broadcast_topic(self: &Rc<Self>, info: &TopicInfo) -> Result<(), String> {
        self.invoke_each(|_| true, || ops::ApplyTopic(info.clone())).await?.into_iter().collect()
    }

    /// Records a topic in this shard's registry and opens the partitions this shard owns.
    pub async fn apply_topic(&self, info: TopicInfo) -> Result<(), String> {
        self.registry.borrow_mut().upsert(info.clone());
        for p in 0..info.partitions {
            let tp = TopicPartition::new(info.name.clone(), p);
            if self.owner(&tp) == self.id && self.log(&tp).is_none() {
                self.open_partition(tp, info.id).await.map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// A partition's log settings: the broker's with the topic's overrides, except for the
    /// internal topics, never trimmed by time or size (their coordinators compact them: see
    /// `internal`) and with segment sizes of their own, as in Kafka.
    pub fn log_config(&self, tp: &TopicPartition) -> crate::log::LogConfig {
        let overrides = self.registry.borrow().get(&tp.topic).map(|t| t.configs.clone()).unwrap_or_default();
        let mut config = crate::topic_config::log_config(&self.config().log, &overrides).unwrap_or_else(|e| {
            eprintln!("sluice: {tp}: topic configs ignored: {e}");
            self.config().log.clone()
        });
        if tp.topic == crate::group::store::OFFSETS_TOPIC {
            config.retention_ms = -1;
            config.retention_bytes = -1;
            config.segment_bytes = self.config().offsets_topic_segment_bytes;
        } else if tp.topic == crate::txn::TXN_TOPIC {
            config.retention_ms = -1;
            config.retention_bytes = -1;
            config.segment_bytes = self.config().transaction_state_segment_bytes;
        }
        config
    }

    /// Opens (or creates) one partition's log and writes its `partition.metadata`.
    pub async fn open_partition(&self, tp: TopicPartition, id: TopicId) -> Result<Rc<PartitionLog>, LogError> {
        let dir = self.setup.data_dir.join(tp.dir_name());
        let hint = self.hints.borrow_mut().remove(&tp).unwrap_or_default();
        let log = PartitionLog::open(&dir, self.log_config(&tp), hint).await?;
        let metadata = topics::encode_partition_metadata(id);
        if std::fs::read_to_string(dir.join(topics::PARTITION_METADATA_FILE)).ok().as_deref() != Some(&metadata) {
            checkpoint::write_atomic(&dir, topics::PARTITION_METADATA_FILE, metadata.into_bytes()).await?;
        }
        self.maintained.add(&log);
        self.logs.borrow_mut().insert(tp, log.clone());
        Ok(log)
    }

    pub fn partition_stats(&self) -> Vec<PartitionStat> {
        let mut stats: Vec<PartitionStat> = self
            .logs
            .borrow()
            .iter()
            .map(|(tp, log)| PartitionStat {
                tp: tp.clone(),
                shard: self.id,
                log_start_offset: log.log_start_offset(),
                log_end_offset: log.log_end_offset(),
                recovery_point: log.recovery_point(),
                size_bytes: log.size_bytes(),
                segments: log.segment_count(),
                sync_rounds: log.sync_rounds(),
                load: self.load.borrow().partition(tp),
            })
            .collect();
        stats.sort_by(|a, b| a.tp.cmp(&b.tp));
        stats
    }

    /// This shard's counters, with the watchdog's kicks (kept outside the shard).
    pub(crate) fn metrics_snapshot(&self) -> Metrics {
        let mut m = self.metrics.borrow().clone();
        m.executor_kicks = crate::watchdog::kicks(self.id);
        m.load = self.load.borrow().shard.clone();
        m
    }

    /// Stats of every shard (this one inline, the others by message).
    pub async fn all_stats(self: &Rc<Self>) -> (Vec<Metrics>, Vec<PartitionStat>) {
        let mut metrics = vec![Metrics::default(); self.shards()];
        let mut stats = Vec::new();
        for (s, slot) in metrics.iter_mut().enumerate() {
            if let Ok((m, p)) = self.invoke(s, ops::Stats).await {
                *slot = *m;
                stats.extend(p);
            }
        }
        stats.sort_by(|a, b| a.tp.cmp(&b.tp));
        (metrics, stats)
    }

    /// Stops taking requests, lets those in flight finish (bounded), then flushes and closes
    /// every partition of this shard.
    pub(crate) async fn close_local(&self) -> Result<(), String> {
        self.stopping.set(true);
        self.drain(SHUTDOWN_DRAIN).await;
        let logs: Vec<_> = self.logs.borrow().values().cloned().collect();
        for log in logs {
            log.close().await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Clean shutdown, run on shard 0: every shard closes its logs, then the checkpoints
    /// and the clean-shutdown marker are written.
    pub async fn shutdown_all(self: &Rc<Self>) -> Result<(), String> {
        // Our own requests first: they may still append to other shards' partitions.
        self.stopping.set(true);
        self.drain(SHUTDOWN_DRAIN).await;
        for result in self.invoke_each(|s| s != self.id, || ops::Close).await? {
            result?;
        }
        self.close_local().await?;
        let (_, stats) = self.all_stats().await;
        let dir = &self.setup.data_dir;
        let entries = |f: fn(&PartitionStat) -> i64| -> Vec<OffsetEntry> {
            stats
                .iter()
                .map(|s| OffsetEntry { topic: s.tp.topic.clone(), partition: s.tp.partition, offset: f(s) })
                .collect()
        };
        let files: [(&str, fn(&PartitionStat) -> i64); 3] = [
            (checkpoint::RECOVERY_POINT_FILE, |s| s.recovery_point),
            (checkpoint::REPLICATION_OFFSET_FILE, |s| s.log_end_offset),
            (checkpoint::LOG_START_OFFSET_FILE, |s| s.log_start_offset),
        ];
        for (name, value) in files {
            checkpoint::write_offsets(dir, name, &entries(value)).await.map_err(|e| e.to_string())?;
        }
        checkpoint::write_atomic(dir, crate::log::CLEAN_SHUTDOWN_FILE, Vec::new()).await.map_err(|e| e.to_string())
    }
}

/// Appends to one local partition and waits as `acks` requires.
async fn produce_one(log: &Rc<PartitionLog>, records: &Bytes, acks: i16, timeout_ms: i32, now: i64) -> ProduceOutcome {
    let failed = |error: i16, message: String| ProduceOutcome {
        error,
        base_offset: -1,
        log_start_offset: log.log_start_offset(),
        message: Some(message),
    };
    let info = match log.append_shared(records, 0, now).await {
        Ok(info) => info,
        Err(e) => return failed(storage_error(&e), e.to_string()),
    };
    if acks == -1 {
        let timeout = Duration::from_millis(timeout_ms.max(0) as u64);
        let synced = futures_lite::future::or(async { Some(log.sync_to(info.last_offset + 1).await) }, async {
            glommio::timer::sleep(timeout).await;
            None
        })
        .await;
        match synced {
            Some(Ok(())) => {}
            Some(Err(e)) => return failed(storage_error(&e), e.to_string()),
            None => return failed(errors::REQUEST_TIMED_OUT, "the fdatasync did not finish within timeout.ms".into()),
        }
    }
    ProduceOutcome {
        error: errors::NONE,
        base_offset: info.first_offset,
        log_start_offset: info.log_start_offset,
        message: None,
    }
}

/// Turns a local fetch outcome into one that can cross to another shard.
fn send_outcome(o: FetchOutcome<crate::log::FileRange>) -> FetchOutcome<SentRange> {
    let data = o.data.and_then(|r| {
        // SAFETY: dup returns a new descriptor we own, or -1.
        let fd = unsafe { libc::dup(r.file.file.as_raw_fd()) };
        (fd >= 0).then(|| SentRange {
            // SAFETY: `fd` was just returned by dup and is owned by nobody else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            position: r.position,
            length: r.length,
        })
    });
    FetchOutcome {
        error: o.error,
        high_watermark: o.high_watermark,
        log_start_offset: o.log_start_offset,
        data,
        last_stable_offset: o.last_stable_offset,
        aborted: o.aborted,
    }
}
