//! Per-shard counters, each shard's measured load, and their two renderings: Prometheus text
//! (`/metrics`) and the `/layout` JSON. Each shard counts its own (plain integers, no
//! atomics); the admin endpoint gathers them by message.
//!
//! Load is measured, not estimated: once a second a task on a low-priority queue of each
//! shard reads the shard thread's own CPU clock (`CLOCK_THREAD_CPUTIME_ID`, which the kernel
//! keeps per thread and reports in `/proc/PID/task/TID/stat` too) and turns the counters'
//! growth since the previous reading into rates (see [`Load::tick`]). Work the kernel does for
//! the shard on other threads (io_uring workers, softirqs) is not in the shard's figure.

use crate::log::TopicPartition;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write;
use std::time::{Duration, Instant};

/// How often each shard samples its CPU time and turns counters into rates.
pub const LOAD_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// Upper bounds of the latency histograms' buckets, in seconds (Prometheus `le`; a last
/// `+Inf` bucket takes the rest).
pub const LATENCY_BUCKETS_SECONDS: [f64; 12] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// The same bounds in nanoseconds, compared against on the request path.
const LATENCY_BUCKETS_NANOS: [u64; 12] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
];

/// A latency histogram with fixed buckets: recording is a short scan of 12 bounds and two
/// additions, without allocation.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    counts: [u64; LATENCY_BUCKETS_NANOS.len() + 1],
    sum_nanos: u64,
}

impl Histogram {
    pub fn record(&mut self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_NANOS.iter().position(|&b| nanos <= b).unwrap_or(LATENCY_BUCKETS_NANOS.len());
        self.counts[bucket] += 1;
        self.sum_nanos = self.sum_nanos.saturating_add(nanos);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn sum_seconds(&self) -> f64 {
        self.sum_nanos as f64 / 1e9
    }

    /// (upper bound in seconds, `None` for +Inf; observations at or below it), as Prometheus
    /// lists buckets: cumulative.
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<f64>, u64)> + '_ {
        let bounds = LATENCY_BUCKETS_SECONDS.iter().map(|&b| Some(b)).chain([None]);
        bounds.zip(self.counts.iter().scan(0u64, |total, &n| {
            *total += n;
            Some(*total)
        }))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub connections_accepted: u64,
    pub connections_open: u64,
    /// Connections accepted and closed at once: their address held `max.connections.per.ip`.
    pub connections_refused_per_ip: u64,
    /// Connections closed after `connections.max.idle.ms` without a request or a response.
    pub connections_closed_idle: u64,
    /// Times this shard's acceptor stopped because the node held `max.connections` (or as
    /// many connections as its descriptor limit leaves room for).
    pub accept_blocked: u64,
    /// `accept` calls that failed (EMFILE, ENFILE, ENOBUFS...): each is followed by a back-off.
    pub accept_failures: u64,
    /// Kafka requests read from this shard's connections.
    pub requests: u64,
    /// Connections closed because of a malformed or oversized frame.
    pub bad_frames: u64,
    /// Record bytes of produce requests for partitions this shard owns (counted on the owner,
    /// whichever shard's connection carried them).
    pub produce_bytes: u64,
    pub fetch_bytes_zero_copy: u64,
    pub fetch_bytes_copied: u64,
    /// Bytes of Kafka requests read from this shard's connections (length prefixes included).
    pub bytes_received: u64,
    /// Bytes of Kafka responses written to this shard's connections.
    pub bytes_sent: u64,
    /// Produce and Fetch requests from read to answered (acks=all waits and long polls
    /// included), on the shard whose connection carried them.
    pub produce_latency: Histogram,
    pub fetch_latency: Histogram,
    /// Times the watchdog interrupted this shard's wait (see `watchdog`).
    pub executor_kicks: u64,
    /// The load sampler's last reading (filled in by the snapshot).
    pub load: ShardLoad,
}

impl Metrics {
    /// Records how long a request took, if it is one whose latency is kept.
    pub fn record_latency(&mut self, api: kafka_protocol::messages::ApiKey, elapsed: Duration) {
        match api {
            kafka_protocol::messages::ApiKey::Produce => self.produce_latency.record(elapsed),
            kafka_protocol::messages::ApiKey::Fetch => self.fetch_latency.record(elapsed),
            _ => {}
        }
    }
}

