//! TxnOffsetCommit, versions 0–3: offsets written inside a transaction (to the group's
//! coordinator), committed when the transaction commits; v3 carries the member's
//! generation, checked like OffsetCommit's.

use super::{decode, opt_string, string, topic_name, Close};
use crate::errors;
use crate::group::{CommitPart, MemberRef, TxnCommit};
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 3);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: TxnOffsetCommitRequest = decode(req)?;
    let v = req.api_version;
    let member = MemberRef {
        group: string(&request.group_id.0),
        generation: if v >= 3 { request.generation_id } else { -1 },
        member_id: if v >= 3 { string(&request.member_id) } else { String::new() },
        instance_id: if v >= 3 { opt_string(&request.group_instance_id) } else { None },
    };
    let parts: Vec<CommitPart> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| CommitPart {
                topic: string(&t.name.0),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if v >= 2 { p.committed_leader_epoch } else { -1 },
                metadata: opt_string(&p.committed_metadata),
                commit_timestamp: None,
            })
        })
        .collect();
    let n = parts.len();
    let group_id = member.group.clone();
    let producer = (request.producer_id.0, request.producer_epoch);
    let codes = match shard.invoke(shard.group_coordinator(&group_id), TxnCommit { member, producer, parts }).await {
        Ok(codes) if codes.len() == n => codes,
        _ => vec![errors::COORDINATOR_NOT_AVAILABLE; n],
    };
    let mut codes = codes.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or(errors::COORDINATOR_NOT_AVAILABLE))
                })
                .collect();
            TxnOffsetCommitResponseTopic::default().with_name(topic_name(&t.name.0)).with_partitions(partitions)
        })
        .collect();
    let body = TxnOffsetCommitResponse::default().with_topics(topics);
    Ok(encode_response(req.api_key, v, req.header.correlation_id, &body))
}
