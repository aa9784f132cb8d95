//! Connection limits (issue #14, Build/Show 4), with Kafka's names and behaviour, on a real
//! two-shard node: `max.connections.per.ip` (a flood from one address holds exactly its limit
//! while a client on another address is served), its dynamic change through a real admin
//! client, `max.connections` (the node stops accepting at the limit and resumes when a
//! connection closes) and `connections.max.idle.ms` (an idle connection, a silent one and one
//! holding half a frame are closed; a busy one is not).
//!
//! Descriptors (Build/Show 2): under `ulimit -n 256` the node starts, warns, holds no more
//! connections than its limit leaves room for (the rest wait in the listen backlog) and
//! serves an established client meanwhile; a topic it has no descriptors for is refused; a
//! creation that fails part-way leaves no trace on any shard.
//!
//! The flood test needs about 3,400 descriptors in this process: it raises its own soft
//! `RLIMIT_NOFILE` (the node, its child, inherits it) and fails with a message when the hard
//! limit does not allow it. Needs `bash scripts/test-deps.sh` (kcat and the `.venv`).

mod support;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreatePartitionsRequest, CreatePartitionsResponse,
    CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use serde_json::json;
use socket2::{Domain, Socket, Type};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};
use support::json::Json;
use support::wire::Client;
use support::{check, http_get, kcat, py_json, run, wait_for, Node};

/// Raises this process's soft descriptor limit to at least `want` (children inherit it).
fn raise_nofile(want: u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write only the struct we pass.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur >= want {
            return;
        }
        assert!(
            lim.rlim_max >= want,
            "this test needs {want} descriptors and the hard RLIMIT_NOFILE is {}: raise it (`ulimit -Hn {want}` as root, \
             or `--ulimit nofile={want}:{want}` for a container)",
            lim.rlim_max
        );
        lim.rlim_cur = want;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0, "{}", std::io::Error::last_os_error());
    }
}

/// A connection to `addr` from the local address `from` (any port).
fn connect_from(from: &str, addr: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap_or_else(|e| panic!("bind {local}: {e}"));
    socket.connect_timeout(&addr.into(), Duration::from_secs(10)).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    socket.into()
}

/// Whether the node has closed `s` (end of file or reset), without waiting.
fn closed_by_node(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let closed = match (&mut &*s).read(&mut byte) {
        Ok(0) => true,
        Ok(_) => panic!("the node sent bytes nobody asked for"),
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
        Err(e) => panic!("reading a held connection: {e}"),
    };
    s.set_nonblocking(false).unwrap();
    closed
}

/// The sum over shards of one of the node's counters (`/metrics`).
fn metric(node: &Node, name: &str) -> u64 {
    let (code, body) = http_get(node.admin().expect("admin listener"), "/metrics");
    assert_eq!(code, 200, "{body}");
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok()).expect("a counter value"))
        .sum()
}

/// ApiVersions v0 round trip on a fresh wire client: the node is serving this address.
fn api_versions(client: &mut Client) {
    client.send(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
    let r: ApiVersionsResponse = client.recv(ApiKey::ApiVersions, 0);
    assert_eq!(r.error_code, 0);
}

/// A raw ApiVersions v0 request frame (correlation id 7).
fn api_versions_frame() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&18i16.to_be_bytes());
    f.extend_from_slice(&0i16.to_be_bytes());
    f.extend_from_slice(&7i32.to_be_bytes());
    f.extend_from_slice(&(-1i16).to_be_bytes());
    let mut out = (f.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&f);
    out
}

/// Reads one response frame within `wait`; `None` when none came in time.
fn answer_within(s: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut len = [0u8; 4];
    match s.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return None,
        Err(e) => panic!("reading an answer: {e}"),
    }
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("the rest of the answer");
    Some(body)
}

const FLOOD: usize = 3000;
const PER_IP: usize = 100;