/// What a shard's load sampler measured over its last interval.
#[derive(Debug, Clone, Default)]
pub struct ShardLoad {
    /// The CPU (core) the shard's thread is pinned to.
    pub core: usize,
    /// CPU time of the shard's thread over wall time, in the last interval (0..=1).
    pub busy_ratio: f64,
    /// CPU time of the shard's thread since it started, as of the last sample.
    pub cpu_seconds: f64,
    pub requests_per_s: f64,
    pub bytes_received_per_s: f64,
    pub bytes_sent_per_s: f64,
}

/// One partition's state, for the layout view, metrics and checkpoints.
#[derive(Debug, Clone)]
pub struct PartitionStat {
    pub tp: TopicPartition,
    pub shard: usize,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub recovery_point: i64,
    pub size_bytes: u64,
    pub segments: usize,
    /// fdatasync rounds (group commits) since the node started.
    pub sync_rounds: u64,
    /// Bytes produced to and fetched from it since the node started, and their rates.
    pub load: PartitionCounters,
}

/// Bytes in and out of one partition, counted on the shard that owns it.
#[derive(Debug, Clone, Default)]
pub struct PartitionCounters {
    /// Record bytes of produce requests (before any recompression).
    pub produce_bytes: u64,
    /// Record bytes read for fetches (handed to a Fetch response, local or on another shard).
    pub fetch_bytes: u64,
    pub produce_bytes_per_s: f64,
    pub fetch_bytes_per_s: f64,
    /// The counters at the previous sample.
    sampled: (u64, u64),
}

/// One shard's load: per-partition byte counters and the sampler's state.
#[derive(Debug, Default)]
pub struct Load {
    partitions: HashMap<TopicPartition, PartitionCounters>,
    /// The previous sample: when, the thread's CPU time, requests, bytes received, bytes sent.
    last: Option<(Instant, Duration, u64, u64, u64)>,
    pub shard: ShardLoad,
}

impl Load {
    /// Counts record bytes produced to a partition this shard owns.
    pub fn produced(&mut self, tp: &TopicPartition, bytes: u64) {
        self.counters(tp).produce_bytes += bytes;
    }

    /// Counts record bytes fetched from a partition this shard owns.
    pub fn fetched(&mut self, tp: &TopicPartition, bytes: u64) {
        self.counters(tp).fetch_bytes += bytes;
    }

    fn counters(&mut self, tp: &TopicPartition) -> &mut PartitionCounters {
        // Look up before inserting: the key is cloned only for a partition's first count.
        if !self.partitions.contains_key(tp) {
            self.partitions.insert(tp.clone(), PartitionCounters::default());
        }
        self.partitions.get_mut(tp).expect("inserted above")
    }

    /// A partition's counters (zero if it saw no traffic).
    pub fn partition(&self, tp: &TopicPartition) -> PartitionCounters {
        self.partitions.get(tp).cloned().unwrap_or_default()
    }

    /// Forgets a deleted partition (a topic created again under its name starts from zero).
    pub fn forget(&mut self, tp: &TopicPartition) {
        self.partitions.remove(tp);
    }

    /// One sample: the shard thread's CPU time `cpu` at `now`, and its counters. Rates cover
    /// the time since the previous sample.
    pub fn tick(&mut self, now: Instant, cpu: Duration, counters: &Metrics) {
        let current = (now, cpu, counters.requests, counters.bytes_received, counters.bytes_sent);
        if let Some((at, cpu0, requests, received, sent)) = self.last {
            let wall = now.duration_since(at).as_secs_f64();
            if wall > 0.0 {
                let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / wall;
                let s = &mut self.shard;
                s.busy_ratio = (cpu.saturating_sub(cpu0).as_secs_f64() / wall).min(1.0);
                s.requests_per_s = rate(counters.requests, requests);
                s.bytes_received_per_s = rate(counters.bytes_received, received);
                s.bytes_sent_per_s = rate(counters.bytes_sent, sent);
                for c in self.partitions.values_mut() {
                    c.produce_bytes_per_s = rate(c.produce_bytes, c.sampled.0);
                    c.fetch_bytes_per_s = rate(c.fetch_bytes, c.sampled.1);
                }
            }
        }
        for c in self.partitions.values_mut() {
            c.sampled = (c.produce_bytes, c.fetch_bytes);
        }
        self.shard.cpu_seconds = cpu.as_secs_f64();
        self.last = Some(current);
    }
}

