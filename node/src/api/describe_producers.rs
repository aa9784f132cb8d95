//! DescribeProducers, version 0: the idempotent and transactional producers each partition
//! knows — producer id, epoch, last sequence, the timestamp of its last batch, and the first
//! offset of its open transaction. The coordinator epoch of the last marker is not kept
//! here: it is answered -1, as Kafka does when it does not know it.

use super::{decode, string, topic_name, Close, PerOwner};
use crate::errors;
use crate::log::TopicPartition;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::{ops, Shard};
use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 0);

type Producers = Vec<(i64, i16, i32, i64, i64)>;

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: DescribeProducersRequest = decode(req)?;
    let mut results: Vec<Vec<(i16, Producers)>> = request
        .topics
        .iter()
        .map(|t| t.partition_indexes.iter().map(|_| (errors::NONE, Vec::new())).collect())
        .collect();
    let mut per_owner = PerOwner::new();
    for (ti, topic) in request.topics.iter().enumerate() {
        let name = string(&topic.name.0);
        let partitions = shard.registry.borrow().get(&name).map_or(0, |t| t.partitions);
        for (pi, &p) in topic.partition_indexes.iter().enumerate() {
            if p < 0 || p >= partitions {
                results[ti][pi].0 = errors::UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            per_owner.add(shard, (ti, pi), TopicPartition::new(name.clone(), p), ());
        }
    }
    let make = |parts: Vec<(TopicPartition, ())>| ops::DescribeProducers {
        parts: parts.into_iter().map(|(tp, ())| tp).collect(),
    };
    per_owner.run(shard, make, (errors::KAFKA_STORAGE_ERROR, Vec::new()), &mut results).await;
    let topics = request
        .topics
        .iter()
        .zip(results)
        .map(|(topic, found)| {
            let partitions = topic
                .partition_indexes
                .iter()
                .zip(found)
                .map(|(&p, (error, producers))| {
                    let active = producers
                        .into_iter()
                        .map(|(id, epoch, last_sequence, last_timestamp, txn_start)| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(id))
                                .with_producer_epoch(epoch as i32)
                                .with_last_sequence(last_sequence)
                                .with_last_timestamp(last_timestamp)
                                .with_coordinator_epoch(-1)
                                .with_current_txn_start_offset(txn_start)
                        })
                        .collect();
                    PartitionResponse::default()
                        .with_partition_index(p)
                        .with_error_code(error)
                        .with_active_producers(active)
                })
                .collect();
            TopicResponse::default().with_name(topic_name(&string(&topic.name.0))).with_partitions(partitions)
        })
        .collect();
    let body = DescribeProducersResponse::default().with_topics(topics);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
