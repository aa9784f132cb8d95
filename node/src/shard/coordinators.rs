//! The router's side of the two coordinators (`group`, `txn`): which shard coordinates a
//! group or a transactional id, what a coordinator may ask of its shard (`internal::Host`,
//! implemented here), loading their state at start, and their timers.

use super::ops::{Op, ShardOp, WriteMarkers};
use super::Shard;
use crate::config::BrokerConfig;
use crate::group::GroupView;
use crate::internal::Host;
use crate::log::{PartitionLog, TopicPartition};
use glommio::channels::oneshot::SharedSender;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

impl Host for Shard {
    fn shard_id(&self) -> usize {
        self.id
    }

    fn config(&self) -> Rc<BrokerConfig> {
        Shard::config(self)
    }

    /// In a cluster, only a partition this node leads: a coordinator works on the leader's
    /// log, and a follower's copy changes only by replication.
    fn log(&self, tp: &TopicPartition) -> Option<Rc<PartitionLog>> {
        self.logs.borrow().get(tp).filter(|_| self.leads_here(tp)).cloned()
    }

    fn logs_of(&self, topic: &str) -> Vec<(TopicPartition, Rc<PartitionLog>)> {
        self.logs
            .borrow()
            .iter()
            .filter(|(tp, _)| tp.topic == topic && self.leads_here(tp))
            .map(|(tp, l)| (tp.clone(), l.clone()))
            .collect()
    }

    /// Also while this node has not learnt of the internal topic yet (another node made it
    /// and named this one its coordinator a moment ago): the client asks again shortly,
    /// and is told NOT_COORDINATOR then if another node leads.
    fn loading(&self, tp: &TopicPartition) -> bool {
        self.setup.cluster.is_some() && (self.topic_info(&tp.topic).is_none() || self.leads_here(tp))
    }

    fn partition_count(&self, topic: &str) -> i32 {
        self.registry.borrow().get(topic).map_or(0, |t| t.partitions)
    }

    fn topics(&self) -> Vec<(String, u128, i32)> {
        self.registry.borrow().topics().map(|t| (t.name.clone(), t.id.0, t.partitions)).collect()
    }

    fn new_producer_id(self: &Rc<Self>) -> impl Future<Output = Result<i64, String>> {
        self.allocate_producer_id()
    }

    /// Outside a cluster: one message per owning shard, then waits for all. In a cluster
    /// each partition's marker goes to its leader — this node's shards, or the other node
    /// with WriteTxnMarkers, as Kafka's coordinators send them — and a partition whose
    /// leader moved or could not take it is tried again at its new leader, for up to
    /// `MARKER_DEADLINE`.
    async fn write_markers(
        self: &Rc<Self>,
        parts: Vec<TopicPartition>,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), String> {
        // A partition whose topic was deleted meanwhile gets no marker (there is nothing
        // left to mark), as Kafka's coordinator skips it; the transaction still completes.
        let (parts, gone): (Vec<TopicPartition>, Vec<TopicPartition>) = parts.into_iter().partition(|tp| {
            self.topic_info(&tp.topic).is_some_and(|t| tp.partition >= 0 && tp.partition < t.partitions)
        });
        if !gone.is_empty() {
            eprintln!("sluice: producer {producer_id}: no marker for {} partitions of deleted topics", gone.len());
        }
        if self.setup.cluster.is_none() {
            return self.write_markers_here(parts, producer_id, epoch, commit).await;
        }
        let me = self.config().node_id;
        let deadline = Instant::now() + MARKER_DEADLINE;
        let mut pending = parts;
        loop {
            let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
            for tp in pending {
                // Deleted meanwhile: nothing left to mark (as above).
                let Some(leader) = self.topic_info(&tp.topic).map(|t| t.node_of(tp.partition, me)) else { continue };
                by_leader.entry(leader).or_default().push(tp);
            }
            let mut failed = Vec::new();
            let mut why = String::new();
            for (leader, parts) in by_leader {
                let outcome = if leader == me {
                    self.write_markers_here(parts.clone(), producer_id, epoch, commit).await.map(|()| Vec::new())
                } else if leader < 0 {
                    Err(format!("{} has no leader", parts[0]))
                } else {
                    self.send_markers(leader, &parts, producer_id, epoch, commit).await
                };
                match outcome {
                    Ok(refused) => failed.extend(refused),
                    Err(e) => {
                        why = e;
                        failed.extend(parts);
                    }
                }
            }
            if failed.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("markers not written to {} partitions ({})", failed.len(), why));
            }
            pending = failed;
            glommio::timer::sleep(MARKER_RETRY).await;
        }
    }
}