/// CPU time (user + system) of the calling thread.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only the timespec we pass.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Writes one metric family's HELP and TYPE lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Renders the gathered metrics in Prometheus' text format.
pub fn render(shards: &[Metrics], partitions: &[PartitionStat]) -> String {
    let mut out = String::new();
    let counters: [(&str, &str, fn(&Metrics) -> u64); 14] = [
        ("sluice_connections_accepted_total", "Kafka connections accepted", |m| m.connections_accepted),
        ("sluice_connections_open", "Kafka connections open now", |m| m.connections_open),
        (
            "sluice_connections_refused_per_ip_total",
            "connections closed at accept: their address held max.connections.per.ip",
            |m| m.connections_refused_per_ip,
        ),
        (
            "sluice_connections_closed_idle_total",
            "connections closed after connections.max.idle.ms without traffic",
            |m| m.connections_closed_idle,
        ),
        (
            "sluice_accept_blocked_total",
            "times the shard stopped accepting because the node held max.connections or the connections its descriptor limit leaves room for",
            |m| m.accept_blocked,
        ),
        (
            "sluice_accept_failures_total",
            "accept calls that failed (EMFILE, ENFILE, ...), each followed by a back-off",
            |m| m.accept_failures,
        ),
        ("sluice_shard_requests_total", "Kafka requests read from the shard's connections", |m| m.requests),
        ("sluice_shard_bytes_received_total", "bytes of Kafka requests read from the shard's connections", |m| {
            m.bytes_received
        }),
        ("sluice_shard_bytes_sent_total", "bytes of Kafka responses written to the shard's connections", |m| {
            m.bytes_sent
        }),
        ("sluice_bad_frames_total", "connections closed for malformed frames", |m| m.bad_frames),
        ("sluice_produce_bytes_total", "record bytes produced to partitions the shard owns", |m| m.produce_bytes),
        ("sluice_fetch_zero_copy_bytes_total", "record bytes sent file to socket without a copy", |m| {
            m.fetch_bytes_zero_copy
        }),
        ("sluice_fetch_copied_bytes_total", "record bytes sent through a user-space copy", |m| m.fetch_bytes_copied),
        ("sluice_executor_kicks_total", "times the watchdog interrupted a shard that made no progress", |m| {
            m.executor_kicks
        }),
    ];
    for (name, help, get) in counters {
        let kind = if name.ends_with("_total") { "counter" } else { "gauge" };
        family(&mut out, name, kind, help);
        for (shard, m) in shards.iter().enumerate() {
            let _ = writeln!(out, "{name}{{shard=\"{shard}\"}} {}", get(m));
        }
    }
    let load: [(&str, &str, &str, fn(&ShardLoad) -> f64); 2] = [
        (
            "sluice_shard_busy_ratio",
            "gauge",
            "CPU time of the shard's thread over wall time in the last second (sampled every second)",
            |l| l.busy_ratio,
        ),
        (
            "sluice_shard_cpu_seconds_total",
            "counter",
            "CPU time of the shard's thread since start (sampled every second)",
            |l| l.cpu_seconds,
        ),
    ];
    for (name, kind, help, get) in load {
        family(&mut out, name, kind, help);
        for (shard, m) in shards.iter().enumerate() {
            let _ = writeln!(out, "{name}{{shard=\"{shard}\"}} {}", get(&m.load));
        }
    }
    let latencies: [(&str, &str, fn(&Metrics) -> &Histogram); 2] = [
        (
            "sluice_produce_latency_seconds",
            "Produce requests from read to answered (acks=all waits included), by the shard of the connection",
            |m| &m.produce_latency,
        ),
        (
            "sluice_fetch_latency_seconds",
            "Fetch requests from read to answered (long-poll waits included), by the shard of the connection",
            |m| &m.fetch_latency,
        ),
    ];
    for (name, help, get) in latencies {
        family(&mut out, name, "histogram", help);
        for (shard, m) in shards.iter().enumerate() {
            let h = get(m);
            for (le, n) in h.cumulative() {
                let le = le.map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                let _ = writeln!(out, "{name}_bucket{{shard=\"{shard}\",le=\"{le}\"}} {n}");
            }
            let _ = writeln!(out, "{name}_sum{{shard=\"{shard}\"}} {}", h.sum_seconds());
            let _ = writeln!(out, "{name}_count{{shard=\"{shard}\"}} {}", h.count());
        }
    }
    let per_partition: [(&str, &str, fn(&PartitionStat) -> i64); 7] = [
        ("sluice_partition_log_end_offset", "log end offset", |p| p.log_end_offset),
        ("sluice_partition_log_start_offset", "log start offset", |p| p.log_start_offset),
        ("sluice_partition_size_bytes", "bytes on disk", |p| p.size_bytes as i64),
        ("sluice_partition_segments", "segment count", |p| p.segments as i64),
        // With produced bytes, the write size per group commit (what acks=all is bound by).
        ("sluice_partition_sync_rounds_total", "fdatasync rounds (group commits) since start", |p| {
            p.sync_rounds as i64
        }),
        ("sluice_partition_produce_bytes_total", "record bytes produced to the partition since start", |p| {
            p.load.produce_bytes as i64
        }),
        ("sluice_partition_fetch_bytes_total", "record bytes read from the partition for fetches since start", |p| {
            p.load.fetch_bytes as i64
        }),
    ];
    for (name, help, get) in per_partition {
        let kind = if name.ends_with("_total") { "counter" } else { "gauge" };
        family(&mut out, name, kind, help);
        for p in partitions {
            let _ = writeln!(
                out,
                "{name}{{topic=\"{}\",partition=\"{}\",shard=\"{}\"}} {}",
                p.tp.topic,
                p.tp.partition,
                p.shard,
                get(p)
            );
        }
    }
    out
}

