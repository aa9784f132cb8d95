//! The coordinator's side of consumer-protocol (KIP-848) groups: ConsumerGroupHeartbeat and
//! ConsumerGroupDescribe on the owning shard, their timers, their storage, and how they
//! sit beside classic groups under one group id namespace.
//!
//! Classic and consumer groups side by side, as Kafka 4 with
//! `group.consumer.migration.policy=disabled` (online migration of a group with members
//! is not implemented):
//! - a ConsumerGroupHeartbeat joining (epoch 0) a classic group that has no members turns
//!   it into a consumer group (its committed offsets stay); one for a classic group with
//!   members, or with any other epoch, is answered GROUP_ID_NOT_FOUND ("Group g is not a
//!   consumer group."), as Kafka does;
//! - a JoinGroup for a consumer group with members is answered INCONSISTENT_GROUP_PROTOCOL;
//!   for an empty one, the group becomes classic again;
//! - DescribeGroups of a consumer group answers as for an unknown group (GROUP_ID_NOT_FOUND,
//!   which versions 0–5 report as state Dead without an error, as Kafka does), and
//!   ConsumerGroupDescribe of a classic group GROUP_ID_NOT_FOUND ("is not a consumer
//!   group"); ListGroups shows both, each with its type.
//! - OffsetCommit / OffsetFetch carry the member epoch for consumer groups: a commit from
//!   an unknown member is UNKNOWN_MEMBER_ID; one with the member's epoch is taken; one with
//!   an older epoch is taken when every partition in it is still the member's and was given
//!   to it at or before that epoch (KIP-1251: a commit sent while a heartbeat bumped the
//!   epoch is not a zombie's), else, and for a newer epoch, STALE_MEMBER_EPOCH (Kafka's
//!   `ConsumerGroup.validateOffsetCommit`); OffsetFetch needs the member's epoch exactly
//!   (`validateOffsetFetch`); a commit with epoch -1 to a group without members is a
//!   standalone commit as before.

use super::consumer::{self, ConsumerGroup, HeartbeatArgs, HeartbeatResult, Settings, Topics};
use super::{store, write, Coordinator, Group, GroupView, MemberView, State};
use crate::config::BrokerConfig;
use crate::errors;
use crate::internal::Host;
use bytes::{BufMut, Bytes, BytesMut};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The consumer-group settings in force.
pub fn settings(c: &BrokerConfig) -> Settings {
    Settings {
        session_timeout: Duration::from_millis(c.group_consumer_session_timeout_ms.max(0) as u64),
        heartbeat_interval_ms: c.group_consumer_heartbeat_interval_ms,
        max_size: c.group_consumer_max_size,
        assignors: c.group_consumer_assignors.clone(),
    }
}

fn topics(host: &Rc<impl Host>) -> Topics {
    host.topics().into_iter().map(|(name, id, partitions)| (name, (id, partitions))).collect()
}

/// One member as ConsumerGroupDescribe reports it; assignments as (topic id, name, partitions).
#[derive(Debug, Clone, Default)]
pub struct DescribedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub topics: Vec<String>,
    pub regex: Option<String>,
    pub assigned: Vec<(u128, String, Vec<i32>)>,
    pub target: Vec<(u128, String, Vec<i32>)>,
}

/// One group as ConsumerGroupDescribe reports it.
#[derive(Debug, Clone, Default)]
pub struct Described {
    pub error: i16,
    pub message: Option<String>,
    pub group: String,
    pub state: String,
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<DescribedMember>,
}

fn named(a: &consumer::Assignment, names: &std::collections::BTreeMap<u128, String>) -> Vec<(u128, String, Vec<i32>)> {
    a.iter()
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(t, ps)| (*t, names.get(t).cloned().unwrap_or_default(), ps.iter().copied().collect()))
        .collect()
}

