//! Every operation one shard may ask of another, each a type with its own reply type
//! ([`ShardOp`]), and the one way to run one: [`Shard::invoke`] runs it inline when the
//! target is this shard and sends it over the mesh otherwise. [`Op`], what the mesh carries,
//! is an operation with the sender of its typed reply; nothing on either side matches on a
//! catch-all reply.

use super::{FetchOutcome, FetchPart, ProduceOutcome, ProducePart, SentRange, Shard};
use crate::group::{self, FetchedOffset, GroupView, JoinArgs, JoinResult, SyncArgs, SyncResult};
use crate::log::{OpenHint, TopicPartition};
use crate::metrics::{Metrics, PartitionStat};
use crate::topics::TopicInfo;
use crate::txn::{self, TxnMeta};
use glommio::channels::oneshot::{self, SharedSender};
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

/// An operation a shard runs for another (or for itself, inline).
pub trait ShardOp: Send + Sized + 'static {
    type Reply: Send + 'static;
    /// Runs the operation on `shard`, the shard it was sent to.
    fn run(self, shard: &Rc<Shard>) -> impl Future<Output = Self::Reply>;
}

/// What the controller (shard 0) answers topic operations with: the topic as it now is,
/// or a Kafka error code and message.
pub type TopicResult = Result<TopicInfo, (i16, String)>;

