//! Connections: length-prefixed frames in, responses out in request order.
//!
//! Each connection has two tasks on its shard: the reader parses frames and starts one
//! handler task per request; the writer awaits those tasks in order and writes their
//! responses. A bounded channel between them caps requests in flight per connection
//! (backpressure: the reader stops reading the socket).
//!
//! One descriptor per connection: both tasks need a glommio `TcpStream` (its reads and
//! writes take `&mut self`, and the writer's zero-copy path needs the stream across
//! awaits, so one stream cannot be shared through a `RefCell`). glommio keeps a stream's
//! read and write state apart (one readiness source each), so two streams over the same
//! descriptor do not interfere — the descriptor is what a `dup` would have shared anyway
//! (same open file, same socket). [`SocketHalf`] gives each task such a stream without
//! letting either close the descriptor: it is closed when both are gone. Until issue #14
//! each connection held the socket and a `dup` of it: two entries of `RLIMIT_NOFILE`.
//!
//! Limits (issue #14, Build 4; Kafka's names and behaviour): `max.connections` — when the
//! node holds that many, a shard that accepts one more keeps it waiting unread and accepts
//! nothing else until a slot frees (Kafka's acceptor blocks the same way; clients wait in
//! the listen backlog); `max.connections.per.ip` (and its overrides) — a connection from an
//! address already at its limit is accepted and closed at once, as Kafka does; the counts
//! are node-wide (`connection_quotas`). `connections.max.idle.ms` — a connection that has
//! read no frame and written no response for that long, with no request in flight, is
//! closed; this includes one that sent part of a frame and stopped, and one whose peer
//! stopped reading (a response write unfinished for that long, requests pending or not).
//!
//! Hostile input: the length prefix is checked against `socket.request.max.bytes` before a
//! byte of the body is buffered; a frame that cannot be parsed closes this connection only.

use crate::api::{self, Close};
use crate::connection_quotas::{Admission, ConnectionQuotas, ConnectionSlot};
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
use std::mem::ManuallyDrop;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests one connection may have in flight (Kafka clients keep up to 5 by default).
pub const IN_FLIGHT_REQUESTS_MAX: usize = 16;

/// Bytes of complete responses gathered into one send before it goes out regardless.
pub const RESPONSE_BUFFER_BYTES_MAX: usize = 256 * 1024;

/// Capacity of that buffer a connection keeps between sends (most responses are small).
pub const RESPONSE_BUFFER_KEPT_BYTES: usize = 16 * 1024;

/// How often a shard holding an accepted connection at `max.connections` looks for a free
/// slot. The slot may free on any shard and shards share no wake-up channel; polling costs
/// nothing while the node is under its limit (the check is one count comparison at accept)
/// and, at the limit, delays the waiting client by at most this much.
const CONNECTION_SLOT_POLL: Duration = Duration::from_millis(10);

/// At most one "refused (max.connections.per.ip)" line per shard per this interval; the
/// others are counted in it (a flood from one address must not flood the log).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// At most one line per shard per this interval about failed accepts, or about the descriptor
/// limit holding connections back (the others are counted in it).
const ACCEPT_TROUBLE_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// After a failed accept (EMFILE, ENFILE, ENOBUFS...) the shard waits this long before the
/// next, doubling up to the maximum while they keep failing: a full descriptor table must
/// not turn the accept loop into a busy loop.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Accepts connections until `stop` is set.
pub async fn serve(shard: Rc<Shard>, listener: TcpListener, stop: Rc<Cell<bool>>, quotas: Arc<ConnectionQuotas>) {
    let mut refusals = Refusals { since_log: 0, logged: None, descriptors_logged: None };
    let mut failures = Refusals { since_log: 0, logged: None, descriptors_logged: None };
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                shard.metrics.borrow_mut().accept_failures += 1;
                failures.since_log += 1;
                if failures.logged.is_none_or(|at| at.elapsed() >= ACCEPT_TROUBLE_LOG_INTERVAL) {
                    eprintln!(
                        "sluice: shard {}: accept failed: {e} ({} times since the last such line); retrying \
                         with a back-off of up to {} ms",
                        shard.id,
                        failures.since_log,
                        ACCEPT_BACKOFF_MAX.as_millis()
                    );
                    failures.since_log = 0;
                    failures.logged = Some(Instant::now());
                }
                if stop.get() {
                    return;
                }
                glommio::timer::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        backoff = ACCEPT_BACKOFF_MIN;
        if stop.get() {
            return;
        }
        let Ok(peer) = stream.peer_addr() else { continue }; // reset before we looked: dropped
        let Some(slot) = admit(&shard, &quotas, peer.ip(), &stop, &mut refusals).await else {
            continue; // refused (dropping the stream closes it) or the node is stopping
        };
        let shard = shard.clone();
        glommio::spawn_local(async move {
            {
                let mut m = shard.metrics.borrow_mut();
                m.connections_accepted += 1;
                m.connections_open += 1;
            }
            match connection(&shard, stream).await {
                Ok(Ended::Idle) => shard.metrics.borrow_mut().connections_closed_idle += 1,
                Ok(Ended::Closed) => {}
                Err(reason) => {
                    shard.metrics.borrow_mut().bad_frames += 1;
                    eprintln!("sluice: closing connection: {}", reason.0);
                }
            }
            shard.metrics.borrow_mut().connections_open -= 1;
            drop(slot);
        })
        .detach();
    }
}

