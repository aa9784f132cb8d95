//! The cluster's metadata quorum (issue #15, Build 2 — in part): what KRaft is to Kafka.
//! Every node of a cluster is a voter (`controller.quorum.voters`, Kafka's setting and form)
//! and runs the quorum on shard 0, on openraft (`runtime` adapts it to glommio). The
//! replicated log holds metadata records (`Record`); every node applies them in log order to
//! its `ClusterState`. So far it holds the broker registrations: each node registers its
//! Kafka listener when it starts, and the registration's log index is its broker epoch, as in
//! KRaft. Brokers heartbeat to the leader; one silent for `broker.session.timeout.ms` is
//! fenced (a record), and unfenced when it is heard from again, as KRaft does. The first
//! cluster id proposed is the cluster's. Topics, partitions, leaders and ISR are not in it yet.
//!
//! Every shard reads what the log says through a `View` (a lock shared across the node's
//! threads, written on shard 0 when records apply and when the leader changes; Metadata and
//! DescribeCluster read it, nothing on the produce or fetch path does).
//!
//! Without `controller.quorum.voters` there is no quorum and the node runs alone, as before.

pub mod rpc;
pub mod runtime;
pub mod store;

use openraft::{BasicNode, Config, Raft, ServerState};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::rc::Rc;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub type NodeId = u64;

openraft::declare_raft_types!(
    /// The quorum's types for openraft.
    pub Types:
        D = Record,
        R = (),
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = runtime::GlommioRuntime,
);

/// A metadata record (KRaft's record types, by name, as they are added).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// KRaft's `RegisterBrokerRecord`: a node's Kafka listener at one of its starts
    /// (`incarnation` tells starts apart).
    RegisterBroker { id: i32, host: String, port: i32, incarnation: u64 },
    /// The cluster's id: the first one proposed stands (each node proposes its own).
    SetClusterId { id: String },
    /// KRaft's `FenceBrokerRecord`: the broker (of that epoch) missed its session timeout.
    FenceBroker { id: i32, epoch: u64 },
    /// KRaft's `UnfenceBrokerRecord`: it is heard from again.
    UnfenceBroker { id: i32, epoch: u64 },
    /// KRaft's `TopicRecord` with its `PartitionRecord`s: a topic, its configs, and the node
    /// hosting each partition. The first of a name stands; a later one of the same name is
    /// ignored (its proposer learns so: `Quorum::topic`).
    CreateTopic {
        name: String,
        id: u128,
        nodes: Vec<i32>,
        configs: BTreeMap<String, String>,
        /// Each partition's replicas, its leader first (absent: the leader alone).
        #[serde(default)]
        replicas: Vec<Vec<i32>>,
    },
    /// KRaft's `RemoveTopicRecord` (of that topic id only).
    DeleteTopic { name: String, id: u128 },
    /// More partitions for the topic of that id, on these nodes (KRaft's `PartitionRecord`s
    /// of a CreatePartitions).
    GrowTopic {
        name: String,
        id: u128,
        nodes: Vec<i32>,
        #[serde(default)]
        replicas: Vec<Vec<i32>>,
    },
    /// The topic's config overrides, whole (KRaft's `ConfigRecord`s of a topic).
    SetTopicConfigs { name: String, id: u128, configs: BTreeMap<String, String> },
    /// KRaft's `ConfigRecord` for the cluster-wide broker default (resource name ""): the
    /// whole dynamic default layer, every broker's.
    SetClusterConfigs { configs: BTreeMap<String, String> },
    /// KRaft's `ConfigRecord` for one broker (resource name = its node id): that broker's
    /// whole dynamic layer.
    SetBrokerConfigs { broker: i32, configs: BTreeMap<String, String> },
    /// KRaft's `ProducerIdsRecord`: producer ids from `start` on, `count` of them, are
    /// `broker`'s to hand out. Stands only if `start` is where the cluster's next block
    /// begins (two brokers asking at once: one gets it, the other asks again).
    ProducerIds { broker: i32, start: i64, count: i64 },
    /// KRaft's `PartitionChangeRecord`: partition `partition`'s leader (-1: none), leader
    /// epoch and in-sync replicas.
    PartitionChange { name: String, id: u128, partition: i32, leader: i32, leader_epoch: i32, isr: Vec<i32> },
    /// AlterPartitionReassignments for one partition (KIP-455; KRaft writes it as a
    /// `PartitionChangeRecord` with adding and removing replicas): move it to `target`
    /// (None: cancel the pending move). Applied as `TopicRecord::reassign` says.
    Reassign { name: String, id: u128, partition: i32, target: Option<Vec<i32>> },
    /// The end of a reassignment, once every target replica is in sync: the replicas being
    /// removed go. Stands only if the leader epoch is still `leader_epoch` and the target
    /// is still in sync (`TopicRecord::finish_reassignment`).
    FinishReassignment { name: String, id: u128, partition: i32, leader_epoch: i32 },
}

/// What shard 0 acts on as topic records apply: a topic as it now is, or its deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicChange {
    Upsert {
        name: String,
        topic: TopicRecord,
    },
    Delete {
        name: String,
        id: u128,
    },
    /// The cluster-wide dynamic broker settings are now these.
    ClusterConfigs(BTreeMap<String, String>),
    /// Broker `0`'s own dynamic settings are now these.
    BrokerConfigs(i32, BTreeMap<String, String>),
}

/// A topic as the metadata log holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub id: u128,
    /// Each partition's leader.
    pub nodes: Vec<i32>,
    pub configs: BTreeMap<String, String>,
    /// Each partition's replicas, its leader first (empty: the leader alone).
    #[serde(default)]
    pub replicas: Vec<Vec<i32>>,
    /// Each partition's leader epoch (absent: 0).
    #[serde(default)]
    pub leader_epochs: Vec<i32>,
    /// Each partition's in-sync replicas (absent: all its replicas).
    #[serde(default)]
    pub isr: Vec<Vec<i32>>,
    /// Partitions being reassigned, by index: their replicas are the target's followed by
    /// those being removed.
    #[serde(default)]
    pub reassigning: BTreeMap<i32, Reassigning>,
}

