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
    /// A follower's fetch (Kafka's replica id, issue #15): the node id of the replica. It
    /// reads up to the log end, and its fetch offset is its log end for the high watermark.
    pub replica: Option<i32>,
    /// The leader epoch of the follower's last batch (-1: none): where it diverges from
    /// this log, the answer says so instead of sending records (Kafka's KIP-320 fetch).
    pub last_fetched_epoch: i32,
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
    /// To a follower whose log diverged from this one: (the epoch, its end offset here)
    /// — the follower cuts its log there and fetches again (Kafka's DivergingEpoch).
    pub diverging: Option<(i32, i64)>,
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
            diverging: None,
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
    if acks == -1 && log.in_sync_replicas() < log.config().min_insync_replicas as usize {
        let (isr, min) = (log.in_sync_replicas(), log.config().min_insync_replicas);
        return failed(errors::NOT_ENOUGH_REPLICAS, format!("{isr} in-sync replicas, min.insync.replicas is {min}"));
    }
    let info = match log.append_shared(&records, log.leader_epoch(), now).await {
        Ok(info) => info,
        Err(e) => return failed(e.kafka_error_code(), e.to_string()),
    };
    if acks == -1 {
        let timeout = Duration::from_millis(timeout_ms.max(0) as u64);
        let deadline = std::time::Instant::now() + timeout;
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
        // Kafka's acks=all: every in-sync replica has the batches (the high watermark
        // passed them).
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match log.until_replicated(info.last_offset + 1, left).await {
            // Kafka's `checkEnoughReplicasReachOffset`: committed, but by fewer in-sync
            // replicas than `min.insync.replicas` (the ISR shrank while it waited).
            Some(true) if log.in_sync_replicas() < log.config().min_insync_replicas as usize => {
                let (isr, min) = (log.in_sync_replicas(), log.config().min_insync_replicas);
                let why = format!("appended, but {isr} in-sync replicas have it and min.insync.replicas is {min}");
                return failed(errors::NOT_ENOUGH_REPLICAS_AFTER_APPEND, why);
            }
            Some(true) => {}
            Some(false) => {
                return failed(errors::NOT_LEADER_OR_FOLLOWER, "the partition stopped being served here".into())
            }
            None => {
                return failed(
                    errors::REQUEST_TIMED_OUT,
                    "the followers did not have the records within timeout.ms".into(),
                )
            }
        }
    }
    ProduceOutcome {
        error: errors::NONE,
        base_offset: info.first_offset,
        log_start_offset: info.log_start_offset,
        message: None,
    }
}

/// Where a follower whose last batch has leader epoch `epoch` and whose log ends at `end`
/// diverges from `log`: Kafka's rule, `end_offset_for_epoch` of its epoch — a different
/// epoch, or an end below the follower's.
fn diverges(log: &PartitionLog, epoch: i32, end: i64) -> Option<(i32, i64)> {
    let (found, found_end) = log.end_offset_for_epoch(epoch);
    (found != epoch || found_end < end).then_some((found, found_end))
}

