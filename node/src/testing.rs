//! Helpers shared by tests (unit tests here, integration tests through the public API).

use std::path::{Path, PathBuf};

/// A directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("sluice-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What [`decode_request_frame`] got to with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameOutcome {
    /// The header did not parse (unknown API key, short or bad header).
    BadHeader,
    /// The guard refused the body (the node closes the connection).
    Refused,
    /// An API or version the node does not serve (closed unanswered, body never decoded).
    NotServed,
    /// The body failed to decode after the guard passed it (closed, as Kafka closes it).
    Undecodable,
    /// Decoded (and a Produce's record batches validated, whatever the verdict).
    Decoded,
}

/// Everything a socket can reach before a handler runs, for the fuzz target
/// (`node/fuzz/fuzz_targets/request.rs`) and its plain-Rust smoke test
/// (`node/tests/fuzz_smoke.rs`): the frame header, the protocol guard, the `kafka-protocol`
/// crate's decoder for the versions the node serves with it (as `api::decode` runs them),
/// and record batch validation of a Produce's payloads. `frame` is one request frame
/// without its length prefix. It must never panic, abort or allocate far beyond the frame.
pub fn decode_request_frame(frame: &[u8]) -> FrameOutcome {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Decodable;
    let Ok(request) = crate::protocol::parse_request(bytes::Bytes::copy_from_slice(frame)) else {
        return FrameOutcome::BadHeader;
    };
    let (key, version) = (request.api_key, request.api_version);
    if crate::protocol_guard::check_body(key as i16, version, &request.body).is_err() {
        return FrameOutcome::Refused;
    }
    let served = crate::api::SUPPORTED.iter().any(|(k, lo, hi)| *k == key && (*lo..=*hi).contains(&version));
    let range = key.valid_versions();
    // Below the crate's range the node decodes with its own legacy decoders (`api::legacy`),
    // after the same guard: those stay out of this harness.
    if !(served || key == ApiKey::ApiVersions) || !(range.min..=range.max).contains(&version) {
        return FrameOutcome::NotServed;
    }
    // The request types `api::dispatch` decodes with the crate (the `api::SUPPORTED` list).
    macro_rules! decode_as {
        ($($key:ident => $ty:ty,)*) => {
            match key {
                $(ApiKey::$key => <$ty>::decode(&mut request.body.clone(), version).map(drop),)*
                _ => return FrameOutcome::NotServed,
            }
        };
    }
    let decoded = decode_as! {
        AddOffsetsToTxn => AddOffsetsToTxnRequest,
        AddPartitionsToTxn => AddPartitionsToTxnRequest,
        AlterConfigs => AlterConfigsRequest,
        ApiVersions => ApiVersionsRequest,
        CreatePartitions => CreatePartitionsRequest,
        CreateTopics => CreateTopicsRequest,
        DeleteGroups => DeleteGroupsRequest,
        DeleteRecords => DeleteRecordsRequest,
        DeleteTopics => DeleteTopicsRequest,
        DescribeCluster => DescribeClusterRequest,
        DescribeConfigs => DescribeConfigsRequest,
        DescribeGroups => DescribeGroupsRequest,
        DescribeLogDirs => DescribeLogDirsRequest,
        DescribeProducers => DescribeProducersRequest,
        DescribeTransactions => DescribeTransactionsRequest,
        EndTxn => EndTxnRequest,
        Fetch => FetchRequest,
        FindCoordinator => FindCoordinatorRequest,
        Heartbeat => HeartbeatRequest,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
        InitProducerId => InitProducerIdRequest,
        JoinGroup => JoinGroupRequest,
        LeaveGroup => LeaveGroupRequest,
        ListGroups => ListGroupsRequest,
        ListOffsets => ListOffsetsRequest,
        ListTransactions => ListTransactionsRequest,
        Metadata => MetadataRequest,
        OffsetCommit => OffsetCommitRequest,
        OffsetDelete => OffsetDeleteRequest,
        OffsetFetch => OffsetFetchRequest,
        Produce => ProduceRequest,
        SyncGroup => SyncGroupRequest,
        TxnOffsetCommit => TxnOffsetCommitRequest,
    };
    if decoded.is_err() {
        return FrameOutcome::Undecodable;
    }
    if key == ApiKey::Produce {
        let mut body = request.body.clone();
        if let Ok(produce) = ProduceRequest::decode(&mut body, version) {
            let batches = produce.topic_data.iter().flat_map(|t| t.partition_data.iter());
            for records in batches.filter_map(|p| p.records.as_ref()) {
                let _ = crate::log::batch::validate_all(records, crate::log::batch::Check::Produced);
            }
        }
    }
    FrameOutcome::Decoded
}
