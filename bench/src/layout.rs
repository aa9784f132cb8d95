//! `layout`: which shard (core) of a running Sluice node owns which partition, each shard's
//! load and how uneven the load is, from the node's admin endpoint (/layout JSON and /metrics
//! text). `layout --save FILE` writes the placement of the user topics as a layout file;
//! [`apply`] puts a layout file in force through the admin API (compare's layout mode).
//!
//! A layout file has one `topic partition core` line per partition (core: the shard index,
//! as in `sluice layout move`); `#` starts a comment, blank lines are skipped.

use crate::Opts;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one admin request may take. A move answers once the partition is closed on its
/// old shard (fsync included) and open on the new one: milliseconds, unless the disk stalls.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a partition may report its move `in_progress` before `apply` gives up.
const MOVE_WAIT: Duration = Duration::from_secs(30);

/// How often `apply` asks again while a move is in progress.
const MOVE_POLL: Duration = Duration::from_millis(20);

/// How often the sampler reads /layout: the node turns its counters into rates once a second.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// One HTTP/1.0 request; the body of a 2xx answer, else an error naming the status and the
/// node's message.
pub fn http(addr: &str, method: &str, path: &str, body: &str) -> Result<String> {
    let mut s = std::net::TcpStream::connect(addr).with_context(|| format!("connecting to admin {addr}"))?;
    s.set_read_timeout(Some(ADMIN_TIMEOUT))?;
    s.set_write_timeout(Some(ADMIN_TIMEOUT))?;
    write!(s, "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n{body}", body.len())?;
    let mut text = String::new();
    s.read_to_string(&mut text).with_context(|| format!("{method} {path}: reading the answer"))?;
    let (head, body) = text.split_once("\r\n\r\n").context("malformed HTTP response")?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if !head.starts_with("HTTP/1.") || !status.starts_with('2') {
        bail!("{method} {path}: {} {}", head.lines().next().unwrap_or(""), body.trim());
    }
    Ok(body.to_string())
}

pub fn http_get(addr: &str, path: &str) -> Result<String> {
    http(addr, "GET", path, "")
}

/// The node's /layout document (the fields read here; others are ignored).
#[derive(Debug, Deserialize)]
struct Layout {
    shards: i64,
    partitions: Vec<Row>,
    /// Each shard's measured load; absent from nodes older than the per-core measurement.
    #[serde(default)]
    cores: Vec<CoreLoad>,
}

/// A partition row of /layout.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Row {
    topic: String,
    partition: i64,
    shard: i64,
    log_start_offset: i64,
    log_end_offset: i64,
    size_bytes: i64,
    segments: i64,
    /// Over the node's last second.
    produce_bytes_per_s: f64,
    fetch_bytes_per_s: f64,
}

/// A shard's load in /layout's `cores`, over the node's last second.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
struct CoreLoad {
    shard: i64,
    /// The CPU core the shard's thread is pinned to.
    core: i64,
    /// CPU time of the shard's thread over wall time (0–1 of a core).
    busy_ratio: f64,
    requests_per_s: f64,
    /// Sums over the shard's partitions.
    produce_bytes_per_s: f64,
    fetch_bytes_per_s: f64,
}

fn parse_layout(body: &str) -> Result<Layout> {
    serde_json::from_str(body).context("/layout is not the node's layout document")
}

/// Internal topics (`__consumer_offsets`, `__transaction_state`): listed per topic unless
/// asked for, as Kafka's tools leave them out, and never in a saved layout (they do not move).
fn is_internal(topic: &str) -> bool {
    topic.starts_with("__")
}

/// (busiest − idlest) / busiest over the shards' busy fractions, the definition
/// `scripts/bench-balance.sh` and `sluice layout` use; undefined when the busiest is 0.
pub fn imbalance(busy: &[f64]) -> Option<f64> {
    let max = busy.iter().copied().fold(0.0, f64::max);
    let min = busy.iter().copied().fold(f64::INFINITY, f64::min);
    (max > 0.0).then(|| (max - min) / max)
}

/// What a /layout sample says about how evenly the shards are loaded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Balance {
    /// /layout has no per-core load (a node older than the measurement).
    Unknown,
    /// No Kafka request reached any shard in the node's last second, or no shard used any
    /// CPU. An idle shard still spends about 1 % of a core on its timers (0.011 and 0.014 on
    /// a fresh two-shard node), and the ratio of two such figures says nothing of a layout.
    Idle,
    Imbalance(f64),
}

