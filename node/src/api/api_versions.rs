//! ApiVersions, versions 0–4.
//!
//! A client asking with a newer version than we know gets what Kafka sends: a v0-format
//! response (header v0, no tagged fields) with UNSUPPORTED_VERSION and our ranges, so it
//! can retry with a version we speak. The response header is always v0 for this API.

use super::SUPPORTED;
use crate::errors;
use crate::protocol::{encode_response, Request, Response};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsResponse;

pub const VERSIONS: (i16, i16) = (0, 4);

pub fn handle(req: &Request) -> Response {
    let api_keys = SUPPORTED
        .iter()
        .map(|(key, min, max)| {
            ApiVersion::default().with_api_key(*key as i16).with_min_version(*min).with_max_version(*max)
        })
        .collect();
    let too_new = req.api_version > VERSIONS.1 || req.api_version < VERSIONS.0;
    let (version, error) = if too_new { (0, errors::UNSUPPORTED_VERSION) } else { (req.api_version, errors::NONE) };
    let body = ApiVersionsResponse::default().with_error_code(error).with_api_keys(api_keys);
    encode_response(req.api_key, version, req.header.correlation_id, &body)
}
