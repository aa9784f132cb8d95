//! Per-topic settings under Kafka's topic-config names (CreateTopics `configs`,
//! DescribeConfigs, AlterConfigs, IncrementalAlterConfigs). Each overrides the broker's
//! setting of the same meaning (its synonym: `retention.ms` ← `log.retention.ms`) for one
//! topic; a name Kafka does not know, or one this node cannot honour, is refused with
//! INVALID_CONFIG rather than accepted and ignored.
//!
//! Stored beside the partitions as `topic-configs/<topic>.properties` (`name=value` lines),
//! written by the controller before any shard learns of the topic or of a change to it.
//! Every setting here applies to an open partition at once when it changes (the partition's
//! log takes a new `LogConfig`; `segment.index.bytes` sizes the indexes of segments created
//! from then on), so none is read-only.

use crate::config::{self, source, BrokerConfig, ConfigEntry, ConfigType, Synonym};
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

/// A topic config: its name, the broker setting it overrides (Kafka's
/// `ServerTopicConfigSynonyms`), its type and what it does.
struct TopicSetting {
    name: &'static str,
    broker: &'static str,
    ty: ConfigType,
    doc: &'static str,
}

const TOPIC_SETTINGS: &[TopicSetting] = &[
    TopicSetting {
        name: "cleanup.policy",
        broker: "log.cleanup.policy",
        ty: ConfigType::List,
        doc: "delete (retention deletes old segments), compact (the cleaner keeps the latest record per key), or both",
    },
    TopicSetting {
        name: "compression.type",
        broker: "compression.type",
        ty: ConfigType::String,
        doc: "codec batches are stored in: producer (as sent), uncompressed, gzip, snappy, lz4, zstd",
    },
    TopicSetting {
        name: "delete.retention.ms",
        broker: "log.cleaner.delete.retention.ms",
        ty: ConfigType::Long,
        doc: "a tombstone on a compacted topic stays readable this long after its first cleaning",
    },
    TopicSetting {
        name: "flush.messages",
        broker: "log.flush.interval.messages",
        ty: ConfigType::Long,
        doc: "fdatasync once this many messages are unsynced",
    },
    TopicSetting {
        name: "flush.ms",
        broker: "log.flush.interval.ms",
        ty: ConfigType::Long,
        doc: "fdatasync when the oldest unsynced append is this old",
    },
    TopicSetting {
        name: "index.interval.bytes",
        broker: "log.index.interval.bytes",
        ty: ConfigType::Int,
        doc: "bytes between offset-index entries",
    },
    TopicSetting {
        name: "max.message.bytes",
        broker: "message.max.bytes",
        ty: ConfigType::Int,
        doc: "largest record batch accepted",
    },
    TopicSetting {
        name: "max.compaction.lag.ms",
        broker: "log.cleaner.max.compaction.lag.ms",
        ty: ConfigType::Long,
        doc: "a record older than this is compacted whatever the dirty ratio",
    },
    TopicSetting {
        name: "min.cleanable.dirty.ratio",
        broker: "log.cleaner.min.cleanable.ratio",
        ty: ConfigType::Double,
        doc: "clean once dirty bytes are this share of the cleanable log",
    },
    TopicSetting {
        name: "min.compaction.lag.ms",
        broker: "log.cleaner.min.compaction.lag.ms",
        ty: ConfigType::Long,
        doc: "a record stays uncompacted at least this long",
    },
    TopicSetting {
        name: "min.insync.replicas",
        broker: "min.insync.replicas",
        ty: ConfigType::Int,
        doc: "in a cluster: acks=all is refused (NOT_ENOUGH_REPLICAS) while fewer replicas are in sync",
    },
    TopicSetting {
        name: "retention.bytes",
        broker: "log.retention.bytes",
        ty: ConfigType::Long,
        doc: "delete the oldest segments while a partition is larger; -1 = no limit",
    },
    TopicSetting {
        name: "retention.ms",
        broker: "log.retention.ms",
        ty: ConfigType::Long,
        doc: "delete segments whose newest record is older; -1 = keep forever",
    },
    TopicSetting {
        name: "segment.bytes",
        broker: "log.segment.bytes",
        ty: ConfigType::Int,
        doc: "roll the active segment when it would grow past this",
    },
    TopicSetting {
        name: "segment.index.bytes",
        broker: "log.index.size.max.bytes",
        ty: ConfigType::Int,
        doc: "size at which a segment's index is full (segments created from then on)",
    },
    TopicSetting {
        name: "segment.ms",
        broker: "log.roll.ms",
        ty: ConfigType::Long,
        doc: "roll the active segment when its first record is this much older than an incoming one",
    },
];

fn find(name: &str) -> Option<&'static TopicSetting> {
    TOPIC_SETTINGS.iter().find(|s| s.name == name)
}

/// Every topic config name accepted.
pub fn known(name: &str) -> bool {
    find(name).is_some()
}

