//! Request layouts Kafka 4.0 dropped (KIP-896) that Kafka 3.9 still served and clients in
//! current Linux distributions still send, which the kafka-protocol crate (0.18, generated
//! from Kafka 4.1) no longer decodes: ListOffsets v0 and OffsetCommit v0–v1, read here; and
//! the one legacy answer whose layout no later version shares, ListOffsets v0's.
//!
//! The others need no code of their own: OffsetFetch v0 is v1's layout both ways (v1 only
//! moved the offsets from ZooKeeper to the group coordinator), and OffsetCommit v0–v1 answer
//! in v2's layout (ThrottleTimeMs arrived in v3). The consts below name those stand-ins, and
//! the tests check the layouts against kafka-protocol 0.14 (generated from Kafka 3.7).
//!
//! Every body read here was first walked by the guard against Kafka 3.9's schema of its
//! version (`protocol_guard`), so no count can exceed the body; the reader still checks
//! every read, and anything it cannot read closes the connection, as Kafka does.

use super::Close;
use crate::protocol::{Chunk, Request, Response};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

/// OffsetFetch v0 asks and answers in v1's layout.
pub const OFFSET_FETCH_V0_LAYOUT: i16 = 1;
/// OffsetCommit v0 and v1 answer in v2's layout.
pub const OFFSET_COMMIT_V0_V1_ANSWER_LAYOUT: i16 = 2;

/// ListOffsets v0: who asks (-1 a consumer) and, per topic, per partition what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsV0 {
    pub replica_id: i32,
    pub topics: Vec<(String, Vec<OffsetsBefore>)>,
}

/// One partition of ListOffsets v0: up to `max_num_offsets` offsets before `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetsBefore {
    pub partition: i32,
    pub timestamp: i64,
    pub max_num_offsets: i32,
}

/// Reads a ListOffsets v0 body: ReplicaId, [Name, [PartitionIndex, Timestamp, MaxNumOffsets]].
pub fn decode_list_offsets_v0(req: &Request) -> Result<ListOffsetsV0, Close> {
    let mut r = reader(req)?;
    let replica_id = r.i32()?;
    let topics = r.array(|r| {
        let name = r.string()?;
        let partitions =
            r.array(|r| Ok(OffsetsBefore { partition: r.i32()?, timestamp: r.i64()?, max_num_offsets: r.i32()? }))?;
        Ok((name, partitions))
    })?;
    Ok(ListOffsetsV0 { replica_id, topics })
}

/// A ListOffsets v0 answer: per topic, per partition (index, error, offsets newest first).
pub fn encode_list_offsets_v0(correlation_id: i32, topics: &[(String, Vec<(i32, i16, Vec<i64>)>)]) -> Response {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(correlation_id); // response header v0
    put_len(&mut buf, topics.len());
    for (name, partitions) in topics {
        put_len16(&mut buf, name.len());
        buf.put_slice(name.as_bytes());
        put_len(&mut buf, partitions.len());
        for (index, error, offsets) in partitions {
            buf.put_i32(*index);
            buf.put_i16(*error);
            put_len(&mut buf, offsets.len());
            for offset in offsets {
                buf.put_i64(*offset);
            }
        }
    }
    Response { chunks: vec![Chunk::Bytes(buf.freeze())] }
}

/// Reads an OffsetCommit v0 or v1 body into the crate's request (v0: generation -1 and no
/// member, a standalone commit; no retention of its own) and v1's commit timestamp of each
/// partition, in order (-1: none given, and always for v0).
pub fn decode_offset_commit_v0_v1(req: &Request) -> Result<(OffsetCommitRequest, Vec<i64>), Close> {
    let v1 = req.api_version == 1;
    let mut r = reader(req)?;
    let group_id = r.string()?;
    let (generation, member_id) = if v1 { (r.i32()?, r.string()?) } else { (-1, String::new()) };
    let mut timestamps = Vec::new();
    let topics = r.array(|r| {
        let name = r.string()?;
        let partitions = r.array(|r| {
            let index = r.i32()?;
            let offset = r.i64()?;
            timestamps.push(if v1 { r.i64()? } else { -1 });
            let metadata = r.nullable_string()?;
            Ok(OffsetCommitRequestPartition::default()
                .with_partition_index(index)
                .with_committed_offset(offset)
                .with_committed_metadata(metadata.map(StrBytes::from_string)))
        })?;
        Ok(OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_string(name)))
            .with_partitions(partitions))
    })?;
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group_id)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(StrBytes::from_string(member_id))
        .with_retention_time_ms(-1)
        .with_topics(topics);
    Ok((request, timestamps))
}

