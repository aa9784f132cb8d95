//! A Rust client built on the `kafka-protocol` crate's client codec (an implementation
//! independent of librdkafka and of kafka-python) against a real node.

mod support;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::records::*;
use std::collections::BTreeMap;
use support::wire::{name, record, Client};
use support::Node;

/// Kafka's murmur2, as the Java client's default partitioner uses for keyed records.
fn murmur2(data: &[u8]) -> i32 {
    let m: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(m);
        k ^= k >> 24;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m) ^ k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(m);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(m);
    h ^= h >> 15;
    h as i32
}

fn partition_for(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions
}

/// 100k keyed messages to a 6-partition topic with acks=all, produced and consumed back by
/// the kafka-protocol-based client: complete, order kept per partition, same key → same
/// partition (murmur2, like Java's default partitioner).
#[test]
fn a_rust_client_round_trips_100k_keyed_messages() {
    let node = Node::start(&["--cores", "0-1"]);
    let mut c = Client::connect(node.bootstrap());
    let create = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![CreatableTopic::default()
        .with_name(name("rust"))
        .with_num_partitions(6)
        .with_replication_factor(1)]);
    c.send(ApiKey::CreateTopics, 7, &create);
    let created: CreateTopicsResponse = c.recv(ApiKey::CreateTopics, 7);
    assert_eq!(created.topics[0].error_code, 0);

    let total = 100_000;
    let mut per_partition: BTreeMap<i32, Vec<(String, String)>> = BTreeMap::new();
    for i in 0..total {
        let key = format!("key-{}", i % 1000);
        per_partition.entry(partition_for(key.as_bytes(), 6)).or_default().push((key, format!("value-{i}")));
    }
    // Produce v9 (flexible), batches of 500 records, 8 requests in flight.
    let mut in_flight = 0;
    let mut acked = 0;
    for (&p, msgs) in &per_partition {
        for (chunk_no, chunk) in msgs.chunks(500).enumerate() {
            let records: Vec<Record> = chunk
                .iter()
                .enumerate()
                .map(|(i, (k, v))| {
                    let ts = 1_700_000_000_000 + (chunk_no * 500 + i) as i64;
                    record(i as i64, ts, Some(Bytes::from(k.clone())), Bytes::from(v.clone()))
                })
                .collect();
            let mut batch = BytesMut::new();
            let options = RecordEncodeOptions { version: 2, compression: Compression::None };
            RecordBatchEncoder::encode(&mut batch, records.iter(), &options).unwrap();
            let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![
                TopicProduceData::default().with_name(name("rust")).with_partition_data(vec![
                    PartitionProduceData::default().with_index(p).with_records(Some(batch.freeze())),
                ]),
            ]);
            c.send(ApiKey::Produce, 9, &req);
            in_flight += 1;
            if in_flight == 8 {
                let r: ProduceResponse = c.recv(ApiKey::Produce, 9);
                assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
                in_flight -= 1;
                acked += 1;
            }
        }
    }
    for _ in 0..in_flight {
        let r: ProduceResponse = c.recv(ApiKey::Produce, 9);
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
        acked += 1;
    }
    assert_eq!(acked, per_partition.values().map(|m| m.len().div_ceil(500)).sum::<usize>());

    // Consume everything with Fetch v12 (flexible), all partitions per request.
    let mut offsets = [0i64; 6];
    let mut got: BTreeMap<i32, Vec<(String, String)>> = BTreeMap::new();
    loop {
        let parts = (0..6)
            .map(|p| {
                FetchPartition::default()
                    .with_partition(p)
                    .with_fetch_offset(offsets[p as usize])
                    .with_partition_max_bytes(256 * 1024)
            })
            .collect();
        let req = FetchRequest::default()
            .with_max_wait_ms(100)
            .with_min_bytes(1)
            .with_max_bytes(4 << 20)
            .with_topics(vec![FetchTopic::default().with_topic(name("rust")).with_partitions(parts)]);
        c.send(ApiKey::Fetch, 12, &req);
        let r: FetchResponse = c.recv(ApiKey::Fetch, 12);
        let mut any = false;
        for p in &r.responses[0].partitions {
            assert_eq!(p.error_code, 0);
            let Some(mut records) = p.records.clone() else { continue };
            while !records.is_empty() {
                let set = RecordBatchDecoder::decode(&mut records).unwrap();
                for rec in set.records {
                    if rec.offset < offsets[p.partition_index as usize] {
                        continue; // a batch is returned whole; skip what we already have
                    }
                    assert_eq!(rec.offset, offsets[p.partition_index as usize], "offsets are dense");
                    offsets[p.partition_index as usize] += 1;
                    let key = String::from_utf8(rec.key.unwrap().to_vec()).unwrap();
                    let value = String::from_utf8(rec.value.unwrap().to_vec()).unwrap();
                    got.entry(p.partition_index).or_default().push((key, value));
                    any = true;
                }
            }
        }
        if !any {
            break;
        }
    }
    assert_eq!(got.values().map(Vec::len).sum::<usize>(), total, "complete");
    assert_eq!(got, per_partition, "same records, same partitions, same order");
}

