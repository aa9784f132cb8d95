//! Topics: names, ids, partition counts, and which shard owns each partition.
//!
//! Every shard keeps its own copy of the [`Registry`] (shared-nothing): shard 0 decides
//! changes (create, delete, grow) and broadcasts them; each shard applies them to its copy.
//! On disk a topic is its partition directories; each holds Kafka's `partition.metadata`
//! (`version: 0` / `topic_id: <base64url uuid>`), so the registry is rebuilt from the data
//! directory at start.

use crate::log::TopicPartition;
use std::collections::BTreeMap;
use std::path::Path;

/// A topic id: Kafka's 128-bit UUID.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicId(pub u128);

impl TopicId {
    /// A fresh random id (never the all-zero id, which Kafka reserves for "none").
    pub fn random() -> TopicId {
        let mut bytes = [0u8; 16];
        let filled =
            std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
        if filled.is_err() {
            let seed = crate::runtime::now_ms() as u64 ^ (std::process::id() as u64) << 32;
            let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            for b in bytes.iter_mut() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                *b = rng as u8;
            }
        }
        TopicId(u128::from_be_bytes(bytes).max(1))
    }

    /// Kafka's string form: URL-safe base64 of the 16 bytes, no padding (22 characters).
    pub fn to_base64(self) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = self.0.to_be_bytes();
        let mut out = String::with_capacity(22);
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, &b| (acc << 8) | b as u32) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    pub fn from_base64(text: &str) -> Option<TopicId> {
        let text = text.trim();
        if text.len() != 22 {
            return None;
        }
        let mut acc: u128 = 0;
        let mut bits = 0u32;
        let mut out = Vec::with_capacity(16);
        for c in text.bytes() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'-' => 62,
                b'_' => 63,
                _ => return None,
            };
            acc = (acc << 6) | v as u128;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        Some(TopicId(u128::from_be_bytes(out.try_into().ok()?)))
    }
}

/// What every shard knows about a topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub id: TopicId,
    pub partitions: i32,
    /// Topic-config overrides (Kafka names; see `topic_config`).
    pub configs: BTreeMap<String, String>,
    /// In a cluster: the node hosting each partition (its leader and, until replication is
    /// built, its only replica), as the metadata quorum placed it. Empty for a node alone,
    /// which hosts every partition.
    pub nodes: Vec<i32>,
    /// In a cluster: each partition's replicas, its leader (`nodes`) first. Empty, or empty
    /// for a partition: the leader alone.
    pub replicas: Vec<Vec<i32>>,
    /// In a cluster: each partition's leader epoch (absent: 0).
    pub leader_epochs: Vec<i32>,
    /// In a cluster: each partition's in-sync replicas (absent: all its replicas).
    pub isr: Vec<Vec<i32>>,
}

impl TopicInfo {
    /// The node leading partition `p` (`alone`, this node, when the topic is not placed).
    pub fn node_of(&self, p: i32, alone: i32) -> i32 {
        self.nodes.get(p as usize).copied().unwrap_or(alone)
    }

    /// Partition `p`'s replicas, its leader first.
    pub fn replicas_of(&self, p: i32, alone: i32) -> Vec<i32> {
        match self.replicas.get(p as usize) {
            Some(r) if !r.is_empty() => r.clone(),
            _ => vec![self.node_of(p, alone)],
        }
    }

    pub fn epoch_of(&self, p: i32) -> i32 {
        self.leader_epochs.get(p as usize).copied().unwrap_or(0)
    }

    /// Partition `p`'s in-sync replicas.
    pub fn isr_of(&self, p: i32, alone: i32) -> Vec<i32> {
        self.isr.get(p as usize).cloned().unwrap_or_else(|| self.replicas_of(p, alone))
    }
}

/// The topics of the node: one copy per shard, changed only by messages from shard 0.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    topics: BTreeMap<String, TopicInfo>,
}

impl Registry {
    pub fn get(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.get(name)
    }

    pub fn by_id(&self, id: TopicId) -> Option<&TopicInfo> {
        self.topics.values().find(|t| t.id == id)
    }

    pub fn topics(&self) -> impl Iterator<Item = &TopicInfo> {
        self.topics.values()
    }

    pub fn upsert(&mut self, info: TopicInfo) {
        self.topics.insert(info.name.clone(), info);
    }

    pub fn remove(&mut self, name: &str) -> Option<TopicInfo> {
        self.topics.remove(name)
    }

