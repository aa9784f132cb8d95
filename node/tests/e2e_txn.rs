//! Transactions end to end with real clients (issue 6, "Show" 3): confluent-kafka (librdkafka)
//! and kafka-python against a real `sluice` node.
//!
//! - Consume-transform-produce: a transactional loop (`tests/clients/txn_ctp.py`) reads an
//!   input topic in a consumer group, writes each batch transformed to an output topic and
//!   sends the consumer's offsets to the same transaction; every third transaction is aborted
//!   and redone. read_committed consumers (both clients) must see each input message exactly
//!   once and nothing of an aborted transaction; a read_uncommitted consumer sees everything
//!   written, aborted records included; the group's committed offsets end at the input's log
//!   ends and never move with an aborted transaction; ListOffsets by isolation level, and the
//!   commit/abort markers in the segment files, agree.
//! - A producer SIGKILLed in the middle of a transaction: its records stay invisible to
//!   read_committed consumers, which also see nothing written after them (the last stable
//!   offset stops at the open transaction) until the node aborts it after
//!   transaction.timeout.ms; then the later records appear, the hung ones never, and the last
//!   stable offset reaches the log end. The same transactional id works again afterwards.
//! - A zombie: producer B initialises the transactional id producer A is in a transaction with;
//!   A's transaction is aborted, A is fenced (a fatal error), nothing A wrote becomes visible to
//!   read_committed consumers, and B's transaction commits.
//!
//! (confluent-kafka 2.16's AdminClient has no list/describe_transactions: no admin test here.)
//!
//! Needs `bash scripts/test-deps.sh`. Every node runs with a 500 ms check for timed-out
//! transactions and a 200 ms initial rebalance delay. Input message i is ck_produce.py's
//! (key `key-{i % 1000}`, value `val-{i}`); the loop's output record for it in transaction n
//! has the same key and the value `out-{i}-t{n}`, so every record seen names its transaction.

mod support;

use support::{be_i16, be_i32, be_i64, create_topic};

use sluice::testing::TempDir;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::json::{self, Json, Value};
use support::{py_json_timeout, Bg, Node};

/// The node settings of every test: timed-out transactions are looked for every 500 ms (the
/// default 10 s would make the hung-producer test slow), groups form 200 ms after the first
/// join, and session timeouts down to 1 s are allowed.
const TXN_SETTINGS: &[&str] = &[
    "--set",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms=500",
    "--set",
    "group.initial.rebalance.delay.ms=200",
    "--set",
    "group.min.session.timeout.ms=1000",
];

/// Input messages of the consume-transform-produce tests.
const CTP_MESSAGES: usize = 600;
/// Input records per transaction at most.
const CTP_BATCH: usize = 40;
/// Every k-th transaction of the loop is aborted.
const CTP_ABORT_EVERY: usize = 3;
/// transaction.timeout.ms of the producer that is killed mid-transaction.
const HUNG_TIMEOUT_MS: i64 = 10_000;

fn start_node(cores: &str, partitions: u32) -> Node {
    let np = format!("num.partitions={partitions}");
    let mut args: Vec<&str> = vec!["--cores", cores, "--set", &np];
    args.extend_from_slice(TXN_SETTINGS);
    Node::start(&args)
}

fn figure(line: &str) {
    eprintln!("e2e figure: {line}");
}

fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Polls `ok` every 100 ms until it holds; panics after `timeout` with `what` and `diag()`.
fn wait_for(what: &str, timeout: Duration, diag: impl Fn() -> String, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}\n{}", diag());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Produces ck_produce.py's messages `start..start+count` (plain producer, acks=all), to
/// `partition` or by key. Returns per partition (count, first offset, last offset).
fn produce_plain(
    node: &Node,
    topic: &str,
    start: usize,
    count: usize,
    partition: Option<i32>,
) -> BTreeMap<i32, (i64, i64, i64)> {
    let p = partition.map(|p| p.to_string());
    let extra: Vec<&str> = p.as_deref().map(|p| vec!["--partition", p]).unwrap_or_default();
    let out = support::ck_produce_all(node, topic, start as i64, count, &extra);
    out["partitions"]
        .obj()
        .iter()
        .map(|(p, s)| (p.parse().unwrap(), (s["count"].i64(), s["first"].i64(), s["last"].i64())))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reading topics (txn_consume.py) and their end offsets (txn_offsets.py).

/// One consumed record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rec {
    p: i32,
    o: i64,
    key: Option<String>,
    value: Option<String>,
}

impl Rec {
    fn value(&self) -> &str {
        self.value.as_deref().unwrap_or("<null>")
    }
}

fn recs_of(rows: &Value) -> Vec<Rec> {
    rows.arr()
        .iter()
        .map(|r| {
            let r = r.arr();
            Rec {
                p: r[0].i64() as i32,
                o: r[1].i64(),
                key: r[2].opt_str().map(str::to_string),
                value: r[3].opt_str().map(str::to_string),
            }
        })
        .collect()
}

/// Reads `topic` from the beginning with `client` at `isolation` until `count` records came
/// (then `linger_s` more seconds, to catch records that must not be there). The reader must
/// get them all, without errors.
fn read_topic(node: &Node, client: &str, topic: &str, isolation: &str, count: usize, linger_s: f64) -> Vec<Rec> {
    let (c, l) = (count.to_string(), linger_s.to_string());
    let args = [
        "--client",
        client,
        "--bootstrap",
        node.bootstrap(),
        "--topic",
        topic,
        "--isolation",
        isolation,
        "--count",
        &c,
        "--linger",
        &l,
        "--timeout",
        "40",
    ];
    let v = py_json_timeout(node, "txn_consume.py", &args, Duration::from_secs(70));
    let recs = recs_of(&v["records"]);
    assert!(
        v["errors"].arr().is_empty(),
        "{client} {isolation} reader of {topic}: errors {}\n{}",
        v["errors"],
        node.logs(40)
    );
    assert!(
        !v["timed_out"].bool(),
        "{client} {isolation} reader of {topic}: only {} of {count} records within 40 s; last ones: {:?}\n{}",
        recs.len(),
        &recs[recs.len().saturating_sub(5)..],
        node.logs(40)
    );
    figure(&format!("{topic}: {} records {isolation} in {} s ({})", recs.len(), v["elapsed_s"], v["client"]));
    recs
}

