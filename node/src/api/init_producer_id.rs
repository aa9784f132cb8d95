//! InitProducerId, versions 0–5, for idempotent producers: a new producer id (epoch 0), or
//! for a client that names its current id and epoch (KIP-360, v3+) the same id with the
//! epoch bumped, so it can reset its sequences without losing its identity. Ids come from
//! blocks reserved durably on shard 0 (`producer_id_block`), so none is ever handed out
//! twice, across restarts too. With a transactional id the transaction coordinator answers:
//! the id keeps its producer id and gets the next epoch, fencing older incarnations.

use super::{decode, Close};
use crate::errors;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use crate::txn;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 5);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: InitProducerIdRequest = decode(req)?;
    let response = |error: i16, id: i64, epoch: i16| {
        InitProducerIdResponse::default()
            .with_error_code(error)
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch)
    };
    let transactional_id = request.transactional_id.as_ref().map(|t| t.0.to_string());
    let body = if transactional_id.as_deref() == Some("") {
        // As Kafka's TransactionCoordinator: an empty transactional id is neither a
        // transaction nor an idempotent producer's null.
        response(errors::INVALID_REQUEST, -1, -1)
    } else if let Some(id) = transactional_id {
        let (hint_id, hint_epoch) =
            if req.api_version >= 3 { (request.producer_id.0, request.producer_epoch) } else { (-1, -1) };
        let call = txn::Init {
            id: id.clone(),
            timeout_ms: request.transaction_timeout_ms,
            producer_id: hint_id,
            epoch: hint_epoch,
        };
        let (error, pid, epoch) =
            shard.invoke(shard.txn_coordinator(&id), call).await.unwrap_or((errors::COORDINATOR_NOT_AVAILABLE, -1, -1));
        response(error, pid, epoch)
    } else if req.api_version >= 3 && request.producer_id.0 >= 0 && request.producer_epoch >= 0 {
        if request.producer_epoch < i16::MAX - 1 {
            response(errors::NONE, request.producer_id.0, request.producer_epoch + 1)
        } else {
            match shard.allocate_producer_id().await {
                Ok(id) => response(errors::NONE, id, 0),
                Err(e) => {
                    eprintln!("sluice: allocating a producer id failed: {e}");
                    response(errors::COORDINATOR_NOT_AVAILABLE, -1, -1)
                }
            }
        }
    } else {
        match shard.allocate_producer_id().await {
            Ok(id) => response(errors::NONE, id, 0),
            Err(e) => {
                eprintln!("sluice: allocating a producer id failed: {e}");
                response(errors::COORDINATOR_NOT_AVAILABLE, -1, -1)
            }
        }
    };
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
