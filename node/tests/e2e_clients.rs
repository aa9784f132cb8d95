//! End to end with real Kafka clients against a real `sluice` node (issue 3, "Show 2"):
//! kcat (Debian's, librdkafka 2.0.x), confluent-kafka (Python on a recent librdkafka) and
//! kafka-python (an independent pure-Python protocol stack).
//!
//! Needs `bash scripts/test-deps.sh` (kcat + `.venv`); a missing tool fails the test, it never
//! skips. Each test starts its own node (`--cores 0`) on a private data directory.
//!
//! The message pattern is shared with `tests/clients/common.py`: message i has key
//! `key-{i % keys}`, value `val-{i}`, and optionally headers, null keys/values and an explicit
//! CreateTime `ts_base + i * ts_step`; every consumed record is mapped back to its i and
//! checked field by field.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::json::{Json, Value};
use support::{check, kcat, py_json, py_json_timeout, run, Node};

/// Messages in the big keyed runs (the figure).
const BIG: usize = 100_000;
/// Messages in the cross-client and restart runs: kafka-python produces ~10k msg/s here (10k
/// in ~1.1 s), so this keeps those tests to seconds while spanning many batches per partition.
/// (kafka-python *consumes* the full 100k in ~3 s, so the big test reads all of them with it.)
const MEDIUM: usize = 10_000;

// ---------------------------------------------------------------------------------------------
// What a producer sent: mirrors common.py's `message()`, `headers()` and `timestamp()`.

#[derive(Clone, Debug)]
struct Spec {
    /// Index of the first message and how many (the consumer must see `start..start+count`
    /// exactly once, unless a check says otherwise).
    start: usize,
    count: usize,
    keys: usize,
    null_key_every: usize,
    null_value_every: usize,
    /// `Some(client)`: headers were sent by client "ck" or "kp" (common.headers()).
    headers: Option<&'static str>,
    /// `Some((base, step))`: explicit CreateTime timestamps.
    ts: Option<(i64, i64)>,
}

impl Spec {
    fn keyed(count: usize) -> Spec {
        Spec { start: 0, count, keys: 1000, null_key_every: 0, null_value_every: 0, headers: None, ts: None }
    }

    /// Headers, null keys (every 7th), null values (every 11th) and CreateTime timestamps.
    fn rich(count: usize, client: &'static str, ts_base: i64) -> Spec {
        Spec {
            start: 0,
            count,
            keys: 1000,
            null_key_every: 7,
            null_value_every: 11,
            headers: Some(client),
            ts: Some((ts_base, 3)),
        }
    }

    fn key(&self, i: usize) -> Option<String> {
        let n = self.null_key_every;
        if n > 0 && i % n == n - 1 {
            None
        } else {
            Some(format!("key-{}", i % self.keys))
        }
    }

    /// Never null together with the key: kafka-python refuses a record with neither.
    fn value(&self, i: usize) -> Option<String> {
        let n = self.null_value_every;
        if n > 0 && i % n == n - 1 && self.key(i).is_some() {
            None
        } else {
            Some(format!("val-{i}"))
        }
    }

    fn header_list(&self, i: usize) -> Option<Vec<(String, Option<String>)>> {
        self.headers.map(|client| {
            let mut h: Vec<(String, Option<String>)> = vec![
                ("idx".into(), Some(i.to_string())),
                ("client".into(), Some(client.to_string())),
                ("dup".into(), Some("1".into())),
                ("dup".into(), Some("2".into())),
                ("empty".into(), Some(String::new())),
            ];
            // kafka-python's send() takes (str, bytes) headers only: no null header value.
            if client != "kp" {
                h.push(("null".into(), None));
            }
            h
        })
    }

    fn timestamp(&self, i: usize) -> Option<i64> {
        self.ts.map(|(base, step)| base + i as i64 * step)
    }

