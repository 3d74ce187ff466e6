//! The request layer: [`KafkaApis`] (Kafka's name for it) decodes each request frame, routes it to the module of its
//! API (one per Kafka API, named after it) and encodes the answer; and the table of what this broker advertises.
//!
//! Handlers translate between the wire and the broker's parts, and each receives only the parts it uses: group
//! APIs the [`GroupCoordinator`], quorum-only APIs the [`MetadataQuorum`], the rest what they name. Nothing here
//! knows about sockets: `crate::server` (the transport) calls in, and nothing here imports it.
//!
//! Errors become Kafka error codes here and nowhere else ([`ToErrorCode`]).

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_transactions;
mod dispatch;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod write_txn_markers;

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::protocol::VersionRange;

use crate::config::topic::TopicConfigError;
pub use dispatch::{may_overlap, HandlerFuture, Reply, ReplyFuture};

use bytes::Bytes;
use ferrite_raft::MetadataQuorum;

use crate::config::{BrokerConfig, ConfigError};
use crate::coordinator::group::{GroupCoordinator, GroupError};
use crate::coordinator::transaction::{TransactionCoordinator, TransactionError};
use crate::metadata::{MetadataImage, MetadataLoader};
use crate::replica::fetch_session::{FetchSessionCache, FetchSessionError};
use crate::replica::{ReplicaError, ReplicaManager};
use crate::storage::producer_state::ProducerStateError;
use crate::storage::{LogError, RecordRule};
use ferrite_raft::ControllerError;

/// The broker's parts that requests reach, and the entry point of the request layer.
pub struct KafkaApis {
    pub config: BrokerConfig,
    pub cluster_id: String,
    pub replicas: Arc<ReplicaManager>,
    pub quorum: MetadataQuorum,
    pub groups: Arc<GroupCoordinator>,
    pub transactions: Arc<TransactionCoordinator>,
    pub fetch_sessions: FetchSessionCache,
    metadata: Arc<MetadataLoader>,
}

impl KafkaApis {
    pub fn new(
        config: BrokerConfig,
        cluster_id: String,
        replicas: Arc<ReplicaManager>,
        quorum: MetadataQuorum,
        groups: Arc<GroupCoordinator>,
        transactions: Arc<TransactionCoordinator>,
        metadata: Arc<MetadataLoader>,
    ) -> KafkaApis {
        let fetch_sessions = FetchSessionCache::new(
            config.fetch_session_cache_slots,
            crate::replica::fetch_session::MIN_EVICTION_MS,
        );
        KafkaApis {
            config,
            cluster_id,
            replicas,
            quorum,
            groups,
            transactions,
            fetch_sessions,
            metadata,
        }
    }

    /// The newest metadata this broker has applied.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.metadata.current()
    }

    /// Parses one request frame and starts its handler; see [`dispatch`] for what closes the connection instead.
    pub fn start(self: &Arc<Self>, client_host: &Arc<str>, frame: Bytes) -> ReplyFuture {
        dispatch::start(self, client_host, frame)
    }
}

/// How long a request that needs the controller may look for one: the client's `timeout_ms`, at least a second
/// (the quorum may be electing) and at most the controller's own write bound.
pub fn controller_timeout(timeout_ms: i32) -> std::time::Duration {
    let ms = u64::try_from(timeout_ms).unwrap_or(0).clamp(1_000, 30_000);
    std::time::Duration::from_millis(ms)
}

/// How long a Metadata or FindCoordinator request waits for the topic it auto-creates. Kafka answers at once
/// (LEADER_NOT_AVAILABLE, COORDINATOR_NOT_AVAILABLE) and creates in the background; waiting a little spares the
/// client a retry when the controller answers quickly, and bounding it keeps the connection moving when there is no
/// controller (the client's retry finds the topic, or asks again).
pub const AUTO_CREATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The APIs this broker implements. Each is advertised with every version the codec supports for it.
const IMPLEMENTED: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::Metadata,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::CreatePartitions,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DeleteRecords,
    ApiKey::DescribeCluster,
    ApiKey::DescribeLogDirs,
    ApiKey::DescribeQuorum,
    ApiKey::ElectLeaders,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::ListGroups,
    ApiKey::DescribeGroups,
    ApiKey::DeleteGroups,
    ApiKey::OffsetDelete,
    ApiKey::InitProducerId,
    ApiKey::DescribeProducers,
    ApiKey::TxnOffsetCommit,
    ApiKey::AddPartitionsToTxn,
    ApiKey::AddOffsetsToTxn,
    ApiKey::EndTxn,
    ApiKey::DescribeTransactions,
    ApiKey::ListTransactions,
    ApiKey::WriteTxnMarkers,
];

