//! One Kafka API per file, each stating its supported version range at the top, each
//! `parse → apply → encode`. `dispatch` routes a request to its handler; `SUPPORTED` is
//! exactly what ApiVersions advertises.

pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_topics;
pub mod describe_cluster;
pub mod fetch;
pub mod list_offsets;
pub mod metadata;
pub mod produce;

use crate::protocol::{Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::ApiKey;
use std::rc::Rc;

/// Every API this node answers, with its version range. Nothing else is advertised.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, produce::VERSIONS.0, produce::VERSIONS.1),
    (ApiKey::Fetch, fetch::VERSIONS.0, fetch::VERSIONS.1),
    (ApiKey::ListOffsets, list_offsets::VERSIONS.0, list_offsets::VERSIONS.1),
    (ApiKey::Metadata, metadata::VERSIONS.0, metadata::VERSIONS.1),
    (ApiKey::ApiVersions, api_versions::VERSIONS.0, api_versions::VERSIONS.1),
    (ApiKey::CreateTopics, create_topics::VERSIONS.0, create_topics::VERSIONS.1),
    (ApiKey::DeleteTopics, delete_topics::VERSIONS.0, delete_topics::VERSIONS.1),
    (ApiKey::CreatePartitions, create_partitions::VERSIONS.0, create_partitions::VERSIONS.1),
    (ApiKey::DescribeCluster, describe_cluster::VERSIONS.0, describe_cluster::VERSIONS.1),
];

/// Why a connection must be closed instead of answered.
#[derive(Debug)]
pub struct Close(pub String);

/// The decoded body or a reason to close: Kafka closes a connection whose request it
/// cannot parse.
pub fn decode<T: kafka_protocol::protocol::Decodable>(req: &Request) -> Result<T, Close> {
    // The crate trusts array counts from the wire (Vec::with_capacity(n)); walk the body
    // against the message schema first so a hostile count is refused before it allocates.
    crate::protocol_guard::check_body(req.api_key as i16, req.api_version, &req.body).map_err(Close)?;
    let mut body = req.body.clone();
    T::decode(&mut body, req.api_version)
        .map_err(|e| Close(format!("malformed {:?} v{} request: {e}", req.api_key, req.api_version)))
}

/// Answers one request. `Ok(None)`: no response is due (acks=0 produce).
pub async fn dispatch(shard: &Rc<Shard>, req: Request) -> Result<Option<Response>, Close> {
    if req.api_key != ApiKey::ApiVersions {
        let supported = SUPPORTED.iter().find(|(k, _, _)| *k == req.api_key);
        match supported {
            Some((_, min, max)) if (*min..=*max).contains(&req.api_version) => {}
            _ => return Err(Close(format!("unsupported {:?} version {}", req.api_key, req.api_version))),
        }
    }
    match req.api_key {
        ApiKey::ApiVersions => Ok(Some(api_versions::handle(&req))),
        ApiKey::Metadata => metadata::handle(shard, &req).await.map(Some),
        ApiKey::CreateTopics => create_topics::handle(shard, &req).await.map(Some),
        ApiKey::Produce => produce::handle(shard, &req).await,
        ApiKey::Fetch => fetch::handle(shard, &req).await.map(Some),
        ApiKey::ListOffsets => list_offsets::handle(shard, &req).await.map(Some),
        ApiKey::DeleteTopics => delete_topics::handle(shard, &req).await.map(Some),
        ApiKey::CreatePartitions => create_partitions::handle(shard, &req).await.map(Some),
        ApiKey::DescribeCluster => describe_cluster::handle(shard, &req).await.map(Some),
        other => Err(Close(format!("API {other:?} is not supported"))),
    }
}

/// Kafka's UUID type from our topic id.
pub fn uuid(id: crate::topics::TopicId) -> uuid::Uuid {
    uuid::Uuid::from_u128(id.0)
}

/// A topic name from a string.
pub fn topic_name(name: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(kafka_protocol::protocol::StrBytes::from_string(name.to_string()))
}
