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

    fn config(&self) -> Rc<BrokerConfig> {
        Shard::config(self)
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

    fn topics(&self) -> Vec<(String, u128, i32)> {
        self.registry.borrow().topics().map(|t| (t.name.clone(), t.id.0, t.partitions)).collect()
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
        self.owner(&crate::group::offsets_partition(&self.config(), group))
    }

    /// The shard coordinating transactional id `id` (the owner of its
    /// `__transaction_state` partition).
    pub fn txn_coordinator(&self, id: &str) -> usize {
        self.owner(&crate::txn::state_partition(&self.config(), id))
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
        let mut internal: Vec<TopicPartition> =
            self.logs.borrow().keys().filter(|tp| is_internal(tp)).cloned().collect();
        internal.sort();
        for tp in &internal {
            self.load_coordinator(tp).await?;
        }
        let groups = self.groups.group_count();
        if groups > 0 {
            eprintln!("sluice: shard {}: {groups} groups loaded", self.id);
        }
        glommio::spawn_local(run_group_timers(self.clone())).detach();
        glommio::spawn_local(run_txn_timers(self.clone())).detach();
        Ok(())
    }

    /// A coordinators' partition leaving this shard (a move): its coordinator stops
    /// answering for it; the permit holds its writers off until the log is closed.
    pub(super) async fn unload_coordinator(
        self: &Rc<Self>,
        tp: &TopicPartition,
    ) -> Option<glommio::sync::StaticPermit> {
        if tp.topic == crate::group::store::OFFSETS_TOPIC {
            self.groups.unload_partition(self, tp.partition).await
        } else if tp.topic == crate::txn::TXN_TOPIC {
            self.txns.unload_partition(self, tp.partition).await
        } else {
            None
        }
    }

    /// A coordinators' partition open on this shard (at start, or moved here): its
    /// coordinator replays it and answers for it; transactions left between prepare and
    /// complete are finished in the background.
    pub(super) async fn load_coordinator(self: &Rc<Self>, tp: &TopicPartition) -> Result<(), String> {
        let Some(log) = Host::log(&**self, tp) else { return Ok(()) };
        if tp.topic == crate::group::store::OFFSETS_TOPIC {
            self.groups.load_partition(self, tp, &log).await?;
        } else if tp.topic == crate::txn::TXN_TOPIC {
            let (_, interrupted) = self.txns.load_partition(self, tp, &log).await?;
            for meta in interrupted {
                let shard = self.clone();
                glommio::spawn_local(async move { shard.txns.resume(&shard, meta).await }).detach();
            }
        }
        Ok(())
    }
}

/// Partitions of the coordinators' topics (`__consumer_offsets`, `__transaction_state`).
pub(super) fn is_internal(tp: &TopicPartition) -> bool {
    tp.topic == crate::group::store::OFFSETS_TOPIC || tp.topic == crate::txn::TXN_TOPIC
}

/// The group timer loop: ticks, stores what changed, and expires offsets and compacts the
/// offsets partitions now and then.
async fn run_group_timers(shard: Rc<Shard>) {
    let retention_every = Duration::from_millis(shard.config().offsets_retention_check_interval_ms.max(10));
    let mut last_expiry = Instant::now();
    let mut last_compaction = Instant::now();
    while !shard.stopping.get() {
        glommio::timer::sleep(crate::group::TICK).await;
        for group in shard.groups.consumer_tick(&shard) {
            let shard = shard.clone();
            glommio::spawn_local(async move {
                if let Err(e) = shard.groups.persist_consumer(&shard, &group).await {
                    eprintln!("sluice: group {group:?}: storing the consumer group failed: {e}");
                }
            })
            .detach();
        }
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
