//! Consumer groups: the classic group coordinator (JoinGroup / SyncGroup / Heartbeat /
//! LeaveGroup), committed offsets, and the group admin APIs. Consumer-protocol (KIP-848)
//! groups share the id namespace, the offsets and the storage; their state machine is
//! `consumer`, their coordinator side `consumer_coordinator`.
//!
//! Each group belongs to one partition of `__consumer_offsets` (Kafka's hash of the group
//! id), and so to the shard that owns that partition: that shard is the group's
//! coordinator and holds the group's whole state in memory (nothing is shared between
//! cores). Requests arriving on another shard travel to it as one typed
//! operation each ([`Heartbeat`], [`Commit`], … run by the router, `shard::ops`).
//!
//! Durability: every commit and every completed rebalance is appended to the group's
//! offsets partition and fdatasynced before the client hears "done"
//! (`offsets.commit.required.acks=-1`); on start each shard replays its offsets partitions,
//! so committed offsets and the last generation's members come back after any stop.
//!
//! The state machine is Kafka's: Empty → PreparingRebalance → CompletingRebalance → Stable,
//! and Dead once deleted. Timers (session expiry, the join phase's deadline and initial
//! delay, the sync deadline, offset retention) are checked by one ticker per shard.

pub mod consumer;
pub mod consumer_coordinator;
pub mod report;
pub mod store;

use crate::errors;
use crate::internal::{self, Host};
use crate::log::TopicPartition;
use bytes::Bytes;
use consumer_coordinator::consumer_view;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::sync::StaticPermit;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};
use store::{GroupValue, Key, OffsetValue, StoredMember};

/// How often each shard looks for offsets partitions due for compaction.
pub const COMPACTION_CHECK: Duration = Duration::from_secs(1);

