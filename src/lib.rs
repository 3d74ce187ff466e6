//! Ferrite: a Kafka-wire-compatible message broker.
//!
//! A node runs a broker (the Kafka listener, partition logs) and, in combined mode, a controller (a voter of the
//! metadata quorum in `ferrite-raft`). Start reading at [`node::Node`]: it wires the pieces together.

pub mod admin;
pub mod api;
pub mod broker_lifecycle;
pub mod config;
pub mod coordinator;
/// Every id, offset and epoch newtype, defined once in `ferrite-raft` (the metadata log needs them too).
pub use ferrite_raft::ids;
pub mod metadata;
pub mod metrics;
pub mod node;
pub mod replica;
pub mod server;
pub mod storage;