/// Declares the mesh's message enum from `Variant(OpType)` pairs, with the conversions
/// `invoke` uses and the dispatch `serve` uses.
macro_rules! ops {
    ($($(#[$doc:meta])* $name:ident($ty:ty);)*) => {
        /// An operation and the sender of its reply, as it crosses the mesh.
        pub enum Op {
            $($(#[$doc])* $name($ty, SharedSender<<$ty as ShardOp>::Reply>),)*
        }

        $(impl From<($ty, SharedSender<<$ty as ShardOp>::Reply>)> for Op {
            fn from((op, reply): ($ty, SharedSender<<$ty as ShardOp>::Reply>)) -> Op {
                Op::$name(op, reply)
            }
        })*

        impl std::fmt::Debug for Op {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $(Op::$name(op, _) => f.debug_tuple(stringify!($name)).field(op).finish(),)*
                }
            }
        }

        impl Op {
            /// Runs the operation and sends its reply (the requester may have given up,
            /// e.g. a timed-out fetch wait: nothing to do then).
            async fn run_and_reply(self, shard: &Rc<Shard>) {
                match self {
                    $(Op::$name(op, reply) => {
                        let _ = reply.send(op.run(shard).await);
                    })*
                }
            }
        }
    };
}

ops! {
    Produce(Produce);
    Fetch(Fetch);
    /// Park until any partition's log end passes its offset, or the wait elapses.
    Wait(Wait);
    ListOffsets(ListOffsets);
    DeleteRecords(DeleteRecords);
    CheckpointLogStarts(CheckpointLogStarts);
    DescribeProducers(DescribeProducers);
    /// ListOffsets v0.
    OffsetsBefore(OffsetsBefore);
    CreateTopic(CreateTopic);
    GrowTopic(GrowTopic);
    DeleteTopic(DeleteTopic);
    ApplyTopic(ApplyTopic);
    ApplyDelete(ApplyDelete);
    AlterTopicConfigs(AlterTopicConfigs);
    AlterBrokerConfigs(AlterBrokerConfigs);
    ApplyBrokerConfigs(ApplyBrokerConfigs);
    Stats(Stats);
    AllocateProducerId(AllocateProducerId);
    ExpandIsr(ExpandIsr);
    ShrinkIsr(ShrinkIsr);
    EpochEnds(EpochEnds);
    ElectLeaders(ElectLeaders);
    AlterReassignments(AlterReassignments);
    ListReassignments(ListReassignments);
    WriteMarkers(WriteMarkers);
    Close(Close);
    MoveOut(MoveOut);
    MoveIn(MoveIn);
    Place(Place);
    Join(JoinArgs);
    Sync(SyncArgs);
    Heartbeat(group::Heartbeat);
    Leave(group::Leave);
    Commit(group::Commit);
    TxnCommit(group::TxnCommit);
    FetchOffsets(group::FetchOffsets);
    DescribeGroup(group::Describe);
    ListGroups(group::List);
    DeleteGroup(group::Delete);
    DeleteOffsets(group::DeleteOffsets);
    GroupViews(group::Views);
    ConsumerHeartbeat(group::ConsumerHeartbeat);
    ConsumerDescribe(group::ConsumerDescribe);
    InitTxn(txn::Init);
    AddPartitionsToTxn(txn::AddPartitions);
    EndTxn(txn::End);
    DescribeTxn(txn::Describe);
    ListTxns(txn::List);
}

impl Shard {
    /// Runs `op` on shard `target`: inline if that is this shard, else over the mesh. An
    /// `Err` says the other shard could not be reached or dropped the request.
    pub async fn invoke<T: ShardOp>(self: &Rc<Self>, target: usize, op: T) -> Result<T::Reply, String>
    where
        Op: From<(T, SharedSender<T::Reply>)>,
    {
        if target == self.id {
            return Ok(op.run(self).await);
        }
        let (reply, receiver) = oneshot::shared();
        let peer = self.peer_of_shard[target];
        self.peers.send_to(peer, Op::from((op, reply))).await.map_err(|_| format!("shard {target} is gone"))?;
        receiver.await.map_err(|_| format!("shard {target} dropped the request"))
    }

    /// Runs `make()` on every shard `on` accepts (this one inline) and collects the replies
    /// in shard order; the first shard that cannot be reached makes it an `Err`.
    pub async fn invoke_each<T: ShardOp>(
        self: &Rc<Self>,
        on: impl Fn(usize) -> bool,
        make: impl Fn() -> T,
    ) -> Result<Vec<T::Reply>, String>
    where
        Op: From<(T, SharedSender<T::Reply>)>,
    {
        let mut out = Vec::with_capacity(self.shards());
        for s in (0..self.shards()).filter(|s| on(*s)) {
            out.push(self.invoke(s, make()).await?);
        }
        Ok(out)
    }

    /// Handles a message from another shard; counted as in flight (a clean stop waits for
    /// it), except `Close`, which is the clean stop.
    pub async fn serve(self: &Rc<Self>, op: Op) {
        if matches!(op, Op::Close(..)) {
            op.run_and_reply(self).await;
        } else {
            self.counted(op.run_and_reply(self)).await;
        }
    }
}

/// Appends each part to its (local) partition; with acks=-1 waits for the group commit.
#[derive(Debug)]
pub struct Produce {
    pub parts: Vec<ProducePart>,
    pub acks: i16,
    pub timeout_ms: i32,
}

impl ShardOp for Produce {
    type Reply = Vec<ProduceOutcome>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.produce_local(self.parts, self.acks, self.timeout_ms).await
    }
}

/// Reads each part from its partition on another shard; the ranges come back as
/// duplicated descriptors (a local fetch uses `Shard::fetch_local` and keeps the segment's
/// own file instead).
#[derive(Debug)]
pub struct Fetch {
    pub parts: Vec<FetchPart>,
}

impl ShardOp for Fetch {
    type Reply = Vec<FetchOutcome<SentRange>>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.fetch_local(&self.parts).await.into_iter().map(super::send_outcome).collect()
    }
}

#[derive(Debug)]
pub struct Wait {
    /// (partition, offset to pass, whether a follower waits: on the log end, not the high
    /// watermark).
    pub parts: Vec<(TopicPartition, i64, bool)>,
    pub wait: Duration,
}

impl ShardOp for Wait {
    type Reply = ();
    async fn run(self, shard: &Rc<Shard>) {
        shard.wait_local(&self.parts, self.wait).await
    }
}