    /// Producer script arguments for this spec.
    fn producer_args(&self, node: &Node, topic: &str, acks: &str) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--bootstrap".into(),
            node.bootstrap().into(),
            "--topic".into(),
            topic.into(),
            "--count".into(),
            self.count.to_string(),
            "--start".into(),
            self.start.to_string(),
            "--acks".into(),
            acks.into(),
            "--keys".into(),
            self.keys.to_string(),
            "--null-key-every".into(),
            self.null_key_every.to_string(),
            "--null-value-every".into(),
            self.null_value_every.to_string(),
        ];
        if self.headers.is_some() {
            a.push("--headers".into());
        }
        if let Some((base, step)) = self.ts {
            a.extend(["--ts-base".into(), base.to_string(), "--ts-step".into(), step.to_string()]);
        }
        a
    }

    /// The kcat producer's stdin for this spec (`key:value` lines; keyed, no nulls, no headers).
    fn kcat_input(&self) -> Vec<u8> {
        assert!(self.null_key_every == 0 && self.null_value_every == 0 && self.headers.is_none());
        let mut s = String::with_capacity(self.count * 20);
        for i in self.start..self.start + self.count {
            s.push_str(&format!("key-{}:val-{i}\n", i % self.keys));
        }
        s.into_bytes()
    }
}

// ---------------------------------------------------------------------------------------------
// What a consumer got.

#[derive(Clone, Debug)]
struct Rec {
    offset: i64,
    key: Option<String>,
    value: Option<String>,
    /// `None` when the client's output does not carry headers (kcat here).
    headers: Option<Vec<(String, Option<String>)>>,
    timestamp: Option<i64>,
    ts_type: Option<String>,
}

/// Records per partition, in the order the client delivered them.
#[derive(Debug, Default)]
struct Consumed {
    client: String,
    parts: BTreeMap<i32, Vec<Rec>>,
}

impl Consumed {
    fn total(&self) -> usize {
        self.parts.values().map(Vec::len).sum()
    }

    /// From ck_consume.py / kp_consume.py output.
    fn from_json(v: &Value) -> Consumed {
        let mut c = Consumed { client: v["client"].str().to_string(), parts: BTreeMap::new() };
        for (p, recs) in v["partitions"].obj() {
            let list = recs
                .arr()
                .iter()
                .map(|r| {
                    let vl = r["vl"].i64();
                    let value = match (vl, r["v"].opt_str()) {
                        (-1, _) => None,
                        (_, Some(s)) => Some(s.to_string()),
                        (_, None) => Some(format!("<{vl} bytes, crc32 {}>", r["vh"].i64())),
                    };
                    let key =
                        if r["kl"].i64() < 0 { None } else { Some(r["k"].opt_str().unwrap_or("<bytes>").to_string()) };
                    let headers = r["h"]
                        .arr()
                        .iter()
                        .map(|h| (h.arr()[0].str().to_string(), h.arr()[1].opt_str().map(str::to_string)))
                        .collect();
                    Rec {
                        offset: r["o"].i64(),
                        key,
                        value,
                        headers: Some(headers),
                        timestamp: Some(r["ts"].i64()),
                        ts_type: Some(r["tt"].str().to_string()),
                    }
                })
                .collect();
            c.parts.insert(p.parse().expect("partition number"), list);
        }
        c
    }

    /// From `kcat -C -f '%p %o %K %k %S %s %T\n'` output.
    fn from_kcat(stdout: &[u8]) -> Consumed {
        let mut c = Consumed { client: "kcat".into(), parts: BTreeMap::new() };
        for line in String::from_utf8_lossy(stdout).lines() {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 7, "unexpected kcat line {line:?}");
            let key = if f[2] == "-1" { None } else { Some(f[3].to_string()) };
            let value = if f[4] == "-1" { None } else { Some(f[5].to_string()) };
            c.parts.entry(f[0].parse().unwrap()).or_default().push(Rec {
                offset: f[1].parse().unwrap(),
                key,
                value,
                headers: None,
                timestamp: Some(f[6].parse().unwrap()),
                ts_type: None,
            });
        }
        c
    }
}

/// The message index a record carries: its `idx` header, else its `val-{i}` value.
fn index_of(r: &Rec) -> Option<usize> {
    if let Some(h) = &r.headers {
        if let Some((_, Some(v))) = h.iter().find(|(k, _)| k == "idx") {
            return v.parse().ok();
        }
    }
    r.value.as_deref()?.strip_prefix("val-")?.parse().ok()
}

