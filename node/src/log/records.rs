//! Record-level validation of produced batches, as far as Kafka's `LogValidator` goes: a
//! compressed batch is decompressed (gzip, snappy raw or xerial-framed, lz4 frame, zstd)
//! and every record is walked — its length, attributes, timestamp and offset deltas, key,
//! value and headers must be well-formed, the offset deltas must run 0, 1, 2, … and the
//! count must be the header's, with no bytes left over. The batch itself is stored as
//! sent; nothing is re-encoded.
//!
//! Decompression is bounded ([`DECOMPRESSED_BATCH_BYTES_MAX`]): a batch that would inflate
//! past it is refused instead of exhausting memory (Kafka has no such bound).

use super::batch::{BatchError, BatchHeader, Codec};
use crate::limits::BATCH_HEADER_BYTES;
use std::io::Read;

/// The most bytes one batch may decompress to.
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize = 128 << 20;

/// Why a batch's records were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// The compressed payload does not decompress (CORRUPT_MESSAGE).
    Undecompressable(String),
    /// The records break the format (INVALID_RECORD).
    Invalid(String),
}

/// Walks every record of a batch (`batch` holds the whole batch, header included). With
/// `require_keys` (a compacted topic) a record without a key is refused, as Kafka's
/// `LogValidator` refuses it ("Compacted topic cannot accept message without key").
pub fn validate(batch: &[u8], header: &BatchHeader, require_keys: bool) -> Result<(), RecordError> {
    let plain = plain_records(batch, header)?;
    let require_keys = require_keys && !header.is_control();
    let mut keyless = None;
    for_each_record(&plain, header, |i, r| {
        if require_keys && r.key.is_none() && keyless.is_none() {
            keyless = Some(i);
        }
    })?;
    match keyless {
        Some(i) => Err(RecordError::Invalid(format!(
            "record {i} has no key: a compacted topic cannot accept a record without a key"
        ))),
        None => Ok(()),
    }
}

/// The records section of a batch, decompressed (borrowed when the batch is uncompressed).
pub fn plain_records<'a>(batch: &'a [u8], header: &BatchHeader) -> Result<std::borrow::Cow<'a, [u8]>, RecordError> {
    let payload = &batch[BATCH_HEADER_BYTES..header.size_bytes()];
    match header.codec() {
        Codec::None => Ok(std::borrow::Cow::Borrowed(payload)),
        Codec::Unknown(c) => Err(RecordError::Invalid(format!("unknown compression codec {c}"))),
        codec => Ok(std::borrow::Cow::Owned(decompress(codec, payload)?)),
    }
}

/// One record of a batch as stored, borrowed from the (decompressed) records section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub attributes: u8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    /// A null value: on a compacted topic, a tombstone.
    pub value_is_null: bool,
    /// The record's bytes from its key on (key, value, headers): a rewrite copies them as is.
    pub tail: &'a [u8],
}

fn undecompressable(codec: Codec, e: impl std::fmt::Display) -> RecordError {
    RecordError::Undecompressable(format!("{codec:?} payload does not decompress: {e}"))
}

/// Reads all of `reader`, refusing output past the bound.
fn read_bounded(codec: Codec, reader: impl Read) -> Result<Vec<u8>, RecordError> {
    let mut out = Vec::new();
    reader
        .take(DECOMPRESSED_BATCH_BYTES_MAX as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| undecompressable(codec, e))?;
    if out.len() > DECOMPRESSED_BATCH_BYTES_MAX {
        return Err(RecordError::Invalid(format!(
            "{codec:?} batch decompresses past {DECOMPRESSED_BATCH_BYTES_MAX} bytes"
        )));
    }
    Ok(out)
}

/// The xerial snappy-java stream header: magic, then version and compatible version.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_BYTES: usize = 16;