/// (partition, timestamp or -1/-2/-3, read_committed) → (error, timestamp, offset) each.
#[derive(Debug)]
pub struct ListOffsets {
    pub parts: Vec<(TopicPartition, i64, bool)>,
}

impl ShardOp for ListOffsets {
    type Reply = Vec<(i16, i64, i64)>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.list_offsets_local(&self.parts).await
    }
}

/// OffsetForLeaderEpoch: (partition, epoch) → (error, epoch found, its end offset).
#[derive(Debug)]
pub struct EpochEnds {
    pub parts: Vec<(TopicPartition, i32)>,
}

impl ShardOp for EpochEnds {
    type Reply = Vec<(i16, i32, i64)>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        self.parts
            .iter()
            .map(|(tp, epoch)| match shard.serving_log(tp) {
                Ok(log) => {
                    let (found, end) = log.end_offset_for_epoch(*epoch);
                    (crate::errors::NONE, found, end)
                }
                Err(error) => (error, -1, -1),
            })
            .collect()
    }
}

/// DeleteRecords: (partition, offset or -1 for the high watermark) → (error, low watermark).
#[derive(Debug)]
pub struct DeleteRecords {
    pub parts: Vec<(TopicPartition, i64)>,
}

impl ShardOp for DeleteRecords {
    type Reply = Vec<(i16, i64)>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        let mut out = Vec::with_capacity(self.parts.len());
        for (tp, offset) in &self.parts {
            out.push(match shard.serving_log(tp) {
                Ok(log) => crate::partition::delete_records(&log, tp, *offset).await,
                Err(error) => (error, -1),
            });
        }
        out
    }
}

/// To shard 0: write `log-start-offset-checkpoint` with every partition's log start now (after
/// DeleteRecords, so a crash cannot bring deleted records back).
#[derive(Debug)]
pub struct CheckpointLogStarts;

impl ShardOp for CheckpointLogStarts {
    type Reply = Result<(), String>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.checkpoint_log_starts().await
    }
}

/// DescribeProducers: per partition (error, producers as `ProducerStates::active` lists them).
#[derive(Debug)]
pub struct DescribeProducers {
    pub parts: Vec<TopicPartition>,
}

impl ShardOp for DescribeProducers {
    type Reply = Vec<(i16, Vec<(i64, i16, i32, i64, i64)>)>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        self.parts
            .iter()
            .map(|tp| match shard.serving_log(tp) {
                Ok(log) => (crate::errors::NONE, log.active_producers()),
                Err(error) => (error, Vec::new()),
            })
            .collect()
    }
}

/// ListOffsets v0: (partition, timestamp or -1/-2, max number of offsets, asked by a
/// consumer) → (error, offsets newest first) each.
#[derive(Debug)]
pub struct OffsetsBefore {
    pub parts: Vec<(TopicPartition, i64, i32, bool)>,
}

impl ShardOp for OffsetsBefore {
    type Reply = Vec<(i16, Vec<i64>)>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.offsets_before_local(&self.parts)
    }
}

/// To shard 0, the controller: create a topic.
#[derive(Debug)]
pub struct CreateTopic {
    pub name: String,
    pub partitions: i32,
    /// Replicas per partition in a cluster (-1: `default.replication.factor`); a node alone
    /// has one (the API refuses more).
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

impl ShardOp for CreateTopic {
    type Reply = TopicResult;
    async fn run(self, shard: &Rc<Shard>) -> TopicResult {
        shard.create_topic(&self.name, self.partitions, self.replication_factor, self.configs).await
    }
}

/// To shard 0: grow a topic to `partitions` (never shrinks).
#[derive(Debug)]
pub struct GrowTopic {
    pub name: String,
    pub partitions: i32,
}

impl ShardOp for GrowTopic {
    type Reply = TopicResult;
    async fn run(self, shard: &Rc<Shard>) -> TopicResult {
        shard.grow_topic(&self.name, self.partitions).await
    }
}

/// To shard 0: delete a topic.
#[derive(Debug)]
pub struct DeleteTopic {
    pub name: String,
}

impl ShardOp for DeleteTopic {
    type Reply = TopicResult;
    async fn run(self, shard: &Rc<Shard>) -> TopicResult {
        shard.delete_topic(&self.name).await
    }
}

/// From the controller to every shard: the topic exists (with this many partitions); open
/// the partitions you own.
#[derive(Debug)]
pub struct ApplyTopic {
    pub info: TopicInfo,
    /// Partitions this node holds and is no longer a replica of are deleted (see
    /// `Shard::apply_topic`).
    pub delete_strays: bool,
}

impl ShardOp for ApplyTopic {
    type Reply = Result<(), String>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.apply_topic(self.info, self.delete_strays).await
    }
}

