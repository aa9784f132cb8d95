//! DeleteGroups, versions 0–2: an empty group and its committed offsets are removed
//! (tombstones in `__consumer_offsets`); a group with members answers NON_EMPTY_GROUP.

use super::{decode, string, Close};
use crate::errors;
use crate::group::Delete;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, GroupId};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 2);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: DeleteGroupsRequest = decode(req)?;
    let mut results = Vec::with_capacity(request.groups_names.len());
    for id in &request.groups_names {
        let name = string(&id.0);
        let error = shard
            .invoke(shard.group_coordinator(&name), Delete { group: name.clone() })
            .await
            .unwrap_or(errors::COORDINATOR_NOT_AVAILABLE);
        results.push(DeletableGroupResult::default().with_group_id(GroupId(id.0.clone())).with_error_code(error));
    }
    let body = DeleteGroupsResponse::default().with_results(results);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
