//! Core balancing: which partitions to move so the shards' measured load evens out
//! (`POST /v1/partitions/rebalance_cores`, and `core_balancing_continuous`).
//!
//! The load of a shard is its measured busy fraction (CPU time of its thread over the last
//! sampling interval). A shard's CPU goes to two kinds of byte work: its connections (reading
//! requests, sending responses — whatever partitions they name) and its own partitions
//! (validating, writing, reading for whoever asks). A partition's share of the busy fraction
//! is the shard's busy fraction times the partition's bytes over both kinds of bytes together
//! (a byte of either costs about the same: a copy and a pass over it). The connection part
//! does not move with a partition — the kernel placed the connections — so a move carries
//! only the partition's own part; without that a plan overestimates each move and stops
//! early (measured 2026-12-07: moves expected to carry 11 % of a core carried 3–5 %). The
//! plan is still re-measured after it is carried out rather than trusted.
//!
//! The plan is greedy: while the busiest and the idlest shard differ by more than
//! `TARGET_GAP` of the busiest, move the partition of the busiest whose estimated load comes
//! closest to halving the difference (moving one larger than the difference would only swap
//! the roles). Partitions with no traffic never move; neither do internal topics' (their
//! coordinators' state does not move yet).

/// What the planner knows of a shard.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardLoad {
    pub busy: f64,
    /// Bytes per second read from and written to the shard's connections.
    pub connection_bytes_per_s: f64,
}

/// What the planner knows of a partition.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionLoad {
    pub topic: String,
    pub partition: i32,
    pub shard: usize,
    /// Produce plus fetch bytes per second.
    pub bytes_per_s: f64,
    /// Internal topics and partitions that moved recently (continuous balancing's hysteresis).
    pub pinned: bool,
}

/// One move of a plan, with the estimated load it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub topic: String,
    pub partition: i32,
    pub from: usize,
    pub to: usize,
    pub load: f64,
}

/// Stop when the busiest and idlest shards are within this fraction of the busiest.
pub const TARGET_GAP: f64 = 0.1;

/// Continuous balancing acts only past this imbalance (hysteresis: it then aims at `TARGET_GAP`).
pub const TRIGGER_GAP: f64 = 0.2;

/// (max − min) / max of the shards' loads; 0 when all are idle.
pub fn imbalance(loads: &[f64]) -> f64 {
    let max = loads.iter().copied().fold(0.0, f64::max);
    let min = loads.iter().copied().fold(f64::INFINITY, f64::min);
    if max <= 0.0 {
        0.0
    } else {
        (max - min) / max
    }
}

/// Each partition's estimated share of its shard's busy fraction: the part that moves with it.
pub fn partition_loads(shards: &[ShardLoad], partitions: &[PartitionLoad]) -> Vec<f64> {
    let mut bytes: Vec<f64> = shards.iter().map(|s| s.connection_bytes_per_s.max(0.0)).collect();
    for p in partitions.iter().filter(|p| p.shard < shards.len()) {
        bytes[p.shard] += p.bytes_per_s;
    }
    partitions
        .iter()
        .map(|p| match (shards.get(p.shard), bytes.get(p.shard)) {
            (Some(s), Some(&total)) if total > 0.0 => s.busy * p.bytes_per_s / total,
            _ => 0.0,
        })
        .collect()
}

/// The moves that even out the shards' loads, and the loads expected after them.
pub fn plan(shards: &[ShardLoad], partitions: &[PartitionLoad]) -> (Vec<Move>, Vec<f64>) {
    let costs = partition_loads(shards, partitions);
    let mut loads: Vec<f64> = shards.iter().map(|s| s.busy).collect();
    let mut at: Vec<usize> = partitions.iter().map(|p| p.shard).collect();
    let mut moves = Vec::new();
    // Each step strictly lowers the sum of squared loads, so this ends; the bound is a guard.
    for _ in 0..partitions.len() * shards.len().max(1) {
        if shards.len() < 2 || imbalance(&loads) <= TARGET_GAP {
            break;
        }
        let busiest = argmax(&loads);
        let idlest = argmin(&loads);
        let gap = loads[busiest] - loads[idlest];
        let candidate = (0..partitions.len())
            .filter(|&i| at[i] == busiest && !partitions[i].pinned && costs[i] > 0.0 && costs[i] < gap)
            .min_by(|&a, &b| (gap - 2.0 * costs[a]).abs().total_cmp(&(gap - 2.0 * costs[b]).abs()));
        let Some(i) = candidate else { break };
        loads[busiest] -= costs[i];
        loads[idlest] += costs[i];
        at[i] = idlest;
        let p = &partitions[i];
        moves.push(Move { topic: p.topic.clone(), partition: p.partition, from: busiest, to: idlest, load: costs[i] });
    }
    (moves, loads)
}

