//! A view over Kafka record batches (magic v2), without decoding the records.
//!
//! Layout of one batch, big-endian, as Kafka's `DefaultRecordBatch` defines it:
//!
//! ```text
//!  0 baseOffset           i64   patched in place by the log on append
//!  8 batchLength          i32   bytes after this field (whole batch = 12 + batchLength)
//! 12 partitionLeaderEpoch i32   patched in place; outside the CRC
//! 16 magic                i8    must be 2
//! 17 crc                  u32   CRC32C of bytes 21..end (attributes .. last record)
//! 21 attributes           i16   bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control
//! 23 lastOffsetDelta      i32
//! 27 baseTimestamp        i64
//! 35 maxTimestamp         i64
//! 43 producerId           i64
//! 51 producerEpoch        i16
//! 53 baseSequence         i32
//! 57 recordCount          i32
//! 61 records ...
//! ```
//!
//! The same checks run when a batch arrives from a client and when recovery reads it back
//! from disk (STYLE: pair assertions around the disk); only the count rule differs, because
//! compaction leaves gaps (`Check::Stored`).

use crate::limits::{BATCH_HEADER_BYTES, BATCH_RECORD_COUNT_MAX, RECORD_ENCODED_BYTES_MIN};
use std::fmt;

const OFFSET_BASE_OFFSET: usize = 0;
const OFFSET_BATCH_LENGTH: usize = 8;
const OFFSET_LEADER_EPOCH: usize = 12;
const OFFSET_MAGIC: usize = 16;

/// The batch's first bytes, which the broker rewrites (baseOffset .. partitionLeaderEpoch,
/// all outside the CRC): the append path patches a copy of these and writes the rest of the
/// batch from the request as it came.
pub const PATCHED_PREFIX_BYTES: usize = OFFSET_LEADER_EPOCH + 4;
const _: () = assert!(OFFSET_BASE_OFFSET + 8 <= PATCHED_PREFIX_BYTES && PATCHED_PREFIX_BYTES <= OFFSET_MAGIC);
const OFFSET_CRC: usize = 17;
const OFFSET_ATTRIBUTES: usize = 21;
const OFFSET_LAST_OFFSET_DELTA: usize = 23;
const OFFSET_BASE_TIMESTAMP: usize = 27;
const OFFSET_MAX_TIMESTAMP: usize = 35;
const OFFSET_PRODUCER_ID: usize = 43;
const OFFSET_PRODUCER_EPOCH: usize = 51;
const OFFSET_BASE_SEQUENCE: usize = 53;
const OFFSET_RECORD_COUNT: usize = 57;

/// Bytes before `batchLength`'s count starts: baseOffset + batchLength.
pub const BATCH_LOG_OVERHEAD: usize = 12;

/// The only record format this node stores. Produce v3+ requires it from clients.
pub const MAGIC_V2: i8 = 2;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;
/// KIP-534: the batch's baseTimestamp holds its delete horizon (set by the log cleaner).
const ATTR_DELETE_HORIZON: i16 = 0x40;

/// Why a batch was refused. Each maps to the Kafka error a producer would get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than a header, or `batchLength` runs past the bytes we have.
    Truncated { position: usize, needed: usize, available: usize },
    /// `batchLength` smaller than the header it must contain.
    LengthTooSmall { position: usize, batch_length: i32 },
    /// Anything but magic v2.
    WrongMagic { position: usize, magic: i8 },
    /// The stored CRC32C does not match the bytes.
    CrcMismatch { position: usize, stored: u32, computed: u32 },
    /// `lastOffsetDelta` negative, or the count disagrees with it, or the count cannot fit.
    InvalidRecordCount { position: usize, record_count: i32, last_offset_delta: i32 },
    /// A request carrying no batch at all.
    Empty,
    /// The compressed records do not decompress.
    Undecompressable(String),
    /// The records inside break the format (see `records`).
    InvalidRecords(String),
    /// The batches' offsets do not fit a log: a stored or replicated batch's baseOffset
    /// (outside the CRC) is negative or its last offset passes the largest offset, or one
    /// append spans more offsets than a segment can address.
    OffsetOverflow(String),
}

