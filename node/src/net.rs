//! Connections: length-prefixed frames in, responses out in request order.
//!
//! Each connection has two tasks on its shard: the reader parses frames and starts one
//! handler task per request; the writer awaits those tasks in order and writes their
//! responses. A bounded channel between them caps requests in flight per connection
//! (backpressure: the reader stops reading the socket). The socket is `dup`ed so each task
//! owns a stream of its own.
//!
//! Hostile input: the length prefix is checked against `socket.request.max.bytes` before a
//! byte of the body is buffered; a frame that cannot be parsed closes this connection only.

use crate::api::{self, Close};
use crate::file_send::{self, SendMethod};
use crate::frame_pool;
use crate::protocol::{self, Chunk, Response};
use crate::shard::Shard;
use futures_lite::future::poll_once;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel;
use glommio::net::{TcpListener, TcpStream};
use glommio::task::JoinHandle;
use std::cell::Cell;
use std::os::fd::{AsRawFd, FromRawFd};
use std::rc::Rc;

/// Requests one connection may have in flight (Kafka clients keep up to 5 by default).
pub const IN_FLIGHT_REQUESTS_MAX: usize = 16;

/// Bytes of complete responses gathered into one send before it goes out regardless.
pub const RESPONSE_BUFFER_BYTES_MAX: usize = 256 * 1024;

/// Capacity of that buffer a connection keeps between sends (most responses are small).
pub const RESPONSE_BUFFER_KEPT_BYTES: usize = 16 * 1024;

/// Accepts connections until `stop` is set.
pub async fn serve(shard: Rc<Shard>, listener: TcpListener, stop: Rc<Cell<bool>>) {
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("sluice: shard {} accept failed: {e}", shard.id);
                glommio::timer::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if stop.get() {
            return;
        }
        let shard = shard.clone();
        glommio::spawn_local(async move {
            {
                let mut m = shard.metrics.borrow_mut();
                m.connections_accepted += 1;
                m.connections_open += 1;
            }
            if let Err(reason) = connection(&shard, stream).await {
                shard.metrics.borrow_mut().bad_frames += 1;
                eprintln!("sluice: closing connection: {}", reason.0);
            }
            shard.metrics.borrow_mut().connections_open -= 1;
        })
        .detach();
    }
}

type Pending = JoinHandle<Result<Option<Response>, Close>>;

async fn connection(shard: &Rc<Shard>, mut reader: TcpStream) -> Result<(), Close> {
    let _ = reader.set_nodelay(true);
    // Accepted sockets do not inherit the listener's O_NONBLOCK. glommio's own I/O does not
    // care (it passes MSG_DONTWAIT and polls on the ring), but `sendfile(2)` on a blocking
    // socket would park the whole shard until a slow reader drained it.
    set_nonblocking(reader.as_raw_fd()).map_err(|e| Close(format!("O_NONBLOCK: {e}")))?;
    // SAFETY: dup returns a new descriptor (or -1) that we own from here on.
    let fd = unsafe { libc::dup(reader.as_raw_fd()) };
    if fd < 0 {
        return Err(Close(format!("dup failed: {}", std::io::Error::last_os_error())));
    }
    // SAFETY: `fd` is a connected TCP socket we own.
    let writer_stream = unsafe { TcpStream::from_raw_fd(fd) };
    let (tx, rx) = local_channel::new_bounded::<Pending>(IN_FLIGHT_REQUESTS_MAX);
    let method = shard.config().fetch_send_method;
    let writer_shard = shard.clone();
    let writer = glommio::spawn_local(async move { write_responses(&writer_shard, writer_stream, rx, method).await });
    let max = shard.config().socket_request_max_bytes;
    let peer = reader.peer_addr().ok();
    let result = read_requests(shard, &mut reader, &tx, max, peer).await;
    drop(tx);
    let written = writer.await;
    result.and(written)
}

fn set_nonblocking(fd: i32) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor this connection owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

async fn read_requests(
    shard: &Rc<Shard>,
    reader: &mut TcpStream,
    tx: &local_channel::LocalSender<Pending>,
    max: usize,
    peer: Option<std::net::SocketAddr>,
) -> Result<(), Close> {
    loop {
        let mut prefix = [0u8; 4];
        if reader.read_exact(&mut prefix).await.is_err() {
            return Ok(()); // peer closed (or reset): not an error of ours
        }
        let len = protocol::frame_length(prefix);
        if len < protocol::REQUEST_HEADER_FIXED_BYTES as i32 || len as usize > max {
            return Err(Close(format!("frame length {len} outside 8..={max} (socket.request.max.bytes)")));
        }
        // Backpressure: wait for room in the shard's request-bytes budget before buffering.
        let permit = shard
            .request_bytes
            .acquire_static_permit(len as u64)
            .await
            .map_err(|_| Close("the node is stopping".into()))?;
        // A recycled buffer: no page faults, no zeroing (see `frame_pool`).
        let mut frame = frame_pool::take(len as usize);
        if reader.read_exact(&mut frame).await.is_err() {
            return Err(Close("connection closed inside a frame".into()));
        }
        if shard.stopping.get() {
            return Ok(()); // the node is stopping: take no new request
        }
        let mut request = protocol::parse_request(frame_pool::freeze(frame)).map_err(|e| Close(e.to_string()))?;
        request.peer = peer;
        {
            let mut m = shard.metrics.borrow_mut();
            m.requests += 1;
            m.bytes_received += 4 + len as u64;
        }
        let shard = shard.clone();
        let task = glommio::spawn_local(async move {
            let (api, started) = (request.api_key, std::time::Instant::now());
            let response = shard.counted(api::dispatch(&shard, request)).await;
            shard.metrics.borrow_mut().record_latency(api, started.elapsed());
            drop(permit);
            response
        })
        .detach();
        if tx.send(task).await.is_err() {
            return Ok(()); // the writer stopped: the connection is closing
        }
    }
}

