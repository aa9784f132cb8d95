//! Workloads: producer and consumer threads, the shared counters they report into, and the
//! run loop that ties them together (warm-up, duration or count, progress samples).
//!
//! Accounting: `produced` counts records put on the wire, `acked` records the broker
//! acknowledged without error (acks=0: every record sent), `consumed` records fetched at or
//! after the offsets the consumers started from. Latency samples are one per record, in
//! microseconds, taken only for records created after the warm-up.

use crate::client::{be_i32, be_i64, Conn};
use crate::group::{Member, COMMIT_INTERVAL};
use crate::keys::{has_room, record_size, KeyDist, MsgGen, SizeDist, BATCH_OVERHEAD};
use crate::records::{next_sequence, produce_body, Msg, ProducerIds};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse, ListOffsetsRequest,
    ListOffsetsResponse, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Largest latency a histogram holds (µs): one minute; larger samples are clamped.
const LATENCY_US_MAX: u64 = 60_000_000;
/// Significant digits kept by the histograms (0.1 % relative error).
const LATENCY_SIGFIGS: u8 = 3;
/// Largest produce request the harness builds (sum of its batches).
const REQUEST_BYTES_MAX: usize = 1 << 20;
/// How often workers fold their local histograms into the shared ones (progress p99).
const MERGE_INTERVAL: Duration = Duration::from_millis(200);
/// Interval of the throughput samples kept for the chart and JSON.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(250);
/// Produce request version: v7 is understood by every broker since Kafka 2.1.
const PRODUCE_VERSION: i16 = 7;
/// Fetch request version: v11 (Kafka 2.3+), topic names rather than ids.
const FETCH_VERSION: i16 = 11;
/// ListOffsets version 4 (Kafka 2.1+).
const LIST_OFFSETS_VERSION: i16 = 4;
/// InitProducerId version 1 (Kafka 2.0+, the last one before flexible encoding).
const INIT_PRODUCER_ID_VERSION: i16 = 1;
/// Most produce requests an idempotent producer may have in flight per partition (Kafka:
/// `max.in.flight.requests.per.connection` ≤ 5 with `enable.idempotence`; the broker keeps
/// the last five batches of each producer to detect duplicates).
pub const IDEMPOTENT_IN_FLIGHT_MAX: usize = 5;
/// After the producers finish, consumers give up when nothing arrives for this long.
const DRAIN_IDLE_MAX: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Produce,
    /// Consume what is there (from earliest) up to the end offsets seen at the start.
    CatchUp,
    /// Consume new records from the end for the duration.
    Tail,
    EndToEnd,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Produce => "produce",
            Mode::CatchUp => "consume-catch-up",
            Mode::Tail => "consume-tail",
            Mode::EndToEnd => "end-to-end",
        }
    }
    fn produces(self) -> bool {
        matches!(self, Mode::Produce | Mode::EndToEnd)
    }
    fn consumes(self) -> bool {
        !matches!(self, Mode::Produce)
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Stop {
    Duration(Duration),
    Count(u64),
}

/// Everything a run needs; built from the command line or a preset.
#[derive(Clone, Debug)]
pub struct Workload {
    pub label: String,
    pub mode: Mode,
    pub bootstrap: String,
    pub topic: String,
    pub partitions: i32,
    pub producers: usize,
    pub consumers: usize,
    /// Producer connections per producer thread.
    pub connections: usize,
    /// Produce requests in flight per connection.
    pub in_flight: usize,
    pub batch_bytes: usize,
    pub linger: Duration,
    pub acks: i16,
    /// Idempotent producers: a producer id per thread, sequences per partition.
    pub idempotent: bool,
    pub compression: Compression,
    pub size: SizeDist,
    pub keys: KeyDist,
    /// Target rate in records/s over all producers (open loop); None: as fast as acks come.
    pub rate: Option<f64>,
    pub warmup: Duration,
    pub stop: Stop,
    /// Cores to pin load threads to, round robin; empty: not pinned.
    pub cores: Vec<usize>,
    pub fetch_bytes: i32,
    /// Consumers join this consumer group (classic protocol, range assignor) and commit
    /// their positions; None: each consumer is assigned partitions p with p mod C = its index.
    pub group: Option<String>,
    pub quiet: bool,
    /// A local broker's process id: its CPU per GiB is reported (from `/proc`).
    pub node_pid: Option<u32>,
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_SIGFIGS).expect("static histogram bounds are valid")
}

/// Counters and histograms the load threads share with the monitor.
pub struct Shared {
    pub start: Instant,
    pub measure_from: Instant,
    /// Unix time (ns) at `start`, so end-to-end stamps are wall-clock comparable.
    pub start_unix_ns: u64,
    pub stop: AtomicBool,
    pub produced: AtomicU64,
    pub acked: AtomicU64,
    pub errors: AtomicU64,
    /// Batches sent again after an error that says they were not appended (a partition
    /// moving between the broker's cores, a leader change).
    pub retries: AtomicU64,
    pub consumed: AtomicU64,
    /// Records and payload bytes acknowledged / consumed after the warm-up.
    pub acked_measured: AtomicU64,
    pub acked_bytes_measured: AtomicU64,
    pub consumed_measured: AtomicU64,
    pub consumed_bytes_measured: AtomicU64,
    pub producers_running: AtomicUsize,
    /// Rebalances the group's members went through after the group first formed.
    pub rebalances: AtomicU64,
    pub ack_hist: Mutex<Histogram<u64>>,
    pub e2e_hist: Mutex<Histogram<u64>>,
    pub producers_end: Mutex<Option<Instant>>,
    pub consumers_end: Mutex<Option<Instant>>,
    pub first_error: Mutex<Option<String>>,
}