/// Produce v13 and Fetch v13+ address topics by id: records produced by id come back by
/// id, and an unknown id is answered UNKNOWN_TOPIC_ID.
#[test]
fn produce_and_fetch_by_topic_id() {
    let node = Node::start(&["--cores", "0"]);
    let mut c = Client::connect(node.bootstrap());
    let create = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![CreatableTopic::default()
        .with_name(name("by-id"))
        .with_num_partitions(1)
        .with_replication_factor(1)]);
    c.send(ApiKey::CreateTopics, 7, &create);
    let created: CreateTopicsResponse = c.recv(ApiKey::CreateTopics, 7);
    let id = created.topics[0].topic_id;
    assert!(!id.is_nil(), "CreateTopics v7 returns the topic id");
    let record = record(0, 1_700_000_000_000, Some(Bytes::from_static(b"k")), Bytes::from_static(b"by id"));
    let mut batch = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut batch, [record].iter(), &options).unwrap();
    let batch = batch.freeze();
    for (topic_id, expected) in [(id, 0i16), (uuid::Uuid::from_u128(42), 100)] {
        let req = ProduceRequest::default().with_acks(1).with_timeout_ms(10_000).with_topic_data(vec![
            TopicProduceData::default().with_topic_id(topic_id).with_partition_data(vec![
                PartitionProduceData::default().with_index(0).with_records(Some(batch.clone())),
            ]),
        ]);
        c.send(ApiKey::Produce, 13, &req);
        let r: ProduceResponse = c.recv(ApiKey::Produce, 13);
        assert_eq!(r.responses[0].topic_id, topic_id);
        assert_eq!(r.responses[0].partition_responses[0].error_code, expected);
    }
    let req =
        FetchRequest::default().with_max_wait_ms(100).with_min_bytes(1).with_max_bytes(1 << 20).with_topics(vec![
            FetchTopic::default()
                .with_topic_id(id)
                .with_partitions(vec![FetchPartition::default().with_partition(0).with_partition_max_bytes(1 << 20)]),
        ]);
    c.send(ApiKey::Fetch, 16, &req);
    let r: FetchResponse = c.recv(ApiKey::Fetch, 16);
    assert_eq!(r.responses[0].topic_id, id);
    let mut records = r.responses[0].partitions[0].records.clone().expect("records");
    let set = RecordBatchDecoder::decode(&mut records).unwrap();
    assert_eq!(set.records[0].value.as_deref(), Some(&b"by id"[..]));
}

/// Produce a batch to one partition with `acks` and return its error code.
fn produce_code(c: &mut Client, topic: &str, partition: i32, acks: i16, batch: Bytes) -> i16 {
    let req = ProduceRequest::default().with_acks(acks).with_timeout_ms(10_000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default().with_index(partition).with_records(Some(batch))]),
    ]);
    c.send(ApiKey::Produce, 9, &req);
    let r: ProduceResponse = c.recv(ApiKey::Produce, 9);
    r.responses[0].partition_responses[0].error_code
}

/// A fetch of partition 0 of `topic` from `offset`, answered at once, at most `max_bytes`.
fn fetch_one(topic: &str, offset: i64, max_bytes: i32) -> FetchRequest {
    FetchRequest::default().with_max_wait_ms(0).with_min_bytes(1).with_max_bytes(max_bytes).with_topics(vec![
        FetchTopic::default().with_topic(name(topic)).with_partitions(vec![FetchPartition::default()
            .with_partition(0)
            .with_fetch_offset(offset)
            .with_partition_max_bytes(max_bytes)]),
    ])
}

fn one_batch(value_bytes: usize) -> Bytes {
    let value = Bytes::from(vec![b'v'; value_bytes]);
    let mut batch = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    let records = [record(0, 1_700_000_000_000, Some(Bytes::from_static(b"k")), value)];
    RecordBatchEncoder::encode(&mut batch, records.iter(), &options).unwrap();
    batch.freeze()
}

