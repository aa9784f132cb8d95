//! One Kafka API per file, each stating its supported version range at the top, each
//! `parse → apply → encode`. `dispatch` routes a request to its handler; `SUPPORTED` is
//! exactly what ApiVersions advertises.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_transactions;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod legacy;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod partition_reassignments;
pub mod produce;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod write_txn_markers;

use crate::log::TopicPartition;
use crate::protocol::{Request, Response};
use crate::shard::{Op, Shard, ShardOp};
use glommio::channels::oneshot::SharedSender;
use kafka_protocol::messages::ApiKey;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Every API this node answers, with its version range. Nothing else is advertised.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, produce::VERSIONS.0, produce::VERSIONS.1),
    (ApiKey::Fetch, fetch::VERSIONS.0, fetch::VERSIONS.1),
    (ApiKey::ListOffsets, list_offsets::VERSIONS.0, list_offsets::VERSIONS.1),
    (ApiKey::OffsetForLeaderEpoch, offset_for_leader_epoch::VERSIONS.0, offset_for_leader_epoch::VERSIONS.1),
    (ApiKey::Metadata, metadata::VERSIONS.0, metadata::VERSIONS.1),
    (ApiKey::ApiVersions, api_versions::VERSIONS.0, api_versions::VERSIONS.1),
    (ApiKey::CreateTopics, create_topics::VERSIONS.0, create_topics::VERSIONS.1),
    (ApiKey::DeleteTopics, delete_topics::VERSIONS.0, delete_topics::VERSIONS.1),
    (ApiKey::CreatePartitions, create_partitions::VERSIONS.0, create_partitions::VERSIONS.1),
    (ApiKey::DescribeCluster, describe_cluster::VERSIONS.0, describe_cluster::VERSIONS.1),
    (ApiKey::ElectLeaders, elect_leaders::VERSIONS.0, elect_leaders::VERSIONS.1),
    (
        ApiKey::AlterPartitionReassignments,
        partition_reassignments::ALTER_VERSIONS.0,
        partition_reassignments::ALTER_VERSIONS.1,
    ),
    (
        ApiKey::ListPartitionReassignments,
        partition_reassignments::LIST_VERSIONS.0,
        partition_reassignments::LIST_VERSIONS.1,
    ),
    (ApiKey::FindCoordinator, find_coordinator::VERSIONS.0, find_coordinator::VERSIONS.1),
    (ApiKey::JoinGroup, join_group::VERSIONS.0, join_group::VERSIONS.1),
    (ApiKey::SyncGroup, sync_group::VERSIONS.0, sync_group::VERSIONS.1),
    (ApiKey::Heartbeat, heartbeat::VERSIONS.0, heartbeat::VERSIONS.1),
    (ApiKey::LeaveGroup, leave_group::VERSIONS.0, leave_group::VERSIONS.1),
    (ApiKey::OffsetCommit, offset_commit::VERSIONS.0, offset_commit::VERSIONS.1),
    (ApiKey::OffsetFetch, offset_fetch::VERSIONS.0, offset_fetch::VERSIONS.1),
    (ApiKey::DescribeGroups, describe_groups::VERSIONS.0, describe_groups::VERSIONS.1),
    (ApiKey::ListGroups, list_groups::VERSIONS.0, list_groups::VERSIONS.1),
    (ApiKey::DeleteGroups, delete_groups::VERSIONS.0, delete_groups::VERSIONS.1),
    (ApiKey::OffsetDelete, offset_delete::VERSIONS.0, offset_delete::VERSIONS.1),
    (ApiKey::ConsumerGroupHeartbeat, consumer_group_heartbeat::VERSIONS.0, consumer_group_heartbeat::VERSIONS.1),
    (ApiKey::ConsumerGroupDescribe, consumer_group_describe::VERSIONS.0, consumer_group_describe::VERSIONS.1),
    (ApiKey::InitProducerId, init_producer_id::VERSIONS.0, init_producer_id::VERSIONS.1),
    (ApiKey::AddPartitionsToTxn, add_partitions_to_txn::VERSIONS.0, add_partitions_to_txn::VERSIONS.1),
    (ApiKey::AddOffsetsToTxn, add_offsets_to_txn::VERSIONS.0, add_offsets_to_txn::VERSIONS.1),
    (ApiKey::EndTxn, end_txn::VERSIONS.0, end_txn::VERSIONS.1),
    (ApiKey::TxnOffsetCommit, txn_offset_commit::VERSIONS.0, txn_offset_commit::VERSIONS.1),
    (ApiKey::WriteTxnMarkers, write_txn_markers::VERSIONS.0, write_txn_markers::VERSIONS.1),
    (ApiKey::DescribeTransactions, describe_transactions::VERSIONS.0, describe_transactions::VERSIONS.1),
    (ApiKey::ListTransactions, list_transactions::VERSIONS.0, list_transactions::VERSIONS.1),
    (ApiKey::DeleteRecords, delete_records::VERSIONS.0, delete_records::VERSIONS.1),
    (ApiKey::DescribeLogDirs, describe_log_dirs::VERSIONS.0, describe_log_dirs::VERSIONS.1),
    (ApiKey::DescribeProducers, describe_producers::VERSIONS.0, describe_producers::VERSIONS.1),
    (ApiKey::DescribeConfigs, describe_configs::VERSIONS.0, describe_configs::VERSIONS.1),
    (ApiKey::AlterConfigs, alter_configs::VERSIONS.0, alter_configs::VERSIONS.1),
    (ApiKey::IncrementalAlterConfigs, incremental_alter_configs::VERSIONS.0, incremental_alter_configs::VERSIONS.1),
];

