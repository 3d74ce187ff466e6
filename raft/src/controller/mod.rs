//! KRaft's QuorumController: request handlers validate against the controller state and produce
//! records, the records are committed through Raft, and only replaying committed records changes
//! the state. Writes go one at a time, so a handler never validates against a state that another
//! write is about to change.

pub mod admin;
pub mod brokers;
pub mod channel;
pub mod handlers;
mod partition_change;
mod placement;
pub mod reassignment;
pub mod replication;
pub mod state;

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, ClientWriteError, Fatal, RaftError};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::ids::{BrokerEpoch, BrokerId, PartitionIndex, TopicId};
use crate::network::PeerContacts;
use crate::quorum::QuorumError;
use crate::raft_types::{NodeId, Raft};
use crate::record::{MetadataListener, MetadataRecord};
use crate::state_machine::state_read;
use brokers::{
    BrokerHeartbeatReply, BrokerHeartbeatRequest, BrokerHeartbeats, BrokerRegistrationRequest,
};
use handlers::ControllerResult;
use state::ControllerState;

/// The controller state, written by the state machine as it applies and read by the handlers.
pub(crate) type SharedState = Arc<RwLock<ControllerState>>;

/// How long a write waits for this node to confirm it leads and for its records to commit.
/// Without a quorum that never happens; callers get `Timeout` and may retry.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// One topic of a CreateTopics request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopicSpec {
    pub name: String,
    /// Resolved by the broker when the request said -1 (`num.partitions`).
    /// Ignored when `assignments` is given: the assignment decides.
    pub num_partitions: i32,
    /// Resolved by the broker when the request said -1 (`default.replication.factor`).
    /// Ignored when `assignments` is given. (Kafka answers INVALID_REQUEST when a request sets
    /// both an assignment and a count; that check belongs to the broker, which sees the request.)
    pub replication_factor: i16,
    /// Manual assignment; empty means the controller places the replicas.
    pub assignments: Vec<(PartitionIndex, Vec<BrokerId>)>,
    /// Topic configs, already validated by the broker.
    pub configs: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedTopic {
    pub name: String,
    pub topic_id: TopicId,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub configs: Vec<(String, String)>,
}

/// A topic named by a DeleteTopics request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TopicRef {
    Name(String),
    Id(TopicId),
}

impl fmt::Display for TopicRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicRef::Name(name) => write!(f, "'{name}'"),
            TopicRef::Id(id) => write!(f, "with id {id}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedTopic {
    pub name: String,
    pub topic_id: TopicId,
}

/// Why the controller refused or could not carry out a request; each variant is one Kafka error
/// code, and `Display` is the error message to send with it.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum ControllerError {
    /// TOPIC_ALREADY_EXISTS; holds the topic name.
    #[error("Topic '{0}' already exists.")]
    TopicAlreadyExists(String),
    /// INVALID_TOPIC_EXCEPTION
    #[error("{0}")]
    InvalidTopic(String),
    /// INVALID_PARTITIONS
    #[error("{0}")]
    InvalidPartitions(String),
    /// INVALID_REPLICATION_FACTOR
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// INVALID_REPLICA_ASSIGNMENT
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// INVALID_REQUEST (e.g. a topic named twice in one request)
    #[error("{0}")]
    InvalidRequest(String),
    /// INVALID_REGISTRATION
    #[error("{0}")]
    InvalidRegistration(String),
    /// DUPLICATE_BROKER_REGISTRATION: another incarnation of this node id is registered and still heartbeating.
    #[error("{0}")]
    DuplicateBrokerRegistration(String),
    /// STALE_BROKER_EPOCH: a heartbeat from an earlier registration of the broker.
    #[error("{0}")]
    StaleBrokerEpoch(String),
    /// BROKER_ID_NOT_REGISTERED
    #[error("{0}")]
    BrokerIdNotRegistered(String),
    /// INVALID_CONFIG: a config value the broker's schema refused.
    #[error("{0}")]
    InvalidConfig(String),
    /// UNKNOWN_TOPIC_OR_PARTITION; holds the topic name.
    #[error("Topic '{0}' does not exist.")]
    UnknownTopicOrPartition(String),
    /// UNKNOWN_TOPIC_ID
    #[error("Topic id {0} does not exist.")]
    UnknownTopicId(TopicId),
    /// INVALID_UPDATE_VERSION: an AlterPartition built on an older partition epoch.
    #[error("{0}")]
    InvalidUpdateVersion(String),
    /// FENCED_LEADER_EPOCH: a request from a leader of an earlier leader epoch.
    #[error("{0}")]
    FencedLeaderEpoch(String),
    /// NOT_LEADER_OR_FOLLOWER
    #[error("{0}")]
    NotLeaderOrFollower(String),
    /// INELIGIBLE_REPLICA: a new ISR with a fenced or unregistered broker.
    #[error("{0}")]
    IneligibleReplica(String),
    /// ELECTION_NOT_NEEDED: the partition already has the leader the election would give it.
    #[error("{0}")]
    ElectionNotNeeded(String),
    /// PREFERRED_LEADER_NOT_AVAILABLE
    #[error("{0}")]
    PreferredLeaderNotAvailable(String),
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE
    #[error("{0}")]
    EligibleLeadersNotAvailable(String),
    /// NO_REASSIGNMENT_IN_PROGRESS: a cancellation of a partition that has no reassignment to cancel.
    #[error("{0}")]
    NoReassignmentInProgress(String),
    /// NOT_CONTROLLER: this node does not lead the quorum; `MetadataQuorum::leader_id` says who.
    #[error("This node is not the active controller.")]
    NotController,
    /// REQUEST_TIMED_OUT: no quorum answered in time. The records may still commit later.
    #[error("Timed out waiting for the metadata quorum.")]
    Timeout,
    /// The quorum itself failed (storage error, shut down). Never sent between nodes: the channel answers a
    /// broker whose controller failed this way with `NotController`, so that it looks for another.
    #[error("metadata quorum: {0}")]
    #[serde(skip)]
    Quorum(#[source] QuorumError),
}

