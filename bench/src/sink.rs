//! `sink`: an in-process broker that speaks just enough Kafka (ApiVersions, Metadata,
//! CreateTopics, InitProducerId, Produce) to accept produce requests and discard them. Running the
//! harness's produce path against it shows what the harness itself can push: if that is
//! well above what a broker reaches, the harness is not the bottleneck.
//!
//! The sink decodes each request fully (as a broker must to find its partitions) and
//! answers every partition with success; records are dropped (idempotent producers get a
//! producer id, and their sequences are not checked). One thread per connection,
//! pinned round robin to `--sink-cores` (in-process) or `--cores` (`--listen`), so that a
//! comparison can give the sink the node's core and the load threads theirs.

use crate::workload::{self, Mode};
use crate::Opts;
use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// Largest request frame the sink accepts.
const REQUEST_BYTES_MAX: usize = 64 << 20;

/// Topic name → partition count, shared by the connections.
type Topics = Arc<Mutex<HashMap<String, i32>>>;

pub fn command(o: Opts) -> Result<()> {
    if let Some(addr) = o.0.get("listen") {
        let cores = crate::parse_cores(&o.str("cores", ""))?;
        let listener = TcpListener::bind(addr)?;
        println!("sluice-bench sink: listening on {}", listener.local_addr()?);
        serve(listener, cores);
        return Ok(());
    }
    let sink_cores = crate::parse_cores(&o.str("sink-cores", ""))?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    if !sink_cores.is_empty() {
        eprintln!("sluice-bench: sink threads pinned to cores {sink_cores:?}");
    }
    std::thread::spawn(move || serve(listener, sink_cores));
    let mut o = o;
    o.0.insert("bootstrap".into(), addr.clone());
    o.0.entry("label".into()).or_insert_with(|| "sink".into());
    eprintln!("sluice-bench: produce path against the in-process discarding sink at {addr}");
    let w = crate::parse_workload(&o, Mode::Produce, "sink")?;
    let r = workload::run(&w)?;
    crate::report::print_table(&r);
    let dir = o.0.get("out").map_or_else(crate::report::default_out_dir, std::path::PathBuf::from);
    crate::report::write_outputs(&r, &dir)?;
    if let Some(e) = &r.first_error {
        bail!("the run failed: {e}");
    }
    Ok(())
}

/// Accepts connections forever, one thread each, pinned round robin to `cores` (if any).
pub fn serve(listener: TcpListener, cores: Vec<usize>) {
    let topics: Topics = Arc::default();
    for (i, stream) in listener.incoming().flatten().enumerate() {
        let topics = topics.clone();
        let cores = cores.clone();
        std::thread::spawn(move || {
            crate::workload::pin(&cores, i);
            let _ = connection(stream, &topics);
        });
    }
}