/// How long a coordinator keeps trying to have a transaction's markers written.
const MARKER_DEADLINE: Duration = Duration::from_secs(15);
/// The pause before markers are tried again at (new) leaders.
const MARKER_RETRY: Duration = Duration::from_millis(200);
/// A connection to another node, or one WriteTxnMarkers exchange, may take this long.
const MARKER_IO_TIMEOUT: Duration = Duration::from_secs(10);

impl Shard {
    /// Markers into partitions this node holds: one message per owning shard (this one
    /// inline), then waits for all.
    async fn write_markers_here(
        self: &Rc<Self>,
        parts: Vec<TopicPartition>,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), String> {
        let mut per_shard: BTreeMap<usize, Vec<TopicPartition>> = BTreeMap::new();
        for tp in parts {
            per_shard.entry(self.owner(&tp)).or_default().push(tp);
        }
        for (owner, parts) in per_shard {
            self.invoke(owner, WriteMarkers { parts, producer_id, epoch, commit }).await??;
        }
        Ok(())
    }

    /// WriteTxnMarkers to node `leader` for `parts`: the partitions it refused (Ok), or why
    /// the exchange failed (Err: all of them are to be tried again).
    async fn send_markers(
        self: &Rc<Self>,
        leader: i32,
        parts: &[TopicPartition],
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<Vec<TopicPartition>, String> {
        use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
        use kafka_protocol::messages::{
            ApiKey, ProducerId, TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
        };
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in parts {
            topics.entry(tp.topic.as_str()).or_default().push(tp.partition);
        }
        let marker = WritableTxnMarker::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_transaction_result(commit)
            .with_coordinator_epoch(0)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(name, partitions)| {
                        WritableTxnMarkerTopic::default()
                            .with_name(TopicName(kafka_protocol::protocol::StrBytes::from_string(name.to_string())))
                            .with_partition_indexes(partitions)
                    })
                    .collect(),
            );
        let request = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
        let pooled = self.marker_peers.borrow_mut().remove(&leader);
        let mut stream = match pooled {
            Some(s) => s,
            None => {
                let address = self
                    .cluster_answer()
                    .brokers
                    .into_iter()
                    .find(|b| b.0 == leader)
                    .map(|(_, host, port)| format!("{host}:{port}"))
                    .ok_or_else(|| format!("node {leader} is not live"))?;
                crate::peer::connect(&address, MARKER_IO_TIMEOUT)
                    .await
                    .map_err(|e| format!("node {leader} not reachable: {e}"))?
            }
        };
        let client_id = format!("sluice-txn-{}", self.config().node_id);
        let exchange = crate::peer::exchange::<_, WriteTxnMarkersResponse>(
            &mut stream,
            ApiKey::WriteTxnMarkers,
            1,
            {
                let c = self.marker_correlation.get().wrapping_add(1);
                self.marker_correlation.set(c);
                c
            },
            &client_id,
            &request,
        );
        let answer = futures_lite::future::or(async { Some(exchange.await) }, async {
            glommio::timer::sleep(MARKER_IO_TIMEOUT).await;
            None
        })
        .await;
        let response = match answer {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Err(format!("WriteTxnMarkers to node {leader}: {e}")),
            None => return Err(format!("WriteTxnMarkers to node {leader}: no answer within 10 s")),
        };
        self.marker_peers.borrow_mut().insert(leader, stream);
        let mut refused = Vec::new();
        let mut answered = std::collections::BTreeSet::new();
        for topic in response.markers.iter().flat_map(|m| &m.topics) {
            for p in &topic.partitions {
                let tp = TopicPartition::new(topic.name.0.to_string(), p.partition_index);
                if p.error_code != crate::errors::NONE {
                    refused.push(tp.clone());
                }
                answered.insert(tp);
            }
        }
        refused.extend(parts.iter().filter(|tp| !answered.contains(*tp)).cloned());
        Ok(refused)
    }

    /// WriteTxnMarkers, served: markers into `parts` for a coordinator on another node,
    /// each answered with its error code (NOT_LEADER_OR_FOLLOWER where this node does not
    /// lead the partition; the coordinator then finds the new leader).
    pub async fn write_markers_for_peer(
        self: &Rc<Self>,
        parts: Vec<TopicPartition>,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Vec<(TopicPartition, i16)> {
        let mut out = Vec::new();
        let mut per_shard: BTreeMap<usize, Vec<TopicPartition>> = BTreeMap::new();
        for tp in parts {
            match self.topic_info(&tp.topic) {
                Some(t) if tp.partition >= 0 && tp.partition < t.partitions => {}
                _ => {
                    out.push((tp, crate::errors::UNKNOWN_TOPIC_OR_PARTITION));
                    continue;
                }
            }
            if !self.leads_here(&tp) {
                out.push((tp, crate::errors::NOT_LEADER_OR_FOLLOWER));
                continue;
            }
            per_shard.entry(self.owner(&tp)).or_default().push(tp);
        }
        for (owner, parts) in per_shard {
            let op = WriteMarkers { parts: parts.clone(), producer_id, epoch, commit };
            let code = match self.invoke(owner, op).await {
                Ok(Ok(())) => crate::errors::NONE,
                Ok(Err(e)) => {
                    eprintln!("sluice: markers for producer {producer_id} failed: {e}");
                    crate::errors::KAFKA_STORAGE_ERROR
                }
                Err(_) => crate::errors::KAFKA_STORAGE_ERROR,
            };
            for tp in parts {
                let code = if code != crate::errors::NONE && !self.leads_here(&tp) {
                    crate::errors::NOT_LEADER_OR_FOLLOWER
                } else {
                    code
                };
                out.push((tp, code));
            }
        }
        out
    }

    /// Whether this node leads `tp` (always, outside a cluster).
    pub(super) fn leads_here(&self, tp: &TopicPartition) -> bool {
        if self.setup.cluster.is_none() {
            return true;
        }
        let me = self.config().node_id;
        self.registry.borrow().get(&tp.topic).is_some_and(|t| t.node_of(tp.partition, me) == me)
    }

    /// Whether this shard's coordinators answer for internal partition `tp` now.
    fn coordinates(&self, tp: &TopicPartition) -> bool {
        if tp.topic == crate::group::store::OFFSETS_TOPIC {
            self.groups.coordinates(tp.partition)
        } else {
            self.txns.coordinates(tp.partition)
        }
    }

    /// In a cluster, the coordinators follow the leadership of their internal partitions
    /// (called for every partition of an internal topic this shard holds, after its role
    /// was set): a new leader replays the partition and answers for its groups or
    /// transactional ids; a former leader stops (its clients get NOT_COORDINATOR and find
    /// the new one), as Kafka's coordinators move on leader elections.
    pub(super) async fn follow_coordinator_leadership(self: &Rc<Self>, tp: &TopicPartition) {
        let leading = self.leads_here(tp);
        if leading == self.coordinates(tp) {
            return;
        }
        if leading {
            if let Err(e) = self.load_coordinator(tp).await {
                eprintln!("sluice: {tp}: the coordinator's state did not load: {e}");
            }
        } else {
            drop(self.unload_coordinator(tp).await);
        }
    }

    /// In a cluster: creates a coordinators' topic through the metadata log (another node
    /// creating it at the same time is as good), with the partitions and replicas the
    /// settings give. Err: why it cannot be made now (too few live brokers, no quorum).
    pub async fn create_internal_topic(self: &Rc<Self>, name: &str) -> Result<(), String> {
        let config = self.config();
        let (partitions, replication_factor) = if name == crate::group::store::OFFSETS_TOPIC {
            (config.offsets_topic_num_partitions, config.offsets_topic_replication_factor)
        } else {
            (config.transaction_state_num_partitions, config.transaction_state_replication_factor)
        };
        let op = super::ops::CreateTopic {
            name: name.to_string(),
            partitions,
            replication_factor,
            configs: BTreeMap::new(),
        };
        match self.controller(op).await {
            Ok(_) | Err((crate::errors::TOPIC_ALREADY_EXISTS, _)) => Ok(()),
            Err((_, e)) => Err(format!("{name} cannot be created yet: {e}")),
        }
    }

    /// The shard coordinating `group` (the owner of its `__consumer_offsets` partition).
    pub fn group_coordinator(&self, group: &str) -> usize {
        self.owner(&crate::group::offsets_partition(&self.config(), group))
    }

    /// The shard coordinating transactional id `id` (the owner of its
    /// `__transaction_state` partition).
    pub fn txn_coordinator(&self, id: &str) -> usize {
        self.owner(&crate::txn::state_partition(&self.config(), id))
    }

    /// Every group of every shard, by name (`make` asks one shard; a shard that cannot be
    /// reached is left out).
    pub async fn groups_everywhere<T: ShardOp<Reply = Vec<GroupView>>>(
        self: &Rc<Self>,
        make: impl Fn() -> T,
    ) -> Vec<GroupView>
    where
        Op: From<(T, SharedSender<Vec<GroupView>>)>,
    {
        let mut out = Vec::new();
        for s in 0..self.shards() {
            out.extend(self.invoke(s, make()).await.unwrap_or_default());
        }
        out.sort_by(|a, b| a.group.cmp(&b.group));
        out
    }

    /// Replays the coordinators' partitions this shard owns and starts their timers;
    /// transactions a stop interrupted are finished in the background.
    pub async fn start_coordinators(self: &Rc<Self>) -> Result<(), String> {
        let mut internal: Vec<TopicPartition> =
            self.logs.borrow().keys().filter(|tp| is_internal(tp)).cloned().collect();
        internal.sort();
        for tp in &internal {
            self.load_coordinator(tp).await?;
        }
        let groups = self.groups.group_count();
        if groups > 0 {
            eprintln!("sluice: shard {}: {groups} groups loaded", self.id);
        }
        glommio::spawn_local(run_group_timers(self.clone())).detach();
        glommio::spawn_local(run_txn_timers(self.clone())).detach();
        Ok(())
    }

    /// A coordinators' partition leaving this shard (a move): its coordinator stops
    /// answering for it; the permit holds its writers off until the log is closed.
    pub(super) async fn unload_coordinator(
        self: &Rc<Self>,
        tp: &TopicPartition,
    ) -> Option<glommio::sync::StaticPermit> {
        if tp.topic == crate::group::store::OFFSETS_TOPIC {
            self.groups.unload_partition(self, tp.partition).await
        } else if tp.topic == crate::txn::TXN_TOPIC {
            self.txns.unload_partition(self, tp.partition).await
        } else {
            None
        }
    }

    /// A coordinators' partition open on this shard (at start, or moved here): its
    /// coordinator replays it and answers for it; transactions left between prepare and
    /// complete are finished in the background.
    pub(super) async fn load_coordinator(self: &Rc<Self>, tp: &TopicPartition) -> Result<(), String> {
        let Some(log) = Host::log(&**self, tp) else { return Ok(()) };
        if tp.topic == crate::group::store::OFFSETS_TOPIC {
            self.groups.load_partition(self, tp, &log).await?;
        } else if tp.topic == crate::txn::TXN_TOPIC {
            let (_, interrupted) = self.txns.load_partition(self, tp, &log).await?;
            for meta in interrupted {
                let shard = self.clone();
                glommio::spawn_local(async move { shard.txns.resume(&shard, meta).await }).detach();
            }
        }
        Ok(())
    }
}

