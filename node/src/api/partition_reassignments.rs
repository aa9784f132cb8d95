//! AlterPartitionReassignments (v0–1) and ListPartitionReassignments (v0), KIP-455: what
//! `kafka-reassign-partitions.sh` and the admin clients' `alterPartitionReassignments` /
//! `listPartitionReassignments` send. In a cluster the metadata quorum holds them
//! (`Quorum::alter_reassignments`): a partition's new replicas copy its leader, and once
//! the whole target is in sync the replicas left out are removed and, if the leader was
//! one of them, the first in-sync replica of the target leads. Each partition is answered
//! once its move is committed, not when it ends (as Kafka does); ListPartitionReassignments
//! shows the moves in progress. A node alone has one broker: a target of that broker alone
//! is already where the partition is, any other names a broker that does not exist.

use super::{decode, str_bytes, string, Close};
use crate::errors;
use crate::protocol::{encode_response, Request, Response};
use crate::quorum::{Ongoing, PartitionAnswer};
use crate::shard::{ops, Shard};
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use std::collections::BTreeMap;
use std::rc::Rc;

pub const ALTER_VERSIONS: (i16, i16) = (0, 1);
pub const LIST_VERSIONS: (i16, i16) = (0, 0);

pub async fn alter(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: AlterPartitionReassignmentsRequest = decode(req)?;
    // KIP-860: v0 has no such field, and may change the replication factor.
    let allow_rf_change = req.api_version == 0 || request.allow_replication_factor_change;
    let wanted: Vec<(String, Vec<(i32, Option<Vec<i32>>)>)> = request
        .topics
        .iter()
        .map(|t| {
            let parts = t
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect())));
            (string(&t.name.0), parts.collect())
        })
        .collect();
    let (error, message, results) = if shard.config().quorum_voters.is_some() {
        let op = ops::AlterReassignments { partitions: wanted, allow_rf_change };
        match shard.invoke(0, op).await.and_then(|r| r) {
            Ok(results) => (errors::NONE, None, results),
            Err(e) => (errors::UNKNOWN_SERVER_ERROR, Some(e), Vec::new()),
        }
    } else {
        (errors::NONE, None, alone(shard, wanted, allow_rf_change))
    };
    let mut topics: BTreeMap<String, Vec<ReassignablePartitionResponse>> = BTreeMap::new();
    for (topic, partition, code, message) in results {
        topics.entry(topic).or_default().push(
            ReassignablePartitionResponse::default()
                .with_partition_index(partition)
                .with_error_code(code)
                .with_error_message(message.map(|m| str_bytes(&m))),
        );
    }
    let responses = topics
        .into_iter()
        .map(|(name, partitions)| {
            ReassignableTopicResponse::default().with_name(TopicName(str_bytes(&name))).with_partitions(partitions)
        })
        .collect();
    let body = AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(allow_rf_change)
        .with_error_code(error)
        .with_error_message(message.map(|m| str_bytes(&m)))
        .with_responses(responses);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}

/// A node alone: its one broker holds every partition it has.
fn alone(
    shard: &Rc<Shard>,
    wanted: Vec<(String, Vec<(i32, Option<Vec<i32>>)>)>,
    allow_rf_change: bool,
) -> Vec<PartitionAnswer> {
    let me = shard.config().node_id;
    let mut out = Vec::new();
    for (topic, partitions) in wanted {
        let count = shard.topic_info(&topic).map_or(0, |t| t.partitions);
        for (p, target) in partitions {
            let (code, why) = match target {
                _ if p < 0 || p >= count => (errors::UNKNOWN_TOPIC_OR_PARTITION, format!("no partition {topic}-{p}")),
                None => (errors::NO_REASSIGNMENT_IN_PROGRESS, format!("{topic}-{p} is not being reassigned")),
                Some(t) if t.is_empty() => (errors::INVALID_REPLICA_ASSIGNMENT, "the replica list is empty".into()),
                Some(t) if !allow_rf_change && t.len() != 1 => {
                    let why = format!("the replication factor would change from 1 to {}", t.len());
                    (errors::INVALID_REPLICATION_FACTOR, why)
                }
                Some(t) => match t.iter().find(|&&b| b != me) {
                    Some(b) => (errors::INVALID_REPLICA_ASSIGNMENT, format!("broker {b} is not registered")),
                    None if t.len() > 1 => (errors::INVALID_REPLICA_ASSIGNMENT, format!("broker {me} is listed twice")),
                    None => (errors::NONE, String::new()),
                },
            };
            out.push((topic.clone(), p, code, (code != errors::NONE).then_some(why)));
        }
    }
    out
}

pub async fn list(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: ListPartitionReassignmentsRequest = decode(req)?;
    let wanted: Option<Vec<(String, Vec<i32>)>> = request
        .topics
        .as_ref()
        .map(|topics| topics.iter().map(|t| (string(&t.name.0), t.partition_indexes.clone())).collect());
    let (error, message, ongoing): (i16, Option<String>, Vec<Ongoing>) = if shard.config().quorum_voters.is_some() {
        match shard.invoke(0, ops::ListReassignments(wanted)).await.and_then(|r| r) {
            Ok(ongoing) => (errors::NONE, None, ongoing),
            Err(e) => (errors::UNKNOWN_SERVER_ERROR, Some(e), Vec::new()),
        }
    } else {
        (errors::NONE, None, Vec::new()) // a node alone never moves a partition
    };
    let brokers = |ids: Vec<i32>| ids.into_iter().map(BrokerId).collect::<Vec<_>>();
    let mut topics: BTreeMap<String, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
    for (topic, partition, replicas, adding, removing) in ongoing {
        topics.entry(topic).or_default().push(
            OngoingPartitionReassignment::default()
                .with_partition_index(partition)
                .with_replicas(brokers(replicas))
                .with_adding_replicas(brokers(adding))
                .with_removing_replicas(brokers(removing)),
        );
    }
    let topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            OngoingTopicReassignment::default().with_name(TopicName(str_bytes(&name))).with_partitions(partitions)
        })
        .collect();
    let body = ListPartitionReassignmentsResponse::default()
        .with_error_code(error)
        .with_error_message(message.map(|m| str_bytes(&m)))
        .with_topics(topics);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
