//! Consumer-protocol groups (KIP-848): the coordinator assigns, members reconcile by
//! heartbeat (ConsumerGroupHeartbeat), no join/sync barrier.
//!
//! The model is Kafka's (`GroupMetadataManager.consumerGroupHeartbeat`,
//! `CurrentAssignmentBuilder`), written afresh:
//!
//! - the **group epoch** goes up whenever the members, their subscriptions or the subscribed
//!   topics' partition counts change; each bump recomputes the **target assignment** with
//!   the group's server-side assignor (`uniform` or `range`), whose epoch (the **assignment
//!   epoch**) is then the group epoch;
//! - each member has a **member epoch** and reconciles towards its target, one heartbeat at
//!   a time: partitions it must give up are first taken from its assignment and held as
//!   *revoking* (state UNREVOKED_PARTITIONS, epoch unchanged) until a heartbeat shows it no
//!   longer owns them; then it moves to the assignment epoch and gets the new partitions
//!   that are free; partitions another member still owns or revokes are withheld (state
//!   UNRELEASED_PARTITIONS) and handed over on a later heartbeat, once released. So a
//!   partition never has two owners.
//! - a member silent for `group.consumer.session.timeout.ms` is removed, and one that does
//!   not revoke within its rebalance timeout is fenced (removed); either way its partitions
//!   are reassigned. A static member (instance id) that leaves with epoch -2 keeps its
//!   assignment until its session times out, and a new member with the same instance id
//!   takes it over, epoch and partitions, without a rebalance.
//!
//! Everything here is pure: `now` and the topics are arguments, so the unit tests walk it.
//! Durability is the coordinator's (`group::Coordinator::persist_consumer`): after any change
//! the whole group is stored as one record of its own kind in `__consumer_offsets`
//! ([`encode`] / [`decode`], key version [`super::store::CONSUMER_GROUP_KEY_VERSION`]) before
//! the member hears the answer. Kafka writes the same facts as several record kinds (key
//! versions 3–8: group metadata, subscription metadata, member metadata, target assignment
//! and its metadata, current member assignment); one snapshot per change is simpler to keep
//! consistent, and a group of a few members stays a few hundred bytes. After a restart the
//! group's epochs, members, their assignments and the target come back, each member with a
//! fresh session, so running consumers carry on with their epoch.
//!
//! Regular-expression subscriptions (`SubscribedTopicRegex`, v1): a member subscribes to its
//! topic names and every topic whose whole name the regex matches (Kafka's `matches()`),
//! internal topics excepted; a regex that does not compile (or is too big) is
//! INVALID_REGULAR_EXPRESSION, an empty one means "none" (librdkafka sends "" with topic
//! names). The match is redone on every heartbeat, so a topic created later joins the
//! subscription at the next heartbeat of any member (the group epoch goes up then). Kafka
//! resolves regexes asynchronously and may take a few seconds longer. Rack-aware assignment
//! is not done (the rack id is kept and described, not used).

use super::store::Reader;
use crate::errors;
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

pub type TopicId = u128;
/// Partitions by topic id.
pub type Assignment = BTreeMap<TopicId, BTreeSet<i32>>;
/// Topics by name: (id, partitions).
pub type Topics = BTreeMap<String, (TopicId, i32)>;

/// Epoch of a member leaving for good (request) / of a gone member.
pub const LEAVE_EPOCH: i32 = -1;
/// Epoch of a static member that left but will come back.
pub const STATIC_LEAVE_EPOCH: i32 = -2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    /// Must give up `revoking` before it moves on.
    UnrevokedPartitions,
    /// At the assignment epoch, waiting for partitions others still own.
    UnreleasedPartitions,
}