/// Why a connection must be closed instead of answered.
#[derive(Debug)]
pub struct Close(pub String);

/// The decoded body or a reason to close: Kafka closes a connection whose request it
/// cannot parse.
pub fn decode<T: kafka_protocol::protocol::Decodable>(req: &Request) -> Result<T, Close> {
    // The crate trusts array counts from the wire (Vec::with_capacity(n)); walk the body
    // against the message schema first so a hostile count is refused before it allocates.
    crate::protocol_guard::check_body(req.api_key as i16, req.api_version, &req.body).map_err(Close)?;
    let mut body = req.body.clone();
    T::decode(&mut body, req.api_version)
        .map_err(|e| Close(format!("malformed {:?} v{} request: {e}", req.api_key, req.api_version)))
}

/// The body of a request whose version has the layout of `layout_version`, decoded as
/// that version (see `legacy`) after the guard walked it as its own version.
pub fn decode_as<T: kafka_protocol::protocol::Decodable>(req: &Request, layout_version: i16) -> Result<T, Close> {
    crate::protocol_guard::check_body(req.api_key as i16, req.api_version, &req.body).map_err(Close)?;
    let mut body = req.body.clone();
    T::decode(&mut body, layout_version)
        .map_err(|e| Close(format!("malformed {:?} v{} request: {e}", req.api_key, req.api_version)))
}