fn balance(cores: &[CoreLoad]) -> Balance {
    if cores.is_empty() {
        return Balance::Unknown;
    }
    if cores.iter().all(|c| c.requests_per_s <= 0.0) {
        return Balance::Idle;
    }
    let busy: Vec<f64> = cores.iter().map(|c| c.busy_ratio).collect();
    imbalance(&busy).map_or(Balance::Idle, Balance::Imbalance)
}

/// The summary line `layout` prints.
fn balance_line(cores: &[CoreLoad]) -> String {
    match balance(cores) {
        Balance::Unknown => "imbalance: unknown (this node's /layout has no per-core load)".into(),
        Balance::Idle => {
            let busy: Vec<String> = cores.iter().map(|c| format!("{:.3}", c.busy_ratio)).collect();
            format!(
                "imbalance: idle (no Kafka requests in the node's last second; busy {} is background work)",
                busy.join(", ")
            )
        }
        Balance::Imbalance(x) => {
            format!("imbalance: {x:.3} ((busiest - idlest) / busiest of the shards' busy fractions)")
        }
    }
}

/// One line of a layout file: `topic partition core`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub topic: String,
    pub partition: i32,
    /// The shard index (what the admin API calls the core).
    pub core: usize,
}

/// A layout file's placements, in file order; an error names the first bad line.
pub fn parse_placements(text: &str) -> Result<Vec<Placement>> {
    let mut out = Vec::new();
    let mut seen: HashMap<(String, i32), usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let words: Vec<&str> = content.split_whitespace().collect();
        let [topic, partition, core] = words.as_slice() else {
            bail!("line {n}: {line:?}: expected `topic partition core`");
        };
        let Some(partition) = partition.parse::<i32>().ok().filter(|p| *p >= 0) else {
            bail!("line {n}: {line:?}: partition {partition:?} is not a partition number");
        };
        let Ok(core) = core.parse::<usize>() else {
            bail!("line {n}: {line:?}: core {core:?} is not a core (shard) number");
        };
        if let Some(first) = seen.insert((topic.to_string(), partition), n) {
            bail!("line {n}: {topic} {partition} is placed twice (first on line {first})");
        }
        out.push(Placement { topic: topic.to_string(), partition, core });
    }
    if out.is_empty() {
        bail!("no placements (one `topic partition core` line per partition)");
    }
    Ok(out)
}

pub fn read_placements(path: &str) -> Result<Vec<Placement>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading layout file {path}"))?;
    parse_placements(&text).with_context(|| format!("layout file {path}"))
}

/// The layout file of the user topics' placement in `layout`, sorted by topic and partition.
fn placements_text(admin: &str, layout: &Layout) -> (String, usize) {
    let mut rows: Vec<&Row> = layout.partitions.iter().filter(|r| !is_internal(&r.topic)).collect();
    rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let mut text = format!("# topic partition core: node {admin}, user topics (sluice-bench layout --save)\n");
    for r in &rows {
        text.push_str(&format!("{} {} {}\n", r.topic, r.partition, r.shard));
    }
    (text, rows.len())
}

/// A partition's placement as GET /v1/partitions/kafka/{topic}/{partition} reports it.
#[derive(Debug, Deserialize)]
struct PartitionDoc {
    replicas: Vec<Replica>,
    /// `done`, or `in_progress` while a move is under way.
    status: String,
}

#[derive(Debug, Deserialize)]
struct Replica {
    node_id: i64,
    core: i64,
}

fn partition_path(p: &Placement) -> String {
    format!("/v1/partitions/kafka/{}/{}", p.topic, p.partition)
}

/// Waits until no move of the partition is in progress; its (node id, core) then.
fn settled(admin: &str, p: &Placement) -> Result<(i64, i64)> {
    let deadline = Instant::now() + MOVE_WAIT;
    loop {
        let body = http_get(admin, &partition_path(p))?;
        let doc: PartitionDoc = serde_json::from_str(&body)
            .with_context(|| format!("{}-{}: not a partition document: {body}", p.topic, p.partition))?;
        let [replica] = doc.replicas.as_slice() else {
            bail!("{}-{}: {} replicas; a single node holds one", p.topic, p.partition, doc.replicas.len());
        };
        if doc.status == "done" {
            return Ok((replica.node_id, replica.core));
        }
        if Instant::now() >= deadline {
            bail!("{}-{}: its move is still {} after {MOVE_WAIT:?}", p.topic, p.partition, doc.status);
        }
        std::thread::sleep(MOVE_POLL);
    }
}

