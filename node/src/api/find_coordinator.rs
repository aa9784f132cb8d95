//! FindCoordinator, versions 0–4 (v4 batches keys). Every group's coordinator is this node:
//! the shard that owns the group's `__consumer_offsets` partition serves it, and requests
//! reaching another shard are forwarded there, so clients never need a second address.
//! Transaction coordinators (key type 1) work the same way, over `__transaction_state`.
//!
//! In a cluster the internal topics are replicated like any topic, and a key's coordinator
//! is the leader of its internal partition, as in Kafka. The first FindCoordinator of a
//! kind creates that topic through the metadata log, with `offsets.topic.replication.factor`
//! (or `transaction.state.log.replication.factor`) replicas — COORDINATOR_NOT_AVAILABLE
//! until that many brokers are live, as Kafka answers. A partition with no live leader is
//! COORDINATOR_NOT_AVAILABLE too; clients retry.

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
    let mut config = shard.config();
    let internal = match request.key_type {
        KEY_TYPE_GROUP => crate::group::store::OFFSETS_TOPIC,
        KEY_TYPE_TRANSACTION => crate::txn::TXN_TOPIC,
        _ => "",
    };
    // (error, message) for every key while the internal topic cannot be made.
    let mut unavailable = None;
    if config.quorum_voters.is_some() && !internal.is_empty() && shard.topic_info(internal).is_none() {
        unavailable = shard.create_internal_topic(internal).await.err();
        config = shard.config(); // the partition count is the created topic's
    }
    let cluster = shard.cluster_answer();
    // (error, message, (node id, host, port) of the coordinator).
    let answer = |key: &str| -> (i16, Option<String>, (i32, String, i32)) {
        let none = (-1, String::new(), -1);
        match request.key_type {
            KEY_TYPE_GROUP if key.is_empty() => (errors::INVALID_GROUP_ID, Some("the group id is empty".into()), none),
            KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION if !key.is_empty() => {
                if config.quorum_voters.is_none() {
                    let (host, port) = shard.advertised.borrow().clone();
                    return (errors::NONE, None, (config.node_id, host, port));
                }
                if let Some(why) = &unavailable {
                    return (errors::COORDINATOR_NOT_AVAILABLE, Some(why.clone()), none);
                }
                let tp = if request.key_type == KEY_TYPE_GROUP {
                    crate::group::offsets_partition(&config, key)
                } else {
                    crate::txn::state_partition(&config, key)
                };
                let leader = shard.topic_info(internal).map_or(-1, |t| t.node_of(tp.partition, config.node_id));
                match cluster.brokers.iter().find(|b| b.0 == leader) {
                    Some(b) => (errors::NONE, None, b.clone()),
                    None => (errors::COORDINATOR_NOT_AVAILABLE, Some(format!("{tp} has no live leader")), none),
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
