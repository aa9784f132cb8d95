//! Every bound the node enforces, in one place: a name, a unit (last in the name) and a reason.
//!
//! Assertions at the bottom tie limits together at compile time, so changing one cannot
//! silently break another.

/// Size of a record batch v2 header (baseOffset .. recordCount). A batch shorter than this
/// cannot be valid. Fixed by Kafka's format (`DefaultRecordBatch.RECORD_BATCH_OVERHEAD`).
pub const BATCH_HEADER_BYTES: usize = 61;

/// The smallest encoding of one v2 record: length, attributes, timestampDelta, offsetDelta,
/// keyLength, valueLength and header count, each a one-byte varint. An uncompressed batch
/// claiming more records than its body can hold at this size is refused as absurd.
pub const RECORD_ENCODED_BYTES_MIN: usize = 7;

/// The most records one batch may claim. A batch consumes `lastOffsetDelta + 1` offsets, so
/// an unchecked count would let a tiny compressed batch burn billions of offsets. 4 Mi
/// records is 28 MiB of the smallest possible records: far past any producer's
/// `batch.size`, yet it keeps a hostile batch from exhausting the offset space.
pub const BATCH_RECORD_COUNT_MAX: u32 = 1 << 22;

/// Kafka's `message.max.bytes` default (1 MiB + record batch overhead): the largest batch a
/// topic accepts unless configured otherwise.
pub const MESSAGE_BYTES_MAX_DEFAULT: u32 = 1_048_588;

/// A segment's `.log` may not outgrow what a 4-byte index position can address
/// (Kafka's `segment.bytes` is an int for the same reason).
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;

/// Default `segment.bytes` (Kafka: 1 GiB).
pub const SEGMENT_BYTES_DEFAULT: u64 = 1 << 30;

/// Default `segment.index.bytes` (Kafka: 10 MiB). Bounds the entries of both sparse indexes;
/// a full index rolls the segment.
pub const SEGMENT_INDEX_BYTES_DEFAULT: u64 = 10 * 1024 * 1024;

/// Default `index.interval.bytes` (Kafka: 4096): one offset-index entry per this many bytes.
pub const INDEX_INTERVAL_BYTES_DEFAULT: u64 = 4096;

/// One `.index` entry: 4-byte relative offset + 4-byte position.
pub const OFFSET_INDEX_ENTRY_BYTES: usize = 8;

/// One `.timeindex` entry: 8-byte timestamp + 4-byte relative offset.
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;

/// How much recovery reads from a segment per I/O while re-validating its tail. Large
/// enough to amortise the syscall, small enough to stay cache-resident.
pub const RECOVERY_READ_CHUNK_BYTES: usize = 1 << 20;

/// The upper bound of a coalesced write: appends queued while a write is in flight join
/// the next one until it reaches this size. Past it the write is split, so one burst
/// cannot pin an unbounded buffer.
pub const COALESCED_WRITE_BYTES_MAX: usize = 8 << 20;

/// A `pwritev` of the partition writer takes no more pieces once it carries this many bytes
/// (it runs on the shard's thread and holds it for the call: 1 MiB is about 0.25 ms at this
/// VM's page-cache write speed). A larger coalesced write is several calls, with a chance to
/// yield between them.
pub const PWRITEV_CALL_BYTES_MAX: usize = 1 << 20;

/// iovecs per `pwritev` call: Linux's `IOV_MAX` (`UIO_MAXIOV`).
pub const IOVECS_PER_CALL_MAX: usize = 1024;

/// The most elements one array of a request may declare, whatever the frame's size: the
/// cap Kafka 4.4's request decoders apply (the figure issue #14 gives), checked by
/// `protocol_guard` before the `kafka-protocol` crate allocates for the count. Without it a
/// frame of `socket.request.max.bytes` (100 MiB by default) could honestly hold 100 million
/// one-byte elements, and the crate would build as many in-memory structs (tens of bytes
/// each): gigabytes from one request.
pub const REQUEST_ARRAY_ELEMENTS_MAX: usize = 1_000_000;

/// The most entries one tagged-field section of a request may declare (Kafka 4.4's cap, per
/// issue #14). No spec defines more than a handful of tags per struct; unknown ones are
/// skipped, but each costs a walk step.
pub const REQUEST_TAGGED_FIELDS_MAX: usize = 10_000;

const _: () = assert!(SEGMENT_BYTES_DEFAULT <= SEGMENT_BYTES_MAX);
const _: () = assert!(PWRITEV_CALL_BYTES_MAX <= COALESCED_WRITE_BYTES_MAX);
const _: () = assert!((MESSAGE_BYTES_MAX_DEFAULT as u64) < SEGMENT_BYTES_DEFAULT);
const _: () = assert!(MESSAGE_BYTES_MAX_DEFAULT as usize <= COALESCED_WRITE_BYTES_MAX);
const _: () = assert!(SEGMENT_INDEX_BYTES_DEFAULT % OFFSET_INDEX_ENTRY_BYTES as u64 == 0);
const _: () = assert!(
    (BATCH_RECORD_COUNT_MAX as usize) * RECORD_ENCODED_BYTES_MIN > MESSAGE_BYTES_MAX_DEFAULT as usize,
    "an uncompressed batch of the default maximum size must never hit the count limit"
);
const _: () = assert!(
    REQUEST_TAGGED_FIELDS_MAX <= REQUEST_ARRAY_ELEMENTS_MAX,
    "a tagged section is never allowed more entries than an array"
);