/// Why a write could not commit; one failure answers every topic of the request, so it is
/// kept cloneable and turned into a `ControllerError` per topic.
#[derive(Clone, Debug)]
enum WriteFailure {
    NotController,
    Timeout,
    Fatal(Box<Fatal<NodeId>>),
}

impl WriteFailure {
    fn to_error(&self) -> ControllerError {
        match self {
            WriteFailure::NotController => ControllerError::NotController,
            WriteFailure::Timeout => ControllerError::Timeout,
            WriteFailure::Fatal(fatal) => {
                ControllerError::Quorum(QuorumError::Stopped(fatal.clone()))
            }
        }
    }
}

pub struct QuorumController {
    raft: Raft,
    state: SharedState,
    /// This node's broker side of the log: a write returns once it has acted on the records too.
    listener: Arc<dyn MetadataListener>,
    /// How config values are checked; the broker's knowledge, lent to the controller at start.
    schema: Arc<dyn admin::ConfigSchema>,
    /// Serialises writes; holds where the next round-robin placement starts.
    writes: Mutex<usize>,
    /// Broker sessions, kept while this node leads.
    heartbeats: std::sync::Mutex<BrokerHeartbeats>,
    /// When this node, leading, last reached each peer (DescribeQuorum's timestamps).
    pub(crate) contacts: Arc<PeerContacts>,
}

impl QuorumController {
    pub(crate) fn new(
        raft: Raft,
        state: SharedState,
        listener: Arc<dyn MetadataListener>,
        schema: Arc<dyn admin::ConfigSchema>,
        broker_session_timeout: Duration,
        contacts: Arc<PeerContacts>,
    ) -> QuorumController {
        // Kafka starts placement at a random broker so that restarts do not pile the first
        // partitions of every new topic onto the same broker.
        let start = TopicId::random().0.as_u128() as usize;
        QuorumController {
            raft,
            state,
            listener,
            schema,
            writes: Mutex::new(start),
            heartbeats: std::sync::Mutex::new(BrokerHeartbeats::new(broker_session_timeout)),
            contacts,
        }
    }

    /// Whether this node is the active controller, as far as it knows.
    pub fn is_active(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        metrics.current_leader == Some(metrics.id)
    }

