//! The accept loop: one task per connection, at most `max.connections` at once.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::connection;
use super::shutdown::Shutdown;
use super::ConnectionLimits;
use crate::api::KafkaApis;

/// Accepts clients on `listener` until shutdown, serving each connection's requests through `apis`.
pub async fn run(
    apis: Arc<KafkaApis>,
    limits: ConnectionLimits,
    listener: TcpListener,
    mut shutdown: Shutdown,
) {
    let limit = Arc::new(Semaphore::new(
        limits.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.recv() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "max.connections reached; refusing connection");
            drop(stream);
            continue;
        };
        let (apis, shutdown) = (apis.clone(), shutdown.clone());
        connections.spawn(async move {
            let metrics = crate::metrics::broker_metrics();
            metrics.connection_opened();
            match connection::serve(apis, limits, stream, shutdown).await {
                Ok(()) => tracing::debug!(%peer, "connection closed"),
                Err(error) => tracing::debug!(%peer, %error, "connection closed"),
            }
            metrics.connection_closed();
            drop(permit);
        });
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    // Connections stop reading at once and finish the requests in flight; give them a moment, then drop them.
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        connections.abort_all();
    }
}