/// 3000 connections from 127.0.0.2 against `max.connections.per.ip=100`: exactly 100 are held
/// (counted by the node, and seen open by the client), the other 2900 are accepted and closed
/// at once; meanwhile a client on 127.0.0.1 gets Metadata and produces with kcat promptly.
/// Then the limit is raised at run time (IncrementalAlterConfigs from confluent-kafka) and
/// the address may hold 20 more, not 21.
#[test]
fn a_flood_from_one_address_holds_its_limit_and_other_clients_are_served() {
    raise_nofile(FLOOD as u64 + 400);
    let node = Node::start(&["--cores", "0-1", "--set", &format!("max.connections.per.ip={PER_IP}")]);
    let addr: SocketAddr = node.bootstrap().parse().unwrap();
    let flood = std::thread::spawn(move || (0..FLOOD).map(|_| connect_from("127.0.0.2", addr)).collect::<Vec<_>>());

    // The honest client, while the flood runs.
    let started = Instant::now();
    let mut honest = Client::connect(node.bootstrap());
    api_versions(&mut honest);
    honest.send(ApiKey::Metadata, 4, &MetadataRequest::default().with_allow_auto_topic_creation(false));
    let meta: MetadataResponse = honest.recv(ApiKey::Metadata, 4);
    assert_eq!(meta.brokers.len(), 1, "Metadata answered");
    let mut produce = Command::new(kcat());
    produce.args(["-b", node.bootstrap(), "-P", "-t", "honest", "-X", "acks=all"]);
    let out = run(produce, Some(b"a\nb\nc\n".to_vec()), Duration::from_secs(30));
    check(&out, "kcat produce from 127.0.0.1", &node);
    let honest_took = started.elapsed();
    drop(honest);

    let mut held = flood.join().unwrap();
    let diag = || node.logs(20);
    wait_for("the node to hold exactly the limit", Duration::from_secs(20), diag, || {
        metric(&node, "sluice_connections_open") == PER_IP as u64
    });
    let still_open = |held: &mut Vec<TcpStream>| held.iter_mut().filter(|s| !closed_by_node(s)).count();
    wait_for("the client to see all refused connections closed", Duration::from_secs(20), diag, || {
        still_open(&mut held) == PER_IP
    });
    assert_eq!(metric(&node, "sluice_connections_refused_per_ip_total"), (FLOOD - PER_IP) as u64);
    eprintln!("limits figure: honest client served in {honest_took:?} during a flood of {FLOOD} connections");
    assert!(honest_took < Duration::from_secs(20), "the honest client waited {honest_took:?}");

    // The per-IP limit is a dynamic broker config (Kafka's too): raise it by 20.
    let ops = json!([
        {"op": "incremental", "type": "broker", "name": "0",
         "ops": [["max.connections.per.ip", "SET", (PER_IP + 20).to_string()]]},
        {"op": "describe", "type": "broker", "name": "0"}
    ]);
    let out =
        py_json(&node, "cfg_admin.py", &["--bootstrap", node.bootstrap(), "--client", "ck", "--ops", &ops.to_string()]);
    let results = out["results"].arr();
    assert!(results[0]["error"].is_null(), "{out}");
    let described = &results[1]["configs"];
    assert_eq!(described["max.connections.per.ip"]["value"].str(), (PER_IP + 20).to_string());
    assert_eq!(described["max.connections"]["value"].str(), "2147483647", "Kafka's default");
    assert_eq!(described["connections.max.idle.ms"]["value"].str(), "600000", "Kafka's default");
    assert_eq!(described["max.connections.per.ip.overrides"]["value"].str(), "");
    let mut more: Vec<TcpStream> = (0..21).map(|_| connect_from("127.0.0.2", addr)).collect();
    wait_for("20 more held and the 21st closed", Duration::from_secs(20), diag, || {
        metric(&node, "sluice_connections_open") == PER_IP as u64 + 20 && still_open(&mut more) == 20
    });
    assert_eq!(still_open(&mut held), PER_IP, "lowering nothing closed nothing");
}

