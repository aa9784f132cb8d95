//! Broker settings under their Kafka names, in layers as Kafka keeps them: defaults, then
//! the static settings (`--config FILE` (TOML), then `--set NAME=VALUE`, last wins), then
//! the dynamic ones changed at run time through AlterConfigs / IncrementalAlterConfigs: the
//! cluster-wide default (resource name "") and this broker's own (resource name = node id),
//! which win in that order. An unknown name is an error, not a warning: a typo in a
//! durability setting should stop the node, not be ignored.
//!
//! Each setting knows its Kafka type, Kafka's default (as DescribeConfigs reports it; `None`
//! where Kafka's is null, e.g. `log.retention.ms`, whose effective value then comes from
//! `log.retention.hours`) and whether Kafka lets it change dynamically; only those that the
//! node can apply live are dynamic here (see [`BrokerConfig::with_dynamic`]). Synonyms
//! (`log.retention.ms` > `log.retention.minutes` > `log.retention.hours`, `log.roll.ms` >
//! `log.roll.hours`) resolve as in Kafka: the most precise name set in any layer wins.

use crate::file_send::SendMethod;
use crate::log::LogConfig;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

/// A config's type as DescribeConfigs v3+ reports it (Kafka's `ConfigType` ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
}

/// Where a config value comes from: Kafka's `ConfigSource` ids, as DescribeConfigs v1+
/// reports them.
pub mod source {
    /// A topic's own setting (Kafka's DYNAMIC_TOPIC_CONFIG).
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    /// Set at run time for this broker (resource name = node id).
    pub const DYNAMIC_BROKER_CONFIG: i8 = 2;
    /// Set at run time as the cluster-wide default (resource name "").
    pub const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
    /// From `--config` / `--set`.
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    /// Kafka's (and the node's) default.
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// One synonym of a described config: a name, its value in one layer, that layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synonym {
    pub name: String,
    pub value: Option<String>,
    pub source: i8,
}

/// One config as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: i8,
    pub read_only: bool,
    /// Every layer that sets it or a synonym, the winning one first (Kafka's order).
    pub synonyms: Vec<Synonym>,
    pub ty: ConfigType,
    pub doc: &'static str,
}

/// One setting: its Kafka name, type, default, whether it may change at run time, the
/// help line, and how to apply a value.
struct Setting {
    name: &'static str,
    ty: ConfigType,
    default: Option<&'static str>,
    dynamic: bool,
    help: &'static str,
    apply: fn(&mut BrokerConfig, &str) -> Result<(), String>,
}

/// Broker settings that name the same thing, lowest precedence first (Kafka's
/// `brokerConfigSynonyms` lists them the other way round).
const SYNONYMS: &[&[&str]] =
    &[&["log.roll.hours", "log.roll.ms"], &["log.retention.hours", "log.retention.minutes", "log.retention.ms"]];

fn synonym_group(name: &str) -> Option<&'static [&'static str]> {
    SYNONYMS.iter().copied().find(|g| g.contains(&name))
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

/// A connection count (`max.connections`, `max.connections.per.ip`): Kafka's INT, at least 0.
fn connection_count(name: &str, v: &str) -> Result<usize, String> {
    let n: i32 = int(name, v)?;
    usize::try_from(n).map_err(|_| format!("{name}: {n} is negative"))
}

/// Parses `advertised.listeners`, Kafka's `NAME://HOST:PORT[,NAME://HOST:PORT...]`: the node
/// has one plaintext listener, so one entry (named PLAINTEXT, or unnamed); `HOST:PORT` alone is
/// taken too. IPv6 hosts in brackets. Empty: not set. A host of 0.0.0.0 (or ::) is refused, as
/// Kafka refuses it: a client cannot connect to "any address".
pub fn advertised_listener(name: &str, v: &str) -> Result<Option<(String, i32)>, String> {
    let entries: Vec<&str> = v.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
    let entry = match entries.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        _ => return Err(format!("{name}: this node has one listener; give one entry, got {v:?}")),
    };
    let address = match entry.split_once("://") {
        Some((listener, rest)) if listener.eq_ignore_ascii_case("PLAINTEXT") => rest,
        Some((listener, _)) => {
            return Err(format!("{name}: listener {listener:?} is not served (only PLAINTEXT), in {entry:?}"))
        }
        None => entry,
    };
    let bad = || format!("{name}: {entry:?} is not HOST:PORT (IPv6 hosts in brackets)");
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || host.contains(['/', ' ']) || port == 0 {
        return Err(bad());
    }
    if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()) {
        return Err(format!("{name}: {host} is not an address a client can connect to"));
    }
    Ok(Some((host.to_string(), port as i32)))
}

/// Parses `max.connections.per.ip.overrides` (Kafka's format, `host:count,host:count`).
/// Hosts must be IP addresses (`[::1]:5` or `::1:5` for IPv6): Kafka resolves host names
/// when the setting is applied, which here would block a shard on DNS (a dynamic change is
/// applied on every shard's thread), so a name is refused with a message instead.
pub fn per_ip_overrides(name: &str, v: &str) -> Result<BTreeMap<IpAddr, usize>, String> {
    let mut out = BTreeMap::new();
    for item in v.trim().trim_matches('"').split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (host, count) = item.rsplit_once(':').ok_or_else(|| format!("{name}: {item:?} is not HOST:COUNT"))?;
        let host = host.trim();
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let ip: IpAddr =
            host.parse().map_err(|_| format!("{name}: {host:?} is not an IP address (host names are not resolved)"))?;
        out.insert(ip.to_canonical(), connection_count(name, count)?);
    }
    Ok(out)
}

/// The codecs `compression.type` takes (topic and broker alike).
pub const COMPRESSION_TYPES: &[&str] = &["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"];

/// Checks a `compression.type` value; returns it normalised.
pub fn compression_type(name: &str, v: &str) -> Result<String, String> {
    let v = v.trim().trim_matches('"');
    if COMPRESSION_TYPES.contains(&v) {
        Ok(v.to_string())
    } else {
        Err(format!("{name}: {v:?} is not one of {}", COMPRESSION_TYPES.join(", ")))
    }
}

/// Checks a `cleanup.policy` list (Kafka's LIST type: comma-separated `delete` and/or
/// `compact`). Returns it normalised (trimmed, duplicates dropped, in the order given).
pub fn cleanup_policy(name: &str, v: &str) -> Result<String, String> {
    let mut items: Vec<&str> = Vec::new();
    for item in v.trim().trim_matches('"').split(',').map(str::trim) {
        if !matches!(item, "delete" | "compact") {
            return Err(format!("{name}: {v:?}: each policy must be delete or compact, got {item:?}"));
        }
        if !items.contains(&item) {
            items.push(item);
        }
    }
    Ok(items.join(","))
}

/// Sets the log's two policy switches from a `cleanup.policy` value.
pub fn apply_cleanup_policy(log: &mut LogConfig, name: &str, v: &str) -> Result<String, String> {
    let policy = cleanup_policy(name, v)?;
    log.cleanup_delete = policy.split(',').any(|p| p == "delete");
    log.cleanup_compact = policy.split(',').any(|p| p == "compact");
    Ok(policy)
}

fn ratio(name: &str, v: &str) -> Result<f64, String> {
    let r: f64 = v.trim().trim_matches('"').parse().map_err(|_| format!("{name}: {v:?} is not a number"))?;
    if (0.0..=1.0).contains(&r) {
        Ok(r)
    } else {
        Err(format!("{name}: {v:?} must be between 0 and 1"))
    }
}

