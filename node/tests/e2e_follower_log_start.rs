//! A follower's log start, moved to its leader's (DeleteRecords on the leader), is written
//! to the follower's `log-start-offset-checkpoint` without waiting for a clean stop, so a
//! crash and restart cannot bring back its first segment's base.

mod common;
mod support;

use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
use std::time::{Duration, Instant};
use support::cluster::*;
use support::wire::Client;
use support::{http_get, Node};

const TEST_SOURCE: &str = "127.0.0.9";

fn leader_of_partition0(node: &Node, topic: &str) -> i32 {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    let mut c = Client::connect_from(node.bootstrap(), TEST_SOURCE);
    let wanted = MetadataRequestTopic::default().with_name(Some(support::wire::name(topic)));
    c.send(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(Some(vec![wanted])));
    let m: MetadataResponse = c.recv(ApiKey::Metadata, 12);
    m.topics[0].partitions.iter().find(|p| p.partition_index == 0).expect("partition 0").leader_id.0
}

fn produce_values(c: &mut Client, topic: &str, values: &[String]) -> (i16, i64) {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
    let values: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
    let records = bytes::Bytes::from(common::batch(&values, 1_700_000_000_000));
    let data = PartitionProduceData::default().with_index(0).with_records(Some(records));
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(15_000).with_topic_data(vec![
        TopicProduceData::default().with_name(support::wire::name(topic)).with_partition_data(vec![data]),
    ]);
    c.send(ApiKey::Produce, 9, &request);
    let r: ProduceResponse = c.recv(ApiKey::Produce, 9);
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn log_start(n: &Node, topic: &str) -> Option<i64> {
    let (_, text) = http_get(n.admin().expect("an admin listener"), "/metrics");
    text.lines()
        .filter(|l| l.starts_with("sluice_partition_log_start_offset{"))
        .find(|l| l.contains(&format!("topic=\"{topic}\"")) && l.contains("partition=\"0\""))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as i64)
}

fn checkpointed(n: &Node, topic: &str) -> Option<i64> {
    let text = std::fs::read_to_string(n.data_dir().join("log-start-offset-checkpoint")).ok()?;
    text.lines().find_map(|l| l.strip_prefix(&format!("{topic} 0 "))?.trim().parse().ok())
}

#[test]
fn a_followers_log_start_moved_by_its_leader_is_checkpointed_and_survives_a_crash() {
    let mut nodes = cluster();
    assert_eq!(create_topic(&nodes[0], "trim", 1, 3), (0, String::new()));
    until_topic_ready(&nodes, "trim", 1, 3);
    let leader = leader_of_partition0(&nodes[0], "trim") as usize - 1;
    let mut to_leader = Client::connect_from(nodes[leader].bootstrap(), TEST_SOURCE);
    let values: Vec<String> = (0..20).map(|i| format!("v-{i}")).collect();
    assert_eq!(produce_values(&mut to_leader, "trim", &values), (0, 0));
    {
        use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
        use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
        let part = DeleteRecordsPartition::default().with_partition_index(0).with_offset(15);
        let topic = DeleteRecordsTopic::default().with_name(support::wire::name("trim")).with_partitions(vec![part]);
        let request = DeleteRecordsRequest::default().with_topics(vec![topic]).with_timeout_ms(15_000);
        to_leader.send(ApiKey::DeleteRecords, 2, &request);
        let r: DeleteRecordsResponse = to_leader.recv(ApiKey::DeleteRecords, 2);
        assert_eq!((r.topics[0].partitions[0].error_code, r.topics[0].partitions[0].low_watermark), (0, 15));
    }
    // One more record makes the followers fetch (and take the log start) now.
    assert_eq!(produce_values(&mut to_leader, "trim", &["more".to_string()]), (0, 20));
    let deadline = Instant::now() + Duration::from_secs(60);
    while (0..3).any(|i| log_start(&nodes[i], "trim") != Some(15)) {
        assert!(
            Instant::now() < deadline,
            "log starts: {:?}",
            (0..3).map(|i| log_start(&nodes[i], "trim")).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while followers.iter().any(|&f| checkpointed(&nodes[f], "trim") != Some(15)) {
        let seen: Vec<Option<i64>> = followers.iter().map(|&f| checkpointed(&nodes[f], "trim")).collect();
        assert!(Instant::now() < deadline, "the followers' log-start-offset-checkpoint says {seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A crash now: the file is what the restarted follower starts from.
    let f = followers[0];
    nodes[f].kill();
    assert_eq!(checkpointed(&nodes[f], "trim"), Some(15));
    nodes[f].restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    while log_start(&nodes[f], "trim") != Some(15) {
        assert!(Instant::now() < deadline, "restarted: {:?}", log_start(&nodes[f], "trim"));
        std::thread::sleep(Duration::from_millis(100));
    }
}
