//! CreateTopics, versions 2–7. The controller (shard 0) assigns the topic id and tells every
//! shard, which opens the partitions it owns. Replication factor: -1 or 1 (one node). A
//! manual assignment (`assignments`, with partitions and replication factor -1, as Kafka
//! requires) gives the partition count; each partition's replicas must be exactly this
//! node. `validate_only` checks everything without creating. From v5 the answer carries
//! the topic's configs as DescribeConfigs would report them.

use super::{decode, topic_name, uuid, Close};
use crate::errors;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::{ops, Shard};
use crate::topics::validate_topic_name;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (2, 7);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: CreateTopicsRequest = decode(req)?;
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let assigned = manual_assignment(topic, shard.config().node_id);
        let partitions = match assigned {
            Ok(Some(n)) => n,
            _ if topic.num_partitions == -1 => shard.config().num_partitions,
            _ => topic.num_partitions,
        };
        let configs: std::collections::BTreeMap<String, String> = topic
            .configs
            .iter()
            .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
            .collect();
        let config_check = crate::topic_config::validate(&shard.config().log, &configs);
        let outcome = if let Err(e) = validate_topic_name(&name) {
            Err((errors::INVALID_TOPIC_EXCEPTION, e))
        } else if let Err(e) = assigned {
            Err(e)
        } else if topic.replication_factor != -1
            && (topic.replication_factor < 1
                || topic.replication_factor as usize > shard.cluster_answer().brokers.len())
        {
            let brokers = shard.cluster_answer().brokers.len();
            let s = if brokers == 1 { "" } else { "s" };
            let why =
                format!("replication factor {} exceeds the {brokers} available broker{s}", topic.replication_factor);
            Err((errors::INVALID_REPLICATION_FACTOR, why))
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
            shard
                .controller(ops::CreateTopic {
                    name: name.clone(),
                    partitions,
                    replication_factor: topic.replication_factor,
                    configs: configs.clone(),
                })
                .await
                .map(Some)
        };
        let mut r = CreatableTopicResult::default().with_name(topic_name(&name));
        match outcome {
            Ok(info) => {
                if req.api_version >= 5 {
                    let described = crate::topic_config::describe(&shard.config(), &configs);
                    let configs = described
                        .into_iter()
                        .map(|e| {
                            CreatableTopicConfigs::default()
                                .with_name(StrBytes::from_string(e.name))
                                .with_value(e.value.map(StrBytes::from_string))
                                .with_read_only(e.read_only)
                                .with_config_source(e.source)
                                .with_is_sensitive(false)
                        })
                        .collect();
                    r = r.with_num_partitions(partitions).with_replication_factor(1).with_configs(Some(configs));
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

/// The partition count a manual assignment gives (None: the topic has none), or why it is
/// refused, in Kafka's words: INVALID_REQUEST when partitions or replication factor are
/// given too, INVALID_REPLICA_ASSIGNMENT when the partitions are not 0..n or a replica
/// list is not exactly this node.
fn manual_assignment(topic: &CreatableTopic, node: i32) -> Result<Option<i32>, (i16, String)> {
    if topic.assignments.is_empty() {
        return Ok(None);
    }
    if topic.num_partitions != -1 || topic.replication_factor != -1 {
        let msg = "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.";
        return Err((errors::INVALID_REQUEST, msg.into()));
    }
    let bad = |msg: String| Err((errors::INVALID_REPLICA_ASSIGNMENT, msg));
    let mut indexes: Vec<i32> = topic.assignments.iter().map(|a| a.partition_index).collect();
    indexes.sort_unstable();
    if indexes.iter().enumerate().any(|(i, p)| *p != i as i32) {
        return bad("partitions should be a consecutive 0-based integer sequence".into());
    }
    for a in &topic.assignments {
        let replicas: Vec<i32> = a.broker_ids.iter().map(|b| b.0).collect();
        if replicas.is_empty() {
            return bad(format!(
                "The manual partition assignment of partition {} includes an empty replica list.",
                a.partition_index
            ));
        }
        if let Some(other) = replicas.iter().find(|b| **b != node) {
            return bad(format!(
                "The manual partition assignment includes broker {other}, but no such broker is registered (this node is {node})."
            ));
        }
        if replicas.len() > 1 {
            return bad(format!("The manual partition assignment includes the broker {node} more than once."));
        }
    }
    Ok(Some(indexes.len() as i32))
}