impl Shared {
    fn new(warmup: Duration, producers: usize) -> Shared {
        let start = Instant::now();
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
        Shared {
            start,
            measure_from: start + warmup,
            start_unix_ns: unix,
            stop: AtomicBool::new(false),
            produced: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            consumed: AtomicU64::new(0),
            acked_measured: AtomicU64::new(0),
            acked_bytes_measured: AtomicU64::new(0),
            consumed_measured: AtomicU64::new(0),
            consumed_bytes_measured: AtomicU64::new(0),
            producers_running: AtomicUsize::new(producers),
            rebalances: AtomicU64::new(0),
            ack_hist: Mutex::new(new_histogram()),
            e2e_hist: Mutex::new(new_histogram()),
            producers_end: Mutex::new(None),
            consumers_end: Mutex::new(None),
            first_error: Mutex::new(None),
        }
    }

    fn unix_ns(&self, at: Instant) -> u64 {
        self.start_unix_ns + at.saturating_duration_since(self.start).as_nanos() as u64
    }

    fn note_error(&self, e: String) {
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(e);
    }

    fn mark_end(slot: &Mutex<Option<Instant>>) {
        let now = Instant::now();
        let mut end = slot.lock().unwrap_or_else(|p| p.into_inner());
        if end.is_none_or(|e| e < now) {
            *end = Some(now);
        }
    }
}

fn merge(into: &Mutex<Histogram<u64>>, local: &mut Histogram<u64>) {
    if local.is_empty() {
        return;
    }
    let mut h = into.lock().unwrap_or_else(|p| p.into_inner());
    h.add(&*local).expect("histograms share bounds");
    local.reset();
}

pub fn pin(cores: &[usize], index: usize) {
    if cores.is_empty() {
        return;
    }
    let core = cores[index % cores.len()];
    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        eprintln!("sluice-bench: could not pin a thread to core {core}");
    }
}

pub fn create_topic(conn: &mut Conn, topic: &str, partitions: i32) -> Result<()> {
    let req = CreateTopicsRequest::default().with_timeout_ms(30_000).with_topics(vec![CreatableTopic::default()
        .with_name(topic_name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(1)]);
    let resp: CreateTopicsResponse = conn.call(ApiKey::CreateTopics, 5, &req)?;
    match resp.topics.first().map(|t| t.error_code) {
        Some(0) | Some(36) => Ok(()), // created, or TOPIC_ALREADY_EXISTS
        other => bail!("creating topic {topic}: error {other:?}"),
    }
}

/// Offsets of every partition at `timestamp` (-1 latest, -2 earliest).
pub fn list_offsets(conn: &mut Conn, topic: &str, partitions: i32, timestamp: i64) -> Result<Vec<i64>> {
    let parts = (0..partitions)
        .map(|p| ListOffsetsPartition::default().with_partition_index(p).with_timestamp(timestamp))
        .collect();
    let req = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![ListOffsetsTopic::default().with_name(topic_name(topic)).with_partitions(parts)]);
    let resp: ListOffsetsResponse = conn.call(ApiKey::ListOffsets, LIST_OFFSETS_VERSION, &req)?;
    let mut out = vec![0i64; partitions as usize];
    for p in resp.topics.iter().flat_map(|t| t.partitions.iter()) {
        if p.error_code != 0 {
            bail!("list offsets of partition {} failed with error {}", p.partition_index, p.error_code);
        }
        if let Some(slot) = out.get_mut(p.partition_index as usize) {
            *slot = p.offset;
        }
    }
    Ok(out)
}

/// Records gathered for one partition until the batch is full or lingered long enough.
struct Batch {
    partition: i32,
    msgs: Vec<Msg>,
    /// Payload bytes (keys and values).
    bytes: usize,
    /// Bytes of the encoded batch, header included (what `batch_bytes` limits).
    encoded: usize,
    first: Instant,
    /// Sent before (counted as produced then).
    resent: bool,
}

/// What a request in flight carried, per partition: creation times and payload bytes.
struct SentPart {
    batch: Batch,
}

struct ProducerConn {
    conn: Conn,
    sent: VecDeque<Vec<SentPart>>,
}

/// An idempotent producer thread's identity and the next sequence of each partition.
struct Idempotence {
    producer_id: i64,
    epoch: i16,
    next_sequence: Vec<i32>,
}

impl Idempotence {
    /// The producer fields of the next batch of `records` records to `partition`, and the
    /// partition's sequence advanced past it.
    fn next_batch(&mut self, partition: i32, records: usize) -> ProducerIds {
        let seq = &mut self.next_sequence[partition as usize];
        let base_sequence = *seq;
        *seq = next_sequence(base_sequence, records as i32);
        ProducerIds { id: self.producer_id, epoch: self.epoch, base_sequence }
    }
}

/// A new producer id and epoch (InitProducerId without a transactional id).
fn init_producer_id(conn: &mut Conn, partitions: i32) -> Result<Idempotence> {
    use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};
    let req = InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000);
    let resp: InitProducerIdResponse = conn.call(ApiKey::InitProducerId, INIT_PRODUCER_ID_VERSION, &req)?;
    if resp.error_code != 0 {
        bail!("InitProducerId failed with error {}", describe_error(resp.error_code));
    }
    if resp.producer_id.0 < 0 || resp.producer_epoch < 0 {
        bail!("InitProducerId answered producer id {} epoch {}", resp.producer_id.0, resp.producer_epoch);
    }
    Ok(Idempotence {
        producer_id: resp.producer_id.0,
        epoch: resp.producer_epoch,
        next_sequence: vec![0; partitions.max(1) as usize],
    })
}

