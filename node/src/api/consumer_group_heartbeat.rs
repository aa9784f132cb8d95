//! ConsumerGroupHeartbeat, versions 0–1 (KIP-848): joins, heartbeats and leaves of a
//! consumer-protocol group in one API; the coordinator answers with the member's epoch and,
//! when it changed (or the request was a full one), its assignment. v1 (Kafka 4.0,
//! KIP-1082): the member picks its own id, and SubscribedTopicRegex exists. The state
//! machine is `group::consumer`.

use super::{decode, opt_string, str_bytes, string, Close};
use crate::errors;
use crate::group::consumer::{HeartbeatArgs, HeartbeatResult};
use crate::group::ConsumerHeartbeat;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 1);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: ConsumerGroupHeartbeatRequest = decode(req)?;
    let v = req.api_version;
    let args = HeartbeatArgs {
        group: string(&request.group_id.0),
        version: v,
        member_id: string(&request.member_id),
        member_epoch: request.member_epoch,
        instance_id: opt_string(&request.instance_id),
        rack_id: opt_string(&request.rack_id),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        topics: request.subscribed_topic_names.as_ref().map(|t| t.iter().map(|n| string(&n.0)).collect()),
        regex: if v >= 1 { opt_string(&request.subscribed_topic_regex) } else { None },
        server_assignor: opt_string(&request.server_assignor),
        owned: request
            .topic_partitions
            .as_ref()
            .map(|t| t.iter().map(|tp| (tp.topic_id.as_u128(), tp.partitions.clone())).collect()),
        client_id: super::join_group::request_client_id(req),
        client_host: req.peer.map_or_else(String::new, |p| format!("/{}", p.ip())),
    };
    let group = args.group.clone();
    let result = shard.invoke(shard.group_coordinator(&group), ConsumerHeartbeat(args)).await.unwrap_or_else(|_| {
        HeartbeatResult::error(errors::COORDINATOR_NOT_AVAILABLE, "The coordinator is unreachable.")
    });
    let assignment = result.assignment.map(|parts| {
        Assignment::default().with_topic_partitions(
            parts
                .into_iter()
                .map(|(id, ps)| TopicPartitions::default().with_topic_id(uuid::Uuid::from_u128(id)).with_partitions(ps))
                .collect(),
        )
    });
    let body = ConsumerGroupHeartbeatResponse::default()
        .with_error_code(result.error)
        .with_error_message(result.message.as_deref().map(str_bytes))
        .with_member_id(result.member_id.as_deref().map(str_bytes))
        .with_member_epoch(result.member_epoch)
        .with_heartbeat_interval_ms(result.heartbeat_interval_ms)
        .with_assignment(assignment);
    Ok(encode_response(req.api_key, v, req.header.correlation_id, &body))
}
