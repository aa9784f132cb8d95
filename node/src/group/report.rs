//! Groups as operators see them: committed offsets against log ends (lag), as JSON for the
//! admin endpoint (`/groups`), Prometheus lines for `/metrics`, and the table
//! `sluice groups` prints (`/groups.txt`, laid out like `kafka-consumer-groups --describe`).

use super::{store, GroupView};
use crate::metrics::PartitionStat;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write;

/// One committed partition of a group, with its owner (from the assignment) and lag.
#[derive(Debug, Clone)]
pub struct LagRow {
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    /// -1 if the partition no longer exists.
    pub log_end_offset: i64,
    /// `log_end_offset - committed`, never negative; -1 if unknown.
    pub lag: i64,
    /// The member the partition is assigned to, if any: (member id, host, client id).
    pub owner: Option<(String, String, String)>,
}

/// Lag rows of one group: every committed partition, sorted by topic and partition.
pub fn lag_rows(group: &GroupView, ends: &HashMap<(String, i32), i64>) -> Vec<LagRow> {
    let mut owners: HashMap<(String, i32), (String, String, String)> = HashMap::new();
    if group.protocol_type == "consumer" {
        for m in &group.members {
            for (topic, partitions) in store::consumer_assignment(&m.assignment).unwrap_or_default() {
                for p in partitions {
                    owners
                        .insert((topic.clone(), p), (m.member_id.clone(), m.client_host.clone(), m.client_id.clone()));
                }
            }
        }
    }
    let mut rows: Vec<LagRow> = group
        .offsets
        .iter()
        .map(|(topic, partition, committed)| {
            let key = (topic.clone(), *partition);
            let end = ends.get(&key).copied().unwrap_or(-1);
            LagRow {
                topic: topic.clone(),
                partition: *partition,
                committed: *committed,
                log_end_offset: end,
                lag: if end >= 0 { (end - committed).max(0) } else { -1 },
                owner: owners.get(&key).cloned(),
            }
        })
        .collect();
    rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    rows
}

/// Log end offsets by partition.
pub fn ends(stats: &[PartitionStat]) -> HashMap<(String, i32), i64> {
    stats.iter().map(|s| ((s.tp.topic.clone(), s.tp.partition), s.log_end_offset)).collect()
}

/// The `/groups` document (field order as served).
#[derive(Debug, Serialize)]
struct GroupsDoc<'a> {
    groups: Vec<GroupDoc<'a>>,
}

#[derive(Debug, Serialize)]
struct GroupDoc<'a> {
    group: &'a str,
    state: &'a str,
    protocol_type: &'a str,
    protocol: &'a str,
    generation: i32,
    leader: &'a str,
    coordinator_shard: usize,
    members: Vec<MemberDoc<'a>>,
    offsets: Vec<OffsetDoc>,
}

#[derive(Debug, Serialize)]
struct MemberDoc<'a> {
    member_id: &'a str,
    group_instance_id: Option<&'a str>,
    client_id: &'a str,
    client_host: &'a str,
    /// Decoded from the consumer protocol's assignment (empty for other protocol types).
    assignment: Vec<AssignedDoc>,
}

#[derive(Debug, Serialize)]
struct AssignedDoc {
    topic: String,
    partitions: Vec<i32>,
}

#[derive(Debug, Serialize)]
struct OffsetDoc {
    topic: String,
    partition: i32,
    committed: i64,
    log_end_offset: i64,
    lag: i64,
    member_id: Option<String>,
}

pub fn groups_json(groups: &[GroupView], stats: &[PartitionStat]) -> String {
    let ends = ends(stats);
    let doc = GroupsDoc {
        groups: groups
            .iter()
            .map(|g| GroupDoc {
                group: &g.group,
                state: &g.state,
                protocol_type: &g.protocol_type,
                protocol: &g.protocol,
                generation: g.generation,
                leader: &g.leader,
                coordinator_shard: g.shard,
                members: g
                    .members
                    .iter()
                    .map(|m| MemberDoc {
                        member_id: &m.member_id,
                        group_instance_id: m.instance_id.as_deref(),
                        client_id: &m.client_id,
                        client_host: &m.client_host,
                        assignment: if g.protocol_type == "consumer" {
                            store::consumer_assignment(&m.assignment).unwrap_or_default()
                        } else {
                            Vec::new()
                        }
                        .into_iter()
                        .map(|(topic, partitions)| AssignedDoc { topic, partitions })
                        .collect(),
                    })
                    .collect(),
                offsets: lag_rows(g, &ends)
                    .into_iter()
                    .map(|r| OffsetDoc {
                        topic: r.topic,
                        partition: r.partition,
                        committed: r.committed,
                        log_end_offset: r.log_end_offset,
                        lag: r.lag,
                        member_id: r.owner.map(|o| o.0),
                    })
                    .collect(),
            })
            .collect(),
    };
    serde_json::to_string(&doc).expect("serialising plain data cannot fail") + "\n"
}

/// The `sluice groups` table.
pub fn groups_table(groups: &[GroupView], stats: &[PartitionStat]) -> String {
    let ends = ends(stats);
    let mut out = String::new();
    if groups.is_empty() {
        out.push_str("no consumer groups\n");
    }
    for g in groups {
        let _ = writeln!(
            out,
            "group {} state {} members {} protocol {} generation {}",
            g.group,
            g.state,
            g.members.len(),
            if g.protocol.is_empty() { "-" } else { &g.protocol },
            g.generation
        );
        let _ = writeln!(
            out,
            "{:<24} {:<24} {:>9} {:>14} {:>14} {:>8} {:<44} {:<16} CLIENT-ID",
            "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST"
        );
        for r in lag_rows(g, &ends) {
            let dash = || "-".to_string();
            let (member, host, client) = r.owner.clone().unwrap_or_else(|| (dash(), dash(), dash()));
            let num = |v: i64| if v < 0 { dash() } else { v.to_string() };
            let _ = writeln!(
                out,
                "{:<24} {:<24} {:>9} {:>14} {:>14} {:>8} {:<44} {:<16} {}",
                g.group,
                r.topic,
                r.partition,
                r.committed,
                num(r.log_end_offset),
                num(r.lag),
                member,
                host,
                client
            );
        }
        out.push('\n');
    }
    out
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Prometheus lines: committed offset and lag per group and partition.
pub fn metrics(groups: &[GroupView], stats: &[PartitionStat]) -> String {
    let ends = ends(stats);
    let mut committed = String::new();
    let mut lag = String::new();
    for g in groups {
        for r in lag_rows(g, &ends) {
            let labels =
                format!("group=\"{}\",topic=\"{}\",partition=\"{}\"", label(&g.group), label(&r.topic), r.partition);
            let _ = writeln!(committed, "sluice_group_committed_offset{{{labels}}} {}", r.committed);
            if r.lag >= 0 {
                let _ = writeln!(lag, "sluice_group_lag{{{labels}}} {}", r.lag);
            }
        }
    }
    let members: usize = groups.iter().map(|g| g.members.len()).sum();
    format!(
        "# HELP sluice_groups consumer groups known to the coordinators\n# TYPE sluice_groups gauge\nsluice_groups {}\n\
         # HELP sluice_group_members members of all groups\n# TYPE sluice_group_members gauge\nsluice_group_members {members}\n\
         # HELP sluice_group_committed_offset committed offset per group and partition\n# TYPE sluice_group_committed_offset gauge\n{committed}\
         # HELP sluice_group_lag log end offset minus committed offset\n# TYPE sluice_group_lag gauge\n{lag}",
        groups.len()
    )
}