/// A consumer group as the classic views (admin endpoint, ListGroups) show it: the
/// assignment in the consumer protocol's encoding (version 0), so `report` reads it as it
/// reads a classic member's.
pub(super) fn consumer_view(g: &Group, c: &ConsumerGroup, shard: usize) -> GroupView {
    let names: std::collections::BTreeMap<u128, &str> =
        c.metadata.iter().map(|(n, (id, _))| (*id, n.as_str())).collect();
    let members = c
        .members
        .values()
        .map(|m| {
            let mut assignment = BytesMut::new();
            assignment.put_i16(0);
            assignment.put_i32(m.assigned.len() as i32);
            for (t, ps) in &m.assigned {
                let name = names.get(t).copied().unwrap_or("");
                assignment.put_i16(name.len() as i16);
                assignment.put_slice(name.as_bytes());
                assignment.put_i32(ps.len() as i32);
                for p in ps {
                    assignment.put_i32(*p);
                }
            }
            assignment.put_i32(-1);
            let mut metadata = BytesMut::new();
            metadata.put_i16(0);
            metadata.put_i32(m.topics.len() as i32);
            for t in &m.topics {
                metadata.put_i16(t.len() as i16);
                metadata.put_slice(t.as_bytes());
            }
            metadata.put_i32(-1);
            MemberView {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: metadata.freeze(),
                assignment: assignment.freeze(),
            }
        })
        .collect();
    GroupView {
        error: errors::NONE,
        group: g.id.clone(),
        group_type: "consumer".to_string(),
        state: c.state_name().to_string(),
        protocol_type: "consumer".to_string(),
        protocol: c.assignor.clone(),
        generation: c.epoch,
        leader: String::new(),
        shard,
        members,
        offsets: g.offsets.iter().map(|((t, p), v)| (t.clone(), *p, v.value.offset)).collect(),
    }
}

/// OffsetFetch v9+ with a member id and epoch (Kafka's `validateOffsetFetch`: the member's
/// epoch exactly): `None` when the request carries no member (an admin client, or an older
/// version).
pub(super) fn fetch_allowed(c: &ConsumerGroup, member: Option<(&str, i32)>) -> Result<(), i16> {
    match member {
        None => Ok(()),
        Some((id, epoch)) => c.validate_commit(id, epoch, []),
    }
}

/// The topics the group subscribes to (names and regex matches, as its last target saw
/// them): OffsetDelete refuses these.
pub(super) fn subscribed_topics(c: &ConsumerGroup) -> Vec<String> {
    if c.members.is_empty() {
        return Vec::new();
    }
    c.metadata.keys().cloned().collect()
}

impl Coordinator {
    pub async fn consumer_heartbeat(&self, host: &Rc<impl Host>, args: HeartbeatArgs) -> HeartbeatResult {
        let s = settings(&host.config());
        if let Err((code, message)) = consumer::validate(&args, &s) {
            return HeartbeatResult::error(code, message);
        }
        if let Err(code) = self.serving(host, &args.group) {
            return HeartbeatResult::error(code, "This node does not coordinate the group.");
        }
        let topics = topics(host);
        let now = Instant::now();
        let result = {
            let mut groups = self.groups.borrow_mut();
            if !groups.contains_key(&args.group) {
                if args.member_epoch != 0 {
                    return HeartbeatResult::error(
                        errors::GROUP_ID_NOT_FOUND,
                        format!("Group {} not found.", args.group),
                    );
                }
                groups.insert(args.group.clone(), Group::new(&args.group, crate::runtime::now_ms()));
            }
            let g = groups.get_mut(&args.group).expect("inserted above");
            if g.consumer.is_none() {
                let empty_classic = g.members.is_empty() && g.pending.is_empty() && g.state == State::Empty;
                if args.member_epoch != 0 || !empty_classic {
                    return HeartbeatResult::error(
                        errors::GROUP_ID_NOT_FOUND,
                        format!("Group {} is not a consumer group.", args.group),
                    );
                }
                g.consumer = Some(ConsumerGroup::default());
                g.protocol_type = None;
                g.protocol = None;
                g.leader = None;
            }
            let c = g.consumer.as_mut().expect("set above");
            let was_empty = c.members.is_empty();
            let r = c.heartbeat(&args, &topics, &s, now, || {
                uuid::Uuid::from_u128(crate::topics::TopicId::random().0).to_string()
            });
            if c.members.is_empty() != was_empty {
                g.state_since_ms = crate::runtime::now_ms();
            }
            r
        };
        if result.error != errors::NONE {
            return result;
        }
        if let Err(e) = self.persist_consumer(host, &args.group).await {
            eprintln!("sluice: group {:?}: storing the consumer group failed: {e}", args.group);
            return HeartbeatResult::error(errors::COORDINATOR_NOT_AVAILABLE, "Storing the group failed.");
        }
        result
    }

