//! End to end for producers (issue 6, "Show" 1 and 2): compressed batches of every codec and
//! the idempotent producer, with real clients against a real `sluice` node.
//!
//! - Codecs: confluent-kafka (librdkafka) produces with `compression.type=CODEC` and
//!   kafka-python consumes, and the other way round; the partition's segment files must hold
//!   batches of exactly that codec (the batch headers are read straight from the `.log` files,
//!   and `sluice dump-log` must agree), and every record must come back intact.
//! - Idempotence: an idempotent producer sends 100k keyed messages while the node is SIGKILLed
//!   twice and restarted on the same port; every message must be stored exactly once, in
//!   production order per partition, at the offset its acknowledgement named.
//!
//! Needs `bash scripts/test-deps.sh` (the `.venv`). kafka-python handles snappy, lz4 and zstd
//! only with the pip packages python-snappy, lz4 and zstandard: without them the tests that
//! need them fail and name the package (they never skip).
//!
//! The message pattern is `tests/clients/common.py`'s: message i has key `key-{i % 1000}`,
//! value `val-{i}` (padded with '.' to a value size), and with headers `common.headers(i,
//! client)`; every consumed record is mapped back to its i and checked field by field.

mod support;

use support::{be_i16, be_i32, be_i64};

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::json::{self, Json, Value};
use support::{free_port, py_json, py_json_timeout, sluice_command, Bg, Node};

/// Messages per codec test: many batches per partition, a few seconds per client.
const CODEC_MESSAGES: usize = 3000;
/// Value size in the codec tests: '.' padding compresses well, so even a one-record batch is
/// smaller compressed and librdkafka never falls back to sending it uncompressed.
const CODEC_VALUE_SIZE: usize = 200;
/// Messages of the SIGKILL runs (the figure).
const IDEM_MESSAGES: usize = 100_000;
/// Their pace (msg/s): ~12.5 s of producing, so the kills land mid-run.
const IDEM_RATE: usize = 8000;

// ---------------------------------------------------------------------------------------------
// Stored batches, read from the segment files.

/// One record batch header as stored (Kafka's v2 layout).
#[derive(Clone, Copy, Debug)]
struct Batch {
    base_offset: i64,
    magic: i8,
    attributes: i16,
    last_offset_delta: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    record_count: i32,
}

impl Batch {
    fn codec(&self) -> u8 {
        (self.attributes & 0x7) as u8
    }
}

/// The batch headers of one `.log` file. Zero bytes after the last batch (preallocation) end
/// it; anything else that is not a whole batch fails the test, unless `torn_tail_ok` (a file
/// just left by a SIGKILL: a partly written last batch ends it).
fn parse_segment_file(path: &Path, torn_tail_ok: bool) -> Vec<Batch> {
    const HEADER: usize = 61;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let size = if rest.len() >= HEADER { 12 + be_i32(rest, 8) as usize } else { 0 };
        if torn_tail_ok && (size < HEADER || size > rest.len()) {
            break;
        }
        assert!(rest.len() >= HEADER, "{}: {} stray bytes at position {pos}", path.display(), rest.len());
        assert!(
            size >= HEADER && size <= rest.len(),
            "{}: batch at position {pos} claims {size} bytes, {} left",
            path.display(),
            rest.len()
        );
        out.push(Batch {
            base_offset: be_i64(rest, 0),
            magic: rest[16] as i8,
            attributes: be_i16(rest, 21),
            last_offset_delta: be_i32(rest, 23),
            producer_id: be_i64(rest, 43),
            producer_epoch: be_i16(rest, 51),
            base_sequence: be_i32(rest, 53),
            record_count: be_i32(rest, 57),
        });
        pos += size;
    }
    out
}

fn parse_segment(path: &Path) -> Vec<Batch> {
    parse_segment_file(path, false)
}

/// Per partition, the offset after the last whole batch on disk (for a node just SIGKILLed).
fn stored_ends(node: &Node, topic: &str, partitions: usize) -> Vec<i64> {
    (0..partitions)
        .map(|p| {
            let batches: Vec<Batch> =
                segment_files(node, topic, p).iter().flat_map(|f| parse_segment_file(f, true)).collect();
            batches.last().map_or(0, |b| b.base_offset + b.last_offset_delta as i64 + 1)
        })
        .collect()
}

