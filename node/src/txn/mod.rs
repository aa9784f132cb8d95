//! Transactions: the transaction coordinator (InitProducerId with a transactional id,
//! AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, timeouts, DescribeTransactions and
//! ListTransactions) and the markers it writes.
//!
//! Like a group, a transactional id belongs to one partition of `__transaction_state`
//! (Kafka's hash), so to the shard owning it; every state change is appended there in
//! Kafka's record format and fdatasynced before the client hears of it, and replayed on
//! start. EndTxn writes a COMMIT or ABORT marker (a control batch) to every partition of
//! the transaction — through the owning shards — and answers once they are all durable;
//! a marker in `__consumer_offsets` also settles the offsets sent to the transaction.
//! An open transaction past `transaction.timeout.ms` is aborted with the producer's epoch
//! bumped, which fences the producer that let it hang.

pub mod store;

use crate::errors;
use crate::group::store::Reader;
use crate::internal::{self, Host};
use crate::log::TopicPartition;
use glommio::sync::StaticPermit;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;
pub use store::{TxnMeta, TxnState, TXN_TOPIC};

// The transaction operations a connection's shard sends to the transactional id's
// coordinator shard, one type each; the router (`shard::ops`) gives each its reply type.

/// InitProducerId with a transactional id: (transactional id, timeout, the producer id and
/// epoch the client already has, or -1). Answers (error, producer id, epoch).
#[derive(Debug)]
pub struct Init {
    pub id: String,
    pub timeout_ms: i32,
    pub producer_id: i64,
    pub epoch: i16,
}

/// AddPartitionsToTxn (and AddOffsetsToTxn's offsets partition): one error per partition.
#[derive(Debug)]
pub struct AddPartitions {
    pub id: String,
    pub producer_id: i64,
    pub epoch: i16,
    pub parts: Vec<TopicPartition>,
}

/// EndTxn: an error code.
#[derive(Debug)]
pub struct End {
    pub id: String,
    pub producer_id: i64,
    pub epoch: i16,
    pub commit: bool,
}

/// DescribeTransactions, one transactional id.
#[derive(Debug)]
pub struct Describe {
    pub id: String,
}

/// ListTransactions on one shard: every transaction it coordinates.
#[derive(Debug)]
pub struct List;

/// One shard's transaction coordinator.
#[derive(Debug, Default)]
pub struct TxnCoordinator {
    txns: RefCell<HashMap<String, TxnMeta>>,
    /// Transactional ids with an operation under way (a second one is CONCURRENT_TRANSACTIONS).
    busy: RefCell<HashSet<String>>,
    /// Per state partition: writers hold a shared permit; compaction holds it exclusively.
    gates: crate::internal::WriteGates,
    /// The state partitions this shard coordinates (loaded, not being moved away); ids of
    /// other partitions are answered NOT_COORDINATOR, as in Kafka.
    owned: RefCell<BTreeSet<i32>>,
}

/// Marks a transactional id busy until dropped.
struct Busy<'a> {
    set: &'a RefCell<HashSet<String>>,
    id: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.set.borrow_mut().remove(&self.id);
    }
}

/// The partition of `__transaction_state` a transactional id belongs to (its coordinator is
/// the shard that owns it).
pub fn state_partition(config: &crate::config::BrokerConfig, id: &str) -> TopicPartition {
    let partitions = config.transaction_state_num_partitions;
    TopicPartition::new(TXN_TOPIC.to_string(), crate::group::store::partition_for(id, partitions))
}

