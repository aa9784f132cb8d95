//! Log compaction through real clients: a keyed topic with updates and tombstones is
//! compacted down to the latest value per key at its original offset, tombstones go after
//! `delete.retention.ms`, confluent-kafka and kafka-python read the compacted log from the
//! start, records without a key are refused, and SIGKILLs while the cleaner works lose no
//! key's latest acknowledged value.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::json::{self, Json, Value};
use support::{free_port, py_json_timeout, wait_for, Bg, Node};

const TIMEOUT: Duration = Duration::from_secs(120);

fn create_compacted(node: &Node, topic: &str, partitions: i32, configs: &[&str]) {
    let n = partitions.to_string();
    let mut args = vec!["--bootstrap", node.bootstrap(), "--topic", topic, "--partitions", &n];
    for c in configs {
        args.extend_from_slice(&["--config", c]);
    }
    let v = py_json_timeout(node, "prod_create_topic.py", &args, TIMEOUT);
    assert!(v["error"].is_null(), "creating {topic}: {v}\n{}", node.logs(30));
}

fn produce(node: &Node, topic: &str, extra: &[&str]) -> Vec<(String, Option<String>, i64, i64)> {
    let mut args = vec!["produce", "--bootstrap", node.bootstrap(), "--topic", topic];
    args.extend_from_slice(extra);
    let out = py_json_timeout(node, "compact_io.py", &args, TIMEOUT);
    assert_eq!(out["unacked"].i64(), 0, "every record acknowledged: {}\n{}", out["errors"], node.logs(20));
    out["acks"].arr().iter().map(ack).collect()
}

fn ack(a: &Value) -> (String, Option<String>, i64, i64) {
    let a = a.arr();
    (a[0].str().to_string(), a[1].opt_str().map(str::to_string), a[2].i64(), a[3].i64())
}

/// Every record of the topic from the log start: (partition, offset, key, value).
fn consume(node: &Node, topic: &str, client: &str) -> Vec<(i64, i64, String, Option<String>)> {
    let args = ["consume", "--bootstrap", node.bootstrap(), "--topic", topic, "--client", client, "--timeout", "60"];
    let out = py_json_timeout(node, "compact_io.py", &args, TIMEOUT);
    out["records"]
        .arr()
        .iter()
        .map(|r| {
            let r = r.arr();
            (r[0].i64(), r[1].i64(), r[2].str().to_string(), r[3].opt_str().map(str::to_string))
        })
        .collect()
}

/// The latest acknowledged (partition, offset, value) of every key.
fn latest_acked(acks: &[(String, Option<String>, i64, i64)]) -> BTreeMap<String, (i64, i64, Option<String>)> {
    let mut m: BTreeMap<String, (i64, i64, Option<String>)> = BTreeMap::new();
    for (k, v, p, o) in acks {
        if m.get(k).is_none_or(|(_, at, _)| *o > *at) {
            m.insert(k.clone(), (*p, *o, v.clone()));
        }
    }
    m
}

fn cleanings(node: &Node) -> usize {
    node.logs(100_000).lines().filter(|l| l.contains("sluice: cleaned")).count()
}

/// A roll of every partition's active segment: `segment.ms` has passed, so the next append
/// to each partition starts a new segment and the cleaner may take the old one.
fn roll_by_time(node: &Node, topic: &str, round: usize) -> Vec<(String, Option<String>, i64, i64)> {
    std::thread::sleep(Duration::from_millis(1200));
    let r = round.to_string();
    // 64 sentinel keys: each partition gets some (keys are hashed over the partitions).
    let args = [
        "produce",
        "--bootstrap",
        node.bootstrap(),
        "--topic",
        topic,
        "--keys",
        "64",
        "--key-prefix",
        "sentinel-",
        "--round-start",
        &r,
    ];
    let out = py_json_timeout(node, "compact_io.py", &args, TIMEOUT);
    out["acks"].arr().iter().map(ack).collect()
}

