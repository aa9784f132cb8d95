//! The admin HTTP endpoint (on shard 0; `--admin`, by default 127.0.0.1:9644, Redpanda's
//! admin port): `GET /metrics` (Prometheus text), `GET /layout` (JSON: which shard owns which
//! partition, with sizes, offsets and each shard's measured load), `GET /groups` (JSON:
//! consumer groups, members, assignments, committed offsets and lag) and `GET /groups.txt`
//! (the same as the table `sluice groups` prints).
//!
//! Partitions, in Redpanda's admin API shapes: `GET /v1/partitions/kafka/{topic}/{partition}`
//! (`replicas: [{node_id, core}]`, `status`: `done` or `in_progress`) and
//! `POST /v1/partitions/kafka/{topic}/{partition}/replicas` with `[{"node_id": N, "core": C}]`,
//! which moves the partition to shard C and answers once the move is done (`shard::moves`).
//!
//! One request per connection, HTTP/1.x with `Connection: close`. The request head is parsed
//! with `httparse` and capped at 8 KiB (431 past that), a body at 64 KiB (413); a malformed
//! head gets 400, an unknown path 404 with the list of paths, a wrong method 405.

use crate::group::{report, Views};
use crate::log::TopicPartition;
use crate::metrics;
use crate::shard::{MoveError, Shard};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::rc::Rc;

/// The admin listener when `--admin` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9644";

const REQUEST_HEAD_BYTES_MAX: usize = 8192;

/// Largest request body taken (a move's body is a few dozen bytes).
const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;

/// Request header lines read at most (more is a 431, as a head past 8 KiB is).
const REQUEST_HEADERS_MAX: usize = 64;

/// The paths served, with what each returns (the 404 body lists them).
pub const PATHS: [(&str, &str); 9] = [
    ("/metrics", "Prometheus text: per-shard load and latency, per-partition offsets and bytes, groups"),
    ("/layout", "JSON: partitions with their shard, sizes, offsets and bytes/s; each shard's load"),
    ("/groups", "JSON: consumer groups, members, assignments, committed offsets and lag"),
    ("/groups.txt", "the table `sluice groups` prints"),
    ("/v1/brokers", "JSON: the cluster's registered brokers (a node on its own: itself)"),
    ("/v1/cluster/quorum", "JSON: this node's view of the metadata quorum: leader, epoch, high watermark, voters"),
    ("/v1/partitions/kafka/T/P", "JSON: partition P of topic T: its core (replicas) and move status"),
    ("/v1/partitions/kafka/T/P/replicas", "POST [{\"node_id\": N, \"core\": C}]: move the partition to core C"),
    ("/v1/partitions/rebalance_cores", "POST: move partitions so the cores' measured load evens out"),
];

pub async fn serve(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        let Ok(stream) = listener.accept().await else { continue };
        let shard = shard.clone();
        glommio::spawn_local(async move {
            let _ = handle(&shard, stream).await;
        })
        .detach();
    }
}

/// What a request head asks for, or the error status it gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Partial,
    /// (method, path without the query string, head length, Content-Length).
    Request(String, String, usize, usize),
    /// (status line, message).
    Refused(&'static str, String),
}

