//! The two sparse indexes of a segment, in Kafka's byte format.
//!
//! ```text
//! .index      entries of 8 bytes:  relativeOffset u32 BE | position u32 BE
//! .timeindex  entries of 12 bytes: timestamp i64 BE      | relativeOffset u32 BE
//! ```
//!
//! Both live in memory (a `Vec`, binary-searched) and are mirrored to their files by the
//! segment: new entries are appended to the file, truncation rewrites it. Unlike Kafka, the
//! files are never preallocated, so their length is always exactly `entries × entry size`
//! and a crash cannot leave zero-filled slots behind. Kafka's tools read them as they are.
//!
//! Entries follow Kafka's `LogSegment.append`: one offset entry per `index.interval.bytes`
//! of appended batches, pointing at a batch's position and keyed by that batch's *last*
//! offset; a time entry beside it holding the largest timestamp so far.
//!
//! Owned by the segment, hence by the partition's shard; never shared.

use crate::limits::{OFFSET_INDEX_ENTRY_BYTES, TIME_INDEX_ENTRY_BYTES};

/// Sparse map from offset to file position.
#[derive(Debug, Clone)]
pub struct OffsetIndex {
    base_offset: i64,
    /// (offset relative to `base_offset`, byte position in the `.log`), both increasing.
    entries: Vec<(u32, u32)>,
    max_entries: usize,
}

impl OffsetIndex {
    pub fn new(base_offset: i64, max_index_bytes: u64) -> OffsetIndex {
        OffsetIndex {
            base_offset,
            entries: Vec::new(),
            max_entries: (max_index_bytes as usize / OFFSET_INDEX_ENTRY_BYTES).max(1),
        }
    }

    /// Parses a `.index` file and checks it the way Kafka's `sanityCheck` does (plus order):
    /// a whole number of entries, offsets and positions strictly increasing, and every
    /// position inside the log. A failure means "rebuild from the log".
    pub fn decode(base_offset: i64, bytes: &[u8], log_bytes: u64, max_index_bytes: u64) -> Result<OffsetIndex, String> {
        if bytes.len() % OFFSET_INDEX_ENTRY_BYTES != 0 {
            return Err(format!("index length {} is not a multiple of {OFFSET_INDEX_ENTRY_BYTES}", bytes.len()));
        }
        let mut index = OffsetIndex::new(base_offset, max_index_bytes);
        for chunk in bytes.chunks_exact(OFFSET_INDEX_ENTRY_BYTES) {
            let rel = u32::from_be_bytes(chunk[0..4].try_into().expect("4 bytes"));
            let pos = u32::from_be_bytes(chunk[4..8].try_into().expect("4 bytes"));
            if let Some(&(last_rel, last_pos)) = index.entries.last() {
                if rel <= last_rel || pos <= last_pos {
                    return Err(format!("index entry ({rel}, {pos}) does not follow ({last_rel}, {last_pos})"));
                }
            }
            if pos as u64 >= log_bytes {
                return Err(format!("index position {pos} is past the log's {log_bytes} bytes"));
            }
            index.entries.push((rel, pos));
        }
        if index.entries.len() > index.max_entries {
            return Err(format!(
                "index holds {} entries, more than its {} maximum",
                index.entries.len(),
                index.max_entries
            ));
        }
        Ok(index)
    }

