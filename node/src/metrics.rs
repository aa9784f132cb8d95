//! Per-shard counters and their Prometheus text rendering. Each shard counts its own
//! (plain integers, no atomics); the admin endpoint gathers them by message.

use crate::shard::PartitionStat;
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub connections_accepted: u64,
    pub connections_open: u64,
    pub requests: u64,
    /// Connections closed because of a malformed or oversized frame.
    pub bad_frames: u64,
    pub produce_bytes: u64,
    pub fetch_bytes_zero_copy: u64,
    pub fetch_bytes_copied: u64,
    /// Times the watchdog interrupted this shard's wait (see `watchdog`).
    pub executor_kicks: u64,
}

/// Renders the gathered metrics in Prometheus' text format.
pub fn render(shards: &[Metrics], partitions: &[PartitionStat]) -> String {
    let mut out = String::new();
    let counters: [(&str, &str, fn(&Metrics) -> u64); 8] = [
        ("sluice_connections_accepted_total", "Kafka connections accepted", |m| m.connections_accepted),
        ("sluice_connections_open", "Kafka connections open now", |m| m.connections_open),
        ("sluice_requests_total", "Kafka requests handled", |m| m.requests),
        ("sluice_bad_frames_total", "connections closed for malformed frames", |m| m.bad_frames),
        ("sluice_produce_bytes_total", "record bytes appended", |m| m.produce_bytes),
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
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (shard, m) in shards.iter().enumerate() {
            let _ = writeln!(out, "{name}{{shard=\"{shard}\"}} {}", get(m));
        }
    }
    let per_partition: [(&str, &str, fn(&PartitionStat) -> i64); 5] = [
        ("sluice_partition_log_end_offset", "log end offset", |p| p.log_end_offset),
        ("sluice_partition_log_start_offset", "log start offset", |p| p.log_start_offset),
        ("sluice_partition_size_bytes", "bytes on disk", |p| p.size_bytes as i64),
        ("sluice_partition_segments", "segment count", |p| p.segments as i64),
        // With produced bytes, the write size per group commit (what acks=all is bound by).
        ("sluice_partition_sync_rounds_total", "fdatasync rounds (group commits) since start", |p| {
            p.sync_rounds as i64
        }),
    ];
    for (name, help, get) in per_partition {
        let kind = if name.ends_with("_total") { "counter" } else { "gauge" };
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
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
}

/// The partition → shard layout as JSON.
pub fn layout_json(shards: usize, partitions: &[PartitionStat]) -> String {
    let layout = Layout {
        shards,
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
            })
            .collect(),
    };
    serde_json::to_string(&layout).expect("serialising plain data cannot fail")
}