/// An error code with its name where the harness knows it (the idempotence errors).
fn describe_error(code: i16) -> String {
    let name = match code {
        45 => "OUT_OF_ORDER_SEQUENCE_NUMBER",
        46 => "DUPLICATE_SEQUENCE_NUMBER",
        47 => "INVALID_PRODUCER_EPOCH",
        59 => "UNKNOWN_PRODUCER_ID",
        _ => return code.to_string(),
    };
    format!("{code} ({name})")
}

/// Result of a completed run.
pub struct RunResult {
    pub workload: Workload,
    pub produced: u64,
    pub acked: u64,
    pub errors: u64,
    pub retries: u64,
    pub consumed: u64,
    pub produce_secs: f64,
    pub consume_secs: f64,
    pub acked_measured: u64,
    pub acked_bytes_measured: u64,
    pub consumed_measured: u64,
    pub consumed_bytes_measured: u64,
    pub ack_hist: Histogram<u64>,
    pub e2e_hist: Histogram<u64>,
    /// (seconds since start, records acked so far, records consumed so far).
    pub samples: Vec<(f64, u64, u64)>,
    pub first_error: Option<String>,
    pub group: Option<GroupOutcome>,
    /// The node's CPU over the measured window (`--node-pid`).
    pub node_cpu: Option<crate::report::NodeCpu>,
}

/// How a run's consumer group went.
#[derive(Clone, Debug)]
pub struct GroupOutcome {
    pub id: String,
    /// From the first JoinGroup until every member held its share (before the clock started).
    pub formed_ms: f64,
    pub rebalances: u64,
    /// After the run: the group's committed offsets equal the positions the consumers reached
    /// (end to end and catch-up: the log end offsets).
    pub committed_total: i64,
    pub positions_total: i64,
}

impl RunResult {
    pub fn produce_rate(&self) -> f64 {
        self.acked_measured as f64 / self.produce_secs.max(1e-9)
    }
    pub fn produce_mbs(&self) -> f64 {
        self.acked_bytes_measured as f64 / self.produce_secs.max(1e-9) / 1e6
    }
    pub fn consume_rate(&self) -> f64 {
        self.consumed_measured as f64 / self.consume_secs.max(1e-9)
    }
    pub fn consume_mbs(&self) -> f64 {
        self.consumed_bytes_measured as f64 / self.consume_secs.max(1e-9) / 1e6
    }
}

pub fn run(w: &Workload) -> Result<RunResult> {
    let mut setup = Conn::connect(&w.bootstrap)?;
    create_topic(&mut setup, &w.topic, w.partitions)?;
    let start_offsets = match w.mode {
        Mode::CatchUp => list_offsets(&mut setup, &w.topic, w.partitions, -2)?,
        Mode::Tail | Mode::EndToEnd => list_offsets(&mut setup, &w.topic, w.partitions, -1)?,
        Mode::Produce => vec![0; w.partitions as usize],
    };
    let end_offsets = match w.mode {
        Mode::CatchUp => Some(list_offsets(&mut setup, &w.topic, w.partitions, -1)?),
        _ => None,
    };
    drop(setup);
    let producers = if w.mode.produces() { w.producers } else { 0 };
    let consumers = if w.mode.consumes() { w.consumers.max(1) } else { 0 };
    // Consumers start first; in group mode they join and the clock starts only once every
    // member holds its share, so the initial rebalance is not part of the measurement.
    let forming = Arc::new(Forming::new(consumers));
    let mut handles = Vec::new();
    let mut go = Vec::new();
    let formation_started = Instant::now();
    for id in 0..consumers {
        let (w, forming, starts, ends) = (w.clone(), forming.clone(), start_offsets.clone(), end_offsets.clone());
        let (tx, rx) = std::sync::mpsc::channel::<Arc<Shared>>();
        go.push(tx);
        handles.push(std::thread::spawn(move || {
            pin(&w.cores, producers + id);
            let started = if w.group.is_some() {
                // Join first; the clock starts when the whole group has its assignment.
                let joined = ConsumerState::new(id, consumers, &w, &starts)
                    .and_then(|mut s| Ok(s.wait_for_start(id, &forming, &rx)?.map(|sh| (s, sh))));
                match joined {
                    Ok(Some(started)) => Ok(started),
                    Ok(None) => return,
                    Err(e) => {
                        forming.fail(format!("consumer {id}: {e:#}"));
                        return;
                    }
                }
            } else {
                let Ok(sh) = rx.recv() else { return };
                ConsumerState::new(id, consumers, &w, &starts).map(|s| (s, sh.clone())).map_err(|e| (e, sh))
            };
            let (mut state, sh) = match started {
                Ok(started) => started,
                Err((e, sh)) => {
                    sh.note_error(format!("consumer {id}: {e:#}"));
                    sh.stop.store(true, Relaxed);
                    Shared::mark_end(&sh.consumers_end);
                    return;
                }
            };
            if let Err(e) = state.run(&w, &sh, ends.as_deref(), &forming) {
                sh.note_error(format!("consumer {id}: {e:#}"));
                sh.stop.store(true, Relaxed);
            }
            Shared::mark_end(&sh.consumers_end);
        }));
    }
    let formed_ms = match &w.group {
        Some(group) => {
            forming.wait().with_context(|| format!("forming consumer group {group}"))?;
            formation_started.elapsed().as_secs_f64() * 1000.0
        }
        None => 0.0,
    };
    let sh = Arc::new(Shared::new(w.warmup, producers));
    for tx in go {
        let _ = tx.send(sh.clone());
    }
    for id in 0..producers {
        let (w, sh) = (w.clone(), sh.clone());
        handles.push(std::thread::spawn(move || {
            pin(&w.cores, id);
            if let Err(e) = producer(id, &w, &sh) {
                sh.note_error(format!("producer {id}: {e:#}"));
                sh.stop.store(true, Relaxed);
            }
            Shared::mark_end(&sh.producers_end);
            sh.producers_running.fetch_sub(1, Relaxed);
        }));
    }
    let (samples, node_cpu) = crate::report::monitor(w, &sh, &handles);
    for h in handles {
        let _ = h.join();
    }
    let end_of = |slot: &Mutex<Option<Instant>>| {
        let end = slot.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or_else(Instant::now);
        end.saturating_duration_since(sh.measure_from).as_secs_f64()
    };
    let group = match &w.group {
        Some(id) => {
            let all: Vec<i32> = (0..w.partitions).collect();
            let mut conn = Conn::connect(&w.bootstrap)?;
            let committed = crate::group::committed_offsets(&mut conn, id, &w.topic, &all)?;
            let reached = forming.positions.lock().unwrap_or_else(|p| p.into_inner()).clone();
            Some(GroupOutcome {
                id: id.clone(),
                formed_ms,
                rebalances: sh.rebalances.load(Relaxed),
                committed_total: committed.iter().map(|c| c.unwrap_or(0)).sum(),
                positions_total: reached.values().sum(),
            })
        }
        None => None,
    };
    let first_error = sh.first_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let ack_hist = sh.ack_hist.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let e2e_hist = sh.e2e_hist.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(RunResult {
        workload: w.clone(),
        produced: sh.produced.load(Relaxed),
        acked: sh.acked.load(Relaxed),
        errors: sh.errors.load(Relaxed),
        retries: sh.retries.load(Relaxed),
        consumed: sh.consumed.load(Relaxed),
        produce_secs: end_of(&sh.producers_end),
        consume_secs: end_of(&sh.consumers_end),
        acked_measured: sh.acked_measured.load(Relaxed),
        acked_bytes_measured: sh.acked_bytes_measured.load(Relaxed),
        consumed_measured: sh.consumed_measured.load(Relaxed),
        consumed_bytes_measured: sh.consumed_bytes_measured.load(Relaxed),
        ack_hist,
        e2e_hist,
        samples,
        first_error,
        group,
        node_cpu,
    })
}

