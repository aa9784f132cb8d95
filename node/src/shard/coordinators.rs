//! The router's side of the two coordinators (`group`, `txn`): which shard coordinates a
//! group or a transactional id, what a coordinator may ask of its shard (`internal::Host`,
//! implemented here), loading their state at start, and their timers.

use super::ops::{Op, ShardOp, WriteMarkers};
use super::Shard;
use crate::config::BrokerConfig;
use crate::group::GroupView;
use crate::internal::Host;
use crate::log::{PartitionLog, TopicPartition};
use glommio::channels::oneshot::SharedSender;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

impl Host for Shard {
    fn shard_id(&self) -> usize {
        self.id
    }

    fn config(&self) -> &BrokerConfig {
        &self.setup.config
    }

    fn log(&self, tp: &TopicPartition) -> Option<Rc<PartitionLog>> {
        self.logs.borrow().get(tp).cloned()
    }

    fn logs_of(&self, topic: &str) -> Vec<(TopicPartition, Rc<PartitionLog>)> {
        self.logs.borrow().iter().filter(|(tp, _)| tp.topic == topic).map(|(tp, l)| (tp.clone(), l.clone())).collect()
    }

    fn partition_count(&self, topic: &str) -> i32 {
        self.registry.borrow().get(topic).map_or(0, |t| t.partitions)
    }

    fn new_producer_id(self: &Rc<Self>) -> impl Future<Output = Result<i64, String>> {
        self.allocate_producer_id()
    }

    /// One message per owning shard (this one inline), then waits for all.
    async fn write_markers(
        self: &Rc<Self>,
        parts: Vec<TopicPartition>,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), String> {
        let mut per_shard: BTreeMap<usize, Vec<TopicPartition>> = BTreeMap::new();
        for tp in parts {
            per_shard.entry(self.owner(&tp)).or_default().push(tp);
        }
        for (owner, parts) in per_shard {
            self.invoke(owner, WriteMarkers { parts, producer_id, epoch, commit }).await??;
        }
        Ok(())
    }
}

impl Shard {
    /// The shard coordinating `group` (the owner of its `__consumer_offsets` partition).
    pub fn group_coordinator(&self, group: &str) -> usize {
        self.owner(&crate::group::offsets_partition(self.config(), group))
    }

    /// The shard coordinating transactional id `id` (the owner of its
    /// `__transaction_state` partition).
    pub fn txn_coordinator(&self, id: &str) -> usize {
        self.owner(&crate::txn::state_partition(self.config(), id))
    }

    /// Every group of every shard, by name (`make` asks one shard; a shard that cannot be
    /// reached is left out).
    pub async fn groups_everywhere<T: ShardOp<Reply = Vec<GroupView>>>(
        self: &Rc<Self>,
        make: impl Fn() -> T,
    ) -> Vec<GroupView>
    where
        Op: From<(T, SharedSender<Vec<GroupView>>)>,
    {
        let mut out = Vec::new();
        for s in 0..self.shards() {
            out.extend(self.invoke(s, make()).await.unwrap_or_default());
        }
        out.sort_by(|a, b| a.group.cmp(&b.group));
        out
    }

    /// Replays the coordinators' partitions this shard owns and starts their timers;
    /// transactions a stop interrupted are finished in the background.
    pub async fn start_coordinators(self: &Rc<Self>) -> Result<(), String> {
        let replayed = self.groups.load(self).await?;
        if replayed > 0 {
            eprintln!(
                "sluice: shard {}: {} groups from {replayed} offsets records",
                self.id,
                self.groups.group_count()
            );
        }
        glommio::spawn_local(run_group_timers(self.clone())).detach();
        let (_, interrupted) = self.txns.load(self).await?;
        for meta in interrupted {
            let shard = self.clone();
            glommio::spawn_local(async move { shard.txns.resume(&shard, meta).await }).detach();
        }
        glommio::spawn_local(run_txn_timers(self.clone())).detach();
        Ok(())
    }
}

/// The group timer loop: ticks, stores what changed, and expires offsets and compacts the
/// offsets partitions now and then.
async fn run_group_timers(shard: Rc<Shard>) {
    let retention_every = Duration::from_millis(shard.config().offsets_retention_check_interval_ms.max(10));
    let mut last_expiry = Instant::now();
    let mut last_compaction = Instant::now();
    while !shard.stopping.get() {
        glommio::timer::sleep(crate::group::TICK).await;
        for group in shard.groups.tick() {
            let shard = shard.clone();
            glommio::spawn_local(async move {
                if let Err(e) = shard.groups.persist_group(&shard, &group).await {
                    eprintln!("sluice: group {group:?}: storing its metadata failed: {e}");
                }
            })
            .detach();
        }
        if last_expiry.elapsed() >= retention_every {
            last_expiry = Instant::now();
            shard.groups.expire(&shard).await;
        }
        if last_compaction.elapsed() >= crate::group::COMPACTION_CHECK {
            last_compaction = Instant::now();
            shard.groups.compact_if_due(&shard).await;
        }
    }
}

/// The transaction timer: aborts timed-out transactions every
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms` and compacts the state
/// partitions when due.
async fn run_txn_timers(shard: Rc<Shard>) {
    let every = Duration::from_millis(shard.config().transaction_abort_check_interval_ms.max(10));
    while !shard.stopping.get() {
        glommio::timer::sleep(every).await;
        shard.txns.abort_timed_out(&shard).await;
        shard.txns.compact_if_due(&shard).await;
    }
}