impl BatchError {
    /// The Kafka error code a producer receives for this batch (CORRUPT_MESSAGE = 2 for bytes
    /// that cannot be trusted, INVALID_RECORD = 87 for well-formed bytes that break the rules).
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            BatchError::Truncated { .. }
            | BatchError::LengthTooSmall { .. }
            | BatchError::CrcMismatch { .. }
            | BatchError::Empty
            | BatchError::Undecompressable(_)
            | BatchError::OffsetOverflow(_) => crate::errors::CORRUPT_MESSAGE,
            BatchError::WrongMagic { .. } | BatchError::InvalidRecordCount { .. } | BatchError::InvalidRecords(_) => {
                crate::errors::INVALID_RECORD
            }
        }
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Truncated { position, needed, available } => {
                write!(f, "batch at byte {position} is truncated: needs {needed} bytes, {available} available")
            }
            BatchError::LengthTooSmall { position, batch_length } => {
                write!(f, "batch at byte {position} has batchLength {batch_length}, smaller than its header")
            }
            BatchError::WrongMagic { position, magic } => {
                write!(f, "batch at byte {position} has magic {magic}; only magic 2 is accepted")
            }
            BatchError::CrcMismatch { position, stored, computed } => {
                write!(f, "batch at byte {position} is corrupt: stored crc {stored:#010x}, computed {computed:#010x}")
            }
            BatchError::InvalidRecordCount { position, record_count, last_offset_delta } => write!(
                f,
                "batch at byte {position} claims {record_count} records with lastOffsetDelta {last_offset_delta}"
            ),
            BatchError::Empty => write!(f, "no record batch in the request"),
            BatchError::Undecompressable(why) => write!(f, "corrupt compressed records: {why}"),
            BatchError::InvalidRecords(why) => write!(f, "invalid records: {why}"),
            BatchError::OffsetOverflow(why) => write!(f, "offsets out of range: {why}"),
        }
    }
}

impl std::error::Error for BatchError {}

/// Which count rule applies: batches from producers are dense (`recordCount ==
/// lastOffsetDelta + 1`); stored batches may have been compacted (`recordCount <=
/// lastOffsetDelta + 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Produced,
    Stored,
}

/// Compression codec, from attributes bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
    Unknown(u8),
}

