//! Older clients (issue #13): request versions Kafka 4.0 dropped (KIP-896) that Kafka 3.9
//! served — ListOffsets v0, OffsetCommit v0–v1, OffsetFetch v0 — encoded and decoded by
//! kafka-protocol 0.14 (generated from Kafka 3.7, which still had them), against a real
//! node, beside the same questions asked through the versions the node served before.

mod support;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, RecordBatchEncoder, RecordEncodeOptions};
use kafka_protocol_3::messages as old;
use kafka_protocol_3::protocol::{Decodable as _, StrBytes as OldStr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::wire::{name, record, Client};
use support::Node;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const UNSUPPORTED_VERSION: i16 = 35;
const UNKNOWN_MEMBER_ID: i16 = 25;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn old_str(text: &str) -> OldStr {
    OldStr::from_string(text.to_string())
}

fn encode3<T: kafka_protocol_3::protocol::Encodable>(message: &T, version: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    message.encode(&mut buf, version).expect("kafka-protocol 0.14 encodes it");
    buf.to_vec()
}

/// Three records with CreateTime now, acks=all, to partition `p`; returns the base offset.
fn produce_three(c: &mut Client, topic: &str, p: i32) -> i64 {
    let ts = now_ms();
    let records: Vec<_> =
        (0..3).map(|i| record(i, ts, Some(Bytes::from_static(b"k")), Bytes::from(format!("value {i}")))).collect();
    let mut batch = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut batch, records.iter(), &options).unwrap();
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        TopicProduceData::default().with_name(name(topic)).with_partition_data(vec![PartitionProduceData::default()
            .with_index(p)
            .with_records(Some(batch.freeze()))]),
    ]);
    c.send(ApiKey::Produce, 9, &req);
    let r: ProduceResponse = c.recv(ApiKey::Produce, 9);
    let part = &r.responses[0].partition_responses[0];
    assert_eq!(part.error_code, 0, "produce to {topic}-{p}");
    part.base_offset
}

/// ListOffsets v0 for partitions of `topic`: (partition, timestamp, max) each → (error,
/// offsets) each, as kafka-protocol 0.14 decodes the answer.
fn list_v0(c: &mut Client, replica_id: i32, topic: &str, asks: &[(i32, i64, i32)]) -> Vec<(i16, Vec<i64>)> {
    let partitions = asks
        .iter()
        .map(|&(p, ts, max)| {
            old::list_offsets_request::ListOffsetsPartition::default()
                .with_partition_index(p)
                .with_timestamp(ts)
                .with_max_num_offsets(max)
        })
        .collect();
    let request = old::ListOffsetsRequest::default().with_replica_id(old::BrokerId(replica_id)).with_topics(vec![
        old::list_offsets_request::ListOffsetsTopic::default()
            .with_name(old::TopicName(old_str(topic)))
            .with_partitions(partitions),
    ]);
    c.send_body(ApiKey::ListOffsets, 0, &encode3(&request, 0));
    let mut body = c.recv_body();
    let answer = old::ListOffsetsResponse::decode(&mut body, 0).expect("a ListOffsets v0 answer");
    assert!(body.is_empty(), "nothing after the v0 answer");
    assert_eq!(answer.topics.len(), 1);
    let parts = &answer.topics[0].partitions;
    assert_eq!(
        parts.iter().map(|p| p.partition_index).collect::<Vec<_>>(),
        asks.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    parts.iter().map(|p| (p.error_code, p.old_style_offsets.clone())).collect()
}

/// ListOffsets v1 of one partition: the offset.
fn list_v1(c: &mut Client, topic: &str, p: i32, timestamp: i64) -> i64 {
    let req =
        ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(p).with_timestamp(timestamp)])]);
    c.send(ApiKey::ListOffsets, 1, &req);
    let r: ListOffsetsResponse = c.recv(ApiKey::ListOffsets, 1);
    let part = &r.topics[0].partitions[0];
    assert_eq!(part.error_code, 0);
    part.offset
}

fn create_topic_with(c: &mut Client, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let configs = configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.to_string()))
                .with_value(Some(StrBytes::from_string(v.to_string())))
        })
        .collect();
    let create = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![CreatableTopic::default()
        .with_name(name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(1)
        .with_configs(configs)]);
    c.send(ApiKey::CreateTopics, 7, &create);
    let created: CreateTopicsResponse = c.recv(ApiKey::CreateTopics, 7);
    assert_eq!(created.topics[0].error_code, 0, "creating {topic}");
}

