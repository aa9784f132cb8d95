//! Byte compatibility with Kafka's on-disk format, checked against an independent encoder
//! (the kafka-protocol crate) and an independent statement of Kafka's index rules.
//!
//! The batches cover every codec, null and empty keys and values, headers (some with null
//! values), plain and idempotent producers, CreateTime timestamps out of order and missing
//! (`NO_TIMESTAMP`). The `.log` must be the producer's bytes with only baseOffset (0..8) and
//! partitionLeaderEpoch (12..16) patched; kafka-protocol must decode it back to the same
//! records at their absolute offsets; the `.index` / `.timeindex` must hold exactly the
//! entries of Kafka's `LogSegment.append` (per batch, 3.x) and `onBecomeInactiveSegment`.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice::log::{LogConfig, OpenHint, PartitionLog};
use sluice::runtime::test_executor;
use sluice::testing::TempDir;
use std::path::Path;

const LEADER_EPOCH: i32 = 7;
const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
/// Kafka's `RecordBatch.NO_TIMESTAMP`.
const NO_TIMESTAMP: i64 = -1;
const INDEX_INTERVAL_BYTES: u64 = 256;

/// One batch as a producer built it: its records and their encoding (baseOffset 0,
/// partitionLeaderEpoch -1).
struct Produced {
    records: Vec<Record>,
    bytes: Vec<u8>,
}

impl Produced {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn offsets(&self) -> i64 {
        self.records.len() as i64
    }

    fn max_timestamp(&self) -> i64 {
        self.records.iter().map(|r| r.timestamp).max().expect("a batch has records")
    }

    /// The bytes the log must hold for this batch at `base_offset`: the producer's bytes with
    /// baseOffset (bytes 0..8) and partitionLeaderEpoch (bytes 12..16) patched, nothing else.
    fn stored(&self, base_offset: i64) -> Vec<u8> {
        let mut b = self.bytes.clone();
        b[0..8].copy_from_slice(&base_offset.to_be_bytes());
        b[12..16].copy_from_slice(&LEADER_EPOCH.to_be_bytes());
        b
    }

    /// The records a consumer must decode from the stored batch.
    fn stored_records(&self, base_offset: i64) -> Vec<Record> {
        let mut records = self.records.clone();
        for r in &mut records {
            r.offset += base_offset;
            r.partition_leader_epoch = LEADER_EPOCH;
        }
        records
    }
}

fn random_bytes(rng: &mut fastrand::Rng, len: std::ops::Range<usize>) -> Bytes {
    let len = rng.usize(len);
    Bytes::from((0..len).map(|_| rng.u8(..)).collect::<Vec<u8>>())
}

/// A record with a random mix of null, empty and filled keys and values, and headers (some
/// with null values). `producer` is (id, epoch, base sequence) for an idempotent producer.
fn random_record(rng: &mut fastrand::Rng, i: i64, timestamp: i64, producer: Option<(i64, i16, i32)>) -> Record {
    let key = match rng.u8(0..4) {
        0 => None,
        1 => Some(Bytes::new()),
        _ => Some(random_bytes(rng, 1..24)),
    };
    let value = match rng.u8(0..6) {
        0 => None,
        1 => Some(Bytes::new()),
        2 => Some(Bytes::from(format!("compressible {i} ").repeat(rng.usize(1..40)))),
        _ => Some(random_bytes(rng, 0..300)),
    };
    let mut headers = IndexMap::new();
    for h in 0..rng.usize(0..3) {
        let value = if rng.bool() { None } else { Some(random_bytes(rng, 0..16)) };
        headers.insert(StrBytes::from_string(format!("header-{h}")), value);
    }
    // Non-idempotent producers send sequence -1 for the batch; the encoder derives the base
    // sequence from the first record, and keeps records with equal offset-sequence together.
    let (producer_id, producer_epoch, sequence) = match producer {
        Some((id, epoch, base_sequence)) => (id, epoch, base_sequence + i as i32),
        None => (-1, -1, i as i32 - 1),
    };
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: i,
        sequence,
        timestamp,
        key,
        value,
        headers,
    }
}

