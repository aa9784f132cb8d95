//! Kafka's operations on one partition log this shard owns — what produce, fetch, ListOffsets
//! and a transaction marker mean for a partition: acks and the group-commit wait, the topic's
//! `compression.type`, the last stable offset and aborted transactions of read_committed
//! fetches, ListOffsets' sentinel timestamps, and the settings a partition's log gets. No
//! routing here: the router (`shard`) finds the owner and calls these there.

use crate::config::BrokerConfig;
use crate::errors;
use crate::log::batch::Codec;
use crate::log::{FileRange, LogConfig, LogError, PartitionLog, TopicPartition};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// One partition's records of a produce request.
#[derive(Debug, Clone)]
pub struct ProducePart {
    pub tp: TopicPartition,
    pub records: Bytes,
}

/// What a produce did to one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceOutcome {
    pub error: i16,
    pub base_offset: i64,
    pub log_start_offset: i64,
    pub message: Option<String>,
}

impl ProduceOutcome {
    /// Nothing appended.
    pub fn failed(error: i16, log_start_offset: i64, message: Option<String>) -> Self {
        ProduceOutcome { error, base_offset: -1, log_start_offset, message }
    }
}

/// One partition of a fetch.
#[derive(Debug, Clone)]
pub struct FetchPart {
    pub tp: TopicPartition,
    pub offset: i64,
    pub max_bytes: usize,
    pub at_least_one: bool,
    /// isolation_level=1: only up to the last stable offset, with the aborted transactions.
    pub read_committed: bool,
}

/// What a fetch found in one partition; `D` is the data: a local range or a sent one.
#[derive(Debug)]
pub struct FetchOutcome<D> {
    pub error: i16,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub data: Option<D>,
    pub last_stable_offset: i64,
    /// read_committed: aborted transactions in the returned range (producer id, first offset).
    pub aborted: Vec<(i64, i64)>,
}

impl<D> FetchOutcome<D> {
    /// An outcome with no data and no offsets.
    pub fn failed(error: i16) -> Self {
        FetchOutcome {
            error,
            high_watermark: -1,
            log_start_offset: -1,
            data: None,
            last_stable_offset: -1,
            aborted: Vec::new(),
        }
    }
}

/// Appends a produce request's batches for one partition and waits as `acks` requires
/// (-1: until the group commit's fdatasync covers them, at most `timeout_ms`). With
/// `recompress_to` (the topic's `compression.type`), batches in another codec are
/// re-encoded first.
pub async fn produce(
    log: &Rc<PartitionLog>,
    records: Bytes,
    recompress_to: Option<Codec>,
    acks: i16,
    timeout_ms: i32,
    now: i64,
) -> ProduceOutcome {
    let failed = |error: i16, message: String| ProduceOutcome::failed(error, log.log_start_offset(), Some(message));
    let records = match recompress_to.map(|c| crate::log::records::recompress(&records, c)) {
        None => records,
        Some(Ok(v)) => Bytes::from(v),
        Some(Err(e)) => return failed(e.kafka_error_code(), e.to_string()),
    };
    let info = match log.append_shared(&records, 0, now).await {
        Ok(info) => info,
        Err(e) => return failed(e.kafka_error_code(), e.to_string()),
    };
    if acks == -1 {
        let timeout = Duration::from_millis(timeout_ms.max(0) as u64);
        let synced = futures_lite::future::or(async { Some(log.sync_to(info.last_offset + 1).await) }, async {
            glommio::timer::sleep(timeout).await;
            None
        })
        .await;
        match synced {
            Some(Ok(())) => {}
            Some(Err(e)) => return failed(e.kafka_error_code(), e.to_string()),
            None => return failed(errors::REQUEST_TIMED_OUT, "the fdatasync did not finish within timeout.ms".into()),
        }
    }
    ProduceOutcome {
        error: errors::NONE,
        base_offset: info.first_offset,
        log_start_offset: info.log_start_offset,
        message: None,
    }
}

