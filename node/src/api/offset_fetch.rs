//! OffsetFetch, versions 1–9 (v8+ ask for several groups at once; a null topic list asks
//! for everything the group committed). A partition with no commit answers offset -1.

use super::{decode, str_bytes, string, topic_name, Close};
use crate::errors;
use crate::group::{FetchOffsets, FetchedOffset};
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse};
use std::collections::BTreeMap;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (1, 9);

type Wanted = Option<Vec<(String, i32)>>;

async fn fetch(shard: &Rc<Shard>, group: &str, parts: Wanted, require_stable: bool) -> (i16, Vec<FetchedOffset>) {
    let call = FetchOffsets { group: group.to_string(), parts, require_stable };
    match shard.invoke(shard.group_coordinator(group), call).await {
        Ok(answer) => answer,
        Err(_) => (errors::COORDINATOR_NOT_AVAILABLE, Vec::new()),
    }
}

/// Found offsets grouped by topic, in the order topics first appear.
fn by_topic(found: Vec<FetchedOffset>) -> Vec<(String, Vec<FetchedOffset>)> {
    let mut order: Vec<String> = Vec::new();
    let mut map: BTreeMap<String, Vec<FetchedOffset>> = BTreeMap::new();
    for f in found {
        if !map.contains_key(&f.topic) {
            order.push(f.topic.clone());
        }
        map.entry(f.topic.clone()).or_default().push(f);
    }
    order.into_iter().map(|t| (t.clone(), map.remove(&t).unwrap_or_default())).collect()
}

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: OffsetFetchRequest = decode(req)?;
    let v = req.api_version;
    let body = if v >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for g in &request.groups {
            let wanted: Wanted = g.topics.as_ref().map(|topics| {
                topics.iter().flat_map(|t| t.partition_indexes.iter().map(move |p| (string(&t.name.0), *p))).collect()
            });
            let (error, found) = fetch(shard, &string(&g.group_id.0), wanted, request.require_stable).await;
            let topics = by_topic(found)
                .into_iter()
                .map(|(topic, parts)| {
                    let partitions = parts
                        .into_iter()
                        .map(|f| {
                            OffsetFetchResponsePartitions::default()
                                .with_partition_index(f.partition)
                                .with_committed_offset(f.offset)
                                .with_committed_leader_epoch(f.leader_epoch)
                                .with_metadata(Some(str_bytes(&f.metadata)))
                                .with_error_code(f.error)
                        })
                        .collect();
                    OffsetFetchResponseTopics::default().with_name(topic_name(&topic)).with_partitions(partitions)
                })
                .collect();
            groups.push(
                OffsetFetchResponseGroup::default()
                    .with_group_id(GroupId(g.group_id.0.clone()))
                    .with_topics(topics)
                    .with_error_code(error),
            );
        }
        OffsetFetchResponse::default().with_groups(groups)
    } else {
        let wanted: Wanted = request.topics.as_ref().map(|topics| {
            topics.iter().flat_map(|t| t.partition_indexes.iter().map(move |p| (string(&t.name.0), *p))).collect()
        });
        let (error, found) = fetch(shard, &string(&request.group_id.0), wanted, v >= 7 && request.require_stable).await;
        let topics = by_topic(found)
            .into_iter()
            .map(|(topic, parts)| {
                let partitions = parts
                    .into_iter()
                    .map(|f| {
                        let p = OffsetFetchResponsePartition::default()
                            .with_partition_index(f.partition)
                            .with_committed_offset(f.offset)
                            .with_metadata(Some(str_bytes(&f.metadata)))
                            .with_error_code(f.error);
                        if v >= 5 {
                            p.with_committed_leader_epoch(f.leader_epoch)
                        } else {
                            p
                        }
                    })
                    .collect();
                OffsetFetchResponseTopic::default().with_name(topic_name(&topic)).with_partitions(partitions)
            })
            .collect();
        let body = OffsetFetchResponse::default().with_topics(topics);
        if v >= 2 {
            body.with_error_code(error)
        } else {
            body
        }
    };
    Ok(encode_response(req.api_key, v, req.header.correlation_id, &body))
}
