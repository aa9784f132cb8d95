//! CreatePartitions, versions 0–3: grow a topic's partition count (never shrink, as the
//! seeds say: keys would map to other partitions). Manual assignments must name this node.

use super::{decode, topic_name, Close};
use crate::errors;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::{ops, Shard};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 3);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: CreatePartitionsRequest = decode(req)?;
    let node = shard.config().node_id;
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let foreign = topic.assignments.iter().flatten().flat_map(|a| a.broker_ids.iter()).any(|b| b.0 != node);
        let current = shard.registry.borrow().get(&name).map(|t| t.partitions);
        let outcome = match current {
            None => Err((errors::UNKNOWN_TOPIC_OR_PARTITION, format!("topic {name:?} does not exist"))),
            Some(_) if foreign => Err((errors::INVALID_REQUEST, format!("assignments may only name broker {node}"))),
            Some(n) if topic.count <= n => {
                Err((errors::INVALID_PARTITIONS, format!("topic {name:?} has {n} partitions; the count can only grow")))
            }
            Some(_) if request.validate_only => Ok(()),
            Some(_) => {
                shard.controller(ops::GrowTopic { name: name.clone(), partitions: topic.count }).await.map(|_| ())
            }
        };
        let r = CreatePartitionsTopicResult::default().with_name(topic_name(&name));
        results.push(match outcome {
            Ok(()) => r,
            Err((code, message)) => r.with_error_code(code).with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    let body = CreatePartitionsResponse::default().with_results(results);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