/// Encodes one batch with the kafka-protocol crate. Records inside get CreateTime timestamps
/// around `timestamp` (not in order), or all `NO_TIMESTAMP`.
fn produce(rng: &mut fastrand::Rng, n: usize, timestamp: i64) -> Produced {
    let compression = CODECS[n % CODECS.len()];
    // A distinct idempotent producer per batch: each starts at sequence 0, as a new producer does.
    let producer = (n % 3 == 0).then_some((4242 + n as i64, 3, 0));
    let count = rng.i64(1..=8);
    let records: Vec<Record> = (0..count)
        .map(|i| {
            let ts = if timestamp == NO_TIMESTAMP { NO_TIMESTAMP } else { timestamp + rng.i64(-10..=10) };
            random_record(rng, i, ts, producer)
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression }).expect("encode");
    let bytes = buf.to_vec();
    let infos = RecordBatchDecoder::decode_batch_info(&mut Bytes::from(bytes.clone())).expect("own encoding decodes");
    assert_eq!(infos.len(), 1, "the encoder made one batch");
    assert_eq!(infos[0].timestamp_type, TimestampType::Creation);
    Produced { records, bytes }
}

/// What one segment must hold, with the index entries computed the way Kafka's
/// `LogSegment.append` (3.x, per batch) and `onBecomeInactiveSegment` compute them.
struct ExpectedSegment {
    base_offset: i64,
    log: Vec<u8>,
    records: Vec<Record>,
    /// (relative offset, position)
    index: Vec<(u32, u32)>,
    /// (timestamp, relative offset)
    time_index: Vec<(i64, u32)>,
    bytes_since_last_index_entry: u64,
    max_timestamp_so_far: i64,
    shallow_offset_of_max_timestamp: i64,
    /// Sealing added a time index entry (the newest batch had none yet).
    seal_added_entry: bool,
}

impl ExpectedSegment {
    fn new(base_offset: i64) -> ExpectedSegment {
        ExpectedSegment {
            base_offset,
            log: Vec::new(),
            records: Vec::new(),
            index: Vec::new(),
            time_index: Vec::new(),
            bytes_since_last_index_entry: 0,
            max_timestamp_so_far: NO_TIMESTAMP,
            shallow_offset_of_max_timestamp: base_offset,
            seal_added_entry: false,
        }
    }

    fn size(&self) -> u64 {
        self.log.len() as u64
    }

    fn relative(&self, offset: i64) -> u32 {
        u32::try_from(offset - self.base_offset).expect("offset inside the segment")
    }

    fn add(&mut self, batch: &Produced, base_offset: i64) {
        let position = self.log.len() as u32;
        let last_offset = base_offset + batch.offsets() - 1;
        if batch.max_timestamp() > self.max_timestamp_so_far {
            self.max_timestamp_so_far = batch.max_timestamp();
            self.shallow_offset_of_max_timestamp = last_offset;
        }
        if self.bytes_since_last_index_entry > INDEX_INTERVAL_BYTES {
            self.index.push((self.relative(last_offset), position));
            self.time_index_maybe_append();
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += batch.size();
        self.log.extend_from_slice(&batch.stored(base_offset));
        self.records.extend(batch.stored_records(base_offset));
    }

    /// `TimeIndex.maybeAppend`: only a timestamp newer than the last entry's, where an empty
    /// index's last entry is (NO_TIMESTAMP, base offset).
    fn time_index_maybe_append(&mut self) -> bool {
        let last = self.time_index.last().map_or(NO_TIMESTAMP, |&(ts, _)| ts);
        let newer = self.max_timestamp_so_far > last;
        if newer {
            let rel = self.relative(self.shallow_offset_of_max_timestamp);
            self.time_index.push((self.max_timestamp_so_far, rel));
        }
        newer
    }

    fn seal(&mut self) {
        self.seal_added_entry = self.time_index_maybe_append();
    }
}

fn read_offset_index(path: &Path) -> Vec<(u32, u32)> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes.len() % 8, 0, "{}: whole 8-byte entries", path.display());
    bytes
        .chunks_exact(8)
        .map(|e| (u32::from_be_bytes(e[0..4].try_into().unwrap()), u32::from_be_bytes(e[4..8].try_into().unwrap())))
        .collect()
}