/// A partition's reassignment in progress (Kafka's adding and removing replicas).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassigning {
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

impl TopicRecord {
    pub fn replicas_of(&self, p: usize) -> Vec<i32> {
        match self.replicas.get(p) {
            Some(r) if !r.is_empty() => r.clone(),
            _ => self.nodes.get(p).map(|&n| vec![n]).unwrap_or_default(),
        }
    }

    pub fn epoch_of(&self, p: usize) -> i32 {
        self.leader_epochs.get(p).copied().unwrap_or(0)
    }

    pub fn isr_of(&self, p: usize) -> Vec<i32> {
        self.isr.get(p).cloned().unwrap_or_else(|| self.replicas_of(p))
    }

    /// Where a reassignment of partition `p` is heading: its replicas without those being
    /// removed.
    pub fn target_of(&self, p: usize) -> Vec<i32> {
        let removing = self.reassigning.get(&(p as i32)).map(|r| r.removing.as_slice()).unwrap_or_default();
        self.replicas_of(p).into_iter().filter(|r| !removing.contains(r)).collect()
    }

    /// Partition `p`'s replicas before any reassignment in progress: its replicas without
    /// those being added.
    pub fn original_of(&self, p: usize) -> Vec<i32> {
        let adding = self.reassigning.get(&(p as i32)).map(|r| r.adding.as_slice()).unwrap_or_default();
        self.replicas_of(p).into_iter().filter(|r| !adding.contains(r)).collect()
    }

    /// Gives every partition its own leader epoch and ISR entry, so one can be changed.
    fn expand(&mut self) {
        let n = self.nodes.len();
        if self.leader_epochs.len() < n {
            self.leader_epochs.resize(n, 0);
        }
        if self.isr.len() < n {
            let all: Vec<Vec<i32>> = (0..n).map(|q| self.isr_of(q)).collect();
            self.isr = all;
        }
        if self.replicas.len() < n {
            let all: Vec<Vec<i32>> = (0..n).map(|q| self.replicas_of(q)).collect();
            self.replicas = all;
        }
    }

    /// Starts (or replaces, or with None cancels) partition `p`'s reassignment, as Kafka's
    /// controller does: from the replicas it had before any move in progress (`original`),
    /// the replicas become the target followed by the original ones not in it; those are
    /// removed once the target is in sync (`finish_reassignment`). A cancellation goes back
    /// to the original replicas. Replicas leaving the set leave the ISR; if the leader
    /// leaves, the first live in-sync replica left leads, and the leader epoch moves on
    /// whenever a replica leaves, so it is fenced. Returns false if nothing changed.
    pub fn reassign(&mut self, p: usize, target: Option<&[i32]>, live: impl Fn(i32) -> bool) -> bool {
        if p >= self.nodes.len() {
            return false;
        }
        self.expand();
        let original = self.original_of(p);
        self.reassigning.remove(&(p as i32));
        let replicas: Vec<i32> = match target {
            Some(t) => t.iter().chain(original.iter().filter(|r| !t.contains(r))).copied().collect(),
            None => original.clone(),
        };
        if let Some(t) = target {
            let adding: Vec<i32> = t.iter().copied().filter(|r| !original.contains(r)).collect();
            let removing: Vec<i32> = original.iter().copied().filter(|r| !t.contains(r)).collect();
            if !adding.is_empty() || !removing.is_empty() {
                self.reassigning.insert(p as i32, Reassigning { adding, removing });
            }
        }
        self.set_replicas(p, replicas, live)
    }

    /// Ends partition `p`'s reassignment if its target is all in sync (the proposer saw
    /// leader epoch `epoch`): the removed replicas go (see `reassign`).
    pub fn finish_reassignment(&mut self, p: usize, epoch: i32, live: impl Fn(i32) -> bool) -> bool {
        let target = self.target_of(p);
        let ready = self.reassigning.contains_key(&(p as i32))
            && self.epoch_of(p) == epoch
            && target.iter().all(|r| self.isr_of(p).contains(r));
        if !ready {
            return false;
        }
        self.expand();
        self.reassigning.remove(&(p as i32));
        self.set_replicas(p, target, live)
    }

    fn set_replicas(&mut self, p: usize, replicas: Vec<i32>, live: impl Fn(i32) -> bool) -> bool {
        let removed = self.replicas[p].iter().any(|r| !replicas.contains(r));
        let isr: Vec<i32> = self.isr[p].iter().copied().filter(|r| replicas.contains(r)).collect();
        let leader = self.nodes[p];
        let new_leader = if replicas.contains(&leader) {
            leader
        } else {
            replicas.iter().copied().find(|&r| live(r) && isr.contains(&r)).unwrap_or(-1)
        };
        let changed = removed || self.replicas[p] != replicas || self.isr[p] != isr || new_leader != leader;
        if removed || new_leader != leader {
            self.leader_epochs[p] += 1;
        }
        self.replicas[p] = replicas;
        self.isr[p] = if isr.is_empty() && new_leader >= 0 { vec![new_leader] } else { isr };
        self.nodes[p] = new_leader;
        changed
    }
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broker {
    pub id: i32,
    pub host: String,
    pub port: i32,
    /// KRaft's broker epoch: the log index of the registration.
    pub epoch: u64,
    pub incarnation: u64,
    /// Not heard from within `broker.session.timeout.ms`: not listed to clients.
    pub fenced: bool,
}

/// What the log says, for every shard to read (see the module's doc).
#[derive(Debug, Clone, Default)]
pub struct View {
    pub cluster_id: Option<String>,
    /// The quorum's leader (Kafka's active controller), as this node last heard.
    pub leader: Option<i32>,
    /// Registered brokers by node id, fenced ones included.
    pub brokers: Vec<Broker>,
}

pub type SharedView = Arc<RwLock<View>>;

/// A copy of the view (a poisoned lock still holds the last view written).
pub fn read_view(view: &SharedView) -> View {
    view.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The quorum's settings, under KRaft's names where Kafka has them: broker liveness, the
/// leader rebalance, snapshots.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// `broker.heartbeat.interval.ms`
    pub heartbeat: Duration,
    /// `broker.session.timeout.ms`
    pub session: Duration,
    /// With `auto.leader.rebalance.enable`: `leader.imbalance.check.interval.seconds` and
    /// `leader.imbalance.per.broker.percentage`.
    pub rebalance: Option<(Duration, u32)>,
    /// `metadata.log.snapshot.interval.records`
    pub snapshot_interval: u64,
}

/// KIP-460's kinds of election (ElectLeaders' `election_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// The preferred replica (the first of the replica list), if it is live and in sync.
    Preferred,
    /// A partition without a live leader gets one: a live in-sync replica if any, else the
    /// first live replica (data it lacks is lost, as Kafka's unclean election).
    Unclean,
}

