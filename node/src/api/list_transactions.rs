//! ListTransactions, versions 0–1: every transactional id on every shard, filtered by state,
//! producer id and (v1) by how long the transaction has been running. Unknown state names
//! come back in `unknown_state_filters`, as Kafka does.

use super::{decode, str_bytes, string, Close};
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use crate::txn::{List, TxnState};
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 1);

const STATES: [TxnState; 8] = [
    TxnState::Empty,
    TxnState::Ongoing,
    TxnState::PrepareCommit,
    TxnState::PrepareAbort,
    TxnState::CompleteCommit,
    TxnState::CompleteAbort,
    TxnState::Dead,
    TxnState::PrepareEpochFence,
];

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: ListTransactionsRequest = decode(req)?;
    let wanted_states: Vec<String> = request.state_filters.iter().map(string).collect();
    let unknown: Vec<_> =
        wanted_states.iter().filter(|w| !STATES.iter().any(|s| s.name() == w.as_str())).map(|w| str_bytes(w)).collect();
    let pids: Vec<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    let min_age = if req.api_version >= 1 { request.duration_filter } else { -1 };
    let now = crate::runtime::now_ms();
    let mut states = Vec::new();
    for s in 0..shard.shards() {
        let Ok(txns) = shard.invoke(s, List).await else { continue };
        for meta in txns {
            if !wanted_states.is_empty() && !wanted_states.iter().any(|w| w == meta.state.name()) {
                continue;
            }
            if !pids.is_empty() && !pids.contains(&meta.producer_id) {
                continue;
            }
            if min_age >= 0 && (meta.start_ms < 0 || now.saturating_sub(meta.start_ms) < min_age) {
                continue;
            }
            states.push(
                TransactionState::default()
                    .with_transactional_id(TransactionalId(str_bytes(&meta.id)))
                    .with_producer_id(ProducerId(meta.producer_id))
                    .with_transaction_state(str_bytes(meta.state.name())),
            );
        }
    }
    let body = ListTransactionsResponse::default().with_unknown_state_filters(unknown).with_transaction_states(states);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
