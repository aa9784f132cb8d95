//! Requests from this node to another broker of its cluster, in Kafka's wire protocol: a
//! connection from this node's own address, and one request and its answer at a time.
//! Followers fetch with it (`replica`), transaction coordinators send WriteTxnMarkers to
//! partition leaders (`shard`).
//!
//! Outgoing connections leave from the host of this node's listener when it names one
//! address (as `127.0.0.2` in a three-node cluster on one machine), so a peer — and a
//! firewall rule — sees which node is calling; a wildcard listener leaves the choice to the
//! kernel.

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::io::{Error, ErrorKind};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::sync::OnceLock;
use std::time::Duration;

/// A response frame longer than this closes the connection.
const FRAME_BYTES_MAX: usize = 64 << 20;

/// The address this node's outgoing connections leave from (set once at start).
static SOURCE: OnceLock<IpAddr> = OnceLock::new();

/// Outgoing connections leave from `host` if it is one address (not a wildcard, not a name).
pub fn set_source_address(host: &str) {
    if let Ok(ip) = host.parse::<IpAddr>() {
        if !ip.is_unspecified() {
            let _ = SOURCE.set(ip);
        }
    }
}

/// Connects to `addr` (host:port) within `timeout`, from this node's address (see
/// `set_source_address`). Binding before connecting needs a socket made by hand: its
/// non-blocking connect is watched with a zero-timeout poll between short sleeps, so an
/// unreachable peer (a dropped SYN) holds no thread and never blocks the executor.
pub async fn connect(addr: &str, timeout: Duration) -> std::io::Result<TcpStream> {
    let Some(&local) = SOURCE.get() else {
        let stream = TcpStream::connect_timeout(addr, timeout).await?;
        let _ = stream.set_nodelay(true);
        return Ok(stream);
    };
    let target: SocketAddr = addr
        .to_socket_addrs()?
        .find(|a| a.is_ipv4() == local.is_ipv4())
        .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("{addr}: no address to reach")))?;
    let socket = socket2::Socket::new(socket2::Domain::for_address(target), socket2::Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(local, 0).into())?;
    match socket.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            let deadline = std::time::Instant::now() + timeout;
            loop {
                let mut fd = libc::pollfd { fd: socket.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
                // SAFETY: one valid pollfd, zero timeout.
                let ready = unsafe { libc::poll(&mut fd, 1, 0) };
                if ready > 0 {
                    break;
                }
                if std::time::Instant::now() >= deadline {
                    return Err(Error::new(ErrorKind::TimedOut, format!("connecting to {addr} timed out")));
                }
                glommio::timer::sleep(CONNECT_POLL).await;
            }
            if let Some(e) = socket.take_error()? {
                return Err(e);
            }
        }
        Err(e) => return Err(e),
    }
    socket.set_tcp_nodelay(true)?;
    // SAFETY: a connected TCP socket this function owns, handed over whole.
    Ok(unsafe { TcpStream::from_raw_fd(socket.into_raw_fd()) })
}

/// How often a connection under way is looked at.
const CONNECT_POLL: Duration = Duration::from_millis(2);

/// Sends one request and reads its answer (the correlation id must match).
pub async fn exchange<Req: Encodable, Resp: Decodable>(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    correlation: i32,
    client_id: &str,
    request: &Req,
) -> std::io::Result<Resp> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let mut buf = BytesMut::new();
    let bad = |e: anyhow::Error| Error::new(ErrorKind::InvalidData, e.to_string());
    header.encode(&mut buf, key.request_header_version(version)).map_err(bad)?;
    request.encode(&mut buf, version).map_err(bad)?;
    let mut frame = Vec::with_capacity(4 + buf.len());
    frame.extend_from_slice(&(buf.len() as i32).to_be_bytes());
    frame.extend_from_slice(&buf);
    stream.write_all(&frame).await?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = i32::from_be_bytes(len).max(0) as usize;
    if len > FRAME_BYTES_MAX {
        return Err(Error::new(ErrorKind::InvalidData, format!("a {len}-byte response")));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    let mut body = Bytes::from(body);
    let header = ResponseHeader::decode(&mut body, key.response_header_version(version)).map_err(bad)?;
    if header.correlation_id != correlation {
        return Err(Error::new(ErrorKind::InvalidData, "an answer to another request"));
    }
    Resp::decode(&mut body, version).map_err(bad)
}
