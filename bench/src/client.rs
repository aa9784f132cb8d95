//! A lean, pipelined Kafka client for load generation: blocking sockets, one thread per
//! connection, several requests in flight, requests encoded and responses decoded by the
//! `kafka-protocol` crate. No librdkafka, so the harness is never what limits a run.

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// Largest response frame the client accepts (a fetch of many partitions can be large).
const RESPONSE_BYTES_MAX: usize = 512 << 20;

/// One connection with requests in flight, answered in order.
pub struct Conn {
    stream: TcpStream,
    next_correlation: i32,
    /// (correlation id, api key, version, sent at) of requests awaiting a response.
    in_flight: VecDeque<(i32, ApiKey, i16, Instant)>,
    client_id: StrBytes,
    /// Request buffer, reused.
    out: BytesMut,
}

impl Conn {
    pub fn connect(addr: &str) -> Result<Conn> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            next_correlation: 1,
            in_flight: VecDeque::new(),
            client_id: StrBytes::from_static_str("sluice-bench"),
            out: BytesMut::new(),
        })
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The socket's descriptor, to poll several connections from one thread.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.stream)
    }

    /// Sends a request without waiting for its response.
    pub fn send<T: Encodable>(&mut self, key: ApiKey, version: i16, body: &T) -> Result<i32> {
        let size = body.compute_size(version)?;
        self.send_with(key, version, true, size, |buf| body.encode(buf, version))
    }

    /// Sends a request whose body `write_body` appends to the (reused) request buffer;
    /// `size_hint` is the body's expected size. `answered`: false for Produce with acks=0.
    pub fn send_with(
        &mut self,
        key: ApiKey,
        version: i16,
        answered: bool,
        size_hint: usize,
        write_body: impl FnOnce(&mut BytesMut) -> Result<()>,
    ) -> Result<i32> {
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(self.client_id.clone()));
        let header_version = key.request_header_version(version);
        let buf = &mut self.out;
        buf.clear();
        buf.reserve(4 + header.compute_size(header_version)? + size_hint);
        buf.put_i32(0);
        header.encode(buf, header_version)?;
        write_body(buf)?;
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(buf)?;
        if answered {
            self.in_flight.push_back((correlation, key, version, Instant::now()));
        }
        Ok(correlation)
    }

    /// Receives the oldest outstanding response; returns it with the time it took.
    pub fn recv<T: Decodable>(&mut self) -> Result<(T, std::time::Duration)> {
        let (correlation, key, version, sent) =
            self.in_flight.pop_front().ok_or_else(|| anyhow!("nothing in flight"))?;
        let mut prefix = [0u8; 4];
        self.stream.read_exact(&mut prefix)?;
        let len = i32::from_be_bytes(prefix);
        if len < 4 || len as usize > RESPONSE_BYTES_MAX {
            bail!("response frame length {len} is out of range");
        }
        let mut frame = vec![0u8; len as usize];
        self.stream.read_exact(&mut frame)?;
        let elapsed = sent.elapsed();
        let mut buf = Bytes::from(frame);
        let header_version = if key == ApiKey::ApiVersions { 0 } else { key.response_header_version(version) };
        let header = ResponseHeader::decode(&mut buf, header_version)?;
        if header.correlation_id != correlation {
            bail!("response correlation {} does not match request {correlation}", header.correlation_id);
        }
        Ok((T::decode(&mut buf, version)?, elapsed))
    }

    /// Sends and waits (for setup calls).
    pub fn call<Q: Encodable, R: Decodable>(&mut self, key: ApiKey, version: i16, body: &Q) -> Result<R> {
        self.send(key, version, body)?;
        Ok(self.recv()?.0)
    }
}

/// Reads an i32 from a byte slice at `at` (record batch fields).
pub fn be_i32(b: &[u8], at: usize) -> i32 {
    (&b[at..at + 4]).get_i32()
}

/// Reads an i64 from a byte slice at `at`.
pub fn be_i64(b: &[u8], at: usize) -> i64 {
    (&b[at..at + 8]).get_i64()
}