/// Puts `layout` in force: moves each partition not on its core there (POST …/replicas) and
/// waits until the node reports it done and on that core. Returns how many partitions moved.
pub fn apply(admin: &str, layout: &[Placement]) -> Result<usize> {
    let mut moved = 0;
    for p in layout {
        let (node_id, core) = settled(admin, p)?;
        if core == p.core as i64 {
            continue;
        }
        let body = format!(r#"[{{"node_id":{node_id},"core":{}}}]"#, p.core);
        http(admin, "POST", &format!("{}/replicas", partition_path(p)), &body)
            .with_context(|| format!("moving {}-{} from core {core} to core {}", p.topic, p.partition, p.core))?;
        let (_, now) = settled(admin, p)?;
        if now != p.core as i64 {
            bail!("{}-{}: moved to core {}, but the node reports core {now}", p.topic, p.partition, p.core);
        }
        moved += 1;
    }
    Ok(moved)
}

/// Refuses a layout naming a partition the node does not have or a core it does not run,
/// before any run (a bad layout B would otherwise surface only after A's first run).
pub fn check(admin: &str, layout: &[Placement]) -> Result<()> {
    let node = parse_layout(&http_get(admin, "/layout")?)?;
    for p in layout {
        if !node.partitions.iter().any(|r| r.topic == p.topic && r.partition == p.partition as i64) {
            bail!("the node at {admin} has no partition {} of topic {:?}", p.partition, p.topic);
        }
        if p.core as i64 >= node.shards {
            bail!("{}-{}: core {} does not exist: the node runs {} shards", p.topic, p.partition, p.core, node.shards);
        }
    }
    Ok(())
}

/// Samples /layout once a second on its own thread while a run goes on (compare's layout
/// mode) and keeps each sample's imbalance with the time it was taken.
pub struct Sampler {
    admin: String,
    started: Instant,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(Instant, Balance)>>,
}

fn sample(admin: &str) -> Result<Balance> {
    Ok(balance(&parse_layout(&http_get(admin, "/layout")?)?.cores))
}

impl Sampler {
    pub fn start(admin: &str) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, addr) = (stop.clone(), admin.to_string());
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            let mut next = started + SAMPLE_INTERVAL;
            while !flag.load(Relaxed) {
                if Instant::now() < next {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                next += SAMPLE_INTERVAL;
                // A failed read is a missing sample, not a failed run.
                if let Ok(b) = sample(&addr) {
                    samples.push((Instant::now(), b));
                }
            }
            samples
        });
        Sampler { admin: admin.to_string(), started, stop, thread }
    }

    /// Stops sampling. Returns the defined imbalances of the samples whose busy fractions
    /// lie wholly after `skip` (warm-up and group formation) from the start: the node's
    /// last second before a sample ends within a second before it, so samples taken at
    /// least `skip` + 2 s in. A run too short for any gets one sample taken now, over the
    /// node's last second (which may reach back before the run).
    pub fn finish(self, skip: Duration) -> Vec<f64> {
        self.stop.store(true, Relaxed);
        let samples = self.thread.join().unwrap_or_default();
        let from = self.started + skip + 2 * SAMPLE_INTERVAL;
        let mut kept: Vec<Balance> = samples.into_iter().filter(|(t, _)| *t >= from).map(|(_, b)| b).collect();
        if kept.is_empty() {
            kept.extend(sample(&self.admin).ok());
        }
        kept.into_iter()
            .filter_map(|b| match b {
                Balance::Imbalance(x) => Some(x),
                _ => None,
            })
            .collect()
    }
}

/// Per-shard counters from /metrics lines like `name{shard="0"} 123` (histograms' sums and
/// counts left out: /layout's `cores` has them).
fn shard_metrics(text: &str) -> BTreeMap<(String, i64), f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, rest)) = line.split_once("{shard=\"") else { continue };
        if name.ends_with("_seconds_sum") || name.ends_with("_seconds_count") {
            continue;
        }
        let Some((shard, rest)) = rest.split_once("\"}") else { continue };
        let (Ok(shard), Ok(v)) = (shard.parse::<i64>(), rest.trim().parse::<f64>()) else { continue };
        out.insert((name.to_string(), shard), v);
    }
    out
}

pub fn command(o: &Opts) -> Result<()> {
    let admin = o.str("admin", "127.0.0.1:9644");
    let layout = parse_layout(&http_get(&admin, "/layout")?)?;
    if o.has("save") {
        let path = o.str("save", "");
        let (text, n) = placements_text(&admin, &layout);
        std::fs::write(&path, text).with_context(|| format!("writing {path}"))?;
        println!("{path}: {n} partitions of user topics, one `topic partition core` line each");
        return Ok(());
    }
    println!("node {admin}: {} shards, {} partitions\n", layout.shards, layout.partitions.len());
    print_partitions(&layout, o.has("internal"));
    print_shards(&layout);
    print_counters(&shard_metrics(&http_get(&admin, "/metrics").unwrap_or_default()), layout.shards);
    Ok(())
}