/// One partition's answer to AlterPartitionReassignments, or a partition of
/// ListPartitionReassignments.
pub type PartitionAnswer = (String, i32, i16, Option<String>);

/// A partition being reassigned: topic, partition, replicas, adding, removing.
pub type Ongoing = (String, i32, Vec<i32>, Vec<i32>, Vec<i32>);

/// One entry of `controller.quorum.voters`: `ID@HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

impl Voter {
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Parses `controller.quorum.voters` (`1@host1:9093,2@host2:9093,...`), as Kafka writes it.
pub fn parse_voters(text: &str) -> Result<Vec<Voter>, String> {
    let mut voters = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || format!("controller.quorum.voters: {entry:?} is not ID@HOST:PORT");
        let (id, addr) = entry.split_once('@').ok_or_else(bad)?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        let id: i32 = id.parse().map_err(|_| bad())?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        if id < 0 || host.is_empty() || port == 0 {
            return Err(bad());
        }
        if voters.iter().any(|v: &Voter| v.id == id) {
            return Err(format!("controller.quorum.voters: node id {id} is listed twice"));
        }
        voters.push(Voter { id, host: host.trim_start_matches('[').trim_end_matches(']').to_string(), port });
    }
    if voters.is_empty() {
        return Err("controller.quorum.voters: no voters listed".into());
    }
    Ok(voters)
}

/// What `/v1/cluster/quorum` shows: the fields of `kafka-metadata-quorum describe --status`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub node_id: i32,
    /// leader, follower, candidate or learner.
    pub state: &'static str,
    pub leader_id: Option<i32>,
    /// The Raft term (KRaft's leader epoch).
    pub leader_epoch: u64,
    /// The committed log end: entries below it are on a majority.
    pub high_watermark: u64,
    /// This node's log end.
    pub log_end_offset: u64,
    pub current_voters: Vec<i32>,
}

/// The leader's record of when it last heard from each broker (in memory: a new leader gives
/// every broker a full session from its election on).
#[derive(Debug, Default)]
pub struct Heard {
    last: RefCell<BTreeMap<i32, Instant>>,
}

impl Heard {
    pub fn beat(&self, id: i32) {
        self.last.borrow_mut().insert(id, Instant::now());
    }
}

impl std::fmt::Debug for Quorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quorum").field("node_id", &self.node_id).field("voters", &self.voters).finish()
    }
}

/// This node's part in the quorum.
pub struct Quorum {
    node_id: i32,
    raft: Raft<Types>,
    state: Rc<RefCell<store::ClusterState>>,
    voters: Vec<Voter>,
    view: SharedView,
    heard: Rc<Heard>,
    settings: Settings,
    /// Topic records as they apply, for shard 0 to act on (`take_applied`).
    applied: RefCell<Option<glommio::channels::local_channel::LocalReceiver<TopicChange>>>,
    /// Tells this start of the node from its earlier ones (KRaft's incarnation id).
    incarnation: u64,
}

/// How long a request that needs this node's metadata to be current (a topic's creation or
/// growth, a reassignment) waits for it to catch up after a start before it is answered
/// with a retriable error.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(2);

/// How often the leader sends heartbeats, and the election timeout's range (KRaft:
/// `controller.quorum.election.timeout.ms` 1000, randomised up to twice that).
const HEARTBEAT_MS: u64 = 200;
const ELECTION_TIMEOUT_MS: (u64, u64) = (1000, 2000);

