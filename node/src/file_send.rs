//! Sending a fetched file range (whole record batches of a segment) to a client's socket.
//!
//! Three ways, chosen by `fetch.send.method`:
//! - `sendfile`: `sendfile(2)` on the connection's non-blocking socket, on the shard's thread.
//!   The kernel hands page-cache pages to TCP by reference: no copy in the node at all (on
//!   loopback the receiver still copies them out, on a NIC with scatter-gather nothing does).
//!   When the socket buffer is full (`EAGAIN`) the next 4 KiB go through the copying path,
//!   whose write waits for the socket to drain on the ring; then `sendfile` resumes. A range
//!   whose first or last page is not in the page cache (`preadv2(RWF_NOWAIT)` says so) is
//!   spliced through the ring instead, so that a cold read never blocks the shard on the disk.
//! - `splice`: glommio's `send_file`: file → pipe → socket as io_uring `SPLICE` ops, 64 KiB a
//!   pair; the file → pipe leg runs on an io-wq worker. No copy, but two ops and a worker hop
//!   per 64 KiB.
//! - `copy`: read into a recycled buffer (`pread` when cached, else an io_uring read), then
//!   write to the socket, 1 MiB at a time: two copies in the node.
//!
//! Measured in node CPU per GiB of catch-up consume in `bench/RESULTS.md` (2026-12-04); the
//! default is the cheapest there, see `config.rs`.

use crate::frame_pool;
use futures_lite::AsyncWriteExt;
use glommio::io::BufferedFile;
use glommio::net::TcpStream;
use std::io::{Error, ErrorKind, Result};
use std::os::fd::AsRawFd;

/// How fetched record bytes reach the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendMethod {
    Sendfile,
    Splice,
    Copy,
}

impl std::str::FromStr for SendMethod {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "sendfile" => Ok(SendMethod::Sendfile),
            "splice" => Ok(SendMethod::Splice),
            "copy" => Ok(SendMethod::Copy),
            _ => Err(format!("fetch.send.method takes sendfile, splice or copy, got {s:?}")),
        }
    }
}

/// What a send did, for the metrics: bytes that went without a copy, and bytes copied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub zero_copy: u64,
    pub copied: u64,
}

/// Bytes one `sendfile` call may carry: bounds how long it holds the shard (it copies nothing,
/// but takes a page reference and builds socket buffers per 4 KiB).
pub const SENDFILE_CALL_BYTES_MAX: usize = 1 << 20;

/// Bytes copied when the socket is full, to wait for room on the ring (see the module doc).
const FULL_SOCKET_COPY_BYTES: u64 = 4096;

/// Sends `length` bytes of `file` from `position`.
pub async fn send_range(
    stream: &mut TcpStream,
    file: &BufferedFile,
    position: u64,
    length: u64,
    method: SendMethod,
) -> Result<Sent> {
    match method {
        SendMethod::Sendfile if cached(file, position, length) => sendfile(stream, file, position, length).await,
        SendMethod::Sendfile | SendMethod::Splice => {
            splice(stream, file, position, length).await?;
            Ok(Sent { zero_copy: length, copied: 0 })
        }
        SendMethod::Copy => {
            copy(stream, file, position, length).await?;
            Ok(Sent { zero_copy: 0, copied: length })
        }
    }
}

async fn sendfile(stream: &mut TcpStream, file: &BufferedFile, position: u64, length: u64) -> Result<Sent> {
    let (sock, fd) = (stream.as_raw_fd(), file.as_raw_fd());
    let end = position + length;
    let mut at = position;
    let mut sent = Sent::default();
    while at < end {
        let want = ((end - at) as usize).min(SENDFILE_CALL_BYTES_MAX);
        let mut offset = at as libc::off_t;
        // SAFETY: both descriptors are open for the call; `offset` is ours.
        let n = unsafe { libc::sendfile(sock, fd, &mut offset, want) };
        if n > 0 {
            at += n as u64;
            sent.zero_copy += n as u64;
            continue;
        }
        if n == 0 {
            return Err(Error::new(ErrorKind::UnexpectedEof, "file range shorter than promised"));
        }
        let e = Error::last_os_error();
        match e.kind() {
            ErrorKind::Interrupted => continue,
            ErrorKind::WouldBlock => {
                let chunk = FULL_SOCKET_COPY_BYTES.min(end - at);
                copy(stream, file, at, chunk).await?;
                at += chunk;
                sent.copied += chunk;
            }
            _ => return Err(e),
        }
    }
    Ok(sent)
}