/// Parses the request head received so far.
pub fn parse_head(head: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; REQUEST_HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(head_len)) => {
            let method = request.method.unwrap_or_default().to_string();
            let target = request.path.unwrap_or_default();
            let path = target.split_once('?').map_or(target, |(p, _)| p).to_string();
            let length = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<usize>().ok()));
            match length {
                None => Parsed::Request(method, path, head_len, 0),
                Some(Some(n)) if n <= REQUEST_BODY_BYTES_MAX => Parsed::Request(method, path, head_len, n),
                Some(Some(n)) => Parsed::Refused(
                    "413 Payload Too Large",
                    format!("a body of {n} bytes; at most {REQUEST_BODY_BYTES_MAX}\n"),
                ),
                Some(None) => Parsed::Refused("400 Bad Request", "unreadable Content-Length\n".into()),
            }
        }
        Ok(httparse::Status::Partial) if head.len() >= REQUEST_HEAD_BYTES_MAX => Parsed::Refused(
            "431 Request Header Fields Too Large",
            format!("the request head is capped at {REQUEST_HEAD_BYTES_MAX} bytes\n"),
        ),
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => Parsed::Refused(
            "431 Request Header Fields Too Large",
            format!("at most {REQUEST_HEADERS_MAX} header lines\n"),
        ),
        Err(e) => Parsed::Refused("400 Bad Request", format!("malformed HTTP request head: {e}\n")),
    }
}

/// The 404 body: every path served.
fn not_found(path: &str) -> String {
    let mut body = format!("no such path {path:?}; this endpoint serves (GET):\n");
    for (p, what) in PATHS {
        body.push_str(&format!("  {p:<12} {what}\n"));
    }
    body
}

async fn handle(shard: &Rc<Shard>, mut stream: TcpStream) -> std::io::Result<()> {
    let mut data = Vec::new();
    let mut buf = [0u8; 1024];
    let parsed = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(()); // closed before a whole head arrived: nobody to answer
        }
        let room = REQUEST_HEAD_BYTES_MAX - data.len();
        data.extend_from_slice(&buf[..n.min(room)]);
        match parse_head(&data) {
            Parsed::Partial => continue,
            done => break done,
        }
    };
    if let Parsed::Request(_, _, head_len, body_len) = &parsed {
        // The body: what followed the head in the buffer, then the rest from the socket.
        let (head_len, body_len) = (*head_len, *body_len);
        while data.len() < head_len + body_len {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            data.extend_from_slice(&buf[..n]);
        }
    }
    // The replicas path takes POST; every other path GET (and HEAD).
    let post_only = matches!(&parsed, Parsed::Request(_, path, ..) if path.ends_with("/replicas") || path.ends_with("/rebalance_cores"));
    let (status, kind, body, head_only) = match parsed {
        Parsed::Partial => unreachable!("the loop ends on a complete or refused head"),
        Parsed::Refused(status, message) => (status, "text/plain", message, false),
        Parsed::Request(method, path, head_len, body_len) if path.starts_with("/v1/partitions/") => {
            let body = &data[head_len..head_len + body_len];
            let (status, kind, text) = partitions(shard, &method, &path, body).await;
            (status, kind, text, false)
        }
        Parsed::Request(method, path, _, _) => {
            // The GET documents: the paths before the partition ones.
            let known = PATHS.iter().take(6).any(|(p, _)| *p == path);
            match method.as_str() {
                _ if !known => ("404 Not Found", "text/plain", not_found(&path), false),
                "GET" | "HEAD" => {
                    let (kind, body) = document(shard, &path).await;
                    ("200 OK", kind, body, method == "HEAD")
                }
                other => ("405 Method Not Allowed", "text/plain", format!("{path} takes GET, not {other}\n"), false),
            }
        }
    };
    let allow = match (status.starts_with("405"), post_only) {
        (true, true) => "Allow: POST\r\n",
        (true, false) => "Allow: GET, HEAD\r\n",
        (false, _) => "",
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes()).await?;
    stream.close().await
}