/// `max.connections=4` on two shards: four connections are served; a fifth is left waiting
/// (no answer) while the node holds four, and is answered once one of them closes.
#[test]
fn at_max_connections_the_node_stops_accepting_until_one_closes() {
    let node = Node::start(&["--cores", "0-1", "--set", "max.connections=4"]);
    let mut four: Vec<Client> = (0..4).map(|_| Client::connect(node.bootstrap())).collect();
    for c in &mut four {
        api_versions(c);
    }
    let mut fifth = TcpStream::connect(node.bootstrap()).expect("the kernel completes the handshake");
    fifth.write_all(&api_versions_frame()).unwrap();
    assert_eq!(answer_within(&mut fifth, Duration::from_millis(1500)), None, "a fifth connection was served");
    assert_eq!(metric(&node, "sluice_connections_open"), 4);
    assert!(metric(&node, "sluice_accept_blocked_total") >= 1, "the acceptor reports that it waits");
    let freed = Instant::now();
    drop(four.pop());
    let answer = answer_within(&mut fifth, Duration::from_secs(10)).expect("served once a slot freed");
    assert_eq!(i32::from_be_bytes(answer[0..4].try_into().unwrap()), 7, "correlation id");
    eprintln!("limits figure: the waiting connection was served {:?} after a slot freed", freed.elapsed());
    for c in &mut four {
        api_versions(c); // the others were never disturbed
    }
}

/// `connections.max.idle.ms=1000`: a connection that was answered and went quiet, one that
/// never sent a byte and one that sent half a frame are closed after about a second (not
/// before); one that sends a request every 300 ms stays open.
#[test]
fn idle_connections_and_half_frames_are_closed_after_connections_max_idle_ms() {
    const IDLE: Duration = Duration::from_millis(1000);
    let node = Node::start(&["--cores", "0", "--set", "connections.max.idle.ms=1000"]);
    let started = Instant::now();
    let mut answered = TcpStream::connect(node.bootstrap()).unwrap();
    answered.write_all(&api_versions_frame()).unwrap();
    answer_within(&mut answered, Duration::from_secs(5)).expect("answered");
    let quiet_since = Instant::now();
    let silent = TcpStream::connect(node.bootstrap()).unwrap();
    let mut half = TcpStream::connect(node.bootstrap()).unwrap();
    half.write_all(&api_versions_frame()[..6]).unwrap();
    let mut busy = Client::connect(node.bootstrap());
    let ends: Vec<_> = [("answered", answered), ("silent", silent), ("half a frame", half)]
        .into_iter()
        .map(|(what, mut s)| {
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut byte = [0u8; 1];
                let end = s.read(&mut byte);
                (what, end.map_err(|e| e.kind()), Instant::now())
            })
        })
        .collect();
    while started.elapsed() < 3 * IDLE {
        api_versions(&mut busy);
        std::thread::sleep(Duration::from_millis(300));
    }
    for end in ends {
        let (what, result, at) = end.join().unwrap();
        let closed = matches!(result, Ok(0) | Err(ErrorKind::ConnectionReset));
        assert!(closed, "{what}: {result:?} instead of a close");
        let after = at.duration_since(quiet_since);
        assert!(after >= IDLE - Duration::from_millis(100), "{what} closed after only {after:?}");
        assert!(after < IDLE + Duration::from_secs(5), "{what} closed only after {after:?}");
    }
    api_versions(&mut busy);
    assert_eq!(metric(&node, "sluice_connections_closed_idle_total"), 3);
    assert_eq!(metric(&node, "sluice_bad_frames_total"), 0, "an idle close is not a bad frame");
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// CreateTopics v7 of one topic: its error code and message.
fn create_topic_wire(client: &mut Client, topic: &str, partitions: i32) -> (i16, String) {
    let create = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![CreatableTopic::default()
        .with_name(name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(1)]);
    client.send(ApiKey::CreateTopics, 7, &create);
    let r: CreateTopicsResponse = client.recv(ApiKey::CreateTopics, 7);
    let t = &r.topics[0];
    (t.error_code, t.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default())
}

/// CreatePartitions v3 growing `topic` to `count`: the error code and message.
fn grow_topic_wire(client: &mut Client, topic: &str, count: i32) -> (i16, String) {
    let req = CreatePartitionsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatePartitionsTopic::default().with_name(name(topic)).with_count(count)]);
    client.send(ApiKey::CreatePartitions, 3, &req);
    let r: CreatePartitionsResponse = client.recv(ApiKey::CreatePartitions, 3);
    let t = &r.results[0];
    (t.error_code, t.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default())
}

