//! The way a broker reaches the active controller wherever it runs (Kafka's NodeToControllerChannelManager):
//! the local [`QuorumController`] when this node leads the quorum, otherwise the leader's controller over the
//! CONTROLLER listener. Requests that need the controller (topic and config changes, registrations, heartbeats,
//! producer id blocks) go through it, so any broker can serve them.
//!
//! A request that finds no leader, or a node that no longer leads, is retried against the new leader until its
//! deadline; then the caller hears `Timeout` (REQUEST_TIMED_OUT) or `NotController`, both retriable for clients.
//! After a forwarded write the channel waits until this node has applied it, so that the caller's next read of
//! its own MetadataImage includes what it just changed, as it does when the controller is local.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::controller::admin::{ConfigAlteration, CreatePartitionsSpec};
use crate::controller::brokers::{
    BrokerHeartbeatReply, BrokerHeartbeatRequest, BrokerRegistrationRequest,
};
use crate::controller::handlers::ProducerIdBlock;
use crate::controller::reassignment::{
    OngoingReassignment, ReassignmentFilter, ReassignmentResult, ReassignmentTarget,
};
use crate::controller::replication::{
    AlterPartitionRequest, AlterPartitionResult, ElectLeadersResult, ElectionType,
};
use crate::controller::{
    ControllerError, CreateTopicSpec, CreatedTopic, DeletedTopic, QuorumController, TopicRef,
};
use crate::ids::{BrokerEpoch, BrokerId, PartitionIndex};
use crate::network::PeerConnection;
use crate::quorum::QuorumStatus;
use crate::raft_types::{NodeId, Raft};
use crate::record::MetadataListener;
use crate::timeouts::QuorumTimeouts;

/// How long a request that needs the controller keeps looking for one, unless its caller says otherwise; the same
/// bound as a local write.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum ControllerRequest {
    CreateTopics {
        topics: Vec<CreateTopicSpec>,
        validate_only: bool,
    },
    DeleteTopics {
        topics: Vec<TopicRef>,
    },
    CreatePartitions {
        topics: Vec<CreatePartitionsSpec>,
        validate_only: bool,
    },
    AlterConfigs {
        alterations: Vec<ConfigAlteration>,
        validate_only: bool,
    },
    RegisterBroker(BrokerRegistrationRequest),
    BrokerHeartbeat(BrokerHeartbeatRequest),
    AllocateProducerIds {
        broker_id: BrokerId,
    },
    AlterPartition(AlterPartitionRequest),
    ElectLeaders {
        election: ElectionType,
        /// `None`: every partition.
        partitions: Option<Vec<(TopicRef, PartitionIndex)>>,
    },
    AlterPartitionReassignments {
        targets: Vec<ReassignmentTarget>,
        allow_replication_factor_change: bool,
    },
    ListPartitionReassignments {
        topics: ReassignmentFilter,
    },
    /// Kafka's DescribeQuorum, which brokers forward to the active controller.
    DescribeQuorum,
    /// Not Kafka's: a broker-only node asks to follow the metadata log (see `QuorumController::add_observer`).
    AddObserver {
        broker_id: BrokerId,
        address: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ControllerResponse {
    /// The node asked does not lead the quorum: ask the leader.
    NotController,
    CreateTopics(Vec<Result<CreatedTopic, ControllerError>>),
    DeleteTopics(Vec<Result<DeletedTopic, ControllerError>>),
    CreatePartitions(Vec<Result<(), ControllerError>>),
    AlterConfigs(Vec<Result<(), ControllerError>>),
    RegisterBroker(Result<BrokerEpoch, ControllerError>),
    BrokerHeartbeat(Result<BrokerHeartbeatReply, ControllerError>),
    AllocateProducerIds(Result<ProducerIdBlock, ControllerError>),
    AlterPartition(Result<Vec<AlterPartitionResult>, ControllerError>),
    ElectLeaders(Result<Vec<ElectLeadersResult>, ControllerError>),
    AlterPartitionReassignments(Result<Vec<ReassignmentResult>, ControllerError>),
    ListPartitionReassignments(Result<Vec<OngoingReassignment>, ControllerError>),
    AddObserver(Result<(), ControllerError>),
    DescribeQuorum(QuorumStatus),
}

/// A forwarded request's answer, with how far the controller's log was applied if the request wrote to it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ControllerReply {
    pub(crate) written_up_to: Option<u64>,
    pub(crate) response: ControllerResponse,
}