/// Answers one request. `Ok(None)`: no response is due (acks=0 produce).
pub async fn dispatch(shard: &Rc<Shard>, req: Request) -> Result<Option<Response>, Close> {
    if req.api_key != ApiKey::ApiVersions {
        let supported = SUPPORTED.iter().find(|(k, _, _)| *k == req.api_key);
        match supported {
            Some((_, min, max)) if (*min..=*max).contains(&req.api_version) => {}
            _ => return Err(Close(format!("unsupported {:?} version {}", req.api_key, req.api_version))),
        }
    }
    match req.api_key {
        ApiKey::ApiVersions => Ok(Some(api_versions::handle(&req))),
        ApiKey::Metadata => metadata::handle(shard, &req).await.map(Some),
        ApiKey::CreateTopics => create_topics::handle(shard, &req).await.map(Some),
        ApiKey::Produce => produce::handle(shard, &req).await,
        ApiKey::Fetch => fetch::handle(shard, &req).await.map(Some),
        ApiKey::ListOffsets => list_offsets::handle(shard, &req).await.map(Some),
        ApiKey::DeleteTopics => delete_topics::handle(shard, &req).await.map(Some),
        ApiKey::DeleteRecords => delete_records::handle(shard, &req).await.map(Some),
        ApiKey::DescribeLogDirs => describe_log_dirs::handle(shard, &req).await.map(Some),
        ApiKey::DescribeProducers => describe_producers::handle(shard, &req).await.map(Some),
        ApiKey::CreatePartitions => create_partitions::handle(shard, &req).await.map(Some),
        ApiKey::DescribeCluster => describe_cluster::handle(shard, &req).await.map(Some),
        ApiKey::FindCoordinator => find_coordinator::handle(shard, &req).await.map(Some),
        ApiKey::JoinGroup => join_group::handle(shard, &req).await.map(Some),
        ApiKey::SyncGroup => sync_group::handle(shard, &req).await.map(Some),
        ApiKey::Heartbeat => heartbeat::handle(shard, &req).await.map(Some),
        ApiKey::LeaveGroup => leave_group::handle(shard, &req).await.map(Some),
        ApiKey::OffsetCommit => offset_commit::handle(shard, &req).await.map(Some),
        ApiKey::OffsetFetch => offset_fetch::handle(shard, &req).await.map(Some),
        ApiKey::DescribeGroups => describe_groups::handle(shard, &req).await.map(Some),
        ApiKey::ListGroups => list_groups::handle(shard, &req).await.map(Some),
        ApiKey::DeleteGroups => delete_groups::handle(shard, &req).await.map(Some),
        ApiKey::OffsetDelete => offset_delete::handle(shard, &req).await.map(Some),
        ApiKey::ConsumerGroupHeartbeat => consumer_group_heartbeat::handle(shard, &req).await.map(Some),
        ApiKey::ConsumerGroupDescribe => consumer_group_describe::handle(shard, &req).await.map(Some),
        ApiKey::InitProducerId => init_producer_id::handle(shard, &req).await.map(Some),
        ApiKey::AddPartitionsToTxn => add_partitions_to_txn::handle(shard, &req).await.map(Some),
        ApiKey::AddOffsetsToTxn => add_offsets_to_txn::handle(shard, &req).await.map(Some),
        ApiKey::EndTxn => end_txn::handle(shard, &req).await.map(Some),
        ApiKey::TxnOffsetCommit => txn_offset_commit::handle(shard, &req).await.map(Some),
        ApiKey::WriteTxnMarkers => write_txn_markers::handle(shard, &req).await.map(Some),
        ApiKey::ElectLeaders => elect_leaders::handle(shard, &req).await.map(Some),
        ApiKey::AlterPartitionReassignments => partition_reassignments::alter(shard, &req).await.map(Some),
        ApiKey::ListPartitionReassignments => partition_reassignments::list(shard, &req).await.map(Some),
        ApiKey::OffsetForLeaderEpoch => offset_for_leader_epoch::handle(shard, &req).await.map(Some),
        ApiKey::DescribeTransactions => describe_transactions::handle(shard, &req).await.map(Some),
        ApiKey::ListTransactions => list_transactions::handle(shard, &req).await.map(Some),
        ApiKey::DescribeConfigs => describe_configs::handle(shard, &req).await.map(Some),
        ApiKey::AlterConfigs => alter_configs::handle(shard, &req).await.map(Some),
        ApiKey::IncrementalAlterConfigs => incremental_alter_configs::handle(shard, &req).await.map(Some),
        other => Err(Close(format!("API {other:?} is not supported"))),
    }
}

/// Kafka's UUID type from our topic id.
pub fn uuid(id: crate::topics::TopicId) -> uuid::Uuid {
    uuid::Uuid::from_u128(id.0)
}

/// A topic name from a string.
pub fn topic_name(name: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(kafka_protocol::protocol::StrBytes::from_string(name.to_string()))
}

/// A protocol string as an owned `String`.
pub fn string(s: &kafka_protocol::protocol::StrBytes) -> String {
    s.to_string()
}

