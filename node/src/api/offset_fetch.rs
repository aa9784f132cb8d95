//! OffsetFetch, versions 0–9 (v8+ ask for several groups at once; a null topic list asks
//! for everything the group committed). A partition with no commit answers offset -1.
//! v0 and v1 have no group-level error field: a group's error (NOT_COORDINATOR, ...) is
//! given on each partition asked for (where Kafka's OffsetFetchResponse puts it for
//! versions before 2), so such a client retries rather than taking "no offsets" for an
//! answer.
//!
//! v0, which Kafka 4.0 dropped (KIP-896), is v1's layout (`legacy`). Kafka 3.9 answered it
//! from ZooKeeper, where only OffsetCommit v0 wrote (and, without ZooKeeper, refused it
//! with UNSUPPORTED_VERSION); here it reads the group coordinator's offsets, like v1. Its
//! answer keeps v0's one difference a client sees: a partition without a committed offset
//! answers UNKNOWN_TOPIC_OR_PARTITION with offset -1, as a ZooKeeper-era broker did.

use super::{decode, decode_as, legacy, str_bytes, string, topic_name, Close};
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

pub const VERSIONS: (i16, i16) = (0, 9);

type Wanted = Option<Vec<(String, i32)>>;

async fn fetch(
    shard: &Rc<Shard>,
    group: &str,
    parts: Wanted,
    require_stable: bool,
    member: Option<(String, i32)>,
) -> (i16, Vec<FetchedOffset>) {
    let call = FetchOffsets { group: group.to_string(), parts, require_stable, member };
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
    let v = req.api_version;
    let request: OffsetFetchRequest =
        if v == 0 { decode_as(req, legacy::OFFSET_FETCH_V0_LAYOUT)? } else { decode(req)? };
    let body = if v >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for g in &request.groups {
            let wanted: Wanted = g.topics.as_ref().map(|topics| {
                topics.iter().flat_map(|t| t.partition_indexes.iter().map(move |p| (string(&t.name.0), *p))).collect()
            });
            // v9: a consumer-protocol member names itself and its epoch (checked by the
            // coordinator); an admin client sends a null member id.
            let member = if v >= 9 { g.member_id.as_ref().map(|id| (string(id), g.member_epoch)) } else { None };
            let (error, found) = fetch(shard, &string(&g.group_id.0), wanted, request.require_stable, member).await;
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
        let (error, mut found) =
            fetch(shard, &string(&request.group_id.0), wanted.clone(), v >= 7 && request.require_stable, None).await;
        if v <= 1 {
            found = without_group_error(error, found, wanted.unwrap_or_default());
        }
        if v == 0 {
            for f in found.iter_mut().filter(|f| f.error == errors::NONE && f.offset < 0) {
                f.error = errors::UNKNOWN_TOPIC_OR_PARTITION;
            }
        }
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
    let layout = if v == 0 { legacy::OFFSET_FETCH_V0_LAYOUT } else { v };
    Ok(encode_response(req.api_key, layout, req.header.correlation_id, &body))
}

/// v0 and v1 answers carry no group error: it goes on every partition asked for (offset
/// -1, no metadata).
fn without_group_error(error: i16, found: Vec<FetchedOffset>, wanted: Vec<(String, i32)>) -> Vec<FetchedOffset> {
    if error == errors::NONE {
        return found;
    }
    wanted
        .into_iter()
        .map(|(topic, partition)| FetchedOffset {
            topic,
            partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A group error reaches a v0/v1 client on every partition it asked for; without one
    /// the answer is what the coordinator found.
    #[test]
    fn a_group_error_goes_on_each_partition_asked_for() {
        let wanted = vec![("t".to_string(), 0), ("t".to_string(), 3)];
        let spread = without_group_error(errors::NOT_COORDINATOR, Vec::new(), wanted.clone());
        let got: Vec<(&str, i32, i64, i16)> =
            spread.iter().map(|f| (f.topic.as_str(), f.partition, f.offset, f.error)).collect();
        assert_eq!(got, vec![("t", 0, -1, errors::NOT_COORDINATOR), ("t", 3, -1, errors::NOT_COORDINATOR)]);
        let found = vec![FetchedOffset {
            topic: "t".into(),
            partition: 0,
            offset: 5,
            leader_epoch: -1,
            metadata: String::new(),
            error: errors::NONE,
        }];
        assert_eq!(without_group_error(errors::NONE, found, wanted).len(), 1);
    }
}