/// ApiVersions advertises the legacy versions now served, and still not Produce v0–v2 or
/// Fetch v0–v3 (old message formats, see the README); asking for those closes the
/// connection, as before.
#[test]
fn api_versions_advertises_the_kafka_3_9_versions_served() {
    let node = Node::start(&["--cores", "0"]);
    let mut c = Client::connect(node.bootstrap());
    c.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let r: ApiVersionsResponse = c.recv(ApiKey::ApiVersions, 3);
    let range = |key: ApiKey| {
        let k = r.api_keys.iter().find(|k| k.api_key == key as i16).expect("advertised");
        (k.min_version, k.max_version)
    };
    assert_eq!(range(ApiKey::ListOffsets), (0, 8));
    assert_eq!(range(ApiKey::OffsetCommit), (0, 9));
    assert_eq!(range(ApiKey::OffsetFetch), (0, 9));
    assert_eq!(range(ApiKey::Produce), (3, 13));
    assert_eq!(range(ApiKey::Fetch), (4, 16));
    for (key, version) in [(ApiKey::Produce, 2), (ApiKey::Fetch, 3)] {
        let mut c = Client::connect(node.bootstrap());
        c.send_body(key, version, &[0; 16]);
        assert!(c.closed_by_node(), "{key:?} v{version} closes the connection");
    }
}

/// ListOffsets v0 answers as Kafka 3.9: -2 the earliest offset, -1 the latest (more with
/// MaxNumOffsets: each segment's base, newest first), a time the bases of the segments last
/// written at or before it. v1 in the same test: one offset, and for a time the first
/// record at or after it. Partitions on both shards, an unknown partition, and a sentinel
/// v0 does not know are answered per partition.
#[test]
fn list_offsets_v0_answers_as_kafka_3_9_beside_v1() {
    let node = Node::start(&["--cores", "0-1"]);
    let mut c = Client::connect(node.bootstrap());
    // Each three-record batch (over 100 bytes) fills a 120-byte segment: one per segment.
    create_topic_with(&mut c, "old", 2, &[("segment.bytes", "120")]);
    let gap = Duration::from_millis(40);
    let mut cuts = Vec::new();
    for p in 0..2 {
        assert_eq!(produce_three(&mut c, "old", p), 0);
    }
    for base in [3, 6] {
        std::thread::sleep(gap);
        cuts.push(now_ms()); // after the previous segments' last write, before the next
        std::thread::sleep(gap);
        for p in 0..2 {
            assert_eq!(produce_three(&mut c, "old", p), base);
        }
    }
    let (t1, t2) = (cuts[0], cuts[1]);
    for p in 0..2 {
        for base in [0, 3, 6] {
            let file = node.data_dir().join(format!("old-{p}")).join(format!("{base:020}.log"));
            assert!(file.exists(), "one segment per batch: {} missing", file.display());
        }
    }
    let future = now_ms() + 3_600_000;

    for p in 0..2 {
        let answers = list_v0(
            &mut c,
            -1,
            "old",
            &[(p, -2, 1), (p, -1, 1), (p, -1, 10), (p, t1, 10), (p, t2, 10), (p, t2, 1), (p, future, 2), (p, 1_000, 5)],
        );
        let want: Vec<(i16, Vec<i64>)> =
            [vec![0], vec![9], vec![9, 6, 3, 0], vec![0], vec![3, 0], vec![3], vec![9, 6], vec![]]
                .into_iter()
                .map(|offsets| (0, offsets))
                .collect();
        assert_eq!(answers, want, "v0, partition {p}");

        // The same through v1: one offset; a time finds the first record at or after it.
        assert_eq!(list_v1(&mut c, "old", p, -2), 0);
        assert_eq!(list_v1(&mut c, "old", p, -1), 9);
        assert_eq!(list_v1(&mut c, "old", p, t1), 3);
        assert_eq!(list_v1(&mut c, "old", p, t2), 6);
        assert_eq!(list_v1(&mut c, "old", p, future), -1);
    }

    // Per-partition errors: an unknown partition; -3 (max timestamp) is a v7 sentinel.
    let answers = list_v0(&mut c, -1, "old", &[(9, -1, 1), (0, -3, 1), (1, -1, 1)]);
    assert_eq!(answers, vec![(UNKNOWN_TOPIC_OR_PARTITION, vec![]), (UNSUPPORTED_VERSION, vec![]), (0, vec![9])]);
    // A debugging tool (replica id -2) is answered the same; a topic never created, per partition.
    assert_eq!(list_v0(&mut c, -2, "old", &[(0, -1, 2)]), vec![(0, vec![9, 6])]);
    assert_eq!(list_v0(&mut c, -1, "nope", &[(0, -1, 1)]), vec![(UNKNOWN_TOPIC_OR_PARTITION, vec![])]);
}