/// How many partitions a connection's Metadata (v4) gives `topic` (0: not listed).
fn partitions_listed(client: &mut Client, topic: &str) -> usize {
    client.send(
        ApiKey::Metadata,
        4,
        &MetadataRequest::default().with_topics(None).with_allow_auto_topic_creation(false),
    );
    let meta: MetadataResponse = client.recv(ApiKey::Metadata, 4);
    meta.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic)).map_or(0, |t| t.partitions.len())
}

/// The topics a connection's Metadata (v4, no auto-creation) lists.
fn listed_topics(client: &mut Client) -> Vec<String> {
    client.send(
        ApiKey::Metadata,
        4,
        &MetadataRequest::default().with_topics(None).with_allow_auto_topic_creation(false),
    );
    let meta: MetadataResponse = client.recv(ApiKey::Metadata, 4);
    meta.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.to_string())).collect()
}

/// Produces `count` small records to `topic`/`partition` with acks=all (Produce v9): the
/// error code and the base offset.
fn produce_wire(client: &mut Client, topic: &str, partition: i32, count: usize) -> (i16, i64) {
    produce_sized(client, topic, partition, count, 0)
}

/// `produce_wire` with values of `value_bytes` (0: "record-i").
fn produce_sized(client: &mut Client, topic: &str, partition: i32, count: usize, value_bytes: usize) -> (i16, i64) {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: 1_700_000_000_000,
            delete_horizon: false,
            key: None,
            value: Some(if value_bytes == 0 {
                Bytes::from(format!("record-{i}"))
            } else {
                Bytes::from(vec![b'v'; value_bytes])
            }),
            headers: Default::default(),
        })
        .collect();
    let mut batch = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut batch, records.iter(), &options).unwrap();
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        TopicProduceData::default().with_name(name(topic)).with_partition_data(vec![PartitionProduceData::default()
            .with_index(partition)
            .with_records(Some(batch.freeze()))]),
    ]);
    client.send(ApiKey::Produce, 9, &req);
    let r: ProduceResponse = client.recv(ApiKey::Produce, 9);
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Fetch v12 from offset 0: the error code and how many record bytes came.
fn fetch_wire(client: &mut Client, topic: &str, partition: i32) -> (i16, usize) {
    let req = FetchRequest::default().with_max_wait_ms(0).with_min_bytes(1).with_max_bytes(1 << 20).with_topics(vec![
        FetchTopic::default().with_topic(name(topic)).with_partitions(vec![FetchPartition::default()
            .with_partition(partition)
            .with_fetch_offset(0)
            .with_partition_max_bytes(1 << 20)]),
    ]);
    client.send(ApiKey::Fetch, 12, &req);
    let r: FetchResponse = client.recv(ApiKey::Fetch, 12);
    let p = &r.responses[0].partitions[0];
    (p.error_code, p.records.as_ref().map_or(0, |b| b.len()))
}

/// Connections from `from`, as many as it takes (at most 64) for every shard to hold one of
/// them: a question asked on each of them is asked of every shard.
fn one_on_each_shard(node: &Node) -> Vec<Client> {
    let mut clients = Vec::new();
    while clients.len() < 64 {
        let mut c = Client::connect(node.bootstrap());
        api_versions(&mut c);
        clients.push(c);
        let (_, body) = http_get(node.admin().expect("admin listener"), "/metrics");
        let busy_shards = body
            .lines()
            .filter(|l| l.starts_with("sluice_connections_open{"))
            .filter(|l| l.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) > 0)
            .count();
        if busy_shards == node.shards() {
            return clients;
        }
    }
    panic!("64 connections and a shard still holds none: {}", node.logs(20));
}