/// The guard's walk first, then a reader over the body.
fn reader(req: &Request) -> Result<Reader, Close> {
    crate::protocol_guard::check_body(req.api_key as i16, req.api_version, &req.body).map_err(Close)?;
    Ok(Reader { bytes: req.body.clone(), what: (req.api_key, req.api_version) })
}

fn put_len(buf: &mut BytesMut, len: usize) {
    buf.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
}

fn put_len16(buf: &mut BytesMut, len: usize) {
    buf.put_i16(i16::try_from(len).unwrap_or(i16::MAX));
}

/// A cursor over a classic (non-flexible) body: big-endian integers, i16-length strings,
/// i32-count arrays.
struct Reader {
    bytes: Bytes,
    what: (kafka_protocol::messages::ApiKey, i16),
}

impl Reader {
    fn malformed(&self, why: &str) -> Close {
        Close(format!("malformed {:?} v{} request: {why}", self.what.0, self.what.1))
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], Close> {
        let Some(head) = self.bytes.first_chunk::<N>().copied() else {
            return Err(self.malformed("body ends early"));
        };
        self.bytes.advance(N);
        Ok(head)
    }

    fn i16(&mut self) -> Result<i16, Close> {
        self.take().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, Close> {
        self.take().map(i32::from_be_bytes)
    }

    fn i64(&mut self) -> Result<i64, Close> {
        self.take().map(i64::from_be_bytes)
    }

    fn nullable_string(&mut self) -> Result<Option<String>, Close> {
        let len = self.i16()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| self.malformed("negative string length"))?;
        if len > self.bytes.len() {
            return Err(self.malformed("string longer than the body"));
        }
        let text = String::from_utf8(self.bytes[..len].to_vec()).map_err(|_| self.malformed("string not UTF-8"))?;
        self.bytes.advance(len);
        Ok(Some(text))
    }

    fn string(&mut self) -> Result<String, Close> {
        self.nullable_string()?.ok_or_else(|| self.malformed("null string"))
    }

