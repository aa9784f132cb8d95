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
use crate::errors;
use crate::log::background::Maintained;
use crate::log::checkpoint::{self, OffsetEntry};
use crate::log::{LogError, OpenHint, PartitionLog, TopicPartition};
use crate::metrics::Metrics;
use crate::partition;
use crate::topics::{self, Registry, TopicId};
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

mod controller;
mod coordinators;
mod moves;
pub mod ops;

pub use crate::partition::{FetchOutcome, FetchPart, ProduceOutcome, ProducePart};

/// A fetched range as it crosses shards: a duplicated descriptor.
#[derive(Debug)]
pub struct SentRange {
    pub fd: OwnedFd,
    pub position: u64,
    pub length: u64,
}

pub use crate::metrics::PartitionStat;

/// What every shard is given at start.
#[derive(Debug, Clone)]
pub struct ShardSetup {
    pub shards: usize,
    /// The static settings (defaults, `--config`, `--set`).
    pub config: BrokerConfig,
    /// The dynamic broker settings persisted in the data directory: the cluster-wide
    /// default layer and this broker's own (`config::DYNAMIC_DIR`).
    pub dynamic_default: BTreeMap<String, String>,
    pub dynamic_broker: BTreeMap<String, String>,
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
    /// In a cluster (`controller.quorum.voters`): what the metadata log says, for every shard.
    pub cluster: Option<crate::quorum::SharedView>,
}

/// What Metadata and DescribeCluster tell clients of the cluster.
#[derive(Debug, Clone)]
pub struct ClusterAnswer {
    /// (node id, host, port) of each broker listed.
    pub brokers: Vec<(i32, String, i32)>,
    /// The active controller (the quorum's leader); -1 when none is known, as Kafka says it.
    pub controller_id: i32,
    pub cluster_id: String,
}

#[derive(Debug)]
pub struct Shard {
    pub id: usize,
    pub setup: ShardSetup,
    /// The settings in force: the static ones with the dynamic layers on top. Replaced
    /// whole (on every shard) when a dynamic broker setting changes.
    config: RefCell<Rc<BrokerConfig>>,
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
    /// Shard 0 of a node in a cluster (`controller.quorum.voters`): its part in the quorum.
    pub quorum: RefCell<Option<Rc<crate::quorum::Quorum>>>,
    /// In a cluster, the leader each followed partition is copied from (`controller`).
    replica_fetchers: RefCell<HashMap<TopicPartition, i32>>,
    /// This shard's fetcher from each leader node: one connection per shard and leader.
    leader_fetchers: RefCell<HashMap<i32, Rc<crate::replica::Fetcher>>>,
    /// Idle connections to other nodes for WriteTxnMarkers, by node id (`coordinators`).
    marker_peers: RefCell<HashMap<i32, glommio::net::TcpStream>>,
    marker_correlation: std::cell::Cell<i32>,
    /// ISR expansions asked of the controller and not answered yet: (partition, replica).
    isr_requests: RefCell<std::collections::HashSet<(TopicPartition, i32)>>,
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
    /// Shard 0: serialises rewrites of `log-start-offset-checkpoint` (DeleteRecords).
    log_start_checkpoint: Semaphore,
    /// A rewrite of `log-start-offset-checkpoint` for followed partitions' moved log starts
    /// is asked of shard 0 and has not begun yet (`follower_log_start_moved`).
    follower_log_starts_due: std::cell::Cell<bool>,
    /// This shard's copy of the placement table, read by `owner`.
    placement: RefCell<crate::placement::Placement>,
    /// Partitions being moved away from this shard (owner) or by this shard (controller):
    /// requests for them are answered NOT_LEADER_OR_FOLLOWER until the move is done.
    moving: RefCell<std::collections::BTreeSet<TopicPartition>>,
    /// Appends (produce, transaction markers) under way per partition; a move waits for 0.
    appending: Rc<RefCell<HashMap<TopicPartition, usize>>>,
}

pub use controller::PRODUCER_ID_BLOCK_FILE;

