//! DescribeGroups, versions 0–5: state, protocol, members with their metadata and
//! assignment. An unknown group is reported as Dead with no members, as Kafka does
//! before v6.

use super::{authorized_operations, decode, str_bytes, string, Close};
use crate::errors;
use crate::group::{Describe, GroupView};
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 5);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: DescribeGroupsRequest = decode(req)?;
    let v = req.api_version;
    let mut groups = Vec::with_capacity(request.groups.len());
    for id in &request.groups {
        let name = string(&id.0);
        let view =
            shard.invoke(shard.group_coordinator(&name), Describe { group: name.clone() }).await.unwrap_or_else(|_| {
                GroupView { error: errors::COORDINATOR_NOT_AVAILABLE, group: name.clone(), ..Default::default() }
            });
        let error = if view.error == errors::GROUP_ID_NOT_FOUND { errors::NONE } else { view.error };
        let members = view
            .members
            .iter()
            .map(|m| {
                let d = DescribedGroupMember::default()
                    .with_member_id(str_bytes(&m.member_id))
                    .with_client_id(str_bytes(&m.client_id))
                    .with_client_host(str_bytes(&m.client_host))
                    .with_member_metadata(m.metadata.clone())
                    .with_member_assignment(m.assignment.clone());
                if v >= 4 {
                    d.with_group_instance_id(m.instance_id.as_deref().map(str_bytes))
                } else {
                    d
                }
            })
            .collect();
        let mut d = DescribedGroup::default()
            .with_error_code(error)
            .with_group_id(GroupId(id.0.clone()))
            .with_group_state(str_bytes(if view.state.is_empty() { "Dead" } else { &view.state }))
            .with_protocol_type(str_bytes(&view.protocol_type))
            .with_protocol_data(str_bytes(&view.protocol))
            .with_members(members);
        if v >= 3 {
            d = d.with_authorized_operations(authorized_operations::when(
                request.include_authorized_operations,
                authorized_operations::GROUP,
            ));
        }
        groups.push(d);
    }
    let body = DescribeGroupsResponse::default().with_groups(groups);
    Ok(encode_response(req.api_key, v, req.header.correlation_id, &body))
}
