//! Commands of the `sluice` binary that talk to a running node's admin endpoint:
//! `sluice groups`, `sluice layout`, `sluice layout move`, `sluice layout rebalance`.

use serde_json::Value;

/// One HTTP/1.1 request to the admin endpoint: (status code, body).
pub fn http(addr: &str, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).map_err(|e| format!("connecting to {addr}: {e}"))?;
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(120)));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| format!("writing to {addr}: {e}"))?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| format!("reading from {addr}: {e}"))?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("malformed HTTP response")?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("malformed HTTP status line")?;
    Ok((status, body.to_string()))
}

/// The body of a 200 answer, else an error naming the status and the node's message.
fn ok_body(addr: &str, method: &str, path: &str, body: &str) -> Result<String, String> {
    match http(addr, method, path, body)? {
        (200, body) => Ok(body),
        (status, body) => Err(format!("{addr} answered {status}: {}", body.trim())),
    }
}

/// `sluice groups`: the node's consumer groups table.
pub fn groups(addr: &str) -> Result<(), String> {
    print!("{}", ok_body(addr, "GET", "/groups.txt", "")?);
    Ok(())
}

/// `sluice layout [move TOPIC PARTITION CORE | rebalance] [--admin ADDR]`.
pub fn layout(args: &[&str]) -> Result<(), String> {
    let (addr, rest) = match args {
        [rest @ .., "--admin", addr] => (*addr, rest),
        rest => (crate::admin::DEFAULT_ADDR, rest),
    };
    match rest {
        [] => {
            let text = ok_body(addr, "GET", "/layout", "")?;
            let layout: Value = serde_json::from_str(&text).map_err(|e| format!("/layout: {e}"))?;
            print!("{}", layout_table(&layout));
            Ok(())
        }
        ["move", topic, partition, core] => {
            let core: usize = core.parse().map_err(|_| format!("core {core:?} is not a number"))?;
            let partition: i32 = partition.parse().map_err(|_| format!("partition {partition:?} is not a number"))?;
            let path = format!("/v1/partitions/kafka/{topic}/{partition}");
            let node = serde_json::from_str::<Value>(&ok_body(addr, "GET", &path, "")?)
                .ok()
                .and_then(|v| v["leader_id"].as_i64())
                .unwrap_or(0);
            let body = serde_json::json!([{"node_id": node, "core": core}]).to_string();
            ok_body(addr, "POST", &format!("{path}/replicas"), &body)?;
            println!("{topic}-{partition} is on core {core}");
            Ok(())
        }
        ["rebalance"] => {
            let text = ok_body(addr, "POST", "/v1/partitions/rebalance_cores", "")?;
            let done: Value = serde_json::from_str(&text).map_err(|e| format!("rebalance_cores: {e}"))?;
            let moves = done["moves"].as_array().cloned().unwrap_or_default();
            for m in &moves {
                println!(
                    "moved {}-{} from core {} to core {} (about {:.0} % of a core)",
                    m["topic"].as_str().unwrap_or("?"),
                    m["partition"],
                    m["from_core"],
                    m["to_core"],
                    m["estimated_busy"].as_f64().unwrap_or(0.0) * 100.0
                );
            }
            println!(
                "{} moves; busy before {}, expected after {}",
                moves.len(),
                fractions(&done["busy_before"]),
                fractions(&done["busy_expected"])
            );
            Ok(())
        }
        other => Err(format!(
            "unknown layout command {other:?}: use `sluice layout`, `sluice layout move TOPIC PARTITION CORE` or `sluice layout rebalance`, each with an optional --admin HOST:PORT"
        )),
    }
}

fn fractions(v: &Value) -> String {
    let list: Vec<String> =
        v.as_array().into_iter().flatten().map(|x| format!("{:.2}", x.as_f64().unwrap_or(0.0))).collect();
    format!("[{}]", list.join(", "))
}

/// Per shard: its core, busy fraction, requests/s, partitions, bytes/s and the hottest partitions.
pub fn layout_table(layout: &Value) -> String {
    let partitions = layout["partitions"].as_array().cloned().unwrap_or_default();
    let rate =
        |p: &Value| p["produce_bytes_per_s"].as_f64().unwrap_or(0.0) + p["fetch_bytes_per_s"].as_f64().unwrap_or(0.0);
    let mut out = format!(
        "{:<6} {:<5} {:>6} {:>10} {:>11} {:>12}  hottest partitions (MB/s in+out)\n",
        "SHARD", "CORE", "BUSY", "REQUESTS/S", "PARTITIONS", "MB/S IN+OUT"
    );
    let mut busy = Vec::new();
    for core in layout["cores"].as_array().into_iter().flatten() {
        let shard = core["shard"].as_u64().unwrap_or(0);
        let mut mine: Vec<&Value> = partitions.iter().filter(|p| p["shard"].as_u64() == Some(shard)).collect();
        mine.sort_by(|a, b| rate(b).total_cmp(&rate(a)));
        let hottest: Vec<String> = mine
            .iter()
            .take(3)
            .filter(|p| rate(p) > 0.0)
            .map(|p| format!("{}-{} {:.1}", p["topic"].as_str().unwrap_or("?"), p["partition"], rate(p) / 1e6))
            .collect();
        let b = core["busy_ratio"].as_f64().unwrap_or(0.0);
        busy.push(b);
        out.push_str(&format!(
            "{:<6} {:<5} {:>5.0}% {:>10.0} {:>11} {:>12.1}  {}\n",
            shard,
            core["core"].as_u64().unwrap_or(0),
            b * 100.0,
            core["requests_per_s"].as_f64().unwrap_or(0.0),
            mine.len(),
            mine.iter().map(|p| rate(p)).sum::<f64>() / 1e6,
            hottest.join(", ")
        ));
    }
    out.push_str(&format!(
        "imbalance {:.0} % ((busiest - idlest) / busiest); `sluice layout rebalance` evens it out\n",
        crate::balance::imbalance(&busy) * 100.0
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_table_names_each_core_its_load_and_hottest_partitions() {
        let layout = serde_json::json!({
            "shards": 2,
            "partitions": [
                {"topic": "hot", "partition": 0, "shard": 0, "produce_bytes_per_s": 9.0e6, "fetch_bytes_per_s": 1.0e6},
                {"topic": "cold", "partition": 1, "shard": 0, "produce_bytes_per_s": 1.0e6, "fetch_bytes_per_s": 0.0},
                {"topic": "cold", "partition": 0, "shard": 1, "produce_bytes_per_s": 2.0e6, "fetch_bytes_per_s": 0.0},
                {"topic": "idle", "partition": 0, "shard": 1, "produce_bytes_per_s": 0.0, "fetch_bytes_per_s": 0.0}
            ],
            "cores": [
                {"shard": 0, "core": 4, "busy_ratio": 0.8, "requests_per_s": 1200.0},
                {"shard": 1, "core": 5, "busy_ratio": 0.2, "requests_per_s": 300.0}
            ]
        });
        let table = layout_table(&layout);
        let lines: Vec<&str> = table.lines().collect();
        let words: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(&words[..6], &["0", "4", "80%", "1200", "2", "11.0"], "{table}");
        assert!(lines[1].contains("11.0  hot-0 10.0, cold-1 1.0"), "{table}");
        assert!(lines[2].contains("2.0  cold-0 2.0") && !lines[2].contains("idle"), "{table}");
        assert!(lines[3].starts_with("imbalance 75 %"), "{table}");
    }
}
