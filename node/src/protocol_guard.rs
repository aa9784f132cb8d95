//! Vets a request body against its Kafka schema before the `kafka-protocol` crate decodes it.
//!
//! Why: the crate trusts counts from the wire. `Array::decode` calls `Vec::with_capacity(n)`
//! with `n` read straight from the bytes (and `Bytes`/`String` into owned buffers do
//! `vec![0; n]`), so five hostile bytes — an array count of 0x7fffffff — ask for gigabytes
//! and the allocator aborts the process, taking every connection with it. Capping the frame
//! (`socket.request.max.bytes`, in `net`) bounds the bytes, not the counts in them.
//!
//! What: [`check_body`] walks the body the way the crate will decode it — same fields, same
//! order, same version conditions, generated from Kafka's JSON message specs into
//! `protocol_guard/schema.rs` by `scripts/gen-protocol-guard.py` — and refuses the request
//! when any length or count is negative (other than -1 where the field is nullable at that
//! version), larger than the bytes left after it (every element takes at least one byte, so
//! a larger count can never be honest), when an array declares more than
//! `limits::REQUEST_ARRAY_ELEMENTS_MAX` (1,000,000) elements or a tagged-field section more
//! than `limits::REQUEST_TAGGED_FIELDS_MAX` (10,000) entries — Kafka 4.4's caps, which hold
//! however large the frame — or when the body ends early. When it says yes, every
//! count the crate will allocate for is at most the body length, so decoding allocates at
//! most a small multiple of the frame.
//!
//! The walk itself allocates nothing, recurses only as deep as the schema nests (never as
//! deep as the wire asks), and touches each byte once: at most one pass over the frame.
//!
//! Decisions, each the stricter reading where the crate and Kafka differ:
//! - Tagged fields: unknown tags are skipped by their declared size. A tag the schema knows
//!   at this version is walked by its type *and* must fill its declared size exactly: the
//!   crate (like Kafka's Java) decodes a known tag from the stream and ignores the size, so a
//!   size that disagrees with the content would let the two of us read different bytes next.
//! - Varints longer than 5 bytes, or overflowing `u32`, are refused (Kafka refuses them; the
//!   crate silently truncates).
//! - A nullable struct's presence byte must be 1 or -1.
//! - Trailing bytes after the last field are allowed: the crate and Kafka ignore them.
//! - An API without a generated schema, or a version outside the schema's range, returns
//!   `Ok(())`: the crate refuses versions outside its range before reading a byte (a test
//!   pins every schema range to the crate's, extended below only by the legacy versions the
//!   node reads itself in `api::legacy`, checked against kafka-protocol 0.14), and handlers
//!   of unschema'd APIs must not use the crate's decoder on untrusted bytes — add the spec
//!   first.
//!
//! Not covered: honest-but-large requests within the caps. A body really holding a million
//! one-byte elements in one array passes, and the crate then allocates a million in-memory
//! structs (tens of bytes each for a small struct): bounded per array by the element cap and
//! in total by a small multiple of the frame cap.

#[rustfmt::skip]
mod schema;

use crate::limits::{REQUEST_ARRAY_ELEMENTS_MAX, REQUEST_TAGGED_FIELDS_MAX};
use std::fmt;

/// An inclusive range of API versions; `NONE` is empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Versions {
    lo: i16,
    hi: i16,
}

impl Versions {
    const NONE: Versions = Versions { lo: 1, hi: 0 };

    const fn new(lo: i16, hi: i16) -> Versions {
        Versions { lo, hi }
    }

    /// "n+" in the specs.
    const fn from(lo: i16) -> Versions {
        Versions { lo, hi: i16::MAX }
    }

    fn contains(self, version: i16) -> bool {
        self.lo <= version && version <= self.hi
    }
}

/// The wire type of a field, or of each element when the field is an array.
#[derive(Clone, Copy, Debug)]
enum Type {
    Bool,
    Int8,
    Int16,
    // Kafka types no covered request uses today; kept so a new spec needs no walker change.
    #[allow(dead_code)]
    Uint16,
    Int32,
    #[allow(dead_code)]
    Uint32,
    Int64,
    #[allow(dead_code)]
    Float64,
    Uuid,
    String,
    Bytes,
    /// Record data: on the wire exactly `Bytes`.
    Records,
    Struct(&'static [Field]),
}

/// One field of a struct, as the spec declares it.
#[derive(Debug)]
struct Field {
    /// The spec's name, for error messages.
    name: &'static str,
    /// Versions in which the field exists at all.
    versions: Versions,
    /// Versions in which it may be null (-1 length, 0 compact length, -1 struct marker).
    nullable: Versions,
    /// Versions in which it travels in the tagged-field section instead of in line.
    tagged: Versions,
    /// Its tag in those versions.
    tag: u32,
    /// An array of `ty` rather than one `ty`.
    array: bool,
    ty: Type,
}

/// A request's schema.
#[derive(Debug)]
struct Message {
    name: &'static str,
    api_key: i16,
    /// The versions the crate decodes, and below them the legacy versions `api::legacy`
    /// decodes (Kafka 3.9's layouts, which the crate dropped).
    valid: Versions,
    /// Versions using compact lengths and tagged fields.
    flexible: Versions,
    fields: &'static [Field],
}

/// Refuses a request body (the bytes after the request header) whose lengths or counts do
/// not fit the body, before the `kafka-protocol` crate sizes allocations from them. `Ok`
/// also for APIs and versions without a schema; see the module documentation.
pub fn check_body(api_key: i16, version: i16, body: &[u8]) -> Result<(), String> {
    walk(api_key, version, body, &mut Silent).map(|_| ()).map_err(|e| e.to_string())
}

/// Walks `body`; `Ok(Some(n))` when the schema's fields end after `n` bytes, `Ok(None)`
/// when there is no schema for this API and version.
fn walk<O: Observer>(api_key: i16, version: i16, body: &[u8], obs: &mut O) -> Result<Option<usize>, Rejection> {
    let Some(message) = schema::message(api_key) else { return Ok(None) };
    debug_assert_eq!(message.api_key, api_key, "schema table keyed wrongly");
    if !message.valid.contains(version) {
        return Ok(None);
    }
    let cx = Cx { version, flexible: message.flexible.contains(version) };
    let mut reader = Reader { bytes: body, pos: 0 };
    match walk_struct(&mut reader, message.fields, cx, obs) {
        Ok(()) => Ok(Some(reader.pos)),
        Err(malformed) => Err(Rejection { message: message.name, version, malformed }),
    }
}

/// What the walk needs besides the bytes.
#[derive(Clone, Copy)]
struct Cx {
    version: i16,
    flexible: bool,
}

/// Sees where each length or count prefix sits. Production walks use [`Silent`], which
/// compiles away; tests record the positions to corrupt them one by one.
trait Observer {
    fn prefix(&mut self, offset: usize, kind: Prefix);
}

/// How a length or count prefix is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prefix {
    Int16,
    Int32,
    /// Unsigned varint: a compact length+1, a tagged-field count or a tagged-field size.
    Varint,
}

struct Silent;

impl Observer for Silent {
    #[inline(always)]
    fn prefix(&mut self, _offset: usize, _kind: Prefix) {}
}

fn walk_struct<O: Observer>(r: &mut Reader, fields: &'static [Field], cx: Cx, obs: &mut O) -> Result<(), Malformed> {
    for field in fields {
        if field.versions.contains(cx.version) && !field.tagged.contains(cx.version) {
            walk_field(r, field, cx, obs)?;
        }
    }
    if cx.flexible {
        walk_tagged(r, fields, cx, obs)?;
    }
    Ok(())
}

fn walk_field<O: Observer>(r: &mut Reader, field: &'static Field, cx: Cx, obs: &mut O) -> Result<(), Malformed> {
    let nullable = field.nullable.contains(cx.version);
    if !field.array {
        return walk_value(r, field, field.ty, nullable, cx, obs);
    }
    let start = r.pos;
    let count = length(r, Prefix::Int32, nullable, cx, obs).map_err(|p| Malformed::at(field.name, start, p))?;
    if let Some(n) = count.filter(|&n| n > REQUEST_ARRAY_ELEMENTS_MAX) {
        return Err(Malformed::at(
            field.name,
            start,
            Problem::TooManyElements { count: n, max: REQUEST_ARRAY_ELEMENTS_MAX },
        ));
    }
    // `length` bounded the count by the bytes left, so this runs at most once per body
    // byte however large the count on the wire was.
    for _ in 0..count.unwrap_or(0) {
        walk_value(r, field, field.ty, false, cx, obs)?;
    }
    Ok(())
}

