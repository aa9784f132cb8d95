//! The controller's work, on shard 0: topic creation, growth and deletion (every shard then
//! learns of it and opens or deletes the partitions it owns), and producer ids handed out in
//! blocks reserved on disk. Any shard asks through `Shard::controller` or
//! `Shard::allocate_producer_id`.

use super::ops::{self, Op, ShardOp};
use super::Shard;
use crate::config::{self, ConfigChange};
use crate::errors;
use crate::log::checkpoint;
use crate::log::TopicPartition;
use crate::topics::{self, TopicId, TopicInfo};
use std::collections::BTreeMap;
use std::rc::Rc;

/// How long a topic change through the metadata quorum may take to commit and apply here.
const CLUSTER_CHANGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Producer ids reserved on disk at a time (a restart skips what was left of a block).
const PRODUCER_ID_BLOCK: i64 = 1000;
/// The file on shard 0 that holds the end of the last reserved block.
pub const PRODUCER_ID_BLOCK_FILE: &str = "producer_id_block";

impl Shard {
    /// A producer id never handed out before (any shard may call; shard 0 allocates).
    pub async fn allocate_producer_id(self: &Rc<Self>) -> Result<i64, String> {
        self.invoke(0, ops::AllocateProducerId).await?
    }

    /// Shard 0: the next producer id, reserving a new block on disk when one is used up.
    pub(super) async fn allocate_producer_id_local(&self) -> Result<i64, String> {
        let _one = self.producer_id_block.acquire_permit(1).await.map_err(|_| "closed".to_string())?;
        let (next, end) = self.producer_ids.get();
        let quorum = self.quorum.borrow().clone();
        if let (true, Some(quorum)) = (next >= end, quorum) {
            // In a cluster the blocks come from the metadata log, so no two brokers hand
            // out the same id (a restart asks for a new block: the rest of the old is lost).
            let (start, end) = quorum.reserve_producer_ids(PRODUCER_ID_BLOCK).await?;
            self.producer_ids.set((start, end));
        } else if next >= end {
            let new_end = next + PRODUCER_ID_BLOCK;
            let text = format!("{new_end}\n").into_bytes();
            checkpoint::write_atomic(&self.setup.data_dir, PRODUCER_ID_BLOCK_FILE, text)
                .await
                .map_err(|e| format!("reserving producer ids: {e}"))?;
            self.producer_ids.set((next, new_end));
        }
        let (next, end) = self.producer_ids.get();
        self.producer_ids.set((next + 1, end));
        Ok(next)
    }

    /// Runs a topic or config operation on shard 0, the controller (any shard may call).
    pub async fn controller<T, R>(self: &Rc<Self>, op: T) -> Result<R, (i16, String)>
    where
        T: ShardOp<Reply = Result<R, (i16, String)>>,
        R: Send + 'static,
        Op: From<(T, glommio::channels::oneshot::SharedSender<T::Reply>)>,
    {
        self.invoke(0, op).await.unwrap_or_else(|e| Err((errors::KAFKA_STORAGE_ERROR, e)))
    }