/// A topic config of Kafka's LIST type (IncrementalAlterConfigs APPEND / SUBTRACT).
pub fn is_list(name: &str) -> bool {
    find(name).is_some_and(|s| s.ty == ConfigType::List)
}

/// Kafka's default of a topic config, as APPEND / SUBTRACT start from when the topic does
/// not set it.
pub fn default_of(name: &str) -> Option<&'static str> {
    find(name).and_then(|s| config::default_of(s.broker))
}

/// Topic configs as a config resource: a bad name or value is INVALID_CONFIG.
pub const SCHEMA: config::Schema =
    config::Schema { known, is_list, default_of, invalid: crate::errors::INVALID_CONFIG };

fn int<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.trim().parse().map_err(|_| format!("Invalid value {v:?} for configuration {name}: not a number"))
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
            "min.insync.replicas" => c.min_insync_replicas = int(name, v)?,
            "cleanup.policy" => {
                config::apply_cleanup_policy(&mut c, name, v)?;
            }
            "delete.retention.ms" => c.delete_retention_ms = int(name, v)?,
            "min.compaction.lag.ms" => c.min_compaction_lag_ms = int(name, v)?,
            "max.compaction.lag.ms" => c.max_compaction_lag_ms = int(name, v)?,
            "min.cleanable.dirty.ratio" => {
                c.min_cleanable_dirty_ratio = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("Invalid value {v:?} for configuration {name}: not a number"))?
            }
            _ => {}
        }
    }
    c.validate()?;
    Ok(c)
}

/// The topic's `compression.type`, or the broker's when the topic has none.
pub fn compression(broker_default: &str, configs: &BTreeMap<String, String>) -> TopicCompression {
    use crate::log::batch::Codec;
    match configs.get("compression.type").map(String::as_str).unwrap_or(broker_default).trim() {
        "uncompressed" => TopicCompression::Codec(Codec::None),
        "gzip" => TopicCompression::Codec(Codec::Gzip),
        "snappy" => TopicCompression::Codec(Codec::Snappy),
        "lz4" => TopicCompression::Codec(Codec::Lz4),
        "zstd" => TopicCompression::Codec(Codec::Zstd),
        _ => TopicCompression::Producer,
    }
}

/// Checks a topic's configs: known names, valid values, a coherent log config.
pub fn validate(base: &LogConfig, configs: &BTreeMap<String, String>) -> Result<(), String> {
    for (name, value) in configs {
        if !known(name) {
            return Err(format!("Unknown (or unsupported) topic config name: {name}"));
        }
        match name.as_str() {
            "compression.type" => {
                config::compression_type(name, value)?;
            }
            "cleanup.policy" => {
                config::cleanup_policy(name, value)?;
            }
            _ => {}
        }
    }
    log_config(base, configs).map(|_| ())
}

/// How DescribeConfigs shows a setting's effective value (Kafka's rendering: plain
/// numbers, `Long.MAX_VALUE` for "never").
fn render(name: &str, log: &LogConfig, broker: &BrokerConfig, configs: &BTreeMap<String, String>) -> String {
    match name {
        "cleanup.policy" => match configs.get(name) {
            Some(v) => config::cleanup_policy(name, v).unwrap_or_else(|_| v.trim().to_string()),
            None => broker.cleanup_policy.clone(),
        },
        "delete.retention.ms" => log.delete_retention_ms.to_string(),
        "min.compaction.lag.ms" => log.min_compaction_lag_ms.to_string(),
        "max.compaction.lag.ms" => log.max_compaction_lag_ms.to_string(),
        // Java's Double.toString: 0.5, 1.0.
        "min.cleanable.dirty.ratio" => format!("{:?}", log.min_cleanable_dirty_ratio),
        "compression.type" => configs.get(name).map_or(broker.compression_type.clone(), |v| v.trim().to_string()),
        "flush.messages" => log.flush_messages.min(i64::MAX as u64).to_string(),
        "flush.ms" => log.flush_ms.to_string(),
        "index.interval.bytes" => log.index_interval_bytes.to_string(),
        "max.message.bytes" => log.max_message_bytes.to_string(),
        "min.insync.replicas" => log.min_insync_replicas.to_string(),
        "retention.bytes" => log.retention_bytes.to_string(),
        "retention.ms" => log.retention_ms.to_string(),
        "segment.bytes" => log.segment_bytes.to_string(),
        "segment.index.bytes" => log.segment_index_bytes.to_string(),
        "segment.ms" => log.segment_ms.to_string(),
        _ => String::new(),
    }
}

