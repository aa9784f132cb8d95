//! Everything a socket can reach before a handler runs: frame header parsing, the
//! array-count guard, body decoding by the kafka-protocol crate, and record batch
//! validation of produce payloads. Input: one request frame without its length prefix.
#![no_main]

use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;
use sluice::log::batch::{validate_all, Check};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = sluice::protocol::parse_request(bytes::Bytes::copy_from_slice(data)) else { return };
    let key = request.api_key as i16;
    if sluice::protocol_guard::check_body(key, request.api_version, &request.body).is_err() {
        return;
    }
    let range = request.api_key.valid_versions();
    if !(range.min..=range.max).contains(&request.api_version) {
        return;
    }
    let (mut body, v) = (request.body.clone(), request.api_version);
    // The request types the node decodes (api/mod.rs dispatch).
    let _ = match request.api_key {
        ApiKey::Produce => ProduceRequest::decode(&mut body, v).map(drop),
        ApiKey::Fetch => FetchRequest::decode(&mut body, v).map(drop),
        ApiKey::ListOffsets => ListOffsetsRequest::decode(&mut body, v).map(drop),
        ApiKey::Metadata => MetadataRequest::decode(&mut body, v).map(drop),
        ApiKey::CreateTopics => CreateTopicsRequest::decode(&mut body, v).map(drop),
        ApiKey::DeleteTopics => DeleteTopicsRequest::decode(&mut body, v).map(drop),
        ApiKey::CreatePartitions => CreatePartitionsRequest::decode(&mut body, v).map(drop),
        ApiKey::DescribeCluster => DescribeClusterRequest::decode(&mut body, v).map(drop),
        _ => Ok(()),
    };
    if request.api_key == ApiKey::Produce {
        let mut body = request.body.clone();
        if let Ok(produce) = ProduceRequest::decode(&mut body, request.api_version) {
            for records in produce.topic_data.iter().flat_map(|t| t.partition_data.iter()).filter_map(|p| p.records.as_ref()) {
                let _ = validate_all(records, Check::Produced);
            }
        }
    }
});