    /// Builds the registry from partition directories and their `partition.metadata`.
    pub fn scan(data_dir: &Path) -> Result<Registry, String> {
        let mut registry = Registry::default();
        let entries = match std::fs::read_dir(data_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(registry),
            Err(e) => return Err(format!("listing {}: {e}", data_dir.display())),
        };
        for entry in entries {
            let entry = entry.map_err(|e| format!("listing {}: {e}", data_dir.display()))?;
            let Some(tp) = TopicPartition::parse_dir_name(&entry.file_name().to_string_lossy()) else { continue };
            if !entry.path().is_dir() {
                continue;
            }
            let id = read_partition_metadata(&entry.path())?;
            let info = registry.topics.entry(tp.topic.clone()).or_insert(TopicInfo {
                name: tp.topic.clone(),
                id: id.unwrap_or(TopicId(0)),
                partitions: 0,
                configs: BTreeMap::new(),
                ..Default::default()
            });
            info.partitions = info.partitions.max(tp.partition + 1);
            if info.id == TopicId(0) {
                info.id = id.unwrap_or(TopicId(0));
            }
        }
        for info in registry.topics.values_mut() {
            if info.id == TopicId(0) {
                info.id = TopicId::random();
            }
            info.configs = crate::topic_config::read(data_dir, &info.name)?;
        }
        Ok(registry)
    }
}

pub const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// Kafka's `partition.metadata` text.
pub fn encode_partition_metadata(id: TopicId) -> String {
    format!("version: 0\ntopic_id: {}\n", id.to_base64())
}

fn read_partition_metadata(dir: &Path) -> Result<Option<TopicId>, String> {
    let path = dir.join(PARTITION_METADATA_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let id = text.lines().find_map(|l| l.strip_prefix("topic_id:")).and_then(TopicId::from_base64);
    id.map(Some).ok_or_else(|| format!("{}: no valid topic_id", path.display()))
}

/// The one routing function: which shard owns a partition. Partitions of a topic are
/// spread round-robin over the shards, starting at a shard chosen by a stable hash of the
/// topic name (FNV-1a), so many single-partition topics spread too. Deterministic: the same
/// layout after every restart with the same shard count.
pub fn shard_for(topic: &str, partition: i32, shards: usize) -> usize {
    let hash = topic.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    ((hash % shards as u64 + partition.max(0) as u64) % shards as u64) as usize
}

/// Kafka's topic name rule: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("topic name {name:?} is illegal"));
    }
    if name.len() > 249 {
        return Err("topic name is longer than 249 characters".into());
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return Err(format!("topic name {name:?} contains characters other than [a-zA-Z0-9._-]"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_ids_use_kafkas_base64_form() {
        let id = TopicId(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        let text = id.to_base64();
        assert_eq!(text.len(), 22);
        assert_eq!(text, "ASNFZ4mrze_-3LqYdlQyEA");
        assert_eq!(TopicId::from_base64(&text), Some(id));
        assert_eq!(TopicId::from_base64("short"), None);
        assert_ne!(TopicId::random(), TopicId::random());
    }

    #[test]
    fn placement_spreads_partitions_evenly_and_deterministically() {
        let mut counts = [0usize; 4];
        for p in 0..16 {
            counts[shard_for("orders", p, 4)] += 1;
        }
        assert_eq!(counts, [4, 4, 4, 4]);
        assert_eq!(shard_for("orders", 3, 4), shard_for("orders", 3, 4));
        assert_eq!(shard_for("x", 5, 1), 0);
    }

    #[test]
    fn topic_names_follow_kafkas_rules() {
        assert!(validate_topic_name("orders.v1_a-b").is_ok());
        for bad in ["", ".", "..", "a b", "ü", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_registry_is_rebuilt_from_partition_directories() {
        let tmp = crate::testing::TempDir::new("registry");
        let id = TopicId::random();
        for p in 0..3 {
            let dir = tmp.path().join(format!("my-topic-{p}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(PARTITION_METADATA_FILE), encode_partition_metadata(id)).unwrap();
        }
        std::fs::create_dir_all(tmp.path().join("not a partition")).unwrap();
        let reg = Registry::scan(tmp.path()).unwrap();
        let info = reg.get("my-topic").unwrap();
        assert_eq!((info.partitions, info.id), (3, id));
        assert_eq!(reg.topics().count(), 1);
    }
}