    /// Creates a topic; on shard 0 (see [`Shard::controller`]).
    pub(super) async fn create_topic(
        self: &Rc<Self>,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> Result<TopicInfo, (i16, String)> {
        topics::validate_topic_name(name).map_err(|e| (errors::INVALID_TOPIC_EXCEPTION, e))?;
        crate::topic_config::validate(&self.config().log, &configs).map_err(|e| (crate::errors::INVALID_CONFIG, e))?;
        if partitions < 1 {
            return Err((errors::INVALID_PARTITIONS, "number of partitions must be at least 1".into()));
        }
        let quorum = self.quorum.borrow().clone();
        if let Some(quorum) = quorum {
            let rf = if replication_factor < 1 { self.config().default_replication_factor } else { replication_factor };
            return self.create_cluster_topic(&quorum, name, partitions, rf.max(1) as usize, configs).await;
        }
        let _permit =
            self.controller.acquire_permit(1).await.map_err(|_| (errors::KAFKA_STORAGE_ERROR, "closed".into()))?;
        if let Some(existing) = self.registry.borrow().get(name) {
            return Err((errors::TOPIC_ALREADY_EXISTS, format!("topic {:?} already exists", existing.name)));
        }
        // One descriptor per partition (its active segment's `.log`), kept out of the reserve.
        crate::descriptors::room_for(partitions as usize, &format!("topic {name:?} with {partitions} partitions"))
            .map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        crate::topic_config::write(&self.setup.data_dir, name, &configs)
            .map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        let id = TopicId::random();
        let info = TopicInfo { name: name.to_string(), id, partitions, configs, ..Default::default() };
        let created = match self.place_new_partitions(name, 0, partitions).await {
            Ok(()) => self.broadcast_topic(&info).await,
            Err(e) => Err(e),
        };
        if let Err(e) = created {
            self.undo_partitions(name, 0, partitions).await;
            return Err((errors::KAFKA_STORAGE_ERROR, format!("creating topic {name:?}: {e} (nothing was kept)")));
        }
        Ok(info)
    }

    /// A creation (`from` 0) or a growth (`from`: the old count) that failed part-way (a
    /// shard could not open its partitions: descriptors, disk) is taken back everywhere, so
    /// that no shard's registry, placement or data dir keeps a trace of partitions `from..to`
    /// and every shard answers Metadata alike: each shard forgets them and deletes what it
    /// opened, then any partition directory left half made goes, then the placement (and for
    /// a creation the configs). Best effort: what cannot be undone is logged.
    async fn undo_partitions(self: &Rc<Self>, name: &str, from: i32, to: i32) {
        let forgotten = self.invoke_each(|_| true, || ops::ApplyDelete { name: name.to_string(), from }).await;
        let mut trouble: Vec<String> = match forgotten {
            Ok(results) => results.into_iter().filter_map(Result::err).collect(),
            Err(e) => vec![e],
        };
        for p in from..to {
            let dir = self.setup.data_dir.join(TopicPartition::new(name.to_string(), p).dir_name());
            // Only a directory: a file of that name was there before us (and may be why the
            // creation failed); it is not ours to remove.
            if dir.is_dir() {
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    trouble.push(format!("deleting {}: {e}", dir.display()));
                }
            }
        }
        if from == 0 {
            if let Err(e) = crate::topic_config::write(&self.setup.data_dir, name, &BTreeMap::new()) {
                trouble.push(e);
            }
        }
        let table = self.placement.borrow().clone();
        if let Err(e) = table.persist(&self.setup.data_dir).await {
            trouble.push(e);
        }
        for t in trouble {
            eprintln!("sluice: undoing partitions {from}..{to} of topic {name:?}: {t}");
        }
    }

    /// A topic of a cluster: placed on the live brokers (partition p on the p-th of them,
    /// from a random start, as Kafka spreads leaders) and committed through the metadata
    /// quorum; every node then opens the partitions it hosts (`apply_cluster_topic`).
    /// Returns once this node has it. The first topic of a name committed stands.
    async fn create_cluster_topic(
        self: &Rc<Self>,
        quorum: &Rc<crate::quorum::Quorum>,
        name: &str,
        partitions: i32,
        replication_factor: usize,
        configs: BTreeMap<String, String>,
    ) -> Result<TopicInfo, (i16, String)> {
        let exists = || (errors::TOPIC_ALREADY_EXISTS, format!("topic {name:?} already exists"));
        // A node just started knows the topics only once it has replayed the metadata log;
        // until then it cannot tell (retriable: a client asks again).
        quorum.until_caught_up(crate::quorum::CATCH_UP_WAIT).await.map_err(|e| (errors::REQUEST_TIMED_OUT, e))?;
        if quorum.topic(name).is_some() || self.registry.borrow().get(name).is_some() {
            return Err(exists());
        }
        let live = quorum.live_brokers();
        if live.is_empty() {
            return Err((errors::INVALID_REPLICATION_FACTOR, "no broker of the cluster is registered and live".into()));
        }
        if replication_factor > live.len() {
            let n = live.len();
            let msg = format!("replication factor {replication_factor} exceeds the {n} live brokers");
            return Err((errors::INVALID_REPLICATION_FACTOR, msg));
        }
        let id = TopicId::random();
        let start = (id.0 % live.len() as u128) as usize;
        // Partition p: the live brokers from the (start + p)-th on, in turn; the first leads.
        let replicas: Vec<Vec<i32>> = (0..partitions as usize)
            .map(|p| (0..replication_factor).map(|r| live[(start + p + r) % live.len()]).collect())
            .collect();
        let nodes: Vec<i32> = replicas.iter().map(|r| r[0]).collect();
        let here = replicas.iter().filter(|r| r.contains(&quorum.node_id())).count();
        crate::descriptors::room_for(here, &format!("{here} partitions of topic {name:?}"))
            .map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        let record = crate::quorum::Record::CreateTopic {
            name: name.to_string(),
            id: id.0,
            nodes: nodes.clone(),
            configs: configs.clone(),
            replicas: replicas.clone(),
        };
        quorum.propose(record, CLUSTER_CHANGE_TIMEOUT).await.map_err(|e| (errors::REQUEST_TIMED_OUT, e))?;
        let info = TopicInfo { name: name.to_string(), id, partitions, configs, nodes, replicas, ..Default::default() };
        // Done when this node has opened it, or when another topic of that name won.
        let what = format!("topic {name:?}");
        let ours = |s: &Shard| s.registry.borrow().get(name).is_some_and(|t| t.id == id && t.nodes == info.nodes);
        self.until_applied(&what, |s| ours(s) || quorum.topic(name).is_some_and(|t| t.id != id.0)).await?;
        if !ours(self) {
            return Err(exists());
        }
        Ok(info)
    }

