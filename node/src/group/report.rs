//! Groups as operators see them: committed offsets against log ends (lag), as JSON for the
//! admin endpoint (`/groups`), Prometheus lines for `/metrics`, and the table
//! `sluice groups` prints (`/groups.txt`, laid out like `kafka-consumer-groups --describe`).

use super::{store, GroupView};
use crate::shard::PartitionStat;
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

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "null".to_string(), json_str)
}

pub fn groups_json(groups: &[GroupView], stats: &[PartitionStat]) -> String {
    let ends = ends(stats);
    let mut out = String::from("{\"groups\":[");
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"group\":{},\"state\":{},\"protocol_type\":{},\"protocol\":{},\"generation\":{},\"leader\":{},\"coordinator_shard\":{},\"members\":[",
            json_str(&g.group),
            json_str(&g.state),
            json_str(&g.protocol_type),
            json_str(&g.protocol),
            g.generation,
            json_str(&g.leader),
            g.shard
        );
        for (j, m) in g.members.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"member_id\":{},\"group_instance_id\":{},\"client_id\":{},\"client_host\":{},\"assignment\":[",
                json_str(&m.member_id),
                json_opt(m.instance_id.as_deref()),
                json_str(&m.client_id),
                json_str(&m.client_host)
            );
            let assigned = if g.protocol_type == "consumer" {
                store::consumer_assignment(&m.assignment).unwrap_or_default()
            } else {
                Vec::new()
            };
            for (k, (topic, partitions)) in assigned.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                let list: Vec<String> = partitions.iter().map(i32::to_string).collect();
                let _ = write!(out, "{{\"topic\":{},\"partitions\":[{}]}}", json_str(topic), list.join(","));
            }
            out.push_str("]}");
        }
        out.push_str("],\"offsets\":[");
        for (j, r) in lag_rows(g, &ends).iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"topic\":{},\"partition\":{},\"committed\":{},\"log_end_offset\":{},\"lag\":{},\"member_id\":{}}}",
                json_str(&r.topic),
                r.partition,
                r.committed,
                r.log_end_offset,
                r.lag,
                json_opt(r.owner.as_ref().map(|o| o.0.as_str()))
            );
        }
        out.push_str("]}");
    }
    out.push_str("]}\n");
    out
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