/// `ulimit -n 256` (Show 2): the node starts (one descriptor per segment; the index files are
/// opened only to be written) and says the limit is low; 400 connections from 127.0.0.2 are
/// held by the kernel while the node holds only what its limit leaves room for, keeping a
/// reserve, so an established client on 127.0.0.1 still creates a topic, produces with
/// acks=all and fetches; the acceptor does not flood the log; a topic of 200 partitions it has
/// no descriptors for is refused and leaves nothing behind; once the flood goes, new clients
/// are served.
#[test]
fn under_ulimit_n_256_an_established_client_is_served_while_400_connections_are_held() {
    const FLOOD_LOW: usize = 400;
    let node = Node::start_with_nofile(&["--cores", "0-1"], Some(256));
    wait_for(
        "the warning about the low limit",
        Duration::from_secs(5),
        || node.logs(40),
        || node.logs(40).contains("the descriptor limit is low"),
    );
    let mut honest = Client::connect(node.bootstrap());
    api_versions(&mut honest);
    assert_eq!(create_topic_wire(&mut honest, "served", 2).0, 0);

    let addr: SocketAddr = node.bootstrap().parse().unwrap();
    let flood = std::thread::spawn(move || (0..FLOOD_LOW).map(|_| connect_from("127.0.0.2", addr)).collect::<Vec<_>>());
    let held = flood.join().unwrap();
    let diag = || node.logs(20);
    wait_for("the acceptor to stop at the descriptor limit", Duration::from_secs(20), diag, || {
        metric(&node, "sluice_accept_blocked_total") >= 1
    });
    let open = metric(&node, "sluice_connections_open");
    assert!(open < FLOOD_LOW as u64, "the node holds {open} connections under a limit of 256 descriptors");
    assert!(open >= 32, "the node holds only {open} connections: its files take too many descriptors");

    let started = Instant::now();
    for p in 0..2 {
        assert_eq!(produce_wire(&mut honest, "served", p, 100), (0, 0), "acks=all produce to served-{p}");
        let (error, bytes) = fetch_wire(&mut honest, "served", p);
        assert_eq!(error, 0, "fetch of served-{p}");
        assert!(bytes > 100 * 8, "fetch of served-{p} returned {bytes} bytes");
    }
    let (error, message) = create_topic_wire(&mut honest, "too-big", 200);
    assert_eq!(error, 56, "KAFKA_STORAGE_ERROR for a topic without descriptors: {message}");
    assert!(message.contains("RLIMIT_NOFILE"), "the message names the limit: {message}");
    eprintln!("limits figure: under nofile 256 with {FLOOD_LOW} connections offered the node held {open}; the established client was served in {:?}", started.elapsed());
    let accept_lines = node.logs(400).matches("accept failed").count();
    assert!(accept_lines <= 8, "{accept_lines} 'accept failed' lines: the log is flooded");

    drop(held);
    wait_for("the flood's connections to be gone", Duration::from_secs(20), diag, || {
        metric(&node, "sluice_connections_open") <= 1
    });
    for mut c in one_on_each_shard(&node) {
        let topics = listed_topics(&mut c);
        assert!(topics.contains(&"served".to_string()), "{topics:?}");
        assert!(!topics.contains(&"too-big".to_string()), "a shard knows the refused topic: {topics:?}");
    }
    let traces: Vec<_> = std::fs::read_dir(node.data_dir())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("too-big"))
        .collect();
    assert!(traces.is_empty(), "the refused topic left {traces:?}");
}