    /// Acts on a topic record of the metadata log (shard 0, in log order; again for every
    /// record at each start, so it is idempotent): writes the topic's configs, places its
    /// partitions on this node's shards and has each shard open those it owns and this node
    /// hosts. A topic this node had from before it joined a cluster is left as it is.
    pub async fn apply_cluster_topic(self: &Rc<Self>, info: TopicInfo) -> Result<(), String> {
        let _permit = self.controller.acquire_permit(1).await.map_err(|_| "closed".to_string())?;
        let existing = self.registry.borrow().get(&info.name).cloned();
        if let Some(old) = &existing {
            if old.id != info.id {
                return Err(format!("topic {:?} exists here with another id; the cluster's is not opened", info.name));
            }
            if *old == info {
                return Ok(());
            }
        }
        // Leaders and in-sync replicas change far more often than configs.
        if existing.as_ref().is_none_or(|old| old.configs != info.configs) {
            crate::topic_config::write(&self.setup.data_dir, &info.name, &info.configs)?;
        }
        let placed = existing.as_ref().map_or(0, |old| old.partitions);
        if info.partitions > placed {
            self.place_new_partitions(&info.name, placed, info.partitions - placed).await?;
        }
        self.broadcast_topic(&info).await
    }

    /// Acts on a topic deletion of the metadata log (shard 0): the topic of that id goes
    /// from every shard, with its partitions' files.
    pub async fn apply_cluster_delete(self: &Rc<Self>, name: &str, id: TopicId) -> Result<(), String> {
        let _permit = self.controller.acquire_permit(1).await.map_err(|_| "closed".to_string())?;
        if self.registry.borrow().get(name).is_none_or(|t| t.id != id) {
            return Ok(());
        }
        self.delete_topic_here(name).await.map(|_| ()).map_err(|(_, e)| e)
    }

    /// CreatePartitions: grows a topic; a count at or below the current one is refused, as
    /// Kafka does (partitions are never removed: keys would move).
    pub(super) async fn grow_topic(self: &Rc<Self>, name: &str, partitions: i32) -> Result<TopicInfo, (i16, String)> {
        let quorum = self.quorum.borrow().clone();
        if let Some(quorum) = quorum {
            return self.grow_cluster_topic(&quorum, name, partitions).await;
        }
        let _permit =
            self.controller.acquire_permit(1).await.map_err(|_| (errors::KAFKA_STORAGE_ERROR, "closed".into()))?;
        let current = self.registry.borrow().get(name).cloned();
        let Some(mut info) = current else {
            return Err((errors::UNKNOWN_TOPIC_OR_PARTITION, format!("topic {name:?} does not exist")));
        };
        if partitions <= info.partitions {
            let msg = format!("topic {name:?} has {} partitions; the count can only grow", info.partitions);
            return Err((errors::INVALID_PARTITIONS, msg));
        }
        let more = (partitions - info.partitions) as usize;
        crate::descriptors::room_for(more, &format!("{more} more partitions of topic {name:?}"))
            .map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        let old = info.partitions;
        info.partitions = partitions;
        let grown = match self.place_new_partitions(name, old, partitions - old).await {
            Ok(()) => self.broadcast_topic(&info).await,
            Err(e) => Err(e),
        };
        if let Err(e) = grown {
            self.undo_partitions(name, old, partitions).await;
            let msg = format!("adding partitions {old}..{partitions} to topic {name:?}: {e} (nothing was kept)");
            return Err((errors::KAFKA_STORAGE_ERROR, msg));
        }
        Ok(info)
    }