fn connection(stream: TcpStream, topics: &Topics) -> Result<()> {
    stream.set_nodelay(true)?;
    let local = stream.local_addr()?;
    let mut out = stream.try_clone()?;
    let mut input = BufReader::with_capacity(1 << 20, stream);
    loop {
        let mut prefix = [0u8; 4];
        if input.read_exact(&mut prefix).is_err() {
            return Ok(()); // client gone
        }
        let len = i32::from_be_bytes(prefix);
        if len < 8 || len as usize > REQUEST_BYTES_MAX {
            bail!("request frame length {len} is out of range");
        }
        let mut frame = vec![0u8; len as usize];
        input.read_exact(&mut frame)?;
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let api = ApiKey::try_from(key).map_err(|_| anyhow::anyhow!("unknown api key {key}"))?;
        let mut buf = Bytes::from(frame);
        let header = RequestHeader::decode(&mut buf, api.request_header_version(version))?;
        let reply = match api {
            ApiKey::ApiVersions => {
                let keys = [
                    (ApiKey::Produce, 3, 9),
                    (ApiKey::Metadata, 0, 12),
                    (ApiKey::ApiVersions, 0, 3),
                    (ApiKey::CreateTopics, 2, 7),
                    (ApiKey::InitProducerId, 0, 1),
                ];
                let resp = ApiVersionsResponse::default().with_api_keys(
                    keys.iter()
                        .map(|&(k, lo, hi)| {
                            ApiVersion::default().with_api_key(k as i16).with_min_version(lo).with_max_version(hi)
                        })
                        .collect(),
                );
                // ApiVersions answers with response header v0 whatever the request version.
                Some(encode(&header, 0, version.min(3), &resp)?)
            }
            ApiKey::Metadata => {
                let req = MetadataRequest::decode(&mut buf, version)?;
                let known = topics.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let names: Vec<String> = match req.topics {
                    Some(list) => list.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect(),
                    None => known.keys().cloned().collect(),
                };
                let resp = MetadataResponse::default()
                    .with_brokers(vec![MetadataResponseBroker::default()
                        .with_node_id(0.into())
                        .with_host(StrBytes::from_string(local.ip().to_string()))
                        .with_port(local.port() as i32)])
                    .with_controller_id(0.into())
                    .with_topics(
                        names
                            .iter()
                            .map(|n| {
                                let parts = known.get(n).copied().unwrap_or(1);
                                MetadataResponseTopic::default()
                                    .with_name(Some(workload::topic_name(n)))
                                    .with_partitions(
                                        (0..parts)
                                            .map(|p| {
                                                MetadataResponsePartition::default()
                                                    .with_partition_index(p)
                                                    .with_leader_id(0.into())
                                                    .with_replica_nodes(vec![0.into()])
                                                    .with_isr_nodes(vec![0.into()])
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    );
                Some(encode(&header, api.response_header_version(version), version, &resp)?)
            }
            ApiKey::CreateTopics => {
                let req = CreateTopicsRequest::decode(&mut buf, version)?;
                let mut known = topics.lock().unwrap_or_else(|p| p.into_inner());
                let results = req
                    .topics
                    .iter()
                    .map(|t| {
                        known.insert(t.name.0.to_string(), t.num_partitions.max(1));
                        CreatableTopicResult::default().with_name(t.name.clone()).with_num_partitions(t.num_partitions)
                    })
                    .collect();
                drop(known);
                let resp = CreateTopicsResponse::default().with_topics(results);
                Some(encode(&header, api.response_header_version(version), version, &resp)?)
            }
            ApiKey::InitProducerId => {
                InitProducerIdRequest::decode(&mut buf, version)?;
                static NEXT_ID: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1000);
                let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let resp = InitProducerIdResponse::default().with_producer_id(id.into()).with_producer_epoch(0);
                Some(encode(&header, api.response_header_version(version), version, &resp)?)
            }
            ApiKey::Produce => {
                let req = ProduceRequest::decode(&mut buf, version)?;
                if req.acks == 0 {
                    None
                } else {
                    let resp = ProduceResponse::default().with_responses(
                        req.topic_data
                            .iter()
                            .map(|t| {
                                TopicProduceResponse::default().with_name(t.name.clone()).with_partition_responses(
                                    t.partition_data
                                        .iter()
                                        .map(|p| PartitionProduceResponse::default().with_index(p.index))
                                        .collect(),
                                )
                            })
                            .collect(),
                    );
                    Some(encode(&header, api.response_header_version(version), version, &resp)?)
                }
            }
            other => bail!("the sink does not serve {other:?}"),
        };
        if let Some(bytes) = reply {
            out.write_all(&bytes)?;
        }
    }
}

fn encode<T: Encodable>(req: &RequestHeader, header_version: i16, version: i16, body: &T) -> Result<BytesMut> {
    let mut buf = BytesMut::with_capacity(128);
    buf.extend_from_slice(&[0; 4]);
    ResponseHeader::default()
        .with_correlation_id(req.correlation_id)
        .encode(&mut buf, header_version)
        .context("header")?;
    body.encode(&mut buf, version).context("body")?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}