/// From the controller to every shard: forget the topic's partitions from `from` on (0: the
/// whole topic) and delete those you own.
#[derive(Debug)]
pub struct ApplyDelete {
    pub name: String,
    pub from: i32,
}

impl ShardOp for ApplyDelete {
    type Reply = Result<(), String>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.apply_delete(&self.name, self.from).await
    }
}

/// What the controller answers a config change with: done, or a Kafka error code and
/// message (nothing changed).
pub type ConfigResult = Result<(), (i16, String)>;

/// To shard 0: change a topic's configs (AlterConfigs / IncrementalAlterConfigs).
#[derive(Debug)]
pub struct AlterTopicConfigs {
    pub name: String,
    pub change: crate::config::ConfigChange,
    pub validate_only: bool,
}

impl ShardOp for AlterTopicConfigs {
    type Reply = ConfigResult;
    async fn run(self, shard: &Rc<Shard>) -> ConfigResult {
        shard.alter_topic_configs(&self.name, self.change, self.validate_only).await
    }
}

/// To shard 0: change a dynamic layer of the broker's settings (this broker's own, or the
/// cluster-wide default).
#[derive(Debug)]
pub struct AlterBrokerConfigs {
    pub per_broker: bool,
    pub change: crate::config::ConfigChange,
    pub validate_only: bool,
}

impl ShardOp for AlterBrokerConfigs {
    type Reply = ConfigResult;
    async fn run(self, shard: &Rc<Shard>) -> ConfigResult {
        shard.alter_broker_configs(self.per_broker, self.change, self.validate_only).await
    }
}

/// From the controller to every shard: the dynamic broker settings are now these layers.
#[derive(Debug)]
pub struct ApplyBrokerConfigs {
    pub default: BTreeMap<String, String>,
    pub broker: BTreeMap<String, String>,
}

impl ShardOp for ApplyBrokerConfigs {
    type Reply = Result<(), String>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.apply_broker_configs(&self.default, &self.broker)
    }
}

/// A shard's counters and its partitions' figures.
#[derive(Debug)]
pub struct Stats;

impl ShardOp for Stats {
    type Reply = (Box<Metrics>, Vec<PartitionStat>);
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        (Box::new(shard.metrics_snapshot()), shard.partition_stats())
    }
}

/// To shard 0: a new producer id.
#[derive(Debug)]
pub struct AllocateProducerId;

impl ShardOp for AllocateProducerId {
    type Reply = Result<i64, String>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.allocate_producer_id_local().await
    }
}

/// To shard 0 of a partition's leader: `replica` caught up; add it to the in-sync replicas
/// through the metadata quorum (Kafka's AlterPartition).
#[derive(Debug)]
pub struct ExpandIsr {
    pub tp: TopicPartition,
    pub replica: i32,
}

impl ShardOp for ExpandIsr {
    type Reply = Result<(), String>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        let quorum = shard.quorum.borrow().clone().ok_or("not in a cluster")?;
        quorum.expand_isr(&self.tp.topic, self.tp.partition, self.replica).await
    }
}

