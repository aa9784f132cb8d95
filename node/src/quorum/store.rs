//! The quorum's durable state, in `<data>/__cluster_metadata-0/` (KRaft's directory name):
//! `quorum-state` (the vote: term and whom this node voted for, as KRaft's file of that
//! name), `raft.log` (the entries, each framed as `[u32 length][u32 crc32c][JSON]`, appended
//! and fdatasynced before openraft is told they are stored) and `snapshot` (the state
//! machine's last snapshot, JSON). A torn or corrupt frame ends the log: it is cut there at
//! the next open, as the partition log cuts a torn tail. Truncation and purging rewrite the
//! file whole (temp file, fdatasync, rename, directory fsync): they are rare, and the
//! metadata log is small.
//!
//! The files are written with blocking calls on shard 0: metadata writes are few (a broker
//! registration, a topic change) and small, unlike the partition log's.

use super::{Broker, NodeId, Record, SharedView, TopicChange, TopicRecord, Types};
use glommio::channels::local_channel::LocalSender;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership, Vote,
};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{Cursor, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::rc::Rc;

pub const DIR: &str = "__cluster_metadata-0";
const LOG_FILE: &str = "raft.log";
const VOTE_FILE: &str = "quorum-state";
const SNAPSHOT_FILE: &str = "snapshot";
/// A frame longer than this is corruption, not an entry.
const FRAME_BYTES_MAX: usize = 64 << 20;

type StoreResult<T> = Result<T, StorageError<NodeId>>;

fn io_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::<NodeId>::write(&e).into()
}

/// One frame of `raft.log`.
#[derive(Serialize, Deserialize)]
enum Frame {
    /// Entries up to this one were purged (after a snapshot); the first frame when present.
    Purged(LogId<NodeId>),
    Entry(Entry<Types>),
}

fn encode(frame: &Frame, out: &mut Vec<u8>) {
    let json = serde_json::to_vec(frame).expect("log entries serialize");
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&crate::crc::crc32c(&json).to_be_bytes());
    out.extend_from_slice(&json);
}

/// The frames of `bytes` up to the first torn or corrupt one, and the length they span.
fn decode_all(bytes: &[u8]) -> (Vec<Frame>, usize) {
    let (mut frames, mut at) = (Vec::new(), 0);
    while bytes.len() - at >= 8 {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        if len > FRAME_BYTES_MAX || bytes.len() - at - 8 < len {
            break;
        }
        let body = &bytes[at + 8..at + 8 + len];
        if crate::crc::crc32c(body) != crc {
            break;
        }
        let Ok(frame) = serde_json::from_slice::<Frame>(body) else { break };
        frames.push(frame);
        at += 8 + len;
    }
    (frames, at)
}

/// Writes `bytes` to `dir/name` so that a crash leaves the old or the new file whole.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_data()?;
    std::fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

#[derive(Debug)]
struct LogInner {
    dir: PathBuf,
    file: File,
    entries: BTreeMap<u64, Entry<Types>>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
}

impl LogInner {
    /// Rewrites `raft.log` from memory (after a truncation or a purge).
    fn rewrite(&mut self) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        if let Some(p) = self.last_purged {
            encode(&Frame::Purged(p), &mut bytes);
        }
        for e in self.entries.values() {
            encode(&Frame::Entry(e.clone()), &mut bytes);
        }
        write_atomic(&self.dir, LOG_FILE, &bytes)?;
        self.file = OpenOptions::new().append(true).open(self.dir.join(LOG_FILE))?;
        Ok(())
    }
}

/// The Raft log (and the vote). Cloned handles share it (openraft's log reader).
#[derive(Debug, Clone)]
pub struct LogStore {
    inner: Rc<RefCell<LogInner>>,
}