impl TxnCoordinator {
    fn lock(&self, id: &str) -> Option<Busy<'_>> {
        if !self.busy.borrow_mut().insert(id.to_string()) {
            return None;
        }
        Some(Busy { set: &self.busy, id: id.to_string() })
    }

    /// Whether this shard coordinates the ids of state partition `partition` now.
    pub fn coordinates(&self, partition: i32) -> bool {
        self.owned.borrow().contains(&partition)
    }

    /// NOT_COORDINATOR unless this shard coordinates `id`'s state partition
    /// (COORDINATOR_LOAD_IN_PROGRESS while it is about to: see `Host::loading`).
    fn serving(&self, host: &Rc<impl Host>, id: &str) -> Result<(), i16> {
        let tp = state_partition(&host.config(), id);
        if self.owned.borrow().contains(&tp.partition) {
            Ok(())
        } else if host.loading(&tp) {
            Err(errors::COORDINATOR_LOAD_IN_PROGRESS)
        } else {
            Err(errors::NOT_COORDINATOR)
        }
    }

    fn get(&self, id: &str) -> Option<TxnMeta> {
        self.txns.borrow().get(id).cloned()
    }

    /// Stores `meta` durably, then makes it the state in memory.
    async fn store(&self, host: &Rc<impl Host>, meta: TxnMeta) -> Result<(), String> {
        let tp = state_partition(&host.config(), &meta.id);
        let _gate = self.gates.shared(tp.partition).await;
        let record = (store::encode_key(&meta.id), Some(store::encode_value(&meta)));
        internal::write(host, &tp, vec![record], None).await?;
        self.txns.borrow_mut().insert(meta.id.clone(), meta);
        Ok(())
    }

    pub async fn init(&self, host: &Rc<impl Host>, id: &str, timeout_ms: i32, hint: (i64, i16)) -> (i16, i64, i16) {
        if let Err(code) = self.serving(host, id) {
            return (code, -1, -1);
        }
        if timeout_ms <= 0 || timeout_ms as i64 > host.config().transaction_max_timeout_ms {
            return (errors::INVALID_TRANSACTION_TIMEOUT, -1, -1);
        }
        let Some(_busy) = self.lock(id) else {
            return (errors::CONCURRENT_TRANSACTIONS, -1, -1);
        };
        let now = crate::runtime::now_ms();
        let mut meta = match self.get(id) {
            None => match host.new_producer_id().await {
                Ok(pid) => TxnMeta::new(id, pid, -1, timeout_ms, now),
                Err(e) => {
                    eprintln!("sluice: transactional id {id:?}: no producer id: {e}");
                    return (errors::COORDINATOR_NOT_AVAILABLE, -1, -1);
                }
            },
            Some(meta) => meta,
        };
        if hint.0 >= 0 && (hint.0 != meta.producer_id || hint.1 != meta.epoch) {
            return (errors::PRODUCER_FENCED, -1, -1);
        }
        // A transaction left open (or half-finished) by the previous incarnation: abort it,
        // fencing that producer with a new epoch.
        if matches!(meta.state, TxnState::Ongoing | TxnState::PrepareAbort | TxnState::PrepareEpochFence) {
            meta.epoch = meta.epoch.saturating_add(1);
            if let Err(code) = self.finish(host, meta.clone(), false).await {
                return (code, -1, -1);
            }
            meta = self.get(id).expect("just stored");
        } else if meta.state == TxnState::PrepareCommit {
            if let Err(code) = self.finish(host, meta.clone(), true).await {
                return (code, -1, -1);
            }
            meta = self.get(id).expect("just stored");
        }
        if meta.epoch >= i16::MAX - 1 {
            match host.new_producer_id().await {
                Ok(pid) => {
                    meta.producer_id = pid;
                    meta.epoch = -1;
                }
                Err(_) => return (errors::COORDINATOR_NOT_AVAILABLE, -1, -1),
            }
        }
        meta.epoch += 1;
        meta.timeout_ms = timeout_ms;
        meta.state = TxnState::Empty;
        meta.partitions.clear();
        meta.update_ms = now;
        let (pid, epoch) = (meta.producer_id, meta.epoch);
        match self.store(host, meta).await {
            Ok(()) => (errors::NONE, pid, epoch),
            Err(e) => {
                eprintln!("sluice: transactional id {id:?}: storing its state failed: {e}");
                (errors::COORDINATOR_NOT_AVAILABLE, -1, -1)
            }
        }
    }

    fn check(meta: Option<&TxnMeta>, producer_id: i64, epoch: i16) -> Result<(), i16> {
        let Some(meta) = meta else { return Err(errors::INVALID_PRODUCER_ID_MAPPING) };
        if meta.producer_id != producer_id {
            return Err(errors::INVALID_PRODUCER_ID_MAPPING);
        }
        if epoch != meta.epoch {
            return Err(errors::PRODUCER_FENCED);
        }
        Ok(())
    }

    pub async fn add_partitions(
        &self,
        host: &Rc<impl Host>,
        id: &str,
        producer: (i64, i16),
        parts: &[TopicPartition],
    ) -> Vec<i16> {
        let all = |code| vec![code; parts.len()];
        if let Err(code) = self.serving(host, id) {
            return all(code);
        }
        let Some(_busy) = self.lock(id) else {
            return all(errors::CONCURRENT_TRANSACTIONS);
        };
        let meta = self.get(id);
        if let Err(code) = Self::check(meta.as_ref(), producer.0, producer.1) {
            return all(code);
        }
        let mut meta = meta.expect("checked");
        if matches!(meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence) {
            return all(errors::CONCURRENT_TRANSACTIONS);
        }
        let unknown: Vec<bool> = parts
            .iter()
            .map(|tp| {
                let n = host.partition_count(&tp.topic);
                tp.partition < 0 || tp.partition >= n
            })
            .collect();
        if unknown.iter().any(|u| *u) {
            return unknown
                .iter()
                .map(|u| if *u { errors::UNKNOWN_TOPIC_OR_PARTITION } else { errors::OPERATION_NOT_ATTEMPTED })
                .collect();
        }
        let now = crate::runtime::now_ms();
        let new = parts.iter().any(|tp| !meta.partitions.contains(&(tp.topic.clone(), tp.partition)));
        if meta.state == TxnState::Ongoing && !new {
            return all(errors::NONE);
        }
        if meta.state != TxnState::Ongoing {
            meta.state = TxnState::Ongoing;
            meta.start_ms = now;
            meta.partitions.clear();
        }
        meta.partitions.extend(parts.iter().map(|tp| (tp.topic.clone(), tp.partition)));
        meta.update_ms = now;
        match self.store(host, meta).await {
            Ok(()) => all(errors::NONE),
            Err(e) => {
                eprintln!("sluice: transactional id {id:?}: storing its state failed: {e}");
                all(errors::COORDINATOR_NOT_AVAILABLE)
            }
        }
    }

    pub async fn end(&self, host: &Rc<impl Host>, id: &str, producer: (i64, i16), commit: bool) -> i16 {
        if let Err(code) = self.serving(host, id) {
            return code;
        }
        let Some(_busy) = self.lock(id) else {
            return errors::CONCURRENT_TRANSACTIONS;
        };
        let meta = self.get(id);
        if let Err(code) = Self::check(meta.as_ref(), producer.0, producer.1) {
            return code;
        }
        let meta = meta.expect("checked");
        match (meta.state, commit) {
            (TxnState::Ongoing, _) => {}
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {}
            // A retry of an EndTxn that already completed.
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => return errors::NONE,
            _ => return errors::INVALID_TXN_STATE,
        }
        match self.finish(host, meta, commit).await {
            Ok(()) => errors::NONE,
            Err(code) => code,
        }
    }

    /// Prepare, markers, complete: the end of a transaction (commit or abort), each step
    /// durable before the next.
    async fn finish(&self, host: &Rc<impl Host>, mut meta: TxnMeta, commit: bool) -> Result<(), i16> {
        let store_failed = |e: String| {
            eprintln!("sluice: transactional id {:?}: storing its state failed: {e}", meta.id);
            errors::COORDINATOR_NOT_AVAILABLE
        };
        meta.state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
        meta.update_ms = crate::runtime::now_ms();
        self.store(host, meta.clone()).await.map_err(store_failed)?;
        let parts: Vec<TopicPartition> =
            meta.partitions.iter().map(|(t, p)| TopicPartition::new(t.clone(), *p)).collect();
        if let Err(e) = host.write_markers(parts, meta.producer_id, meta.epoch, commit).await {
            eprintln!("sluice: transactional id {:?}: writing markers failed: {e}", meta.id);
            return Err(errors::COORDINATOR_NOT_AVAILABLE);
        }
        meta.state = if commit { TxnState::CompleteCommit } else { TxnState::CompleteAbort };
        meta.partitions.clear();
        meta.update_ms = crate::runtime::now_ms();
        let id = meta.id.clone();
        self.store(host, meta).await.map_err(|e| {
            eprintln!("sluice: transactional id {id:?}: storing its state failed: {e}");
            errors::COORDINATOR_NOT_AVAILABLE
        })
    }

    /// Aborts open transactions past their timeout, fencing their producers (epoch + 1).
    pub async fn abort_timed_out(&self, host: &Rc<impl Host>) {
        let now = crate::runtime::now_ms();
        let due: Vec<String> = self
            .txns
            .borrow()
            .values()
            .filter(|m| m.state == TxnState::Ongoing && now.saturating_sub(m.start_ms) > m.timeout_ms as i64)
            .map(|m| m.id.clone())
            .collect();
        for id in due {
            let Some(_busy) = self.lock(&id) else { continue };
            let Some(mut meta) = self.get(&id).filter(|m| m.state == TxnState::Ongoing) else { continue };
            eprintln!(
                "sluice: transactional id {id:?}: open for over {} ms (transaction.timeout.ms): aborting it",
                meta.timeout_ms
            );
            meta.epoch = meta.epoch.saturating_add(1);
            let _ = self.finish(host, meta, false).await;
        }
    }

    /// Compacts this shard's state partitions grown past `transaction.state.log.segment.bytes`
    /// down to each transactional id's current state (see `internal`).
    pub async fn compact_if_due(&self, host: &Rc<impl Host>) {
        let limit = host.config().transaction_state_segment_bytes;
        let partitions = host.config().transaction_state_num_partitions;
        for (tp, log) in self.gates.due(host, TXN_TOPIC, limit) {
            let live = || {
                self.txns
                    .borrow()
                    .values()
                    .filter(|m| crate::group::store::partition_for(&m.id, partitions) == tp.partition)
                    .map(|m| (store::encode_key(&m.id), Some(store::encode_value(m))))
                    .collect()
            };
            if let Err(e) = self.gates.rewrite(host, &tp, &log, live).await {
                eprintln!("sluice: compacting {tp} failed: {e}");
            }
        }
    }

    /// DescribeTransactions of one id: its state, or NOT_COORDINATOR /
    /// TRANSACTIONAL_ID_NOT_FOUND.
    pub fn describe(&self, host: &Rc<impl Host>, id: &str) -> Result<TxnMeta, i16> {
        self.serving(host, id)?;
        self.get(id).ok_or(errors::TRANSACTIONAL_ID_NOT_FOUND)
    }

    pub fn list(&self) -> Vec<TxnMeta> {
        let mut out: Vec<TxnMeta> = self.txns.borrow().values().cloned().collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Replays one state partition (owned by this shard: at start, or moved here), from then
    /// on coordinates its transactional ids, and returns (records read, the transactions of
    /// that partition a stop or a move interrupted between prepare and complete).
    pub async fn load_partition(
        &self,
        host: &Rc<impl Host>,
        tp: &TopicPartition,
        log: &Rc<crate::log::PartitionLog>,
    ) -> Result<(usize, Vec<TxnMeta>), String> {
        let mut records = 0;
        internal::for_each_record(log, tp, |r| {
            if r.control {
                return;
            }
            let Some(id) = r.key.as_deref().and_then(store::decode_key) else { return };
            records += 1;
            match r.value.as_deref().map(|v| store::decode_value(&id, v)) {
                None => {
                    self.txns.borrow_mut().remove(&id);
                }
                Some(Some(meta)) => {
                    self.txns.borrow_mut().insert(id, meta);
                }
                Some(None) => eprintln!("sluice: {tp}: skipping unreadable state of transaction {id:?}"),
            }
        })
        .await?;
        let interrupted: Vec<TxnMeta> = self
            .txns
            .borrow()
            .values()
            .filter(|m| state_partition(&host.config(), &m.id) == *tp)
            .filter(|m| {
                matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence)
            })
            .cloned()
            .collect();
        self.owned.borrow_mut().insert(tp.partition);
        Ok((records, interrupted))
    }

    /// Stops coordinating the transactional ids of state partition `partition` (it moves to
    /// another shard, whose `load_partition` takes over from the log): new requests get
    /// NOT_COORDINATOR, state writes under way finish, the ids leave memory. Hold the
    /// returned permit until the partition's log is closed. A transaction caught between
    /// prepare and complete fails its next state write here (COORDINATOR_NOT_AVAILABLE,
    /// which the client retries) and is finished by the new coordinator, as after a crash.
    pub async fn unload_partition(&self, host: &Rc<impl Host>, partition: i32) -> Option<StaticPermit> {
        self.owned.borrow_mut().remove(&partition);
        let all = self.gates.exclusive(partition).await;
        self.txns.borrow_mut().retain(|id, _| state_partition(&host.config(), id).partition != partition);
        all
    }

    /// Finishes a transaction a stop interrupted (commits what was prepared to commit,
    /// aborts the rest).
    pub async fn resume(&self, host: &Rc<impl Host>, meta: TxnMeta) {
        let commit = meta.state == TxnState::PrepareCommit;
        let _busy = self.lock(&meta.id);
        let _ = self.finish(host, meta, commit).await;
    }
}

/// A state value from `Reader` primitives (used by `store`).
pub(crate) fn read_partitions(r: &mut Reader<'_>) -> Option<BTreeSet<(String, i32)>> {
    let mut out = BTreeSet::new();
    let topics = r.count(2 + 4)?;
    for _ in 0..topics {
        let topic = r.str()?;
        let n = r.count(4)?;
        for _ in 0..n {
            out.insert((topic.clone(), r.i32()?));
        }
    }
    Some(out)
}