/// `/v1/partitions/kafka/{topic}/{partition}[/replicas]`: (status, content type, body).
async fn partitions(shard: &Rc<Shard>, method: &str, path: &str, body: &[u8]) -> (&'static str, &'static str, String) {
    if path == "/v1/partitions/rebalance_cores" {
        if method != "POST" {
            return ("405 Method Not Allowed", "text/plain", format!("{path} takes POST, not {method}\n"));
        }
        return match shard.rebalance_cores(|_| false).await {
            Ok(done) => {
                let moves: Vec<_> = done
                    .moves
                    .iter()
                    .map(|m| serde_json::json!({"topic": m.topic, "partition": m.partition, "from_core": m.from, "to_core": m.to, "estimated_busy": m.load}))
                    .collect();
                let doc =
                    serde_json::json!({"moves": moves, "busy_before": done.before, "busy_expected": done.expected});
                ("200 OK", "application/json", doc.to_string())
            }
            Err(e) => refused(e),
        };
    }
    let rest = path.strip_prefix("/v1/partitions/kafka/").unwrap_or("");
    let words: Vec<&str> = rest.split('/').collect();
    let (topic, partition, replicas) = match words.as_slice() {
        [t, p] => (*t, *p, false),
        [t, p, "replicas"] => (*t, *p, true),
        _ => return ("404 Not Found", "text/plain", not_found(path)),
    };
    let Ok(partition) = partition.parse::<i32>() else {
        return ("400 Bad Request", "text/plain", format!("partition {partition:?} is not a number\n"));
    };
    let tp = TopicPartition::new(topic.to_string(), partition);
    let node_id = shard.config().node_id;
    match (method, replicas) {
        ("GET" | "HEAD", false) => match shard.placement_of(&tp) {
            Some((core, moving)) => {
                let doc = serde_json::json!({
                    "ns": "kafka",
                    "topic": topic,
                    "partition_id": partition,
                    "status": if moving { "in_progress" } else { "done" },
                    "leader_id": node_id,
                    "replicas": [{"node_id": node_id, "core": core}],
                });
                ("200 OK", "application/json", doc.to_string())
            }
            None => ("404 Not Found", "text/plain", format!("no partition {partition} of topic {topic:?}\n")),
        },
        ("POST", true) => {
            let target = match move_target(body, node_id) {
                Ok(core) => core,
                Err(why) => return ("400 Bad Request", "text/plain", why + "\n"),
            };
            match shard.move_partition(&tp, target).await {
                Ok(()) => ("200 OK", "application/json", "{}".into()),
                Err(e) => refused(e),
            }
        }
        (other, false) => ("405 Method Not Allowed", "text/plain", format!("{path} takes GET, not {other}\n")),
        (other, true) => ("405 Method Not Allowed", "text/plain", format!("{path} takes POST, not {other}\n")),
    }
}

/// A refused or failed move as an HTTP answer.
fn refused(e: MoveError) -> (&'static str, &'static str, String) {
    match e {
        MoveError::BadRequest(m) => ("400 Bad Request", "text/plain", m + "\n"),
        MoveError::NotFound(m) => ("404 Not Found", "text/plain", m + "\n"),
        MoveError::Failed(m) => ("500 Internal Server Error", "text/plain", m + "\n"),
    }
}

/// The core a replicas body asks for: exactly one replica, on this node.
pub fn move_target(body: &[u8], node_id: i32) -> Result<usize, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Replica {
        node_id: i64,
        core: i64,
    }
    let replicas: Vec<Replica> = serde_json::from_slice(body)
        .map_err(|e| format!("the body must be [{{\"node_id\": {node_id}, \"core\": C}}]: {e}"))?;
    let [replica] = replicas.as_slice() else {
        return Err(format!("{} replicas given; a single node holds exactly one", replicas.len()));
    };
    if replica.node_id != node_id as i64 {
        return Err(format!("node_id {} is not this node ({node_id})", replica.node_id));
    }
    usize::try_from(replica.core).map_err(|_| format!("core {} out of range", replica.core))
}

