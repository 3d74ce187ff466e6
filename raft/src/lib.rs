//! Ferrite's KRaft-style metadata quorum, on openraft.
//!
//! The controllers replicate a metadata log of [`MetadataRecord`]s through Raft. The
//! [`QuorumController`] on the leader turns requests into records; every node applies committed
//! records to its controller state and hands them to the broker's [`MetadataListener`].
//!
//! Storage: the Raft log, vote and committed position live in redb (`<dir>/raft.redb`, fsynced
//! on every commit); the state is in memory and snapshotted as records to `<dir>/snapshots/`.

pub mod controller;
pub mod ids;
mod log_store;
mod network;
mod quorum;
mod raft_types;
pub mod record;
mod rpc;
mod rpc_server;
mod snapshot;
mod state_machine;
mod timeouts;

pub use controller::admin::{ConfigAlteration, ConfigOp, ConfigSchema, CreatePartitionsSpec};
pub use controller::brokers::{
    BrokerHeartbeatReply, BrokerHeartbeatRequest, BrokerRegistrationRequest,
};
pub use controller::channel::ControllerChannel;
pub use controller::handlers::{validate_topic_name, ProducerIdBlock};
pub use controller::reassignment::{
    OngoingReassignment, ReassignmentFilter, ReassignmentResult, ReassignmentTarget,
};
pub use controller::replication::{
    AlterPartitionRequest, AlterPartitionResult, ElectLeadersResult, ElectionType, IsrChange,
    NO_LEADER,
};
pub use controller::state::{
    replay_broker, BrokerRegistration, ControllerState, PartitionRegistration,
};
pub use controller::{
    ControllerError, CreateTopicSpec, CreatedTopic, DeletedTopic, QuorumController, TopicRef,
};
pub use ids::{
    BrokerEpoch, BrokerId, IncarnationId, LeaderEpoch, PartitionEpoch, PartitionIndex, TopicId,
};
pub use log_store::LogStoreError;
pub use quorum::{
    MetadataQuorum, QuorumConfig, QuorumError, QuorumReplica, QuorumStatus,
    LEADER_IMBALANCE_CHECK_INTERVAL,
};
pub use record::{ConfigResource, MetadataListener, MetadataRecord};
pub use snapshot::SnapshotError;
pub use timeouts::QuorumTimeouts;