pub fn supported_versions(api_key: ApiKey) -> Option<VersionRange> {
    IMPLEMENTED.contains(&api_key).then(|| {
        let range = api_key.valid_versions();
        match api_key {
            // kafka-protocol 0.18's ApiKey table lists v10 for these two, but their message codecs stop at v9:
            // advertising v10 would make clients send requests we cannot decode.
            ApiKey::OffsetCommit | ApiKey::OffsetFetch => VersionRange {
                min: range.min,
                max: range.max.min(9),
            },
            // v6 is KIP-939's two-phase commit, which needs transactions.
            ApiKey::InitProducerId => VersionRange {
                min: range.min,
                max: range.max.min(5),
            },
            // v4 and v5 need KIP-890's transaction verification.
            ApiKey::TxnOffsetCommit => VersionRange {
                min: range.min,
                max: range.max.min(3),
            },
            // v5 is transaction version 2 (KIP-890 part 2: a new epoch per transaction), which is not offered.
            ApiKey::AddPartitionsToTxn | ApiKey::EndTxn => VersionRange {
                min: range.min,
                max: range.max.min(4),
            },
            // v2 filters by a regular expression, for which the broker has no engine.
            ApiKey::ListTransactions => VersionRange {
                min: range.min,
                max: range.max.min(1),
            },
            _ => range,
        }
    })
}

pub fn implemented() -> impl Iterator<Item = (ApiKey, VersionRange)> {
    IMPLEMENTED
        .iter()
        .filter_map(|key| Some((*key, supported_versions(*key)?)))
}

