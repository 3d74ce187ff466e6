//! The transport: the Kafka listener, one task per connection, framing, per-connection ordering, limits and
//! shutdown. It knows nothing of what requests mean.
//!
//! The one way up is [`KafkaApis`](crate::api::KafkaApis): a connection hands it each request frame
//! ([`KafkaApis::start`](crate::api::KafkaApis::start)) and asks whether a frame may overlap its neighbours
//! ([`may_overlap`](crate::api::may_overlap)); it writes back the [`Reply`](crate::api::Reply)s it gets.
//! Imports point one way: `server` uses `api`, and nothing in `api` uses `server`.

mod connection;
mod listener;
pub mod ops;
mod shutdown;

pub use listener::run;
pub use shutdown::Shutdown;

use crate::config::BrokerConfig;

/// The limits the transport enforces, with Kafka's config names.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// `max.connections`: connections beyond it are closed at accept.
    pub max_connections: usize,
    /// `queued.max.requests`: requests in flight on one connection.
    pub queued_max_requests: usize,
    /// `socket.request.max.bytes`: one frame, and the request bytes in flight on one connection.
    pub socket_request_max_bytes: u32,
    /// `connections.max.idle.ms`: a connection silent for longer is closed.
    pub connections_max_idle_ms: u64,
}

impl ConnectionLimits {
    pub fn from_config(config: &BrokerConfig) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: config.max_connections,
            queued_max_requests: config.queued_max_requests,
            socket_request_max_bytes: config.socket_request_max_bytes,
            connections_max_idle_ms: config.connections_max_idle_ms,
        }
    }
}
