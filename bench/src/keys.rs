//! What the producers send: message sizes (fixed or uniform), keys (none, round-robin,
//! uniform, zipf) and the partition each record goes to (Java's murmur2 of the key, or
//! sticky round-robin batches when there is no key, as the Java producer does).

use anyhow::{bail, Context, Result};
use bytes::{BufMut, Bytes, BytesMut};

/// Bytes of the value pool that values are sliced from (semi-compressible text).
const VALUE_POOL_BYTES: usize = 1 << 20;
/// Bytes at the start of a value that carry the send stamp in end-to-end mode.
pub const STAMP_BYTES: usize = 8;
/// Bytes of a v2 record batch's header (Kafka's `RECORD_BATCH_OVERHEAD`).
pub const BATCH_OVERHEAD: usize = 61;

/// Bytes of a zig-zag varint.
pub fn varint_len(v: i64) -> usize {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 1;
    while z >= 0x80 {
        z >>= 7;
        n += 1;
    }
    n
}

/// Bytes a record takes in a v2 batch (Kafka's `DefaultRecord.sizeInBytes`): its length,
/// attributes, timestamp delta (0 here), offset delta, key, value and an empty header count.
pub fn record_size(offset_delta: usize, key_len: Option<usize>, value_len: usize) -> usize {
    let body = record_body_size(offset_delta, key_len, value_len);
    varint_len(body as i64) + body
}

/// [`record_size`] without the record's own length prefix.
pub fn record_body_size(offset_delta: usize, key_len: Option<usize>, value_len: usize) -> usize {
    1 + varint_len(0)
        + varint_len(offset_delta as i64)
        + key_len.map_or(varint_len(-1), |k| varint_len(k as i64) + k)
        + varint_len(value_len as i64)
        + value_len
        + varint_len(0)
}

/// Whether a batch of `count` records taking `encoded` bytes (header included) has room in
/// `batch_bytes` for one more record of the largest size the generator makes. Like
/// `batch.size` in Kafka's clients, the limit counts the encoded batch, not the payload
/// (1 KiB values: 15 per 16 KiB batch).
pub fn has_room(batch_bytes: usize, encoded: usize, count: usize, largest: (Option<usize>, usize)) -> bool {
    count == 0 || encoded + record_size(count, largest.0, largest.1) <= batch_bytes
}

#[derive(Clone, Debug)]
pub enum SizeDist {
    Fixed(usize),
    Uniform(usize, usize),
}

impl SizeDist {
    /// `1024` or `uniform:100-2000`.
    pub fn parse(s: &str) -> Result<SizeDist> {
        if let Some(range) = s.strip_prefix("uniform:") {
            let (a, b) = range.split_once('-').context("--size uniform:MIN-MAX")?;
            let (a, b): (usize, usize) = (a.parse()?, b.parse()?);
            if a > b || b == 0 {
                bail!("--size uniform:{a}-{b}: empty range");
            }
            return Ok(SizeDist::Uniform(a, b));
        }
        Ok(SizeDist::Fixed(s.parse().with_context(|| format!("--size {s:?}"))?))
    }

    pub fn max(&self) -> usize {
        match *self {
            SizeDist::Fixed(n) => n,
            SizeDist::Uniform(_, b) => b,
        }
    }

    pub fn describe(&self) -> String {
        match *self {
            SizeDist::Fixed(n) => format!("{n}"),
            SizeDist::Uniform(a, b) => format!("uniform:{a}-{b}"),
        }
    }
}

#[derive(Clone, Debug)]
pub enum KeyDist {
    None,
    RoundRobin(u64),
    Uniform(u64),
    Zipf(u64, f64),
}

impl KeyDist {
    /// `none`, `round-robin`, `uniform`, `zipf` or `zipf:S`, over `space` distinct keys.
    pub fn parse(s: &str, space: u64) -> Result<KeyDist> {
        Ok(match s {
            "none" => KeyDist::None,
            "round-robin" => KeyDist::RoundRobin(space),
            "uniform" => KeyDist::Uniform(space),
            "zipf" => KeyDist::Zipf(space, 0.99),
            _ => match s.strip_prefix("zipf:") {
                Some(e) => KeyDist::Zipf(space, e.parse().context("--keys zipf:EXPONENT")?),
                None => bail!("--keys: none, round-robin, uniform, zipf[:S]"),
            },
        })
    }