/// Produce and fetch errors are Kafka's codes, per partition: INVALID_REQUIRED_ACKS,
/// INVALID_TOPIC_EXCEPTION, UNKNOWN_TOPIC_OR_PARTITION, CORRUPT_MESSAGE, MESSAGE_TOO_LARGE
/// and OFFSET_OUT_OF_RANGE; the connection stays usable after each.
#[test]
fn produce_and_fetch_errors_are_kafka_codes() {
    let node = Node::start(&["--cores", "0", "--set", "message.max.bytes=10000", "--set", "num.partitions=2"]);
    let mut c = Client::connect(node.bootstrap());
    let ok = one_batch(10);
    assert_eq!(produce_code(&mut c, "errs", 0, 1, ok.clone()), 0, "auto-created and appended");
    assert_eq!(produce_code(&mut c, "errs", 0, 2, ok.clone()), 21, "INVALID_REQUIRED_ACKS");
    assert_eq!(produce_code(&mut c, "bad topic!", 0, 1, ok.clone()), 17, "INVALID_TOPIC_EXCEPTION");
    assert_eq!(produce_code(&mut c, "errs", 7, 1, ok.clone()), 3, "UNKNOWN_TOPIC_OR_PARTITION");
    let mut corrupt = ok.to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(produce_code(&mut c, "errs", 0, 1, Bytes::from(corrupt)), 2, "CORRUPT_MESSAGE");
    assert_eq!(produce_code(&mut c, "errs", 0, -1, one_batch(20_000)), 10, "MESSAGE_TOO_LARGE");
    assert_eq!(produce_code(&mut c, "errs", 0, -1, ok), 0, "still usable, offsets continue");
    c.send(ApiKey::Fetch, 11, &fetch_one("errs", 999, 1 << 20));
    let r: FetchResponse = c.recv(ApiKey::Fetch, 11);
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 1, "OFFSET_OUT_OF_RANGE");
    assert_eq!(p.high_watermark, 2, "the high watermark tells the client where the log ends");
}

/// fetch.min.bytes: a long poll is not answered on the first small append but once enough
/// bytes have arrived (before fetch.max.wait.ms), whichever shard the appends land on.
#[test]
fn a_long_poll_waits_for_min_bytes() {
    let node = Node::start(&["--cores", "0-1", "--set", "num.partitions=2"]);
    let mut c = Client::connect(node.bootstrap());
    assert_eq!(produce_code(&mut c, "minb", 0, 1, one_batch(10)), 0, "topic created");
    let addr = node.bootstrap().to_string();
    let producer = std::thread::spawn(move || {
        let mut p = Client::connect(&addr);
        for i in 0..10 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            assert_eq!(produce_code(&mut p, "minb", i % 2, 1, one_batch(1000)), 0);
        }
    });
    let parts = (0..2)
        .map(|p| {
            FetchPartition::default()
                .with_partition(p)
                .with_fetch_offset(i64::from(p == 0))
                .with_partition_max_bytes(1 << 20)
        })
        .collect();
    let req = FetchRequest::default()
        .with_max_wait_ms(5000)
        .with_min_bytes(5000)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default().with_topic(name("minb")).with_partitions(parts)]);
    let started = std::time::Instant::now();
    c.send(ApiKey::Fetch, 11, &req);
    let r: FetchResponse = c.recv(ApiKey::Fetch, 11);
    let waited = started.elapsed();
    let bytes: usize = r.responses[0].partitions.iter().filter_map(|p| p.records.as_ref()).map(|b| b.len()).sum();
    producer.join().unwrap();
    assert!(bytes >= 5000, "answered with {bytes} bytes, fewer than min_bytes");
    assert!(
        waited >= std::time::Duration::from_millis(400),
        "answered after {waited:?}: before 5 appends could arrive"
    );
    assert!(waited < std::time::Duration::from_millis(4500), "answered after {waited:?}: waited for the timeout");
}

/// sendfile (the default fetch path) on a reader that is slower than the node: the socket
/// fills (EAGAIN), the node waits for it to drain and goes on, and every byte of an 8 MiB
/// fetch arrives intact and in order.
#[test]
fn a_slow_reader_gets_a_large_sendfile_fetch_whole() {
    let node = Node::start(&["--cores", "0", "--set", "fetch.send.method=sendfile"]);
    let mut c = Client::connect(node.bootstrap());
    let values: Vec<Bytes> = (0..8u8).map(|i| Bytes::from(vec![b'a' + i; 1_000_000])).collect();
    for v in &values {
        let mut batch = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: Compression::None };
        let records = [record(0, 1_700_000_000_000, Some(Bytes::from_static(b"k")), v.clone())];
        RecordBatchEncoder::encode(&mut batch, records.iter(), &options).unwrap();
        assert_eq!(produce_code(&mut c, "slow", 0, 1, batch.freeze()), 0);
    }
    // A small receive buffer, and nothing read for a while: the node's sends must block.
    let small: libc::c_int = 16 * 1024;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&c.stream);
    // SAFETY: setsockopt on our own connected socket with a c_int option value.
    let rc = unsafe {
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &small as *const _ as *const libc::c_void, 4)
    };
    assert_eq!(rc, 0);
    c.send(ApiKey::Fetch, 11, &fetch_one("slow", 0, 16 << 20));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let r: FetchResponse = c.recv(ApiKey::Fetch, 11);
    let mut records = r.responses[0].partitions[0].records.clone().expect("records");
    let mut got = Vec::new();
    while !records.is_empty() {
        got.extend(RecordBatchDecoder::decode(&mut records).unwrap().records.into_iter().map(|r| r.value.unwrap()));
    }
    assert_eq!(got, values, "every value back, byte for byte, in order");
    let (_, metrics) = support::http_get(node.admin().unwrap(), "/metrics");
    let copied: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("sluice_fetch_copied_bytes_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(copied > 0, "the full socket was waited on through the copying path: {metrics}");
}
