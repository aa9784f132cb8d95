//! OffsetDelete, version 0: drops a group's committed offsets for partitions no member is
//! subscribed to (GROUP_SUBSCRIBED_TO_TOPIC otherwise), as Kafka does.

use super::{decode, string, topic_name, Close};
use crate::errors;
use crate::group::DeleteOffsets;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 0);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: OffsetDeleteRequest = decode(req)?;
    let group_id = string(&request.group_id.0);
    let parts: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (string(&t.name.0), p.partition_index)))
        .collect();
    let n = parts.len();
    let (top, codes) = match shard
        .invoke(shard.group_coordinator(&group_id), DeleteOffsets { group: group_id.clone(), parts })
        .await
    {
        Ok((top, codes)) if codes.len() == n => (top, codes),
        _ => (errors::COORDINATOR_NOT_AVAILABLE, vec![errors::NONE; n]),
    };
    let mut codes = codes.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or(errors::NONE))
                })
                .collect();
            OffsetDeleteResponseTopic::default().with_name(topic_name(&t.name.0)).with_partitions(partitions)
        })
        .collect();
    let body = OffsetDeleteResponse::default().with_error_code(top).with_topics(topics);
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