    /// DeleteTopics: every shard forgets the topic and deletes its partition directories; in
    /// a cluster, on every node, through the metadata quorum.
    pub(super) async fn delete_topic(self: &Rc<Self>, name: &str) -> Result<TopicInfo, (i16, String)> {
        let quorum = self.quorum.borrow().clone();
        if let Some(quorum) = quorum {
            return self.delete_cluster_topic(&quorum, name).await;
        }
        let _permit =
            self.controller.acquire_permit(1).await.map_err(|_| (errors::KAFKA_STORAGE_ERROR, "closed".into()))?;
        self.delete_topic_here(name).await
    }

    async fn delete_cluster_topic(
        self: &Rc<Self>,
        quorum: &Rc<crate::quorum::Quorum>,
        name: &str,
    ) -> Result<TopicInfo, (i16, String)> {
        let (Some(info), Some(record)) = (self.registry.borrow().get(name).cloned(), quorum.topic(name)) else {
            return Err((errors::UNKNOWN_TOPIC_OR_PARTITION, format!("topic {name:?} does not exist")));
        };
        let delete = crate::quorum::Record::DeleteTopic { name: name.to_string(), id: record.id };
        quorum.propose(delete, CLUSTER_CHANGE_TIMEOUT).await.map_err(|e| (errors::REQUEST_TIMED_OUT, e))?;
        let what = format!("the deletion of topic {name:?}");
        self.until_applied(&what, |s| s.registry.borrow().get(name).is_none_or(|t| t.id.0 != record.id)).await?;
        Ok(info)
    }