/// Routes a decoded request to its handler. Handlers that finish at once answer through [`now`]; the others run
/// as a future that owns a handle on the broker's parts ([`later`]). Produce builds its own future: its appends
/// happen before it returns, in the connection's arrival order.
fn handle(
    apis: &Arc<KafkaApis>,
    header: &RequestHeader,
    client_host: &Arc<str>,
    request: RequestKind,
) -> HandlerFuture {
    use ResponseKind as R;
    let version = header.request_api_version;
    let apis = apis.clone();
    let groups = apis.groups.clone();
    match request {
        RequestKind::ApiVersions(_) => now(R::ApiVersions(api_versions::handle())),
        RequestKind::Produce(request) => produce::handle(&apis, version, request),
        RequestKind::Metadata(request) => {
            later(async move { R::Metadata(metadata::handle(&apis, version, request).await) })
        }
        RequestKind::Fetch(request) => {
            later(async move { R::Fetch(fetch::handle(&apis, version, request).await) })
        }
        RequestKind::ListOffsets(request) => now(R::ListOffsets(list_offsets::handle(
            &apis, version, request,
        ))),
        RequestKind::OffsetForLeaderEpoch(request) => now(R::OffsetForLeaderEpoch(
            offset_for_leader_epoch::handle(&apis, request),
        )),
        RequestKind::CreateTopics(request) => {
            later(
                async move { R::CreateTopics(create_topics::handle(&apis, version, request).await) },
            )
        }
        RequestKind::CreatePartitions(request) => later(async move {
            R::CreatePartitions(create_partitions::handle(&apis, version, request).await)
        }),
        RequestKind::ElectLeaders(request) => later(async move {
            R::ElectLeaders(elect_leaders::handle(&apis.quorum, version, request).await)
        }),
        RequestKind::AlterPartitionReassignments(request) => later(async move {
            R::AlterPartitionReassignments(
                alter_partition_reassignments::handle(&apis.quorum, version, request).await,
            )
        }),
        RequestKind::ListPartitionReassignments(request) => later(async move {
            R::ListPartitionReassignments(
                list_partition_reassignments::handle(&apis.quorum, request).await,
            )
        }),
        RequestKind::DeleteTopics(request) => later(async move {
            R::DeleteTopics(delete_topics::handle(&apis.quorum, version, request).await)
        }),
        RequestKind::DescribeConfigs(request) => now(R::DescribeConfigs(describe_configs::handle(
            &apis, version, request,
        ))),
        RequestKind::AlterConfigs(request) => {
            later(
                async move { R::AlterConfigs(alter_configs::handle(&apis, version, request).await) },
            )
        }
        RequestKind::IncrementalAlterConfigs(request) => later(async move {
            R::IncrementalAlterConfigs(
                incremental_alter_configs::handle(&apis, version, request).await,
            )
        }),
        RequestKind::DeleteRecords(request) => now(R::DeleteRecords(delete_records::handle(
            &apis, version, request,
        ))),
        RequestKind::DescribeCluster(request) => now(R::DescribeCluster(describe_cluster::handle(
            &apis, version, request,
        ))),
        RequestKind::DescribeLogDirs(request) => now(R::DescribeLogDirs(
            describe_log_dirs::handle(&apis, version, request),
        )),
        RequestKind::DescribeQuorum(request) => later(async move {
            R::DescribeQuorum(describe_quorum::handle(&apis, version, request).await)
        }),
        RequestKind::FindCoordinator(request) => later(async move {
            R::FindCoordinator(find_coordinator::handle(&apis, version, request).await)
        }),
        RequestKind::JoinGroup(request) => {
            let client_id = header.client_id.as_deref().unwrap_or_default().to_string();
            let client_host = client_host.clone();
            later(async move {
                R::JoinGroup(
                    join_group::handle(&groups, version, &client_id, &client_host, request).await,
                )
            })
        }
        RequestKind::SyncGroup(request) => {
            later(async move { R::SyncGroup(sync_group::handle(&groups, version, request).await) })
        }
        RequestKind::Heartbeat(request) => {
            later(async move { R::Heartbeat(heartbeat::handle(&groups, request).await) })
        }
        RequestKind::LeaveGroup(request) => {
            later(
                async move { R::LeaveGroup(leave_group::handle(&groups, version, request).await) },
            )
        }
        RequestKind::OffsetCommit(request) => {
            later(
                async move { R::OffsetCommit(offset_commit::handle(&apis, version, request).await) },
            )
        }
        RequestKind::OffsetFetch(request) => {
            later(
                async move { R::OffsetFetch(offset_fetch::handle(&apis, version, request).await) },
            )
        }
        RequestKind::TxnOffsetCommit(request) => {
            later(
                async move { R::TxnOffsetCommit(txn_offset_commit::handle(&apis, request).await) },
            )
        }
        RequestKind::ListGroups(request) => now(R::ListGroups(list_groups::handle(
            &groups, version, request,
        ))),
        RequestKind::DescribeGroups(request) => now(R::DescribeGroups(describe_groups::handle(
            &groups, version, request,
        ))),
        RequestKind::DeleteGroups(request) => {
            later(async move { R::DeleteGroups(delete_groups::handle(&groups, request).await) })
        }
        RequestKind::DescribeProducers(request) => now(R::DescribeProducers(
            describe_producers::handle(&apis, request),
        )),
        RequestKind::InitProducerId(request) => later(async move {
            R::InitProducerId(init_producer_id::handle(&apis, version, request).await)
        }),
        RequestKind::AddPartitionsToTxn(request) => later(async move {
            R::AddPartitionsToTxn(add_partitions_to_txn::handle(&apis, version, request).await)
        }),
        RequestKind::AddOffsetsToTxn(request) => later(async move {
            R::AddOffsetsToTxn(add_offsets_to_txn::handle(&apis, version, request).await)
        }),
        RequestKind::EndTxn(request) => {
            later(async move { R::EndTxn(end_txn::handle(&apis, version, request).await) })
        }
        RequestKind::DescribeTransactions(request) => now(R::DescribeTransactions(
            describe_transactions::handle(&apis, request),
        )),
        RequestKind::ListTransactions(request) => now(R::ListTransactions(
            list_transactions::handle(&apis, request),
        )),
        RequestKind::WriteTxnMarkers(request) => {
            later(
                async move { R::WriteTxnMarkers(write_txn_markers::handle(&apis, request).await) },
            )
        }
        RequestKind::OffsetDelete(request) => {
            later(async move { R::OffsetDelete(offset_delete::handle(&groups, request).await) })
        }
        other => {
            // Unreachable while dispatch checks `supported_versions` first; closing is the safe answer anyway.
            tracing::warn!(request = ?std::mem::discriminant(&other), "request for an API without a handler");
            Box::pin(std::future::ready(None))
        }
    }
}