/// Refused connections (or failed accepts) not yet logged on this shard, and when the last
/// line was written; when the last "descriptor limit" line was.
struct Refusals {
    since_log: u64,
    logged: Option<Instant>,
    descriptors_logged: Option<Instant>,
}

/// A slot for a connection from `ip`: at once, or once the node is under `max.connections`
/// again (the acceptor waits meanwhile). `None`: the address is at its limit (logged,
/// counted; the caller closes the connection) or the node is stopping.
async fn admit(
    shard: &Rc<Shard>,
    quotas: &Arc<ConnectionQuotas>,
    ip: IpAddr,
    stop: &Cell<bool>,
    refusals: &mut Refusals,
) -> Option<ConnectionSlot> {
    let mut blocked = false;
    loop {
        let config = shard.config();
        match quotas.admit(ip, config.max_connections, config.max_connections_for(ip)) {
            Admission::Admitted(slot) => return Some(slot),
            Admission::TooManyFromAddress(limit) => {
                shard.metrics.borrow_mut().connections_refused_per_ip += 1;
                refusals.since_log += 1;
                if refusals.logged.is_none_or(|at| at.elapsed() >= REFUSAL_LOG_INTERVAL) {
                    eprintln!(
                        "sluice: shard {}: rejected connection from {ip}: address already has the configured \
                         maximum of {limit} connections (max.connections.per.ip); {} refused since the last such line",
                        shard.id, refusals.since_log
                    );
                    refusals.since_log = 0;
                    refusals.logged = Some(Instant::now());
                }
                return None;
            }
            Admission::NodeFull { by_descriptors } => {
                if !blocked {
                    blocked = true;
                    shard.metrics.borrow_mut().accept_blocked += 1;
                    let due = refusals.descriptors_logged.is_none_or(|at| at.elapsed() >= ACCEPT_TROUBLE_LOG_INTERVAL);
                    if let (Some(limit), true) = (by_descriptors, due) {
                        eprintln!(
                            "sluice: shard {}: holding {} connections, as many as the descriptor limit leaves room \
                             for (RLIMIT_NOFILE {limit}, less the open files and a reserve); new connections wait \
                             in the listen backlog until one closes — raise the limit (`ulimit -n`)",
                            shard.id,
                            quotas.total()
                        );
                        refusals.descriptors_logged = Some(Instant::now());
                    }
                }
                if stop.get() {
                    return None;
                }
                glommio::timer::sleep(CONNECTION_SLOT_POLL).await;
            }
        }
    }
}

type Pending = JoinHandle<Result<Option<Response>, Close>>;

/// How a connection ended without a protocol error.
enum Ended {
    /// The peer closed it, or the node is stopping.
    Closed,
    /// `connections.max.idle.ms` passed without traffic.
    Idle,
}

/// A connection's traffic, for `connections.max.idle.ms`.
struct Activity {
    /// When the connection last read a frame (or its length prefix) or wrote responses.
    last: Cell<Instant>,
    /// Requests read and not answered yet: a connection waiting for an answer is not idle.
    pending: Cell<usize>,
    /// Since when the writer has been writing the response it is on, if it is writing one.
    /// A write that has not finished after `connections.max.idle.ms` means the peer stopped
    /// reading: the connection is idle even with requests pending (it would otherwise hold
    /// their answers — and the segments they name — for ever). Kafka closes it too: it
    /// counts socket activity, and a peer that reads nothing makes none.
    writing_since: Cell<Option<Instant>>,
}