/// `group.consumer.assignors`: Kafka's class names or the assignors' own names, mapped to
/// the names (`uniform`, `range`); anything else (a custom class) is refused.
pub fn consumer_assignors(name: &str, v: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for item in v.trim().trim_matches('"').split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let short = match item {
            "uniform" | "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => "uniform",
            "range" | "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => "range",
            other => return Err(format!("{name}: unknown assignor {other:?}; known: uniform, range")),
        };
        if !out.iter().any(|o| o == short) {
            out.push(short.to_string());
        }
    }
    if out.is_empty() {
        return Err(format!("{name}: at least one assignor is needed"));
    }
    Ok(out)
}

macro_rules! setting {
    ($name:literal, $ty:ident, $default:expr, $dynamic:literal, $help:literal, |$c:ident, $v:ident| $body:expr) => {
        Setting {
            name: $name,
            ty: ConfigType::$ty,
            default: $default,
            dynamic: $dynamic,
            help: $help,
            apply: |$c: &mut BrokerConfig, $v: &str| -> Result<(), String> {
                $body;
                Ok(())
            },
        }
    };
}

const SETTINGS: &[Setting] = &[
    setting!("node.id", Int, Some("0"), false, "this node's id in Metadata responses (default 0)", |c, v| c.node_id = int("node.id", v)?),
    setting!(
        "advertised.listeners", List, None, false,
        "the address clients are told to connect to (Metadata, FindCoordinator, DescribeCluster): `PLAINTEXT://HOST:PORT` or `HOST:PORT`; default: the bound --listen address",
        |c, v| { c.advertised_listener = advertised_listener("advertised.listeners", v)? }
    ),
    setting!(
        "controller.quorum.voters", List, None, false,
        "the cluster's voters, ID@HOST:PORT,... (Kafka's form): every node is one, its own entry is where it listens for the quorum; unset: the node runs alone",
        |c, v| { c.quorum_voters = if v.trim().is_empty() { None } else { Some(crate::quorum::parse_voters(v)?) } }
    ),
    setting!(
        "broker.heartbeat.interval.ms", Int, Some("2000"), false,
        "in a cluster: how often a broker heartbeats to the quorum's leader (default 2000)",
        |c, v| { c.broker_heartbeat_interval_ms = int::<u64>("broker.heartbeat.interval.ms", v)?.max(1) }
    ),
    setting!(
        "broker.session.timeout.ms", Int, Some("9000"), false,
        "in a cluster: a broker not heard from for this long is fenced (not listed to clients) until it is heard from again (default 9000)",
        |c, v| { c.broker_session_timeout_ms = int::<u64>("broker.session.timeout.ms", v)?.max(1) }
    ),
    setting!("num.partitions", Int, Some("1"), false, "partitions of an auto-created topic (default 1)", |c, v| {
        c.num_partitions = int("num.partitions", v)?
    }),
    setting!("auto.create.topics.enable", Boolean, Some("true"), false, "create a topic on first Metadata/Produce for it (default true)", |c, v| {
        c.auto_create_topics = boolean("auto.create.topics.enable", v)?
    }),
    setting!("default.replication.factor", Int, Some("1"), false, "accepted for compatibility; a single node stores one replica", |c, v| {
        c.default_replication_factor = int("default.replication.factor", v)?
    }),
    setting!("socket.request.max.bytes", Int, Some("104857600"), false, "largest request frame accepted (default 104857600)", |c, v| {
        c.socket_request_max_bytes = int("socket.request.max.bytes", v)?
    }),
    setting!(
        "queued.max.request.bytes", Long, Some("536870912"), false,
        "request bytes a shard holds at once before it stops reading sockets (default 512 MiB)",
        |c, v| { c.queued_max_request_bytes = int("queued.max.request.bytes", v)? }
    ),
    setting!("message.max.bytes", Int, Some("1048588"), true, "largest record batch accepted (default 1048588)", |c, v| {
        c.log.max_message_bytes = int("message.max.bytes", v)?
    }),
    setting!(
        "auto.leader.rebalance.enable", Boolean, Some("true"), false,
        "in a cluster: leadership goes back to each partition's preferred replica (default true)",
        |c, v| { c.auto_leader_rebalance_enable = boolean("auto.leader.rebalance.enable", v)? }
    ),
    setting!(
        "leader.imbalance.check.interval.seconds", Long, Some("300"), false,
        "in a cluster: how often the controller looks for leaders to move back (default 300)",
        |c, v| { c.leader_imbalance_check_interval_seconds = int("leader.imbalance.check.interval.seconds", v)? }
    ),
    setting!(
        "leader.imbalance.per.broker.percentage", Int, Some("10"), false,
        "in a cluster: a broker leading less than this share of its preferred partitions gets them back (default 10)",
        |c, v| { c.leader_imbalance_per_broker_percentage = int("leader.imbalance.per.broker.percentage", v)? }
    ),
    setting!(
        "metadata.log.snapshot.interval.records", Long, Some("10000"), false,
        "in a cluster: the metadata quorum snapshots its state and trims its log every this many records (default 10000)",
        |c, v| { c.metadata_log_snapshot_interval_records = int("metadata.log.snapshot.interval.records", v)? }
    ),
    setting!(
        "replica.lag.time.max.ms", Long, Some("30000"), false,
        "in a cluster: a follower not caught up for this long leaves the in-sync replicas (default 30000)",
        |c, v| { c.replica_lag_time_max_ms = int("replica.lag.time.max.ms", v)? }
    ),
    setting!("min.insync.replicas", Int, Some("1"), true, "in a cluster: in-sync replicas acks=all needs (default 1)", |c, v| {
        c.log.min_insync_replicas = int("min.insync.replicas", v)?
    }),
    setting!("log.segment.bytes", Int, Some("1073741824"), true, "segment size that triggers a roll (default 1 GiB)", |c, v| {
        c.log.segment_bytes = int("log.segment.bytes", v)?
    }),
    setting!("log.roll.hours", Int, Some("168"), true, "segment age that triggers a roll, in hours", |c, v| {
        c.log.segment_ms = int::<i64>("log.roll.hours", v)? * 3_600_000
    }),
    setting!("log.roll.ms", Long, None, true, "segment age that triggers a roll (default 7 days)", |c, v| {
        c.log.segment_ms = int("log.roll.ms", v)?
    }),
    setting!("log.index.size.max.bytes", Int, Some("10485760"), true, "size at which a segment's index is full (default 10 MiB)", |c, v| {
        c.log.segment_index_bytes = int("log.index.size.max.bytes", v)?
    }),
    setting!("log.index.interval.bytes", Int, Some("4096"), true, "bytes between offset-index entries (default 4096)", |c, v| {
        c.log.index_interval_bytes = int("log.index.interval.bytes", v)?
    }),
    setting!("log.flush.interval.messages", Long, Some("9223372036854775807"), true, "fdatasync after this many unsynced messages (default never)", |c, v| {
        c.log.flush_messages = int("log.flush.interval.messages", v)?
    }),
    setting!("log.flush.interval.ms", Long, None, true, "fdatasync when unsynced data is this old (default never)", |c, v| {
        c.log.flush_ms = int("log.flush.interval.ms", v)?
    }),
    setting!("log.retention.hours", Int, Some("168"), true, "retention in hours", |c, v| {
        c.log.retention_ms = int::<i64>("log.retention.hours", v)? * 3_600_000
    }),
    setting!("log.retention.minutes", Int, None, true, "retention in minutes", |c, v| {
        c.log.retention_ms = int::<i64>("log.retention.minutes", v)? * 60_000
    }),
    setting!("log.retention.ms", Long, None, true, "delete segments older than this; -1 keeps forever (default 7 days)", |c, v| {
        c.log.retention_ms = int("log.retention.ms", v)?
    }),
    setting!("log.retention.bytes", Long, Some("-1"), true, "delete oldest segments past this size per partition; -1 = no limit", |c, v| {
        c.log.retention_bytes = int("log.retention.bytes", v)?
    }),
    setting!(
        "log.cleanup.policy",
        List,
        Some("delete"),
        true,
        "cleanup policy of topics without their own cleanup.policy: delete, compact or both (default delete)",
        |c, v| { c.cleanup_policy = apply_cleanup_policy(&mut c.log, "log.cleanup.policy", v)? }
    ),
    setting!("log.cleaner.enable", Boolean, Some("true"), false, "run the log cleaner for compacted topics (default true)", |c, v| {
        c.log_cleaner_enable = boolean("log.cleaner.enable", v)?
    }),
    setting!("log.cleaner.backoff.ms", Long, Some("15000"), false, "how long a shard's cleaner sleeps when no log needs cleaning (default 15000)", |c, v| {
        c.log_cleaner_backoff_ms = int("log.cleaner.backoff.ms", v)?
    }),
    setting!(
        "log.cleaner.dedupe.buffer.size", Long, Some("134217728"), false,
        "memory for the cleaners' key maps, shared by the shards (default 134217728)",
        |c, v| { c.log_cleaner_dedupe_buffer_size = int("log.cleaner.dedupe.buffer.size", v)? }
    ),
    setting!(
        "log.cleaner.min.cleanable.ratio", Double, Some("0.5"), true,
        "clean a compacted log once this share of it is dirty (default 0.5)",
        |c, v| { c.log.min_cleanable_dirty_ratio = ratio("log.cleaner.min.cleanable.ratio", v)? }
    ),
    setting!(
        "log.cleaner.min.compaction.lag.ms", Long, Some("0"), true,
        "a record stays uncompacted at least this long (default 0)",
        |c, v| { c.log.min_compaction_lag_ms = int("log.cleaner.min.compaction.lag.ms", v)? }
    ),
    setting!(
        "log.cleaner.max.compaction.lag.ms", Long, Some("9223372036854775807"), true,
        "a record older than this is compacted whatever the dirty ratio (default never)",
        |c, v| { c.log.max_compaction_lag_ms = int("log.cleaner.max.compaction.lag.ms", v)? }
    ),
    setting!(
        "log.cleaner.delete.retention.ms", Long, Some("86400000"), true,
        "tombstones stay readable this long after their first cleaning (default 86400000)",
        |c, v| { c.log.delete_retention_ms = int("log.cleaner.delete.retention.ms", v)? }
    ),
    setting!(
        "compression.type",
        String,
        Some("producer"),
        true,
        "codec topics without their own compression.type store batches in: producer (as sent), uncompressed, gzip, snappy, lz4, zstd",
        |c, v| { c.compression_type = compression_type("compression.type", v)? }
    ),
    setting!("log.retention.check.interval.ms", Long, Some("300000"), false, "how often retention runs (default 300000)", |c, v| {
        c.retention_check_interval_ms = int("log.retention.check.interval.ms", v)?
    }),
    setting!(
        "group.initial.rebalance.delay.ms", Int, Some("3000"), false,
        "how long a new group waits for more members before its first rebalance (default 3000)",
        |c, v| { c.group_initial_rebalance_delay_ms = int("group.initial.rebalance.delay.ms", v)? }
    ),
    setting!(
        "group.min.session.timeout.ms", Int, Some("6000"), false,
        "smallest session.timeout.ms a member may ask for (default 6000)",
        |c, v| { c.group_min_session_timeout_ms = int("group.min.session.timeout.ms", v)? }
    ),
    setting!(
        "group.max.session.timeout.ms", Int, Some("1800000"), false,
        "largest session.timeout.ms a member may ask for (default 1800000)",
        |c, v| { c.group_max_session_timeout_ms = int("group.max.session.timeout.ms", v)? }
    ),
    setting!("group.max.size", Int, Some("2147483647"), false, "most members in one group (default unlimited)", |c, v| {
        c.group_max_size = int("group.max.size", v)?
    }),
    setting!(
        "group.consumer.session.timeout.ms", Int, Some("45000"), false,
        "consumer-protocol (KIP-848) groups: a member silent this long is removed (default 45000)",
        |c, v| { c.group_consumer_session_timeout_ms = int("group.consumer.session.timeout.ms", v)? }
    ),
    setting!(
        "group.consumer.min.session.timeout.ms", Int, Some("45000"), false,
        "smallest group.consumer.session.timeout.ms allowed (default 45000)",
        |c, v| { c.group_consumer_min_session_timeout_ms = int("group.consumer.min.session.timeout.ms", v)? }
    ),
    setting!(
        "group.consumer.max.session.timeout.ms", Int, Some("60000"), false,
        "largest group.consumer.session.timeout.ms allowed (default 60000)",
        |c, v| { c.group_consumer_max_session_timeout_ms = int("group.consumer.max.session.timeout.ms", v)? }
    ),
    setting!(
        "group.consumer.heartbeat.interval.ms", Int, Some("5000"), false,
        "consumer-protocol groups: how often members are told to heartbeat (default 5000)",
        |c, v| { c.group_consumer_heartbeat_interval_ms = int("group.consumer.heartbeat.interval.ms", v)? }
    ),
    setting!(
        "group.consumer.min.heartbeat.interval.ms", Int, Some("5000"), false,
        "smallest group.consumer.heartbeat.interval.ms allowed (default 5000)",
        |c, v| { c.group_consumer_min_heartbeat_interval_ms = int("group.consumer.min.heartbeat.interval.ms", v)? }
    ),
    setting!(
        "group.consumer.max.heartbeat.interval.ms", Int, Some("15000"), false,
        "largest group.consumer.heartbeat.interval.ms allowed (default 15000)",
        |c, v| { c.group_consumer_max_heartbeat_interval_ms = int("group.consumer.max.heartbeat.interval.ms", v)? }
    ),
    setting!(
        "group.consumer.max.size", Int, Some("2147483647"), false,
        "most members in one consumer-protocol group (default unlimited)",
        |c, v| { c.group_consumer_max_size = int("group.consumer.max.size", v)? }
    ),
    setting!(
        "group.consumer.assignors", List,
        Some("org.apache.kafka.coordinator.group.assignor.UniformAssignor,org.apache.kafka.coordinator.group.assignor.RangeAssignor"),
        false,
        "server-side assignors of consumer-protocol groups, the first the default: uniform, range (Kafka's class names or short names)",
        |c, v| { c.group_consumer_assignors = consumer_assignors("group.consumer.assignors", v)? }
    ),
    setting!(
        "offsets.retention.minutes", Int, Some("10080"), false,
        "an empty group's committed offsets are dropped this long after it emptied (default 10080)",
        |c, v| { c.offsets_retention_minutes = int("offsets.retention.minutes", v)? }
    ),
    setting!(
        "offsets.retention.check.interval.ms", Long, Some("600000"), false,
        "how often expired offsets are dropped (default 600000)",
        |c, v| { c.offsets_retention_check_interval_ms = int("offsets.retention.check.interval.ms", v)? }
    ),
    setting!(
        "offsets.topic.num.partitions", Int, Some("50"), false,
        "partitions of __consumer_offsets when it is created (default 50; fixed afterwards)",
        |c, v| { c.offsets_topic_num_partitions = int("offsets.topic.num.partitions", v)? }
    ),
    setting!(
        "offsets.topic.replication.factor", Short, Some("3"), false,
        "in a cluster: replicas of each __consumer_offsets partition; groups wait for this many brokers (default 3)",
        |c, v| { c.offsets_topic_replication_factor = int("offsets.topic.replication.factor", v)? }
    ),
    setting!(
        "offsets.topic.segment.bytes", Int, Some("104857600"), false,
        "segment size of __consumer_offsets; it is compacted once it grows past this (default 104857600)",
        |c, v| { c.offsets_topic_segment_bytes = int("offsets.topic.segment.bytes", v)? }
    ),
    setting!("offset.metadata.max.bytes", Int, Some("4096"), false, "largest metadata string of a committed offset (default 4096)", |c, v| {
        c.offset_metadata_max_bytes = int("offset.metadata.max.bytes", v)?
    }),
    setting!("producer.id.expiration.ms", Int, Some("86400000"), true, "forget an idempotent producer idle this long (default 86400000)", |c, v| {
        c.log.producer_id_expiration_ms = int("producer.id.expiration.ms", v)?
    }),
    setting!(
        "transaction.state.log.num.partitions", Int, Some("50"), false,
        "partitions of __transaction_state when it is created (default 50; fixed afterwards)",
        |c, v| { c.transaction_state_num_partitions = int("transaction.state.log.num.partitions", v)? }
    ),
    setting!(
        "transaction.state.log.replication.factor", Short, Some("3"), false,
        "in a cluster: replicas of each __transaction_state partition; transactions wait for this many brokers (default 3)",
        |c, v| { c.transaction_state_replication_factor = int("transaction.state.log.replication.factor", v)? }
    ),
    setting!(
        "transaction.state.log.segment.bytes", Int, Some("104857600"), false,
        "segment size of __transaction_state; it is compacted once it grows past this (default 104857600)",
        |c, v| { c.transaction_state_segment_bytes = int("transaction.state.log.segment.bytes", v)? }
    ),
    setting!(
        "transaction.max.timeout.ms", Int, Some("900000"), false,
        "largest transaction.timeout.ms a producer may ask for (default 900000)",
        |c, v| { c.transaction_max_timeout_ms = int("transaction.max.timeout.ms", v)? }
    ),
    setting!(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms", Int, Some("10000"), false,
        "how often transactions past their timeout are aborted (default 10000)",
        |c, v| {
            c.transaction_abort_check_interval_ms =
                int("transaction.abort.timed.out.transaction.cleanup.interval.ms", v)?
        }
    ),
    setting!(
        "core_balancing_continuous", Boolean, Some("false"), false,
        "Redpanda's name: move partitions between cores by measured load, periodically (default false)",
        |c, v| { c.core_balancing_continuous = boolean("core_balancing_continuous", v)? }
    ),
    setting!(
        "core_balancing_debounce_timeout", Long, Some("10000"), false,
        "Redpanda's name: ms between continuous balancing checks (default 10000)",
        |c, v| { c.core_balancing_debounce_timeout_ms = int("core_balancing_debounce_timeout", v)? }
    ),
    setting!(
        "record.validation.enable", Boolean, Some("true"), false,
        "Sluice's own: walk (and decompress) every produced record as Kafka does (default true)",
        |c, v| { c.log.validate_records = boolean("record.validation.enable", v)? }
    ),
    setting!(
        "log.write.method", String, Some("pwritev"), false,
        "Sluice's own: pwritev (gathered from the requests, on the shard) or io_uring (copied, then IORING_OP_WRITE) (default pwritev)",
        |c, v| { c.log.write_method = v.trim().trim_matches('"').parse::<crate::log::config::WriteMethod>()? }
    ),
    setting!(
        "log.write.behind.bytes", Long, Some("0"), false,
        "Sluice's own: start writeback of each partition's every this many written bytes, 0 = leave it to the kernel (default 0)",
        |c, v| { c.log.write_behind_bytes = int("log.write.behind.bytes", v)? }
    ),
    setting!(
        "log.roll.flush.delay.ms", Long, Some("35000"), false,
        "Sluice's own: fdatasync a rolled segment this long after the roll (Kafka: at once, 0); by default after the kernel's own writeback (dirty_expire 30 s + 5 s), so the flush costs no writeback on the shard's core (default 35000)",
        |c, v| { c.log.roll_flush_delay_ms = int("log.roll.flush.delay.ms", v)? }
    ),
    setting!(
        "fetch.send.method", String, Some("sendfile"), false,
        "Sluice's own: how fetched records reach the socket: sendfile, splice or copy (default sendfile)",
        |c, v| { c.fetch_send_method = v.trim().trim_matches('"').parse::<SendMethod>()? }
    ),
    setting!(
        "max.connections", Int, Some("2147483647"), true,
        "most Kafka connections the node holds at once (all shards together); past it the node stops accepting until one closes (default unlimited)",
        |c, v| { c.max_connections = connection_count("max.connections", v)? }
    ),
    setting!(
        "max.connections.per.ip", Int, Some("2147483647"), true,
        "most Kafka connections from one IP address; more are accepted and closed at once (default unlimited)",
        |c, v| { c.max_connections_per_ip = connection_count("max.connections.per.ip", v)? }
    ),
    setting!(
        "max.connections.per.ip.overrides", String, Some(""), true,
        "per-IP exceptions to max.connections.per.ip: \"IP:count,IP:count\" (IP addresses, not host names)",
        |c, v| { c.max_connections_per_ip_overrides = per_ip_overrides("max.connections.per.ip.overrides", v)? }
    ),
    setting!(
        "connections.max.idle.ms", Long, Some("600000"), false,
        "close a connection that has read no request and sent no response for this long, a half-sent frame included; -1 = never (default 600000)",
        |c, v| { c.connections_max_idle_ms = int("connections.max.idle.ms", v)? }
    ),
    setting!(
        "fetch.zero.copy.enable", Boolean, Some("true"), false,
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
    /// `advertised.listeners`: the host and port clients are given, if set.
    pub advertised_listener: Option<(String, i32)>,
    /// `controller.quorum.voters`: the cluster's nodes and their quorum addresses; none =
    /// a node on its own.
    pub quorum_voters: Option<Vec<crate::quorum::Voter>>,
    /// `broker.heartbeat.interval.ms` and `broker.session.timeout.ms` (KRaft's): how often a
    /// broker tells the quorum's leader it is alive, and how long a silent one stays unfenced.
    pub broker_heartbeat_interval_ms: u64,
    pub broker_session_timeout_ms: u64,
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
    pub group_consumer_session_timeout_ms: i32,
    pub group_consumer_min_session_timeout_ms: i32,
    pub group_consumer_max_session_timeout_ms: i32,
    pub group_consumer_heartbeat_interval_ms: i32,
    pub group_consumer_min_heartbeat_interval_ms: i32,
    pub group_consumer_max_heartbeat_interval_ms: i32,
    pub group_consumer_max_size: usize,
    /// Short names ("uniform", "range"), the default first.
    pub group_consumer_assignors: Vec<String>,
    pub offsets_retention_minutes: i64,
    pub offsets_retention_check_interval_ms: u64,
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_segment_bytes: u64,
    pub offsets_topic_replication_factor: i16,
    pub replica_lag_time_max_ms: u64,
    pub metadata_log_snapshot_interval_records: u64,
    pub auto_leader_rebalance_enable: bool,
    pub leader_imbalance_check_interval_seconds: u64,
    pub leader_imbalance_per_broker_percentage: u32,
    pub offset_metadata_max_bytes: usize,
    pub transaction_state_num_partitions: i32,
    pub transaction_state_segment_bytes: u64,
    pub transaction_state_replication_factor: i16,
    pub transaction_max_timeout_ms: i64,
    pub transaction_abort_check_interval_ms: u64,
    pub core_balancing_continuous: bool,
    pub core_balancing_debounce_timeout_ms: u64,
    /// `max.connections`: Kafka connections of the whole node (every shard's together).
    pub max_connections: usize,
    /// `max.connections.per.ip`: connections from one address (all shards together).
    pub max_connections_per_ip: usize,
    /// `max.connections.per.ip.overrides`: addresses with their own limit.
    pub max_connections_per_ip_overrides: BTreeMap<IpAddr, usize>,
    /// `connections.max.idle.ms`: a connection with no request read and no response
    /// written for this long is closed; negative: never.
    pub connections_max_idle_ms: i64,
    /// `compression.type`: the codec of topics without their own (`producer`: as sent).
    pub compression_type: String,
    /// `log.cleanup.policy`, normalised (its switches are in `log`).
    pub cleanup_policy: String,
    /// `log.cleaner.enable`: run each shard's cleaner.
    pub log_cleaner_enable: bool,
    /// `log.cleaner.backoff.ms`: the cleaner's sleep when nothing is due.
    pub log_cleaner_backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size`: key-map memory, divided between the shards.
    pub log_cleaner_dedupe_buffer_size: u64,
    pub log: LogConfig,
    /// The static settings as given (`--config`, `--set`), by name: DescribeConfigs reports
    /// them as STATIC_BROKER_CONFIG.
    pub static_set: BTreeMap<String, String>,
    /// Dynamic settings: the cluster-wide default layer (resource name "").
    pub dynamic_default: BTreeMap<String, String>,
    /// Dynamic settings: this broker's own layer (resource name = `node.id`).
    pub dynamic_broker: BTreeMap<String, String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 0,
            advertised_listener: None,
            quorum_voters: None,
            broker_heartbeat_interval_ms: 2000,
            broker_session_timeout_ms: 9000,
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
            group_max_size: i32::MAX as usize,
            group_consumer_session_timeout_ms: 45_000,
            group_consumer_min_session_timeout_ms: 45_000,
            group_consumer_max_session_timeout_ms: 60_000,
            group_consumer_heartbeat_interval_ms: 5000,
            group_consumer_min_heartbeat_interval_ms: 5000,
            group_consumer_max_heartbeat_interval_ms: 15_000,
            group_consumer_max_size: i32::MAX as usize,
            group_consumer_assignors: vec!["uniform".to_string(), "range".to_string()],
            offsets_retention_minutes: 10080,
            offsets_retention_check_interval_ms: 600_000,
            offsets_topic_num_partitions: 50,
            offsets_topic_segment_bytes: 104_857_600,
            offsets_topic_replication_factor: 3,
            replica_lag_time_max_ms: 30_000,
            metadata_log_snapshot_interval_records: 10_000,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_seconds: 300,
            leader_imbalance_per_broker_percentage: 10,
            offset_metadata_max_bytes: 4096,
            transaction_state_num_partitions: 50,
            transaction_state_segment_bytes: 104_857_600,
            transaction_state_replication_factor: 3,
            transaction_max_timeout_ms: 900_000,
            transaction_abort_check_interval_ms: 10_000,
            core_balancing_continuous: false,
            core_balancing_debounce_timeout_ms: 10_000,
            max_connections: i32::MAX as usize,
            max_connections_per_ip: i32::MAX as usize,
            max_connections_per_ip_overrides: BTreeMap::new(),
            connections_max_idle_ms: 600_000,
            compression_type: "producer".to_string(),
            cleanup_policy: "delete".to_string(),
            log_cleaner_enable: true,
            log_cleaner_backoff_ms: 15_000,
            log_cleaner_dedupe_buffer_size: 128 << 20,
            log: LogConfig::default(),
            static_set: BTreeMap::new(),
            dynamic_default: BTreeMap::new(),
            dynamic_broker: BTreeMap::new(),
        }
    }
}

impl BrokerConfig {
    /// Applies one static `NAME=VALUE` (recorded as given, for DescribeConfigs). Among
    /// synonyms the most precise name set wins, whatever the order (Kafka's rule).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let setting = find(name).ok_or_else(|| {
            format!(
                "unknown setting {name:?}; known: {}",
                SETTINGS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
            )
        })?;
        let value = value.trim().trim_matches('"');
        (setting.apply)(self, value)?;
        self.static_set.insert(name.to_string(), value.to_string());
        if let Some(group) = synonym_group(name) {
            for n in group {
                if let (Some(s), Some(v)) = (find(n), self.static_set.get(*n).cloned()) {
                    (s.apply)(self, &v)?;
                }
            }
        }
        Ok(())
    }

    /// These static settings with the two dynamic layers on top: the cluster-wide default
    /// (`default`) and this broker's own (`broker`, which wins). Every name must be a
    /// dynamic setting and every value valid, and the result must validate; otherwise
    /// nothing is returned (the message names the problem).
    pub fn with_dynamic(
        &self,
        default: &BTreeMap<String, String>,
        broker: &BTreeMap<String, String>,
    ) -> Result<BrokerConfig, String> {
        let mut c = self.clone();
        let not_dynamic: Vec<&str> =
            default.keys().chain(broker.keys()).map(String::as_str).filter(|n| !is_dynamic(n)).collect();
        if let Some(unknown) = not_dynamic.iter().find(|n| find(n).is_none()) {
            return Err(format!("unknown broker config {unknown:?}"));
        }
        if !not_dynamic.is_empty() {
            return Err(format!("Cannot update these configs dynamically: {}", not_dynamic.join(", ")));
        }
        for (name, value) in default.iter().chain(broker.iter()) {
            let setting = find(name).expect("checked above");
            (setting.apply)(&mut c, value).map_err(|e| format!("Invalid value {value:?} for {name}: {e}"))?;
        }
        // Synonyms: the most precise name set in any layer wins.
        for group in SYNONYMS {
            if !group.iter().any(|n| default.contains_key(*n) || broker.contains_key(*n)) {
                continue;
            }
            for n in group.iter() {
                let value = broker.get(*n).or(default.get(*n)).or(self.static_set.get(*n));
                if let (Some(s), Some(v)) = (find(n), value) {
                    (s.apply)(&mut c, v)?;
                }
            }
        }
        c.validate()?;
        c.dynamic_default = default.clone();
        c.dynamic_broker = broker.clone();
        Ok(c)
    }

    /// The value a setting has in the highest layer that sets it, with that layer.
    fn layered(&self, name: &str) -> Option<(&str, i8)> {
        let layers = [
            (&self.dynamic_broker, source::DYNAMIC_BROKER_CONFIG),
            (&self.dynamic_default, source::DYNAMIC_DEFAULT_BROKER_CONFIG),
            (&self.static_set, source::STATIC_BROKER_CONFIG),
        ];
        layers.iter().find_map(|(map, src)| map.get(name).map(|v| (v.as_str(), *src)))
    }

    /// Kafka's synonym list for broker setting `name` (`configSynonyms`): every layer's value
    /// of each synonym, layer by layer from the dynamic per-broker one down to the
    /// defaults, the most precise name first within a layer; entries before the first one
    /// for `name` itself are left out, as Kafka does.
    pub fn synonyms(&self, name: &str) -> Vec<Synonym> {
        let group: Vec<&str> = match synonym_group(name) {
            Some(g) => g.iter().rev().copied().collect(),
            None => vec![name],
        };
        let mut out = Vec::new();
        let layers = [
            (&self.dynamic_broker, source::DYNAMIC_BROKER_CONFIG),
            (&self.dynamic_default, source::DYNAMIC_DEFAULT_BROKER_CONFIG),
            (&self.static_set, source::STATIC_BROKER_CONFIG),
        ];
        for (map, src) in layers {
            for n in &group {
                if let Some(v) = map.get(*n) {
                    out.push(Synonym { name: n.to_string(), value: Some(v.clone()), source: src });
                }
            }
        }
        for n in &group {
            if let Some(d) = find(n).and_then(|s| s.default) {
                out.push(Synonym { name: n.to_string(), value: Some(d.to_string()), source: source::DEFAULT_CONFIG });
            }
        }
        let first = out.iter().position(|s| s.name == name).unwrap_or(out.len());
        out.split_off(first)
    }

    /// DescribeConfigs of this broker (`per_broker`: resource name = node id; every
    /// setting, read-only unless dynamic) or of the cluster-wide default (resource name "":
    /// only what that layer sets, with only its synonyms).
    pub fn describe(&self, per_broker: bool) -> Vec<ConfigEntry> {
        let names: Vec<&str> = if per_broker {
            SETTINGS.iter().map(|s| s.name).collect()
        } else {
            self.dynamic_default.keys().map(String::as_str).collect()
        };
        let mut out: Vec<ConfigEntry> = names
            .into_iter()
            .filter_map(find)
            .map(|s| {
                let value = match self.layered(s.name) {
                    Some((v, _)) => Some(v.to_string()),
                    None => s.default.map(str::to_string),
                };
                let synonyms: Vec<Synonym> = self
                    .synonyms(s.name)
                    .into_iter()
                    .filter(|syn| per_broker || syn.source == source::DYNAMIC_DEFAULT_BROKER_CONFIG)
                    .collect();
                ConfigEntry {
                    name: s.name.to_string(),
                    value,
                    source: synonyms.first().map_or(source::DEFAULT_CONFIG, |syn| syn.source),
                    read_only: !s.dynamic,
                    synonyms,
                    ty: s.ty,
                    doc: s.help,
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
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
        if self.max_connections_per_ip == 0 && self.max_connections_per_ip_overrides.is_empty() {
            // Kafka's own check (KafkaConfig): a node nobody may connect to is a mistake.
            return Err(
                "max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides property is set"
                    .into(),
            );
        }
        if self.connections_max_idle_ms == 0 {
            return Err("connections.max.idle.ms must be positive (or -1: never close idle connections)".into());
        }
        // Kafka's checks (GroupCoordinatorConfig): each within its bounds, heartbeats more
        // often than the session expires.
        let c = self;
        if !(c.group_consumer_min_session_timeout_ms..=c.group_consumer_max_session_timeout_ms)
            .contains(&c.group_consumer_session_timeout_ms)
        {
            return Err("group.consumer.session.timeout.ms must be within group.consumer.min.session.timeout.ms and group.consumer.max.session.timeout.ms".into());
        }
        if !(c.group_consumer_min_heartbeat_interval_ms..=c.group_consumer_max_heartbeat_interval_ms)
            .contains(&c.group_consumer_heartbeat_interval_ms)
        {
            return Err("group.consumer.heartbeat.interval.ms must be within group.consumer.min.heartbeat.interval.ms and group.consumer.max.heartbeat.interval.ms".into());
        }
        if c.group_consumer_heartbeat_interval_ms < 1 || c.group_consumer_min_session_timeout_ms < 1 {
            return Err("group.consumer heartbeat interval and session timeouts must be positive".into());
        }
        if c.group_consumer_heartbeat_interval_ms >= c.group_consumer_session_timeout_ms {
            return Err(
                "group.consumer.heartbeat.interval.ms must be less than group.consumer.session.timeout.ms".into()
            );
        }
        if c.group_consumer_max_size < 1 {
            return Err("group.consumer.max.size must be at least 1".into());
        }
        if self.queued_max_request_bytes < self.socket_request_max_bytes {
            return Err("queued.max.request.bytes must be at least socket.request.max.bytes".into());
        }
        self.log.validate()
    }

    /// The most connections `ip` may hold (`max.connections.per.ip`, or its override).
    pub fn max_connections_for(&self, ip: IpAddr) -> usize {
        self.max_connections_per_ip_overrides.get(&ip.to_canonical()).copied().unwrap_or(self.max_connections_per_ip)
    }

    /// `connections.max.idle.ms` as a duration; `None`: never close an idle connection.
    pub fn connections_max_idle(&self) -> Option<std::time::Duration> {
        u64::try_from(self.connections_max_idle_ms).ok().map(std::time::Duration::from_millis)
    }

    /// The `--help` text for settings.
    pub fn help() -> String {
        SETTINGS
            .iter()
            .map(|s| {
                let dynamic = if s.dynamic { " [dynamic]" } else { "" };
                format!("  {:<34} {}{dynamic}\n", s.name, s.help)
            })
            .collect()
    }
}

fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// A broker setting this node knows.
pub fn known(name: &str) -> bool {
    find(name).is_some()
}

/// A broker setting that may change at run time (AlterConfigs / IncrementalAlterConfigs).
pub fn is_dynamic(name: &str) -> bool {
    find(name).is_some_and(|s| s.dynamic)
}

/// A broker setting of Kafka's LIST type (IncrementalAlterConfigs APPEND / SUBTRACT).
pub fn is_list(name: &str) -> bool {
    find(name).is_some_and(|s| s.ty == ConfigType::List)
}

/// Kafka's default of a broker setting (None: Kafka's is null, or no such setting).
pub fn default_of(name: &str) -> Option<&'static str> {
    find(name).and_then(|s| s.default)
}

/// What a config resource (a topic, the broker, the cluster-wide default) accepts: which
/// names, which are lists, their defaults, and the error code of a bad name or value
/// (Kafka answers INVALID_CONFIG for topics and, KAFKA-13609, INVALID_REQUEST for the
/// broker).
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    pub known: fn(&str) -> bool,
    pub is_list: fn(&str) -> bool,
    pub default_of: fn(&str) -> Option<&'static str>,
    pub invalid: i16,
}

/// The broker's settings as a config resource.
pub const BROKER_SCHEMA: Schema = Schema { known, is_list, default_of, invalid: crate::errors::INVALID_REQUEST };

/// IncrementalAlterConfigs operations (Kafka's `AlterConfigOp.OpType` ids).
pub const OP_SET: i8 = 0;
pub const OP_DELETE: i8 = 1;
pub const OP_APPEND: i8 = 2;
pub const OP_SUBTRACT: i8 = 3;

/// A change to one resource's dynamic configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    /// AlterConfigs: these become the resource's whole set; the rest revert to defaults.
    Replace(BTreeMap<String, String>),
    /// IncrementalAlterConfigs: (name, operation, value), in order.
    Incremental(Vec<(String, i8, Option<String>)>),
}

impl ConfigChange {
    /// The resource's configs after the change, or (error code, message). Names must be
    /// known; APPEND / SUBTRACT work on LIST configs only, from the current value or the
    /// default. Values are not checked here (the resource's validation does that).
    pub fn apply(
        &self,
        current: &BTreeMap<String, String>,
        schema: &Schema,
    ) -> Result<BTreeMap<String, String>, (i16, String)> {
        use crate::errors::{INVALID_CONFIG, INVALID_REQUEST};
        let unknown = |name: &str| (schema.invalid, format!("Unknown config name: {name}"));
        match self {
            ConfigChange::Replace(configs) => {
                if let Some(name) = configs.keys().find(|n| !(schema.known)(n)) {
                    return Err(unknown(name));
                }
                Ok(configs.iter().map(|(k, v)| (k.clone(), v.trim().to_string())).collect())
            }
            ConfigChange::Incremental(ops) => {
                let mut out = current.clone();
                for (name, op, value) in ops {
                    if !(schema.known)(name) {
                        return Err(unknown(name));
                    }
                    let value = value.as_deref().map(str::trim);
                    let list = |v: &str| -> Vec<String> {
                        v.split(',').map(str::trim).filter(|i| !i.is_empty()).map(str::to_string).collect()
                    };
                    match (*op, value) {
                        (OP_DELETE, _) => {
                            out.remove(name);
                        }
                        (OP_SET | OP_APPEND | OP_SUBTRACT, None) => {
                            return Err((INVALID_REQUEST, format!("Null value not supported for : {name}")));
                        }
                        (OP_SET, Some(v)) => {
                            out.insert(name.clone(), v.to_string());
                        }
                        (OP_APPEND | OP_SUBTRACT, Some(v)) => {
                            if !(schema.is_list)(name) {
                                let what = if *op == OP_APPEND { "APPEND" } else { "SUBTRACT" };
                                let msg = format!("Can't {what} to key {name} because its type is not LIST.");
                                return Err((INVALID_CONFIG, msg));
                            }
                            let current = out.get(name).map(String::as_str).or((schema.default_of)(name));
                            let mut items = list(current.unwrap_or(""));
                            let given = list(v);
                            if *op == OP_APPEND {
                                for g in given {
                                    if !items.contains(&g) {
                                        items.push(g);
                                    }
                                }
                            } else {
                                items.retain(|i| !given.contains(i));
                            }
                            out.insert(name.clone(), items.join(","));
                        }
                        (other, _) => {
                            return Err((INVALID_REQUEST, format!("Unknown alter config operation type {other}")));
                        }
                    }
                }
                Ok(out)
            }
        }
    }
}

/// Where the dynamic broker settings are kept in the data directory.
pub const DYNAMIC_DIR: &str = "broker-configs";
/// The cluster-wide default layer (resource name "").
pub const DYNAMIC_DEFAULT_FILE: &str = "cluster-default.properties";
/// This broker's own layer (resource name = node id).
pub const DYNAMIC_BROKER_FILE: &str = "broker.properties";

/// Writes `name=value` lines atomically (temp file, fsync, rename, fsync the directory);
/// an empty map removes the file.
pub fn write_properties(dir: &Path, file: &str, values: &BTreeMap<String, String>) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let path = dir.join(file);
    if values.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("removing {}: {e}", path.display())),
            _ => std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| format!("{}: {e}", dir.display())),
        };
    }
    let text: String = values.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let tmp = dir.join(format!("{file}.tmp"));
    let io = |e: std::io::Error| format!("writing {}: {e}", path.display());
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, &path).map_err(io)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

/// Reads `name=value` lines (an empty map if there is no file).
pub fn read_properties(dir: &Path, file: &str) -> Result<BTreeMap<String, String>, String> {
    let path = dir.join(file);
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
    fn advertised_listeners_take_kafkas_forms_and_refuse_what_no_client_can_use() {
        let ok = |v: &str| advertised_listener("advertised.listeners", v).unwrap();
        assert_eq!(ok("PLAINTEXT://broker-1.example:19092"), Some(("broker-1.example".into(), 19092)));
        assert_eq!(ok("plaintext://10.0.0.7:9092"), Some(("10.0.0.7".into(), 9092)));
        assert_eq!(ok("host:9092"), Some(("host".into(), 9092)));
        assert_eq!(ok("PLAINTEXT://[2001:db8::1]:9092"), Some(("2001:db8::1".into(), 9092)));
        assert_eq!(ok(""), None);
        for bad in ["PLAINTEXT://0.0.0.0:9092", "[::]:9092", "SSL://h:9093", "h:0", "h", "a:1,b:2", "PLAINTEXT://:9092"]
        {
            assert!(advertised_listener("advertised.listeners", bad).is_err(), "{bad} accepted");
        }
        let mut c = BrokerConfig::default();
        c.set_all(["advertised.listeners=PLAINTEXT://sluice.example:9092"]).unwrap();
        assert_eq!(c.advertised_listener, Some(("sluice.example".into(), 9092)));
    }

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

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn entry<'a>(entries: &'a [ConfigEntry], name: &str) -> &'a ConfigEntry {
        entries.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("no {name}"))
    }

    #[test]
    fn kafka_defaults_are_the_nodes_defaults() {
        // Applying a setting's reported default must change nothing: what DescribeConfigs
        // calls the default is what the node runs with.
        let plain = format!("{:?}", BrokerConfig::default());
        for s in SETTINGS {
            if let Some(d) = s.default {
                let mut c = BrokerConfig::default();
                (s.apply)(&mut c, d).unwrap_or_else(|e| panic!("{}={d}: {e}", s.name));
                assert_eq!(format!("{c:?}"), plain, "{}={d} is not the node's default", s.name);
            }
        }
    }

    #[test]
    fn the_most_precise_synonym_wins_in_any_order_and_layer() {
        let mut c = BrokerConfig::default();
        c.set_all(["log.retention.ms=5000", "log.retention.hours=1"]).unwrap();
        assert_eq!(c.log.retention_ms, 5000, "log.retention.ms wins over log.retention.hours");
        let d = c.with_dynamic(&map(&[("log.retention.minutes", "2")]), &BTreeMap::new()).unwrap();
        assert_eq!(d.log.retention_ms, 5000, "a dynamic minutes does not beat a static ms");
        let d = c.with_dynamic(&map(&[("log.retention.ms", "7000")]), &map(&[("log.retention.ms", "9000")])).unwrap();
        assert_eq!(d.log.retention_ms, 9000, "this broker's layer beats the cluster default");
        let plain = BrokerConfig::default().with_dynamic(&map(&[("log.retention.minutes", "2")]), &BTreeMap::new());
        assert_eq!(plain.unwrap().log.retention_ms, 120_000);
    }

    #[test]
    fn dynamic_layers_are_validated_whole() {
        let c = BrokerConfig::default();
        let none = BTreeMap::new();
        let err = c.with_dynamic(&map(&[("num.partitions", "3")]), &none).unwrap_err();
        assert!(err.contains("Cannot update these configs dynamically: num.partitions"), "{err}");
        assert!(c.with_dynamic(&map(&[("no.such", "3")]), &none).unwrap_err().contains("unknown"));
        assert!(c.with_dynamic(&none, &map(&[("log.retention.ms", "soon")])).is_err());
        assert!(c.with_dynamic(&none, &map(&[("log.segment.bytes", "1")])).is_err(), "LogConfig::validate");
        assert!(c.with_dynamic(&none, &map(&[("compression.type", "brotli")])).is_err());
        assert!(c.with_dynamic(&none, &map(&[("log.cleanup.policy", "shred")])).is_err());
        let ok = c.with_dynamic(&none, &map(&[("compression.type", "zstd"), ("message.max.bytes", "2000")])).unwrap();
        assert_eq!((ok.compression_type.as_str(), ok.log.max_message_bytes), ("zstd", 2000));
    }

    #[test]
    fn describe_reports_kafkas_sources_and_synonyms() {
        let mut c = BrokerConfig::default();
        c.set_all(["log.segment.bytes=2097152", "num.partitions=3"]).unwrap();
        let c = c.with_dynamic(&map(&[("log.retention.ms", "60000")]), &map(&[("message.max.bytes", "5000")])).unwrap();
        let all = c.describe(true);
        let seg = entry(&all, "log.segment.bytes");
        assert_eq!(
            (seg.value.as_deref(), seg.source, seg.read_only),
            (Some("2097152"), source::STATIC_BROKER_CONFIG, false)
        );
        assert_eq!(
            seg.synonyms,
            vec![
                Synonym {
                    name: "log.segment.bytes".into(),
                    value: Some("2097152".into()),
                    source: source::STATIC_BROKER_CONFIG
                },
                Synonym {
                    name: "log.segment.bytes".into(),
                    value: Some("1073741824".into()),
                    source: source::DEFAULT_CONFIG
                },
            ]
        );
        let parts = entry(&all, "num.partitions");
        assert_eq!((parts.source, parts.read_only), (source::STATIC_BROKER_CONFIG, true));
        let ret = entry(&all, "log.retention.ms");
        assert_eq!((ret.value.as_deref(), ret.source), (Some("60000"), source::DYNAMIC_DEFAULT_BROKER_CONFIG));
        let max = entry(&all, "message.max.bytes");
        assert_eq!((max.value.as_deref(), max.source), (Some("5000"), source::DYNAMIC_BROKER_CONFIG));
        let roll = entry(&all, "log.roll.ms");
        assert_eq!((roll.value.as_deref(), roll.source, roll.synonyms.len()), (None, source::DEFAULT_CONFIG, 0));
        let hours = entry(&all, "log.retention.hours");
        assert_eq!((hours.value.as_deref(), hours.source), (Some("168"), source::DEFAULT_CONFIG));
        assert_eq!(all.len(), SETTINGS.len());
        // The cluster-default resource lists only its own layer.
        let defaults = c.describe(false);
        assert_eq!(defaults.len(), 1);
        assert_eq!(defaults[0].synonyms.len(), 1);
        assert_eq!(defaults[0].source, source::DYNAMIC_DEFAULT_BROKER_CONFIG);
    }

    #[test]
    fn incremental_operations_follow_kafka() {
        let schema = BROKER_SCHEMA;
        let current = map(&[("log.retention.ms", "1000")]);
        let op = |name: &str, op: i8, v: Option<&str>| (name.to_string(), op, v.map(str::to_string));
        let next = ConfigChange::Incremental(vec![
            op("log.retention.ms", OP_DELETE, None),
            op("message.max.bytes", OP_SET, Some(" 2000 ")),
            op("log.cleanup.policy", OP_APPEND, Some("delete")),
        ])
        .apply(&current, &schema)
        .unwrap();
        assert_eq!(next, map(&[("log.cleanup.policy", "delete"), ("message.max.bytes", "2000")]));
        let sub = ConfigChange::Incremental(vec![op("log.cleanup.policy", OP_SUBTRACT, Some("delete"))]);
        assert_eq!(sub.apply(&BTreeMap::new(), &schema).unwrap(), map(&[("log.cleanup.policy", "")]));
        let refused = |change: ConfigChange| change.apply(&current, &schema).unwrap_err().0;
        assert_eq!(refused(ConfigChange::Incremental(vec![op("log.retention.ms", OP_APPEND, Some("1"))])), 40);
        assert_eq!(refused(ConfigChange::Incremental(vec![op("log.retention.ms", 9, Some("1"))])), 42);
        assert_eq!(refused(ConfigChange::Incremental(vec![op("log.retention.ms", OP_SET, None)])), 42);
        assert_eq!(refused(ConfigChange::Incremental(vec![op("no.such", OP_DELETE, None)])), schema.invalid);
        assert_eq!(refused(ConfigChange::Replace(map(&[("no.such", "1")]))), schema.invalid);
        let replaced = ConfigChange::Replace(map(&[("message.max.bytes", "3000")])).apply(&current, &schema);
        assert_eq!(replaced.unwrap(), map(&[("message.max.bytes", "3000")]), "AlterConfigs replaces the whole set");
    }

    #[test]
    fn connection_limits_take_kafkas_formats_and_the_quotas_are_dynamic() {
        let mut c = BrokerConfig::default();
        c.set_all(["max.connections.per.ip=100", "max.connections.per.ip.overrides=127.0.0.3:5, [::1]:7,::2:0"])
            .unwrap();
        assert_eq!(c.max_connections_for("127.0.0.2".parse().unwrap()), 100);
        assert_eq!(c.max_connections_for("127.0.0.3".parse().unwrap()), 5);
        assert_eq!(c.max_connections_for("::ffff:127.0.0.3".parse().unwrap()), 5, "a mapped IPv4 address");
        assert_eq!(c.max_connections_for("::1".parse().unwrap()), 7);
        assert_eq!(c.max_connections_for("::2".parse().unwrap()), 0);
        assert_eq!(c.connections_max_idle(), Some(std::time::Duration::from_secs(600)));
        let refused = |pair: &str| BrokerConfig::default().set_all([pair]).unwrap_err();
        assert!(refused("max.connections.per.ip.overrides=localhost:5").contains("not an IP address"));
        assert!(refused("max.connections.per.ip.overrides=127.0.0.1").contains("HOST:COUNT"));
        assert!(refused("max.connections.per.ip.overrides=127.0.0.1:-1").contains("negative"));
        assert!(refused("max.connections=-1").contains("negative"));
        assert!(refused("max.connections.per.ip=0").contains("only if max.connections.per.ip.overrides"));
        assert!(refused("connections.max.idle.ms=0").contains("positive"));
        let mut never = BrokerConfig::default();
        never.set_all(["connections.max.idle.ms=-1"]).unwrap();
        assert_eq!(never.connections_max_idle(), None);
        // Kafka lets max.connections and the per-IP settings change at run time, not the idle time.
        let none = BTreeMap::new();
        let d = c
            .with_dynamic(&map(&[("max.connections", "10")]), &map(&[("max.connections.per.ip.overrides", "")]))
            .unwrap();
        assert_eq!((d.max_connections, d.max_connections_for("127.0.0.3".parse().unwrap())), (10, 100));
        let err = c.with_dynamic(&map(&[("connections.max.idle.ms", "5")]), &none).unwrap_err();
        assert!(err.contains("Cannot update these configs dynamically: connections.max.idle.ms"), "{err}");
        let described = d.describe(true);
        let e = entry(&described, "max.connections");
        assert_eq!(
            (e.value.as_deref(), e.source, e.read_only),
            (Some("10"), source::DYNAMIC_DEFAULT_BROKER_CONFIG, false)
        );
        let e = entry(&described, "connections.max.idle.ms");
        assert_eq!((e.value.as_deref(), e.source, e.read_only), (Some("600000"), source::DEFAULT_CONFIG, true));
        let defaults = BrokerConfig::default().describe(true);
        let e = entry(&defaults, "max.connections.per.ip");
        assert_eq!((e.value.as_deref(), e.ty), (Some("2147483647"), ConfigType::Int));
    }

    #[test]
    fn properties_files_round_trip_and_empty_removes() {
        let tmp = crate::testing::TempDir::new("properties");
        let values = map(&[("a.b", "1"), ("c", "x y")]);
        write_properties(tmp.path(), "f.properties", &values).unwrap();
        assert_eq!(read_properties(tmp.path(), "f.properties").unwrap(), values);
        write_properties(tmp.path(), "f.properties", &BTreeMap::new()).unwrap();
        assert!(!tmp.path().join("f.properties").exists());
        assert!(read_properties(tmp.path(), "f.properties").unwrap().is_empty());
    }
}