impl MemberState {
    fn code(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
        }
    }

    fn from_code(c: i8) -> Option<MemberState> {
        Some(match c {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// `STATIC_LEAVE_EPOCH` while a static member is away.
    pub epoch: i32,
    pub previous_epoch: i32,
    pub state: MemberState,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    /// Subscribed topic names, sorted.
    pub topics: Vec<String>,
    pub regex: Option<String>,
    /// `regex` compiled (not stored: compiled again on load).
    pub matcher: Option<regex::Regex>,
    /// What the member owns (and was told it owns).
    pub assigned: Assignment,
    /// Not stored: the member epoch at which it was given each partition it owns (KIP-1251's
    /// assignment epoch), so that a commit sent with the epoch before a bump still counts for
    /// partitions it kept. A partition missing here counts as given at the member's current
    /// epoch (so after a load the check is Kafka 4.0's strict one).
    pub given_at: BTreeMap<(TopicId, i32), i32>,
    /// What it must give up before it moves on (state UnrevokedPartitions).
    pub revoking: Assignment,
    /// Not stored: its session ends then unless it heartbeats.
    pub session_deadline: Instant,
    /// Not stored: fenced then if it still has not revoked.
    pub revoke_deadline: Option<Instant>,
}

/// Settings from the broker config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub session_timeout: Duration,
    pub heartbeat_interval_ms: i32,
    pub max_size: usize,
    /// The default first.
    pub assignors: Vec<String>,
}

/// One ConsumerGroupHeartbeat, as the API layer parsed it.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatArgs {
    pub group: String,
    pub version: i16,
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub topics: Option<Vec<String>>,
    pub regex: Option<String>,
    pub server_assignor: Option<String>,
    pub owned: Option<Vec<(TopicId, Vec<i32>)>>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatResult {
    pub error: i16,
    pub message: Option<String>,
    pub member_id: Option<String>,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    pub assignment: Option<Vec<(TopicId, Vec<i32>)>>,
}

impl HeartbeatResult {
    pub fn error(error: i16, message: impl Into<String>) -> HeartbeatResult {
        HeartbeatResult { error, message: Some(message.into()), member_epoch: -1, ..Default::default() }
    }
}

/// A consumer-protocol group's state.
#[derive(Debug, Clone, Default)]
pub struct ConsumerGroup {
    pub epoch: i32,
    pub assignment_epoch: i32,
    /// The assignor the last target was computed with.
    pub assignor: String,
    pub members: BTreeMap<String, Member>,
    pub target: BTreeMap<String, Assignment>,
    /// The subscribed topics as the last target saw them.
    pub metadata: Topics,
    /// The last snapshot stored (skip writing an unchanged one).
    pub stored: Option<Bytes>,
}

/// Kafka's request checks (`throwIfConsumerGroupHeartbeatRequestIsInvalid`) and the
/// assignor check: `Err((code, message))`.
pub fn validate(a: &HeartbeatArgs, s: &Settings) -> Result<(), (i16, String)> {
    let invalid = |m: &str| Err((errors::INVALID_REQUEST, m.to_string()));
    if a.group.is_empty() {
        return invalid("GroupId can't be empty.");
    }
    if a.instance_id.as_deref() == Some("") {
        return invalid("InstanceId can't be empty.");
    }
    if a.rack_id.as_deref() == Some("") {
        return invalid("RackId can't be empty.");
    }
    if a.version >= 1 && a.member_id.is_empty() {
        return invalid("MemberId can't be empty.");
    }
    match a.member_epoch {
        0 => {
            if a.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if a.topics.is_none() && a.regex.as_deref().is_none_or(str::is_empty) {
                return invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.");
            }
            if a.owned.as_ref().is_none_or(|o| !o.is_empty()) {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
        }
        LEAVE_EPOCH => {
            if a.member_id.is_empty() {
                return invalid("MemberId can't be empty.");
            }
        }
        STATIC_LEAVE_EPOCH => {
            if a.member_id.is_empty() {
                return invalid("MemberId can't be empty.");
            }
            if a.instance_id.is_none() {
                return invalid("InstanceId can't be null.");
            }
        }
        e if e > 0 => {
            if a.member_id.is_empty() {
                return invalid("MemberId can't be empty.");
            }
        }
        _ => return invalid("MemberEpoch is invalid."),
    }
    // An empty regex is "no regex" (librdkafka sends one with every topic-name subscription).
    if let Some(regex) = a.regex.as_ref().filter(|r| !r.is_empty()) {
        if let Err(e) = compile(regex) {
            return Err((
                errors::INVALID_REGULAR_EXPRESSION,
                format!("SubscribedTopicRegex {regex:?} is invalid: {e}"),
            ));
        }
    }
    if let Some(name) = &a.server_assignor {
        if !s.assignors.iter().any(|x| x == name) {
            return Err((
                errors::UNSUPPORTED_ASSIGNOR,
                format!("ServerAssignor {name} is not supported. Supported assignors: {}.", s.assignors.join(", ")),
            ));
        }
    }
    Ok(())
}

/// Most bytes a compiled subscription regex may take (the crate's default is 10 MiB; a
/// topic pattern needs far less, and every member's is held by the coordinator).
const REGEX_COMPILED_BYTES_MAX: usize = 1 << 20;

/// Topics a regex never matches (Kafka leaves its internal topics out).
const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state"];

/// A subscription regex, anchored at both ends: Kafka asks the whole name to match.
pub fn compile(regex: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(&format!("^(?:{regex})$"))
        .size_limit(REGEX_COMPILED_BYTES_MAX)
        .build()
        .map_err(|e| e.to_string().lines().last().unwrap_or("").trim().to_string())
}

impl Member {
    /// The earlier of its session end and its revocation deadline.
    pub fn deadline(&self) -> Instant {
        self.revoke_deadline.map_or(self.session_deadline, |r| r.min(self.session_deadline))
    }

    /// Its topic names and the existing topics its regex matches, sorted.
    fn subscribed(&self, topics: &Topics) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self.topics.iter().cloned().collect();
        if let Some(m) = &self.matcher {
            out.extend(topics.keys().filter(|t| !INTERNAL_TOPICS.contains(&t.as_str()) && m.is_match(t)).cloned());
        }
        out
    }
}

fn to_assignment(owned: &[(TopicId, Vec<i32>)]) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in owned {
        out.entry(*t).or_default().extend(ps.iter().copied());
    }
    out.retain(|_, ps| !ps.is_empty());
    out
}

fn from_assignment(a: &Assignment) -> Vec<(TopicId, Vec<i32>)> {
    a.iter().filter(|(_, ps)| !ps.is_empty()).map(|(t, ps)| (*t, ps.iter().copied().collect())).collect()
}

fn intersects(a: &Assignment, b: &Assignment) -> bool {
    a.iter().any(|(t, ps)| b.get(t).is_some_and(|qs| ps.iter().any(|p| qs.contains(p))))
}

fn is_subset(a: &Assignment, of: &Assignment) -> bool {
    a.iter().all(|(t, ps)| ps.is_empty() || of.get(t).is_some_and(|qs| ps.is_subset(qs)))
}