fn argmax(v: &[f64]) -> usize {
    (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap_or(0)
}

fn argmin(v: &[f64]) -> usize {
    (0..v.len()).min_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(busy: f64) -> ShardLoad {
        ShardLoad { busy, connection_bytes_per_s: 0.0 }
    }

    fn part(name: &str, shard: usize, bytes_per_s: f64) -> PartitionLoad {
        PartitionLoad { topic: name.into(), partition: 0, shard, bytes_per_s, pinned: false }
    }

    #[test]
    fn a_hot_partition_ends_alone_and_the_cold_ones_gather_on_the_other_shard() {
        // Shard 0: the hot partition and two cold ones (0.9 busy); shard 1: three cold (0.3).
        let shards = [shard(0.9), shard(0.3)];
        let parts = [
            part("hot", 0, 500.0),
            part("c1", 0, 100.0),
            part("c2", 0, 100.0),
            part("c3", 1, 100.0),
            part("c4", 1, 100.0),
            part("c5", 1, 100.0),
        ];
        let (moves, after) = plan(&shards, &parts);
        assert_eq!(moves.len(), 2, "{moves:?}");
        assert!(moves.iter().all(|m| m.topic.starts_with('c') && m.from == 0 && m.to == 1), "{moves:?}");
        // 0.643 / 0.557: as even as whole partitions allow, inside the 20 % continuous
        // balancing tolerates.
        assert!(imbalance(&after) <= TRIGGER_GAP, "{after:?}");
        assert!((after.iter().sum::<f64>() - 1.2).abs() < 1e-9, "load is moved, not made");
    }

    #[test]
    fn nothing_moves_when_balanced_idle_pinned_or_indivisible() {
        let even = [shard(0.5), shard(0.48)];
        assert!(plan(&even, &[part("a", 0, 1.0), part("b", 1, 1.0)]).0.is_empty());
        let idle = [shard(0.0), shard(0.0)];
        assert!(plan(&idle, &[part("a", 0, 0.0), part("b", 0, 0.0)]).0.is_empty());
        // One partition carries all the load: moving it would only swap the shards.
        let one = [shard(0.8), shard(0.0)];
        assert!(plan(&one, &[part("a", 0, 10.0)]).0.is_empty());
        let mut pinned = part("a", 0, 5.0);
        pinned.pinned = true;
        assert!(plan(&one, &[pinned, part("b", 0, 5.0)]).0.len() == 1, "only the unpinned one moves");
    }

    #[test]
    fn connection_work_stays_behind_so_each_move_carries_less_and_more_partitions_move() {
        // Half of each shard's byte work is its connections': a partition carries 0.1 of
        // shard 0, not 0.2, so evening 0.8 / 0.4 out takes two moves, not one.
        let shards = [
            ShardLoad { busy: 0.8, connection_bytes_per_s: 400.0 },
            ShardLoad { busy: 0.4, connection_bytes_per_s: 400.0 },
        ];
        let parts = [
            part("c1", 0, 100.0),
            part("c2", 0, 100.0),
            part("c3", 0, 100.0),
            part("c4", 0, 100.0),
            part("c5", 1, 100.0),
        ];
        let (moves, after) = plan(&shards, &parts);
        assert_eq!(moves.len(), 2, "{moves:?}");
        assert!(moves.iter().all(|m| (m.from, m.to) == (0, 1) && (m.load - 0.1).abs() < 1e-9), "{moves:?}");
        assert!(imbalance(&after) <= TARGET_GAP, "expected after: {after:?}");
        // Counting only the partitions' bytes, one move of 0.2 would look enough.
        let (naive, _) = plan(&[shard(0.8), shard(0.4)], &parts);
        assert_eq!(naive.len(), 1, "{naive:?}");
    }
}
