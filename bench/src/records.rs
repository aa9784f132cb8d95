//! Building produce requests: v2 record batches and the Produce v7 body.
//!
//! Uncompressed batches are encoded by hand straight into the connection's request buffer,
//! so each value is copied once (from the generator's pool) and nothing is allocated per
//! record; the output is byte for byte what kafka-protocol's `RecordBatchEncoder` writes
//! (tested below). Compressed batches go through kafka-protocol's encoder with the
//! codecs below and are then copied into the request.

use crate::keys::{record_body_size, Value};
use anyhow::{bail, Result};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use std::time::Instant;

/// One record waiting in the accumulator.
pub struct Msg {
    pub key: Option<Bytes>,
    pub value: Value,
    pub created: Instant,
}

/// The producer fields of a batch header: id, epoch and the base sequence of its first
/// record. [`ProducerIds::NONE`] (all −1) for a producer that is not idempotent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerIds {
    pub id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
}

impl ProducerIds {
    pub const NONE: ProducerIds = ProducerIds { id: -1, epoch: -1, base_sequence: -1 };
}

/// `sequence` advanced by `n` records, wrapping from `i32::MAX` to 0 as Kafka's
/// `DefaultRecordBatch.incrementSequence` does.
pub fn next_sequence(sequence: i32, n: i32) -> i32 {
    if sequence > i32::MAX - n {
        n - (i32::MAX - sequence) - 1
    } else {
        sequence + n
    }
}

/// Appends a zig-zag varint.
fn put_varint(buf: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    buf.put_u8(z as u8);
}

/// Appends a v2 record batch of `msgs` without compression, all records stamped `now_ms`
/// (create time), with the producer fields `ids`, offsets 0.. (the broker assigns the real
/// ones).
pub fn encode_plain(buf: &mut BytesMut, msgs: &[Msg], pool: &[u8], now_ms: i64, ids: ProducerIds) {
    let start = buf.len();
    buf.put_i64(0); // base offset
    buf.put_i32(0); // batch length, set below
    buf.put_i32(-1); // partition leader epoch
    buf.put_i8(2); // magic
    buf.put_u32(0); // crc, set below
    let crc_from = buf.len();
    buf.put_i16(0); // attributes: no compression, create time, not transactional
    buf.put_i32(msgs.len() as i32 - 1); // last offset delta
    buf.put_i64(now_ms); // base timestamp
    buf.put_i64(now_ms); // max timestamp
    buf.put_i64(ids.id); // producer id
    buf.put_i16(ids.epoch); // producer epoch
    buf.put_i32(ids.base_sequence); // base sequence
    buf.put_i32(msgs.len() as i32);
    for (i, m) in msgs.iter().enumerate() {
        let key_len = m.key.as_ref().map(Bytes::len);
        put_varint(buf, record_body_size(i, key_len, m.value.len()) as i64);
        buf.put_i8(0); // attributes
        put_varint(buf, 0); // timestamp delta
        put_varint(buf, i as i64); // offset delta
        match &m.key {
            Some(k) => {
                put_varint(buf, k.len() as i64);
                buf.put_slice(k);
            }
            None => put_varint(buf, -1),
        }
        put_varint(buf, m.value.len() as i64);
        m.value.write(pool, buf);
        put_varint(buf, 0); // headers
    }
    let len = (buf.len() - start - 12) as i32;
    buf[start + 8..start + 12].copy_from_slice(&len.to_be_bytes());
    let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &buf[crc_from..]) as u32;
    buf[crc_from - 4..crc_from].copy_from_slice(&crc.to_be_bytes());
}

/// A record batch through kafka-protocol's encoder (compressed batches; the reference for
/// [`encode_plain`]).
pub fn encode_with_crate(
    msgs: &[Msg],
    pool: &Bytes,
    compression: Compression,
    now_ms: i64,
    ids: ProducerIds,
) -> Result<Bytes> {
    let records: Vec<Record> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: ids.id,
            producer_epoch: ids.epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // kafka-protocol starts a new batch wherever offset − sequence changes and
            // writes the first record's sequence as the base sequence: with sequence =
            // base + offset the records stay in one batch whose base sequence is `base`
            // (−1 without idempotence). A constant sequence made every record a batch of its
            // own. (Only the base sequence is on the wire; wrapping_add keeps offset −
            // sequence constant past i32::MAX, as the crate computes it.)
            sequence: ids.base_sequence.wrapping_add(i as i32),
            timestamp: now_ms,
            key: m.key.clone(),
            value: Some(m.value.to_bytes(pool)),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::with_capacity(msgs.iter().map(|m| m.value.len() + 16).sum::<usize>() + 64);
    let options = RecordEncodeOptions { version: 2, compression };
    match compression {
        Compression::Lz4 | Compression::Zstd => {
            RecordBatchEncoder::encode_with_custom_compression(&mut buf, records.iter(), &options, Some(compress))?
        }
        _ => RecordBatchEncoder::encode(&mut buf, records.iter(), &options)?,
    }
    Ok(buf.freeze())
}

