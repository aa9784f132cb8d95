//! LeaveGroup, versions 0–5 (v3+ batch members, static ones by instance id): the members'
//! partitions are reassigned at once instead of after their session timeout.

use super::{decode, opt_string, str_bytes, string, Close};
use crate::errors;
use crate::group::Leave;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 5);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: LeaveGroupRequest = decode(req)?;
    let v = req.api_version;
    let members: Vec<(String, Option<String>)> = if v >= 3 {
        request.members.iter().map(|m| (string(&m.member_id), opt_string(&m.group_instance_id))).collect()
    } else {
        vec![(string(&request.member_id), None)]
    };
    let group_id = string(&request.group_id.0);
    let call = Leave { group: group_id.clone(), members: members.clone() };
    let (top, each) = shard.invoke(shard.group_coordinator(&group_id), call).await.unwrap_or_else(|_| {
        let e = errors::COORDINATOR_NOT_AVAILABLE;
        (e, vec![e; members.len()])
    });
    let body = if v >= 3 {
        let members = members
            .iter()
            .zip(each)
            .map(|((id, instance), error)| {
                MemberResponse::default()
                    .with_member_id(str_bytes(id))
                    .with_group_instance_id(instance.as_deref().map(str_bytes))
                    .with_error_code(error)
            })
            .collect();
        LeaveGroupResponse::default().with_error_code(top).with_members(members)
    } else {
        let error = if top != errors::NONE { top } else { each.first().copied().unwrap_or(errors::NONE) };
        LeaveGroupResponse::default().with_error_code(error)
    };
    Ok(encode_response(req.api_key, v, req.header.correlation_id, &body))
}
