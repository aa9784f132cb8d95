//! The quorum's wire between nodes: each node listens on its own `controller.quorum.voters`
//! address; a request and its answer are each one frame, `[u32 length, big-endian][JSON]`,
//! one at a time per connection. Carries openraft's three RPCs and `Propose`, a metadata
//! record a node asks the leader to commit (KRaft brokers send their registrations to the
//! active controller the same way).

use super::runtime::GlommioRuntime;
use super::{NodeId, Record, Types};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{AsyncRuntime, BasicNode, Raft};
use serde::{Deserialize, Serialize};
use std::io;
use std::time::Duration;

/// A frame longer than this closes the connection.
const FRAME_BYTES_MAX: usize = 64 << 20;
/// How long a connection attempt to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Serialize, Deserialize)]
pub enum Request {
    Append(AppendEntriesRequest<Types>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<Types>),
    Propose(Record),
    /// KRaft's BrokerHeartbeat: broker `id` is alive (to the leader).
    Heartbeat(i32),
}

#[derive(Serialize, Deserialize)]
pub enum Response {
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    /// Committed, or why not (not the leader, no quorum).
    Propose(Result<(), String>),
    Heartbeat,
}

async fn write_frame(stream: &mut TcpStream, value: &impl Serialize) -> io::Result<()> {
    let json = serde_json::to_vec(value).map_err(io::Error::other)?;
    let mut frame = Vec::with_capacity(4 + json.len());
    frame.extend_from_slice(&(json.len() as u32).to_be_bytes());
    frame.extend_from_slice(&json);
    stream.write_all(&frame).await?;
    stream.flush().await
}

async fn read_frame<T: for<'de> Deserialize<'de>>(stream: &mut TcpStream) -> io::Result<T> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > FRAME_BYTES_MAX {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a {len}-byte quorum frame")));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Serves peers' requests to this node's Raft until the listener fails.
pub async fn serve(listener: TcpListener, raft: Raft<Types>, heard: std::rc::Rc<super::Heard>) {
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(_) => {
                glommio::timer::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (raft, heard) = (raft.clone(), heard.clone());
        glommio::spawn_local(async move {
            let mut stream = stream;
            let _ = stream.set_nodelay(true);
            // Bad input closes the connection (the read or decode fails); nothing else.
            while let Ok(request) = read_frame::<Request>(&mut stream).await {
                let response = match request {
                    Request::Append(r) => Response::Append(raft.append_entries(r).await),
                    Request::Vote(r) => Response::Vote(raft.vote(r).await),
                    Request::Snapshot(r) => Response::Snapshot(raft.install_snapshot(r).await),
                    Request::Propose(record) => {
                        Response::Propose(raft.client_write(record).await.map(|_| ()).map_err(|e| e.to_string()))
                    }
                    Request::Heartbeat(id) => {
                        heard.beat(id);
                        Response::Heartbeat
                    }
                };
                if write_frame(&mut stream, &response).await.is_err() {
                    break;
                }
            }
        })
        .detach();
    }
}

/// One peer, one connection at a time, re-made after any error.
pub struct Peer {
    target: NodeId,
    addr: String,
    stream: Option<TcpStream>,
}

impl Peer {
    pub fn new(target: NodeId, addr: String) -> Peer {
        Peer { target, addr, stream: None }
    }

    /// Sends `request` and reads its answer within `ttl`. `Err(true)`: the peer could not be
    /// reached at all; `Err(false)`: the exchange failed part-way.
    async fn call(&mut self, request: &Request, ttl: Duration) -> Result<Response, (bool, io::Error)> {
        if self.stream.is_none() {
            let connect = crate::peer::connect(self.addr.as_str(), CONNECT_TIMEOUT);
            let stream = connect.await.map_err(|e| (true, io::Error::other(e.to_string())))?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("connected above");
        let exchange = async {
            write_frame(stream, request).await?;
            read_frame::<Response>(stream).await
        };
        match GlommioRuntime::timeout(ttl, exchange).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.stream = None;
                Err((false, e))
            }
            Err(_) => {
                self.stream = None;
                Err((
                    false,
                    io::Error::new(io::ErrorKind::TimedOut, format!("no answer from {} in {ttl:?}", self.addr)),
                ))
            }
        }
    }

    /// `call` for the Raft RPCs, with openraft's error kinds.
    async fn rpc<E: std::error::Error>(
        &mut self,
        request: Request,
        option: &RPCOption,
    ) -> Result<Response, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>> {
        self.call(&request, option.hard_ttl()).await.map_err(|(unreachable, e)| {
            if unreachable {
                RPCError::Unreachable(Unreachable::new(&e))
            } else {
                RPCError::Network(NetworkError::new(&e))
            }
        })
    }

    /// Asks the peer (the leader, one hopes) to commit `record`.
    pub async fn propose(&mut self, record: Record, ttl: Duration) -> Result<(), String> {
        match self.call(&Request::Propose(record), ttl).await {
            Ok(Response::Propose(r)) => r,
            Ok(_) => Err("a mismatched answer".into()),
            Err((_, e)) => Err(format!("node {} at {}: {e}", self.target, self.addr)),
        }
    }
}

impl Peer {
    /// Tells the peer (the leader) that broker `id` is alive.
    pub async fn heartbeat(&mut self, id: i32, ttl: Duration) -> Result<(), String> {
        match self.call(&Request::Heartbeat(id), ttl).await {
            Ok(Response::Heartbeat) => Ok(()),
            Ok(_) => Err("a mismatched answer".into()),
            Err((_, e)) => Err(format!("node {} at {}: {e}", self.target, self.addr)),
        }
    }
}

fn mismatched<E: std::error::Error>() -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
    RPCError::Network(NetworkError::new(&io::Error::new(io::ErrorKind::InvalidData, "a mismatched answer")))
}

impl RaftNetwork<Types> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Types>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.rpc(Request::Append(rpc), &option).await? {
            Response::Append(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(mismatched()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<Types>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        match self.rpc(Request::Snapshot(rpc), &option).await? {
            Response::Snapshot(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(mismatched()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.rpc(Request::Vote(rpc), &option).await? {
            Response::Vote(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(mismatched()),
        }
    }
}

/// Makes a `Peer` for each node openraft talks to (their addresses are in the membership).
pub struct Network;

impl RaftNetworkFactory<Types> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer::new(target, node.addr.clone())
    }
}