    /// Deletes topic `name` from every shard of this node (the controller permit held).
    async fn delete_topic_here(self: &Rc<Self>, name: &str) -> Result<TopicInfo, (i16, String)> {
        let Some(info) = self.registry.borrow().get(name).cloned() else {
            return Err((errors::UNKNOWN_TOPIC_OR_PARTITION, format!("topic {name:?} does not exist")));
        };
        self.apply_delete(name, 0).await.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        crate::topic_config::write(&self.setup.data_dir, name, &BTreeMap::new())
            .map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        let others = self.invoke_each(|s| s != self.id, || ops::ApplyDelete { name: name.to_string(), from: 0 }).await;
        for result in others.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))? {
            result.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        }
        self.unplace_topic(name).await.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        Ok(info)
    }

    /// Forgets a topic's partitions from `from` on (0: the topic) and deletes the directories
    /// of those this shard owns. Fetches in flight keep their descriptors and finish; the
    /// files go with the last one.
    pub async fn apply_delete(&self, name: &str, from: i32) -> Result<(), String> {
        let count = self.registry.borrow().get(name).map_or(0, |t| t.partitions);
        let unopened: Vec<std::path::PathBuf> = (from..count)
            .map(|p| TopicPartition::new(name, p))
            .filter(|tp| self.owner(tp) == self.id && self.log(tp).is_none())
            .map(|tp| self.setup.data_dir.join(tp.dir_name()))
            .collect();
        if from == 0 {
            self.registry.borrow_mut().remove(name);
        } else {
            let kept = self.registry.borrow().get(name).cloned();
            if let Some(mut info) = kept {
                info.partitions = info.partitions.min(from);
                self.registry.borrow_mut().upsert(info);
            }
        }
        self.placement.borrow_mut().remove_partitions_from(name, from);
        let owned: Vec<TopicPartition> =
            self.logs.borrow().keys().filter(|tp| tp.topic == name && tp.partition >= from).cloned().collect();
        for tp in owned {
            self.drop_partition(&tp)?;
        }
        // Copies this shard owns but does not have open (closed as strays) go too.
        for dir in unopened.into_iter().filter(|d| d.is_dir()) {
            std::fs::remove_dir_all(&dir).map_err(|e| format!("deleting {}: {e}", dir.display()))?;
        }
        Ok(())
    }

    /// Forgets partition `tp` on this shard (it stays in the registry) and deletes its
    /// directory: its topic is gone, or this node is no longer one of its replicas.
    fn drop_partition(&self, tp: &TopicPartition) -> Result<(), String> {
        self.close_stray(tp);
        let dir = self.setup.data_dir.join(tp.dir_name());
        std::fs::remove_dir_all(&dir).map_err(|e| format!("deleting {}: {e}", dir.display()))
    }

    /// Once this node has caught up with the metadata log after its start (shard 0): the
    /// copies it held of partitions reassigned away while it was down, which the records it
    /// replayed first could not tell apart from copies newer than them, are deleted.
    pub async fn delete_strays(self: &Rc<Self>) -> Result<(), String> {
        let _permit = self.controller.acquire_permit(1).await.map_err(|_| "closed".to_string())?;
        let Some(quorum) = self.quorum.borrow().clone() else { return Ok(()) };
        let node = self.config().node_id;
        let stray = |t: &TopicInfo| {
            (0..t.partitions).any(|p| {
                !t.replicas_of(p, node).contains(&node)
                    && self.setup.data_dir.join(TopicPartition::new(t.name.clone(), p).dir_name()).is_dir()
            })
        };
        let topics: Vec<TopicInfo> = self.registry.borrow().topics().cloned().collect();
        // Topics with a copy here of a partition this node no longer replicates, whose latest
        // record this node has acted on (the others' records are still to be acted on, and
        // do it then).
        for info in topics.iter().filter(|t| quorum.topic(&t.name).is_some_and(|q| q.replicas == t.replicas)) {
            if stray(info) {
                self.broadcast_topic(info).await?;
            }
        }
        Ok(())
    }

    /// Stops serving and copying partition `tp` here; its files stay.
    fn close_stray(&self, tp: &TopicPartition) {
        self.stop_replica_fetcher(tp);
        if let Some(log) = self.logs.borrow_mut().remove(tp) {
            log.stop_cleaning();
        }
        self.load.borrow_mut().forget(tp);
    }

    /// Every shard (this one first) records the topic and opens its partitions.
    async fn broadcast_topic(self: &Rc<Self>, info: &TopicInfo) -> Result<(), String> {
        // A record replayed at a start may be older than this node's copies (a replica added
        // since): those are deleted only by the latest state of a caught-up metadata log.
        let quorum = self.quorum.borrow().clone();
        let delete_strays =
            quorum.is_some_and(|q| q.caught_up() && q.topic(&info.name).is_some_and(|t| t.replicas == info.replicas));
        let op = || ops::ApplyTopic { info: info.clone(), delete_strays };
        self.invoke_each(|_| true, op).await?.into_iter().collect()
    }

    /// AlterConfigs / IncrementalAlterConfigs of a topic, on shard 0: the new set is worked
    /// out and validated whole (INVALID_CONFIG names the problem; nothing changes), then
    /// written to `topic-configs/`, then every shard takes it (its registry copy and the
    /// log settings of the partitions it has open). `validate_only` stops after validating.
    pub(super) async fn alter_topic_configs(
        self: &Rc<Self>,
        name: &str,
        change: ConfigChange,
        validate_only: bool,
    ) -> Result<(), (i16, String)> {
        let permit =
            self.controller.acquire_permit(1).await.map_err(|_| (errors::KAFKA_STORAGE_ERROR, "closed".into()))?;
        let Some(mut info) = self.registry.borrow().get(name).cloned() else {
            return Err((errors::UNKNOWN_TOPIC_OR_PARTITION, format!("topic {name:?} does not exist")));
        };
        if crate::partition::is_internal(name) {
            let msg = format!("the configs of internal topic {name} are the node's and cannot be altered");
            return Err((errors::INVALID_CONFIG, msg));
        }
        let configs = change.apply(&info.configs, &crate::topic_config::SCHEMA)?;
        crate::topic_config::validate(&self.config().log, &configs).map_err(|e| (errors::INVALID_CONFIG, e))?;
        if validate_only || configs == info.configs {
            return Ok(());
        }
        let quorum = self.quorum.borrow().clone();
        if let Some(quorum) = quorum {
            // Every node takes the new set as the record applies (`apply_cluster_topic`).
            drop(permit);
            let record = crate::quorum::Record::SetTopicConfigs {
                name: name.to_string(),
                id: info.id.0,
                configs: configs.clone(),
            };
            quorum.propose(record, CLUSTER_CHANGE_TIMEOUT).await.map_err(|e| (errors::REQUEST_TIMED_OUT, e))?;
            let what = format!("the configs of topic {name:?}");
            return self
                .until_applied(&what, |s| s.registry.borrow().get(name).is_none_or(|t| t.configs == configs))
                .await;
        }
        crate::topic_config::write(&self.setup.data_dir, name, &configs)
            .map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        info.configs = configs;
        self.broadcast_topic(&info).await.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))
    }

    /// After a topic change committed through the metadata quorum: waits until this node has
    /// applied it (`done`), and for the apply under way to finish (it holds the controller
    /// permit until every shard has taken the change).
    async fn until_applied(self: &Rc<Self>, what: &str, done: impl Fn(&Shard) -> bool) -> Result<(), (i16, String)> {
        let deadline = std::time::Instant::now() + CLUSTER_CHANGE_TIMEOUT;
        while !done(self) {
            if std::time::Instant::now() >= deadline {
                let msg = format!("{what}: committed, but not applied here within {CLUSTER_CHANGE_TIMEOUT:?}");
                return Err((errors::REQUEST_TIMED_OUT, msg));
            }
            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
        }
        drop(self.controller.acquire_permit(1).await);
        Ok(())
    }

    /// CreatePartitions in a cluster: the new partitions go to the live brokers after the
    /// node of the topic's last partition, in turn, through the metadata quorum.
    async fn grow_cluster_topic(
        self: &Rc<Self>,
        quorum: &Rc<crate::quorum::Quorum>,
        name: &str,
        partitions: i32,
    ) -> Result<TopicInfo, (i16, String)> {
        quorum.until_caught_up(crate::quorum::CATCH_UP_WAIT).await.map_err(|e| (errors::REQUEST_TIMED_OUT, e))?;
        let Some(record) = quorum.topic(name) else {
            return Err((errors::UNKNOWN_TOPIC_OR_PARTITION, format!("topic {name:?} does not exist")));
        };
        let current = record.nodes.len() as i32;
        if partitions <= current {
            let msg = format!("topic {name:?} has {current} partitions; the count can only grow");
            return Err((errors::INVALID_PARTITIONS, msg));
        }
        let live = quorum.live_brokers();
        if live.is_empty() {
            return Err((errors::INVALID_REPLICATION_FACTOR, "no broker of the cluster is registered and live".into()));
        }
        // The replication factor of partition 0 (once any move of it ends).
        let rf = if record.nodes.is_empty() { 1 } else { record.target_of(0).len().max(1) };
        if rf > live.len() {
            let msg = format!("the topic's {rf} replicas per partition exceed the {} live brokers", live.len());
            return Err((errors::INVALID_REPLICATION_FACTOR, msg));
        }
        let start = record.nodes.last().and_then(|l| live.iter().position(|b| b == l)).map_or(0, |i| i + 1);
        let replicas: Vec<Vec<i32>> = (0..(partitions - current) as usize)
            .map(|i| (0..rf).map(|r| live[(start + i + r) % live.len()]).collect())
            .collect();
        let nodes: Vec<i32> = replicas.iter().map(|r| r[0]).collect();
        let here = replicas.iter().filter(|r| r.contains(&quorum.node_id())).count();
        let replicas = if rf > 1 { replicas } else { Vec::new() };
        crate::descriptors::room_for(here, &format!("{here} more partitions of topic {name:?}"))
            .map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        let grow = crate::quorum::Record::GrowTopic { name: name.to_string(), id: record.id, nodes, replicas };
        quorum.propose(grow, CLUSTER_CHANGE_TIMEOUT).await.map_err(|e| (errors::REQUEST_TIMED_OUT, e))?;
        let what = format!("partitions {current}..{partitions} of topic {name:?}");
        self.until_applied(&what, |s| s.registry.borrow().get(name).is_none_or(|t| t.partitions >= partitions)).await?;
        self.registry
            .borrow()
            .get(name)
            .cloned()
            .ok_or_else(|| (errors::UNKNOWN_TOPIC_OR_PARTITION, format!("topic {name:?} was deleted meanwhile")))
    }

    /// AlterConfigs / IncrementalAlterConfigs of the broker, on shard 0: `per_broker` is
    /// this broker's own layer (resource name = node id), otherwise the cluster-wide
    /// default (resource name ""). The settings with the new layer are validated whole —
    /// every name dynamic, every value valid, every topic's overrides still coherent
    /// (INVALID_REQUEST, as Kafka answers for broker configs, names the problem; nothing
    /// changes) — then the layer is written to `broker-configs/` and every shard puts the
    /// result in force. `validate_only` stops after validating.
    pub(super) async fn alter_broker_configs(
        self: &Rc<Self>,
        per_broker: bool,
        change: ConfigChange,
        validate_only: bool,
    ) -> Result<(), (i16, String)> {
        let _permit =
            self.controller.acquire_permit(1).await.map_err(|_| (errors::KAFKA_STORAGE_ERROR, "closed".into()))?;
        let current = self.config();
        let (mut default, mut broker) = (current.dynamic_default.clone(), current.dynamic_broker.clone());
        let layer = if per_broker { &mut broker } else { &mut default };
        *layer = change.apply(layer, &config::BROKER_SCHEMA)?;
        let new = self.setup.config.with_dynamic(&default, &broker).map_err(|e| (errors::INVALID_REQUEST, e))?;
        for topic in self.registry.borrow().topics() {
            if let Err(e) = crate::topic_config::log_config(&new.log, &topic.configs) {
                let msg = format!("with these settings the configs of topic {} would not hold: {e}", topic.name);
                return Err((errors::INVALID_REQUEST, msg));
            }
        }
        if validate_only || (default == current.dynamic_default && broker == current.dynamic_broker) {
            return Ok(());
        }
        let quorum = self.quorum.borrow().clone();
        if let Some(quorum) = quorum {
            // In a cluster both layers go through the metadata log (KRaft's ConfigRecords):
            // the default layer every node takes, a broker's own layer that broker.
            drop(_permit);
            let (record, what) = if per_broker {
                let (broker, configs) = (current.node_id, broker.clone());
                (crate::quorum::Record::SetBrokerConfigs { broker, configs }, "this broker's settings")
            } else {
                (crate::quorum::Record::SetClusterConfigs { configs: default.clone() }, "the cluster's broker settings")
            };
            quorum.propose(record, CLUSTER_CHANGE_TIMEOUT).await.map_err(|e| (errors::REQUEST_TIMED_OUT, e))?;
            return self
                .until_applied(what, |s| s.config().dynamic_default == default && s.config().dynamic_broker == broker)
                .await;
        }
        let (file, values) =
            if per_broker { (config::DYNAMIC_BROKER_FILE, &broker) } else { (config::DYNAMIC_DEFAULT_FILE, &default) };
        config::write_properties(&self.setup.data_dir.join(config::DYNAMIC_DIR), file, values)
            .map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        let applied = self
            .invoke_each(|_| true, || ops::ApplyBrokerConfigs { default: default.clone(), broker: broker.clone() })
            .await
            .map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        applied.into_iter().collect::<Result<(), String>>().map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))
    }

    /// Acts on the broker settings of the metadata log (shard 0): the cluster-wide default
    /// layer, or this broker's own, is written to this node's file of that layer and put in
    /// force on every shard with the other layer as it is.
    pub async fn apply_cluster_configs(
        self: &Rc<Self>,
        default: Option<BTreeMap<String, String>>,
        broker: Option<BTreeMap<String, String>>,
    ) -> Result<(), String> {
        let _permit = self.controller.acquire_permit(1).await.map_err(|_| "closed".to_string())?;
        let current = self.config();
        let dir = self.setup.data_dir.join(config::DYNAMIC_DIR);
        let mut changed = false;
        let mut take = |layer: Option<BTreeMap<String, String>>, now: &BTreeMap<String, String>, file| match layer
            .filter(|l| l != now)
        {
            Some(l) => {
                changed = true;
                config::write_properties(&dir, file, &l).map(|_| l)
            }
            None => Ok(now.clone()),
        };
        let default = take(default, &current.dynamic_default, config::DYNAMIC_DEFAULT_FILE)?;
        let broker = take(broker, &current.dynamic_broker, config::DYNAMIC_BROKER_FILE)?;
        if !changed {
            return Ok(());
        }
        let applied = self
            .invoke_each(|_| true, || ops::ApplyBrokerConfigs { default: default.clone(), broker: broker.clone() })
            .await?;
        applied.into_iter().collect()
    }

    /// Puts the static settings with these dynamic layers in force on this shard.
    pub fn apply_broker_configs(
        &self,
        default: &BTreeMap<String, String>,
        broker: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        self.set_config(self.setup.config.with_dynamic(default, broker)?)
    }

    /// Records a topic in this shard's registry (its partition count and configs), opens
    /// the partitions this shard owns and gives those already open the topic's settings.
    /// In a cluster: leads or follows each as the topic says; one this node holds and is no
    /// longer a replica of (reassigned away) is closed, and with `delete_strays` its copy is
    /// deleted, as Kafka's StopReplica does (otherwise it is left on disk, unserved).
    pub async fn apply_topic(self: &Rc<Self>, info: TopicInfo, delete_strays: bool) -> Result<(), String> {
        let changed = self.registry.borrow().get(&info.name).is_some_and(|old| old.configs != info.configs);
        self.registry.borrow_mut().upsert(info.clone());
        if changed {
            self.reconfigure_logs(Some(&info.name))?;
        }
        let internal = crate::partition::is_internal(&info.name);
        if internal {
            self.take_internal_partition_count(&info.name, info.partitions);
        }
        let node = self.config().node_id;
        for p in 0..info.partitions {
            let tp = TopicPartition::new(info.name.clone(), p);
            let replicas = info.replicas_of(p, node);
            if self.owner(&tp) != self.id {
                continue;
            }
            if !replicas.contains(&node) {
                let held =
                    self.log(&tp).is_some() || (delete_strays && self.setup.data_dir.join(tp.dir_name()).is_dir());
                if held {
                    // Reassigned away (as Kafka's StopReplica with deletion): a coordinator
                    // here lets go first (its partition is led elsewhere by now).
                    if internal {
                        self.follow_coordinator_leadership(&tp).await;
                    }
                    if delete_strays {
                        eprintln!("sluice: {tp}: this node is no longer one of its replicas; deleting its copy");
                        self.drop_partition(&tp)?;
                    } else {
                        self.close_stray(&tp);
                    }
                }
                continue;
            }
            if self.log(&tp).is_none() {
                self.open_partition(tp.clone(), info.id).await.map_err(|e| e.to_string())?;
            }
            let Some(log) = self.log(&tp) else { continue };
            let leader = info.node_of(p, node);
            if leader == node {
                self.stop_replica_fetcher(&tp);
                if replicas.len() > 1 {
                    let followers: Vec<i32> = replicas.iter().copied().filter(|&r| r != node).collect();
                    log.lead(info.epoch_of(p), &followers, &info.isr_of(p, node));
                } else {
                    log.alone();
                }
            } else {
                log.follow();
                if leader >= 0 {
                    self.start_replica_fetcher(tp.clone(), log, leader);
                } else {
                    self.stop_replica_fetcher(&tp); // no leader: nothing to copy
                }
            }
            if internal {
                self.follow_coordinator_leadership(&tp).await;
            }
        }
        Ok(())
    }

    /// A coordinators' topic of the metadata log has the partition count its creator gave
    /// it, whatever this node's setting says: the count that maps keys to partitions is the
    /// topic's (as Kafka reads it from the topic).
    fn take_internal_partition_count(&self, name: &str, partitions: i32) {
        let mut config = (*self.config()).clone();
        let count = if name == crate::group::store::OFFSETS_TOPIC {
            &mut config.offsets_topic_num_partitions
        } else {
            &mut config.transaction_state_num_partitions
        };
        if *count != partitions {
            *count = partitions;
            *self.config.borrow_mut() = Rc::new(config);
        }
    }

    /// Copies `tp` from its leader (node `leader`) with this shard's fetcher from that node
    /// (started when it is the first partition followed from there); a fetcher from another
    /// leader lets it go.
    fn start_replica_fetcher(&self, tp: TopicPartition, log: Rc<crate::log::PartitionLog>, leader: i32) {
        if self.replica_fetchers.borrow().get(&tp) == Some(&leader) {
            return;
        }
        self.stop_replica_fetcher(&tp);
        self.replica_fetchers.borrow_mut().insert(tp.clone(), leader);
        let existing = self.leader_fetchers.borrow().get(&leader).cloned();
        let fetcher = match existing {
            Some(f) => f,
            None => {
                let fetcher = Rc::new(crate::replica::Fetcher::default());
                self.leader_fetchers.borrow_mut().insert(leader, fetcher.clone());
                let view = self.setup.cluster.clone();
                let address = move || {
                    let view = crate::quorum::read_view(view.as_ref()?);
                    let b = view.brokers.into_iter().find(|b| b.id == leader && !b.fenced)?;
                    Some(format!("{}:{}", b.host, b.port))
                };
                let me = self.config().node_id;
                glommio::spawn_local(crate::replica::run(fetcher.clone(), leader, me, address)).detach();
                fetcher
            }
        };
        fetcher.add(tp, log);
    }

    fn stop_replica_fetcher(&self, tp: &TopicPartition) {
        let Some(leader) = self.replica_fetchers.borrow_mut().remove(tp) else { return };
        let fetcher = self.leader_fetchers.borrow().get(&leader).cloned();
        if fetcher.is_some_and(|f| f.remove(tp)) {
            self.leader_fetchers.borrow_mut().remove(&leader); // its last partition: it stops
        }
    }
}