fn print_partitions(layout: &Layout, internal: bool) {
    println!(
        "{:<24} {:>9} {:>6} {:>14} {:>14} {:>14} {:>9} {:>12} {:>12}",
        "topic", "partition", "shard", "start offset", "end offset", "bytes", "segments", "produce B/s", "fetch B/s"
    );
    let mut summarised: BTreeMap<&str, BTreeMap<i64, usize>> = BTreeMap::new();
    for r in &layout.partitions {
        if is_internal(&r.topic) && !internal {
            *summarised.entry(&r.topic).or_default().entry(r.shard).or_default() += 1;
            continue;
        }
        println!(
            "{:<24} {:>9} {:>6} {:>14} {:>14} {:>14} {:>9} {:>12.0} {:>12.0}",
            r.topic,
            r.partition,
            r.shard,
            r.log_start_offset,
            r.log_end_offset,
            r.size_bytes,
            r.segments,
            r.produce_bytes_per_s,
            r.fetch_bytes_per_s
        );
    }
    for (topic, per_shard) in &summarised {
        let spread: Vec<String> = per_shard.iter().map(|(s, n)| format!("{n} on shard {s}")).collect();
        println!(
            "{topic:<24} {} partitions: {} (--internal 1 lists them)",
            per_shard.values().sum::<usize>(),
            spread.join(", ")
        );
    }
}

/// Per shard: its measured load over the node's last second (busy fraction, requests/s,
/// produce and fetch MB/s of its partitions), partitions, records and bytes on disk; then
/// the imbalance line.
fn print_shards(layout: &Layout) {
    println!("\nper shard: load over the node's last second; records (end - start offsets) and bytes on disk");
    println!(
        "{:>6} {:>5} {:>6} {:>11} {:>13} {:>11} {:>10} {:>14} {:>14}",
        "shard", "core", "busy", "requests/s", "produce MB/s", "fetch MB/s", "partitions", "records", "bytes"
    );
    for shard in 0..layout.shards {
        let mine: Vec<&Row> = layout.partitions.iter().filter(|r| r.shard == shard).collect();
        let records: i64 = mine.iter().map(|r| r.log_end_offset - r.log_start_offset).sum();
        let bytes: i64 = mine.iter().map(|r| r.size_bytes).sum();
        let load = match layout.cores.iter().find(|c| c.shard == shard) {
            Some(c) => format!(
                "{:>5} {:>6.3} {:>11.0} {:>13.2} {:>11.2}",
                c.core,
                c.busy_ratio,
                c.requests_per_s,
                c.produce_bytes_per_s / 1e6,
                c.fetch_bytes_per_s / 1e6
            ),
            None => format!("{:>5} {:>6} {:>11} {:>13} {:>11}", "-", "-", "-", "-", "-"),
        };
        println!("{shard:>6} {load} {:>10} {records:>14} {bytes:>14}", mine.len());
    }
    println!("{}", balance_line(&layout.cores));
}

