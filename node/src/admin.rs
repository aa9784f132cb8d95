//! The admin HTTP endpoint (on shard 0): `GET /metrics` (Prometheus text), `GET /layout`
//! (JSON: which shard owns which partition, with sizes and offsets), `GET /groups` (JSON:
//! consumer groups, members, assignments, committed offsets and lag) and `GET /groups.txt`
//! (the same as the table `sluice groups` prints).
//! One request per connection, HTTP/1.1 with `Connection: close`; the request head is
//! capped at 8 KiB.

use crate::group::{self, report, GroupCall};
use crate::metrics;
use crate::shard::Shard;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::rc::Rc;

const REQUEST_HEAD_BYTES_MAX: usize = 8192;

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

async fn handle(shard: &Rc<Shard>, mut stream: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > REQUEST_HEAD_BYTES_MAX {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, kind, body) = match (method, path) {
        ("GET", "/metrics") => {
            let (m, p) = shard.all_stats().await;
            let groups = group::all(shard, || GroupCall::Views).await;
            let text = metrics::render(&m, &p) + &report::metrics(&groups, &p);
            ("200 OK", "text/plain; version=0.0.4", text)
        }
        ("GET", "/groups") => {
            let (_, p) = shard.all_stats().await;
            let groups = group::all(shard, || GroupCall::Views).await;
            ("200 OK", "application/json", report::groups_json(&groups, &p))
        }
        ("GET", "/groups.txt") => {
            let (_, p) = shard.all_stats().await;
            let groups = group::all(shard, || GroupCall::Views).await;
            ("200 OK", "text/plain", report::groups_table(&groups, &p))
        }
        ("GET", "/layout") => {
            let (_, p) = shard.all_stats().await;
            ("200 OK", "application/json", metrics::layout_json(shard.shards(), &p))
        }
        _ => ("404 Not Found", "text/plain", "try /metrics, /layout, /groups or /groups.txt\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.close().await
}