    pub fn encode_entries(&self, from: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity((self.entries.len() - from) * OFFSET_INDEX_ENTRY_BYTES);
        for &(rel, pos) in &self.entries[from..] {
            out.extend_from_slice(&rel.to_be_bytes());
            out.extend_from_slice(&pos.to_be_bytes());
        }
        out
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    /// Adds an entry; callers guarantee both fields increase (asserted: a violation is a
    /// bug in the log, not bad input).
    pub fn append(&mut self, offset: i64, position: u32) {
        let rel = self.relative(offset);
        if let Some(&(last_rel, last_pos)) = self.entries.last() {
            assert!(rel > last_rel && position > last_pos, "index entries must increase");
        }
        self.entries.push((rel, position));
    }

    /// The last entry at or below `offset`, as (absolute offset, position); the segment's
    /// start when there is none. Scanning forward from the position finds the batch holding
    /// `offset`.
    pub fn floor(&self, offset: i64) -> (i64, u32) {
        if offset < self.base_offset {
            return (self.base_offset, 0);
        }
        let rel = (offset - self.base_offset).min(u32::MAX as i64) as u32;
        match self.entries.partition_point(|&(r, _)| r <= rel) {
            0 => (self.base_offset, 0),
            i => (self.base_offset + self.entries[i - 1].0 as i64, self.entries[i - 1].1),
        }
    }

    /// The last entry whose position is at or below `position` (entries always point at batch
    /// starts, so this is a batch boundary).
    pub fn floor_position(&self, position: u32) -> u32 {
        match self.entries.partition_point(|&(_, p)| p <= position) {
            0 => 0,
            i => self.entries[i - 1].1,
        }
    }

    /// Drops every entry whose position is at or past `position` (used with a truncation of
    /// the log). Returns how many entries remain.
    pub fn truncate_to_position(&mut self, position: u32) -> usize {
        let keep = self.entries.partition_point(|&(_, p)| p < position);
        self.entries.truncate(keep);
        keep
    }

    pub fn entries(&self) -> impl Iterator<Item = (i64, u32)> + '_ {
        self.entries.iter().map(|&(rel, pos)| (self.base_offset + rel as i64, pos))
    }

    fn relative(&self, offset: i64) -> u32 {
        let rel = offset - self.base_offset;
        assert!((0..=u32::MAX as i64).contains(&rel), "offset {offset} outside segment {}", self.base_offset);
        rel as u32
    }
}

/// Sparse map from timestamp to offset.
#[derive(Debug, Clone)]
pub struct TimeIndex {
    base_offset: i64,
    /// (timestamp, offset relative to `base_offset`): timestamps strictly increasing,
    /// offsets never decreasing.
    entries: Vec<(i64, u32)>,
    max_entries: usize,
}

impl TimeIndex {
    pub fn new(base_offset: i64, max_index_bytes: u64) -> TimeIndex {
        TimeIndex {
            base_offset,
            entries: Vec::new(),
            max_entries: (max_index_bytes as usize / TIME_INDEX_ENTRY_BYTES).max(1),
        }
    }

    /// Parses and checks a `.timeindex` file; an error means "rebuild from the log".
    pub fn decode(base_offset: i64, bytes: &[u8], max_index_bytes: u64) -> Result<TimeIndex, String> {
        if bytes.len() % TIME_INDEX_ENTRY_BYTES != 0 {
            return Err(format!("time index length {} is not a multiple of {TIME_INDEX_ENTRY_BYTES}", bytes.len()));
        }
        let mut index = TimeIndex::new(base_offset, max_index_bytes);
        for chunk in bytes.chunks_exact(TIME_INDEX_ENTRY_BYTES) {
            let ts = i64::from_be_bytes(chunk[0..8].try_into().expect("8 bytes"));
            let rel = u32::from_be_bytes(chunk[8..12].try_into().expect("4 bytes"));
            if let Some(&(last_ts, last_rel)) = index.entries.last() {
                if ts <= last_ts || rel < last_rel {
                    return Err(format!("time index entry ({ts}, {rel}) does not follow ({last_ts}, {last_rel})"));
                }
            }
            index.entries.push((ts, rel));
        }
        if index.entries.len() > index.max_entries {
            return Err(format!("time index holds {} entries, more than its maximum", index.entries.len()));
        }
        Ok(index)
    }

    pub fn encode_entries(&self, from: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity((self.entries.len() - from) * TIME_INDEX_ENTRY_BYTES);
        for &(ts, rel) in &self.entries[from..] {
            out.extend_from_slice(&ts.to_be_bytes());
            out.extend_from_slice(&rel.to_be_bytes());
        }
        out
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    /// Appends `(timestamp, offset)` if the timestamp is newer than the last entry's (Kafka's
    /// `maybeAppend`). Returns whether it did.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) -> bool {
        let rel = (offset - self.base_offset) as u32;
        match self.entries.last() {
            Some(&(last_ts, _)) if timestamp <= last_ts => false,
            // Kafka treats an empty index's last entry as (NO_TIMESTAMP = -1, base offset), so
            // batches without timestamps never get an entry.
            None if timestamp < 0 => false,
            _ => {
                self.entries.push((timestamp, rel));
                true
            }
        }
    }