/// Carries out a request on this node's controller. A quorum failure is answered as `NotController`: it is not
/// sendable, and the broker that asked does best to look for another leader.
pub(crate) async fn handle(
    controller: &QuorumController,
    request: ControllerRequest,
) -> ControllerResponse {
    fn sendable<T>(result: Result<T, ControllerError>) -> Result<T, ControllerError> {
        result.map_err(|error| match error {
            ControllerError::Quorum(_) => ControllerError::NotController,
            other => other,
        })
    }
    fn each<T>(results: Vec<Result<T, ControllerError>>) -> Vec<Result<T, ControllerError>> {
        results.into_iter().map(sendable).collect()
    }
    if !controller.is_active() {
        return ControllerResponse::NotController;
    }
    match request {
        ControllerRequest::CreateTopics {
            topics,
            validate_only,
        } => ControllerResponse::CreateTopics(each(
            controller.create_topics(topics, validate_only).await,
        )),
        ControllerRequest::DeleteTopics { topics } => {
            ControllerResponse::DeleteTopics(each(controller.delete_topics(topics).await))
        }
        ControllerRequest::CreatePartitions {
            topics,
            validate_only,
        } => ControllerResponse::CreatePartitions(each(
            controller.create_partitions(topics, validate_only).await,
        )),
        ControllerRequest::AlterConfigs {
            alterations,
            validate_only,
        } => ControllerResponse::AlterConfigs(each(
            controller.alter_configs(alterations, validate_only).await,
        )),
        ControllerRequest::RegisterBroker(request) => {
            ControllerResponse::RegisterBroker(sendable(controller.register_broker(request).await))
        }
        ControllerRequest::BrokerHeartbeat(request) => ControllerResponse::BrokerHeartbeat(
            sendable(controller.broker_heartbeat(request).await),
        ),
        ControllerRequest::AllocateProducerIds { broker_id } => {
            ControllerResponse::AllocateProducerIds(sendable(
                controller.allocate_producer_ids(broker_id).await,
            ))
        }
        ControllerRequest::AlterPartition(request) => {
            ControllerResponse::AlterPartition(sendable(controller.alter_partition(request).await))
        }
        ControllerRequest::ElectLeaders {
            election,
            partitions,
        } => ControllerResponse::ElectLeaders(sendable(
            controller.elect_leaders(election, partitions).await,
        )),
        ControllerRequest::AlterPartitionReassignments {
            targets,
            allow_replication_factor_change,
        } => ControllerResponse::AlterPartitionReassignments(sendable(
            controller
                .alter_partition_reassignments(targets, allow_replication_factor_change)
                .await,
        )),
        ControllerRequest::ListPartitionReassignments { topics } => {
            ControllerResponse::ListPartitionReassignments(sendable(
                controller.list_partition_reassignments(topics).await,
            ))
        }
        ControllerRequest::DescribeQuorum => ControllerResponse::DescribeQuorum(
            crate::quorum::status_of(&controller.raft, &controller.contacts),
        ),
        ControllerRequest::AddObserver { broker_id, address } => ControllerResponse::AddObserver(
            sendable(controller.add_observer(broker_id, address).await),
        ),
    }
}

/// A handle on the active controller, wherever it is; clones share connections.
#[derive(Clone)]
pub struct ControllerChannel {
    shared: Arc<ChannelState>,
}

struct ChannelState {
    node_id: NodeId,
    cluster_id: Arc<str>,
    raft: Raft,
    /// This node's own controller, used when it leads.
    local: Arc<QuorumController>,
    /// `controller.quorum.voters`: where each controller listens.
    voters: BTreeMap<NodeId, String>,
    listener: Arc<dyn MetadataListener>,
    /// `controller.quorum.retry.backoff.ms` between attempts, `.request.timeout.ms` to dial.
    timeouts: QuorumTimeouts,
    /// Connections not in use, by controller; a request takes one (or dials) and gives it back when done, so
    /// that a slow write does not hold up heartbeats.
    idle: Mutex<BTreeMap<NodeId, Vec<PeerConnection>>>,
}