/// End offsets of `topic` by `client`'s ListOffsets: (read_committed, read_uncommitted) per
/// partition.
fn end_offsets(node: &Node, client: &str, topic: &str) -> (BTreeMap<i32, i64>, BTreeMap<i32, i64>) {
    let v = py_json_timeout(
        node,
        "txn_offsets.py",
        &["--client", client, "--bootstrap", node.bootstrap(), "--topic", topic],
        Duration::from_secs(60),
    );
    let map = |x: &Value| x.obj().iter().map(|(p, o)| (p.parse::<i32>().unwrap(), o.i64())).collect();
    (map(&v["committed"]), map(&v["uncommitted"]))
}

/// A txn_consume.py --follow reader in the background.
struct Follower {
    bg: Bg,
    stop_file: PathBuf,
}

impl Follower {
    fn start(node: &Node, dir: &TempDir, client: &str, topic: &str, isolation: &str) -> Follower {
        let name = format!("{client}-{isolation}");
        let stop_file = dir.path().join(format!("stop-{name}"));
        let args = strings(&[
            "--client",
            client,
            "--bootstrap",
            node.bootstrap(),
            "--topic",
            topic,
            "--isolation",
            isolation,
            "--follow",
            "--stop-file",
            stop_file.to_str().unwrap(),
            "--timeout",
            "90",
        ]);
        Follower { bg: Bg::py(&name, "txn_consume.py", &args), stop_file }
    }

    /// Every record so far with the wall-clock ms of the poll batch that brought it.
    fn records(&self) -> Vec<(f64, Rec)> {
        let mut out = Vec::new();
        for e in self.bg.events() {
            if e["ev"].opt_str() == Some("recs") {
                let t = e["t"].f64();
                out.extend(recs_of(&e["r"]).into_iter().map(|r| (t, r)));
            }
        }
        out
    }

    fn count(&self) -> usize {
        self.records().len()
    }

    /// Stops it (stop file) and returns its summary; it must have seen no error.
    fn stop(&mut self, node: &Node) -> Value {
        std::fs::write(&self.stop_file, b"stop").unwrap();
        match self.bg.wait(Duration::from_secs(30)) {
            None => panic!("{} did not stop within 30 s\n{}", self.bg.name, self.bg.logs(20)),
            Some(s) => {
                assert!(s.success(), "{} exited with {s}\n{}\n{}", self.bg.name, self.bg.logs(30), node.logs(30))
            }
        }
        let lines = self.bg.lines();
        let last = lines.iter().rev().find(|l| l.starts_with("{\"client\""));
        let last = last.unwrap_or_else(|| panic!("{} printed no summary\n{}", self.bg.name, self.bg.logs(20)));
        let v = json::parse(last).unwrap_or_else(|e| panic!("{}: bad JSON ({e})", self.bg.name));
        assert!(v["errors"].arr().is_empty(), "{}: errors {}\n{}", self.bg.name, v["errors"], node.logs(30));
        v
    }
}

// ---------------------------------------------------------------------------------------------
// Stored batches: transactional data batches and control (marker) batches, from the segment
// files.

/// One stored record batch (Kafka's v2 header) and, for a control batch, its marker type.
#[derive(Clone, Copy, Debug)]
struct Batch {
    base_offset: i64,
    attributes: i16,
    last_offset_delta: i32,
    producer_id: i64,
    producer_epoch: i16,
    record_count: i32,
    /// Control batches: the type in the first record's key (0 abort, 1 commit).
    marker: Option<i16>,
}

impl Batch {
    fn transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    fn control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
}

const ABORT: i16 = 0;
const COMMIT: i16 = 1;

/// A zigzag varint (Kafka's record fields).
fn varint(b: &[u8], pos: &mut usize) -> i64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let byte = b[*pos];
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// The control type of a control batch `b` (whole batch bytes): its first record's key is
/// (version: i16, type: i16).
fn marker_type(b: &[u8]) -> i16 {
    let mut pos = 61;
    let _len = varint(b, &mut pos);
    pos += 1; // attributes
    let _ts_delta = varint(b, &mut pos);
    let _off_delta = varint(b, &mut pos);
    let key_len = varint(b, &mut pos);
    assert!(key_len >= 4, "control record with a {key_len}-byte key");
    be_i16(b, pos + 2)
}

/// The batches of one `.log` file; zero bytes after the last one (preallocation) end it.
fn parse_segment(path: &Path) -> Vec<Batch> {
    const HEADER: usize = 61;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        assert!(rest.len() >= HEADER, "{}: {} stray bytes at position {pos}", path.display(), rest.len());
        let size = 12 + be_i32(rest, 8) as usize;
        assert!(
            size >= HEADER && size <= rest.len(),
            "{}: batch at position {pos} claims {size} bytes, {} left",
            path.display(),
            rest.len()
        );
        let mut b = Batch {
            base_offset: be_i64(rest, 0),
            attributes: be_i16(rest, 21),
            last_offset_delta: be_i32(rest, 23),
            producer_id: be_i64(rest, 43),
            producer_epoch: be_i16(rest, 51),
            record_count: be_i32(rest, 57),
            marker: None,
        };
        if b.control() {
            b.marker = Some(marker_type(&rest[..size]));
        }
        out.push(b);
        pos += size;
    }
    out
}

