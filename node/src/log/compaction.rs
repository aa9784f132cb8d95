//! Log compaction's rules for one batch, as Kafka's `LogCleaner` applies them: which records
//! survive a cleaning, and what becomes of tombstones, transaction markers and aborted data.
//! Plain functions over bytes; the cleaning itself (which segments, files, the swap) is in
//! `partition/clean.rs`.
//!
//! - A record survives when it has a key and no later record in the cleaned range has the
//!   same key ([`OffsetMap`]: key → offset of its latest record). Offsets never change: a
//!   rewritten batch keeps its base offset and lastOffsetDelta, so readers see gaps.
//! - A tombstone (null value) survives like any record, and then until the batch's delete
//!   horizon (KIP-534): the first cleaning that keeps it stamps the batch with
//!   `now + delete.retention.ms` (attribute bit 6; the base timestamp holds the horizon and the
//!   records' timestamp deltas are re-based on it, so every record keeps its timestamp); a
//!   later cleaning after that time drops it. A consumer that reads the log from the start
//!   within `delete.retention.ms` of the first cleaning therefore sees every delete.
//! - Records of aborted transactions are dropped. A transaction marker stays while data of
//!   its transaction survives before it, and otherwise until its delete horizon.
//! - The last batch of a producer the log still tracks is kept as an empty, header-only batch
//!   when none of its records survive, so idempotence (its last sequence and epoch) comes
//!   back after a restart that rebuilds producer state from the log (Kafka does the same).
//!   Such a batch is written non-transactional: it carries no records, and a transactional
//!   header without data would reopen its transaction when the log is replayed.

use super::batch::{self, BatchHeader};
use super::producer::AbortedTxn;
use super::records::{self, RecordError};
use std::collections::{HashMap, HashSet};

/// Bytes an [`OffsetMap`] entry is counted at besides its key (hash-map slot, allocation).
const ENTRY_OVERHEAD_BYTES: usize = 56;

/// Key → offset of the latest record with that key in the range the map was built from,
/// within a memory budget (`log.cleaner.dedupe.buffer.size` divided between the shards).
#[derive(Debug, Default)]
pub struct OffsetMap {
    latest: HashMap<Box<[u8]>, i64>,
    bytes: usize,
}

impl OffsetMap {
    /// Records that `key`'s latest record is at `offset` (offsets arrive in order).
    pub fn put(&mut self, key: &[u8], offset: i64) {
        match self.latest.get_mut(key) {
            Some(at) => *at = (*at).max(offset),
            None => {
                self.bytes += key.len() + ENTRY_OVERHEAD_BYTES;
                self.latest.insert(key.into(), offset);
            }
        }
    }

    pub fn latest(&self, key: &[u8]) -> Option<i64> {
        self.latest.get(key).copied()
    }

    /// Memory counted so far.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    /// Average key length so far (16 bytes before any key).
    pub fn average_key_len(&self) -> usize {
        match self.latest.len() {
            0 => 16,
            n => (self.bytes - n * ENTRY_OVERHEAD_BYTES) / n,
        }
    }

    /// The most `offsets` records with keys of `key_len` bytes could add (every key new).
    pub fn estimate(offsets: i64, key_len: usize) -> usize {
        (offsets.max(0) as usize).saturating_mul(key_len + ENTRY_OVERHEAD_BYTES)
    }
}

/// Aborted transactions by producer: (first offset, marker offset) ranges.
#[derive(Debug, Default)]
pub struct Aborted(HashMap<i64, Vec<(i64, i64)>>);

impl Aborted {
    pub fn new(list: &[AbortedTxn]) -> Aborted {
        let mut by_producer: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for a in list {
            by_producer.entry(a.producer_id).or_default().push((a.first_offset, a.last_offset));
        }
        Aborted(by_producer)
    }

    /// Whether a transactional batch of `producer_id` at `offset` belongs to an aborted
    /// transaction.
    pub fn contains(&self, producer_id: i64, offset: i64) -> bool {
        self.0
            .get(&producer_id)
            .is_some_and(|ranges| ranges.iter().any(|&(first, last)| first <= offset && offset <= last))
    }
}

/// The keys of a data batch's records with their offsets, for the offset map; nothing for a
/// control batch or a batch of an aborted transaction (Kafka leaves those out too, so an
/// aborted write never hides a committed one).
pub fn batch_keys(bytes: &[u8], header: &BatchHeader, aborted: &Aborted) -> Result<Vec<(Box<[u8]>, i64)>, RecordError> {
    if header.is_control() || (header.is_transactional() && aborted.contains(header.producer_id, header.base_offset)) {
        return Ok(Vec::new());
    }
    let plain = records::plain_records(bytes, header)?;
    let mut keys = Vec::with_capacity(header.record_count.max(0) as usize);
    records::for_each_record(&plain, header, |_, r| {
        if let Some(key) = r.key {
            keys.push((key.into(), header.base_offset + r.offset_delta as i64));
        }
    })?;
    Ok(keys)
}

