//! Checkpoint files in Kafka's text format, written atomically.
//!
//! Offset checkpoints (`recovery-point-offset-checkpoint`, `replication-offset-checkpoint`,
//! `log-start-offset-checkpoint`, one per data directory):
//!
//! ```text
//! 0                      version
//! 2                      number of entries
//! orders 0 1234          topic partition offset
//! orders 1 987
//! ```
//!
//! `leader-epoch-checkpoint` (one per partition directory): version 0, a count, then
//! `epoch startOffset` lines.
//!
//! Writes follow Kafka's `CheckpointFile`: write `<name>.tmp`, fsync it, rename over the
//! old file, fsync the directory. A crash leaves either the old or the new file whole;
//! a stray `.tmp` is ignored and removed.

use super::error::LogError;
use super::segment::write_fully;
use glommio::io::{BufferedFile, Directory, OpenOptions};
use std::path::Path;

pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
pub const REPLICATION_OFFSET_FILE: &str = "replication-offset-checkpoint";
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset-checkpoint";
pub const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";
const VERSION: &str = "0";

/// One line of an offset checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetEntry {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// One line of a leader epoch checkpoint: `epoch` led from `start_offset` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

pub fn encode_offsets(entries: &[OffsetEntry]) -> String {
    let mut out = format!("{VERSION}\n{}\n", entries.len());
    for e in entries {
        out.push_str(&format!("{} {} {}\n", e.topic, e.partition, e.offset));
    }
    out
}

pub fn encode_epochs(entries: &[EpochEntry]) -> String {
    let mut out = format!("{VERSION}\n{}\n", entries.len());
    for e in entries {
        out.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
    }
    out
}

/// Parses the common frame (version, count, lines) and each line with `parse_line`.
fn decode<T>(text: &str, what: &str, parse_line: impl Fn(&[&str]) -> Option<T>) -> Result<Vec<T>, LogError> {
    let bad = |why: &str| LogError::Corrupt(format!("{what}: {why}"));
    let mut lines = text.lines();
    if lines.next() != Some(VERSION) {
        return Err(bad("unknown version"));
    }
    let count: usize = lines.next().and_then(|l| l.trim().parse().ok()).ok_or_else(|| bad("bad entry count"))?;
    let entries: Vec<T> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| parse_line(&l.split_whitespace().collect::<Vec<_>>()).ok_or_else(|| bad(&format!("bad line {l:?}"))))
        .collect::<Result<_, _>>()?;
    if entries.len() != count {
        return Err(bad(&format!("expected {count} entries, found {}", entries.len())));
    }
    Ok(entries)
}

pub fn decode_offsets(text: &str, what: &str) -> Result<Vec<OffsetEntry>, LogError> {
    decode(text, what, |f| match f {
        [topic, partition, offset] => Some(OffsetEntry {
            topic: topic.to_string(),
            partition: partition.parse().ok()?,
            offset: offset.parse().ok()?,
        }),
        _ => None,
    })
}

pub fn decode_epochs(text: &str, what: &str) -> Result<Vec<EpochEntry>, LogError> {
    decode(text, what, |f| match f {
        [epoch, start] => Some(EpochEntry { epoch: epoch.parse().ok()?, start_offset: start.parse().ok()? }),
        _ => None,
    })
}

/// Reads a checkpoint file; a missing file is an empty checkpoint.
fn read_text(path: &Path) -> Result<Option<String>, LogError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::io(format!("reading {}", path.display()), e)),
    }
}

pub fn read_offsets(dir: &Path, name: &str) -> Result<Vec<OffsetEntry>, LogError> {
    let path = dir.join(name);
    match read_text(&path)? {
        Some(text) => decode_offsets(&text, &path.display().to_string()),
        None => Ok(Vec::new()),
    }
}

pub fn read_leader_epochs(partition_dir: &Path) -> Result<Vec<EpochEntry>, LogError> {
    let path = partition_dir.join(LEADER_EPOCH_FILE);
    match read_text(&path)? {
        Some(text) => decode_epochs(&text, &path.display().to_string()),
        None => Ok(Vec::new()),
    }
}

pub async fn write_offsets(dir: &Path, name: &str, entries: &[OffsetEntry]) -> Result<(), LogError> {
    write_atomic(dir, name, encode_offsets(entries).into_bytes()).await
}

pub async fn write_leader_epochs(partition_dir: &Path, entries: &[EpochEntry]) -> Result<(), LogError> {
    write_atomic(partition_dir, LEADER_EPOCH_FILE, encode_epochs(entries).into_bytes()).await
}

/// Temp file, fsync, rename, fsync of the directory.
pub async fn write_atomic(dir: &Path, name: &str, contents: Vec<u8>) -> Result<(), LogError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let file: BufferedFile = OpenOptions::new().write(true).create(true).truncate(true).buffered_open(&tmp).await?;
    write_fully(&file, contents, 0).await?;
    file.fdatasync().await?;
    file.close().await?;
    let target = dir.join(name);
    std::fs::rename(&tmp, &target).map_err(|e| LogError::io(format!("renaming {}", tmp.display()), e))?;
    let directory = Directory::open(dir).await?;
    directory.sync().await?;
    directory.close().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_checkpoints_use_kafkas_text_format() {
        let entries = vec![
            OffsetEntry { topic: "orders".into(), partition: 0, offset: 1234 },
            OffsetEntry { topic: "my-topic".into(), partition: 11, offset: 0 },
        ];
        let text = encode_offsets(&entries);
        assert_eq!(text, "0\n2\norders 0 1234\nmy-topic 11 0\n");
        assert_eq!(decode_offsets(&text, "t").unwrap(), entries);
    }

    #[test]
    fn epoch_checkpoints_round_trip_and_bad_files_are_refused() {
        let entries = vec![EpochEntry { epoch: 0, start_offset: 0 }, EpochEntry { epoch: 3, start_offset: 500 }];
        let text = encode_epochs(&entries);
        assert_eq!(text, "0\n2\n0 0\n3 500\n");
        assert_eq!(decode_epochs(&text, "t").unwrap(), entries);
        assert!(decode_epochs("1\n0\n", "t").is_err(), "unknown version");
        assert!(decode_epochs("0\n3\n0 0\n", "t").is_err(), "count mismatch");
        assert!(decode_epochs("0\n1\nzero 0\n", "t").is_err(), "bad number");
    }

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temp() {
        let dir = crate::testing::TempDir::new("checkpoint");
        let path = dir.path().to_path_buf();
        crate::runtime::test_executor().run(async move {
            let first = vec![OffsetEntry { topic: "t".into(), partition: 0, offset: 1 }];
            write_offsets(&path, RECOVERY_POINT_FILE, &first).await.unwrap();
            let second = vec![OffsetEntry { topic: "t".into(), partition: 0, offset: 2 }];
            write_offsets(&path, RECOVERY_POINT_FILE, &second).await.unwrap();
            assert_eq!(read_offsets(&path, RECOVERY_POINT_FILE).unwrap(), second);
            assert!(!path.join(format!("{RECOVERY_POINT_FILE}.tmp")).exists());
            assert!(read_offsets(&path, "absent").unwrap().is_empty());
        });
    }
}