fn read_time_index(path: &Path) -> Vec<(i64, u32)> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes.len() % 12, 0, "{}: whole 12-byte entries", path.display());
    bytes
        .chunks_exact(12)
        .map(|e| (i64::from_be_bytes(e[0..8].try_into().unwrap()), u32::from_be_bytes(e[8..12].try_into().unwrap())))
        .collect()
}

/// Compares one segment's three files with what Kafka would have written.
fn check_segment(dir: &Path, expected: &ExpectedSegment) {
    let stem = format!("{:020}", expected.base_offset);
    let log = std::fs::read(dir.join(format!("{stem}.log"))).unwrap();
    assert_eq!(log.len(), expected.log.len(), "{stem}.log length");
    if let Some(at) = log.iter().zip(&expected.log).position(|(a, b)| a != b) {
        panic!("{stem}.log differs from the patched producer bytes first at byte {at}");
    }
    let decoded = RecordBatchDecoder::decode_all(&mut Bytes::from(log)).expect("kafka-protocol decodes the .log");
    let records: Vec<Record> = decoded.into_iter().flat_map(|set| set.records).collect();
    assert_eq!(records.len(), expected.records.len(), "{stem}.log record count");
    for (got, want) in records.iter().zip(&expected.records) {
        assert_eq!(got, want, "{stem}.log record at offset {}", want.offset);
    }
    assert_eq!(read_offset_index(&dir.join(format!("{stem}.index"))), expected.index, "{stem}.index");
    assert_eq!(read_time_index(&dir.join(format!("{stem}.timeindex"))), expected.time_index, "{stem}.timeindex");
}

/// The names of the segment files in `dir`, sorted.
fn segment_file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log") || n.ends_with(".index") || n.ends_with(".timeindex"))
        .collect();
    names.sort();
    names
}

/// Appends `batches` in produce requests of 1..=`per_request` batches, rolling the expected
/// segments by Kafka's size rule, and returns the expected segments.
async fn append_all(
    log: &std::rc::Rc<PartitionLog>,
    rng: &mut fastrand::Rng,
    batches: &[Produced],
    per_request: usize,
    segment_bytes: u64,
) -> Vec<ExpectedSegment> {
    let mut segments = vec![ExpectedSegment::new(0)];
    let mut next_offset = 0;
    let mut i = 0;
    while i < batches.len() {
        let group = &batches[i..(i + rng.usize(1..=per_request)).min(batches.len())];
        let request: Vec<u8> = group.iter().flat_map(|b| b.bytes.iter().copied()).collect();
        let active = segments.last_mut().expect("a segment");
        if active.size() > 0 && active.size() + request.len() as u64 > segment_bytes {
            active.seal();
            segments.push(ExpectedSegment::new(next_offset));
        }
        let info = log.append(&request, LEADER_EPOCH, 0).await.unwrap();
        assert_eq!(info.first_offset, next_offset);
        for b in group {
            segments.last_mut().expect("a segment").add(b, next_offset);
            next_offset += b.offsets();
        }
        assert_eq!(info.last_offset, next_offset - 1);
        i += group.len();
    }
    segments
}

