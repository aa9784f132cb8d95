//! The cluster's metadata quorum (issue #15, Build 2 — in part): what KRaft is to Kafka.
//! Every node of a cluster is a voter (`controller.quorum.voters`, Kafka's setting and form)
//! and runs the quorum on shard 0, on openraft (`runtime` adapts it to glommio). The
//! replicated log holds metadata records (`Record`); every node applies them in log order to
//! its `ClusterState`. So far it holds the broker registrations: each node registers its
//! Kafka listener when it starts, and the registration's log index is its broker epoch, as in
//! KRaft. Topics, partitions, leaders and ISR are not in it yet.
//!
//! Without `controller.quorum.voters` there is no quorum and the node runs alone, as before.

pub mod rpc;
pub mod runtime;
pub mod store;

use openraft::{BasicNode, Config, Raft, ServerState};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

pub type NodeId = u64;

openraft::declare_raft_types!(
    /// The quorum's types for openraft.
    pub Types:
        D = Record,
        R = (),
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = runtime::GlommioRuntime,
);

/// A metadata record (KRaft's record types, by name, as they are added).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// KRaft's `RegisterBrokerRecord`: a node's Kafka listener at one of its starts
    /// (`incarnation` tells starts apart).
    RegisterBroker { id: i32, host: String, port: i32, incarnation: u64 },
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broker {
    pub id: i32,
    pub host: String,
    pub port: i32,
    /// KRaft's broker epoch: the log index of the registration.
    pub epoch: u64,
    pub incarnation: u64,
}

/// One entry of `controller.quorum.voters`: `ID@HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

impl Voter {
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Parses `controller.quorum.voters` (`1@host1:9093,2@host2:9093,...`), as Kafka writes it.
pub fn parse_voters(text: &str) -> Result<Vec<Voter>, String> {
    let mut voters = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || format!("controller.quorum.voters: {entry:?} is not ID@HOST:PORT");
        let (id, addr) = entry.split_once('@').ok_or_else(bad)?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        let id: i32 = id.parse().map_err(|_| bad())?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        if id < 0 || host.is_empty() || port == 0 {
            return Err(bad());
        }
        if voters.iter().any(|v: &Voter| v.id == id) {
            return Err(format!("controller.quorum.voters: node id {id} is listed twice"));
        }
        voters.push(Voter { id, host: host.trim_start_matches('[').trim_end_matches(']').to_string(), port });
    }
    if voters.is_empty() {
        return Err("controller.quorum.voters: no voters listed".into());
    }
    Ok(voters)
}

/// What `/v1/cluster/quorum` shows: the fields of `kafka-metadata-quorum describe --status`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub node_id: i32,
    /// leader, follower, candidate or learner.
    pub state: &'static str,
    pub leader_id: Option<i32>,
    /// The Raft term (KRaft's leader epoch).
    pub leader_epoch: u64,
    /// The committed log end: entries below it are on a majority.
    pub high_watermark: u64,
    /// This node's log end.
    pub log_end_offset: u64,
    pub current_voters: Vec<i32>,
}

impl std::fmt::Debug for Quorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quorum").field("node_id", &self.node_id).field("voters", &self.voters).finish()
    }
}

/// This node's part in the quorum.
pub struct Quorum {
    node_id: i32,
    raft: Raft<Types>,
    state: Rc<RefCell<store::ClusterState>>,
    voters: Vec<Voter>,
}

/// How often the leader sends heartbeats, and the election timeout's range (KRaft:
/// `controller.quorum.election.timeout.ms` 1000, randomised up to twice that).
const HEARTBEAT_MS: u64 = 200;
const ELECTION_TIMEOUT_MS: (u64, u64) = (1000, 2000);