impl ConsumerGroup {
    /// Kafka's consumer group states.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.epoch != self.assignment_epoch {
            "Assigning"
        } else if self.members.values().any(|m| m.epoch != self.assignment_epoch || m.state != MemberState::Stable) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    fn static_member(&self, instance: &str) -> Option<&Member> {
        self.members.values().find(|m| m.instance_id.as_deref() == Some(instance))
    }

    /// One heartbeat (already `validate`d). `new_id` names a member the coordinator creates
    /// (v0, where the coordinator picks the id).
    pub fn heartbeat(
        &mut self,
        a: &HeartbeatArgs,
        topics: &Topics,
        s: &Settings,
        now: Instant,
        new_id: impl FnOnce() -> String,
    ) -> HeartbeatResult {
        let mut full = a.member_epoch == 0;
        let id = match a.member_epoch {
            0 => match self.join(a, s, now, new_id) {
                Ok(id) => id,
                Err(r) => return r,
            },
            LEAVE_EPOCH | STATIC_LEAVE_EPOCH => return self.leave(a, topics, s),
            _ => {
                if let Err(r) = self.check_member(a) {
                    return r;
                }
                full = a.rebalance_timeout_ms != -1 && a.topics.is_some() && a.owned.is_some();
                a.member_id.clone()
            }
        };
        let member = self.members.get_mut(&id).expect("joined or checked above");
        let before = member.assigned.clone();
        member.session_deadline = now + s.session_timeout;
        if a.rebalance_timeout_ms > 0 {
            member.rebalance_timeout_ms = a.rebalance_timeout_ms;
        }
        if a.rack_id.is_some() {
            member.rack_id = a.rack_id.clone();
        }
        member.client_id = a.client_id.clone();
        member.client_host = a.client_host.clone();
        let mut bump = false;
        if a.server_assignor.is_some() && member.server_assignor != a.server_assignor {
            member.server_assignor = a.server_assignor.clone();
            bump = true;
        }
        if let Some(r) = &a.regex {
            let r = (!r.is_empty()).then(|| r.clone());
            if member.regex != r {
                member.matcher = r.as_deref().and_then(|r| compile(r).ok());
                member.regex = r;
                bump = true;
            }
        }
        if let Some(t) = &a.topics {
            let mut t = t.clone();
            t.sort();
            t.dedup();
            if member.topics != t {
                member.topics = t;
                bump = true;
            }
        }
        if bump || self.subscribed_metadata(topics) != self.metadata || self.target.len() != self.members.len() {
            self.bump(topics, s);
        }
        let owned = a.owned.as_deref().map(to_assignment);
        self.reconcile(&id, owned.as_ref(), now);
        let member = &self.members[&id];
        HeartbeatResult {
            error: errors::NONE,
            message: None,
            member_id: Some(id.clone()),
            member_epoch: member.epoch,
            heartbeat_interval_ms: s.heartbeat_interval_ms,
            assignment: (full || member.assigned != before).then(|| from_assignment(&member.assigned)),
        }
    }

    /// Epoch 0: a new member, a static member taking over its instance, or a known member
    /// rejoining (it gave up everything it owned).
    fn join(
        &mut self,
        a: &HeartbeatArgs,
        s: &Settings,
        now: Instant,
        new_id: impl FnOnce() -> String,
    ) -> Result<String, HeartbeatResult> {
        let id = if a.member_id.is_empty() { new_id() } else { a.member_id.clone() };
        if let Some(instance) = &a.instance_id {
            if let Some(old) = self.static_member(instance).cloned() {
                if old.epoch != STATIC_LEAVE_EPOCH && old.id != id {
                    return Err(HeartbeatResult::error(
                        errors::UNRELEASED_INSTANCE_ID,
                        format!("Static member {instance} is still in use by member {}.", old.id),
                    ));
                }
                if old.id != id {
                    // Takes the old member's place: its epoch, its partitions, its target.
                    self.members.remove(&old.id);
                    let target = self.target.remove(&old.id);
                    let mut m = old;
                    m.id = id.clone();
                    m.epoch = m.previous_epoch.max(0);
                    m.revoke_deadline = None;
                    m.revoking.clear();
                    m.state = MemberState::Stable;
                    m.session_deadline = now + s.session_timeout;
                    self.members.insert(id.clone(), m);
                    if let Some(t) = target {
                        self.target.insert(id.clone(), t);
                    }
                    return Ok(id);
                }
            }
        }
        if let Some(m) = self.members.get_mut(&id) {
            // Rejoining: whatever it owned, it owns nothing now (TopicPartitions is empty).
            m.epoch = 0;
            m.previous_epoch = 0;
            m.assigned.clear();
            m.given_at.clear();
            m.revoking.clear();
            m.state = MemberState::Stable;
            m.revoke_deadline = None;
            return Ok(id);
        }
        if self.members.len() >= s.max_size {
            return Err(HeartbeatResult::error(
                errors::GROUP_MAX_SIZE_REACHED,
                format!("The group has reached its maximum capacity of {} members.", s.max_size),
            ));
        }
        self.members.insert(
            id.clone(),
            Member {
                id: id.clone(),
                instance_id: a.instance_id.clone(),
                rack_id: a.rack_id.clone(),
                client_id: a.client_id.clone(),
                client_host: a.client_host.clone(),
                epoch: 0,
                previous_epoch: 0,
                state: MemberState::Stable,
                rebalance_timeout_ms: a.rebalance_timeout_ms,
                server_assignor: None,
                topics: Vec::new(),
                regex: None,
                matcher: None,
                assigned: Assignment::new(),
                given_at: BTreeMap::new(),
                revoking: Assignment::new(),
                session_deadline: now + s.session_timeout,
                revoke_deadline: None,
            },
        );
        Ok(id)
    }

    /// A heartbeat with epoch > 0: the member must be known, its epoch current (or the
    /// previous one, when it lost our last answer and owns only what it had then).
    fn check_member(&self, a: &HeartbeatArgs) -> Result<(), HeartbeatResult> {
        let Some(m) = self.members.get(&a.member_id) else {
            return Err(HeartbeatResult::error(
                errors::UNKNOWN_MEMBER_ID,
                format!("Member {} is not a member of group {}.", a.member_id, a.group),
            ));
        };
        if let Some(instance) = &a.instance_id {
            if m.instance_id.as_ref() != Some(instance) {
                return Err(HeartbeatResult::error(
                    errors::FENCED_INSTANCE_ID,
                    format!("Member {} is not static member {instance}.", a.member_id),
                ));
            }
        }
        let fenced = || {
            Err(HeartbeatResult::error(
                errors::FENCED_MEMBER_EPOCH,
                format!("The consumer group member has a smaller or larger member epoch ({}) than the one known by the group coordinator ({}).", a.member_epoch, m.epoch),
            ))
        };
        if a.member_epoch > m.epoch || m.epoch == STATIC_LEAVE_EPOCH {
            return fenced();
        }
        if a.member_epoch < m.epoch {
            let owned_ok = a.owned.as_deref().is_some_and(|o| is_subset(&to_assignment(o), &m.assigned));
            if a.member_epoch != m.previous_epoch || !owned_ok {
                return fenced();
            }
        }
        Ok(())
    }

    fn leave(&mut self, a: &HeartbeatArgs, topics: &Topics, s: &Settings) -> HeartbeatResult {
        let Some(m) = self.members.get_mut(&a.member_id) else {
            return HeartbeatResult::error(
                errors::UNKNOWN_MEMBER_ID,
                format!("Member {} is not a member of group {}.", a.member_id, a.group),
            );
        };
        let ok = |epoch| HeartbeatResult {
            error: errors::NONE,
            member_id: Some(a.member_id.clone()),
            member_epoch: epoch,
            heartbeat_interval_ms: 0,
            ..Default::default()
        };
        if a.member_epoch == STATIC_LEAVE_EPOCH {
            // Keeps its partitions until its session ends or its instance comes back.
            if m.epoch != STATIC_LEAVE_EPOCH {
                m.previous_epoch = m.epoch;
            }
            m.epoch = STATIC_LEAVE_EPOCH;
            m.revoking.clear();
            m.revoke_deadline = None;
            m.state = MemberState::Stable;
            return ok(STATIC_LEAVE_EPOCH);
        }
        self.remove(&a.member_id, topics, s);
        ok(LEAVE_EPOCH)
    }

    /// Drops a member (left, expired, fenced) and reassigns.
    pub fn remove(&mut self, id: &str, topics: &Topics, s: &Settings) {
        if self.members.remove(id).is_some() {
            self.target.remove(id);
            self.bump(topics, s);
        }
    }

    /// Session and revocation deadlines: removes those past them. True if any went.
    pub fn expire(&mut self, now: Instant, topics: &Topics, s: &Settings) -> bool {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| now >= m.session_deadline || m.revoke_deadline.is_some_and(|d| now >= d))
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            self.remove(id, topics, s);
        }
        !gone.is_empty()
    }

    /// The subscribed topics (that exist) as they are now.
    fn subscribed_metadata(&self, topics: &Topics) -> Topics {
        let names: BTreeSet<String> = self.members.values().flat_map(|m| m.subscribed(topics)).collect();
        names.into_iter().filter_map(|n| topics.get(&n).map(|v| (n, *v))).collect()
    }

    /// The assignor most members ask for (ties: the first by name), else the default.
    fn preferred_assignor(&self, s: &Settings) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.server_assignor {
                *votes.entry(a.as_str()).or_default() += 1;
            }
        }
        let best = votes.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)));
        best.map(|(a, _)| a.to_string()).unwrap_or_else(|| s.assignors[0].clone())
    }

    /// A new group epoch and its target assignment.
    fn bump(&mut self, topics: &Topics, s: &Settings) {
        self.epoch += 1;
        self.metadata = self.subscribed_metadata(topics);
        self.assignor = self.preferred_assignor(s);
        let partitions: BTreeMap<TopicId, i32> = self.metadata.values().copied().collect();
        let subs: Vec<(&str, BTreeSet<TopicId>)> = self
            .members
            .values()
            .map(|m| {
                let ids = m.subscribed(topics).iter().filter_map(|t| self.metadata.get(t).map(|v| v.0)).collect();
                (m.id.as_str(), ids)
            })
            .collect();
        self.target = if self.assignor == "range" {
            range(&subs, &partitions)
        } else {
            uniform(&subs, &partitions, &self.target)
        };
        self.assignment_epoch = self.epoch;
    }

    /// Partition → the member that owns or is revoking it.
    fn owners(&self) -> BTreeMap<(TopicId, i32), String> {
        let mut out = BTreeMap::new();
        for m in self.members.values() {
            for a in [&m.assigned, &m.revoking] {
                for (t, ps) in a {
                    for p in ps {
                        out.insert((*t, *p), m.id.clone());
                    }
                }
            }
        }
        out
    }

    /// Kafka's `validateOffsetCommit` for a commit of `parts` (topic, partition) sent with
    /// member epoch `epoch`, with KIP-1251's assignment epochs: the member's current epoch is
    /// taken; an older one only when every partition is still the member's and was given to
    /// it at or before that epoch (a commit sent while a heartbeat bumped the epoch, not a
    /// zombie's); a newer one never.
    pub fn validate_commit<'a>(
        &self,
        member_id: &str,
        epoch: i32,
        parts: impl IntoIterator<Item = (&'a str, i32)>,
    ) -> Result<(), i16> {
        if epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let Some(m) = self.members.get(member_id) else {
            return Err(errors::UNKNOWN_MEMBER_ID);
        };
        if epoch == m.epoch {
            return Ok(());
        }
        if epoch > m.epoch || epoch < 0 {
            return Err(errors::STALE_MEMBER_EPOCH);
        }
        let mut any = false;
        for (topic, partition) in parts {
            any = true;
            let Some(&(id, _)) = self.metadata.get(topic) else {
                return Err(errors::STALE_MEMBER_EPOCH);
            };
            let owned = m.assigned.get(&id).is_some_and(|ps| ps.contains(&partition));
            let given_at = m.given_at.get(&(id, partition)).copied().unwrap_or(m.epoch);
            if !owned || given_at > epoch {
                return Err(errors::STALE_MEMBER_EPOCH);
            }
        }
        if any {
            Ok(())
        } else {
            Err(errors::STALE_MEMBER_EPOCH)
        }
    }

    /// Kafka's `CurrentAssignmentBuilder`: moves member `id` towards its target as far as
    /// it may now. `owned`: what the member says it owns (None: unchanged since last time).
    fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now: Instant) {
        let target_epoch = self.assignment_epoch;
        let target = self.target.get(id).cloned().unwrap_or_default();
        let owners = self.owners();
        let m = self.members.get_mut(id).expect("reconcile: a member");
        match m.state {
            MemberState::UnrevokedPartitions => {
                if owned.is_none_or(|o| intersects(o, &m.revoking)) {
                    return; // still owns (or did not say) what it must give up
                }
                m.revoking.clear();
                m.revoke_deadline = None;
            }
            MemberState::Stable if m.epoch == target_epoch => return,
            _ => {}
        }
        let mut keep = Assignment::new();
        let mut revoke = Assignment::new();
        for (t, ps) in &m.assigned {
            for p in ps {
                let set = if target.get(t).is_some_and(|q| q.contains(p)) { &mut keep } else { &mut revoke };
                set.entry(*t).or_default().insert(*p);
            }
        }
        if !revoke.is_empty() {
            m.assigned = keep;
            m.revoking = revoke;
            m.state = MemberState::UnrevokedPartitions;
            m.revoke_deadline = Some(now + Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64));
            return;
        }
        let mut unreleased = false;
        for (t, ps) in &target {
            for p in ps {
                if keep.get(t).is_some_and(|q| q.contains(p)) {
                    continue;
                }
                match owners.get(&(*t, *p)) {
                    Some(owner) if *owner != id => unreleased = true,
                    _ => {
                        keep.entry(*t).or_default().insert(*p);
                    }
                }
            }
        }
        // What it owned already keeps the epoch it was given at; what is new, the target's.
        let given_at = keep
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
            .map(|tp| {
                let owned = m.assigned.get(&tp.0).is_some_and(|q| q.contains(&tp.1));
                let at = if owned { m.given_at.get(&tp).copied().unwrap_or(m.epoch) } else { target_epoch };
                (tp, at)
            })
            .collect();
        m.given_at = given_at;
        if m.epoch != target_epoch {
            m.previous_epoch = m.epoch;
            m.epoch = target_epoch;
        }
        m.assigned = keep;
        m.state = if unreleased { MemberState::UnreleasedPartitions } else { MemberState::Stable };
    }

    /// The whole group as one stored value (see the module doc).
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i16(0);
        out.put_i32(self.epoch);
        out.put_i32(self.assignment_epoch);
        put_str(&mut out, &self.assignor);
        out.put_i32(self.metadata.len() as i32);
        for (name, (id, parts)) in &self.metadata {
            put_str(&mut out, name);
            out.put_u128(*id);
            out.put_i32(*parts);
        }
        out.put_i32(self.members.len() as i32);
        for m in self.members.values() {
            put_str(&mut out, &m.id);
            put_nullable(&mut out, m.instance_id.as_deref());
            put_nullable(&mut out, m.rack_id.as_deref());
            put_str(&mut out, &m.client_id);
            put_str(&mut out, &m.client_host);
            out.put_i32(m.epoch);
            out.put_i32(m.previous_epoch);
            out.put_i8(m.state.code());
            out.put_i32(m.rebalance_timeout_ms);
            put_nullable(&mut out, m.server_assignor.as_deref());
            out.put_i32(m.topics.len() as i32);
            for t in &m.topics {
                put_str(&mut out, t);
            }
            put_nullable(&mut out, m.regex.as_deref());
            put_assignment(&mut out, &m.assigned);
            put_assignment(&mut out, &m.revoking);
            put_assignment(&mut out, self.target.get(&m.id).unwrap_or(&Assignment::new()));
        }
        out.freeze()
    }

    /// A stored group, its members with a fresh session from `now`; `None` if it does not
    /// parse.
    pub fn decode(buf: &[u8], now: Instant, s: &Settings) -> Option<ConsumerGroup> {
        let mut r = Reader::new(buf);
        if r.i16()? != 0 {
            return None;
        }
        let mut g =
            ConsumerGroup { epoch: r.i32()?, assignment_epoch: r.i32()?, assignor: r.str()?, ..Default::default() };
        let n = r.count(2 + 16 + 4)?;
        for _ in 0..n {
            let name = r.str()?;
            let id = u128::from_be_bytes(r.take_bytes(16)?.try_into().ok()?);
            g.metadata.insert(name, (id, r.i32()?));
        }
        let n = r.count(40)?;
        for _ in 0..n {
            let id = r.str()?;
            let instance_id = r.nullable_str()?;
            let rack_id = r.nullable_str()?;
            let client_id = r.str()?;
            let client_host = r.str()?;
            let epoch = r.i32()?;
            let previous_epoch = r.i32()?;
            let state = MemberState::from_code(r.i8()?)?;
            let rebalance_timeout_ms = r.i32()?;
            let server_assignor = r.nullable_str()?;
            let k = r.count(2)?;
            let topics = (0..k).map(|_| r.str()).collect::<Option<Vec<_>>>()?;
            let regex = r.nullable_str()?;
            let assigned = get_assignment(&mut r)?;
            let revoking = get_assignment(&mut r)?;
            let target = get_assignment(&mut r)?;
            let revoke_deadline = (state == MemberState::UnrevokedPartitions)
                .then(|| now + Duration::from_millis(rebalance_timeout_ms.max(0) as u64));
            g.target.insert(id.clone(), target);
            g.members.insert(
                id.clone(),
                Member {
                    id,
                    instance_id,
                    rack_id,
                    client_id,
                    client_host,
                    epoch,
                    previous_epoch,
                    state,
                    rebalance_timeout_ms,
                    server_assignor,
                    topics,
                    matcher: regex.as_deref().and_then(|r| compile(r).ok()),
                    regex,
                    assigned,
                    given_at: BTreeMap::new(),
                    revoking,
                    session_deadline: now + s.session_timeout,
                    revoke_deadline,
                },
            );
        }
        r.is_empty().then_some(g)
    }
}