/// Kafka-encoded batches of every codec are stored byte for byte, offset and epoch patched, with Kafka's index entries.
#[test]
fn kafka_encoded_batches_are_stored_byte_for_byte_with_kafkas_index_entries() {
    let tmp = TempDir::new("compat-bytes");
    let dir = tmp.path().join("orders-0");
    test_executor().run(async move {
        let config =
            LogConfig { index_interval_bytes: INDEX_INTERVAL_BYTES, segment_ms: i64::MAX, ..LogConfig::default() };
        let log = PartitionLog::open(&dir, config, OpenHint::default()).await.unwrap();
        let mut rng = fastrand::Rng::with_seed(0x6b_6166_6b61);
        let mut timestamp = 1_700_000_000_000i64;
        let batches: Vec<Produced> = (0..80)
            .map(|n| {
                // The first batches carry no timestamp; later ones mostly move forward, with
                // repeats and steps back, so the time index must skip entries.
                let ts = match n {
                    0..=3 => NO_TIMESTAMP,
                    _ if n % 5 == 0 => timestamp,
                    _ if n % 7 == 0 => timestamp - 5_000,
                    _ => {
                        timestamp += 1_000;
                        timestamp
                    }
                };
                produce(&mut rng, n, ts)
            })
            .collect();
        let segments = append_all(&log, &mut rng, &batches, 3, u64::MAX).await;
        assert_eq!(segments.len(), 1);
        log.sync_to(log.next_offset()).await.unwrap();
        assert_eq!(log.segment_bases(), vec![0]);
        assert_eq!(
            segment_file_names(&dir),
            ["00000000000000000000.index", "00000000000000000000.log", "00000000000000000000.timeindex"]
        );
        let expected = &segments[0];
        assert!(expected.index.len() >= 10, "enough batches for many index entries");
        assert!(expected.time_index.len() >= 5 && expected.time_index.len() < expected.index.len());
        check_segment(&dir, expected);
    });
}

/// Rolled segments are named by their first offset and a sealed segment's time index ends at its newest timestamp.
#[test]
fn rolled_segments_are_named_by_base_offset_and_sealed_with_their_max_timestamp() {
    let tmp = TempDir::new("compat-roll");
    let dir = tmp.path().join("orders-0");
    const SEGMENT_BYTES: u64 = 4096;
    test_executor().run(async move {
        let config = LogConfig {
            segment_bytes: SEGMENT_BYTES,
            index_interval_bytes: INDEX_INTERVAL_BYTES,
            segment_ms: i64::MAX,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(&dir, config, OpenHint::default()).await.unwrap();
        let mut rng = fastrand::Rng::with_seed(0x726f_6c6c);
        // Timestamps jump around, so a segment's newest record is often not in its last batch.
        let batches: Vec<Produced> = (0..120)
            .map(|n| {
                let ts = 1_700_000_000_000 + rng.i64(0..100_000);
                produce(&mut rng, n, ts)
            })
            .collect();
        let segments = append_all(&log, &mut rng, &batches, 2, SEGMENT_BYTES).await;
        assert!(segments.len() >= 4, "{} segments", segments.len());
        log.sync_to(log.next_offset()).await.unwrap();

        let bases: Vec<i64> = segments.iter().map(|s| s.base_offset).collect();
        assert_eq!(log.segment_bases(), bases);
        let second_first_batch = i64::from_be_bytes(segments[1].log[0..8].try_into().unwrap());
        assert_eq!(bases[1], second_first_batch);
        assert!(dir.join(format!("{second_first_batch:020}.log")).exists());
        let mut names: Vec<String> =
            bases.iter().flat_map(|b| ["index", "log", "timeindex"].map(|ext| format!("{b:020}.{ext}"))).collect();
        names.sort();
        assert_eq!(segment_file_names(&dir), names);

        assert!(segments.iter().any(|s| s.seal_added_entry), "some seal must add the final entry");
        for (i, segment) in segments.iter().enumerate() {
            if i + 1 < segments.len() {
                let newest = segment.records.iter().map(|r| r.timestamp).max().unwrap();
                let newest_offset = segment.records.iter().rev().find(|r| r.timestamp == newest).unwrap().offset;
                let &(ts, rel) = segment.time_index.last().expect("a sealed segment has a time index entry");
                assert_eq!(ts, newest, "segment {}: the time index ends at its newest record", segment.base_offset);
                let batch_end = segment.shallow_offset_of_max_timestamp;
                assert_eq!(segment.base_offset + rel as i64, batch_end);
                assert!(newest_offset <= batch_end, "keyed by the last offset of the newest record's batch");
            }
            check_segment(&dir, segment);
        }
    });
}
