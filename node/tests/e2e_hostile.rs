//! Hostile input: malformed frames never harm the node or other connections.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{check, kcat, run, Node};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("node is alive");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// Sends `bytes` on a fresh connection and returns what came back before the node closed it
/// (or until 3 s passed).
fn attack(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// A request frame: length, api key, version, correlation id, client id "x", then `body`.
fn frame(key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&key.to_be_bytes());
    f.extend_from_slice(&version.to_be_bytes());
    f.extend_from_slice(&7i32.to_be_bytes());
    f.extend_from_slice(&1i16.to_be_bytes());
    f.push(b'x');
    f.extend_from_slice(body);
    let mut out = (f.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&f);
    out
}

fn attacks() -> Vec<(&'static str, Vec<u8>)> {
    let mut random = Vec::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        random.push(x as u8);
    }
    vec![
        ("2 GiB length prefix", 0x7fff_ffffi32.to_be_bytes().to_vec()),
        ("negative length", (-5i32).to_be_bytes().to_vec()),
        ("length shorter than a header", 3i32.to_be_bytes().iter().chain(&[0, 0, 0]).copied().collect()),
        ("truncated body", 100i32.to_be_bytes().iter().chain(&[0, 3, 0, 1, 0, 0]).copied().collect()),
        ("unknown API key", frame(999, 0, &[])),
        ("unsupported Produce version", frame(0, 99, &[])),
        ("unsupported (unadvertised) API", frame(32, 0, &[0, 0, 0, 0])),
        // Metadata v1: topics array claiming 2^31-1 entries, then nothing.
        ("Metadata with an absurd topic count", frame(3, 1, &0x7fff_ffffi32.to_be_bytes())),
        // Produce v3: null transactional id, acks 1, timeout, topic array of 2^31-1.
        (
            "Produce with an absurd topic count",
            frame(
                0,
                3,
                &[&[0xffu8, 0xff][..], &1i16.to_be_bytes(), &1000i32.to_be_bytes(), &0x7fff_ffffi32.to_be_bytes()]
                    .concat(),
            ),
        ),
        // Fetch v12 is flexible: compact array counts are unsigned varints.
        ("Fetch with an absurd compact count", frame(1, 12, &[0xff, 0xff, 0xff, 0xff, 0x0f])),
        ("random bytes", random),
    ]
}

/// Every malformed frame closes only its own connection; a normal client producing and
/// consuming meanwhile is unaffected, and the node's memory stays bounded.
#[test]
fn malformed_frames_close_their_connection_only() {
    let node = Node::start(&["--cores", "0-1", "--set", "num.partitions=3"]);
    let pid = node.pid().expect("pid");
    let addr = node.bootstrap().to_string();
    let rss_before = rss_kib(pid);
    let normal = {
        let node_addr = addr.clone();
        std::thread::spawn(move || {
            let lines: Vec<String> = (0..20_000).map(|i| format!("k{}:v{i}", i % 13)).collect();
            let mut cmd = Command::new(kcat());
            cmd.args(["-b", &node_addr, "-P", "-t", "calm", "-K:", "-X", "acks=all"]);
            let out = run(cmd, Some(lines.join("\n").into_bytes()), Duration::from_secs(60));
            assert!(out.status.success(), "normal producer failed: {}", String::from_utf8_lossy(&out.stderr));
        })
    };
    let started = Instant::now();
    let mut rounds = 0;
    while started.elapsed() < Duration::from_secs(3) || rounds < 3 {
        let workers: Vec<_> = attacks()
            .into_iter()
            .map(|(what, bytes)| {
                let addr = addr.clone();
                std::thread::spawn(move || (what, attack(&addr, &bytes)))
            })
            .collect();
        for w in workers {
            let (what, reply) = w.join().unwrap();
            assert!(reply.len() < 1024, "{what}: the node answered garbage with {} bytes", reply.len());
        }
        rounds += 1;
    }
    normal.join().unwrap();
    let mut cmd = Command::new(kcat());
    cmd.args(["-b", &addr, "-C", "-t", "calm", "-e", "-o", "beginning", "-f", "%k\n"]);
    let out = run(cmd, None, Duration::from_secs(60));
    check(&out, "normal consumer", &node);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 20_000, "the normal client saw everything");
    let rss_after = rss_kib(pid);
    eprintln!(
        "hostile figure: {rounds} rounds of {} attacks; RSS {rss_before} KiB -> {rss_after} KiB",
        attacks().len()
    );
    assert!(rss_after < rss_before + 256 * 1024, "RSS grew from {rss_before} KiB to {rss_after} KiB");
}

/// ApiVersions with a version newer than we know is answered (v0 format, UNSUPPORTED_VERSION
/// and our ranges), as Kafka does, so the client can retry.
#[test]
fn a_too_new_api_versions_gets_a_v0_answer_with_the_ranges() {
    let node = Node::start(&["--cores", "0"]);
    let reply = attack(node.bootstrap(), &frame(18, 9, &[]));
    assert!(reply.len() > 10, "an answer came back");
    let body = &reply[4..];
    assert_eq!(i32::from_be_bytes(body[0..4].try_into().unwrap()), 7, "correlation id");
    assert_eq!(i16::from_be_bytes(body[4..6].try_into().unwrap()), 35, "UNSUPPORTED_VERSION");
    let count = i32::from_be_bytes(body[6..10].try_into().unwrap());
    assert!(count >= 9, "the supported ranges follow ({count})");
}
