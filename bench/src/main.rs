//! `sluice-bench`: the load harness for Sluice and any Kafka-compatible broker.
//!
//! This first cut measures throughput: `produce`, `consume` (catch-up from earliest) and
//! `baseline` (the machine's page-cache write and loopback TCP bandwidth, to report ratios
//! to physical limits). With `--node-pid` it also reports the broker's CPU seconds per GiB,
//! read from /proc. Latency histograms, presets, compare and charts come with issue #4.

mod client;

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use client::Conn;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse, ProduceRequest, ProduceResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const USAGE: &str = "\
sluice-bench — load harness for Kafka-compatible brokers

USAGE:
    sluice-bench produce  --bootstrap ADDR --topic T [--partitions N] [--size B] [--mib M]
                          [--batch-bytes B] [--acks A] [--in-flight K] [--node-pid PID]
    sluice-bench consume  --bootstrap ADDR --topic T [--partitions N] [--mib M]
                          [--fetch-bytes B] [--node-pid PID]
    sluice-bench baseline [--dir DIR] [--mib M]

Defaults: 6 partitions, 1 KiB messages, 16 KiB batches, acks=1, 5 in flight, 1024 MiB.
Results print as one line per measurement: what, MB/s, and CPU s/GiB of --node-pid.";

struct Opts(HashMap<String, String>);

