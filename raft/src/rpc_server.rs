//! The server side of the CONTROLLER listener: accepts peers, checks that each belongs to this cluster, and hands
//! Raft's requests to the local Raft node and brokers' requests to the local controller.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::BufStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use crate::controller::channel::{self, ControllerReply};
use crate::controller::QuorumController;
use crate::raft_types::Raft;
use crate::rpc::{encode_frame, read_frame, write_frame, RaftRequest, RaftResponse, RpcError};

/// A quorum has a handful of voters, each keeping one connection per replication stream; the
/// cap only stops a misbehaving client from exhausting file descriptors.
const MAX_CONNECTIONS: usize = 64;
/// Leaders send heartbeats far more often than this; a silent connection is dead.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Writing a response to a peer that stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Backoff after accept fails (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A running RPC server; aborting it (or dropping this) closes the listener and every connection.
pub(crate) struct RpcServer {
    task: JoinHandle<()>,
}

/// What a connection is served by.
#[derive(Clone)]
pub(crate) struct RpcTarget {
    pub(crate) cluster_id: Arc<str>,
    pub(crate) raft: Raft,
    pub(crate) controller: Arc<QuorumController>,
}

impl RpcServer {
    pub(crate) fn spawn(listener: TcpListener, target: RpcTarget) -> RpcServer {
        RpcServer {
            task: tokio::spawn(serve(listener, target)),
        }
    }

    /// Stops serving and returns once the listener is closed, so its port can be bound again.
    pub(crate) async fn stop(mut self) {
        self.task.abort();
        // The task only ends by abort; its result says nothing.
        let _ = (&mut self.task).await;
    }
}

impl Drop for RpcServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, target: RpcTarget) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Owned here so that aborting this task drops (and so aborts) every connection task.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, "too many raft rpc connections; closing this one");
                        continue;
                    };
                    let target = target.clone();
                    connections.spawn(async move {
                        if let Err(error) = serve_connection(stream, target).await {
                            tracing::debug!(%peer, %error, "raft rpc connection ended");
                        }
                        drop(permit);
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting a raft rpc connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, target: RpcTarget) -> Result<(), RpcError> {
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr()?;
    let mut stream = BufStream::new(stream);
    let hello = match tokio::time::timeout(IDLE_TIMEOUT, read_frame(&mut stream)).await {
        Ok(Ok(hello)) => hello,
        Ok(Err(RpcError::Closed)) | Err(_) => return Ok(()),
        Ok(Err(e)) => return Err(e),
    };
    let refusal = match hello {
        RaftRequest::Hello {
            cluster_id,
            node_id,
        } if cluster_id != *target.cluster_id => {
            tracing::warn!(%peer, node_id, theirs = %cluster_id, ours = %target.cluster_id,
                "refusing a node of another cluster");
            Some(format!(
                "this node belongs to cluster {}, not {cluster_id}",
                target.cluster_id
            ))
        }
        RaftRequest::Hello { .. } => None,
        _ => Some("the first request must be Hello".to_string()),
    };
    let answer = encode_frame(&RaftResponse::Hello(match &refusal {
        Some(reason) => Err(reason.clone()),
        None => Ok(()),
    }))?;
    match tokio::time::timeout(WRITE_TIMEOUT, write_frame(&mut stream, &answer)).await {
        Ok(result) => result?,
        Err(_) => return Ok(()),
    }
    if refusal.is_some() {
        return Ok(());
    }
    loop {
        // The idle timeout covers waiting for the next request and reading it; a peer that
        // stalls mid-frame is cut off by the same bound.
        let request = match tokio::time::timeout(IDLE_TIMEOUT, read_frame(&mut stream)).await {
            Ok(Ok(request)) => request,
            Ok(Err(RpcError::Closed)) | Err(_) => return Ok(()),
            Ok(Err(e)) => return Err(e),
        };
        let response = dispatch(&target, request).await;
        let frame = encode_frame(&response)?;
        match tokio::time::timeout(WRITE_TIMEOUT, write_frame(&mut stream, &frame)).await {
            Ok(result) => result?,
            Err(_) => return Ok(()),
        }
    }
}

async fn dispatch(target: &RpcTarget, request: RaftRequest) -> RaftResponse {
    let raft = &target.raft;
    match request {
        RaftRequest::AppendEntries(rpc) => {
            RaftResponse::AppendEntries(raft.append_entries(rpc).await)
        }
        RaftRequest::Vote(rpc) => RaftResponse::Vote(raft.vote(rpc).await),
        RaftRequest::InstallSnapshot(rpc) => {
            RaftResponse::InstallSnapshot(raft.install_snapshot(rpc).await)
        }
        // Confirms leadership with a quorum before answering, so a deposed leader that has not
        // noticed yet cannot hand out a stale position.
        RaftRequest::ReadIndex => {
            RaftResponse::ReadIndex(raft.get_read_log_id().await.map(|(read, _applied)| read))
        }
        RaftRequest::Controller(request) => {
            let applied = || raft.metrics().borrow().last_applied.map(|id| id.index);
            let before = applied();
            let response = channel::handle(&target.controller, request).await;
            // The broker waits to apply what this request wrote; if nothing was written, it need not wait.
            let after = applied();
            RaftResponse::Controller(ControllerReply {
                written_up_to: after.filter(|_| after != before),
                response,
            })
        }
        RaftRequest::Hello { .. } => RaftResponse::Hello(Err("already greeted".to_string())),
    }
}