    pub fn describe(&self) -> String {
        match *self {
            KeyDist::None => "none".into(),
            KeyDist::RoundRobin(n) => format!("round-robin/{n}"),
            KeyDist::Uniform(n) => format!("uniform/{n}"),
            KeyDist::Zipf(n, s) => format!("zipf:{s}/{n}"),
        }
    }
}

/// Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as the Java default
/// partitioner uses it.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: i32 = 0x5bd1_e995;
    let mut h: i32 = 0x9747_b28c_u32 as i32 ^ data.len() as i32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= ((k as u32) >> 24) as i32;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as i32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as i32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as i32;
        h = h.wrapping_mul(M);
    }
    h ^= ((h as u32) >> 13) as i32;
    h = h.wrapping_mul(M);
    h ^= ((h as u32) >> 15) as i32;
    h
}

/// The Java default partitioner's choice for a keyed record.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions
}

/// A record value: the 8-byte send stamp (end-to-end mode) followed by `len` bytes of the
/// generator's pool at `at`. Nothing is allocated per record; the bytes are copied once,
/// into the request.
#[derive(Clone, Copy, Debug)]
pub struct Value {
    pub stamp: Option<u64>,
    pub at: u32,
    pub len: u32,
}

impl Value {
    pub fn len(&self) -> usize {
        self.stamp.map_or(0, |_| STAMP_BYTES) + self.len as usize
    }

    /// Appends the value's bytes to `out`.
    pub fn write(&self, pool: &[u8], out: &mut BytesMut) {
        if let Some(ns) = self.stamp {
            out.put_u64(ns);
        }
        out.put_slice(&pool[self.at as usize..(self.at + self.len) as usize]);
    }

    /// The value as `Bytes` (a slice of the pool when there is no stamp).
    pub fn to_bytes(self, pool: &Bytes) -> Bytes {
        match self.stamp {
            None => pool.slice(self.at as usize..(self.at + self.len) as usize),
            Some(_) => {
                let mut v = BytesMut::with_capacity(self.len());
                self.write(pool, &mut v);
                v.freeze()
            }
        }
    }
}

/// Generates records for one producer thread.
pub struct MsgGen {
    size: SizeDist,
    keys: KeyDist,
    partitions: i32,
    batch_bytes: usize,
    rng: fastrand::Rng,
    pool: Bytes,
    /// Zipf cumulative distribution over the key space.
    zipf_cdf: Vec<f64>,
    counter: u64,
    sticky: i32,
    /// Encoded bytes and records of the sticky partition's current batch.
    sticky_bytes: usize,
    sticky_count: usize,
    /// See [`MsgGen::largest`].
    largest: (Option<usize>, usize),
}