fn decompress(codec: Codec, payload: &[u8]) -> Result<Vec<u8>, RecordError> {
    match codec {
        Codec::Gzip => read_bounded(codec, flate2::read::GzDecoder::new(payload)),
        Codec::Lz4 => read_bounded(codec, lz4::Decoder::new(payload).map_err(|e| undecompressable(codec, e))?),
        Codec::Zstd => {
            read_bounded(codec, zstd::stream::read::Decoder::new(payload).map_err(|e| undecompressable(codec, e))?)
        }
        Codec::Snappy if payload.starts_with(&XERIAL_MAGIC) => {
            // xerial framing (the Java client): blocks of [length i32][raw snappy].
            let mut out = Vec::new();
            let mut rest = payload.get(XERIAL_HEADER_BYTES..).unwrap_or_default();
            while !rest.is_empty() {
                let len =
                    rest.get(..4)
                        .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
                        .filter(|&l| l >= 0 && l as usize + 4 <= rest.len())
                        .ok_or_else(|| undecompressable(codec, "truncated xerial block"))? as usize;
                snappy_block(&rest[4..4 + len], &mut out)?;
                rest = &rest[4 + len..];
            }
            Ok(out)
        }
        Codec::Snappy => {
            let mut out = Vec::new();
            snappy_block(payload, &mut out)?;
            Ok(out)
        }
        Codec::None | Codec::Unknown(_) => Ok(payload.to_vec()),
    }
}

/// Appends one raw snappy block to `out`, within the bound.
fn snappy_block(block: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
    let len = snap::raw::decompress_len(block).map_err(|e| undecompressable(Codec::Snappy, e))?;
    if out.len() + len > DECOMPRESSED_BATCH_BYTES_MAX {
        return Err(RecordError::Invalid(format!(
            "Snappy batch decompresses past {DECOMPRESSED_BATCH_BYTES_MAX} bytes"
        )));
    }
    let start = out.len();
    out.resize(start + len, 0);
    snap::raw::Decoder::new().decompress(block, &mut out[start..]).map_err(|e| undecompressable(Codec::Snappy, e))?;
    Ok(())
}

struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    /// A zig-zag varint (Kafka's `ByteUtils.readVarlong`), at most 10 bytes.
    #[inline]
    fn varlong(&mut self) -> Option<i64> {
        // A record's varints are one byte, except its length and its value's length, which
        // are two up to 8 KiB: those widths are decoded without the loop (records::validate
        // walks every record a producer sends).
        let zigzag = |raw: u64| (raw >> 1) as i64 ^ -((raw & 1) as i64);
        let b0 = *self.buf.get(self.at)?;
        if b0 & 0x80 == 0 {
            self.at += 1;
            return Some(zigzag(b0 as u64));
        }
        if let Some(&b1) = self.buf.get(self.at + 1).filter(|&&b| b & 0x80 == 0) {
            self.at += 2;
            return Some(zigzag((b0 & 0x7f) as u64 | (b1 as u64) << 7));
        }
        self.varlong_long()
    }

    /// `varlong` of three bytes or more.
    #[cold]
    fn varlong_long(&mut self) -> Option<i64> {
        let mut raw: u64 = 0;
        for i in 0..10 {
            let b = *self.buf.get(self.at)?;
            self.at += 1;
            raw |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
            }
        }
        None
    }

    fn varint(&mut self) -> Option<i32> {
        self.varlong().and_then(|v| i32::try_from(v).ok())
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        (self.at + n <= self.buf.len()).then(|| self.at += n)
    }

    /// A length-prefixed byte string; `nullable` allows -1 (`None`). Returns where it lies.
    fn bytes(&mut self, nullable: bool) -> Option<Option<(usize, usize)>> {
        match self.varint()? {
            -1 if nullable => Some(None),
            n if n >= 0 => {
                let from = self.at;
                self.skip(n as usize)?;
                Some(Some((from, self.at)))
            }
            _ => None,
        }
    }
}

/// Parses every record of a records section (decompressed) and checks it as Kafka's
/// `LogValidator` does; a produced batch's offset deltas must run 0, 1, 2, … (stored batches
/// may have gaps after compaction: then they must only increase).
pub fn parse<'a>(records: &'a [u8], header: &BatchHeader) -> Result<Vec<RecordView<'a>>, RecordError> {
    let mut out = Vec::with_capacity(header.record_count.max(0) as usize);
    for_each_record(records, header, |_, r| out.push(r))?;
    Ok(out)
}

