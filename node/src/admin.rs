//! The admin HTTP endpoint (on shard 0; `--admin`, by default 127.0.0.1:9644, Redpanda's
//! admin port): `GET /metrics` (Prometheus text), `GET /layout` (JSON: which shard owns which
//! partition, with sizes, offsets and each shard's measured load), `GET /groups` (JSON:
//! consumer groups, members, assignments, committed offsets and lag) and `GET /groups.txt`
//! (the same as the table `sluice groups` prints).
//!
//! One request per connection, HTTP/1.x with `Connection: close`. The request head is parsed
//! with `httparse` and capped at 8 KiB (431 past that); a malformed head gets 400, an unknown
//! path 404 with the list of paths, another method than GET or HEAD 405.

use crate::group::{self, report, GroupCall};
use crate::metrics;
use crate::shard::Shard;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::rc::Rc;

/// The admin listener when `--admin` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9644";

const REQUEST_HEAD_BYTES_MAX: usize = 8192;

/// Request header lines read at most (more is a 431, as a head past 8 KiB is).
const REQUEST_HEADERS_MAX: usize = 64;

/// The paths served, with what each returns (the 404 body lists them).
pub const PATHS: [(&str, &str); 4] = [
    ("/metrics", "Prometheus text: per-shard load and latency, per-partition offsets and bytes, groups"),
    ("/layout", "JSON: partitions with their shard, sizes, offsets and bytes/s; each shard's load"),
    ("/groups", "JSON: consumer groups, members, assignments, committed offsets and lag"),
    ("/groups.txt", "the table `sluice groups` prints"),
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
    /// (method, path without the query string).
    Request(String, String),
    /// (status line, message).
    Refused(&'static str, String),
}

/// Parses the request head received so far.
pub fn parse_head(head: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; REQUEST_HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {
            let method = request.method.unwrap_or_default().to_string();
            let target = request.path.unwrap_or_default();
            let path = target.split_once('?').map_or(target, |(p, _)| p).to_string();
            Parsed::Request(method, path)
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
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let parsed = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(()); // closed before a whole head arrived: nobody to answer
        }
        let room = REQUEST_HEAD_BYTES_MAX - head.len();
        head.extend_from_slice(&buf[..n.min(room)]);
        match parse_head(&head) {
            Parsed::Partial => continue,
            done => break done,
        }
    };
    let (status, kind, body, head_only) = match parsed {
        Parsed::Partial => unreachable!("the loop ends on a complete or refused head"),
        Parsed::Refused(status, message) => (status, "text/plain", message, false),
        Parsed::Request(method, path) => {
            let known = PATHS.iter().any(|(p, _)| *p == path);
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
    let allow = if status.starts_with("405") { "Allow: GET, HEAD\r\n" } else { "" };
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

/// The document at a known path: (content type, body).
async fn document(shard: &Rc<Shard>, path: &str) -> (&'static str, String) {
    match path {
        "/metrics" => {
            let (m, p) = shard.all_stats().await;
            let groups = group::all(shard, || GroupCall::Views).await;
            ("text/plain; version=0.0.4", metrics::render(&m, &p) + &report::metrics(&groups, &p))
        }
        "/groups" => {
            let (_, p) = shard.all_stats().await;
            let groups = group::all(shard, || GroupCall::Views).await;
            ("application/json", report::groups_json(&groups, &p))
        }
        "/groups.txt" => {
            let (_, p) = shard.all_stats().await;
            let groups = group::all(shard, || GroupCall::Views).await;
            ("text/plain", report::groups_table(&groups, &p))
        }
        _ => {
            let (m, p) = shard.all_stats().await;
            ("application/json", metrics::layout_json(&m, &p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_into_method_and_path() {
        let get = b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(parse_head(get), Parsed::Request("GET".into(), "/metrics".into()));
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
