//! Storage: Kafka's on-disk log format on io_uring.
//!
//! ```text
//! <data-dir>/<topic>-<partition>/00000000000000000000.log        record batches, magic v2
//!                                00000000000000000000.index      offset -> position
//!                                00000000000000000000.timeindex  timestamp -> offset
//!                                leader-epoch-checkpoint
//! <data-dir>/recovery-point-offset-checkpoint
//! <data-dir>/replication-offset-checkpoint     high watermarks
//! <data-dir>/log-start-offset-checkpoint
//! <data-dir>/.kafka_cleanshutdown              present only between a clean stop and the next start
//! ```
//!
//! `batch` is the record-batch view, `index` the sparse indexes, `segment` one segment,
//! `partition` the partition log (append, read, sync, truncate, retention),
//! `checkpoint` the text checkpoint files, and [`LogDir`] the data directory.

pub mod background;
pub mod batch;
pub mod checkpoint;
pub mod compaction;
pub mod config;
pub mod error;
pub mod index;
pub mod partition;
pub mod producer;
pub mod records;
pub mod segment;

pub use config::LogConfig;
pub use error::LogError;
pub use partition::{AppendInfo, FileRange, OpenHint, PartitionLog, ReadInfo, RetentionOutcome};

use checkpoint::OffsetEntry;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Kafka's clean-shutdown marker file name, kept so Kafka's tooling recognises it.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition { topic: topic.into(), partition }
    }

    /// The partition directory's name: `<topic>-<partition>`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses a partition directory name. Topic names may contain `-`, so the partition is
    /// what follows the last one. Kafka's deleted/future directories (`.../topic-0.abc-delete`)
    /// have a `.` in the suffix and are not partitions.
    pub fn parse_dir_name(name: &str) -> Option<TopicPartition> {
        let (topic, partition) = name.rsplit_once('-')?;
        if topic.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let valid_topic = topic.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
        let partition = partition.parse().ok()?;
        valid_topic.then(|| TopicPartition::new(topic, partition))
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// One data directory: its partitions and its checkpoint files.
///
/// Ownership: the checkpoint files are per directory, so exactly one owner writes them (in
/// the node, shard 0 gathers the entries of every shard's partitions).
#[derive(Debug)]
pub struct LogDir {
    path: PathBuf,
    recovery_points: BTreeMap<TopicPartition, i64>,
    log_starts: BTreeMap<TopicPartition, i64>,
    clean_shutdown: bool,
    logs: BTreeMap<TopicPartition, Rc<PartitionLog>>,
}

fn offsets_by_partition(entries: Vec<OffsetEntry>) -> BTreeMap<TopicPartition, i64> {
    entries.into_iter().map(|e| (TopicPartition::new(e.topic, e.partition), e.offset)).collect()
}

impl LogDir {
    /// Opens the directory and every partition in it. The clean-shutdown marker is read
    /// and then removed, so a crash from here on is recovered as a crash.
    pub async fn open(path: &Path, config: &LogConfig) -> Result<LogDir, LogError> {
        std::fs::create_dir_all(path).map_err(|e| LogError::io(format!("creating {}", path.display()), e))?;
        // glommio opens directories with openat(-1, path): a relative path fails with EBADF.
        let path = &std::path::absolute(path).map_err(|e| LogError::io(format!("resolving {}", path.display()), e))?;
        let marker = path.join(CLEAN_SHUTDOWN_FILE);
        let mut dir = LogDir {
            path: path.to_path_buf(),
            recovery_points: offsets_by_partition(checkpoint::read_offsets(path, checkpoint::RECOVERY_POINT_FILE)?),
            log_starts: offsets_by_partition(checkpoint::read_offsets(path, checkpoint::LOG_START_OFFSET_FILE)?),
            clean_shutdown: marker.exists(),
            logs: BTreeMap::new(),
        };
        let mut found = Vec::new();
        for entry in std::fs::read_dir(path).map_err(|e| LogError::io(format!("listing {}", path.display()), e))? {
            let entry = entry.map_err(|e| LogError::io(format!("listing {}", path.display()), e))?;
            if entry.path().is_dir() {
                if let Some(tp) = TopicPartition::parse_dir_name(&entry.file_name().to_string_lossy()) {
                    found.push(tp);
                }
            }
        }
        for tp in found {
            dir.open_partition(tp, config.clone()).await?;
        }
        if dir.clean_shutdown {
            std::fs::remove_file(&marker).map_err(|e| LogError::io(format!("removing {}", marker.display()), e))?;
        }
        dir.clean_shutdown = false;
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, tp: &TopicPartition) -> Option<&Rc<PartitionLog>> {
        self.logs.get(tp)
    }

    pub fn partitions(&self) -> impl Iterator<Item = (&TopicPartition, &Rc<PartitionLog>)> {
        self.logs.iter()
    }

    /// Opens a partition's log, creating its directory when new.
    pub async fn open_partition(
        &mut self,
        tp: TopicPartition,
        config: LogConfig,
    ) -> Result<Rc<PartitionLog>, LogError> {
        if let Some(log) = self.logs.get(&tp) {
            return Ok(log.clone());
        }
        let hint = OpenHint {
            recovery_point: self.recovery_points.get(&tp).copied().unwrap_or(0),
            log_start_offset: self.log_starts.get(&tp).copied().unwrap_or(0),
            clean_shutdown: self.clean_shutdown,
        };
        let log = PartitionLog::open(&self.path.join(tp.dir_name()), config, hint).await?;
        self.logs.insert(tp, log.clone());
        Ok(log)
    }

    /// Writes the three offset checkpoints from the partitions' current state.
    pub async fn checkpoint(&self) -> Result<(), LogError> {
        let collect = |f: &dyn Fn(&PartitionLog) -> i64| -> Vec<OffsetEntry> {
            self.logs
                .iter()
                .map(|(tp, log)| OffsetEntry { topic: tp.topic.clone(), partition: tp.partition, offset: f(log) })
                .collect()
        };
        checkpoint::write_offsets(&self.path, checkpoint::RECOVERY_POINT_FILE, &collect(&|l| l.recovery_point()))
            .await?;
        checkpoint::write_offsets(&self.path, checkpoint::REPLICATION_OFFSET_FILE, &collect(&|l| l.high_watermark()))
            .await?;
        checkpoint::write_offsets(&self.path, checkpoint::LOG_START_OFFSET_FILE, &collect(&|l| l.log_start_offset()))
            .await?;
        Ok(())
    }

    /// Flushes every partition, writes the checkpoints, then the clean-shutdown marker.
    pub async fn close(self) -> Result<(), LogError> {
        for log in self.logs.values() {
            log.close().await?;
        }
        self.checkpoint().await?;
        checkpoint::write_atomic(&self.path, CLEAN_SHUTDOWN_FILE, Vec::new()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_directory_names_parse_like_kafkas() {
        assert_eq!(TopicPartition::parse_dir_name("orders-3"), Some(TopicPartition::new("orders", 3)));
        assert_eq!(TopicPartition::parse_dir_name("my-topic-12"), Some(TopicPartition::new("my-topic", 12)));
        assert_eq!(
            TopicPartition::parse_dir_name("__consumer_offsets-49"),
            Some(TopicPartition::new("__consumer_offsets", 49))
        );
        assert_eq!(TopicPartition::parse_dir_name("orders"), None);
        assert_eq!(TopicPartition::parse_dir_name("orders-0.abc-delete"), None);
        assert_eq!(TopicPartition::parse_dir_name("-0"), None);
        assert_eq!(TopicPartition::new("a-b", 0).dir_name(), "a-b-0");
    }
}
