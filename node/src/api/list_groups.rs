//! ListGroups, versions 0–5: every group on every shard (v4 filters by state, v5 by type:
//! "classic" or "consumer" (KIP-848), each group reported with its type).

use super::{decode, str_bytes, string, Close};
use crate::errors;
use crate::group::{GroupView, List};
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 5);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: ListGroupsRequest = decode(req)?;
    let v = req.api_version;
    let states: Vec<String> = if v >= 4 { request.states_filter.iter().map(string).collect() } else { Vec::new() };
    let types: Vec<String> = if v >= 5 { request.types_filter.iter().map(string).collect() } else { Vec::new() };
    let views: Vec<GroupView> = shard.groups_everywhere(|| List { states: states.clone(), types: types.clone() }).await;
    let groups = views
        .iter()
        .map(|g| {
            let mut l = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(&g.group)))
                .with_protocol_type(str_bytes(&g.protocol_type));
            if v >= 4 {
                l = l.with_group_state(str_bytes(&g.state));
            }
            if v >= 5 {
                l = l.with_group_type(str_bytes(&g.group_type));
            }
            l
        })
        .collect();
    let body = ListGroupsResponse::default().with_error_code(errors::NONE).with_groups(groups);
    Ok(encode_response(req.api_key, v, req.header.correlation_id, &body))
}