impl Activity {
    fn touch(&self) {
        self.last.set(Instant::now());
    }

    /// Returns once the connection has been idle for `idle`: no traffic and no request in
    /// flight, or one response write unfinished for that long. One timer per connection,
    /// re-armed once per `idle` at most: nothing per request.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let quiet = self.last.get().elapsed();
            if self.pending.get() == 0 && quiet >= idle {
                return;
            }
            let writing = self.writing_since.get().map(|since| since.elapsed());
            if writing.is_some_and(|w| w >= idle) {
                return;
            }
            let mut wait = if self.pending.get() > 0 { idle } else { idle.saturating_sub(quiet) };
            if let Some(w) = writing {
                wait = wait.min(idle.saturating_sub(w));
            }
            let wait = wait.max(Duration::from_millis(1));
            glommio::timer::sleep(wait).await;
        }
    }

    /// Runs one response write, marked as under way (see `writing_since`).
    async fn writing<T>(&self, write: impl std::future::Future<Output = T>) -> T {
        self.writing_since.set(Some(Instant::now()));
        let result = write.await;
        self.writing_since.set(None);
        result
    }
}

/// One of a connection's two glommio streams over its one descriptor (see the module
/// documentation). Dropping it releases the stream's reactor state but closes the
/// descriptor only with the last half.
struct SocketHalf {
    stream: ManuallyDrop<TcpStream>,
    fd: Rc<OwnedFd>,
}

impl SocketHalf {
    /// The reader's and the writer's halves of an accepted stream.
    fn split(stream: TcpStream) -> (SocketHalf, SocketHalf) {
        // SAFETY: `into_raw_fd` hands over the open descriptor, which `OwnedFd` now owns.
        let fd = Rc::new(unsafe { OwnedFd::from_raw_fd(stream.into_raw_fd()) });
        let half = |fd: &Rc<OwnedFd>| {
            // SAFETY: the descriptor stays open while `fd` lives, and the stream never closes
            // it: `Drop` takes it back out with `into_raw_fd` before `fd` is dropped.
            let stream = unsafe { TcpStream::from_raw_fd(fd.as_raw_fd()) };
            SocketHalf { stream: ManuallyDrop::new(stream), fd: fd.clone() }
        };
        (half(&fd), half(&fd))
    }
}

impl std::ops::Deref for SocketHalf {
    type Target = TcpStream;
    fn deref(&self) -> &TcpStream {
        &self.stream
    }
}

impl std::ops::DerefMut for SocketHalf {
    fn deref_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

impl Drop for SocketHalf {
    fn drop(&mut self) {
        // SAFETY: `stream` is not used again; this is the only place that takes it.
        let stream = unsafe { ManuallyDrop::take(&mut self.stream) };
        let _ = stream.into_raw_fd(); // reactor sources released; the descriptor stays open
        let _ = &self.fd; // closed by the field's drop, after this, with the last half
    }
}

async fn connection(shard: &Rc<Shard>, stream: TcpStream) -> Result<Ended, Close> {
    let _ = stream.set_nodelay(true);
    // Accepted sockets do not inherit the listener's O_NONBLOCK. glommio's own I/O does not
    // care (it passes MSG_DONTWAIT and polls on the ring), but `sendfile(2)` on a blocking
    // socket would park the whole shard until a slow reader drained it.
    set_nonblocking(stream.as_raw_fd()).map_err(|e| Close(format!("O_NONBLOCK: {e}")))?;
    let peer = stream.peer_addr().ok();
    let (mut reader, writer_stream) = SocketHalf::split(stream);
    let activity =
        Rc::new(Activity { last: Cell::new(Instant::now()), pending: Cell::new(0), writing_since: Cell::new(None) });
    let (tx, rx) = local_channel::new_bounded::<Pending>(IN_FLIGHT_REQUESTS_MAX);
    let config = shard.config();
    let method = config.fetch_send_method;
    let writer_shard = shard.clone();
    let writer_activity = activity.clone();
    let writer = glommio::spawn_local(async move {
        write_responses(&writer_shard, writer_stream, rx, method, &writer_activity).await
    });
    let max = config.socket_request_max_bytes;
    let read = async { read_requests(shard, &mut reader, &tx, max, peer, &activity).await.map(|()| Ended::Closed) };
    let result = match config.connections_max_idle() {
        Some(idle) => {
            let idle = async {
                activity.idle_for(idle).await;
                Ok(Ended::Idle)
            };
            // The reader is dropped mid-read when the idle timer wins: a half-read frame is
            // abandoned with the connection.
            futures_lite::future::or(read, idle).await
        }
        None => read.await,
    };
    if matches!(result, Ok(Ended::Idle)) {
        // The peer sees the close now, not when the writer (idle too) notices the end.
        let _ = reader.shutdown(std::net::Shutdown::Both).await;
    }
    drop(tx);
    let written = writer.await;
    let ended = result?;
    written?;
    Ok(ended)
}

/// `SLUICE_CAPTURE_REQUESTS=DIR` in the environment: every request frame read (up to
/// `CAPTURED_FRAME_BYTES_MAX`) is also written to `DIR`, one file per distinct frame — the
/// fuzz target's seed corpus, captured from real clients (`scripts/fuzz-corpus.sh`). A test
/// aid: the write is blocking, on the shard. Unset (always, in production) it costs one
/// branch per frame.
fn capture_dir() -> Option<&'static std::path::Path> {
    static DIR: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    DIR.get_or_init(|| std::env::var_os("SLUICE_CAPTURE_REQUESTS").map(Into::into)).as_deref()
}

