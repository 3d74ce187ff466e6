//! The server side of the Raft RPCs: accepts peers on the controller's listener and hands each
//! request to the local Raft node.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::BufStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

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

impl RpcServer {
    pub(crate) fn spawn(listener: TcpListener, raft: Raft) -> RpcServer {
        RpcServer {
            task: tokio::spawn(serve(listener, raft)),
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

async fn serve(listener: TcpListener, raft: Raft) {
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
                    let raft = raft.clone();
                    connections.spawn(async move {
                        if let Err(error) = serve_connection(stream, raft).await {
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

async fn serve_connection(stream: TcpStream, raft: Raft) -> Result<(), RpcError> {
    stream.set_nodelay(true)?;
    let mut stream = BufStream::new(stream);
    loop {
        // The idle timeout covers waiting for the next request and reading it; a peer that
        // stalls mid-frame is cut off by the same bound.
        let request = match tokio::time::timeout(IDLE_TIMEOUT, read_frame(&mut stream)).await {
            Ok(Ok(request)) => request,
            Ok(Err(RpcError::Closed)) | Err(_) => return Ok(()),
            Ok(Err(e)) => return Err(e),
        };
        let response = dispatch(&raft, request).await;
        let frame = encode_frame(&response)?;
        match tokio::time::timeout(WRITE_TIMEOUT, write_frame(&mut stream, &frame)).await {
            Ok(result) => result?,
            Err(_) => return Ok(()),
        }
    }
}

async fn dispatch(raft: &Raft, request: RaftRequest) -> RaftResponse {
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
    }
}