impl Quorum {
    /// Opens this node's quorum state under `data_dir`, listens on its voter address and
    /// joins the quorum. A node that never took part proposes the voter set as the first
    /// membership (every voter does; the same set, so whichever lands first stands).
    pub async fn start(
        node_id: i32,
        voters: &[Voter],
        data_dir: &Path,
        view: SharedView,
        settings: Settings,
    ) -> Result<Rc<Quorum>, String> {
        let me = voters
            .iter()
            .find(|v| v.id == node_id)
            .ok_or_else(|| format!("node.id {node_id} is not among controller.quorum.voters: every node is a voter"))?;
        // Without SO_REUSEPORT (glommio's bind sets it): another process's listener on the
        // same port, e.g. a node's Kafka listener, would otherwise share its connections.
        let bind_error =
            |e: String| format!("binding the quorum address {} (controller.quorum.voters): {e}", me.addr());
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&me.addr())
            .map_err(|e| bind_error(e.to_string()))?
            .next()
            .ok_or_else(|| bind_error("no address".into()))?;
        let listener = crate::ownership::listen(addr, false).map_err(|e| bind_error(e.to_string()))?;
        let dir = data_dir.join(store::DIR);
        let log = store::LogStore::open(&dir)?;
        let pristine = log.is_pristine();
        let (forward, applied) = glommio::channels::local_channel::new_unbounded();
        let sm = store::StateMachine::open(&dir, view.clone(), forward)?;
        let state = sm.state.clone();
        let config = Config {
            cluster_name: "sluice".into(),
            heartbeat_interval: HEARTBEAT_MS,
            election_timeout_min: ELECTION_TIMEOUT_MS.0,
            election_timeout_max: ELECTION_TIMEOUT_MS.1,
            // KRaft snapshots its metadata log by size
            // (`metadata.log.max.record.bytes.between.snapshots`); here every
            // `metadata.log.snapshot.interval.records` records, keeping that many (at most
            // 1000) behind the snapshot for followers a little behind; one further behind
            // is sent the snapshot.
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(settings.snapshot_interval.max(1)),
            max_in_snapshot_log_to_keep: settings.snapshot_interval.min(1000),
            ..Default::default()
        }
        .validate()
        .map_err(|e| format!("quorum settings: {e}"))?;
        let raft = Raft::new(node_id as NodeId, Arc::new(config), rpc::Network, log, sm)
            .await
            .map_err(|e| format!("starting the quorum: {e}"))?;
        let heard = Rc::new(Heard::default());
        glommio::spawn_local(rpc::serve(listener, raft.clone(), heard.clone())).detach();
        if pristine {
            let members: BTreeMap<NodeId, BasicNode> =
                voters.iter().map(|v| (v.id as NodeId, BasicNode { addr: v.addr() })).collect();
            // Refused when a peer's membership reached us first: that is the same set.
            if let Err(e) = raft.initialize(members).await {
                eprintln!("sluice: quorum: not initialising ({e}): a peer did");
            }
        }
        let applied = RefCell::new(Some(applied));
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let incarnation = (nanos as u64) ^ ((std::process::id() as u64) << 32);
        let voters = voters.to_vec();
        let quorum = Rc::new(Quorum { node_id, raft, state, voters, view, heard, settings, applied, incarnation });
        glommio::spawn_local(follow_leader(Rc::downgrade(&quorum))).detach();
        glommio::spawn_local(send_heartbeats(Rc::downgrade(&quorum))).detach();
        glommio::spawn_local(fence_silent_brokers(Rc::downgrade(&quorum))).detach();
        Ok(quorum)
    }

    /// The topic records applied from now on (and those replayed at start), once: shard 0
    /// opens and deletes partitions by them.
    pub fn take_applied(&self) -> Option<glommio::channels::local_channel::LocalReceiver<TopicChange>> {
        self.applied.borrow_mut().take()
    }

    /// The topic of that name as the log holds it.
    pub fn topic(&self, name: &str) -> Option<TopicRecord> {
        self.state.borrow().topics.get(name).cloned()
    }

    /// Registered, unfenced brokers' ids, ascending.
    pub fn live_brokers(&self) -> Vec<i32> {
        self.state.borrow().brokers.values().filter(|b| !b.fenced).map(|b| b.id).collect()
    }

    /// A block of `count` producer ids no other broker of the cluster gets (KRaft's
    /// AllocateProducerIds): (start, end).
    pub async fn reserve_producer_ids(&self, count: i64) -> Result<(i64, i64), String> {
        for _ in 0..10 {
            let start = self.state.borrow().next_producer_id;
            let record = Record::ProducerIds { broker: self.node_id, start, count };
            self.propose(record, Duration::from_secs(10)).await?;
            // Applied here once committed (the proposer's own log may trail by a moment).
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.state.borrow().next_producer_id <= start && Instant::now() < deadline {
                glommio::timer::sleep(Duration::from_millis(5)).await;
            }
            if self.state.borrow().producer_id_blocks.get(&start) == Some(&self.node_id) {
                return Ok((start, start + count));
            }
        }
        Err("no producer id block after 10 tries".into())
    }

    /// This node's id.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The controller's duty towards partitions as brokers come and go (Kafka's
    /// `PartitionChangeBuilder`): a replicated partition whose leader is not live gets the
    /// first live in-sync replica as leader, in a new leader epoch — or none (-1) while no
    /// in-sync replica is live (`unclean.leader.election.enable` is false: a replica out of
    /// sync never leads); a replica that is not live leaves the in-sync replicas (the last
    /// one stays, as in Kafka, so that it alone may lead again). Computed from the log's
    /// state every tick on the quorum's leader, so a change lost with a leader is made again.
    fn partition_changes(&self) -> Vec<Record> {
        let state = self.state.borrow();
        let live = |id: i32| state.brokers.get(&id).is_some_and(|b| !b.fenced);
        let mut changes = Vec::new();
        for (name, topic) in &state.topics {
            for p in 0..topic.nodes.len() {
                let replicas = topic.replicas_of(p);
                if replicas.len() < 2 {
                    continue; // one replica: nothing to elect, nothing to shrink
                }
                let (leader, epoch, isr) = (topic.nodes[p], topic.epoch_of(p), topic.isr_of(p));
                let mut new_isr: Vec<i32> = isr.iter().copied().filter(|&r| live(r)).collect();
                if new_isr.is_empty() {
                    new_isr = if isr.contains(&leader) { vec![leader] } else { isr.iter().take(1).copied().collect() };
                }
                let new_leader = if leader >= 0 && live(leader) {
                    leader
                } else {
                    // The preferred order: the replica list's.
                    replicas.iter().copied().find(|&r| live(r) && new_isr.contains(&r)).unwrap_or(-1)
                };
                if new_leader == leader && new_isr == isr {
                    continue;
                }
                let leader_epoch = if new_leader != leader { epoch + 1 } else { epoch };
                let (name, id, partition) = (name.clone(), topic.id, p as i32);
                changes.push(Record::PartitionChange {
                    name,
                    id,
                    partition,
                    leader: new_leader,
                    leader_epoch,
                    isr: new_isr,
                });
            }
        }
        changes
    }

    /// Kafka's AlterPartition from a partition's leader (this node): `replica` caught up,
    /// add it to the in-sync replicas (same leader, same epoch).
    pub async fn expand_isr(&self, topic: &str, partition: i32, replica: i32) -> Result<(), String> {
        let Some(t) = self.topic(topic) else { return Err(format!("no topic {topic:?}")) };
        let p = partition as usize;
        let (leader, leader_epoch, mut isr) = (t.nodes.get(p).copied().unwrap_or(-1), t.epoch_of(p), t.isr_of(p));
        if leader != self.node_id || isr.contains(&replica) || !t.replicas_of(p).contains(&replica) {
            return Ok(()); // not ours to ask, or already done
        }
        isr.push(replica);
        let (name, id) = (topic.to_string(), t.id);
        self.propose(Record::PartitionChange { name, id, partition, leader, leader_epoch, isr }, Duration::from_secs(5))
            .await
    }

    /// Kafka's AlterPartition from a partition's leader (this node): `lagging` fell behind
    /// for `replica.lag.time.max.ms`; drop them from the in-sync replicas (same leader, same
    /// epoch; the leader itself always stays).
    pub async fn shrink_isr(&self, topic: &str, partition: i32, lagging: &[i32]) -> Result<(), String> {
        let Some(t) = self.topic(topic) else { return Err(format!("no topic {topic:?}")) };
        let p = partition as usize;
        let (leader, leader_epoch, isr) = (t.nodes.get(p).copied().unwrap_or(-1), t.epoch_of(p), t.isr_of(p));
        let kept: Vec<i32> = isr.iter().copied().filter(|r| *r == leader || !lagging.contains(r)).collect();
        if leader != self.node_id || kept == isr {
            return Ok(()); // not ours to ask, or already done
        }
        let (name, id) = (topic.to_string(), t.id);
        let change = Record::PartitionChange { name, id, partition, leader, leader_epoch, isr: kept };
        self.propose(change, Duration::from_secs(5)).await
    }

    /// The change an election of `election` kind makes to partition `p` of `topic`, or why
    /// there is none (an error code and message, as ElectLeaders answers them).
    fn election(&self, topic: &str, p: i32, election: Election) -> Result<Record, (i16, String)> {
        use crate::errors;
        let state = self.state.borrow();
        let live = |id: i32| state.brokers.get(&id).is_some_and(|b| !b.fenced);
        let Some(t) = state.topics.get(topic).filter(|t| p >= 0 && (p as usize) < t.nodes.len()) else {
            return Err((errors::UNKNOWN_TOPIC_OR_PARTITION, format!("no partition {topic}-{p}")));
        };
        let i = p as usize;
        let (leader, epoch, isr, replicas) = (t.nodes[i], t.epoch_of(i), t.isr_of(i), t.replicas_of(i));
        let (new_leader, new_isr) = match election {
            Election::Preferred => {
                let preferred = replicas.first().copied().unwrap_or(-1);
                if leader == preferred {
                    return Err((errors::ELECTION_NOT_NEEDED, "the preferred replica leads".into()));
                }
                if !live(preferred) || !isr.contains(&preferred) {
                    let why = format!("the preferred replica {preferred} is not live and in sync");
                    return Err((errors::PREFERRED_LEADER_NOT_AVAILABLE, why));
                }
                (preferred, isr)
            }
            Election::Unclean => {
                if leader >= 0 && live(leader) {
                    return Err((errors::ELECTION_NOT_NEEDED, format!("node {leader} leads")));
                }
                let clean = replicas.iter().copied().find(|&r| live(r) && isr.contains(&r));
                match clean.or_else(|| replicas.iter().copied().find(|&r| live(r))) {
                    Some(r) if clean.is_some() => (r, isr.into_iter().filter(|&x| live(x)).collect()),
                    Some(r) => (r, vec![r]),
                    None => return Err((errors::ELIGIBLE_LEADERS_NOT_AVAILABLE, "no replica is live".into())),
                }
            }
        };
        let (name, id) = (topic.to_string(), t.id);
        Ok(Record::PartitionChange {
            name,
            id,
            partition: p,
            leader: new_leader,
            leader_epoch: epoch + 1,
            isr: new_isr,
        })
    }

    /// ElectLeaders: holds `election` for each partition asked (None: every partition,
    /// where those needing none are left out of the answer, as Kafka does) and answers
    /// (topic, partition, error code, message) once each change is committed.
    pub async fn elect_leaders(
        &self,
        election: Election,
        wanted: Option<Vec<(String, Vec<i32>)>>,
    ) -> Vec<(String, i32, i16, Option<String>)> {
        let every = wanted.is_none();
        let wanted = wanted.unwrap_or_else(|| {
            let state = self.state.borrow();
            state.topics.iter().map(|(n, t)| (n.clone(), (0..t.nodes.len() as i32).collect())).collect()
        });
        let mut out = Vec::new();
        for (topic, partitions) in wanted {
            for p in partitions {
                match self.election(&topic, p, election) {
                    Ok(change) => match self.propose(change, Duration::from_secs(10)).await {
                        Ok(()) => out.push((topic.clone(), p, crate::errors::NONE, None)),
                        Err(e) => out.push((topic.clone(), p, crate::errors::REQUEST_TIMED_OUT, Some(e))),
                    },
                    Err((crate::errors::ELECTION_NOT_NEEDED, _)) if every => {}
                    Err((code, why)) => out.push((topic.clone(), p, code, Some(why))),
                }
            }
        }
        out
    }

    /// AlterPartitionReassignments (KIP-455): checks each partition's request as Kafka's
    /// controller does and commits the change (`TopicRecord::reassign`); (topic,
    /// partition, error, message) each. The data moves afterwards: new replicas copy the
    /// leader, and once all of the target is in sync the quorum's leader ends the move
    /// (`reassignment_changes`). `allow_rf_change` false (KIP-860) refuses a target of
    /// another size than the replicas before the move.
    pub async fn alter_reassignments(
        &self,
        wanted: Vec<(String, Vec<(i32, Option<Vec<i32>>)>)>,
        allow_rf_change: bool,
    ) -> Vec<PartitionAnswer> {
        let mut out = Vec::new();
        if let Err(e) = self.until_caught_up(CATCH_UP_WAIT).await {
            let all = wanted.into_iter().flat_map(|(t, ps)| ps.into_iter().map(move |(p, _)| (t.clone(), p)));
            return all.map(|(t, p)| (t, p, crate::errors::REQUEST_TIMED_OUT, Some(e.clone()))).collect();
        }
        for (topic, partitions) in wanted {
            for (p, target) in partitions {
                let result = match self.reassignment(&topic, p, target, allow_rf_change) {
                    Ok(record) => self
                        .propose(record, Duration::from_secs(10))
                        .await
                        .map_err(|e| (crate::errors::REQUEST_TIMED_OUT, e)),
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => out.push((topic.clone(), p, crate::errors::NONE, None)),
                    Err((code, why)) => out.push((topic.clone(), p, code, Some(why))),
                }
            }
        }
        out
    }

    /// The record for one partition's AlterPartitionReassignments, or why there is none.
    fn reassignment(
        &self,
        topic: &str,
        p: i32,
        target: Option<Vec<i32>>,
        allow_rf_change: bool,
    ) -> Result<Record, (i16, String)> {
        use crate::errors;
        let state = self.state.borrow();
        let Some(t) = state.topics.get(topic).filter(|t| p >= 0 && (p as usize) < t.nodes.len()) else {
            return Err((errors::UNKNOWN_TOPIC_OR_PARTITION, format!("no partition {topic}-{p}")));
        };
        let pending = t.reassigning.get(&p);
        let record = |target| Record::Reassign { name: topic.to_string(), id: t.id, partition: p, target };
        let Some(target) = target else {
            return match pending {
                Some(_) => Ok(record(None)),
                None => Err((errors::NO_REASSIGNMENT_IN_PROGRESS, format!("{topic}-{p} is not being reassigned"))),
            };
        };
        let invalid = |why: String| Err((errors::INVALID_REPLICA_ASSIGNMENT, why));
        if target.is_empty() {
            return invalid("the replica list is empty".into());
        }
        if let Some(r) = target.iter().enumerate().find(|(i, r)| target[..*i].contains(r)).map(|(_, r)| r) {
            return invalid(format!("broker {r} is listed twice"));
        }
        if let Some(r) = target.iter().find(|r| !state.brokers.contains_key(r)) {
            return invalid(format!("broker {r} is not registered"));
        }
        let original = t.original_of(p as usize).len();
        if !allow_rf_change && target.len() != original {
            let why = format!("the replication factor would change from {original} to {}", target.len());
            return Err((errors::INVALID_REPLICATION_FACTOR, why));
        }
        Ok(record(Some(target)))
    }

    /// ListPartitionReassignments: the partitions being moved (of those asked, or all).
    pub fn list_reassignments(&self, wanted: Option<Vec<(String, Vec<i32>)>>) -> Vec<Ongoing> {
        let state = self.state.borrow();
        let mut out = Vec::new();
        for (name, t) in &state.topics {
            let asked: Option<Vec<i32>> = match &wanted {
                None => None,
                Some(w) => match w.iter().filter(|(n, _)| n == name).flat_map(|(_, ps)| ps.clone()).collect::<Vec<_>>()
                {
                    ps if ps.is_empty() => continue,
                    ps => Some(ps),
                },
            };
            for (&p, r) in &t.reassigning {
                if asked.as_ref().is_none_or(|a| a.contains(&p)) {
                    let replicas = t.replicas_of(p as usize);
                    out.push((name.clone(), p, replicas, r.adding.clone(), r.removing.clone()));
                }
            }
        }
        out
    }

    /// On the quorum's leader each tick: reassignments whose target is all in sync end.
    fn reassignment_changes(&self) -> Vec<Record> {
        let state = self.state.borrow();
        let mut changes = Vec::new();
        for (name, t) in &state.topics {
            for &p in t.reassigning.keys() {
                let i = p as usize;
                let isr = t.isr_of(i);
                if t.target_of(i).iter().all(|r| isr.contains(r)) {
                    let (name, id, leader_epoch) = (name.clone(), t.id, t.epoch_of(i));
                    changes.push(Record::FinishReassignment { name, id, partition: p, leader_epoch });
                }
            }
        }
        changes
    }

    /// Kafka's auto leader rebalance: for each broker leading fewer than
    /// `100 - percent` % of the partitions it is the preferred replica of, elections that
    /// give them back (where it is live and in sync).
    fn rebalance_changes(&self, percent: u32) -> Vec<Record> {
        let mut per_broker: BTreeMap<i32, (u32, u32, Vec<(String, i32)>)> = BTreeMap::new();
        {
            let state = self.state.borrow();
            for (name, t) in &state.topics {
                for p in 0..t.nodes.len() {
                    let replicas = t.replicas_of(p);
                    let Some(&preferred) = replicas.first().filter(|_| replicas.len() > 1) else { continue };
                    let entry = per_broker.entry(preferred).or_default();
                    entry.0 += 1;
                    if t.nodes[p] != preferred {
                        entry.1 += 1;
                        entry.2.push((name.clone(), p as i32));
                    }
                }
            }
        }
        per_broker
            .into_values()
            .filter(|(total, off, _)| *off * 100 > percent * *total)
            .flat_map(|(_, _, parts)| parts)
            .filter_map(|(topic, p)| self.election(&topic, p, Election::Preferred).ok())
            .collect()
    }

    /// This start of the node, as its broker registration says.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// This node has applied its own registration of this start (as a KRaft broker is
    /// caught up once its metadata reaches its registration): what the state says is no
    /// older than anything this node acted on before it started.
    pub fn caught_up(&self) -> bool {
        self.state.borrow().brokers.get(&self.node_id).is_some_and(|b| b.incarnation == self.incarnation)
    }

    /// Waits until `caught_up`, at most `timeout`.
    pub async fn until_caught_up(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while !self.caught_up() {
            if Instant::now() >= deadline {
                return Err(format!("this node has not caught up with the metadata log within {timeout:?}"));
            }
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    fn leader(&self) -> Option<i32> {
        self.raft.metrics().borrow().current_leader.map(|l| l as i32)
    }

    fn voter(&self, id: i32) -> Option<&Voter> {
        self.voters.iter().find(|v| v.id == id)
    }

    pub fn status(&self) -> Status {
        let m = self.raft.metrics().borrow().clone();
        let state = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        Status {
            node_id: self.node_id,
            state,
            leader_id: m.current_leader.map(|l| l as i32),
            leader_epoch: m.current_term,
            high_watermark: self.state.borrow().last_applied.map_or(0, |l| l.index + 1),
            log_end_offset: m.last_log_index.map_or(0, |i| i + 1),
            current_voters: self.voters.iter().map(|v| v.id).collect(),
        }
    }

    /// The brokers registered, by node id.
    pub fn brokers(&self) -> Vec<Broker> {
        self.state.borrow().brokers.values().cloned().collect()
    }

    /// Commits `record` through the leader, wherever it is, retrying as leadership settles,
    /// until `timeout` has passed.
    pub async fn propose(&self, record: Record, timeout: Duration) -> Result<(), String> {
        self.propose_via(record, timeout, true).await
    }

    /// Commits `record` only while this node leads, giving up once another node does: for
    /// what the leader decides from its own view (fencing a silent broker, moving a
    /// partition's leadership). A node that lost the lead must not forward such a decision,
    /// taken from what it saw while cut off, to the new leader (it fenced a live broker once).
    pub async fn propose_as_leader(&self, record: Record, timeout: Duration) -> Result<(), String> {
        self.propose_via(record, timeout, false).await
    }

    async fn propose_via(&self, record: Record, timeout: Duration, forward: bool) -> Result<(), String> {
        let deadline = std::time::Instant::now() + timeout;
        let mut last_error = String::from("no leader yet");
        let mut tried: BTreeSet<i32> = BTreeSet::new();
        while std::time::Instant::now() < deadline {
            let leader = self.raft.metrics().borrow().current_leader;
            let result = match leader {
                Some(l) if l == self.node_id as NodeId => {
                    self.raft.client_write(record.clone()).await.map(|_| ()).map_err(|e| e.to_string())
                }
                Some(l) if !forward => return Err(format!("node {l} leads now")),
                Some(l) => match self.voter(l as i32) {
                    Some(v) => {
                        tried.insert(v.id);
                        rpc::Peer::new(l, v.addr()).propose(record.clone(), Duration::from_secs(2)).await
                    }
                    None => Err(format!("leader {l} is not a voter")),
                },
                None => Err("no leader yet".into()),
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) => last_error = e,
            }
            glommio::timer::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("not committed within {timeout:?}: {last_error} (asked {tried:?})"))
    }
}

