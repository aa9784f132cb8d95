//! Heartbeat, versions 0–4: keeps a member's session; REBALANCE_IN_PROGRESS tells it to
//! join again.

use super::{decode, opt_string, string, Close};
use crate::errors;
use crate::group::{Heartbeat, MemberRef};
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 4);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: HeartbeatRequest = decode(req)?;
    let member = MemberRef {
        group: string(&request.group_id.0),
        generation: request.generation_id,
        member_id: string(&request.member_id),
        instance_id: if req.api_version >= 3 { opt_string(&request.group_instance_id) } else { None },
    };
    let group_id = member.group.clone();
    let error = shard
        .invoke(shard.group_coordinator(&group_id), Heartbeat(member))
        .await
        .unwrap_or(errors::COORDINATOR_NOT_AVAILABLE);
    let body = HeartbeatResponse::default().with_error_code(error);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
