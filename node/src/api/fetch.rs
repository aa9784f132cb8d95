//! Fetch, versions 4–16.
//!
//! Plan: group the partitions by owning shard; read local ones inline and send each other
//! shard one message. While fewer than `min_bytes` came back, park on every partition's log
//! end (locally on its watch, remotely through one `Wait` per shard) until any of them
//! grows or `max_wait_ms` passes, and read again. Nothing spins.
//!
//! Records are never copied into the response: the body is encoded by the crate with a
//! 16-byte marker in each partition's `records`, then cut at the markers, so the frame is
//! "bytes, file range, bytes, file range, ..." (Kafka's `RecordsWriter` does the same).
//! Sizes: `partition_max_bytes` per partition, `max_bytes` for the response; the first
//! partition with data may exceed both by one batch (KIP-74).
//! Fetch sessions are declined (session id 0), which every client handles by sending full
//! fetches.

use super::{decode, topic_name, uuid, Close};
use crate::errors;
use crate::log::{FileRange, TopicPartition};
use crate::protocol::{encode_response, Chunk, Request, Response};
use crate::shard::{ops, FetchOutcome, FetchPart, SentRange, Shard};
use crate::topics::TopicId;
use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId};
use std::collections::BTreeMap;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

pub const VERSIONS: (i16, i16) = (4, 16);

/// Kafka caps a fetch's wait; so do we, so a request cannot park a task for hours.
const MAX_WAIT_CAP: Duration = Duration::from_secs(60);

/// Data of one partition, local or from another shard.
enum Data {
    Local(FileRange),
    Sent(SentRange),
}

impl Data {
    fn len(&self) -> u64 {
        match self {
            Data::Local(r) => r.length,
            Data::Sent(r) => r.length,
        }
    }
}

/// A partition of the request: where it sits in the response and what to read.
struct Slot {
    topic: usize,
    part: FetchPart,
    error: i16,
}

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: FetchRequest = decode(req)?;
    let version = req.api_version;
    let started = Instant::now();
    let max_wait = Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let response_max = if request.max_bytes > 0 { request.max_bytes as u64 } else { i32::MAX as u64 };
    // A follower's fetch names its node (v15+ in ReplicaState); consumers send -1.
    let replica_id = if version >= 15 { request.replica_state.replica_id.0 } else { request.replica_id.0 };
    let replica = (replica_id >= 0).then_some(replica_id);
    let mut topics_out: Vec<(String, uuid::Uuid)> = Vec::new();
    let mut slots = Vec::new();
    let cluster = shard.config().quorum_voters.is_some();
    for topic in &request.topics {
        let info = if version >= 13 {
            shard.registry.borrow().by_id(TopicId(topic.topic_id.as_u128())).cloned()
        } else {
            shard.registry.borrow().get(&topic.topic.0).cloned()
        };
        let name = info.as_ref().map_or_else(|| topic.topic.0.to_string(), |i| i.name.clone());
        topics_out.push((name.clone(), topic.topic_id));
        for p in &topic.partitions {
            let known = info.as_ref().is_some_and(|i| p.partition >= 0 && p.partition < i.partitions);
            let error = match (known, version >= 13) {
                (true, _) if version >= 9 && cluster => {
                    leader_epoch_check(info.as_ref(), p.partition, p.current_leader_epoch)
                }
                (true, _) => errors::NONE,
                (false, true) if info.is_none() => errors::UNKNOWN_TOPIC_ID,
                (false, _) => errors::UNKNOWN_TOPIC_OR_PARTITION,
            };
            let part = FetchPart {
                tp: TopicPartition::new(name.clone(), p.partition),
                offset: p.fetch_offset,
                max_bytes: (p.partition_max_bytes.max(0) as u64).min(response_max) as usize,
                at_least_one: true,
                read_committed: request.isolation_level == 1 && replica.is_none(),
                replica,
                last_fetched_epoch: if version >= 12 { p.last_fetched_epoch } else { -1 },
            };
            slots.push(Slot { topic: topics_out.len() - 1, part, error });
        }
    }
    let min_bytes = request.min_bytes.max(0) as u64;
    let mut outcomes = read_all(shard, &slots).await;
    // Long poll: until `min_bytes` are there or `max_wait` is over, park on the partitions'
    // log ends and read again whenever one of them grows.
    loop {
        let bytes: u64 = outcomes.iter().filter_map(|o| o.data.as_ref()).map(Data::len).sum();
        let any_error = outcomes.iter().any(|o| o.error != errors::NONE);
        let left = max_wait.saturating_sub(started.elapsed());
        if bytes >= min_bytes || any_error || left.is_zero() || slots.is_empty() {
            break;
        }
        // Consumers wait for the high watermark to pass what they saw; followers for the
        // log end to pass their fetch offset.
        let ends: Vec<(TopicPartition, i64, bool)> = slots
            .iter()
            .zip(&outcomes)
            .map(|(s, o)| match s.part.replica {
                Some(_) => (s.part.tp.clone(), s.part.offset, true),
                None => (s.part.tp.clone(), o.high_watermark, false),
            })
            .collect();
        wait_any(shard, ends, left).await;
        outcomes = read_all(shard, &slots).await;
    }
    Ok(encode(shard, req, version, &topics_out, &slots, outcomes, response_max))
}