/// [`parse`] without collecting: `f` sees each record (its index and view) in order; the
/// produce path's validation, which must not allocate per record.
pub fn for_each_record<'a>(
    records: &'a [u8],
    header: &BatchHeader,
    mut f: impl FnMut(i32, RecordView<'a>),
) -> Result<(), RecordError> {
    let invalid = |i: i32, what: &str| RecordError::Invalid(format!("record {i} of {}: {what}", header.record_count));
    let dense = header.record_count as i64 == header.last_offset_delta as i64 + 1;
    let mut c = Cursor { buf: records, at: 0 };
    let mut previous_delta = -1;
    for i in 0..header.record_count {
        let start = c.at;
        let length = c.varint().ok_or_else(|| invalid(i, "unreadable length"))?;
        if length < 0 || c.at + length as usize > records.len() {
            return Err(invalid(i, "length runs past the batch"));
        }
        let end = c.at + length as usize;
        prefetch_record_end(records, end, end - start);
        let mut r = Cursor { buf: &records[..end], at: c.at };
        let attributes = *records.get(r.at).ok_or_else(|| invalid(i, "no attributes"))?;
        r.skip(1).ok_or_else(|| invalid(i, "no attributes"))?;
        let timestamp_delta = r.varlong().ok_or_else(|| invalid(i, "unreadable timestamp delta"))?;
        let offset_delta = r.varint().ok_or_else(|| invalid(i, "unreadable offset delta"))?;
        let in_order = if dense { offset_delta == i } else { offset_delta > previous_delta };
        if !in_order || offset_delta > header.last_offset_delta {
            return Err(invalid(i, &format!("offset delta {offset_delta}, expected {i}")));
        }
        previous_delta = offset_delta;
        let tail_start = r.at;
        let key = r.bytes(true).ok_or_else(|| invalid(i, "bad key"))?;
        let value = r.bytes(true).ok_or_else(|| invalid(i, "bad value"))?;
        let headers = r.varint().filter(|h| *h >= 0).ok_or_else(|| invalid(i, "bad header count"))?;
        for _ in 0..headers {
            r.bytes(false).ok_or_else(|| invalid(i, "bad header key"))?;
            r.bytes(true).ok_or_else(|| invalid(i, "bad header value"))?;
        }
        if r.at != end {
            return Err(invalid(i, "length disagrees with its contents"));
        }
        let view = RecordView {
            attributes,
            timestamp_delta,
            offset_delta,
            key: key.map(|(from, to)| &records[from..to]),
            value_is_null: value.is_none(),
            tail: &records[tail_start..end],
        };
        f(i, view);
        c.at = end;
    }
    if c.at != records.len() {
        return Err(RecordError::Invalid(format!(
            "{} bytes after the last of {} records",
            records.len() - c.at,
            header.record_count
        )));
    }
    Ok(())
}

