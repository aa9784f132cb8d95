//! EndTxn, versions 0–3: commit or abort. Answered once the markers are durable in every
//! partition of the transaction.

use super::{decode, string, Close};
use crate::errors;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use crate::txn::End;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 3);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: EndTxnRequest = decode(req)?;
    let id = string(&request.transactional_id.0);
    let call = End {
        id: id.clone(),
        producer_id: request.producer_id.0,
        epoch: request.producer_epoch,
        commit: request.committed,
    };
    let error = shard.invoke(shard.txn_coordinator(&id), call).await.unwrap_or(errors::COORDINATOR_NOT_AVAILABLE);
    let body = EndTxnResponse::default().with_error_code(error);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