/// The per-shard counters of /metrics, one row per counter.
fn print_counters(metrics: &BTreeMap<(String, i64), f64>, shards: i64) {
    let mut names: Vec<&String> = metrics.keys().map(|(n, _)| n).collect();
    names.dedup();
    if names.is_empty() {
        return;
    }
    let mut head = format!("\n{:<32}", "per shard, from /metrics");
    for shard in 0..shards {
        head.push_str(&format!(" {:>14}", format!("shard {shard}")));
    }
    println!("{head}");
    for name in names {
        let mut line = format!("{:<32}", name.trim_start_matches("sluice_"));
        for shard in 0..shards {
            line.push_str(&format!(
                " {:>14}",
                metrics.get(&(name.clone(), shard)).map_or("-".into(), |v| if v.fract() == 0.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.3}") // ratios and CPU seconds
                })
            ));
        }
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The node's /layout document parses into rows and per-core loads.
    #[test]
    fn parses_layout() {
        let body = r#"{"shards":2,"partitions":[{"topic":"t","partition":1,"shard":1,"log_start_offset":0,"log_end_offset":5,"size_bytes":100,"segments":1,"produce_bytes_per_s":2048.0}],
            "cores":[{"shard":0,"core":4,"busy_ratio":0.25,"requests_per_s":10.0,"produce_bytes_per_s":0.0,"fetch_bytes_per_s":0.0,"partitions":0}]}"#;
        let layout = parse_layout(body).unwrap();
        assert_eq!(layout.shards, 2);
        let r = &layout.partitions[0];
        assert_eq!((r.topic.as_str(), r.partition, r.shard, r.log_end_offset), ("t", 1, 1, 5));
        assert_eq!(r.produce_bytes_per_s, 2048.0);
        assert_eq!((layout.cores[0].core, layout.cores[0].busy_ratio), (4, 0.25));
    }

    fn load(busy: f64, requests_per_s: f64) -> CoreLoad {
        CoreLoad { busy_ratio: busy, requests_per_s, ..Default::default() }
    }

    /// Imbalance is (busiest − idlest) / busiest; undefined when the busiest is 0, and a
    /// node without requests is idle whatever its background busy fractions.
    #[test]
    fn imbalance_is_the_gap_over_the_busiest() {
        // Binary fractions, so that the quotients are exact.
        assert_eq!(imbalance(&[0.5, 0.125]), Some(0.75));
        assert_eq!(imbalance(&[0.125, 0.5, 0.25]), Some(0.75));
        assert_eq!(imbalance(&[0.5, 0.5]), Some(0.0));
        assert_eq!(imbalance(&[0.6]), Some(0.0));
        assert_eq!(imbalance(&[0.0, 0.0]), None);
        assert_eq!(imbalance(&[]), None);
        assert_eq!(balance(&[load(0.5, 100.0), load(0.125, 0.0)]), Balance::Imbalance(0.75));
        assert_eq!(balance(&[load(0.014, 0.0), load(0.011, 0.0)]), Balance::Idle);
        assert_eq!(balance(&[load(0.0, 5.0), load(0.0, 0.0)]), Balance::Idle);
        assert_eq!(balance(&[]), Balance::Unknown);
        assert!(balance_line(&[load(0.8, 1.0), load(0.2, 1.0)]).starts_with("imbalance: 0.750 "));
        assert!(balance_line(&[load(0.014, 0.0), load(0.011, 0.0)]).starts_with("imbalance: idle "));
    }

    /// A layout file: `topic partition core` per line, comments and blank lines skipped.
    #[test]
    fn parses_a_layout_file() {
        let text = "# saved\n\norders 0 1\n  orders 1 0   # hot\nclicks 3 1\n";
        let p = parse_placements(text).unwrap();
        let want = |t: &str, partition, core| Placement { topic: t.into(), partition, core };
        assert_eq!(p, vec![want("orders", 0, 1), want("orders", 1, 0), want("clicks", 3, 1)]);
    }

    /// Each kind of bad line is refused with its line number.
    #[test]
    fn bad_layout_lines_name_their_line() {
        for (text, want) in [
            ("a 0 1\na 1\n", "line 2: \"a 1\": expected `topic partition core`"),
            ("# x\na 0 1 2\n", "line 2: "),
            ("a x 1\n", "line 1: \"a x 1\": partition \"x\" is not a partition number"),
            ("a -1 1\n", "line 1: \"a -1 1\": partition \"-1\""),
            ("\n\n\na 0 one\n", "line 4: \"a 0 one\": core \"one\" is not a core (shard) number"),
            ("a 0 -1\n", "line 1: "),
            ("a 0 1\nb 0 1\na 0 0\n", "line 3: a 0 is placed twice (first on line 1)"),
            ("# nothing\n\n", "no placements"),
        ] {
            let e = format!("{:#}", parse_placements(text).unwrap_err());
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }

    /// `--save` writes the user topics' placement, sorted, in the format the parser reads.
    #[test]
    fn saved_layout_parses_back() {
        let row = |topic: &str, partition, shard| Row { topic: topic.into(), partition, shard, ..Default::default() };
        let layout = Layout {
            shards: 2,
            partitions: vec![row("b", 1, 0), row("__consumer_offsets", 0, 1), row("b", 0, 1), row("a", 2, 1)],
            cores: Vec::new(),
        };
        let (text, n) = placements_text("127.0.0.1:9644", &layout);
        assert_eq!(n, 3);
        let p = parse_placements(&text).unwrap();
        let got: Vec<(&str, i32, usize)> = p.iter().map(|p| (p.topic.as_str(), p.partition, p.core)).collect();
        assert_eq!(got, [("a", 2, 1), ("b", 0, 1), ("b", 1, 0)]);
    }
}
