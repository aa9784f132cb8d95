//! FindCoordinator, versions 0–4 (v4 batches keys). Every group's coordinator is this node:
//! the shard that owns the group's `__consumer_offsets` partition serves it, and requests
//! reaching another shard are forwarded there, so clients never need a second address.
//! Transaction coordinators (key type 1) work the same way, over `__transaction_state`.
//!
//! In a cluster every node keeps its own internal topics for now (they are not in the
//! metadata log), so a key's coordinator is one fixed node, the same whichever node is
//! asked: the voter (by ascending id) at the key's internal partition modulo the voters, or
//! COORDINATOR_NOT_AVAILABLE while that broker is fenced. Not yet as Kafka: a node asked by
//! a client that did not ask FindCoordinator first still coordinates the group itself.

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
    let config = shard.config();
    let cluster = shard.cluster_answer();
    // (error, message, (node id, host, port) of the coordinator).
    let answer = |key: &str| -> (i16, Option<String>, (i32, String, i32)) {
        let none = (-1, String::new(), -1);
        match request.key_type {
            KEY_TYPE_GROUP if key.is_empty() => (errors::INVALID_GROUP_ID, Some("the group id is empty".into()), none),
            KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION if !key.is_empty() => {
                let Some(voters) = &config.quorum_voters else {
                    let (host, port) = shard.advertised.borrow().clone();
                    return (errors::NONE, None, (config.node_id, host, port));
                };
                let partition = if request.key_type == KEY_TYPE_GROUP {
                    crate::group::offsets_partition(&config, key).partition
                } else {
                    crate::txn::state_partition(&config, key).partition
                };
                let mut ids: Vec<i32> = voters.iter().map(|v| v.id).collect();
                ids.sort_unstable();
                let id = ids[partition as usize % ids.len()];
                match cluster.brokers.iter().find(|b| b.0 == id) {
                    Some(b) => (errors::NONE, None, b.clone()),
                    None => (errors::COORDINATOR_NOT_AVAILABLE, Some(format!("its node {id} is not available")), none),
                }
            }
            KEY_TYPE_TRANSACTION => (errors::INVALID_REQUEST, Some("the transactional id is empty".into()), none),
            _ => (errors::INVALID_REQUEST, Some(format!("unknown coordinator key type {}", request.key_type)), none),
        }
    };
    let body = if req.api_version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let (error, message, (node, host, port)) = answer(key);
                Coordinator::default()
                    .with_key(key.clone())
                    .with_node_id(BrokerId(node))
                    .with_host(str_bytes(&host))
                    .with_port(port)
                    .with_error_code(error)
                    .with_error_message(message.map(|m| str_bytes(&m)))
            })
            .collect();
        FindCoordinatorResponse::default().with_coordinators(coordinators)
    } else {
        let (error, message, (node, host, port)) = answer(&request.key);
        let body = FindCoordinatorResponse::default()
            .with_error_code(error)
            .with_node_id(BrokerId(node))
            .with_host(str_bytes(&host))
            .with_port(port);
        if req.api_version >= 1 {
            body.with_error_message(message.map(|m| str_bytes(&m)))
        } else {
            body
        }
    };
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