#[test]
fn a_keyed_topic_compacts_to_the_latest_value_per_key_and_tombstones_go_after_delete_retention() {
    let node = Node::start(&["--set", "log.cleaner.backoff.ms=100"]);
    let topic = "compacted";
    create_compacted(
        &node,
        topic,
        2,
        &[
            "cleanup.policy=compact",
            "segment.bytes=16384",
            "segment.ms=1000",
            "min.cleanable.dirty.ratio=0.01",
            "delete.retention.ms=3000",
        ],
    );
    // Records without a key are refused whole (INVALID_RECORD), nothing of them stored.
    let keyless = support::run_py_timeout(
        "ck_produce.py",
        &[
            "--bootstrap",
            node.bootstrap(),
            "--topic",
            topic,
            "--count",
            "5",
            "--null-key-every",
            "1",
            "--timeout",
            "10",
        ],
        TIMEOUT,
    );
    let keyless = json::parse(String::from_utf8_lossy(&keyless.stdout).lines().last().unwrap_or("{}")).unwrap();
    assert_eq!((keyless["acked"].i64(), keyless["errors"].i64()), (0, 5), "keyless records refused: {keyless}");
    assert!(keyless["error_samples"].to_string().contains("INVALID_RECORD"), "INVALID_RECORD: {keyless}");

    // 200 keys × 10 rounds of updates; the last round deletes every 10th key.
    let acks =
        produce(&node, topic, &["--keys", "200", "--rounds", "10", "--value-size", "60", "--tombstone-every", "10"]);
    assert_eq!(acks.len(), 2000);
    let want = latest_acked(&acks);
    let sentinels = roll_by_time(&node, topic, 100);
    let compacted = |records: &[(i64, i64, String, Option<String>)]| {
        records.iter().filter(|r| r.2.starts_with("key-")).count() == 200
    };
    let t0 = Instant::now();
    wait_for("both partitions cleaned", TIMEOUT, || node.logs(30), || compacted(&consume(&node, topic, "ck")));
    let figure = format!("compacted 2000 updates of 200 keys in {:.1?} after the roll", t0.elapsed());
    eprintln!("figure: {figure}");
    for client in ["ck", "kp"] {
        let records = consume(&node, topic, client);
        let got: BTreeMap<String, (i64, i64, Option<String>)> = records
            .iter()
            .filter(|r| r.2.starts_with("key-"))
            .map(|(p, o, k, v)| (k.clone(), (*p, *o, v.clone())))
            .collect();
        assert_eq!(got, want, "{client}: the latest value of every key at its original offset, tombstones included");
        assert_eq!(got.values().filter(|v| v.2.is_none()).count(), 20, "{client}: 20 tombstones, until their horizon");
        assert!(sentinels.iter().all(|s| records.iter().any(|r| (r.0, r.1) == (s.2, s.3))), "{client}: sentinels");
        for p in 0..2 {
            let offsets: Vec<i64> = records.iter().filter(|r| r.0 == p).map(|r| r.1).collect();
            assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{client}: partition {p} read in offset order");
        }
    }

    // Past delete.retention.ms, the next cleaning drops the tombstones.
    std::thread::sleep(Duration::from_millis(3200));
    roll_by_time(&node, topic, 200);
    roll_by_time(&node, topic, 300);
    let gone = |records: &[(i64, i64, String, Option<String>)]| {
        records.iter().filter(|r| r.2.starts_with("key-")).all(|r| r.3.is_some())
    };
    wait_for("tombstones dropped", TIMEOUT, || node.logs(30), || gone(&consume(&node, topic, "ck")));
    let records = consume(&node, topic, "kp");
    let got: BTreeMap<String, Option<String>> =
        records.iter().filter(|r| r.2.starts_with("key-")).map(|r| (r.2.clone(), r.3.clone())).collect();
    let live: BTreeMap<String, Option<String>> =
        want.iter().filter(|(_, v)| v.2.is_some()).map(|(k, v)| (k.clone(), v.2.clone())).collect();
    assert_eq!(got, live, "kafka-python after the horizon: the 180 live keys, no tombstone");
    assert!(cleanings(&node) >= 2, "the cleaner logged its work\n{}", node.logs(30));
}

#[test]
fn sigkills_while_the_cleaner_works_lose_no_keys_latest_value() {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut node = Node::start(&["--cores", "0", "--listen", &listen, "--set", "log.cleaner.backoff.ms=20"]);
    let topic = "churn";
    create_compacted(
        &node,
        topic,
        1,
        &["cleanup.policy=compact", "segment.bytes=8192", "segment.ms=1000", "min.cleanable.dirty.ratio=0.01"],
    );
    let kills: usize = std::env::var("SLUICE_COMPACTION_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(6);
    let args: Vec<String> = [
        "produce",
        "--bootstrap",
        &listen,
        "--topic",
        topic,
        "--keys",
        "300",
        "--rounds",
        "60",
        "--value-size",
        "100",
        "--rate",
        "2500",
        "--lines",
        "--timeout",
        "120",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut prod = Bg::py("compact-producer", "compact_io.py", &args);
    let mut rng = fastrand::Rng::with_seed(7);
    let mut cleaned_before_kills = 0;
    for k in 0..kills {
        std::thread::sleep(Duration::from_millis(rng.u64(600..1500)));
        cleaned_before_kills += cleanings(&node);
        node.kill();
        node.restart();
        assert_eq!(node.bootstrap(), listen);
        eprintln!("figure: kill {k} done; {} acks so far", prod.events().len());
    }
    if prod.wait(Duration::from_secs(150)).is_none() {
        prod.kill();
        panic!("the producer did not finish\n{}\n{}", prod.logs(20), node.logs(40));
    }
    let events = prod.events();
    let done = events.iter().find(|e| !e["done"].is_null()).unwrap_or_else(|| panic!("no summary\n{}", prod.logs(20)));
    assert_eq!(done["unacked"].i64(), 0, "every update acknowledged in the end: {done}");
    let acks: Vec<(String, Option<String>, i64, i64)> = events
        .iter()
        .filter(|e| e["done"].is_null())
        .map(|e| (e["k"].str().to_string(), e["v"].opt_str().map(str::to_string), e["p"].i64(), e["o"].i64()))
        .collect();
    assert_eq!(acks.len(), 18_000);
    assert!(cleaned_before_kills > 0, "the cleaner ran between the kills\n{}", node.logs(40));
    let want = latest_acked(&acks);
    roll_by_time(&node, topic, 1000);
    let compacted = |records: &[(i64, i64, String, Option<String>)]| {
        records.iter().filter(|r| r.2.starts_with("key-")).count() == 300
    };
    wait_for("the churned log compacted", TIMEOUT, || node.logs(30), || compacted(&consume(&node, topic, "ck")));
    let records = consume(&node, topic, "ck");
    let got: BTreeMap<String, (i64, i64, Option<String>)> = records
        .iter()
        .filter(|r| r.2.starts_with("key-"))
        .map(|(p, o, k, v)| (k.clone(), (*p, *o, v.clone())))
        .collect();
    assert_eq!(
        got, want,
        "after {kills} SIGKILLs during cleaning: every key's latest acknowledged value, at its offset"
    );
    let logs = node.logs(100_000);
    let cut_short = logs.lines().filter(|l| l.contains("a cleaning cut short")).count();
    eprintln!(
        "figure: {kills} SIGKILLs, {} cleanings logged, {cut_short} cleanings found cut short at a restart",
        cleanings(&node)
    );
    node.stop();
}
