//! Produce, versions 3–13 (v13 names topics by id).
//!
//! acks=0: appended, no response. acks=1: answered once the batches are in the page cache.
//! acks=-1: answered after the group-commit fdatasync covers them (a single node is its
//! own ISR). Partitions are grouped by owning shard: local ones are appended inline, each
//! other shard gets one message carrying all of its partitions.

use super::{decode, topic_name, Close};
use crate::errors;
use crate::log::TopicPartition;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::{ops, ProduceOutcome, ProducePart, Shard};
use crate::topics::{validate_topic_name, TopicId};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (3, 13);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Option<Response>, Close> {
    let request: ProduceRequest = decode(req)?;
    let acks = request.acks;
    // (topic index, partition index) → outcome, filled below.
    let mut outcomes: Vec<Vec<Option<ProduceOutcome>>> =
        request.topic_data.iter().map(|t| vec![None; t.partition_data.len()]).collect();
    let bad_acks = !(-1..=1).contains(&acks);
    let mut per_shard: BTreeMap<usize, Vec<(usize, usize, ProducePart)>> = BTreeMap::new();
    let by_id = req.api_version >= 13;
    for (ti, topic) in request.topic_data.iter().enumerate() {
        let name = if by_id {
            let found = shard.registry.borrow().by_id(TopicId(topic.topic_id.as_u128())).map(|t| t.name.clone());
            found.unwrap_or_default()
        } else {
            topic.name.0.to_string()
        };
        crate::fault::panic_on_produce(&name);
        let known = match (bad_acks, by_id && name.is_empty()) {
            (true, _) => Err(errors::INVALID_REQUIRED_ACKS),
            (false, true) => Err(errors::UNKNOWN_TOPIC_ID),
            (false, false) => resolve_topic(shard, &name).await,
        };
        for (pi, part) in topic.partition_data.iter().enumerate() {
            let partitions = match known {
                Ok(n) => n,
                Err(code) => {
                    outcomes[ti][pi] = Some(failed(code));
                    continue;
                }
            };
            if part.index < 0 || part.index >= partitions {
                outcomes[ti][pi] = Some(failed(errors::UNKNOWN_TOPIC_OR_PARTITION));
                continue;
            }
            let Some(records) = part.records.clone().filter(|r| !r.is_empty()) else {
                outcomes[ti][pi] = Some(failed(errors::CORRUPT_MESSAGE)); // no records
                continue;
            };
            let tp = TopicPartition::new(name.clone(), part.index);
            per_shard.entry(shard.owner(&tp)).or_default().push((ti, pi, ProducePart { tp, records }));
        }
    }
    let timeout_ms = request.timeout_ms;
    for (owner, parts) in per_shard {
        let slots: Vec<(usize, usize)> = parts.iter().map(|(t, p, _)| (*t, *p)).collect();
        let parts: Vec<ProducePart> = parts.into_iter().map(|(_, _, part)| part).collect();
        let results = shard
            .invoke(owner, ops::Produce { parts, acks, timeout_ms })
            .await
            .unwrap_or_else(|_| vec![failed(errors::KAFKA_STORAGE_ERROR); slots.len()]);
        for ((t, p), o) in slots.into_iter().zip(results) {
            outcomes[t][p] = Some(o);
        }
    }
    if acks == 0 {
        return Ok(None);
    }
    let responses = request
        .topic_data
        .iter()
        .zip(outcomes)
        .map(|(topic, outs)| {
            let partitions = topic
                .partition_data
                .iter()
                .zip(outs)
                .map(|(part, o)| {
                    let o = o.unwrap_or_else(|| failed(errors::UNKNOWN_TOPIC_OR_PARTITION));
                    let mut r = PartitionProduceResponse::default()
                        .with_index(part.index)
                        .with_error_code(o.error)
                        .with_base_offset(o.base_offset)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(o.log_start_offset);
                    if req.api_version >= 8 {
                        r = r.with_error_message(o.message.map(StrBytes::from_string));
                    }
                    r
                })
                .collect();
            let t = TopicProduceResponse::default().with_partition_responses(partitions);
            if by_id {
                t.with_topic_id(topic.topic_id)
            } else {
                t.with_name(topic_name(&topic.name.0))
            }
        })
        .collect();
    let body = ProduceResponse::default().with_responses(responses);
    Ok(Some(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body)))
}

fn failed(error: i16) -> ProduceOutcome {
    ProduceOutcome { error, base_offset: -1, log_start_offset: -1, message: None }
}

/// The topic's partition count, creating the topic if allowed.
async fn resolve_topic(shard: &Rc<Shard>, name: &str) -> Result<i32, i16> {
    if validate_topic_name(name).is_err() {
        return Err(errors::INVALID_TOPIC_EXCEPTION);
    }
    if let Some(info) = shard.registry.borrow().get(name) {
        return Ok(info.partitions);
    }
    if !shard.config().auto_create_topics {
        return Err(errors::UNKNOWN_TOPIC_OR_PARTITION);
    }
    match shard
        .controller(ops::CreateTopic {
            name: name.to_string(),
            partitions: shard.config().num_partitions,
            replication_factor: -1,
            configs: Default::default(),
        })
        .await
    {
        Ok(info) => Ok(info.partitions),
        Err((errors::TOPIC_ALREADY_EXISTS, _)) => {
            shard.registry.borrow().get(name).map(|i| i.partitions).ok_or(errors::UNKNOWN_TOPIC_OR_PARTITION)
        }
        Err((code, _)) => Err(code),
    }
}
