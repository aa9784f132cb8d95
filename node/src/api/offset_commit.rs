//! OffsetCommit, versions 0–9: checked against the group's generation and member (or
//! accepted as a standalone commit: generation -1 to a group with no members), written to
//! `__consumer_offsets` and fdatasynced before the answer.
//!
//! v0 and v1, which Kafka 4.0 dropped (KIP-896), are read by `legacy`. v1 commits to the
//! coordinator as in Kafka 3.9, with its per-partition commit timestamp (-1: now) as the
//! commit's time, from which a standalone commit's retention counts. v0 is a standalone
//! commit to the coordinator too: Kafka 3.9 wrote v0 commits to ZooKeeper instead (a store
//! only OffsetFetch v0 read) and, without ZooKeeper (KRaft), refused them with
//! UNSUPPORTED_VERSION; here v0 and later versions see the same offsets.

use super::{decode, legacy, opt_string, string, topic_name, Close};
use crate::errors;
use crate::group::{Commit, CommitPart, MemberRef};
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 9);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let v = req.api_version;
    let (request, commit_timestamps): (OffsetCommitRequest, Vec<i64>) =
        if v <= 1 { legacy::decode_offset_commit_v0_v1(req)? } else { (decode(req)?, Vec::new()) };
    let mut commit_timestamps = commit_timestamps.into_iter();
    let member = MemberRef {
        group: string(&request.group_id.0),
        generation: request.generation_id_or_member_epoch,
        member_id: string(&request.member_id),
        instance_id: if v >= 7 { opt_string(&request.group_instance_id) } else { None },
    };
    let parts: Vec<CommitPart> = request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
        .map(|(t, p)| CommitPart {
            topic: string(&t.name.0),
            partition: p.partition_index,
            offset: p.committed_offset,
            leader_epoch: if v >= 6 { p.committed_leader_epoch } else { -1 },
            metadata: opt_string(&p.committed_metadata),
            // Kafka's DEFAULT_TIMESTAMP (-1) means "now"; any other value is taken as given.
            commit_timestamp: commit_timestamps.next().filter(|&ts| ts != -1),
        })
        .collect();
    // v2–v4 carry a retention of their own; -1 means the broker's.
    let retention_ms = if v <= 4 { request.retention_time_ms } else { -1 };
    let group_id = member.group.clone();
    let n = parts.len();
    let codes = match shard.invoke(shard.group_coordinator(&group_id), Commit { member, retention_ms, parts }).await {
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
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or(errors::COORDINATOR_NOT_AVAILABLE))
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(topic_name(&t.name.0)).with_partitions(partitions)
        })
        .collect();
    let body = OffsetCommitResponse::default().with_topics(topics);
    let layout = if v <= 1 { legacy::OFFSET_COMMIT_V0_V1_ANSWER_LAYOUT } else { v };
    Ok(encode_response(req.api_key, layout, req.header.correlation_id, &body))
}