    fn heartbeats(&self) -> std::sync::MutexGuard<'_, BrokerHeartbeats> {
        self.heartbeats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells the session tracker whether this node leads, and in which term.
    fn note_leadership(&self, now: Instant) {
        let term = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow();
            (metrics.current_leader == Some(metrics.id)).then_some(metrics.current_term)
        };
        self.heartbeats().set_leading(term, now);
    }

    /// Reads the controller state as of the last applied entry (on a follower it may lag).
    pub fn with_state<R>(&self, read: impl FnOnce(&ControllerState) -> R) -> R {
        read(&state_read(&self.state))
    }

    pub async fn create_topics(
        &self,
        topics: Vec<CreateTopicSpec>,
        validate_only: bool,
    ) -> Vec<Result<CreatedTopic, ControllerError>> {
        let mut placement_start = self.writes.lock().await;
        if let Err(failure) = self.catch_up().await {
            return topics.iter().map(|_| Err(failure.to_error())).collect();
        }
        let result = self.with_state(|state| {
            handlers::create_topics(state, &topics, *placement_start, &mut TopicId::random)
        });
        *placement_start = placement_start.wrapping_add(topics.len());
        if validate_only {
            return result.response;
        }
        self.commit_each(result).await
    }

    pub async fn delete_topics(
        &self,
        topics: Vec<TopicRef>,
    ) -> Vec<Result<DeletedTopic, ControllerError>> {
        let _write = self.writes.lock().await;
        if let Err(failure) = self.catch_up().await {
            return topics.iter().map(|_| Err(failure.to_error())).collect();
        }
        let result = self.with_state(|state| handlers::delete_topics(state, &topics));
        self.commit_each(result).await
    }

    /// Grows topics' partition counts; `validate_only` checks and writes nothing.
    pub async fn create_partitions(
        &self,
        topics: Vec<admin::CreatePartitionsSpec>,
        validate_only: bool,
    ) -> Vec<Result<(), ControllerError>> {
        let mut placement_start = self.writes.lock().await;
        if let Err(failure) = self.catch_up().await {
            return topics.iter().map(|_| Err(failure.to_error())).collect();
        }
        let result =
            self.with_state(|state| admin::create_partitions(state, &topics, *placement_start));
        *placement_start = placement_start.wrapping_add(topics.len());
        if validate_only {
            return result.response;
        }
        self.commit_each(result).await
    }

    /// Changes dynamic configs of topics and brokers; `validate_only` checks and writes nothing.
    pub async fn alter_configs(
        &self,
        alterations: Vec<admin::ConfigAlteration>,
        validate_only: bool,
    ) -> Vec<Result<(), ControllerError>> {
        let schema = &*self.schema;
        let _write = self.writes.lock().await;
        if let Err(failure) = self.catch_up().await {
            return alterations
                .iter()
                .map(|_| Err(failure.to_error()))
                .collect();
        }
        let result = self.with_state(|state| admin::alter_configs(state, &alterations, schema));
        if validate_only {
            return result.response;
        }
        self.commit_each(result).await
    }

    /// Kafka's BrokerRegistration: registers a new incarnation of a broker (fenced until it catches up) and
    /// answers its broker epoch; a retry of the same incarnation answers the same epoch.
    pub async fn register_broker(
        &self,
        request: BrokerRegistrationRequest,
    ) -> Result<BrokerEpoch, ControllerError> {
        let _write = self.writes.lock().await;
        self.catch_up().await.map_err(|f| f.to_error())?;
        let now = Instant::now();
        self.note_leadership(now);
        let alive = self.heartbeats().is_alive(request.broker_id, now);
        let result = self.with_state(|state| brokers::register_broker(state, &request, alive));
        if let Some(epoch) = result.response? {
            return Ok(epoch);
        }
        self.write(result.records).await.map_err(|f| f.to_error())?;
        self.heartbeats().touch(request.broker_id, Instant::now());
        // Writes go one at a time and wait for their own apply, so the registration read back is this one.
        self.with_state(|state| state.broker(request.broker_id).map(|b| b.broker_epoch))
            .ok_or(ControllerError::NotController)
    }

    /// Kafka's BrokerHeartbeat: keeps the broker's session alive, unfences it once caught up, fences it when it
    /// asks to be fenced or to shut down.
    pub async fn broker_heartbeat(
        &self,
        request: BrokerHeartbeatRequest,
    ) -> Result<BrokerHeartbeatReply, ControllerError> {
        if !self.is_active() {
            return Err(ControllerError::NotController);
        }
        let now = Instant::now();
        self.note_leadership(now);
        let result = self.with_state(|state| brokers::broker_heartbeat(state, &request));
        let reply = result.response?;
        self.heartbeats().touch(request.broker_id, now);
        if result.records.is_empty() {
            return Ok(reply);
        }
        let _write = self.writes.lock().await;
        self.catch_up().await.map_err(|f| f.to_error())?;
        // Decided again under the write lock: another write may have changed the registration meanwhile.
        let (reply, records) = self.with_state(|state| {
            let result = brokers::broker_heartbeat(state, &request);
            let records = replication::with_partition_changes(state, result.records);
            (result.response, records)
        });
        let reply = reply?;
        if !records.is_empty() {
            self.write(records).await.map_err(|f| f.to_error())?;
        }
        Ok(reply)
    }

    /// Fences the brokers whose sessions expired (`broker.session.timeout.ms` without a heartbeat); run
    /// periodically on every controller, it does something only on the active one.
    pub async fn fence_expired_brokers(&self) -> Result<(), ControllerError> {
        self.note_leadership(Instant::now());
        let expired = self.with_state(|state| self.heartbeats().expired(state, Instant::now()));
        if expired.is_empty() {
            return Ok(());
        }
        let _write = self.writes.lock().await;
        self.catch_up().await.map_err(|f| f.to_error())?;
        let records = self.with_state(|state| {
            replication::with_partition_changes(state, brokers::fence_brokers(state, &expired))
        });
        if records.is_empty() {
            return Ok(());
        }
        tracing::info!(brokers = ?expired, "fencing brokers whose sessions expired");
        self.write(records).await.map_err(|f| f.to_error())
    }

    /// Has the metadata log replicated to a broker-only node (an observer, openraft's learner) at `address`; a node
    /// already following from there changes nothing.
    pub async fn add_observer(
        &self,
        broker_id: BrokerId,
        address: String,
    ) -> Result<(), ControllerError> {
        let node_id = broker_id.to_node_id().ok_or_else(|| {
            ControllerError::InvalidRequest(format!("Broker id {broker_id} is negative."))
        })?;
        let _write = self.writes.lock().await;
        self.catch_up().await.map_err(|f| f.to_error())?;
        let (is_voter, known) = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow();
            let membership = metrics.membership_config.membership();
            let is_voter = membership.voter_ids().any(|id| id == node_id);
            (
                is_voter,
                membership.get_node(&node_id).map(|n| n.addr.clone()),
            )
        };
        if is_voter {
            return Err(ControllerError::InvalidRequest(format!(
                "Node {broker_id} is a voter of the metadata quorum; it cannot also be an observer."
            )));
        }
        if known.as_deref() == Some(address.as_str()) {
            return Ok(());
        }
        let node = openraft::BasicNode::new(&address);
        let changed = match known {
            None => {
                tokio::time::timeout(WRITE_TIMEOUT, self.raft.add_learner(node_id, node, false))
                    .await
            }
            Some(_) => {
                let change =
                    openraft::ChangeMembers::SetNodes(std::collections::BTreeMap::from([(
                        node_id, node,
                    )]));
                tokio::time::timeout(WRITE_TIMEOUT, self.raft.change_membership(change, true)).await
            }
        };
        match changed {
            Ok(Ok(_)) => {
                tracing::info!(broker_id = broker_id.0, %address, "added an observer of the metadata log");
                Ok(())
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                Err(ControllerError::NotController)
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                tracing::debug!(error = %e, "adding an observer: another membership change is in progress");
                Err(ControllerError::Timeout)
            }
            Ok(Err(RaftError::Fatal(fatal))) => Err(ControllerError::Quorum(QuorumError::Stopped(
                Box::new(fatal),
            ))),
            Err(_) => Err(ControllerError::Timeout),
        }
    }

    /// Kafka's AllocateProducerIds: commits the next block of producer ids for `broker_id`.
    pub async fn allocate_producer_ids(
        &self,
        broker_id: BrokerId,
    ) -> Result<handlers::ProducerIdBlock, ControllerError> {
        let _write = self.writes.lock().await;
        self.catch_up().await.map_err(|f| f.to_error())?;
        let result = self.with_state(|state| handlers::allocate_producer_ids(state, broker_id));
        let block = result.response?;
        self.write(result.records).await.map_err(|f| f.to_error())?;
        Ok(block)
    }

    /// Confirms this node leads and has applied everything committed, so that handlers see
    /// every earlier write (a new leader may still be applying its predecessor's entries).
    async fn catch_up(&self) -> Result<(), WriteFailure> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.raft.ensure_linearizable()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_))))
            | Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)))) => {
                Err(WriteFailure::NotController)
            }
            Ok(Err(RaftError::Fatal(fatal))) => Err(WriteFailure::Fatal(Box::new(fatal))),
            Err(_) => Err(WriteFailure::Timeout),
        }
    }

    /// Commits the records as one Raft entry; returns once this node applied them and its broker side (the
    /// [`MetadataListener`]) acted on them, so the caller's next read of the broker's image includes them.
    async fn write(&self, records: Vec<MetadataRecord>) -> Result<(), WriteFailure> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.raft.client_write(records)).await {
            Ok(Ok(_)) => {
                if tokio::time::timeout(WRITE_TIMEOUT, self.listener.caught_up())
                    .await
                    .is_err()
                {
                    tracing::warn!("committed, but the broker's image has not caught up yet");
                }
                Ok(())
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                Err(WriteFailure::NotController)
            }
            // Only membership changes fail this way; a records entry never does.
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                tracing::error!(error = %e, "metadata write refused as a membership change");
                Err(WriteFailure::NotController)
            }
            Ok(Err(RaftError::Fatal(fatal))) => Err(WriteFailure::Fatal(Box::new(fatal))),
            Err(_) => Err(WriteFailure::Timeout),
        }
    }

    async fn commit_each<T>(
        &self,
        result: ControllerResult<Vec<Result<T, ControllerError>>>,
    ) -> Vec<Result<T, ControllerError>> {
        if result.records.is_empty() {
            return result.response;
        }
        match self.write(result.records).await {
            Ok(()) => result.response,
            Err(failure) => result
                .response
                .into_iter()
                .map(|r| r.and_then(|_| Err(failure.to_error())))
                .collect(),
        }
    }
}