/// To shard 0 of a partition's leader: `lagging` fell behind for `replica.lag.time.max.ms`;
/// drop them from the in-sync replicas through the metadata quorum (AlterPartition).
#[derive(Debug)]
pub struct ShrinkIsr {
    pub tp: TopicPartition,
    pub lagging: Vec<i32>,
}

impl ShardOp for ShrinkIsr {
    type Reply = Result<(), String>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        let quorum = shard.quorum.borrow().clone().ok_or("not in a cluster")?;
        quorum.shrink_isr(&self.tp.topic, self.tp.partition, &self.lagging).await
    }
}

/// To shard 0 of a node in a cluster: ElectLeaders through the metadata quorum (see
/// `Quorum::elect_leaders`); (topic, partition, error, message) per partition.
#[derive(Debug)]
pub struct ElectLeaders {
    pub election: crate::quorum::Election,
    pub partitions: Option<Vec<(String, Vec<i32>)>>,
}

impl ShardOp for ElectLeaders {
    type Reply = Result<Vec<(String, i32, i16, Option<String>)>, String>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        let quorum = shard.quorum.borrow().clone().ok_or("not in a cluster")?;
        Ok(quorum.elect_leaders(self.election, self.partitions).await)
    }
}

/// To shard 0 of a node in a cluster: AlterPartitionReassignments through the metadata
/// quorum (see `Quorum::alter_reassignments`).
#[derive(Debug)]
pub struct AlterReassignments {
    pub partitions: Vec<(String, Vec<(i32, Option<Vec<i32>>)>)>,
    pub allow_rf_change: bool,
}

impl ShardOp for AlterReassignments {
    type Reply = Result<Vec<crate::quorum::PartitionAnswer>, String>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        let quorum = shard.quorum.borrow().clone().ok_or("not in a cluster")?;
        Ok(quorum.alter_reassignments(self.partitions, self.allow_rf_change).await)
    }
}

/// To shard 0 of a node in a cluster: the reassignments in progress, of these partitions
/// (None: all).
#[derive(Debug)]
pub struct ListReassignments(pub Option<Vec<(String, Vec<i32>)>>);

impl ShardOp for ListReassignments {
    type Reply = Result<Vec<crate::quorum::Ongoing>, String>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        let quorum = shard.quorum.borrow().clone().ok_or("not in a cluster")?;
        Ok(quorum.list_reassignments(self.0))
    }
}

/// Append a transaction marker to these partitions (owned by the receiver) and fsync.
#[derive(Debug)]
pub struct WriteMarkers {
    pub parts: Vec<TopicPartition>,
    pub producer_id: i64,
    pub epoch: i16,
    pub commit: bool,
}

impl ShardOp for WriteMarkers {
    type Reply = Result<(), String>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.write_markers_local(&self.parts, self.producer_id, self.epoch, self.commit).await
    }
}

/// Flush and close every partition (clean shutdown).
#[derive(Debug)]
pub struct Close;

impl ShardOp for Close {
    type Reply = Result<(), String>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.close_local().await
    }
}

/// From the controller to a partition's owner: stop taking requests for it, let those in
/// flight finish, close it and hand back how to reopen it (`moves`).
#[derive(Debug)]
pub struct MoveOut {
    pub tp: TopicPartition,
}

impl ShardOp for MoveOut {
    type Reply = Result<OpenHint, String>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.move_out(&self.tp).await
    }
}

/// From the controller to a partition's new owner: own it from now on and open it.
#[derive(Debug)]
pub struct MoveIn {
    pub tp: TopicPartition,
    pub hint: OpenHint,
}

impl ShardOp for MoveIn {
    type Reply = Result<(), String>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.move_in(self.tp, self.hint).await
    }
}

/// From the controller to every shard: these partitions are owned by these shards.
#[derive(Debug, Clone)]
pub struct Place(pub Vec<(TopicPartition, usize)>);

impl ShardOp for Place {
    type Reply = ();
    async fn run(self, shard: &Rc<Shard>) {
        shard.place(self.0)
    }
}

