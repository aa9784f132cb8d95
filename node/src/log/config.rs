//! Per-partition log settings, under their Kafka topic-config names.

use crate::limits::{
    INDEX_INTERVAL_BYTES_DEFAULT, MESSAGE_BYTES_MAX_DEFAULT, SEGMENT_BYTES_DEFAULT, SEGMENT_BYTES_MAX,
    SEGMENT_INDEX_BYTES_DEFAULT,
};

/// Default of `log.roll.flush.delay.ms`: the kernel's `vm.dirty_expire_centisecs` (30 s) plus
/// one period of its flusher (`vm.dirty_writeback_centisecs`, 5 s), at their defaults. By then
/// the kernel's flusher threads have written the sealed segment's pages back, so the flush
/// finds them clean and only commits the journal and flushes the device cache.
pub const ROLL_FLUSH_DELAY_MS_DEFAULT: i64 = 35_000;

/// Kafka's defaults, so an operator reading Kafka's documentation gets what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is this much older than the
    /// incoming one (Kafka compares record timestamps, not the wall clock).
    pub segment_ms: i64,
    /// `segment.index.bytes`: the size at which either index is full (and the segment rolls).
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`: bytes between offset-index entries.
    pub index_interval_bytes: u64,
    /// `flush.messages`: fdatasync once this many messages are unsynced. Kafka's default,
    /// `Long.MAX_VALUE`, is never: rely on the OS, and on acks=all which syncs anyway.
    pub flush_messages: u64,
    /// `flush.ms`: fdatasync when the oldest unsynced append is this old. `i64::MAX` = never.
    pub flush_ms: i64,
    /// `retention.ms`: delete closed segments whose newest record is older. -1 = forever.
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest closed segments while the log is larger. -1 = no limit.
    pub retention_bytes: i64,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_message_bytes: u32,
    /// `min.insync.replicas`: in a cluster, acks=all needs this many in-sync replicas.
    pub min_insync_replicas: u32,
    /// `producer.id.expiration.ms`: an idempotent producer idle this long is forgotten.
    pub producer_id_expiration_ms: i64,
    /// Walk every produced record (decompressing compressed batches) as Kafka's
    /// `LogValidator` does. Sluice's own switch, on by default; off only to measure it.
    pub validate_records: bool,
    /// `log.write.method` (Sluice's own): how appends reach the page cache.
    pub write_method: WriteMethod,
    /// `log.write.behind.bytes` (Sluice's own): start writeback of every this many bytes
    /// written (0 = leave it to the kernel's flusher). See `PartitionLog::write_behind`.
    pub write_behind_bytes: u64,
    /// `log.roll.flush.delay.ms` (Sluice's own): how long after a roll the sealed segment is
    /// fdatasynced (Kafka flushes it at once). See `PartitionLog::schedule_roll_flush`.
    pub roll_flush_delay_ms: i64,
    /// `cleanup.policy` holds `delete`: retention deletes old segments.
    pub cleanup_delete: bool,
    /// `cleanup.policy` holds `compact`: the shard's cleaner keeps the latest record per key
    /// (see `log::cleaner`), and records without a key are refused.
    pub cleanup_compact: bool,
    /// `min.cleanable.dirty.ratio`: clean once dirty bytes are this share of the cleanable log.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: a record stays uncompacted at least this long.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a record older than this is cleaned whatever the dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: a tombstone (and a transaction marker) stays readable this long
    /// after the cleaner first passed over it.
    pub delete_retention_ms: i64,
}

/// How the partition writer moves queued appends into the page cache.
///
/// `Pwritev` (the default): one gathering `pwritev(2)` on the shard's own thread, straight
/// from the request frames. `IoUring`: the pieces are first copied into one buffer, which
/// glommio writes with `IORING_OP_WRITE`; on filesystems without async buffered writes
/// (ext4) io_uring hands every such write to an io-wq worker thread, which runs on the
/// shard's core and competes with it. Measured on ext4 in `bench/RESULTS.md` (2026-12-04);
/// kept so the trade can be re-measured where it may differ (XFS, a slow disk whose writes
/// block in dirty-page throttling: there a blocking `pwritev` stalls the whole shard, the
/// io-wq worker only its partition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMethod {
    Pwritev,
    IoUring,
}

impl std::str::FromStr for WriteMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pwritev" => Ok(WriteMethod::Pwritev),
            "io_uring" => Ok(WriteMethod::IoUring),
            _ => Err(format!("log.write.method takes pwritev or io_uring, got {s:?}")),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_index_bytes: SEGMENT_INDEX_BYTES_DEFAULT,
            index_interval_bytes: INDEX_INTERVAL_BYTES_DEFAULT,
            flush_messages: i64::MAX as u64,
            flush_ms: i64::MAX,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            max_message_bytes: MESSAGE_BYTES_MAX_DEFAULT,
            min_insync_replicas: 1,
            producer_id_expiration_ms: 86_400_000,
            validate_records: true,
            write_method: WriteMethod::Pwritev,
            write_behind_bytes: 0,
            roll_flush_delay_ms: ROLL_FLUSH_DELAY_MS_DEFAULT,
            cleanup_delete: true,
            cleanup_compact: false,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 86_400_000,
        }
    }
}

impl LogConfig {
    /// Refuses settings the log cannot honour, naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        if !(14..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return Err(format!("segment.bytes must be in 14..={SEGMENT_BYTES_MAX}, got {}", self.segment_bytes));
        }
        if self.segment_ms < 1 {
            return Err(format!("segment.ms must be at least 1, got {}", self.segment_ms));
        }
        if self.segment_index_bytes < 8 {
            return Err(format!("segment.index.bytes must be at least 8, got {}", self.segment_index_bytes));
        }
        if self.min_insync_replicas < 1 {
            return Err("min.insync.replicas must be at least 1".into());
        }
        if self.flush_messages < 1 {
            return Err("flush.messages must be at least 1".into());
        }
        if self.roll_flush_delay_ms < 0 {
            return Err(format!("log.roll.flush.delay.ms must not be negative, got {}", self.roll_flush_delay_ms));
        }
        if self.flush_ms < 0 {
            return Err(format!("flush.ms must not be negative, got {}", self.flush_ms));
        }
        if self.retention_ms < -1 || self.retention_bytes < -1 {
            return Err("retention.ms and retention.bytes take -1 (unlimited) or a non-negative value".into());
        }
        if !(0.0..=1.0).contains(&self.min_cleanable_dirty_ratio) {
            let ratio = self.min_cleanable_dirty_ratio;
            return Err(format!("min.cleanable.dirty.ratio must be in [0, 1], got {ratio}"));
        }
        if self.min_compaction_lag_ms < 0 || self.max_compaction_lag_ms < 1 || self.delete_retention_ms < 0 {
            return Err("min.compaction.lag.ms and delete.retention.ms must not be negative, max.compaction.lag.ms must be at least 1".into());
        }
        if self.min_compaction_lag_ms > self.max_compaction_lag_ms {
            return Err(format!(
                "min.compaction.lag.ms ({}) must not exceed max.compaction.lag.ms ({})",
                self.min_compaction_lag_ms, self.max_compaction_lag_ms
            ));
        }
        if !self.cleanup_delete && !self.cleanup_compact {
            return Err("cleanup.policy must name delete, compact or both".into());
        }
        Ok(())
    }
}