/// Writes responses in request order. Responses that are already complete when one is
/// written go out with it in one send: each send to a loopback or LAN peer wakes the
/// client's thread on another core, which on this VM costs more than the copy
/// (`sock_def_readable` under `__send`: 6 % of the node's CPU at 16 KiB batches). With one
/// producer connection and 5 requests in flight few responses complete together, and there
/// the effect was within the run-to-run noise (bench/RESULTS.md 2026-12-04).
async fn write_responses(
    shard: &Rc<Shard>,
    mut stream: TcpStream,
    rx: local_channel::LocalReceiver<Pending>,
    method: SendMethod,
) -> Result<(), Close> {
    let mut out = Vec::new();
    let mut next: Option<Pending> = None;
    loop {
        let task = match next.take() {
            Some(t) => t,
            None => match rx.recv().await {
                Some(t) => t,
                None => break,
            },
        };
        let mut done = Some(task.await);
        while let Some(result) = done.take() {
            let response = match result {
                Some(Ok(Some(r))) => Some(r),
                Some(Ok(None)) => None,
                Some(Err(close)) => return Err(close_after(&mut stream, &mut out, close.0).await),
                None => return Err(close_after(&mut stream, &mut out, "request handler was cancelled".into()).await),
            };
            if let Some(r) = response {
                if let Err(e) = queue_response(shard, &mut stream, &mut out, r, method).await {
                    return Err(close_both(&stream, format!("write failed: {e}")).await);
                }
            }
            // The next request's response, if it is complete already (never waits).
            if let Some(Some(mut t)) = poll_once(rx.recv()).await {
                match poll_once(&mut t).await {
                    Some(result) => done = Some(result),
                    None => next = Some(t),
                }
            }
        }
        if let Err(e) = flush(&mut stream, &mut out).await {
            return Err(close_both(&stream, format!("write failed: {e}")).await);
        }
        if out.capacity() > RESPONSE_BUFFER_KEPT_BYTES {
            out = Vec::new(); // a burst's buffer is not kept by an idle connection
        }
    }
    let _ = stream.close().await;
    Ok(())
}

/// Sends the responses queued before a request that closes the connection, then closes it.
async fn close_after(stream: &mut TcpStream, out: &mut Vec<u8>, reason: String) -> Close {
    let _ = flush(stream, out).await;
    close_both(stream, reason).await
}

/// Shuts the socket down in both directions, so the reader (blocked on the peer) wakes up.
async fn close_both(stream: &TcpStream, reason: String) -> Close {
    let _ = stream.shutdown(std::net::Shutdown::Both).await;
    Close(reason)
}

/// Appends a response to `out`; file ranges are sent at once (after what `out` holds).
/// `out` is sent when it grows past `RESPONSE_BUFFER_BYTES_MAX`, else by the caller.
async fn queue_response(
    shard: &Rc<Shard>,
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    response: Response,
    method: SendMethod,
) -> std::io::Result<()> {
    out.extend_from_slice(&protocol::length_prefix(response.body_len()));
    shard.metrics.borrow_mut().bytes_sent += 4 + response.body_len() as u64;
    for chunk in response.chunks {
        match chunk {
            // A large chunk goes out as it is rather than through one more copy.
            Chunk::Bytes(b) if b.len() > RESPONSE_BUFFER_BYTES_MAX => {
                flush(stream, out).await?;
                stream.write_all(&b).await?;
            }
            Chunk::Bytes(b) => out.extend_from_slice(&b),
            Chunk::File { file, position, length } => {
                flush(stream, out).await?;
                send_range(shard, stream, &file.file, position, length, method).await?;
            }
            Chunk::Foreign { file, position, length } => {
                flush(stream, out).await?;
                send_range(shard, stream, &file, position, length, method).await?;
            }
        }
    }
    if out.len() > RESPONSE_BUFFER_BYTES_MAX {
        flush(stream, out).await?;
    }
    Ok(())
}

async fn flush(stream: &mut TcpStream, pending: &mut Vec<u8>) -> std::io::Result<()> {
    if !pending.is_empty() {
        stream.write_all(pending).await?;
        pending.clear();
    }
    Ok(())
}

/// Sends a file range with the configured method and counts what it did.
async fn send_range(
    shard: &Rc<Shard>,
    stream: &mut TcpStream,
    file: &glommio::io::BufferedFile,
    position: u64,
    length: u64,
    method: SendMethod,
) -> std::io::Result<()> {
    let sent = file_send::send_range(stream, file, position, length, method).await?;
    let mut m = shard.metrics.borrow_mut();
    m.fetch_bytes_zero_copy += sent.zero_copy;
    m.fetch_bytes_copied += sent.copied;
    Ok(())
}
