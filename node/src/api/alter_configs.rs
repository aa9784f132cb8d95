//! AlterConfigs, versions 0–2: each resource's dynamic configs become exactly the ones
//! given (the rest revert to their defaults), as in Kafka. Topics (resource type 2) and the
//! broker (type 4: name = this node's id for its own layer, "" for the cluster-wide
//! default). Each resource is changed whole or not at all; `validate_only` checks without
//! changing. The resource rules shared with IncrementalAlterConfigs and DescribeConfigs
//! (which resources exist, duplicates, nulls) live here.

use super::{decode, str_bytes, Close};
use crate::config::ConfigChange;
use crate::errors;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::{ops, Shard};
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 2);

/// Kafka's `ConfigResource.Type` ids this node has configs for.
pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;

/// A config resource of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Topic(String),
    /// The broker: its own layer (`per_broker`, resource name = node id) or the
    /// cluster-wide default (resource name "").
    Broker {
        per_broker: bool,
    },
}

/// Which of this node's resources a (type, name) names, or Kafka's error for it.
pub fn resolve(node_id: i32, resource_type: i8, name: &str) -> Result<Target, (i16, String)> {
    match resource_type {
        TOPIC => {
            crate::topics::validate_topic_name(name).map_err(|e| (errors::INVALID_TOPIC_EXCEPTION, e))?;
            Ok(Target::Topic(name.to_string()))
        }
        BROKER if name.is_empty() => Ok(Target::Broker { per_broker: false }),
        BROKER => {
            let id: i32 = name
                .parse()
                .map_err(|_| (errors::INVALID_REQUEST, format!("Broker id must be an integer, but it is: {name}")))?;
            if id != node_id {
                let msg = format!("Unexpected broker id, expected {node_id} or empty string, but received {name}");
                return Err((errors::INVALID_REQUEST, msg));
            }
            Ok(Target::Broker { per_broker: true })
        }
        other => Err((
            errors::INVALID_REQUEST,
            format!("Unsupported resource type {other} (this node has topic and broker configs)"),
        )),
    }
}

/// One resource of an alter request: its type, name, and the change (or why the request
/// is malformed for it).
pub struct Alteration {
    pub resource_type: i8,
    pub name: String,
    pub change: Result<ConfigChange, (i16, String)>,
}

/// The request-level checks Kafka makes before anything else: a config named twice, or a
/// null value where one is needed, make the resource INVALID_REQUEST.
pub fn check_names<'a>(entries: impl Iterator<Item = (&'a str, bool)> + Clone) -> Result<(), (i16, String)> {
    let mut seen = BTreeSet::new();
    if !entries.clone().all(|(name, _)| seen.insert(name)) {
        return Err((errors::INVALID_REQUEST, "Error due to duplicate config keys".into()));
    }
    let nulls: Vec<&str> = entries.filter(|(_, null)| *null).map(|(n, _)| n).collect();
    if !nulls.is_empty() {
        return Err((errors::INVALID_REQUEST, format!("Null value not supported for : {}", nulls.join(", "))));
    }
    Ok(())
}

/// Applies each resource's change through the controller; (error code, message) per
/// resource, in request order. A resource named twice fails both times, as in Kafka.
pub async fn alter(shard: &Rc<Shard>, alterations: Vec<Alteration>, validate_only: bool) -> Vec<(i16, Option<String>)> {
    let mut count: BTreeMap<(i8, &str), usize> = BTreeMap::new();
    for a in &alterations {
        *count.entry((a.resource_type, a.name.as_str())).or_default() += 1;
    }
    let mut out = Vec::with_capacity(alterations.len());
    let node_id = shard.config().node_id;
    for a in &alterations {
        let outcome = if count[&(a.resource_type, a.name.as_str())] > 1 {
            Err((errors::INVALID_REQUEST, "Each resource must appear at most once.".to_string()))
        } else {
            match (resolve(node_id, a.resource_type, &a.name), &a.change) {
                (Err(e), _) => Err(e),
                (_, Err(e)) => Err(e.clone()),
                (Ok(Target::Topic(name)), Ok(change)) => {
                    shard.controller(ops::AlterTopicConfigs { name, change: change.clone(), validate_only }).await
                }
                (Ok(Target::Broker { per_broker }), Ok(change)) => {
                    shard
                        .controller(ops::AlterBrokerConfigs { per_broker, change: change.clone(), validate_only })
                        .await
                }
            }
        };
        out.push(match outcome {
            Ok(()) => (errors::NONE, None),
            Err((code, message)) => (code, Some(message)),
        });
    }
    out
}

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: AlterConfigsRequest = decode(req)?;
    let alterations = request
        .resources
        .iter()
        .map(|r| {
            let entries = r.configs.iter().map(|c| (c.name.as_str(), c.value.is_none()));
            let change = check_names(entries).map(|()| {
                ConfigChange::Replace(
                    r.configs
                        .iter()
                        .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
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
    let body = AlterConfigsResponse::default().with_responses(responses);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
