//! ElectLeaders, versions 0–2 (KIP-460; what `kafka-leader-election.sh` and the admin
//! clients' `electLeaders` send): preferred-replica elections (type 0, and every v0
//! request), or unclean ones (type 1) for partitions with no live leader. In a cluster the
//! metadata quorum holds them (`Quorum::elect_leaders`) and each partition is answered once
//! its change is committed: ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE,
//! ELIGIBLE_LEADERS_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION where nothing was done. A
//! node alone leads every partition it has: nothing to elect. A null partition list means
//! every partition; those needing no election are then left out, as Kafka does.

use super::{decode, str_bytes, string, Close};
use crate::errors;
use crate::protocol::{encode_response, Request, Response};
use crate::quorum::Election;
use crate::shard::{ops, Shard};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use std::collections::BTreeMap;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 2);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: ElectLeadersRequest = decode(req)?;
    let election = match (req.api_version, request.election_type) {
        (0, _) | (_, 0) => Some(Election::Preferred),
        (_, 1) => Some(Election::Unclean),
        _ => None,
    };
    let wanted: Option<Vec<(String, Vec<i32>)>> = request
        .topic_partitions
        .as_ref()
        .map(|topics| topics.iter().map(|t| (string(&t.topic.0), t.partitions.clone())).collect());
    let (error, results) = match election {
        None => (errors::INVALID_REQUEST, Vec::new()),
        Some(election) if shard.config().quorum_voters.is_some() => {
            match shard.invoke(0, ops::ElectLeaders { election, partitions: wanted }).await.and_then(|r| r) {
                Ok(results) => (errors::NONE, results),
                Err(e) => {
                    eprintln!("sluice: ElectLeaders: {e}");
                    (errors::UNKNOWN_SERVER_ERROR, Vec::new())
                }
            }
        }
        Some(_) => (errors::NONE, alone(shard, wanted)),
    };
    let mut topics: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for (topic, partition, code, message) in results {
        topics.entry(topic).or_default().push(
            PartitionResult::default()
                .with_partition_id(partition)
                .with_error_code(code)
                .with_error_message(message.map(|m| str_bytes(&m))),
        );
    }
    let results = topics
        .into_iter()
        .map(|(topic, partitions)| {
            ReplicaElectionResult::default().with_topic(TopicName(str_bytes(&topic))).with_partition_result(partitions)
        })
        .collect();
    let body = ElectLeadersResponse::default().with_error_code(error).with_replica_election_results(results);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}

/// A node alone: every partition it has is led by its only replica.
fn alone(shard: &Rc<Shard>, wanted: Option<Vec<(String, Vec<i32>)>>) -> Vec<(String, i32, i16, Option<String>)> {
    let Some(wanted) = wanted else { return Vec::new() };
    let mut out = Vec::new();
    for (topic, partitions) in wanted {
        let count = shard.topic_info(&topic).map_or(0, |t| t.partitions);
        for p in partitions {
            let (code, why) = if p >= 0 && p < count {
                (errors::ELECTION_NOT_NEEDED, "the only replica leads")
            } else {
                (errors::UNKNOWN_TOPIC_OR_PARTITION, "no such partition")
            };
            out.push((topic.clone(), p, code, Some(why.to_string())));
        }
    }
    out
}