/// A nullable protocol string as an owned `Option<String>`.
pub fn opt_string(s: &Option<kafka_protocol::protocol::StrBytes>) -> Option<String> {
    s.as_ref().map(|s| s.to_string())
}

/// A protocol string from a `&str`.
pub fn str_bytes(s: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.to_string())
}

/// Partition-level work spread over the owning shards, the way produce, ListOffsets,
/// DeleteRecords and DescribeProducers go: each (topic index, partition index, partition,
/// argument) is grouped with the others of its owner, one operation per owner carries them,
/// and each reply lands in `results[topic index][partition index]`.
pub struct PerOwner<A> {
    entries: BTreeMap<usize, Vec<(usize, usize, TopicPartition, A)>>,
}

impl<A> PerOwner<A> {
    pub fn new() -> Self {
        PerOwner { entries: BTreeMap::new() }
    }

    pub fn add(&mut self, shard: &Shard, slot: (usize, usize), tp: TopicPartition, arg: A) {
        self.entries.entry(shard.owner(&tp)).or_default().push((slot.0, slot.1, tp, arg));
    }

    /// Sends `make(partitions with their arguments)` to each owner and files the replies;
    /// the slots of an owner that could not be reached get `unreachable`.
    pub async fn run<R: Clone, T: ShardOp<Reply = Vec<R>>>(
        self,
        shard: &Rc<Shard>,
        make: impl Fn(Vec<(TopicPartition, A)>) -> T,
        unreachable: R,
        results: &mut [Vec<R>],
    ) where
        Op: From<(T, SharedSender<Vec<R>>)>,
    {
        for (owner, entries) in self.entries {
            let slots: Vec<(usize, usize)> = entries.iter().map(|(t, p, _, _)| (*t, *p)).collect();
            let op = make(entries.into_iter().map(|(_, _, tp, arg)| (tp, arg)).collect());
            let found = shard.invoke(owner, op).await.unwrap_or_else(|_| vec![unreachable.clone(); slots.len()]);
            for ((t, p), f) in slots.into_iter().zip(found) {
                results[t][p] = f;
            }
        }
    }
}

impl<A> Default for PerOwner<A> {
    fn default() -> Self {
        Self::new()
    }
}

/// "Authorized operations" in Metadata, DescribeCluster and DescribeGroups: this node has no
/// authorizer, and Kafka without one answers every operation the resource type supports
/// (`AclEntry.supportedOperations`) as a bit field of `AclOperation` codes; when the request
/// does not ask, the field holds `NOT_REQUESTED`.
pub mod authorized_operations {
    pub const NOT_REQUESTED: i32 = i32::MIN;
    const READ: u32 = 3;
    const WRITE: u32 = 4;
    const CREATE: u32 = 5;
    const DELETE: u32 = 6;
    const ALTER: u32 = 7;
    const DESCRIBE: u32 = 8;
    const CLUSTER_ACTION: u32 = 9;
    const DESCRIBE_CONFIGS: u32 = 10;
    const ALTER_CONFIGS: u32 = 11;
    const IDEMPOTENT_WRITE: u32 = 12;

    const fn bits(ops: &[u32]) -> i32 {
        let mut out = 0i32;
        let mut i = 0;
        while i < ops.len() {
            out |= 1 << ops[i];
            i += 1;
        }
        out
    }

    pub const TOPIC: i32 = bits(&[READ, WRITE, CREATE, DESCRIBE, DELETE, ALTER, DESCRIBE_CONFIGS, ALTER_CONFIGS]);
    pub const GROUP: i32 = bits(&[READ, DESCRIBE, DELETE]);
    pub const CLUSTER: i32 =
        bits(&[CREATE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, ALTER, DESCRIBE]);

    /// `ops` when asked, else `NOT_REQUESTED`.
    pub fn when(asked: bool, ops: i32) -> i32 {
        if asked {
            ops
        } else {
            NOT_REQUESTED
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn the_bit_fields_are_kafkas() {
            // Kafka 3.x/4.x brokers without an authorizer answer these numbers.
            assert_eq!((super::TOPIC, super::GROUP, super::CLUSTER), (3576, 328, 8096));
        }
    }
}
