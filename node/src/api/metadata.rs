//! Metadata, versions 0–12.
//!
//! This node leads every partition it lists (in a cluster too, for now: topics are each
//! node's own); the brokers listed are the cluster's (`Shard::cluster_answer`). Topics asked for and unknown are created
//! when `auto.create.topics.enable` is on and the request allows it (v4+), as Kafka does.
//! Topic ids appear from v10; v12's topic-id lookups are answered by id.

use super::{authorized_operations, decode, topic_name, uuid, Close};
use crate::errors;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::{ops, ClusterAnswer, Shard};
use crate::topics::{validate_topic_name, TopicId, TopicInfo};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 12);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: MetadataRequest = decode(req)?;
    let version = req.api_version;
    let auto_create = shard.config().auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    // None (or v0's empty list) means every topic.
    let wanted: Option<Vec<(Option<String>, uuid::Uuid)>> = match request.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t.into_iter().map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id)).collect()),
    };
    let node = shard.config().node_id;
    let mut topics = Vec::new();
    match wanted {
        None => {
            let all: Vec<TopicInfo> = shard.registry.borrow().topics().cloned().collect();
            let cluster = shard.cluster_answer();
            topics.extend(all.iter().map(|t| topic_entry(t, version, node, &cluster)));
        }
        Some(list) => {
            for (name, id) in list {
                topics.push(lookup(shard, name, id, auto_create, version, node).await);
            }
        }
    }
    let cluster = shard.cluster_answer();
    let brokers: Vec<_> = cluster
        .brokers
        .into_iter()
        .map(|(id, host, port)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(StrBytes::from_string(host))
                .with_port(port)
        })
        .collect();
    // v8+: asked for authorized operations, every topic and (v8–v10) cluster operation.
    let topic_ops = authorized_operations::when(
        version >= 8 && request.include_topic_authorized_operations,
        authorized_operations::TOPIC,
    );
    let topics: Vec<_> = topics.into_iter().map(|t| t.with_topic_authorized_operations(topic_ops)).collect();
    let mut body = MetadataResponse::default().with_brokers(brokers).with_topics(topics);
    if (8..=10).contains(&version) {
        body = body.with_cluster_authorized_operations(authorized_operations::when(
            request.include_cluster_authorized_operations,
            authorized_operations::CLUSTER,
        ));
    }
    if version >= 1 {
        body = body.with_controller_id(BrokerId(cluster.controller_id));
    }
    if version >= 2 {
        body = body.with_cluster_id(Some(StrBytes::from_string(cluster.cluster_id)));
    }
    Ok(encode_response(req.api_key, version, req.header.correlation_id, &body))
}

async fn lookup(
    shard: &Rc<Shard>,
    name: Option<String>,
    id: uuid::Uuid,
    auto_create: bool,
    version: i16,
    node: i32,
) -> MetadataResponseTopic {
    let Some(name) = name else {
        let found = shard.registry.borrow().by_id(TopicId(id.as_u128())).cloned();
        return match found {
            Some(info) => topic_entry(&info, version, node, &shard.cluster_answer()),
            None => MetadataResponseTopic::default().with_topic_id(id).with_error_code(errors::UNKNOWN_TOPIC_ID),
        };
    };
    if validate_topic_name(&name).is_err() {
        return error_entry(&name, errors::INVALID_TOPIC_EXCEPTION);
    }
    let existing = shard.registry.borrow().get(&name).cloned();
    let info = match existing {
        Some(info) => info,
        None if auto_create => match shard
            .controller(ops::CreateTopic {
                name: name.clone(),
                partitions: shard.config().num_partitions,
                replication_factor: -1,
                configs: Default::default(),
            })
            .await
        {
            Ok(info) => info,
            Err((errors::TOPIC_ALREADY_EXISTS, _)) => match shard.registry.borrow().get(&name).cloned() {
                Some(info) => info,
                None => return error_entry(&name, errors::UNKNOWN_TOPIC_OR_PARTITION),
            },
            // Not decided yet (a node that has not caught up with the metadata log, a
            // quorum without a leader): Kafka's answer for a topic being created.
            Err((errors::REQUEST_TIMED_OUT, _)) => return error_entry(&name, errors::LEADER_NOT_AVAILABLE),
            Err((code, _)) => return error_entry(&name, code),
        },
        None => return error_entry(&name, errors::UNKNOWN_TOPIC_OR_PARTITION),
    };
    topic_entry(&info, version, node, &shard.cluster_answer())
}

fn error_entry(name: &str, code: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default().with_name(Some(topic_name(name))).with_error_code(code)
}

/// A topic's entry: each partition led by the node hosting it (this node, alone). In a
/// cluster, a partition whose node is not listed (fenced, or not registered) has no leader
/// to offer: LEADER_NOT_AVAILABLE, as Kafka answers for an offline partition.
fn topic_entry(info: &TopicInfo, version: i16, node: i32, cluster: &ClusterAnswer) -> MetadataResponseTopic {
    let partitions = (0..info.partitions)
        .map(|p| {
            let host = info.node_of(p, node);
            let listed = |n: &i32| cluster.brokers.iter().any(|b| b.0 == *n);
            let replicas = info.replicas_of(p, node);
            let isr: Vec<BrokerId> = info.isr_of(p, node).into_iter().map(BrokerId).collect();
            let part = MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_replica_nodes(replicas.iter().map(|&r| BrokerId(r)).collect());
            let part = if listed(&host) {
                part.with_leader_id(BrokerId(host)).with_isr_nodes(isr)
            } else {
                part.with_leader_id(BrokerId(-1)).with_isr_nodes(isr).with_error_code(errors::LEADER_NOT_AVAILABLE)
            };
            if version >= 7 {
                part.with_leader_epoch(info.epoch_of(p))
            } else {
                part
            }
        })
        .collect();
    let topic = MetadataResponseTopic::default()
        .with_name(Some(topic_name(&info.name)))
        .with_is_internal(info.name.starts_with("__"))
        .with_partitions(partitions);
    if version >= 10 {
        topic.with_topic_id(uuid(info.id))
    } else {
        topic
    }
}