fn put_str(out: &mut BytesMut, s: &str) {
    out.put_i16(s.len().min(i16::MAX as usize) as i16);
    out.put_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
}

fn put_nullable(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.put_i16(-1),
    }
}

fn put_assignment(out: &mut BytesMut, a: &Assignment) {
    out.put_i32(a.len() as i32);
    for (t, ps) in a {
        out.put_u128(*t);
        out.put_i32(ps.len() as i32);
        for p in ps {
            out.put_i32(*p);
        }
    }
}

fn get_assignment(r: &mut Reader) -> Option<Assignment> {
    let n = r.count(16 + 4)?;
    let mut out = Assignment::new();
    for _ in 0..n {
        let t = u128::from_be_bytes(r.take_bytes(16)?.try_into().ok()?);
        let k = r.count(4)?;
        let ps = (0..k).map(|_| r.i32()).collect::<Option<BTreeSet<i32>>>()?;
        out.insert(t, ps);
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Server-side assignors. Input: each member with the (existing) topic ids it subscribes to;
// partitions per topic. Output: the target assignment of every member (possibly empty).

/// `uniform` (Kafka's default): every partition to a subscribed member, counts as even as
/// the subscriptions allow, and sticky: a member keeps what it had in the previous target
/// unless balance demands it moves. Three passes: keep, place the rest on the least loaded
/// eligible member, then move single partitions from a member to an eligible one holding
/// at least two fewer until no such move is left (each move lowers the sum of squared
/// counts, so it ends). Kafka has two builders (same subscriptions / mixed); this one pass
/// order serves both, at O(moves × members × partitions), fine at group sizes.
pub fn uniform(
    members: &[(&str, BTreeSet<TopicId>)],
    partitions: &BTreeMap<TopicId, i32>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let subs: BTreeMap<&str, &BTreeSet<TopicId>> = members.iter().map(|(m, t)| (*m, t)).collect();
    let mut owner: BTreeMap<(TopicId, i32), &str> = BTreeMap::new();
    let mut count: BTreeMap<&str, usize> = subs.keys().map(|m| (*m, 0)).collect();
    for (m, t) in &subs {
        for (topic, ps) in previous.get(*m).into_iter().flatten() {
            let n = partitions.get(topic).copied().unwrap_or(0);
            if !t.contains(topic) {
                continue;
            }
            for p in ps.iter().filter(|p| **p < n) {
                if owner.insert((*topic, *p), m).is_none() {
                    *count.get_mut(m).expect("member counted") += 1;
                }
            }
        }
    }
    let eligible =
        |topic: &TopicId| -> Vec<&str> { subs.iter().filter(|(_, t)| t.contains(topic)).map(|(m, _)| *m).collect() };
    for (topic, n) in partitions {
        let who = eligible(topic);
        for p in 0..*n {
            if owner.contains_key(&(*topic, p)) || who.is_empty() {
                continue;
            }
            let m = *who.iter().min_by_key(|m| (count[**m], **m)).expect("not empty");
            owner.insert((*topic, p), m);
            *count.get_mut(m).expect("member counted") += 1;
        }
    }
    loop {
        let mut moved = None;
        let mut by_load: Vec<&str> = count.keys().copied().collect();
        by_load.sort_by_key(|m| (std::cmp::Reverse(count[m]), *m));
        'find: for from in by_load {
            for ((topic, p), o) in owner.iter().rev() {
                if *o != from {
                    continue;
                }
                let to =
                    eligible(topic).into_iter().filter(|m| count[m] + 1 < count[from]).min_by_key(|m| (count[m], *m));
                if let Some(to) = to {
                    moved = Some(((*topic, *p), from, to));
                    break 'find;
                }
            }
        }
        let Some((tp, from, to)) = moved else { break };
        owner.insert(tp, to);
        *count.get_mut(from).expect("counted") -= 1;
        *count.get_mut(to).expect("counted") += 1;
    }
    let mut out: BTreeMap<String, Assignment> = subs.keys().map(|m| (m.to_string(), Assignment::new())).collect();
    for ((topic, p), m) in owner {
        out.get_mut(m).expect("member").entry(topic).or_default().insert(p);
    }
    out
}

/// `range`: per topic, its subscribers in member-id order take contiguous ranges, the
/// first `partitions % members` one more (Kafka's range layout, so co-partitioned topics
/// line up). Unlike Kafka 4's server-side range it is not sticky.
pub fn range(
    members: &[(&str, BTreeSet<TopicId>)],
    partitions: &BTreeMap<TopicId, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> =
        members.iter().map(|(m, _)| (m.to_string(), Assignment::new())).collect();
    for (topic, n) in partitions {
        let mut who: Vec<&str> = members.iter().filter(|(_, t)| t.contains(topic)).map(|(m, _)| *m).collect();
        who.sort();
        if who.is_empty() {
            continue;
        }
        let (each, extra) = (*n as usize / who.len(), *n as usize % who.len());
        let mut start = 0usize;
        for (i, m) in who.iter().enumerate() {
            let len = each + usize::from(i < extra);
            if len > 0 {
                out.get_mut(*m)
                    .expect("member")
                    .entry(*topic)
                    .or_default()
                    .extend((start..start + len).map(|p| p as i32));
            }
            start += len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            session_timeout: Duration::from_secs(45),
            heartbeat_interval_ms: 5000,
            max_size: 3,
            assignors: vec!["uniform".into(), "range".into()],
        }
    }

    fn topics() -> Topics {
        [("t".to_string(), (7u128, 6)), ("u".to_string(), (8u128, 2))].into_iter().collect()
    }

    fn join(id: &str, t: &[&str]) -> HeartbeatArgs {
        HeartbeatArgs {
            group: "g".into(),
            version: 1,
            member_id: id.into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30000,
            topics: Some(t.iter().map(|s| s.to_string()).collect()),
            owned: Some(Vec::new()),
            ..Default::default()
        }
    }

    fn beat(id: &str, epoch: i32, owned: &[(TopicId, Vec<i32>)]) -> HeartbeatArgs {
        HeartbeatArgs {
            group: "g".into(),
            version: 1,
            member_id: id.into(),
            member_epoch: epoch,
            rebalance_timeout_ms: -1,
            owned: Some(owned.to_vec()),
            ..Default::default()
        }
    }

    fn count(a: &Option<Vec<(TopicId, Vec<i32>)>>) -> usize {
        a.iter().flatten().map(|(_, p)| p.len()).sum()
    }

    #[test]
    fn a_partition_moves_only_after_its_owner_revoked_it() {
        let (s, t, now) = (settings(), topics(), Instant::now());
        let mut g = ConsumerGroup::default();
        let r = g.heartbeat(&join("a", &["t"]), &t, &s, now, || unreachable!());
        assert_eq!((r.error, r.member_epoch, count(&r.assignment)), (errors::NONE, 1, 6));
        let a_owned = r.assignment.unwrap();
        let r = g.heartbeat(&join("b", &["t"]), &t, &s, now, || unreachable!());
        // b is at epoch 2 but gets nothing yet: a still owns all six.
        assert_eq!((r.member_epoch, count(&r.assignment)), (2, 0));
        assert_eq!(g.members["b"].state, MemberState::UnreleasedPartitions);
        // a is told to keep three (epoch unchanged until it revokes).
        let r = g.heartbeat(&beat("a", 1, &a_owned), &t, &s, now, || unreachable!());
        assert_eq!((r.member_epoch, count(&r.assignment)), (1, 3));
        assert_eq!(g.members["a"].state, MemberState::UnrevokedPartitions);
        // b still waits while a has not confirmed.
        let r = g.heartbeat(&beat("b", 2, &[]), &t, &s, now, || unreachable!());
        assert_eq!(count(&r.assignment), 0);
        // a confirms: epoch 2, then b gets the other three.
        let kept = r_assignment(&g, "a");
        let r = g.heartbeat(&beat("a", 1, &kept), &t, &s, now, || unreachable!());
        assert_eq!((r.member_epoch, g.members["a"].state), (2, MemberState::Stable));
        let r = g.heartbeat(&beat("b", 2, &[]), &t, &s, now, || unreachable!());
        assert_eq!((r.member_epoch, count(&r.assignment)), (2, 3));
        assert_eq!(g.state_name(), "Stable");
        let a: BTreeSet<i32> = g.members["a"].assigned[&7].clone();
        let b: BTreeSet<i32> = g.members["b"].assigned[&7].clone();
        assert!(a.is_disjoint(&b) && a.len() + b.len() == 6);
    }

    fn r_assignment(g: &ConsumerGroup, id: &str) -> Vec<(TopicId, Vec<i32>)> {
        from_assignment(&g.members[id].assigned)
    }

    #[test]
    fn epochs_are_checked_and_members_must_be_known() {
        let (s, t, now) = (settings(), topics(), Instant::now());
        let mut g = ConsumerGroup::default();
        g.heartbeat(&join("a", &["t"]), &t, &s, now, || unreachable!());
        let owned = r_assignment(&g, "a");
        assert_eq!(
            g.heartbeat(&beat("a", 5, &owned), &t, &s, now, || unreachable!()).error,
            errors::FENCED_MEMBER_EPOCH
        );
        assert_eq!(g.heartbeat(&beat("x", 1, &[]), &t, &s, now, || unreachable!()).error, errors::UNKNOWN_MEMBER_ID);
        g.heartbeat(&join("b", &["t"]), &t, &s, now, || unreachable!());
        // a moves to epoch 2 after revoking; then epoch 1 with a subset is tolerated, epoch 0.5.. no.
        g.heartbeat(&beat("a", 1, &owned), &t, &s, now, || unreachable!());
        let kept = r_assignment(&g, "a");
        assert_eq!(g.heartbeat(&beat("a", 1, &kept), &t, &s, now, || unreachable!()).member_epoch, 2);
        assert_eq!(g.heartbeat(&beat("a", 1, &kept), &t, &s, now, || unreachable!()).error, errors::NONE);
        assert_eq!(
            g.heartbeat(&beat("a", 1, &owned), &t, &s, now, || unreachable!()).error,
            errors::FENCED_MEMBER_EPOCH
        );
        // Leaving: the other gets everything at the next epoch.
        let r = g.heartbeat(&beat("b", -1, &[]), &t, &s, now, || unreachable!());
        assert_eq!((r.error, r.member_epoch), (errors::NONE, -1));
        let r = g.heartbeat(&beat("a", 2, &kept), &t, &s, now, || unreachable!());
        assert_eq!((r.member_epoch, count(&r.assignment)), (3, 6));
    }

    /// a joins and takes all six of "t"; b joins; a is told to give three up (epoch 1,
    /// revoking). Returns the group and what a owned.
    fn a_then_b_joins(s: &Settings, t: &Topics, now: Instant) -> (ConsumerGroup, Vec<(TopicId, Vec<i32>)>) {
        let mut g = ConsumerGroup::default();
        g.heartbeat(&join("a", &["t"]), t, s, now, || unreachable!());
        let owned = r_assignment(&g, "a");
        g.heartbeat(&join("b", &["t"]), t, s, now, || unreachable!());
        g.heartbeat(&beat("a", 1, &owned), t, s, now, || unreachable!());
        (g, owned)
    }

    #[test]
    fn a_commit_sent_with_the_epoch_before_a_bump_counts_for_the_partitions_kept() {
        let (s, t, now) = (settings(), topics(), Instant::now());
        let (mut g, _) = a_then_b_joins(&s, &t, now);
        let kept = r_assignment(&g, "a");
        assert_eq!(g.heartbeat(&beat("a", 1, &kept), &t, &s, now, || unreachable!()).member_epoch, 2);
        let kept: Vec<i32> = kept[0].1.clone();
        let gone: Vec<i32> = (0..6).filter(|p| !kept.contains(p)).collect();
        fn commit(g: &ConsumerGroup, id: &str, epoch: i32, ps: &[i32]) -> Result<(), i16> {
            g.validate_commit(id, epoch, ps.iter().map(|p| ("t", *p)))
        }
        // a's own epoch: anything; the epoch before the bump: what it kept, not what it gave up.
        assert_eq!(commit(&g, "a", 2, &kept), Ok(()));
        assert_eq!(commit(&g, "a", 1, &kept), Ok(()));
        assert_eq!(commit(&g, "a", 1, &gone[..1]), Err(errors::STALE_MEMBER_EPOCH));
        assert_eq!(commit(&g, "a", 1, &[kept[0], gone[0]]), Err(errors::STALE_MEMBER_EPOCH));
        assert_eq!(commit(&g, "a", 3, &kept), Err(errors::STALE_MEMBER_EPOCH));
        assert_eq!(commit(&g, "a", 1, &[]), Err(errors::STALE_MEMBER_EPOCH));
        // b was given its three at epoch 2: epoch 1 is stale for them.
        let r = g.heartbeat(&beat("b", 2, &[]), &t, &s, now, || unreachable!());
        assert_eq!((r.member_epoch, count(&r.assignment)), (2, 3));
        assert_eq!(commit(&g, "b", 2, &gone), Ok(()));
        assert_eq!(commit(&g, "b", 1, &gone), Err(errors::STALE_MEMBER_EPOCH));
        assert_eq!(commit(&g, "x", 2, &gone), Err(errors::UNKNOWN_MEMBER_ID));
        assert_eq!(g.validate_commit("a", 1, [("nope", 0)]), Err(errors::STALE_MEMBER_EPOCH));
    }

    #[test]
    fn sessions_expire_static_members_come_back_and_size_is_capped() {
        let (s, t, now) = (settings(), topics(), Instant::now());
        let mut g = ConsumerGroup::default();
        let mut a = join("a", &["t"]);
        a.instance_id = Some("i".into());
        g.heartbeat(&a, &t, &s, now, || unreachable!());
        let before = g.members["a"].assigned.clone();
        let mut leave = beat("a", -2, &[]);
        leave.instance_id = Some("i".into());
        assert_eq!(g.heartbeat(&leave, &t, &s, now, || unreachable!()).member_epoch, -2);
        // Another instance with the same id while a is away takes its place: same epoch and partitions.
        let mut a2 = join("a2", &["t"]);
        a2.instance_id = Some("i".into());
        let r = g.heartbeat(&a2, &t, &s, now, || unreachable!());
        assert_eq!((r.member_epoch, g.members["a2"].assigned == before, g.epoch), (1, true, 1));
        let mut a3 = join("a3", &["t"]);
        a3.instance_id = Some("i".into());
        assert_eq!(g.heartbeat(&a3, &t, &s, now, || unreachable!()).error, errors::UNRELEASED_INSTANCE_ID);
        g.heartbeat(&join("b", &["t"]), &t, &s, now, || unreachable!());
        g.heartbeat(&join("c", &["t"]), &t, &s, now, || unreachable!());
        assert_eq!(
            g.heartbeat(&join("d", &["t"]), &t, &s, now, || unreachable!()).error,
            errors::GROUP_MAX_SIZE_REACHED
        );
        assert!(!g.expire(now + Duration::from_secs(44), &t, &s));
        assert!(g.expire(now + Duration::from_secs(46), &t, &s));
        assert!(g.members.is_empty());
    }

    #[test]
    fn a_member_that_does_not_revoke_within_its_rebalance_timeout_is_fenced() {
        let (s, t, now) = (settings(), topics(), Instant::now());
        let (mut g, owned) = a_then_b_joins(&s, &t, now);
        assert_eq!(g.members["a"].state, MemberState::UnrevokedPartitions);
        // Keeps heartbeating (its session lives) but never gives the three up.
        let later = now + Duration::from_secs(29);
        g.heartbeat(&beat("a", 1, &owned), &t, &s, later, || unreachable!());
        assert!(!g.expire(later, &t, &s));
        let late = now + Duration::from_secs(31);
        g.heartbeat(&beat("b", 2, &[]), &t, &s, late, || unreachable!());
        assert!(g.expire(late, &t, &s), "30 s rebalance timeout passed");
        assert!(!g.members.contains_key("a"));
        let r = g.heartbeat(&beat("b", 2, &[]), &t, &s, late, || unreachable!());
        assert_eq!((r.member_epoch, count(&r.assignment)), (3, 6));
        assert_eq!(
            g.heartbeat(&beat("a", 1, &owned), &t, &s, late, || unreachable!()).error,
            errors::UNKNOWN_MEMBER_ID
        );
    }

    #[test]
    fn range_is_chosen_when_members_ask_for_it() {
        let (s, t, now) = (settings(), topics(), Instant::now());
        let mut g = ConsumerGroup::default();
        let mut a = join("a", &["t"]);
        a.server_assignor = Some("range".into());
        g.heartbeat(&a, &t, &s, now, || unreachable!());
        let mut b = join("b", &["t"]);
        b.server_assignor = Some("range".into());
        g.heartbeat(&b, &t, &s, now, || unreachable!());
        assert_eq!(g.assignor, "range");
        assert_eq!(g.target["a"][&7], BTreeSet::from([0, 1, 2]));
        assert_eq!(g.target["b"][&7], BTreeSet::from([3, 4, 5]));
    }

    #[test]
    fn snapshots_round_trip_and_cut_ones_are_refused() {
        let (s, t, now) = (settings(), topics(), Instant::now());
        let mut g = ConsumerGroup::default();
        g.heartbeat(&join("a", &["t", "u"]), &t, &s, now, || unreachable!());
        g.heartbeat(&join("b", &["t"]), &t, &s, now, || unreachable!());
        let bytes = g.encode();
        let back = ConsumerGroup::decode(&bytes, now, &s).expect("decodes");
        assert_eq!(back.encode(), bytes);
        for cut in 0..bytes.len() {
            assert!(ConsumerGroup::decode(&bytes[..cut], now, &s).is_none(), "cut at {cut}");
        }
    }

    #[test]
    fn a_regex_subscribes_to_matching_topics_including_later_ones() {
        let (s, now) = (settings(), Instant::now());
        let mut t = topics();
        t.insert("__consumer_offsets".into(), (99, 50));
        let mut g = ConsumerGroup::default();
        let mut a = join("a", &[]);
        a.regex = Some("t|_.*".into());
        let r = g.heartbeat(&a, &t, &s, now, || unreachable!());
        assert_eq!((r.member_epoch, count(&r.assignment)), (1, 6), "t only: not u, not the internal topic");
        t.insert("tt".into(), (9, 1));
        let owned = r_assignment(&g, "a");
        assert_eq!(g.heartbeat(&beat("a", 1, &owned), &t, &s, now, || unreachable!()).assignment, None);
        let mut a = join("a", &[]);
        a.regex = Some("t.*".into());
        a.member_epoch = 1;
        a.topics = None;
        a.owned = Some(owned);
        let r = g.heartbeat(&a, &t, &s, now, || unreachable!());
        assert_eq!((r.member_epoch, count(&r.assignment)), (2, 7), "t and tt now: {r:?}");
        let mut bad = join("b", &[]);
        bad.regex = Some("(".into());
        assert_eq!(validate(&bad, &s).unwrap_err().0, errors::INVALID_REGULAR_EXPRESSION);
    }

    #[test]
    fn bad_requests_are_refused_as_kafka_does() {
        let s = settings();
        let ok = join("a", &["t"]);
        assert!(validate(&ok, &s).is_ok());
        let mut x = ok.clone();
        x.owned = None;
        assert_eq!(validate(&x, &s).unwrap_err().0, errors::INVALID_REQUEST);
        let mut x = ok.clone();
        x.rebalance_timeout_ms = -1;
        assert_eq!(validate(&x, &s).unwrap_err().0, errors::INVALID_REQUEST);
        let mut x = ok.clone();
        x.member_id.clear();
        assert_eq!(validate(&x, &s).unwrap_err().0, errors::INVALID_REQUEST);
        let mut x = ok.clone();
        x.server_assignor = Some("sticky".into());
        assert_eq!(validate(&x, &s).unwrap_err().0, errors::UNSUPPORTED_ASSIGNOR);
        let mut x = beat("a", -2, &[]);
        assert_eq!(validate(&x, &s).unwrap_err().0, errors::INVALID_REQUEST);
        x.member_epoch = -3;
        assert_eq!(validate(&x, &s).unwrap_err().0, errors::INVALID_REQUEST);
    }

    #[test]
    fn assignors_cover_every_partition_once_and_balance() {
        let subs =
            vec![("a", BTreeSet::from([1u128, 2])), ("b", BTreeSet::from([1u128])), ("c", BTreeSet::from([1u128, 2]))];
        let parts = BTreeMap::from([(1u128, 7), (2u128, 3)]);
        for out in [uniform(&subs, &parts, &BTreeMap::new()), range(&subs, &parts)] {
            let mut seen = BTreeSet::new();
            for a in out.values() {
                for (t, ps) in a {
                    for p in ps {
                        assert!(seen.insert((*t, *p)), "{t}-{p} twice: {out:?}");
                    }
                }
            }
            assert_eq!(seen.len(), 10, "{out:?}");
        }
        let u = uniform(&subs, &parts, &BTreeMap::new());
        let sizes: Vec<usize> = u.values().map(|a| a.values().map(BTreeSet::len).sum()).collect();
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{u:?}");
        // Sticky: a fourth member takes from the others, nobody else swaps.
        let mut more = subs.clone();
        more.push(("d", BTreeSet::from([1u128, 2])));
        let u2 = uniform(&more, &parts, &u);
        for (m, a) in &u {
            for (t, ps) in a {
                for p in ps {
                    let now_owner = u2.iter().find(|(_, b)| b.get(t).is_some_and(|q| q.contains(p))).unwrap().0;
                    assert!(now_owner == m || now_owner == "d", "{t}-{p} moved from {m} to {now_owner}");
                }
            }
        }
    }
}