/// OffsetCommit v0 and v1 and OffsetFetch v0 reach the group coordinator: v0 and v1
/// commits read back through OffsetFetch v0 and v1 alike; v0 answers a partition without a
/// commit UNKNOWN_TOPIC_OR_PARTITION (as a ZooKeeper-era broker did), v1 offset -1; v1's
/// generation and member are checked like later versions'; and v1's commit timestamp is the
/// commit's time, so a standalone commit dated past offsets.retention.minutes expires at
/// the next retention check, while one dated now stays.
#[test]
fn offset_commit_v0_v1_and_offset_fetch_v0_use_the_group_coordinator() {
    let node = Node::start(&["--cores", "0-1", "--set", "offsets.retention.check.interval.ms=200"]);
    let mut c = Client::connect(node.bootstrap());
    c.create_topic("commits", 3);

    let commit = |c: &mut Client, version: i16, group: &str, member: (i32, &str), parts: &[(i32, i64, i64)]| {
        let partitions = parts
            .iter()
            .map(|&(p, offset, ts)| {
                old::offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_partition_index(p)
                    .with_committed_offset(offset)
                    .with_commit_timestamp(ts)
                    .with_committed_metadata(Some(old_str(&format!("md-{p}"))))
            })
            .collect();
        let request = old::OffsetCommitRequest::default()
            .with_group_id(old::GroupId(old_str(group)))
            .with_generation_id_or_member_epoch(member.0)
            .with_member_id(old_str(member.1))
            .with_topics(vec![old::offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(old::TopicName(old_str("commits")))
                .with_partitions(partitions)]);
        c.send_body(ApiKey::OffsetCommit, version, &encode3(&request, version));
        let mut body = c.recv_body();
        let answer = old::OffsetCommitResponse::decode(&mut body, version).expect("an OffsetCommit answer");
        assert!(body.is_empty());
        answer.topics[0].partitions.iter().map(|p| (p.partition_index, p.error_code)).collect::<Vec<_>>()
    };
    let fetch = |c: &mut Client, version: i16, group: &str| {
        let request =
            old::OffsetFetchRequest::default().with_group_id(old::GroupId(old_str(group))).with_topics(Some(vec![
                old::offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(old::TopicName(old_str("commits")))
                    .with_partition_indexes(vec![0, 1, 2]),
            ]));
        c.send_body(ApiKey::OffsetFetch, version, &encode3(&request, version));
        let mut body = c.recv_body();
        let answer = old::OffsetFetchResponse::decode(&mut body, version).expect("an OffsetFetch answer");
        assert!(body.is_empty());
        let mut parts: Vec<(i32, i64, String, i16)> = answer
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| {
                (p.partition_index, p.committed_offset, p.metadata.as_deref().unwrap_or("").to_string(), p.error_code)
            })
            .collect();
        parts.sort();
        parts
    };
    let md = |p: i32| format!("md-{p}");

    // v0: a standalone commit; partition 9 does not exist.
    assert_eq!(commit(&mut c, 0, "legacy", (-1, ""), &[(0, 5, -1), (9, 1, -1)]), vec![(0, 0), (9, 3)]);
    // v1: generation -1 and no member is standalone too; its timestamp -1 means now.
    assert_eq!(commit(&mut c, 1, "legacy", (-1, ""), &[(1, 7, -1)]), vec![(1, 0)]);
    assert_eq!(
        fetch(&mut c, 0, "legacy"),
        vec![(0, 5, md(0), 0), (1, 7, md(1), 0), (2, -1, String::new(), UNKNOWN_TOPIC_OR_PARTITION)]
    );
    assert_eq!(fetch(&mut c, 1, "legacy"), vec![(0, 5, md(0), 0), (1, 7, md(1), 0), (2, -1, String::new(), 0)]);
    // The same offsets through today's OffsetFetch (v5 here, kafka-protocol 0.18).
    let req = OffsetFetchRequest::default().with_group_id(GroupId(StrBytes::from_static_str("legacy"))).with_topics(
        Some(vec![OffsetFetchRequestTopic::default().with_name(name("commits")).with_partition_indexes(vec![0, 1])]),
    );
    c.send(ApiKey::OffsetFetch, 5, &req);
    let r: OffsetFetchResponse = c.recv(ApiKey::OffsetFetch, 5);
    let offsets: Vec<i64> = r.topics[0].partitions.iter().map(|p| p.committed_offset).collect();
    assert_eq!(offsets, vec![5, 7]);

    // v1 with a generation and member the group does not have.
    assert_eq!(commit(&mut c, 1, "legacy", (3, "stranger"), &[(0, 99, -1)]), vec![(0, UNKNOWN_MEMBER_ID)]);
    assert_eq!(fetch(&mut c, 0, "legacy")[0].1, 5, "the refused commit changed nothing");

    // v1's commit timestamp: eight days ago (retention is seven) expires; now stays.
    let eight_days_ago = now_ms() - 8 * 24 * 3_600_000;
    assert_eq!(commit(&mut c, 1, "dated", (-1, ""), &[(0, 11, eight_days_ago), (1, 12, -1)]), vec![(0, 0), (1, 0)]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let parts = fetch(&mut c, 1, "dated");
        if parts[0].1 == -1 {
            assert_eq!(parts[1].1, 12, "the commit dated now stays");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the commit dated eight days ago never expired: {parts:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
