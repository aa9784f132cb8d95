//! The admin endpoint as an operator meets it: its HTTP answers (404 with the list of paths,
//! 405, 400, 431, HEAD), `--admin off`, a `/metrics` that `promtool check metrics` accepts,
//! per-partition bytes counted on the owning shard, latency histograms that count every
//! request, and a per-shard busy ratio that agrees with what /proc says of the shard threads.
//!
//! promtool is installed by `scripts/test-deps.sh` (CI runs it first); without it the
//! promtool test fails and says so, rather than passing without having checked anything.
//! (That `--admin` defaults to 127.0.0.1:9644 is a unit test of the argument parser in
//! `node/src/main.rs`: a test node on the fixed port would collide with a developer's node.)

mod support;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::records::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::json::{self, Json};
use support::wire::{name, record, Client};
use support::{http_get, Node};

// ---------------------------------------------------------------------------------------------
// A small Kafka client (the `kafka-protocol` crate's codec) for a load the test controls.

/// One uncompressed batch of `count` records of `size` bytes each.
fn batch(count: usize, size: usize) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| {
            let value = Bytes::from(vec![b'a' + (i % 26) as u8; size]);
            record(i as i64, 1_700_000_000_000 + i as i64, None, value)
        })
        .collect();
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut out, records.iter(), &options).unwrap();
    out.freeze()
}

fn produce_request(topic: &str, partition: i32, acks: i16, records: Bytes) -> ProduceRequest {
    ProduceRequest::default().with_acks(acks).with_timeout_ms(30_000).with_topic_data(vec![TopicProduceData::default()
        .with_name(name(topic))
        .with_partition_data(vec![PartitionProduceData::default().with_index(partition).with_records(Some(records))])])
}

fn fetch_request(topic: &str, partition: i32) -> FetchRequest {
    FetchRequest::default().with_max_wait_ms(0).with_min_bytes(1).with_max_bytes(64 << 20).with_topics(vec![
        FetchTopic::default().with_topic(name(topic)).with_partitions(vec![FetchPartition::default()
            .with_partition(partition)
            .with_fetch_offset(0)
            .with_partition_max_bytes(64 << 20)]),
    ])
}

// ---------------------------------------------------------------------------------------------
// Reading what the node exposes.

/// Samples of a Prometheus family: (labels, value) of every line `name{...} value`.
fn samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name).and_then(|r| r.strip_prefix('{')) else { continue };
        let Some((labels, value)) = rest.split_once("} ") else { continue };
        let labels = labels
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        out.push((labels, value.trim().parse::<f64>().unwrap_or_else(|_| panic!("not a number: {line}"))));
    }
    out
}

/// The value of `name{label=value}` (the first sample whose labels include it).
fn sample(text: &str, name: &str, label: (&str, &str)) -> f64 {
    samples(text, name)
        .into_iter()
        .find(|(l, _)| l.get(label.0).map(String::as_str) == Some(label.1))
        .unwrap_or_else(|| panic!("no {name}{{{}=\"{}\"}} in /metrics", label.0, label.1))
        .1
}

fn metrics(node: &Node) -> String {
    let (code, body) = http_get(node.admin().expect("admin endpoint"), "/metrics");
    assert_eq!(code, 200, "{body}");
    body
}

fn layout(node: &Node) -> json::Value {
    let (code, body) = http_get(node.admin().expect("admin endpoint"), "/layout");
    assert_eq!(code, 200, "{body}");
    json::parse(&body).unwrap_or_else(|e| panic!("/layout is not JSON ({e}): {body}"))
}

/// Sends `request` as it is, returns (status code, head, body).
fn raw_http(addr: &str, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, head.to_string(), body.to_string())
}

