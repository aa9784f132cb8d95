//! ListOffsets, versions 0–8: earliest (-2), latest (-1), max timestamp (-3, v7+), and by
//! timestamp (the first record at or after it). Grouped by owning shard like produce.
//! (v9+ add earliest-local/tiered specials this node has no use for.)
//!
//! v0, which Kafka 4.0 dropped (KIP-896) and 3.9 still served, answers a list of offsets
//! per partition, as Kafka 3.9 does (`partition::offsets_before`): for -1 the latest, for
//! -2 the earliest, for a time the base offsets of the segments last written at or before
//! it (by the `.log` file's mtime, as Kafka), up to MaxNumOffsets, newest first. Other
//! negative timestamps answer UNSUPPORTED_VERSION, as in Kafka.

use super::{decode, legacy, topic_name, Close, PerOwner};
use crate::errors;
use crate::log::TopicPartition;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::{ops, Shard};
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 8);

/// The replica id of a consumer (not a broker, not a debugging tool).
const CONSUMER_REPLICA_ID: i32 = -1;

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    if req.api_version == 0 {
        return handle_v0(shard, req).await;
    }
    let request: ListOffsetsRequest = decode(req)?;
    let mut results: Vec<Vec<(i16, i64, i64)>> =
        request.topics.iter().map(|t| vec![(errors::NONE, -1, -1); t.partitions.len()]).collect();
    let mut per_owner = PerOwner::new();
    // isolation_level=1 (v2+): "latest" is the last stable offset.
    let committed = request.isolation_level == 1;
    for (ti, topic) in request.topics.iter().enumerate() {
        let partitions = shard.registry.borrow().get(&topic.name.0).map_or(0, |i| i.partitions);
        for (pi, p) in topic.partitions.iter().enumerate() {
            if p.partition_index < 0 || p.partition_index >= partitions {
                results[ti][pi] = (errors::UNKNOWN_TOPIC_OR_PARTITION, -1, -1);
                continue;
            }
            let tp = TopicPartition::new(topic.name.0.to_string(), p.partition_index);
            per_owner.add(shard, (ti, pi), tp, p.timestamp);
        }
    }
    let make = |parts: Vec<(TopicPartition, i64)>| ops::ListOffsets {
        parts: parts.into_iter().map(|(tp, ts)| (tp, ts, committed)).collect(),
    };
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
                .map(|(p, (error, timestamp, offset))| {
                    let r = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error)
                        .with_timestamp(timestamp)
                        .with_offset(offset);
                    if req.api_version >= 4 {
                        r.with_leader_epoch(0)
                    } else {
                        r
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(topic_name(&topic.name.0)).with_partitions(partitions)
        })
        .collect();
    let body = ListOffsetsResponse::default().with_topics(topics);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}

/// ListOffsets v0: up to MaxNumOffsets offsets per partition, newest first.
async fn handle_v0(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request = legacy::decode_list_offsets_v0(req)?;
    let from_consumer = request.replica_id == CONSUMER_REPLICA_ID;
    let mut results: Vec<Vec<(i16, Vec<i64>)>> =
        request.topics.iter().map(|(_, parts)| vec![(errors::NONE, Vec::new()); parts.len()]).collect();
    let mut per_owner = PerOwner::new();
    for (ti, (name, parts)) in request.topics.iter().enumerate() {
        let partitions = shard.registry.borrow().get(name).map_or(0, |i| i.partitions);
        for (pi, p) in parts.iter().enumerate() {
            // Kafka checks the timestamp first: v0 knows only -1 and -2 of the sentinels.
            if p.timestamp < -2 {
                results[ti][pi].0 = errors::UNSUPPORTED_VERSION;
            } else if p.partition < 0 || p.partition >= partitions {
                results[ti][pi].0 = errors::UNKNOWN_TOPIC_OR_PARTITION;
            } else {
                let tp = TopicPartition::new(name.clone(), p.partition);
                per_owner.add(shard, (ti, pi), tp, (p.timestamp, p.max_num_offsets));
            }
        }
    }
    let make = |parts: Vec<(TopicPartition, (i64, i32))>| ops::OffsetsBefore {
        parts: parts.into_iter().map(|(tp, (ts, max))| (tp, ts, max, from_consumer)).collect(),
    };
    per_owner.run(shard, make, (errors::KAFKA_STORAGE_ERROR, Vec::new()), &mut results).await;
    let topics: Vec<(String, Vec<(i32, i16, Vec<i64>)>)> = request
        .topics
        .into_iter()
        .zip(results)
        .map(|((name, parts), found)| {
            let partitions =
                parts.iter().zip(found).map(|(p, (error, offsets))| (p.partition, error, offsets)).collect();
            (name, partitions)
        })
        .collect();
    Ok(legacy::encode_list_offsets_v0(req.header.correlation_id, &topics))
}