    /// An array: its count (at most the bytes left, so `with_capacity` stays bounded by
    /// the body), then `count` elements.
    fn array<T>(&mut self, mut element: impl FnMut(&mut Self) -> Result<T, Close>) -> Result<Vec<T>, Close> {
        let count = self.i32()?;
        let count = usize::try_from(count).map_err(|_| self.malformed("negative array count"))?;
        if count > self.bytes.len() {
            return Err(self.malformed("array count larger than the body"));
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(element(self)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    //! The layouts against kafka-protocol 0.14 (generated from Kafka 3.7, the last to have
    //! all of them): what it encodes we read back field for field, what we encode it reads.
    use super::*;
    use kafka_protocol::messages::{ApiKey, RequestHeader};
    use kafka_protocol_3::messages as old;
    use kafka_protocol_3::protocol::{Decodable as _, StrBytes as OldStr};

    fn request(api_key: ApiKey, api_version: i16, body: Vec<u8>) -> Request {
        Request { api_key, api_version, header: RequestHeader::default(), body: Bytes::from(body), peer: None }
    }

    fn encode3<T: kafka_protocol_3::protocol::Encodable>(message: &T, version: i16) -> Vec<u8> {
        let mut buf = BytesMut::new();
        message.encode(&mut buf, version).expect("0.14 encodes");
        buf.to_vec()
    }

    fn encode18<T: kafka_protocol::protocol::Encodable>(message: &T, version: i16) -> Vec<u8> {
        let mut buf = BytesMut::new();
        message.encode(&mut buf, version).expect("0.18 encodes");
        buf.to_vec()
    }

    fn old_str(text: &'static str) -> OldStr {
        OldStr::from_static_str(text)
    }

    fn list_offsets_v0() -> Vec<u8> {
        let partition = |p: i32, ts: i64, max: i32| {
            old::list_offsets_request::ListOffsetsPartition::default()
                .with_partition_index(p)
                .with_timestamp(ts)
                .with_max_num_offsets(max)
        };
        let request = old::ListOffsetsRequest::default().with_replica_id(old::BrokerId(-2)).with_topics(vec![
            old::list_offsets_request::ListOffsetsTopic::default()
                .with_name(old::TopicName(old_str("events")))
                .with_partitions(vec![partition(0, -1, 1), partition(3, 1_700_000_000_000, 7)]),
            old::list_offsets_request::ListOffsetsTopic::default().with_name(old::TopicName(old_str("ünïcode"))),
        ]);
        encode3(&request, 0)
    }

    /// A ListOffsets v0 request as Kafka's clients encode it reads back field for field.
    #[test]
    fn reads_list_offsets_v0() {
        let read = decode_list_offsets_v0(&request(ApiKey::ListOffsets, 0, list_offsets_v0())).expect("reads");
        let want = ListOffsetsV0 {
            replica_id: -2,
            topics: vec![
                (
                    "events".to_string(),
                    vec![
                        OffsetsBefore { partition: 0, timestamp: -1, max_num_offsets: 1 },
                        OffsetsBefore { partition: 3, timestamp: 1_700_000_000_000, max_num_offsets: 7 },
                    ],
                ),
                ("ünïcode".to_string(), vec![]),
            ],
        };
        assert_eq!(read, want);
    }

    /// Our ListOffsets v0 answer is byte for byte what Kafka's schema encodes, and decodes.
    #[test]
    fn writes_list_offsets_v0_answers() {
        let topics = vec![
            ("events".to_string(), vec![(0, 0, vec![42, 10, 0]), (1, 3, vec![])]),
            ("other".to_string(), vec![(5, 0, vec![7])]),
        ];
        let ours = encode_list_offsets_v0(77, &topics);
        let [Chunk::Bytes(ours)] = &ours.chunks[..] else { panic!("one chunk") };
        let answer = old::ListOffsetsResponse::default().with_topics(
            topics
                .iter()
                .map(|(name, parts)| {
                    old::list_offsets_response::ListOffsetsTopicResponse::default()
                        .with_name(old::TopicName(OldStr::from_string(name.clone())))
                        .with_partitions(
                            parts
                                .iter()
                                .map(|(p, e, offsets)| {
                                    old::list_offsets_response::ListOffsetsPartitionResponse::default()
                                        .with_partition_index(*p)
                                        .with_error_code(*e)
                                        .with_old_style_offsets(offsets.clone())
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
        let mut theirs = 77i32.to_be_bytes().to_vec();
        theirs.extend(encode3(&answer, 0));
        assert_eq!(&ours[..], &theirs[..]);
        let mut body = ours.slice(4..);
        let decoded = old::ListOffsetsResponse::decode(&mut body, 0).expect("decodes");
        assert_eq!(decoded.topics[0].partitions[0].old_style_offsets, vec![42, 10, 0]);
        assert_eq!(decoded.topics[0].partitions[1].error_code, 3);
        assert!(body.is_empty());
    }

    /// v1 carries a generation, a member and commit timestamps; v0 has none of them (the
    /// codec refuses to encode a field its version lacks).
    fn offset_commit(version: i16) -> Vec<u8> {
        let v1 = version == 1;
        let partition = |p: i32, ts: i64, metadata: Option<&'static str>| {
            old::offset_commit_request::OffsetCommitRequestPartition::default()
                .with_partition_index(p)
                .with_committed_offset(100 + i64::from(p))
                .with_commit_timestamp(if v1 { ts } else { -1 })
                .with_committed_metadata(metadata.map(old_str))
        };
        let request = old::OffsetCommitRequest::default().with_group_id(old::GroupId(old_str("g")));
        let request = if v1 {
            request.with_generation_id_or_member_epoch(7).with_member_id(old_str("member-1"))
        } else {
            request
        };
        let request = request.with_topics(vec![
            old::offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(old::TopicName(old_str("a")))
                .with_partitions(vec![partition(0, 1_600_000_000_000, Some("md")), partition(1, -1, None)]),
            old::offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(old::TopicName(old_str("b")))
                .with_partitions(vec![partition(2, 5, Some(""))]),
        ]);
        encode3(&request, version)
    }

    /// OffsetCommit v0 and v1 read back: v1 with its generation, member and commit
    /// timestamps; v0 as a standalone commit (generation -1, no member).
    #[test]
    fn reads_offset_commit_v0_and_v1() {
        for version in 0..=1 {
            let (read, timestamps) =
                decode_offset_commit_v0_v1(&request(ApiKey::OffsetCommit, version, offset_commit(version)))
                    .expect("reads");
            assert_eq!(read.group_id.0.as_str(), "g");
            let (generation, member) = if version == 1 { (7, "member-1") } else { (-1, "") };
            assert_eq!(
                (read.generation_id_or_member_epoch, read.member_id.as_str()),
                (generation, member),
                "v{version}"
            );
            assert_eq!(read.retention_time_ms, -1);
            let parts: Vec<(&str, i32, i64, Option<&str>)> = read
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(move |p| {
                        (t.name.0.as_str(), p.partition_index, p.committed_offset, p.committed_metadata.as_deref())
                    })
                })
                .collect();
            assert_eq!(parts, vec![("a", 0, 100, Some("md")), ("a", 1, 101, None), ("b", 2, 102, Some(""))]);
            let want = if version == 1 { vec![1_600_000_000_000, -1, 5] } else { vec![-1, -1, -1] };
            assert_eq!(timestamps, want, "v{version}");
        }
    }

    /// The stand-in layouts: OffsetFetch v0 is v1 both ways, OffsetCommit v0/v1 answer as v2
    /// — the bytes Kafka's schema gives the legacy version equal ours for the stand-in.
    #[test]
    fn stand_in_layouts_are_byte_identical() {
        use kafka_protocol::messages::offset_commit_response as commit;
        use kafka_protocol::messages::offset_fetch_response as fetch;
        use kafka_protocol::messages::{OffsetCommitResponse, OffsetFetchResponse};
        let old_fetch_request = old::OffsetFetchRequest::default()
            .with_group_id(old::GroupId(old_str("g")))
            .with_topics(Some(vec![old::offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(old::TopicName(old_str("t")))
                .with_partition_indexes(vec![0, 4])]));
        assert_eq!(encode3(&old_fetch_request, 0), encode3(&old_fetch_request, OFFSET_FETCH_V0_LAYOUT));

        let old_fetch = old::OffsetFetchResponse::default().with_topics(vec![
            old::offset_fetch_response::OffsetFetchResponseTopic::default()
                .with_name(old::TopicName(old_str("t")))
                .with_partitions(vec![old::offset_fetch_response::OffsetFetchResponsePartition::default()
                    .with_partition_index(4)
                    .with_committed_offset(9)
                    .with_metadata(Some(old_str("md")))
                    .with_error_code(3)]),
        ]);
        let new_fetch = OffsetFetchResponse::default().with_topics(vec![fetch::OffsetFetchResponseTopic::default()
            .with_name(kafka_protocol::messages::TopicName(StrBytes::from_static_str("t")))
            .with_partitions(vec![fetch::OffsetFetchResponsePartition::default()
                .with_partition_index(4)
                .with_committed_offset(9)
                .with_metadata(Some(StrBytes::from_static_str("md")))
                .with_error_code(3)])]);
        assert_eq!(encode3(&old_fetch, 0), encode18(&new_fetch, OFFSET_FETCH_V0_LAYOUT));

        let old_commit = old::OffsetCommitResponse::default().with_topics(vec![
            old::offset_commit_response::OffsetCommitResponseTopic::default()
                .with_name(old::TopicName(old_str("t")))
                .with_partitions(vec![old::offset_commit_response::OffsetCommitResponsePartition::default()
                    .with_partition_index(2)
                    .with_error_code(22)]),
        ]);
        let new_commit =
            OffsetCommitResponse::default().with_topics(vec![commit::OffsetCommitResponseTopic::default()
                .with_name(kafka_protocol::messages::TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![commit::OffsetCommitResponsePartition::default()
                    .with_partition_index(2)
                    .with_error_code(22)])]);
        for version in 0..=1 {
            assert_eq!(encode3(&old_commit, version), encode18(&new_commit, OFFSET_COMMIT_V0_V1_ANSWER_LAYOUT));
        }
        // And the stand-ins' response headers are v0 (the correlation id only), as the
        // legacy versions' are.
        assert_eq!(ApiKey::OffsetFetch.response_header_version(OFFSET_FETCH_V0_LAYOUT), 0);
        assert_eq!(ApiKey::OffsetCommit.response_header_version(OFFSET_COMMIT_V0_V1_ANSWER_LAYOUT), 0);
    }

    /// Cut anywhere, or with a count past the body, a legacy request closes the connection;
    /// nothing panics or allocates by a hostile count.
    #[test]
    fn truncated_or_hostile_legacy_requests_are_refused() {
        let cases = [
            (ApiKey::ListOffsets, 0, list_offsets_v0()),
            (ApiKey::OffsetCommit, 0, offset_commit(0)),
            (ApiKey::OffsetCommit, 1, offset_commit(1)),
        ];
        for (key, version, body) in cases {
            for len in 0..body.len() {
                let req = request(key, version, body[..len].to_vec());
                let read = match key {
                    ApiKey::ListOffsets => decode_list_offsets_v0(&req).map(|_| ()),
                    _ => decode_offset_commit_v0_v1(&req).map(|_| ()),
                };
                assert!(read.is_err(), "{key:?} v{version} cut to {len} bytes was read");
            }
        }
        // ReplicaId, then a topic count of 0x7fffffff.
        let hostile = [0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff];
        let Err(Close(why)) = decode_list_offsets_v0(&request(ApiKey::ListOffsets, 0, hostile.to_vec())) else {
            panic!("a hostile count was read");
        };
        assert!(why.contains("2147483647"), "{why}");
    }
}