/// A response that is ready now.
fn now(response: ResponseKind) -> HandlerFuture {
    Box::pin(std::future::ready(Some(response)))
}

/// A response that a future will give.
fn later(response: impl Future<Output = ResponseKind> + Send + 'static) -> HandlerFuture {
    Box::pin(async move { Some(response.await) })
}

/// This broker's replica of a partition that a request names, if it leads it: UNKNOWN_TOPIC_OR_PARTITION when the
/// topic has no such partition, NOT_LEADER_OR_FOLLOWER when another broker leads it.
fn leader_partition(
    apis: &KafkaApis,
    topic: &crate::metadata::TopicImage,
    index: crate::ids::PartitionIndex,
) -> Result<Arc<crate::replica::Partition>, ResponseError> {
    leader_partition_at(apis, topic, index, -1)
}

/// [`leader_partition`], checking the client's `current_leader_epoch` (KIP-320; -1: none given).
fn leader_partition_at(
    apis: &KafkaApis,
    topic: &crate::metadata::TopicImage,
    index: crate::ids::PartitionIndex,
    current_leader_epoch: i32,
) -> Result<Arc<crate::replica::Partition>, ResponseError> {
    if !topic.partitions.contains_key(&index) {
        return Err(ResponseError::UnknownTopicOrPartition);
    }
    let epoch =
        (current_leader_epoch >= 0).then_some(crate::ids::LeaderEpoch(current_leader_epoch));
    apis.replicas
        .leader_partition_at(topic.topic_id, index, epoch)
        .map_err(|error| error.error())
}

/// The one place where Ferrite's errors become Kafka's error codes.
pub trait ToErrorCode {
    fn error(&self) -> ResponseError;
    fn code(&self) -> i16 {
        self.error().code()
    }
}

impl ToErrorCode for LogError {
    fn error(&self) -> ResponseError {
        match self {
            LogError::CorruptMessage(..) => ResponseError::CorruptMessage,
            LogError::InvalidRecord(..) => ResponseError::InvalidRecord,
            LogError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
            LogError::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp,
            LogError::InvalidRecords(errors)
                if errors
                    .iter()
                    .any(|e| e.rule == RecordRule::TimestampInWindow) =>
            {
                ResponseError::InvalidTimestamp
            }
            LogError::InvalidRecords(_) => ResponseError::InvalidRecord,
            LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            LogError::RecordListTooLarge { .. } => ResponseError::RecordListTooLarge,
            LogError::ProducerState(error) => match error {
                ProducerStateError::InvalidProducerEpoch { .. } => {
                    ResponseError::InvalidProducerEpoch
                }
                ProducerStateError::OutOfOrderSequence { .. } => {
                    ResponseError::OutOfOrderSequenceNumber
                }
                ProducerStateError::UnknownProducerId { .. } => ResponseError::UnknownProducerId,
                ProducerStateError::InvalidTxnState { .. } => ResponseError::InvalidTxnState,
                ProducerStateError::TransactionCoordinatorFenced { .. } => {
                    ResponseError::TransactionCoordinatorFenced
                }
            },
            LogError::Io(_) | LogError::LeaderEpoch(_) => ResponseError::KafkaStorageError,
        }
    }
}