/// The ports a process listens on (TCP, IPv4 and IPv6), from its sockets in /proc.
fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address rem_address st ... inode (field 9); 0A is LISTEN.
            if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                let port = f[1].rsplit(':').next().unwrap();
                ports.push(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

// ---------------------------------------------------------------------------------------------
// HTTP behaviour.

#[test]
fn admin_http_answers_404_405_400_431_and_head() {
    let node = Node::start(&["--cores", "0"]);
    let admin = node.admin().expect("admin endpoint");

    let (code, _, body) = raw_http(admin, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(code, 404, "{body}");
    for path in ["/metrics", "/layout", "/groups", "/groups.txt"] {
        assert!(body.contains(path), "the 404 lists {path}: {body}");
    }

    let (code, head, body) = raw_http(admin, b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(code, 405, "{head}\n{body}");
    assert!(head.contains("Allow: GET, HEAD"), "405 says what is allowed: {head}");

    let (code, _, body) = raw_http(admin, b"GET /metrics HTTP/1.1\r\nBad Header Line\r\n\r\n");
    assert_eq!(code, 400, "{body}");
    let (code, _, body) = raw_http(admin, b"\x16\x03\x01 not http at all\r\n\r\n");
    assert_eq!(code, 400, "{body}");

    let mut huge = b"GET /metrics HTTP/1.1\r\nX-Padding: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 9000));
    huge.extend_from_slice(b"\r\n\r\n");
    let (code, _, body) = raw_http(admin, &huge);
    assert_eq!(code, 431, "a head past 8 KiB is refused: {body}");

    // HEAD: the GET's headers, no body. A query string does not change the path.
    let (code, head, body) = raw_http(admin, b"HEAD /layout?pretty=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(code, 200, "{head}");
    assert!(head.contains("Content-Type: application/json"), "{head}");
    assert!(body.is_empty(), "HEAD has no body: {body:?}");

    // The node still serves after all that.
    assert_eq!(layout(&node)["shards"].i64(), 1);
}

#[test]
fn admin_off_opens_no_admin_port() {
    let mut node = Node::start(&["--cores", "0", "--admin", "off"]);
    assert!(node.admin().is_none(), "the ready line says admin=-");
    let kafka_port: u16 = node.bootstrap().rsplit(':').next().unwrap().parse().unwrap();
    let pid = node.pid().unwrap();
    assert_eq!(listening_ports(pid), vec![kafka_port], "only the Kafka listener is open");
    node.stop();
}

// ---------------------------------------------------------------------------------------------
// /metrics and /layout content.

/// `promtool check metrics` (Prometheus' own parser and linter) on a /metrics with every
/// family populated.
fn promtool_check(text: &str) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("promtool is not installed ({e}): run `bash scripts/test-deps.sh` first"),
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics ({}): {said}", out.status);
}

/// Produce to every partition of a two-shard node over one connection (so half of it goes
/// to the other shard), read every partition back once: per-partition bytes are counted on
/// the owner, the shard totals are the sums of their partitions, the latency histograms count
/// every request, /layout shows the same with each shard's core, and promtool accepts it all.
#[test]
fn metrics_pass_promtool_and_count_bytes_on_the_owning_shard() {
    let node = Node::start(&["--cores", "0-1"]);
    let mut c = Client::connect(node.bootstrap());
    c.create_topic("m", 4);
    let mut produced: BTreeMap<i32, u64> = BTreeMap::new();
    let mut produces = 0u64;
    for round in 0..5 {
        for p in 0..4 {
            let records = batch(10 + round + p as usize, 300);
            *produced.entry(p).or_default() += records.len() as u64;
            c.send(ApiKey::Produce, 9, &produce_request("m", p, 1, records));
            let r: ProduceResponse = c.recv(ApiKey::Produce, 9);
            assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
            produces += 1;
        }
    }
    for p in 0..4 {
        c.send(ApiKey::Fetch, 12, &fetch_request("m", p));
        let r: FetchResponse = c.recv(ApiKey::Fetch, 12);
        let part = &r.responses[0].partitions[0];
        assert_eq!(part.error_code, 0);
        assert_eq!(part.records.as_ref().map_or(0, |b| b.len() as u64), produced[&p], "partition {p} read whole");
    }

    let text = metrics(&node);
    promtool_check(&text);

    let lay = layout(&node);
    let owner: BTreeMap<i32, String> = lay["partitions"]
        .arr()
        .iter()
        .filter(|p| p["topic"].str() == "m")
        .map(|p| (p["partition"].i64() as i32, p["shard"].i64().to_string()))
        .collect();
    assert_eq!(owner.values().collect::<std::collections::BTreeSet<_>>().len(), 2, "on both shards: {lay}");
    let mut per_shard: BTreeMap<String, u64> = BTreeMap::new();
    for (labels, v) in samples(&text, "sluice_partition_produce_bytes_total") {
        if labels["topic"] != "m" {
            continue;
        }
        let p: i32 = labels["partition"].parse().unwrap();
        assert_eq!(labels["shard"], owner[&p], "partition {p} counted on its owner");
        assert_eq!(v as u64, produced[&p], "produce bytes of partition {p}");
        *per_shard.entry(labels["shard"].clone()).or_default() += v as u64;
    }
    for (labels, v) in samples(&text, "sluice_partition_fetch_bytes_total") {
        if labels["topic"] == "m" {
            let p: i32 = labels["partition"].parse().unwrap();
            assert_eq!(v as u64, produced[&p], "fetch bytes of partition {p}: read once, whole");
        }
    }
    for shard in ["0", "1"] {
        let total = sample(&text, "sluice_produce_bytes_total", ("shard", shard)) as u64;
        assert_eq!(total, per_shard[shard], "shard {shard}'s produce bytes are its partitions' (not its connections')");
    }

    let count = |family: &str| -> f64 { samples(&text, family).iter().map(|(_, v)| v).sum() };
    assert_eq!(count("sluice_produce_latency_seconds_count") as u64, produces, "one observation per produce");
    assert_eq!(count("sluice_fetch_latency_seconds_count") as u64, 4, "one observation per fetch");
    let inf: f64 = samples(&text, "sluice_produce_latency_seconds_bucket")
        .iter()
        .filter(|(l, _)| l["le"] == "+Inf")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(inf as u64, produces, "the +Inf bucket holds every observation");
    assert!(count("sluice_produce_latency_seconds_sum") > 0.0);
    assert!(count("sluice_shard_requests_total") as u64 >= produces + 5);
    assert!(count("sluice_shard_bytes_received_total") as u64 > produced.values().sum::<u64>());
    assert!(count("sluice_shard_bytes_sent_total") as u64 > produced.values().sum::<u64>(), "fetched bytes went out");

    let cores = lay["cores"].arr();
    assert_eq!(cores.len(), 2, "{lay}");
    for (i, core) in cores.iter().enumerate() {
        assert_eq!((core["shard"].i64(), core["core"].i64()), (i as i64, i as i64), "--cores 0-1: {core}");
        let busy = core["busy_ratio"].f64();
        assert!((0.0..=1.0).contains(&busy), "{core}");
        assert_eq!(core["produce_latency"]["buckets"].arr().len(), 13, "{core}");
    }
    let layout_requests: i64 = cores.iter().map(|c| c["requests"].i64()).sum();
    assert_eq!(layout_requests as f64, count("sluice_shard_requests_total"), "/layout and /metrics agree");
    for p in lay["partitions"].arr().iter().filter(|p| p["topic"].str() == "m") {
        let n = p["partition"].i64() as i32;
        assert_eq!(p["produce_bytes"].i64() as u64, produced[&n], "{p}");
        assert!(p["produce_bytes_per_s"].f64() >= 0.0, "{p}");
    }
}

// ---------------------------------------------------------------------------------------------
// Busy ratio against /proc.

/// CPU seconds (user + system) of one thread, from /proc/PID/task/TID/stat.
fn thread_cpu(pid: u32, tid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).expect("thread stat");
    // Fields after the command name in parentheses: state is field 3, utime 14, stime 15.
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / hz
}

/// The thread of shard `shard`: glommio names it `shard-N-ID`; threads it starts inherit the
/// name (its blocking pool), so the executor's own thread is the first, the lowest id.
fn shard_thread(pid: u32, shard: usize) -> u32 {
    let prefix = format!("shard-{shard}-");
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|e| {
            let tid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
            comm.starts_with(&prefix).then_some(tid)
        })
        .min()
        .unwrap_or_else(|| panic!("no thread named {prefix}* in process {pid}"))
}

/// Under a produce and fetch load on a two-shard node, each shard's busy ratio (its own
/// measurement of its thread's CPU clock, once a second) agrees with the CPU time /proc
/// reports for that thread over the same seconds: within 0.1 of a core (absolute).
///
/// The intervals are lined up by watching /metrics: `sluice_shard_cpu_seconds_total` changes
/// exactly when the shard samples, and /proc is read as soon as the change is seen (every
/// 20 ms or so). Over six sampling intervals the sampler's mean busy ratio, its CPU counter and
/// /proc's CPU time of the thread must tell the same story.
#[test]
fn busy_ratio_agrees_with_proc_thread_cpu_under_load() {
    // The load runs as fast as the node takes it for ten seconds or more: retention keeps
    // each partition under 48 MiB so the test's disk footprint stays small (it wrote 1.6 GB
    // before, and filled a CI machine's disk).
    let node = Node::start(&[
        "--cores",
        "0-1",
        "--set",
        "log.segment.bytes=16777216",
        "--set",
        "log.retention.bytes=33554432",
        "--set",
        "log.retention.check.interval.ms=250",
    ]);
    let pid = node.pid().unwrap();
    Client::connect(node.bootstrap()).create_topic("load", 4);

    // Two producer connections (acks=1, 4 in flight, 48 KiB batches over the 4 partitions)
    // and a fetching connection, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for id in 0..2 {
        let (stop, sent, addr) = (stop.clone(), sent.clone(), node.bootstrap().to_string());
        load.push(std::thread::spawn(move || {
            let mut c = Client::connect(&addr);
            let records = batch(80, 600);
            let mut in_flight = 0;
            let mut n = 0i32;
            while !stop.load(Ordering::Relaxed) || in_flight > 0 {
                if !stop.load(Ordering::Relaxed) && in_flight < 4 {
                    c.send(ApiKey::Produce, 9, &produce_request("load", (n + id) % 4, 1, records.clone()));
                    in_flight += 1;
                    n += 1;
                    continue;
                }
                let r: ProduceResponse = c.recv(ApiKey::Produce, 9);
                assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
                in_flight -= 1;
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    {
        let (stop, addr) = (stop.clone(), node.bootstrap().to_string());
        load.push(std::thread::spawn(move || {
            let mut c = Client::connect(&addr);
            let mut p = 0;
            while !stop.load(Ordering::Relaxed) {
                c.send(ApiKey::Fetch, 12, &fetch_request("load", p % 4).with_max_bytes(1 << 20));
                let _: FetchResponse = c.recv(ApiKey::Fetch, 12);
                p += 1;
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(2));

    const INTERVALS: usize = 6;
    let tids = [shard_thread(pid, 0), shard_thread(pid, 1)];
    // Per shard: (sampler's CPU counter, its busy ratio, /proc CPU of the thread, when seen).
    let mut seen: [Vec<(f64, f64, f64, Instant)>; 2] = [Vec::new(), Vec::new()];
    // The counter at the first look: the first point recorded is its first change (a sample).
    let mut before: [Option<f64>; 2] = [None, None];
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.iter().any(|s| s.len() <= INTERVALS) {
        assert!(Instant::now() < deadline, "the shards' CPU counters did not advance: {seen:?}");
        let text = metrics(&node);
        for shard in 0..2 {
            let label = ("shard", if shard == 0 { "0" } else { "1" });
            let counter = sample(&text, "sluice_shard_cpu_seconds_total", label);
            let last = seen[shard].last().map(|l| l.0).or(before[shard]);
            if last.is_none() {
                before[shard] = Some(counter);
            } else if last != Some(counter) && seen[shard].len() <= INTERVALS {
                let ratio = sample(&text, "sluice_shard_busy_ratio", label);
                seen[shard].push((counter, ratio, thread_cpu(pid, tids[shard]), Instant::now()));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    assert!(sent.load(Ordering::Relaxed) > 0);

    for (shard, s) in seen.iter().enumerate() {
        let (first, last) = (s[0], s[INTERVALS]);
        let wall = last.3.duration_since(first.3).as_secs_f64();
        let proc_busy = (last.2 - first.2) / wall;
        let counter_busy = (last.0 - first.0) / wall;
        let mean_ratio = s[1..].iter().map(|x| x.1).sum::<f64>() / INTERVALS as f64;
        let per_interval: Vec<String> = s
            .windows(2)
            .map(|w| {
                format!("{:.3} vs /proc {:.3}", w[1].1, (w[1].2 - w[0].2) / w[1].3.duration_since(w[0].3).as_secs_f64())
            })
            .collect();
        println!(
            "shard {shard} (thread {}): over {wall:.2} s busy ratio mean {mean_ratio:.3}, CPU counter {counter_busy:.3}, \
             /proc {proc_busy:.3} of a core; per interval: {}",
            tids[shard],
            per_interval.join(", ")
        );
        assert!(proc_busy > 0.05, "shard {shard} was under load ({proc_busy:.3} of a core by /proc)");
        assert!(
            (mean_ratio - proc_busy).abs() <= 0.1,
            "shard {shard}: busy ratio {mean_ratio:.3} vs /proc {proc_busy:.3} ({per_interval:?})"
        );
        assert!(
            (counter_busy - proc_busy).abs() <= 0.1,
            "shard {shard}: sluice_shard_cpu_seconds_total grew {counter_busy:.3} s/s vs /proc {proc_busy:.3}"
        );
    }
}