fn walk_value<O: Observer>(
    r: &mut Reader,
    field: &'static Field,
    ty: Type,
    nullable: bool,
    cx: Cx,
    obs: &mut O,
) -> Result<(), Malformed> {
    let start = r.pos;
    let fixed = match ty {
        Type::Bool | Type::Int8 => 1,
        Type::Int16 | Type::Uint16 => 2,
        Type::Int32 | Type::Uint32 => 4,
        Type::Int64 | Type::Float64 => 8,
        Type::Uuid => 16,
        Type::String | Type::Bytes | Type::Records => {
            let prefix = if matches!(ty, Type::String) { Prefix::Int16 } else { Prefix::Int32 };
            let len = length(r, prefix, nullable, cx, obs).map_err(|p| Malformed::at(field.name, start, p))?;
            len.unwrap_or(0)
        }
        Type::Struct(fields) if nullable => {
            // Kafka's nullable struct: a presence byte, 1 or -1, then the struct if 1.
            match r.i8().map_err(|p| Malformed::at(field.name, start, p))? {
                1 => return walk_struct(r, fields, cx, obs),
                -1 => return Ok(()),
                marker => return Err(Malformed::at(field.name, start, Problem::BadStructMarker(marker))),
            }
        }
        Type::Struct(fields) => return walk_struct(r, fields, cx, obs),
    };
    r.skip(fixed).map_err(|p| Malformed::at(field.name, start, p))
}

/// Reads a length or count prefix. `None` is null. The value returned is at most the bytes
/// left after the prefix.
fn length<O: Observer>(
    r: &mut Reader,
    wide: Prefix,
    nullable: bool,
    cx: Cx,
    obs: &mut O,
) -> Result<Option<usize>, Problem> {
    let value: i64 = if cx.flexible {
        obs.prefix(r.pos, Prefix::Varint);
        // Compact encoding: length + 1, with 0 for null.
        i64::from(r.uvarint()?) - 1
    } else if wide == Prefix::Int16 {
        obs.prefix(r.pos, Prefix::Int16);
        i64::from(r.i16()?)
    } else {
        obs.prefix(r.pos, Prefix::Int32);
        i64::from(r.i32()?)
    };
    match value {
        -1 if nullable => Ok(None),
        -1 => Err(Problem::UnexpectedNull),
        n if n < 0 => Err(Problem::NegativeLength(n)),
        n => {
            let left = r.left();
            match usize::try_from(n) {
                Ok(len) if len <= left => Ok(Some(len)),
                _ => Err(Problem::TooLong { length: n, left }),
            }
        }
    }
}

/// The tagged-field section closing a struct in flexible versions: a count, then per field
/// its tag, its size and `size` bytes.
fn walk_tagged<O: Observer>(r: &mut Reader, fields: &'static [Field], cx: Cx, obs: &mut O) -> Result<(), Malformed> {
    const SECTION: &str = "(tagged fields)";
    let start = r.pos;
    obs.prefix(start, Prefix::Varint);
    let count = r.uvarint().map_err(|p| Malformed::at(SECTION, start, p))?;
    if count as usize > REQUEST_TAGGED_FIELDS_MAX {
        let problem = Problem::TooManyElements { count: count as usize, max: REQUEST_TAGGED_FIELDS_MAX };
        return Err(Malformed::at(SECTION, start, problem));
    }
    // A tagged field takes at least two bytes: its tag and its size.
    let left = r.left();
    if usize::try_from(count).map_or(true, |n| n > left / 2) {
        return Err(Malformed::at(SECTION, start, Problem::TooLong { length: i64::from(count), left }));
    }
    for _ in 0..count {
        let at = r.pos;
        let tag = r.uvarint().map_err(|p| Malformed::at(SECTION, at, p))?;
        let size_at = r.pos;
        obs.prefix(size_at, Prefix::Varint);
        let size = r.uvarint().map_err(|p| Malformed::at(SECTION, size_at, p))?;
        let left = r.left();
        let size = match usize::try_from(size) {
            Ok(size) if size <= left => size,
            _ => return Err(Malformed::at(SECTION, size_at, Problem::TooLong { length: i64::from(size), left })),
        };
        let end = r.pos + size;
        let known = fields.iter().find(|f| f.tag == tag && f.tagged.contains(cx.version));
        if let Some(field) = known {
            let mut inner = r.up_to(end);
            walk_field(&mut inner, field, cx, obs)?;
            if inner.pos != end {
                let used = inner.pos - r.pos;
                return Err(Malformed::at(field.name, at, Problem::TaggedSize { declared: size, used }));
            }
        }
        r.pos = end;
    }
    Ok(())
}

/// A cursor over the body. `pos <= bytes.len()` always holds.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn skip(&mut self, n: usize) -> Result<(), Problem> {
        if n > self.left() {
            return Err(Problem::Truncated { needed: n, left: self.left() });
        }
        self.pos += n;
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Problem> {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let Some(head) = rest.first_chunk::<N>() else {
            return Err(Problem::Truncated { needed: N, left: rest.len() });
        };
        self.pos += N;
        Ok(*head)
    }

    fn i8(&mut self) -> Result<i8, Problem> {
        self.array::<1>().map(i8::from_be_bytes)
    }

    fn i16(&mut self) -> Result<i16, Problem> {
        self.array::<2>().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, Problem> {
        self.array::<4>().map(i32::from_be_bytes)
    }

    /// Kafka's unsigned varint: 7 bits a byte, low bits first, at most 5 bytes for a u32.
    fn uvarint(&mut self) -> Result<u32, Problem> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let [b] = self.array::<1>()?;
            if i == 4 && b > 0x0f {
                // A fifth byte may carry only the top 4 bits; more is an overlong or
                // overflowing varint.
                return Err(Problem::BadVarint);
            }
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Problem::BadVarint)
    }

    /// The same cursor, seeing only the bytes before `end` (clamped to the body).
    fn up_to(&self, end: usize) -> Reader<'a> {
        let bytes = self.bytes.get(..end).unwrap_or(self.bytes);
        Reader { bytes, pos: self.pos.min(bytes.len()) }
    }
}

/// What is wrong at one place in the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Problem {
    /// The body ends `needed - left` bytes early.
    Truncated {
        needed: usize,
        left: usize,
    },
    NegativeLength(i64),
    /// A length or count larger than the bytes left after it.
    TooLong {
        length: i64,
        left: usize,
    },
    /// Null where this version does not allow it.
    UnexpectedNull,
    BadVarint,
    /// A nullable struct's presence byte other than 1 or -1.
    BadStructMarker(i8),
    /// An array or tagged-field section declaring more entries than Kafka allows
    /// (`limits::REQUEST_ARRAY_ELEMENTS_MAX`, `limits::REQUEST_TAGGED_FIELDS_MAX`), however
    /// many bytes are left.
    TooManyElements {
        count: usize,
        max: usize,
    },
    /// A known tagged field whose content is not exactly its declared size.
    TaggedSize {
        declared: usize,
        used: usize,
    },
}

/// A [`Problem`], where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Malformed {
    field: &'static str,
    offset: usize,
    problem: Problem,
}

impl Malformed {
    fn at(field: &'static str, offset: usize, problem: Problem) -> Malformed {
        Malformed { field, offset, problem }
    }
}