/// Checks `got` against what `spec` produced into a topic of `partitions` partitions:
/// complete (every message exactly once, nothing else), offsets dense from `first_offset[p]`
/// (0 on a fresh topic) and increasing, order of production kept per partition, a key always
/// in the same partition, and every field as sent. Returns all problems found (first 30).
fn verify(spec: &Spec, got: &Consumed, partitions: usize) -> Result<(), String> {
    let mut errs: Vec<String> = Vec::new();
    let mut err = |e: String| {
        if errs.len() < 30 {
            errs.push(e);
        }
    };
    let range = spec.start..spec.start + spec.count;
    let mut seen = vec![0u32; spec.count];
    let mut key_part: HashMap<String, i32> = HashMap::new();
    if got.parts.keys().any(|&p| p < 0 || p as usize >= partitions) {
        err(format!("records from partitions {:?}, topic has {partitions}", got.parts.keys().collect::<Vec<_>>()));
    }
    for (&p, recs) in &got.parts {
        let mut last_i: Option<usize> = None;
        for (n, r) in recs.iter().enumerate() {
            if r.offset != n as i64 {
                err(format!("p{p}: record #{n} has offset {} (want dense offsets from 0)", r.offset));
            }
            let Some(i) = index_of(r) else {
                err(format!("p{p}@{}: cannot tell which message this is: {r:?}", r.offset));
                continue;
            };
            if !range.contains(&i) {
                err(format!("p{p}@{}: message {i} was never produced", r.offset));
                continue;
            }
            seen[i - spec.start] += 1;
            if let Some(l) = last_i {
                if i <= l {
                    err(format!("p{p}@{}: message {i} after message {l}: production order lost", r.offset));
                }
            }
            last_i = Some(i);
            if r.key != spec.key(i) {
                err(format!("p{p}@{}: message {i}: key {:?}, want {:?}", r.offset, r.key, spec.key(i)));
            }
            if r.value != spec.value(i) {
                err(format!("p{p}@{}: message {i}: value {:?}, want {:?}", r.offset, r.value, spec.value(i)));
            }
            if let (Some(h), Some(want)) = (&r.headers, spec.header_list(i)) {
                if *h != want {
                    err(format!("p{p}@{}: message {i}: headers {h:?}, want {want:?}", r.offset));
                }
            } else if let (Some(h), None) = (&r.headers, spec.headers) {
                if !h.is_empty() {
                    err(format!("p{p}@{}: message {i}: unexpected headers {h:?}", r.offset));
                }
            }
            if let (Some(ts), Some(want)) = (r.timestamp, spec.timestamp(i)) {
                if ts != want {
                    err(format!("p{p}@{}: message {i}: timestamp {ts}, want CreateTime {want}", r.offset));
                }
                if let Some(tt) = &r.ts_type {
                    if tt != "create" {
                        err(format!("p{p}@{}: message {i}: timestamp type {tt}, want create", r.offset));
                    }
                }
            }
            if let Some(k) = &r.key {
                if let Some(&other) = key_part.get(k) {
                    if other != p {
                        err(format!("key {k} in partitions {other} and {p}"));
                    }
                } else {
                    key_part.insert(k.clone(), p);
                }
            }
        }
    }
    let missing: Vec<usize> = (0..spec.count).filter(|&j| seen[j] == 0).map(|j| j + spec.start).collect();
    let dup: Vec<usize> = (0..spec.count).filter(|&j| seen[j] > 1).map(|j| j + spec.start).collect();
    if !missing.is_empty() {
        err(format!("{} messages missing, e.g. {:?}", missing.len(), &missing[..missing.len().min(10)]));
    }
    if !dup.is_empty() {
        err(format!("{} messages delivered more than once, e.g. {:?}", dup.len(), &dup[..dup.len().min(10)]));
    }
    if got.total() != spec.count {
        err(format!("{} records consumed, {} produced", got.total(), spec.count));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {} problem(s):\n  {}", got.client, errs.len(), errs.join("\n  ")))
    }
}

fn assert_all_ok(results: Vec<(&str, Result<(), String>)>, node: &Node) {
    let failed: Vec<String> =
        results.iter().filter_map(|(what, r)| r.as_ref().err().map(|e| format!("[{what}] {e}"))).collect();
    assert!(failed.is_empty(), "{}\n{}", failed.join("\n\n"), node.logs(30));
}

// ---------------------------------------------------------------------------------------------
// Client runs.