/// KIP-320's check in a cluster (Fetch, OffsetForLeaderEpoch): a request carrying the partition's leader epoch as the
/// client knows it (v9+; -1: none) is refused when that epoch is not this node's —
/// FENCED_LEADER_EPOCH when the client's is older (its metadata is stale), UNKNOWN_LEADER_EPOCH
/// when it is newer (this node missed an election: cut off from the quorum, say). Either way
/// the client refreshes its metadata and goes to the leader it names.
pub(super) fn leader_epoch_check(info: Option<&crate::topics::TopicInfo>, partition: i32, current: i32) -> i16 {
    let Some(info) = info else { return errors::NONE };
    let ours = info.epoch_of(partition);
    match current {
        c if c < 0 || c == ours => errors::NONE,
        c if c < ours => errors::FENCED_LEADER_EPOCH,
        _ => errors::UNKNOWN_LEADER_EPOCH,
    }
}

/// Reads every slot, one hop per owning shard.
async fn read_all(shard: &Rc<Shard>, slots: &[Slot]) -> Vec<FetchOutcome<Data>> {
    let mut out: Vec<Option<FetchOutcome<Data>>> =
        slots.iter().map(|s| (s.error != errors::NONE).then_some(FetchOutcome::failed(s.error))).collect();
    let mut per_shard: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, s) in slots.iter().enumerate().filter(|(_, s)| s.error == errors::NONE) {
        per_shard.entry(shard.owner(&s.part.tp)).or_default().push(i);
    }
    for (owner, idx) in per_shard {
        let parts: Vec<FetchPart> = idx.iter().map(|&i| slots[i].part.clone()).collect();
        // A local fetch keeps the segment's own file (no dup); see `ops::Fetch`.
        if owner == shard.id {
            for (&i, o) in idx.iter().zip(shard.fetch_local(&parts).await) {
                out[i] = Some(map_data(o, Data::Local));
            }
            continue;
        }
        match shard.invoke(owner, ops::Fetch { parts }).await {
            Ok(results) => {
                for (&i, o) in idx.iter().zip(results) {
                    out[i] = Some(map_data(o, Data::Sent));
                }
            }
            Err(_) => {
                for &i in &idx {
                    out[i] = Some(FetchOutcome::failed(errors::KAFKA_STORAGE_ERROR));
                }
            }
        }
    }
    out.into_iter().map(|o| o.expect("every slot answered")).collect()
}

fn map_data<A>(o: FetchOutcome<A>, f: impl FnOnce(A) -> Data) -> FetchOutcome<Data> {
    FetchOutcome {
        error: o.error,
        high_watermark: o.high_watermark,
        log_start_offset: o.log_start_offset,
        data: o.data.map(f),
        last_stable_offset: o.last_stable_offset,
        aborted: o.aborted,
        diverging: o.diverging,
    }
}

/// Parks until any partition's log end passes the given end, or `wait` elapses.
async fn wait_any(shard: &Rc<Shard>, ends: Vec<(TopicPartition, i64, bool)>, wait: Duration) {
    let mut per_shard: BTreeMap<usize, Vec<(TopicPartition, i64, bool)>> = BTreeMap::new();
    for (tp, end, replica) in ends {
        per_shard.entry(shard.owner(&tp)).or_default().push((tp, end, replica));
    }
    // Plain futures, not spawned tasks: whatever has not finished is dropped here, which
    // deregisters its wakers. (Spawned waiter tasks parked on an idle partition were kept
    // alive by their wakers after the fetch gave up: a leak found by heaptrack under churn.)
    let waits: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>> = per_shard
        .into_iter()
        .map(|(owner, parts)| -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
            Box::pin(async move {
                let _ = shard.invoke(owner, ops::Wait { parts, wait }).await;
            })
        })
        .collect();
    crate::watch::first_of(waits).await;
}

