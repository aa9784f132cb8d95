//! A follower's fetchers (issue #15, Build 3): on each shard, one fetcher per leader node
//! copies every partition this shard follows from that leader, over one connection, with
//! Kafka's own Fetch (v12, `replica_id` = this node's id) — Kafka's replica fetcher threads,
//! thread-per-core: from each local log end, whole batches appended as the leader wrote
//! them (`PartitionLog::append_replicated`), the leader's high watermark taken as the
//! follower's. The fetch offsets tell the leader what this replica holds, which moves the
//! leader's high watermark (acks=all waits on it).
//!
//! Each partition's fetch carries the leader epoch of the follower's last batch; where the
//! follower's log diverged from the leader's (it copied from a leader that lost leadership
//! before the others had it), the leader answers with the diverging epoch and its end
//! there, and the follower cuts its log to it and fetches again (Kafka's KIP-320 truncation
//! through Fetch).
//!
//! OFFSET_OUT_OF_RANGE is Kafka's `handleOutOfRangeError`: a follower past the leader's log
//! cuts back to the leader's high watermark; one whose log ends below the leader's log start
//! (it was away while retention or DeleteRecords removed what it lacks, or it is new) starts
//! its log again, empty, at that log start (`PartitionLog::truncate_fully_and_start_at`) and
//! fetches on from there — from the batch holding it, when the log start lies inside a batch.
//!
//! Not yet as Kafka: no fetch sessions (every fetch names every partition).

use crate::log::{PartitionLog, TopicPartition};
use bytes::Bytes;
use glommio::net::TcpStream;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// The Fetch version spoken (topic names, `replica_id` in the body).
const FETCH_VERSION: i16 = 12;
/// How long the leader may hold a fetch with nothing new (Kafka's `replica.fetch.wait.max.ms`).
const FETCH_WAIT_MS: i32 = 500;
/// Bytes per partition per fetch (Kafka's `replica.fetch.max.bytes`).
const PARTITION_MAX_BYTES: i32 = 1 << 20;
/// Bytes per fetch (Kafka's `replica.fetch.response.max.bytes`).
const FETCH_MAX_BYTES: i32 = 10 << 20;
/// Pause after an error before trying again (Kafka's `replica.fetch.backoff.ms`).
const BACKOFF: Duration = Duration::from_millis(200);
/// How long a connection attempt or an exchange may take.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The partitions a shard follows from one leader node, and its fetcher's stop switch.
#[derive(Debug, Default)]
pub struct Fetcher {
    parts: RefCell<BTreeMap<TopicPartition, Rc<PartitionLog>>>,
    /// Partitions whose last answer was an error, left out of fetches until then (Kafka's
    /// delayed partitions): one refusing partition must not turn the others' long polls
    /// into a busy loop, as an error answers a fetch at once.
    delayed: RefCell<BTreeMap<TopicPartition, std::time::Instant>>,
    stop: Cell<bool>,
}

impl Fetcher {
    /// Copies `tp` into `log` from the next fetch on.
    pub fn add(&self, tp: TopicPartition, log: Rc<PartitionLog>) {
        self.parts.borrow_mut().insert(tp, log);
    }

    /// Stops copying `tp`; true when no partition is left (the fetcher then stops).
    pub fn remove(&self, tp: &TopicPartition) -> bool {
        let mut parts = self.parts.borrow_mut();
        parts.remove(tp);
        if parts.is_empty() {
            self.stop.set(true);
        }
        parts.is_empty()
    }

    /// The log `tp` is copied into now, if it still is (a role change removes it while an
    /// answer is on its way).
    fn current(&self, tp: &TopicPartition, log: &Rc<PartitionLog>) -> bool {
        self.parts.borrow().get(tp).is_some_and(|l| Rc::ptr_eq(l, log))
    }
}

