//! DeleteRecords, versions 0–2: moves each partition's log start (low watermark) up to the
//! given offset (-1: the high watermark) and deletes the segments wholly below it; consumers
//! reading from the beginning then start there. The new log starts are checkpointed
//! (`log-start-offset-checkpoint`) before the answer, so a crash cannot bring deleted records
//! back. One message per owning shard, like produce.

use super::{decode, string, topic_name, Close, PerOwner};
use crate::errors;
use crate::log::TopicPartition;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::{ops, Shard};
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 2);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: DeleteRecordsRequest = decode(req)?;
    let mut results: Vec<Vec<(i16, i64)>> =
        request.topics.iter().map(|t| vec![(errors::NONE, -1); t.partitions.len()]).collect();
    let mut per_owner = PerOwner::new();
    for (ti, topic) in request.topics.iter().enumerate() {
        let name = string(&topic.name.0);
        let partitions = shard.registry.borrow().get(&name).map_or(0, |t| t.partitions);
        for (pi, p) in topic.partitions.iter().enumerate() {
            if p.partition_index < 0 || p.partition_index >= partitions {
                results[ti][pi] = (errors::UNKNOWN_TOPIC_OR_PARTITION, -1);
                continue;
            }
            per_owner.add(shard, (ti, pi), TopicPartition::new(name.clone(), p.partition_index), p.offset);
        }
    }
    let make = |parts| ops::DeleteRecords { parts };
    per_owner.run(shard, make, (errors::KAFKA_STORAGE_ERROR, -1), &mut results).await;
    // Every slot still NONE had its log start moved (the others were refused above or there).
    let moved: Vec<(usize, usize)> = (0..results.len())
        .flat_map(|t| (0..results[t].len()).map(move |p| (t, p)))
        .filter(|&(t, p)| results[t][p].0 == errors::NONE)
        .collect();
    if !moved.is_empty() {
        if let Err(e) = shard.invoke(0, ops::CheckpointLogStarts).await.and_then(|r| r) {
            eprintln!("sluice: DeleteRecords: writing the log start checkpoint failed: {e}");
            for (ti, pi) in moved {
                results[ti][pi] = (errors::KAFKA_STORAGE_ERROR, -1);
            }
        }
    }
    let topics = request
        .topics
        .iter()
        .zip(results)
        .map(|(topic, found)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(found)
                .map(|(p, (error, low_watermark))| {
                    DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(low_watermark)
                        .with_error_code(error)
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic_name(&string(&topic.name.0)))
                .with_partitions(partitions)
        })
        .collect();
    let body = DeleteRecordsResponse::default().with_topics(topics);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