/// Builds the response frame: crate-encoded fields around file ranges.
fn encode(
    shard: &Rc<Shard>,
    req: &Request,
    version: i16,
    topics: &[(String, uuid::Uuid)],
    slots: &[Slot],
    outcomes: Vec<FetchOutcome<Data>>,
    response_max: u64,
) -> Response {
    let marker_base: u64 = random_u64();
    let mut ranges: Vec<Data> = Vec::new();
    let mut budget = response_max;
    let mut responses: Vec<FetchableTopicResponse> = topics
        .iter()
        .map(|(name, id)| {
            let t = FetchableTopicResponse::default();
            if version >= 13 {
                let id = shard.registry.borrow().get(name).map_or(*id, |i| uuid(i.id));
                t.with_topic_id(id)
            } else {
                t.with_topic(topic_name(name))
            }
        })
        .collect();
    for (slot, o) in slots.iter().zip(outcomes) {
        let mut records = None;
        if let Some(data) = o.data {
            let len = data.len();
            if ranges.is_empty() || len <= budget {
                budget = budget.saturating_sub(len);
                records = Some(marker(marker_base, ranges.len() as u64));
                ranges.push(data);
            }
        }
        let part = PartitionData::default()
            .with_partition_index(slot.part.tp.partition)
            .with_error_code(o.error)
            .with_high_watermark(o.high_watermark)
            .with_last_stable_offset(o.last_stable_offset)
            .with_log_start_offset(o.log_start_offset)
            .with_aborted_transactions(slot.part.read_committed.then(|| {
                o.aborted
                    .iter()
                    .map(|(pid, first)| {
                        AbortedTransaction::default().with_producer_id(ProducerId(*pid)).with_first_offset(*first)
                    })
                    .collect()
            }))
            .with_records(Some(records.unwrap_or_default()));
        let part = match o.diverging {
            Some((epoch, end)) if version >= 12 => part.with_diverging_epoch(
                kafka_protocol::messages::fetch_response::EpochEndOffset::default()
                    .with_epoch(epoch)
                    .with_end_offset(end),
            ),
            _ => part,
        };
        responses[slot.topic].partitions.push(part);
    }
    let body = FetchResponse::default().with_responses(responses);
    let framed = encode_response(req.api_key, version, req.header.correlation_id, &body);
    splice_ranges(framed, version, marker_base, ranges)
}

fn random_u64() -> u64 {
    // Per-response marker prefix: collisions with encoded field bytes are astronomically
    // unlikely, and a collision would only misplace bytes of this one response.
    crate::topics::TopicId::random().0 as u64
}

const MARKER_BYTES: usize = 16;

fn marker(base: u64, index: u64) -> Bytes {
    let mut m = Vec::with_capacity(MARKER_BYTES);
    m.extend_from_slice(&base.to_be_bytes());
    m.extend_from_slice(&index.to_be_bytes());
    Bytes::from(m)
}

/// Replaces each marker (and its length prefix) with the real length prefix and the range.
fn splice_ranges(framed: Response, version: i16, base: u64, ranges: Vec<Data>) -> Response {
    let Some(Chunk::Bytes(encoded)) = framed.chunks.into_iter().next() else { return Response::default() };
    if ranges.is_empty() {
        return Response { chunks: vec![Chunk::Bytes(encoded)] };
    }
    let flexible = version >= 12;
    let old_prefix = if flexible { 1 } else { 4 };
    let mut chunks = Vec::with_capacity(ranges.len() * 2 + 1);
    let mut cursor = 0usize;
    for (i, data) in ranges.into_iter().enumerate() {
        let m = marker(base, i as u64);
        let Some(found) = find(&encoded[cursor..], &m).map(|p| p + cursor) else {
            // Cannot happen unless the encoder changed shape: answer nothing rather than lie.
            eprintln!("sluice: fetch response marker {i} not found");
            return Response::default();
        };
        let mut head = encoded[cursor..found - old_prefix].to_vec();
        let len = data.len();
        if flexible {
            put_uvarint(&mut head, len + 1);
        } else {
            head.extend_from_slice(&(len as i32).to_be_bytes());
        }
        chunks.push(Chunk::Bytes(Bytes::from(head)));
        chunks.push(match data {
            Data::Local(r) => Chunk::File { file: r.file, position: r.position, length: r.length },
            Data::Sent(r) => {
                // SAFETY: the descriptor was duplicated for us by the owning shard; we own it.
                let file = unsafe { glommio::io::BufferedFile::from_raw_fd(r.fd.into_raw_fd()) };
                Chunk::Foreign { file: Rc::new(file), position: r.position, length: r.length }
            }
        });
        cursor = found + MARKER_BYTES;
    }
    chunks.push(Chunk::Bytes(encoded.slice(cursor..)));
    Response { chunks }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
