//! Live partition moves between shards (issue 12, Show 1 and Show 3), as a user drives them:
//! the admin API in Redpanda's shapes (`GET /v1/partitions/kafka/{topic}/{partition}`,
//! `POST /v1/partitions/kafka/{topic}/{partition}/replicas` with `[{"node_id", "core"}]`,
//! answered once the move is complete) and `/layout`, with real clients running.
//!
//! - Under an idempotent acks=all confluent-kafka producer (`tests/clients/mv_produce.py`) and
//!   a two-member consumer group (`grp_consumer.py`), 32 moves of random partitions to the
//!   other shard: no acknowledged record lost, none read twice, order kept per partition, the
//!   group's commits reach the log end. The produce-ack latency inside the moves' windows and
//!   overall is printed as a figure (not asserted).
//! - Placement survives SIGTERM and SIGKILL restarts, with every record produced before.
//! - Bad move requests get a 4xx with a message, and nothing moves.
//! - A SIGKILL a few milliseconds after a move was requested leaves exactly one owner and
//!   every acknowledged record.
//!
//! Needs `bash scripts/test-deps.sh` (the .venv with confluent-kafka).

mod support;

use sluice::testing::TempDir;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::json::{self, Json, Value};
use support::{create_topic, http_get, py_json_timeout, wait_for, Bg, Node};

/// The node's `node.id` (the default): the only valid `node_id` in a replica list.
const NODE_ID: i64 = 0;

fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0
}

fn figure(line: &str) {
    eprintln!("e2e figure: {line}");
}

fn admin(node: &Node) -> &str {
    node.admin().expect("node started with --admin")
}

// ---------------------------------------------------------------------------------------------
// The admin API.

/// One HTTP request on its own connection; returns (status code, body).
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    try_http(addr, method, path, body).unwrap_or_else(|e| panic!("{e}"))
}

