//! Kafka framing: request headers in, response frames out.
//!
//! A request frame is `length: i32` then the header and body. The length is checked against
//! `socket.request.max.bytes` by the connection before a byte of the body is buffered. The
//! header's version depends on the API key and version (flexible versions add tagged
//! fields); bodies are decoded by the `kafka-protocol` crate, except record data, which stays
//! opaque `Bytes`.
//!
//! A response is a list of [`Chunk`]s: bytes from memory, and (fetch) file ranges that the
//! connection sends without copying. The frame length covers them all.

use crate::log::segment::SegmentFile;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use std::rc::Rc;

/// The fixed part of every request header: api key, api version, correlation id.
pub const REQUEST_HEADER_FIXED_BYTES: usize = 8;

/// Why a request could not be parsed far enough to answer it.
#[derive(Debug)]
pub enum FrameError {
    /// Shorter than the fixed header.
    TooShort(usize),
    /// An API key Kafka does not define.
    UnknownApiKey(i16),
    /// The header itself is malformed.
    BadHeader(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooShort(n) => write!(f, "request of {n} bytes is shorter than a header"),
            FrameError::UnknownApiKey(k) => write!(f, "unknown API key {k}"),
            FrameError::BadHeader(e) => write!(f, "malformed request header: {e}"),
        }
    }
}

/// A request whose header is decoded; the body is still bytes.
#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub header: RequestHeader,
    pub body: Bytes,
    /// The client's address (groups report it as the member's host).
    pub peer: Option<std::net::SocketAddr>,
}

/// Peeks the fixed header: (api key, api version, correlation id).
pub fn peek_header(frame: &[u8]) -> Result<(i16, i16, i32), FrameError> {
    if frame.len() < REQUEST_HEADER_FIXED_BYTES {
        return Err(FrameError::TooShort(frame.len()));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    Ok((key, version, correlation))
}

/// Decodes the header of a request frame. The API version is *not* checked here: an
/// unsupported ApiVersions version still gets an answer.
pub fn parse_request(frame: Bytes) -> Result<Request, FrameError> {
    let (key, version, _) = peek_header(&frame)?;
    let api_key = ApiKey::try_from(key).map_err(|_| FrameError::UnknownApiKey(key))?;
    // Versions outside what the crate knows still have a header we can read: use the
    // header version of the nearest known version.
    let range = api_key.valid_versions();
    let header_version = api_key.request_header_version(version.clamp(range.min, range.max));
    let mut buf = frame.clone();
    let header = match RequestHeader::decode(&mut buf, header_version) {
        Ok(h) => h,
        // A client probing with an ApiVersions version we do not know may use the older
        // header form; answer it anyway so it can fall back to a version we speak.
        Err(_) if api_key == ApiKey::ApiVersions && header_version > 1 => {
            buf = frame;
            RequestHeader::decode(&mut buf, 1).map_err(|e| FrameError::BadHeader(e.to_string()))?
        }
        Err(e) => return Err(FrameError::BadHeader(e.to_string())),
    };
    Ok(Request { api_key, api_version: version, header, body: buf, peer: None })
}

/// A piece of a response.
#[derive(Debug)]
pub enum Chunk {
    Bytes(Bytes),
    /// Bytes of a segment file owned by this shard.
    File {
        file: Rc<SegmentFile>,
        position: u64,
        length: u64,
    },
    /// Bytes of a segment file owned by another shard, through a descriptor it duplicated
    /// for us: the descriptor keeps the file alive, closing it releases the lease.
    Foreign {
        file: Rc<glommio::io::BufferedFile>,
        position: u64,
        length: u64,
    },
}

impl Chunk {
    pub fn len(&self) -> usize {
        match self {
            Chunk::Bytes(b) => b.len(),
            Chunk::File { length, .. } | Chunk::Foreign { length, .. } => *length as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A complete response frame, ready to send.
#[derive(Debug, Default)]
pub struct Response {
    pub chunks: Vec<Chunk>,
}

impl Response {
    /// Bytes after the 4-byte length prefix.
    pub fn body_len(&self) -> usize {
        self.chunks.iter().map(Chunk::len).sum()
    }
}

/// Encodes a response header for `api_key`/`version` followed by `body`.
pub fn encode_response<T: Encodable>(api_key: ApiKey, version: i16, correlation_id: i32, body: &T) -> Response {
    let header_version = if api_key == ApiKey::ApiVersions { 0 } else { api_key.response_header_version(version) };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut buf = BytesMut::with_capacity(64);
    let encoded = header.encode(&mut buf, header_version).and_then(|_| body.encode(&mut buf, version));
    match encoded {
        Ok(()) => Response { chunks: vec![Chunk::Bytes(buf.freeze())] },
        // Only reachable if a handler sets a field its version cannot carry: a bug. Answer
        // nothing rather than half a frame; the client times out and retries.
        Err(e) => {
            eprintln!("sluice: failed to encode {api_key:?} v{version} response: {e}");
            Response::default()
        }
    }
}

/// Reads a big-endian i32 from the start of `bytes`.
pub fn frame_length(bytes: [u8; 4]) -> i32 {
    (&bytes[..]).get_i32()
}

/// Writes a length prefix.
pub fn length_prefix(len: usize) -> [u8; 4] {
    let mut out = [0u8; 4];
    (&mut out[..]).put_i32(len as i32);
    out
}