/// Runs `fetcher` until it is stopped: fetches its partitions from node `leader`, whose Kafka
/// address (host:port) `address` gives while the leader is known and live.
pub async fn run(fetcher: Rc<Fetcher>, leader: i32, me: i32, address: impl Fn() -> Option<String>) {
    let mut correlation = 0i32;
    let mut stream: Option<TcpStream> = None;
    let mut complained = false;
    while !fetcher.stop.get() {
        if stream.is_none() {
            let Some(addr) = address() else {
                glommio::timer::sleep(BACKOFF).await;
                continue;
            };
            match crate::peer::connect(addr.as_str(), IO_TIMEOUT).await {
                Ok(s) => stream = Some(s),
                Err(e) => {
                    if !complained {
                        eprintln!("sluice: replica fetcher from node {leader}: {addr} not reachable: {e}");
                        complained = true;
                    }
                    glommio::timer::sleep(BACKOFF).await;
                    continue;
                }
            }
        }
        let now = std::time::Instant::now();
        fetcher.delayed.borrow_mut().retain(|_, until| *until > now);
        let parts: Vec<(TopicPartition, Rc<PartitionLog>)> = fetcher
            .parts
            .borrow()
            .iter()
            .filter(|(tp, _)| !fetcher.delayed.borrow().contains_key(*tp))
            .map(|(tp, l)| (tp.clone(), l.clone()))
            .collect();
        if parts.is_empty() {
            glommio::timer::sleep(BACKOFF).await;
            continue;
        }
        correlation = correlation.wrapping_add(1);
        let s = stream.as_mut().expect("connected above");
        let exchange = fetch_once(s, &parts, me, correlation);
        let answer = futures_lite::future::or(async { Some(exchange.await) }, async {
            glommio::timer::sleep(IO_TIMEOUT + Duration::from_millis(FETCH_WAIT_MS as u64)).await;
            None
        })
        .await;
        let answers = match answer {
            Some(Ok(a)) => a,
            Some(Err(_)) | None => {
                stream = None;
                glommio::timer::sleep(BACKOFF).await;
                continue;
            }
        };
        complained = false;
        for (tp, log) in &parts {
            if fetcher.stop.get() || !fetcher.current(tp, log) {
                continue; // the partition's role changed while the answer was on its way
            }
            let Some(answer) = answers.get(tp) else { continue };
            if !take(tp, log, answer).await {
                // Not the leader yet, moving, or a local failure: ask again shortly.
                fetcher.delayed.borrow_mut().insert(tp.clone(), std::time::Instant::now() + BACKOFF);
            }
        }
    }
}

/// Acts on one partition's answer; false when it was an error to wait out.
async fn take(tp: &TopicPartition, log: &Rc<PartitionLog>, answer: &Answer) -> bool {
    let (error, hw, records, diverging, leader_start) = answer;
    match *error {
        0 => {}
        crate::errors::OFFSET_OUT_OF_RANGE => return out_of_range(tp, log, *hw, *leader_start).await,
        _ => return false,
    }
    if let Some((epoch, end)) = diverging {
        let cut = (*end).min(log.log_end_offset());
        eprintln!("sluice: replica of {tp}: diverged from the leader after epoch {epoch}; cutting back to {cut}");
        if let Err(e) = log.truncate_to(cut).await {
            eprintln!("sluice: replica of {tp}: cutting back failed: {e}");
            return false;
        }
        return true;
    }
    if let Some(records) = records.as_ref().filter(|r| !r.is_empty()) {
        if let Some(base) = straddled_start(log, records) {
            // The leader's log start lies inside its first batch (DeleteRecords need not
            // fall on a batch boundary), and this empty log starts there: it starts at the
            // batch instead, as Kafka's follower does; the leader's log start is taken below.
            eprintln!("sluice: replica of {tp}: the leader's first batch begins at {base}; starting the log there");
            if let Err(e) = log.truncate_fully_and_start_at(base).await {
                eprintln!("sluice: replica of {tp}: starting the log at {base} failed: {e}");
                return false;
            }
        }
        if let Err(e) = log.append_replicated(records, crate::runtime::now_ms()).await {
            eprintln!("sluice: replica of {tp}: appending what the leader sent failed: {e}");
            return false;
        }
    }
    log.follow_high_watermark(*hw);
    // The leader's log start, where this replica has the offsets below it: retention,
    // DeleteRecords and a coordinator's compaction on the leader trim the follower too, as
    // in Kafka.
    if *leader_start > log.log_start_offset() && *leader_start <= log.high_watermark() {
        if let Err(e) = log.advance_log_start(*leader_start).await {
            eprintln!("sluice: replica of {tp}: moving the log start to the leader's {leader_start} failed: {e}");
        }
    }
    true
}

