//! Broker settings under their Kafka names, from defaults, then `--config FILE` (TOML),
//! then `--set NAME=VALUE` (last wins). An unknown name is an error, not a warning: a typo
//! in a durability setting should stop the node, not be ignored.

use crate::file_send::SendMethod;
use crate::log::LogConfig;
use std::collections::BTreeMap;

/// One setting: its Kafka name, the help line, and how to apply a value.
struct Setting {
    name: &'static str,
    help: &'static str,
    apply: fn(&mut BrokerConfig, &str) -> Result<(), String>,
}

fn int<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.trim().trim_matches('"').parse().map_err(|_| format!("{name}: {v:?} is not a valid number"))
}

fn boolean(name: &str, v: &str) -> Result<bool, String> {
    match v.trim().trim_matches('"') {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{name}: {v:?} is not true or false")),
    }
}

macro_rules! setting {
    ($name:literal, $help:literal, |$c:ident, $v:ident| $body:expr) => {
        Setting {
            name: $name,
            help: $help,
            apply: |$c: &mut BrokerConfig, $v: &str| -> Result<(), String> {
                $body;
                Ok(())
            },
        }
    };
}

const SETTINGS: &[Setting] = &[
    setting!("node.id", "this node's id in Metadata responses (default 0)", |c, v| c.node_id = int("node.id", v)?),
    setting!("num.partitions", "partitions of an auto-created topic (default 1)", |c, v| {
        c.num_partitions = int("num.partitions", v)?
    }),
    setting!("auto.create.topics.enable", "create a topic on first Metadata/Produce for it (default true)", |c, v| {
        c.auto_create_topics = boolean("auto.create.topics.enable", v)?
    }),
    setting!("default.replication.factor", "accepted for compatibility; a single node stores one replica", |c, v| {
        c.default_replication_factor = int("default.replication.factor", v)?
    }),
    setting!("socket.request.max.bytes", "largest request frame accepted (default 104857600)", |c, v| {
        c.socket_request_max_bytes = int("socket.request.max.bytes", v)?
    }),
    setting!(
        "queued.max.request.bytes",
        "request bytes a shard holds at once before it stops reading sockets (default 512 MiB)",
        |c, v| { c.queued_max_request_bytes = int("queued.max.request.bytes", v)? }
    ),
    setting!("message.max.bytes", "largest record batch accepted (default 1048588)", |c, v| {
        c.log.max_message_bytes = int("message.max.bytes", v)?
    }),
    setting!("log.segment.bytes", "segment size that triggers a roll (default 1 GiB)", |c, v| {
        c.log.segment_bytes = int("log.segment.bytes", v)?
    }),
    setting!("log.roll.ms", "segment age that triggers a roll (default 7 days)", |c, v| {
        c.log.segment_ms = int("log.roll.ms", v)?
    }),
    setting!("log.roll.hours", "segment age that triggers a roll, in hours", |c, v| {
        c.log.segment_ms = int::<i64>("log.roll.hours", v)? * 3_600_000
    }),
    setting!("log.index.size.max.bytes", "size at which a segment's index is full (default 10 MiB)", |c, v| {
        c.log.segment_index_bytes = int("log.index.size.max.bytes", v)?
    }),
    setting!("log.index.interval.bytes", "bytes between offset-index entries (default 4096)", |c, v| {
        c.log.index_interval_bytes = int("log.index.interval.bytes", v)?
    }),
    setting!("log.flush.interval.messages", "fdatasync after this many unsynced messages (default never)", |c, v| {
        c.log.flush_messages = int("log.flush.interval.messages", v)?
    }),
    setting!("log.flush.interval.ms", "fdatasync when unsynced data is this old (default never)", |c, v| {
        c.log.flush_ms = int("log.flush.interval.ms", v)?
    }),
    setting!("log.retention.ms", "delete segments older than this; -1 keeps forever (default 7 days)", |c, v| {
        c.log.retention_ms = int("log.retention.ms", v)?
    }),
    setting!("log.retention.hours", "retention in hours", |c, v| {
        c.log.retention_ms = int::<i64>("log.retention.hours", v)? * 3_600_000
    }),
    setting!("log.retention.bytes", "delete oldest segments past this size per partition; -1 = no limit", |c, v| {
        c.log.retention_bytes = int("log.retention.bytes", v)?
    }),
    setting!("log.retention.check.interval.ms", "how often retention runs (default 300000)", |c, v| {
        c.retention_check_interval_ms = int("log.retention.check.interval.ms", v)?
    }),
    setting!(
        "group.initial.rebalance.delay.ms",
        "how long a new group waits for more members before its first rebalance (default 3000)",
        |c, v| { c.group_initial_rebalance_delay_ms = int("group.initial.rebalance.delay.ms", v)? }
    ),
    setting!(
        "group.min.session.timeout.ms",
        "smallest session.timeout.ms a member may ask for (default 6000)",
        |c, v| { c.group_min_session_timeout_ms = int("group.min.session.timeout.ms", v)? }
    ),
    setting!(
        "group.max.session.timeout.ms",
        "largest session.timeout.ms a member may ask for (default 1800000)",
        |c, v| { c.group_max_session_timeout_ms = int("group.max.session.timeout.ms", v)? }
    ),
    setting!("group.max.size", "most members in one group (default unlimited)", |c, v| {
        c.group_max_size = int("group.max.size", v)?
    }),
    setting!(
        "offsets.retention.minutes",
        "an empty group's committed offsets are dropped this long after it emptied (default 10080)",
        |c, v| { c.offsets_retention_minutes = int("offsets.retention.minutes", v)? }
    ),
    setting!(
        "offsets.retention.check.interval.ms",
        "how often expired offsets are dropped (default 600000)",
        |c, v| { c.offsets_retention_check_interval_ms = int("offsets.retention.check.interval.ms", v)? }
    ),
    setting!(
        "offsets.topic.num.partitions",
        "partitions of __consumer_offsets when it is created (default 50; fixed afterwards)",
        |c, v| { c.offsets_topic_num_partitions = int("offsets.topic.num.partitions", v)? }
    ),
    setting!(
        "offsets.topic.segment.bytes",
        "segment size of __consumer_offsets; it is compacted once it grows past this (default 104857600)",
        |c, v| { c.offsets_topic_segment_bytes = int("offsets.topic.segment.bytes", v)? }
    ),
    setting!("offset.metadata.max.bytes", "largest metadata string of a committed offset (default 4096)", |c, v| {
        c.offset_metadata_max_bytes = int("offset.metadata.max.bytes", v)?
    }),
    setting!("producer.id.expiration.ms", "forget an idempotent producer idle this long (default 86400000)", |c, v| {
        c.log.producer_id_expiration_ms = int("producer.id.expiration.ms", v)?
    }),
    setting!(
        "transaction.state.log.num.partitions",
        "partitions of __transaction_state when it is created (default 50; fixed afterwards)",
        |c, v| { c.transaction_state_num_partitions = int("transaction.state.log.num.partitions", v)? }
    ),
    setting!(
        "transaction.state.log.segment.bytes",
        "segment size of __transaction_state; it is compacted once it grows past this (default 104857600)",
        |c, v| { c.transaction_state_segment_bytes = int("transaction.state.log.segment.bytes", v)? }
    ),
    setting!(
        "transaction.max.timeout.ms",
        "largest transaction.timeout.ms a producer may ask for (default 900000)",
        |c, v| { c.transaction_max_timeout_ms = int("transaction.max.timeout.ms", v)? }
    ),
    setting!(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "how often transactions past their timeout are aborted (default 10000)",
        |c, v| {
            c.transaction_abort_check_interval_ms =
                int("transaction.abort.timed.out.transaction.cleanup.interval.ms", v)?
        }
    ),
    setting!(
        "core_balancing_continuous",
        "Redpanda's name: move partitions between cores by measured load, periodically (default false)",
        |c, v| { c.core_balancing_continuous = boolean("core_balancing_continuous", v)? }
    ),
    setting!(
        "core_balancing_debounce_timeout",
        "Redpanda's name: ms between continuous balancing checks (default 10000)",
        |c, v| { c.core_balancing_debounce_timeout_ms = int("core_balancing_debounce_timeout", v)? }
    ),
    setting!(
        "record.validation.enable",
        "Sluice's own: walk (and decompress) every produced record as Kafka does (default true)",
        |c, v| { c.log.validate_records = boolean("record.validation.enable", v)? }
    ),
    setting!(
        "log.write.method",
        "Sluice's own: pwritev (gathered from the requests, on the shard) or io_uring (copied, then IORING_OP_WRITE) (default pwritev)",
        |c, v| { c.log.write_method = v.trim().trim_matches('"').parse::<crate::log::config::WriteMethod>()? }
    ),
    setting!(
        "log.write.behind.bytes",
        "Sluice's own: start writeback of each partition's every this many written bytes, 0 = leave it to the kernel (default 0)",
        |c, v| { c.log.write_behind_bytes = int("log.write.behind.bytes", v)? }
    ),
    setting!(
        "fetch.send.method",
        "Sluice's own: how fetched records reach the socket: sendfile, splice or copy (default sendfile)",
        |c, v| { c.fetch_send_method = v.trim().trim_matches('"').parse::<SendMethod>()? }
    ),
    setting!(
        "fetch.zero.copy.enable",
        "older name: true = fetch.send.method=sendfile, false = copy",
        |c, v| {
            c.fetch_send_method =
                if boolean("fetch.zero.copy.enable", v)? { SendMethod::Sendfile } else { SendMethod::Copy }
        }
    ),
];