    /// Stores the consumer group as it is now, unless that is what was stored last.
    pub async fn persist_consumer(&self, host: &Rc<impl Host>, group_id: &str) -> Result<(), String> {
        let _gate = self.gate(host, group_id).await;
        let value = {
            let groups = self.groups.borrow();
            let Some(c) = groups.get(group_id).and_then(|g| g.consumer.as_ref()) else {
                return Ok(());
            };
            let bytes = c.encode();
            if c.stored.as_ref() == Some(&bytes) {
                return Ok(());
            }
            bytes
        };
        let key = store::encode_key(&store::Key::ConsumerGroup { group: group_id.to_string() });
        write(host, group_id, vec![(key, Some(value.clone()))]).await?;
        if let Some(c) = self.groups.borrow_mut().get_mut(group_id).and_then(|g| g.consumer.as_mut()) {
            c.stored = Some(value);
        }
        Ok(())
    }

    /// Session and revocation deadlines of this shard's consumer groups; returns the groups
    /// that changed (to be stored).
    pub fn consumer_tick(&self, host: &Rc<impl Host>) -> Vec<String> {
        let now = Instant::now();
        // Runs every `TICK`: the topic list (a copy) only when some deadline has passed.
        let due = |c: &ConsumerGroup| c.members.values().any(|m| now >= m.deadline());
        if !self.groups.borrow().values().any(|g| g.consumer.as_ref().is_some_and(due)) {
            return Vec::new();
        }
        let s = settings(&host.config());
        let topics = topics(host);
        let mut changed = Vec::new();
        for g in self.groups.borrow_mut().values_mut() {
            let Some(c) = g.consumer.as_mut().filter(|c| due(c)) else { continue };
            if c.expire(now, &topics, &s) {
                if c.members.is_empty() {
                    g.state_since_ms = crate::runtime::now_ms();
                }
                changed.push(g.id.clone());
            }
        }
        changed
    }

    /// ConsumerGroupDescribe, one group.
    pub fn consumer_describe(&self, host: &Rc<impl Host>, group_id: &str) -> Described {
        let not = |error, message: String| Described {
            error,
            message: Some(message),
            group: group_id.to_string(),
            ..Default::default()
        };
        if let Err(code) = self.serving(host, group_id) {
            return not(code, "This node does not coordinate the group.".into());
        }
        let groups = self.groups.borrow();
        let Some(g) = groups.get(group_id) else {
            return not(errors::GROUP_ID_NOT_FOUND, format!("Group {group_id} not found."));
        };
        let Some(c) = &g.consumer else {
            return not(errors::GROUP_ID_NOT_FOUND, format!("Group {group_id} is not a consumer group."));
        };
        let names: std::collections::BTreeMap<u128, String> =
            host.topics().into_iter().map(|(name, id, _)| (id, name)).collect();
        let empty = consumer::Assignment::new();
        Described {
            error: errors::NONE,
            message: None,
            group: group_id.to_string(),
            state: c.state_name().to_string(),
            epoch: c.epoch,
            assignment_epoch: c.assignment_epoch,
            assignor: c.assignor.clone(),
            members: c
                .members
                .values()
                .map(|m| DescribedMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    member_epoch: m.epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    topics: m.topics.clone(),
                    regex: m.regex.clone(),
                    assigned: named(&m.assigned, &names),
                    target: named(c.target.get(&m.id).unwrap_or(&empty), &names),
                })
                .collect(),
        }
    }

    /// A stored consumer group replayed from the offsets partition.
    pub(super) fn replay_consumer(
        &self,
        group: &str,
        value: Option<&[u8]>,
        tp: &crate::log::TopicPartition,
        cfg: &BrokerConfig,
    ) {
        let mut groups = self.groups.borrow_mut();
        match value {
            None => {
                if let Some(g) = groups.get_mut(group) {
                    g.consumer = None;
                }
            }
            Some(bytes) => match ConsumerGroup::decode(bytes, Instant::now(), &settings(cfg)) {
                Some(mut c) => {
                    c.stored = Some(Bytes::copy_from_slice(bytes));
                    let g =
                        groups.entry(group.to_string()).or_insert_with(|| Group::new(group, crate::runtime::now_ms()));
                    // The group is a consumer group from here on: the classic state is void.
                    g.members.clear();
                    g.statics.clear();
                    g.protocol_type = None;
                    g.protocol = None;
                    g.leader = None;
                    g.state = State::Empty;
                    g.consumer = Some(c);
                }
                None => eprintln!("sluice: {tp}: skipping an unreadable consumer group {group:?}"),
            },
        }
    }
}