/// Every stored batch of `topic`'s partition `p`, in log order (offsets checked dense).
fn stored_batches(node: &Node, topic: &str, p: i32) -> Vec<Batch> {
    let dir = node.data_dir().join(format!("{topic}-{p}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|f| f.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    let batches: Vec<Batch> = files.iter().flat_map(|f| parse_segment(f)).collect();
    let mut next = 0;
    for b in &batches {
        assert_eq!(b.base_offset, next, "{topic}-{p}: stored offsets not dense at {b:?}");
        next = b.base_offset + b.last_offset_delta as i64 + 1;
    }
    batches
}

fn markers(batches: &[Batch], kind: i16) -> Vec<&Batch> {
    batches.iter().filter(|b| b.marker == Some(kind)).collect()
}

// ---------------------------------------------------------------------------------------------
// Show 3a: consume-transform-produce with offsets in the transaction, every third aborted.

/// One transaction of txn_ctp.py.
#[derive(Debug)]
struct Txn {
    n: i64,
    commit: bool,
    /// Input records (partition, offset, message index).
    ins: Vec<(i32, i64, i64)>,
    /// Output records (partition, offset, message index) as delivered.
    outs: Vec<(i32, i64, i64)>,
    /// Offsets sent to the transaction: (input partition, next offset).
    sent: Vec<(i32, i64)>,
    /// Aborted ones: the group's committed offsets read back afterwards (-1: none).
    committed_after: Option<Vec<(i32, i64)>>,
}

fn triples(v: &Value) -> Vec<(i32, i64, i64)> {
    v.arr().iter().map(|x| (x.arr()[0].i64() as i32, x.arr()[1].i64(), x.arr()[2].i64())).collect()
}

fn pairs(v: &Value) -> Vec<(i32, i64)> {
    v.arr().iter().map(|x| (x.arr()[0].i64() as i32, x.arr()[1].i64())).collect()
}

fn parse_txns(out: &Value) -> Vec<Txn> {
    out["txns"]
        .arr()
        .iter()
        .map(|t| Txn {
            n: t["n"].i64(),
            commit: t["action"].str() == "commit",
            ins: triples(&t["in"]),
            outs: triples(&t["out"]),
            sent: pairs(&t["sent"]),
            committed_after: if t["committed_after"].is_null() { None } else { Some(pairs(&t["committed_after"])) },
        })
        .collect()
}

/// (message index, transaction number) of an output value `out-{i}-t{n}`.
fn parse_out(value: &str) -> Option<(i64, i64)> {
    let rest = value.strip_prefix("out-")?;
    let (i, n) = rest.split_once("-t")?;
    Some((i.parse().ok()?, n.parse().ok()?))
}

/// What a read_committed consumer of the output must see: each input message once, from a
/// committed transaction, at the offset its delivery report named, with the input's key, in
/// offset order per partition.
fn check_committed_view(who: &str, recs: &[Rec], txns: &[Txn], n: usize) -> Vec<String> {
    let mut errs = Vec::new();
    let by_n: BTreeMap<i64, &Txn> = txns.iter().map(|t| (t.n, t)).collect();
    let mut seen: BTreeMap<i64, Vec<&Rec>> = BTreeMap::new();
    let mut aborted_seen = Vec::new();
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for r in recs {
        if let Some(prev) = last.insert(r.p, r.o) {
            if r.o <= prev {
                errs.push(format!("{who}: partition {} offset {} delivered after {prev}", r.p, r.o));
            }
        }
        let Some((i, t)) = parse_out(r.value()) else {
            errs.push(format!("{who}: a record that is no output of the loop: {r:?}"));
            continue;
        };
        match by_n.get(&t) {
            None => errs.push(format!("{who}: record of unknown transaction {t}: {r:?}")),
            Some(txn) if !txn.commit => aborted_seen.push(r),
            Some(txn) => {
                if !txn.outs.contains(&(r.p, r.o, i)) {
                    errs.push(format!("{who}: {r:?} is not where transaction {t} wrote message {i}"));
                }
            }
        }
        let want_key = format!("key-{}", i % 1000);
        if r.key.as_deref() != Some(want_key.as_str()) {
            errs.push(format!("{who}: {r:?} should have the key {want_key}"));
        }
        seen.entry(i).or_default().push(r);
    }
    if !aborted_seen.is_empty() {
        errs.push(format!(
            "{who}: {} records of aborted transactions, e.g. {:?}",
            aborted_seen.len(),
            &aborted_seen[..aborted_seen.len().min(5)]
        ));
    }
    let missing: Vec<usize> = (0..n).filter(|i| !seen.contains_key(&(*i as i64))).collect();
    if !missing.is_empty() {
        errs.push(format!("{who}: {} messages missing, e.g. {:?}", missing.len(), &missing[..missing.len().min(10)]));
    }
    let dups: Vec<String> = seen
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(i, v)| format!("{i}: {:?}", v.iter().map(|r| r.value()).collect::<Vec<_>>()))
        .collect();
    if !dups.is_empty() {
        errs.push(format!(
            "{who}: {} messages more than once, e.g. {}",
            dups.len(),
            dups[..dups.len().min(5)].join("; ")
        ));
    }
    errs
}

/// Committed offsets of `group` through confluent-kafka's admin API (OffsetFetch).
fn group_offsets(node: &Node, group: &str) -> BTreeMap<i32, i64> {
    let v = py_json_timeout(
        node,
        "grp_admin.py",
        &["offsets", "--client", "ck", "--bootstrap", node.bootstrap(), "--group", group],
        Duration::from_secs(60),
    );
    assert!(v["error"].is_null(), "offsets of {group}: {v}\n{}", node.logs(30));
    v["offsets"].arr().iter().map(|o| (o.arr()[1].i64() as i32, o.arr()[2].i64())).collect()
}

/// The consume-transform-produce loop of `client` over a 3-partition input of CTP_MESSAGES,
/// then what every kind of reader, the group, ListOffsets and the segment files say.
fn consume_transform_produce(client: &str, cores: &str) {
    let mut node = start_node(cores, 3);
    let (input, output) = (format!("ctp-in-{client}"), format!("ctp-out-{client}"));
    let (group, txn_id) = (format!("ctp-group-{client}"), format!("ctp-txn-{client}"));
    create_topic(&node, &input, 3);
    create_topic(&node, &output, 3);
    let in_ends: BTreeMap<i32, i64> =
        produce_plain(&node, &input, 0, CTP_MESSAGES, None).into_iter().map(|(p, (c, _, _))| (p, c)).collect();
    assert_eq!(in_ends.len(), 3, "the input messages should spread over 3 partitions: {in_ends:?}");

    let (expect, batch, every) = (CTP_MESSAGES.to_string(), CTP_BATCH.to_string(), CTP_ABORT_EVERY.to_string());
    let out = py_json_timeout(
        &node,
        "txn_ctp.py",
        &[
            "--client",
            client,
            "--bootstrap",
            node.bootstrap(),
            "--input",
            &input,
            "--output",
            &output,
            "--group",
            &group,
            "--txn-id",
            &txn_id,
            "--expect",
            &expect,
            "--batch",
            &batch,
            "--abort-every",
            &every,
            "--timeout",
            "50",
        ],
        Duration::from_secs(70),
    );
    let txns = parse_txns(&out);
    let (committed, aborted): (Vec<&Txn>, Vec<&Txn>) = txns.iter().partition(|t| t.commit);
    figure(&format!(
        "{client}: {} committed + {} aborted transactions ({} + {} input records) in {} s ({})",
        committed.len(),
        aborted.len(),
        out["committed_records"],
        out["aborted_records"],
        out["elapsed_s"],
        out["client"]
    ));
    assert!(
        committed.len() >= 3 && aborted.len() >= 2,
        "{client}: the loop should have committed and aborted several transactions: {} / {}",
        committed.len(),
        aborted.len()
    );
    let mut errs: Vec<String> = Vec::new();

    // The loop itself: the committed transactions processed every input record exactly once
    // (aborted batches were read again from the committed offsets and redone).
    let mut done: BTreeMap<(i32, i64), Vec<i64>> = BTreeMap::new();
    for t in &committed {
        for &(p, o, _) in &t.ins {
            done.entry((p, o)).or_default().push(t.n);
        }
    }
    let all_in: BTreeSet<(i32, i64)> = in_ends.iter().flat_map(|(&p, &c)| (0..c).map(move |o| (p, o))).collect();
    let missing: Vec<&(i32, i64)> = all_in.iter().filter(|k| !done.contains_key(k)).collect();
    let twice: Vec<(&(i32, i64), &Vec<i64>)> = done.iter().filter(|(_, v)| v.len() > 1).collect();
    let stray: Vec<&(i32, i64)> = done.keys().filter(|k| !all_in.contains(k)).collect();
    if !missing.is_empty() || !twice.is_empty() || !stray.is_empty() {
        errs.push(format!(
            "loop: input records never committed {:?}, committed twice {:?}, unknown {:?}",
            &missing[..missing.len().min(10)],
            &twice[..twice.len().min(10)],
            &stray[..stray.len().min(10)]
        ));
    }
    for t in &txns {
        if t.outs.len() != t.ins.len() {
            errs.push(format!("transaction {}: {} records in, {} delivered", t.n, t.ins.len(), t.outs.len()));
        }
    }
    // The group's offsets move with committed transactions only: after each abort they read
    // back as the offsets of the transactions committed before it.
    let mut group_now: BTreeMap<i32, i64> = BTreeMap::new();
    for t in &txns {
        if t.commit {
            group_now.extend(t.sent.iter().copied());
        } else {
            let after: BTreeMap<i32, i64> =
                t.committed_after.as_ref().unwrap().iter().copied().filter(|&(_, o)| o >= 0).collect();
            if after != group_now {
                errs.push(format!(
                    "after aborted transaction {} (which sent {:?}) the group's committed offsets read {after:?}, \
                     want those of the committed ones before it: {group_now:?}",
                    t.n, t.sent
                ));
            }
        }
    }
    assert!(errs.is_empty(), "{client} consume-transform-produce:\n  {}\n{}", errs.join("\n  "), node.logs(40));

    // read_committed, with both clients: each input message once, nothing aborted.
    for reader in ["ck", "kp"] {
        let recs = read_topic(&node, reader, &output, "read_committed", CTP_MESSAGES, 1.5);
        errs.extend(check_committed_view(&format!("{reader} read_committed"), &recs, &txns, CTP_MESSAGES));
    }

    // read_uncommitted: every record written, the aborted transactions' too.
    let written: BTreeSet<(i32, i64, String)> =
        txns.iter().flat_map(|t| t.outs.iter().map(move |&(p, o, i)| (p, o, format!("out-{i}-t{}", t.n)))).collect();
    let recs = read_topic(&node, "ck", &output, "read_uncommitted", written.len(), 1.0);
    let got: BTreeSet<(i32, i64, String)> = recs.iter().map(|r| (r.p, r.o, r.value().to_string())).collect();
    let aborted_n: BTreeSet<i64> = aborted.iter().map(|t| t.n).collect();
    let aborted_got = recs.iter().filter(|r| parse_out(r.value()).is_some_and(|(_, n)| aborted_n.contains(&n))).count();
    let aborted_written: usize = aborted.iter().map(|t| t.outs.len()).sum();
    if got != written || recs.len() != written.len() {
        let lost: Vec<_> = written.difference(&got).take(10).collect();
        let extra: Vec<_> = got.difference(&written).take(10).collect();
        errs.push(format!(
            "ck read_uncommitted: {} records, {} written; not seen {lost:?}, unexpected {extra:?}",
            recs.len(),
            written.len()
        ));
    }
    if aborted_got != aborted_written || recs.len() <= CTP_MESSAGES {
        errs.push(format!(
            "ck read_uncommitted saw {aborted_got} records of aborted transactions, {aborted_written} were written"
        ));
    }
    figure(&format!(
        "{client}: read_committed {CTP_MESSAGES} records, read_uncommitted {} ({aborted_got} of them aborted)",
        recs.len()
    ));

    // The group's committed offsets: the input's log ends.
    let offs = group_offsets(&node, &group);
    if offs != in_ends {
        errs.push(format!("group {group}: committed offsets {offs:?}, input log ends {in_ends:?}"));
    }

    // ListOffsets: no transaction open, so read_committed == read_uncommitted == the log end,
    // which is every record written plus one marker per transaction and partition it wrote to.
    let mut want_end: BTreeMap<i32, i64> = (0..3).map(|p| (p, 0)).collect();
    let mut want_markers: BTreeMap<(i32, bool), usize> = BTreeMap::new();
    for t in &txns {
        let parts: BTreeSet<i32> = t.outs.iter().map(|o| o.0).collect();
        for &(p, _, _) in &t.outs {
            *want_end.get_mut(&p).unwrap() += 1;
        }
        for p in parts {
            *want_end.get_mut(&p).unwrap() += 1;
            *want_markers.entry((p, t.commit)).or_default() += 1;
        }
    }
    for reader in ["ck", "kp"] {
        let (lso, hw) = end_offsets(&node, reader, &output);
        if lso != want_end || hw != want_end {
            errs.push(format!(
                "{reader} ListOffsets of {output}: read_committed {lso:?}, read_uncommitted {hw:?}, \
                 want both {want_end:?} (records + one marker per transaction and partition)"
            ));
        }
    }
    assert!(errs.is_empty(), "{client} consume-transform-produce:\n  {}\n{}", errs.join("\n  "), node.logs(40));

    // On disk (after a clean stop): transactional data batches of one producer, and one
    // commit or abort marker per transaction and partition.
    node.stop();
    let mut pids = BTreeSet::new();
    for p in 0..3 {
        let batches = stored_batches(&node, &output, p);
        for b in &batches {
            if !b.transactional() {
                errs.push(format!("{output}-{p}: a batch without the transactional flag: {b:?}"));
            }
            if b.control() && b.record_count != 1 {
                errs.push(format!("{output}-{p}: a control batch of {} records: {b:?}", b.record_count));
            }
            pids.insert(b.producer_id);
        }
        let data: i64 = batches.iter().filter(|b| !b.control()).map(|b| b.record_count as i64).sum();
        let written_p = txns.iter().flat_map(|t| &t.outs).filter(|o| o.0 == p).count() as i64;
        let (commits, aborts) = (markers(&batches, COMMIT).len(), markers(&batches, ABORT).len());
        let want =
            (want_markers.get(&(p, true)).copied().unwrap_or(0), want_markers.get(&(p, false)).copied().unwrap_or(0));
        if (data, commits, aborts) != (written_p, want.0, want.1) {
            errs.push(format!(
                "{output}-{p} on disk: {data} records, {commits} commit and {aborts} abort markers; \
                 want {written_p} records, {} and {}",
                want.0, want.1
            ));
        }
    }
    if pids.len() != 1 {
        errs.push(format!("{output}: batches of producer ids {pids:?}, want the one transactional producer"));
    }
    assert!(errs.is_empty(), "{client} consume-transform-produce, stored:\n  {}\n{}", errs.join("\n  "), node.logs(40));
}

/// Show 3 (confluent-kafka, two shards): consume-transform-produce with offsets in the transaction and every third transaction aborted: read_committed (confluent and kafka-python) sees each input message once and nothing aborted; read_uncommitted sees the aborted records too; the group's offsets end at the input's log ends and never move with an abort; ListOffsets and the stored markers agree.
#[test]
fn confluent_consume_transform_produce_exactly_once_with_aborts() {
    consume_transform_produce("ck", "0-1");
}

/// Show 3 (kafka-python): the same consume-transform-produce loop with kafka-python's transactional producer and read_committed consumer.
#[test]
fn kafka_python_consume_transform_produce_exactly_once_with_aborts() {
    consume_transform_produce("kp", "0");
}

// ---------------------------------------------------------------------------------------------
// Show 3b: a producer SIGKILLed in the middle of a transaction.

/// The records of a follower, as (offset, value), in delivery order.
fn offsets_values(recs: &[Rec]) -> Vec<(i64, String)> {
    recs.iter().map(|r| (r.o, r.value().to_string())).collect()
}

/// Show 3 (confluent-kafka; kafka-python reads too): a transactional producer (transaction.timeout.ms 10 s) writes 5 records and is SIGKILLed; read_committed consumers see neither them nor the 10 records a plain producer writes after them, and ListOffsets read_committed stays at the open transaction's first offset, until the node aborts it after the timeout; then the later records appear (the hung ones never) and the last stable offset is the log end. The transactional id works again afterwards.
#[test]
fn producer_killed_mid_transaction_is_aborted_after_its_timeout() {
    let node = start_node("0", 1);
    let dir = TempDir::new("txn");
    let topic = "hung";
    create_topic(&node, topic, 1);
    let pre = produce_plain(&node, topic, 0, 10, Some(0));
    assert_eq!(pre[&0], (10, 0, 9), "10 records before the transaction");

    let mut followers: Vec<Follower> =
        ["ck", "kp"].iter().map(|c| Follower::start(&node, &dir, c, topic, "read_committed")).collect();
    let diag = |fs: &[Follower]| {
        let mut s: String = fs.iter().map(|f| f.bg.logs(10) + "\n").collect();
        s.push_str(&node.logs(40));
        s
    };
    wait_for(
        "both read_committed readers to see the first 10 records",
        Duration::from_secs(30),
        || diag(&followers),
        || followers.iter().all(|f| f.count() >= 10),
    );

    // The transaction: 5 records, flushed into the log, then the producer is SIGKILLed.
    let timeout = HUNG_TIMEOUT_MS.to_string();
    let mut hung = Bg::py(
        "hung-producer",
        "txn_produce.py",
        &strings(&[
            "--client",
            "ck",
            "--bootstrap",
            node.bootstrap(),
            "--topic",
            topic,
            "--txn-id",
            "hung-txn",
            "--count",
            "5",
            "--prefix",
            "hung",
            "--partition",
            "0",
            "--end",
            "hang",
            "--txn-timeout-ms",
            &timeout,
        ]),
    );
    let event = |bg: &Bg, ev: &str| bg.events().into_iter().find(|e| e["ev"].opt_str() == Some(ev));
    wait_for(
        "the transactional producer to flush its records",
        Duration::from_secs(30),
        || format!("{}\n{}", hung.logs(30), node.logs(40)),
        || event(&hung, "flushed").is_some(),
    );
    let flushed = event(&hung, "flushed").unwrap();
    let began = event(&hung, "began").unwrap()["t"].f64();
    hung.kill();
    assert_eq!(pairs(&flushed["offsets"]), (10..15).map(|o| (0, o)).collect::<Vec<_>>(), "the hung records' offsets");
    let killed = now_ms();

    // A plain producer writes 10 more records behind the open transaction.
    let post = produce_plain(&node, topic, 100, 10, Some(0));
    assert_eq!(post[&0], (10, 15, 24), "10 records after the open transaction");
    // The last stable offset stays at the open transaction's first offset.
    for reader in ["ck", "kp"] {
        let (lso, hw) = end_offsets(&node, reader, topic);
        assert_eq!(
            (lso[&0], hw[&0]),
            (10, 25),
            "{reader} ListOffsets (read_committed, read_uncommitted) with the transaction open\n{}",
            node.logs(40)
        );
    }
    let checked = now_ms();
    assert!(
        checked < began + HUNG_TIMEOUT_MS as f64,
        "too slow to test the open transaction: the checks ended {:.0} ms after it began (timeout {HUNG_TIMEOUT_MS} ms)",
        checked - began
    );
    for f in &followers {
        let recs: Vec<Rec> = f.records().into_iter().map(|(_, r)| r).collect();
        assert_eq!(
            offsets_values(&recs),
            (0..10).map(|i| (i, format!("val-{i}"))).collect::<Vec<_>>(),
            "{}: read_committed with the transaction open: only the 10 records before it\n{}",
            f.bg.name,
            node.logs(30)
        );
    }

    // The node aborts it after transaction.timeout.ms; then the later records show.
    let limit = began + (HUNG_TIMEOUT_MS + 10_000) as f64 - now_ms();
    wait_for(
        "read_committed readers to see the records written after the hung transaction",
        Duration::from_millis(limit.max(1000.0) as u64),
        || diag(&followers),
        || followers.iter().all(|f| f.count() >= 20),
    );
    std::thread::sleep(Duration::from_secs(1)); // hung records would show up now
    let want: Vec<(i64, String)> =
        (0..10).map(|i| (i, format!("val-{i}"))).chain((0..10).map(|k| (15 + k, format!("val-{}", 100 + k)))).collect();
    for f in followers.iter_mut() {
        let timed = f.records();
        let seen_at = timed.iter().find(|(_, r)| r.o >= 15).map(|(t, _)| *t).unwrap();
        f.stop(&node);
        let recs: Vec<Rec> = timed.into_iter().map(|(_, r)| r).collect();
        assert_eq!(offsets_values(&recs), want, "{}: read_committed after the abort\n{}", f.bg.name, node.logs(30));
        assert!(
            seen_at >= began + HUNG_TIMEOUT_MS as f64 - 50.0,
            "{}: the records behind the transaction showed {:.0} ms after it began, before its timeout of \
             {HUNG_TIMEOUT_MS} ms",
            f.bg.name,
            seen_at - began
        );
        figure(&format!(
            "{}: records behind the hung transaction visible {:.0} ms after it began ({:.0} ms after the kill, \
             {:.0} ms past transaction.timeout.ms)",
            f.bg.name,
            seen_at - began,
            seen_at - killed,
            seen_at - began - HUNG_TIMEOUT_MS as f64
        ));
    }
    // Aborted: the last stable offset is the log end (25 records + the abort marker).
    for reader in ["ck", "kp"] {
        let (lso, hw) = end_offsets(&node, reader, topic);
        assert_eq!((lso[&0], hw[&0]), (26, 26), "{reader} ListOffsets after the abort\n{}", node.logs(40));
    }
    // read_uncommitted sees the hung records where they were written.
    let all = read_topic(&node, "ck", topic, "read_uncommitted", 25, 1.0);
    let want_all: Vec<(i64, String)> = (0..10)
        .map(|i| (i, format!("val-{i}")))
        .chain((0..5).map(|j| (10 + j, format!("hung-{j}"))))
        .chain((0..10).map(|k| (15 + k, format!("val-{}", 100 + k))))
        .collect();
    assert_eq!(offsets_values(&all), want_all, "read_uncommitted after the abort");

    // The transactional id is usable again: a new producer commits a transaction with it.
    let v = py_json_timeout(
        &node,
        "txn_produce.py",
        &[
            "--client",
            "ck",
            "--bootstrap",
            node.bootstrap(),
            "--topic",
            topic,
            "--txn-id",
            "hung-txn",
            "--count",
            "3",
            "--prefix",
            "after",
            "--partition",
            "0",
            "--end",
            "commit",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(pairs(&v["offsets"]), vec![(0, 26), (0, 27), (0, 28)], "the new producer's records: {v}");
    figure(&format!("hung-txn: init_transactions of the next producer took {} ms", v["init_ms"]));
    let recs = read_topic(&node, "ck", topic, "read_committed", 23, 1.0);
    let want_end: Vec<(i64, String)> = want.into_iter().chain((0..3).map(|j| (26 + j, format!("after-{j}")))).collect();
    assert_eq!(offsets_values(&recs), want_end, "read_committed at the end");
}

// ---------------------------------------------------------------------------------------------
// Show 3c: a zombie with an older epoch is fenced.

/// Producer A (transactional id X) has an open transaction with 4 records in partition 0 when
/// producer B initialises X: A's transaction is aborted, A's later produce/commit fail with a
/// fatal fenced error and store nothing, B commits; read_committed sees B's records only.
fn zombie_is_fenced(client: &str) {
    let mut node = start_node("0", 2);
    let topic = format!("fence-{client}");
    create_topic(&node, &topic, 2);
    let out = py_json_timeout(
        &node,
        "txn_fence.py",
        &[
            "--client",
            client,
            "--bootstrap",
            node.bootstrap(),
            "--topic",
            &topic,
            "--txn-id",
            "fence-txn",
            "--count",
            "4",
        ],
        Duration::from_secs(90),
    );
    let errors = out["a_errors"].arr();
    let shown: Vec<String> =
        errors.iter().map(|e| format!("{} {} fatal={} ({})", e["stage"], e["name"], e["fatal"], e["msg"])).collect();
    figure(&format!("{client}: B's init_transactions took {} ms; A saw: {}", out["b_init_ms"], shown.join(" | ")));
    assert_eq!(pairs(&out["a_early"]), (0..4).map(|o| (0, o)).collect::<Vec<_>>(), "A's records before B: {out}");
    assert!(!out["a_commit_ok"].bool(), "the zombie A committed its transaction: {out}\n{}", node.logs(40));
    assert!(
        out["a_late_delivered"].arr().is_empty(),
        "the node accepted records of the zombie A after B's init_transactions: {out}\n{}",
        node.logs(40)
    );
    let fenced_names: &[&str] = if client == "ck" {
        &["_FENCED", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH"]
    } else {
        &["ProducerFencedError", "InvalidProducerEpochError"]
    };
    let fenced = errors.iter().any(|e| fenced_names.contains(&e["name"].str()));
    let fatal = errors.iter().any(|e| e["fatal"] == Value::Bool(true));
    let commit_failed = errors.iter().any(|e| e["stage"].str() == "commit");
    assert!(
        fenced && fatal && commit_failed,
        "the zombie A must fail its commit with a fatal fenced error ({fenced_names:?}); it saw:\n  {}\n{}",
        shown.join("\n  "),
        node.logs(40)
    );
    assert!(
        out["b_commit_ok"].bool() && out["b_error"].is_null(),
        "B's transaction did not commit: {}\n{}",
        out["b_error"],
        node.logs(40)
    );
    // p0: A's 4 records, the abort marker, B's 2 records, the commit marker; p1: B's 2, marker.
    let b_offsets = pairs(&out["b_offsets"]);
    assert_eq!(b_offsets, vec![(0, 5), (0, 6), (1, 0), (1, 1)], "B's records: {out}");

    let b_values: BTreeSet<String> = (0..4).map(|j| format!("b-{j}")).collect();
    for reader in ["ck", "kp"] {
        let recs = read_topic(&node, reader, &topic, "read_committed", 4, 1.5);
        let got: BTreeSet<String> = recs.iter().map(|r| r.value().to_string()).collect();
        assert!(
            got == b_values && recs.len() == 4,
            "{reader} read_committed: {recs:?}, want B's records only\n{}",
            node.logs(30)
        );
    }
    let recs = read_topic(&node, "ck", &topic, "read_uncommitted", 8, 1.5);
    let got: BTreeSet<String> = recs.iter().map(|r| r.value().to_string()).collect();
    let want: BTreeSet<String> = (0..4).map(|j| format!("a-early-{j}")).chain(b_values.iter().cloned()).collect();
    assert!(got == want && recs.len() == 8, "read_uncommitted: {recs:?}, want A's first records and B's");
    for reader in ["ck", "kp"] {
        let (lso, hw) = end_offsets(&node, reader, &topic);
        let want: BTreeMap<i32, i64> = [(0, 8), (1, 3)].into_iter().collect();
        assert!(
            lso == want && hw == want,
            "{reader} ListOffsets: read_committed {lso:?}, read_uncommitted {hw:?}, want {want:?}"
        );
    }

    // On disk: A's batch, an abort marker with a newer epoch, B's batch and commit marker with
    // a newer epoch still, one producer id throughout.
    node.stop();
    let p0 = stored_batches(&node, &topic, 0);
    let p1 = stored_batches(&node, &topic, 1);
    let kinds = |bs: &[Batch]| -> Vec<String> {
        bs.iter()
            .map(|b| match b.marker {
                Some(k) => {
                    format!("{}@{} e{}", if k == COMMIT { "commit" } else { "abort" }, b.base_offset, b.producer_epoch)
                }
                None => format!("data@{}x{} e{}", b.base_offset, b.record_count, b.producer_epoch),
            })
            .collect()
    };
    let shape = |bs: &[Batch]| -> Vec<Option<i16>> {
        let mut v: Vec<Option<i16>> = bs.iter().map(|b| b.marker).collect();
        v.dedup();
        v
    };
    assert_eq!(shape(&p0), vec![None, Some(ABORT), None, Some(COMMIT)], "{topic}-0 stored: {:?}", kinds(&p0));
    assert_eq!(shape(&p1), vec![None, Some(COMMIT)], "{topic}-1 stored: {:?}", kinds(&p1));
    let a_epoch = p0[0].producer_epoch;
    let abort = markers(&p0, ABORT)[0];
    assert!(
        abort.producer_epoch > a_epoch,
        "{topic}-0: the abort marker must carry a newer epoch than A's: {:?}",
        kinds(&p0)
    );
    for b in p0.iter().chain(&p1) {
        assert!(b.transactional(), "{topic}: batch without the transactional flag: {b:?}");
        assert_eq!(b.producer_id, p0[0].producer_id, "{topic}: one transactional id, one producer id: {b:?}");
    }
    let b_epochs: BTreeSet<i16> =
        p0.iter().skip_while(|b| b.marker != Some(ABORT)).skip(1).chain(&p1).map(|b| b.producer_epoch).collect();
    assert!(
        b_epochs.len() == 1 && b_epochs.iter().all(|&e| e >= abort.producer_epoch),
        "B's batches and markers must carry one epoch, not older than the abort marker's: {:?} / {:?}",
        kinds(&p0),
        kinds(&p1)
    );
}

/// Show 3 (confluent-kafka): a zombie producer is fenced by a newer one with its transactional id: its open transaction is aborted, it gets a fatal fenced error, nothing it wrote is visible to read_committed; the newer producer commits; the stored markers and epochs show it.
#[test]
fn confluent_zombie_producer_is_fenced() {
    zombie_is_fenced("ck");
}

/// Show 3 (kafka-python): the same zombie fencing with kafka-python's transactional producers.
#[test]
fn kafka_python_zombie_producer_is_fenced() {
    zombie_is_fenced("kp");
}

/// ListTransactions and DescribeTransactions (kafka-python's admin client) show an open
/// transaction as Kafka does: state Ongoing, its producer id and epoch, timeout and the
/// partitions added to it; an unknown transactional id is TRANSACTIONAL_ID_NOT_FOUND.
#[test]
fn open_transactions_are_listed_and_described() {
    let node = start_node("0-1", 3);
    let out = py_json_timeout(
        &node,
        "txn_admin.py",
        &["--bootstrap", node.bootstrap(), "--topic", "admin-txn", "--id", "admin-tx"],
        Duration::from_secs(90),
    );
    let d = &out["described"];
    assert_eq!(d["state"].str(), "Ongoing", "{}", node.logs(20));
    assert_eq!(d["timeout_ms"].i64(), 60_000);
    assert_eq!(d["producer_epoch"].i64(), 0);
    let parts: Vec<(String, i64)> =
        d["partitions"].arr().iter().map(|p| (p.arr()[0].str().to_string(), p.arr()[1].i64())).collect();
    assert_eq!(parts, vec![("admin-txn".to_string(), 1), ("admin-txn".to_string(), 2)]);
    let listed: Vec<(String, i64, String)> = out["listed"]
        .arr()
        .iter()
        .map(|t| (t.arr()[0].str().to_string(), t.arr()[1].i64(), t.arr()[2].str().to_string()))
        .collect();
    assert!(
        listed.contains(&("admin-tx".to_string(), d["producer_id"].i64(), "Ongoing".to_string())),
        "ListTransactions: {listed:?}"
    );
    assert_eq!(out["unknown_error"].opt_str(), Some("TransactionalIdNotFoundError"));
}

/// `__transaction_state` stays small however many transactions run through it (its
/// coordinator compacts it to one record per transactional id), and a SIGKILL loses no
/// state: after the restart the id keeps its producer id and the next init bumps its epoch.
#[test]
fn transaction_state_is_compacted_and_survives_sigkill() {
    let mut node = Node::start(&[
        "--cores",
        "0",
        "--set",
        "transaction.state.log.num.partitions=1",
        "--set",
        "transaction.state.log.segment.bytes=8192",
        "--set",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=200",
    ]);
    let run = |node: &Node, count: &str| {
        py_json_timeout(
            node,
            "txn_many.py",
            &["--bootstrap", node.bootstrap(), "--topic", "many-txn", "--id", "many", "--count", count],
            Duration::from_secs(120),
        )
    };
    let first = run(&node, "300");
    assert_eq!(first["state"].str(), "CompleteCommit");
    // 300 transactions write ~900 state records (~60 KiB): without compaction the
    // partition would hold them all.
    let dir = node.data_dir().join("__transaction_state-0");
    let size = || -> u64 { std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.metadata().unwrap().len()).sum() };
    let deadline = Instant::now() + Duration::from_secs(10);
    while size() > 3 * 8192 + 16_384 {
        assert!(Instant::now() < deadline, "__transaction_state stayed at {} bytes\n{}", size(), node.logs(30));
        std::thread::sleep(Duration::from_millis(200));
    }
    node.kill();
    node.restart();
    let second = run(&node, "3");
    assert_eq!(second["producer_id"].i64(), first["producer_id"].i64(), "the id keeps its producer id");
    assert_eq!(
        second["producer_epoch"].i64(),
        first["producer_epoch"].i64() + 1,
        "init_transactions after the restart bumps the stored epoch"
    );
}

/// #14 Show 5: aborted transactions, then a SIGKILL (no producer snapshot: the aborted list
/// comes from the log's markers) and then a clean restart (snapshot and `.txnindex` files):
/// read_committed readers never see an aborted record, read_uncommitted ones see them all.
#[test]
fn aborted_records_stay_hidden_after_a_sigkill_and_after_a_clean_restart() {
    let mut node = start_node("0-1", 2);
    let topic = "aborts-restart";
    support::create_topic(&node, topic, 2);
    for i in 0..6 {
        let (end, prefix) = if i % 2 == 0 { ("commit", format!("c{i}")) } else { ("abort", format!("a{i}")) };
        let id = format!("restart-txn-{}", i % 2);
        let args = [
            "--client",
            "ck",
            "--bootstrap",
            node.bootstrap(),
            "--topic",
            topic,
            "--txn-id",
            &id,
            "--count",
            "40",
            "--prefix",
            &prefix,
            "--end",
            end,
        ];
        py_json_timeout(&node, "txn_produce.py", &args, Duration::from_secs(60));
    }
    let check = |node: &Node, when: &str| {
        let committed = read_topic(node, "ck", topic, "read_committed", 120, 1.0);
        assert_eq!(committed.len(), 120, "{when}: the three committed transactions");
        let aborted: Vec<&Rec> = committed.iter().filter(|r| r.value().starts_with('a')).collect();
        assert!(aborted.is_empty(), "{when}: read_committed served aborted records: {aborted:?}");
        let all = read_topic(node, "ck", topic, "read_uncommitted", 240, 0.5);
        assert_eq!(all.len(), 240, "{when}: read_uncommitted sees all six transactions");
    };
    check(&node, "before any restart");
    node.kill();
    node.restart();
    check(&node, "after a SIGKILL (aborted list rebuilt from the markers)");
    node.restart(); // clean stop (producer snapshots, .txnindex files) and start
    check(&node, "after a clean restart (aborted list from snapshot and .txnindex)");
    node.stop();
}

/// A transaction whose topic is deleted while it is open still ends: when its timeout
/// aborts it, the coordinator writes no marker for the partitions of the deleted topic (as
/// Kafka skips them) instead of failing the abort forever, and the transactional id gets a
/// new producer epoch at once afterwards.
#[test]
fn a_transaction_on_a_deleted_topic_is_aborted_and_its_id_reusable() {
    use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse, TransactionalId};
    use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};
    let node = start_node("0", 1);
    create_topic(&node, "short-lived", 1);
    let mut hung = Bg::py(
        "hung-producer",
        "txn_produce.py",
        &strings(&[
            "--client",
            "ck",
            "--bootstrap",
            node.bootstrap(),
            "--topic",
            "short-lived",
            "--txn-id",
            "orphan-txn",
            "--count",
            "5",
            "--prefix",
            "orphan",
            "--end",
            "hang",
            "--txn-timeout-ms",
            "2000",
        ]),
    );
    let flushed = |bg: &Bg| bg.events().into_iter().any(|e| e["ev"].opt_str() == Some("flushed"));
    wait_for("the records flushed", Duration::from_secs(30), || hung.logs(30), || flushed(&hung));
    hung.kill();
    let mut c = support::wire::Client::connect(node.bootstrap());
    let delete = DeleteTopicsRequest::default()
        .with_topic_names(vec![support::wire::name("short-lived")])
        .with_timeout_ms(15_000);
    c.send(ApiKey::DeleteTopics, 5, &delete);
    let r: DeleteTopicsResponse = c.recv(ApiKey::DeleteTopics, 5);
    assert_eq!(r.responses[0].error_code, 0);

    // Past its timeout and a cleanup round: InitProducerId for the id answers 0 (not
    // CONCURRENT_TRANSACTIONS while an abort hangs, nor COORDINATOR_NOT_AVAILABLE).
    std::thread::sleep(Duration::from_millis(3000));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(kafka_protocol::protocol::StrBytes::from_static_str(
                "orphan-txn",
            ))))
            .with_transaction_timeout_ms(60_000);
        c.send(ApiKey::InitProducerId, 4, &request);
        let r: InitProducerIdResponse = c.recv(ApiKey::InitProducerId, 4);
        seen.push(r.error_code);
        if r.error_code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the id stays stuck: {seen:?}\n{}", node.logs(40));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(node.logs(200).contains("no marker for 1 partitions of deleted topics"), "{}", node.logs(40));
}