/// How often each shard checks its groups' timers.
pub const TICK: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl State {
    /// Kafka's names, as DescribeGroups and ListGroups report them.
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
            State::Dead => "Dead",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Calls and answers: plain types, so the API layer owns every version difference.

#[derive(Debug, Clone)]
pub struct JoinArgs {
    pub group: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub client_id: String,
    pub client_host: String,
    /// JoinGroup v4+: a member without an id is given one and asked to join again (KIP-394).
    pub require_known_member_id: bool,
}

#[derive(Debug, Clone, Default)]
pub struct JoinResult {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// The members and their metadata for the chosen protocol: the leader's answer only.
    pub members: Vec<(String, Option<String>, Bytes)>,
    pub skip_assignment: bool,
}

#[derive(Debug, Clone)]
pub struct SyncArgs {
    pub group: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Debug, Clone, Default)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

#[derive(Debug, Clone)]
pub struct MemberRef {
    pub group: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CommitPart {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    /// OffsetCommit v1's commit timestamp; `None`: now (a standalone commit's offsets
    /// expire `offsets.retention.minutes` after it).
    pub commit_timestamp: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct FetchedOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub error: i16,
}

#[derive(Debug, Clone, Default)]
pub struct MemberView {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// One group as DescribeGroups, ListGroups and the admin endpoint see it.
#[derive(Debug, Clone, Default)]
pub struct GroupView {
    pub error: i16,
    pub group: String,
    /// "classic" or "consumer" (KIP-848), as ListGroups v5 reports it.
    pub group_type: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub generation: i32,
    pub leader: String,
    pub shard: usize,
    pub members: Vec<MemberView>,
    /// Committed offsets: (topic, partition, offset).
    pub offsets: Vec<(String, i32, i64)>,
}

// The group operations a connection's shard sends to the group's coordinator shard, one
// type each; the router (`shard::ops`) gives each its reply type and runs it here.

/// Heartbeat: an error code.
#[derive(Debug)]
pub struct Heartbeat(pub MemberRef);

/// LeaveGroup: (member id, instance id) per leaving member; answers (top-level error, one
/// error per member).
#[derive(Debug)]
pub struct Leave {
    pub group: String,
    pub members: Vec<(String, Option<String>)>,
}

/// OffsetCommit: one error per part.
#[derive(Debug)]
pub struct Commit {
    pub member: MemberRef,
    pub retention_ms: i64,
    pub parts: Vec<CommitPart>,
}

/// TxnOffsetCommit, for (producer id, epoch): one error per part.
#[derive(Debug)]
pub struct TxnCommit {
    pub member: MemberRef,
    pub producer: (i64, i16),
    pub parts: Vec<CommitPart>,
}

/// OffsetFetch. `parts: None`: every committed offset of the group. `require_stable` (v7+):
/// a partition with offsets in an open transaction answers UNSTABLE_OFFSET_COMMIT.
#[derive(Debug)]
pub struct FetchOffsets {
    pub group: String,
    pub parts: Option<Vec<(String, i32)>>,
    pub require_stable: bool,
    /// OffsetFetch v9+: (member id, member epoch), checked against a consumer group.
    pub member: Option<(String, i32)>,
}

/// ConsumerGroupHeartbeat.
#[derive(Debug)]
pub struct ConsumerHeartbeat(pub consumer::HeartbeatArgs);

/// ConsumerGroupDescribe, one group.
#[derive(Debug)]
pub struct ConsumerDescribe {
    pub group: String,
}

/// DescribeGroups, one group.
#[derive(Debug)]
pub struct Describe {
    pub group: String,
}

/// ListGroups on one shard: its groups (states filter, types filter; empty = all).
#[derive(Debug)]
pub struct List {
    pub states: Vec<String>,
    pub types: Vec<String>,
}

/// DeleteGroups, one group: an error code.
#[derive(Debug)]
pub struct Delete {
    pub group: String,
}

/// OffsetDelete: (top-level error, one error per part).
#[derive(Debug)]
pub struct DeleteOffsets {
    pub group: String,
    pub parts: Vec<(String, i32)>,
}

/// Every group of one shard with members and offsets, for the admin endpoint.
#[derive(Debug)]
pub struct Views;

// ---------------------------------------------------------------------------------------------
// State.

#[derive(Debug)]
struct Member {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    /// Parked JoinGroup (the member has joined the current rebalance).
    join_waiter: Option<LocalSender<JoinResult>>,
    /// Parked SyncGroup.
    sync_waiter: Option<LocalSender<SyncResult>>,
    /// Joined in this rebalance round (a JoinGroup arrived since it began).
    joined: bool,
    last_seen: Instant,
    /// Order of first join: the leader is the earliest member still present.
    seq: u64,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }

    fn view(&self, protocol: Option<&str>) -> MemberView {
        MemberView {
            member_id: self.id.clone(),
            instance_id: self.instance_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            metadata: protocol.map(|p| self.metadata_for(p)).unwrap_or_default(),
            assignment: self.assignment.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct Committed {
    value: OffsetValue,
}

#[derive(Debug)]
struct Group {
    id: String,
    state: State,
    protocol_type: Option<String>,
    protocol: Option<String>,
    generation: i32,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined, with their deadline.
    pending: HashMap<String, Instant>,
    /// group.instance.id → member id.
    statics: HashMap<String, String>,
    offsets: BTreeMap<(String, i32), Committed>,
    /// PreparingRebalance: when the join phase ends whoever has joined.
    join_deadline: Option<Instant>,
    /// PreparingRebalance of a group that was empty: wait this quiet period for more members.
    initial_until: Option<Instant>,
    /// CompletingRebalance: when members that have not synced are dropped.
    sync_deadline: Option<Instant>,
    /// Wall-clock ms of the last state change (Empty since, for offset retention).
    state_since_ms: i64,
    next_seq: u64,
    /// Offsets committed inside open transactions, by producer id: applied when the
    /// transaction's COMMIT marker reaches this group's offsets partition, dropped on ABORT.
    pending_txn: HashMap<i64, BTreeMap<(String, i32), OffsetValue>>,
    /// Set: a consumer-protocol (KIP-848) group; the classic fields above stay Empty and
    /// only `offsets` (and the pending ones) are shared.
    consumer: Option<consumer::ConsumerGroup>,
}

impl Group {
    fn new(id: &str, now_ms: i64) -> Group {
        Group {
            id: id.to_string(),
            state: State::Empty,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            statics: HashMap::new(),
            offsets: BTreeMap::new(),
            join_deadline: None,
            initial_until: None,
            sync_deadline: None,
            state_since_ms: now_ms,
            next_seq: 0,
            pending_txn: HashMap::new(),
            consumer: None,
        }
    }

    /// A consumer-protocol group with members: not for classic requests or cleanup.
    fn consumer_active(&self) -> bool {
        self.consumer.as_ref().is_some_and(|c| !c.members.is_empty())
    }

    fn set_state(&mut self, state: State) {
        self.state = state;
        self.state_since_ms = crate::runtime::now_ms();
    }

    /// Protocols every member supports, or every protocol of `extra` when the group is empty.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|(name, _)| self.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == name)))
    }

    /// Kafka's choice: among protocols every member supports, the one most members list first.
    fn select_protocol(&self) -> Option<String> {
        let candidates: Vec<&String> = self
            .members
            .values()
            .next()?
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| self.members.values().all(|m| m.protocols.iter().any(|(p, _)| p == *n)))
            .collect();
        let mut votes: Vec<(usize, &String)> = candidates.iter().map(|c| (0, *c)).collect();
        for m in self.members.values() {
            if let Some(first) = m.protocols.iter().map(|(n, _)| n).find(|n| candidates.contains(n)) {
                if let Some(v) = votes.iter_mut().find(|(_, c)| *c == first) {
                    v.0 += 1;
                }
            }
        }
        // Highest vote; ties go to the earliest candidate (max_by_key keeps the last max).
        votes.iter().rev().max_by_key(|(n, _)| *n).map(|(_, c)| (*c).clone())
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.joined)
    }

    fn max_rebalance_timeout(&self) -> Duration {
        self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or(Duration::ZERO)
    }

    fn to_value(&self) -> GroupValue {
        let protocol = self.protocol.clone();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp: self.state_since_ms,
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis() as i32,
                    session_timeout_ms: m.session_timeout.as_millis() as i32,
                    subscription: protocol.as_deref().map(|p| m.metadata_for(p)).unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    fn view(&self, shard: usize) -> GroupView {
        if let Some(c) = &self.consumer {
            return consumer_view(self, c, shard);
        }
        GroupView {
            error: errors::NONE,
            group: self.id.clone(),
            group_type: "classic".to_string(),
            state: self.state.name().to_string(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: self.protocol.clone().unwrap_or_default(),
            generation: self.generation,
            leader: self.leader.clone().unwrap_or_default(),
            shard,
            members: self.members.values().map(|m| m.view(self.protocol.as_deref())).collect(),
            offsets: self.offsets.iter().map(|((t, p), c)| (t.clone(), *p, c.value.offset)).collect(),
        }
    }

    /// Static fencing: a known instance id must come with the member id it was given.
    fn fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        match instance_id.and_then(|i| self.statics.get(i)) {
            Some(current) => current != member_id,
            None => false,
        }
    }

    fn remove_member(&mut self, id: &str) -> Option<Member> {
        let m = self.members.remove(id)?;
        if let Some(i) = &m.instance_id {
            if self.statics.get(i).map(String::as_str) == Some(id) {
                self.statics.remove(i);
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        Some(m)
    }
}

/// One shard's coordinator: the groups whose offsets partition this shard owns.
#[derive(Debug, Default)]
pub struct Coordinator {
    groups: RefCell<HashMap<String, Group>>,
    /// Per offsets partition: writers (a commit, a group's metadata) hold a shared permit
    /// from their append until memory reflects it; compaction holds it exclusively.
    gates: crate::internal::WriteGates,
    /// The offsets partitions this shard coordinates (loaded, and not being moved away); a
    /// group of any other partition is answered NOT_COORDINATOR, which clients retry after
    /// FindCoordinator, as in Kafka.
    owned: RefCell<BTreeSet<i32>>,
}

fn new_member_id(client_id: &str) -> String {
    format!("{client_id}-{}", uuid::Uuid::from_u128(crate::topics::TopicId::random().0))
}

fn sanitize_client_id(client_id: &str) -> String {
    // Member ids are `client.id-uuid` as in Kafka; keep them printable and bounded.
    client_id.chars().filter(|c| !c.is_control()).take(255).collect()
}

fn oneshot<T>() -> (LocalSender<T>, LocalReceiver<T>) {
    local_channel::new_bounded(1)
}

fn error_join(error: i16, member_id: &str) -> JoinResult {
    JoinResult { error, generation: -1, member_id: member_id.to_string(), ..Default::default() }
}

enum JoinOutcome {
    Now(JoinResult),
    Wait(LocalReceiver<JoinResult>, String),
}

enum SyncOutcome {
    Now(SyncResult),
    Wait(LocalReceiver<SyncResult>),
    /// The leader's assignment is in: persist it, then answer every member.
    Assigned(LocalReceiver<SyncResult>, i32),
}

/// Settings the state machine needs, copied from the broker config.
#[derive(Debug, Clone, Copy)]
struct Timing {
    initial_delay: Duration,
    max_size: usize,
}

fn timing(host: &Rc<impl Host>) -> Timing {
    let c = host.config();
    Timing { initial_delay: Duration::from_millis(c.group_initial_rebalance_delay_ms), max_size: c.group_max_size }
}

impl Coordinator {
    pub fn group_count(&self) -> usize {
        self.groups.borrow().len()
    }

    /// Whether this shard coordinates the groups of offsets partition `partition` now.
    pub fn coordinates(&self, partition: i32) -> bool {
        self.owned.borrow().contains(&partition)
    }

    /// NOT_COORDINATOR unless this shard coordinates `group`'s offsets partition
    /// (COORDINATOR_LOAD_IN_PROGRESS while it is about to: see `Host::loading`).
    fn serving(&self, host: &Rc<impl Host>, group: &str) -> Result<(), i16> {
        let tp = offsets_partition(&host.config(), group);
        if self.owned.borrow().contains(&tp.partition) {
            Ok(())
        } else if host.loading(&tp) {
            Err(errors::COORDINATOR_LOAD_IN_PROGRESS)
        } else {
            Err(errors::NOT_COORDINATOR)
        }
    }

    /// A writer's permit of the write gate of `group`'s offsets partition.
    async fn gate(&self, host: &Rc<impl Host>, group: &str) -> Option<StaticPermit> {
        let partition = store::partition_for(group, host.config().offsets_topic_num_partitions);
        self.gates.shared(partition).await
    }

    // -----------------------------------------------------------------------------------------
    // Membership.

    pub async fn join(&self, host: &Rc<impl Host>, args: JoinArgs) -> JoinResult {
        let cfg = host.config();
        if args.group.is_empty() {
            return error_join(errors::INVALID_GROUP_ID, &args.member_id);
        }
        if args.session_timeout_ms < cfg.group_min_session_timeout_ms
            || args.session_timeout_ms > cfg.group_max_session_timeout_ms
        {
            return error_join(errors::INVALID_SESSION_TIMEOUT, &args.member_id);
        }
        if let Err(code) = self.serving(host, &args.group) {
            return error_join(code, &args.member_id);
        }
        let group_id = args.group.clone();
        let (outcome, persist) = {
            let mut groups = self.groups.borrow_mut();
            if !groups.contains_key(&group_id) {
                if !args.member_id.is_empty() {
                    return error_join(errors::UNKNOWN_MEMBER_ID, &args.member_id);
                }
                groups.insert(group_id.clone(), Group::new(&group_id, crate::runtime::now_ms()));
            }
            let group = groups.get_mut(&group_id).expect("inserted above");
            if group.consumer_active() {
                return error_join(errors::INCONSISTENT_GROUP_PROTOCOL, &args.member_id);
            }
            // An empty consumer group becomes classic (its offsets stay).
            group.consumer = None;
            join_locked(group, args, timing(host))
        };
        if persist {
            // The member's new state did not become durable: it hears so (a retriable error;
            // it joins again) rather than carrying on with a membership a restart would lose.
            if let Err(e) = self.persist_group(host, &group_id).await {
                eprintln!("sluice: group {group_id:?}: storing a join failed: {e}");
                let member_id = match &outcome {
                    JoinOutcome::Now(result) => result.member_id.clone(),
                    JoinOutcome::Wait(_, member_id) => member_id.clone(),
                };
                return error_join(errors::COORDINATOR_NOT_AVAILABLE, &member_id);
            }
        }
        match outcome {
            JoinOutcome::Now(result) => result,
            JoinOutcome::Wait(receiver, member_id) => match receiver.recv().await {
                Some(result) => result,
                // The group was unloaded (its partition moved away) while the member waited.
                None if self.serving(host, &group_id).is_err() => error_join(errors::NOT_COORDINATOR, &member_id),
                None => error_join(errors::UNKNOWN_MEMBER_ID, &member_id),
            },
        }
    }

    pub async fn sync(&self, host: &Rc<impl Host>, args: SyncArgs) -> SyncResult {
        let error = |error| SyncResult { error, ..Default::default() };
        if let Err(code) = self.serving(host, &args.group) {
            return error(code);
        }
        let outcome = {
            let mut groups = self.groups.borrow_mut();
            let Some(group) = groups.get_mut(&args.group) else {
                return error(errors::UNKNOWN_MEMBER_ID);
            };
            match sync_locked(group, &args) {
                Ok(o) => o,
                Err(code) => return error(code),
            }
        };
        let receiver = match outcome {
            SyncOutcome::Now(result) => return result,
            SyncOutcome::Wait(receiver) => receiver,
            SyncOutcome::Assigned(receiver, generation) => {
                let persisted = self.persist_group(host, &args.group).await;
                let mut groups = self.groups.borrow_mut();
                if let Some(group) = groups.get_mut(&args.group) {
                    if group.state == State::CompletingRebalance && group.generation == generation {
                        match persisted {
                            Ok(()) => {
                                group.set_state(State::Stable);
                                group.sync_deadline = None;
                                for m in group.members.values_mut() {
                                    if let Some(w) = m.sync_waiter.take() {
                                        let _ = w.try_send(SyncResult {
                                            error: errors::NONE,
                                            protocol_type: group.protocol_type.clone(),
                                            protocol: group.protocol.clone(),
                                            assignment: m.assignment.clone(),
                                        });
                                    }
                                }
                            }
                            Err(e) => {
                                eprintln!("sluice: group {:?}: storing the assignment failed: {e}", group.id);
                                for m in group.members.values_mut() {
                                    m.assignment = Bytes::new();
                                    if let Some(w) = m.sync_waiter.take() {
                                        let _ = w.try_send(error(errors::COORDINATOR_NOT_AVAILABLE));
                                    }
                                }
                                prepare_rebalance(group);
                            }
                        }
                    }
                }
                receiver
            }
        };
        match receiver.recv().await {
            Some(result) => result,
            None if self.serving(host, &args.group).is_err() => error(errors::NOT_COORDINATOR),
            None => error(errors::REBALANCE_IN_PROGRESS),
        }
    }

    pub fn heartbeat(&self, host: &Rc<impl Host>, m: &MemberRef) -> i16 {
        if let Err(code) = self.serving(host, &m.group) {
            return code;
        }
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(&m.group) else {
            return errors::UNKNOWN_MEMBER_ID;
        };
        if group.state == State::Dead {
            return errors::COORDINATOR_NOT_AVAILABLE;
        }
        if group.fenced(&m.member_id, m.instance_id.as_deref()) {
            return errors::FENCED_INSTANCE_ID;
        }
        let generation = group.generation;
        let state = group.state;
        let Some(member) = group.members.get_mut(&m.member_id) else {
            return errors::UNKNOWN_MEMBER_ID;
        };
        if m.generation != generation {
            return errors::ILLEGAL_GENERATION;
        }
        member.last_seen = Instant::now();
        match state {
            State::PreparingRebalance => errors::REBALANCE_IN_PROGRESS,
            State::Empty | State::Dead => errors::UNKNOWN_MEMBER_ID,
            State::CompletingRebalance | State::Stable => errors::NONE,
        }
    }

    /// LeaveGroup: (top-level error, one error per member).
    pub async fn leave(
        &self,
        host: &Rc<impl Host>,
        group_id: &str,
        leaving: &[(String, Option<String>)],
    ) -> (i16, Vec<i16>) {
        if let Err(code) = self.serving(host, group_id) {
            return (code, vec![code; leaving.len()]);
        }
        let (result, emptied) = {
            let mut groups = self.groups.borrow_mut();
            let Some(group) = groups.get_mut(group_id) else {
                return (errors::NONE, vec![errors::UNKNOWN_MEMBER_ID; leaving.len()]);
            };
            if group.state == State::Dead {
                return (errors::COORDINATOR_NOT_AVAILABLE, vec![errors::COORDINATOR_NOT_AVAILABLE; leaving.len()]);
            }
            let mut removed = false;
            let codes = leaving
                .iter()
                .map(|(member_id, instance_id)| {
                    let target = match instance_id {
                        Some(i) => match group.statics.get(i) {
                            Some(current) if member_id.is_empty() || current == member_id => current.clone(),
                            Some(_) => return errors::FENCED_INSTANCE_ID,
                            None => return errors::UNKNOWN_MEMBER_ID,
                        },
                        None => member_id.clone(),
                    };
                    if group.pending.remove(&target).is_some() {
                        return errors::NONE;
                    }
                    match group.remove_member(&target) {
                        Some(_) => {
                            removed = true;
                            errors::NONE
                        }
                        None => errors::UNKNOWN_MEMBER_ID,
                    }
                })
                .collect::<Vec<_>>();
            let emptied = removed && members_changed(group);
            ((errors::NONE, codes), emptied)
        };
        if emptied {
            if let Err(e) = self.persist_group(host, group_id).await {
                // Left in memory, not on disk: after a restart the members would be back until
                // their sessions expire. Said to the client (retriable), not swallowed.
                eprintln!("sluice: group {group_id:?}: storing a leave failed: {e}");
                return (errors::COORDINATOR_NOT_AVAILABLE, result.1);
            }
        }
        result
    }

    // -----------------------------------------------------------------------------------------
    // Offsets.

    pub async fn commit(
        &self,
        host: &Rc<impl Host>,
        m: &MemberRef,
        retention_ms: i64,
        parts: &[CommitPart],
    ) -> Vec<i16> {
        if let Err(code) = self.serving(host, &m.group) {
            return vec![code; parts.len()];
        }
        let checked = {
            let mut groups = self.groups.borrow_mut();
            match groups.get_mut(&m.group) {
                None if m.generation < 0 && !m.group.is_empty() => {
                    groups.insert(m.group.clone(), Group::new(&m.group, crate::runtime::now_ms()));
                    Ok(())
                }
                None if m.group.is_empty() => Err(errors::INVALID_GROUP_ID),
                None => Err(errors::ILLEGAL_GENERATION),
                Some(group) => commit_allowed(group, m, parts),
            }
        };
        if let Err(code) = checked {
            return vec![code; parts.len()];
        }
        let now = crate::runtime::now_ms();
        let expire = (retention_ms > 0).then(|| now.saturating_add(retention_ms));
        let (codes, records, values) = offset_records(host, &m.group, parts, now, expire);
        if records.is_empty() {
            return codes;
        }
        let _gate = self.gate(host, &m.group).await;
        if let Err(e) = write(host, &m.group, records).await {
            eprintln!("sluice: group {:?}: writing offsets failed: {e}", m.group);
            return codes
                .into_iter()
                .map(|c| if c == errors::NONE { errors::COORDINATOR_NOT_AVAILABLE } else { c })
                .collect();
        }
        let mut groups = self.groups.borrow_mut();
        let group = groups.entry(m.group.clone()).or_insert_with(|| Group::new(&m.group, now));
        for (k, value) in values {
            group.offsets.insert(k, Committed { value });
        }
        codes
    }

    /// OffsetFetch (see [`FetchOffsets`]).
    pub fn fetch_offsets(
        &self,
        host: &Rc<impl Host>,
        group_id: &str,
        parts: Option<&[(String, i32)]>,
        require_stable: bool,
        member: Option<(&str, i32)>,
    ) -> (i16, Vec<FetchedOffset>) {
        if let Err(code) = self.serving(host, group_id) {
            return (code, Vec::new());
        }
        let groups = self.groups.borrow();
        let group = groups.get(group_id);
        if let Some(c) = group.and_then(|g| g.consumer.as_ref()) {
            if let Err(code) = consumer_coordinator::fetch_allowed(c, member) {
                return (code, Vec::new());
            }
        }
        let found = |topic: &str, partition: i32| -> FetchedOffset {
            let c = group.and_then(|g| g.offsets.get(&(topic.to_string(), partition)));
            let pending =
                group.is_some_and(|g| g.pending_txn.values().any(|p| p.contains_key(&(topic.to_string(), partition))));
            FetchedOffset {
                topic: topic.to_string(),
                partition,
                offset: c.map_or(-1, |c| c.value.offset),
                leader_epoch: c.map_or(-1, |c| c.value.leader_epoch),
                metadata: c.map(|c| c.value.metadata.clone()).unwrap_or_default(),
                error: if require_stable && pending { errors::UNSTABLE_OFFSET_COMMIT } else { errors::NONE },
            }
        };
        let found = match parts {
            Some(parts) => parts.iter().map(|(t, p)| found(t, *p)).collect(),
            None => group.map_or_else(Vec::new, |g| g.offsets.keys().map(|(t, p)| found(t, *p)).collect()),
        };
        (errors::NONE, found)
    }

    // -----------------------------------------------------------------------------------------
    // Admin.

    pub fn describe(&self, host: &Rc<impl Host>, group_id: &str) -> GroupView {
        let shard = host.shard_id();
        if let Err(error) = self.serving(host, group_id) {
            return GroupView { error, group: group_id.to_string(), shard, ..Default::default() };
        }
        match self.groups.borrow().get(group_id) {
            Some(g) if g.consumer.is_none() => g.view(shard),
            // A consumer group is not a classic group (Kafka: "is not a classic group").
            _ => GroupView {
                error: errors::GROUP_ID_NOT_FOUND,
                group: group_id.to_string(),
                state: State::Dead.name().to_string(),
                shard,
                ..Default::default()
            },
        }
    }

    pub fn list(&self, shard: usize, states: &[String], types: &[String]) -> Vec<GroupView> {
        let groups = self.groups.borrow();
        let mut out: Vec<GroupView> = groups
            .values()
            .map(|g| GroupView { members: Vec::new(), offsets: Vec::new(), ..g.view(shard) })
            .filter(|v| states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(&v.state)))
            .filter(|v| types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case(&v.group_type)))
            .collect();
        out.sort_by(|a, b| a.group.cmp(&b.group));
        out
    }

    pub fn views(&self, shard: usize) -> Vec<GroupView> {
        let mut out: Vec<GroupView> = self.groups.borrow().values().map(|g| g.view(shard)).collect();
        out.sort_by(|a, b| a.group.cmp(&b.group));
        out
    }

    /// DeleteGroups for one group: only an empty group may go; its offsets go with it.
    pub async fn delete(&self, host: &Rc<impl Host>, group_id: &str) -> i16 {
        if let Err(code) = self.serving(host, group_id) {
            return code;
        }
        let keys = {
            let groups = self.groups.borrow();
            let Some(group) = groups.get(group_id) else {
                return errors::GROUP_ID_NOT_FOUND;
            };
            match group.state {
                _ if group.consumer_active() => return errors::NON_EMPTY_GROUP,
                State::Empty => {}
                State::Dead => return errors::GROUP_ID_NOT_FOUND,
                _ => return errors::NON_EMPTY_GROUP,
            }
            (group.offsets.keys().cloned().collect::<Vec<_>>(), group.consumer.is_some())
        };
        let (keys, consumer) = keys;
        let mut records: Vec<(Bytes, Option<Bytes>)> = keys
            .iter()
            .map(|(t, p)| {
                let key = Key::Offset { group: group_id.to_string(), topic: t.clone(), partition: *p };
                (store::encode_key(&key), None)
            })
            .collect();
        records.push((store::encode_key(&Key::Group { group: group_id.to_string() }), None));
        if consumer {
            records.push((store::encode_key(&Key::ConsumerGroup { group: group_id.to_string() }), None));
        }
        let _gate = self.gate(host, group_id).await;
        if let Err(e) = write(host, group_id, records).await {
            eprintln!("sluice: group {group_id:?}: writing the deletion failed: {e}");
            return errors::COORDINATOR_NOT_AVAILABLE;
        }
        let mut groups = self.groups.borrow_mut();
        if groups.get(group_id).is_some_and(|g| g.state == State::Empty && !g.consumer_active()) {
            groups.remove(group_id);
        }
        errors::NONE
    }

    /// OffsetDelete: (top-level error, one error per partition).
    pub async fn delete_offsets(
        &self,
        host: &Rc<impl Host>,
        group_id: &str,
        parts: &[(String, i32)],
    ) -> (i16, Vec<i16>) {
        if let Err(code) = self.serving(host, group_id) {
            return (code, vec![errors::NONE; parts.len()]);
        }
        let codes = {
            let groups = self.groups.borrow();
            let Some(group) = groups.get(group_id).filter(|g| g.state != State::Dead) else {
                return (errors::GROUP_ID_NOT_FOUND, vec![errors::NONE; parts.len()]);
            };
            let subscribed: Vec<String> = if let Some(c) = &group.consumer {
                consumer_coordinator::subscribed_topics(c)
            } else if group.state == State::Empty {
                Vec::new()
            } else if group.protocol_type.as_deref() == Some("consumer") {
                let protocol = group.protocol.clone().unwrap_or_default();
                group
                    .members
                    .values()
                    .flat_map(|m| store::consumer_subscription_topics(&m.metadata_for(&protocol)).unwrap_or_default())
                    .collect()
            } else {
                return (errors::NON_EMPTY_GROUP, vec![errors::NONE; parts.len()]);
            };
            parts
                .iter()
                .map(|(t, p)| {
                    let partitions = host.partition_count(t);
                    if *p < 0 || *p >= partitions {
                        errors::UNKNOWN_TOPIC_OR_PARTITION
                    } else if subscribed.contains(t) {
                        errors::GROUP_SUBSCRIBED_TO_TOPIC
                    } else {
                        errors::NONE
                    }
                })
                .collect::<Vec<_>>()
        };
        let doomed: Vec<(String, i32)> = parts
            .iter()
            .zip(&codes)
            .filter(|(_, c)| **c == errors::NONE)
            .map(|(k, _)| k.clone())
            .filter(|k| self.groups.borrow().get(group_id).is_some_and(|g| g.offsets.contains_key(k)))
            .collect();
        if !doomed.is_empty() {
            let records = doomed
                .iter()
                .map(|(t, p)| {
                    let key = Key::Offset { group: group_id.to_string(), topic: t.clone(), partition: *p };
                    (store::encode_key(&key), None)
                })
                .collect();
            let _gate = self.gate(host, group_id).await;
            if let Err(e) = write(host, group_id, records).await {
                eprintln!("sluice: group {group_id:?}: writing offset deletions failed: {e}");
                return (errors::COORDINATOR_NOT_AVAILABLE, codes);
            }
            if let Some(g) = self.groups.borrow_mut().get_mut(group_id) {
                for k in &doomed {
                    g.offsets.remove(k);
                }
            }
        }
        (errors::NONE, codes)
    }

    // -----------------------------------------------------------------------------------------
    // Timers, persistence, loading.

    /// Session expiry, join and sync deadlines. Returns groups whose metadata must be stored.
    pub fn tick(&self) -> Vec<String> {
        let now = Instant::now();
        let mut persist = Vec::new();
        for group in self.groups.borrow_mut().values_mut() {
            group.pending.retain(|_, deadline| *deadline > now);
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|m| m.join_waiter.is_none() && m.sync_waiter.is_none())
                .filter(|m| now.duration_since(m.last_seen) > m.session_timeout)
                .map(|m| m.id.clone())
                .collect();
            let mut changed = !expired.is_empty();
            for id in expired {
                group.remove_member(&id);
            }
            if group.state == State::CompletingRebalance && group.sync_deadline.is_some_and(|d| now >= d) {
                let unsynced: Vec<String> =
                    group.members.values().filter(|m| m.sync_waiter.is_none()).map(|m| m.id.clone()).collect();
                for id in unsynced {
                    group.remove_member(&id);
                }
                changed = true;
            }
            if changed && members_changed(group) {
                persist.push(group.id.clone());
            }
            if group.state == State::PreparingRebalance && maybe_complete_join(group) {
                persist.push(group.id.clone());
            }
        }
        persist
    }

    /// Drops offsets past retention and empty groups without offsets (Kafka's cleanup):
    /// a consumer group's offsets expire `offsets.retention.minutes` after it became empty;
    /// a standalone commit's, that long after it was made; a commit with its own retention,
    /// at its expire timestamp.
    pub async fn expire(&self, host: &Rc<impl Host>) {
        let now = crate::runtime::now_ms();
        let retention = host.config().offsets_retention_minutes.saturating_mul(60_000);
        let mut work: Vec<(String, Vec<(String, i32)>, bool, bool)> = Vec::new();
        for group in self.groups.borrow().values() {
            if group.state != State::Empty || group.consumer_active() {
                continue;
            }
            let expired: Vec<(String, i32)> = group
                .offsets
                .iter()
                .filter(|(_, c)| match c.value.expire_timestamp {
                    Some(at) => now >= at,
                    None if group.protocol_type.is_some() || group.consumer.is_some() => {
                        now.saturating_sub(group.state_since_ms) >= retention
                    }
                    None => now.saturating_sub(c.value.commit_timestamp) >= retention,
                })
                .map(|(k, _)| k.clone())
                .collect();
            let drop_group = expired.len() == group.offsets.len();
            if !expired.is_empty() || drop_group {
                work.push((group.id.clone(), expired, drop_group, group.consumer.is_some()));
            }
        }
        for (group_id, expired, drop_group, consumer) in work {
            let mut records: Vec<(Bytes, Option<Bytes>)> = expired
                .iter()
                .map(|(t, p)| {
                    (store::encode_key(&Key::Offset { group: group_id.clone(), topic: t.clone(), partition: *p }), None)
                })
                .collect();
            if drop_group {
                records.push((store::encode_key(&Key::Group { group: group_id.clone() }), None));
                if consumer {
                    records.push((store::encode_key(&Key::ConsumerGroup { group: group_id.clone() }), None));
                }
            }
            let _gate = self.gate(host, &group_id).await;
            if write(host, &group_id, records).await.is_err() {
                continue;
            }
            let mut groups = self.groups.borrow_mut();
            if let Some(g) = groups.get_mut(&group_id) {
                for k in &expired {
                    g.offsets.remove(k);
                }
                if drop_group && g.state == State::Empty && g.offsets.is_empty() && !g.consumer_active() {
                    groups.remove(&group_id);
                }
            }
        }
    }

    /// Stores the group's metadata as it is now (a tombstone if it is gone).
    pub async fn persist_group(&self, host: &Rc<impl Host>, group_id: &str) -> Result<(), String> {
        let _gate = self.gate(host, group_id).await;
        let value = self.groups.borrow().get(group_id).map(|g| store::encode_group(&g.to_value()));
        let key = store::encode_key(&Key::Group { group: group_id.to_string() });
        write(host, group_id, vec![(key, value)]).await
    }

    /// A transaction marker reached offsets partition `partition`: the producer's pending
    /// offsets in its groups become committed (or are dropped).
    pub fn complete_txn(&self, partitions: i32, partition: i32, producer_id: i64, commit: bool) {
        for g in self.groups.borrow_mut().values_mut() {
            if store::partition_for(&g.id, partitions) != partition {
                continue;
            }
            if let Some(pending) = g.pending_txn.remove(&producer_id) {
                if commit {
                    for (k, value) in pending {
                        g.offsets.insert(k, Committed { value });
                    }
                }
            }
        }
    }

    /// TxnOffsetCommit: offsets written inside a producer's transaction (a transactional
    /// batch in the offsets partition), visible once the transaction commits.
    pub async fn txn_commit(
        &self,
        host: &Rc<impl Host>,
        m: &MemberRef,
        producer: (i64, i16),
        parts: &[CommitPart],
    ) -> Vec<i16> {
        if let Err(code) = self.serving(host, &m.group) {
            return vec![code; parts.len()];
        }
        let checked = {
            let mut groups = self.groups.borrow_mut();
            match groups.get_mut(&m.group) {
                None if m.group.is_empty() => Err(errors::INVALID_GROUP_ID),
                None => {
                    groups.insert(m.group.clone(), Group::new(&m.group, crate::runtime::now_ms()));
                    Ok(())
                }
                // Without a generation (TxnOffsetCommit v0–v2, or -1) there is nothing to check.
                Some(g) if m.generation < 0 && !g.consumer_active() => Ok(()),
                Some(group) => commit_allowed(group, m, parts),
            }
        };
        if let Err(code) = checked {
            return vec![code; parts.len()];
        }
        let now = crate::runtime::now_ms();
        let (codes, records, values) = offset_records(host, &m.group, parts, now, None);
        if records.is_empty() {
            return codes;
        }
        let tp = offsets_partition(&host.config(), &m.group);
        let _gate = self.gate(host, &m.group).await;
        if let Err(e) = internal::write(host, &tp, records, Some(producer)).await {
            eprintln!("sluice: group {:?}: writing transactional offsets failed: {e}", m.group);
            let refused = if e.contains("epoch") { errors::PRODUCER_FENCED } else { errors::COORDINATOR_NOT_AVAILABLE };
            return codes.into_iter().map(|c| if c == errors::NONE { refused } else { c }).collect();
        }
        let mut groups = self.groups.borrow_mut();
        let group = groups.entry(m.group.clone()).or_insert_with(|| Group::new(&m.group, now));
        let pending = group.pending_txn.entry(producer.0).or_default();
        for (k, value) in values {
            pending.insert(k, value);
        }
        codes
    }

    /// Compacts this shard's offsets partitions that have grown past
    /// `offsets.topic.segment.bytes` (and past twice their size after the last compaction),
    /// down to each group's metadata and committed offsets (see `internal`).
    pub async fn compact_if_due(&self, host: &Rc<impl Host>) {
        let partitions = host.config().offsets_topic_num_partitions;
        for (tp, log) in self.gates.due(host, store::OFFSETS_TOPIC, host.config().offsets_topic_segment_bytes) {
            // Offsets of open transactions live only in the log until their marker: wait.
            let open = self
                .groups
                .borrow()
                .values()
                .any(|g| store::partition_for(&g.id, partitions) == tp.partition && !g.pending_txn.is_empty());
            if open {
                continue;
            }
            let live = || {
                let mut records = Vec::new();
                for g in self.groups.borrow().values() {
                    if store::partition_for(&g.id, partitions) != tp.partition {
                        continue;
                    }
                    if let Some(c) = &g.consumer {
                        let key = store::encode_key(&Key::ConsumerGroup { group: g.id.clone() });
                        records.push((key, Some(c.encode())));
                    } else if g.protocol_type.is_some() || !g.members.is_empty() {
                        let key = store::encode_key(&Key::Group { group: g.id.clone() });
                        records.push((key, Some(store::encode_group(&g.to_value()))));
                    }
                    for ((topic, p), c) in &g.offsets {
                        let key = Key::Offset { group: g.id.clone(), topic: topic.clone(), partition: *p };
                        records.push((store::encode_key(&key), Some(store::encode_offset(&c.value))));
                    }
                }
                records
            };
            if let Err(e) = self.gates.rewrite(host, &tp, &log, live).await {
                eprintln!("sluice: compacting {tp} failed: {e}");
            }
        }
    }

    /// Replays one offsets partition (now owned by this shard: at start, or moved here) and
    /// from then on coordinates its groups.
    pub async fn load_partition(
        &self,
        host: &Rc<impl Host>,
        tp: &TopicPartition,
        log: &Rc<crate::log::PartitionLog>,
    ) -> Result<usize, String> {
        let cfg = host.config();
        let partitions = cfg.offsets_topic_num_partitions;
        let mut records = 0usize;
        internal::for_each_record(log, tp, |r| {
            if r.control {
                // A transaction marker: key = version i16, type i16 (1 = commit).
                let commit = r.key.as_deref().is_some_and(|k| k.len() >= 4 && k[3] == 1);
                self.complete_txn(partitions, tp.partition, r.producer_id, commit);
                return;
            }
            records += 1;
            let txn = r.transactional.then_some(r.producer_id);
            self.replay(r.key.as_deref(), r.value.as_deref(), tp, txn, &cfg);
        })
        .await?;
        // Kafka's cleanup: an empty group with nothing committed is not kept.
        self.groups.borrow_mut().retain(|id, g| {
            store::partition_for(id, partitions) != tp.partition
                || !(g.state == State::Empty && g.offsets.is_empty() && !g.consumer_active())
        });
        self.owned.borrow_mut().insert(tp.partition);
        Ok(records)
    }

    /// Stops coordinating the groups of offsets partition `partition` (it is moving to
    /// another shard, whose `load_partition` takes over from the log): new requests get
    /// NOT_COORDINATOR at once, writes under way finish, then the groups leave memory —
    /// members parked in a join or sync are answered NOT_COORDINATOR and find the new
    /// coordinator, as after a coordinator failover in Kafka. Hold the returned permit of
    /// the partition's write gate until its log is closed: a writer that got past the
    /// ownership check before this began then finds no log instead of writing behind the
    /// new owner's replay.
    pub async fn unload_partition(&self, host: &Rc<impl Host>, partition: i32) -> Option<StaticPermit> {
        self.owned.borrow_mut().remove(&partition);
        let all = self.gates.exclusive(partition).await;
        let partitions = host.config().offsets_topic_num_partitions;
        let gone: Vec<Group> = {
            let mut groups = self.groups.borrow_mut();
            let ids: Vec<String> =
                groups.keys().filter(|id| store::partition_for(id, partitions) == partition).cloned().collect();
            ids.iter().filter_map(|id| groups.remove(id)).collect()
        };
        drop(gone); // outside the borrow: dropping a member's waiter wakes its request
        all
    }

    fn replay(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        tp: &TopicPartition,
        txn: Option<i64>,
        cfg: &crate::config::BrokerConfig,
    ) {
        let Some(key) = key.and_then(store::decode_key) else {
            eprintln!("sluice: {tp}: skipping a record with an unreadable key");
            return;
        };
        if let Key::ConsumerGroup { group } = &key {
            return self.replay_consumer(group, value, tp, cfg);
        }
        let mut groups = self.groups.borrow_mut();
        match key {
            Key::Offset { group, topic, partition } => match value.map(store::decode_offset) {
                None => {
                    if let Some(g) = groups.get_mut(&group) {
                        g.offsets.remove(&(topic, partition));
                    }
                }
                Some(Some(value)) => {
                    let g = groups.entry(group.clone()).or_insert_with(|| Group::new(&group, value.commit_timestamp));
                    match txn {
                        Some(pid) => {
                            g.pending_txn.entry(pid).or_default().insert((topic, partition), value);
                        }
                        None => {
                            g.offsets.insert((topic, partition), Committed { value });
                        }
                    }
                }
                Some(None) => eprintln!("sluice: {tp}: skipping an unreadable offset of group {group:?}"),
            },
            Key::ConsumerGroup { .. } => {}
            Key::Group { group } => match value.map(store::decode_group) {
                None => {
                    groups.remove(&group);
                }
                Some(Some(value)) => {
                    let g = groups.entry(group.clone()).or_insert_with(|| Group::new(&group, value.state_timestamp));
                    // A classic group from here on.
                    g.consumer = None;
                    apply_stored(g, value);
                }
                Some(None) => eprintln!("sluice: {tp}: skipping unreadable metadata of group {group:?}"),
            },
        }
    }
}

/// Checks each partition of a commit (it exists; its metadata is within
/// `offset.metadata.max.bytes`) and builds the records and values of those that pass:
/// (one error per part, records to write, values to apply once written).
fn offset_records(
    host: &Rc<impl Host>,
    group: &str,
    parts: &[CommitPart],
    now: i64,
    expire_timestamp: Option<i64>,
) -> (Vec<i16>, Vec<crate::internal::KeyValue>, Vec<((String, i32), OffsetValue)>) {
    let max_metadata = host.config().offset_metadata_max_bytes;
    let mut codes = Vec::with_capacity(parts.len());
    let mut records = Vec::new();
    let mut values = Vec::new();
    for p in parts {
        let partitions = host.partition_count(&p.topic);
        let code = if p.partition < 0 || p.partition >= partitions {
            errors::UNKNOWN_TOPIC_OR_PARTITION
        } else if p.metadata.as_ref().is_some_and(|md| md.len() > max_metadata) {
            errors::OFFSET_METADATA_TOO_LARGE
        } else {
            let value = OffsetValue {
                offset: p.offset,
                leader_epoch: p.leader_epoch,
                metadata: p.metadata.clone().unwrap_or_default(),
                commit_timestamp: p.commit_timestamp.unwrap_or(now),
                expire_timestamp,
            };
            let key = Key::Offset { group: group.to_string(), topic: p.topic.clone(), partition: p.partition };
            records.push((store::encode_key(&key), Some(store::encode_offset(&value))));
            values.push(((p.topic.clone(), p.partition), value));
            errors::NONE
        };
        codes.push(code);
    }
    (codes, records, values)
}

/// Restores a group from its last stored metadata: the members come back with a fresh
/// session (they must heartbeat within it), so clients that kept running keep their
/// generation and assignment across a node restart.
fn apply_stored(g: &mut Group, v: GroupValue) {
    let now = Instant::now();
    g.protocol_type = (!v.protocol_type.is_empty()).then_some(v.protocol_type);
    g.generation = v.generation;
    g.protocol = v.protocol.clone();
    g.leader = v.leader;
    g.state_since_ms = if v.state_timestamp > 0 { v.state_timestamp } else { crate::runtime::now_ms() };
    g.members.clear();
    g.statics.clear();
    for (seq, m) in v.members.into_iter().enumerate() {
        if let Some(i) = &m.instance_id {
            g.statics.insert(i.clone(), m.member_id.clone());
        }
        let protocols = v.protocol.iter().map(|p| (p.clone(), m.subscription.clone())).collect();
        g.members.insert(
            m.member_id.clone(),
            Member {
                id: m.member_id,
                instance_id: m.instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout: Duration::from_millis(m.session_timeout_ms.max(0) as u64),
                rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                protocols,
                assignment: m.assignment,
                join_waiter: None,
                sync_waiter: None,
                joined: false,
                last_seen: now,
                seq: seq as u64,
            },
        );
    }
    g.next_seq = g.members.len() as u64;
    g.state = if g.members.is_empty() { State::Empty } else { State::Stable };
}

// ---------------------------------------------------------------------------------------------
// The state machine, on a borrowed group (no awaits in here).

fn join_locked(group: &mut Group, args: JoinArgs, t: Timing) -> (JoinOutcome, bool) {
    let now_result = |r| (JoinOutcome::Now(r), false);
    if group.state == State::Dead {
        return now_result(error_join(errors::COORDINATOR_NOT_AVAILABLE, &args.member_id));
    }
    if !group.supports(&args.protocol_type, &args.protocols) {
        return now_result(error_join(errors::INCONSISTENT_GROUP_PROTOCOL, &args.member_id));
    }
    if args.member_id.is_empty() {
        if let Some(old) = args.instance_id.as_ref().and_then(|i| group.statics.get(i)).cloned() {
            return replace_static(group, &old, args);
        }
        if group.members.len() >= t.max_size {
            return now_result(error_join(errors::GROUP_MAX_SIZE_REACHED, ""));
        }
        let id = new_member_id(&sanitize_client_id(&args.client_id));
        if args.require_known_member_id && args.instance_id.is_none() {
            let deadline = Instant::now() + Duration::from_millis(args.session_timeout_ms.max(0) as u64);
            group.pending.insert(id.clone(), deadline);
            return now_result(error_join(errors::MEMBER_ID_REQUIRED, &id));
        }
        add_member(group, &id, &args);
        return (attach(group, &id, args, t, true), false);
    }
    if group.pending.remove(&args.member_id).is_some() {
        if group.members.len() >= t.max_size {
            return now_result(error_join(errors::GROUP_MAX_SIZE_REACHED, &args.member_id));
        }
        let id = args.member_id.clone();
        add_member(group, &id, &args);
        return (attach(group, &id, args, t, true), false);
    }
    if group.fenced(&args.member_id, args.instance_id.as_deref()) {
        return now_result(error_join(errors::FENCED_INSTANCE_ID, &args.member_id));
    }
    let Some(member) = group.members.get(&args.member_id) else {
        return now_result(error_join(errors::UNKNOWN_MEMBER_ID, &args.member_id));
    };
    let unchanged = member.protocol_type == args.protocol_type && member.protocols == args.protocols;
    let is_leader = group.leader.as_deref() == Some(args.member_id.as_str());
    match group.state {
        State::Stable | State::CompletingRebalance if unchanged && !(is_leader && group.state == State::Stable) => {
            let id = args.member_id.clone();
            if let Some(m) = group.members.get_mut(&id) {
                m.last_seen = Instant::now();
            }
            now_result(current_join(group, &id, false))
        }
        State::Empty | State::Dead => now_result(error_join(errors::UNKNOWN_MEMBER_ID, &args.member_id)),
        _ => {
            let id = args.member_id.clone();
            (attach(group, &id, args, t, false), false)
        }
    }
}

fn add_member(group: &mut Group, id: &str, args: &JoinArgs) {
    if group.members.is_empty() {
        group.protocol_type = Some(args.protocol_type.clone());
    }
    let seq = group.next_seq;
    group.next_seq += 1;
    if let Some(i) = &args.instance_id {
        group.statics.insert(i.clone(), id.to_string());
    }
    group.members.insert(
        id.to_string(),
        Member {
            id: id.to_string(),
            instance_id: args.instance_id.clone(),
            client_id: args.client_id.clone(),
            client_host: args.client_host.clone(),
            session_timeout: Duration::from_millis(args.session_timeout_ms.max(0) as u64),
            rebalance_timeout: Duration::from_millis(args.rebalance_timeout_ms.max(0) as u64),
            protocol_type: args.protocol_type.clone(),
            protocols: args.protocols.clone(),
            assignment: Bytes::new(),
            join_waiter: None,
            sync_waiter: None,
            joined: false,
            last_seen: Instant::now(),
            seq,
        },
    );
}

/// Parks a member's JoinGroup in the rebalance (starting one if none is under way).
fn attach(group: &mut Group, id: &str, args: JoinArgs, t: Timing, new_member: bool) -> JoinOutcome {
    let now = Instant::now();
    if group.state != State::PreparingRebalance {
        let was_empty = group.state == State::Empty;
        prepare_rebalance(group);
        if was_empty {
            group.initial_until = Some(now + t.initial_delay);
        }
    } else if new_member && group.initial_until.is_some() {
        group.initial_until = Some(now + t.initial_delay);
    }
    let (tx, rx) = oneshot();
    let member = group.members.get_mut(id).expect("attach: member present");
    member.protocol_type = args.protocol_type;
    member.protocols = args.protocols;
    member.client_id = args.client_id;
    member.client_host = args.client_host;
    member.session_timeout = Duration::from_millis(args.session_timeout_ms.max(0) as u64);
    member.rebalance_timeout = Duration::from_millis(args.rebalance_timeout_ms.max(0) as u64);
    member.joined = true;
    member.last_seen = now;
    member.join_waiter = Some(tx);
    let deadline = now + member.rebalance_timeout;
    group.join_deadline = Some(group.join_deadline.map_or(deadline, |d| d.max(deadline)));
    if let (Some(initial), Some(deadline)) = (group.initial_until, group.join_deadline) {
        group.initial_until = Some(initial.min(deadline));
    }
    maybe_complete_join(group);
    JoinOutcome::Wait(rx, id.to_string())
}

/// A static member came back with a new member id (KIP-345): it takes the old member's
/// place. In a stable group with unchanged metadata there is no rebalance: the member gets
/// the current generation and, at SyncGroup, its old assignment.
fn replace_static(group: &mut Group, old_id: &str, args: JoinArgs) -> (JoinOutcome, bool) {
    let new_id = new_member_id(&sanitize_client_id(&args.client_id));
    let mut member = group.members.remove(old_id).expect("statics point at members");
    let fenced = error_join(errors::FENCED_INSTANCE_ID, old_id);
    if let Some(w) = member.join_waiter.take() {
        let _ = w.try_send(fenced);
    }
    if let Some(w) = member.sync_waiter.take() {
        let _ = w.try_send(SyncResult { error: errors::FENCED_INSTANCE_ID, ..Default::default() });
    }
    let unchanged = member.protocol_type == args.protocol_type && member.protocols == args.protocols;
    member.id = new_id.clone();
    member.last_seen = Instant::now();
    group.members.insert(new_id.clone(), member);
    if let Some(i) = &args.instance_id {
        group.statics.insert(i.clone(), new_id.clone());
    }
    if group.leader.as_deref() == Some(old_id) {
        group.leader = Some(new_id.clone());
    }
    if group.state == State::Stable && unchanged {
        if let Some(m) = group.members.get_mut(&new_id) {
            m.client_id = args.client_id.clone();
            m.client_host = args.client_host.clone();
            m.session_timeout = Duration::from_millis(args.session_timeout_ms.max(0) as u64);
            m.rebalance_timeout = Duration::from_millis(args.rebalance_timeout_ms.max(0) as u64);
        }
        let is_leader = group.leader.as_deref() == Some(new_id.as_str());
        return (JoinOutcome::Now(current_join(group, &new_id, is_leader)), true);
    }
    let t = Timing { initial_delay: Duration::ZERO, max_size: usize::MAX };
    (attach(group, &new_id, args, t, false), false)
}

/// The current generation as a JoinGroup answer (the member list for the leader only).
fn current_join(group: &Group, member_id: &str, skip_assignment: bool) -> JoinResult {
    let leader = group.leader.clone().unwrap_or_default();
    let protocol = group.protocol.clone().unwrap_or_default();
    let members = if leader == member_id {
        group.members.values().map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata_for(&protocol))).collect()
    } else {
        Vec::new()
    };
    JoinResult {
        error: errors::NONE,
        generation: group.generation,
        protocol_type: group.protocol_type.clone(),
        protocol: group.protocol.clone(),
        leader,
        member_id: member_id.to_string(),
        members,
        skip_assignment,
    }
}

