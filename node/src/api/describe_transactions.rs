//! DescribeTransactions, version 0: state, timeout, start time, producer id and epoch, and
//! partitions of each transactional id (TRANSACTIONAL_ID_NOT_FOUND for an unknown one).

use super::{decode, str_bytes, string, topic_name, Close};
use crate::errors;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use crate::txn::Describe;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TransactionalId,
};
use std::collections::BTreeMap;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 0);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: DescribeTransactionsRequest = decode(req)?;
    let mut states = Vec::with_capacity(request.transactional_ids.len());
    for id in &request.transactional_ids {
        let name = string(&id.0);
        let state = TransactionState::default().with_transactional_id(TransactionalId(id.0.clone()));
        let found = match shard.invoke(shard.txn_coordinator(&name), Describe { id: name.clone() }).await {
            Ok(found) => found,
            Err(_) => Err(errors::COORDINATOR_NOT_AVAILABLE),
        };
        states.push(match found {
            Ok(meta) => {
                let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                for (t, p) in &meta.partitions {
                    topics.entry(t.as_str()).or_default().push(*p);
                }
                let topics = topics
                    .into_iter()
                    .map(|(t, ps)| TopicData::default().with_topic(topic_name(t)).with_partitions(ps))
                    .collect();
                state
                    .with_transaction_state(str_bytes(meta.state.name()))
                    .with_transaction_timeout_ms(meta.timeout_ms)
                    .with_transaction_start_time_ms(meta.start_ms)
                    .with_producer_id(ProducerId(meta.producer_id))
                    .with_producer_epoch(meta.epoch)
                    .with_topics(topics)
            }
            Err(code) => state.with_error_code(code).with_producer_id(ProducerId(-1)).with_producer_epoch(-1),
        });
    }
    let body = DescribeTransactionsResponse::default().with_transaction_states(states);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