/// The document at a known path: (content type, body).
async fn document(shard: &Rc<Shard>, path: &str) -> (&'static str, String) {
    match path {
        "/metrics" => {
            let (m, p) = shard.all_stats().await;
            let groups = shard.groups_everywhere(|| Views).await;
            ("text/plain; version=0.0.4", metrics::render(&m, &p) + &report::metrics(&groups, &p))
        }
        "/groups" => {
            let (_, p) = shard.all_stats().await;
            let groups = shard.groups_everywhere(|| Views).await;
            ("application/json", report::groups_json(&groups, &p))
        }
        "/v1/brokers" => ("application/json", brokers_json(shard)),
        "/v1/cluster/quorum" => {
            let status = shard.quorum.borrow().as_ref().map(|q| q.status());
            ("application/json", serde_json::to_string(&status).expect("the status serializes"))
        }
        "/groups.txt" => {
            let (_, p) = shard.all_stats().await;
            let groups = shard.groups_everywhere(|| Views).await;
            ("text/plain", report::groups_table(&groups, &p))
        }
        _ => {
            let (m, p) = shard.all_stats().await;
            ("application/json", metrics::layout_json(&m, &p))
        }
    }
}

/// `/v1/brokers`, in Redpanda's shape: the registered brokers of the cluster, or this node
/// alone when it is not in one.
fn brokers_json(shard: &Rc<Shard>) -> String {
    let quorum = shard.quorum.borrow().clone();
    let brokers: Vec<serde_json::Value> = match quorum {
        Some(q) => q
            .brokers()
            .into_iter()
            .map(|b| {
                let fenced = b.fenced;
                serde_json::json!({"node_id": b.id, "host": b.host, "port": b.port, "broker_epoch": b.epoch, "fenced": fenced})
            })
            .collect(),
        None => {
            let (host, port) = shard.advertised.borrow().clone();
            vec![serde_json::json!({"node_id": shard.config().node_id, "host": host, "port": port})]
        }
    };
    serde_json::Value::Array(brokers).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_body_names_one_replica_on_this_node() {
        assert_eq!(move_target(br#"[{"node_id": 0, "core": 1}]"#, 0), Ok(1));
        assert_eq!(move_target(br#"[{"node_id":3,"core":0}]"#, 3), Ok(0));
        for (body, why) in [
            (&br#"[{"node_id": 0, "core": 1}"#[..], "the body must be"),
            (br#"{"node_id": 0, "core": 1}"#, "the body must be"),
            (br#"[]"#, "0 replicas"),
            (br#"[{"node_id": 0, "core": 1}, {"node_id": 0, "core": 0}]"#, "2 replicas"),
            (br#"[{"node_id": 1, "core": 1}]"#, "node_id 1 is not this node"),
            (br#"[{"node_id": 0, "core": -1}]"#, "core -1 out of range"),
            (br#"[{"node_id": 0, "core": "1"}]"#, "the body must be"),
            (br#"[{"node_id": 0, "core": 1, "x": 2}]"#, "the body must be"),
        ] {
            let err = move_target(body, 0).unwrap_err();
            assert!(err.contains(why), "{:?}: {err}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn heads_parse_into_method_and_path() {
        let get = b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(parse_head(get), Parsed::Request("GET".into(), "/metrics".into(), get.len(), 0));
        let post = b"POST /v1/partitions/kafka/t/0/replicas HTTP/1.1\r\nContent-Length: 27\r\n\r\n";
        assert!(matches!(parse_head(post), Parsed::Request(m, _, n, 27) if m == "POST" && n == post.len()));
        assert_eq!(parse_head(&get[..20]), Parsed::Partial);
        assert!(
            matches!(parse_head(b"GET /metrics HTTP/1.1\r\nHo st: a\r\n\r\n"), Parsed::Refused(s, _) if s.starts_with("400"))
        );
        assert!(matches!(parse_head(b"\x01\x02 nonsense\r\n\r\n"), Parsed::Refused(s, _) if s.starts_with("400")));
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(REQUEST_HEAD_BYTES_MAX));
        assert!(
            matches!(parse_head(&big.as_bytes()[..REQUEST_HEAD_BYTES_MAX]), Parsed::Refused(s, _) if s.starts_with("431"))
        );
    }
}