/// Starts a rebalance: every member must join again; SyncGroups parked in the previous
/// round learn it is over.
fn prepare_rebalance(group: &mut Group) {
    if group.state == State::CompletingRebalance {
        for m in group.members.values_mut() {
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.try_send(SyncResult { error: errors::REBALANCE_IN_PROGRESS, ..Default::default() });
            }
        }
    }
    for m in group.members.values_mut() {
        m.joined = false;
    }
    group.set_state(State::PreparingRebalance);
    group.sync_deadline = None;
    group.initial_until = None;
    group.join_deadline = Some(Instant::now() + group.max_rebalance_timeout());
}

/// After members left or expired: rebalance (or finish the one under way). True when the
/// group became empty (its metadata must be stored).
fn members_changed(group: &mut Group) -> bool {
    match group.state {
        State::Stable | State::CompletingRebalance => {
            prepare_rebalance(group);
            maybe_complete_join(group)
        }
        State::PreparingRebalance => maybe_complete_join(group),
        State::Empty | State::Dead => false,
    }
}

/// Ends the join phase if every member has joined (and the initial delay is over), or at
/// the deadline. True when the group became empty.
fn maybe_complete_join(group: &mut Group) -> bool {
    if group.state != State::PreparingRebalance {
        return false;
    }
    let now = Instant::now();
    let initial_over = group.initial_until.is_none_or(|t| now >= t);
    let deadline_passed = group.join_deadline.is_some_and(|t| now >= t);
    if !((group.all_joined() && initial_over) || deadline_passed || group.members.is_empty()) {
        return false;
    }
    let absent: Vec<String> = group.members.values().filter(|m| !m.joined).map(|m| m.id.clone()).collect();
    for id in absent {
        group.remove_member(&id);
    }
    group.join_deadline = None;
    group.initial_until = None;
    group.generation += 1;
    if group.members.is_empty() {
        group.protocol = None;
        group.leader = None;
        group.set_state(State::Empty);
        return true;
    }
    group.protocol = group.select_protocol();
    if group.leader.as_ref().is_none_or(|l| !group.members.contains_key(l)) {
        group.leader = group.members.values().min_by_key(|m| m.seq).map(|m| m.id.clone());
    }
    group.set_state(State::CompletingRebalance);
    group.sync_deadline = Some(now + group.max_rebalance_timeout());
    let leader = group.leader.clone().unwrap_or_default();
    let protocol = group.protocol.clone().unwrap_or_default();
    let all: Vec<(String, Option<String>, Bytes)> =
        group.members.values().map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata_for(&protocol))).collect();
    for m in group.members.values_mut() {
        m.assignment = Bytes::new();
        if let Some(w) = m.join_waiter.take() {
            let _ = w.try_send(JoinResult {
                error: errors::NONE,
                generation: group.generation,
                protocol_type: group.protocol_type.clone(),
                protocol: group.protocol.clone(),
                leader: leader.clone(),
                member_id: m.id.clone(),
                members: if m.id == leader { all.clone() } else { Vec::new() },
                skip_assignment: false,
            });
        }
        // A member that joined but is not parked (its connection dropped) still counts;
        // it must sync before the deadline.
        m.last_seen = now;
    }
    false
}

