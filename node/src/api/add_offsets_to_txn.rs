//! AddOffsetsToTxn, versions 0–3: the group's `__consumer_offsets` partition joins the
//! transaction, so the transaction's end settles the offsets TxnOffsetCommit writes there.

use super::{decode, string, Close};
use crate::errors;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use crate::txn::AddPartitions;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 3);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: AddOffsetsToTxnRequest = decode(req)?;
    let id = string(&request.transactional_id.0);
    let offsets_partition = crate::group::offsets_partition(&shard.config(), &request.group_id.0);
    let call = AddPartitions {
        id: id.clone(),
        producer_id: request.producer_id.0,
        epoch: request.producer_epoch,
        parts: vec![offsets_partition],
    };
    let error = match shard.invoke(shard.txn_coordinator(&id), call).await {
        Ok(codes) => codes.first().copied().unwrap_or(errors::NONE),
        Err(_) => errors::COORDINATOR_NOT_AVAILABLE,
    };
    let body = AddOffsetsToTxnResponse::default().with_error_code(error);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
