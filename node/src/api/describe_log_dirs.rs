//! DescribeLogDirs, versions 1–4: the node's one log directory (`--data-dir`, absolute), each
//! partition's size on disk in it, and (v4) the file system's total and usable bytes. No
//! replica lags here (offset lag 0) and no future replicas (moves between log dirs).

use super::{decode, string, topic_name, Close};
use crate::errors;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (1, 4);

/// (total, usable) bytes of the file system holding `dir`, or (-1, -1).
fn space(dir: &std::path::Path) -> (i64, i64) {
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else { return (-1, -1) };
    // SAFETY: statvfs writes into the struct we own; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return (-1, -1);
    }
    let frsize = st.f_frsize as i64;
    (st.f_blocks as i64 * frsize, st.f_bavail as i64 * frsize)
}

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: DescribeLogDirsRequest = decode(req)?;
    // None: every partition; else the named ones (those that exist).
    let wanted: Option<BTreeSet<(String, i32)>> = request
        .topics
        .as_ref()
        .map(|topics| topics.iter().flat_map(|t| t.partitions.iter().map(move |p| (string(&t.topic.0), *p))).collect());
    let (_, stats) = shard.all_stats().await;
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for s in stats {
        if wanted.as_ref().is_some_and(|w| !w.contains(&(s.tp.topic.clone(), s.tp.partition))) {
            continue;
        }
        by_topic.entry(s.tp.topic.clone()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(s.tp.partition)
                .with_partition_size(s.size_bytes as i64)
                .with_offset_lag(0)
                .with_is_future_key(false),
        );
    }
    let topics = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            DescribeLogDirsTopic::default().with_name(topic_name(&name)).with_partitions(partitions)
        })
        .collect();
    let dir = &shard.setup.data_dir;
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
    let (total, usable) = space(&dir);
    let result = DescribeLogDirsResult::default()
        .with_error_code(errors::NONE)
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(total)
        .with_usable_bytes(usable);
    let body = DescribeLogDirsResponse::default().with_error_code(errors::NONE).with_results(vec![result]);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
