//! Consumer-group membership for the harness's consumers: Kafka's classic group protocol
//! (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, OffsetCommit, OffsetFetch, LeaveGroup)
//! with protocol type "consumer" and the range assignor, encoded as Kafka's own clients do
//! (ConsumerProtocolSubscription / ConsumerProtocolAssignment, version 0), so the harness
//! forms groups with any Kafka-compatible broker and its members can share a group with
//! real clients.
//!
//! Rebalances are eager, as in Kafka's classic consumer: when a heartbeat answers
//! REBALANCE_IN_PROGRESS the member commits its positions, gives up its partitions, and joins
//! again; the next owner of a partition starts at the committed offset. So records are
//! consumed exactly once across rebalances as long as commits succeed (a member that was
//! already expelled cannot commit: what it read since its last commit is read again by the
//! next owner, which is Kafka's at-least-once).
//!
//! Request versions (all non-flexible, in every broker since Kafka 2.3 and still in 4.x):
//! FindCoordinator v2, JoinGroup v5, SyncGroup v3, Heartbeat v3, OffsetCommit v7,
//! OffsetFetch v5, LeaveGroup v3.

use crate::client::Conn;
use crate::workload::topic_name;
use anyhow::{bail, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, FindCoordinatorRequest, FindCoordinatorResponse,
    GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::time::{Duration, Instant};

const FIND_COORDINATOR_VERSION: i16 = 2;
const JOIN_GROUP_VERSION: i16 = 5;
const SYNC_GROUP_VERSION: i16 = 3;
const HEARTBEAT_VERSION: i16 = 3;
const OFFSET_COMMIT_VERSION: i16 = 7;
const OFFSET_FETCH_VERSION: i16 = 5;
const LEAVE_GROUP_VERSION: i16 = 3;

/// Kafka's consumer defaults (session.timeout.ms 45 s since 3.0; we use 10 s so a crashed
/// harness does not hold partitions long), heartbeat every 1 s, rebalance timeout 30 s.
const SESSION_TIMEOUT_MS: i32 = 10_000;
const REBALANCE_TIMEOUT_MS: i32 = 30_000;
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// Positions are committed this often (Kafka's auto.commit.interval.ms is 5 s; shorter here
/// so a run's lag in the broker's view stays small), at every rebalance and at the end.
pub const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// The most join attempts one rejoin makes before it gives up.
const JOIN_ATTEMPTS: usize = 20;

const NONE: i16 = 0;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;

/// The assignor the harness offers (the only one: every member runs the same code).
const ASSIGNOR: &str = "range";

/// One member of a consumer group subscribed to one topic.
pub struct Member {
    conn: Conn,
    group: String,
    topic: String,
    /// The topic's partition count (the leader assigns 0..partitions).
    partitions: i32,
    member_id: String,
    pub generation: i32,
    /// Partitions assigned in the current generation, ascending.
    pub assigned: Vec<i32>,
    next_heartbeat: Instant,
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A consumer-protocol struct as the group protocol carries it: version (i16), then the body.
fn versioned<T: Encodable>(version: i16, body: &T) -> Result<Bytes> {
    let mut buf = BytesMut::with_capacity(2 + body.compute_size(version)?);
    buf.put_i16(version);
    body.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

/// Decodes a versioned consumer-protocol struct (an empty assignment: nothing assigned).
fn unversioned<T: Decodable + Default>(mut bytes: Bytes) -> Result<T> {
    if bytes.len() < 2 {
        return Ok(T::default());
    }
    let version = bytes.get_i16();
    // A newer version than we know decodes as the newest we know: later versions only add
    // fields at the end (Kafka's ConsumerProtocol does the same).
    T::decode(&mut bytes, version.clamp(0, 3))
}

/// Kafka's RangeAssignor for one topic: members sorted by id, each gets a contiguous range,
/// the first `partitions % members` one partition more.
pub fn range_assign(members: &[String], partitions: i32) -> Vec<(String, Vec<i32>)> {
    let mut sorted: Vec<&String> = members.iter().collect();
    sorted.sort();
    let n = sorted.len().max(1) as i32;
    let (per, extra) = (partitions / n, partitions % n);
    let mut next = 0;
    sorted
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let take = per + i32::from((i as i32) < extra);
            let range = (next..next + take).collect();
            next += take;
            (m.clone(), range)
        })
        .collect()
}

impl Member {
    /// Finds the group's coordinator and joins; returns once this member has an assignment.
    pub fn join(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Result<Member> {
        let coordinator = find_coordinator(bootstrap, group)?;
        let mut m = Member {
            conn: Conn::connect(&coordinator).with_context(|| format!("group coordinator {coordinator}"))?,
            group: group.to_string(),
            topic: topic.to_string(),
            partitions,
            member_id: String::new(),
            generation: -1,
            assigned: Vec::new(),
            next_heartbeat: Instant::now(),
        };
        m.rejoin()?;
        Ok(m)
    }

    fn group_id(&self) -> GroupId {
        GroupId(str_bytes(&self.group))
    }

    /// JoinGroup then SyncGroup until both succeed in one generation.
    pub fn rejoin(&mut self) -> Result<()> {
        self.assigned.clear();
        let subscription = ConsumerProtocolSubscription::default().with_topics(vec![str_bytes(&self.topic)]);
        let metadata = versioned(0, &subscription)?;
        let mut last = NONE;
        for _ in 0..JOIN_ATTEMPTS {
            let req = JoinGroupRequest::default()
                .with_group_id(self.group_id())
                .with_session_timeout_ms(SESSION_TIMEOUT_MS)
                .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
                .with_member_id(str_bytes(&self.member_id))
                .with_protocol_type(str_bytes("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(str_bytes(ASSIGNOR))
                    .with_metadata(metadata.clone())]);
            let resp: JoinGroupResponse = self.conn.call(ApiKey::JoinGroup, JOIN_GROUP_VERSION, &req)?;
            last = resp.error_code;
            match resp.error_code {
                NONE => {}
                MEMBER_ID_REQUIRED => {
                    self.member_id = resp.member_id.to_string();
                    continue;
                }
                UNKNOWN_MEMBER_ID => {
                    self.member_id.clear();
                    continue;
                }
                REBALANCE_IN_PROGRESS | COORDINATOR_LOAD_IN_PROGRESS => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                e => bail!("JoinGroup of group {} failed with error {e}", self.group),
            }
            self.member_id = resp.member_id.to_string();
            self.generation = resp.generation_id;
            let assignments = if resp.leader == resp.member_id {
                let members: Vec<String> = resp.members.iter().map(|m| m.member_id.to_string()).collect();
                range_assign(&members, self.partitions)
                    .into_iter()
                    .map(|(member, parts)| {
                        let a = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
                            TopicPartition::default().with_topic(topic_name(&self.topic)).with_partitions(parts),
                        ]);
                        Ok(SyncGroupRequestAssignment::default()
                            .with_member_id(str_bytes(&member))
                            .with_assignment(versioned(0, &a)?))
                    })
                    .collect::<Result<Vec<_>>>()?
            } else {
                Vec::new()
            };
            let req = SyncGroupRequest::default()
                .with_group_id(self.group_id())
                .with_generation_id(self.generation)
                .with_member_id(str_bytes(&self.member_id))
                .with_assignments(assignments);
            let resp: SyncGroupResponse = self.conn.call(ApiKey::SyncGroup, SYNC_GROUP_VERSION, &req)?;
            last = resp.error_code;
            match resp.error_code {
                NONE => {}
                REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => continue,
                UNKNOWN_MEMBER_ID => {
                    self.member_id.clear();
                    continue;
                }
                e => bail!("SyncGroup of group {} failed with error {e}", self.group),
            }
            let assignment: ConsumerProtocolAssignment = unversioned(resp.assignment)?;
            let mut mine: Vec<i32> = assignment
                .assigned_partitions
                .iter()
                .filter(|t| t.topic.0.as_str() == self.topic)
                .flat_map(|t| t.partitions.iter().copied())
                .filter(|p| (0..self.partitions).contains(p))
                .collect();
            mine.sort_unstable();
            mine.dedup();
            self.assigned = mine;
            self.next_heartbeat = Instant::now() + HEARTBEAT_INTERVAL;
            return Ok(());
        }
        bail!("group {}: no assignment after {JOIN_ATTEMPTS} join attempts (last error {last})", self.group)
    }

    /// Heartbeats if one is due; true when the group is rebalancing (or has dropped this
    /// member) and the member must commit and rejoin.
    pub fn heartbeat_due(&mut self, now: Instant) -> Result<bool> {
        if now < self.next_heartbeat {
            return Ok(false);
        }
        self.next_heartbeat = now + HEARTBEAT_INTERVAL;
        let req = HeartbeatRequest::default()
            .with_group_id(self.group_id())
            .with_generation_id(self.generation)
            .with_member_id(str_bytes(&self.member_id));
        let resp: HeartbeatResponse = self.conn.call(ApiKey::Heartbeat, HEARTBEAT_VERSION, &req)?;
        match resp.error_code {
            NONE => Ok(false),
            REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID => Ok(true),
            e => bail!("Heartbeat in group {} failed with error {e}", self.group),
        }
    }

    /// Commits `positions` (partition, next offset to read) in this member's generation.
    /// Ok(false): the group is rebalancing or has moved on; the member must rejoin.
    pub fn commit(&mut self, positions: &[(i32, i64)]) -> Result<bool> {
        if positions.is_empty() {
            return Ok(true);
        }
        let parts = positions
            .iter()
            .map(|&(p, o)| OffsetCommitRequestPartition::default().with_partition_index(p).with_committed_offset(o))
            .collect();
        let req = OffsetCommitRequest::default()
            .with_group_id(self.group_id())
            .with_generation_id_or_member_epoch(self.generation)
            .with_member_id(str_bytes(&self.member_id))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(topic_name(&self.topic))
                .with_partitions(parts)]);
        let resp: OffsetCommitResponse = self.conn.call(ApiKey::OffsetCommit, OFFSET_COMMIT_VERSION, &req)?;
        for p in resp.topics.iter().flat_map(|t| t.partitions.iter()) {
            match p.error_code {
                NONE => {}
                REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID => return Ok(false),
                e => bail!("OffsetCommit of {}-{} failed with error {e}", self.topic, p.partition_index),
            }
        }
        Ok(true)
    }

    /// Committed offsets of `partitions` (None: nothing committed).
    pub fn committed(&mut self, partitions: &[i32]) -> Result<Vec<Option<i64>>> {
        committed_offsets(&mut self.conn, &self.group, &self.topic, partitions)
    }

    /// Leaves the group (its partitions go to the others at once, not after the session).
    pub fn leave(mut self) -> Result<()> {
        let req = LeaveGroupRequest::default()
            .with_group_id(self.group_id())
            .with_members(vec![MemberIdentity::default().with_member_id(str_bytes(&self.member_id))]);
        let resp: LeaveGroupResponse = self.conn.call(ApiKey::LeaveGroup, LEAVE_GROUP_VERSION, &req)?;
        match resp.error_code {
            NONE | UNKNOWN_MEMBER_ID => Ok(()),
            e => bail!("LeaveGroup of group {} failed with error {e}", self.group),
        }
    }
}