impl MsgGen {
    pub fn new(size: &SizeDist, keys: &KeyDist, partitions: i32, batch_bytes: usize, seed: u64) -> MsgGen {
        let mut rng = fastrand::Rng::with_seed(seed);
        let words = ["sluice", "kafka", "record", "batch", "offset", "broker", "core", "shard", "log", "fetch"];
        let mut pool = BytesMut::with_capacity(VALUE_POOL_BYTES + size.max() + 16);
        while pool.len() < VALUE_POOL_BYTES + size.max() {
            pool.put_slice(words[rng.usize(..words.len())].as_bytes());
            pool.put_u8(if rng.u8(..8) == 0 { b'0' + rng.u8(..10) } else { b' ' });
        }
        let zipf_cdf = match *keys {
            KeyDist::Zipf(n, s) => {
                let weights: Vec<f64> = (1..=n.max(1)).map(|k| 1.0 / (k as f64).powf(s)).collect();
                let total: f64 = weights.iter().sum();
                let mut acc = 0.0;
                weights
                    .iter()
                    .map(|w| {
                        acc += w / total;
                        acc
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        let largest_key = match *keys {
            KeyDist::None => None,
            KeyDist::RoundRobin(n) | KeyDist::Uniform(n) | KeyDist::Zipf(n, _) => {
                Some(format!("key-{}", n.max(1) - 1).len())
            }
        };
        MsgGen {
            // Values carry at least the stamp's bytes in end-to-end mode.
            largest: (largest_key, size.max().max(STAMP_BYTES)),
            size: size.clone(),
            keys: keys.clone(),
            partitions: partitions.max(1),
            batch_bytes,
            sticky: rng.i32(0..partitions.max(1)),
            rng,
            pool: pool.freeze(),
            zipf_cdf,
            counter: 0,
            sticky_bytes: BATCH_OVERHEAD,
            sticky_count: 0,
        }
    }

    /// Key and value length of the largest record this generator makes.
    pub fn largest(&self) -> (Option<usize>, usize) {
        self.largest
    }

    /// The pool that values point into.
    pub fn pool(&self) -> &Bytes {
        &self.pool
    }

    /// The next record: partition, key and value (stamped with `stamp_ns` if given).
    pub fn next(&mut self, stamp_ns: Option<u64>) -> (i32, Option<Bytes>, Value) {
        let size = match self.size {
            SizeDist::Fixed(n) => n,
            SizeDist::Uniform(a, b) => self.rng.usize(a..=b),
        };
        let at = self.rng.usize(..VALUE_POOL_BYTES) as u32;
        let value = match stamp_ns {
            Some(ns) => Value { stamp: Some(ns), at, len: size.saturating_sub(STAMP_BYTES) as u32 },
            None => Value { stamp: None, at, len: size as u32 },
        };
        self.counter += 1;
        let key_number = match self.keys {
            KeyDist::None => None,
            KeyDist::RoundRobin(n) => Some(self.counter % n.max(1)),
            KeyDist::Uniform(n) => Some(self.rng.u64(..n.max(1))),
            KeyDist::Zipf(..) => {
                let x = self.rng.f64();
                Some(self.zipf_cdf.partition_point(|&c| c < x).min(self.zipf_cdf.len() - 1) as u64)
            }
        };
        match key_number {
            Some(k) => {
                let key = Bytes::from(format!("key-{k}"));
                (partition_for_key(&key, self.partitions), Some(key), value)
            }
            None => {
                // Sticky: fill a batch for one partition, then move to the next (the
                // producer's accumulator closes the batch by the same rule).
                let p = self.sticky;
                self.sticky_bytes += record_size(self.sticky_count, None, value.len());
                self.sticky_count += 1;
                if !has_room(self.batch_bytes, self.sticky_bytes, self.sticky_count, self.largest) {
                    self.sticky_bytes = BATCH_OVERHEAD;
                    self.sticky_count = 0;
                    self.sticky = (self.sticky + 1) % self.partitions;
                }
                (p, None, value)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// murmur2 matches the values Kafka's own UtilsTest expects.
    #[test]
    fn murmur2_matches_java() {
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    /// Record sizes as Kafka counts them; 1 KiB values: 15 to a 16 KiB batch, as in
    /// Kafka's clients.
    #[test]
    fn batch_room_counts_encoded_records() {
        assert_eq!(record_size(0, None, 1024), 1033);
        assert_eq!(record_size(64, Some(5), 100), 2 + (1 + 1 + 2 + 1 + 5 + 2 + 100 + 1));
        let mut encoded = BATCH_OVERHEAD;
        let mut count = 0;
        while has_room(16384, encoded, count, (None, 1024)) {
            encoded += record_size(count, None, 1024);
            count += 1;
        }
        assert_eq!(count, 15);
        let mut g = MsgGen::new(&SizeDist::Fixed(1024), &KeyDist::None, 3, 16384, 1);
        let parts: Vec<i32> = (0..45).map(|_| g.next(None).0).collect();
        for chunk in parts.chunks(15) {
            assert!(chunk.iter().all(|&p| p == chunk[0]), "{parts:?}");
        }
        assert_ne!(parts[0], parts[15]);
    }

    /// Sizes follow the distribution and stamps sit at the start of the value.
    #[test]
    fn values_have_sizes_and_stamps() {
        let mut g = MsgGen::new(&SizeDist::Uniform(10, 20), &KeyDist::Zipf(100, 1.0), 4, 1000, 7);
        for _ in 0..1000 {
            let (p, k, v) = g.next(Some(42));
            let v = v.to_bytes(g.pool());
            assert!((10..=20).contains(&v.len()));
            assert_eq!(u64::from_be_bytes(v[..8].try_into().unwrap()), 42);
            assert_eq!(p, partition_for_key(&k.unwrap(), 4));
        }
    }
}