/// Records ahead of the one ending at `end` (`bytes` long), if they are as long: the cache
/// line of the last byte of the third one on is asked for now. Each record's walk reads its
/// first bytes and its last (the header count); at 1 KiB records that is one cache line in
/// sixteen, a stride the hardware prefetchers do not follow, so without this every record
/// waited for its last line (30 % of `validate`'s samples on one load, under 1 MB batches).
/// Records of other lengths make the hint useless, never wrong.
#[inline]
fn prefetch_record_end(records: &[u8], end: usize, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(line) = records.get(end + PREFETCH_RECORDS_AHEAD * bytes - 1) {
        // SAFETY: a prefetch hint; the address lies inside `records`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line as *const u8 as *const i8)
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (records, end, bytes);
}

/// How many records ahead `prefetch_record_end` looks.
const PREFETCH_RECORDS_AHEAD: usize = 3;

/// Appends one record in Kafka's encoding: length, attributes, timestamp delta, offset
/// delta, then `tail` (key, value, headers as stored).
pub fn encode_record(out: &mut Vec<u8>, attributes: u8, timestamp_delta: i64, offset_delta: i32, tail: &[u8]) {
    let mut head = Vec::with_capacity(21);
    head.push(attributes);
    put_varlong(&mut head, timestamp_delta);
    put_varlong(&mut head, offset_delta as i64);
    put_varlong(out, (head.len() + tail.len()) as i64);
    out.extend_from_slice(&head);
    out.extend_from_slice(tail);
}

/// A zig-zag varint (Kafka's `ByteUtils.writeVarlong`).
fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// Re-compresses every batch of a produce request's records whose codec is not `target`
/// (topic `compression.type`); batches already in it are kept byte for byte. Only the
/// records section changes: it is decompressed and compressed again, byte for byte the same
/// records, and the header gets the new codec bits, length and CRC. Timestamps, producer
/// fields, sequences and every record (duplicate header keys included) are untouched.
pub fn recompress(records: &[u8], target: Codec) -> Result<Vec<u8>, BatchError> {
    if let Codec::Unknown(c) = target {
        return Err(BatchError::InvalidRecords(format!("cannot compress with codec {c}")));
    }
    let spans = super::batch::validate_all(records, super::batch::Check::Produced)?;
    let mut out = Vec::with_capacity(records.len());
    for span in spans {
        let bytes = &records[span.position..span.position + span.header.size_bytes()];
        if span.header.codec() == target {
            out.extend_from_slice(bytes);
            continue;
        }
        validate(bytes, &span.header, false)?;
        let payload = &bytes[BATCH_HEADER_BYTES..];
        let plain = match span.header.codec() {
            Codec::None => payload.to_vec(),
            codec => decompress(codec, payload)?,
        };
        let packed = compress(target, &plain)
            .map_err(|e| BatchError::InvalidRecords(format!("compressing as {target:?} failed: {e}")))?;
        out.extend_from_slice(&super::batch::rebuild(&bytes[..BATCH_HEADER_BYTES], target, &packed));
    }
    Ok(out)
}

/// Compresses a records section with `codec` (snappy unframed, lz4 frame, zstd level 3,
/// gzip default level: what librdkafka sends).
pub fn compress(codec: Codec, plain: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    match codec {
        Codec::None | Codec::Unknown(_) => Ok(plain.to_vec()),
        Codec::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(plain)?;
            e.finish()
        }
        Codec::Snappy => snap::raw::Encoder::new().compress_vec(plain).map_err(std::io::Error::other),
        Codec::Lz4 => {
            let mut e = lz4::EncoderBuilder::new().build(Vec::new())?;
            e.write_all(plain)?;
            let (out, result) = e.finish();
            result.map(|_| out)
        }
        Codec::Zstd => zstd::bulk::compress(plain, 3),
    }
}

