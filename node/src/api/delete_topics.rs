//! DeleteTopics, versions 1–6 (v6 may name topics by id). The controller removes the topic
//! from every shard's registry; each shard deletes the directories of its partitions.

use super::{decode, topic_name, uuid, Close};
use crate::errors;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::{ops, Shard};
use crate::topics::TopicId;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (1, 6);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: DeleteTopicsRequest = decode(req)?;
    let version = req.api_version;
    // (name if given, id if given)
    let wanted: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        request.topics.iter().map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)).collect()
    } else {
        request.topic_names.iter().map(|n| (Some(n.0.to_string()), uuid::Uuid::nil())).collect()
    };
    let mut results = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let name = name.or_else(|| shard.registry.borrow().by_id(TopicId(id.as_u128())).map(|t| t.name.clone()));
        let mut r = DeletableTopicResult::default();
        match name {
            None => {
                r = r.with_topic_id(id).with_error_code(errors::UNKNOWN_TOPIC_ID);
            }
            Some(name) => {
                r = r.with_name(Some(topic_name(&name)));
                match shard.controller(ops::DeleteTopic { name: name.clone() }).await {
                    Ok(info) if version >= 6 => r = r.with_topic_id(uuid(info.id)),
                    Ok(_) => {}
                    Err((code, message)) => {
                        r = r.with_error_code(code);
                        if version >= 5 {
                            r = r.with_error_message(Some(StrBytes::from_string(message)));
                        }
                    }
                }
            }
        }
        results.push(r);
    }
    let body = DeleteTopicsResponse::default().with_responses(results);
    Ok(encode_response(req.api_key, version, req.header.correlation_id, &body))
}