/// Every broker setting, typed. `log` holds the defaults of per-topic log settings.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub num_partitions: i32,
    pub auto_create_topics: bool,
    pub default_replication_factor: i16,
    pub socket_request_max_bytes: usize,
    /// Bytes of requests a shard holds (read, not yet answered); past it, connections wait
    /// before reading the next frame. Kafka's name; its default is unlimited, ours is not.
    pub queued_max_request_bytes: usize,
    pub retention_check_interval_ms: u64,
    pub fetch_send_method: SendMethod,
    pub group_initial_rebalance_delay_ms: u64,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub group_max_size: usize,
    pub offsets_retention_minutes: i64,
    pub offsets_retention_check_interval_ms: u64,
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_segment_bytes: u64,
    pub offset_metadata_max_bytes: usize,
    pub transaction_state_num_partitions: i32,
    pub transaction_state_segment_bytes: u64,
    pub transaction_max_timeout_ms: i64,
    pub transaction_abort_check_interval_ms: u64,
    pub core_balancing_continuous: bool,
    pub core_balancing_debounce_timeout_ms: u64,
    pub log: LogConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 0,
            num_partitions: 1,
            auto_create_topics: true,
            default_replication_factor: 1,
            socket_request_max_bytes: 104_857_600,
            queued_max_request_bytes: 512 << 20,
            retention_check_interval_ms: 300_000,
            // Measured (bench/RESULTS.md 2026-12-04, kernel-notes/fetch-path.md): sendfile
            // costs the node the least CPU per GiB of the three on page-cache data.
            fetch_send_method: SendMethod::Sendfile,
            group_initial_rebalance_delay_ms: 3000,
            group_min_session_timeout_ms: 6000,
            group_max_session_timeout_ms: 1_800_000,
            group_max_size: usize::MAX,
            offsets_retention_minutes: 10080,
            offsets_retention_check_interval_ms: 600_000,
            offsets_topic_num_partitions: 50,
            offsets_topic_segment_bytes: 104_857_600,
            offset_metadata_max_bytes: 4096,
            transaction_state_num_partitions: 50,
            transaction_state_segment_bytes: 104_857_600,
            transaction_max_timeout_ms: 900_000,
            transaction_abort_check_interval_ms: 10_000,
            core_balancing_continuous: false,
            core_balancing_debounce_timeout_ms: 10_000,
            log: LogConfig::default(),
        }
    }
}