/// The decoded header of one batch. Plain values: copying it out is cheap and keeps no
/// borrow of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Reads the fixed header from `buf` (which must hold at least 61 bytes). Does not check
    /// anything: see [`validate`] for that.
    pub fn read(buf: &[u8]) -> Option<BatchHeader> {
        if buf.len() < BATCH_HEADER_BYTES {
            return None;
        }
        Some(BatchHeader {
            base_offset: be_i64(buf, OFFSET_BASE_OFFSET),
            batch_length: be_i32(buf, OFFSET_BATCH_LENGTH),
            partition_leader_epoch: be_i32(buf, OFFSET_LEADER_EPOCH),
            magic: buf[OFFSET_MAGIC] as i8,
            crc: be_i32(buf, OFFSET_CRC) as u32,
            attributes: be_i16(buf, OFFSET_ATTRIBUTES),
            last_offset_delta: be_i32(buf, OFFSET_LAST_OFFSET_DELTA),
            base_timestamp: be_i64(buf, OFFSET_BASE_TIMESTAMP),
            max_timestamp: be_i64(buf, OFFSET_MAX_TIMESTAMP),
            producer_id: be_i64(buf, OFFSET_PRODUCER_ID),
            producer_epoch: be_i16(buf, OFFSET_PRODUCER_EPOCH),
            base_sequence: be_i32(buf, OFFSET_BASE_SEQUENCE),
            record_count: be_i32(buf, OFFSET_RECORD_COUNT),
        })
    }

    /// Bytes the whole batch occupies in the log.
    pub fn size_bytes(&self) -> usize {
        BATCH_LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    /// The offset of the batch's last record. Clamped to `i64::MIN..=i64::MAX - 1`: a header
    /// read back from disk without the checks `validate` makes (its baseOffset lies outside
    /// the CRC) may be corrupt, and neither this sum nor the `+ 1` its callers add may
    /// overflow then; a valid batch's offsets always fit (`end_offset`).
    pub fn last_offset(&self) -> i64 {
        self.base_offset.saturating_add(self.last_offset_delta as i64).min(i64::MAX - 1)
    }

    /// The offset after the batch's last record; `None` when it would pass the largest
    /// offset. For batches from the wire: their baseOffset lies outside the CRC, so nothing
    /// but this check stands between a crafted one and an overflow.
    pub fn end_offset(&self) -> Option<i64> {
        self.base_offset.checked_add(self.last_offset_delta as i64)?.checked_add(1)
    }

    pub fn codec(&self) -> Codec {
        match (self.attributes & ATTR_COMPRESSION_MASK) as u8 {
            0 => Codec::None,
            1 => Codec::Gzip,
            2 => Codec::Snappy,
            3 => Codec::Lz4,
            4 => Codec::Zstd,
            other => Codec::Unknown(other),
        }
    }

    /// True when the broker stamped the timestamps (`LogAppendTime`).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_TIMESTAMP_TYPE != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// KIP-534's delete horizon: once the cleaner has passed over a batch holding tombstones
    /// or a transaction marker, they may be dropped after this time (ms since the epoch).
    pub fn delete_horizon(&self) -> Option<i64> {
        (self.attributes & ATTR_DELETE_HORIZON != 0).then_some(self.base_timestamp)
    }
}

/// A batch the cleaner rewrites: `original` (a whole stored batch) with these records
/// (already encoded against `base_timestamp`, uncompressed), compressed with the
/// original's codec; `horizon` marks baseTimestamp as the delete horizon. Offsets, producer
/// fields and lastOffsetDelta are kept, so the batch still ends where it ended (Kafka keeps
/// the original base offset too); an empty `records` with `count` 0 is the header-only
/// batch Kafka keeps for a producer's last sequence.
pub fn rewrite(
    original: &[u8],
    records: &[u8],
    count: i32,
    base_timestamp: i64,
    horizon: bool,
) -> std::io::Result<Vec<u8>> {
    let header = BatchHeader::read(original).ok_or_else(|| std::io::Error::other("not a whole batch"))?;
    let mut head = original[..BATCH_HEADER_BYTES].to_vec();
    let mut attributes = header.attributes & !ATTR_DELETE_HORIZON;
    if horizon {
        attributes |= ATTR_DELETE_HORIZON;
    }
    head[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    head[OFFSET_BASE_TIMESTAMP..OFFSET_BASE_TIMESTAMP + 8].copy_from_slice(&base_timestamp.to_be_bytes());
    head[OFFSET_RECORD_COUNT..OFFSET_RECORD_COUNT + 4].copy_from_slice(&count.to_be_bytes());
    let codec = if count == 0 { Codec::None } else { header.codec() };
    let packed = match codec {
        Codec::None | Codec::Unknown(_) => records.to_vec(),
        codec => super::records::compress(codec, records)?,
    };
    Ok(rebuild(&head, codec, &packed))
}

/// Checks the batch starting at `buf[0]` and returns its header. `position` is only used in
/// error messages (where in the request or file the batch began).
pub fn validate(buf: &[u8], position: usize, check: Check) -> Result<BatchHeader, BatchError> {
    if buf.len() < BATCH_HEADER_BYTES {
        // A short tail still tells its magic if it got that far: report the more specific error.
        if buf.len() > OFFSET_MAGIC && buf[OFFSET_MAGIC] as i8 != MAGIC_V2 {
            return Err(BatchError::WrongMagic { position, magic: buf[OFFSET_MAGIC] as i8 });
        }
        return Err(BatchError::Truncated { position, needed: BATCH_HEADER_BYTES, available: buf.len() });
    }
    let header = BatchHeader::read(buf).expect("length checked above");
    if header.magic != MAGIC_V2 {
        return Err(BatchError::WrongMagic { position, magic: header.magic });
    }
    let body_min = (BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD) as i32;
    if header.batch_length < body_min {
        return Err(BatchError::LengthTooSmall { position, batch_length: header.batch_length });
    }
    let size = header.size_bytes();
    if size > buf.len() {
        return Err(BatchError::Truncated { position, needed: size, available: buf.len() });
    }
    check_record_count(&header, size, position, check)?;
    // A produced batch's baseOffset is the broker's to assign; a stored (or replicated) one's
    // is kept, and lies outside the CRC.
    if check == Check::Stored && (header.base_offset < 0 || header.end_offset().is_none()) {
        let (base, delta) = (header.base_offset, header.last_offset_delta);
        let why = format!("batch at byte {position} has baseOffset {base} and lastOffsetDelta {delta}");
        return Err(BatchError::OffsetOverflow(why));
    }
    let computed = crate::crc::crc32c(&buf[OFFSET_ATTRIBUTES..size]);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch { position, stored: header.crc, computed });
    }
    Ok(header)
}

