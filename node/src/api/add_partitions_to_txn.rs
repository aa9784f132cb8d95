//! AddPartitionsToTxn, versions 0–3 (the client form; v4+ are broker-to-broker batches):
//! the partitions a transaction will write to, recorded before the producer writes.

use super::{decode, string, topic_name, Close};
use crate::errors;
use crate::log::TopicPartition;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use crate::txn::AddPartitions;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 3);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: AddPartitionsToTxnRequest = decode(req)?;
    let id = string(&request.v3_and_below_transactional_id.0);
    let parts: Vec<TopicPartition> = request
        .v3_and_below_topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| TopicPartition::new(string(&t.name.0), *p)))
        .collect();
    let n = parts.len();
    let call = AddPartitions {
        id: id.clone(),
        producer_id: request.v3_and_below_producer_id.0,
        epoch: request.v3_and_below_producer_epoch,
        parts,
    };
    let codes = match shard.invoke(shard.txn_coordinator(&id), call).await {
        Ok(codes) if codes.len() == n => codes,
        _ => vec![errors::COORDINATOR_NOT_AVAILABLE; n],
    };
    let mut codes = codes.into_iter();
    let results = request
        .v3_and_below_topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(codes.next().unwrap_or(errors::COORDINATOR_NOT_AVAILABLE))
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic_name(&t.name.0))
                .with_results_by_partition(partitions)
        })
        .collect();
    let body = AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