fn sync_locked(group: &mut Group, args: &SyncArgs) -> Result<SyncOutcome, i16> {
    if group.fenced(&args.member_id, args.instance_id.as_deref()) {
        return Err(errors::FENCED_INSTANCE_ID);
    }
    if !group.members.contains_key(&args.member_id) {
        return Err(errors::UNKNOWN_MEMBER_ID);
    }
    if args.generation != group.generation {
        return Err(errors::ILLEGAL_GENERATION);
    }
    if args.protocol_type.as_ref().is_some_and(|t| group.protocol_type.as_ref() != Some(t))
        || args.protocol.as_ref().is_some_and(|p| group.protocol.as_ref() != Some(p))
    {
        return Err(errors::INCONSISTENT_GROUP_PROTOCOL);
    }
    match group.state {
        State::Empty | State::Dead => Err(errors::UNKNOWN_MEMBER_ID),
        State::PreparingRebalance => Err(errors::REBALANCE_IN_PROGRESS),
        State::Stable => {
            let m = group.members.get_mut(&args.member_id).expect("checked above");
            m.last_seen = Instant::now();
            Ok(SyncOutcome::Now(SyncResult {
                error: errors::NONE,
                protocol_type: group.protocol_type.clone(),
                protocol: group.protocol.clone(),
                assignment: m.assignment.clone(),
            }))
        }
        State::CompletingRebalance => {
            let (tx, rx) = oneshot();
            let m = group.members.get_mut(&args.member_id).expect("checked above");
            m.last_seen = Instant::now();
            m.sync_waiter = Some(tx);
            if group.leader.as_deref() != Some(args.member_id.as_str()) {
                return Ok(SyncOutcome::Wait(rx));
            }
            for m in group.members.values_mut() {
                m.assignment = Bytes::new();
            }
            for (id, assignment) in &args.assignments {
                if let Some(m) = group.members.get_mut(id) {
                    m.assignment = assignment.clone();
                }
            }
            Ok(SyncOutcome::Assigned(rx, group.generation))
        }
    }
}

