//! The cluster's metadata quorum (issue #15, Build 1 and the first part of Build 2), on three
//! node processes on 127.0.0.1, 127.0.0.2 and 127.0.0.3 started with Kafka's settings
//! (`node.id`, `controller.quorum.voters`): they elect one leader, every node learns every
//! broker's registration (its Kafka listener) through the replicated log, a SIGKILLed leader
//! is replaced by one of the two left with a higher epoch, and the killed node comes back as
//! a follower whose new registration (new port, higher broker epoch) every node sees.
//! Clients see the cluster through Metadata: every live broker, one cluster id, the quorum's
//! leader as the controller; a broker silent for `broker.session.timeout.ms` is fenced and
//! drops out of Metadata until it is back.

mod common;
mod support;

use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse};
use serde_json::Value;
use std::time::{Duration, Instant};
use support::cluster::*;
use support::wire::Client;
use support::{http_get, sluice_command, Node};

/// What a client learns from `node`'s Metadata (v12, every topic): the brokers (id, host,
/// port), the controller id and the cluster id.
fn metadata(node: &Node) -> (Vec<(i64, String, i64)>, i32, String) {
    let mut c = Client::connect(node.bootstrap());
    c.send(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(Some(vec![])));
    let m: MetadataResponse = c.recv(ApiKey::Metadata, 12);
    let mut brokers: Vec<_> =
        m.brokers.iter().map(|b| (b.node_id.0 as i64, b.host.to_string(), b.port as i64)).collect();
    brokers.sort();
    (brokers, m.controller_id.0, m.cluster_id.map(|c| c.to_string()).unwrap_or_default())
}