/// OFFSET_OUT_OF_RANGE from the leader (Kafka's `handleOutOfRangeError`): this log ends past
/// the leader's (it cuts back to the leader's high watermark), or below the leader's log start
/// (retention or DeleteRecords removed what it lacks: it starts again, empty, at the leader's
/// log start). True when it did either, so the next fetch goes out at once.
async fn out_of_range(tp: &TopicPartition, log: &Rc<PartitionLog>, hw: i64, leader_start: i64) -> bool {
    let end = log.log_end_offset();
    if hw >= 0 && hw < end {
        eprintln!("sluice: replica of {tp}: past the leader's log; cutting back to its high watermark {hw}");
        if let Err(e) = log.truncate_to(hw).await {
            eprintln!("sluice: replica of {tp}: cutting back failed: {e}");
            return false;
        }
        return true;
    }
    if leader_start > end {
        eprintln!(
            "sluice: replica of {tp}: log end {end} is below the leader's log start {leader_start}; \
             starting again, empty, at {leader_start}"
        );
        if let Err(e) = log.truncate_fully_and_start_at(leader_start).await {
            eprintln!("sluice: replica of {tp}: starting again at {leader_start} failed: {e}");
            return false;
        }
        return true;
    }
    false
}

/// Where this log must start for `records` to continue it: the base offset of their first
/// batch when that batch begins below the log's end and holds it, and the log is empty (it
/// just started at the leader's log start, inside that batch). None otherwise, including
/// for a first batch that does not check out (the append then refuses it).
fn straddled_start(log: &PartitionLog, records: &[u8]) -> Option<i64> {
    use crate::log::batch::{validate, Check};
    let end = log.log_end_offset();
    if log.log_start_offset() != end {
        return None;
    }
    let first = validate(records, 0, Check::Stored).ok()?;
    // The base offset lies outside the CRC: checked, not trusted.
    let last = first.base_offset.checked_add(first.last_offset_delta as i64)?;
    (first.base_offset >= 0 && first.base_offset < end && last >= end).then_some(first.base_offset)
}

/// What one Fetch answered for a partition: error code, high watermark, records,
/// (epoch, end offset) where the follower's log diverged, and the leader's log start.
type Answer = (i16, i64, Option<Bytes>, Option<(i32, i64)>, i64);

/// One Fetch of `parts`, each from its log end with the leader epoch of its last batch.
async fn fetch_once(
    stream: &mut TcpStream,
    parts: &[(TopicPartition, Rc<PartitionLog>)],
    me: i32,
    correlation: i32,
) -> std::io::Result<BTreeMap<TopicPartition, Answer>> {
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for (tp, log) in parts {
        let last_epoch = log.leader_epochs().last().map_or(-1, |e| e.epoch);
        topics.entry(tp.topic.as_str()).or_default().push(
            FetchPartition::default()
                .with_partition(tp.partition)
                .with_fetch_offset(log.log_end_offset())
                .with_current_leader_epoch(-1)
                .with_last_fetched_epoch(last_epoch)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(PARTITION_MAX_BYTES),
        );
    }
    let topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(name.to_string())))
                .with_partitions(partitions)
        })
        .collect();
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(me))
        .with_max_wait_ms(FETCH_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics);
    let client_id = format!("sluice-replica-{me}");
    let response: FetchResponse =
        crate::peer::exchange(stream, ApiKey::Fetch, FETCH_VERSION, correlation, &client_id, &request).await?;
    let mut out = BTreeMap::new();
    if response.error_code != 0 {
        for (tp, _) in parts {
            out.insert(tp.clone(), (response.error_code, -1, None, None, -1));
        }
        return Ok(out);
    }
    for topic in response.responses {
        let name = topic.topic.0.to_string();
        for part in topic.partitions {
            let d = &part.diverging_epoch;
            let diverging = (d.epoch >= 0 && d.end_offset >= 0).then_some((d.epoch, d.end_offset));
            let tp = TopicPartition::new(name.clone(), part.partition_index);
            out.insert(tp, (part.error_code, part.high_watermark, part.records, diverging, part.log_start_offset));
        }
    }
    Ok(out)
}