/// Keeps `View::leader` current (a leader change is not a log entry).
async fn follow_leader(quorum: std::rc::Weak<Quorum>) {
    let Some(q) = quorum.upgrade() else { return };
    let mut metrics = q.raft.metrics();
    drop(q);
    let mut known: Option<i32> = None;
    loop {
        let (leader, term) = {
            let m = metrics.borrow();
            (m.current_leader.map(|l| l as i32), m.current_term)
        };
        if let Some(l) = leader.filter(|_| leader != known) {
            eprintln!("sluice: quorum: node {l} leads (term {term})");
        }
        known = leader;
        let Some(q) = quorum.upgrade() else { return };
        q.view.write().unwrap_or_else(|p| p.into_inner()).leader = leader;
        drop(q);
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// Every `broker.heartbeat.interval.ms`, tells the leader this broker is alive (KRaft's
/// BrokerHeartbeat); the leader notes its own beats directly.
async fn send_heartbeats(quorum: std::rc::Weak<Quorum>) {
    let mut peer: Option<(i32, rpc::Peer)> = None;
    loop {
        let Some(q) = quorum.upgrade() else { return };
        let interval = q.settings.heartbeat;
        match q.leader() {
            Some(l) if l == q.node_id => q.heard.beat(l),
            Some(l) => {
                if peer.as_ref().is_none_or(|(id, _)| *id != l) {
                    peer = q.voter(l).map(|v| (l, rpc::Peer::new(l as NodeId, v.addr())));
                }
                let id = q.node_id;
                drop(q);
                if let Some((_, p)) = peer.as_mut() {
                    // A lost beat is made up by the next one; the session is several beats long.
                    let _ = p.heartbeat(id, interval).await;
                }
            }
            None => {}
        }
        glommio::timer::sleep(interval).await;
    }
}

/// On the leader: fences a registered broker not heard from for `broker.session.timeout.ms`
/// and unfences one heard from again (each a record every node applies).
async fn fence_silent_brokers(quorum: std::rc::Weak<Quorum>) {
    let mut leading_since: Option<Instant> = None;
    let mut rebalanced = Instant::now();
    // What was last said of each broker (true: fencing), so that a leader cut off from the
    // others, whose proposals do not commit, says it once and not on every tick.
    let mut said: std::collections::HashMap<_, bool> = std::collections::HashMap::new();
    loop {
        let Some(q) = quorum.upgrade() else { return };
        let tick = q.settings.heartbeat.min(Duration::from_secs(1));
        if q.leader() != Some(q.node_id) {
            leading_since = None;
            said.clear();
        } else {
            let since = *leading_since.get_or_insert_with(Instant::now);
            let now = Instant::now();
            let brokers = q.brokers();
            for b in brokers {
                if q.leader() != Some(q.node_id) {
                    break; // lost the lead while a proposal waited: the rest is the new leader's
                }
                let heard = q.heard.last.borrow().get(&b.id).copied().map_or(since, |t| t.max(since));
                let silent = now.duration_since(heard) > q.settings.session;
                let record = match (b.fenced, silent) {
                    (false, true) => Record::FenceBroker { id: b.id, epoch: b.epoch },
                    (true, false) => Record::UnfenceBroker { id: b.id, epoch: b.epoch },
                    _ => {
                        said.remove(&b.id);
                        continue;
                    }
                };
                let quiet = now.duration_since(heard);
                let first = said.insert(b.id, silent) != Some(silent);
                match record {
                    Record::FenceBroker { .. } if first => {
                        eprintln!("sluice: quorum: fencing broker {}: not heard from for {quiet:?}", b.id)
                    }
                    Record::UnfenceBroker { .. } if first => {
                        eprintln!("sluice: quorum: unfencing broker {}: heard from again", b.id)
                    }
                    _ => {}
                }
                if let Err(e) = q.propose_as_leader(record, q.settings.session).await {
                    if first {
                        eprintln!("sluice: quorum: broker {} liveness not recorded (retried quietly): {e}", b.id);
                    }
                }
            }
            if q.leader() != Some(q.node_id) {
                drop(q);
                glommio::timer::sleep(tick).await;
                continue; // lost the lead meanwhile: partition changes are the new leader's
            }
            let mut changes = q.partition_changes();
            changes.extend(q.reassignment_changes());
            if let Some((every, percent)) = q.settings.rebalance {
                if changes.is_empty() && rebalanced.elapsed() >= every {
                    rebalanced = Instant::now();
                    changes = q.rebalance_changes(percent);
                    if !changes.is_empty() {
                        eprintln!(
                            "sluice: quorum: {} partitions' leadership back to their preferred replicas",
                            changes.len()
                        );
                    }
                }
            }
            for change in changes {
                if let Err(e) = q.propose_as_leader(change, q.settings.session).await {
                    eprintln!("sluice: quorum: a partition's leader or in-sync replicas not changed: {e}");
                }
            }
        }
        drop(q);
        glommio::timer::sleep(tick).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(replicas: &[i32], isr: &[i32]) -> TopicRecord {
        TopicRecord {
            nodes: vec![replicas[0]],
            replicas: vec![replicas.to_vec()],
            isr: vec![isr.to_vec()],
            leader_epochs: vec![5],
            ..Default::default()
        }
    }

    fn moving(t: &TopicRecord) -> Option<(Vec<i32>, Vec<i32>)> {
        t.reassigning.get(&0).map(|r| (r.adding.clone(), r.removing.clone()))
    }

    #[test]
    fn a_reassignment_adds_first_removes_once_in_sync_and_fences_what_it_removes() {
        let live = |_| true;
        let mut t = partition(&[1, 2], &[1, 2]);
        assert!(t.reassign(0, Some(&[3, 2]), live));
        assert_eq!((t.replicas[0].clone(), t.nodes[0], t.epoch_of(0)), (vec![3, 2, 1], 1, 5), "nothing leaves yet");
        assert_eq!(moving(&t), Some((vec![3], vec![1])));
        assert!(!t.finish_reassignment(0, 5, live), "3 is not in sync");
        t.isr[0].push(3);
        assert!(!t.finish_reassignment(0, 4, live), "proposed against an older epoch");
        assert!(t.finish_reassignment(0, 5, live));
        // The leader was removed: the target's first in-sync replica leads, in a new epoch.
        assert_eq!(
            (t.replicas[0].clone(), t.isr[0].clone(), t.nodes[0], t.epoch_of(0)),
            (vec![3, 2], vec![2, 3], 3, 6)
        );
        assert_eq!(moving(&t), None);
        assert!(!t.finish_reassignment(0, 6, live), "nothing left to finish");
    }

    #[test]
    fn a_cancelled_or_replaced_reassignment_goes_back_to_the_original_replicas() {
        let live = |_| true;
        let mut t = partition(&[1, 2], &[1, 2]);
        t.reassign(0, Some(&[3, 4]), live);
        t.isr[0].push(3); // 3 caught up, 4 not yet
                          // Replaced: the original replicas stay the ones before any move; 3 is dropped.
        assert!(t.reassign(0, Some(&[4, 1]), live));
        assert_eq!(t.replicas[0], vec![4, 1, 2]);
        assert_eq!(moving(&t), Some((vec![4], vec![2])));
        assert_eq!((t.isr[0].clone(), t.epoch_of(0)), (vec![1, 2], 6), "3 left the replicas: fenced");
        assert!(t.reassign(0, None, live));
        assert_eq!((t.replicas[0].clone(), t.isr[0].clone(), t.nodes[0]), (vec![1, 2], vec![1, 2], 1));
        assert_eq!(moving(&t), None);
        // A target the partition already has changes nothing.
        assert!(!t.reassign(0, Some(&[1, 2]), live));
        assert_eq!(moving(&t), None);
    }

    #[test]
    fn a_leader_removed_with_nobody_live_in_sync_leaves_the_partition_leaderless() {
        let mut t = partition(&[1, 2], &[1]);
        t.reassign(0, Some(&[2]), |_| true);
        t.isr[0].push(2);
        assert!(t.finish_reassignment(0, 5, |b| b != 2));
        assert_eq!((t.nodes[0], t.isr[0].clone()), (-1, vec![2]));
    }

    #[test]
    fn voters_parse_as_kafka_writes_them_and_mistakes_are_named() {
        let v = parse_voters("1@127.0.0.1:9093, 2@127.0.0.2:9093,3@[::1]:9094").unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0], Voter { id: 1, host: "127.0.0.1".into(), port: 9093 });
        assert_eq!(v[2].host, "::1");
        for bad in ["", "1@host", "x@h:1", "1@h:0", "1@:9", "1@a:1,1@b:2"] {
            let e = parse_voters(bad).unwrap_err();
            assert!(e.contains("controller.quorum.voters"), "{bad}: {e}");
        }
    }
}
