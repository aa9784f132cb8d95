//! CreateTopics, versions 2–7. The controller (shard 0) assigns the topic id and tells every
//! shard, which opens the partitions it owns. Replication factor: -1 or 1 (one node).
//! `validate_only` checks without creating.

use super::{decode, topic_name, uuid, Close};
use crate::errors;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::{ops, Shard};
use crate::topics::validate_topic_name;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (2, 7);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: CreateTopicsRequest = decode(req)?;
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let partitions = if topic.num_partitions == -1 { shard.config().num_partitions } else { topic.num_partitions };
        let configs: std::collections::BTreeMap<String, String> = topic
            .configs
            .iter()
            .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
            .collect();
        let config_check = crate::topic_config::validate(&shard.config().log, &configs);
        let outcome = if let Err(e) = validate_topic_name(&name) {
            Err((errors::INVALID_TOPIC_EXCEPTION, e))
        } else if !(topic.replication_factor == -1 || topic.replication_factor == 1) {
            Err((
                errors::INVALID_REPLICATION_FACTOR,
                format!("replication factor {} exceeds the 1 available broker", topic.replication_factor),
            ))
        } else if partitions < 1 {
            Err((errors::INVALID_PARTITIONS, format!("number of partitions {partitions} must be at least 1")))
        } else if let Err(e) = config_check {
            Err((crate::errors::INVALID_CONFIG, e))
        } else if request.validate_only {
            match shard.registry.borrow().get(&name) {
                Some(_) => Err((errors::TOPIC_ALREADY_EXISTS, format!("topic {name:?} already exists"))),
                None => Ok(None),
            }
        } else {
            shard.controller(ops::CreateTopic { name: name.clone(), partitions, configs }).await.map(Some)
        };
        let mut r = CreatableTopicResult::default().with_name(topic_name(&name));
        match outcome {
            Ok(info) => {
                if req.api_version >= 5 {
                    r = r.with_num_partitions(partitions).with_replication_factor(1);
                }
                if let (Some(info), true) = (info, req.api_version >= 7) {
                    r = r.with_topic_id(uuid(info.id));
                }
            }
            Err((code, message)) => {
                r = r.with_error_code(code).with_error_message(Some(StrBytes::from_string(message)));
            }
        }
        results.push(r);
    }
    let body = CreateTopicsResponse::default().with_topics(results);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
