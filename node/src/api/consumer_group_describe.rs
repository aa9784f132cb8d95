//! ConsumerGroupDescribe, versions 0–1 (KIP-848): consumer-protocol groups with their
//! epochs, assignor and members, each with its subscription, current and target
//! assignment. A classic group is GROUP_ID_NOT_FOUND ("is not a consumer group"), as in
//! Kafka, which tells admin clients to describe it with DescribeGroups. v1 adds each
//! member's type (KIP-1099): 1, consumer, for every member here.

use super::{authorized_operations, decode, str_bytes, string, topic_name, Close};
use crate::errors;
use crate::group::consumer_coordinator::Described;
use crate::group::ConsumerDescribe;
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::consumer_group_describe_response::{Assignment, DescribedGroup, Member, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, GroupId};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 1);

/// KIP-1099's member type of a consumer-protocol member.
const MEMBER_TYPE_CONSUMER: i8 = 1;

fn assignment(parts: &[(u128, String, Vec<i32>)]) -> Assignment {
    Assignment::default().with_topic_partitions(
        parts
            .iter()
            .map(|(id, name, ps)| {
                TopicPartitions::default()
                    .with_topic_id(uuid::Uuid::from_u128(*id))
                    .with_topic_name(topic_name(name))
                    .with_partitions(ps.clone())
            })
            .collect(),
    )
}

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: ConsumerGroupDescribeRequest = decode(req)?;
    let v = req.api_version;
    let mut groups = Vec::with_capacity(request.group_ids.len());
    for id in &request.group_ids {
        let name = string(&id.0);
        let d = shard
            .invoke(shard.group_coordinator(&name), ConsumerDescribe { group: name.clone() })
            .await
            .unwrap_or_else(|_| Described {
                error: errors::COORDINATOR_NOT_AVAILABLE,
                group: name.clone(),
                ..Default::default()
            });
        let members = d
            .members
            .iter()
            .map(|m| {
                let out = Member::default()
                    .with_member_id(str_bytes(&m.member_id))
                    .with_instance_id(m.instance_id.as_deref().map(str_bytes))
                    .with_rack_id(m.rack_id.as_deref().map(str_bytes))
                    .with_member_epoch(m.member_epoch)
                    .with_client_id(str_bytes(&m.client_id))
                    .with_client_host(str_bytes(&m.client_host))
                    .with_subscribed_topic_names(m.topics.iter().map(|t| topic_name(t)).collect())
                    .with_subscribed_topic_regex(m.regex.as_deref().map(str_bytes))
                    .with_assignment(assignment(&m.assigned))
                    .with_target_assignment(assignment(&m.target));
                if v >= 1 {
                    out.with_member_type(MEMBER_TYPE_CONSUMER)
                } else {
                    out
                }
            })
            .collect();
        groups.push(
            DescribedGroup::default()
                .with_error_code(d.error)
                .with_error_message(d.message.as_deref().map(str_bytes))
                .with_group_id(GroupId(id.0.clone()))
                .with_group_state(str_bytes(&d.state))
                .with_group_epoch(d.epoch)
                .with_assignment_epoch(d.assignment_epoch)
                .with_assignor_name(str_bytes(&d.assignor))
                .with_members(members)
                .with_authorized_operations(authorized_operations::when(
                    request.include_authorized_operations,
                    authorized_operations::GROUP,
                )),
        );
    }
    let body = ConsumerGroupDescribeResponse::default().with_groups(groups);
    Ok(encode_response(req.api_key, v, req.header.correlation_id, &body))
}
