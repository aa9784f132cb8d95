//! The placement table: which shard owns each (topic, partition).
//!
//! Every shard holds a copy; shard 0 (the controller) changes it — new partitions, moves,
//! deleted topics — persists it, then sends the change to every shard. `Shard::owner` is the
//! one routing function and reads it. Partitions missing from the table (a data directory
//! from before the table existed, or a table entry naming a shard this run does not have)
//! fall back to `topics::shard_for`, the hash spread of earlier versions.
//!
//! On disk: `<data-dir>/partition-placement`, one `topic partition shard` line per entry,
//! written atomically (temporary file, fsync, rename, fsync of the directory). It is the
//! commit point of a move: a crash before the rename leaves the old owner, after it the new.

use crate::log::TopicPartition;
use crate::topics;
use std::collections::BTreeMap;
use std::path::Path;

pub const PLACEMENT_FILE: &str = "partition-placement";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    owners: BTreeMap<TopicPartition, usize>,
}

impl Placement {
    /// The table in `data_dir`, or an empty one when the file does not exist. Entries naming
    /// a shard at or past `shards` are dropped (the node restarted with fewer cores), as are
    /// lines that do not parse; both are reported on stderr.
    pub fn load(data_dir: &Path, shards: usize) -> Result<Placement, String> {
        let path = data_dir.join(PLACEMENT_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Placement::default()),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        let mut placement = Placement::default();
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            match parse_line(line) {
                Some((tp, shard)) if shard < shards => {
                    placement.owners.insert(tp, shard);
                }
                Some((tp, shard)) => {
                    eprintln!("sluice: {tp} was placed on shard {shard}, which this run does not have; hashing it");
                }
                None => eprintln!("sluice: {}: line {} ignored: {line:?}", path.display(), n + 1),
            }
        }
        Ok(placement)
    }

    /// The owner of `tp`: its entry, else the hash spread over `shards`.
    pub fn owner(&self, tp: &TopicPartition, shards: usize) -> usize {
        match self.owners.get(tp) {
            Some(&s) if s < shards => s,
            _ => topics::shard_for(&tp.topic, tp.partition, shards),
        }
    }

    pub fn set(&mut self, tp: TopicPartition, shard: usize) {
        self.owners.insert(tp, shard);
    }

    /// Forgets every partition of `topic`.
    pub fn remove_topic(&mut self, topic: &str) {
        self.remove_partitions_from(topic, 0);
    }

    /// Forgets the partitions of `topic` numbered `from` and up.
    pub fn remove_partitions_from(&mut self, topic: &str, from: i32) {
        self.owners.retain(|tp, _| tp.topic != topic || tp.partition < from);
    }

    /// Shards for `count` new partitions of `topic` starting at `first`: each goes to the
    /// shard owning the fewest partitions so far (`owned`, indexed by shard, updated as
    /// partitions are placed); ties go to the hash spread's choice, then the lowest index.
    /// Partition counts stand for load here: a new partition has no measured load yet.
    pub fn place_new(topic: &str, first: i32, count: i32, owned: &mut [usize]) -> Vec<usize> {
        let shards = owned.len();
        (first..first + count)
            .map(|p| {
                let least = owned.iter().copied().min().unwrap_or(0);
                let hashed = topics::shard_for(topic, p, shards);
                let chosen =
                    if owned[hashed] == least { hashed } else { owned.iter().position(|&n| n == least).unwrap_or(0) };
                owned[chosen] += 1;
                chosen
            })
            .collect()
    }

    /// The table's file contents.
    pub fn encode(&self) -> String {
        self.owners.iter().map(|(tp, s)| format!("{} {} {s}\n", tp.topic, tp.partition)).collect()
    }

    /// Writes the table to `data_dir` atomically.
    pub async fn persist(&self, data_dir: &Path) -> Result<(), String> {
        crate::log::checkpoint::write_atomic(data_dir, PLACEMENT_FILE, self.encode().into_bytes())
            .await
            .map_err(|e| format!("writing {PLACEMENT_FILE}: {e}"))
    }
}

fn parse_line(line: &str) -> Option<(TopicPartition, usize)> {
    let mut words = line.split_whitespace();
    let (topic, partition, shard) = (words.next()?, words.next()?.parse().ok()?, words.next()?.parse().ok()?);
    (words.next().is_none() && topics::validate_topic_name(topic).is_ok() && partition >= 0)
        .then(|| (TopicPartition::new(topic.to_string(), partition), shard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_round_trips_and_bad_lines_or_shards_fall_back_to_the_hash() {
        let dir = std::env::temp_dir().join(format!("sluice-placement-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = "orders 0 1\norders 1 0\nbad line\nwide 3 7\n\n";
        std::fs::write(dir.join(PLACEMENT_FILE), text).unwrap();
        let p = Placement::load(&dir, 2).unwrap();
        let tp = |t: &str, n| TopicPartition::new(t.to_string(), n);
        assert_eq!(p.owner(&tp("orders", 0), 2), 1);
        assert_eq!(p.owner(&tp("orders", 1), 2), 0);
        assert_eq!(p.owner(&tp("wide", 3), 2), topics::shard_for("wide", 3, 2), "shard 7 of 2: hashed");
        assert_eq!(p.encode(), "orders 0 1\norders 1 0\n");
        assert_eq!(Placement::load(&dir.join("absent"), 2).unwrap(), Placement::default());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn new_partitions_go_to_the_least_loaded_shard() {
        let mut owned = vec![3, 0, 1];
        let placed = Placement::place_new("t", 0, 4, &mut owned);
        assert_eq!(&placed[..2], &[1, 1], "shard 1 has the fewest until it catches up with shard 2");
        assert_eq!(owned.iter().sum::<usize>(), 8);
        assert!(owned.iter().max().unwrap() - owned.iter().min().unwrap() <= 1);
        // Even shards: the hash spread decides, as before the table existed.
        let mut even = vec![0, 0];
        let placed = Placement::place_new("orders", 0, 4, &mut even);
        assert_eq!(placed[0], topics::shard_for("orders", 0, 2));
        assert_eq!(even, vec![2, 2]);
    }
}
