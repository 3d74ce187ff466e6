//! Ferrite: a Kafka-wire-compatible message broker.
//!
//! A node runs a broker (the Kafka listener, partition logs) and, in combined mode, a controller (a voter of the
//! metadata quorum in `ferrite-raft`). Start reading at [`server::Server`]: it wires the pieces together.

pub mod admin;
pub mod api;
pub mod config;
pub mod coordinator;
pub mod metadata;
pub mod replica;
pub mod server;
pub mod storage;