/// Appends a Produce v7 request body (one topic; one batch per partition, each with its
/// producer fields) to `buf`.
pub fn produce_body(
    buf: &mut BytesMut,
    topic: &str,
    acks: i16,
    compression: Compression,
    batches: &[(i32, &[Msg], ProducerIds)],
    pool: &Bytes,
    now_ms: i64,
) -> Result<()> {
    buf.put_i16(-1); // transactional id: null
    buf.put_i16(acks);
    buf.put_i32(30_000); // timeout ms
    buf.put_i32(1); // topics
    buf.put_i16(topic.len() as i16);
    buf.put_slice(topic.as_bytes());
    buf.put_i32(batches.len() as i32);
    for &(partition, msgs, ids) in batches {
        buf.put_i32(partition);
        let len_at = buf.len();
        buf.put_i32(0); // records length, set below
        match compression {
            Compression::None => encode_plain(buf, msgs, pool, now_ms, ids),
            c => buf.put_slice(&encode_with_crate(msgs, pool, c, now_ms, ids)?),
        }
        let len = (buf.len() - len_at - 4) as i32;
        buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

thread_local! {
    /// One zstd context per load thread: a fresh context per batch (what kafka-protocol's
    /// stream encoder does) costs more than compressing a 16 KiB batch.
    static ZSTD: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
}

/// lz4 and zstd for record batches. kafka-protocol's own lz4 runs LZ4 HC (level 4) at about
/// 45 MB/s and its zstd about 25 MB/s on this VM (measured with `sink`), which made the
/// harness the bottleneck; the fast lz4 mode is what Java clients before 3.8 used, and
/// zstd level 3 is Kafka's default level.
fn compress(src: &mut BytesMut, dst: &mut BytesMut, compression: Compression) -> Result<()> {
    use std::io::Write;
    match compression {
        Compression::Lz4 => {
            let mut enc = lz4::EncoderBuilder::new().level(0).build(Vec::with_capacity(src.len() / 2 + 64))?;
            enc.write_all(src)?;
            let (out, result) = enc.finish();
            result?;
            dst.extend_from_slice(&out);
        }
        Compression::Zstd => {
            let out = ZSTD.with(|cell| -> Result<Vec<u8>> {
                let mut slot = cell.borrow_mut();
                if slot.is_none() {
                    *slot = Some(zstd::bulk::Compressor::new(3)?);
                }
                Ok(slot.as_mut().expect("set above").compress(src)?)
            })?;
            dst.extend_from_slice(&out);
        }
        other => bail!("no custom compressor for {other:?}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{record_size, KeyDist, MsgGen, SizeDist, BATCH_OVERHEAD};
    use kafka_protocol::messages::ProduceRequest;
    use kafka_protocol::protocol::Decodable;
    use kafka_protocol::records::RecordBatchDecoder;

    fn msgs(gen: &mut MsgGen, n: usize, stamp: bool) -> Vec<Msg> {
        (0..n)
            .map(|i| {
                let (_, key, value) = gen.next(stamp.then_some(1_000 + i as u64));
                Msg { key, value, created: Instant::now() }
            })
            .collect()
    }

    /// Producer fields of a batch header: (producer id, epoch, base sequence, record count).
    fn header_ids(batch: &[u8]) -> (i64, i16, i32, i32) {
        let field = |at: usize, n: usize| batch[at..at + n].iter().fold(0i64, |v, &b| v << 8 | b as i64);
        (field(43, 8), field(51, 2) as u16 as i16, field(53, 4) as u32 as i32, field(57, 4) as u32 as i32)
    }

    /// The hand-made batch is byte for byte kafka-protocol's, with and without keys,
    /// stamps, empty values and offset deltas past one varint byte, without and with
    /// producer ids (base sequences 0, mid-range and about to wrap); its size is what the
    /// accumulator counts.
    #[test]
    fn plain_batches_match_the_crate() {
        let idempotent = |base_sequence| ProducerIds { id: 4711, epoch: 3, base_sequence };
        for ids in [ProducerIds::NONE, idempotent(0), idempotent(123_456), idempotent(i32::MAX - 5)] {
            for (size, keys, n, stamp) in [
                (SizeDist::Fixed(1024), KeyDist::None, 15, false),
                (SizeDist::Uniform(0, 300), KeyDist::Uniform(1000), 200, false),
                (SizeDist::Uniform(0, 20), KeyDist::Zipf(50, 1.1), 100, true),
            ] {
                let mut gen = MsgGen::new(&size, &keys, 4, 1 << 20, 3);
                let batch = msgs(&mut gen, n, stamp);
                let mut mine = BytesMut::new();
                encode_plain(&mut mine, &batch, gen.pool(), 1_700_000_000_123, ids);
                let theirs = encode_with_crate(&batch, gen.pool(), Compression::None, 1_700_000_000_123, ids).unwrap();
                assert_eq!(&mine[..], &theirs[..], "{ids:?}");
                assert_eq!(header_ids(&mine), (ids.id, ids.epoch, ids.base_sequence, n as i32));
                let counted: usize = BATCH_OVERHEAD
                    + batch
                        .iter()
                        .enumerate()
                        .map(|(i, m)| record_size(i, m.key.as_ref().map(Bytes::len), m.value.len()))
                        .sum::<usize>();
                assert_eq!(mine.len(), counted);
            }
        }
    }

    /// Compressed batches through the crate stay one batch per call and carry the producer
    /// fields (the crate splits a batch wherever offset − sequence changes).
    #[test]
    fn compressed_batches_carry_producer_ids() {
        let mut gen = MsgGen::new(&SizeDist::Fixed(200), &KeyDist::None, 1, 1 << 20, 9);
        let batch = msgs(&mut gen, 40, false);
        for compression in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            for ids in [ProducerIds::NONE, ProducerIds { id: 7, epoch: 0, base_sequence: i32::MAX - 3 }] {
                let bytes = encode_with_crate(&batch, gen.pool(), compression, 42, ids).unwrap();
                let length = i32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
                assert_eq!(length + 12, bytes.len(), "one batch ({compression:?}, {ids:?})");
                assert_eq!(header_ids(&bytes), (ids.id, ids.epoch, ids.base_sequence, 40));
                let set = RecordBatchDecoder::decode(&mut bytes.clone()).unwrap();
                assert_eq!(set.records.len(), 40);
                assert!(set.records.iter().all(|r| r.producer_id == ids.id && r.producer_epoch == ids.epoch));
            }
        }
    }

    /// Sequences wrap from i32::MAX to 0, as Kafka's `incrementSequence`.
    #[test]
    fn sequences_wrap_as_kafka() {
        assert_eq!(next_sequence(0, 15), 15);
        assert_eq!(next_sequence(i32::MAX - 15, 15), i32::MAX);
        assert_eq!(next_sequence(i32::MAX - 14, 15), 0);
        assert_eq!(next_sequence(i32::MAX, 1), 0);
        assert_eq!(next_sequence(i32::MAX - 2, 5), 2);
    }

    /// The hand-made request body decodes as Produce v7 with the batches intact.
    #[test]
    fn produce_body_decodes() {
        let mut gen = MsgGen::new(&SizeDist::Fixed(100), &KeyDist::None, 2, 16384, 5);
        let a = msgs(&mut gen, 3, false);
        let b = msgs(&mut gen, 5, true);
        for compression in [Compression::None, Compression::Lz4] {
            let mut buf = BytesMut::new();
            let ids = ProducerIds { id: 9, epoch: 1, base_sequence: 30 };
            let batches = [(0, &a[..], ProducerIds::NONE), (1, &b[..], ids)];
            produce_body(&mut buf, "t1", 1, compression, &batches, gen.pool(), 42).unwrap();
            let req = ProduceRequest::decode(&mut buf.freeze(), 7).unwrap();
            assert_eq!((req.acks, req.timeout_ms), (1, 30_000));
            let parts = &req.topic_data[0].partition_data;
            assert_eq!(&*req.topic_data[0].name.0, "t1");
            for (p, (want, ids)) in parts.iter().zip([(&a, ProducerIds::NONE), (&b, ids)]) {
                let mut records = p.records.clone().unwrap();
                assert_eq!(header_ids(&records), (ids.id, ids.epoch, ids.base_sequence, want.len() as i32));
                let set = RecordBatchDecoder::decode(&mut records).unwrap();
                assert_eq!(set.records.len(), want.len());
                for (r, m) in set.records.iter().zip(want.iter()) {
                    assert_eq!(r.value.as_ref().unwrap(), &m.value.to_bytes(gen.pool()));
                }
            }
        }
    }
}