/// Reads whole batches from `part.offset` (read_committed: up to the last stable offset,
/// with the aborted transactions of the range).
pub async fn fetch(log: &Rc<PartitionLog>, part: &FetchPart) -> FetchOutcome<FileRange> {
    match log.read_upto(part.offset, part.max_bytes, part.at_least_one, part.read_committed).await {
        Ok(info) => {
            let aborted = match (&info.range, part.read_committed) {
                (Some(_), true) => log.aborted_between(info.first_offset, info.next_offset),
                _ => Vec::new(),
            };
            FetchOutcome {
                error: errors::NONE,
                high_watermark: info.high_watermark,
                log_start_offset: info.log_start_offset,
                data: info.range,
                last_stable_offset: log.last_stable_offset(),
                aborted,
            }
        }
        Err(e) => FetchOutcome {
            error: e.kafka_error_code(),
            high_watermark: log.high_watermark(),
            log_start_offset: log.log_start_offset(),
            data: None,
            last_stable_offset: log.last_stable_offset(),
            aborted: Vec::new(),
        },
    }
}

/// ListOffsets for one partition: (error, timestamp, offset). `timestamp` is a time in ms or
/// one of Kafka's sentinels: -2 earliest, -1 latest (the last stable offset when
/// `read_committed`), -3 the record with the largest timestamp.
pub async fn list_offset(log: &Rc<PartitionLog>, timestamp: i64, read_committed: bool) -> (i16, i64, i64) {
    let found: Result<Option<(i64, i64)>, LogError> = match timestamp {
        -2 => Ok(Some((log.log_start_offset(), -1))),
        -1 if read_committed => Ok(Some((log.last_stable_offset(), -1))),
        -1 => Ok(Some((log.high_watermark(), -1))),
        -3 => log.max_timestamp_offset().await,
        ts if ts >= 0 => log.offset_for_timestamp(ts).await,
        _ => return (errors::INVALID_REQUEST, -1, -1),
    };
    match found {
        Ok(Some((offset, ts))) => (errors::NONE, ts, offset),
        Ok(None) => (errors::NONE, -1, -1),
        Err(e) => (e.kafka_error_code(), -1, -1),
    }
}

/// Appends a COMMIT or ABORT marker for the producer and waits for its fdatasync.
pub async fn write_marker(
    log: &Rc<PartitionLog>,
    tp: &TopicPartition,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    now: i64,
) -> Result<(), String> {
    let marker = if commit { crate::log::batch::CONTROL_COMMIT } else { crate::log::batch::CONTROL_ABORT };
    let info = log.append_marker(producer_id, epoch, marker, 0, now).await.map_err(|e| format!("{tp}: {e}"))?;
    log.sync_to(info.last_offset + 1).await.map_err(|e| format!("{tp}: {e}"))
}

/// The topic configs a topic runs with and DescribeConfigs reports: a user topic's own
/// overrides; the internal topics' are the node's — compacted by their coordinators (see
/// `internal`), never trimmed by time or size, with segment sizes of their own (the
/// `offsets.topic.segment.bytes` / `transaction.state.log.segment.bytes` settings), as Kafka
/// creates them.
pub fn topic_configs(
    broker: &BrokerConfig,
    topic: &str,
    overrides: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let segment_bytes = if topic == crate::group::store::OFFSETS_TOPIC {
        broker.offsets_topic_segment_bytes
    } else if topic == crate::txn::TXN_TOPIC {
        broker.transaction_state_segment_bytes
    } else {
        return overrides.clone();
    };
    [
        ("cleanup.policy", "compact".to_string()),
        ("compression.type", "producer".to_string()),
        ("retention.bytes", "-1".to_string()),
        ("retention.ms", "-1".to_string()),
        ("segment.bytes", segment_bytes.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Whether a topic is one of the node's internal topics, whose configs are the node's.
pub fn is_internal(topic: &str) -> bool {
    topic == crate::group::store::OFFSETS_TOPIC || topic == crate::txn::TXN_TOPIC
}

/// A partition's log settings: the broker's with the topic's configs ([`topic_configs`]).
pub fn log_config(broker: &BrokerConfig, tp: &TopicPartition, overrides: &BTreeMap<String, String>) -> LogConfig {
    crate::topic_config::log_config(&broker.log, &topic_configs(broker, &tp.topic, overrides)).unwrap_or_else(|e| {
        eprintln!("sluice: {tp}: topic configs ignored: {e}");
        broker.log.clone()
    })
}

/// The codec a topic's `compression.type` (or the broker's, when the topic has none) asks
/// batches to be stored in (None: as the producer sent them).
pub fn stored_codec(broker: &BrokerConfig, topic_configs: &BTreeMap<String, String>) -> Option<Codec> {
    match crate::topic_config::compression(&broker.compression_type, topic_configs) {
        crate::topic_config::TopicCompression::Codec(c) => Some(c),
        crate::topic_config::TopicCompression::Producer => None,
    }
}
