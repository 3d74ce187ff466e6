//! The wire format of the CONTROLLER listener: Raft's RPCs between controllers and the requests brokers forward to
//! the active controller. One request frame, one response frame, each a 4-byte big-endian length followed by that
//! many bytes of JSON. Every connection opens with `Hello`, naming the cluster, and is closed unless the cluster
//! matches: a node of another cluster can neither vote nor write here.

use std::io;

use openraft::error::{CheckIsLeaderError, InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::controller::channel::{ControllerReply, ControllerRequest};
use crate::raft_types::{LogId, MetadataLog, NodeId};

/// The largest frame either side sends or accepts. Snapshot chunks are configured well below it
/// (JSON writes bytes as numbers, up to 4 characters each).
pub(crate) const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("raft rpc i/o: {0}")]
    Io(#[from] io::Error),
    #[error("raft rpc frame of {0} bytes is over the {MAX_FRAME_BYTES}-byte limit")]
    FrameTooLarge(usize),
    #[error("raft rpc encoding: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("raft rpc peer closed the connection")]
    Closed,
    #[error("raft rpc response does not match the request")]
    UnexpectedResponse,
    #[error("the peer refused the connection: {0}")]
    Refused(String),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RaftRequest {
    /// The first frame of every connection.
    Hello {
        cluster_id: String,
        node_id: NodeId,
    },
    AppendEntries(AppendEntriesRequest<MetadataLog>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<MetadataLog>),
    /// Not Raft's own: a starting voter asks the leader how far the log is committed, to know
    /// when it has caught up (KRaft's brokers learn the same from the high watermark).
    ReadIndex,
    /// A request for the active controller, from a broker (see `controller::channel`).
    Controller(ControllerRequest),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RaftResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    ReadIndex(Result<Option<LogId>, RaftError<NodeId, CheckIsLeaderError<NodeId, BasicNode>>>),
    /// `Err` says why the connection is refused; it is closed after this answer.
    Hello(Result<(), String>),
    Controller(ControllerReply),
}

/// Encodes a frame, refusing one the peer would refuse.
pub(crate) fn encode_frame<T: Serialize>(message: &T) -> Result<Vec<u8>, RpcError> {
    let mut frame = vec![0; 4];
    serde_json::to_writer(&mut frame, message)?;
    let len = frame.len() - 4;
    if len > MAX_FRAME_BYTES {
        return Err(RpcError::FrameTooLarge(len));
    }
    let len = u32::try_from(len).map_err(|_| RpcError::FrameTooLarge(len))?;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    Ok(frame)
}

pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    out: &mut W,
    frame: &[u8],
) -> Result<(), RpcError> {
    out.write_all(frame).await?;
    out.flush().await?;
    Ok(())
}

/// Reads one frame; `Closed` when the peer hung up between frames.
pub(crate) async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(
    input: &mut R,
) -> Result<T, RpcError> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(RpcError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
    if len > MAX_FRAME_BYTES {
        return Err(RpcError::FrameTooLarge(len));
    }
    let mut body = vec![0; len];
    input.read_exact(&mut body).await?;
    Ok(serde_json::from_slice(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_ones_are_refused() -> Result<(), RpcError> {
        let frame = encode_frame(&vec!["a".to_string(), "b".to_string()])?;
        let mut input = frame.as_slice();
        let back: Vec<String> = read_frame(&mut input).await?;
        assert_eq!(back, vec!["a", "b"]);
        assert!(matches!(
            read_frame::<_, Vec<String>>(&mut input).await,
            Err(RpcError::Closed)
        ));

        let huge = u32::try_from(MAX_FRAME_BYTES + 1).unwrap_or(u32::MAX);
        let header = huge.to_be_bytes();
        assert!(matches!(
            read_frame::<_, Vec<String>>(&mut header.as_slice()).await,
            Err(RpcError::FrameTooLarge(_))
        ));
        Ok(())
    }
}
