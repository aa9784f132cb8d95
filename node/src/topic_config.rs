//! Per-topic settings under Kafka's topic-config names (CreateTopics `configs`,
//! DescribeConfigs). Each overrides the broker default for one topic; a name Kafka does not
//! know, or one this node cannot honour, is refused with INVALID_CONFIG at creation rather
//! than accepted and ignored.
//!
//! Stored beside the partitions as `topic-configs/<topic>.properties` (`name=value` lines),
//! written by the controller before any shard learns of the topic.

use crate::log::LogConfig;
use std::collections::BTreeMap;
use std::path::Path;

pub const DIR: &str = "topic-configs";

/// What `compression.type` asks of produced batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicCompression {
    /// Keep whatever codec the producer used (Kafka's default).
    Producer,
    /// Store this codec: batches in another are recompressed. `None` = uncompressed.
    Codec(crate::log::batch::Codec),
}

/// Topic configs this node honours, with how to apply them to a partition's log settings.
const LOG_SETTINGS: &[&str] = &[
    "segment.bytes",
    "segment.ms",
    "segment.index.bytes",
    "index.interval.bytes",
    "flush.messages",
    "flush.ms",
    "retention.ms",
    "retention.bytes",
    "max.message.bytes",
];

/// Every topic config name accepted.
pub fn known(name: &str) -> bool {
    LOG_SETTINGS.contains(&name) || matches!(name, "compression.type" | "cleanup.policy")
}

fn int<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.trim().parse().map_err(|_| format!("{name}: {v:?} is not a valid number"))
}

/// Applies topic overrides to the broker's log settings.
pub fn log_config(base: &LogConfig, configs: &BTreeMap<String, String>) -> Result<LogConfig, String> {
    let mut c = base.clone();
    for (name, v) in configs {
        match name.as_str() {
            "segment.bytes" => c.segment_bytes = int(name, v)?,
            "segment.ms" => c.segment_ms = int(name, v)?,
            "segment.index.bytes" => c.segment_index_bytes = int(name, v)?,
            "index.interval.bytes" => c.index_interval_bytes = int(name, v)?,
            "flush.messages" => c.flush_messages = int(name, v)?,
            "flush.ms" => c.flush_ms = int(name, v)?,
            "retention.ms" => c.retention_ms = int(name, v)?,
            "retention.bytes" => c.retention_bytes = int(name, v)?,
            "max.message.bytes" => c.max_message_bytes = int(name, v)?,
            _ => {}
        }
    }
    c.validate()?;
    Ok(c)
}

pub fn compression(configs: &BTreeMap<String, String>) -> TopicCompression {
    use crate::log::batch::Codec;
    match configs.get("compression.type").map(String::as_str) {
        Some("uncompressed") => TopicCompression::Codec(Codec::None),
        Some("gzip") => TopicCompression::Codec(Codec::Gzip),
        Some("snappy") => TopicCompression::Codec(Codec::Snappy),
        Some("lz4") => TopicCompression::Codec(Codec::Lz4),
        Some("zstd") => TopicCompression::Codec(Codec::Zstd),
        _ => TopicCompression::Producer,
    }
}

/// Checks a topic's configs: known names, valid values, a coherent log config.
pub fn validate(base: &LogConfig, configs: &BTreeMap<String, String>) -> Result<(), String> {
    for (name, value) in configs {
        if !known(name) {
            return Err(format!("unknown (or unsupported) topic config {name:?}"));
        }
        match name.as_str() {
            "compression.type"
                if !matches!(value.as_str(), "producer" | "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd") =>
            {
                return Err(format!(
                    "compression.type {value:?} is not one of producer, uncompressed, gzip, snappy, lz4, zstd"
                ));
            }
            "cleanup.policy" if value != "delete" => {
                return Err(format!(
                    "cleanup.policy {value:?}: only \"delete\" is supported (log compaction of user topics is not implemented yet)"
                ));
            }
            _ => {}
        }
    }
    log_config(base, configs).map(|_| ())
}

/// Writes a topic's configs (atomically: temp file, fsync, rename, fsync the directory).
pub fn write(data_dir: &Path, topic: &str, configs: &BTreeMap<String, String>) -> Result<(), String> {
    let dir = data_dir.join(DIR);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let path = dir.join(format!("{topic}.properties"));
    if configs.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("removing {}: {e}", path.display())),
            _ => Ok(()),
        };
    }
    let text: String = configs.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let tmp = dir.join(format!("{topic}.properties.tmp"));
    let io = |e: std::io::Error| format!("writing {}: {e}", path.display());
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, &path).map_err(io)?;
    std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(io)
}

/// Reads a topic's configs (none if it has no file).
pub fn read(data_dir: &Path, topic: &str) -> Result<BTreeMap<String, String>, String> {
    let path = data_dir.join(DIR).join(format!("{topic}.properties"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_configs_validate_apply_and_persist() {
        let base = LogConfig::default();
        let mut c = BTreeMap::new();
        c.insert("retention.ms".to_string(), "60000".to_string());
        c.insert("compression.type".to_string(), "zstd".to_string());
        assert!(validate(&base, &c).is_ok());
        assert_eq!(log_config(&base, &c).unwrap().retention_ms, 60000);
        assert_eq!(compression(&c), TopicCompression::Codec(crate::log::batch::Codec::Zstd));
        let tmp = crate::testing::TempDir::new("topic-configs");
        write(tmp.path(), "t", &c).unwrap();
        assert_eq!(read(tmp.path(), "t").unwrap(), c);
        for (k, v) in
            [("compression.type", "brotli"), ("cleanup.policy", "compact"), ("no.such", "1"), ("segment.bytes", "x")]
        {
            let bad: BTreeMap<String, String> = [(k.to_string(), v.to_string())].into_iter().collect();
            assert!(validate(&base, &bad).is_err(), "{k}={v}");
        }
        write(tmp.path(), "t", &BTreeMap::new()).unwrap();
        assert!(read(tmp.path(), "t").unwrap().is_empty());
    }
}