impl From<RecordError> for BatchError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Undecompressable(why) => BatchError::Undecompressable(why),
            RecordError::Invalid(why) => BatchError::InvalidRecords(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    #[test]
    fn varlongs_of_every_width_decode_and_malformed_ones_are_refused() {
        let mut values = vec![0i64, 1, -1, 63, -64, 64, -65, 8191, -8192, 8192, -8193, i32::MAX as i64];
        values.extend([i32::MIN as i64, i64::MAX, i64::MIN, 1 << 40, -(1 << 40)]);
        for v in values {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            buf.push(0x55); // what follows stays unread
            let mut c = Cursor { buf: &buf, at: 0 };
            assert_eq!((c.varlong(), c.at), (Some(v), buf.len() - 1), "{v}");
            // Cut one byte short: refused, not read past the end.
            let short = &buf[..buf.len() - 2];
            assert_eq!(Cursor { buf: short, at: 0 }.varlong(), None, "{v} truncated");
        }
        assert_eq!(Cursor { buf: &[0x80; 11], at: 0 }.varlong(), None, "longer than 10 bytes");
        assert_eq!(Cursor { buf: &[0x80, 0x80, 0x01], at: 0 }.varlong(), Some(8192), "an overlong 3-byte form");
        let too_big = [0xff, 0xff, 0xff, 0xff, 0x1f];
        assert_eq!(Cursor { buf: &too_big, at: 0 }.varint(), None, "outside i32");
    }

    fn batch(compression: Compression, n: usize) -> Vec<u8> {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder keeps records with equal offset − sequence in one batch; a
                // non-idempotent batch's base sequence is then -1.
                sequence: i as i32 - 1,
                timestamp: 1000 + i as i64,
                key: (i % 2 == 0).then(|| bytes::Bytes::from(format!("k{i}"))),
                value: Some(bytes::Bytes::from(vec![b'v'; 100 + i])),
                headers: [(kafka_protocol::protocol::StrBytes::from_static_str("h"), None)].into_iter().collect(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression }).unwrap();
        buf.to_vec()
    }

    #[test]
    fn every_codec_validates_and_damage_inside_is_found() {
        for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let b = batch(codec, 20);
            let h = BatchHeader::read(&b).unwrap();
            assert_eq!((h.record_count, h.size_bytes()), (20, b.len()), "{codec:?}: one batch of 20");
            assert_eq!(validate(&b, &h, false), Ok(()), "{codec:?}");
            // One record fewer than the header claims.
            let short = BatchHeader { record_count: 19, ..h };
            assert!(validate(&b, &short, false).is_err(), "{codec:?}: a count mismatch passed");
            // Garbage instead of the payload.
            let mut bad = b.clone();
            for byte in &mut bad[BATCH_HEADER_BYTES + 2..] {
                *byte = 0x55;
            }
            assert!(validate(&bad, &h, false).is_err(), "{codec:?}: garbage passed");
        }
    }

    #[test]
    fn xerial_framed_snappy_is_read() {
        let plain = batch(Compression::None, 5);
        let h = BatchHeader::read(&plain).unwrap();
        let records = &plain[BATCH_HEADER_BYTES..];
        let block = snap::raw::Encoder::new().compress_vec(records).unwrap();
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&(block.len() as i32).to_be_bytes());
        framed.extend_from_slice(&block);
        assert_eq!(decompress(Codec::Snappy, &framed).unwrap(), records);
        let mut b = plain[..BATCH_HEADER_BYTES].to_vec();
        b.extend_from_slice(&framed);
        let h = BatchHeader { batch_length: (b.len() - 12) as i32, attributes: h.attributes | 2, ..h };
        assert_eq!(validate(&b, &h, false), Ok(()));
    }

    #[test]
    fn recompression_keeps_records_and_changes_only_the_codec() {
        use kafka_protocol::records::RecordBatchDecoder;
        let mut two = batch(Compression::Gzip, 7);
        two.extend(batch(Compression::Zstd, 3));
        let out = recompress(&two, Codec::Lz4).unwrap();
        let spans = super::super::batch::validate_all(&out, super::super::batch::Check::Produced).unwrap();
        assert_eq!(spans.len(), 2);
        assert!(spans.iter().all(|s| s.header.codec() == Codec::Lz4));
        let before = RecordBatchDecoder::decode_all(&mut bytes::Bytes::from(two.clone())).unwrap();
        let after = RecordBatchDecoder::decode_all(&mut bytes::Bytes::from(out.clone())).unwrap();
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(b.records, a.records);
        }
        // Every codec round trip gives back the same records section.
        for target in [Codec::None, Codec::Gzip, Codec::Snappy, Codec::Zstd, Codec::Lz4] {
            let again = recompress(&recompress(&two, target).unwrap(), Codec::None).unwrap();
            assert_eq!(again, recompress(&two, Codec::None).unwrap(), "{target:?}");
        }
        assert_eq!(spans[0].header.base_sequence, -1, "a non-idempotent batch stays one");
        // Already in the target codec: untouched.
        assert_eq!(recompress(&out, Codec::Lz4).unwrap(), out);
    }

    #[test]
    fn a_decompression_bomb_is_refused() {
        let zeros = vec![0u8; DECOMPRESSED_BATCH_BYTES_MAX + 1024];
        let bomb = zstd::bulk::compress(&zeros, 3).unwrap();
        assert!(bomb.len() < 1 << 20);
        assert!(matches!(decompress(Codec::Zstd, &bomb), Err(RecordError::Invalid(_))));
    }
}