/// This producer's share of a message count.
fn share(total: u64, parts: usize, id: usize) -> u64 {
    total / parts as u64 + u64::from((id as u64) < total % parts as u64)
}

fn producer(id: usize, w: &Workload, sh: &Shared) -> Result<()> {
    let mut conns = Vec::with_capacity(w.connections);
    for _ in 0..w.connections.max(1) {
        conns.push(ProducerConn { conn: Conn::connect(&w.bootstrap)?, sent: VecDeque::new() });
    }
    let mut idem = if w.idempotent { Some(init_producer_id(&mut conns[0].conn, w.partitions)?) } else { None };
    let quota = match w.stop {
        Stop::Count(n) => Some(share(n, w.producers, id)),
        Stop::Duration(_) => None,
    };
    let interval = w.rate.map(|r| Duration::from_secs_f64(w.producers as f64 / r.max(1e-9)));
    let stamp = w.mode == Mode::EndToEnd;
    let mut gen = MsgGen::new(&w.size, &w.keys, w.partitions, w.batch_bytes, id as u64 + 1);
    let pool = gen.pool().clone();
    let mut open: Vec<Option<Batch>> = (0..w.partitions).map(|_| None).collect();
    let mut ready: VecDeque<Batch> = VecDeque::new();
    let mut local_hist = new_histogram();
    let mut next_merge = Instant::now() + MERGE_INTERVAL;
    let slots_total = conns.len() * w.in_flight.max(1);
    let mut made = 0u64;
    let mut next_intended = sh.start;
    let mut fds: Vec<libc::pollfd> = Vec::new();
    loop {
        let now = Instant::now();
        let stopping = sh.stop.load(Relaxed) || quota.is_some_and(|q| made >= q);
        if !stopping {
            let in_flight: usize = conns.iter().map(|c| c.conn.in_flight()).sum();
            let free = slots_total.saturating_sub(in_flight);
            // Open loop: every record whose intended send time has passed is created now,
            // stamped with that intended time, so queueing delay counts (no coordinated
            // omission). Closed loop: create records while requests could go out.
            let mut budget = 100_000;
            let (mut queued, mut queue_full) = (usize::MAX, false);
            while budget > 0 && quota.is_none_or(|q| made < q) {
                let created = match interval {
                    Some(iv) => {
                        if next_intended > now {
                            break;
                        }
                        let t = next_intended;
                        next_intended += iv;
                        t
                    }
                    None if idem.is_some() => {
                        if ready.len() != queued {
                            queued = ready.len();
                            queue_full = idempotent_queue_full(w, &conns, &ready, slots_total);
                        }
                        if queue_full {
                            break;
                        }
                        now
                    }
                    None => {
                        if ready.len() >= free.max(1) || w.acks == 0 && ready.len() >= slots_total {
                            break;
                        }
                        now
                    }
                };
                let (partition, key, value) = gen.next(stamp.then(|| sh.unix_ns(created)));
                add(&mut open, &mut ready, w.batch_bytes, gen.largest(), partition, Msg { key, value, created });
                made += 1;
                budget -= 1;
            }
        }
        // Linger: batches older than linger.ms go out partly full; at the end everything goes.
        for slot in open.iter_mut() {
            if slot.as_ref().is_some_and(|b| stopping || now.saturating_duration_since(b.first) >= w.linger) {
                ready.extend(slot.take());
            }
        }
        send_ready(w, sh, &mut conns, &mut ready, &pool, idem.as_mut())?;
        let in_flight: usize = conns.iter().map(|c| c.conn.in_flight()).sum();
        if stopping && ready.is_empty() && in_flight == 0 && open.iter().all(Option::is_none) {
            break;
        }
        if now >= next_merge {
            merge(&sh.ack_hist, &mut local_hist);
            next_merge = now + MERGE_INTERVAL;
        }
        // Wait for a response, the next intended send time or the oldest linger deadline.
        let mut wait = MERGE_INTERVAL;
        if !stopping {
            if interval.is_some() {
                wait = wait.min(next_intended.saturating_duration_since(now));
            }
            if let Some(first) = open.iter().flatten().map(|b| b.first).min() {
                wait = wait.min((first + w.linger).saturating_duration_since(now));
            }
        }
        let go_on = match idem {
            None => in_flight < slots_total && (!ready.is_empty() || interval.is_none() && !stopping),
            // The batches still ready after send_ready wait for their own connection.
            Some(_) => interval.is_none() && !stopping && !idempotent_queue_full(w, &conns, &ready, slots_total),
        };
        if go_on {
            wait = Duration::ZERO; // closed loop with a free slot (always, for acks=0): go on
        }
        if in_flight == 0 {
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            continue;
        }
        fds.clear();
        fds.extend(conns.iter().map(|c| libc::pollfd {
            fd: if c.conn.in_flight() > 0 { c.conn.raw_fd() } else { -1 },
            events: libc::POLLIN,
            revents: 0,
        }));
        let timeout_ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: fds is a valid array of pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err).context("poll");
            }
            continue;
        }
        for (i, fd) in fds.iter().enumerate() {
            if fd.revents != 0 {
                let retry = if idem.is_none() { Some(&mut ready) } else { None };
                receive(w, sh, &mut conns[i], &mut local_hist, retry)?;
            }
        }
    }
    merge(&sh.ack_hist, &mut local_hist);
    Ok(())
}