/// `http`, with a failure to connect or an answer that is not HTTP as an error.
fn try_http(addr: &str, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("{method} {path}: connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| format!("{method} {path}: sending the request: {e}"))?;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) =
        text.split_once("\r\n\r\n").ok_or_else(|| format!("{method} {path}: not an HTTP response: {text:?}"))?;
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((code, body.to_string()))
}

fn partition_path(topic: &str, p: i32) -> String {
    format!("/v1/partitions/kafka/{topic}/{p}")
}

/// `GET /v1/partitions/kafka/{topic}/{p}`: (status code, body).
fn get_partition(node: &Node, topic: &str, p: i32) -> (u16, String) {
    http_get(admin(node), &partition_path(topic, p))
}

/// `POST /v1/partitions/kafka/{topic}/{p}/replicas` with `body`: (status code, body).
fn post_replicas(node: &Node, topic: &str, p: i32, body: &str) -> (u16, String) {
    http(admin(node), "POST", &format!("{}/replicas", partition_path(topic, p)), body)
}

fn replicas_body(core: i64) -> String {
    format!(r#"[{{"node_id":{NODE_ID},"core":{core}}}]"#)
}

/// The one core that owns `topic`/`p`, as GET shows it: the answer must be 200 with status
/// "done", the partition named, and exactly one replica, on this node.
fn placement(node: &Node, topic: &str, p: i32) -> i64 {
    let (code, body) = get_partition(node, topic, p);
    assert_eq!(code, 200, "GET {}: HTTP {code}: {body}\n{}", partition_path(topic, p), node.logs(30));
    let v = json::parse(&body).unwrap_or_else(|e| panic!("GET {}: not JSON ({e}): {body}", partition_path(topic, p)));
    assert_eq!(
        (v["ns"].str(), v["topic"].str(), v["partition_id"].i64()),
        ("kafka", topic, p as i64),
        "GET {}: {v}",
        partition_path(topic, p)
    );
    assert_eq!(v["status"].str(), "done", "GET {}: no move in progress: {v}", partition_path(topic, p));
    assert_eq!(v["leader_id"].i64(), NODE_ID, "GET {}: {v}", partition_path(topic, p));
    let reps = v["replicas"].arr();
    assert_eq!(reps.len(), 1, "GET {}: exactly one replica (one owner core): {v}", partition_path(topic, p));
    assert_eq!(reps[0]["node_id"].i64(), NODE_ID, "GET {}: {v}", partition_path(topic, p));
    let core = reps[0]["core"].i64();
    assert!((0..node.shards() as i64).contains(&core), "GET {}: core out of range: {v}", partition_path(topic, p));
    core
}

/// Moves `topic`/`p` to `core` and checks that the answer is 200 and GET then shows it there.
fn move_to(node: &Node, topic: &str, p: i32, core: i64) {
    let (code, body) = post_replicas(node, topic, p, &replicas_body(core));
    assert_eq!(code, 200, "moving {topic}/{p} to core {core}: HTTP {code}: {body}\n{}", node.logs(30));
    let now = placement(node, topic, p);
    assert_eq!(now, core, "GET after moving {topic}/{p} to core {core} (answered 200: {body})");
}

/// Partition → shard of `topic` in `/layout`.
fn layout_shards(node: &Node, topic: &str) -> BTreeMap<i32, i64> {
    let (code, body) = http_get(admin(node), "/layout");
    assert_eq!(code, 200, "/layout: HTTP {code}: {body}");
    let lay = json::parse(&body).unwrap_or_else(|e| panic!("/layout is not JSON ({e}): {body}"));
    let mut out = BTreeMap::new();
    for p in lay["partitions"].arr().iter().filter(|p| p["topic"].str() == topic) {
        let prev = out.insert(p["partition"].i64() as i32, p["shard"].i64());
        assert!(prev.is_none(), "/layout lists {topic}/{} twice: {lay}", p["partition"]);
    }
    out
}

/// GET for every partition of `topic` and `/layout` agree; returns the placement.
fn placements_agree(node: &Node, topic: &str, partitions: i32, when: &str) -> BTreeMap<i32, i64> {
    let got: BTreeMap<i32, i64> = (0..partitions).map(|p| (p, placement(node, topic, p))).collect();
    let lay = layout_shards(node, topic);
    assert_eq!(lay, got, "{when}: /layout's shards (left) vs GET's cores (right) for {topic}");
    got
}

// ---------------------------------------------------------------------------------------------
// Records: produce with ck_produce.py (record i = key-{i % 1000} / "val-{i}" padded with '.'),
// read back with ck_consume.py.

/// An acknowledged record: (i, partition, offset).
type Ack = (i64, i32, i64);

fn expected_value(i: i64, size: usize) -> String {
    let v = format!("val-{i}");
    let pad = size.saturating_sub(v.len());
    v + &".".repeat(pad)
}

/// Produces records `start..start+count` with acks=all (to `partition` if given); every one
/// must be acknowledged. Returns the acks.
fn produce(node: &Node, topic: &str, start: i64, count: usize, value_size: usize, partition: Option<i32>) -> Vec<Ack> {
    let (vs, p) = (value_size.to_string(), partition.map(|p| p.to_string()));
    let mut extra = vec!["--value-size", &vs, "--report-acks", "--timeout", "60"];
    if let Some(p) = &p {
        extra.extend_from_slice(&["--partition", p]);
    }
    let out = support::ck_produce_all(node, topic, start, count, &extra);
    out["acks"].arr().iter().map(|a| (a[0].i64(), a[1].i64() as i32, a[2].i64())).collect()
}

/// Reads `topic` from the beginning and checks that it holds exactly the `acked` records:
/// the same count, each at the offset it was acknowledged with, with its value, offsets in
/// order per partition. `when` names the moment for failure messages.
fn check_readable(node: &Node, topic: &str, acked: &[Ack], value_size: usize, when: &str) {
    let n = acked.len().to_string();
    let out = py_json_timeout(
        node,
        "ck_consume.py",
        &["--bootstrap", node.bootstrap(), "--topic", topic, "--count", &n, "--timeout", "60", "--linger", "0.5"],
        Duration::from_secs(90),
    );
    let mut errs = Vec::new();
    if out["timed_out"].bool() {
        errs.push(format!("read {} of {} records before the consumer's timeout", out["count"], acked.len()));
    }
    let mut at: HashMap<(i32, i64), String> = HashMap::new();
    let mut total = 0usize;
    for (p, recs) in out["partitions"].obj() {
        let p: i32 = p.parse().unwrap();
        let mut last = -1i64;
        for r in recs.arr() {
            let o = r["o"].i64();
            if o <= last {
                errs.push(format!("partition {p}: offset {o} read after {last}"));
            }
            last = o;
            total += 1;
            at.insert((p, o), r["v"].opt_str().unwrap_or("<null or long value>").to_string());
        }
    }
    if total != acked.len() {
        errs.push(format!("read {total} records, {} were acknowledged", acked.len()));
    }
    let mut bad = Vec::new();
    for &(i, p, o) in acked {
        let want = expected_value(i, value_size);
        match at.get(&(p, o)) {
            Some(v) if *v == want => {}
            Some(v) => bad.push(format!("{p}@{o}: record {i} acknowledged there, read {:?}", &v[..v.len().min(30)])),
            None => bad.push(format!("{p}@{o}: record {i} acknowledged there, not read")),
        }
    }
    if !bad.is_empty() {
        errs.push(format!(
            "{} acknowledged records not read back as acknowledged, e.g. {:?}",
            bad.len(),
            &bad[..bad.len().min(8)]
        ));
    }
    assert!(errs.is_empty(), "{when}: reading {topic} back:\n  {}\n{}", errs.join("\n  "), node.logs(40));
}

// ---------------------------------------------------------------------------------------------
// Show 1: moves under an idempotent producer and a consumer group.

/// A grp_consumer.py member in the background.
struct Member {
    bg: Bg,
    stop_file: std::path::PathBuf,
}

impl Member {
    fn start(node: &Node, dir: &Path, name: &str, group: &str, topic: &str) -> Member {
        let stop_file = dir.join(format!("stop-{name}"));
        let args: Vec<String> = [
            "--client",
            "ck",
            "--bootstrap",
            node.bootstrap(),
            "--group",
            group,
            "--topic",
            topic,
            "--name",
            name,
            "--stop-file",
            stop_file.to_str().unwrap(),
            "--commit",
            "sync",
            "--batch",
            "500",
            "--session-timeout-ms",
            "6000",
            "--heartbeat-ms",
            "500",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Member { bg: Bg::py(name, "grp_consumer.py", &args), stop_file }
    }

    fn events_of(&self, kind: &str) -> Vec<Value> {
        self.bg.events().into_iter().filter(|e| e["ev"].str() == kind).collect()
    }

    /// Its assignment after the last assign/revoke/lost event.
    fn assignment(&self) -> Option<BTreeSet<i32>> {
        let evs = self.bg.events();
        let last = evs.iter().rev().find(|e| matches!(e["ev"].str(), "assign" | "revoke" | "lost"))?;
        Some(last["now"].arr().iter().map(|x| x[1].i64() as i32).collect())
    }

    /// (event time, partition, offset, record index) in the order it consumed them.
    fn records(&self) -> Vec<(f64, i32, i64, i64)> {
        let mut out = Vec::new();
        for e in self.events_of("recs") {
            let t = e["t"].f64();
            for r in e["r"].arr() {
                out.push((t, r[1].i64() as i32, r[2].i64(), r[3].i64()));
            }
        }
        out
    }

    fn stop(&mut self) {
        std::fs::write(&self.stop_file, b"stop").unwrap();
        match self.bg.wait(Duration::from_secs(60)) {
            None => panic!("{} did not exit within 60 s of its stop file\n{}", self.bg.name, self.bg.logs(30)),
            Some(s) => assert!(s.success(), "{} exited with {s}\n{}", self.bg.name, self.bg.logs(40)),
        }
    }
}

fn diag(node: &Node, bgs: &[&Bg]) -> String {
    let mut s: String = bgs.iter().map(|b| b.logs(20) + "\n").collect();
    s.push_str(&node.logs(60));
    s
}

/// How many Produce requests the node answered, and how many took longer than 100 ms and
/// 250 ms (its `sluice_produce_latency_seconds` histograms, summed over shards).
fn node_produce_latency(node: &Node) -> String {
    let (code, text) = http_get(admin(node), "/metrics");
    assert_eq!(code, 200, "/metrics: HTTP {code}");
    let (mut count, mut le100, mut le250) = (0.0, 0.0, 0.0);
    for line in text.lines().filter(|l| l.starts_with("sluice_produce_latency_seconds")) {
        let Some((name, value)) = line.rsplit_once(' ') else { continue };
        let v: f64 = value.parse().unwrap_or(0.0);
        if name.starts_with("sluice_produce_latency_seconds_count") {
            count += v;
        } else if name.contains("le=\"0.1\"") {
            le100 += v;
        } else if name.contains("le=\"0.25\"") {
            le250 += v;
        }
    }
    format!("{count} Produce requests, {} over 100 ms, {} over 250 ms", count - le100, count - le250)
}

/// How many moves, and over how long (issue 12 Show 1: at least 30 within 20 s).
/// `SLUICE_MOVES=N` changes the count; `SLUICE_MOVES=0` is the same run without moves (for
/// the latency baseline, by hand).
const MOVES: u32 = 32;
const MOVES_OVER: Duration = Duration::from_secs(18);

fn moves_wanted() -> u32 {
    std::env::var("SLUICE_MOVES").ok().and_then(|v| v.parse().ok()).unwrap_or(MOVES)
}

/// Show 1: 32 moves of random partitions to the other core (both directions) within ~20 s
/// under an idempotent acks=all producer and a two-member group with sync commits: every move
/// answers 200 and GET shows the new core; every acknowledged record consumed once, at the
/// offset it was acknowledged with, in send order per partition; the group's committed
/// offsets reach the log end. Prints the produce-ack p99.9 overall and around the moves.
#[test]
fn moves_under_idempotent_producer_and_group() {
    const PARTS: i32 = 6;
    let mut node = Node::start(&[
        "--cores",
        "0-1",
        "--set",
        "num.partitions=6",
        "--set",
        "group.initial.rebalance.delay.ms=0",
        "--set",
        "group.min.session.timeout.ms=1000",
    ]);
    assert_eq!(node.shards(), 2);
    let dir = TempDir::new("mv");
    let (topic, group) = ("moving", "g-moving");
    create_topic(&node, topic, PARTS);
    let mut core = placements_agree(&node, topic, PARTS, "before the moves");

    // The group first (both members holding partitions), so the producer's records flow into a
    // stable group.
    let mut members: Vec<Member> =
        (0..2).map(|k| Member::start(&node, dir.path(), &format!("mv-ck-{k}"), group, topic)).collect();
    {
        let bgs: Vec<&Bg> = members.iter().map(|m| &m.bg).collect();
        wait_for(
            "both members to hold partitions, all 6 between them",
            Duration::from_secs(60),
            || diag(&node, &bgs),
            || {
                let sets: Option<Vec<BTreeSet<i32>>> = members.iter().map(|m| m.assignment()).collect();
                sets.is_some_and(|s| {
                    s.iter().all(|x| !x.is_empty())
                        && s.iter().map(BTreeSet::len).sum::<usize>() == PARTS as usize
                        && s.iter().flatten().collect::<BTreeSet<_>>().len() == PARTS as usize
                })
            },
        );
    }

    let stop_file = dir.path().join("stop-producer");
    let moves_file = dir.path().join("moves.json");
    let acks_file = dir.path().join("acks.json");
    let args: Vec<String> = [
        "--bootstrap",
        node.bootstrap(),
        "--topic",
        topic,
        "--rate",
        "1000",
        "--value-size",
        "100",
        "--stop-file",
        stop_file.to_str().unwrap(),
        "--duration",
        "60",
        "--moves-file",
        moves_file.to_str().unwrap(),
        "--acks-file",
        acks_file.to_str().unwrap(),
        "--timeout",
        "60",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut producer = Bg::py("mv-produce", "mv_produce.py", &args);
    wait_for(
        "the producer to start sending",
        Duration::from_secs(30),
        || diag(&node, &[&producer]),
        || producer.events().iter().any(|e| e["ev"].str() == "producing"),
    );
    std::thread::sleep(Duration::from_millis(500));

    // The moves: a random partition to the other core, evenly spread over MOVES_OVER.
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut rng = fastrand::Rng::with_seed(seed);
    figure(&format!("moves: random seed {seed}"));
    let t0 = Instant::now();
    // (start ms, end ms, partition, from, to)
    let mut moves: Vec<(f64, f64, i32, i64, i64)> = Vec::new();
    let wanted = moves_wanted();
    for k in 0..wanted {
        let due = t0 + MOVES_OVER * k / wanted;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let p = rng.i32(0..PARTS);
        let from = core[&p];
        let to = 1 - from;
        let start = now_ms();
        let path = format!("{}/replicas", partition_path(topic, p));
        let answer = try_http(admin(&node), "POST", &path, &replicas_body(to));
        let end = now_ms();
        let (code, body) = answer.unwrap_or_else(|e| {
            std::thread::sleep(Duration::from_millis(200));
            let done: Vec<String> = moves.iter().map(|m| format!("p{} {}→{}", m.2, m.3, m.4)).collect();
            panic!(
                "move {k}: {topic}/{p} from core {from} to {to}: {e}; the node is {} (moves done before: {})\n{}",
                if node.is_running() { "still running" } else { "gone" },
                done.join(", "),
                diag(&node, &[&producer])
            )
        });
        assert_eq!(
            code,
            200,
            "move {k}: {topic}/{p} from core {from} to {to}: HTTP {code}: {body}\n{}",
            diag(&node, &[&producer])
        );
        let now = placement(&node, topic, p);
        assert_eq!(now, to, "move {k}: GET after moving {topic}/{p} from core {from} to {to} (answered 200: {body})");
        core.insert(p, to);
        moves.push((start, end, p, from, to));
    }
    if wanted == 0 {
        std::thread::sleep(MOVES_OVER);
    }
    let moves_took = t0.elapsed();
    let list: Vec<Value> = moves.iter().map(|m| serde_json::json!([m.0, m.1, m.2, m.3, m.4])).collect::<Vec<_>>();
    let tmp = dir.path().join("moves.json.tmp");
    std::fs::write(&tmp, serde_json::to_string(&list).unwrap()).unwrap();
    std::fs::rename(&tmp, &moves_file).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&stop_file, b"stop").unwrap();

    let ups = moves.iter().filter(|m| m.3 == 0).count();
    let downs = moves.iter().filter(|m| m.3 == 1).count();
    let mut took: Vec<f64> = moves.iter().map(|m| m.1 - m.0).collect();
    took.sort_by(f64::total_cmp);
    figure(&format!(
        "{} moves ({ups} core 0→1, {downs} core 1→0) in {:.1} s; POST answered in p50 {:.1} ms, max {:.1} ms",
        moves.len(),
        moves_took.as_secs_f64(),
        took.get(took.len() / 2).copied().unwrap_or(f64::NAN),
        took.last().copied().unwrap_or(f64::NAN)
    ));
    assert!(wanted == 0 || (ups > 0 && downs > 0), "moves in both directions: {ups} from core 0, {downs} from core 1");
    let after_moves = placements_agree(&node, topic, PARTS, "after the moves");
    assert_eq!(after_moves, core, "placement after the moves (left) vs where the moves put them (right)");

    // The producer's account.
    match producer.wait(Duration::from_secs(120)) {
        None => panic!("the producer did not finish within 120 s of its stop file\n{}", diag(&node, &[&producer])),
        Some(s) => assert!(s.success(), "the producer exited with {s}\n{}", diag(&node, &[&producer])),
    }
    let result = producer
        .events()
        .into_iter()
        .find(|e| e["ev"].str() == "result")
        .unwrap_or_else(|| panic!("the producer printed no result\n{}", diag(&node, &[&producer])));
    let lat = &result["latency_ms"];
    figure(&format!(
        "produce-ack latency (idempotent, acks=all, 1000 records/s, {} moves): p99.9 {} ms overall (n={}, p50 {} ms, \
         max {} ms); p99.9 {} ms within ±100 ms of a move (n={}, p50 {}, max {}); p99.9 {} ms outside (n={})",
        result["moves"],
        lat["all"]["p999"],
        lat["all"]["n"],
        lat["all"]["p50"],
        lat["all"]["max"],
        lat["in_moves"]["p999"],
        lat["in_moves"]["n"],
        lat["in_moves"]["p50"],
        lat["in_moves"]["max"],
        lat["outside"]["p999"],
        lat["outside"]["n"],
    ));
    figure(&format!("producer: {} sent, {} acked, stats {}", result["sent"], result["acked"], result["stats"]));
    figure(&format!("the node's own produce latency: {}", node_produce_latency(&node)));
    assert!(
        result["errors"].i64() == 0 && result["fatal"].is_null() && result["acked"].i64() == result["sent"].i64(),
        "the idempotent producer: {} sent, {} acked, {} failed ({}), fatal {}, client errors {}\n{}",
        result["sent"],
        result["acked"],
        result["errors"],
        result["error_samples"],
        result["fatal"],
        result["client_errors"],
        diag(&node, &[&producer])
    );
    let acks_doc = json::parse(&std::fs::read_to_string(&acks_file).unwrap()).unwrap();
    let acked: BTreeMap<i64, (i32, i64, f64)> =
        acks_doc["acks"].arr().iter().map(|a| (a[0].i64(), (a[1].i64() as i32, a[2].i64(), a[3].f64()))).collect();
    assert_eq!(acked.len() as i64, result["acked"].i64());
    // Where the slow acks are: records of the partition being moved (its produce-to-ack
    // interval overlapping that move's window, ±100 ms) vs everything else.
    {
        let lat: BTreeMap<i64, f64> = acks_doc["acks"].arr().iter().map(|a| (a[0].i64(), a[4].f64())).collect();
        let (mut moved, mut other) = (Vec::new(), Vec::new());
        for (i, &(p, _, send)) in acked.iter().filter(|(i, _)| **i != 0) {
            let l = lat[i]; // record 0 is the producer's warm-up, not timed
            let hit = moves.iter().any(|m| m.2 == p && send <= m.1 + 100.0 && send + l >= m.0 - 100.0);
            if hit { &mut moved } else { &mut other }.push(l);
        }
        let show = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            let q =
                |f: f64| v.get(((f * v.len() as f64).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN);
            format!(
                "n={} p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms",
                v.len(),
                q(0.5),
                q(0.99),
                q(0.999),
                q(1.0)
            )
        };
        figure(&format!(
            "produce-ack latency of the moving partition within ±100 ms of its move: {}; all other acks: {}",
            show(&mut moved),
            show(&mut other)
        ));
    }
    // The moves happened under load: records were sent before the first and after the last.
    let first_send = acked.values().map(|a| a.2).fold(f64::INFINITY, f64::min);
    let last_send = acked.values().map(|a| a.2).fold(0.0, f64::max);
    assert!(
        moves.is_empty() || (first_send < moves[0].0 && last_send > moves[moves.len() - 1].1),
        "test set-up: the producer was not sending during all the moves (sends {first_send}..{last_send}, \
         moves {:?}..{:?})",
        moves.first().map(|m| m.0),
        moves.last().map(|m| m.1)
    );

    // The group reads everything the producer was told was written.
    {
        let bgs: Vec<&Bg> = members.iter().map(|m| &m.bg).collect();
        wait_for(
            &format!("the group to consume all {} acknowledged records", acked.len()),
            Duration::from_secs(60),
            || {
                let seen: BTreeSet<i64> = members.iter().flat_map(|m| m.records()).map(|r| r.3).collect();
                let missing: Vec<&i64> = acked.keys().filter(|i| !seen.contains(i)).take(10).collect();
                format!("{} consumed, missing e.g. {missing:?}\n{}", seen.len(), diag(&node, &bgs))
            },
            || {
                let seen: BTreeSet<i64> = members.iter().flat_map(|m| m.records()).map(|r| r.3).collect();
                acked.keys().all(|i| seen.contains(i))
            },
        );
    }
    std::thread::sleep(Duration::from_secs(1)); // a duplicate would show up now
    for m in members.iter_mut() {
        m.stop();
    }

    let mut errs: Vec<String> = Vec::new();
    // Consumption order: each member's own order; a partition read by both (a rebalance) is
    // ordered by the time of the batches.
    let mut recs: Vec<(f64, usize, usize, i32, i64, i64)> = Vec::new();
    for (k, m) in members.iter().enumerate() {
        for (n, r) in m.records().into_iter().enumerate() {
            recs.push((r.0, k, n, r.1, r.2, r.3));
        }
        for f in m.events_of("commit").into_iter().filter(|e| !e["ok"].bool()) {
            errs.push(format!("{}: a commit failed: {f}", m.bg.name));
        }
        for e in m.events_of("error") {
            errs.push(format!("{}: a consume error: {e}", m.bg.name));
        }
    }
    recs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut times: HashMap<i64, usize> = HashMap::new();
    let mut wrong = Vec::new();
    for r in &recs {
        *times.entry(r.5).or_default() += 1;
        match acked.get(&r.5) {
            Some(&(p, o, _)) if (p, o) == (r.3, r.4) => {}
            Some(&(p, o, _)) => {
                wrong.push(format!("record {} acknowledged at {p}@{o}, consumed at {}@{}", r.5, r.3, r.4))
            }
            None => wrong.push(format!("record {} consumed at {}@{} was never acknowledged", r.5, r.3, r.4)),
        }
    }
    if !wrong.is_empty() {
        errs.push(format!(
            "{} records consumed elsewhere than acknowledged, e.g. {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(8)]
        ));
    }
    let missing: Vec<i64> = acked.keys().filter(|i| !times.contains_key(i)).copied().collect();
    if !missing.is_empty() {
        errs.push(format!(
            "{} acknowledged records never consumed, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        ));
    }
    let mut dups: Vec<(i64, usize)> = times.iter().filter(|(_, n)| **n > 1).map(|(i, n)| (*i, *n)).collect();
    dups.sort();
    if !dups.is_empty() {
        errs.push(format!(
            "{} records consumed more than once, e.g. (record, times) {:?}",
            dups.len(),
            &dups[..dups.len().min(10)]
        ));
    }
    // Per partition: offsets and send order both strictly increasing, as consumed...
    let mut last: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    let mut disorder = Vec::new();
    for r in &recs {
        if let Some(&(lo, li)) = last.get(&r.3) {
            if r.4 <= lo || r.5 <= li {
                disorder.push(format!(
                    "partition {}: record {} at offset {} consumed after record {li} at {lo}",
                    r.3, r.5, r.4
                ));
            }
        }
        last.insert(r.3, (r.4, r.5));
    }
    if !disorder.is_empty() {
        errs.push(format!("{} records out of order, e.g. {:?}", disorder.len(), &disorder[..disorder.len().min(8)]));
    }
    // ... and as acknowledged: in each partition, a later send got a higher offset, with no gap.
    let mut by_part: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for &(p, o, _) in acked.values() {
        by_part.entry(p).or_default().push(o); // in send order (acked is sorted by i)
    }
    for (p, offs) in &by_part {
        let want: Vec<i64> = (0..offs.len() as i64).collect();
        if *offs != want {
            let bad = offs.iter().enumerate().find(|(k, o)| **o != *k as i64).map(|(k, o)| (k, *o));
            errs.push(format!(
                "partition {p}: the offsets acknowledged in send order are not 0..{} (first difference: send #{:?})",
                offs.len(),
                bad
            ));
        }
    }
    assert!(errs.is_empty(), "under {} moves:\n  {}\n{}", moves.len(), errs.join("\n  "), node.logs(60));
    figure(&format!(
        "{} records over {} partitions ({:?}), each consumed once and in order",
        acked.len(),
        by_part.len(),
        by_part.iter().map(|(p, o)| (*p, o.len())).collect::<Vec<_>>()
    ));

    // The log ends are where the acknowledged records end, and the group committed up to them.
    let marks = py_json_timeout(
        &node,
        "grp_admin.py",
        &["watermarks", "--client", "ck", "--bootstrap", node.bootstrap(), "--topic", topic],
        Duration::from_secs(60),
    );
    let high: BTreeMap<i32, i64> =
        marks["partitions"].obj().iter().map(|(p, lh)| (p.parse().unwrap(), lh[1].i64())).collect();
    let want_high: BTreeMap<i32, i64> =
        (0..PARTS).map(|p| (p, by_part.get(&p).map_or(0, |o| o.len() as i64))).collect();
    assert_eq!(high, want_high, "log end offsets (left) vs records acknowledged per partition (right)");
    let offs = py_json_timeout(
        &node,
        "grp_admin.py",
        &["offsets", "--client", "ck", "--bootstrap", node.bootstrap(), "--group", group],
        Duration::from_secs(60),
    );
    assert!(offs["error"].is_null(), "committed offsets of {group}: {offs}");
    let committed: BTreeMap<i32, i64> =
        offs["offsets"].arr().iter().filter(|o| o[0].str() == topic).map(|o| (o[1].i64() as i32, o[2].i64())).collect();
    let want_committed: BTreeMap<i32, i64> = high.iter().filter(|(_, h)| **h > 0).map(|(p, h)| (*p, *h)).collect();
    assert_eq!(committed, want_committed, "{group}'s committed offsets (left) vs the log ends (right)");
}

// ---------------------------------------------------------------------------------------------
// Show 3: restarts.

/// Show 3: a partition moved, SIGTERM, restart on the same data directory: GET and /layout
/// show it where it was moved (and every other partition where it was); moved again, SIGKILL,
/// restart: the same. Every record produced before each restart is read back.
#[test]
fn placement_survives_restarts() {
    const PARTS: i32 = 4;
    let mut node = Node::start(&["--cores", "0-1", "--set", "num.partitions=4"]);
    let topic = "keep";
    create_topic(&node, topic, PARTS);
    let mut acked = produce(&node, topic, 0, 400, 20, None);
    let mut placed = placements_agree(&node, topic, PARTS, "before any move");

    // Move partition 0, stop cleanly, start again.
    let to = 1 - placed[&0];
    move_to(&node, topic, 0, to);
    placed.insert(0, to);
    assert_eq!(placements_agree(&node, topic, PARTS, "after moving partition 0"), placed);
    acked.extend(produce(&node, topic, 400, 400, 20, None));
    node.stop();
    node.restart();
    let now = placements_agree(&node, topic, PARTS, "after a SIGTERM and restart");
    assert_eq!(now, placed, "placement after a SIGTERM and restart (left) vs before (right)");
    check_readable(&node, topic, &acked, 20, "after a SIGTERM and restart");

    // Move partition 1 and partition 0 back, SIGKILL, start again.
    let to1 = 1 - placed[&1];
    move_to(&node, topic, 1, to1);
    placed.insert(1, to1);
    let to0 = 1 - placed[&0];
    move_to(&node, topic, 0, to0);
    placed.insert(0, to0);
    acked.extend(produce(&node, topic, 800, 400, 20, None));
    node.kill();
    node.restart();
    let now = placements_agree(&node, topic, PARTS, "after a SIGKILL and restart");
    assert_eq!(now, placed, "placement after a SIGKILL and restart (left) vs before (right)");
    check_readable(&node, topic, &acked, 20, "after a SIGKILL and restart");

    // Still a working partition on its new core.
    acked.extend(produce(&node, topic, 1200, 200, 20, None));
    check_readable(&node, topic, &acked, 20, "after producing on the restarted node");
    figure(&format!(
        "placement {placed:?} kept over a SIGTERM and a SIGKILL restart; {} records read back",
        acked.len()
    ));
}

// ---------------------------------------------------------------------------------------------
// Bad requests.

/// Bad move requests get the right 4xx with a message, and nothing moves.
#[test]
fn bad_move_requests_are_refused() {
    let node = Node::start(&["--cores", "0-1", "--set", "num.partitions=2"]);
    assert_eq!(node.shards(), 2);
    let topic = "bad";
    create_topic(&node, topic, 2);
    let acked = produce(&node, topic, 0, 50, 0, None);
    let before = placements_agree(&node, topic, 2, "before the bad requests");
    let c = before[&0];
    let other = 1 - c;

    // (what, topic, partition, body, expected status)
    let two = format!(r#"[{{"node_id":{NODE_ID},"core":0}},{{"node_id":{NODE_ID},"core":1}}]"#);
    let cases: Vec<(&str, &str, &str, String, u16)> = vec![
        ("malformed JSON", topic, "0", format!(r#"[{{"node_id":{NODE_ID},"core":"#), 400),
        ("not JSON at all", topic, "0", "move it please".to_string(), 400),
        ("an object instead of a list", topic, "0", format!(r#"{{"node_id":{NODE_ID},"core":{other}}}"#), 400),
        ("no replica", topic, "0", "[]".to_string(), 400),
        ("two replicas", topic, "0", two, 400),
        ("a node_id that is not this node's", topic, "0", format!(r#"[{{"node_id":7,"core":{other}}}]"#), 400),
        ("core 2 on a 2-shard node", topic, "0", replicas_body(2), 400),
        ("core -1", topic, "0", replicas_body(-1), 400),
        ("a replica without a core", topic, "0", format!(r#"[{{"node_id":{NODE_ID}}}]"#), 400),
        ("an unknown topic", "no-such-topic", "0", replicas_body(other), 404),
        ("an unknown partition", topic, "9", replicas_body(other), 404),
        ("an unknown partition of __consumer_offsets", "__consumer_offsets", "50", replicas_body(1), 404),
    ];
    let mut errs = Vec::new();
    for (what, t, p, body, want) in &cases {
        let path = format!("/v1/partitions/kafka/{t}/{p}/replicas");
        let (code, answer) = http(admin(&node), "POST", &path, body);
        if code != *want || answer.trim().is_empty() {
            errs.push(format!("{what}: POST {path} {body:?}: want HTTP {want} with a message, got {code} {answer:?}"));
        } else {
            eprintln!("{what}: HTTP {code} {}", answer.trim());
        }
    }
    // GET of what does not exist.
    for path in ["/v1/partitions/kafka/no-such-topic/0", "/v1/partitions/kafka/bad/9"] {
        let (code, answer) = http_get(admin(&node), path);
        if code != 404 || answer.trim().is_empty() {
            errs.push(format!("GET {path}: want HTTP 404 with a message, got {code} {answer:?}"));
        }
    }
    let after = placements_agree(&node, topic, 2, "after the bad requests");
    if after != before {
        errs.push(format!("placement changed: before {before:?}, after {after:?}"));
    }
    assert!(errs.is_empty(), "bad move requests:\n  {}\n{}", errs.join("\n  "), node.logs(30));

    // A good request still works afterwards, and the records are all there.
    move_to(&node, topic, 0, other);
    check_readable(&node, topic, &acked, 0, "after the refused moves and one good one");
}

// ---------------------------------------------------------------------------------------------
// SIGKILL in the middle of a move.

/// Show 3: a move of a partition holding data is requested and the node SIGKILLed a few
/// milliseconds later (the answer not awaited), three times with different delays: after each
/// restart GET shows exactly one owner core with status done, /layout agrees, every record
/// acknowledged before the kill is read back, and the partition takes new records.
#[test]
fn sigkill_mid_move() {
    let mut node = Node::start(&["--cores", "0-1", "--set", "num.partitions=2"]);
    let topic = "mid";
    create_topic(&node, topic, 2);
    const SIZE: usize = 150;
    let mut acked = produce(&node, topic, 0, 3000, SIZE, Some(0));
    acked.extend(produce(&node, topic, 3000, 200, SIZE, Some(1)));
    let mut outcomes = Vec::new();
    for (round, delay_ms) in [0u64, 2, 5].into_iter().enumerate() {
        let from = placements_agree(&node, topic, 2, &format!("round {round}: before the move"))[&0];
        let to = 1 - from;
        let body = replicas_body(to);
        let req = format!(
            "POST {}/replicas HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            partition_path(topic, 0),
            body.len()
        );
        let mut s = TcpStream::connect(admin(&node)).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        node.kill();
        drop(s);
        node.restart();
        let now =
            placements_agree(&node, topic, 2, &format!("round {round}: after a SIGKILL {delay_ms} ms into a move"));
        outcomes.push(format!("{delay_ms} ms: core {from} → {}", now[&0]));
        check_readable(
            &node,
            topic,
            &acked,
            SIZE,
            &format!("round {round}: after a SIGKILL {delay_ms} ms into a move"),
        );
        let start = acked.len() as i64;
        acked.extend(produce(&node, topic, start, 100, SIZE, Some(0)));
    }
    check_readable(&node, topic, &acked, SIZE, "after the last round");
    figure(&format!("SIGKILL mid-move (partition 0 after restart): {}", outcomes.join(", ")));
}

/// A consumer's long poll parked on a partition that moves away is answered at once with the
/// retriable NOT_LEADER_OR_FOLLOWER (so the client asks again, now of the new owner), not left
/// to wait out its `max_wait_ms` on a log nobody appends to any more.
#[test]
fn a_long_poll_on_a_moving_partition_is_answered_not_leader() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let node = Node::start(&["--cores", "0-1", "--set", "num.partitions=2"]);
    create_topic(&node, "poll", 2);
    let from = placement(&node, "poll", 0);
    let mut c = support::wire::Client::connect(node.bootstrap());
    // Offset 0 of an empty partition: nothing to return, so the fetch parks for up to 20 s.
    let fetch =
        FetchRequest::default().with_max_wait_ms(20_000).with_min_bytes(1).with_max_bytes(1 << 20).with_topics(vec![
            FetchTopic::default().with_topic(TopicName(StrBytes::from_static_str("poll"))).with_partitions(vec![
                FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(1 << 20),
            ]),
        ]);
    c.send(ApiKey::Fetch, 12, &fetch);
    std::thread::sleep(Duration::from_millis(300)); // parked by now
    move_to(&node, "poll", 0, 1 - from);
    let r: FetchResponse = c.recv(ApiKey::Fetch, 12);
    let error = r.responses[0].partitions[0].error_code;
    assert_eq!(error, 6, "the parked fetch's answer after the move (6 = NOT_LEADER_OR_FOLLOWER)");
}

/// Kafka's partition of a group or transactional id in its internal topic:
/// `abs(id.hashCode()) % partitions`, with Java's String.hashCode.
fn internal_partition(id: &str, partitions: i32) -> i32 {
    let hash = id.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
    (hash & 0x7fff_ffff) % partitions
}

/// The coordinator role moves with its partition: a consumer group keeps consuming and
/// committing while its `__consumer_offsets` partition moves between the cores six times, and
/// a transactional id keeps its producer id and epoch across a move of its
/// `__transaction_state` partition.
#[test]
fn coordinator_partitions_move_with_their_groups_and_transactions() {
    const PARTS: i32 = 4;
    let node = Node::start(&[
        "--cores",
        "0-1",
        "--set",
        "group.initial.rebalance.delay.ms=0",
        "--set",
        "group.min.session.timeout.ms=1000",
    ]);
    assert_eq!(node.shards(), 2);
    let dir = TempDir::new("mvc");
    let (topic, group, txn_id) = ("coord", "g-coord", "t-coord");
    create_topic(&node, topic, PARTS);
    let mut total = produce(&node, topic, 0, 1000, 50, None).len();

    // The group consumes what is there, committing after every batch.
    let mut member = Member::start(&node, dir.path(), "mvc-ck", group, topic);
    let seen = |m: &Member| m.records().iter().map(|r| r.3).collect::<BTreeSet<i64>>();
    let consumed = |m: &Member, n: usize, what: &str| {
        wait_for(
            what,
            Duration::from_secs(60),
            || diag(&node, &[&m.bg]),
            || (0..n as i64).all(|i| seen(m).contains(&i)),
        );
    };
    consumed(&member, total, "the member to consume the first 1000 records");

    // Six moves of the group's offsets partition, records produced after each.
    let offsets_p = internal_partition(group, 50);
    let mut core = placement(&node, "__consumer_offsets", offsets_p);
    for k in 0..6 {
        core = 1 - core;
        move_to(&node, "__consumer_offsets", offsets_p, core);
        total += produce(&node, topic, total as i64, 200, 50, None).len();
        consumed(&member, total, &format!("the member to consume all {total} records after move {}", k + 1));
    }
    let commits_ok = member.events_of("commit").iter().filter(|e| e["ok"].bool()).count();
    member.stop();
    assert!(commits_ok > 0, "no commit was acknowledged\n{}", diag(&node, &[&member.bg]));

    // The group is coordinated where its partition now is, with every offset committed.
    let (code, body) = http_get(admin(&node), "/groups");
    assert_eq!(code, 200, "/groups: HTTP {code}: {body}");
    let doc = json::parse(&body).unwrap_or_else(|e| panic!("/groups is not JSON ({e}): {body}"));
    let g = doc["groups"].arr().iter().find(|g| g["group"].str() == group).cloned();
    let g = g.unwrap_or_else(|| panic!("{group} is not in /groups after the moves: {doc}\n{}", node.logs(40)));
    assert_eq!(g["coordinator_shard"].i64(), core, "{group}'s coordinator after the moves: {g}");
    let lags: Vec<(i64, i64, i64)> =
        g["offsets"].arr().iter().map(|o| (o["partition"].i64(), o["committed"].i64(), o["lag"].i64())).collect();
    assert_eq!(lags.len(), PARTS as usize, "committed offsets of {group}: {g}");
    assert!(lags.iter().all(|(_, _, lag)| *lag == 0), "{group} lags after consuming everything: {lags:?}");
    figure(&format!(
        "group {group}: {total} records consumed and committed ({commits_ok} commits acknowledged) across 6 moves of __consumer_offsets/{offsets_p}"
    ));

    // A transactional id across a move of its state partition: the second producer's
    // init_transactions must find the first one's producer id (and fence it by epoch).
    let txn = |prefix: &str| {
        let args = [
            "--client",
            "ck",
            "--bootstrap",
            node.bootstrap(),
            "--topic",
            topic,
            "--txn-id",
            txn_id,
            "--count",
            "5",
            "--prefix",
            prefix,
            "--partition",
            "0",
            "--end",
            "commit",
        ];
        let v = py_json_timeout(&node, "txn_produce.py", &args, Duration::from_secs(60));
        assert_eq!(v["action"].str(), "commit", "{prefix}: {v}\n{}", node.logs(30));
        v
    };
    let describe = || {
        let args = ["--bootstrap", node.bootstrap(), "--id", txn_id];
        let v = py_json_timeout(&node, "txn_describe.py", &args, Duration::from_secs(60));
        assert!(v["error"].is_null(), "describing {txn_id}: {v}\n{}", node.logs(30));
        v
    };
    txn("before");
    let before = describe();
    let state_p = internal_partition(txn_id, 50);
    let to = 1 - placement(&node, "__transaction_state", state_p);
    move_to(&node, "__transaction_state", state_p, to);
    txn("after");
    let after = describe();
    eprintln!("transactional id {txn_id} before the move: {before}\nafter: {after}");
    let (b, a) = (&before, &after);
    assert_eq!(a["producer_id"].i64(), b["producer_id"].i64(), "the producer id survives the move: {b} / {a}");
    assert_eq!(
        a["producer_epoch"].i64(),
        b["producer_epoch"].i64() + 1,
        "one new epoch for the new producer: {b} / {a}"
    );
    assert_eq!(a["state"].str(), "CompleteCommit", "{a}");
}
