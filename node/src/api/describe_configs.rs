//! DescribeConfigs, versions 0–4: a topic's configs (every topic config the node honours,
//! with its effective value and where it comes from: DYNAMIC_TOPIC_CONFIG when the topic
//! sets it, even to the default; else the broker layer of its synonym; else
//! DEFAULT_CONFIG), the broker's (name = node id: every setting, read-only unless dynamic)
//! or the cluster-wide default layer (name ""). v1+ carry sources and, on request,
//! synonyms; v3+ types and documentation. Answered from this shard's copies of the
//! registry and the settings, which every change reaches before it is acknowledged.
//!
//! Version 0 (removed in Kafka 4.0, which the `kafka-protocol` crate follows) is the v1
//! request without `IncludeSynonyms`, so it is vetted and decoded as v1 with that flag
//! false appended; its response (`IsDefault` instead of a source, no synonyms) is encoded
//! here.

use super::alter_configs::{resolve, Target};
use super::{decode, str_bytes, Close};
use crate::config::{source, ConfigEntry};
use crate::errors;
use crate::protocol::{encode_response, Chunk, Request, Response};
use crate::shard::Shard;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::{Decodable, StrBytes};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 4);

/// One resource's answer: (error code, message, configs).
type Described = (i16, Option<String>, Vec<ConfigEntry>);

/// Describes one resource; `keys` (None or empty: all) selects configs by name.
pub fn describe(shard: &Shard, resource_type: i8, name: &str, keys: Option<&[StrBytes]>) -> Described {
    let config = shard.config();
    let entries = match resolve(config.node_id, resource_type, name) {
        Err((code, message)) => return (code, Some(message), Vec::new()),
        Ok(Target::Topic(topic)) => match shard.describe_topic_configs(&topic) {
            Some(entries) => entries,
            None => {
                let message = format!("topic {topic:?} does not exist");
                return (errors::UNKNOWN_TOPIC_OR_PARTITION, Some(message), Vec::new());
            }
        },
        Ok(Target::Broker { per_broker }) => config.describe(per_broker),
    };
    let selected = match keys {
        Some(keys) if !keys.is_empty() => entries.into_iter().filter(|e| keys.iter().any(|k| **k == *e.name)).collect(),
        _ => entries,
    };
    (errors::NONE, None, selected)
}

fn decode_request(req: &Request) -> Result<DescribeConfigsRequest, Close> {
    if req.api_version > 0 {
        return decode(req);
    }
    let mut body = BytesMut::with_capacity(req.body.len() + 1);
    body.put_slice(&req.body);
    body.put_u8(0); // IncludeSynonyms = false
    let body = body.freeze();
    crate::protocol_guard::check_body(ApiKey::DescribeConfigs as i16, 1, &body).map_err(Close)?;
    DescribeConfigsRequest::decode(&mut body.clone(), 1)
        .map_err(|e| Close(format!("malformed DescribeConfigs v0 request: {e}")))
}

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request = decode_request(req)?;
    let described: Vec<Described> = request
        .resources
        .iter()
        .map(|r| describe(shard, r.resource_type, r.resource_name.as_str(), r.configuration_keys.as_deref()))
        .collect();
    if req.api_version == 0 {
        return Ok(encode_v0(req.header.correlation_id, &request, &described));
    }
    let results = request
        .resources
        .iter()
        .zip(described)
        .map(|(r, (code, message, entries))| {
            let configs = entries
                .into_iter()
                .map(|e| {
                    let synonyms = if request.include_synonyms {
                        e.synonyms
                            .iter()
                            .map(|s| {
                                DescribeConfigsSynonym::default()
                                    .with_name(str_bytes(&s.name))
                                    .with_value(s.value.as_deref().map(str_bytes))
                                    .with_source(s.source)
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    DescribeConfigsResourceResult::default()
                        .with_name(str_bytes(&e.name))
                        .with_value(e.value.as_deref().map(str_bytes))
                        .with_read_only(e.read_only)
                        .with_config_source(e.source)
                        .with_is_sensitive(false)
                        .with_synonyms(synonyms)
                        .with_config_type(e.ty as i8)
                        .with_documentation(request.include_documentation.then(|| str_bytes(e.doc)))
                })
                .collect();
            DescribeConfigsResult::default()
                .with_error_code(code)
                .with_error_message(message.as_deref().map(str_bytes))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
                .with_configs(configs)
        })
        .collect();
    let body = DescribeConfigsResponse::default().with_results(results);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}

/// The v0 response: header v0, then ThrottleTimeMs and per resource ErrorCode,
/// ErrorMessage, ResourceType, ResourceName and configs of Name, Value, ReadOnly,
/// IsDefault, IsSensitive (Kafka sets IsDefault for DEFAULT_CONFIG values).
fn encode_v0(correlation_id: i32, request: &DescribeConfigsRequest, described: &[Described]) -> Response {
    fn string(buf: &mut BytesMut, s: &str) {
        buf.put_i16(s.len().min(i16::MAX as usize) as i16);
        buf.put_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
    }
    fn nullable(buf: &mut BytesMut, s: Option<&str>) {
        match s {
            Some(s) => string(buf, s),
            None => buf.put_i16(-1),
        }
    }
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(correlation_id);
    buf.put_i32(0); // ThrottleTimeMs
    buf.put_i32(described.len() as i32);
    for (r, (code, message, entries)) in request.resources.iter().zip(described) {
        buf.put_i16(*code);
        nullable(&mut buf, message.as_deref());
        buf.put_i8(r.resource_type);
        string(&mut buf, r.resource_name.as_str());
        buf.put_i32(entries.len() as i32);
        for e in entries {
            string(&mut buf, &e.name);
            nullable(&mut buf, e.value.as_deref());
            buf.put_u8(e.read_only as u8);
            buf.put_u8((e.source == source::DEFAULT_CONFIG) as u8);
            buf.put_u8(0); // IsSensitive
        }
    }
    let bytes: Bytes = buf.freeze();
    Response { chunks: vec![Chunk::Bytes(bytes)] }
}
