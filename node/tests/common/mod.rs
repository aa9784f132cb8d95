//! Shared helpers for the storage integration tests.
#![allow(dead_code)]

use sluice::log::batch::BatchHeader;
use sluice::log::LogConfig;

/// 4 KiB segments with an index entry every 256 bytes: rolls and index lookups in small tests.
pub fn small_segments() -> LogConfig {
    LogConfig { segment_bytes: 4096, index_interval_bytes: 256, ..LogConfig::default() }
}

/// Encodes a valid uncompressed v2 batch of `values` (null keys, no headers), the way a
/// producer would: baseOffset 0, timestamps `timestamp + i`.
pub fn batch(values: &[&[u8]], timestamp: i64) -> Vec<u8> {
    let mut records = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let mut body = Vec::new();
        body.push(0u8); // attributes
        put_varint(&mut body, i as i64); // timestampDelta
        put_varint(&mut body, i as i64); // offsetDelta
        put_varint(&mut body, -1); // key: null
        put_varint(&mut body, value.len() as i64);
        body.extend_from_slice(value);
        put_varint(&mut body, 0); // headers
        put_varint(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let count = values.len() as i32;
    let mut buf = vec![0u8; 61];
    buf.extend_from_slice(&records);
    let batch_length = (buf.len() - 12) as i32;
    buf[8..12].copy_from_slice(&batch_length.to_be_bytes());
    buf[12..16].copy_from_slice(&(-1i32).to_be_bytes());
    buf[16] = 2;
    buf[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    buf[27..35].copy_from_slice(&timestamp.to_be_bytes());
    buf[35..43].copy_from_slice(&(timestamp + count as i64 - 1).to_be_bytes());
    buf[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    buf[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    buf[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    buf[57..61].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&buf[21..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
    buf
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Splits a byte run into batch headers (panics on anything malformed: test data only).
pub fn headers(mut bytes: &[u8]) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let h = BatchHeader::read(bytes).expect("whole header");
        bytes = &bytes[h.size_bytes()..];
        out.push(h);
    }
    out
}