    /// The offset of the last entry with timestamp at or below `timestamp`; the segment's base
    /// when there is none. Batches before it cannot hold the first record at `timestamp`.
    pub fn floor_offset(&self, timestamp: i64) -> i64 {
        match self.entries.partition_point(|&(ts, _)| ts <= timestamp) {
            0 => self.base_offset,
            i => self.base_offset + self.entries[i - 1].1 as i64,
        }
    }

    /// The newest entry: (largest timestamp, its offset).
    pub fn last(&self) -> Option<(i64, i64)> {
        self.entries.last().map(|&(ts, rel)| (ts, self.base_offset + rel as i64))
    }

    /// Drops entries whose offset is at or past `offset`.
    pub fn truncate_to_offset(&mut self, offset: i64) -> usize {
        let keep = self.entries.partition_point(|&(_, rel)| self.base_offset + (rel as i64) < offset);
        self.entries.truncate(keep);
        keep
    }

    pub fn entries(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.entries.iter().map(|&(ts, rel)| (ts, self.base_offset + rel as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_round_trips_through_kafkas_byte_format() {
        let mut idx = OffsetIndex::new(1000, 1 << 20);
        idx.append(1003, 4200);
        idx.append(1010, 9000);
        let bytes = idx.encode_entries(0);
        assert_eq!(bytes, [0, 0, 0, 3, 0, 0, 0x10, 0x68, 0, 0, 0, 10, 0, 0, 0x23, 0x28]);
        let back = OffsetIndex::decode(1000, &bytes, 10_000, 1 << 20).unwrap();
        assert_eq!(back.entries().collect::<Vec<_>>(), vec![(1003, 4200), (1010, 9000)]);
    }

    #[test]
    fn floor_lookups_return_the_entry_at_or_below() {
        let mut idx = OffsetIndex::new(100, 1 << 20);
        idx.append(110, 4096);
        idx.append(120, 8192);
        assert_eq!(idx.floor(50), (100, 0));
        assert_eq!(idx.floor(109), (100, 0));
        assert_eq!(idx.floor(110), (110, 4096));
        assert_eq!(idx.floor(119), (110, 4096));
        assert_eq!(idx.floor(1_000_000), (120, 8192));
        assert_eq!(idx.floor_position(8191), 4096);
        assert_eq!(idx.floor_position(8192), 8192);
        assert_eq!(idx.floor_position(10), 0);
    }

    #[test]
    fn damaged_index_files_are_rejected_so_they_get_rebuilt() {
        let mut idx = OffsetIndex::new(0, 1 << 20);
        idx.append(5, 100);
        idx.append(9, 200);
        let bytes = idx.encode_entries(0);
        assert!(OffsetIndex::decode(0, &bytes[..12], 1000, 1 << 20).is_err(), "partial entry");
        assert!(OffsetIndex::decode(0, &bytes, 150, 1 << 20).is_err(), "position past the log");
        let mut swapped = bytes[8..].to_vec();
        swapped.extend_from_slice(&bytes[..8]);
        assert!(OffsetIndex::decode(0, &swapped, 1000, 1 << 20).is_err(), "out of order");
        assert!(OffsetIndex::decode(0, &[0u8; 16], 1000, 1 << 20).is_err(), "zero-filled slots");
    }

    #[test]
    fn time_index_keeps_only_newer_timestamps_and_finds_the_floor() {
        let mut t = TimeIndex::new(0, 1 << 20);
        assert!(t.maybe_append(10, 3));
        assert!(!t.maybe_append(10, 5), "same timestamp is not appended");
        assert!(!t.maybe_append(5, 6), "older timestamp is not appended");
        assert!(t.maybe_append(20, 9));
        assert_eq!(t.floor_offset(9), 0);
        assert_eq!(t.floor_offset(15), 3);
        assert_eq!(t.floor_offset(25), 9);
        let bytes = t.encode_entries(0);
        assert_eq!(bytes.len(), 24);
        let back = TimeIndex::decode(0, &bytes, 1 << 20).unwrap();
        assert_eq!(back.last(), Some((20, 9)));
        assert_eq!(t.truncate_to_offset(9), 1);
    }

    #[test]
    fn an_index_is_full_at_its_configured_size() {
        let mut idx = OffsetIndex::new(0, 16);
        idx.append(1, 10);
        assert!(!idx.is_full());
        idx.append(2, 20);
        assert!(idx.is_full());
    }
}
