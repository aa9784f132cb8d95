//! `sluice-bench compare --layout-a --layout-b` against a real two-shard node: it puts each
//! layout in force through the node's admin API before each run, reports both layouts'
//! figures and imbalance, and leaves the node with the last layout applied; `layout --save`
//! writes that placement back in the layout file format.

mod support;

use std::io::{Read, Write};
use std::process::{Command, Output};

/// The body of `GET path` from the node's admin endpoint.
fn get(admin: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(admin).expect("connecting to the admin endpoint");
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").expect("sending the request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("reading the answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {text}");
    body.to_string()
}

/// (core, status) of a partition, as the node's partition endpoint reports it.
fn placement(admin: &str, topic: &str, partition: i32) -> (u64, String) {
    let doc: serde_json::Value =
        serde_json::from_str(&get(admin, &format!("/v1/partitions/kafka/{topic}/{partition}"))).expect("JSON");
    (doc["replicas"][0]["core"].as_u64().expect("replicas[0].core"), doc["status"].as_str().unwrap_or("").to_string())
}

fn bench(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice-bench")).args(args).output().expect("running sluice-bench");
    assert!(
        output.status.success(),
        "sluice-bench {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Layout A alternates the 4 partitions over the two cores, layout B puts all of them on
/// core 1. One round of 1 s runs A, then B: B's placement is in force afterwards (B moved
/// the two partitions A had put on core 0), the report carries both sides' figures and
/// imbalance, and `layout --save` writes B back.
#[test]
fn compare_puts_each_layout_in_force_and_reports_both() {
    let node = support::start_node("layout-compare", "0-1");
    let topic = "lay";
    let out_dir = node.dir.join("out");
    let out_dir = out_dir.to_str().unwrap();
    let create = ["produce", "--bootstrap", &node.kafka, "--topic", topic, "--partitions", "4", "--count", "100"];
    bench(&[&create[..], &["--quiet", "1", "--out", out_dir]].concat());
    let a = node.dir.join("a.layout");
    let b = node.dir.join("b.layout");
    std::fs::write(&a, format!("# A: alternate\n{topic} 0 0\n{topic} 1 1\n{topic} 2 0\n{topic} 3 1\n")).unwrap();
    std::fs::write(&b, (0..4).map(|p| format!("{topic} {p} 1   # B: all on core 1\n")).collect::<String>()).unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let out = bench(&[
        "compare",
        "--bootstrap",
        &node.kafka,
        "--admin",
        &node.admin,
        "--layout-a",
        a,
        "--layout-b",
        b,
        "--rounds",
        "1",
        "--duration",
        "1",
        "--topic",
        topic,
        "--partitions",
        "4",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for p in 0..4 {
        assert_eq!(placement(&node.admin, topic, p), (1, "done".to_string()), "partition {p}\n{stdout}\n{stderr}");
    }
    assert!(
        stderr.contains(&format!("round 1/1 B layout {b} (2 partitions moved first)")),
        "B moved what A had put on core 0:\n{stderr}"
    );
    let row = stdout.lines().find(|l| l.starts_with("produce msg/s")).unwrap_or_else(|| panic!("{stdout}"));
    let figures: Vec<f64> = row.split_whitespace().skip(2).take(3).map(|w| w.parse().unwrap()).collect();
    assert!(figures[0] > 0.0 && figures[1] > 0.0 && figures[2] > 0.0, "A, B and B / A: {row}");
    for (side, file) in [("A", a), ("B", b)] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{side} layout {file}")))
            .unwrap_or_else(|| panic!("no imbalance line for {side}:\n{stdout}"));
        let value = line.split_whitespace().nth(3).unwrap_or("");
        assert!(value == "idle" || value.parse::<f64>().is_ok_and(|x| (0.0..=1.0).contains(&x)), "{line}");
    }
    let saved = node.dir.join("saved.layout");
    bench(&["layout", "--admin", &node.admin, "--save", saved.to_str().unwrap()]);
    let text = std::fs::read_to_string(&saved).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines, ["lay 0 1", "lay 1 1", "lay 2 1", "lay 3 1"], "{text}");
    let table = String::from_utf8_lossy(&bench(&["layout", "--admin", &node.admin]).stdout).to_string();
    assert!(table.lines().any(|l| l.starts_with("imbalance: ")), "{table}");
}