/// Waits until every node's Metadata lists exactly `expected` with `controller` as the
/// controller and one cluster id; returns that id.
fn clients_see(nodes: &[(usize, &Node)], expected: &[(i64, String, i64)], controller: i64) -> String {
    let deadline = Instant::now() + SETTLE;
    loop {
        let seen: Vec<_> = nodes.iter().map(|(_, n)| metadata(n)).collect();
        let ok = seen.iter().all(|(b, c, id)| b == expected && *c as i64 == controller && *id == seen[0].2);
        if ok {
            return seen[0].2.clone();
        }
        assert!(
            Instant::now() < deadline,
            "Metadata did not settle: {seen:?}, expected {expected:?}, controller {controller}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The fenced brokers per `/v1/brokers` of the first of `nodes` (the others agree: `registered`).
fn brokers_fenced(nodes: &[(usize, &Node)]) -> Vec<i64> {
    let (_, body) = http_get(nodes[0].1.admin().expect("an admin listener"), "/v1/brokers");
    let doc: Value = serde_json::from_str(&body).unwrap();
    doc.as_array().unwrap().iter().filter(|b| b["fenced"] == true).map(|b| b["node_id"].as_i64().unwrap()).collect()
}

#[test]
fn three_nodes_elect_a_leader_share_their_registrations_and_replace_a_killed_leader() {
    let voters = voters();
    let mut nodes: Vec<Node> = (1..=3).map(|i| start_node(i, &voters)).collect();

    let (leader, epoch) = settled(&all(&nodes));
    let first = registered(&all(&nodes), &listeners(&all(&nodes)));
    for (i, host, _, broker_epoch) in &first {
        assert_eq!(host, &format!("127.0.0.{i}"), "each node registers its own listener");
        assert!(*broker_epoch > 0, "a broker epoch is the registration's log index: {first:?}");
    }
    let cluster_id = clients_see(&all(&nodes), &listeners(&all(&nodes)), leader);
    assert!(!cluster_id.is_empty());

    // The leader dies without a word; the other two elect one of themselves, later in time.
    let dead = leader as usize;
    nodes[dead - 1].kill();
    let started = Instant::now();
    let rest: Vec<(usize, &Node)> = all(&nodes).into_iter().filter(|(i, _)| *i != dead).collect();
    let (new_leader, new_epoch) = settled(&rest);
    let failover = started.elapsed();
    assert_ne!(new_leader, leader, "a dead node cannot lead");
    assert!(new_epoch > epoch, "a new leader comes with a higher epoch: {epoch} then {new_epoch}");
    eprintln!(
        "leader {leader} (epoch {epoch}) killed: node {new_leader} leads in epoch {new_epoch} after {failover:?}"
    );
    // Silent past the session timeout: fenced, so clients are no longer sent to it.
    assert_eq!(clients_see(&rest, &listeners(&rest), new_leader), cluster_id, "one cluster id throughout");
    assert_eq!(brokers_fenced(&rest), vec![dead as i64], "the dead node is fenced, no other");

    // It comes back (on a new Kafka port) as a follower and registers again.
    nodes[dead - 1].restart();
    let (after, _) = settled(&all(&nodes));
    assert_eq!(after, new_leader, "a returning node follows the leader it finds");
    let second = registered(&all(&nodes), &listeners(&all(&nodes)));
    let old = first.iter().find(|b| b.0 == dead as i64).unwrap();
    let new = second.iter().find(|b| b.0 == dead as i64).unwrap();
    assert!(new.3 > old.3, "the new registration has a higher broker epoch: {old:?} then {new:?}");
    assert_eq!(clients_see(&all(&nodes), &listeners(&all(&nodes)), new_leader), cluster_id);
    assert!(brokers_fenced(&all(&nodes)).is_empty(), "back and heartbeating: unfenced");
    for n in &mut nodes {
        n.stop();
    }
}

#[test]
fn a_node_whose_id_is_not_among_the_voters_refuses_to_start_and_says_why() {
    let data = sluice::testing::TempDir::new("not-a-voter");
    let voters = format!("1@127.0.0.1:{},2@127.0.0.2:{}", free_port("127.0.0.1"), free_port("127.0.0.2"));
    let out = sluice_command()
        .args(["--listen", "127.0.0.1:0", "--admin", "off", "--cores", "0", "--data-dir"])
        .arg(data.path())
        .args(["--set", "node.id=7", "--set", &format!("controller.quorum.voters={voters}")])
        .output()
        .expect("running sluice");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started anyway: {stderr}");
    assert!(stderr.contains("node.id 7 is not among controller.quorum.voters"), "{stderr}");
}

/// Metadata of one topic as `node` answers it: (error, topic id, leader of each partition).
fn topic_metadata(node: &Node, topic: &str) -> (i16, u128, Vec<i32>) {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    let mut c = Client::connect(node.bootstrap());
    let wanted = MetadataRequestTopic::default().with_name(Some(support::wire::name(topic)));
    let request = MetadataRequest::default().with_topics(Some(vec![wanted])).with_allow_auto_topic_creation(false);
    c.send(ApiKey::Metadata, 12, &request);
    let m: MetadataResponse = c.recv(ApiKey::Metadata, 12);
    let t = &m.topics[0];
    let mut parts: Vec<_> = t.partitions.iter().map(|p| (p.partition_index, p.leader_id.0)).collect();
    parts.sort();
    (t.error_code, t.topic_id.as_u128(), parts.into_iter().map(|(_, l)| l).collect())
}

/// Waits until `node` answers `expected` for `topic` (it learns of a change as the record
/// reaches it).
fn until_metadata(node: &Node, topic: &str, expected: &(i16, u128, Vec<i32>), what: &str) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let seen = topic_metadata(node, topic);
        if &seen == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {seen:?}, expected {expected:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The partitions of `topic` whose directories are in `node`'s data dir.
fn partition_dirs(node: &Node, topic: &str) -> Vec<i32> {
    let mut found: Vec<i32> = std::fs::read_dir(node.data_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            name.strip_prefix(&format!("{topic}-")).and_then(|p| p.parse().ok())
        })
        .collect();
    found.sort();
    found
}

/// Waits until node `id` holds the directories of exactly the partitions `led` of `topic`.
fn until_holding(node: &Node, id: usize, topic: &str, led: &[i32]) {
    let deadline = Instant::now() + SETTLE;
    while partition_dirs(node, topic) != led {
        assert!(Instant::now() < deadline, "node {id} holds {:?}, leads {led:?}", partition_dirs(node, topic));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_topic_is_placed_across_the_cluster_and_clients_reach_every_partition_through_any_node() {
    use kafka_protocol::messages::FindCoordinatorResponse;
    use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, FindCoordinatorRequest};
    use std::process::Command;
    let mut nodes = cluster();

    // Created through node 1: every node knows it alike; its 6 partitions are spread, two per
    // node, and each node holds the directories of exactly the partitions it leads.
    assert_eq!(create_topic(&nodes[0], "spread", 6, 1), (0, String::new()));
    let (error, id, leaders) = topic_metadata(&nodes[0], "spread");
    assert_eq!(error, 0);
    assert_eq!(leaders.len(), 6);
    for n in &nodes {
        until_metadata(n, "spread", &(0, id, leaders.clone()), "every node answers alike");
    }
    for (i, n) in nodes.iter().enumerate() {
        let led: Vec<i32> = (0..6).filter(|&p| leaders[p as usize] == i as i32 + 1).collect();
        assert_eq!(led.len(), 2, "two partitions per node: {leaders:?}");
        until_holding(n, i + 1, "spread", &led);
    }

    // A real client bootstrapped from node 1 writes to every partition's leader; another,
    // bootstrapped from node 3, reads everything back.
    let lines: Vec<String> = (0..60).map(|i| format!("key{i}:value{i}")).collect();
    let mut produce = Command::new(support::kcat());
    produce.args(["-b", nodes[0].bootstrap(), "-P", "-t", "spread", "-K:", "-X", "acks=all"]);
    let out = support::run(produce, Some(lines.join("\n").into_bytes()), Duration::from_secs(60));
    support::check(&out, "kcat produce", &nodes[0]);
    let mut consume = Command::new(support::kcat());
    consume.args(["-b", nodes[2].bootstrap(), "-C", "-t", "spread", "-e", "-o", "beginning", "-f", "%p %k %s\n"]);
    let out = support::run(consume, None, Duration::from_secs(60));
    support::check(&out, "kcat consume", &nodes[2]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut got: Vec<String> = text.lines().map(|l| l.split_once(' ').unwrap().1.replace(' ', ":")).collect();
    got.sort();
    let mut want = lines.clone();
    want.sort();
    assert_eq!(got, want, "every record back, once");
    let used: std::collections::BTreeSet<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert!(used.len() >= 3, "the keys reached several partitions: {used:?}");

    // Node 2 restarts (on a new Kafka port): it reopens what it hosts as the log replays,
    // registers its new address, and a client reading through node 1 gets everything again.
    nodes[1].restart();
    registered(&all(&nodes), &listeners(&all(&nodes)));
    for n in &nodes {
        until_metadata(n, "spread", &(0, id, leaders.clone()), "the same placement after a restart");
    }
    let mut consume = Command::new(support::kcat());
    consume.args(["-b", nodes[0].bootstrap(), "-C", "-t", "spread", "-e", "-o", "beginning", "-f", "%k:%s\n"]);
    let out = support::run(consume, None, Duration::from_secs(60));
    support::check(&out, "kcat consume after a restart", &nodes[0]);
    let mut again: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    again.sort();
    assert_eq!(again, want, "every record after node 2's restart");

    // Grown through node 3 (6 -> 9): every node sees the same new leaders and the nodes
    // hold the new partitions they lead.
    {
        use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
        use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
        let mut c = Client::connect(nodes[2].bootstrap());
        let grow = CreatePartitionsTopic::default().with_name(support::wire::name("spread")).with_count(9);
        c.send(
            ApiKey::CreatePartitions,
            3,
            &CreatePartitionsRequest::default().with_timeout_ms(15_000).with_topics(vec![grow]),
        );
        let r: CreatePartitionsResponse = c.recv(ApiKey::CreatePartitions, 3);
        assert_eq!(r.results[0].error_code, 0, "{:?}", r.results[0].error_message);
    }
    let (_, _, grown) = topic_metadata(&nodes[2], "spread");
    assert_eq!(grown.len(), 9);
    assert_eq!(grown[..6], leaders[..], "the first six keep their leaders");
    for (i, n) in nodes.iter().enumerate() {
        until_metadata(n, "spread", &(0, id, grown.clone()), &format!("node {} after the growth", i + 1));
        let led: Vec<i32> = (0..9).filter(|&p| grown[p as usize] == i as i32 + 1).collect();
        until_holding(n, i + 1, "spread", &led);
    }

    // A topic config set through node 2 is what every node describes.
    {
        use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
        use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
        use kafka_protocol::protocol::StrBytes;
        let s = |v: &str| StrBytes::from_string(v.to_string());
        set_topic_config(&mut Client::connect(nodes[1].bootstrap()), "spread", "retention.ms", "3600000");
        // The node asked has it when it answers; the others as the record reaches them.
        for (i, n) in nodes.iter().enumerate() {
            let deadline = Instant::now() + SETTLE;
            loop {
                let mut c = Client::connect(n.bootstrap());
                let keys = Some(vec![s("retention.ms")]);
                let resource = DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("spread"))
                    .with_configuration_keys(keys);
                c.send(ApiKey::DescribeConfigs, 4, &DescribeConfigsRequest::default().with_resources(vec![resource]));
                let d: DescribeConfigsResponse = c.recv(ApiKey::DescribeConfigs, 4);
                let value = d.results[0]
                    .configs
                    .iter()
                    .find(|c| c.name.as_str() == "retention.ms")
                    .and_then(|c| c.value.clone());
                if value.as_deref() == Some("3600000") {
                    break;
                }
                assert!(i != 1, "node 2, asked, answered before it had the change: {value:?}");
                assert!(Instant::now() < deadline, "node {} describes {value:?}", i + 1);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    // Asked of a node that does not lead it, a partition answers NOT_LEADER_OR_FOLLOWER.
    let elsewhere = (leaders[0] % 3) as usize; // a node index whose node id is not leaders[0]
    assert_eq!(latest_offset(&nodes[elsewhere], "spread", 0), 6, "NOT_LEADER_OR_FOLLOWER from node {}", elsewhere + 1);

    // More replicas than brokers: refused, saying so.
    let (error, message) = create_topic(&nodes[1], "too-many", 1, 4);
    assert_eq!(error, 38);
    assert!(message.contains("exceeds the 3 available brokers"), "{message}");

    // A group's coordinator is the same node whichever node is asked: the leader of the
    // group's partition of __consumer_offsets, which the first FindCoordinator created with
    // three replicas (COORDINATOR_NOT_AVAILABLE, 15, while it is being made).
    let coordinators: Vec<i32> = nodes
        .iter()
        .map(|n| {
            let mut c = Client::connect(n.bootstrap());
            let deadline = Instant::now() + SETTLE;
            loop {
                c.send(
                    ApiKey::FindCoordinator,
                    3,
                    &FindCoordinatorRequest::default()
                        .with_key(kafka_protocol::protocol::StrBytes::from_static_str("readers")),
                );
                let r: FindCoordinatorResponse = c.recv(ApiKey::FindCoordinator, 3);
                if r.error_code == 0 {
                    break r.node_id.0;
                }
                assert_eq!(r.error_code, 15, "{:?}", r.error_message);
                assert!(Instant::now() < deadline, "no coordinator: {:?}", r.error_message);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .collect();
    assert!(coordinators.iter().all(|&c| c == coordinators[0]), "{coordinators:?}");
    let offsets = topic_metadata(&nodes[0], "__consumer_offsets");
    assert_eq!(offsets.2.len(), 50, "{offsets:?}");
    assert!(offsets.2.contains(&coordinators[0]), "the coordinator leads a partition: {offsets:?}");

    // Deleted through node 2: gone from every node, with its directories.
    let mut c = Client::connect(nodes[1].bootstrap());
    let delete =
        DeleteTopicsRequest::default().with_topic_names(vec![support::wire::name("spread")]).with_timeout_ms(15_000);
    c.send(ApiKey::DeleteTopics, 5, &delete);
    let r: DeleteTopicsResponse = c.recv(ApiKey::DeleteTopics, 5);
    assert_eq!(r.responses[0].error_code, 0);
    let deadline = Instant::now() + SETTLE;
    for n in &nodes {
        while topic_metadata(n, "spread").0 != 3 || !partition_dirs(n, "spread").is_empty() {
            assert!(Instant::now() < deadline, "topic still on a node: {:?}", topic_metadata(n, "spread"));
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The segment files (`.log`) of partition `p` of `topic` in `node`'s data dir, with their bytes.
fn segment_bytes(node: &Node, topic: &str, p: i32) -> Vec<(String, Vec<u8>)> {
    let dir = node.data_dir().join(format!("{topic}-{p}"));
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .map(|p| (p.file_name().unwrap().to_string_lossy().to_string(), std::fs::read(&p).unwrap()))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Replication factor 3 (issue #15 Build 3, first part): every node holds every partition,
/// followers copy their leader with Kafka's Fetch, acks=all is answered once every replica
/// has the records, and the three copies end byte for byte the same.
#[test]
fn a_replicated_topic_is_copied_byte_for_byte_to_every_replica() {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use std::process::Command;
    let nodes = cluster();
    assert_eq!(create_topic(&nodes[0], "copies", 3, 3), (0, String::new()));

    // Every partition: three replicas, the first leads, all three in sync.
    // Asked of node 2, which learns of the topic as the record reaches it.
    let deadline = Instant::now() + SETTLE;
    let m: MetadataResponse = loop {
        let mut c = Client::connect(nodes[1].bootstrap());
        let wanted = MetadataRequestTopic::default().with_name(Some(support::wire::name("copies")));
        let request = MetadataRequest::default().with_topics(Some(vec![wanted])).with_allow_auto_topic_creation(false);
        c.send(ApiKey::Metadata, 12, &request);
        let m: MetadataResponse = c.recv(ApiKey::Metadata, 12);
        if m.topics[0].error_code == 0 && m.topics[0].partitions.len() == 3 {
            break m;
        }
        assert!(Instant::now() < deadline, "node 2 does not know the topic: {:?}", m.topics[0].error_code);
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut leaders = Vec::new();
    for part in &m.topics[0].partitions {
        let mut replicas: Vec<i32> = part.replica_nodes.iter().map(|r| r.0).collect();
        assert_eq!(part.leader_id.0, replicas[0], "the first replica leads");
        assert_eq!(part.isr_nodes.len(), 3);
        leaders.push((part.partition_index, part.leader_id.0));
        replicas.sort();
        assert_eq!(replicas, vec![1, 2, 3]);
    }
    leaders.sort();
    let distinct: std::collections::BTreeSet<i32> = leaders.iter().map(|l| l.1).collect();
    assert_eq!(distinct.len(), 3, "leaders spread: {leaders:?}");

    // acks=all through node 2, read back through node 3.
    let lines: Vec<String> = (0..300).map(|i| format!("k{i}:v{i}")).collect();
    let mut produce = Command::new(support::kcat());
    produce.args(["-b", nodes[1].bootstrap(), "-P", "-t", "copies", "-K:", "-X", "acks=all"]);
    let out = support::run(produce, Some(lines.join("\n").into_bytes()), Duration::from_secs(60));
    support::check(&out, "kcat produce acks=all", &nodes[1]);
    let mut consume = Command::new(support::kcat());
    consume.args(["-b", nodes[2].bootstrap(), "-C", "-t", "copies", "-e", "-o", "beginning", "-f", "%k:%s\n"]);
    let out = support::run(consume, None, Duration::from_secs(60));
    support::check(&out, "kcat consume", &nodes[2]);
    let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    got.sort();
    let mut want = lines.clone();
    want.sort();
    assert_eq!(got, want, "every record back, once");

    // Every replica holds its leader's segments, byte for byte.
    for &(p, leader) in &leaders {
        let reference = segment_bytes(&nodes[leader as usize - 1], "copies", p);
        assert!(reference.iter().any(|(_, b)| !b.is_empty()), "partition {p} got records");
        for (i, n) in nodes.iter().enumerate() {
            let deadline = Instant::now() + SETTLE;
            while segment_bytes(n, "copies", p) != reference {
                assert!(Instant::now() < deadline, "node {} does not hold partition {p} as its leader {leader}", i + 1);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    // A follower does not serve clients.
    let (p, leader) = leaders[0];
    let follower = (leader % 3) as usize; // the index of a node that is not the leader
    assert_eq!(latest_offset(&nodes[follower], "copies", p), 6, "NOT_LEADER_OR_FOLLOWER from a follower");
}

/// The address the test's own connections leave from where iptables rules cut links
/// between nodes' addresses (no rule names it).
const TEST_SOURCE: &str = "127.0.0.9";

/// (leader, leader epoch, ISR sorted) of partition 0 of `topic`, as `node` answers.
fn partition0(node: &Node, topic: &str) -> (i32, i32, Vec<i32>) {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    let mut c = Client::connect_from(node.bootstrap(), TEST_SOURCE);
    let wanted = MetadataRequestTopic::default().with_name(Some(support::wire::name(topic)));
    c.send(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(Some(vec![wanted])));
    let m: MetadataResponse = c.recv(ApiKey::Metadata, 12);
    let p = m.topics[0].partitions.iter().find(|p| p.partition_index == 0).expect("partition 0");
    let mut isr: Vec<i32> = p.isr_nodes.iter().map(|r| r.0).collect();
    isr.sort();
    (p.leader_id.0, p.leader_epoch, isr)
}

/// Waits until `returning` is back in the ISR of partition 0 of `topic` (as `watcher`
/// answers) and holds `leader`'s log byte for byte.
fn until_back_in_sync(watcher: &Node, leader: &Node, returning: &Node, topic: &str) {
    let deadline = Instant::now() + SETTLE;
    while partition0(watcher, topic).2 != vec![1, 2, 3] {
        assert!(Instant::now() < deadline, "not back in sync: {:?}", partition0(watcher, topic));
        std::thread::sleep(Duration::from_millis(100));
    }
    let reference = segment_bytes(leader, topic, 0);
    let deadline = Instant::now() + SETTLE;
    while segment_bytes(returning, topic, 0) != reference {
        assert!(Instant::now() < deadline, "the returning replica's log of {topic} is not the leader's");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// IncrementalAlterConfigs v1 through `c`: topic `topic`'s `name` SET to `value`; asserts it
/// was taken.
fn set_topic_config(c: &mut Client, topic: &str, name: &str, value: &str) {
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
    let s = |v: &str| kafka_protocol::protocol::StrBytes::from_string(v.to_string());
    let config = AlterableConfig::default().with_name(s(name)).with_config_operation(0).with_value(Some(s(value)));
    let resource =
        AlterConfigsResource::default().with_resource_type(2).with_resource_name(s(topic)).with_configs(vec![config]);
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![resource]);
    c.send(ApiKey::IncrementalAlterConfigs, 1, &request);
    let r: IncrementalAlterConfigsResponse = c.recv(ApiKey::IncrementalAlterConfigs, 1);
    assert_eq!(r.responses[0].error_code, 0, "{:?}", r.responses[0].error_message);
}

/// Waits until partition 0 of `topic` (as `watcher` answers) has a leader other than `old`.
fn until_led_elsewhere(watcher: &Node, topic: &str, old: i32) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let leader = partition0(watcher, topic).0;
        if leader >= 0 && leader != old {
            return;
        }
        assert!(Instant::now() < deadline, "no new leader for {topic} after node {old}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// kcat: `lines` (KEY:VALUE) with acks=all through `bootstrap`; panics on failure.
fn produce_all(bootstrap: &str, topic: &str, lines: &[String], node: &Node) {
    let mut produce = std::process::Command::new(support::kcat());
    produce.args(["-b", bootstrap, "-P", "-t", topic, "-K:", "-X", "acks=all"]);
    let out = support::run(produce, Some(lines.join("\n").into_bytes()), Duration::from_secs(60));
    support::check(&out, "kcat produce acks=all", node);
}

/// kcat: every record of `topic` through `bootstrap`, as KEY:VALUE, sorted.
fn consume_all(bootstrap: &str, topic: &str, node: &Node) -> Vec<String> {
    let mut consume = std::process::Command::new(support::kcat());
    consume.args(["-b", bootstrap, "-C", "-t", topic, "-e", "-o", "beginning", "-f", "%k:%s\n"]);
    let out = support::run(consume, None, Duration::from_secs(60));
    support::check(&out, "kcat consume", node);
    let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    got.sort();
    got
}

/// The leader of a replicated partition is SIGKILLed: once it is fenced the controller makes
/// an in-sync replica leader in a new epoch, acks=all goes on through it, nothing
/// acknowledged is lost or doubled; the old leader comes back as a follower, catches up,
/// re-enters the in-sync replicas and ends byte for byte like the new leader.
#[test]
fn a_killed_leader_is_replaced_from_the_in_sync_replicas_and_comes_back_as_a_follower() {
    let mut nodes = cluster();
    assert_eq!(create_topic(&nodes[0], "failover", 1, 3), (0, String::new()));
    until_topic_ready(&nodes, "failover", 1, 3); // every node has it, the leader too
    let (leader, epoch, isr) = partition0(&nodes[0], "failover");
    assert_eq!(isr, vec![1, 2, 3]);
    let before: Vec<String> = (0..100).map(|i| format!("a{i}:before{i}")).collect();
    let bootstrap_all: String = nodes.iter().map(|n| n.bootstrap().to_string()).collect::<Vec<_>>().join(",");
    produce_all(&bootstrap_all, "failover", &before, &nodes[0]);

    let dead = leader as usize - 1;
    nodes[dead].kill();
    let killed = Instant::now();
    let survivor = (dead + 1) % 3;
    let deadline = Instant::now() + SETTLE;
    let (new_leader, new_epoch, new_isr) = loop {
        let seen = partition0(&nodes[survivor], "failover");
        if seen.0 >= 0 && seen.0 != leader && seen.1 > epoch {
            break seen;
        }
        assert!(Instant::now() < deadline, "no new leader: {seen:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!(
        "leader {leader} (epoch {epoch}) killed: node {new_leader} leads in epoch {new_epoch} after {:?}",
        killed.elapsed()
    );
    assert!(!new_isr.contains(&leader), "the dead leader left the in-sync replicas: {new_isr:?}");

    // acks=all through the survivors; everything acknowledged, once.
    let after: Vec<String> = (0..100).map(|i| format!("b{i}:after{i}")).collect();
    let survivors: String =
        (0..3).filter(|&i| i != dead).map(|i| nodes[i].bootstrap().to_string()).collect::<Vec<_>>().join(",");
    produce_all(&survivors, "failover", &after, &nodes[survivor]);
    let mut want: Vec<String> = before.iter().chain(after.iter()).cloned().collect();
    want.sort();
    assert_eq!(consume_all(&survivors, "failover", &nodes[survivor]), want);

    // Back: a follower that catches up and is in sync again, its log the new leader's.
    nodes[dead].restart();
    let deadline = Instant::now() + SETTLE;
    loop {
        let seen = partition0(&nodes[survivor], "failover");
        if seen.2 == vec![1, 2, 3] {
            assert_eq!(seen.0, new_leader, "a returning replica does not take the lead back by itself");
            break;
        }
        assert!(Instant::now() < deadline, "the old leader is not back in sync: {seen:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    until_back_in_sync(&nodes[survivor], &nodes[new_leader as usize - 1], &nodes[dead], "failover");
}

/// Idempotent producers get their ids from whichever node they ask; in a cluster no two get
/// the same, or the leaders of their partitions would take one for the other.
#[test]
fn producer_ids_are_unique_across_the_cluster() {
    use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
    let nodes = cluster();
    let mut ids = Vec::new();
    for round in 0..3 {
        for n in &nodes {
            let mut c = Client::connect(n.bootstrap());
            let request = InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            c.send(ApiKey::InitProducerId, 4, &request);
            let r: InitProducerIdResponse = c.recv(ApiKey::InitProducerId, 4);
            assert_eq!(r.error_code, 0, "round {round}");
            ids.push(r.producer_id.0);
        }
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "a producer id handed out twice: {ids:?}");
    // An empty transactional id is neither: INVALID_REQUEST, as Kafka answers.
    let mut c = Client::connect(nodes[0].bootstrap());
    let empty = kafka_protocol::messages::TransactionalId(kafka_protocol::protocol::StrBytes::from_static_str(""));
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(empty))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    c.send(ApiKey::InitProducerId, 4, &request);
    let r: InitProducerIdResponse = c.recv(ApiKey::InitProducerId, 4);
    assert_eq!(r.error_code, 42, "INVALID_REQUEST");
}

/// Show 2 of issue #15: with two of three nodes down, acks=all is never acknowledged (the
/// partition cannot reach `min.insync.replicas`, and without a quorum no ISR change can
/// make it); with them back, it resumes and nothing acknowledged is lost.
#[test]
fn with_two_of_three_nodes_down_acks_all_is_never_acknowledged_and_resumes_when_they_return() {
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
    use kafka_protocol::protocol::StrBytes;
    let mut nodes = cluster();
    assert_eq!(create_topic(&nodes[0], "safe", 1, 3), (0, String::new()));
    let s = |v: &str| StrBytes::from_string(v.to_string());
    let (leader, _, _) = partition0(&nodes[0], "safe");
    let up = leader as usize - 1;
    // Set through the leader, which has it when it answers.
    let mut c = Client::connect(nodes[up].bootstrap());
    let config = AlterableConfig::default()
        .with_name(s("min.insync.replicas"))
        .with_config_operation(0)
        .with_value(Some(s("2")));
    let resource =
        AlterConfigsResource::default().with_resource_type(2).with_resource_name(s("safe")).with_configs(vec![config]);
    c.send(
        ApiKey::IncrementalAlterConfigs,
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![resource]),
    );
    let r: IncrementalAlterConfigsResponse = c.recv(ApiKey::IncrementalAlterConfigs, 1);
    assert_eq!(r.responses[0].error_code, 0);
    let first: Vec<String> = (0..50).map(|i| format!("a{i}:first{i}")).collect();
    produce_all(nodes[up].bootstrap(), "safe", &first, &nodes[up]);

    let down: Vec<usize> = (0..3).filter(|&i| i != up).collect();
    for &i in &down {
        nodes[i].kill();
    }
    let refused: Vec<String> = (0..20).map(|i| format!("x{i}:refused{i}")).collect();
    let mut produce = std::process::Command::new(support::kcat());
    produce.args([
        "-b",
        nodes[up].bootstrap(),
        "-P",
        "-t",
        "safe",
        "-K:",
        "-X",
        "acks=all",
        "-X",
        "message.timeout.ms=4000",
    ]);
    let out = support::run(produce, Some(refused.join("\n").into_bytes()), Duration::from_secs(60));
    let said = String::from_utf8_lossy(&out.stderr);
    eprintln!("kcat with two nodes down: {said}");
    let failed = said.matches("Delivery failed").count() + said.matches("delivery failed").count();
    assert!(failed > 0 || !out.status.success(), "acks=all was acknowledged with two of three nodes down: {said}");
    assert!(!said.contains("Delivered"), "{said}");

    for &i in &down {
        nodes[i].restart();
    }
    registered(&all(&nodes), &listeners(&all(&nodes)));
    let last: Vec<String> = (0..50).map(|i| format!("b{i}:last{i}")).collect();
    let bootstrap: String = nodes.iter().map(|n| n.bootstrap().to_string()).collect::<Vec<_>>().join(",");
    produce_all(&bootstrap, "safe", &last, &nodes[up]);
    let got = consume_all(&bootstrap, "safe", &nodes[up]);
    for line in first.iter().chain(last.iter()) {
        assert_eq!(got.iter().filter(|g| *g == line).count(), 1, "{line} acknowledged, so in the log exactly once");
    }
}

/// (leader, leader epoch, ISR sorted) of every partition of `topic`, as `node` answers
/// (empty when it cannot answer: down, or the topic is unknown to it).
fn partitions(node: &Node, topic: &str) -> Vec<(i32, i32, Vec<i32>)> {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    let Ok(stream) = std::net::TcpStream::connect(node.bootstrap()) else { return Vec::new() };
    drop(stream);
    let mut c = Client::connect(node.bootstrap());
    let wanted = MetadataRequestTopic::default().with_name(Some(support::wire::name(topic)));
    c.send(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(Some(vec![wanted])));
    let m: MetadataResponse = c.recv(ApiKey::Metadata, 12);
    let mut out: Vec<(i32, i32, i32, Vec<i32>)> = m.topics[0]
        .partitions
        .iter()
        .map(|p| {
            let mut isr: Vec<i32> = p.isr_nodes.iter().map(|r| r.0).collect();
            isr.sort();
            (p.partition_index, p.leader_id.0, p.leader_epoch, isr)
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, l, e, isr)| (l, e, isr)).collect()
}

/// Issue #15 Show 1: three nodes, a topic with three replicas and `min.insync.replicas=2`,
/// an idempotent acks=all producer (confluent-kafka) and a consumer group committing as it
/// goes; a random node is SIGKILLed every few seconds and started again, round after round
/// (`SLUICE_CHAOS_ROUNDS`, default 6). Each kill: the partitions it led get new leaders
/// within seconds (the quorum fences it after `broker.session.timeout.ms`, 2 s here), the
/// group's coordinator moves when it was there. At the end: nothing acknowledged is lost
/// or doubled in the log, the group saw every acknowledged record and none the log does not
/// hold (nothing was served above the high watermark), every replica is back in the ISR, and
/// the three copies of each partition hold the same batches in the same order.
#[test]
fn random_nodes_killed_round_after_round_lose_and_double_nothing() {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
    use std::collections::{BTreeMap, BTreeSet};
    let rounds: usize = std::env::var("SLUICE_CHAOS_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(6);
    let voters = voters();
    // Fixed Kafka ports, so that a restarted node is where the clients knew it.
    let ports: Vec<u16> = (1..=3).map(|i| free_port(&format!("127.0.0.{i}"))).collect();
    let mut nodes: Vec<Node> = (1..=3).map(|i| start_node_at(i, &voters, ports[i - 1])).collect();
    settled(&all(&nodes));
    registered(&all(&nodes), &listeners(&all(&nodes)));
    let bootstrap: String = nodes.iter().map(|n| n.bootstrap().to_string()).collect::<Vec<_>>().join(",");

    let mut c = Client::connect(nodes[0].bootstrap());
    let min_isr = CreatableTopicConfig::default()
        .with_name(kafka_protocol::protocol::StrBytes::from_static_str("min.insync.replicas"))
        .with_value(Some(kafka_protocol::protocol::StrBytes::from_static_str("2")));
    let topic = CreatableTopic::default()
        .with_name(support::wire::name("chaos"))
        .with_num_partitions(3)
        .with_replication_factor(3)
        .with_configs(vec![min_isr]);
    c.send(ApiKey::CreateTopics, 7, &CreateTopicsRequest::default().with_timeout_ms(15_000).with_topics(vec![topic]));
    let r: CreateTopicsResponse = c.recv(ApiKey::CreateTopics, 7);
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);

    let rate = 150;
    let count = rate * (rounds * 5 + 6);
    let mut producer = support::Bg::py(
        "producer",
        "prod_produce.py",
        &[
            "--client=ck".into(),
            format!("--bootstrap={bootstrap}"),
            "--topic=chaos".into(),
            format!("--count={count}"),
            "--idempotence".into(),
            format!("--rate={rate}"),
            "--report-acks".into(),
            "--timeout=180".into(),
        ],
    );
    let stop_file = nodes[0].data_dir().join("stop-consumer");
    let consumer = support::Bg::py(
        "group",
        "grp_consumer.py",
        &[
            "--client=ck".into(),
            format!("--bootstrap={bootstrap}"),
            "--topic=chaos".into(),
            "--group=chaos-readers".into(),
            "--commit=sync".into(),
            format!("--stop-file={}", stop_file.display()),
            "--duration=600".into(),
        ],
    );

    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("chaos: {rounds} rounds, seed {seed}");
    let mut failovers = Vec::new();
    for round in 0..rounds {
        std::thread::sleep(Duration::from_secs(3));
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let victim = (seed >> 33) as usize % 3;
        let watcher = (victim + 1) % 3;
        let before = partitions(&nodes[watcher], "chaos");
        let led: Vec<usize> = (0..before.len()).filter(|&p| before[p].0 == victim as i32 + 1).collect();
        nodes[victim].kill();
        let killed = Instant::now();
        // Every partition it led has another leader, in a later epoch.
        loop {
            let now = partitions(&nodes[watcher], "chaos");
            if now.len() == before.len()
                && led.iter().all(|&p| now[p].0 >= 0 && now[p].0 != victim as i32 + 1 && now[p].1 > before[p].1)
            {
                break;
            }
            assert!(
                killed.elapsed() < SETTLE,
                "round {round}: no new leaders after killing node {}: {now:?}",
                victim + 1
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let took = killed.elapsed();
        eprintln!("chaos round {round}: node {} killed (led {led:?}); new leaders after {took:?}", victim + 1);
        if !led.is_empty() {
            failovers.push(took);
        }
        std::thread::sleep(Duration::from_secs(1));
        nodes[victim].restart();
        // Back in the ISR of every partition before the next kill, or two of three could be
        // down at once (the producer would wait on min.insync.replicas then, which is Show 2).
        let deadline = Instant::now() + SETTLE;
        while !partitions(&nodes[watcher], "chaos").iter().all(|p| p.2 == vec![1, 2, 3]) {
            assert!(Instant::now() < deadline, "round {round}: node {} not back in sync", victim + 1);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    assert!(producer.wait(Duration::from_secs(240)).is_some(), "the producer did not finish\n{}", producer.logs(20));
    let summary = producer.events().into_iter().last().unwrap_or_else(|| panic!("{}", producer.logs(20)));
    let acked: BTreeSet<i64> =
        summary["acks"].as_array().expect("acks").iter().map(|a| a[0].as_i64().expect("an index")).collect();
    eprintln!(
        "chaos: {} sent, {} acknowledged, {} errors {}",
        summary["sent"], summary["acked"], summary["errors"], summary["error_samples"]
    );
    assert_eq!(acked.len() as i64, summary["acked"].as_i64().unwrap(), "each record acknowledged once");

    // The log: every acknowledged record exactly once (idempotence kept retries out).
    let mut stored: BTreeMap<i64, usize> = BTreeMap::new();
    for line in consume_all(&bootstrap, "chaos", &nodes[0]) {
        let value = line.split_once(':').map_or(line.as_str(), |(_, v)| v);
        if let Some(i) = value.trim_end_matches('.').strip_prefix("val-").and_then(|i| i.parse::<i64>().ok()) {
            *stored.entry(i).or_default() += 1;
        }
    }
    let lost: Vec<i64> = acked.iter().filter(|i| !stored.contains_key(i)).copied().collect();
    let doubled: Vec<(i64, usize)> = stored.iter().filter(|(_, &n)| n > 1).map(|(&i, &n)| (i, n)).collect();
    assert!(lost.is_empty(), "{} acknowledged records lost: {:?}", lost.len(), &lost[..lost.len().min(20)]);
    assert!(doubled.is_empty(), "records doubled: {:?}", &doubled[..doubled.len().min(20)]);

    // The group: it saw every acknowledged record (again, after a coordinator moved, is fine).
    let seen = || -> BTreeSet<i64> {
        consumer
            .events()
            .iter()
            .filter(|e| e["ev"] == "recs")
            .flat_map(|e| e["r"].as_array().cloned().unwrap_or_default())
            .filter_map(|r| r[3].as_i64())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let missing = acked.difference(&seen()).count();
        if missing == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the group never saw {missing} acknowledged records\n{}", consumer.logs(30));
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::write(&stop_file, b"").unwrap();
    // Nothing was served above the high watermark: the group saw no record the log lost
    // (one a leader held but was cut back when another took over).
    let unstored: Vec<i64> = seen().into_iter().filter(|i| !stored.contains_key(i)).collect();
    assert!(unstored.is_empty(), "the group saw records the log does not hold: {unstored:?}");

    // Every replica in sync at the end, on every node's answer.
    for n in &nodes {
        let deadline = Instant::now() + SETTLE;
        while !partitions(n, "chaos").iter().all(|p| p.2 == vec![1, 2, 3]) {
            assert!(Instant::now() < deadline, "not all in sync: {:?}", partitions(n, "chaos"));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // And no replica diverges: each partition's batches, in one order, the same on all three.
    for p in 0..partitions(&nodes[0], "chaos").len() as i32 {
        let deadline = Instant::now() + SETTLE;
        loop {
            let copies: Vec<Vec<Vec<u8>>> = nodes.iter().map(|n| batches_from(n, "chaos", p, 0)).collect();
            if !copies[0].is_empty() && copies.iter().all(|c| *c == copies[0]) {
                break;
            }
            let counts: Vec<usize> = copies.iter().map(Vec::len).collect();
            assert!(Instant::now() < deadline, "partition {p}'s replicas differ (batches per node {counts:?})");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    failovers.sort();
    eprintln!(
        "chaos: {rounds} rounds, {} acknowledged, 0 lost, 0 doubled; leader failover median {:?}, max {:?}",
        acked.len(),
        failovers.get(failovers.len() / 2),
        failovers.last()
    );
}

/// iptables rules cutting one node's Kafka and quorum ports off from the other nodes, both
/// ways (only those ports, so other tests' nodes on the same addresses are untouched);
/// removed when dropped. The nodes' own connections leave from their addresses (the node
/// binds them), the test's from 127.0.0.9, which no rule names.
struct NetworkCut {
    rules: Vec<Vec<String>>,
}

impl NetworkCut {
    /// Cuts each link (from address, to address, to port): its requests, and the answers
    /// on connections made before the cut.
    fn links(links: &[(String, String, u16)]) -> NetworkCut {
        let ok = std::process::Command::new("iptables").args(["-w", "-L", "OUTPUT", "-n"]).output();
        assert!(
            ok.as_ref().is_ok_and(|o| o.status.success()),
            "iptables is needed (as root) to cut the network between nodes: run `bash scripts/test-deps.sh`: {ok:?}"
        );
        let mut cut = NetworkCut { rules: Vec::new() };
        for (from, to, port) in links {
            for (src, dst, way) in [(from, to, "--dport"), (to, from, "--sport")] {
                let rule: Vec<String> =
                    ["OUTPUT", "-p", "tcp", "-s", src, "-d", dst, way, &port.to_string(), "-j", "DROP"]
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                let status = std::process::Command::new("iptables").args(["-w", "-I"]).args(&rule).status();
                assert!(status.is_ok_and(|s| s.success()), "iptables -I {rule:?}");
                cut.rules.push(rule);
            }
        }
        cut
    }

    /// `nodes`: (address, Kafka port, quorum port) of each node; `isolated`: an index. Every
    /// link between it and the others, both ways.
    fn isolate(nodes: &[(String, u16, u16)], isolated: usize) -> NetworkCut {
        let (ip, kafka, quorum) = &nodes[isolated];
        let mut links = Vec::new();
        for (i, (other, other_kafka, other_quorum)) in nodes.iter().enumerate() {
            if i != isolated {
                links.push((other.clone(), ip.clone(), *kafka));
                links.push((other.clone(), ip.clone(), *quorum));
                links.push((ip.clone(), other.clone(), *other_kafka));
                links.push((ip.clone(), other.clone(), *other_quorum));
            }
        }
        NetworkCut::links(&links)
    }
}

impl Drop for NetworkCut {
    fn drop(&mut self) {
        for rule in &self.rules {
            let _ = std::process::Command::new("iptables").args(["-w", "-D"]).args(rule).status();
        }
    }
}

/// Produce of `values` (one uncompressed batch) to partition 0: (error, base offset).
fn produce_values(c: &mut Client, topic: &str, acks: i16, timeout_ms: i32, values: &[String]) -> (i16, i64) {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
    let values: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
    let records = bytes::Bytes::from(common::batch(&values, 1_700_000_000_000));
    let data = PartitionProduceData::default().with_index(0).with_records(Some(records));
    let request = ProduceRequest::default().with_acks(acks).with_timeout_ms(timeout_ms).with_topic_data(vec![
        TopicProduceData::default().with_name(support::wire::name(topic)).with_partition_data(vec![data]),
    ]);
    c.send(ApiKey::Produce, 9, &request);
    let r: ProduceResponse = c.recv(ApiKey::Produce, 9);
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// A Fetch (v12) of partition 0 carrying `current_leader_epoch`: its error code.
fn fetch_error(c: &mut Client, topic: &str, current_leader_epoch: i32) -> i16 {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{FetchRequest, FetchResponse};
    let part = FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(0)
        .with_current_leader_epoch(current_leader_epoch)
        .with_partition_max_bytes(1 << 20);
    let request =
        FetchRequest::default().with_max_wait_ms(0).with_min_bytes(1).with_max_bytes(1 << 20).with_topics(vec![
            FetchTopic::default().with_topic(support::wire::name(topic)).with_partitions(vec![part]),
        ]);
    c.send(ApiKey::Fetch, 12, &request);
    let r: FetchResponse = c.recv(ApiKey::Fetch, 12);
    r.responses[0].partitions[0].error_code
}

/// Issue #15 Show 3: the leader of a partition is cut off from the two other nodes (iptables
/// on their ports). It still takes acks=1 records — its unreplicated tail — but acks=all is
/// never acknowledged there. The two others fence it and elect a new leader in a later
/// epoch; fetches with a stale epoch are refused on either side (FENCED_LEADER_EPOCH /
/// UNKNOWN_LEADER_EPOCH). Healed, the old leader learns the new epoch, cuts its tail back to
/// where the new leader's log diverges from it, copies the rest, and its log is the new
/// leader's byte for byte, back in the ISR.
#[test]
fn a_leader_cut_off_from_the_others_is_fenced_and_its_unreplicated_tail_is_cut_on_return() {
    let voters = voters();
    let quorum_ports: Vec<u16> =
        voters.split(',').map(|v| v.rsplit_once(':').expect("host:port").1.parse().expect("a port")).collect();
    let nodes: Vec<Node> = (1..=3).map(|i| start_node(i, &voters)).collect();
    settled(&all(&nodes));
    registered(&all(&nodes), &listeners(&all(&nodes)));
    assert_eq!(create_topic(&nodes[0], "split", 1, 3), (0, String::new()));
    until_topic_ready(&nodes, "split", 1, 3); // every node has it, the leader too
    let (leader, epoch, isr) = partition0(&nodes[0], "split");
    assert_eq!(isr, vec![1, 2, 3]);
    let old = leader as usize - 1;
    let mut to_old = Client::connect_from(nodes[old].bootstrap(), TEST_SOURCE);
    let before: Vec<String> = (0..10).map(|i| format!("before-{i}")).collect();
    assert_eq!(produce_values(&mut to_old, "split", -1, 15_000, &before), (0, 0));

    let addresses: Vec<(String, u16, u16)> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let port = n.bootstrap().rsplit_once(':').unwrap().1.parse().unwrap();
            (format!("127.0.0.{}", i + 1), port, quorum_ports[i])
        })
        .collect();
    let cut = NetworkCut::isolate(&addresses, old);
    let tail: Vec<String> = (0..5).map(|i| format!("tail-{i}")).collect();
    assert_eq!(produce_values(&mut to_old, "split", 1, 15_000, &tail), (0, 10), "acks=1: the cut-off leader's tail");

    let other = (old + 1) % 3;
    let deadline = Instant::now() + SETTLE;
    let (new_leader, new_epoch) = loop {
        let (l, e, _) = partition0(&nodes[other], "split");
        if l >= 0 && l != leader && e > epoch {
            break (l, e);
        }
        if Instant::now() >= deadline {
            let views: Vec<String> = nodes.iter().map(|n| format!("{} {:?}", quorum(n), brokers(n))).collect();
            panic!("no new leader while node {leader} is cut off: {l} epoch {e}\n{}", views.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("node {leader} cut off (epoch {epoch}): node {new_leader} leads in epoch {new_epoch}");
    let (error, _) = produce_values(&mut to_old, "split", -1, 2_000, &["never".to_string()]);
    assert_ne!(error, 0, "acks=all acknowledged by a leader cut off from its followers");
    assert_eq!(fetch_error(&mut to_old, "split", new_epoch), 75, "UNKNOWN_LEADER_EPOCH from the cut-off leader");
    let mut to_new = Client::connect_from(nodes[new_leader as usize - 1].bootstrap(), TEST_SOURCE);
    assert_eq!(fetch_error(&mut to_new, "split", epoch), 74, "FENCED_LEADER_EPOCH for the old epoch");
    let after: Vec<String> = (0..10).map(|i| format!("after-{i}")).collect();
    assert_eq!(produce_values(&mut to_new, "split", -1, 15_000, &after), (0, 10), "acks=all through the new leader");

    drop(cut);
    let new_node = &nodes[new_leader as usize - 1];
    until_back_in_sync(&nodes[other], new_node, &nodes[old], "split");
    let reference = segment_bytes(new_node, "split", 0);
    let bytes: Vec<u8> = reference.into_iter().flat_map(|(_, b)| b).collect();
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"before-9") && has(b"after-9"), "both sides' acknowledged records are there");
    assert!(!has(b"tail-") && !has(b"never"), "the cut-off leader's tail is gone");

    // OffsetForLeaderEpoch (what a consumer asks to detect truncation): the old epoch ended
    // at 10 — a consumer that had read the tail (offsets 10-14) learns it was cut — and the
    // new epoch ends at the log end, 20. A follower does not answer.
    let ends = |node: &Node, epoch: i32| -> (i16, i32, i64) {
        use kafka_protocol::messages::offset_for_leader_epoch_request::{
            OffsetForLeaderPartition, OffsetForLeaderTopic,
        };
        use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
        let mut c = Client::connect_from(node.bootstrap(), TEST_SOURCE);
        let part = OffsetForLeaderPartition::default()
            .with_partition(0)
            .with_current_leader_epoch(-1)
            .with_leader_epoch(epoch);
        let topic =
            OffsetForLeaderTopic::default().with_topic(support::wire::name("split")).with_partitions(vec![part]);
        let request = OffsetForLeaderEpochRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![topic]);
        c.send(ApiKey::OffsetForLeaderEpoch, 4, &request);
        let r: OffsetForLeaderEpochResponse = c.recv(ApiKey::OffsetForLeaderEpoch, 4);
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.leader_epoch, p.end_offset)
    };
    let views = || -> String {
        let v: Vec<String> = nodes.iter().map(|n| format!("{:?} {:?}", partition0(n, "split"), brokers(n))).collect();
        v.join("\n")
    };
    // Leadership stays where the election put it once the old leader is back. (It moved
    // once more in about 1 run in 20 while a quorum leader cut off with the partition's
    // leader, on losing the lead, forwarded its stale "fence broker N" to the new quorum
    // leader, which fenced a live broker; now such decisions are proposed only as leader.)
    let (leader_now, epoch_now, _) = partition0(new_node, "split");
    assert_eq!((leader_now, epoch_now), (new_leader, new_epoch), "{}", views());
    let leading = &nodes[leader_now as usize - 1];
    assert_eq!(ends(leading, epoch), (0, epoch, 10), "{}", views());
    assert_eq!(ends(leading, new_epoch), (0, new_epoch, 20), "{}", views());
    let follower = nodes.iter().enumerate().find(|(i, _)| *i as i32 + 1 != leader_now).expect("a follower").1;
    assert_eq!(ends(follower, new_epoch).0, 6, "NOT_LEADER_OR_FOLLOWER from a follower");
}

/// A follower that stops fetching (iptables cuts its link to the leader's Kafka port; its
/// heartbeats go on, so it is not fenced) leaves the ISR after `replica.lag.time.max.ms`,
/// and acks=all goes on without it instead of timing out; once the link is back it catches
/// up, re-enters the ISR, and ends byte for byte like the leader. With min.insync.replicas
/// 3, the stall answers NOT_ENOUGH_REPLICAS_AFTER_APPEND, then NOT_ENOUGH_REPLICAS.
#[test]
fn a_follower_that_stops_fetching_leaves_the_isr_after_the_lag_time_and_comes_back() {
    let voters = voters();
    let lag = ["--set", "replica.lag.time.max.ms=1500"];
    let nodes: Vec<Node> = (1..=3).map(|i| start_node_with(i, &voters, 0, &lag)).collect();
    settled(&all(&nodes));
    registered(&all(&nodes), &listeners(&all(&nodes)));
    assert_eq!(create_topic(&nodes[0], "slow", 1, 3), (0, String::new()));
    // Answered once node 1 has it; the leader may apply it a moment later.
    until_topic_ready(&nodes, "slow", 1, 3);
    let (leader, epoch, isr) = partition0(&nodes[0], "slow");
    assert_eq!(isr, vec![1, 2, 3]);
    let l = leader as usize - 1;
    let f = (l + 1) % 3;
    let mut to_leader = Client::connect_from(nodes[l].bootstrap(), TEST_SOURCE);
    let first: Vec<String> = (0..10).map(|i| format!("first-{i}")).collect();
    assert_eq!(produce_values(&mut to_leader, "slow", -1, 15_000, &first), (0, 0));

    let leader_port: u16 = nodes[l].bootstrap().rsplit_once(':').unwrap().1.parse().unwrap();
    let cut = NetworkCut::links(&[(format!("127.0.0.{}", f + 1), format!("127.0.0.{}", l + 1), leader_port)]);
    let started = Instant::now();
    let second: Vec<String> = (0..10).map(|i| format!("second-{i}")).collect();
    assert_eq!(
        produce_values(&mut to_leader, "slow", -1, 15_000, &second),
        (0, 10),
        "acks=all without the stuck follower"
    );
    let took = started.elapsed();
    let (now_leader, now_epoch, now_isr) = partition0(&nodes[l], "slow");
    eprintln!("follower {} cut off from leader {leader}: acks=all answered after {took:?}, ISR {now_isr:?}", f + 1);
    assert_eq!((now_leader, now_epoch), (leader, epoch), "same leader, same epoch");
    assert!(!now_isr.contains(&(f as i32 + 1)), "the stuck follower left the ISR: {now_isr:?}");
    assert!(took >= Duration::from_millis(1400), "acks=all waited for the lag time first: {took:?}");
    let fenced = brokers_fenced(&all(&nodes));
    assert!(fenced.is_empty(), "nobody fenced (its heartbeats go on): {fenced:?}");

    drop(cut);
    until_back_in_sync(&nodes[l], &nodes[l], &nodes[f], "slow");

    // With `min.insync.replicas=3`, the same stall: the records go in with three in sync,
    // the ISR shrinks to two while acks=all waits, and the answer is
    // NOT_ENOUGH_REPLICAS_AFTER_APPEND (as Kafka's `checkEnoughReplicasReachOffset`); the next
    // produce is refused before appending, NOT_ENOUGH_REPLICAS.
    set_topic_config(&mut Client::connect_from(nodes[f].bootstrap(), TEST_SOURCE), "slow", "min.insync.replicas", "3");
    std::thread::sleep(Duration::from_millis(500)); // the leader's shards take the setting
    let cut = NetworkCut::links(&[(format!("127.0.0.{}", f + 1), format!("127.0.0.{}", l + 1), leader_port)]);
    let third: Vec<String> = (0..10).map(|i| format!("third-{i}")).collect();
    assert_eq!(produce_values(&mut to_leader, "slow", -1, 15_000, &third).0, 20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND");
    assert_eq!(produce_values(&mut to_leader, "slow", -1, 15_000, &third).0, 19, "NOT_ENOUGH_REPLICAS");
    drop(cut);
    until_back_in_sync(&nodes[l], &nodes[l], &nodes[f], "slow");
    assert_eq!(produce_values(&mut to_leader, "slow", -1, 15_000, &third), (0, 30), "three in sync again");
}

/// ElectLeaders v2 of `election_type` for partition 0 of `topic` (and partition 99, which
/// does not exist): the two error codes.
fn elect(node: &Node, topic: &str, election_type: i8) -> (i16, i16) {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
    let mut c = Client::connect_from(node.bootstrap(), TEST_SOURCE);
    let wanted = TopicPartitions::default().with_topic(support::wire::name(topic)).with_partitions(vec![0, 99]);
    let request = ElectLeadersRequest::default()
        .with_election_type(election_type)
        .with_topic_partitions(Some(vec![wanted]))
        .with_timeout_ms(15_000);
    c.send(ApiKey::ElectLeaders, 2, &request);
    let r: ElectLeadersResponse = c.recv(ApiKey::ElectLeaders, 2);
    assert_eq!(r.error_code, 0);
    let parts = &r.replica_election_results[0].partition_result;
    let code = |p: i32| parts.iter().find(|x| x.partition_id == p).map(|x| x.error_code).expect("answered");
    (code(0), code(99))
}

/// A partition's leader is killed and comes back in sync: leadership stays with the node
/// that took over (auto rebalance off here) until ElectLeaders (preferred) gives it back to
/// the preferred replica, in a new epoch; asked again, ELECTION_NOT_NEEDED; an unknown
/// partition, UNKNOWN_TOPIC_OR_PARTITION. With `auto.leader.rebalance.enable` the controller
/// does it by itself (the next test).
#[test]
fn elect_leaders_gives_a_partition_back_to_its_preferred_replica() {
    let voters = voters();
    let off = ["--set", "auto.leader.rebalance.enable=false"];
    let mut nodes: Vec<Node> = (1..=3).map(|i| start_node_with(i, &voters, 0, &off)).collect();
    settled(&all(&nodes));
    registered(&all(&nodes), &listeners(&all(&nodes)));
    assert_eq!(create_topic(&nodes[0], "pref", 1, 3), (0, String::new()));
    let (preferred, epoch, _) = partition0(&nodes[0], "pref");
    let p = preferred as usize - 1;
    let other = (p + 1) % 3;
    assert_eq!(elect(&nodes[other], "pref", 0), (84, 3), "ELECTION_NOT_NEEDED, UNKNOWN_TOPIC_OR_PARTITION");
    nodes[p].kill();
    until_led_elsewhere(&nodes[other], "pref", preferred);
    assert_eq!(elect(&nodes[other], "pref", 0).0, 80, "PREFERRED_LEADER_NOT_AVAILABLE while it is down");
    nodes[p].restart();
    let deadline = Instant::now() + SETTLE;
    while partition0(&nodes[other], "pref").2 != vec![1, 2, 3] {
        assert!(Instant::now() < deadline, "not back in sync: {:?}", partition0(&nodes[other], "pref"));
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let (leader, before, _) = partition0(&nodes[other], "pref");
    assert_ne!(leader, preferred, "no automatic move back when it is off");
    assert_eq!(elect(&nodes[other], "pref", 0), (0, 3));
    // Committed when answered; the node asked has it a moment later (its shards apply it).
    let deadline = Instant::now() + SETTLE;
    while partition0(&nodes[other], "pref").0 != preferred {
        assert!(Instant::now() < deadline, "the election did not reach node {}", other + 1);
        std::thread::sleep(Duration::from_millis(20));
    }
    let (leader, after, isr) = partition0(&nodes[other], "pref");
    assert_eq!((leader, isr), (preferred, vec![1, 2, 3]));
    assert!(after > before && before > epoch, "epochs {epoch} < {before} < {after}");
    assert_eq!(elect(&nodes[other], "pref", 0).0, 84);
    assert_eq!(elect(&nodes[other], "pref", 1).0, 84, "unclean: the leader is live");
}

/// `auto.leader.rebalance.enable` (Kafka's default) with a 1 s check: a preferred leader
/// that was killed and came back in sync leads its partition again without being asked.
#[test]
fn leadership_goes_back_to_the_preferred_replica_by_itself() {
    let voters = voters();
    let fast = ["--set", "leader.imbalance.check.interval.seconds=1"];
    let mut nodes: Vec<Node> = (1..=3).map(|i| start_node_with(i, &voters, 0, &fast)).collect();
    settled(&all(&nodes));
    registered(&all(&nodes), &listeners(&all(&nodes)));
    assert_eq!(create_topic(&nodes[0], "auto", 1, 3), (0, String::new()));
    let (preferred, _, _) = partition0(&nodes[0], "auto");
    let p = preferred as usize - 1;
    let other = (p + 1) % 3;
    nodes[p].kill();
    until_led_elsewhere(&nodes[other], "auto", preferred);
    nodes[p].restart();
    let back = Instant::now();
    let deadline = Instant::now() + SETTLE;
    loop {
        let (leader, _, isr) = partition0(&nodes[other], "auto");
        if leader == preferred && isr == vec![1, 2, 3] {
            break;
        }
        assert!(Instant::now() < deadline, "leadership not back: leader {leader}, ISR {isr:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("node {preferred} leads its preferred partition again {:?} after its restart", back.elapsed());
}

/// The metadata quorum snapshots its state and trims its log
/// (`metadata.log.snapshot.interval.records`, 20 here): a node down while 40 topics were
/// made and deleted is too far behind for the log the others kept, gets the snapshot
/// instead, and acts on it as on the records — it knows every topic, drops the deleted
/// one it held, and takes its part in a topic made after its return.
#[test]
fn a_node_far_behind_catches_up_from_a_snapshot_of_the_metadata_log() {
    let voters = voters();
    let small = ["--set", "metadata.log.snapshot.interval.records=20"];
    let mut nodes: Vec<Node> = (1..=3).map(|i| start_node_with(i, &voters, 0, &small)).collect();
    settled(&all(&nodes));
    registered(&all(&nodes), &listeners(&all(&nodes)));
    // A topic on every node, deleted while node 3 is away.
    assert_eq!(create_topic(&nodes[0], "doomed", 1, 3), (0, String::new()));
    until_holding(&nodes[2], 3, "doomed", &[0]);
    let behind = quorum(&nodes[2])["log_end_offset"].as_u64().expect("a log end");
    nodes[2].kill();
    let deadline = Instant::now() + SETTLE;
    while brokers_fenced(&all(&nodes[..2])) != vec![3] {
        assert!(Instant::now() < deadline, "node 3 not fenced");
        std::thread::sleep(Duration::from_millis(50));
    }
    {
        use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
        let mut c = Client::connect(nodes[0].bootstrap());
        let delete = DeleteTopicsRequest::default()
            .with_topic_names(vec![support::wire::name("doomed")])
            .with_timeout_ms(15_000);
        c.send(ApiKey::DeleteTopics, 5, &delete);
        let r: DeleteTopicsResponse = c.recv(ApiKey::DeleteTopics, 5);
        assert_eq!(r.responses[0].error_code, 0);
    }
    for i in 0..40 {
        assert_eq!(create_topic(&nodes[i % 2], &format!("snap-{i}"), 1, 1), (0, String::new()));
    }
    let snapshot = |n: &Node| n.data_dir().join("__cluster_metadata-0").join("snapshot");
    // The index a node's snapshot reaches (its log is trimmed up to 20 records before it).
    let snapshot_index = |n: &Node| -> u64 {
        let Ok(bytes) = std::fs::read(snapshot(n)) else { return 0 };
        let doc: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        doc["meta"]["last_log_id"]["index"].as_u64().unwrap_or(0)
    };
    let deadline = Instant::now() + SETTLE;
    // Past where node 3 stopped by more than the 20 records kept: it must be sent one.
    while (0..2).any(|i| snapshot_index(&nodes[i]) < behind + 25) {
        let seen: Vec<u64> = (0..2).map(|i| snapshot_index(&nodes[i])).collect();
        assert!(Instant::now() < deadline, "snapshots at {seen:?}, node 3 stopped at {behind}");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500)); // the trim follows the snapshot

    // The quorum's leader keeps what a follower still needs; the other live node trimmed
    // its log behind its snapshots. Node 3 comes back while the leader is down, so the
    // other one leads and has only the snapshot to give.
    let leader = quorum(&nodes[0])["leader_id"].as_i64().expect("a leader") as usize - 1;
    assert!(leader < 2, "node 3 is down");
    nodes[leader].kill();
    nodes[2].restart();
    let deadline = Instant::now() + SETTLE;
    loop {
        let known = (0..40).filter(|i| topic_metadata(&nodes[2], &format!("snap-{i}")).0 == 0).count();
        if known == 40 && partition_dirs(&nodes[2], "doomed").is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 3 knows {known} of 40 topics, holds doomed: {:?}",
            partition_dirs(&nodes[2], "doomed")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(snapshot(&nodes[2]).exists(), "node 3 keeps the snapshot it caught up from");
    assert!(nodes[2].logs(400).contains("caught up from a snapshot"), "node 3 was sent the snapshot");
    assert_eq!(topic_metadata(&nodes[2], "doomed").0, 3, "UNKNOWN_TOPIC_OR_PARTITION: deleted while it was away");
    nodes[leader].restart();
    registered(&all(&nodes), &listeners(&all(&nodes)));
    assert_eq!(create_topic(&nodes[2], "after", 1, 3), (0, String::new()));
    until_holding(&nodes[2], 3, "after", &[0]);
}

/// A coordinator that leads its internal partition but has not loaded it yet answers
/// COORDINATOR_LOAD_IN_PROGRESS, which clients wait out, never NOT_COORDINATOR (librdkafka
/// gives that to an application as an error): from the first FindCoordinator of a fresh
/// cluster — which creates __consumer_offsets — every OffsetFetch to the node it names is
/// answered 0 or 14.
#[test]
fn a_coordinator_still_loading_answers_load_in_progress_not_not_coordinator() {
    use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse, GroupId};
    use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};
    let nodes = cluster();
    let mut c = Client::connect(nodes[0].bootstrap());
    let deadline = Instant::now() + SETTLE;
    let (host, port) = loop {
        let request =
            FindCoordinatorRequest::default().with_key(kafka_protocol::protocol::StrBytes::from_static_str("early"));
        c.send(ApiKey::FindCoordinator, 3, &request);
        let r: FindCoordinatorResponse = c.recv(ApiKey::FindCoordinator, 3);
        if r.error_code == 0 {
            break (r.host.to_string(), r.port);
        }
        assert!(Instant::now() < deadline, "no coordinator: {:?}", r.error_message);
    };
    let mut coordinator = Client::connect(&format!("{host}:{port}"));
    let mut codes = Vec::new();
    loop {
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(kafka_protocol::protocol::StrBytes::from_static_str("early")));
        coordinator.send(ApiKey::OffsetFetch, 7, &request);
        let r: OffsetFetchResponse = coordinator.recv(ApiKey::OffsetFetch, 7);
        codes.push(r.error_code);
        if r.error_code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "never loaded: {codes:?}");
    }
    assert!(codes.iter().all(|&c| c == 0 || c == 14), "answers from the named coordinator: {codes:?}");
    eprintln!("OffsetFetch answers while the coordinator loaded: {} × 14, then 0", codes.len() - 1);
}

/// Disk full on one replica: a follower whose writes fail with ENOSPC (the node's fault
/// switch, `SLUICE_FAULT_DIR`) stops taking what it fetches, leaves the ISR after
/// `replica.lag.time.max.ms`, and acks=all goes on through the two others; once it has room
/// again it catches up, re-enters the ISR and holds the leader's log byte for byte. The
/// leader's DeleteRecords (its log start) then reaches the followers too.
#[test]
fn a_follower_whose_disk_is_full_leaves_the_isr_and_returns_when_it_has_room() {
    let voters = voters();
    let lag = ["--set", "replica.lag.time.max.ms=1500"];
    let faults: Vec<sluice::testing::TempDir> = (0..3).map(|_| sluice::testing::TempDir::new("fault")).collect();
    let nodes: Vec<Node> = (1..=3)
        .map(|i| {
            // Each node reads its own fault directory once, at start (nextest runs one test
            // per process, so the variable reaches only these children).
            std::env::set_var("SLUICE_FAULT_DIR", faults[i - 1].path());
            let node = start_node_with(i, &voters, 0, &lag);
            std::env::remove_var("SLUICE_FAULT_DIR");
            node
        })
        .collect();
    settled(&all(&nodes));
    registered(&all(&nodes), &listeners(&all(&nodes)));
    assert_eq!(create_topic(&nodes[0], "full", 1, 3), (0, String::new()));
    until_topic_ready(&nodes, "full", 1, 3); // every node has it, the leader too
    let (leader, _, isr) = partition0(&nodes[0], "full");
    assert_eq!(isr, vec![1, 2, 3]);
    let l = leader as usize - 1;
    let f = (l + 2) % 3;
    let mut to_leader = Client::connect_from(nodes[l].bootstrap(), TEST_SOURCE);
    let first: Vec<String> = (0..10).map(|i| format!("first-{i}")).collect();
    assert_eq!(produce_values(&mut to_leader, "full", -1, 15_000, &first), (0, 0));

    std::fs::write(faults[f].path().join("write"), "ENOSPC").unwrap();
    let second: Vec<String> = (0..10).map(|i| format!("second-{i}")).collect();
    assert_eq!(
        produce_values(&mut to_leader, "full", -1, 15_000, &second),
        (0, 10),
        "acks=all without the full replica"
    );
    let (_, _, isr) = partition0(&nodes[l], "full");
    assert!(!isr.contains(&(f as i32 + 1)), "the full replica left the ISR: {isr:?}");
    assert!(brokers_fenced(&all(&nodes)).is_empty(), "nobody fenced");
    assert!(nodes[f].logs(200).contains("No space left"), "the follower said why: {}", nodes[f].logs(20));

    std::fs::remove_file(faults[f].path().join("write")).unwrap();
    until_back_in_sync(&nodes[l], &nodes[l], &nodes[f], "full");

    // DeleteRecords below 15 on the leader: every replica's log start follows.
    {
        use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
        use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
        let part = DeleteRecordsPartition::default().with_partition_index(0).with_offset(15);
        let topic = DeleteRecordsTopic::default().with_name(support::wire::name("full")).with_partitions(vec![part]);
        let request = DeleteRecordsRequest::default().with_topics(vec![topic]).with_timeout_ms(15_000);
        to_leader.send(ApiKey::DeleteRecords, 2, &request);
        let r: DeleteRecordsResponse = to_leader.recv(ApiKey::DeleteRecords, 2);
        assert_eq!((r.topics[0].partitions[0].error_code, r.topics[0].partitions[0].low_watermark), (0, 15));
    }
    let log_start = |n: &Node| -> Option<i64> {
        let (_, text) = http_get(n.admin().expect("an admin listener"), "/metrics");
        text.lines()
            .filter(|l| l.starts_with("sluice_partition_log_start_offset{"))
            .find(|l| l.contains("topic=\"full\"") && l.contains("partition=\"0\""))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as i64)
    };
    // The one more record makes the followers fetch (and learn the log start) now.
    assert_eq!(produce_values(&mut to_leader, "full", -1, 15_000, &["third".to_string()]), (0, 20));
    let deadline = Instant::now() + Duration::from_secs(90);
    while (0..3).any(|i| log_start(&nodes[i]) != Some(15)) {
        let seen: Vec<Option<i64>> = nodes.iter().map(log_start).collect();
        assert!(Instant::now() < deadline, "log starts (from /metrics): {seen:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The cluster-wide broker default (IncrementalAlterConfigs on BROKER "", as
/// `kafka-configs --entity-default --entity-type brokers` sends it) goes through the metadata
/// log: set through one node, every node describes it as DYNAMIC_DEFAULT_BROKER_CONFIG, and a
/// node that was down meanwhile has it after its restart. So does a broker's own layer.
#[test]
fn the_cluster_wide_broker_default_reaches_every_node() {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
    use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
    let s = |v: &str| kafka_protocol::protocol::StrBytes::from_string(v.to_string());
    let mut nodes = cluster();
    nodes[2].kill();
    let mut c = Client::connect(nodes[0].bootstrap());
    let config = AlterableConfig::default()
        .with_name(s("message.max.bytes"))
        .with_config_operation(0)
        .with_value(Some(s("2000000")));
    let resource =
        AlterConfigsResource::default().with_resource_type(4).with_resource_name(s("")).with_configs(vec![config]);
    c.send(
        ApiKey::IncrementalAlterConfigs,
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![resource]),
    );
    let r: IncrementalAlterConfigsResponse = c.recv(ApiKey::IncrementalAlterConfigs, 1);
    assert_eq!(r.responses[0].error_code, 0, "{:?}", r.responses[0].error_message);
    // (value, source) of message.max.bytes as node `i` (0-based) describes itself.
    let described = |i: usize, node: &Node| -> (String, i8) {
        let mut c = Client::connect(node.bootstrap());
        let resource = DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(s(&(i + 1).to_string()))
            .with_configuration_keys(Some(vec![s("message.max.bytes")]));
        c.send(ApiKey::DescribeConfigs, 4, &DescribeConfigsRequest::default().with_resources(vec![resource]));
        let r: DescribeConfigsResponse = c.recv(ApiKey::DescribeConfigs, 4);
        let e = &r.results[0].configs[0];
        (e.value.as_ref().map(|v| v.to_string()).unwrap_or_default(), e.config_source)
    };
    let want = ("2000000".to_string(), 3);
    for (i, node) in nodes.iter().enumerate().take(2) {
        let deadline = Instant::now() + SETTLE;
        while described(i, node) != want {
            assert!(Instant::now() < deadline, "node {}: {:?}", i + 1, described(i, node));
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    nodes[2].restart();
    let deadline = Instant::now() + SETTLE;
    while described(2, &nodes[2]) != want {
        assert!(Instant::now() < deadline, "node 3 after its restart: {:?}", described(2, &nodes[2]));
        std::thread::sleep(Duration::from_millis(50));
    }

    // A broker's own layer (BROKER "2", as `kafka-configs --entity-name 2` sends it to node
    // 2) is in the metadata log too: node 2 has it back after a restart with its local copy
    // gone, and the others keep the default.
    let config = AlterableConfig::default()
        .with_name(s("message.max.bytes"))
        .with_config_operation(0)
        .with_value(Some(s("3000000")));
    let resource =
        AlterConfigsResource::default().with_resource_type(4).with_resource_name(s("2")).with_configs(vec![config]);
    let mut c = Client::connect(nodes[1].bootstrap());
    c.send(
        ApiKey::IncrementalAlterConfigs,
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![resource]),
    );
    let r: IncrementalAlterConfigsResponse = c.recv(ApiKey::IncrementalAlterConfigs, 1);
    assert_eq!(r.responses[0].error_code, 0, "{:?}", r.responses[0].error_message);
    let own = ("3000000".to_string(), 2); // DYNAMIC_BROKER_CONFIG
    assert_eq!(described(1, &nodes[1]), own, "in force when answered");
    nodes[1].kill();
    let file = nodes[1].data_dir().join("broker-configs").join("broker.properties");
    assert!(std::fs::read_to_string(&file).unwrap().contains("3000000"));
    std::fs::remove_file(&file).unwrap();
    nodes[1].restart();
    let deadline = Instant::now() + SETTLE;
    while described(1, &nodes[1]) != own {
        assert!(Instant::now() < deadline, "node 2 after its restart: {:?}", described(1, &nodes[1]));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(described(0, &nodes[0]), want, "node 1 keeps the default");
    assert_eq!(described(2, &nodes[2]), want, "node 3 keeps the default");
}

/// AlterPartitionReassignments (v1) from a raw client: (partition, target or None to
/// cancel) each; the error code per partition, in the order asked.
fn reassign(node: &Node, topic: &str, moves: &[(i32, Option<Vec<i32>>)], allow_rf_change: bool) -> Vec<i16> {
    use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
    use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse};
    let mut codes = Vec::new();
    // One request per partition: a request names each partition once.
    for (p, target) in moves {
        let mut c = Client::connect_from(node.bootstrap(), TEST_SOURCE);
        let partition = ReassignablePartition::default()
            .with_partition_index(*p)
            .with_replicas(target.as_ref().map(|t| t.iter().map(|&b| BrokerId(b)).collect()));
        let wanted =
            ReassignableTopic::default().with_name(support::wire::name(topic)).with_partitions(vec![partition]);
        let request = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(15_000)
            .with_allow_replication_factor_change(allow_rf_change)
            .with_topics(vec![wanted]);
        c.send(ApiKey::AlterPartitionReassignments, 1, &request);
        let r: AlterPartitionReassignmentsResponse = c.recv(ApiKey::AlterPartitionReassignments, 1);
        assert_eq!(r.error_code, 0, "{:?}", r.error_message);
        codes.push(r.responses[0].partitions[0].error_code);
    }
    codes
}

/// Waits until `gone` is fenced: out of the brokers `watchers` list, and not the
/// controller (kafka-python sends its admin requests to the controller, and its first
/// Metadata to any broker listed, without trying another).
fn until_unlisted(watchers: &[&Node], gone: i32) {
    support::wait_for("a killed node to be fenced", SETTLE, String::new, || {
        watchers.iter().all(|w| {
            let (brokers, controller, _) = metadata(w);
            controller != gone && brokers.iter().all(|b| b.0 != gone as i64)
        })
    });
}

/// kafka-python's list_partition_reassignments through `node`: "topic/p" → (replicas,
/// adding, removing).
fn ongoing_moves(node: &Node) -> Vec<(String, Vec<i64>, Vec<i64>, Vec<i64>)> {
    let v = support::py_json(node, "reassign_admin.py", &["--bootstrap", node.bootstrap()]);
    let ids = |x: &Value| x.as_array().unwrap().iter().map(|b| b.as_i64().unwrap()).collect::<Vec<_>>();
    let mut out: Vec<_> = v["ongoing"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(tp, m)| (tp.clone(), ids(&m["replicas"]), ids(&m["adding_replicas"]), ids(&m["removing_replicas"])))
        .collect();
    out.sort();
    out
}

/// kafka-python's alter_partition_reassignments of partition 0 of `topic` through `node`:
/// None when accepted, else the error class's name.
fn py_reassign(node: &Node, topic: &str, target: Option<&[i32]>) -> Value {
    let replicas = target.map(|t| t.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(","));
    let mut args = vec!["--bootstrap".to_string(), node.bootstrap().to_string(), "--topic".into(), topic.into()];
    match replicas {
        Some(r) => args.extend(["--replicas".to_string(), r]),
        None => args.push("--cancel".into()),
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    support::py_json(node, "reassign_admin.py", &args)["result"].clone()
}

/// Issue #15 Build 4, reassignments (KIP-455), as `kafka-reassign-partitions.sh` and the
/// admin clients drive them. A partition with two replicas, one of them its leader, is moved
/// off that leader to the third node:
/// - bad requests get Kafka's codes: an unknown broker, an empty or doubled replica list
///   (INVALID_REPLICA_ASSIGNMENT), an unknown partition (UNKNOWN_TOPIC_OR_PARTITION), a
///   cancellation with nothing to cancel (NO_REASSIGNMENT_IN_PROGRESS), a changed
///   replication factor with `allow_replication_factor_change` false (INVALID_REPLICATION_FACTOR);
/// - with the third node down the move waits, listed with its adding and removing replicas,
///   while acks=all goes on through the old replicas; cancelled, the partition is as before;
/// - moved with the node back, the newcomer copies the log, the move ends by itself, the
///   newcomer leads in a later epoch, the old leader deletes its copy, the newcomer's log is
///   the remaining replica's byte for byte, and every record is there once.
#[test]
fn a_partition_reassigned_off_its_leader_moves_whole_and_a_waiting_move_can_be_cancelled() {
    let voters = voters();
    let mut nodes: Vec<Node> = (1..=3).map(|i| start_node(i, &voters)).collect();
    settled(&all(&nodes));
    registered(&all(&nodes), &listeners(&all(&nodes)));
    assert_eq!(create_topic(&nodes[0], "moving", 1, 2), (0, String::new()));
    let before = until_topic_ready(&nodes, "moving", 1, 2)[0].clone();
    let leaving = before.leader;
    let staying = *before.replicas.iter().find(|&&r| r != leaving).unwrap();
    let newcomer = (1..=3).find(|n| !before.replicas.contains(n)).unwrap();
    let (l, s, n) = (leaving as usize - 1, staying as usize - 1, newcomer as usize - 1);
    let lines: Vec<String> = (0..300).map(|i| format!("k{i}:v{i}")).collect();
    produce_all(&bootstrap(&nodes), "moving", &lines[..100], &nodes[s]);

    let bad = reassign(
        &nodes[s],
        "moving",
        &[
            (0, Some(vec![9, staying])),
            (0, Some(vec![])),
            (0, Some(vec![staying, staying])),
            (7, Some(vec![1])),
            (0, None),
        ],
        true,
    );
    assert_eq!(bad, vec![39, 39, 39, 3, 85]);
    assert_eq!(reassign(&nodes[s], "moving", &[(0, Some(vec![newcomer]))], false), vec![38]);

    nodes[n].kill();
    until_unlisted(&[&nodes[l], &nodes[s]], newcomer);
    assert_eq!(py_reassign(&nodes[s], "moving", Some(&[newcomer, staying])), Value::Null);
    let pending = (
        "moving/0".to_string(),
        vec![newcomer as i64, staying as i64, leaving as i64],
        vec![newcomer as i64],
        vec![leaving as i64],
    );
    support::wait_for(
        "the move listed on the nodes up",
        SETTLE,
        || format!("{:?}", ongoing_moves(&nodes[l])),
        || ongoing_moves(&nodes[l]) == vec![pending.clone()] && ongoing_moves(&nodes[s]) == vec![pending.clone()],
    );
    produce_all(&bootstrap(&nodes), "moving", &lines[100..150], &nodes[s]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(ongoing_moves(&nodes[s]), vec![pending], "it waits for the newcomer");
    assert_eq!(py_reassign(&nodes[l], "moving", None), Value::Null, "cancelled");
    support::wait_for(
        "the cancellation applied",
        SETTLE,
        || format!("{:?}", topic_partitions(&nodes[s], "moving")),
        || {
            ongoing_moves(&nodes[s]).is_empty()
                && topic_partitions(&nodes[s], "moving").1[0].replicas == before.replicas
        },
    );
    assert_eq!(py_reassign(&nodes[s], "moving", None), Value::from("NoReassignmentInProgressError"));
    assert_eq!(topic_partitions(&nodes[s], "moving").1[0].leader, leaving, "the leader stays through a cancellation");

    let moved = Instant::now();
    assert_eq!(reassign(&nodes[l], "moving", &[(0, Some(vec![newcomer, staying]))], false), vec![0]);
    nodes[n].restart();
    produce_all(&bootstrap(&nodes), "moving", &lines[150..], &nodes[s]);
    let mut target = vec![newcomer, staying];
    target.sort();
    support::wait_for(
        "the move to end",
        SETTLE,
        || format!("{:?}", topic_partitions(&nodes[s], "moving")),
        || {
            let p = &topic_partitions(&nodes[s], "moving").1[0];
            p.replicas == target && p.isr == target && p.leader == newcomer && ongoing_moves(&nodes[s]).is_empty()
        },
    );
    eprintln!("the move ended {:?} after it was asked for, the newcomer restarted meanwhile", moved.elapsed());
    let after = topic_partitions(&nodes[s], "moving").1[0].clone();
    assert!(after.leader_epoch > before.leader_epoch, "epochs {} -> {}", before.leader_epoch, after.leader_epoch);
    let old_copy = nodes[l].data_dir().join("moving-0");
    support::wait_for("the old leader to delete its copy", SETTLE, || format!("{old_copy:?}"), || !old_copy.exists());
    let reference = segment_bytes(&nodes[s], "moving", 0);
    assert!(!reference.is_empty());
    support::wait_for("the newcomer's log to be the other replica's", SETTLE, String::new, || {
        segment_bytes(&nodes[n], "moving", 0) == reference
    });
    let mut expected = lines.clone();
    expected.sort();
    assert_eq!(consume_all(&bootstrap(&nodes), "moving", &nodes[s]), expected);

    // Moved off a node that is down: it deletes its copy when it is back and has caught up
    // with the metadata log (not before: what it replays first is older than its copy).
    nodes[s].kill();
    until_unlisted(&[&nodes[l], &nodes[n]], staying);
    assert_eq!(py_reassign(&nodes[n], "moving", Some(&[newcomer, leaving])), Value::Null);
    let mut target = vec![newcomer, leaving];
    target.sort();
    support::wait_for(
        "the second move to end",
        SETTLE,
        || format!("{:?}", topic_partitions(&nodes[n], "moving")),
        || {
            let p = &topic_partitions(&nodes[n], "moving").1[0];
            p.replicas == target && p.isr == target && ongoing_moves(&nodes[n]).is_empty()
        },
    );
    let stale_copy = nodes[s].data_dir().join("moving-0");
    assert!(stale_copy.exists());
    nodes[s].restart();
    support::wait_for(
        "the returning node to delete its copy",
        SETTLE,
        || format!("{stale_copy:?}"),
        || !stale_copy.exists(),
    );
    let reference = segment_bytes(&nodes[n], "moving", 0);
    support::wait_for("the re-added node's log to be the leader's", SETTLE, String::new, || {
        segment_bytes(&nodes[l], "moving", 0) == reference
    });
    assert_eq!(consume_all(&bootstrap(&nodes), "moving", &nodes[n]), expected);
}

/// The stored batches of partition 0 of `topic` in `node`'s segment files that hold an
/// offset at or past `from`, whole and in offset order (a batch still being written is left
/// out).
fn batches_from(node: &Node, topic: &str, p: i32, from: i64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (_, bytes) in segment_bytes(node, topic, p) {
        let mut rest = &bytes[..];
        while let Some(h) = sluice::log::batch::BatchHeader::read(rest) {
            let size = h.size_bytes();
            if size > rest.len() {
                break;
            }
            if h.last_offset() >= from {
                out.push(rest[..size].to_vec());
            }
            rest = &rest[size..];
        }
    }
    out
}

/// A follower SIGKILLed, out of the ISR, while its leader deletes records past the
/// follower's log end (DeleteRecords), comes back below the leader's log start. The leader
/// answers its fetch OFFSET_OUT_OF_RANGE with its log start and high watermark; the
/// follower starts its log again, empty, at the leader's log start (Kafka's
/// truncateFullyAndStartAt) — that log start lies inside a batch, so at that batch — copies
/// on from there, re-enters the ISR, takes acks=all records again, and holds from the log
/// start on exactly what the leader holds, with the same log start.
#[test]
fn a_follower_back_below_the_leaders_log_start_starts_again_there_and_returns_to_the_isr() {
    use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, FetchRequest, FetchResponse};
    let voters = voters();
    let lag = ["--set", "replica.lag.time.max.ms=1500"];
    let mut nodes: Vec<Node> = (1..=3).map(|i| start_node_with(i, &voters, 0, &lag)).collect();
    settled(&all(&nodes));
    registered(&all(&nodes), &listeners(&all(&nodes)));
    assert_eq!(create_topic(&nodes[0], "behind", 1, 3), (0, String::new()));
    until_topic_ready(&nodes, "behind", 1, 3); // every node has it, the leader too
    let (leader, _, isr) = partition0(&nodes[0], "behind");
    assert_eq!(isr, vec![1, 2, 3]);
    let l = leader as usize - 1;
    let f = (l + 1) % 3;
    let follower = f as i32 + 1;
    let mut to_leader = Client::connect_from(nodes[l].bootstrap(), TEST_SOURCE);
    // One batch of ten records each: acks=all, so the follower holds 0-19.
    let batch_of = |b: i64| -> Vec<String> { (0..10).map(|i| format!("batch-{b}-record-{i}")).collect() };
    for b in 0..2 {
        assert_eq!(produce_values(&mut to_leader, "behind", -1, 15_000, &batch_of(b)), (0, 10 * b));
    }

    nodes[f].kill();
    let deadline = Instant::now() + SETTLE;
    while partition0(&nodes[l], "behind").2.contains(&follower) {
        assert!(Instant::now() < deadline, "the killed follower is still in the ISR");
        std::thread::sleep(Duration::from_millis(100));
    }
    for b in 2..5 {
        assert_eq!(produce_values(&mut to_leader, "behind", -1, 15_000, &batch_of(b)), (0, 10 * b));
    }
    // DeleteRecords below 35: inside the batch 30-39, past the follower's log end (20).
    let part = DeleteRecordsPartition::default().with_partition_index(0).with_offset(35);
    let topic = DeleteRecordsTopic::default().with_name(support::wire::name("behind")).with_partitions(vec![part]);
    let request = DeleteRecordsRequest::default().with_topics(vec![topic]).with_timeout_ms(15_000);
    to_leader.send(ApiKey::DeleteRecords, 2, &request);
    let r: DeleteRecordsResponse = to_leader.recv(ApiKey::DeleteRecords, 2);
    assert_eq!((r.topics[0].partitions[0].error_code, r.topics[0].partitions[0].low_watermark), (0, 35));

    // What the follower will be told, asked as it will ask (Fetch v12, its replica id, from
    // its log end, its last epoch): out of range, with the leader's log start and end.
    let (_, epoch, _) = partition0(&nodes[l], "behind");
    let part = FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(20)
        .with_current_leader_epoch(-1)
        .with_last_fetched_epoch(epoch)
        .with_log_start_offset(-1)
        .with_partition_max_bytes(1 << 20);
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(follower))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default().with_topic(support::wire::name("behind")).with_partitions(vec![part])]);
    to_leader.send(ApiKey::Fetch, 12, &request);
    let r: FetchResponse = to_leader.recv(ApiKey::Fetch, 12);
    let p = &r.responses[0].partitions[0];
    assert_eq!((p.error_code, p.log_start_offset, p.high_watermark), (1, 35, 50), "OFFSET_OUT_OF_RANGE, 35, 50");

    nodes[f].restart();
    let deadline = Instant::now() + SETTLE;
    while partition0(&nodes[l], "behind").2 != vec![1, 2, 3] {
        assert!(
            Instant::now() < deadline,
            "the follower is not back in the ISR: {:?}\n{}",
            partition0(&nodes[l], "behind"),
            nodes[f].logs(20)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let said = nodes[f].logs(200);
    assert!(said.contains("below the leader's log start 35"), "it said why: {}", nodes[f].logs(20));
    assert!(said.contains("first batch begins at 30"), "and where it starts: {}", nodes[f].logs(20));
    // In sync again: acks=all needs it.
    assert_eq!(produce_values(&mut to_leader, "behind", -1, 15_000, &batch_of(5)), (0, 50));

    let log_start = |n: &Node| -> Option<i64> {
        let (_, text) = http_get(n.admin().expect("an admin listener"), "/metrics");
        text.lines()
            .filter(|l| l.starts_with("sluice_partition_log_start_offset{"))
            .find(|l| l.contains("topic=\"behind\"") && l.contains("partition=\"0\""))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as i64)
    };
    let deadline = Instant::now() + SETTLE;
    loop {
        let starts: Vec<Option<i64>> = nodes.iter().map(log_start).collect();
        let reference = batches_from(&nodes[l], "behind", 0, 35);
        let copies: Vec<Vec<Vec<u8>>> = nodes.iter().map(|n| batches_from(n, "behind", 0, 35)).collect();
        if starts.iter().all(|s| *s == Some(35)) && copies.iter().all(|c| *c == reference) {
            assert_eq!(reference.len(), 3, "the batches 30-39, 40-49 and 50-59");
            break;
        }
        let lens: Vec<usize> = copies.iter().map(Vec::len).collect();
        assert!(Instant::now() < deadline, "log starts {starts:?}, batches from 35 on {lens:?} (leader {leader})");
        std::thread::sleep(Duration::from_millis(100));
    }
    let files: Vec<String> = segment_bytes(&nodes[f], "behind", 0).into_iter().map(|(name, _)| name).collect();
    assert_eq!(files, vec!["00000000000000000030.log".to_string()], "nothing of its old log is left");
}