/// Partitions of the coordinators' topics (`__consumer_offsets`, `__transaction_state`).
pub(super) fn is_internal(tp: &TopicPartition) -> bool {
    tp.topic == crate::group::store::OFFSETS_TOPIC || tp.topic == crate::txn::TXN_TOPIC
}

/// The group timer loop: ticks, stores what changed, and expires offsets and compacts the
/// offsets partitions now and then.
async fn run_group_timers(shard: Rc<Shard>) {
    let retention_every = Duration::from_millis(shard.config().offsets_retention_check_interval_ms.max(10));
    let mut last_expiry = Instant::now();
    let mut last_compaction = Instant::now();
    while !shard.stopping.get() {
        glommio::timer::sleep(crate::group::TICK).await;
        for group in shard.groups.consumer_tick(&shard) {
            let shard = shard.clone();
            glommio::spawn_local(async move {
                if let Err(e) = shard.groups.persist_consumer(&shard, &group).await {
                    eprintln!("sluice: group {group:?}: storing the consumer group failed: {e}");
                }
            })
            .detach();
        }
        for group in shard.groups.tick() {
            let shard = shard.clone();
            glommio::spawn_local(async move {
                if let Err(e) = shard.groups.persist_group(&shard, &group).await {
                    eprintln!("sluice: group {group:?}: storing its metadata failed: {e}");
                }
            })
            .detach();
        }
        if last_expiry.elapsed() >= retention_every {
            last_expiry = Instant::now();
            shard.groups.expire(&shard).await;
        }
        if last_compaction.elapsed() >= crate::group::COMPACTION_CHECK {
            last_compaction = Instant::now();
            shard.groups.compact_if_due(&shard).await;
        }
    }
}

/// The transaction timer: aborts timed-out transactions every
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms` and compacts the state
/// partitions when due.
async fn run_txn_timers(shard: Rc<Shard>) {
    let every = Duration::from_millis(shard.config().transaction_abort_check_interval_ms.max(10));
    while !shard.stopping.get() {
        glommio::timer::sleep(every).await;
        shard.txns.abort_timed_out(&shard).await;
        shard.txns.compact_if_due(&shard).await;
    }
}