impl ControllerChannel {
    pub(crate) fn new(
        node_id: NodeId,
        cluster_id: Arc<str>,
        raft: Raft,
        local: Arc<QuorumController>,
        voters: BTreeMap<NodeId, String>,
        listener: Arc<dyn MetadataListener>,
        timeouts: QuorumTimeouts,
    ) -> ControllerChannel {
        ControllerChannel {
            shared: Arc::new(ChannelState {
                node_id,
                cluster_id,
                raft,
                local,
                voters,
                listener,
                timeouts,
                idle: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// `timeout` bounds the search for a controller (CreateTopics' `timeout_ms`); a local write has its own.
    pub async fn create_topics(
        &self,
        topics: Vec<CreateTopicSpec>,
        validate_only: bool,
        timeout: Duration,
    ) -> Vec<Result<CreatedTopic, ControllerError>> {
        let count = topics.len();
        let request = ControllerRequest::CreateTopics {
            topics,
            validate_only,
        };
        match self.send(request, timeout).await {
            Ok(ControllerResponse::CreateTopics(results)) => results,
            other => failed_each(count, other),
        }
    }

    pub async fn delete_topics(
        &self,
        topics: Vec<TopicRef>,
        timeout: Duration,
    ) -> Vec<Result<DeletedTopic, ControllerError>> {
        let count = topics.len();
        match self
            .send(ControllerRequest::DeleteTopics { topics }, timeout)
            .await
        {
            Ok(ControllerResponse::DeleteTopics(results)) => results,
            other => failed_each(count, other),
        }
    }

    pub async fn create_partitions(
        &self,
        topics: Vec<CreatePartitionsSpec>,
        validate_only: bool,
        timeout: Duration,
    ) -> Vec<Result<(), ControllerError>> {
        let count = topics.len();
        let request = ControllerRequest::CreatePartitions {
            topics,
            validate_only,
        };
        match self.send(request, timeout).await {
            Ok(ControllerResponse::CreatePartitions(results)) => results,
            other => failed_each(count, other),
        }
    }

    pub async fn alter_configs(
        &self,
        alterations: Vec<ConfigAlteration>,
        validate_only: bool,
    ) -> Vec<Result<(), ControllerError>> {
        let count = alterations.len();
        let request = ControllerRequest::AlterConfigs {
            alterations,
            validate_only,
        };
        match self.send(request, REQUEST_TIMEOUT).await {
            Ok(ControllerResponse::AlterConfigs(results)) => results,
            other => failed_each(count, other),
        }
    }

    pub async fn register_broker(
        &self,
        request: BrokerRegistrationRequest,
        timeout: Duration,
    ) -> Result<BrokerEpoch, ControllerError> {
        match self
            .send(ControllerRequest::RegisterBroker(request), timeout)
            .await?
        {
            ControllerResponse::RegisterBroker(result) => result,
            other => Err(unexpected(other)),
        }
    }

    pub async fn broker_heartbeat(
        &self,
        request: BrokerHeartbeatRequest,
        timeout: Duration,
    ) -> Result<BrokerHeartbeatReply, ControllerError> {
        match self
            .send(ControllerRequest::BrokerHeartbeat(request), timeout)
            .await?
        {
            ControllerResponse::BrokerHeartbeat(result) => result,
            other => Err(unexpected(other)),
        }
    }

    /// Kafka's AllocateProducerIds.
    pub async fn allocate_producer_ids(
        &self,
        broker_id: BrokerId,
    ) -> Result<ProducerIdBlock, ControllerError> {
        match self
            .send(
                ControllerRequest::AllocateProducerIds { broker_id },
                REQUEST_TIMEOUT,
            )
            .await?
        {
            ControllerResponse::AllocateProducerIds(result) => result,
            other => Err(unexpected(other)),
        }
    }

    /// Kafka's AlterPartition, sent by a partition leader.
    pub async fn alter_partition(
        &self,
        request: AlterPartitionRequest,
    ) -> Result<Vec<AlterPartitionResult>, ControllerError> {
        match self
            .send(ControllerRequest::AlterPartition(request), REQUEST_TIMEOUT)
            .await?
        {
            ControllerResponse::AlterPartition(result) => result,
            other => Err(unexpected(other)),
        }
    }

    /// Kafka's ElectLeaders; `partitions: None` elects for every partition.
    pub async fn elect_leaders(
        &self,
        election: ElectionType,
        partitions: Option<Vec<(TopicRef, PartitionIndex)>>,
    ) -> Result<Vec<ElectLeadersResult>, ControllerError> {
        let request = ControllerRequest::ElectLeaders {
            election,
            partitions,
        };
        match self.send(request, REQUEST_TIMEOUT).await? {
            ControllerResponse::ElectLeaders(result) => result,
            other => Err(unexpected(other)),
        }
    }

    /// Kafka's AlterPartitionReassignments; `timeout` bounds the search for a controller (the request's
    /// `timeout_ms`).
    pub async fn alter_partition_reassignments(
        &self,
        targets: Vec<ReassignmentTarget>,
        allow_replication_factor_change: bool,
        timeout: Duration,
    ) -> Result<Vec<ReassignmentResult>, ControllerError> {
        let request = ControllerRequest::AlterPartitionReassignments {
            targets,
            allow_replication_factor_change,
        };
        match self.send(request, timeout).await? {
            ControllerResponse::AlterPartitionReassignments(result) => result,
            other => Err(unexpected(other)),
        }
    }

    /// Kafka's ListPartitionReassignments; `topics: None` lists every partition being reassigned.
    pub async fn list_partition_reassignments(
        &self,
        topics: ReassignmentFilter,
        timeout: Duration,
    ) -> Result<Vec<OngoingReassignment>, ControllerError> {
        let request = ControllerRequest::ListPartitionReassignments { topics };
        match self.send(request, timeout).await? {
            ControllerResponse::ListPartitionReassignments(result) => result,
            other => Err(unexpected(other)),
        }
    }

    /// The quorum as the active controller sees it.
    pub(crate) async fn describe_quorum(&self) -> Result<QuorumStatus, ControllerError> {
        match self
            .send(
                ControllerRequest::DescribeQuorum,
                self.shared.timeouts.request_timeout(),
            )
            .await?
        {
            ControllerResponse::DescribeQuorum(status) => Ok(status),
            other => Err(unexpected(other)),
        }
    }

    /// Asks the active controller to replicate the metadata log to this broker-only node at `address`.
    pub(crate) async fn add_observer(
        &self,
        broker_id: BrokerId,
        address: String,
    ) -> Result<(), ControllerError> {
        let request = ControllerRequest::AddObserver { broker_id, address };
        match self.send(request, REQUEST_TIMEOUT).await? {
            ControllerResponse::AddObserver(result) => result,
            other => Err(unexpected(other)),
        }
    }

    /// Sends the request to whichever controller leads, following leadership changes until `timeout`. While no
    /// leader is known (a new observer hears of none until it is added), the voters are asked in turn: only the
    /// leader carries a request out.
    async fn send(
        &self,
        request: ControllerRequest,
        timeout: Duration,
    ) -> Result<ControllerResponse, ControllerError> {
        let deadline = Instant::now() + timeout;
        let mut metrics = self.shared.raft.metrics();
        let mut probe = self.shared.voters.keys().copied().cycle();
        loop {
            let leader = metrics.borrow_and_update().current_leader;
            let answer = match leader {
                Some(leader) if leader == self.shared.node_id => {
                    Some(handle(&self.shared.local, request.clone()).await)
                }
                Some(leader) => self.forward(leader, &request, deadline).await,
                None => match probe.next() {
                    Some(voter) if voter != self.shared.node_id => {
                        self.forward(voter, &request, deadline).await
                    }
                    _ => None,
                },
            };
            match answer {
                Some(ControllerResponse::NotController) | None => {}
                Some(response) => return Ok(response),
            }
            let backoff = self.shared.timeouts.retry_backoff();
            if Instant::now() + backoff >= deadline {
                return Err(match leader {
                    Some(_) => ControllerError::Timeout,
                    None => ControllerError::NotController,
                });
            }
            // Wake early when the leader changes.
            let _ = tokio::time::timeout(backoff, metrics.changed()).await;
        }
    }

    /// One attempt at the remote leader; `None` when it could not be reached or did not answer in time.
    async fn forward(
        &self,
        leader: NodeId,
        request: &ControllerRequest,
        deadline: Instant,
    ) -> Option<ControllerResponse> {
        let state = &self.shared;
        let addr = state.voters.get(&leader)?;
        let connection = state
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&leader)
            .and_then(Vec::pop);
        let mut connection = connection.unwrap_or_else(|| {
            PeerConnection::new(
                state.node_id,
                leader,
                addr.clone(),
                state.cluster_id.clone(),
                state.timeouts.request_timeout(),
            )
        });
        let ttl = deadline.saturating_duration_since(Instant::now());
        let reply = connection.controller(request, ttl).await;
        if reply.is_some() {
            state
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(leader)
                .or_default()
                .push(connection);
        }
        let reply = reply?;
        if let Some(offset) = reply.written_up_to {
            let ttl = deadline.saturating_duration_since(Instant::now());
            let applied = state
                .raft
                .wait(Some(ttl))
                .applied_index_at_least(Some(offset), "applying a forwarded write")
                .await;
            if applied.is_ok() {
                let _ = tokio::time::timeout(ttl, state.listener.caught_up()).await;
            } else {
                tracing::debug!(
                    offset,
                    "a forwarded write committed, but this node has not applied it yet"
                );
            }
        }
        Some(reply.response)
    }
}

fn unexpected(response: ControllerResponse) -> ControllerError {
    tracing::error!(?response, "the controller answered another request");
    ControllerError::NotController
}

/// One failure of the whole request, answered for each of its items. `send` fails only with `Timeout` or
/// `NotController`, which carry no payload and so repeat exactly.
fn failed_each<T>(
    count: usize,
    outcome: Result<ControllerResponse, ControllerError>,
) -> Vec<Result<T, ControllerError>> {
    let timed_out = matches!(outcome, Err(ControllerError::Timeout));
    if let Ok(response) = outcome {
        unexpected(response);
    }
    (0..count)
        .map(|_| {
            Err(if timed_out {
                ControllerError::Timeout
            } else {
                ControllerError::NotController
            })
        })
        .collect()
}