/// What the cleaner needs to decide a batch's fate.
pub struct Rules<'a> {
    pub map: &'a OffsetMap,
    pub aborted: &'a Aborted,
    pub now_ms: i64,
    pub delete_retention_ms: i64,
    /// Last offset of each producer's last batch, for the producers the log tracks.
    pub last_batch_of: &'a HashMap<i64, i64>,
}

/// What one cleaning pass carries from batch to batch: producers with surviving data of a
/// transaction whose marker is still to come.
#[derive(Debug, Default)]
pub struct PassState {
    open_with_data: HashSet<i64>,
}

/// A batch's fate.
#[derive(Debug, PartialEq, Eq)]
pub enum Kept {
    /// Unchanged: copy its bytes as they are.
    Whole,
    /// Rewritten: these bytes instead.
    Rewritten(Vec<u8>),
    /// Nothing of it survives.
    Dropped,
}

/// Decides what of one stored batch (`bytes`, the whole batch) survives this cleaning.
pub fn clean_batch(
    bytes: &[u8],
    header: &BatchHeader,
    rules: &Rules,
    pass: &mut PassState,
) -> Result<Kept, RecordError> {
    let horizon_passed = header.delete_horizon().is_some_and(|h| rules.now_ms >= h);
    let new_horizon = rules.now_ms.saturating_add(rules.delete_retention_ms);
    if header.is_control() {
        let data_survives = pass.open_with_data.remove(&header.producer_id);
        if !data_survives && horizon_passed {
            return Ok(Kept::Dropped);
        }
        if header.delete_horizon().is_some() {
            return Ok(Kept::Whole);
        }
        let plain = records::plain_records(bytes, header)?;
        let views = records::parse(&plain, header)?;
        return rebase(bytes, header, &views, &|_| true, Some(new_horizon)).map(Kept::Rewritten);
    }
    let is_last_of_producer =
        header.producer_id >= 0 && rules.last_batch_of.get(&header.producer_id) == Some(&header.last_offset());
    if header.is_transactional() && rules.aborted.contains(header.producer_id, header.base_offset) {
        return if is_last_of_producer { empty_batch(bytes, header).map(Kept::Rewritten) } else { Ok(Kept::Dropped) };
    }
    let plain = records::plain_records(bytes, header)?;
    let views = records::parse(&plain, header)?;
    let survives = |r: &records::RecordView| -> bool {
        let Some(key) = r.key else { return false };
        let offset = header.base_offset + r.offset_delta as i64;
        let latest = rules.map.latest(key).is_none_or(|l| offset >= l);
        latest && !(r.value_is_null && horizon_passed)
    };
    let kept = views.iter().filter(|r| survives(r)).count();
    let tombstones_kept = views.iter().any(|r| r.value_is_null && survives(r));
    if kept == 0 {
        return if is_last_of_producer { empty_batch(bytes, header).map(Kept::Rewritten) } else { Ok(Kept::Dropped) };
    }
    if header.is_transactional() {
        pass.open_with_data.insert(header.producer_id);
    }
    let needs_horizon = tombstones_kept && header.delete_horizon().is_none();
    if kept == views.len() && !needs_horizon {
        return Ok(Kept::Whole);
    }
    let horizon = if needs_horizon { Some(new_horizon) } else { header.delete_horizon() };
    rebase(bytes, header, &views, &survives, horizon).map(Kept::Rewritten)
}

/// The batch with only the records `keep` accepts, their timestamps re-based on the new
/// base timestamp (the delete horizon when `horizon` is set, else the original base).
fn rebase(
    bytes: &[u8],
    header: &BatchHeader,
    views: &[records::RecordView],
    keep: &dyn Fn(&records::RecordView) -> bool,
    horizon: Option<i64>,
) -> Result<Vec<u8>, RecordError> {
    let base = horizon.unwrap_or(header.base_timestamp);
    let mut out = Vec::with_capacity(bytes.len());
    let mut count = 0;
    for r in views.iter().filter(|r| keep(r)) {
        let timestamp = header.base_timestamp.wrapping_add(r.timestamp_delta);
        records::encode_record(&mut out, r.attributes, timestamp.wrapping_sub(base), r.offset_delta, r.tail);
        count += 1;
    }
    batch::rewrite(bytes, &out, count, base, horizon.is_some())
        .map_err(|e| RecordError::Invalid(format!("recompressing a cleaned batch failed: {e}")))
}

/// The header-only batch that keeps a producer's last sequence (see the module doc).
fn empty_batch(bytes: &[u8], header: &BatchHeader) -> Result<Vec<u8>, RecordError> {
    let mut out = batch::rewrite(bytes, &[], 0, header.base_timestamp, false)
        .map_err(|e| RecordError::Invalid(format!("rewriting a batch failed: {e}")))?;
    batch::clear_transactional(&mut out);
    Ok(out)
}
