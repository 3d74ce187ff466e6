//! One client connection: Kafka's size-prefixed frames in, responses out in request order.
//!
//! Requests are pipelined. The reader decodes each frame and starts its handler at once, in arrival order (so that
//! produce appends happen in the order the client sent them); handlers then finish concurrently (a produce waiting
//! for its fsync, a fetch waiting for data), and the writer sends their responses strictly in request order.
//!
//! Limits: a frame is at most `socket.request.max.bytes`; at most `queued.max.requests` requests are in flight; and
//! the request bytes in flight on one connection never exceed `socket.request.max.bytes` either, so a client that
//! pipelines large requests is slowed down rather than allowed to fill the broker's memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{
    mpsc, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, OwnedSemaphorePermit, RwLock, Semaphore,
};
use tokio::task::JoinHandle;

use super::shutdown::Shutdown;
use super::ConnectionLimits;
use crate::api::{self, KafkaApis, Reply};

/// Why a connection ended; only logged.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("frame size {0} is negative or larger than socket.request.max.bytes")]
    FrameSize(i32),
    #[error("idle for longer than connections.max.idle.ms")]
    Idle,
    #[error("closed by request handling: {0}")]
    Refused(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub async fn serve(
    apis: Arc<KafkaApis>,
    limits: ConnectionLimits,
    stream: TcpStream,
    shutdown: Shutdown,
) -> Result<(), ConnectionError> {
    let _ = stream.set_nodelay(true);
    // Kafka reports a member's host as "/<ip>" (Java's InetAddress.toString of an unresolved address).
    let client_host: Arc<str> = match stream.peer_addr() {
        Ok(peer) => format!("/{}", peer.ip()).into(),
        Err(_) => "".into(),
    };
    let (reader, writer) = stream.into_split();
    let (pending, queue) = mpsc::channel(limits.queued_max_requests);
    tokio::select! {
        result = read_requests(&apis, limits, &client_host, reader, pending, shutdown) => result,
        result = write_responses(writer, queue) => result,
    }
}

async fn read_requests(
    apis: &Arc<KafkaApis>,
    limits: ConnectionLimits,
    client_host: &Arc<str>,
    mut reader: tokio::net::tcp::OwnedReadHalf,
    pending: mpsc::Sender<InFlight>,
    mut shutdown: Shutdown,
) -> Result<(), ConnectionError> {
    let idle = Duration::from_millis(limits.connections_max_idle_ms);
    let max_frame = limits.socket_request_max_bytes;
    let budget = Arc::new(Semaphore::new(max_frame as usize));
    // Handlers of requests that may overlap hold this shared; any other request holds it exclusively, so it starts
    // after everything before it has finished and everything after it waits for it (see `api::may_overlap`).
    let order = Arc::new(RwLock::new(()));
    loop {
        let size = tokio::select! {
            read = tokio::time::timeout(idle, reader.read_i32()) => match read {
                Err(_) => return Err(ConnectionError::Idle),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Ok(size) => size?,
            },
            _ = shutdown.recv() => break,
        };
        if size < 0 || size as u32 > max_frame {
            return Err(ConnectionError::FrameSize(size));
        }
        let Ok(permit) = budget.clone().acquire_many_owned(size as u32).await else {
            return Ok(());
        };
        let mut frame = BytesMut::zeroed(size as usize);
        tokio::time::timeout(idle, reader.read_exact(&mut frame))
            .await
            .map_err(|_| ConnectionError::Idle)??;
        let frame = frame.freeze();
        let received = Instant::now();
        let api_key = frame
            .get(..2)
            .and_then(|k| ApiKey::try_from(i16::from_be_bytes([k[0], k[1]])).ok());
        let turn = if api::may_overlap(&frame) {
            Turn::Shared(order.clone().read_owned().await)
        } else {
            Turn::Exclusive(order.clone().write_owned().await)
        };
        let reply = apis.start(client_host, frame);
        let in_flight = InFlight {
            reply: tokio::spawn(async move {
                let reply = reply.await;
                drop(turn);
                reply
            }),
            _budget: permit,
            api_key,
            received,
        };
        if pending.send(in_flight).await.is_err() {
            return Ok(());
        }
    }
    // The client hung up its sending side, or the broker is stopping: read no more, but let the writer answer
    // what is already in flight. The writer ends the connection when its queue runs dry.
    drop(pending);
    std::future::pending().await
}

/// A handler's place in the connection's order; released when the handler finishes.
enum Turn {
    Shared(#[allow(dead_code)] OwnedRwLockReadGuard<()>),
    Exclusive(#[allow(dead_code)] OwnedRwLockWriteGuard<()>),
}

/// A request being handled; its share of the connection's byte budget returns once its response is written.
struct InFlight {
    reply: JoinHandle<Reply>,
    _budget: OwnedSemaphorePermit,
    /// For the request's TotalTimeMs: its API and when its last byte was read.
    api_key: Option<ApiKey>,
    received: Instant,
}

async fn write_responses(
    writer: tokio::net::tcp::OwnedWriteHalf,
    mut queue: mpsc::Receiver<InFlight>,
) -> Result<(), ConnectionError> {
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    while let Some(in_flight) = queue.recv().await {
        let reply = in_flight
            .reply
            .await
            .unwrap_or_else(|e| Reply::Close(format!("handler failed: {e}")));
        match reply {
            Reply::Frame(frame) => write_frame(&mut writer, frame).await?,
            Reply::None => {}
            Reply::Close(reason) => {
                writer.flush().await?;
                return Err(ConnectionError::Refused(reason));
            }
        }
        // Write out as soon as nothing more is ready, so a lone response is never held back.
        if queue.is_empty() {
            writer.flush().await?;
        }
        // A response still in the write buffer is counted as sent: it leaves with the next flush, at most the time
        // the later responses take.
        if let Some(api_key) = in_flight.api_key {
            crate::metrics::broker_metrics()
                .record_request_time(api_key, in_flight.received.elapsed());
        }
    }
    writer.flush().await?;
    Ok(())
}

async fn write_frame(
    writer: &mut BufWriter<tokio::net::tcp::OwnedWriteHalf>,
    frame: Bytes,
) -> std::io::Result<()> {
    writer.write_i32(frame.len() as i32).await?;
    writer.write_all(&frame).await
}