/// A creation that fails part-way — one partition's directory cannot be made (a file of its
/// name is in the way), so one shard fails while the others have opened theirs — is undone
/// on every shard: no shard's Metadata lists the topic, before or after a restart, no
/// directory of it is left (the file that was in the way is), and once the obstacle is gone
/// the same creation succeeds whole. The same for CreatePartitions: a growth that fails
/// part-way leaves the topic as it was on every shard.
#[test]
fn a_topic_creation_that_fails_part_way_leaves_no_trace_on_any_shard() {
    let mut node = Node::start(&["--cores", "0-1", "--set", "auto.create.topics.enable=false"]);
    let obstacle = node.data_dir().join("half-5");
    std::fs::write(&obstacle, b"not a partition").unwrap();
    let mut c = Client::connect(node.bootstrap());
    let (error, message) = create_topic_wire(&mut c, "half", 8);
    assert_eq!(error, 56, "KAFKA_STORAGE_ERROR: {message}");
    let data_dir = node.data_dir().to_path_buf();
    let traces = || -> Vec<String> {
        std::fs::read_dir(&data_dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("half-") && e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert!(traces().is_empty(), "left behind: {:?}", traces());
    assert!(obstacle.is_file(), "the file in the way is not ours to delete");
    for mut c in one_on_each_shard(&node) {
        assert!(!listed_topics(&mut c).contains(&"half".to_string()), "a shard still knows the topic");
        assert_eq!(produce_wire(&mut c, "half", 0, 1).0, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    }
    drop(c);
    node.restart();
    let mut c = Client::connect(node.bootstrap());
    assert_eq!(create_topic_wire(&mut c, "other", 1).0, 0);
    let topics = listed_topics(&mut c);
    assert!(topics.contains(&"other".to_string()), "Metadata lists topics: {topics:?}");
    assert!(!topics.contains(&"half".to_string()), "the topic came back after a restart: {topics:?}");

    std::fs::remove_file(&obstacle).unwrap();
    assert_eq!(create_topic_wire(&mut c, "half", 8).0, 0);
    for p in 0..8 {
        assert_eq!(produce_wire(&mut c, "half", p, 3), (0, 0), "half-{p} takes writes");
    }
    assert_eq!(traces().len(), 8);

    // Growth is undone the same way: partitions 8..12 with a file where half-10 would go.
    let obstacle = data_dir.join("half-10");
    std::fs::write(&obstacle, b"not a partition").unwrap();
    let (error, message) = grow_topic_wire(&mut c, "half", 12);
    assert_eq!(error, 56, "KAFKA_STORAGE_ERROR: {message}");
    assert_eq!(traces().len(), 8, "the new partitions' directories went: {:?}", traces());
    for mut c in one_on_each_shard(&node) {
        assert_eq!(partitions_listed(&mut c, "half"), 8, "a shard kept the failed growth");
    }
    assert_eq!(produce_wire(&mut c, "half", 7, 1), (0, 3), "the old partitions still take writes");
    std::fs::remove_file(&obstacle).unwrap();
    assert_eq!(grow_topic_wire(&mut c, "half", 12).0, 0);
    assert_eq!(produce_wire(&mut c, "half", 11, 1), (0, 0), "a new partition takes writes");
    assert_eq!(traces().len(), 12);
}

/// `connections.max.idle.ms=1000` and a client that pipelines large fetches and never reads
/// their answers: the node's write stalls, and after about a second without progress the
/// connection is closed (counted as idle) — it does not keep its answers, and the segments
/// they name, for ever. A client that reads is not closed meanwhile.
#[test]
fn a_connection_whose_peer_stopped_reading_is_closed_after_connections_max_idle_ms() {
    let node = Node::start(&["--cores", "0-1", "--set", "connections.max.idle.ms=1000"]);
    let mut c = Client::connect(node.bootstrap());
    assert_eq!(create_topic_wire(&mut c, "stuck", 1).0, 0);
    for _ in 0..8 {
        assert_eq!(produce_sized(&mut c, "stuck", 0, 64, 16 * 1024).0, 0);
    }
    let mut stuck = Client::connect(node.bootstrap());
    for _ in 0..24 {
        let req =
            FetchRequest::default().with_max_wait_ms(0).with_min_bytes(1).with_max_bytes(16 << 20).with_topics(vec![
                FetchTopic::default().with_topic(name("stuck")).with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(16 << 20)]),
            ]);
        stuck.send(ApiKey::Fetch, 12, &req);
    }
    // The reading client keeps talking all along (it is never idle); the stuck one is closed.
    let started = Instant::now();
    let closed_after = loop {
        api_versions(&mut c);
        if metric(&node, "sluice_connections_closed_idle_total") == 1 {
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the stuck connection is still open: {}", node.logs(20));
        std::thread::sleep(Duration::from_millis(200));
    };
    api_versions(&mut c);
    assert_eq!(metric(&node, "sluice_connections_open"), 1, "only the reading client is left");
    assert!(closed_after >= Duration::from_millis(900), "closed after only {closed_after:?}");
    assert_eq!(metric(&node, "sluice_bad_frames_total"), 0, "an idle close is not a bad frame");
    drop(stuck);
}
