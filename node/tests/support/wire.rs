//! A small Kafka client on the `kafka-protocol` crate's codec, for tests that need a load or
//! a request shape they control byte for byte.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{Record, TimestampType};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Client {
    pub stream: TcpStream,
    correlation: i32,
}

impl Client {
    pub fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to the node");
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Client { stream, correlation: 0 }
    }

    /// Connects from `source` (an address of this host, as 127.0.0.9), so that firewall
    /// rules between nodes' addresses leave the test's own connections alone.
    pub fn connect_from(addr: &str, source: &str) -> Client {
        let target: std::net::SocketAddr = addr.parse().expect("an ip:port");
        let local: std::net::SocketAddr = format!("{source}:0").parse().expect("an ip");
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&local.into()).unwrap_or_else(|e| panic!("bind {local}: {e}"));
        socket.connect_timeout(&target.into(), Duration::from_secs(10)).unwrap_or_else(|e| panic!("{addr}: {e}"));
        let stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Client { stream, correlation: 0 }
    }

    pub fn send<T: Encodable>(&mut self, key: ApiKey, version: i16, body: &T) {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("sluice-tests")));
        let mut buf = BytesMut::new();
        header.encode(&mut buf, key.request_header_version(version)).unwrap();
        body.encode(&mut buf, version).unwrap();
        self.stream.write_all(&(buf.len() as i32).to_be_bytes()).unwrap();
        self.stream.write_all(&buf).unwrap();
    }

    /// Sends a request whose body another codec encoded (kafka-protocol 0.14 for the
    /// versions 0.18 no longer has); the header is ours.
    pub fn send_body(&mut self, key: ApiKey, version: i16, body: &[u8]) {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("sluice-tests")));
        let mut buf = BytesMut::new();
        let range = key.valid_versions();
        header.encode(&mut buf, key.request_header_version(version.clamp(range.min, range.max))).unwrap();
        buf.extend_from_slice(body);
        self.stream.write_all(&(buf.len() as i32).to_be_bytes()).unwrap();
        self.stream.write_all(&buf).unwrap();
    }

    /// The body of the next response to a non-flexible request (response header v0: the
    /// correlation id, checked against the last request's), for another codec to decode.
    pub fn recv_body(&mut self) -> Bytes {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).unwrap();
        let mut frame = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut frame).unwrap();
        let mut buf = Bytes::from(frame);
        let header = ResponseHeader::decode(&mut buf, 0).unwrap();
        assert_eq!(header.correlation_id, self.correlation, "answers come in request order");
        buf
    }

    /// True once the node has closed the connection (a read returns end of file).
    pub fn closed_by_node(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0))
    }

    pub fn recv<T: Decodable>(&mut self, key: ApiKey, version: i16) -> T {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).unwrap();
        let mut frame = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut frame).unwrap();
        let mut buf = Bytes::from(frame);
        ResponseHeader::decode(&mut buf, key.response_header_version(version)).unwrap();
        T::decode(&mut buf, version).unwrap()
    }

    /// CreateTopics v7 of one topic; asserts it was created.
    pub fn create_topic(&mut self, topic: &str, partitions: i32) {
        let create =
            CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(1)]);
        self.send(ApiKey::CreateTopics, 7, &create);
        let created: CreateTopicsResponse = self.recv(ApiKey::CreateTopics, 7);
        assert_eq!(created.topics[0].error_code, 0, "creating {topic}");
    }
}

pub fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// A plain (non-idempotent, non-transactional) record with CreateTime `timestamp`.
pub fn record(offset: i64, timestamp: i64, key: Option<Bytes>, value: Bytes) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: -1,
        timestamp,
        key,
        value: Some(value),
        headers: IndexMap::new(),
    }
}
