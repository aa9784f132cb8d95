//! FindCoordinator, versions 0–4 (v4 batches keys). Every group's coordinator is this node:
//! the shard that owns the group's `__consumer_offsets` partition serves it, and requests
//! reaching another shard are forwarded there, so clients never need a second address.
//! Transaction coordinators (key type 1) work the same way, over `__transaction_state`.

use super::{decode, str_bytes, Close};
use crate::errors;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 4);

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: FindCoordinatorRequest = decode(req)?;
    let node = shard.config().node_id;
    let (host, port) = shard.advertised.borrow().clone();
    let answer = |key: &str| -> (i16, Option<String>) {
        match request.key_type {
            KEY_TYPE_GROUP if key.is_empty() => (errors::INVALID_GROUP_ID, Some("the group id is empty".into())),
            KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION if !key.is_empty() => (errors::NONE, None),
            KEY_TYPE_TRANSACTION => (errors::INVALID_REQUEST, Some("the transactional id is empty".into())),
            _ => (errors::INVALID_REQUEST, Some(format!("unknown coordinator key type {}", request.key_type))),
        }
    };
    let body = if req.api_version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let (error, message) = answer(key);
                Coordinator::default()
                    .with_key(key.clone())
                    .with_node_id(BrokerId(if error == 0 { node } else { -1 }))
                    .with_host(str_bytes(if error == 0 { &host } else { "" }))
                    .with_port(if error == 0 { port } else { -1 })
                    .with_error_code(error)
                    .with_error_message(message.map(|m| str_bytes(&m)))
            })
            .collect();
        FindCoordinatorResponse::default().with_coordinators(coordinators)
    } else {
        let (error, message) = answer(&request.key);
        let ok = error == errors::NONE;
        let body = FindCoordinatorResponse::default()
            .with_error_code(error)
            .with_node_id(BrokerId(if ok { node } else { -1 }))
            .with_host(str_bytes(if ok { &host } else { "" }))
            .with_port(if ok { port } else { -1 });
        if req.api_version >= 1 {
            body.with_error_message(message.map(|m| str_bytes(&m)))
        } else {
            body
        }
    };
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