impl BrokerConfig {
    /// Applies one `NAME=VALUE`.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let setting = SETTINGS.iter().find(|s| s.name == name).ok_or_else(|| {
            format!(
                "unknown setting {name:?}; known: {}",
                SETTINGS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
            )
        })?;
        (setting.apply)(self, value)
    }

    /// Applies `--set NAME=VALUE` arguments.
    pub fn set_all<'a>(&mut self, pairs: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
        for pair in pairs {
            let (name, value) = pair.split_once('=').ok_or_else(|| format!("--set {pair:?}: expected NAME=VALUE"))?;
            self.set(name.trim(), value.trim())?;
        }
        self.validate()
    }

    /// Applies a TOML file of settings: `"log.segment.bytes" = 1048576`, the dotted bare form
    /// (`log.segment.bytes = 1048576`) and `[log]` tables all name the same setting.
    pub fn apply_toml(&mut self, text: &str) -> Result<(), String> {
        for (name, value) in parse_flat_toml(text)? {
            self.set(&name, &value)?;
        }
        self.validate()
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.num_partitions < 1 {
            return Err("num.partitions must be at least 1".into());
        }
        if self.socket_request_max_bytes < 64 {
            return Err("socket.request.max.bytes must be at least 64".into());
        }
        if self.transaction_state_num_partitions < 1 {
            return Err("transaction.state.log.num.partitions must be at least 1".into());
        }
        if self.offsets_topic_num_partitions < 1 {
            return Err("offsets.topic.num.partitions must be at least 1".into());
        }
        if self.offsets_topic_segment_bytes < 4096 {
            return Err("offsets.topic.segment.bytes must be at least 4096".into());
        }
        if self.group_min_session_timeout_ms > self.group_max_session_timeout_ms {
            return Err("group.min.session.timeout.ms must not exceed group.max.session.timeout.ms".into());
        }
        if self.queued_max_request_bytes < self.socket_request_max_bytes {
            return Err("queued.max.request.bytes must be at least socket.request.max.bytes".into());
        }
        self.log.validate()
    }

    /// The `--help` text for settings.
    pub fn help() -> String {
        SETTINGS.iter().map(|s| format!("  {:<34} {}\n", s.name, s.help)).collect()
    }
}

