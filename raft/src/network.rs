//! The client side of the CONTROLLER listener's RPCs: one pooled TCP connection per peer, re-dialled after any
//! error, opened with the cluster handshake, every call bounded by its deadline.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RPCTypes};
use tokio::io::BufStream;
use tokio::net::TcpStream;

use crate::controller::channel::{ControllerReply, ControllerRequest};
use crate::raft_types::{LogId, MetadataLog, NodeId};
use crate::rpc::{encode_frame, read_frame, write_frame, RaftRequest, RaftResponse, RpcError};

/// When the leader last heard from each peer (a successful AppendEntries, heartbeats included) and when the peer
/// last held every committed entry: DescribeQuorum's last fetch and last caught-up timestamps, in ms since the
/// epoch. Openraft pushes where KRaft's followers fetch, so "fetch" here is the leader's successful push.
#[derive(Debug, Default)]
pub(crate) struct PeerContacts {
    by_peer: Mutex<HashMap<NodeId, PeerContact>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PeerContact {
    pub(crate) last_fetch_ms: i64,
    pub(crate) last_caught_up_ms: i64,
}

impl PeerContacts {
    pub(crate) fn get(&self, peer: NodeId) -> Option<PeerContact> {
        self.by_peer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&peer)
            .copied()
    }

    fn record(&self, peer: NodeId, caught_up: bool) {
        let now_ms = now_ms();
        let mut by_peer = self.by_peer.lock().unwrap_or_else(PoisonError::into_inner);
        let contact = by_peer.entry(peer).or_default();
        contact.last_fetch_ms = now_ms;
        if caught_up {
            contact.last_caught_up_ms = now_ms;
        }
    }
}

/// Wall-clock milliseconds since the epoch, as DescribeQuorum's timestamps are.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) struct TcpNetworkFactory {
    node_id: NodeId,
    contacts: Arc<PeerContacts>,
    cluster_id: Arc<str>,
    /// `controller.quorum.request.timeout.ms`: dialling a peer that is down fails this fast, so openraft backs off.
    connect_timeout: Duration,
    /// `controller.quorum.voters`: the addresses to dial. They win over the address stored in the
    /// membership, so that moving a controller only needs the config changed (as in KRaft).
    voters: Arc<BTreeMap<NodeId, String>>,
}

impl TcpNetworkFactory {
    pub(crate) fn new(
        node_id: NodeId,
        cluster_id: Arc<str>,
        voters: BTreeMap<NodeId, String>,
        connect_timeout: Duration,
        contacts: Arc<PeerContacts>,
    ) -> TcpNetworkFactory {
        TcpNetworkFactory {
            node_id,
            contacts,
            cluster_id,
            connect_timeout,
            voters: Arc::new(voters),
        }
    }
}

impl RaftNetworkFactory<MetadataLog> for TcpNetworkFactory {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerConnection {
        let addr = self
            .voters
            .get(&target)
            .cloned()
            .unwrap_or_else(|| node.addr.clone());
        let mut connection = PeerConnection::new(
            self.node_id,
            target,
            addr,
            self.cluster_id.clone(),
            self.connect_timeout,
        );
        connection.contacts = Some(self.contacts.clone());
        connection
    }
}

pub(crate) struct PeerConnection {
    node_id: NodeId,
    target: NodeId,
    addr: String,
    cluster_id: Arc<str>,
    connect_timeout: Duration,
    stream: Option<BufStream<TcpStream>>,
    /// Where a replication stream notes its successes; `None` for other uses of a connection.
    contacts: Option<Arc<PeerContacts>>,
}

/// Why one call failed, before it is phrased as openraft's error.
enum CallError {
    Connect(std::io::Error),
    TimedOut,
    Rpc(RpcError),
}

impl PeerConnection {
    pub(crate) fn new(
        node_id: NodeId,
        target: NodeId,
        addr: String,
        cluster_id: Arc<str>,
        connect_timeout: Duration,
    ) -> PeerConnection {
        PeerConnection {
            node_id,
            target,
            addr,
            cluster_id,
            connect_timeout,
            stream: None,
            contacts: None,
        }
    }

    /// Sends a request to the peer's controller; `None` when it was unreachable or did not answer in `ttl`.
    pub(crate) async fn controller(
        &mut self,
        request: &ControllerRequest,
        ttl: Duration,
    ) -> Option<ControllerReply> {
        let frame = encode_frame(&RaftRequest::Controller(request.clone())).ok()?;
        match self.call(&frame, ttl).await {
            Ok(RaftResponse::Controller(reply)) => Some(reply),
            Ok(_) => None,
            Err(CallError::Rpc(RpcError::Refused(reason))) => {
                tracing::warn!(peer = %self.addr, %reason, "controller refused this node");
                None
            }
            Err(_) => None,
        }
    }

    /// The leader's read index: every entry committed before the call is at or below it.
    /// `None` when the peer is unreachable, no longer leads, or did not answer in `ttl`.
    pub(crate) async fn read_index(&mut self, ttl: Duration) -> Option<Option<LogId>> {
        let frame = encode_frame(&RaftRequest::ReadIndex).ok()?;
        match self.call(&frame, ttl).await {
            Ok(RaftResponse::ReadIndex(Ok(read))) => Some(read),
            Ok(_) | Err(_) => None,
        }
    }