/// The `/layout` document.
#[derive(Debug, Serialize)]
struct Layout<'a> {
    shards: usize,
    partitions: Vec<LayoutPartition<'a>>,
    /// Per shard: the core it runs on and its measured load.
    cores: Vec<LayoutCore>,
}

/// One partition of `/layout` (the field order is the document's).
#[derive(Debug, Serialize)]
struct LayoutPartition<'a> {
    topic: &'a str,
    partition: i32,
    shard: usize,
    log_start_offset: i64,
    log_end_offset: i64,
    size_bytes: u64,
    segments: usize,
    produce_bytes: u64,
    fetch_bytes: u64,
    /// Over the shard's last sampling interval (about a second).
    produce_bytes_per_s: f64,
    fetch_bytes_per_s: f64,
}

#[derive(Debug, Serialize)]
struct LayoutCore {
    shard: usize,
    core: usize,
    busy_ratio: f64,
    cpu_seconds: f64,
    requests: u64,
    requests_per_s: f64,
    bytes_received: u64,
    bytes_received_per_s: f64,
    bytes_sent: u64,
    bytes_sent_per_s: f64,
    partitions: usize,
    /// Sums over the shard's partitions.
    produce_bytes_per_s: f64,
    fetch_bytes_per_s: f64,
    produce_latency: LayoutHistogram,
    fetch_latency: LayoutHistogram,
}

#[derive(Debug, Serialize)]
struct LayoutHistogram {
    count: u64,
    sum_seconds: f64,
    /// Cumulative, as in /metrics; the last bucket's `le` is null (+Inf).
    buckets: Vec<LayoutBucket>,
}

#[derive(Debug, Serialize)]
struct LayoutBucket {
    le: Option<f64>,
    count: u64,
}

fn layout_histogram(h: &Histogram) -> LayoutHistogram {
    LayoutHistogram {
        count: h.count(),
        sum_seconds: h.sum_seconds(),
        buckets: h.cumulative().map(|(le, count)| LayoutBucket { le, count }).collect(),
    }
}