/// Why a body was refused: the message, its version and the first problem found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rejection {
    message: &'static str,
    version: i16,
    malformed: Malformed,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Malformed { field, offset, problem } = self.malformed;
        write!(f, "malformed {} v{}: {field} at byte {offset}: ", self.message, self.version)?;
        match problem {
            Problem::Truncated { needed, left } => write!(f, "needs {needed} bytes, {left} left"),
            Problem::NegativeLength(n) => write!(f, "negative length {n}"),
            Problem::TooLong { length, left } => write!(f, "length {length} exceeds the {left} bytes left"),
            Problem::UnexpectedNull => write!(f, "null in a non-nullable field"),
            Problem::BadVarint => write!(f, "varint longer than 5 bytes or above u32"),
            Problem::BadStructMarker(m) => write!(f, "struct presence byte {m}, expected 1 or -1"),
            Problem::TooManyElements { count, max } => write!(f, "{count} entries, more than the {max} allowed"),
            Problem::TaggedSize { declared, used } => {
                write!(f, "tagged field declares {declared} bytes, its content takes {used}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::add_partitions_to_txn_request::{
        AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
    };
    use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
    use kafka_protocol::messages::create_partitions_request::{CreatePartitionsAssignment, CreatePartitionsTopic};
    use kafka_protocol::messages::create_topics_request::{
        CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
    };
    use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    use kafka_protocol::messages::describe_producers_request::TopicRequest as ProducersTopic;
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions as ElectLeadersTopicPartitions;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic, ReplicaState};
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Decodable, Encodable, Message as CrateMessage, StrBytes};
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    use uuid::Uuid;

    /// A tag no covered schema knows, so the walk must skip it by size.
    const UNKNOWN_TAG: i32 = 9_999;

    /// The crate's decoder and version range for each covered API, from one list.
    macro_rules! crate_requests {
        ($($key:literal => $ty:ty,)*) => {
            /// The versions the crate decodes for `api_key`.
            fn crate_versions_all(api_key: i16) -> Option<(i16, i16)> {
                match api_key {
                    $($key => Some((<$ty as CrateMessage>::VERSIONS.min, <$ty as CrateMessage>::VERSIONS.max)),)*
                    _ => None,
                }
            }

            /// How many bytes the crate's decoder consumes, or why it fails.
            fn crate_decode(api_key: i16, version: i16, body: &[u8]) -> Option<Result<usize, String>> {
                if let Some(decoded) = legacy_decode(api_key, version, body) {
                    return Some(decoded);
                }
                match api_key {
                    $($key => Some(consumed::<$ty>(version, body)),)*
                    _ => None,
                }
            }
        };
    }

    crate_requests! {
        0 => ProduceRequest,
        1 => FetchRequest,
        2 => ListOffsetsRequest,
        3 => MetadataRequest,
        8 => OffsetCommitRequest,
        9 => OffsetFetchRequest,
        10 => FindCoordinatorRequest,
        11 => JoinGroupRequest,
        12 => HeartbeatRequest,
        13 => LeaveGroupRequest,
        14 => SyncGroupRequest,
        15 => DescribeGroupsRequest,
        16 => ListGroupsRequest,
        18 => ApiVersionsRequest,
        19 => CreateTopicsRequest,
        20 => DeleteTopicsRequest,
        21 => DeleteRecordsRequest,
        22 => InitProducerIdRequest,
        24 => AddPartitionsToTxnRequest,
        25 => AddOffsetsToTxnRequest,
        26 => EndTxnRequest,
        28 => TxnOffsetCommitRequest,
        32 => DescribeConfigsRequest,
        33 => AlterConfigsRequest,
        37 => CreatePartitionsRequest,
        42 => DeleteGroupsRequest,
        44 => IncrementalAlterConfigsRequest,
        47 => OffsetDeleteRequest,
        60 => DescribeClusterRequest,
        65 => DescribeTransactionsRequest,
        66 => ListTransactionsRequest,
        35 => DescribeLogDirsRequest,
        61 => DescribeProducersRequest,
        68 => ConsumerGroupHeartbeatRequest,
        69 => ConsumerGroupDescribeRequest,
        27 => WriteTxnMarkersRequest,
        43 => ElectLeadersRequest,
        23 => OffsetForLeaderEpochRequest,
        45 => AlterPartitionReassignmentsRequest,
        46 => ListPartitionReassignmentsRequest,
    }

    /// Versions below the crate's that the node decodes itself (`api::legacy`), with the
    /// decoder of kafka-protocol 0.14 (generated from Kafka 3.7), which still had them.
    fn legacy_versions(api_key: i16) -> Option<(i16, i16)> {
        match api_key {
            2 => Some((0, 0)),
            8 => Some((0, 1)),
            9 => Some((0, 0)),
            _ => None,
        }
    }

    fn legacy_decode(api_key: i16, version: i16, body: &[u8]) -> Option<Result<usize, String>> {
        use kafka_protocol_3::messages as old;
        let (lo, hi) = legacy_versions(api_key)?;
        if !(lo..=hi).contains(&version) {
            return None;
        }
        Some(match api_key {
            2 => consumed_3::<old::ListOffsetsRequest>(version, body),
            8 => consumed_3::<old::OffsetCommitRequest>(version, body),
            9 => consumed_3::<old::OffsetFetchRequest>(version, body),
            _ => return None,
        })
    }

    fn consumed_3<T: kafka_protocol_3::protocol::Decodable>(version: i16, body: &[u8]) -> Result<usize, String> {
        let mut buf = Bytes::copy_from_slice(body);
        T::decode(&mut buf, version).map(|_| body.len() - buf.len()).map_err(|e| e.to_string())
    }

    /// The legacy versions, encoded by kafka-protocol 0.14 with the fields of Kafka 3.9.
    fn legacy_samples() -> Vec<Sample> {
        use kafka_protocol_3::messages as old;
        use kafka_protocol_3::protocol::StrBytes as OldStr;
        fn encode3<T: kafka_protocol_3::protocol::Encodable>(request: &T, version: i16) -> Vec<u8> {
            let mut buf = BytesMut::new();
            request.encode(&mut buf, version).unwrap_or_else(|e| panic!("encode v{version}: {e}"));
            buf.to_vec()
        }
        let name = |text: &'static str| old::TopicName(OldStr::from_static_str(text));
        let mut out = Vec::new();
        let partitions = (0..3)
            .map(|p| {
                old::list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(p)
                    .with_timestamp([-1, -2, 1_700_000_000_000][p as usize])
                    .with_max_num_offsets(p + 1)
            })
            .collect();
        let list = old::ListOffsetsRequest::default().with_replica_id(old::BrokerId(-1)).with_topics(vec![
            old::list_offsets_request::ListOffsetsTopic::default()
                .with_name(name("events"))
                .with_partitions(partitions),
            old::list_offsets_request::ListOffsetsTopic::default().with_name(name("empty")),
        ]);
        out.push(Sample { api_key: 2, version: 0, body: encode3(&list, 0) });
        for version in 0..=1 {
            let partition = |p: i32| {
                old::offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_partition_index(p)
                    .with_committed_offset(1_234)
                    .with_commit_timestamp(if p == 0 && version == 1 { 1_700_000_000_000 } else { -1 })
                    .with_committed_metadata(if p == 0 { Some(OldStr::from_static_str("checkpoint")) } else { None })
            };
            let commit =
                old::OffsetCommitRequest::default().with_group_id(old::GroupId(OldStr::from_static_str("group-1")));
            let commit = if version == 1 {
                commit.with_generation_id_or_member_epoch(4).with_member_id(OldStr::from_static_str("m-1"))
            } else {
                commit
            };
            let commit = commit.with_topics(vec![old::offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(name("events"))
                .with_partitions(vec![partition(0), partition(1)])]);
            out.push(Sample { api_key: 8, version, body: encode3(&commit, version) });
        }
        let fetch = old::OffsetFetchRequest::default()
            .with_group_id(old::GroupId(OldStr::from_static_str("group-1")))
            .with_topics(Some(vec![old::offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(name("events"))
                .with_partition_indexes(vec![0, 1, 2])]));
        out.push(Sample { api_key: 9, version: 0, body: encode3(&fetch, 0) });
        out
    }

    /// The versions covered for `api_key`: the crate's, except ListTransactions, whose v2
    /// (KIP-1152) the spec copy here predates (the node answers v0–v1 only).
    fn crate_versions(api_key: i16) -> Option<(i16, i16)> {
        match api_key {
            66 => crate_versions_all(66).map(|(lo, hi)| (lo, hi.min(1))),
            key => crate_versions_all(key),
        }
    }

    fn consumed<T: Decodable>(version: i16, body: &[u8]) -> Result<usize, String> {
        let mut buf = Bytes::copy_from_slice(body);
        T::decode(&mut buf, version).map(|_| body.len() - buf.len()).map_err(|e| e.to_string())
    }

    /// One request encoded by the crate.
    struct Sample {
        api_key: i16,
        version: i16,
        body: Vec<u8>,
    }

    impl Sample {
        fn label(&self) -> String {
            let name = schema::message(self.api_key).map_or("?", |m| m.name);
            format!("{name} v{}", self.version)
        }
    }

    fn encode<T: Encodable>(request: &T, version: i16) -> Vec<u8> {
        let mut buf = BytesMut::new();
        request.encode(&mut buf, version).unwrap_or_else(|e| panic!("encode v{version}: {e}"));
        buf.to_vec()
    }

    fn s(text: &'static str) -> StrBytes {
        StrBytes::from_static_str(text)
    }

    fn topic(name: &'static str) -> TopicName {
        TopicName(s(name))
    }

    fn group(name: &'static str) -> GroupId {
        GroupId(s(name))
    }

    fn txn(name: &'static str) -> TransactionalId {
        TransactionalId(s(name))
    }

    fn unknown() -> Bytes {
        Bytes::from_static(b"from the future")
    }

    fn topic_id(n: u128) -> Uuid {
        Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0000 | n)
    }

    /// A real v2 record batch of three records, as a producer sends it.
    fn record_batch() -> Bytes {
        let records: Vec<Record> = (0..3)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: 4242,
                producer_epoch: 0,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: i as i32,
                timestamp: 1_700_000_000_000 + i,
                key: Some(Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(format!("value number {i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: Compression::None };
        RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode batch");
        buf.freeze()
    }

    fn produce(v: i16) -> ProduceRequest {
        let partitions = vec![
            PartitionProduceData::default().with_index(0).with_records(Some(record_batch())),
            PartitionProduceData::default()
                .with_index(1)
                .with_records(None)
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown()),
        ];
        let data = TopicProduceData::default().with_partition_data(partitions);
        let data = if v >= 13 { data.with_topic_id(topic_id(1)) } else { data.with_name(topic("events")) };
        // Idempotent-only producers send a null transactional id; alternate by version.
        let transactional_id = if v % 2 == 0 { Some(txn("tx-1")) } else { None };
        ProduceRequest::default()
            .with_transactional_id(transactional_id)
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![
                data,
                TopicProduceData::default().with_name(topic("empty")).with_topic_id(topic_id(2)),
            ])
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown())
    }

    fn fetch(v: i16) -> FetchRequest {
        let partition = |p: i32| {
            let mut part = FetchPartition::default()
                .with_partition(p)
                .with_current_leader_epoch(if v >= 9 { 7 } else { -1 })
                .with_fetch_offset(1_000 * i64::from(p))
                .with_log_start_offset(if v >= 5 { 3 } else { -1 })
                .with_partition_max_bytes(1 << 20);
            if v >= 12 {
                part = part.with_last_fetched_epoch(6).with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            }
            if v >= 17 {
                part = part.with_replica_directory_id(topic_id(9));
            }
            if v >= 18 {
                part = part.with_high_watermark(77);
            }
            part
        };
        let topic_entry = FetchTopic::default().with_partitions(vec![partition(0), partition(1)]);
        let topic_entry =
            if v >= 13 { topic_entry.with_topic_id(topic_id(1)) } else { topic_entry.with_topic(topic("events")) };
        let mut request = FetchRequest::default()
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(50 << 20)
            .with_isolation_level(1)
            .with_topics(vec![topic_entry])
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        if v <= 14 {
            request = request.with_replica_id(BrokerId(-1));
        } else {
            request =
                request.with_replica_state(ReplicaState::default().with_replica_id(BrokerId(3)).with_replica_epoch(12));
        }
        if v >= 7 {
            let forgotten = ForgottenTopic::default().with_partitions(vec![4, 5, 6]);
            let forgotten =
                if v >= 13 { forgotten.with_topic_id(topic_id(2)) } else { forgotten.with_topic(topic("old")) };
            request = request.with_session_id(88).with_session_epoch(2).with_forgotten_topics_data(vec![forgotten]);
        }
        if v >= 11 {
            request = request.with_rack_id(s("rack-a"));
        }
        if v >= 12 && v % 2 == 0 {
            request = request.with_cluster_id(Some(s("cluster-1")));
        }
        request
    }

    fn list_offsets(v: i16) -> ListOffsetsRequest {
        let partitions = (0..3)
            .map(|p| {
                ListOffsetsPartition::default()
                    .with_partition_index(p)
                    .with_current_leader_epoch(if v >= 4 { 2 } else { -1 })
                    .with_timestamp(-1)
            })
            .collect();
        let topics = vec![ListOffsetsTopic::default().with_name(topic("events")).with_partitions(partitions)];
        let request = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(topics);
        let request = if v >= 2 { request.with_isolation_level(1) } else { request };
        let request = if v >= 10 { request.with_timeout_ms(5_000) } else { request };
        request.with_unknown_tagged_field(UNKNOWN_TAG, unknown())
    }

    fn metadata(v: i16) -> MetadataRequest {
        let mut topics = vec![MetadataRequestTopic::default().with_name(Some(topic("events")))];
        if v >= 10 {
            topics.push(MetadataRequestTopic::default().with_topic_id(topic_id(3)).with_name(None));
        }
        // From v1 a null array means "all topics"; send it on odd versions.
        let topics = if v >= 1 && v % 2 == 1 { None } else { Some(topics) };
        let request = MetadataRequest::default().with_topics(topics).with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        let request = if v >= 4 { request.with_allow_auto_topic_creation(false) } else { request };
        let request =
            if (8..=10).contains(&v) { request.with_include_cluster_authorized_operations(true) } else { request };
        if v >= 8 {
            request.with_include_topic_authorized_operations(true)
        } else {
            request
        }
    }

    fn api_versions(v: i16) -> ApiVersionsRequest {
        let request = ApiVersionsRequest::default().with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        if v >= 3 {
            request.with_client_software_name(s("librdkafka")).with_client_software_version(s("2.0.2"))
        } else {
            request
        }
    }

    fn create_topics(_v: i16) -> CreateTopicsRequest {
        let assigned = CreatableTopic::default()
            .with_name(topic("placed"))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![
                CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(vec![BrokerId(1), BrokerId(2)]),
                CreatableReplicaAssignment::default().with_partition_index(1).with_broker_ids(vec![BrokerId(2)]),
            ]);
        let configured = CreatableTopic::default()
            .with_name(topic("events"))
            .with_num_partitions(12)
            .with_replication_factor(1)
            .with_configs(vec![
                CreatableTopicConfig::default().with_name(s("cleanup.policy")).with_value(Some(s("compact"))),
                CreatableTopicConfig::default().with_name(s("retention.ms")).with_value(None),
            ])
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        CreateTopicsRequest::default()
            .with_topics(vec![assigned, configured])
            .with_timeout_ms(30_000)
            .with_validate_only(true)
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown())
    }

    fn delete_topics(v: i16) -> DeleteTopicsRequest {
        let request = DeleteTopicsRequest::default().with_timeout_ms(10_000);
        if v >= 6 {
            request.with_topics(vec![
                DeleteTopicState::default().with_name(Some(topic("events"))),
                DeleteTopicState::default().with_name(None).with_topic_id(topic_id(4)),
            ])
        } else {
            request.with_topic_names(vec![topic("events"), topic("other")])
        }
        .with_unknown_tagged_field(UNKNOWN_TAG, unknown())
    }

    fn create_partitions(_v: i16) -> CreatePartitionsRequest {
        let topics = vec![
            CreatePartitionsTopic::default().with_name(topic("events")).with_count(24).with_assignments(None),
            CreatePartitionsTopic::default().with_name(topic("placed")).with_count(3).with_assignments(Some(vec![
                CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(1)]),
                CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(2), BrokerId(3)]),
            ])),
        ];
        CreatePartitionsRequest::default()
            .with_topics(topics)
            .with_timeout_ms(5_000)
            .with_validate_only(false)
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown())
    }

    fn describe_cluster(v: i16) -> DescribeClusterRequest {
        let request = DescribeClusterRequest::default()
            .with_include_cluster_authorized_operations(true)
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        let request = if v >= 1 { request.with_endpoint_type(2) } else { request };
        if v >= 2 {
            request.with_include_fenced_brokers(true)
        } else {
            request
        }
    }

    fn describe_configs(v: i16) -> DescribeConfigsRequest {
        use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
        let resources = vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("events"))
                .with_configuration_keys(Some(vec![s("retention.ms"), s("")]))
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown()),
            DescribeConfigsResource::default().with_resource_type(4).with_resource_name(s("0")),
        ];
        let request = DescribeConfigsRequest::default()
            .with_resources(resources)
            .with_include_synonyms(true)
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        if v >= 3 {
            request.with_include_documentation(true)
        } else {
            request
        }
    }

    fn alter_configs(_v: i16) -> AlterConfigsRequest {
        use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
        let configs = vec![
            AlterableConfig::default().with_name(s("retention.ms")).with_value(Some(s("60000"))),
            AlterableConfig::default()
                .with_name(s("segment.bytes"))
                .with_value(None)
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown()),
        ];
        let resources = vec![
            AlterConfigsResource::default().with_resource_type(2).with_resource_name(s("events")).with_configs(configs),
            AlterConfigsResource::default().with_resource_type(4).with_resource_name(s("")),
        ];
        AlterConfigsRequest::default()
            .with_resources(resources)
            .with_validate_only(true)
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown())
    }

    fn incremental_alter_configs(_v: i16) -> IncrementalAlterConfigsRequest {
        use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
        let configs = vec![
            AlterableConfig::default().with_name(s("retention.ms")).with_config_operation(0).with_value(Some(s("1"))),
            AlterableConfig::default()
                .with_name(s("segment.bytes"))
                .with_config_operation(1)
                .with_value(None)
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown()),
        ];
        let resources = vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("events"))
                .with_configs(configs)
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown()),
            AlterConfigsResource::default().with_resource_type(4).with_resource_name(s("0")),
        ];
        IncrementalAlterConfigsRequest::default().with_resources(resources).with_validate_only(false)
    }

    fn consumer_group_heartbeat(v: i16) -> ConsumerGroupHeartbeatRequest {
        use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
        let owned = vec![
            TopicPartitions::default().with_topic_id(Uuid::from_u128(7)).with_partitions(vec![0, 2]),
            TopicPartitions::default()
                .with_topic_id(Uuid::from_u128(8))
                .with_partitions(Vec::new())
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown()),
        ];
        let request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_member_id(s("m-1"))
            .with_member_epoch(3)
            .with_instance_id(Some(s("i")))
            .with_rack_id(None)
            .with_rebalance_timeout_ms(300000)
            .with_subscribed_topic_names(Some(vec![TopicName(s("events")), TopicName(s(""))]))
            .with_server_assignor(Some(s("uniform")))
            .with_topic_partitions(Some(owned))
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        if v >= 1 {
            request.with_subscribed_topic_regex(Some(s("ev.*")))
        } else {
            request
        }
    }

    fn consumer_group_describe(_v: i16) -> ConsumerGroupDescribeRequest {
        ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(s("g")), GroupId(s(""))])
            .with_include_authorized_operations(true)
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown())
    }

    fn offset_for_leader_epoch(v: i16) -> OffsetForLeaderEpochRequest {
        let part = OffsetForLeaderPartition::default()
            .with_partition(1)
            .with_current_leader_epoch(3)
            .with_leader_epoch(2)
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        let topic = OffsetForLeaderTopic::default()
            .with_topic(TopicName(s("events")))
            .with_partitions(vec![part, OffsetForLeaderPartition::default()])
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        let request = OffsetForLeaderEpochRequest::default()
            .with_topics(vec![topic, OffsetForLeaderTopic::default()])
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        if v >= 3 {
            request.with_replica_id(BrokerId(-1))
        } else {
            request
        }
    }

    fn elect_leaders(v: i16) -> ElectLeadersRequest {
        let topic = ElectLeadersTopicPartitions::default()
            .with_topic(TopicName(s("events")))
            .with_partitions(vec![0, 2])
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        let request = ElectLeadersRequest::default()
            .with_topic_partitions(Some(vec![topic, ElectLeadersTopicPartitions::default()]))
            .with_timeout_ms(30_000)
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        if v >= 1 {
            request.with_election_type(1)
        } else {
            request
        }
    }

    fn alter_partition_reassignments(v: i16) -> AlterPartitionReassignmentsRequest {
        let moved = ReassignablePartition::default()
            .with_partition_index(1)
            .with_replicas(Some(vec![BrokerId(3), BrokerId(1)]))
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        let cancelled = ReassignablePartition::default().with_partition_index(2).with_replicas(None);
        let topic = ReassignableTopic::default()
            .with_name(TopicName(s("events")))
            .with_partitions(vec![moved, cancelled])
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        let request = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![topic, ReassignableTopic::default()])
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        if v >= 1 {
            request.with_allow_replication_factor_change(false)
        } else {
            request
        }
    }

    fn list_partition_reassignments(_v: i16) -> ListPartitionReassignmentsRequest {
        let topic = ListPartitionReassignmentsTopics::default()
            .with_name(TopicName(s("events")))
            .with_partition_indexes(vec![0, 5])
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(Some(vec![topic, ListPartitionReassignmentsTopics::default()]))
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown())
    }

    fn write_txn_markers(_v: i16) -> WriteTxnMarkersRequest {
        let topic = WritableTxnMarkerTopic::default()
            .with_name(TopicName(s("events")))
            .with_partition_indexes(vec![0, 3])
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        let marker = WritableTxnMarker::default()
            .with_producer_id(ProducerId(7))
            .with_producer_epoch(2)
            .with_transaction_result(true)
            .with_topics(vec![topic, WritableTxnMarkerTopic::default()])
            .with_coordinator_epoch(4)
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        WriteTxnMarkersRequest::default()
            .with_markers(vec![marker, WritableTxnMarker::default()])
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown())
    }

    fn describe_transactions(_v: i16) -> DescribeTransactionsRequest {
        DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(s("tx-1")), TransactionalId(s(""))])
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown())
    }

    fn list_transactions(v: i16) -> ListTransactionsRequest {
        let request = ListTransactionsRequest::default()
            .with_state_filters(vec![s("Ongoing"), s("")])
            .with_producer_id_filters(vec![ProducerId(7), ProducerId(-1)])
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        if v >= 1 {
            request.with_duration_filter(60_000)
        } else {
            request
        }
    }

    fn find_coordinator(v: i16) -> FindCoordinatorRequest {
        let request = FindCoordinatorRequest::default().with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        let request = if v <= 3 { request.with_key(s("group-1")) } else { request };
        let request = if v >= 1 { request.with_key_type(1) } else { request };
        if v >= 4 {
            request.with_coordinator_keys(vec![s("tx-1"), s("tx-2")])
        } else {
            request
        }
    }

    fn join_group(v: i16) -> JoinGroupRequest {
        let protocols = vec![
            JoinGroupRequestProtocol::default().with_name(s("range")).with_metadata(Bytes::from_static(&[0, 3, 0, 0])),
            JoinGroupRequestProtocol::default().with_name(s("cooperative-sticky")).with_metadata(Bytes::new()),
        ];
        let request = JoinGroupRequest::default()
            .with_group_id(group("group-1"))
            .with_session_timeout_ms(45_000)
            .with_rebalance_timeout_ms(300_000)
            .with_member_id(s(""))
            .with_protocol_type(s("consumer"))
            .with_protocols(protocols)
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        let instance = if v % 2 == 1 { Some(s("instance-1")) } else { None };
        let request = if v >= 5 { request.with_group_instance_id(instance) } else { request };
        if v >= 8 {
            request.with_reason(if v == 8 { Some(s("rebalance needed")) } else { None })
        } else {
            request
        }
    }

    fn sync_group(v: i16) -> SyncGroupRequest {
        let assignments = vec![
            SyncGroupRequestAssignment::default()
                .with_member_id(s("m-1"))
                .with_assignment(Bytes::from_static(&[0, 1, 2])),
            SyncGroupRequestAssignment::default().with_member_id(s("m-2")).with_assignment(Bytes::new()),
        ];
        let request = SyncGroupRequest::default()
            .with_group_id(group("group-1"))
            .with_generation_id(4)
            .with_member_id(s("m-1"))
            .with_assignments(assignments)
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        let request = if v >= 3 { request.with_group_instance_id(Some(s("instance-1"))) } else { request };
        if v >= 5 {
            request.with_protocol_type(Some(s("consumer"))).with_protocol_name(None)
        } else {
            request
        }
    }

    fn heartbeat(v: i16) -> HeartbeatRequest {
        let request = HeartbeatRequest::default()
            .with_group_id(group("group-1"))
            .with_generation_id(4)
            .with_member_id(s("m-1"))
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        if v == 3 {
            request.with_group_instance_id(Some(s("instance-1")))
        } else {
            request
        }
    }

    fn leave_group(v: i16) -> LeaveGroupRequest {
        let request = LeaveGroupRequest::default().with_group_id(group("group-1"));
        if v <= 2 {
            return request.with_member_id(s("m-1"));
        }
        let member = |id: &'static str, instance: Option<StrBytes>| {
            let m = MemberIdentity::default().with_member_id(s(id)).with_group_instance_id(instance);
            if v >= 5 {
                m.with_reason(Some(s("shutting down")))
            } else {
                m
            }
        };
        request
            .with_members(vec![member("m-1", Some(s("instance-1"))), member("m-2", None)])
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown())
    }

    fn offset_commit(v: i16) -> OffsetCommitRequest {
        let partition = |p: i32| {
            OffsetCommitRequestPartition::default()
                .with_partition_index(p)
                .with_committed_offset(1_234)
                .with_committed_leader_epoch(if v >= 6 { 5 } else { -1 })
                .with_committed_metadata(if p == 0 { Some(s("checkpoint")) } else { None })
        };
        let topics = vec![OffsetCommitRequestTopic::default()
            .with_name(topic("events"))
            .with_partitions(vec![partition(0), partition(1)])];
        let request = OffsetCommitRequest::default()
            .with_group_id(group("group-1"))
            .with_generation_id_or_member_epoch(4)
            .with_member_id(s("m-1"))
            .with_topics(topics)
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        let request = if v <= 4 { request.with_retention_time_ms(86_400_000) } else { request };
        if v >= 7 {
            request.with_group_instance_id(Some(s("instance-1")))
        } else {
            request
        }
    }

    fn offset_fetch(v: i16) -> OffsetFetchRequest {
        if v <= 7 {
            let topics = vec![OffsetFetchRequestTopic::default()
                .with_name(topic("events"))
                .with_partition_indexes(vec![0, 1, 2])];
            // From v2 a null array means "all topics"; send it on even versions.
            let topics = if v >= 2 && v % 2 == 0 { None } else { Some(topics) };
            let request = OffsetFetchRequest::default().with_group_id(group("group-1")).with_topics(topics);
            return if v >= 7 { request.with_require_stable(true) } else { request }
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        }
        let with_topics = OffsetFetchRequestGroup::default().with_group_id(group("group-1")).with_topics(Some(vec![
            OffsetFetchRequestTopics::default().with_name(topic("events")).with_partition_indexes(vec![0, 1]),
        ]));
        let all_topics = OffsetFetchRequestGroup::default().with_group_id(group("group-2")).with_topics(None);
        let (with_topics, all_topics) = if v >= 9 {
            (with_topics.with_member_id(Some(s("m-1"))).with_member_epoch(9), all_topics.with_member_id(None))
        } else {
            (with_topics, all_topics)
        };
        OffsetFetchRequest::default()
            .with_groups(vec![with_topics, all_topics])
            .with_require_stable(true)
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown())
    }

    fn describe_groups(v: i16) -> DescribeGroupsRequest {
        let request = DescribeGroupsRequest::default()
            .with_groups(vec![group("group-1"), group("group-2")])
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        if v >= 3 {
            request.with_include_authorized_operations(true)
        } else {
            request
        }
    }

    fn list_groups(v: i16) -> ListGroupsRequest {
        let request = ListGroupsRequest::default().with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        let request = if v >= 4 { request.with_states_filter(vec![s("Stable"), s("Empty")]) } else { request };
        if v >= 5 {
            request.with_types_filter(vec![s("classic")])
        } else {
            request
        }
    }

    fn delete_groups(_v: i16) -> DeleteGroupsRequest {
        DeleteGroupsRequest::default()
            .with_groups_names(vec![group("group-1"), group("group-2")])
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown())
    }

    fn offset_delete(_v: i16) -> OffsetDeleteRequest {
        let partitions = vec![
            OffsetDeleteRequestPartition::default().with_partition_index(0),
            OffsetDeleteRequestPartition::default().with_partition_index(1),
        ];
        OffsetDeleteRequest::default().with_group_id(group("group-1")).with_topics(vec![
            OffsetDeleteRequestTopic::default().with_name(topic("events")).with_partitions(partitions),
        ])
    }

    fn init_producer_id(v: i16) -> InitProducerIdRequest {
        let transactional_id = if v % 2 == 0 { Some(txn("tx-1")) } else { None };
        let request = InitProducerIdRequest::default()
            .with_transactional_id(transactional_id)
            .with_transaction_timeout_ms(60_000)
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        if v >= 3 {
            request.with_producer_id(ProducerId(4242)).with_producer_epoch(3)
        } else {
            request
        }
    }

    fn add_partitions_to_txn(v: i16) -> AddPartitionsToTxnRequest {
        let topics = || {
            vec![
                AddPartitionsToTxnTopic::default().with_name(topic("events")).with_partitions(vec![0, 1, 2]),
                AddPartitionsToTxnTopic::default().with_name(topic("other")).with_partitions(vec![]),
            ]
        };
        let request = AddPartitionsToTxnRequest::default().with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        if v <= 3 {
            return request
                .with_v3_and_below_transactional_id(txn("tx-1"))
                .with_v3_and_below_producer_id(ProducerId(4242))
                .with_v3_and_below_producer_epoch(3)
                .with_v3_and_below_topics(topics());
        }
        request.with_transactions(vec![AddPartitionsToTxnTransaction::default()
            .with_transactional_id(txn("tx-1"))
            .with_producer_id(ProducerId(4242))
            .with_producer_epoch(3)
            .with_verify_only(true)
            .with_topics(topics())])
    }

    fn add_offsets_to_txn(_v: i16) -> AddOffsetsToTxnRequest {
        AddOffsetsToTxnRequest::default()
            .with_transactional_id(txn("tx-1"))
            .with_producer_id(ProducerId(4242))
            .with_producer_epoch(3)
            .with_group_id(group("group-1"))
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown())
    }

    fn end_txn(_v: i16) -> EndTxnRequest {
        EndTxnRequest::default()
            .with_transactional_id(txn("tx-1"))
            .with_producer_id(ProducerId(4242))
            .with_producer_epoch(3)
            .with_committed(true)
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown())
    }

    fn txn_offset_commit(v: i16) -> TxnOffsetCommitRequest {
        let partition = |p: i32| {
            TxnOffsetCommitRequestPartition::default()
                .with_partition_index(p)
                .with_committed_offset(99)
                .with_committed_leader_epoch(if v >= 2 { 4 } else { -1 })
                .with_committed_metadata(if p == 0 { None } else { Some(s("meta")) })
        };
        let topics = vec![TxnOffsetCommitRequestTopic::default()
            .with_name(topic("events"))
            .with_partitions(vec![partition(0), partition(1)])];
        let request = TxnOffsetCommitRequest::default()
            .with_transactional_id(txn("tx-1"))
            .with_group_id(group("group-1"))
            .with_producer_id(ProducerId(4242))
            .with_producer_epoch(3)
            .with_topics(topics)
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
        if v >= 3 {
            let instance = if v == 3 { Some(s("instance-1")) } else { None };
            request.with_generation_id(4).with_member_id(s("m-1")).with_group_instance_id(instance)
        } else {
            request
        }
    }

    fn delete_records(_v: i16) -> DeleteRecordsRequest {
        let partitions = vec![
            DeleteRecordsPartition::default().with_partition_index(0).with_offset(100),
            DeleteRecordsPartition::default().with_partition_index(1).with_offset(-1),
        ];
        DeleteRecordsRequest::default()
            .with_topics(vec![DeleteRecordsTopic::default().with_name(topic("events")).with_partitions(partitions)])
            .with_timeout_ms(30_000)
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown())
    }

    fn describe_log_dirs(_v: i16) -> DescribeLogDirsRequest {
        let topic = DescribableLogDirTopic::default().with_topic(topic("events")).with_partitions(vec![0, 3]);
        DescribeLogDirsRequest::default()
            .with_topics(Some(vec![topic]))
            .with_unknown_tagged_field(UNKNOWN_TAG, unknown())
    }

    fn describe_producers(_v: i16) -> DescribeProducersRequest {
        let topic = ProducersTopic::default().with_name(topic("events")).with_partition_indexes(vec![0, 1, 2]);
        DescribeProducersRequest::default().with_topics(vec![topic]).with_unknown_tagged_field(UNKNOWN_TAG, unknown())
    }

    /// Every covered API at every version the crate decodes, fully populated.
    fn samples() -> Vec<Sample> {
        fn each<T: Encodable>(api_key: i16, build: fn(i16) -> T, out: &mut Vec<Sample>) {
            let (lo, hi) = crate_versions(api_key).expect("covered API");
            for version in lo..=hi {
                out.push(Sample { api_key, version, body: encode(&build(version), version) });
            }
        }
        let mut out = Vec::new();
        each(0, produce, &mut out);
        each(1, fetch, &mut out);
        each(2, list_offsets, &mut out);
        each(3, metadata, &mut out);
        each(8, offset_commit, &mut out);
        each(9, offset_fetch, &mut out);
        each(10, find_coordinator, &mut out);
        each(11, join_group, &mut out);
        each(12, heartbeat, &mut out);
        each(13, leave_group, &mut out);
        each(14, sync_group, &mut out);
        each(15, describe_groups, &mut out);
        each(16, list_groups, &mut out);
        each(18, api_versions, &mut out);
        each(19, create_topics, &mut out);
        each(20, delete_topics, &mut out);
        each(21, delete_records, &mut out);
        each(22, init_producer_id, &mut out);
        each(24, add_partitions_to_txn, &mut out);
        each(25, add_offsets_to_txn, &mut out);
        each(26, end_txn, &mut out);
        each(28, txn_offset_commit, &mut out);
        each(32, describe_configs, &mut out);
        each(33, alter_configs, &mut out);
        each(37, create_partitions, &mut out);
        each(42, delete_groups, &mut out);
        each(44, incremental_alter_configs, &mut out);
        each(47, offset_delete, &mut out);
        each(60, describe_cluster, &mut out);
        each(65, describe_transactions, &mut out);
        each(66, list_transactions, &mut out);
        each(35, describe_log_dirs, &mut out);
        each(61, describe_producers, &mut out);
        each(68, consumer_group_heartbeat, &mut out);
        each(69, consumer_group_describe, &mut out);
        each(27, write_txn_markers, &mut out);
        each(43, elect_leaders, &mut out);
        each(23, offset_for_leader_epoch, &mut out);
        each(45, alter_partition_reassignments, &mut out);
        each(46, list_partition_reassignments, &mut out);
        out.extend(legacy_samples());
        out
    }

    /// Records every length and count prefix the walk reads.
    #[derive(Default)]
    struct Prefixes(Vec<(usize, Prefix)>);

    impl Observer for Prefixes {
        fn prefix(&mut self, offset: usize, kind: Prefix) {
            self.0.push((offset, kind));
        }
    }

    fn prefixes(sample: &Sample) -> Vec<(usize, Prefix)> {
        let mut seen = Prefixes::default();
        walk(sample.api_key, sample.version, &sample.body, &mut seen).expect("a valid sample walks");
        seen.0
    }

    /// `body` with the prefix at `offset` replaced by `value` (an i16, i32 or u32 varint).
    fn with_prefix(body: &[u8], offset: usize, kind: Prefix, value: i64) -> Vec<u8> {
        let (width, encoded): (usize, Vec<u8>) = match kind {
            Prefix::Int16 => (2, (value as i16).to_be_bytes().to_vec()),
            Prefix::Int32 => (4, (value as i32).to_be_bytes().to_vec()),
            Prefix::Varint => {
                let width = body[offset..].iter().position(|b| b & 0x80 == 0).expect("varint ends") + 1;
                let mut out = Vec::new();
                let mut v = value as u32;
                while v >= 0x80 {
                    out.push((v as u8) | 0x80);
                    v >>= 7;
                }
                out.push(v as u8);
                (width, out)
            }
        };
        let mut out = body[..offset].to_vec();
        out.extend_from_slice(&encoded);
        out.extend_from_slice(&body[offset + width..]);
        out
    }

    /// Each generated schema covers exactly the versions the crate decodes and, right below
    /// them, the legacy versions the node decodes itself, so a version the guard lets
    /// through unwalked is one the crate refuses outright.
    #[test]
    fn schema_version_ranges_match_the_crate() {
        for message in schema::MESSAGES {
            let crate_range = crate_versions(message.api_key);
            let node_range = match (crate_range, legacy_versions(message.api_key)) {
                (Some((lo, hi)), Some((old_lo, old_hi))) => {
                    assert_eq!(old_hi + 1, lo, "{}: legacy versions end right below the crate's", message.name);
                    Some((old_lo, hi))
                }
                (range, _) => range,
            };
            assert_eq!(node_range, Some((message.valid.lo, message.valid.hi)), "{}", message.name);
            assert_eq!(schema::message(message.api_key).map(|m| m.name), Some(message.name));
        }
        let covered: Vec<i16> = schema::MESSAGES.iter().map(|m| m.api_key).collect();
        for key in 0..100 {
            assert_eq!(crate_versions(key).is_some(), covered.contains(&key), "api key {key} listed in one place only");
        }
    }

    /// Every API version the node advertises (`api::SUPPORTED`, what ApiVersions answers) has
    /// a schema the guard walks, so no advertised request reaches the crate's decoder
    /// unchecked: for each, a sample request of that version is walked to its end (`walk`
    /// answers `Ok(None)` for an API or version without a schema). Advertising a new API or
    /// version without its schema fails here.
    #[test]
    fn every_advertised_api_version_has_a_guard_schema() {
        // Served versions the handler vets with another version's schema: DescribeConfigs v0
        // is v1 without IncludeSynonyms, walked as v1 with that byte appended
        // (`api::describe_configs::decode_request`).
        const GUARDED_AS: &[(i16, i16, i16)] = &[(32, 0, 1)];
        let samples = samples();
        let mut missing = Vec::new();
        for &(key, lo, hi) in crate::api::SUPPORTED {
            let api_key = key as i16;
            for served in lo..=hi {
                let version = GUARDED_AS
                    .iter()
                    .find(|&&(k, v, _)| k == api_key && v == served)
                    .map_or(served, |&(_, _, as_version)| as_version);
                let Some(message) = schema::message(api_key).filter(|m| m.valid.contains(version)) else {
                    missing.push(format!("{key:?} v{version}: no guard schema"));
                    continue;
                };
                let Some(sample) = samples.iter().find(|s| s.api_key == api_key && s.version == version) else {
                    missing.push(format!("{} v{version}: no sample to walk", message.name));
                    continue;
                };
                match walk(api_key, version, &sample.body, &mut Silent) {
                    Ok(Some(n)) if n == sample.body.len() => {}
                    other => missing.push(format!("{} v{version}: walked {other:?}", message.name)),
                }
            }
        }
        assert!(missing.is_empty(), "advertised but not guarded:\n{}", missing.join("\n"));
    }

    /// Every version a schema covers has a sample, so the tests below reach each of them
    /// (the legacy ones included).
    #[test]
    fn every_covered_version_has_a_sample() {
        let samples = samples();
        for message in schema::MESSAGES {
            for version in message.valid.lo..=message.valid.hi {
                let found = samples.iter().any(|s| s.api_key == message.api_key && s.version == version);
                assert!(found, "{} v{version} has no sample", message.name);
            }
        }
    }

    /// Requests the crate encodes — every covered API, every version, flexible or not, with
    /// nulls, empty arrays, known and unknown tagged fields — pass, and the walk ends exactly
    /// where the crate's decoder does.
    #[test]
    fn every_version_of_every_covered_request_is_accepted() {
        let samples = samples();
        assert!(samples.len() > 150, "{} samples", samples.len());
        for sample in &samples {
            let label = sample.label();
            assert_eq!(check_body(sample.api_key, sample.version, &sample.body), Ok(()), "{label}");
            let walked = walk(sample.api_key, sample.version, &sample.body, &mut Silent);
            assert_eq!(walked, Ok(Some(sample.body.len())), "{label}: walk stops early");
            let decoded = crate_decode(sample.api_key, sample.version, &sample.body);
            assert_eq!(decoded, Some(Ok(sample.body.len())), "{label}: crate disagrees");
        }
    }

    /// Setting any one length or count prefix in any valid request to 0x7fffffff (or the
    /// varint 0xffffffff, or 32767 for an i16 string length) is refused, as is -2.
    #[test]
    fn huge_or_negative_counts_and_lengths_are_refused_everywhere() {
        let mut corrupted = 0;
        for sample in samples() {
            let label = sample.label();
            for (offset, kind) in prefixes(&sample) {
                let huge = match kind {
                    Prefix::Int16 => i64::from(i16::MAX),
                    Prefix::Int32 => i64::from(i32::MAX),
                    Prefix::Varint => i64::from(u32::MAX),
                };
                let body = with_prefix(&sample.body, offset, kind, huge);
                let verdict = check_body(sample.api_key, sample.version, &body);
                assert!(verdict.is_err(), "{label}: {kind:?} at {offset} set to {huge} passed");
                if kind != Prefix::Varint {
                    let body = with_prefix(&sample.body, offset, kind, -2);
                    let verdict = check_body(sample.api_key, sample.version, &body);
                    assert!(verdict.is_err(), "{label}: {kind:?} at {offset} set to -2 passed");
                }
                corrupted += 1;
            }
        }
        assert!(corrupted > 1_000, "only {corrupted} prefixes corrupted");
    }

    /// Every strict prefix of a valid request is refused: the body ending early is caught
    /// wherever it ends.
    #[test]
    fn truncated_requests_are_refused() {
        for sample in samples() {
            for len in 0..sample.body.len() {
                let verdict = check_body(sample.api_key, sample.version, &sample.body[..len]);
                assert!(verdict.is_err(), "{} cut to {len} of {} bytes passed", sample.label(), sample.body.len());
            }
        }
    }

    /// A Produce request's record data is a length-prefixed blob: a length one byte beyond
    /// the body, 0x7fffffff or -2 is refused in every version, while null records pass.
    #[test]
    fn produce_records_lengths_are_checked() {
        let batch = record_batch();
        for version in 3..=13 {
            let body = encode(&produce(version), version);
            let at = body.windows(batch.len()).position(|w| w == &batch[..]).expect("batch in body");
            let (prefix_at, kind) = if version >= 9 { (at - 1, Prefix::Varint) } else { (at - 4, Prefix::Int32) };
            assert_eq!(check_body(0, version, &body), Ok(()), "v{version}");
            let left = (body.len() - at) as i64;
            let cases = [(left + 1, "one beyond"), (i64::from(i32::MAX), "i32::MAX"), (-2, "-2")];
            for (value, what) in cases {
                // Compact lengths are length + 1.
                let encoded = if kind == Prefix::Varint { value + 1 } else { value };
                if kind == Prefix::Varint && encoded < 0 {
                    continue;
                }
                let bad = with_prefix(&body, prefix_at, kind, encoded);
                let verdict = check_body(0, version, &bad);
                assert!(verdict.is_err(), "v{version}: records length {what} passed");
                assert!(verdict.unwrap_err().contains("Records"), "v{version}: blamed the wrong field");
            }
        }
    }

    /// The shortest hostile frames, in raw bytes: a topic count of 0x7fffffff in Produce v3
    /// (classic i32 count) and v9 (compact varint count) is refused naming the field.
    #[test]
    fn raw_hostile_produce_counts_are_refused() {
        // transactional_id null, acks 1, timeout 1000, topic count 0x7fffffff.
        let v3 = [0xff, 0xff, 0x00, 0x01, 0x00, 0x00, 0x03, 0xe8, 0x7f, 0xff, 0xff, 0xff];
        let error = check_body(0, 3, &v3).expect_err("v3 refused");
        assert!(error.contains("TopicData") && error.contains("2147483647"), "{error}");
        // Compact: null id is 0, count+1 as a varint (0x80000000 = count 0x7fffffff).
        let v9 = [0x00, 0x00, 0x01, 0x00, 0x00, 0x03, 0xe8, 0x80, 0x80, 0x80, 0x80, 0x08];
        let error = check_body(0, 9, &v9).expect_err("v9 refused");
        assert!(error.contains("TopicData"), "{error}");
        // An overlong varint (six bytes) is refused rather than truncated.
        let overlong = [0x00, 0x00, 0x01, 0x00, 0x00, 0x03, 0xe8, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00];
        let error = check_body(0, 9, &overlong).expect_err("overlong refused");
        assert!(error.contains("varint"), "{error}");
    }

    /// A Fetch v12 body up to its topics: replica id, waits and sizes, isolation, session.
    fn fetch_v12_head() -> Vec<u8> {
        let mut body = vec![];
        body.extend_from_slice(&(-1i32).to_be_bytes()); // replica_id
        body.extend_from_slice(&500i32.to_be_bytes()); // max_wait_ms
        body.extend_from_slice(&1i32.to_be_bytes()); // min_bytes
        body.extend_from_slice(&1024i32.to_be_bytes()); // max_bytes
        body.push(0); // isolation_level
        body.extend_from_slice(&0i32.to_be_bytes()); // session_id
        body.extend_from_slice(&(-1i32).to_be_bytes()); // session_epoch
        body
    }

    /// A tagged field the schema knows must fill exactly its declared size, because the
    /// crate decodes it by type and ignores the size; an unknown one is skipped by size and
    /// must fit in the body.
    #[test]
    fn tagged_field_sizes_are_enforced() {
        // Fetch v12 top level ends with the tagged section: [count, tag 0 = ClusterId, size,
        // compact string]. Build the minimal v12 body by hand.
        let mut body = fetch_v12_head();
        body.push(1); // topics: empty compact array
        body.push(1); // forgotten topics: empty
        body.push(1); // rack_id: ""
        let tagged = |size: u8| {
            let mut b = body.clone();
            b.extend_from_slice(&[1, 0, size, 4, b'a', b'b', b'c']); // ClusterId "abc" = 4 bytes
            b.push(0); // a trailing byte, so a size one too large still fits the body
            b
        };
        assert_eq!(check_body(1, 12, &tagged(4)), Ok(()));
        assert!(decodes(1, 12, &tagged(4)));
        let error = check_body(1, 12, &tagged(5)).expect_err("declared size too large");
        assert!(error.contains("ClusterId"), "{error}");
        assert!(check_body(1, 12, &tagged(3)).is_err(), "declared size too small");
        // Unknown tag 7 with 3 bytes of content: skipped; with a size past the end: refused.
        let mut unknown = body.clone();
        unknown.extend_from_slice(&[1, 7, 3, 1, 2, 3]);
        assert_eq!(check_body(1, 12, &unknown), Ok(()));
        unknown[body.len() + 2] = 4;
        assert!(check_body(1, 12, &unknown).is_err());
    }

    /// Kafka 4.4's caps hold however many bytes follow: an array of 1,000,001 elements is
    /// refused although every element is there, 1,000,000 pass; a tagged section of 10,001
    /// entries is refused, 10,000 pass.
    #[test]
    fn arrays_and_tagged_sections_past_kafkas_caps_are_refused() {
        // Metadata v1: the topics array, each element an empty name (2 bytes).
        let metadata = |n: usize| {
            let mut body = (n as i32).to_be_bytes().to_vec();
            body.resize(4 + 2 * n, 0);
            body
        };
        assert_eq!(check_body(3, 1, &metadata(REQUEST_ARRAY_ELEMENTS_MAX)), Ok(()));
        let error = check_body(3, 1, &metadata(REQUEST_ARRAY_ELEMENTS_MAX + 1)).expect_err("past the array cap");
        assert!(error.contains("1000001 entries, more than the 1000000 allowed"), "{error}");
        // Metadata v9 (flexible): the same cap on a compact array.
        let mut flexible = Vec::new();
        let mut v = (REQUEST_ARRAY_ELEMENTS_MAX + 2) as u32; // compact: count + 1
        while v >= 0x80 {
            flexible.push((v as u8) | 0x80);
            v >>= 7;
        }
        flexible.push(v as u8);
        flexible.resize(flexible.len() + 3 * (REQUEST_ARRAY_ELEMENTS_MAX + 1) + 8, 0);
        assert!(check_body(3, 9, &flexible).expect_err("compact count past the cap").contains("more than the"));
        // Fetch v12 top level ends with its tagged section: n unknown tags (90), each empty.
        let fetch = |n: usize| {
            let mut body = fetch_v12_head();
            body.extend_from_slice(&[1, 1, 1]); // topics, forgotten topics: empty; rack_id ""
            let mut v = n as u32;
            while v >= 0x80 {
                body.push((v as u8) | 0x80);
                v >>= 7;
            }
            body.push(v as u8);
            for _ in 0..n {
                body.extend_from_slice(&[90, 0]);
            }
            body
        };
        assert_eq!(check_body(1, 12, &fetch(REQUEST_TAGGED_FIELDS_MAX)), Ok(()));
        let error = check_body(1, 12, &fetch(REQUEST_TAGGED_FIELDS_MAX + 1)).expect_err("past the tagged cap");
        assert!(error.contains("(tagged fields)") && error.contains("10001 entries"), "{error}");
    }

    fn decodes(api_key: i16, version: i16, body: &[u8]) -> bool {
        matches!(crate_decode(api_key, version, body), Some(Ok(_)))
    }

    /// APIs without a schema, and versions outside a schema's range, are not walked: the
    /// crate refuses those versions itself, and ApiVersions must still answer a too-new one.
    #[test]
    fn unknown_apis_and_versions_pass_through() {
        let garbage = [0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff];
        assert_eq!(check_body(32, 0, &garbage), Ok(()), "DescribeConfigs has no schema");
        assert_eq!(check_body(999, 0, &garbage), Ok(()));
        assert_eq!(check_body(0, 2, &garbage), Ok(()), "Produce v2 is outside the crate's range");
        assert_eq!(check_body(18, 5, &garbage), Ok(()), "ApiVersions v5 gets the v0 fallback");
        assert!(check_body(0, 3, &garbage).is_err());
    }

    /// Random bytes, and random mutations of valid requests, never panic the walk; and
    /// whenever the walk accepts a mutated body the crate decodes it without a huge
    /// allocation and, when it decodes it at all, ends at the same byte. This pins the
    /// generated tables to the crate's decoders well beyond the hand-built samples.
    #[test]
    fn random_and_mutated_bodies_never_panic_and_agree_with_the_crate() {
        let mut rng = fastrand::Rng::with_seed(0x5_1c3);
        let interesting = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe];
        let random_byte = |rng: &mut fastrand::Rng| {
            if rng.bool() {
                interesting[rng.usize(..interesting.len())]
            } else {
                rng.u8(..)
            }
        };
        for message in schema::MESSAGES {
            for version in message.valid.lo..=message.valid.hi {
                for _ in 0..300 {
                    let len = rng.usize(0..48);
                    let body: Vec<u8> = (0..len).map(|_| random_byte(&mut rng)).collect();
                    let _ = check_body(message.api_key, version, &body);
                }
            }
        }
        let mut both_accept = 0;
        for sample in samples() {
            for _ in 0..200 {
                let mut body = sample.body.clone();
                for _ in 0..rng.usize(1..=3) {
                    let at = rng.usize(..body.len().max(1));
                    if let Some(b) = body.get_mut(at) {
                        *b = random_byte(&mut rng);
                    }
                }
                // Decode only what the walk accepts: deciding that is the guard's whole job,
                // and a body it refuses may hold a count that would abort this test.
                let Ok(Some(walked_to)) = walk(sample.api_key, sample.version, &body, &mut Silent) else {
                    continue;
                };
                if let Some(Ok(decoded_to)) = crate_decode(sample.api_key, sample.version, &body) {
                    assert_eq!(walked_to, decoded_to, "{}: walk and crate end apart", sample.label());
                    both_accept += 1;
                }
            }
        }
        assert!(both_accept > 1_000, "only {both_accept} mutated bodies exercised the comparison");
    }
}