impl LogStore {
    pub fn open(dir: &Path) -> Result<LogStore, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let path = dir.join(LOG_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        let (frames, good) = decode_all(&bytes);
        let (mut entries, mut last_purged) = (BTreeMap::new(), None);
        for frame in frames {
            match frame {
                Frame::Purged(p) => last_purged = Some(p),
                Frame::Entry(e) => {
                    entries.insert(e.log_id.index, e);
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("opening {}: {e}", path.display()))?;
        if good < bytes.len() {
            eprintln!("sluice: {}: cutting a torn tail of {} bytes", path.display(), bytes.len() - good);
            file.set_len(good as u64).map_err(|e| format!("cutting {}: {e}", path.display()))?;
            file.sync_data().map_err(|e| format!("syncing {}: {e}", path.display()))?;
        }
        let vote = match std::fs::read(dir.join(VOTE_FILE)) {
            Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| format!("{}/{VOTE_FILE}: {e}", dir.display()))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("reading {}/{VOTE_FILE}: {e}", dir.display())),
        };
        let inner = LogInner { dir: dir.to_path_buf(), file, entries, last_purged, vote };
        Ok(LogStore { inner: Rc::new(RefCell::new(inner)) })
    }

    /// Whether this node has never taken part in the quorum (nothing logged, never voted).
    pub fn is_pristine(&self) -> bool {
        let inner = self.inner.borrow();
        inner.entries.is_empty() && inner.last_purged.is_none() && inner.vote.is_none()
    }
}

