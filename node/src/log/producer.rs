//! Idempotent producers: per partition, each producer id's epoch and the metadata of its
//! last five batches (Kafka's `ProducerStateManager`). A batch whose sequence numbers repeat
//! one of those five is a retry: it is answered with the original offsets and not written.
//! A gap or a reordering is OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch is
//! INVALID_PRODUCER_EPOCH; a non-zero first sequence from a producer this partition does
//! not know is UNKNOWN_PRODUCER_ID (the client then resets its sequence or bumps its epoch).
//!
//! The state is rebuilt from batch headers when a partition opens; a clean close writes a
//! snapshot in Kafka's format (`<offset>.snapshot`, version 1, CRC-32C) so a clean restart
//! reads one small file instead of the log.

use super::batch::BatchHeader;
use std::collections::{HashMap, VecDeque};

/// Batches remembered per producer for duplicate detection (Kafka's
/// `max.in.flight.requests.per.connection` limit for idempotence).
pub const BATCHES_KEPT: usize = 5;

pub use crate::errors::{INVALID_PRODUCER_EPOCH, OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMeta>,
    /// Wall-clock ms of the last append (for `producer.id.expiration.ms`).
    pub last_append_ms: i64,
    /// First offset of this producer's open transaction in the partition, if any.
    pub txn_first_offset: Option<i64>,
}

/// An aborted transaction in a partition: Kafka's `.txnindex` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The offset of the abort marker.
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

/// Bytes of one `.txnindex` entry: version i16 (0), producer id, first offset, last offset,
/// last stable offset.
pub const TXN_INDEX_ENTRY_BYTES: usize = 34;

