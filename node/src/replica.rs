//! A follower's fetcher (issue #15, Build 3): on the shard that owns a partition this node
//! follows, one task copies the leader's log into the local one with Kafka's own Fetch
//! (v12, `replica_id` = this node's id), as Kafka's replica fetchers do: from the local log
//! end, whole batches appended as the leader wrote them (`PartitionLog::append_replicated`),
//! the leader's high watermark taken as the follower's. The fetch offset tells the leader
//! what this replica holds, which moves the leader's high watermark (acks=all waits on it).
//!
//! Each fetch carries the leader epoch of the follower's last batch; where the follower's
//! log diverged from the leader's (it copied from a leader that lost leadership before the
//! others had it), the leader answers with the diverging epoch and its end there, and the
//! follower cuts its log to it and fetches again (Kafka's KIP-320 truncation through Fetch).
//!
//! Not yet as Kafka: one connection per followed partition (Kafka: one fetcher per leader
//! and thread, batching partitions).

use crate::log::{PartitionLog, TopicPartition};
use bytes::Bytes;
use glommio::net::TcpStream;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// The Fetch version spoken (topic names, `replica_id` in the body).
const FETCH_VERSION: i16 = 12;
/// How long the leader may hold a fetch with nothing new (Kafka's `replica.fetch.wait.max.ms`).
const FETCH_WAIT_MS: i32 = 500;
/// Bytes per fetch (Kafka's `replica.fetch.max.bytes`).
const FETCH_MAX_BYTES: i32 = 1 << 20;
/// Pause after an error before trying again (Kafka's `replica.fetch.backoff.ms`).
const BACKOFF: Duration = Duration::from_millis(200);
/// How long a connection attempt or an exchange may take.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Copies the leader's log of `tp` into `log` until `stop` is set. `leader` gives the
/// leader's Kafka address (host:port) when it is known and live.
pub async fn follow(
    log: Rc<PartitionLog>,
    tp: TopicPartition,
    me: i32,
    leader: impl Fn() -> Option<String>,
    stop: Rc<Cell<bool>>,
) {
    let mut correlation = 0i32;
    let mut stream: Option<TcpStream> = None;
    let mut complained = false;
    while !stop.get() {
        if stream.is_none() {
            let Some(addr) = leader() else {
                glommio::timer::sleep(BACKOFF).await;
                continue;
            };
            match crate::peer::connect(addr.as_str(), IO_TIMEOUT).await {
                Ok(s) => stream = Some(s),
                Err(e) => {
                    if !complained {
                        eprintln!("sluice: replica of {tp}: leader at {addr} not reachable: {e}");
                        complained = true;
                    }
                    glommio::timer::sleep(BACKOFF).await;
                    continue;
                }
            }
        }
        correlation = correlation.wrapping_add(1);
        let s = stream.as_mut().expect("connected above");
        let last_epoch = log.leader_epochs().last().map_or(-1, |e| e.epoch);
        let exchange = fetch_once(s, &tp, me, log.log_end_offset(), last_epoch, correlation);
        let answer = futures_lite::future::or(async { Some(exchange.await) }, async {
            glommio::timer::sleep(IO_TIMEOUT + Duration::from_millis(FETCH_WAIT_MS as u64)).await;
            None
        })
        .await;
        let (error, hw, records, diverging) = match answer {
            Some(Ok(a)) => a,
            Some(Err(_)) | None => {
                stream = None;
                glommio::timer::sleep(BACKOFF).await;
                continue;
            }
        };
        complained = false;
        if stop.get() {
            break; // the partition's role changed while the answer was on its way
        }
        match error {
            0 => {}
            crate::errors::OFFSET_OUT_OF_RANGE if hw >= 0 && hw < log.log_end_offset() => {
                eprintln!("sluice: replica of {tp}: past the leader's log; cutting back to its high watermark {hw}");
                if let Err(e) = log.truncate_to(hw).await {
                    eprintln!("sluice: replica of {tp}: cutting back failed: {e}");
                }
                continue;
            }
            _ => {
                // Not (yet) the leader, or the partition is moving there: ask again shortly.
                glommio::timer::sleep(BACKOFF).await;
                continue;
            }
        }
        if let Some((epoch, end)) = diverging {
            let cut = end.min(log.log_end_offset());
            eprintln!("sluice: replica of {tp}: diverged from the leader after epoch {epoch}; cutting back to {cut}");
            if let Err(e) = log.truncate_to(cut).await {
                eprintln!("sluice: replica of {tp}: cutting back failed: {e}");
                glommio::timer::sleep(BACKOFF).await;
            }
            continue;
        }
        if let Some(records) = records.filter(|r| !r.is_empty()) {
            if let Err(e) = log.append_replicated(&records, crate::runtime::now_ms()).await {
                eprintln!("sluice: replica of {tp}: appending what the leader sent failed: {e}");
                glommio::timer::sleep(BACKOFF).await;
                continue;
            }
        }
        log.follow_high_watermark(hw);
    }
}

/// What one Fetch answered: error code, high watermark, records, and (epoch, end offset)
/// where the follower's log diverged.
type Answer = (i16, i64, Option<Bytes>, Option<(i32, i64)>);

/// One Fetch of `tp` from `offset`, the last batch there having leader epoch `last_epoch`.
async fn fetch_once(
    stream: &mut TcpStream,
    tp: &TopicPartition,
    me: i32,
    offset: i64,
    last_epoch: i32,
    correlation: i32,
) -> std::io::Result<Answer> {
    let partition = FetchPartition::default()
        .with_partition(tp.partition)
        .with_fetch_offset(offset)
        .with_current_leader_epoch(-1)
        .with_last_fetched_epoch(last_epoch)
        .with_log_start_offset(-1)
        .with_partition_max_bytes(FETCH_MAX_BYTES);
    let topic = FetchTopic::default()
        .with_topic(TopicName(StrBytes::from_string(tp.topic.clone())))
        .with_partitions(vec![partition]);
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(me))
        .with_max_wait_ms(FETCH_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![topic]);
    let client_id = format!("sluice-replica-{me}");
    let response: FetchResponse =
        crate::peer::exchange(stream, ApiKey::Fetch, FETCH_VERSION, correlation, &client_id, &request).await?;
    if response.error_code != 0 {
        return Ok((response.error_code, -1, None, None));
    }
    let part = response
        .responses
        .into_iter()
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == tp.partition)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "the partition is not in the answer"))?;
    let d = &part.diverging_epoch;
    let diverging = (d.epoch >= 0 && d.end_offset >= 0).then_some((d.epoch, d.end_offset));
    Ok((part.error_code, part.high_watermark, part.records, diverging))
}