/// A TOML subset sufficient for a flat settings file: `[table]` headers, `key = value`
/// with bare, dotted or quoted keys, and integer, boolean or string values. Returns
/// dotted names. Anything else is an error naming the line.
fn parse_flat_toml(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut table = String::new();
    for (n, raw) in text.lines().enumerate() {
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = unquote(name.trim()).to_string();
            continue;
        }
        let (key, value) =
            line.split_once('=').ok_or_else(|| format!("config line {}: expected key = value", n + 1))?;
        let key = unquote(key.trim());
        let name = if table.is_empty() { key.to_string() } else { format!("{table}.{key}") };
        let value = value.trim();
        if value.is_empty() {
            return Err(format!("config line {}: missing value for {name}", n + 1));
        }
        out.insert(name, unquote(value).replace('_', "").to_string());
    }
    Ok(out)
}

fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => {}
        }
    }
    line
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_names_set_typed_fields_and_typos_are_errors() {
        let mut c = BrokerConfig::default();
        c.set_all(["num.partitions=6", "log.segment.bytes=1048576", "auto.create.topics.enable=false"]).unwrap();
        assert_eq!(c.num_partitions, 6);
        assert_eq!(c.log.segment_bytes, 1 << 20);
        assert!(!c.auto_create_topics);
        let err = c.set("num.partition", "3").unwrap_err();
        assert!(err.contains("unknown setting"), "{err}");
        assert!(c.set("num.partitions", "many").is_err());
        assert!(BrokerConfig::default().set_all(["num.partitions=0"]).is_err());
    }

    #[test]
    fn toml_files_accept_quoted_dotted_and_table_forms() {
        let mut c = BrokerConfig::default();
        let text = r#"
            # comment
            "num.partitions" = 3
            log.retention.ms = 60_000   # dotted bare key
            [log]
            "segment.bytes" = 2097152
            [auto.create.topics]
            enable = false
        "#;
        c.apply_toml(text).unwrap();
        assert_eq!(c.num_partitions, 3);
        assert_eq!(c.log.retention_ms, 60_000);
        assert_eq!(c.log.segment_bytes, 2 << 20);
        assert!(!c.auto_create_topics);
        assert!(BrokerConfig::default().apply_toml("nonsense").is_err());
    }
}