/// The coordinator's address for `group`, asked of `bootstrap`.
pub fn find_coordinator(bootstrap: &str, group: &str) -> Result<String> {
    let mut conn = Conn::connect(bootstrap)?;
    for _ in 0..50 {
        let req = FindCoordinatorRequest::default().with_key(str_bytes(group)).with_key_type(0);
        let resp: FindCoordinatorResponse = conn.call(ApiKey::FindCoordinator, FIND_COORDINATOR_VERSION, &req)?;
        match resp.error_code {
            NONE => return Ok(format!("{}:{}", resp.host, resp.port)),
            COORDINATOR_NOT_AVAILABLE | COORDINATOR_LOAD_IN_PROGRESS | NOT_COORDINATOR => {
                std::thread::sleep(Duration::from_millis(100))
            }
            e => bail!("FindCoordinator for group {group} failed with error {e}"),
        }
    }
    bail!("no coordinator for group {group} after 5 s")
}

/// OffsetFetch of one topic's partitions for a group.
pub fn committed_offsets(conn: &mut Conn, group: &str, topic: &str, partitions: &[i32]) -> Result<Vec<Option<i64>>> {
    if partitions.is_empty() {
        return Ok(Vec::new());
    }
    let req = OffsetFetchRequest::default().with_group_id(GroupId(str_bytes(group))).with_topics(Some(vec![
        OffsetFetchRequestTopic::default().with_name(topic_name(topic)).with_partition_indexes(partitions.to_vec()),
    ]));
    let resp: OffsetFetchResponse = conn.call(ApiKey::OffsetFetch, OFFSET_FETCH_VERSION, &req)?;
    if resp.error_code != NONE {
        bail!("OffsetFetch of group {group} failed with error {}", resp.error_code);
    }
    let mut out = vec![None; partitions.len()];
    for p in resp.topics.iter().flat_map(|t| t.partitions.iter()) {
        if p.error_code != NONE {
            bail!("OffsetFetch of {topic}-{} failed with error {}", p.partition_index, p.error_code);
        }
        if let Some(i) = partitions.iter().position(|&q| q == p.partition_index) {
            out[i] = (p.committed_offset >= 0).then_some(p.committed_offset);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignor_matches_kafka() {
        let members: Vec<String> = ["c", "a", "b"].iter().map(|s| s.to_string()).collect();
        let got = range_assign(&members, 7);
        assert_eq!(
            got,
            vec![("a".to_string(), vec![0, 1, 2]), ("b".to_string(), vec![3, 4]), ("c".to_string(), vec![5, 6])]
        );
        let got = range_assign(&members, 2);
        assert_eq!(got[2], ("c".to_string(), vec![]));
    }

    #[test]
    fn consumer_protocol_bytes_are_kafkas() {
        // What Kafka's ConsumerProtocol writes for a v0 subscription to topic "t":
        // version 0, one topic "t", null user data.
        let s = ConsumerProtocolSubscription::default().with_topics(vec![str_bytes("t")]);
        let bytes = versioned(0, &s).unwrap();
        assert_eq!(&bytes[..], &[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]);
        let a = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![TopicPartition::default()
            .with_topic(topic_name("t"))
            .with_partitions(vec![1, 4])]);
        let back: ConsumerProtocolAssignment = unversioned(versioned(0, &a).unwrap()).unwrap();
        assert_eq!(back.assigned_partitions[0].partitions, vec![1, 4]);
        let empty: ConsumerProtocolAssignment = unversioned(Bytes::new()).unwrap();
        assert!(empty.assigned_partitions.is_empty());
    }
}
