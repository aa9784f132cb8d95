//! The admin endpoint's HTTP behaviour as an operator meets it: 404 with the list of paths,
//! 405, 400, 431, HEAD, and `--admin off`. (That `--admin` defaults to 127.0.0.1:9644 is a
//! unit test of the argument parser in `node/src/main.rs`: a test node on the fixed port would
//! collide with a developer's node.)

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::json::{self, Json};
use support::{http_get, Node};

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