impl Opts {
    fn parse(args: &[String]) -> Result<Opts> {
        let mut map = HashMap::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let name = flag.strip_prefix("--").with_context(|| format!("unexpected argument {flag:?}"))?;
            let value = it.next().with_context(|| format!("{flag} needs a value"))?;
            map.insert(name.to_string(), value.clone());
        }
        Ok(Opts(map))
    }

    fn str(&self, name: &str, default: &str) -> String {
        self.0.get(name).cloned().unwrap_or_else(|| default.to_string())
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T> {
        match self.0.get(name) {
            Some(v) => v.parse().map_err(|_| anyhow::anyhow!("--{name}: {v:?} is not a number")),
            None => Ok(default),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("produce") => Opts::parse(&args[1..]).and_then(|o| produce(&o)),
        Some("consume") => Opts::parse(&args[1..]).and_then(|o| consume(&o)),
        Some("baseline") => Opts::parse(&args[1..]).and_then(|o| baseline(&o)),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("sluice-bench: {e:#}");
        std::process::exit(1);
    }
}

/// CPU seconds (user + system) the process has used so far, from /proc/PID/stat.
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

fn report(what: &str, bytes: u64, elapsed: Duration, cpu: Option<f64>) {
    let mbs = bytes as f64 / elapsed.as_secs_f64() / 1e6;
    let gib = bytes as f64 / (1u64 << 30) as f64;
    let cpu = cpu.map_or_else(|| "-".to_string(), |c| format!("{:.3}", c / gib));
    println!("{what:<40} {mbs:>10.0} MB/s  {cpu:>8} node-CPU-s/GiB  ({bytes} bytes in {:.2} s)", elapsed.as_secs_f64());
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn create_topic(conn: &mut Conn, topic: &str, partitions: i32) -> Result<()> {
    let req = CreateTopicsRequest::default().with_timeout_ms(30_000).with_topics(vec![CreatableTopic::default()
        .with_name(topic_name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(1)]);
    let resp: CreateTopicsResponse = conn.call(ApiKey::CreateTopics, 5, &req)?;
    match resp.topics.first().map(|t| t.error_code) {
        Some(0) | Some(36) => Ok(()), // created, or TOPIC_ALREADY_EXISTS
        other => bail!("creating topic {topic}: error {other:?}"),
    }
}

/// One record batch of `count` records of `size` bytes, encoded as a producer would.
fn make_batch(size: usize, count: usize) -> Result<bytes::Bytes> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let value = bytes::Bytes::from(vec![0x61u8; size]);
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: now,
            key: None,
            value: Some(value.clone()),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions { version: 2, compression: Compression::None },
    )?;
    Ok(buf.freeze())
}

fn produce(o: &Opts) -> Result<()> {
    let bootstrap = o.str("bootstrap", "127.0.0.1:9092");
    let topic = o.str("topic", "bench");
    let partitions: i32 = o.num("partitions", 6)?;
    let size: usize = o.num("size", 1024)?;
    let batch_bytes: usize = o.num("batch-bytes", 16 * 1024)?;
    let total: u64 = o.num::<u64>("mib", 1024)? << 20;
    let acks: i16 = o.num("acks", 1)?;
    let in_flight: usize = o.num("in-flight", 5)?;
    let pid: Option<u32> = o.0.get("node-pid").and_then(|p| p.parse().ok());
    let mut conn = Conn::connect(&bootstrap)?;
    create_topic(&mut conn, &topic, partitions)?;
    let batch = make_batch(size, (batch_bytes / size.max(1)).max(1))?;
    let cpu0 = cpu_seconds(pid);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut acked = 0u64;
    let mut partition = 0;
    while acked < total {
        while sent < total && conn.in_flight() < in_flight {
            let req = ProduceRequest::default().with_acks(acks).with_timeout_ms(30_000).with_topic_data(vec![
                TopicProduceData::default().with_name(topic_name(&topic)).with_partition_data(vec![
                    PartitionProduceData::default().with_index(partition).with_records(Some(batch.clone())),
                ]),
            ]);
            conn.send(ApiKey::Produce, 7, &req)?;
            partition = (partition + 1) % partitions;
            sent += batch.len() as u64;
        }
        let (resp, _): (ProduceResponse, _) = conn.recv()?;
        for p in resp.responses.iter().flat_map(|t| t.partition_responses.iter()) {
            if p.error_code != 0 {
                bail!("produce to partition {} failed with error {}", p.index, p.error_code);
            }
        }
        acked += batch.len() as u64;
    }
    let cpu = cpu_seconds(pid).zip(cpu0).map(|(b, a)| b - a);
    report(&format!("produce acks={acks} {size} B msgs"), acked, start.elapsed(), cpu);
    Ok(())
}

fn consume(o: &Opts) -> Result<()> {
    let bootstrap = o.str("bootstrap", "127.0.0.1:9092");
    let topic = o.str("topic", "bench");
    let partitions: i32 = o.num("partitions", 6)?;
    let total: u64 = o.num::<u64>("mib", 1024)? << 20;
    let fetch_bytes: i32 = o.num("fetch-bytes", 1 << 20)?;
    let pid: Option<u32> = o.0.get("node-pid").and_then(|p| p.parse().ok());
    let mut conn = Conn::connect(&bootstrap)?;
    let mut offsets = vec![0i64; partitions as usize];
    let cpu0 = cpu_seconds(pid);
    let start = Instant::now();
    let mut received = 0u64;
    while received < total {
        let parts = (0..partitions)
            .map(|p| {
                FetchPartition::default()
                    .with_partition(p)
                    .with_fetch_offset(offsets[p as usize])
                    .with_partition_max_bytes(fetch_bytes)
            })
            .collect();
        let req = FetchRequest::default()
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(fetch_bytes.saturating_mul(partitions))
            .with_topics(vec![FetchTopic::default().with_topic(topic_name(&topic)).with_partitions(parts)]);
        let resp: FetchResponse = conn.call(ApiKey::Fetch, 11, &req)?;
        let mut got = 0u64;
        for p in resp.responses.iter().flat_map(|t| t.partitions.iter()) {
            if p.error_code != 0 {
                bail!("fetch of partition {} failed with error {}", p.partition_index, p.error_code);
            }
            let Some(records) = &p.records else { continue };
            got += records.len() as u64;
            offsets[p.partition_index as usize] = next_offset(records).unwrap_or(offsets[p.partition_index as usize]);
        }
        if got == 0 {
            break; // caught up: everything there was has been read
        }
        received += got;
    }
    let cpu = cpu_seconds(pid).zip(cpu0).map(|(b, a)| b - a);
    report("consume catch-up", received, start.elapsed(), cpu);
    Ok(())
}

/// The offset after the last whole batch in a fetched records blob.
fn next_offset(mut records: &[u8]) -> Option<i64> {
    let mut next = None;
    while records.len() >= 61 {
        let size = 12 + client::be_i32(records, 8) as usize;
        if size > records.len() {
            break; // a partial batch at the end of the response
        }
        next = Some(client::be_i64(records, 0) + client::be_i32(records, 23) as i64 + 1);
        records = &records[size..];
    }
    next
}

fn baseline(o: &Opts) -> Result<()> {
    let dir = std::path::PathBuf::from(o.str("dir", "target/bench-baseline"));
    let total: u64 = o.num::<u64>("mib", 1024)? << 20;
    std::fs::create_dir_all(&dir)?;
    let chunk = vec![0x5au8; 1 << 20];
    let path = dir.join("pagecache.bin");
    let mut f = std::fs::File::create(&path)?;
    let start = Instant::now();
    for _ in 0..(total >> 20) {
        f.write_all(&chunk)?;
    }
    report("page-cache sequential write (1 MiB)", total, start.elapsed(), None);
    drop(f);
    let _ = std::fs::remove_file(&path);

    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let writer = std::thread::spawn(move || -> Result<()> {
        let mut s = std::net::TcpStream::connect(addr)?;
        let chunk = vec![0x5au8; 1 << 20];
        for _ in 0..(total >> 20) {
            s.write_all(&chunk)?;
        }
        Ok(())
    });
    let (mut s, _) = listener.accept()?;
    let mut buf = vec![0u8; 1 << 20];
    let start = Instant::now();
    let mut got = 0u64;
    while got < total {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    report("loopback TCP (1 MiB writes)", got, start.elapsed(), None);
    writer.join().map_err(|_| anyhow::anyhow!("writer thread panicked"))??;
    Ok(())
}