async fn splice(stream: &mut TcpStream, file: &BufferedFile, position: u64, length: u64) -> Result<()> {
    let mut sent = 0u64;
    while sent < length {
        let n = stream.send_file(file, position + sent, (length - sent) as usize).await?;
        if n == 0 {
            return Err(Error::new(ErrorKind::UnexpectedEof, "file range shorter than promised"));
        }
        sent += n as u64;
    }
    Ok(())
}

/// Bytes `copy` reads and writes at a time. A write waits as long as the client does not
/// read, and the buffer is held meanwhile: reading a whole range first (up to the client's
/// `partition_max_bytes`, 8 MiB and more) made every stuck consumer hold that much of the
/// node's memory (20 connections that stopped reading 8 MiB fetches: +160 MiB RSS,
/// `tests/e2e_slow_consumer.rs`). Per MiB, one more read and write call is noise next to
/// copying the MiB.
pub const COPY_CHUNK_BYTES: u64 = 1 << 20;

/// Copies the range through a recycled buffer, `COPY_CHUNK_BYTES` at a time: reads each
/// chunk (on the shard when it is in the page cache, through the ring when not), then
/// writes it.
async fn copy(stream: &mut TcpStream, file: &BufferedFile, position: u64, length: u64) -> Result<()> {
    let end = position + length;
    let mut at = position;
    while at < end {
        let chunk = (end - at).min(COPY_CHUNK_BYTES);
        copy_chunk(stream, file, at, chunk).await?;
        at += chunk;
    }
    Ok(())
}

async fn copy_chunk(stream: &mut TcpStream, file: &BufferedFile, position: u64, length: u64) -> Result<()> {
    let mut buf = frame_pool::take(length as usize);
    if read_cached(file, position, &mut buf)? {
        stream.write_all(&buf).await?;
        drop(frame_pool::freeze(buf));
        return Ok(());
    }
    let bytes = file.read_at(position, length as usize).await?;
    if (bytes.len() as u64) < length {
        return Err(Error::new(ErrorKind::UnexpectedEof, "file range shorter than promised"));
    }
    stream.write_all(&bytes).await
}

/// Fills `buf` from `position` if every byte is in the page cache (`preadv2` with
/// `RWF_NOWAIT`: never waits for the disk); false when some are not.
fn read_cached(file: &BufferedFile, position: u64, buf: &mut [u8]) -> Result<bool> {
    let mut done = 0usize;
    while done < buf.len() {
        let iov = libc::iovec { iov_base: buf[done..].as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() - done };
        let at = (position + done as u64) as libc::off_t;
        // SAFETY: the iovec points into `buf`, borrowed mutably for the call.
        let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, at, libc::RWF_NOWAIT) };
        match n {
            n if n > 0 => done += n as usize,
            0 => return Err(Error::new(ErrorKind::UnexpectedEof, "file range shorter than promised")),
            _ => {
                let e = Error::last_os_error();
                match e.kind() {
                    ErrorKind::Interrupted => continue,
                    // EAGAIN: not cached. EOPNOTSUPP: a filesystem without RWF_NOWAIT reads.
                    ErrorKind::WouldBlock | ErrorKind::Unsupported => return Ok(false),
                    _ => return Err(e),
                }
            }
        }
    }
    Ok(true)
}

/// Whether the first and the last byte of the range are in the page cache: a cheap stand-in
/// for the whole range (fetches read segments sequentially, and readahead fills in between).
fn cached(file: &BufferedFile, position: u64, length: u64) -> bool {
    let mut probe = [0u8; 1];
    let last = position + length.saturating_sub(1);
    [position, last].iter().all(|&at| read_cached(file, at, &mut probe).unwrap_or(false))
}