/// How long a clean stop waits for requests in flight (a long-poll fetch may park this long).
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

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
        // `server::prepare` checked the layers; should they not apply, run on the static ones.
        let config = setup.config.with_dynamic(&setup.dynamic_default, &setup.dynamic_broker).unwrap_or_else(|e| {
            eprintln!("sluice: dynamic broker configs ignored: {e}");
            setup.config.clone()
        });
        Rc::new(Shard {
            config: RefCell::new(Rc::new(config)),
            stopping: std::cell::Cell::new(false),
            in_flight: std::cell::Cell::new(0),
            request_bytes: Rc::new(Semaphore::new(setup.config.queued_max_request_bytes as u64)),
            hints: RefCell::new(hints),
            groups: crate::group::Coordinator::default(),
            txns: crate::txn::TxnCoordinator::default(),
            producer_ids: std::cell::Cell::new((setup.producer_id_start, setup.producer_id_start)),
            producer_id_block: Semaphore::new(1),
            log_start_checkpoint: Semaphore::new(1),
            follower_log_starts_due: std::cell::Cell::new(false),
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
            quorum: RefCell::new(None),
            replica_fetchers: RefCell::new(HashMap::new()),
            leader_fetchers: RefCell::new(HashMap::new()),
            marker_peers: RefCell::new(HashMap::new()),
            marker_correlation: std::cell::Cell::new(0),
            isr_requests: RefCell::new(std::collections::HashSet::new()),
        })
    }

    pub fn shards(&self) -> usize {
        self.setup.shards
    }

    /// A topic as this shard knows it.
    pub fn topic_info(&self, name: &str) -> Option<topics::TopicInfo> {
        self.registry.borrow().get(name).cloned()
    }

    /// Alone: this node, its own controller. In a cluster: the registered brokers that are
    /// not fenced (this node among them even before its registration is known), the quorum's
    /// leader and the cluster's id.
    pub fn cluster_answer(&self) -> ClusterAnswer {
        let node = self.config().node_id;
        let (host, port) = self.advertised.borrow().clone();
        let own = (node, host, port);
        let Some(view) = &self.setup.cluster else {
            return ClusterAnswer {
                brokers: vec![own],
                controller_id: node,
                cluster_id: self.setup.cluster_id.clone(),
            };
        };
        let view = crate::quorum::read_view(view);
        let mut brokers: Vec<_> =
            view.brokers.iter().filter(|b| !b.fenced).map(|b| (b.id, b.host.clone(), b.port)).collect();
        if !brokers.iter().any(|b| b.0 == node) {
            brokers.push(own);
            brokers.sort();
        }
        ClusterAnswer {
            brokers,
            controller_id: view.leader.unwrap_or(-1),
            cluster_id: view.cluster_id.unwrap_or_else(|| self.setup.cluster_id.clone()),
        }
    }

    /// The settings in force now (a snapshot: a dynamic change replaces them).
    pub fn config(&self) -> Rc<BrokerConfig> {
        self.config.borrow().clone()
    }

    /// Puts new settings in force on this shard and re-derives the log settings of every
    /// partition it has open.
    pub fn set_config(&self, config: BrokerConfig) -> Result<(), String> {
        *self.config.borrow_mut() = Rc::new(config);
        self.reconfigure_logs(None)
    }

    /// Gives this shard's open partitions (of `topic`, or all) their log settings as the
    /// topic's and the broker's settings now say.
    pub fn reconfigure_logs(&self, topic: Option<&str>) -> Result<(), String> {
        let logs: Vec<(TopicPartition, Rc<PartitionLog>)> = self
            .logs
            .borrow()
            .iter()
            .filter(|(tp, _)| topic.is_none_or(|t| tp.topic == t))
            .map(|(tp, log)| (tp.clone(), log.clone()))
            .collect();
        for (tp, log) in logs {
            let wanted = self.log_config(&tp);
            if *log.config() != wanted {
                log.set_config(wanted).map_err(|e| format!("{tp}: {e}"))?;
            }
        }
        Ok(())
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
        if self.setup.cluster.is_some() {
            // A follower holds the partition too, but only its leader serves clients.
            let me = self.config().node_id;
            let leader = self.registry.borrow().get(&tp.topic).map(|t| t.node_of(tp.partition, me));
            if leader.is_some_and(|l| l != me) {
                return Err(errors::NOT_LEADER_OR_FOLLOWER);
            }
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
                let codec = self
                    .registry
                    .borrow()
                    .get(&part.tp.topic)
                    .and_then(|t| partition::stored_codec(&self.config(), &t.configs));
                glommio::spawn_local(async move {
                    let _using = using;
                    match log {
                        Ok(log) => partition::produce(&log, part.records, codec, acks, timeout_ms, now).await,
                        Err(error) => ProduceOutcome::failed(error, -1, None),
                    }
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
    pub async fn fetch_local(self: &Rc<Self>, parts: &[FetchPart]) -> Vec<FetchOutcome<crate::log::FileRange>> {
        let mut out = Vec::with_capacity(parts.len());
        for part in parts {
            let outcome = match self.serving_log(&part.tp) {
                Ok(log) => {
                    let outcome = partition::fetch(&log, part).await;
                    if let Some(replica) = part.replica.filter(|&r| log.caught_up_outside_isr(r)) {
                        self.request_isr_expansion(&part.tp, replica);
                    }
                    outcome
                }
                Err(error) => FetchOutcome::failed(error),
            };
            if let Some(range) = &outcome.data {
                self.load.borrow_mut().fetched(&part.tp, range.length);
            }
            out.push(outcome);
        }
        out
    }

    /// Asks the controller (shard 0, the quorum) to add a caught-up follower to the in-sync
    /// replicas; one request at a time per partition and follower.
    fn request_isr_expansion(self: &Rc<Self>, tp: &TopicPartition, replica: i32) {
        if !self.isr_requests.borrow_mut().insert((tp.clone(), replica)) {
            return;
        }
        let (shard, tp) = (self.clone(), tp.clone());
        glommio::spawn_local(async move {
            let asked = shard.invoke(0, ops::ExpandIsr { tp: tp.clone(), replica }).await;
            if let Err(e) = asked.and_then(|r| r) {
                eprintln!("sluice: {tp}: adding replica {replica} to the in-sync replicas failed: {e}");
            }
            shard.isr_requests.borrow_mut().remove(&(tp, replica));
        })
        .detach();
    }

    /// In a cluster, every `replica.lag.time.max.ms` / 2 (as Kafka checks): the in-sync
    /// followers of the partitions this shard leads that were not caught up for that long
    /// are dropped from the ISR through the controller (a slow or stuck follower stops
    /// holding acks=all and the high watermark back). Runs until the shard stops.
    pub async fn watch_in_sync_replicas(self: Rc<Self>) {
        while !self.stopping.get() {
            let lag = Duration::from_millis(self.config().replica_lag_time_max_ms.max(10));
            glommio::timer::sleep(lag / 2).await;
            let led: Vec<(TopicPartition, Rc<PartitionLog>)> = self
                .logs
                .borrow()
                .iter()
                .filter(|(_, l)| l.is_replicated_leader())
                .map(|(tp, l)| (tp.clone(), l.clone()))
                .collect();
            for (tp, log) in led {
                let lagging = log.lagging_in_sync_followers(lag);
                if lagging.is_empty() {
                    continue;
                }
                eprintln!(
                    "sluice: {tp}: replicas {lagging:?} not caught up for {} ms; leaving the in-sync replicas",
                    lag.as_millis()
                );
                let asked = self.invoke(0, ops::ShrinkIsr { tp: tp.clone(), lagging }).await;
                if let Err(e) = asked.and_then(|r| r) {
                    eprintln!("sluice: {tp}: shrinking the in-sync replicas failed: {e}");
                }
            }
        }
    }

    /// Parks until one of the partitions has data past its offset, or `wait` elapses.
    pub async fn wait_local(&self, parts: &[(TopicPartition, i64, bool)], wait: Duration) {
        let waits: Vec<crate::watch::WaitFor> = parts
            .iter()
            .filter_map(|(tp, offset, replica)| {
                let log = self.log(tp)?;
                let watch = if *replica { log.log_end_watch() } else { log.end_watch() };
                Some(watch.wait_for((*offset + 1).max(0) as u64))
            })
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
            out.push(match self.serving_log(tp) {
                Ok(log) => partition::list_offset(&log, *timestamp, *committed).await,
                Err(error) => (error, -1, -1),
            });
        }
        out
    }

    /// ListOffsets v0 for local partitions: (error, offsets newest first) per part.
    pub fn offsets_before_local(&self, parts: &[(TopicPartition, i64, i32, bool)]) -> Vec<(i16, Vec<i64>)> {
        let now = crate::runtime::now_ms();
        parts
            .iter()
            .map(|(tp, timestamp, max, from_consumer)| match self.serving_log(tp) {
                Ok(log) => partition::list_offsets_before(&log, *timestamp, *max, *from_consumer, now),
                Err(error) => (error, Vec::new()),
            })
            .collect()
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
                    partition::write_marker(&log, &tp, producer_id, epoch, commit, now).await
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

    /// DescribeConfigs of a topic as this shard knows it (None: no such topic); see
    /// `topic_config::describe`.
    pub fn describe_topic_configs(&self, name: &str) -> Option<Vec<crate::config::ConfigEntry>> {
        let config = self.config();
        let overrides = self.registry.borrow().get(name)?.configs.clone();
        Some(crate::topic_config::describe(&config, &partition::topic_configs(&config, name, &overrides)))
    }

    /// A partition's log settings (`partition::log_config`).
    pub fn log_config(&self, tp: &TopicPartition) -> crate::log::LogConfig {
        let overrides = self.registry.borrow().get(&tp.topic).map(|t| t.configs.clone()).unwrap_or_default();
        partition::log_config(&self.config(), tp, &overrides)
    }

    /// Opens (or creates) one partition's log and writes its `partition.metadata`.
    pub async fn open_partition(
        self: &Rc<Self>,
        tp: TopicPartition,
        id: TopicId,
    ) -> Result<Rc<PartitionLog>, LogError> {
        let dir = self.setup.data_dir.join(tp.dir_name());
        // The topic id first: a node killed while the log was being created must find it at
        // its next start, or it takes the directory for another topic of that name (and, in a
        // cluster, refuses the cluster's).
        let metadata = topics::encode_partition_metadata(id);
        if std::fs::read_to_string(dir.join(topics::PARTITION_METADATA_FILE)).ok().as_deref() != Some(&metadata) {
            std::fs::create_dir_all(&dir).map_err(|e| LogError::io(format!("creating {}", dir.display()), e))?;
            checkpoint::write_atomic(&dir, topics::PARTITION_METADATA_FILE, metadata.into_bytes()).await?;
        }
        let hint = self.hints.borrow_mut().remove(&tp).unwrap_or_default();
        let log = PartitionLog::open(&dir, self.log_config(&tp), hint).await?;
        // Weak: the log must not keep the shard alive.
        let (shard, moved) = (Rc::downgrade(self), tp.clone());
        log.on_log_start_moved(move |_| {
            if let Some(shard) = shard.upgrade() {
                shard.follower_log_start_moved(&moved);
            }
        });
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

    /// Shard 0: rewrites `log-start-offset-checkpoint` with every partition's log start now.
    /// Serialised with itself (two DeleteRecords may ask at once; the later write must not be
    /// overtaken by the earlier's older figures).
    pub async fn checkpoint_log_starts(self: &Rc<Self>) -> Result<(), String> {
        let _one = self.log_start_checkpoint.acquire_permit(1).await.map_err(|_| "closed".to_string())?;
        let (_, stats) = self.all_stats().await;
        let entries: Vec<OffsetEntry> = stats
            .iter()
            .map(|s| OffsetEntry { topic: s.tp.topic.clone(), partition: s.tp.partition, offset: s.log_start_offset })
            .collect();
        checkpoint::write_offsets(&self.setup.data_dir, checkpoint::LOG_START_OFFSET_FILE, &entries)
            .await
            .map_err(|e| e.to_string())
    }

    /// A log start moved past its first segment's base (`PartitionLog::on_log_start_moved`).
    /// A leader's DeleteRecords writes `log-start-offset-checkpoint` before it answers
    /// (`api::delete_records`); a follower's move — its leader's log start, taken from a
    /// fetch — has nobody to answer, so it is written here, in the background: else a
    /// follower started again reports its first segment's base until it fetches, and should
    /// it lead by then, serves records its leader deleted. One request to shard 0 covers
    /// every move on this shard until it begins.
    fn follower_log_start_moved(self: &Rc<Self>, tp: &TopicPartition) {
        if !self.log(tp).is_some_and(|log| log.is_follower()) || self.follower_log_starts_due.replace(true) {
            return;
        }
        let shard = self.clone();
        glommio::spawn_local(async move {
            shard.follower_log_starts_due.set(false);
            if let Err(e) = shard.invoke(0, ops::CheckpointLogStarts).await.and_then(|r| r) {
                eprintln!("sluice: writing the log start checkpoint after a follower's log start moved failed: {e}");
            }
        })
        .detach();
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

/// Turns a local fetch outcome into one that can cross to another shard: the segment file
/// travels as a descriptor of its own (`dup`). When none can be had (the descriptor limit),
/// the partition answers KAFKA_STORAGE_ERROR without records — a retriable error, so the
/// consumer fetches again — rather than NONE with nothing, which would look like the log end.
fn send_outcome(o: FetchOutcome<crate::log::FileRange>) -> FetchOutcome<SentRange> {
    let mut error = o.error;
    let data = o.data.and_then(|r| {
        // SAFETY: dup returns a new descriptor we own, or -1.
        let fd = unsafe { libc::dup(r.file.file.as_raw_fd()) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            eprintln!("sluice: fetch of {}: no descriptor for the records ({e})", r.file.path.display());
            error = errors::KAFKA_STORAGE_ERROR;
            return None;
        }
        Some(SentRange {
            // SAFETY: `fd` was just returned by dup and is owned by nobody else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            position: r.position,
            length: r.length,
        })
    });
    FetchOutcome {
        error,
        high_watermark: o.high_watermark,
        log_start_offset: o.log_start_offset,
        data,
        last_stable_offset: o.last_stable_offset,
        aborted: o.aborted,
        diverging: o.diverging,
    }
}