fn check_record_count(header: &BatchHeader, size: usize, position: usize, check: Check) -> Result<(), BatchError> {
    let invalid = || BatchError::InvalidRecordCount {
        position,
        record_count: header.record_count,
        last_offset_delta: header.last_offset_delta,
    };
    let count = header.record_count;
    let delta = header.last_offset_delta;
    if count < 0 || delta < 0 || count as u32 > BATCH_RECORD_COUNT_MAX || delta as u32 >= BATCH_RECORD_COUNT_MAX {
        return Err(invalid());
    }
    let consistent = match check {
        Check::Produced => count > 0 && count as i64 == delta as i64 + 1,
        Check::Stored => count as i64 <= delta as i64 + 1,
    };
    if !consistent {
        return Err(invalid());
    }
    // Uncompressed records are laid out as they are; each needs a minimum number of bytes.
    if header.codec() == Codec::None && count as usize * RECORD_ENCODED_BYTES_MIN > size - BATCH_HEADER_BYTES {
        return Err(invalid());
    }
    Ok(())
}

/// Where each batch of a validated buffer sits, plus what the log needs from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpan {
    pub position: usize,
    pub header: BatchHeader,
}

/// Validates every batch in `buf` (a produce request's records field: one or more batches
/// back to back). Either all are valid and their spans are returned, or nothing is.
pub fn validate_all(buf: &[u8], check: Check) -> Result<Vec<BatchSpan>, BatchError> {
    let mut spans = Vec::new();
    let mut position = 0;
    while position < buf.len() {
        let header = validate(&buf[position..], position, check)?;
        spans.push(BatchSpan { position, header });
        position += header.size_bytes();
    }
    if spans.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(spans)
}