/// Appends a record to its partition's open batch; a batch with no room left for the
/// largest record the generator makes is ready to send (Kafka's accumulator: `batch.size`
/// bounds the encoded batch, and a batch is sendable once the next record would not fit).
fn add(
    open: &mut [Option<Batch>],
    ready: &mut VecDeque<Batch>,
    batch_bytes: usize,
    largest: (Option<usize>, usize),
    partition: i32,
    msg: Msg,
) {
    let slot = &mut open[partition as usize];
    let batch = slot.get_or_insert_with(|| Batch {
        partition,
        msgs: Vec::with_capacity(batch_bytes / largest.1.max(1) + 1),
        bytes: 0,
        encoded: BATCH_OVERHEAD,
        resent: false,
        first: msg.created,
    });
    let key_len = msg.key.as_ref().map(Bytes::len);
    batch.bytes += msg.value.len() + key_len.unwrap_or(0);
    batch.encoded += record_size(batch.msgs.len(), key_len, msg.value.len());
    batch.msgs.push(msg);
    if !has_room(batch_bytes, batch.encoded, batch.msgs.len(), largest) {
        ready.extend(slot.take());
    }
}

/// The connection an idempotent producer sends `partition`'s batches on.
fn connection_of(partition: i32, connections: usize) -> usize {
    partition as usize % connections.max(1)
}

/// Idempotent closed loop: whether creating more records would only queue them. A
/// partition's batches can only go out on its own connection, so this is the plain rule
/// (ready batches ≥ max(1, free slots)) per connection that owns a partition, or the ready
/// queue holding as many batches as there are request slots in all.
fn idempotent_queue_full(w: &Workload, conns: &[ProducerConn], ready: &VecDeque<Batch>, slots_total: usize) -> bool {
    if ready.len() >= slots_total {
        return true;
    }
    let owners = conns.len().min(w.partitions.max(1) as usize);
    conns[..owners].iter().enumerate().all(|(c, pc)| {
        let free = w.in_flight.max(1).saturating_sub(pc.conn.in_flight());
        ready.iter().filter(|b| connection_of(b.partition, conns.len()) == c).count() >= free.max(1)
    })
}

/// Fills free request slots with ready batches: one request carries the oldest ready batch of
/// each partition that has one (at most one batch per partition, as Kafka's clients send).
///
/// Idempotent producers send each partition's batches on one connection only (partition mod
/// connections): a connection's requests are answered in order, so each partition's
/// sequences reach the broker in order. With at most one batch per partition per request
/// and at most `in_flight` ≤ 5 requests per connection, no partition ever has more than 5
/// batches in flight (Kafka's limit for idempotent producers).
fn send_ready(
    w: &Workload,
    sh: &Shared,
    conns: &mut [ProducerConn],
    ready: &mut VecDeque<Batch>,
    pool: &Bytes,
    idem: Option<&mut Idempotence>,
) -> Result<()> {
    let in_flight_max = w.in_flight.max(1);
    if let Some(idem) = idem {
        debug_assert!(in_flight_max <= IDEMPOTENT_IN_FLIGHT_MAX);
        let n = conns.len();
        for (c, conn) in conns.iter_mut().enumerate() {
            while conn.conn.in_flight() < in_flight_max {
                let (batches, bytes) = take_batches(ready, |p| connection_of(p, n) == c);
                if batches.is_empty() {
                    break;
                }
                send_batches(w, sh, conn, batches, bytes, pool, Some(idem))?;
            }
        }
        return Ok(());
    }
    while !ready.is_empty() {
        let Some(conn) =
            conns.iter_mut().filter(|c| c.conn.in_flight() < in_flight_max).min_by_key(|c| c.conn.in_flight())
        else {
            return Ok(());
        };
        let (batches, bytes) = take_batches(ready, |_| true);
        send_batches(w, sh, conn, batches, bytes, pool, None)?;
    }
    Ok(())
}