/// The fuzzer's `-max_len` (`scripts/fuzz.sh`): larger frames would be cut there anyway.
const CAPTURED_FRAME_BYTES_MAX: usize = 64 * 1024;

/// Writes `frame` (without its length prefix, correlation id zeroed) as
/// `DIR/KEY-vVERSION-CRC-LEN`: the name depends on the content only, so a request seen twice
/// is stored once.
fn capture(dir: &std::path::Path, frame: &[u8]) {
    if frame.len() > CAPTURED_FRAME_BYTES_MAX || frame.len() < 4 {
        return;
    }
    let (key, version) = (i16::from_be_bytes([frame[0], frame[1]]), i16::from_be_bytes([frame[2], frame[3]]));
    let mut frame = frame.to_vec();
    if let Some(correlation) = frame.get_mut(4..8) {
        correlation.fill(0); // the same request sent twice is one seed
    }
    let name = format!("{key:02}-v{version}-{:08x}-{}", crate::crc::crc32c(&frame), frame.len());
    if let Err(e) = std::fs::write(dir.join(name), &frame) {
        eprintln!("sluice: SLUICE_CAPTURE_REQUESTS: writing to {}: {e}", dir.display());
    }
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
    activity: &Activity,
) -> Result<(), Close> {
    loop {
        let mut prefix = [0u8; 4];
        if reader.read_exact(&mut prefix).await.is_err() {
            return Ok(()); // peer closed (or reset): not an error of ours
        }
        activity.touch();
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
        activity.touch();
        if let Some(dir) = capture_dir() {
            capture(dir, &frame);
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
        activity.pending.set(activity.pending.get() + 1);
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
    mut stream: SocketHalf,
    rx: local_channel::LocalReceiver<Pending>,
    method: SendMethod,
    activity: &Activity,
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
            activity.pending.set(activity.pending.get().saturating_sub(1));
            activity.touch();
            let response = match result {
                Some(Ok(Some(r))) => Some(r),
                Some(Ok(None)) => None,
                Some(Err(close)) => return Err(close_after(&mut stream, &mut out, close.0).await),
                None => return Err(close_after(&mut stream, &mut out, "request handler was cancelled".into()).await),
            };
            if let Some(r) = response {
                if let Err(e) = activity.writing(queue_response(shard, &mut stream, &mut out, r, method)).await {
                    return write_failed(&stream, e).await;
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
        if let Err(e) = activity.writing(flush(&mut stream, &mut out)).await {
            return write_failed(&stream, e).await;
        }
        activity.touch();
        if out.capacity() > RESPONSE_BUFFER_KEPT_BYTES {
            out = Vec::new(); // a burst's buffer is not kept by an idle connection
        }
    }
    let _ = stream.close().await;
    Ok(())
}

/// A response could not be written: the connection ends. A peer that closed or reset its
/// end (a consumer leaving in the middle of a fetch) ends it as a close does: not a bad
/// frame, not a log line.
async fn write_failed(stream: &TcpStream, e: std::io::Error) -> Result<(), Close> {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    let gone = matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted);
    let close = close_both(stream, format!("write failed: {e}")).await;
    if gone {
        Ok(())
    } else {
        Err(close)
    }
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
