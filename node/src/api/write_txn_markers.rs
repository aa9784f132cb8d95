//! WriteTxnMarkers, version 1 (Kafka's broker-to-broker API): a transaction coordinator on
//! another node of the cluster has this node append COMMIT or ABORT markers to partitions
//! it leads. Each partition is answered once its marker is durable and in the partition's
//! in-sync replicas, or with the error that made it fail (NOT_LEADER_OR_FOLLOWER: the
//! coordinator finds the new leader and sends it again).

use super::{decode, Close};
use crate::log::TopicPartition;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use std::collections::BTreeMap;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (1, 1);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: WriteTxnMarkersRequest = decode(req)?;
    let mut markers = Vec::with_capacity(request.markers.len());
    for marker in request.markers {
        let parts: Vec<TopicPartition> = marker
            .topics
            .iter()
            .flat_map(|t| t.partition_indexes.iter().map(|&p| TopicPartition::new(t.name.0.to_string(), p)))
            .collect();
        let (producer_id, epoch, commit) = (marker.producer_id.0, marker.producer_epoch, marker.transaction_result);
        let written = shard.write_markers_for_peer(parts, producer_id, epoch, commit).await;
        let mut topics: BTreeMap<String, Vec<WritableTxnMarkerPartitionResult>> = BTreeMap::new();
        for (tp, code) in written {
            topics.entry(tp.topic).or_default().push(
                WritableTxnMarkerPartitionResult::default().with_partition_index(tp.partition).with_error_code(code),
            );
        }
        let topics = topics
            .into_iter()
            .map(|(name, partitions)| {
                WritableTxnMarkerTopicResult::default()
                    .with_name(TopicName(super::str_bytes(&name)))
                    .with_partitions(partitions)
            })
            .collect();
        markers.push(WritableTxnMarkerResult::default().with_producer_id(marker.producer_id).with_topics(topics));
    }
    let body = WriteTxnMarkersResponse::default().with_markers(markers);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
