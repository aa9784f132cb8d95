//! The node's own behaviour seen from outside: shards and the layout view, both fetch
//! paths, the admin endpoint, and settings.

mod support;

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;
use support::{check, kcat, run, Node};

/// GET on the admin endpoint; returns the body.
fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("admin endpoint reachable");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

/// Sum of a Prometheus counter over all its label sets.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn produce_lines(node: &Node, topic: &str, lines: &[String]) {
    let mut cmd = Command::new(kcat());
    cmd.args(["-b", node.bootstrap(), "-P", "-t", topic, "-K:", "-X", "acks=all"]);
    let out = run(cmd, Some(lines.join("\n").into_bytes()), Duration::from_secs(60));
    check(&out, "kcat produce", node);
}

fn consume_all(node: &Node, topic: &str) -> Vec<(i32, i64, String, String)> {
    let mut cmd = Command::new(kcat());
    cmd.args(["-b", node.bootstrap(), "-C", "-t", topic, "-e", "-o", "beginning", "-f", "%p %o %k %s\n"]);
    let out = run(cmd, None, Duration::from_secs(60));
    check(&out, "kcat consume", node);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(4, ' ');
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?, f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect()
}

/// With `--cores 0-1` a topic's partitions sit on both shards (admin /layout says which),
/// and one kcat connection produces to and fetches from all of them.
#[test]
fn partitions_spread_over_two_shards_and_one_connection_reaches_both() {
    let node = Node::start(&["--cores", "0-1", "--set", "num.partitions=6"]);
    assert_eq!(node.shards(), 2);
    let lines: Vec<String> = (0..3000).map(|i| format!("key-{}:value-{i}", i % 97)).collect();
    produce_lines(&node, "spread", &lines);
    let got = consume_all(&node, "spread");
    assert_eq!(got.len(), 3000, "every message comes back");
    let layout = http_get(node.admin().unwrap(), "/layout");
    let shard_of = |p: i32| -> usize {
        let needle = format!("\"topic\":\"spread\",\"partition\":{p},\"shard\":");
        let at = layout.find(&needle).unwrap_or_else(|| panic!("partition {p} in {layout}")) + needle.len();
        layout[at..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    let shards: std::collections::BTreeSet<usize> = (0..6).map(shard_of).collect();
    assert_eq!(shards.len(), 2, "partitions on both shards: {layout}");
    for p in 0..6 {
        let n = got.iter().filter(|m| m.0 == p).count();
        assert!(n > 0, "partition {p} (shard {}) got messages", shard_of(p));
    }
    let metrics = http_get(node.admin().unwrap(), "/metrics");
    assert!(metric(&metrics, "sluice_fetch_zero_copy_bytes_total") > 0, "sendfile is the default: {metrics}");
    let syncs = metric(&metrics, "sluice_partition_sync_rounds_total");
    assert!(syncs > 0 && syncs < 3000, "acks=all group commits are counted, fewer than the messages: {syncs}");
}

/// Every `fetch.send.method` (sendfile, splice, copy) delivers byte-identical records, across
/// shards too, and counts its bytes as zero-copy or copied.
#[test]
fn every_fetch_send_method_delivers_identical_records() {
    for method in ["sendfile", "splice", "copy"] {
        let setting = format!("fetch.send.method={method}");
        let node = Node::start(&["--cores", "0-1", "--set", "num.partitions=4", "--set", &setting]);
        let lines: Vec<String> = (0..2000).map(|i| format!("k{}:{}", i % 31, "x".repeat(i % 700))).collect();
        produce_lines(&node, "zc", &lines);
        let got = consume_all(&node, "zc");
        assert_eq!(got.len(), 2000, "{method}");
        let mut sent: Vec<(String, String)> =
            lines.iter().map(|l| l.split_once(':').map(|(k, v)| (k.to_string(), v.to_string())).unwrap()).collect();
        let mut received: Vec<(String, String)> = got.into_iter().map(|(_, _, k, v)| (k, v)).collect();
        sent.sort();
        received.sort();
        assert_eq!(sent, received, "{method}");
        let metrics = http_get(node.admin().unwrap(), "/metrics");
        let (zero_copy, copied) = (
            metric(&metrics, "sluice_fetch_zero_copy_bytes_total"),
            metric(&metrics, "sluice_fetch_copied_bytes_total"),
        );
        match method {
            "copy" => assert!(zero_copy == 0 && copied > 0, "{method}: {metrics}"),
            "splice" => assert!(zero_copy > 0 && copied == 0, "{method}: {metrics}"),
            _ => assert!(zero_copy > 0, "{method}: {metrics}"),
        }
    }
}

/// Unknown settings and bad flags stop the node at start with a message naming them.
#[test]
fn bad_settings_are_refused_at_start() {
    let bin = std::env::var("SLUICE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_sluice").to_string());
    for (args, expect) in [
        (vec!["--set", "num.partition=3"], "unknown setting"),
        (vec!["--set", "num.partitions=zero"], "not a valid number"),
        (vec!["--cores", "3-1"], "--cores"),
        (vec!["--frobnicate"], "unknown argument"),
    ] {
        let mut cmd = Command::new(&bin);
        cmd.args(&args).arg("--data-dir").arg("/nonexistent/never");
        let out = run(cmd, None, Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
}

/// `advertised.listeners` (Kafka's name and form): clients are told the advertised address,
/// not the bound one, in Metadata, FindCoordinator and DescribeCluster; 0.0.0.0 is refused
/// at start, as Kafka refuses it.
#[test]
fn advertised_listeners_is_the_address_clients_are_given() {
    use kafka_protocol::messages::{
        ApiKey, DescribeClusterRequest, DescribeClusterResponse, FindCoordinatorRequest, FindCoordinatorResponse,
        MetadataRequest, MetadataResponse,
    };
    use kafka_protocol::protocol::StrBytes;
    use support::wire::Client;
    let node = Node::start(&["--cores", "0-1", "--set", "advertised.listeners=PLAINTEXT://sluice.example:19092"]);
    let mut c = Client::connect(node.bootstrap());
    c.send(ApiKey::Metadata, 9, &MetadataRequest::default().with_topics(None));
    let meta: MetadataResponse = c.recv(ApiKey::Metadata, 9);
    let brokers: Vec<(String, i32)> = meta.brokers.iter().map(|b| (b.host.to_string(), b.port)).collect();
    assert_eq!(brokers, [("sluice.example".to_string(), 19092)]);
    let find = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g")).with_key_type(0);
    c.send(ApiKey::FindCoordinator, 3, &find);
    let coordinator: FindCoordinatorResponse = c.recv(ApiKey::FindCoordinator, 3);
    assert_eq!(coordinator.error_code, 0);
    assert_eq!((coordinator.host.to_string(), coordinator.port), ("sluice.example".to_string(), 19092));
    c.send(ApiKey::DescribeCluster, 0, &DescribeClusterRequest::default());
    let cluster: DescribeClusterResponse = c.recv(ApiKey::DescribeCluster, 0);
    let brokers: Vec<(String, i32)> = cluster.brokers.iter().map(|b| (b.host.to_string(), b.port)).collect();
    assert_eq!(brokers, [("sluice.example".to_string(), 19092)]);

    let mut refused = support::sluice_command();
    refused.args(["--listen", "127.0.0.1:0", "--admin", "off", "--set", "advertised.listeners=0.0.0.0:9092"]);
    refused.arg("--data-dir").arg(node.data_dir().join("other"));
    let out = run(refused, None, Duration::from_secs(20));
    assert!(!out.status.success(), "started with 0.0.0.0 advertised");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("advertised.listeners"), "{err}");
}
