//! SyncGroup, versions 0–5: the leader's assignment in, each member's share out.

use super::{decode, opt_string, str_bytes, string, Close};
use crate::errors;
use crate::group::{SyncArgs, SyncResult};
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 5);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: SyncGroupRequest = decode(req)?;
    let v = req.api_version;
    let args = SyncArgs {
        group: string(&request.group_id.0),
        generation: request.generation_id,
        member_id: string(&request.member_id),
        instance_id: if v >= 3 { opt_string(&request.group_instance_id) } else { None },
        protocol_type: if v >= 5 { opt_string(&request.protocol_type) } else { None },
        protocol: if v >= 5 { opt_string(&request.protocol_name) } else { None },
        assignments: request.assignments.iter().map(|a| (string(&a.member_id), a.assignment.clone())).collect(),
    };
    let group_id = args.group.clone();
    let result = shard
        .invoke(shard.group_coordinator(&group_id), args)
        .await
        .unwrap_or_else(|_| SyncResult { error: errors::COORDINATOR_NOT_AVAILABLE, ..Default::default() });
    let mut body = SyncGroupResponse::default().with_error_code(result.error).with_assignment(result.assignment);
    if v >= 5 {
        body = body
            .with_protocol_type(result.protocol_type.as_deref().map(str_bytes))
            .with_protocol_name(result.protocol.as_deref().map(str_bytes));
    }
    Ok(encode_response(req.api_key, v, req.header.correlation_id, &body))
}
