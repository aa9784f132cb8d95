//! The controller's work, on shard 0: topic creation, growth and deletion (every shard then
//! learns of it and opens or deletes the partitions it owns), and producer ids handed out in
//! blocks reserved on disk. Any shard asks through `Shard::controller` or
//! `Shard::allocate_producer_id`.

use super::ops::{self, Op, ShardOp};
use super::Shard;
use crate::errors;
use crate::log::checkpoint;
use crate::log::TopicPartition;
use crate::topics::{self, TopicId, TopicInfo};
use std::collections::BTreeMap;
use std::rc::Rc;

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
        if next >= end {
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

    /// Runs a topic operation on shard 0, the controller (any shard may call).
    pub async fn controller<T: ShardOp<Reply = ops::TopicResult>>(self: &Rc<Self>, op: T) -> ops::TopicResult
    where
        Op: From<(T, glommio::channels::oneshot::SharedSender<ops::TopicResult>)>,
    {
        self.invoke(0, op).await.unwrap_or_else(|e| Err((errors::KAFKA_STORAGE_ERROR, e)))
    }

    /// Creates a topic; on shard 0 (see [`Shard::controller`]).
    pub(super) async fn create_topic(
        self: &Rc<Self>,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<TopicInfo, (i16, String)> {
        topics::validate_topic_name(name).map_err(|e| (errors::INVALID_TOPIC_EXCEPTION, e))?;
        crate::topic_config::validate(&self.config().log, &configs).map_err(|e| (crate::errors::INVALID_CONFIG, e))?;
        if partitions < 1 {
            return Err((errors::INVALID_PARTITIONS, "number of partitions must be at least 1".into()));
        }
        let _permit =
            self.controller.acquire_permit(1).await.map_err(|_| (errors::KAFKA_STORAGE_ERROR, "closed".into()))?;
        if let Some(existing) = self.registry.borrow().get(name) {
            return Err((errors::TOPIC_ALREADY_EXISTS, format!("topic {:?} already exists", existing.name)));
        }
        crate::topic_config::write(&self.setup.data_dir, name, &configs)
            .map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        let info = TopicInfo { name: name.to_string(), id: TopicId::random(), partitions, configs };
        self.place_new_partitions(name, 0, partitions).await.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        self.broadcast_topic(&info).await.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        Ok(info)
    }

    /// CreatePartitions: grows a topic; a count at or below the current one is refused, as
    /// Kafka does (partitions are never removed: keys would move).
    pub(super) async fn grow_topic(self: &Rc<Self>, name: &str, partitions: i32) -> Result<TopicInfo, (i16, String)> {
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
        self.place_new_partitions(name, info.partitions, partitions - info.partitions)
            .await
            .map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        info.partitions = partitions;
        self.broadcast_topic(&info).await.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        Ok(info)
    }

    /// DeleteTopics: every shard forgets the topic and deletes its partition directories.
    pub(super) async fn delete_topic(self: &Rc<Self>, name: &str) -> Result<TopicInfo, (i16, String)> {
        let _permit =
            self.controller.acquire_permit(1).await.map_err(|_| (errors::KAFKA_STORAGE_ERROR, "closed".into()))?;
        let Some(info) = self.registry.borrow().get(name).cloned() else {
            return Err((errors::UNKNOWN_TOPIC_OR_PARTITION, format!("topic {name:?} does not exist")));
        };
        self.apply_delete(name).await.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        crate::topic_config::write(&self.setup.data_dir, name, &BTreeMap::new())
            .map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        let others = self.invoke_each(|s| s != self.id, || ops::ApplyDelete { name: name.to_string() }).await;
        for result in others.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))? {
            result.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        }
        self.unplace_topic(name).await.map_err(|e| (errors::KAFKA_STORAGE_ERROR, e))?;
        Ok(info)
    }

    /// Forgets a topic and deletes the directories of the partitions this shard owns.
    /// Fetches in flight keep their descriptors and finish; the files go with the last one.
    pub async fn apply_delete(&self, name: &str) -> Result<(), String> {
        self.registry.borrow_mut().remove(name);
        self.placement.borrow_mut().remove_topic(name);
        let owned: Vec<TopicPartition> = self.logs.borrow().keys().filter(|tp| tp.topic == name).cloned().collect();
        for tp in owned {
            self.logs.borrow_mut().remove(&tp);
            self.load.borrow_mut().forget(&tp);
            let dir = self.setup.data_dir.join(tp.dir_name());
            std::fs::remove_dir_all(&dir).map_err(|e| format!("deleting {}: {e}", dir.display()))?;
        }
        Ok(())
    }

    /// Every shard (this one first) records the topic and opens its partitions.
    async fn broadcast_topic(self: &Rc<Self>, info: &TopicInfo) -> Result<(), String> {
        self.invoke_each(|_| true, || ops::ApplyTopic(info.clone())).await?.into_iter().collect()
    }

    /// Records a topic in this shard's registry and opens the partitions this shard owns.
    pub async fn apply_topic(&self, info: TopicInfo) -> Result<(), String> {
        self.registry.borrow_mut().upsert(info.clone());
        for p in 0..info.partitions {
            let tp = TopicPartition::new(info.name.clone(), p);
            if self.owner(&tp) == self.id && self.log(&tp).is_none() {
                self.open_partition(tp, info.id).await.map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}