/// Takes the oldest ready batch of each partition that `eligible` accepts, up to
/// `REQUEST_BYTES_MAX` (at least one batch); returns them with their encoded size.
fn take_batches(ready: &mut VecDeque<Batch>, eligible: impl Fn(i32) -> bool) -> (Vec<Batch>, usize) {
    let mut batches: Vec<Batch> = Vec::new();
    let mut bytes = 0;
    let mut i = 0;
    while let Some(batch) = ready.get(i) {
        if !eligible(batch.partition) || batches.iter().any(|b| b.partition == batch.partition) {
            i += 1;
            continue;
        }
        if !batches.is_empty() && bytes + batch.encoded > REQUEST_BYTES_MAX {
            break;
        }
        bytes += batch.encoded;
        batches.push(ready.remove(i).expect("index exists"));
    }
    (batches, bytes)
}

/// Sends one produce request with `batches` on `conn` (idempotent: each batch with the
/// producer id and its partition's next sequence).
fn send_batches(
    w: &Workload,
    sh: &Shared,
    conn: &mut ProducerConn,
    batches: Vec<Batch>,
    bytes: usize,
    pool: &Bytes,
    mut idem: Option<&mut Idempotence>,
) -> Result<()> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
    let parts: Vec<(i32, &[Msg], ProducerIds)> = batches
        .iter()
        .map(|b| {
            let ids = match idem.as_deref_mut() {
                Some(idem) => idem.next_batch(b.partition, b.msgs.len()),
                None => ProducerIds::NONE,
            };
            (b.partition, &b.msgs[..], ids)
        })
        .collect();
    let answered = w.acks != 0;
    conn.conn.send_with(ApiKey::Produce, PRODUCE_VERSION, answered, bytes + 64 * parts.len() + 64, |buf| {
        produce_body(buf, &w.topic, w.acks, w.compression, &parts, pool, now_ms)
    })?;
    drop(parts);
    let fresh: u64 = batches.iter().filter(|b| !b.resent).map(|b| b.msgs.len() as u64).sum();
    sh.produced.fetch_add(fresh, Relaxed);
    let sent: Vec<SentPart> = batches.into_iter().map(|batch| SentPart { batch }).collect();
    if answered {
        conn.sent.push_back(sent);
    } else {
        let count: u64 = sent.iter().map(|s| s.batch.msgs.len() as u64).sum();
        sh.acked.fetch_add(count, Relaxed);
        for s in &sent {
            count_acked(sh, &s.batch);
        }
    }
    Ok(())
}

fn count_acked(sh: &Shared, b: &Batch) {
    let measured = b.msgs.iter().filter(|m| m.created >= sh.measure_from).count() as u64;
    if measured > 0 {
        sh.acked_measured.fetch_add(measured, Relaxed);
        let bytes = b.bytes as u64 * measured / b.msgs.len() as u64;
        sh.acked_bytes_measured.fetch_add(bytes, Relaxed);
    }
}

/// Errors that say the partition is not served here right now — NOT_LEADER_OR_FOLLOWER,
/// UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE — so a produce was not appended (sending
/// it again cannot duplicate it) and a fetch may simply ask again; Kafka's clients retry them.
fn not_appended(error: i16) -> bool {
    matches!(error, 6 | 3 | 5)
}

/// Takes one produce response off `pc`. A batch refused with an error that says it was not
/// appended goes back to `retry` (the ready queue) when given — plain producers; idempotent
/// ones pass None and count it as an error, since a resend would need its sequences kept.
fn receive(
    w: &Workload,
    sh: &Shared,
    pc: &mut ProducerConn,
    hist: &mut Histogram<u64>,
    mut retry: Option<&mut VecDeque<Batch>>,
) -> Result<()> {
    let (resp, _): (ProduceResponse, _) = pc.conn.recv()?;
    let now = Instant::now();
    let sent = pc.sent.pop_front().context("a response without a request")?;
    for SentPart { mut batch } in sent {
        let error = resp
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == batch.partition)
            .map_or(-1, |p| p.error_code);
        if error != 0 {
            if let (true, Some(ready)) = (not_appended(error), retry.as_deref_mut()) {
                sh.retries.fetch_add(1, Relaxed);
                batch.resent = true;
                ready.push_front(batch);
                continue;
            }
            sh.errors.fetch_add(batch.msgs.len() as u64, Relaxed);
            sh.note_error(format!(
                "produce to {}-{} failed with error {}",
                w.topic,
                batch.partition,
                describe_error(error)
            ));
            continue;
        }
        sh.acked.fetch_add(batch.msgs.len() as u64, Relaxed);
        count_acked(sh, &batch);
        for m in batch.msgs.iter().filter(|m| m.created >= sh.measure_from) {
            let us = now.saturating_duration_since(m.created).as_micros() as u64;
            hist.saturating_record(us.clamp(1, LATENCY_US_MAX));
        }
    }
    Ok(())
}

/// How long the harness waits for its consumer group to settle before it gives up.
const GROUP_FORM_MAX: Duration = Duration::from_secs(90);

/// Where consumers report while their group forms, before the clock starts.
struct Forming {
    /// Per consumer: (generation, partitions held) once it has an assignment.
    members: Mutex<Vec<Option<(i32, usize)>>>,
    failed: Mutex<Option<String>>,
    /// Each partition's position when its last owner stopped (group mode).
    positions: Mutex<std::collections::HashMap<i32, i64>>,
}

impl Forming {
    fn new(consumers: usize) -> Forming {
        Forming { members: Mutex::new(vec![None; consumers]), failed: Mutex::new(None), positions: Mutex::default() }
    }

    fn fail(&self, e: String) {
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
    }

