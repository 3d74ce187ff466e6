//! The operations listener (`ops.listener`, `127.0.0.1:9644` unless configured, as Redpanda's admin port): plain
//! HTTP/1.1 for Prometheus and orchestrators.
//!
//! - `GET /metrics`: Prometheus text format (version 0.0.4).
//! - `GET /health`: 200 while the process serves at all (a liveness probe).
//! - `GET /ready`: 200 once the node has caught up with the metadata log and serves clients, 503 with the reason
//!   before (a readiness probe; see [`Operations::ready`]).
//!
//! Anything else is 404, a method other than GET or HEAD 405. At most [`MAX_CONNECTIONS`] at once, and a request's
//! headers must arrive within [`HEADER_TIMEOUT`]: the port is for scrapers, not for load.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::shutdown::Shutdown;

pub const MAX_CONNECTIONS: usize = 64;
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the listener serves; the node implements it.
pub trait Operations: Send + Sync + 'static {
    /// Every metric, in Prometheus's text format.
    fn metrics(&self) -> impl Future<Output = String> + Send;
    /// `Err(why)` until the node is ready for clients.
    fn ready(&self) -> Result<(), String>;
}

/// Serves `ops` on `listener` until shutdown.
pub async fn run<O: Operations>(listener: TcpListener, ops: Arc<O>, mut shutdown: Shutdown) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.recv() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "ops listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            continue;
        };
        let ops = ops.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let ops = ops.clone();
                async move { Ok::<_, Infallible>(respond(&*ops, request).await) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, "ops connection closed");
            }
            drop(permit);
        });
        while connections.try_join_next().is_some() {}
    }
    connections.abort_all();
}

async fn respond<O: Operations>(ops: &O, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match request.uri().path() {
        "/metrics" => {
            let mut response = text(StatusCode::OK, ops.metrics().await);
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS_TEXT));
            response
        }
        "/health" => text(StatusCode::OK, "ok\n".into()),
        "/ready" => match ops.ready() {
            Ok(()) => text(StatusCode::OK, "ready\n".into()),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: /metrics, /health, /ready\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