/// DescribeConfigs of a topic with these overrides, as Kafka reports it: every topic
/// config with its effective value; the source is DYNAMIC_TOPIC_CONFIG when the topic sets
/// it (even to the default), else that of the broker layer its synonym comes from
/// (`BrokerConfig::synonyms`), else DEFAULT_CONFIG. Sorted by name.
pub fn describe(broker: &BrokerConfig, configs: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    let log = log_config(&broker.log, configs).unwrap_or_else(|_| broker.log.clone());
    TOPIC_SETTINGS
        .iter()
        .map(|s| {
            let value = render(s.name, &log, broker, configs);
            let mut synonyms = Vec::new();
            if configs.contains_key(s.name) {
                synonyms.push(Synonym {
                    name: s.name.to_string(),
                    value: Some(value.clone()),
                    source: source::DYNAMIC_TOPIC_CONFIG,
                });
            }
            synonyms.extend(broker.synonyms(s.broker));
            ConfigEntry {
                name: s.name.to_string(),
                value: Some(value),
                source: synonyms.first().map_or(source::DEFAULT_CONFIG, |syn| syn.source),
                read_only: false,
                synonyms,
                ty: s.ty,
                doc: s.doc,
            }
        })
        .collect()
}

fn file_name(topic: &str) -> String {
    format!("{topic}.properties")
}

/// Writes a topic's configs (atomically: temp file, fsync, rename, fsync the directory).
pub fn write(data_dir: &Path, topic: &str, configs: &BTreeMap<String, String>) -> Result<(), String> {
    config::write_properties(&data_dir.join(DIR), &file_name(topic), configs)
}

/// Reads a topic's configs (none if it has no file).
pub fn read(data_dir: &Path, topic: &str) -> Result<BTreeMap<String, String>, String> {
    config::read_properties(&data_dir.join(DIR), &file_name(topic))
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
        assert_eq!(compression("producer", &c), TopicCompression::Codec(crate::log::batch::Codec::Zstd));
        let tmp = crate::testing::TempDir::new("topic-configs");
        write(tmp.path(), "t", &c).unwrap();
        assert_eq!(read(tmp.path(), "t").unwrap(), c);
        for (k, v) in
            [("compression.type", "brotli"), ("cleanup.policy", "shred"), ("no.such", "1"), ("segment.bytes", "x")]
        {
            let bad: BTreeMap<String, String> = [(k.to_string(), v.to_string())].into_iter().collect();
            assert!(validate(&base, &bad).is_err(), "{k}={v}");
        }
        let compact: BTreeMap<String, String> = [
            ("cleanup.policy", " compact, delete"),
            ("min.cleanable.dirty.ratio", "0.2"),
            ("delete.retention.ms", "5"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let log = log_config(&base, &compact).unwrap();
        assert!(log.cleanup_compact && log.cleanup_delete);
        assert_eq!((log.min_cleanable_dirty_ratio, log.delete_retention_ms), (0.2, 5));
        write(tmp.path(), "t", &BTreeMap::new()).unwrap();
        assert!(read(tmp.path(), "t").unwrap().is_empty());
    }

    #[test]
    fn describe_reports_topic_sources_as_kafka_does() {
        use crate::config::source;
        let mut broker = BrokerConfig::default();
        broker.set_all(["log.segment.bytes=2097152", "compression.type=lz4"]).unwrap();
        let mut topic = BTreeMap::new();
        // Given at creation, equal to the default: still the topic's own.
        topic.insert("retention.bytes".to_string(), "-1".to_string());
        topic.insert("max.message.bytes".to_string(), "5000".to_string());
        let all = describe(&broker, &topic);
        assert_eq!(all.len(), TOPIC_SETTINGS.len());
        let get = |n: &str| all.iter().find(|e| e.name == n).unwrap().clone();
        let rb = get("retention.bytes");
        assert_eq!((rb.value.as_deref(), rb.source), (Some("-1"), source::DYNAMIC_TOPIC_CONFIG));
        assert_eq!(rb.synonyms[0].source, source::DYNAMIC_TOPIC_CONFIG);
        assert_eq!(rb.synonyms[1].name, "log.retention.bytes");
        assert_eq!(get("max.message.bytes").value.as_deref(), Some("5000"));
        let seg = get("segment.bytes");
        assert_eq!((seg.value.as_deref(), seg.source), (Some("2097152"), source::STATIC_BROKER_CONFIG));
        let comp = get("compression.type");
        assert_eq!((comp.value.as_deref(), comp.source), (Some("lz4"), source::STATIC_BROKER_CONFIG));
        let idx = get("segment.index.bytes");
        assert_eq!((idx.value.as_deref(), idx.source), (Some("10485760"), source::DEFAULT_CONFIG));
        assert_eq!(idx.synonyms[0].name, "log.index.size.max.bytes");
        // Kafka's rule: retention.ms's synonyms start at log.retention.ms, so the default
        // log.retention.hours=168 is left out and the source is DEFAULT_CONFIG.
        let ret = get("retention.ms");
        assert_eq!(
            (ret.value.as_deref(), ret.source, ret.synonyms.len()),
            (Some("604800000"), source::DEFAULT_CONFIG, 0)
        );
        assert_eq!(get("flush.messages").value.as_deref(), Some("9223372036854775807"));
        assert_eq!(compression("lz4", &BTreeMap::new()), TopicCompression::Codec(crate::log::batch::Codec::Lz4));
    }
}