impl Quorum {
    /// Opens this node's quorum state under `data_dir`, listens on its voter address and
    /// joins the quorum. A node that never took part proposes the voter set as the first
    /// membership (every voter does; the same set, so whichever lands first stands).
    pub async fn start(node_id: i32, voters: &[Voter], data_dir: &Path) -> Result<Rc<Quorum>, String> {
        let me = voters
            .iter()
            .find(|v| v.id == node_id)
            .ok_or_else(|| format!("node.id {node_id} is not among controller.quorum.voters: every node is a voter"))?;
        let listener = glommio::net::TcpListener::bind(me.addr())
            .map_err(|e| format!("binding the quorum address {} (controller.quorum.voters): {e}", me.addr()))?;
        let dir = data_dir.join(store::DIR);
        let log = store::LogStore::open(&dir)?;
        let pristine = log.is_pristine();
        let sm = store::StateMachine::open(&dir)?;
        let state = sm.state.clone();
        let config = Config {
            cluster_name: "sluice".into(),
            heartbeat_interval: HEARTBEAT_MS,
            election_timeout_min: ELECTION_TIMEOUT_MS.0,
            election_timeout_max: ELECTION_TIMEOUT_MS.1,
            ..Default::default()
        }
        .validate()
        .map_err(|e| format!("quorum settings: {e}"))?;
        let raft = Raft::new(node_id as NodeId, Arc::new(config), rpc::Network, log, sm)
            .await
            .map_err(|e| format!("starting the quorum: {e}"))?;
        glommio::spawn_local(rpc::serve(listener, raft.clone())).detach();
        if pristine {
            let members: BTreeMap<NodeId, BasicNode> =
                voters.iter().map(|v| (v.id as NodeId, BasicNode { addr: v.addr() })).collect();
            // Refused when a peer's membership reached us first: that is the same set.
            if let Err(e) = raft.initialize(members).await {
                eprintln!("sluice: quorum: not initialising ({e}): a peer did");
            }
        }
        Ok(Rc::new(Quorum { node_id, raft, state, voters: voters.to_vec() }))
    }

    pub fn status(&self) -> Status {
        let m = self.raft.metrics().borrow().clone();
        let state = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        Status {
            node_id: self.node_id,
            state,
            leader_id: m.current_leader.map(|l| l as i32),
            leader_epoch: m.current_term,
            high_watermark: self.state.borrow().last_applied.map_or(0, |l| l.index + 1),
            log_end_offset: m.last_log_index.map_or(0, |i| i + 1),
            current_voters: self.voters.iter().map(|v| v.id).collect(),
        }
    }

    /// The brokers registered, by node id.
    pub fn brokers(&self) -> Vec<Broker> {
        self.state.borrow().brokers.values().cloned().collect()
    }

    /// Commits `record` through the leader, wherever it is, retrying as leadership settles,
    /// until `timeout` has passed.
    pub async fn propose(&self, record: Record, timeout: Duration) -> Result<(), String> {
        let deadline = std::time::Instant::now() + timeout;
        let mut last_error = String::from("no leader yet");
        let mut tried: BTreeSet<i32> = BTreeSet::new();
        while std::time::Instant::now() < deadline {
            let leader = self.raft.metrics().borrow().current_leader;
            let result = match leader {
                Some(l) if l == self.node_id as NodeId => {
                    self.raft.client_write(record.clone()).await.map(|_| ()).map_err(|e| e.to_string())
                }
                Some(l) => match self.voters.iter().find(|v| v.id as NodeId == l) {
                    Some(v) => {
                        tried.insert(v.id);
                        rpc::Peer::new(l, v.addr()).propose(record.clone(), Duration::from_secs(2)).await
                    }
                    None => Err(format!("leader {l} is not a voter")),
                },
                None => Err("no leader yet".into()),
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) => last_error = e,
            }
            glommio::timer::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("not committed within {timeout:?}: {last_error} (asked {tried:?})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voters_parse_as_kafka_writes_them_and_mistakes_are_named() {
        let v = parse_voters("1@127.0.0.1:9093, 2@127.0.0.2:9093,3@[::1]:9094").unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0], Voter { id: 1, host: "127.0.0.1".into(), port: 9093 });
        assert_eq!(v[2].host, "::1");
        for bad in ["", "1@host", "x@h:1", "1@h:0", "1@:9", "1@a:1,1@b:2"] {
            let e = parse_voters(bad).unwrap_err();
            assert!(e.contains("controller.quorum.voters"), "{bad}: {e}");
        }
    }
}
