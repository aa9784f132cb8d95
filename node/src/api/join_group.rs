//! JoinGroup, versions 0–9: handed to the group's coordinator shard, where the member is
//! parked until the join phase of the rebalance ends (see `group`).

use super::{decode, opt_string, str_bytes, string, Close};
use crate::errors;
use crate::group::{JoinArgs, JoinResult};
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 9);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: JoinGroupRequest = decode(req)?;
    let v = req.api_version;
    let args = JoinArgs {
        group: string(&request.group_id.0),
        member_id: string(&request.member_id),
        instance_id: if v >= 5 { opt_string(&request.group_instance_id) } else { None },
        protocol_type: string(&request.protocol_type),
        protocols: request.protocols.iter().map(|p| (string(&p.name), p.metadata.clone())).collect(),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if v >= 1 { request.rebalance_timeout_ms } else { request.session_timeout_ms },
        client_id: request_client_id(req),
        client_host: req.peer.map_or_else(String::new, |p| format!("/{}", p.ip())),
        require_known_member_id: v >= 4,
    };
    let group_id = args.group.clone();
    let result = shard.invoke(shard.group_coordinator(&group_id), args).await.unwrap_or_else(|_| JoinResult {
        error: errors::COORDINATOR_NOT_AVAILABLE,
        generation: -1,
        ..Default::default()
    });
    let members = result
        .members
        .iter()
        .map(|(id, instance, metadata)| {
            let m = JoinGroupResponseMember::default().with_member_id(str_bytes(id)).with_metadata(metadata.clone());
            if v >= 5 {
                m.with_group_instance_id(instance.as_deref().map(str_bytes))
            } else {
                m
            }
        })
        .collect();
    let mut body = JoinGroupResponse::default()
        .with_error_code(result.error)
        .with_generation_id(result.generation)
        .with_protocol_name(Some(str_bytes(result.protocol.as_deref().unwrap_or_default())))
        .with_leader(str_bytes(&result.leader))
        .with_member_id(str_bytes(&result.member_id))
        .with_members(members);
    if v >= 7 {
        body = body.with_protocol_type(result.protocol_type.as_deref().map(str_bytes));
        // v7+: the protocol name is nullable; null when there is none.
        body = body.with_protocol_name(result.protocol.as_deref().map(str_bytes));
    }
    if v >= 9 {
        body = body.with_skip_assignment(result.skip_assignment);
    }
    Ok(encode_response(req.api_key, v, req.header.correlation_id, &body))
}

/// The client id from the request header (Kafka's `client.id`), or "" without one.
pub fn request_client_id(req: &Request) -> String {
    req.header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default()
}
