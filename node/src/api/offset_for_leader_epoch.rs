//! OffsetForLeaderEpoch, versions 2–4 (KIP-101, KIP-320): where a leader epoch ends in the
//! leader's log — for the latest epoch, the log end; for an older one, the start of the
//! next epoch above it — so that a consumer whose leader changed can tell whether the log
//! it read was cut back (its position past that end: truncation) and a replica where to cut
//! its own. Answered by the partition's leader (NOT_LEADER_OR_FOLLOWER elsewhere), after
//! the current-leader-epoch check Fetch makes (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH).
//! An epoch before the log's first is answered (-1, -1) (UNDEFINED), as Kafka does.

use super::{decode, topic_name, Close, PerOwner};
use crate::errors;
use crate::log::TopicPartition;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::{ops, Shard};
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (2, 4);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: OffsetForLeaderEpochRequest = decode(req)?;
    let cluster = shard.config().quorum_voters.is_some();
    let mut results: Vec<Vec<(i16, i32, i64)>> =
        request.topics.iter().map(|t| vec![(errors::NONE, -1, -1); t.partitions.len()]).collect();
    let mut per_owner = PerOwner::new();
    for (ti, topic) in request.topics.iter().enumerate() {
        let info = shard.topic_info(&topic.topic.0);
        let partitions = info.as_ref().map_or(0, |i| i.partitions);
        for (pi, p) in topic.partitions.iter().enumerate() {
            if p.partition < 0 || p.partition >= partitions {
                results[ti][pi] = (errors::UNKNOWN_TOPIC_OR_PARTITION, -1, -1);
                continue;
            }
            if cluster {
                let fenced = super::fetch::leader_epoch_check(info.as_ref(), p.partition, p.current_leader_epoch);
                if fenced != errors::NONE {
                    results[ti][pi] = (fenced, -1, -1);
                    continue;
                }
            }
            let tp = TopicPartition::new(topic.topic.0.to_string(), p.partition);
            per_owner.add(shard, (ti, pi), tp, p.leader_epoch);
        }
    }
    let make = |parts: Vec<(TopicPartition, i32)>| ops::EpochEnds { parts };
    per_owner.run(shard, make, (errors::KAFKA_STORAGE_ERROR, -1, -1), &mut results).await;
    let topics = request
        .topics
        .iter()
        .zip(results)
        .map(|(topic, found)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(found)
                .map(|(p, (error, epoch, end))| {
                    EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_error_code(error)
                        .with_leader_epoch(epoch)
                        .with_end_offset(end)
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(topic_name(&topic.topic.0)).with_partitions(partitions)
        })
        .collect();
    let body = OffsetForLeaderEpochResponse::default().with_topics(topics);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
