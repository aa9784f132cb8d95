//! A cluster of three `sluice` nodes for the end-to-end tests (issue #15): each a child
//! process on its own loopback address (127.0.0.1, 127.0.0.2, 127.0.0.3), started with
//! Kafka's settings (`node.id`, `controller.quorum.voters`) on ports picked free (see
//! [`free_port`]), so that tests running at the same time, or a cluster from
//! `scripts/cluster.sh`, do not collide.
//!
//! `cluster()` returns once the quorum has settled (one leader, every node on the same
//! committed log) and every node sees every broker's registration; `bootstrap(&nodes)` is
//! the bootstrap list of all three for a client.

use super::wire::Client;
use super::{http_get, Node};
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
use serde_json::Value;
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// How long the quorum may take to settle after a start or a death before a test gives up
/// (a liveness bound, not a speed claim: elections take 1-2 s timeouts).
pub const SETTLE: Duration = Duration::from_secs(20);

/// A TCP port on `ip` that was free a moment ago, below the kernel's ephemeral range
/// (`ip_local_port_range`) where there is room: a node keeps such a port across restarts
/// (its quorum address), and in the ephemeral range the source port of any outgoing
/// connection on that address (the nodes bind theirs to their own address) could take it
/// while the node is down — a restart once failed so, "address already in use".
pub fn free_port(ip: &str) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    if low > 12_000 {
        let (base, span) = (10_000, low - 10_000);
        let seed = std::process::id().wrapping_mul(2_654_435_761);
        for _ in 0..1000 {
            let port = base + seed.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed).wrapping_mul(7919)) % span;
            if TcpListener::bind((ip, port as u16)).is_ok() {
                return port as u16;
            }
        }
    }
    TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}:0: {e}")).local_addr().unwrap().port()
}

/// `controller.quorum.voters` of three nodes, node N on 127.0.0.N and a free port.
pub fn voters() -> String {
    (1..=3).map(|i| format!("{i}@127.0.0.{i}:{}", free_port(&format!("127.0.0.{i}")))).collect::<Vec<_>>().join(",")
}

/// Node `i` (1-3) of the cluster of `voters`, its Kafka and admin listeners on any port of
/// 127.0.0.`i`.
pub fn start_node(i: usize, voters: &str) -> Node {
    start_node_at(i, voters, 0)
}

/// Node `i` with its Kafka listener on `port` (0: any; a restart then moves it).
pub fn start_node_at(i: usize, voters: &str, port: u16) -> Node {
    start_node_with(i, voters, port, &[])
}

/// Node `i` on `port`, with `extra` arguments (settings: `--set`, `name=value`).
pub fn start_node_with(i: usize, voters: &str, port: u16, extra: &[&str]) -> Node {
    let (listen, admin) = (format!("127.0.0.{i}:{port}"), format!("127.0.0.{i}:0"));
    let (id, voters) = (format!("node.id={i}"), format!("controller.quorum.voters={voters}"));
    let mut args = vec![
        "--cores",
        "0",
        "--listen",
        &listen,
        "--admin",
        &admin,
        "--set",
        &id,
        "--set",
        &voters,
        // Short, so that fencing shows within a test; Kafka's are 2000 and 9000.
        "--set",
        "broker.heartbeat.interval.ms=200",
        "--set",
        "broker.session.timeout.ms=2000",
    ];
    args.extend_from_slice(extra);
    Node::start(&args)
}

/// Three nodes on 127.0.0.1-3 with a settled quorum and every broker registered.
pub fn cluster() -> Vec<Node> {
    let voters = voters();
    let nodes: Vec<Node> = (1..=3).map(|i| start_node(i, &voters)).collect();
    settled(&all(&nodes));
    registered(&all(&nodes), &listeners(&all(&nodes)));
    nodes
}

/// The bootstrap list of a client: every node's Kafka listener, comma-separated.
pub fn bootstrap(nodes: &[Node]) -> String {
    nodes.iter().map(|n| n.bootstrap()).collect::<Vec<_>>().join(",")
}

/// Every node with its node id (1-based, as started).
pub fn all(nodes: &[Node]) -> Vec<(usize, &Node)> {
    nodes.iter().enumerate().map(|(i, n)| (i + 1, n)).collect()
}