impl RaftLogReader<Types> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug>(
        &mut self,
        range: RB,
    ) -> StoreResult<Vec<Entry<Types>>> {
        Ok(self.inner.borrow().entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<Types> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StoreResult<LogState<Types>> {
        let inner = self.inner.borrow();
        let last = inner.entries.values().next_back().map(|e| e.log_id).or(inner.last_purged);
        Ok(LogState { last_purged_log_id: inner.last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StoreResult<()> {
        let mut inner = self.inner.borrow_mut();
        let json = serde_json::to_vec(vote).expect("a vote serializes");
        write_atomic(&inner.dir, VOTE_FILE, &json).map_err(|e| StorageIOError::write_vote(&e))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> StoreResult<Option<Vote<NodeId>>> {
        Ok(self.inner.borrow().vote)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<Types>) -> StoreResult<()>
    where
        I: IntoIterator<Item = Entry<Types>>,
    {
        let mut inner = self.inner.borrow_mut();
        let mut bytes = Vec::new();
        for e in entries {
            encode(&Frame::Entry(e.clone()), &mut bytes);
            inner.entries.insert(e.log_id.index, e);
        }
        let written = inner.file.write_all(&bytes).and_then(|_| inner.file.sync_data());
        let result = written.as_ref().map(|_| ()).map_err(|e| std::io::Error::new(e.kind(), e.to_string()));
        callback.log_io_completed(result);
        written.map_err(io_err)
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StoreResult<()> {
        let mut inner = self.inner.borrow_mut();
        inner.entries.retain(|&i, _| i < log_id.index);
        inner.rewrite().map_err(io_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StoreResult<()> {
        let mut inner = self.inner.borrow_mut();
        inner.entries.retain(|&i, _| i > log_id.index);
        inner.last_purged = Some(log_id);
        inner.rewrite().map_err(io_err)
    }
}

/// What the metadata log says: applied on every node in log order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterState {
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, BasicNode>,
    /// Registered brokers by node id.
    pub brokers: BTreeMap<i32, Broker>,
    /// The first cluster id proposed.
    #[serde(default)]
    pub cluster_id: Option<String>,
    #[serde(default)]
    pub topics: BTreeMap<String, TopicRecord>,
    /// Where the next block of producer ids starts.
    #[serde(default)]
    pub next_producer_id: i64,
    /// Recent blocks handed out: start → broker.
    #[serde(default)]
    pub producer_id_blocks: BTreeMap<i64, i32>,
    /// Topics deleted, by the index of their DeleteTopic record: (name, id). A node
    /// catching up from a snapshot, which has no DeleteTopic records to replay, still drops
    /// what it held of them (the most recent `DELETED_KEPT`).
    #[serde(default)]
    pub deleted: BTreeMap<u64, (String, u128)>,
    /// The cluster-wide dynamic broker settings, once any was set through the cluster.
    #[serde(default)]
    pub cluster_configs: Option<BTreeMap<String, String>>,
    /// Each broker's own dynamic settings, once any was set through the cluster.
    #[serde(default)]
    pub broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
}

/// Deleted topics a snapshot remembers.
const DELETED_KEPT: usize = 10_000;

impl ClusterState {
    /// What acting on this state means for topics (and the cluster's broker settings), for a
    /// node that did not see the records: the deleted topics go (a no-op where they are not
    /// held), every topic is taken as it is, the settings too.
    fn topic_changes(&self) -> Vec<TopicChange> {
        let deleted = self.deleted.values().map(|(name, id)| TopicChange::Delete { name: name.clone(), id: *id });
        let topics = self.topics.iter().map(|(name, t)| TopicChange::Upsert { name: name.clone(), topic: t.clone() });
        let configs = self.cluster_configs.clone().map(TopicChange::ClusterConfigs);
        let brokers = self.broker_configs.iter().map(|(b, c)| TopicChange::BrokerConfigs(*b, c.clone()));
        deleted.chain(topics).chain(configs).chain(brokers).collect()
    }
}

impl ClusterState {
    /// Applies `record`; returns the change of a topic it made, if any.
    fn apply(&mut self, log_id: LogId<NodeId>, record: &Record) -> Option<TopicChange> {
        let upsert =
            |name: &String, topic: &TopicRecord| TopicChange::Upsert { name: name.clone(), topic: topic.clone() };
        match record {
            Record::CreateTopic { name, id, nodes, configs, replicas } => {
                if self.topics.contains_key(name) {
                    return None;
                }
                let (nodes, configs, replicas) = (nodes.clone(), configs.clone(), replicas.clone());
                let topic = TopicRecord { id: *id, nodes, configs, replicas, ..Default::default() };
                self.topics.insert(name.clone(), topic);
                return self.topics.get(name).map(|t| upsert(name, t));
            }
            Record::DeleteTopic { name, id } => {
                self.topics.get(name).filter(|t| t.id == *id)?;
                self.topics.remove(name);
                self.deleted.insert(log_id.index, (name.clone(), *id));
                while self.deleted.len() > DELETED_KEPT {
                    self.deleted.pop_first();
                }
                return Some(TopicChange::Delete { name: name.clone(), id: *id });
            }
            Record::GrowTopic { name, id, nodes, replicas } => {
                let topic = self.topics.get_mut(name).filter(|t| t.id == *id)?;
                if !topic.replicas.is_empty() || !replicas.is_empty() {
                    // Keep one replica list per partition.
                    let singles = topic.nodes.iter().map(|&n| vec![n]);
                    let mut all: Vec<Vec<i32>> =
                        if topic.replicas.is_empty() { singles.collect() } else { topic.replicas.clone() };
                    let added = nodes.iter().enumerate().map(|(i, &n)| replicas.get(i).cloned().unwrap_or(vec![n]));
                    all.extend(added);
                    topic.replicas = all;
                }
                let old = topic.nodes.len();
                topic.nodes.extend(nodes.iter().copied());
                if !topic.leader_epochs.is_empty() {
                    topic.leader_epochs.resize(topic.nodes.len(), 0);
                }
                if !topic.isr.is_empty() {
                    let added: Vec<Vec<i32>> = (old..topic.nodes.len()).map(|q| topic.replicas_of(q)).collect();
                    topic.isr.extend(added);
                }
                return self.topics.get(name).map(|t| upsert(name, t));
            }
            Record::SetTopicConfigs { name, id, configs } => {
                let topic = self.topics.get_mut(name).filter(|t| t.id == *id)?;
                topic.configs = configs.clone();
                return self.topics.get(name).map(|t| upsert(name, t));
            }
            Record::Reassign { name, id, partition, target } => {
                let brokers = &self.brokers;
                let live = |b: i32| brokers.get(&b).is_some_and(|b| !b.fenced);
                let topic = self.topics.get_mut(name).filter(|t| t.id == *id)?;
                if *partition < 0 || !topic.reassign(*partition as usize, target.as_deref(), live) {
                    return None;
                }
                return self.topics.get(name).map(|t| upsert(name, t));
            }
            Record::FinishReassignment { name, id, partition, leader_epoch } => {
                let brokers = &self.brokers;
                let live = |b: i32| brokers.get(&b).is_some_and(|b| !b.fenced);
                let topic = self.topics.get_mut(name).filter(|t| t.id == *id)?;
                if *partition < 0 || !topic.finish_reassignment(*partition as usize, *leader_epoch, live) {
                    return None;
                }
                return self.topics.get(name).map(|t| upsert(name, t));
            }
            Record::SetClusterConfigs { configs } => {
                self.cluster_configs = Some(configs.clone());
                return Some(TopicChange::ClusterConfigs(configs.clone()));
            }
            Record::SetBrokerConfigs { broker, configs } => {
                self.broker_configs.insert(*broker, configs.clone());
                return Some(TopicChange::BrokerConfigs(*broker, configs.clone()));
            }
            Record::PartitionChange { name, id, partition, leader, leader_epoch, isr } => {
                let topic = self.topics.get_mut(name).filter(|t| t.id == *id)?;
                let p = *partition as usize;
                if p >= topic.nodes.len() {
                    return None;
                }
                // Kafka's controller refuses a change made against a state already replaced:
                // an older leader epoch, or a same-epoch change (an ISR change) from a node
                // that is not the leader of that epoch.
                if *leader_epoch < topic.epoch_of(p)
                    || (*leader_epoch == topic.epoch_of(p) && *leader != topic.nodes[p])
                {
                    return None;
                }
                topic.expand();
                topic.nodes[p] = *leader;
                topic.leader_epochs[p] = *leader_epoch;
                topic.isr[p] = isr.clone();
                return self.topics.get(name).map(|t| upsert(name, t));
            }
            _ => {}
        }
        match record {
            Record::RegisterBroker { id, host, port, incarnation } => {
                // Kafka's broker epoch is the offset of the registration record.
                let epoch = log_id.index;
                let broker = Broker {
                    id: *id,
                    host: host.clone(),
                    port: *port,
                    epoch,
                    incarnation: *incarnation,
                    fenced: false,
                };
                self.brokers.insert(*id, broker);
            }
            Record::SetClusterId { id } => {
                self.cluster_id.get_or_insert_with(|| id.clone());
            }
            Record::ProducerIds { broker, start, count } => {
                if *start == self.next_producer_id && *count > 0 {
                    self.next_producer_id += count;
                    self.producer_id_blocks.insert(*start, *broker);
                    // Only the latest few matter (a proposer checks its own right away).
                    while self.producer_id_blocks.len() > 64 {
                        self.producer_id_blocks.pop_first();
                    }
                }
            }
            // Of that registration only: a newer one supersedes the record.
            Record::FenceBroker { id, epoch } | Record::UnfenceBroker { id, epoch } => {
                let fence = matches!(record, Record::FenceBroker { .. });
                if let Some(b) = self.brokers.get_mut(id).filter(|b| b.epoch == *epoch) {
                    b.fenced = fence;
                }
            }
            Record::CreateTopic { .. }
            | Record::DeleteTopic { .. }
            | Record::GrowTopic { .. }
            | Record::SetTopicConfigs { .. }
            | Record::SetClusterConfigs { .. }
            | Record::SetBrokerConfigs { .. }
            | Record::PartitionChange { .. }
            | Record::Reassign { .. }
            | Record::FinishReassignment { .. } => {}
        }
        None
    }
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    state: ClusterState,
}

/// The state machine: `ClusterState`, shared with `Quorum` for reads.
#[derive(Debug)]
pub struct StateMachine {
    dir: PathBuf,
    pub state: Rc<RefCell<ClusterState>>,
    view: SharedView,
    /// Where applied topic records go (shard 0 acts on them).
    forward: Option<LocalSender<TopicChange>>,
}

impl StateMachine {
    /// The state as of the last snapshot (openraft applies the log after it).
    pub fn open(dir: &Path, view: SharedView, forward: LocalSender<TopicChange>) -> Result<StateMachine, String> {
        let state = match std::fs::read(dir.join(SNAPSHOT_FILE)) {
            Ok(b) => {
                let s: StoredSnapshot =
                    serde_json::from_slice(&b).map_err(|e| format!("{}/{SNAPSHOT_FILE}: {e}", dir.display()))?;
                s.state
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ClusterState::default(),
            Err(e) => return Err(format!("reading {}/{SNAPSHOT_FILE}: {e}", dir.display())),
        };
        // The topics a snapshot holds are acted on as if their records were replayed.
        for change in state.topic_changes() {
            let _ = forward.try_send(change);
        }
        let sm =
            StateMachine { dir: dir.to_path_buf(), state: Rc::new(RefCell::new(state)), view, forward: Some(forward) };
        sm.publish();
        Ok(sm)
    }

    /// Copies what the shards read into the shared view.
    fn publish(&self) {
        let s = self.state.borrow();
        let mut v = self.view.write().unwrap_or_else(|p| p.into_inner());
        v.cluster_id = s.cluster_id.clone();
        v.brokers = s.brokers.values().cloned().collect();
    }

    /// Writes the snapshot file; returns the snapshot's data (the state alone).
    fn persist(&self, meta: &SnapshotMeta<NodeId, BasicNode>, state: &ClusterState) -> std::io::Result<Vec<u8>> {
        let stored = StoredSnapshot { meta: meta.clone(), state: state.clone() };
        let bytes = serde_json::to_vec(&stored).expect("the cluster state serializes");
        write_atomic(&self.dir, SNAPSHOT_FILE, &bytes)?;
        Ok(serde_json::to_vec(state).expect("the cluster state serializes"))
    }
}

/// Builds snapshots of a `StateMachine`'s state.
pub struct Builder {
    sm: StateMachine,
}

impl RaftSnapshotBuilder<Types> for Builder {
    async fn build_snapshot(&mut self) -> StoreResult<Snapshot<Types>> {
        let state = self.sm.state.borrow().clone();
        let last = state.last_applied;
        let snapshot_id = last.map_or_else(|| "empty".to_string(), |l| format!("{}-{}", l.leader_id, l.index));
        let meta = SnapshotMeta { last_log_id: last, last_membership: state.membership.clone(), snapshot_id };
        let data =
            self.sm.persist(&meta, &state).map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

impl RaftStateMachine<Types> for StateMachine {
    type SnapshotBuilder = Builder;

    async fn applied_state(&mut self) -> StoreResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>)> {
        let s = self.state.borrow();
        Ok((s.last_applied, s.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StoreResult<Vec<()>>
    where
        I: IntoIterator<Item = Entry<Types>>,
    {
        let mut s = self.state.borrow_mut();
        let mut out = Vec::new();
        for e in entries {
            s.last_applied = Some(e.log_id);
            match &e.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(record) => {
                    if let (Some(change), Some(f)) = (s.apply(e.log_id, record), &self.forward) {
                        // Unbounded; fails only once shard 0 stopped listening.
                        let _ = f.try_send(change);
                    }
                }
                EntryPayload::Membership(m) => s.membership = StoredMembership::new(Some(e.log_id), m.clone()),
            }
            out.push(());
        }
        drop(s);
        self.publish();
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let sm =
            StateMachine { dir: self.dir.clone(), state: self.state.clone(), view: self.view.clone(), forward: None };
        Builder { sm }
    }

    async fn begin_receiving_snapshot(&mut self) -> StoreResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StoreResult<()> {
        let mut state: ClusterState = serde_json::from_slice(snapshot.get_ref())
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        state.last_applied = meta.last_log_id;
        state.membership = meta.last_membership.clone();
        self.persist(meta, &state).map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        // For shard 0 to act on as it does for records: those gone (or replaced by another
        // of the same name) since this node's state, those the snapshot knows deleted,
        // then every topic.
        let mut changes = Vec::new();
        for (name, old) in &self.state.borrow().topics {
            if state.topics.get(name).is_none_or(|t| t.id != old.id) {
                changes.push(TopicChange::Delete { name: name.clone(), id: old.id });
            }
        }
        changes.extend(state.topic_changes());
        *self.state.borrow_mut() = state;
        self.publish();
        let upto = meta.last_log_id.map_or(0, |l| l.index);
        eprintln!("sluice: quorum: caught up from a snapshot of the metadata log up to record {upto}");
        if let Some(f) = &self.forward {
            for change in changes {
                let _ = f.try_send(change);
            }
        }
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StoreResult<Option<Snapshot<Types>>> {
        let bytes = match std::fs::read(self.dir.join(SNAPSHOT_FILE)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageIOError::read_snapshot(None, &e).into()),
        };
        let stored: StoredSnapshot =
            serde_json::from_slice(&bytes).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        let data = serde_json::to_vec(&stored.state).expect("the cluster state serializes");
        Ok(Some(Snapshot { meta: stored.meta, snapshot: Box::new(Cursor::new(data)) }))
    }
}
