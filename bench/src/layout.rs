//! `layout`: which shard (core) of a running Sluice node owns which partition, and each
//! shard's load, from the node's admin endpoint (/layout JSON and /metrics text).

use crate::Opts;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// One HTTP/1.0 GET; returns the body.
pub fn http_get(addr: &str, path: &str) -> Result<String> {
    let mut s = std::net::TcpStream::connect(addr).with_context(|| format!("connecting to admin {addr}"))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").context("malformed HTTP response")?;
    if !head.starts_with("HTTP/1.") || head.split_whitespace().nth(1) != Some("200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or(""));
    }
    Ok(body.to_string())
}

/// The node's /layout document (the fields read here; others are ignored).
#[derive(Debug, Deserialize)]
struct Layout {
    shards: i64,
    partitions: Vec<Row>,
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
}

fn parse_layout(body: &str) -> Result<(i64, Vec<Row>)> {
    let layout: Layout = serde_json::from_str(body).context("/layout is not the node's layout document")?;
    Ok((layout.shards, layout.partitions))
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
    let (shards, rows) = parse_layout(&http_get(&admin, "/layout")?)?;
    let metrics = shard_metrics(&http_get(&admin, "/metrics").unwrap_or_default());
    println!("node {admin}: {shards} shards, {} partitions\n", rows.len());
    println!(
        "{:<24} {:>9} {:>6} {:>14} {:>14} {:>14} {:>9}",
        "topic", "partition", "shard", "start offset", "end offset", "bytes", "segments"
    );
    // Internal topics (__consumer_offsets, __transaction_state: 50 partitions each) are
    // summarised per topic unless asked for, as Kafka's tools leave them out by default.
    let internal = o.has("internal");
    let mut summarised: BTreeMap<&str, BTreeMap<i64, usize>> = BTreeMap::new();
    for r in &rows {
        if r.topic.starts_with("__") && !internal {
            *summarised.entry(&r.topic).or_default().entry(r.shard).or_default() += 1;
            continue;
        }
        println!(
            "{:<24} {:>9} {:>6} {:>14} {:>14} {:>14} {:>9}",
            r.topic, r.partition, r.shard, r.log_start_offset, r.log_end_offset, r.size_bytes, r.segments
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
    let names: Vec<String> = {
        let mut n: Vec<String> = metrics.keys().map(|(n, _)| n.clone()).collect();
        n.dedup();
        n
    };
    println!(
        "\nper shard: partitions, records (end - start offsets), bytes on disk{}",
        if names.is_empty() { "" } else { ", and counters from /metrics" }
    );
    let short: Vec<String> =
        names.iter().map(|n| n.trim_start_matches("sluice_").trim_end_matches("_total").to_string()).collect();
    let mut head = format!("{:>6} {:>10} {:>14} {:>14}", "shard", "partitions", "records", "bytes");
    for s in &short {
        head.push_str(&format!(" {s:>20}"));
    }
    println!("{head}");
    for shard in 0..shards {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.shard == shard).collect();
        let records: i64 = mine.iter().map(|r| r.log_end_offset - r.log_start_offset).sum();
        let bytes: i64 = mine.iter().map(|r| r.size_bytes).sum();
        let mut line = format!("{shard:>6} {:>10} {records:>14} {bytes:>14}", mine.len());
        for n in &names {
            line.push_str(&format!(
                " {:>20}",
                metrics.get(&(n.clone(), shard)).map_or("-".into(), |v| if v.fract() == 0.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.3}") // ratios and CPU seconds
                })
            ));
        }
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The node's /layout document parses into rows.
    #[test]
    fn parses_layout() {
        let body = r#"{"shards":2,"partitions":[{"topic":"t","partition":1,"shard":1,"log_start_offset":0,"log_end_offset":5,"size_bytes":100,"segments":1}]}"#;
        let (shards, rows) = super::parse_layout(body).unwrap();
        assert_eq!(shards, 2);
        assert_eq!((rows[0].topic.as_str(), rows[0].partition, rows[0].shard, rows[0].log_end_offset), ("t", 1, 1, 5));
    }
}