fn args_ref(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Produces `spec` with a Python client ("ck_produce.py" or "kp_produce.py"); asserts that
/// every message was acknowledged; returns the script's JSON.
fn py_produce(node: &Node, script: &str, topic: &str, spec: &Spec, acks: &str, extra: &[&str]) -> Value {
    let mut a = spec.producer_args(node, topic, acks);
    a.extend(extra.iter().map(|s| s.to_string()));
    let out = py_json_timeout(node, script, &args_ref(&a), Duration::from_secs(180));
    assert_eq!(
        (out["acked"].i64(), out["errors"].i64()),
        (spec.count as i64, 0),
        "{script} to {topic}: not every message acknowledged: {}\n{}",
        out["error_samples"],
        node.logs(30)
    );
    for (p, s) in out["partitions"].obj() {
        assert!(s["in_order"].bool(), "{script}: acks of partition {p} out of order: {s}");
    }
    figure(&format!(
        "{script} {topic}: {} messages acks={acks} in {} s ({})",
        spec.count, out["elapsed_s"], out["client"]
    ));
    out
}

/// Prints a measured figure (seen with `--nocapture`, or in nextest's output of a failure).
fn figure(line: &str) {
    eprintln!("e2e figure: {line}");
}

/// Consumes `count` records of `topic` from the earliest offset with a Python client.
fn py_consume(node: &Node, script: &str, topic: &str, count: usize, timeout_s: u64) -> Consumed {
    let count_s = count.to_string();
    let timeout = timeout_s.to_string();
    let v = py_json_timeout(
        node,
        script,
        &["--bootstrap", node.bootstrap(), "--topic", topic, "--count", &count_s, "--timeout", &timeout],
        Duration::from_secs(timeout_s + 60),
    );
    figure(&format!("{script} {topic}: {} records in {} s ({})", v["count"], v["elapsed_s"], v["client"]));
    Consumed::from_json(&v)
}

fn kcat_cmd(node: &Node) -> Command {
    let mut c = Command::new(kcat());
    c.arg("-b").arg(node.bootstrap());
    c
}

/// Produces `spec` with kcat (`-K:`), acks=all; kcat must exit 0 and report no failed delivery.
fn kcat_produce(node: &Node, topic: &str, spec: &Spec) {
    let mut c = kcat_cmd(node);
    c.args(["-P", "-t", topic, "-K:", "-X", "acks=all", "-X", "linger.ms=5"]);
    let t0 = std::time::Instant::now();
    let out = run(c, Some(spec.kcat_input()), Duration::from_secs(120));
    check(&out, "kcat -P", node);
    figure(&format!("kcat -P {topic}: {} messages acks=all in {:.2?}", spec.count, t0.elapsed()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("Delivery failed"),
        "kcat -P reported failed deliveries:\n{}\n{}",
        support::tail(&out.stderr, 4000),
        node.logs(30)
    );
}

/// Consumes `topic` from the beginning to the end with kcat (`-e`).
fn kcat_consume(node: &Node, topic: &str) -> Consumed {
    let mut c = kcat_cmd(node);
    c.args(["-C", "-t", topic, "-e", "-o", "beginning", "-f", "%p %o %K %k %S %s %T\\n"]);
    let t0 = std::time::Instant::now();
    let out = run(c, None, Duration::from_secs(120));
    check(&out, "kcat -C", node);
    let got = Consumed::from_kcat(&out.stdout);
    figure(&format!("kcat -C {topic}: {} records in {:.2?}", got.total(), t0.elapsed()));
    got
}

/// The partition count kcat sees in the topic's metadata.
fn kcat_partitions(node: &Node, topic: &str) -> usize {
    let mut c = kcat_cmd(node);
    c.args(["-L", "-t", topic]);
    let out = run(c, None, Duration::from_secs(60));
    check(&out, "kcat -L", node);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains(&format!("topic \"{topic}\" with")))
        .unwrap_or_else(|| panic!("kcat -L shows no topic {topic}:\n{text}"));
    line.split_whitespace()
        .skip_while(|w| *w != "with")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the partition count from {line:?}"))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A CreateTime base an hour back, on a whole second, so explicit timestamps differ from
/// append times and stay inside any retention.
fn ts_base() -> i64 {
    (now_ms() - 3_600_000) / 1000 * 1000
}

fn six_partitions() -> Node {
    Node::start(&["--cores", "0", "--set", "num.partitions=6"])
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// 100k keyed acks=all messages in 6 partitions come back complete, ordered, key-partitioned to kcat, ck and kp.
#[test]
fn hundred_k_keyed_acks_all_read_back_by_every_client() {
    let node = six_partitions();
    let topic = "keyed100k";
    let spec = Spec::keyed(BIG);
    let acks = py_produce(&node, "ck_produce.py", topic, &spec, "all", &[]);
    assert_eq!(acks["partitions"].obj().len(), 6, "keys spread over all 6 partitions: {}", acks["partitions"]);
    assert_eq!(kcat_partitions(&node, topic), 6);

    let kc = kcat_consume(&node, topic);
    let ck = py_consume(&node, "ck_consume.py", topic, BIG, 120);
    // kafka-python decodes in pure Python: the full 100k, with a generous time limit.
    let kp = py_consume(&node, "kp_consume.py", topic, BIG, 240);
    assert_all_ok(
        vec![
            ("kcat", verify(&spec, &kc, 6)),
            ("confluent-kafka", verify(&spec, &ck, 6)),
            ("kafka-python", verify(&spec, &kp, 6)),
        ],
        &node,
    );
}

/// 100k keyed messages produced by kcat (Debian's librdkafka 2.0.x) with acks=all come back intact to kcat and ck.
#[test]
fn kcat_produces_100k_keyed_acks_all_and_reads_them_back() {
    let node = six_partitions();
    let topic = "kcat100k";
    let spec = Spec::keyed(BIG);
    kcat_produce(&node, topic, &spec);
    assert_eq!(kcat_partitions(&node, topic), 6);
    let kc = kcat_consume(&node, topic);
    let ck = py_consume(&node, "ck_consume.py", topic, BIG, 120);
    assert_all_ok(vec![("kcat", verify(&spec, &kc, 6)), ("confluent-kafka", verify(&spec, &ck, 6))], &node);
}

/// kafka-python → confluent-kafka: headers, null keys, null values and CreateTime timestamps survive.
#[test]
fn cross_client_kafka_python_to_confluent_kafka_with_headers_nulls_timestamps() {
    let node = six_partitions();
    let topic = "kp2ck";
    let spec = Spec::rich(MEDIUM, "kp", ts_base());
    py_produce(&node, "kp_produce.py", topic, &spec, "all", &[]);
    let ck = py_consume(&node, "ck_consume.py", topic, MEDIUM, 60);
    assert_all_ok(vec![("confluent-kafka", verify(&spec, &ck, 6))], &node);
}

/// confluent-kafka → kafka-python: headers (null values too), null keys/values and CreateTime survive.
#[test]
fn cross_client_confluent_kafka_to_kafka_python_with_headers_nulls_timestamps() {
    let node = six_partitions();
    let topic = "ck2kp";
    let spec = Spec::rich(MEDIUM, "ck", ts_base());
    py_produce(&node, "ck_produce.py", topic, &spec, "all", &[]);
    let kp = py_consume(&node, "kp_consume.py", topic, MEDIUM, 120);
    assert_all_ok(vec![("kafka-python", verify(&spec, &kp, 6))], &node);
}

/// kcat → kafka-python: keyed messages come back complete, ordered per partition, one partition per key.
#[test]
fn cross_client_kcat_to_kafka_python() {
    let node = six_partitions();
    let topic = "kcat2kp";
    let spec = Spec::keyed(MEDIUM);
    kcat_produce(&node, topic, &spec);
    let kp = py_consume(&node, "kp_consume.py", topic, MEDIUM, 120);
    assert_all_ok(vec![("kafka-python", verify(&spec, &kp, 6))], &node);
}

/// ListOffsets by timestamp (ck and kp) finds the first offset with CreateTime ≥ target; earliest/latest are right.
#[test]
fn list_offsets_by_timestamp_finds_the_right_offset() {
    let node = Node::start(&["--cores", "0", "--set", "num.partitions=1"]);
    let topic = "times";
    let n = 1000usize;
    let (base, step) = (ts_base(), 10i64);
    let spec = Spec { ts: Some((base, step)), ..Spec::keyed(n) };
    // linger 5 ms packs many records per batch, so most lookups land inside a batch.
    let acks = py_produce(&node, "ck_produce.py", topic, &spec, "all", &["--partition", "0", "--report-acks"]);
    let offset_of: HashMap<i64, i64> =
        acks["acks"].arr().iter().map(|a| (a.arr()[0].i64(), a.arr()[2].i64())).collect();
    assert_eq!(offset_of.len(), n);
    let ts = |i: i64| base + i * step;
    // (target timestamp, expected offset)
    let mut cases: Vec<(i64, i64)> = vec![(base - 60_000, offset_of[&0]), (ts(0), offset_of[&0])];
    for i in [1, 2, 137, 500, 998, 999] {
        cases.push((ts(i), offset_of[&i])); // exact hit
    }
    for i in [0, 250, 641, 998] {
        cases.push((ts(i) + step / 2, offset_of[&(i + 1)])); // between i and i+1
    }
    cases.push((ts(999) + 1, -1)); // after the last record: none
    let query: Vec<String> = cases.iter().map(|(t, _)| format!("0:{t}")).collect();
    let query = query.join(",");
    for client in ["ck", "kp"] {
        let v = py_json(
            &node,
            "offsets.py",
            &["--client", client, "--bootstrap", node.bootstrap(), "--topic", topic, "--query", &query],
        );
        let got: Vec<(i64, i64)> = v["times"].arr().iter().map(|t| (t.arr()[1].i64(), t.arr()[2].i64())).collect();
        assert_eq!(got, cases, "{client}: (timestamp, offset) pairs\n{}", node.logs(30));
        let wm = v["watermarks"]["0"].arr();
        assert_eq!((wm[0].i64(), wm[1].i64()), (0, n as i64), "{client}: earliest/latest");
    }
}

/// After SIGTERM (exit 0) and a restart on the same data dir all data is there and new offsets continue.
#[test]
fn restart_keeps_all_data_and_offsets_continue() {
    let mut node = six_partitions();
    let topic = "restart";
    let first = Spec::rich(MEDIUM, "ck", ts_base());
    let before = py_produce(&node, "ck_produce.py", topic, &first, "all", &[]);
    node.stop();
    for p in 0..6 {
        let dir = node.data_dir().join(format!("{topic}-{p}"));
        assert!(dir.is_dir(), "no partition directory {}", dir.display());
    }
    node.restart();

    let ck = py_consume(&node, "ck_consume.py", topic, MEDIUM, 60);
    assert_all_ok(vec![("confluent-kafka after restart", verify(&first, &ck, 6))], &node);

    let second = Spec { start: MEDIUM, count: 2000, ..first.clone() };
    let after = py_produce(&node, "ck_produce.py", topic, &second, "all", &[]);
    for (p, s) in after["partitions"].obj() {
        let prev_last = &before["partitions"][p]["last"];
        let want = if prev_last.is_null() { 0 } else { prev_last.i64() + 1 };
        assert_eq!(s["first"].i64(), want, "partition {p}: first offset after restart");
    }
    let all = Spec { start: 0, count: MEDIUM + 2000, ..first.clone() };
    let kp = py_consume(&node, "kp_consume.py", topic, all.count, 120);
    assert_all_ok(vec![("kafka-python, both runs", verify(&all, &kp, 6))], &node);
}

/// After SIGKILL and a restart every message acknowledged with acks=all is still served.
#[test]
fn sigkill_then_restart_keeps_every_acks_all_message() {
    let mut node = six_partitions();
    let topic = "killed";
    let spec = Spec::keyed(5000);
    py_produce(&node, "ck_produce.py", topic, &spec, "all", &[]);
    node.kill();
    node.restart();
    let ck = py_consume(&node, "ck_consume.py", topic, spec.count, 60);
    assert_all_ok(vec![("confluent-kafka after SIGKILL", verify(&spec, &ck, 6))], &node);
}

/// A consumer long-polling at the log end (max wait 5 s) gets a new message in < 1 s (ck consumer and raw Fetch).
#[test]
fn long_poll_at_log_end_wakes_promptly_on_append() {
    let node = Node::start(&["--cores", "0", "--set", "num.partitions=1"]);
    let topic = "longpoll";
    py_produce(&node, "ck_produce.py", topic, &Spec::keyed(1), "1", &[]);
    for mode in ["consumer-wake", "raw-wake"] {
        let v = py_json(
            &node,
            "longpoll.py",
            &[mode, "--bootstrap", node.bootstrap(), "--topic", topic, "--rounds", "4", "--wait-ms", "5000"],
        );
        assert!(v["errors"].arr().is_empty(), "{mode}: {}", v["errors"]);
        figure(&format!("{mode}: wake latencies {} ms (fetch max wait 5000 ms)", v["latencies_ms"]));
        let lat = v["latencies_ms"].arr();
        assert_eq!(lat.len(), 4, "{mode}: {v}");
        for l in lat {
            assert!(
                !l.is_null() && l.f64() < 1000.0,
                "{mode}: wake latencies {} ms (want < 1000 each)\n{}",
                v["latencies_ms"],
                node.logs(30)
            );
        }
    }
}

/// An empty fetch at the log end with max_wait 500 ms returns after ≥ 0.9 × 500 ms, not before (nor > 1.5 s).
#[test]
fn empty_fetch_returns_after_max_wait_not_before() {
    let node = Node::start(&["--cores", "0", "--set", "num.partitions=1"]);
    let topic = "emptyfetch";
    py_produce(&node, "ck_produce.py", topic, &Spec::keyed(3), "1", &[]);
    let wait = 500.0;
    let v = py_json(
        &node,
        "longpoll.py",
        &["raw-empty", "--bootstrap", node.bootstrap(), "--topic", topic, "--rounds", "4", "--wait-ms", "500"],
    );
    assert!(v["errors"].arr().is_empty(), "{}", v["errors"]);
    figure(&format!("raw-empty: empty fetch held {} ms (max wait 500 ms)", v["durations_ms"]));
    assert_eq!(v["log_end"].i64(), 3);
    for r in v["records"].arr() {
        assert_eq!(r.i64(), 0, "an empty fetch returned records: {v}");
    }
    for d in v["durations_ms"].arr() {
        let d = d.f64();
        assert!(d >= 0.9 * wait, "empty fetch answered after {d} ms, before max_wait {wait} ms: {v}");
        assert!(d < wait + 1000.0, "empty fetch held {d} ms for max_wait {wait} ms: {v}");
    }
}

/// The checker is not vacuous: loss, duplicates, reordering, changed fields and offset gaps are each reported.
#[test]
fn verify_reports_loss_reorder_key_spread_and_field_changes() {
    let spec = Spec::rich(40, "ck", 1_000_000);
    let rec = |o: i64, i: usize| Rec {
        offset: o,
        key: spec.key(i),
        value: spec.value(i),
        headers: spec.header_list(i),
        timestamp: spec.timestamp(i),
        ts_type: Some("create".into()),
    };
    // Two partitions, keys split by (i % 1000) parity: a faithful consumption.
    let good = || {
        let mut c = Consumed { client: "model".into(), parts: BTreeMap::new() };
        for i in 0..40usize {
            let p = match spec.key(i) {
                Some(_) => (i % 2) as i32,
                None => 0,
            };
            let list = c.parts.entry(p).or_default();
            let o = list.len() as i64;
            list.push(rec(o, i));
        }
        c
    };
    assert_eq!(verify(&spec, &good(), 2), Ok(()));
    let mut bad: Vec<(&str, Consumed)> = Vec::new();
    let mut c = good();
    c.parts.get_mut(&1).unwrap().pop();
    bad.push(("loss", c));
    let mut c = good();
    let r = c.parts[&1][3].clone();
    let o = c.parts[&1].len() as i64;
    c.parts.get_mut(&1).unwrap().push(Rec { offset: o, ..r });
    bad.push(("duplicate", c));
    let mut c = good();
    let l = c.parts.get_mut(&1).unwrap();
    let (a, b) = (l[2].offset, l[5].offset);
    l.swap(2, 5);
    l[2].offset = a;
    l[5].offset = b;
    bad.push(("reorder", c));
    let mut c = good();
    let moved = c.parts.get_mut(&1).unwrap().remove(0);
    c.parts.get_mut(&1).unwrap().iter_mut().enumerate().for_each(|(n, r)| r.offset = n as i64);
    let o = c.parts[&0].len() as i64;
    c.parts.get_mut(&0).unwrap().push(Rec { offset: o, ..moved });
    bad.push(("key in two partitions / order", c));
    let mut c = good();
    c.parts.get_mut(&0).unwrap()[1].headers.as_mut().unwrap().pop();
    bad.push(("header lost", c));
    let mut c = good();
    *c.parts.get_mut(&0).unwrap()[1].timestamp.as_mut().unwrap() += 1;
    bad.push(("timestamp changed", c));
    let mut c = good();
    c.parts.get_mut(&0).unwrap()[1].offset += 1;
    bad.push(("offset gap", c));
    for (what, c) in bad {
        assert!(verify(&spec, &c, 2).is_err(), "verify missed: {what}");
    }
}