impl ToErrorCode for ReplicaError {
    fn error(&self) -> ResponseError {
        match self {
            ReplicaError::Log(error) => error.error(),
            ReplicaError::Flush(_) | ReplicaError::FlushAborted => ResponseError::KafkaStorageError,
            ReplicaError::NotLeaderOrFollower => ResponseError::NotLeaderOrFollower,
            ReplicaError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
            ReplicaError::UnknownLeaderEpoch { .. } => ResponseError::UnknownLeaderEpoch,
            ReplicaError::InternalTopic(_) => ResponseError::InvalidTopicException,
            ReplicaError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
            ReplicaError::RequestTimedOut => ResponseError::RequestTimedOut,
            ReplicaError::NotEnoughReplicasAfterAppend { .. } => {
                ResponseError::NotEnoughReplicasAfterAppend
            }
        }
    }
}

impl ToErrorCode for ControllerError {
    fn error(&self) -> ResponseError {
        match self {
            ControllerError::TopicAlreadyExists(_) => ResponseError::TopicAlreadyExists,
            ControllerError::InvalidTopic(_) => ResponseError::InvalidTopicException,
            ControllerError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            ControllerError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            ControllerError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            ControllerError::UnknownTopicOrPartition(_) => ResponseError::UnknownTopicOrPartition,
            ControllerError::UnknownTopicId(_) => ResponseError::UnknownTopicId,
            ControllerError::NotController => ResponseError::NotController,
            ControllerError::InvalidRequest(_) => ResponseError::InvalidRequest,
            ControllerError::InvalidRegistration(_) => ResponseError::InvalidRegistration,
            ControllerError::DuplicateBrokerRegistration(_) => {
                ResponseError::DuplicateBrokerRegistration
            }
            ControllerError::StaleBrokerEpoch(_) => ResponseError::StaleBrokerEpoch,
            ControllerError::BrokerIdNotRegistered(_) => ResponseError::BrokerIdNotRegistered,
            ControllerError::InvalidConfig(_) => ResponseError::InvalidConfig,
            ControllerError::InvalidUpdateVersion(_) => ResponseError::InvalidUpdateVersion,
            ControllerError::FencedLeaderEpoch(_) => ResponseError::FencedLeaderEpoch,
            ControllerError::NotLeaderOrFollower(_) => ResponseError::NotLeaderOrFollower,
            ControllerError::IneligibleReplica(_) => ResponseError::IneligibleReplica,
            ControllerError::ElectionNotNeeded(_) => ResponseError::ElectionNotNeeded,
            ControllerError::PreferredLeaderNotAvailable(_) => {
                ResponseError::PreferredLeaderNotAvailable
            }
            ControllerError::EligibleLeadersNotAvailable(_) => {
                ResponseError::EligibleLeadersNotAvailable
            }
            ControllerError::NoReassignmentInProgress(_) => ResponseError::NoReassignmentInProgress,
            ControllerError::Timeout => ResponseError::RequestTimedOut,
            ControllerError::Quorum(_) => ResponseError::UnknownServerError,
        }
    }
}

impl ToErrorCode for GroupError {
    fn error(&self) -> ResponseError {
        match self {
            GroupError::UnknownMemberId => ResponseError::UnknownMemberId,
            GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
            GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
            GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
            GroupError::MemberIdRequired => ResponseError::MemberIdRequired,
            GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
            GroupError::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
            GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
            GroupError::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
            GroupError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
            GroupError::NotCoordinator => ResponseError::NotCoordinator,
            GroupError::CoordinatorLoadInProgress => ResponseError::CoordinatorLoadInProgress,
            GroupError::GroupIdNotFound => ResponseError::GroupIdNotFound,
            GroupError::NonEmptyGroup => ResponseError::NonEmptyGroup,
            GroupError::OffsetMetadataTooLarge => ResponseError::OffsetMetadataTooLarge,
            GroupError::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
            GroupError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
            GroupError::UnstableOffsetCommit => ResponseError::UnstableOffsetCommit,
            GroupError::InvalidRecord(_) => ResponseError::InvalidCommitOffsetSize,
            // As Kafka maps coordinator write failures: too large for the log is INVALID_COMMIT_OFFSET_SIZE,
            // anything else sends the client to look for the coordinator again.
            GroupError::Write(error) => match &**error {
                ReplicaError::Log(LogError::MessageTooLarge { .. })
                | ReplicaError::Log(LogError::RecordListTooLarge { .. }) => {
                    ResponseError::InvalidCommitOffsetSize
                }
                // A transactional commit of a fenced producer: the log refused its epoch.
                ReplicaError::Log(LogError::ProducerState(
                    ProducerStateError::InvalidProducerEpoch { .. },
                )) => ResponseError::InvalidProducerEpoch,
                _ => ResponseError::NotCoordinator,
            },
        }
    }
}