impl AbortedTxn {
    pub fn encode(&self) -> [u8; TXN_INDEX_ENTRY_BYTES] {
        let mut out = [0u8; TXN_INDEX_ENTRY_BYTES];
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    /// The entries of a `.txnindex` file (a torn last entry is ignored).
    pub fn decode_all(bytes: &[u8]) -> Vec<AbortedTxn> {
        bytes
            .chunks_exact(TXN_INDEX_ENTRY_BYTES)
            .filter(|e| e[0..2] == [0, 0])
            .map(|e| {
                let at = |i: usize| i64::from_be_bytes(e[i..i + 8].try_into().expect("8 bytes"));
                AbortedTxn { producer_id: at(2), first_offset: at(10), last_offset: at(18), last_stable_offset: at(26) }
            })
            .collect()
    }
}

/// What the sequence check says about one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Append,
    /// A retry of a batch already in the log at these offsets.
    Duplicate {
        first_offset: i64,
        last_offset: i64,
    },
    Refuse(i16),
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// The last sequence of a batch: sequences wrap at i32::MAX.
pub fn last_seq(h: &BatchHeader) -> i32 {
    let last = h.base_sequence as i64 + h.last_offset_delta as i64;
    if last > i32::MAX as i64 {
        (last - i32::MAX as i64 - 1) as i32
    } else {
        last as i32
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStates {
    entries: HashMap<i64, ProducerEntry>,
    /// Aborted transactions, in marker order (what `.txnindex` files hold).
    pub aborted: Vec<AbortedTxn>,
}

impl ProducerStates {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.entries.get(&producer_id)
    }

    /// A copy of the entries of these producers only (to check a multi-batch append).
    pub fn subset(&self, ids: impl Iterator<Item = i64>) -> ProducerStates {
        let entries = ids.filter_map(|id| self.entries.get(&id).map(|e| (id, e.clone()))).collect();
        ProducerStates { entries, aborted: Vec::new() }
    }

    /// Checks one batch against the state (does not change it).
    pub fn check(&self, h: &BatchHeader) -> Verdict {
        if h.producer_id < 0 || h.is_control() {
            return Verdict::Append;
        }
        let first = h.base_sequence;
        let last = last_seq(h);
        let Some(entry) = self.entries.get(&h.producer_id) else {
            return if first <= 0 { Verdict::Append } else { Verdict::Refuse(UNKNOWN_PRODUCER_ID) };
        };
        if h.producer_epoch < entry.epoch {
            return Verdict::Refuse(INVALID_PRODUCER_EPOCH);
        }
        if first < 0 {
            // Unsequenced (a coordinator's transactional write): only the epoch is checked.
            return Verdict::Append;
        }
        if h.producer_epoch > entry.epoch {
            // A new epoch starts its sequences over.
            return if first == 0 { Verdict::Append } else { Verdict::Refuse(OUT_OF_ORDER_SEQUENCE_NUMBER) };
        }
        if let Some(b) = entry.batches.iter().find(|b| b.first_seq == first && b.last_seq == last) {
            return Verdict::Duplicate { first_offset: b.first_offset, last_offset: b.last_offset };
        }
        match entry.batches.back() {
            Some(b) if first != next_seq(b.last_seq) => Verdict::Refuse(OUT_OF_ORDER_SEQUENCE_NUMBER),
            // An entry restored from a snapshot with no batch yet: accept what follows it.
            _ => Verdict::Append,
        }
    }

    /// Records an appended (or recovered) batch at its offsets.
    pub fn record(&mut self, h: &BatchHeader, now_ms: i64) {
        if h.producer_id < 0 || h.is_control() {
            return;
        }
        let entry = self.entries.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.batches.clear();
            entry.epoch = h.producer_epoch;
        }
        if h.is_transactional() && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(h.base_offset);
        }
        entry.last_append_ms = now_ms;
        if h.base_sequence < 0 {
            return;
        }
        entry.batches.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: last_seq(h),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
            timestamp: h.max_timestamp,
        });
        while entry.batches.len() > BATCHES_KEPT {
            entry.batches.pop_front();
        }
    }

    /// A transaction marker (control batch) for `h.producer_id`: its open transaction ends.
    /// An abort is remembered (and returned, for the `.txnindex`). A marker written with a
    /// newer epoch (the coordinator fencing a producer) moves the producer to it.
    pub fn marker(&mut self, h: &BatchHeader, commit: bool, now_ms: i64) -> Option<AbortedTxn> {
        let entry = self.entries.entry(h.producer_id).or_default();
        if h.producer_epoch > entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.last_append_ms = now_ms;
        let first = entry.txn_first_offset.take()?;
        if commit {
            return None;
        }
        let lso = self.first_unstable_offset().unwrap_or(h.base_offset + 1);
        let aborted = AbortedTxn {
            producer_id: h.producer_id,
            first_offset: first,
            last_offset: h.base_offset,
            last_stable_offset: lso,
        };
        self.aborted.push(aborted);
        Some(aborted)
    }

    /// The first offset of the oldest open transaction: the last stable offset if any.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.entries.values().filter_map(|e| e.txn_first_offset).min()
    }

    /// Every producer this partition knows, for DescribeProducers: (producer id, epoch, last
    /// sequence or -1, timestamp of its last batch or -1, first offset of its open
    /// transaction or -1), by producer id.
    pub fn active(&self) -> Vec<(i64, i16, i32, i64, i64)> {
        let mut out: Vec<_> = self
            .entries
            .iter()
            .map(|(id, e)| {
                let last = e.batches.back();
                (
                    *id,
                    e.epoch,
                    last.map_or(-1, |b| b.last_seq),
                    last.map_or(-1, |b| b.timestamp),
                    e.txn_first_offset.unwrap_or(-1),
                )
            })
            .collect();
        out.sort_unstable_by_key(|p| p.0);
        out
    }

    /// Each producer's last batch's last offset: batches the cleaner must not remove whole.
    pub fn last_batch_offsets(&self) -> HashMap<i64, i64> {
        self.entries.iter().filter_map(|(id, e)| e.batches.back().map(|b| (*id, b.last_offset))).collect()
    }

    /// Open transactions: (producer id, epoch, first offset).
    pub fn open_transactions(&self) -> Vec<(i64, i16, i64)> {
        let mut out: Vec<_> =
            self.entries.iter().filter_map(|(id, e)| e.txn_first_offset.map(|f| (*id, e.epoch, f))).collect();
        out.sort_unstable_by_key(|t| t.2);
        out
    }

    /// Aborted transactions overlapping `[from, upper)`: (producer id, first offset), as a
    /// read_committed Fetch response lists them.
    pub fn aborted_between(&self, from: i64, upper: i64) -> Vec<(i64, i64)> {
        self.aborted
            .iter()
            .filter(|a| a.last_offset >= from && a.first_offset < upper)
            .map(|a| (a.producer_id, a.first_offset))
            .collect()
    }

    /// Drops aborted transactions wholly below the log start.
    pub fn forget_aborted_below(&mut self, log_start: i64) {
        self.aborted.retain(|a| a.last_offset >= log_start);
    }

    /// Forgets producers idle for longer than `expiration_ms`.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.entries.len();
        // A producer with an open transaction stays (its transaction times out and is aborted).
        self.entries
            .retain(|_, e| e.txn_first_offset.is_some() || now_ms.saturating_sub(e.last_append_ms) < expiration_ms);
        before - self.entries.len()
    }

    /// Kafka's producer snapshot, version 1: `version i16, crc u32 (CRC-32C of the rest),
    /// [producer_id i64, epoch i16, last_sequence i32, last_offset i64, offset_delta i32,
    /// timestamp i64, coordinator_epoch i32, current_txn_first_offset i64]`.
    /// Only each producer's last batch is kept, as in Kafka.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(4 + self.entries.len() * 46);
        body.extend_from_slice(&(self.entries.len() as i32).to_be_bytes());
        let mut ids: Vec<&i64> = self.entries.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let e = &self.entries[id];
            let last = e.batches.back().copied().unwrap_or(BatchMeta {
                first_seq: -1,
                last_seq: -1,
                first_offset: -1,
                last_offset: -1,
                timestamp: -1,
            });
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&e.epoch.to_be_bytes());
            body.extend_from_slice(&last.last_seq.to_be_bytes());
            body.extend_from_slice(&last.last_offset.to_be_bytes());
            body.extend_from_slice(&((last.last_offset - last.first_offset) as i32).to_be_bytes());
            body.extend_from_slice(&last.timestamp.to_be_bytes());
            body.extend_from_slice(&(-1i32).to_be_bytes());
            body.extend_from_slice(&e.txn_first_offset.unwrap_or(-1).to_be_bytes());
        }
        let mut out = Vec::with_capacity(6 + body.len());
        out.extend_from_slice(&1i16.to_be_bytes());
        out.extend_from_slice(&crate::crc::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Reads a snapshot; `None` if it is damaged (the caller rebuilds from the log).
    pub fn decode_snapshot(bytes: &[u8], now_ms: i64) -> Option<ProducerStates> {
        const ENTRY: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
        if bytes.len() < 10 || i16::from_be_bytes([bytes[0], bytes[1]]) != 1 {
            return None;
        }
        let crc = u32::from_be_bytes(bytes[2..6].try_into().ok()?);
        let body = &bytes[6..];
        if crate::crc::crc32c(body) != crc {
            return None;
        }
        let n = i32::from_be_bytes(body[..4].try_into().ok()?);
        if n < 0 || body.len() != 4 + n as usize * ENTRY {
            return None;
        }
        let mut entries = HashMap::with_capacity(n as usize);
        for chunk in body[4..].chunks_exact(ENTRY) {
            let i64_at = |at: usize| i64::from_be_bytes(chunk[at..at + 8].try_into().expect("8 bytes"));
            let i32_at = |at: usize| i32::from_be_bytes(chunk[at..at + 4].try_into().expect("4 bytes"));
            let id = i64_at(0);
            let epoch = i16::from_be_bytes([chunk[8], chunk[9]]);
            let last_seq = i32_at(10);
            let last_offset = i64_at(14);
            let delta = i32_at(22);
            let timestamp = i64_at(26);
            let txn_first = i64_at(38);
            let mut batches = VecDeque::new();
            if last_offset >= 0 {
                let first_seq = (last_seq as i64 - delta as i64).rem_euclid(i32::MAX as i64 + 1) as i32;
                batches.push_back(BatchMeta {
                    first_seq,
                    last_seq,
                    first_offset: last_offset - delta as i64,
                    last_offset,
                    timestamp,
                });
            }
            let txn_first_offset = (txn_first >= 0).then_some(txn_first);
            entries.insert(id, ProducerEntry { epoch, batches, last_append_ms: now_ms, txn_first_offset });
        }
        Some(ProducerStates { entries, aborted: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, records: i32, offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset: offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 7,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: records,
        }
    }

    #[test]
    fn sequences_dedup_and_refuse_as_kafka_does() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(&header(-1, -1, -1, 3, 0)), Verdict::Append, "non-idempotent batches pass");
        assert_eq!(s.check(&header(9, 0, 5, 3, 0)), Verdict::Refuse(UNKNOWN_PRODUCER_ID));
        let b0 = header(9, 0, 0, 3, 0);
        assert_eq!(s.check(&b0), Verdict::Append);
        s.record(&b0, 1);
        assert_eq!(s.check(&b0), Verdict::Duplicate { first_offset: 0, last_offset: 2 });
        assert_eq!(s.check(&header(9, 0, 4, 1, 3)), Verdict::Refuse(OUT_OF_ORDER_SEQUENCE_NUMBER));
        for i in 0..6 {
            let b = header(9, 0, 3 + i, 1, 3 + i as i64);
            assert_eq!(s.check(&b), Verdict::Append);
            s.record(&b, 1);
        }
        // Only the last five batches are remembered.
        assert_eq!(s.check(&b0), Verdict::Refuse(OUT_OF_ORDER_SEQUENCE_NUMBER));
        assert_eq!(s.check(&header(9, 0, 8, 1, 0)), Verdict::Duplicate { first_offset: 8, last_offset: 8 });
        assert_eq!(s.check(&header(9, -1, 9, 1, 0)), Verdict::Refuse(INVALID_PRODUCER_EPOCH));
        assert_eq!(s.check(&header(9, 1, 3, 1, 0)), Verdict::Refuse(OUT_OF_ORDER_SEQUENCE_NUMBER));
        assert_eq!(s.check(&header(9, 1, 0, 1, 0)), Verdict::Append);
        // Sequences wrap.
        let mut w = ProducerStates::default();
        let mut top = header(4, 0, 0, 1, 0);
        w.record(&top, 1);
        top.base_sequence = i32::MAX - 1;
        top.last_offset_delta = 1;
        assert_eq!(last_seq(&top), i32::MAX);
        top.last_offset_delta = 2;
        assert_eq!(last_seq(&top), 0);
    }

    #[test]
    fn snapshots_round_trip_and_damage_is_detected() {
        let mut s = ProducerStates::default();
        s.record(&header(9, 2, 0, 3, 10), 5);
        s.record(&header(9, 2, 3, 2, 13), 5);
        s.record(&header(11, 0, 0, 1, 15), 5);
        let bytes = s.encode_snapshot();
        let back = ProducerStates::decode_snapshot(&bytes, 5).expect("valid snapshot");
        assert_eq!(back.get(9).unwrap().epoch, 2);
        assert_eq!(
            back.check(&header(9, 2, 3, 2, 0)),
            Verdict::Duplicate { first_offset: 13, last_offset: 14 },
            "the last batch is remembered"
        );
        assert_eq!(back.check(&header(9, 2, 5, 1, 0)), Verdict::Append);
        assert_eq!(back.check(&header(11, 0, 1, 1, 0)), Verdict::Append);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(ProducerStates::decode_snapshot(&bad, 5).is_none(), "a flipped bit at byte {i} went unnoticed");
        }
        assert!(ProducerStates::decode_snapshot(&bytes[..bytes.len() - 1], 5).is_none());
    }
}