/// Reads whole batches from `part.offset` (read_committed: up to the last stable offset,
/// with the aborted transactions of the range).
pub async fn fetch(log: &Rc<PartitionLog>, part: &FetchPart) -> FetchOutcome<FileRange> {
    let read = match part.replica {
        // Below the log start a follower is out of range whatever its epochs say (Kafka's
        // `readRecords` checks this first): it starts again at the log start the answer
        // carries, instead of being told to cut back to an epoch's end first.
        Some(_) if part.offset < log.log_start_offset() => Err(LogError::OffsetOutOfRange {
            offset: part.offset,
            log_start: log.log_start_offset(),
            log_end: log.log_end_offset(),
        }),
        Some(_) if part.last_fetched_epoch >= 0 && diverges(log, part.last_fetched_epoch, part.offset).is_some() => {
            let (epoch, end) = diverges(log, part.last_fetched_epoch, part.offset).expect("checked");
            return FetchOutcome {
                error: errors::NONE,
                high_watermark: log.high_watermark(),
                log_start_offset: log.log_start_offset(),
                data: None,
                last_stable_offset: log.last_stable_offset(),
                aborted: Vec::new(),
                diverging: Some((epoch, end)),
            };
        }
        Some(replica) => {
            log.follower_fetched(replica, part.offset);
            log.read_replica(part.offset, part.max_bytes).await
        }
        None => log.read_upto(part.offset, part.max_bytes, part.at_least_one, part.read_committed).await,
    };
    match read {
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
                diverging: None,
            }
        }
        Err(e) => FetchOutcome {
            error: e.kafka_error_code(),
            high_watermark: log.high_watermark(),
            log_start_offset: log.log_start_offset(),
            data: None,
            last_stable_offset: log.last_stable_offset(),
            aborted: Vec::new(),
            diverging: None,
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

/// ListOffsets v0 for one partition: (error, offsets newest first). See [`offsets_before`];
/// `from_consumer` (replica id -1) caps the answer at the high watermark, as Kafka does.
pub fn list_offsets_before(
    log: &PartitionLog,
    timestamp: i64,
    max_num_offsets: i32,
    from_consumer: bool,
    now_ms: i64,
) -> (i16, Vec<i64>) {
    let points = match log.offsets_by_write_time(now_ms) {
        Ok(points) => points,
        Err(e) => return (e.kafka_error_code(), Vec::new()),
    };
    let high_watermark = from_consumer.then(|| log.high_watermark());
    match offsets_before(&points, timestamp, max_num_offsets, high_watermark) {
        Ok(offsets) => (errors::NONE, offsets),
        Err(error) => (error, Vec::new()),
    }
}

/// Kafka 3.9's ListOffsets v0 (`UnifiedLog.legacyFetchOffsetsBefore`, then
/// `Partition.legacyFetchOffsetsForTimestamp` for consumers), over `points`: (offset, time
/// in ms) per segment oldest first, from [`PartitionLog::offsets_by_write_time`].
///
/// -1 (latest) starts at the last point, -2 (earliest) at the first, a time at the last
/// point whose time is at or before it (none: nothing); from there up to `max_num_offsets`
/// offsets going back, newest first. So a time answers the base offsets of the segments
/// last written at or before it — not the first record at or after it, as v1+ do. With a
/// `high_watermark` (the asker is a consumer), offsets above it are replaced by it.
/// A negative `max_num_offsets` is UNKNOWN_SERVER_ERROR, as in Kafka (its array size goes
/// negative). `timestamp` is -1, -2 or a time: the caller refuses other negative values.
pub fn offsets_before(
    points: &[(i64, i64)],
    timestamp: i64,
    max_num_offsets: i32,
    high_watermark: Option<i64>,
) -> Result<Vec<i64>, i16> {
    let start: Option<usize> = match timestamp {
        -1 => points.len().checked_sub(1),
        -2 => (!points.is_empty()).then_some(0),
        time => points.iter().rposition(|&(_, at)| at <= time),
    };
    let available = start.map_or(0, |i| i + 1);
    let count = i64::from(max_num_offsets).min(available as i64);
    let Ok(count) = usize::try_from(count) else { return Err(errors::UNKNOWN_SERVER_ERROR) };
    let mut offsets: Vec<i64> = points[..available].iter().rev().take(count).map(|&(offset, _)| offset).collect();
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    if let Some(hw) = high_watermark {
        if offsets.iter().any(|&o| o > hw) {
            let kept = offsets.iter().position(|&o| o <= hw).unwrap_or(offsets.len());
            offsets.splice(..kept, [hw]);
        }
    }
    Ok(offsets)
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
    log.sync_to(info.last_offset + 1).await.map_err(|e| format!("{tp}: {e}"))?;
    crate::internal::replicated(log, tp, info.last_offset + 1).await
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
/// The internal topics say `compact` (as Kafka's do), but their coordinators compact them by
/// rewriting their live state (`internal`): the log cleaner leaves them alone, and their
/// retention is off (`retention.ms` = `retention.bytes` = -1).
pub fn log_config(broker: &BrokerConfig, tp: &TopicPartition, overrides: &BTreeMap<String, String>) -> LogConfig {
    let mut config = crate::topic_config::log_config(&broker.log, &topic_configs(broker, &tp.topic, overrides))
        .unwrap_or_else(|e| {
            eprintln!("sluice: {tp}: topic configs ignored: {e}");
            broker.log.clone()
        });
    if is_internal(&tp.topic) {
        config.cleanup_compact = false;
        config.cleanup_delete = true;
    }
    config
}

/// The codec a topic's `compression.type` (or the broker's, when the topic has none) asks
/// batches to be stored in (None: as the producer sent them).
pub fn stored_codec(broker: &BrokerConfig, topic_configs: &BTreeMap<String, String>) -> Option<Codec> {
    match crate::topic_config::compression(&broker.compression_type, topic_configs) {
        crate::topic_config::TopicCompression::Codec(c) => Some(c),
        crate::topic_config::TopicCompression::Producer => None,
    }
}

/// DeleteRecords for one partition: moves the log start to `offset` (-1: the high
/// watermark) and deletes the segments wholly below it; returns (error, the new low
/// watermark). An offset past the high watermark, or below -1, is OFFSET_OUT_OF_RANGE; one
/// at or below the current log start changes nothing. Internal topics refuse it, as Kafka
/// does (INVALID_TOPIC_EXCEPTION): their coordinators own what they hold.
pub async fn delete_records(log: &Rc<PartitionLog>, tp: &TopicPartition, offset: i64) -> (i16, i64) {
    if tp.topic == crate::group::store::OFFSETS_TOPIC || tp.topic == crate::txn::TXN_TOPIC {
        return (errors::INVALID_TOPIC_EXCEPTION, -1);
    }
    let offset = if offset == -1 { log.high_watermark() } else { offset };
    match log.advance_log_start(offset).await {
        Ok(low_watermark) => (errors::NONE, low_watermark),
        Err(e) => (e.kafka_error_code(), -1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Segments at 0, 10 and 20 last written at t=100, 200 and 300, the log end 25 at
    /// t=1000 (now): Kafka 3.9's ListOffsets v0 answers, case by case.
    #[test]
    fn offsets_before_answers_as_kafka_3_9() {
        let points = [(0, 100), (10, 200), (20, 300), (25, 1_000)];
        let cases: [(i64, i32, &[i64]); 12] = [
            (-1, 1, &[25]),
            (-1, 3, &[25, 20, 10]),
            (-1, 100, &[25, 20, 10, 0]),
            (-2, 1, &[0]),
            (-2, 5, &[0]),
            (250, 1, &[10]),
            (250, 10, &[10, 0]),
            (200, 10, &[10, 0]),
            (99, 10, &[]),
            (5_000, 2, &[25, 20]),
            (-1, 0, &[]),
            (300, 2, &[20, 10]),
        ];
        for (timestamp, max, want) in cases {
            assert_eq!(offsets_before(&points, timestamp, max, None), Ok(want.to_vec()), "{timestamp} max {max}");
        }
        assert_eq!(offsets_before(&points, -1, -1, None), Err(errors::UNKNOWN_SERVER_ERROR));
        // An empty time range still errs on a negative count, like Kafka's array.
        assert_eq!(offsets_before(&points, 99, -1, None), Err(errors::UNKNOWN_SERVER_ERROR));
    }

    /// A consumer never sees an offset above the high watermark: those are replaced by it
    /// (here a segment rolled for an append still being written).
    #[test]
    fn offsets_before_caps_a_consumer_at_the_high_watermark() {
        let points = [(0, 100), (10, 200), (30, 300)];
        assert_eq!(offsets_before(&points, -1, 3, Some(25)), Ok(vec![25, 10, 0]));
        assert_eq!(offsets_before(&points, -1, 3, None), Ok(vec![30, 10, 0]));
        assert_eq!(offsets_before(&points, -1, 3, Some(5)), Ok(vec![5, 0]));
        assert_eq!(offsets_before(&points, -2, 3, Some(25)), Ok(vec![0]));
    }

    /// A log start inside a segment (points already clamped to it) can repeat an offset;
    /// the answer keeps Kafka's order, newest first.
    #[test]
    fn offsets_before_keeps_repeats_newest_first() {
        let points = [(15, 100), (15, 200), (20, 300)];
        assert_eq!(offsets_before(&points, -1, 5, None), Ok(vec![20, 15, 15]));
    }
}