/// A batch with the same header fields as `header` (61 bytes), but `codec` and these
/// records: attributes, batchLength and the CRC are rewritten.
pub fn rebuild(header: &[u8], codec: Codec, records: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + records.len());
    out.extend_from_slice(&header[..BATCH_HEADER_BYTES]);
    out.extend_from_slice(records);
    let bits: i16 = match codec {
        Codec::None => 0,
        Codec::Gzip => 1,
        Codec::Snappy => 2,
        Codec::Lz4 => 3,
        Codec::Zstd => 4,
        Codec::Unknown(c) => c as i16,
    };
    let attributes = (be_i16(&out, OFFSET_ATTRIBUTES) & !ATTR_COMPRESSION_MASK) | bits;
    out[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    let length = (out.len() - BATCH_LOG_OVERHEAD) as i32;
    out[OFFSET_BATCH_LENGTH..OFFSET_BATCH_LENGTH + 4].copy_from_slice(&length.to_be_bytes());
    let crc = crate::crc::crc32c(&out[OFFSET_ATTRIBUTES..]);
    out[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Clears a whole batch's transactional bit (and re-stamps its CRC).
pub fn clear_transactional(batch: &mut [u8]) {
    let attributes = be_i16(batch, OFFSET_ATTRIBUTES) & !ATTR_TRANSACTIONAL;
    batch[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = crate::crc::crc32c(&batch[OFFSET_ATTRIBUTES..]);
    batch[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Marker types of a control record's key (`version i16, type i16`).
pub const CONTROL_ABORT: i16 = 0;
pub const CONTROL_COMMIT: i16 = 1;

/// The type of a control batch's marker (its first record's key), if it parses.
pub fn control_type(batch: &[u8]) -> Option<i16> {
    let mut at = BATCH_HEADER_BYTES;
    let _length = read_varint(batch, &mut at)?;
    at += 1; // attributes
    let _timestamp_delta = read_varint(batch, &mut at)?;
    let _offset_delta = read_varint(batch, &mut at)?;
    if read_varint(batch, &mut at)? < 4 {
        return None;
    }
    let key = batch.get(at..at + 4)?;
    Some(i16::from_be_bytes([key[2], key[3]]))
}

/// A zig-zag varint at `*at` (at most 10 bytes); advances `at`.
fn read_varint(buf: &[u8], at: &mut usize) -> Option<i64> {
    let mut raw: u64 = 0;
    for i in 0..10 {
        let b = *buf.get(*at)?;
        *at += 1;
        raw |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    None
}

/// A transaction marker: a control batch of one record (key: version 0, type; value:
/// version 0, coordinator epoch), written by the transaction coordinator.
pub fn control_batch(
    producer_id: i64,
    producer_epoch: i16,
    marker: i16,
    coordinator_epoch: i32,
    now_ms: i64,
) -> Vec<u8> {
    let mut record = vec![0u8, 0, 0, 8]; // attributes, timestamp delta 0, offset delta 0, key length 4
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&marker.to_be_bytes());
    record.push(12); // value length 6
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&coordinator_epoch.to_be_bytes());
    record.push(0); // no headers
    let mut records = vec![(record.len() as u8) << 1];
    records.extend_from_slice(&record);
    let mut header = vec![0u8; BATCH_HEADER_BYTES];
    header[OFFSET_MAGIC] = MAGIC_V2 as u8;
    header[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2]
        .copy_from_slice(&(ATTR_TRANSACTIONAL | ATTR_CONTROL).to_be_bytes());
    header[OFFSET_BASE_TIMESTAMP..OFFSET_BASE_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
    header[OFFSET_MAX_TIMESTAMP..OFFSET_MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
    header[OFFSET_PRODUCER_ID..OFFSET_PRODUCER_ID + 8].copy_from_slice(&producer_id.to_be_bytes());
    header[OFFSET_PRODUCER_EPOCH..OFFSET_PRODUCER_EPOCH + 2].copy_from_slice(&producer_epoch.to_be_bytes());
    header[OFFSET_BASE_SEQUENCE..OFFSET_BASE_SEQUENCE + 4].copy_from_slice(&(-1i32).to_be_bytes());
    header[OFFSET_RECORD_COUNT..OFFSET_RECORD_COUNT + 4].copy_from_slice(&1i32.to_be_bytes());
    rebuild(&header, Codec::None, &records)
}

/// Writes the batch's `baseOffset` in place. The field lies outside the CRC, so no
/// re-encoding or re-checksumming is needed.
pub fn patch_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[OFFSET_BASE_OFFSET..OFFSET_BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Writes the batch's `partitionLeaderEpoch` in place (also outside the CRC).
pub fn patch_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[OFFSET_LEADER_EPOCH..OFFSET_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

fn be_i64(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

fn be_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn be_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(buf[at..at + 2].try_into().expect("2 bytes"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a minimal valid uncompressed batch of `count` records with empty keys/values.
    pub(crate) fn tiny_batch(count: i32, timestamp: i64) -> Vec<u8> {
        let mut records = Vec::new();
        for i in 0..count {
            // length, attributes, tsDelta, offsetDelta (zigzag), keyLen -1, valueLen -1, headers 0
            let body = [0u8, 0, zigzag(i), 1, 1, 0];
            records.push(zigzag(body.len() as i32));
            records.extend_from_slice(&body);
        }
        let mut buf = vec![0u8; BATCH_HEADER_BYTES];
        buf.extend_from_slice(&records);
        let batch_length = (buf.len() - BATCH_LOG_OVERHEAD) as i32;
        buf[8..12].copy_from_slice(&batch_length.to_be_bytes());
        buf[16] = 2;
        buf[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        buf[27..35].copy_from_slice(&timestamp.to_be_bytes());
        buf[35..43].copy_from_slice(&timestamp.to_be_bytes());
        buf[43..51].copy_from_slice(&(-1i64).to_be_bytes());
        buf[51..53].copy_from_slice(&(-1i16).to_be_bytes());
        buf[53..57].copy_from_slice(&(-1i32).to_be_bytes());
        buf[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&buf[21..]);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        buf
    }

    fn zigzag(v: i32) -> u8 {
        let z = ((v << 1) ^ (v >> 31)) as u32;
        assert!(z < 0x80, "test helper only encodes one-byte varints");
        z as u8
    }

    #[test]
    fn a_well_formed_batch_is_accepted_and_its_header_read() {
        let b = tiny_batch(3, 1_700_000_000_000);
        let h = validate(&b, 0, Check::Produced).unwrap();
        assert_eq!(h.record_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.size_bytes(), b.len());
        assert_eq!(h.max_timestamp, 1_700_000_000_000);
        assert_eq!(h.codec(), Codec::None);
    }

    #[test]
    fn a_flipped_byte_inside_the_crc_range_is_refused_as_corrupt() {
        let mut b = tiny_batch(2, 5);
        let last = b.len() - 1;
        b[last] ^= 0x40;
        let err = validate(&b, 0, Check::Produced).unwrap_err();
        assert!(matches!(err, BatchError::CrcMismatch { .. }), "{err}");
        assert_eq!(err.kafka_error_code(), 2);
    }

    #[test]
    fn patching_offset_and_epoch_keeps_the_crc_valid() {
        let mut b = tiny_batch(2, 5);
        patch_base_offset(&mut b, 123_456);
        patch_leader_epoch(&mut b, 7);
        let h = validate(&b, 0, Check::Produced).unwrap();
        assert_eq!(h.base_offset, 123_456);
        assert_eq!(h.partition_leader_epoch, 7);
        assert_eq!(h.last_offset(), 123_457);
    }

    /// A corrupt header's offsets (as a segment read back without validation may hold) give a
    /// last offset that the callers' `+ 1` cannot overflow.
    #[test]
    fn a_corrupt_headers_last_offset_never_overflows() {
        let mut b = tiny_batch(3, 5);
        for base in [i64::MAX, i64::MAX - 1, i64::MIN] {
            patch_base_offset(&mut b, base);
            let h = BatchHeader::read(&b).expect("a header");
            let next = h.last_offset() + 1;
            assert!(next > h.last_offset(), "base {base}");
        }
        patch_base_offset(&mut b, 10);
        assert_eq!(BatchHeader::read(&b).unwrap().last_offset(), 12);
    }

    /// A stored or replicated batch keeps its baseOffset, which no CRC covers: one whose
    /// offsets run past the largest offset, or start below zero, is refused (not an
    /// overflow); a produced batch's is the broker's to overwrite, so it is not looked at.
    #[test]
    fn a_stored_batch_whose_offsets_pass_the_largest_offset_is_refused_as_corrupt() {
        let mut b = tiny_batch(3, 5);
        for (base, ok) in [(i64::MAX - 3, true), (i64::MAX - 2, false), (i64::MAX, false), (-1, false)] {
            patch_base_offset(&mut b, base);
            match validate(&b, 0, Check::Stored) {
                Ok(h) => assert!(ok && h.end_offset() == Some(i64::MAX), "base {base}"),
                Err(e) => {
                    assert!(!ok && matches!(e, BatchError::OffsetOverflow(_)), "base {base}: {e}");
                    assert_eq!(e.kafka_error_code(), 2, "CORRUPT_MESSAGE");
                }
            }
            assert!(validate(&b, 0, Check::Produced).is_ok(), "base {base}");
        }
    }

    #[test]
    fn wrong_magic_is_refused_with_invalid_record() {
        let mut b = tiny_batch(1, 0);
        b[16] = 1;
        let err = validate(&b, 0, Check::Produced).unwrap_err();
        assert_eq!(err, BatchError::WrongMagic { position: 0, magic: 1 });
        assert_eq!(err.kafka_error_code(), 87);
    }

    #[test]
    fn a_length_past_the_buffer_is_refused_as_truncated() {
        let mut b = tiny_batch(1, 0);
        let too_long = (b.len() as i32) + 100;
        b[8..12].copy_from_slice(&too_long.to_be_bytes());
        assert!(matches!(validate(&b, 0, Check::Produced), Err(BatchError::Truncated { .. })));
        let short = &tiny_batch(1, 0)[..40];
        assert!(matches!(validate(short, 0, Check::Produced), Err(BatchError::Truncated { .. })));
    }

    #[test]
    fn a_length_smaller_than_the_header_is_refused() {
        let mut b = tiny_batch(1, 0);
        b[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert!(matches!(validate(&b, 0, Check::Produced), Err(BatchError::LengthTooSmall { .. })));
    }

    /// Rewrites the count fields and re-signs the batch, so only the count rule can fail.
    fn with_counts(mut b: Vec<u8>, count: i32, delta: i32) -> Vec<u8> {
        b[23..27].copy_from_slice(&delta.to_be_bytes());
        b[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn absurd_or_inconsistent_record_counts_are_refused() {
        for (count, delta) in [(i32::MAX, i32::MAX - 1), (-1, 0), (3, 0), (1, 5), (0, -1), (1000, 999)] {
            let b = with_counts(tiny_batch(3, 0), count, delta);
            let err = validate(&b, 0, Check::Produced).unwrap_err();
            assert!(matches!(err, BatchError::InvalidRecordCount { .. }), "{count}/{delta}: {err}");
            assert_eq!(err.kafka_error_code(), 87);
        }
    }

    #[test]
    fn stored_batches_may_have_compaction_gaps_but_not_more_records_than_offsets() {
        let gap = with_counts(tiny_batch(3, 0), 3, 9);
        assert!(validate(&gap, 0, Check::Stored).is_ok());
        assert!(validate(&gap, 0, Check::Produced).is_err());
        let over = with_counts(tiny_batch(3, 0), 3, 1);
        assert!(validate(&over, 0, Check::Stored).is_err());
    }

    #[test]
    fn validate_all_is_all_or_nothing() {
        let mut two = tiny_batch(2, 1);
        two.extend_from_slice(&tiny_batch(4, 2));
        let spans = validate_all(&two, Check::Produced).unwrap();
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[1].position, tiny_batch(2, 1).len());
        let mut bad = two.clone();
        bad.extend_from_slice(&[0u8; 5]);
        assert!(validate_all(&bad, Check::Produced).is_err());
        assert_eq!(validate_all(&[], Check::Produced), Err(BatchError::Empty));
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let len = rng.usize(0..200);
            let mut buf: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            if len > 16 && rng.bool() {
                buf[16] = 2;
            }
            let _ = validate_all(&buf, Check::Produced);
        }
    }
}