// The coordinators' operations, run by the coordinator on its shard.

impl ShardOp for JoinArgs {
    type Reply = JoinResult;
    async fn run(self, shard: &Rc<Shard>) -> JoinResult {
        shard.groups.join(shard, self).await
    }
}

impl ShardOp for SyncArgs {
    type Reply = SyncResult;
    async fn run(self, shard: &Rc<Shard>) -> SyncResult {
        shard.groups.sync(shard, self).await
    }
}

impl ShardOp for group::Heartbeat {
    type Reply = i16;
    async fn run(self, shard: &Rc<Shard>) -> i16 {
        shard.groups.heartbeat(shard, &self.0)
    }
}

impl ShardOp for group::Leave {
    type Reply = (i16, Vec<i16>);
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.groups.leave(shard, &self.group, &self.members).await
    }
}

impl ShardOp for group::Commit {
    type Reply = Vec<i16>;
    async fn run(self, shard: &Rc<Shard>) -> Vec<i16> {
        shard.groups.commit(shard, &self.member, self.retention_ms, &self.parts).await
    }
}

impl ShardOp for group::TxnCommit {
    type Reply = Vec<i16>;
    async fn run(self, shard: &Rc<Shard>) -> Vec<i16> {
        shard.groups.txn_commit(shard, &self.member, self.producer, &self.parts).await
    }
}

impl ShardOp for group::FetchOffsets {
    type Reply = (i16, Vec<FetchedOffset>);
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        let member = self.member.as_ref().map(|(id, epoch)| (id.as_str(), *epoch));
        shard.groups.fetch_offsets(shard, &self.group, self.parts.as_deref(), self.require_stable, member)
    }
}

impl ShardOp for group::Describe {
    type Reply = GroupView;
    async fn run(self, shard: &Rc<Shard>) -> GroupView {
        shard.groups.describe(shard, &self.group)
    }
}

impl ShardOp for group::List {
    type Reply = Vec<GroupView>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.groups.list(shard.id, &self.states, &self.types)
    }
}

impl ShardOp for group::Delete {
    type Reply = i16;
    async fn run(self, shard: &Rc<Shard>) -> i16 {
        shard.groups.delete(shard, &self.group).await
    }
}

impl ShardOp for group::DeleteOffsets {
    type Reply = (i16, Vec<i16>);
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.groups.delete_offsets(shard, &self.group, &self.parts).await
    }
}

impl ShardOp for group::Views {
    type Reply = Vec<GroupView>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.groups.views(shard.id)
    }
}

impl ShardOp for group::ConsumerHeartbeat {
    type Reply = group::consumer::HeartbeatResult;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.groups.consumer_heartbeat(shard, self.0).await
    }
}

impl ShardOp for group::ConsumerDescribe {
    type Reply = group::consumer_coordinator::Described;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.groups.consumer_describe(shard, &self.group)
    }
}

impl ShardOp for txn::Init {
    type Reply = (i16, i64, i16);
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.txns.init(shard, &self.id, self.timeout_ms, (self.producer_id, self.epoch)).await
    }
}

impl ShardOp for txn::AddPartitions {
    type Reply = Vec<i16>;
    async fn run(self, shard: &Rc<Shard>) -> Vec<i16> {
        shard.txns.add_partitions(shard, &self.id, (self.producer_id, self.epoch), &self.parts).await
    }
}

impl ShardOp for txn::End {
    type Reply = i16;
    async fn run(self, shard: &Rc<Shard>) -> i16 {
        shard.txns.end(shard, &self.id, (self.producer_id, self.epoch), self.commit).await
    }
}

impl ShardOp for txn::Describe {
    type Reply = Result<TxnMeta, i16>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.txns.describe(shard, &self.id)
    }
}

impl ShardOp for txn::List {
    type Reply = Vec<TxnMeta>;
    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        shard.txns.list()
    }
}