/// OffsetCommit's membership checks (Kafka's order).
fn commit_allowed(group: &mut Group, m: &MemberRef, parts: &[CommitPart]) -> Result<(), i16> {
    if let Some(c) = &group.consumer {
        let parts = parts.iter().map(|p| (p.topic.as_str(), p.partition));
        return c.validate_commit(&m.member_id, m.generation, parts);
    }
    if group.state == State::Dead {
        return Err(errors::COORDINATOR_NOT_AVAILABLE);
    }
    if m.generation < 0 && group.state == State::Empty {
        return Ok(());
    }
    if group.state == State::CompletingRebalance {
        return Err(errors::REBALANCE_IN_PROGRESS);
    }
    if group.fenced(&m.member_id, m.instance_id.as_deref()) {
        return Err(errors::FENCED_INSTANCE_ID);
    }
    let generation = group.generation;
    let Some(member) = group.members.get_mut(&m.member_id) else {
        return Err(errors::UNKNOWN_MEMBER_ID);
    };
    if m.generation != generation {
        return Err(errors::ILLEGAL_GENERATION);
    }
    member.last_seen = Instant::now();
    Ok(())
}

/// Appends records to the group's offsets partition (on this shard) and fdatasyncs them.
async fn write(host: &Rc<impl Host>, group: &str, records: Vec<internal::KeyValue>) -> Result<(), String> {
    internal::write(host, &offsets_partition(&host.config(), group), records, None).await
}

/// The partition of `__consumer_offsets` a group belongs to (its coordinator is the shard
/// that owns it).
pub fn offsets_partition(config: &crate::config::BrokerConfig, group: &str) -> TopicPartition {
    let partitions = config.offsets_topic_num_partitions;
    TopicPartition::new(store::OFFSETS_TOPIC.to_string(), store::partition_for(group, partitions))
}