impl ToErrorCode for TransactionError {
    fn error(&self) -> ResponseError {
        match self {
            TransactionError::ProducerIdsUnavailable(_) => ResponseError::CoordinatorLoadInProgress,
            TransactionError::InvalidRequest(_) => ResponseError::InvalidRequest,
            TransactionError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
            TransactionError::NotCoordinator => ResponseError::NotCoordinator,
            TransactionError::CoordinatorLoadInProgress => ResponseError::CoordinatorLoadInProgress,
            TransactionError::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout,
            TransactionError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
            TransactionError::ProducerFenced => ResponseError::ProducerFenced,
            TransactionError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
            TransactionError::InvalidTxnState => ResponseError::InvalidTxnState,
            TransactionError::TransactionalIdNotFound => ResponseError::TransactionalIdNotFound,
            TransactionError::TransactionAbortable => ResponseError::TransactionAbortable,
            TransactionError::InvalidRecord(_) => ResponseError::UnknownServerError,
            TransactionError::Write(error) => error.error(),
        }
    }
}

impl ToErrorCode for FetchSessionError {
    fn error(&self) -> ResponseError {
        match self {
            FetchSessionError::IdNotFound(_) => ResponseError::FetchSessionIdNotFound,
            FetchSessionError::InvalidEpoch { .. } => ResponseError::InvalidFetchSessionEpoch,
            FetchSessionError::TopicIdMismatch(..) => ResponseError::FetchSessionTopicIdError,
        }
    }
}

/// A broker config a client asked to change: unknown keys are INVALID_CONFIG, bad values INVALID_REQUEST, as
/// Kafka's brokers answer AlterConfigs for their own resources.
impl ToErrorCode for ConfigError {
    fn error(&self) -> ResponseError {
        match self {
            ConfigError::Unknown(_) => ResponseError::InvalidConfig,
            _ => ResponseError::InvalidRequest,
        }
    }
}

impl ToErrorCode for TopicConfigError {
    fn error(&self) -> ResponseError {
        ResponseError::InvalidConfig
    }
}

/// Kafka's sentinel for "authorized operations not requested".
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// The resource types whose descriptions carry authorized operations (Kafka's `ResourceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclResourceType {
    Topic,
    Group,
    Cluster,
}

impl AclResourceType {
    /// Every AclOperation code the resource type supports, as in Kafka's `AclEntry.supportedOperations` (4.1).
    fn supported_operations(self) -> &'static [u8] {
        // AclOperation codes: READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9,
        // DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12.
        match self {
            AclResourceType::Topic => &[3, 4, 5, 6, 7, 8, 10, 11],
            // DESCRIBE_CONFIGS and ALTER_CONFIGS since groups have configs of their own (KIP-848).
            AclResourceType::Group => &[3, 6, 8, 10, 11],
            AclResourceType::Cluster => &[5, 7, 8, 9, 10, 11, 12],
        }
    }
}

/// The authorized-operations field of a described resource: the operations the client may perform as a bitfield
/// (bit n is AclOperation code n) when it asked for them, Kafka's "omitted" sentinel when it did not. Ferrite has
/// no authorizer, and Kafka without one authorizes every operation a resource type supports.
pub fn authorized_operations(resource: AclResourceType, requested: bool) -> i32 {
    if !requested {
        return AUTHORIZED_OPERATIONS_OMITTED;
    }
    resource
        .supported_operations()
        .iter()
        .fold(0, |bits, code| bits | (1 << code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorized_operations_are_kafkas_bitfields() {
        assert_eq!(
            authorized_operations(AclResourceType::Topic, false),
            i32::MIN
        );
        // Kafka's supported operations per resource type, as bits.
        assert_eq!(authorized_operations(AclResourceType::Topic, true), 3576);
        assert_eq!(authorized_operations(AclResourceType::Group, true), 3400);
        assert_eq!(authorized_operations(AclResourceType::Cluster, true), 8096);
    }
}