/// `/v1/cluster/quorum` of `node`: its view of the quorum.
pub fn quorum(node: &Node) -> Value {
    let (code, body) = http_get(node.admin().expect("an admin listener"), "/v1/cluster/quorum");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// (node id, host, port, broker epoch) of every registered broker, as `node` sees them.
pub fn brokers(node: &Node) -> Vec<(i64, String, i64, i64)> {
    let (code, body) = http_get(node.admin().expect("an admin listener"), "/v1/brokers");
    assert_eq!(code, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let list = doc.as_array().unwrap_or_else(|| panic!("not a list: {body}"));
    list.iter()
        .map(|b| {
            let host = b["host"].as_str().unwrap_or_default().to_string();
            (b["node_id"].as_i64().unwrap(), host, b["port"].as_i64().unwrap(), b["broker_epoch"].as_i64().unwrap())
        })
        .collect()
}

/// The Kafka listener each running node advertises: (node id, host, port).
pub fn listeners(nodes: &[(usize, &Node)]) -> Vec<(i64, String, i64)> {
    nodes
        .iter()
        .map(|(i, n)| {
            let (host, port) = n.bootstrap().rsplit_once(':').unwrap();
            (*i as i64, host.to_string(), port.parse().unwrap())
        })
        .collect()
}

/// Waits until every node in `nodes` names the same leader in the same epoch and holds the
/// same committed log; returns (leader id, epoch).
pub fn settled(nodes: &[(usize, &Node)]) -> (i64, i64) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let views: Vec<Value> = nodes.iter().map(|(_, n)| quorum(n)).collect();
        let leader = views[0]["leader_id"].as_i64();
        let agree = views.iter().all(|v| {
            v["leader_id"].as_i64() == leader
                && v["leader_epoch"] == views[0]["leader_epoch"]
                && v["high_watermark"] == views[0]["high_watermark"]
        });
        let leader_listed = leader.is_some_and(|l| nodes.iter().any(|(i, _)| *i as i64 == l));
        if agree && leader_listed {
            let leading: Vec<_> = views.iter().filter(|v| v["state"] == "leader").collect();
            assert_eq!(leading.len(), 1, "one node calls itself leader: {views:?}");
            return (leader.unwrap(), views[0]["leader_epoch"].as_i64().unwrap());
        }
        assert!(Instant::now() < deadline, "the quorum did not settle within {SETTLE:?}: {views:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until every node lists exactly `expected` (id, host, port) as the registered brokers.
pub fn registered(nodes: &[(usize, &Node)], expected: &[(i64, String, i64)]) -> Vec<(i64, String, i64, i64)> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let seen: Vec<_> = nodes.iter().map(|(_, n)| brokers(n)).collect();
        let matches = |list: &Vec<(i64, String, i64, i64)>| {
            list.iter().map(|(i, h, p, _)| (*i, h.clone(), *p)).collect::<Vec<_>>() == expected
        };
        if seen.iter().all(matches) && seen.iter().all(|s| *s == seen[0]) {
            return seen[0].clone();
        }
        assert!(Instant::now() < deadline, "registrations did not reach every node: {seen:?}, expected {expected:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// CreateTopics v7 of one topic through `node`: (error code, error message).
pub fn create_topic(node: &Node, topic: &str, partitions: i32, replication_factor: i16) -> (i16, String) {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
    let mut c = Client::connect(node.bootstrap());
    let topic = CreatableTopic::default()
        .with_name(super::wire::name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(replication_factor);
    c.send(ApiKey::CreateTopics, 7, &CreateTopicsRequest::default().with_timeout_ms(15_000).with_topics(vec![topic]));
    let r: CreateTopicsResponse = c.recv(ApiKey::CreateTopics, 7);
    (r.topics[0].error_code, r.topics[0].error_message.as_ref().map(|m| m.to_string()).unwrap_or_default())
}

/// One partition as Metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionView {
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    /// Sorted.
    pub replicas: Vec<i32>,
    /// Sorted.
    pub isr: Vec<i32>,
}

/// Metadata v12 of `topic` as `node` answers it: (topic error code, partitions by index).
pub fn topic_partitions(node: &Node, topic: &str) -> (i16, Vec<PartitionView>) {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    let mut c = Client::connect(node.bootstrap());
    let wanted = MetadataRequestTopic::default().with_name(Some(super::wire::name(topic)));
    let request = MetadataRequest::default().with_topics(Some(vec![wanted])).with_allow_auto_topic_creation(false);
    c.send(ApiKey::Metadata, 12, &request);
    let m: MetadataResponse = c.recv(ApiKey::Metadata, 12);
    let t = &m.topics[0];
    let sorted = |ids: &[kafka_protocol::messages::BrokerId]| {
        let mut v: Vec<i32> = ids.iter().map(|b| b.0).collect();
        v.sort();
        v
    };
    let mut parts: Vec<PartitionView> = t
        .partitions
        .iter()
        .map(|p| PartitionView {
            partition: p.partition_index,
            leader: p.leader_id.0,
            leader_epoch: p.leader_epoch,
            replicas: sorted(&p.replica_nodes),
            isr: sorted(&p.isr_nodes),
        })
        .collect();
    parts.sort_by_key(|p| p.partition);
    (t.error_code, parts)
}

/// Waits until every node answers the same Metadata for `topic`: `partitions` partitions,
/// each with a leader, all `replicas` replicas in sync; returns that answer.
pub fn until_topic_ready(nodes: &[Node], topic: &str, partitions: usize, replicas: usize) -> Vec<PartitionView> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let seen: Vec<_> = nodes.iter().map(|n| topic_partitions(n, topic)).collect();
        let ready = |(error, parts): &(i16, Vec<PartitionView>)| {
            *error == 0
                && parts.len() == partitions
                && parts.iter().all(|p| p.leader > 0 && p.replicas.len() == replicas && p.isr == p.replicas)
        };
        // Metadata comes from the node's registry, which takes a topic before its shards have
        // opened the partitions (as Kafka's metadata cache does before its replica manager):
        // the leader must also answer for each partition.
        let led = |p: &PartitionView| nodes.iter().any(|n| latest_offset(n, topic, p.partition) == 0);
        if seen.iter().all(ready) && seen.iter().all(|s| *s == seen[0]) && seen[0].1.iter().all(led) {
            return seen[0].1.clone();
        }
        assert!(Instant::now() < deadline, "{topic} is not ready on every node within {SETTLE:?}: {seen:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The error code of ListOffsets v7 (latest) for `topic`'s partition through `node`: 0 from
/// its leader once the leader has it open, NOT_LEADER_OR_FOLLOWER elsewhere.
pub fn latest_offset(node: &Node, topic: &str, partition: i32) -> i16 {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
    let mut c = Client::connect(node.bootstrap());
    let part = ListOffsetsPartition::default().with_partition_index(partition).with_timestamp(-1);
    let t = ListOffsetsTopic::default().with_name(super::wire::name(topic)).with_partitions(vec![part]);
    c.send(ApiKey::ListOffsets, 7, &ListOffsetsRequest::default().with_replica_id((-1).into()).with_topics(vec![t]));
    let r: ListOffsetsResponse = c.recv(ApiKey::ListOffsets, 7);
    r.topics[0].partitions[0].error_code
}