    async fn call(&mut self, frame: &[u8], ttl: Duration) -> Result<RaftResponse, CallError> {
        let result = tokio::time::timeout(ttl, self.exchange(frame)).await;
        let result = match result {
            Ok(result) => result,
            Err(_) => Err(CallError::TimedOut),
        };
        if result.is_err() {
            // The stream may hold half a frame: never reuse it.
            self.stream = None;
        }
        result
    }

    async fn exchange(&mut self, frame: &[u8]) -> Result<RaftResponse, CallError> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let connect = TcpStream::connect(self.addr.as_str());
                let stream = match tokio::time::timeout(self.connect_timeout, connect).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => return Err(CallError::Connect(e)),
                    Err(_) => {
                        let e = std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("connecting to {} timed out", self.addr),
                        );
                        return Err(CallError::Connect(e));
                    }
                };
                // Raft messages are small and latency-bound.
                stream
                    .set_nodelay(true)
                    .map_err(|e| CallError::Rpc(e.into()))?;
                let mut stream = BufStream::new(stream);
                self.hello(&mut stream).await.map_err(CallError::Rpc)?;
                self.stream.insert(stream)
            }
        };
        write_frame(stream, frame).await.map_err(CallError::Rpc)?;
        read_frame(stream).await.map_err(CallError::Rpc)
    }

    /// The handshake: names this node's cluster; the peer answers whether it is the same.
    async fn hello(&self, stream: &mut BufStream<TcpStream>) -> Result<(), RpcError> {
        let hello = encode_frame(&RaftRequest::Hello {
            cluster_id: self.cluster_id.to_string(),
            node_id: self.node_id,
        })?;
        write_frame(stream, &hello).await?;
        match read_frame(stream).await? {
            RaftResponse::Hello(Ok(())) => Ok(()),
            RaftResponse::Hello(Err(reason)) => Err(RpcError::Refused(reason)),
            _ => Err(RpcError::UnexpectedResponse),
        }
    }

    fn rpc_error<E: std::error::Error>(
        &self,
        action: RPCTypes,
        ttl: Duration,
        error: CallError,
    ) -> RPCError<NodeId, BasicNode, E> {
        match error {
            CallError::Connect(e) => RPCError::Unreachable(Unreachable::new(&e)),
            CallError::TimedOut => RPCError::Timeout(Timeout {
                action,
                id: self.node_id,
                target: self.target,
                timeout: ttl,
            }),
            CallError::Rpc(e) => RPCError::Network(NetworkError::new(&e)),
        }
    }

    fn remote<E: std::error::Error>(
        &self,
        error: RaftError<NodeId, E>,
    ) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
        RPCError::RemoteError(RemoteError::new(self.target, error))
    }
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl RaftNetwork<MetadataLog> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<MetadataLog>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let ttl = option.hard_ttl();
        let entries = rpc.entries.len();
        // After a full success the peer holds everything up to the last entry sent (or the previous one, for a
        // heartbeat): caught up if that covers what the leader has committed.
        let sent_up_to = rpc
            .entries
            .last()
            .map(|e| e.log_id.index)
            .or(rpc.prev_log_id.map(|id| id.index));
        let caught_up = rpc.leader_commit.map(|id| id.index) <= sent_up_to;
        let frame = match encode_frame(&RaftRequest::AppendEntries(rpc)) {
            Ok(frame) => frame,
            // openraft retries with fewer entries per request.
            Err(RpcError::FrameTooLarge(_)) if entries > 1 => {
                let hint = u64::try_from(entries / 2).unwrap_or(1);
                return Err(RPCError::PayloadTooLarge(
                    PayloadTooLarge::new_entries_hint(hint),
                ));
            }
            Err(e) => return Err(RPCError::Network(NetworkError::new(&e))),
        };
        match self.call(&frame, ttl).await {
            Ok(RaftResponse::AppendEntries(result)) => {
                if let (Ok(response), Some(contacts)) = (&result, &self.contacts) {
                    let success = matches!(response, AppendEntriesResponse::Success);
                    contacts.record(self.target, success && caught_up);
                }
                result.map_err(|e| self.remote(e))
            }
            Ok(_) => Err(RPCError::Network(NetworkError::new(
                &RpcError::UnexpectedResponse,
            ))),
            Err(e) => Err(self.rpc_error(RPCTypes::AppendEntries, ttl, e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<MetadataLog>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let ttl = option.hard_ttl();
        let frame = encode_frame(&RaftRequest::InstallSnapshot(rpc))
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        match self.call(&frame, ttl).await {
            Ok(RaftResponse::InstallSnapshot(result)) => result.map_err(|e| self.remote(e)),
            Ok(_) => Err(RPCError::Network(NetworkError::new(
                &RpcError::UnexpectedResponse,
            ))),
            Err(e) => Err(self.rpc_error(RPCTypes::InstallSnapshot, ttl, e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        let ttl = option.hard_ttl();
        let frame = encode_frame(&RaftRequest::Vote(rpc))
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        match self.call(&frame, ttl).await {
            Ok(RaftResponse::Vote(result)) => result.map_err(|e| self.remote(e)),
            Ok(_) => Err(RPCError::Network(NetworkError::new(
                &RpcError::UnexpectedResponse,
            ))),
            Err(e) => Err(self.rpc_error(RPCTypes::Vote, ttl, e)),
        }
    }
}