    /// Blocks until every member of this run has its assignment in one generation (members
    /// of other processes may share the group, so what they hold is not known here), or fails.
    fn wait(&self) -> Result<()> {
        let deadline = Instant::now() + GROUP_FORM_MAX;
        loop {
            if let Some(e) = self.failed.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                bail!("{e}");
            }
            let members = self.members.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let generation = members.first().copied().flatten().map(|(g, _)| g);
            if members.iter().all(|m| m.is_some_and(|(g, _)| Some(g) == generation)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("not settled after {GROUP_FORM_MAX:?}: (generation, partitions) per member {members:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One consumer thread: its fetch connection, its partitions and positions, and in group
/// mode its membership.
struct ConsumerState {
    conn: Conn,
    member: Option<Member>,
    /// Partitions this consumer reads and the next offset of each.
    mine: Vec<i32>,
    offsets: Vec<i64>,
    /// Where a partition with no committed offset starts (the run's start offsets).
    starts: Vec<i64>,
    next_commit: Instant,
}

impl ConsumerState {
    /// Connects; in group mode joins the group and takes the first assignment, else takes
    /// the partitions p with p mod `of` = `id`.
    fn new(id: usize, of: usize, w: &Workload, starts: &[i64]) -> Result<ConsumerState> {
        let mut s = ConsumerState {
            conn: Conn::connect(&w.bootstrap)?,
            member: None,
            mine: (0..w.partitions).filter(|p| *p as usize % of == id).collect(),
            offsets: Vec::new(),
            starts: starts.to_vec(),
            next_commit: Instant::now() + COMMIT_INTERVAL,
        };
        s.offsets = s.mine.iter().map(|&p| starts[p as usize]).collect();
        if let Some(group) = &w.group {
            s.member = Some(Member::join(&w.bootstrap, group, &w.topic, w.partitions)?);
            s.take_assignment()?;
        }
        Ok(s)
    }

    /// The member's new partitions, each from its committed offset (else its start offset:
    /// the harness's auto.offset.reset is "where the run started").
    fn take_assignment(&mut self) -> Result<()> {
        let Some(m) = self.member.as_mut() else { return Ok(()) };
        self.mine = m.assigned.clone();
        let committed = m.committed(&self.mine)?;
        self.offsets = self.mine.iter().zip(committed).map(|(&p, c)| c.unwrap_or(self.starts[p as usize])).collect();
        Ok(())
    }

    fn positions(&self) -> Vec<(i32, i64)> {
        self.mine.iter().copied().zip(self.offsets.iter().copied()).collect()
    }

    /// Group upkeep between fetches: heartbeat, periodic commit, and on a rebalance commit,
    /// rejoin and take the new assignment (eager, like Kafka's classic consumer).
    fn upkeep(&mut self, now: Instant, sh: Option<&Shared>) -> Result<()> {
        let positions = self.positions();
        let Some(m) = self.member.as_mut() else { return Ok(()) };
        let mut rejoin = m.heartbeat_due(now)?;
        if !rejoin && now >= self.next_commit {
            rejoin = !m.commit(&positions)?;
            self.next_commit = now + COMMIT_INTERVAL;
        }
        if rejoin {
            // Committed before the partitions are given up, so the next owner starts where
            // this one stopped. Refused (this member was already expelled): what it read since
            // its last commit is read again (at least once, as with Kafka).
            m.commit(&positions)?;
            m.rejoin()?;
            if let Some(sh) = sh {
                sh.rebalances.fetch_add(1, Relaxed);
            }
            self.take_assignment()?;
        }
        Ok(())
    }

    /// Group mode: keeps the membership alive and reports the assignment until the run
    /// starts (Some) or is abandoned (None).
    fn wait_for_start(
        &mut self,
        id: usize,
        forming: &Forming,
        go: &std::sync::mpsc::Receiver<Arc<Shared>>,
    ) -> Result<Option<Arc<Shared>>> {
        use std::sync::mpsc::RecvTimeoutError;
        loop {
            let generation = self.member.as_ref().map_or(0, |m| m.generation);
            forming.members.lock().unwrap_or_else(|p| p.into_inner())[id] = Some((generation, self.mine.len()));
            match go.recv_timeout(Duration::from_millis(50)) {
                Ok(sh) => return Ok(Some(sh)),
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
                Err(RecvTimeoutError::Timeout) => self.upkeep(Instant::now(), None)?,
            }
        }
    }

    /// Fetches until the run's end; in group mode then commits, records the positions and
    /// leaves the group.
    fn run(&mut self, w: &Workload, sh: &Shared, ends: Option<&[i64]>, forming: &Forming) -> Result<()> {
        self.fetch_loop(w, sh, ends)?;
        if let Some(mut m) = self.member.take() {
            let positions = self.positions();
            if m.commit(&positions)? {
                forming.positions.lock().unwrap_or_else(|p| p.into_inner()).extend(positions);
            }
            m.leave()?;
        }
        Ok(())
    }

    fn fetch_loop(&mut self, w: &Workload, sh: &Shared, ends: Option<&[i64]>) -> Result<()> {
        let quota = match (w.mode, w.stop) {
            (Mode::CatchUp | Mode::Tail, Stop::Count(n)) => Some(n),
            _ => None,
        };
        // Catch-up in a group: partitions move between members, so the members stop together
        // once all of them have read everything that was there at the start.
        let catch_up_total: Option<u64> =
            ends.map(|e| e.iter().zip(&self.starts).map(|(e, s)| (e - s).max(0) as u64).sum());
        let mut local_hist = new_histogram();
        let mut next_merge = Instant::now() + MERGE_INTERVAL;
        let mut last_progress = Instant::now();
        loop {
            match (ends, &self.member, catch_up_total) {
                (Some(_), Some(_), Some(total)) if sh.consumed.load(Relaxed) >= total => break,
                (Some(ends), None, _) if self.mine.iter().zip(&self.offsets).all(|(&p, &o)| o >= ends[p as usize]) => {
                    break
                }
                _ => {}
            }
            if quota.is_some_and(|q| sh.consumed.load(Relaxed) >= q) {
                break;
            }
            if w.mode == Mode::EndToEnd && sh.producers_running.load(Relaxed) == 0 {
                let target = sh.acked.load(Relaxed);
                if sh.consumed.load(Relaxed) >= target || last_progress.elapsed() > DRAIN_IDLE_MAX {
                    break;
                }
            } else if sh.stop.load(Relaxed) && w.mode != Mode::EndToEnd {
                break;
            }
            self.upkeep(Instant::now(), Some(sh))?;
            if self.mine.is_empty() {
                std::thread::sleep(MERGE_INTERVAL);
                continue;
            }
            let parts = self
                .mine
                .iter()
                .zip(&self.offsets)
                .map(|(&p, &o)| {
                    FetchPartition::default()
                        .with_partition(p)
                        .with_fetch_offset(o)
                        .with_partition_max_bytes(w.fetch_bytes)
                })
                .collect();
            let req = FetchRequest::default()
                .with_replica_id((-1).into())
                .with_max_wait_ms(100)
                .with_min_bytes(1)
                .with_max_bytes(w.fetch_bytes.saturating_mul(self.mine.len() as i32))
                .with_topics(vec![FetchTopic::default().with_topic(topic_name(&w.topic)).with_partitions(parts)]);
            let resp: FetchResponse = self.conn.call(ApiKey::Fetch, FETCH_VERSION, &req)?;
            let now = Instant::now();
            let now_unix = sh.unix_ns(now);
            for p in resp.responses.iter().flat_map(|t| t.partitions.iter()) {
                if not_appended(p.error_code) {
                    continue; // moving between the broker's cores (or a leader change): ask again
                }
                if p.error_code != 0 {
                    bail!("fetch of partition {} failed with error {}", p.partition_index, p.error_code);
                }
                let Some(i) = self.mine.iter().position(|&m| m == p.partition_index) else { continue };
                let Some(records) = &p.records else { continue };
                let (count, bytes, next) =
                    walk_batches(records, self.offsets[i], w.mode == Mode::EndToEnd, |stamp_ns| {
                        if stamp_ns >= sh.unix_ns(sh.measure_from) {
                            let us = now_unix.saturating_sub(stamp_ns) / 1000;
                            local_hist.saturating_record(us.clamp(1, LATENCY_US_MAX));
                            true
                        } else {
                            false
                        }
                    })?;
                if count.total > 0 {
                    last_progress = now;
                    self.offsets[i] = next;
                    sh.consumed.fetch_add(count.total, Relaxed);
                    let measured = if w.mode == Mode::EndToEnd {
                        count.measured
                    } else if now >= sh.measure_from {
                        count.total
                    } else {
                        0
                    };
                    sh.consumed_measured.fetch_add(measured, Relaxed);
                    sh.consumed_bytes_measured.fetch_add(bytes * measured / count.total.max(1), Relaxed);
                } else if next > self.offsets[i] {
                    self.offsets[i] = next; // only control batches (transaction markers)
                }
            }
            if now >= next_merge {
                merge(&sh.e2e_hist, &mut local_hist);
                next_merge = now + MERGE_INTERVAL;
            }
        }
        merge(&sh.e2e_hist, &mut local_hist);
        Ok(())
    }
}

#[derive(Default)]
struct Counted {
    total: u64,
    measured: u64,
}

/// Walks the record batches of a fetch: counts records at or after `from`, their payload
/// bytes (approximated by batch size for headers-only counting), and the next offset.
/// With `stamps`, decodes each batch and hands the 8-byte send stamp at the start of each
/// value to `on_stamp` (which says whether the record counts as measured).
fn walk_batches(
    mut records: &[u8],
    from: i64,
    stamps: bool,
    mut on_stamp: impl FnMut(u64) -> bool,
) -> Result<(Counted, u64, i64)> {
    let mut counted = Counted::default();
    let mut bytes = 0u64;
    let mut next = from;
    // Batch header: base offset (8), length (4), epoch (4), magic (1), crc (4), attributes (2),
    // last offset delta (4), timestamps (16), producer id/epoch (10), base sequence (4), count (4).
    while records.len() >= 61 {
        let size = 12 + be_i32(records, 8) as usize;
        if size > records.len() {
            break; // a partial batch at the end of the response
        }
        let base = be_i64(records, 0);
        let last = base + be_i32(records, 23) as i64;
        let batch = &records[..size];
        records = &records[size..];
        if last < from {
            continue;
        }
        let attributes = u16::from_be_bytes([batch[21], batch[22]]);
        if attributes & 0x20 != 0 {
            next = last + 1; // control batch (transactions): not a record for the reader
            continue;
        }
        let fresh = (last - base.max(from) + 1) as u64;
        counted.total += fresh;
        bytes += (size as u64).saturating_sub(61 + 8 * fresh).max(fresh); // payload, roughly
        if stamps {
            let mut buf = Bytes::copy_from_slice(batch);
            let set = RecordBatchDecoder::decode(&mut buf)?;
            let mut payload = 0u64;
            for r in set.records.iter().filter(|r| r.offset >= from) {
                let v = r.value.as_deref().unwrap_or(&[]);
                payload += (v.len() + r.key.as_ref().map_or(0, |k| k.len())) as u64;
                if v.len() >= 8 && on_stamp(u64::from_be_bytes(v[..8].try_into().expect("8 bytes"))) {
                    counted.measured += 1;
                }
            }
            bytes = bytes - (size as u64).saturating_sub(61 + 8 * fresh).max(fresh) + payload;
        }
        next = last + 1;
    }
    Ok((counted, bytes, next))
}