/// The `.log` files of `topic`'s partition `p`, oldest first.
fn segment_files(node: &Node, topic: &str, p: usize) -> Vec<PathBuf> {
    let dir = node.data_dir().join(format!("{topic}-{p}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|f| f.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .log file in {}", dir.display());
    files
}

/// Every stored batch of `topic`, per partition, in log order; checks that offsets are dense.
fn stored_batches(node: &Node, topic: &str, partitions: usize) -> BTreeMap<usize, Vec<Batch>> {
    let mut all = BTreeMap::new();
    for p in 0..partitions {
        let batches: Vec<Batch> = segment_files(node, topic, p).iter().flat_map(|f| parse_segment(f)).collect();
        let mut next = 0i64;
        for b in &batches {
            assert_eq!(b.magic, 2, "{topic}-{p}: batch at offset {} has magic {}", b.base_offset, b.magic);
            assert_eq!(b.base_offset, next, "{topic}-{p}: batch offsets not dense: {b:?}");
            assert_eq!(b.last_offset_delta + 1, b.record_count, "{topic}-{p}: batch with gaps: {b:?}");
            next = b.base_offset + b.last_offset_delta as i64 + 1;
        }
        all.insert(p, batches);
    }
    all
}

const CODEC_NAMES: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

fn codec_id(codec: &str) -> u8 {
    CODEC_NAMES.iter().position(|c| *c == codec).unwrap_or_else(|| panic!("unknown codec {codec}")) as u8
}

/// Every batch of `topic` is compressed with `codec`, they hold `count` records in all, and
/// some hold more than one. `sluice dump-log` sees the same batches and codec.
fn assert_stored_codec(node: &Node, topic: &str, partitions: usize, codec: &str, count: usize) {
    let want = codec_id(codec);
    let batches = stored_batches(node, topic, partitions);
    let all: Vec<(usize, &Batch)> = batches.iter().flat_map(|(p, bs)| bs.iter().map(move |b| (*p, b))).collect();
    let wrong: Vec<String> = all
        .iter()
        .filter(|(_, b)| b.codec() != want)
        .take(5)
        .map(|(p, b)| format!("p{p}@{}: codec {} ({} records)", b.base_offset, b.codec(), b.record_count))
        .collect();
    let n_wrong = all.iter().filter(|(_, b)| b.codec() != want).count();
    assert!(
        wrong.is_empty(),
        "{topic}: {n_wrong} of {} stored batches are not {codec} ({want}), e.g. {wrong:?}",
        all.len()
    );
    let records: i64 = all.iter().map(|(_, b)| b.record_count as i64).sum();
    assert_eq!(records, count as i64, "{topic}: records in the stored batches");
    let biggest = all.iter().map(|(_, b)| b.record_count).max().unwrap_or(0);
    assert!(biggest > 1, "{topic}: no batch holds more than one record: nothing was really compressed together");
    figure(&format!("{topic}: {} stored batches, all {codec}, up to {biggest} records each", all.len()));

    // The node's own tool must read the same batches and name the same codec.
    let name = ["None", "Gzip", "Snappy", "Lz4", "Zstd"][want as usize];
    for p in 0..partitions {
        for file in segment_files(node, topic, p) {
            let mut cmd = sluice_command();
            cmd.arg("dump-log").arg(&file);
            let out = support::run(cmd, None, Duration::from_secs(60));
            support::check(&out, &format!("sluice dump-log {}", file.display()), node);
            let text = String::from_utf8_lossy(&out.stdout);
            let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("baseOffset:")).collect();
            let mine = parse_segment(&file).len();
            assert_eq!(lines.len(), mine, "sluice dump-log {}: batches listed\n{text}", file.display());
            let needle = format!("codec: {name} ");
            assert!(
                lines.iter().all(|l| l.contains(&needle)),
                "sluice dump-log {}: not every batch says {needle:?}:\n{}",
                file.display(),
                lines.iter().take(10).copied().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

/// Idempotent batches: every stored batch carries a producer id, and per partition the
/// sequence numbers of each (producer id, epoch) continue from batch to batch (from 0 for a
/// new one) — a batch stored twice or a lost one would break the chain. Returns the distinct
/// (producer id, epoch) pairs seen.
fn assert_stored_sequences(node: &Node, topic: &str, partitions: usize) -> Vec<(i64, i16)> {
    let mut pairs: Vec<(i64, i16)> = Vec::new();
    let mut errs: Vec<String> = Vec::new();
    for (p, batches) in stored_batches(node, topic, partitions) {
        let mut next_seq: HashMap<(i64, i16), i32> = HashMap::new();
        for b in &batches {
            if b.producer_id < 0 {
                errs.push(format!("p{p}@{}: batch without a producer id: {b:?}", b.base_offset));
                continue;
            }
            let id = (b.producer_id, b.producer_epoch);
            if !pairs.contains(&id) {
                pairs.push(id);
            }
            let want = next_seq.get(&id).copied().unwrap_or(0);
            if b.base_sequence != want {
                errs.push(format!(
                    "p{p}@{}: producer {} epoch {} baseSequence {} after sequence {}: {b:?}",
                    b.base_offset,
                    id.0,
                    id.1,
                    b.base_sequence,
                    want - 1
                ));
            }
            next_seq.insert(id, b.base_sequence.wrapping_add(b.record_count));
        }
    }
    assert!(
        errs.is_empty(),
        "{topic}: stored batches break the sequence chain:\n  {}",
        errs[..errs.len().min(20)].join("\n  ")
    );
    pairs.sort();
    pairs
}

// ---------------------------------------------------------------------------------------------
// What producers sent and what a consumer got.

/// One producer run: messages `start..start+count` of the common.py pattern.
struct Produced {
    label: String,
    start: usize,
    count: usize,
    value_size: usize,
    /// `Some(client)`: with common.headers(i, client).
    headers: Option<&'static str>,
    /// The acknowledgements when the producer reported them.
    acks: Vec<Ack>,
}

impl Produced {
    fn range(&self) -> std::ops::Range<usize> {
        self.start..self.start + self.count
    }

    fn key(i: usize) -> String {
        format!("key-{}", i % 1000)
    }

    fn value(&self, i: usize) -> String {
        let mut v = format!("val-{i}");
        while v.len() < self.value_size {
            v.push('.');
        }
        v
    }

    fn header_list(&self, i: usize) -> Vec<(String, Option<String>)> {
        let Some(client) = self.headers else { return Vec::new() };
        let mut h: Vec<(String, Option<String>)> = vec![
            ("idx".into(), Some(i.to_string())),
            ("client".into(), Some(client.to_string())),
            ("dup".into(), Some("1".into())),
            ("dup".into(), Some("2".into())),
            ("empty".into(), Some(String::new())),
        ];
        if client != "kp" {
            h.push(("null".into(), None));
        }
        h
    }
}

#[derive(Debug)]
struct Rec {
    offset: i64,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<(String, Option<String>)>,
    ts_type: String,
}

struct Consumed {
    client: String,
    parts: BTreeMap<i32, Vec<Rec>>,
}

impl Consumed {
    /// From ck_consume.py / kp_consume.py output.
    fn from_json(v: &Value) -> Consumed {
        let mut parts = BTreeMap::new();
        for (p, recs) in v["partitions"].obj() {
            let list = recs
                .arr()
                .iter()
                .map(|r| Rec {
                    offset: r["o"].i64(),
                    key: r["k"].opt_str().map(str::to_string),
                    value: r["v"].opt_str().map(str::to_string),
                    headers: r["h"]
                        .arr()
                        .iter()
                        .map(|h| (h.arr()[0].str().to_string(), h.arr()[1].opt_str().map(str::to_string)))
                        .collect(),
                    ts_type: r["tt"].str().to_string(),
                })
                .collect();
            parts.insert(p.parse().expect("partition number"), list);
        }
        Consumed { client: v["client"].str().to_string(), parts }
    }

    fn total(&self) -> usize {
        self.parts.values().map(Vec::len).sum()
    }
}

/// The i a value `val-{i}....` carries.
fn index_of(value: &str) -> Option<usize> {
    value.strip_prefix("val-")?.trim_end_matches('.').parse().ok()
}

/// Checks `got` against `runs` (disjoint index ranges) produced into a fresh topic: every
/// message exactly once and nothing else, offsets dense from 0, each run's messages in
/// production order per partition, a key of a run always in one partition, key, value,
/// headers and timestamp type as sent, and each acknowledged message at the offset its ack
/// named. Returns all problems found (first 30).
fn verify(runs: &[&Produced], got: &Consumed) -> Result<(), String> {
    let mut errs: Vec<String> = Vec::new();
    let mut err = |e: String| {
        if errs.len() < 30 {
            errs.push(e);
        }
    };
    let lo = runs.iter().map(|r| r.start).min().unwrap_or(0);
    let hi = runs.iter().map(|r| r.start + r.count).max().unwrap_or(0);
    let mut seen = vec![0u32; hi - lo];
    let mut at: HashMap<usize, (i32, i64)> = HashMap::new();
    let mut key_part: HashMap<(usize, String), i32> = HashMap::new();
    for (&p, recs) in &got.parts {
        let mut last: HashMap<usize, usize> = HashMap::new();
        for (n, r) in recs.iter().enumerate() {
            if r.offset != n as i64 {
                err(format!("p{p}: record #{n} has offset {} (want dense offsets from 0)", r.offset));
            }
            let Some(i) = r.value.as_deref().and_then(index_of) else {
                err(format!("p{p}@{}: cannot tell which message this is: {r:?}", r.offset));
                continue;
            };
            let Some(ri) = runs.iter().position(|run| run.range().contains(&i)) else {
                err(format!("p{p}@{}: message {i} was never produced", r.offset));
                continue;
            };
            let run = runs[ri];
            seen[i - lo] += 1;
            at.insert(i, (p, r.offset));
            if let Some(&l) = last.get(&ri) {
                if i <= l {
                    err(format!(
                        "p{p}@{}: {} message {i} after message {l}: production order lost",
                        r.offset, run.label
                    ));
                }
            }
            last.insert(ri, i);
            let key = Produced::key(i);
            if r.key.as_deref() != Some(key.as_str()) {
                err(format!("p{p}@{}: message {i}: key {:?}, want {key:?}", r.offset, r.key));
            }
            let value = run.value(i);
            if r.value.as_deref() != Some(value.as_str()) {
                err(format!("p{p}@{}: message {i}: value {:?}, want {value:?}", r.offset, r.value));
            }
            let want_h = run.header_list(i);
            if r.headers != want_h {
                err(format!("p{p}@{}: message {i}: headers {:?}, want {want_h:?}", r.offset, r.headers));
            }
            if r.ts_type != "create" {
                err(format!("p{p}@{}: message {i}: timestamp type {}, want create", r.offset, r.ts_type));
            }
            match key_part.get(&(ri, key.clone())) {
                Some(&other) if other != p => err(format!("{}: key {key} in partitions {other} and {p}", run.label)),
                Some(_) => {}
                None => {
                    key_part.insert((ri, key), p);
                }
            }
        }
    }
    for run in runs {
        let missing: Vec<usize> = run.range().filter(|&i| seen[i - lo] == 0).collect();
        let dup: Vec<usize> = run.range().filter(|&i| seen[i - lo] > 1).collect();
        if !missing.is_empty() {
            err(format!(
                "{}: {} messages missing, e.g. {:?}",
                run.label,
                missing.len(),
                &missing[..missing.len().min(10)]
            ));
        }
        if !dup.is_empty() {
            err(format!(
                "{}: {} messages stored more than once, e.g. {:?}",
                run.label,
                dup.len(),
                &dup[..dup.len().min(10)]
            ));
        }
        let mut moved = 0;
        for &Ack { i, p, o, .. } in &run.acks {
            if let Some(&(gp, go)) = at.get(&i) {
                if (gp, go) != (p, o) {
                    moved += 1;
                    if moved <= 5 {
                        err(format!("{}: message {i} acknowledged at p{p}@{o} but stored at p{gp}@{go}", run.label));
                    }
                }
            }
        }
        if moved > 5 {
            err(format!("{}: {moved} messages stored elsewhere than acknowledged", run.label));
        }
    }
    let want: usize = runs.iter().map(|r| r.count).sum();
    if got.total() != want {
        err(format!("{} records consumed, {want} produced", got.total()));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {} problem(s):\n  {}", got.client, errs.len(), errs.join("\n  ")))
    }
}

// ---------------------------------------------------------------------------------------------
// Client runs.

/// Prints a measured figure (seen with `--nocapture`, or in nextest's output of a failure).
fn figure(line: &str) {
    eprintln!("e2e figure: {line}");
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// One acknowledgement a producer reported: message i stored at partition p, offset o; the
/// callback ran at wall-clock `t_ms`.
#[derive(Clone, Copy, Debug)]
struct Ack {
    i: usize,
    p: i32,
    o: i64,
    t_ms: i64,
}

/// Checks a prod_produce.py result: every message acknowledged, no delivery error, no fatal
/// client error, acks in order per partition. Returns the acks it reported.
fn check_produced(what: &str, out: &Value, count: usize, node: &Node) -> Vec<Ack> {
    assert!(out["error"].is_null(), "{what}: {}", out["error"]);
    assert!(out["fatal"].is_null(), "{what}: fatal client error {}\n{}", out["fatal"], node.logs(40));
    assert_eq!(
        (out["acked"].i64(), out["errors"].i64()),
        (count as i64, 0),
        "{what}: not every message acknowledged without error: {}\nclient errors: {}\n{}",
        out["error_samples"],
        out["client_errors"],
        node.logs(40)
    );
    for (p, s) in out["partitions"].obj() {
        assert!(s["in_order"].bool(), "{what}: acks of partition {p} out of order: {s}");
    }
    out["acks"]
        .arr()
        .iter()
        .map(|a| {
            let a = a.arr();
            Ack { i: a[0].i64() as usize, p: a[1].i64() as i32, o: a[2].i64(), t_ms: a[3].i64() }
        })
        .collect()
}

/// Runs prod_produce.py to completion; the messages must all be acknowledged.
fn produce(node: &Node, what: &str, args: &[String], count: usize) -> (Value, Vec<Ack>) {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_produce_script(node, &a);
    let acks = check_produced(what, &out, count, node);
    figure(&format!("{what}: {count} messages in {} s ({})", out["elapsed_s"], out["client"]));
    (out, acks)
}

/// prod_produce.py's JSON; a missing kafka-python codec package fails with its name.
fn run_produce_script(node: &Node, args: &[&str]) -> Value {
    let out = support::run_py_timeout("prod_produce.py", args, Duration::from_secs(180));
    if out.status.code() == Some(2) {
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(v) = text.lines().rev().find_map(|l| json::parse(l).ok()) {
            if let Some(pkg) = v["missing_package"].opt_str() {
                panic!("{} (scripts/test-deps.sh must install it: .venv/bin/pip install {pkg})", v["error"].str());
            }
        }
    }
    support::check(&out, &format!("prod_produce.py {}", args.join(" ")), node);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.starts_with('{') && !l.starts_with("{\"progress\""));
    let line =
        line.unwrap_or_else(|| panic!("prod_produce.py printed no result:\n{}", support::tail(&out.stdout, 4000)));
    json::parse(line).unwrap_or_else(|e| panic!("prod_produce.py: bad JSON ({e})"))
}

/// kafka-python must be able to (de)compress `codec` in this venv; else fail naming the
/// missing pip package.
fn require_kafka_python_codec(node: &Node, codec: &str) {
    let v = py_json_timeout(node, "prod_kp_codec.py", &[codec], Duration::from_secs(60));
    if !v["ok"].bool() {
        let pkg = v["missing_package"].str();
        panic!(
            "kafka-python {} cannot handle {codec}: pip package '{pkg}' is not installed in .venv \
             (scripts/test-deps.sh must install it: .venv/bin/pip install {pkg})",
            v["kafka_python"].str()
        );
    }
}

/// Consumes `count` records of `topic` from the earliest offset with ck_consume.py or
/// kp_consume.py.
fn consume(node: &Node, script: &str, topic: &str, count: usize, timeout_s: u64) -> Consumed {
    let (count_s, timeout) = (count.to_string(), timeout_s.to_string());
    let v = py_json_timeout(
        node,
        script,
        &["--bootstrap", node.bootstrap(), "--topic", topic, "--count", &count_s, "--timeout", &timeout],
        Duration::from_secs(timeout_s + 60),
    );
    figure(&format!("{script} {topic}: {} records in {} s ({})", v["count"], v["elapsed_s"], v["client"]));
    assert!(v["errors"].arr().is_empty(), "{script} {topic}: consumer errors {}\n{}", v["errors"], node.logs(40));
    Consumed::from_json(&v)
}

fn assert_ok(what: &str, r: Result<(), String>, node: &Node) {
    if let Err(e) = r {
        panic!("[{what}] {e}\n{}", node.logs(40));
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Codecs.

const CODEC_PARTITIONS: usize = 3;

fn codec_node() -> Node {
    Node::start(&["--cores", "0", "--set", "num.partitions=3"])
}

fn codec_produce_args(node: &Node, client: &str, topic: &str, codec: &str) -> Vec<String> {
    strings(&[
        "--client",
        client,
        "--bootstrap",
        node.bootstrap(),
        "--topic",
        topic,
        "--count",
        &CODEC_MESSAGES.to_string(),
        "--codec",
        codec,
        "--headers",
        "--value-size",
        &CODEC_VALUE_SIZE.to_string(),
        "--report-acks",
    ])
}

/// confluent-kafka produces with `codec`, the node stores batches of `codec`, kafka-python
/// reads every record back intact.
fn confluent_produces_kafka_python_consumes(codec: &str) {
    let node = codec_node();
    let topic = format!("ck-{codec}");
    let args = codec_produce_args(&node, "ck", &topic, codec);
    let (_, acks) = produce(&node, &format!("ck produce {codec}"), &args, CODEC_MESSAGES);
    assert_stored_codec(&node, &topic, CODEC_PARTITIONS, codec, CODEC_MESSAGES);
    require_kafka_python_codec(&node, codec);
    let got = consume(&node, "kp_consume.py", &topic, CODEC_MESSAGES, 60);
    let sent = Produced {
        label: format!("confluent-kafka {codec}"),
        start: 0,
        count: CODEC_MESSAGES,
        value_size: CODEC_VALUE_SIZE,
        headers: Some("ck"),
        acks,
    };
    assert_ok(&format!("ck {codec} -> kafka-python"), verify(&[&sent], &got), &node);
}

/// kafka-python produces with `codec`, the node stores batches of `codec`, confluent-kafka
/// reads every record back intact.
fn kafka_python_produces_confluent_consumes(codec: &str) {
    let node = codec_node();
    let topic = format!("kp-{codec}");
    let args = codec_produce_args(&node, "kp", &topic, codec);
    let (_, acks) = produce(&node, &format!("kp produce {codec}"), &args, CODEC_MESSAGES);
    assert_stored_codec(&node, &topic, CODEC_PARTITIONS, codec, CODEC_MESSAGES);
    let got = consume(&node, "ck_consume.py", &topic, CODEC_MESSAGES, 60);
    let sent = Produced {
        label: format!("kafka-python {codec}"),
        start: 0,
        count: CODEC_MESSAGES,
        value_size: CODEC_VALUE_SIZE,
        headers: Some("kp"),
        acks,
    };
    assert_ok(&format!("kp {codec} -> confluent-kafka"), verify(&[&sent], &got), &node);
}

/// Uncompressed batches from librdkafka are stored uncompressed and read back intact by kafka-python.
#[test]
fn codec_none_confluent_to_kafka_python() {
    confluent_produces_kafka_python_consumes("none");
}

/// gzip batches from librdkafka are stored as gzip and read back intact by kafka-python.
#[test]
fn codec_gzip_confluent_to_kafka_python() {
    confluent_produces_kafka_python_consumes("gzip");
}

/// snappy batches from librdkafka are stored as snappy and read back intact by kafka-python.
#[test]
fn codec_snappy_confluent_to_kafka_python() {
    confluent_produces_kafka_python_consumes("snappy");
}

/// lz4 batches from librdkafka are stored as lz4 and read back intact by kafka-python.
#[test]
fn codec_lz4_confluent_to_kafka_python() {
    confluent_produces_kafka_python_consumes("lz4");
}

/// zstd batches from librdkafka are stored as zstd and read back intact by kafka-python.
#[test]
fn codec_zstd_confluent_to_kafka_python() {
    confluent_produces_kafka_python_consumes("zstd");
}

/// Uncompressed batches from kafka-python are stored uncompressed and read back intact by librdkafka.
#[test]
fn codec_none_kafka_python_to_confluent() {
    kafka_python_produces_confluent_consumes("none");
}

/// gzip batches from kafka-python are stored as gzip and read back intact by librdkafka.
#[test]
fn codec_gzip_kafka_python_to_confluent() {
    kafka_python_produces_confluent_consumes("gzip");
}

/// snappy batches from kafka-python are stored as snappy and read back intact by librdkafka.
#[test]
fn codec_snappy_kafka_python_to_confluent() {
    kafka_python_produces_confluent_consumes("snappy");
}

/// lz4 batches from kafka-python are stored as lz4 and read back intact by librdkafka.
#[test]
fn codec_lz4_kafka_python_to_confluent() {
    kafka_python_produces_confluent_consumes("lz4");
}

/// zstd batches from kafka-python are stored as zstd and read back intact by librdkafka.
#[test]
fn codec_zstd_kafka_python_to_confluent() {
    kafka_python_produces_confluent_consumes("zstd");
}

// ---------------------------------------------------------------------------------------------
// 2. Idempotence under SIGKILL.

/// The last progress line of a running prod_produce.py: (produced, acked, errors).
fn progress(bg: &Bg) -> Option<(i64, i64, i64)> {
    let lines = bg.lines();
    let line = lines.iter().rev().find(|l| l.starts_with("{\"progress\""))?;
    let v = json::parse(line).ok()?;
    Some((v["produced"].i64(), v["acked"].i64(), v["errors"].i64()))
}

/// Waits until the producer has `acked` messages acknowledged; panics when it exits first or
/// `timeout` passes.
fn wait_acked(bg: &mut Bg, acked: i64, timeout: Duration, node: &Node) -> (i64, i64, i64) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(p) = progress(bg) {
            if p.1 >= acked {
                return p;
            }
        }
        if !bg.is_running() {
            panic!("{} exited before {acked} acks\n{}\n{}", bg.name, bg.logs(20), node.logs(40));
        }
        if Instant::now() >= deadline {
            panic!(
                "{}: fewer than {acked} acks after {timeout:?} (last progress {:?})\n{}\n{}",
                bg.name,
                progress(bg),
                bg.logs(20),
                node.logs(40)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A node on a fixed port (so clients find it again after a restart).
fn node_on_fixed_port(partitions: usize) -> (Node, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    let parts = format!("num.partitions={partitions}");
    let node = Node::start(&["--cores", "0", "--set", &parts, "--listen", &listen]);
    assert_eq!(node.bootstrap(), listen, "the node must listen on the port chosen");
    (node, listen)
}

/// An idempotent `client` producer sends IDEM_MESSAGES keyed messages into 6 partitions while
/// the node is SIGKILLed at 30% and 65% of the acks and restarted on the same port (~0.7 s
/// down); then the topic must hold every message exactly once, in order, where it was acked.
fn idempotent_producer_survives_sigkills(client: &str) {
    let (mut node, listen) = node_on_fixed_port(6);
    let topic = format!("idem-{client}");
    let args = strings(&[
        "--client",
        client,
        "--bootstrap",
        &listen,
        "--topic",
        &topic,
        "--count",
        &IDEM_MESSAGES.to_string(),
        "--idempotence",
        "--rate",
        &IDEM_RATE.to_string(),
        "--progress",
        "0.05",
        "--report-acks",
        "--timeout",
        "120",
    ]);
    let t0 = Instant::now();
    let mut prod = Bg::py(&format!("{client}-idempotent"), "prod_produce.py", &args);
    // Per kill: the partitions' stored ends the killed node left, and the wall-clock ms when
    // the new node was started.
    let mut kills: Vec<(Vec<i64>, i64)> = Vec::new();
    for (k, share) in [(1, 30), (2, 65)] {
        let at = wait_acked(&mut prod, (IDEM_MESSAGES * share / 100) as i64, Duration::from_secs(60), &node);
        node.kill();
        let down = Instant::now();
        let ends = stored_ends(&node, &topic, 6);
        std::thread::sleep(Duration::from_millis(700));
        kills.push((ends, now_ms()));
        node.restart();
        assert_eq!(node.bootstrap(), listen, "the restarted node must listen on the same port");
        let downtime = down.elapsed();
        // The producer must get going again: 2000 more acks (a quarter second of its pace).
        let again = wait_acked(&mut prod, at.1 + 2000, Duration::from_secs(60), &node);
        figure(&format!(
            "{topic}: kill {k} at ~{} produced / ~{} acked, down {downtime:.2?}, {} acked {:.2?} after the kill",
            at.0,
            at.1,
            again.1,
            down.elapsed()
        ));
    }
    if prod.wait(Duration::from_secs(150)).is_none() {
        prod.kill();
        panic!("{} did not finish within 150 s\n{}\n{}", prod.name, prod.logs(20), node.logs(40));
    }
    let lines = prod.lines();
    let line = lines.iter().rev().find(|l| l.starts_with("{\"client\""));
    let line = line.unwrap_or_else(|| panic!("{} printed no result\n{}\n{}", prod.name, prod.logs(20), node.logs(40)));
    let out = json::parse(line).unwrap_or_else(|e| panic!("{}: bad JSON ({e})", prod.name));
    let acks = check_produced(&prod.name, &out, IDEM_MESSAGES, &node);
    let errors = out["client_errors"].arr();
    figure(&format!(
        "{topic}: {IDEM_MESSAGES} messages with 2 SIGKILLs in {} s ({}), client stats {}, {} client error reports{}",
        out["elapsed_s"],
        out["client"],
        out["stats"],
        errors.len(),
        errors.first().map_or(String::new(), |e| format!(", e.g. {e}"))
    ));
    // Messages the killed node had stored but whose acknowledgement came only after the new
    // node was started (0.7 s after the kill: the dead node's last responses are long read):
    // the producer resent them and the restarted node answered them as duplicates, with their
    // original offsets (verify() checks the offsets). How many there are is up to timing.
    for (k, (ends, restart_ms)) in kills.iter().enumerate() {
        let resent = acks.iter().filter(|a| a.t_ms >= *restart_ms && a.o < ends[a.p as usize]).count();
        figure(&format!(
            "{topic}: kill {}: {} records on disk; {resent} of them acknowledged only by the restarted node \
             (resent by the producer, recognised as duplicates)",
            k + 1,
            ends.iter().sum::<i64>()
        ));
    }
    let pairs = assert_stored_sequences(&node, &topic, 6);
    figure(&format!("{topic}: stored batches from (producer id, epoch) {pairs:?}"));
    let got = consume(&node, "ck_consume.py", &topic, IDEM_MESSAGES, 90);
    let sent = Produced {
        label: format!("{client} idempotent"),
        start: 0,
        count: IDEM_MESSAGES,
        value_size: 0,
        headers: None,
        acks,
    };
    assert_ok(&format!("{client} idempotent across 2 SIGKILLs"), verify(&[&sent], &got), &node);
    figure(&format!("{topic}: whole test {:.1?}", t0.elapsed()));
}

/// confluent-kafka's idempotent producer: 100k messages, node SIGKILLed twice mid-run; exactly once, in order.
#[test]
fn idempotent_confluent_producer_exactly_once_across_sigkills() {
    idempotent_producer_survives_sigkills("ck");
}

/// kafka-python's idempotent producer: 100k messages, node SIGKILLed twice mid-run; exactly once, in order.
#[test]
fn idempotent_kafka_python_producer_exactly_once_across_sigkills() {
    idempotent_producer_survives_sigkills("kp");
}

// ---------------------------------------------------------------------------------------------
// 3. Two idempotent producers at once.

/// An idempotent kafka-python producer (gzip) and an idempotent confluent-kafka one (zstd)
/// write the same 6-partition topic at the same time: both succeed, each keeps its order, and
/// the stored batches carry two producer ids with unbroken sequences.
#[test]
fn idempotent_kafka_python_and_confluent_producers_share_a_topic() {
    let node = Node::start(&["--cores", "0", "--set", "num.partitions=6"]);
    let topic = "idem-shared";
    let n = 20_000;
    let args = |client: &str, start: usize, codec: &str| {
        strings(&[
            "--client",
            client,
            "--bootstrap",
            node.bootstrap(),
            "--topic",
            topic,
            "--count",
            &n.to_string(),
            "--start",
            &start.to_string(),
            "--codec",
            codec,
            "--idempotence",
            "--headers",
            "--report-acks",
            "--timeout",
            "60",
        ])
    };
    let mut kp = Bg::py("kp-idempotent", "prod_produce.py", &args("kp", 0, "gzip"));
    let mut ck = Bg::py("ck-idempotent", "prod_produce.py", &args("ck", n, "zstd"));
    let mut runs = Vec::new();
    for (bg, client, start) in [(&mut kp, "kp", 0), (&mut ck, "ck", n)] {
        let status = bg.wait(Duration::from_secs(120));
        assert!(
            status.is_some_and(|s| s.success()),
            "{} did not finish cleanly ({status:?})\n{}\n{}",
            bg.name,
            bg.logs(20),
            node.logs(40)
        );
        let lines = bg.lines();
        let line = lines.iter().rev().find(|l| l.starts_with('{')).expect("a result line");
        let out = json::parse(line).unwrap_or_else(|e| panic!("{}: bad JSON ({e})", bg.name));
        let acks = check_produced(&bg.name, &out, n, &node);
        figure(&format!("{topic}: {} sent {n} in {} s ({})", bg.name, out["elapsed_s"], out["client"]));
        runs.push(Produced { label: bg.name.clone(), start, count: n, value_size: 0, headers: Some(client), acks });
    }
    let pairs = assert_stored_sequences(&node, topic, 6);
    let ids: Vec<i64> = pairs.iter().map(|p| p.0).collect();
    assert!(
        ids.len() == 2 && ids[0] != ids[1],
        "{topic}: want batches of two producer ids (one each), got (id, epoch) {pairs:?}"
    );
    let got = consume(&node, "ck_consume.py", topic, 2 * n, 60);
    assert_ok("kafka-python + confluent-kafka idempotent", verify(&[&runs[0], &runs[1]], &got), &node);
}

/// A topic created with `compression.type=zstd` stores zstd whatever the producers send:
/// librdkafka's uncompressed batches and kafka-python's gzip ones are re-encoded, and a
/// consumer reads every record back intact. A config the node cannot honour is refused at
/// creation with INVALID_CONFIG instead of being ignored.
#[test]
fn a_topic_with_a_fixed_compression_type_stores_that_codec() {
    let node = codec_node();
    let topic = "fixed-zstd";
    let created = py_json(
        &node,
        "prod_create_topic.py",
        &["--bootstrap", node.bootstrap(), "--topic", topic, "--partitions", "3", "--config", "compression.type=zstd"],
    );
    assert!(created["error"].is_null(), "creating {topic}: {:?}", created["message"].opt_str());
    let ck_args = codec_produce_args(&node, "ck", topic, "none");
    let (_, ck_acks) = produce(&node, "ck produce none into a zstd topic", &ck_args, CODEC_MESSAGES);
    require_kafka_python_codec(&node, "gzip");
    let mut kp_args = codec_produce_args(&node, "kp", topic, "gzip");
    kp_args.extend(strings(&["--start", &CODEC_MESSAGES.to_string()]));
    let (_, kp_acks) = produce(&node, "kp produce gzip into a zstd topic", &kp_args, CODEC_MESSAGES);
    assert_stored_codec(&node, topic, CODEC_PARTITIONS, "zstd", 2 * CODEC_MESSAGES);
    let got = consume(&node, "ck_consume.py", topic, 2 * CODEC_MESSAGES, 60);
    let from_ck = Produced {
        label: "confluent-kafka none → zstd".into(),
        start: 0,
        count: CODEC_MESSAGES,
        value_size: CODEC_VALUE_SIZE,
        headers: Some("ck"),
        acks: ck_acks,
    };
    let from_kp = Produced {
        label: "kafka-python gzip → zstd".into(),
        start: CODEC_MESSAGES,
        count: CODEC_MESSAGES,
        value_size: CODEC_VALUE_SIZE,
        headers: Some("kp"),
        acks: kp_acks,
    };
    assert_ok("a zstd topic read back", verify(&[&from_ck, &from_kp], &got), &node);

    let refused = py_json(
        &node,
        "prod_create_topic.py",
        &["--bootstrap", node.bootstrap(), "--topic", "compacted", "--config", "cleanup.policy=shred"],
    );
    assert_eq!(refused["error"].opt_str(), Some("INVALID_CONFIG"), "an unknown cleanup.policy must be refused");
    let refused = py_json(
        &node,
        "prod_create_topic.py",
        &["--bootstrap", node.bootstrap(), "--topic", "typo", "--config", "retention.msec=5"],
    );
    assert_eq!(refused["error"].opt_str(), Some("INVALID_CONFIG"), "an unknown config must be refused");
}
