//! IncrementalAlterConfigs, versions 0–1: SET, DELETE (back to the default), APPEND and
//! SUBTRACT (LIST configs only) on a topic's or the broker's dynamic configs; the resource
//! rules are AlterConfigs' (`alter_configs`). Each resource is changed whole or not at all.

use super::alter_configs::{alter, check_names, Alteration};
use super::{decode, str_bytes, Close};
use crate::config::{ConfigChange, OP_DELETE, OP_SUBTRACT};
use crate::errors;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 1);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: IncrementalAlterConfigsRequest = decode(req)?;
    let alterations = request
        .resources
        .iter()
        .map(|r| {
            let entries =
                r.configs.iter().map(|c| (c.name.as_str(), c.value.is_none() && c.config_operation != OP_DELETE));
            let unknown_op = r.configs.iter().find(|c| !(0..=OP_SUBTRACT).contains(&c.config_operation));
            let change = check_names(entries).and_then(|()| match unknown_op {
                Some(c) => Err((
                    errors::INVALID_REQUEST,
                    format!("Unknown alter config operation type {}", c.config_operation),
                )),
                None => Ok(()),
            });
            let change = change.map(|()| {
                ConfigChange::Incremental(
                    r.configs
                        .iter()
                        .map(|c| (c.name.to_string(), c.config_operation, c.value.as_ref().map(|v| v.to_string())))
                        .collect(),
                )
            });
            Alteration { resource_type: r.resource_type, name: r.resource_name.to_string(), change }
        })
        .collect::<Vec<_>>();
    let outcomes = alter(shard, alterations, request.validate_only).await;
    let responses = request
        .resources
        .iter()
        .zip(outcomes)
        .map(|(r, (code, message))| {
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message.as_deref().map(str_bytes))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
        })
        .collect();
    let body = IncrementalAlterConfigsResponse::default().with_responses(responses);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