/// The partition → shard layout, with each partition's traffic and each shard's load, as JSON.
pub fn layout_json(shards: &[Metrics], partitions: &[PartitionStat]) -> String {
    let cores = shards
        .iter()
        .enumerate()
        .map(|(shard, m)| {
            let mine = || partitions.iter().filter(move |p| p.shard == shard);
            LayoutCore {
                shard,
                core: m.load.core,
                busy_ratio: m.load.busy_ratio,
                cpu_seconds: m.load.cpu_seconds,
                requests: m.requests,
                requests_per_s: m.load.requests_per_s,
                bytes_received: m.bytes_received,
                bytes_received_per_s: m.load.bytes_received_per_s,
                bytes_sent: m.bytes_sent,
                bytes_sent_per_s: m.load.bytes_sent_per_s,
                partitions: mine().count(),
                produce_bytes_per_s: mine().map(|p| p.load.produce_bytes_per_s).sum(),
                fetch_bytes_per_s: mine().map(|p| p.load.fetch_bytes_per_s).sum(),
                produce_latency: layout_histogram(&m.produce_latency),
                fetch_latency: layout_histogram(&m.fetch_latency),
            }
        })
        .collect();
    let layout = Layout {
        shards: shards.len(),
        partitions: partitions
            .iter()
            .map(|p| LayoutPartition {
                topic: &p.tp.topic,
                partition: p.tp.partition,
                shard: p.shard,
                log_start_offset: p.log_start_offset,
                log_end_offset: p.log_end_offset,
                size_bytes: p.size_bytes,
                segments: p.segments,
                produce_bytes: p.load.produce_bytes,
                fetch_bytes: p.load.fetch_bytes,
                produce_bytes_per_s: p.load.produce_bytes_per_s,
                fetch_bytes_per_s: p.load.fetch_bytes_per_s,
            })
            .collect(),
        cores,
    };
    serde_json::to_string(&layout).expect("serialising plain data cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_their_buckets_cumulatively() {
        let mut h = Histogram::default();
        for us in [50, 100, 101, 900, 2_000_000] {
            h.record(Duration::from_micros(us));
        }
        let buckets: Vec<(Option<f64>, u64)> = h.cumulative().collect();
        assert_eq!(buckets.len(), 13);
        assert_eq!(buckets[0], (Some(0.0001), 2), "50 µs and exactly 100 µs are ≤ 100 µs");
        assert_eq!(buckets[1], (Some(0.00025), 3));
        assert_eq!(buckets[3], (Some(0.001), 4));
        assert_eq!(buckets[11], (Some(1.0), 4));
        assert_eq!(buckets[12], (None, 5), "2 s only in +Inf");
        assert_eq!(h.count(), 5);
        assert!((h.sum_seconds() - 2.001151).abs() < 1e-9);
    }

    #[test]
    fn a_tick_turns_counter_growth_into_rates() {
        let mut load = Load::default();
        let tp = TopicPartition::new("t", 0);
        let t0 = Instant::now();
        let mut m = Metrics::default();
        load.tick(t0, Duration::from_millis(100), &m);
        assert_eq!(load.shard.busy_ratio, 0.0, "no interval yet");
        load.produced(&tp, 3000);
        load.fetched(&tp, 1000);
        m.requests = 50;
        m.bytes_received = 4000;
        m.bytes_sent = 2000;
        load.tick(t0 + Duration::from_secs(2), Duration::from_millis(1100), &m);
        assert!((load.shard.busy_ratio - 0.5).abs() < 1e-9, "1 s of CPU in 2 s");
        assert!((load.shard.cpu_seconds - 1.1).abs() < 1e-9);
        assert_eq!((load.shard.requests_per_s, load.shard.bytes_received_per_s), (25.0, 2000.0));
        let c = load.partition(&tp);
        assert_eq!((c.produce_bytes_per_s, c.fetch_bytes_per_s), (1500.0, 500.0));
        load.tick(t0 + Duration::from_secs(3), Duration::from_millis(1100), &m);
        assert_eq!(load.partition(&tp).produce_bytes_per_s, 0.0, "no bytes in the last interval");
        assert_eq!(load.partition(&tp).produce_bytes, 3000, "counters keep their totals");
        load.forget(&tp);
        assert_eq!(load.partition(&tp).produce_bytes, 0);
    }

    #[test]
    fn the_thread_cpu_clock_advances_with_work() {
        let before = thread_cpu_time();
        let mut x = 0u64;
        while thread_cpu_time() - before < Duration::from_millis(20) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0 && thread_cpu_time() > before);
    }
}
