//! One module per Kafka API, named after it, and the table of what this broker advertises.
//!
//! Errors become Kafka error codes here and nowhere else ([`error_code`]).

pub mod alter_configs;
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
pub mod describe_quorum;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod produce;
pub mod sync_group;

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::protocol::VersionRange;

use crate::config::topic::TopicConfigError;
use crate::coordinator::group::GroupError;
use crate::replica::ReplicaError;
use crate::server::fetch_session::FetchSessionError;
use crate::server::{Broker, HandlerFuture};
use crate::storage::{LogError, RecordRule};
use ferrite_raft::ControllerError;

/// The APIs this broker implements. Each is advertised with every version the codec supports for it.
const IMPLEMENTED: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
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
            _ => range,
        }
    })
}

pub fn implemented() -> impl Iterator<Item = (ApiKey, VersionRange)> {
    IMPLEMENTED
        .iter()
        .filter_map(|key| Some((*key, supported_versions(*key)?)))
}

/// Routes a decoded request to its handler.
pub fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    client_host: &Arc<str>,
    request: RequestKind,
) -> HandlerFuture {
    let version = header.request_api_version;
    let broker = broker.clone();
    match request {
        RequestKind::ApiVersions(_) => Box::pin(std::future::ready(Some(
            ResponseKind::ApiVersions(api_versions::handle()),
        ))),
        RequestKind::Metadata(request) => Box::pin(async move {
            Some(ResponseKind::Metadata(
                metadata::handle(&broker, version, request).await,
            ))
        }),
        RequestKind::Produce(request) => produce::handle(&broker, version, request),
        RequestKind::Fetch(request) => Box::pin(async move {
            Some(ResponseKind::Fetch(
                fetch::handle(&broker, version, request).await,
            ))
        }),
        RequestKind::ListOffsets(request) => Box::pin(async move {
            Some(ResponseKind::ListOffsets(list_offsets::handle(
                &broker, version, request,
            )))
        }),
        RequestKind::CreateTopics(request) => Box::pin(async move {
            Some(ResponseKind::CreateTopics(
                create_topics::handle(&broker, version, request).await,
            ))
        }),
        RequestKind::CreatePartitions(request) => Box::pin(async move {
            Some(ResponseKind::CreatePartitions(
                create_partitions::handle(&broker, version, request).await,
            ))
        }),
        RequestKind::DescribeConfigs(request) => Box::pin(std::future::ready(Some(
            ResponseKind::DescribeConfigs(describe_configs::handle(&broker, version, request)),
        ))),
        RequestKind::AlterConfigs(request) => Box::pin(async move {
            Some(ResponseKind::AlterConfigs(
                alter_configs::handle(&broker, version, request).await,
            ))
        }),
        RequestKind::IncrementalAlterConfigs(request) => Box::pin(async move {
            Some(ResponseKind::IncrementalAlterConfigs(
                incremental_alter_configs::handle(&broker, version, request).await,
            ))
        }),
        RequestKind::DeleteRecords(request) => Box::pin(std::future::ready(Some(
            ResponseKind::DeleteRecords(delete_records::handle(&broker, version, request)),
        ))),
        RequestKind::DescribeCluster(request) => Box::pin(std::future::ready(Some(
            ResponseKind::DescribeCluster(describe_cluster::handle(&broker, version, request)),
        ))),
        RequestKind::DescribeLogDirs(request) => Box::pin(std::future::ready(Some(
            ResponseKind::DescribeLogDirs(describe_log_dirs::handle(&broker, version, request)),
        ))),
        RequestKind::DescribeQuorum(request) => Box::pin(std::future::ready(Some(
            ResponseKind::DescribeQuorum(describe_quorum::handle(&broker, version, request)),
        ))),
        RequestKind::DeleteTopics(request) => Box::pin(async move {
            Some(ResponseKind::DeleteTopics(
                delete_topics::handle(&broker, version, request).await,
            ))
        }),
        RequestKind::FindCoordinator(request) => Box::pin(async move {
            Some(ResponseKind::FindCoordinator(
                find_coordinator::handle(&broker, version, request).await,
            ))
        }),
        RequestKind::JoinGroup(request) => {
            let client_id = header.client_id.as_deref().unwrap_or_default().to_string();
            let client_host = client_host.clone();
            Box::pin(async move {
                Some(ResponseKind::JoinGroup(
                    join_group::handle(&broker, version, &client_id, &client_host, request).await,
                ))
            })
        }
        RequestKind::SyncGroup(request) => Box::pin(async move {
            Some(ResponseKind::SyncGroup(
                sync_group::handle(&broker, version, request).await,
            ))
        }),
        RequestKind::Heartbeat(request) => Box::pin(async move {
            Some(ResponseKind::Heartbeat(
                heartbeat::handle(&broker, request).await,
            ))
        }),
        RequestKind::LeaveGroup(request) => Box::pin(async move {
            Some(ResponseKind::LeaveGroup(
                leave_group::handle(&broker, version, request).await,
            ))
        }),
        RequestKind::OffsetCommit(request) => Box::pin(async move {
            Some(ResponseKind::OffsetCommit(
                offset_commit::handle(&broker, version, request).await,
            ))
        }),
        RequestKind::OffsetFetch(request) => Box::pin(std::future::ready(Some(
            ResponseKind::OffsetFetch(offset_fetch::handle(&broker, version, request)),
        ))),
        RequestKind::ListGroups(request) => Box::pin(std::future::ready(Some(
            ResponseKind::ListGroups(list_groups::handle(&broker, version, request)),
        ))),
        RequestKind::DescribeGroups(request) => Box::pin(std::future::ready(Some(
            ResponseKind::DescribeGroups(describe_groups::handle(&broker, version, request)),
        ))),
        RequestKind::DeleteGroups(request) => Box::pin(async move {
            Some(ResponseKind::DeleteGroups(
                delete_groups::handle(&broker, request).await,
            ))
        }),
        RequestKind::OffsetDelete(request) => Box::pin(async move {
            Some(ResponseKind::OffsetDelete(
                offset_delete::handle(&broker, request).await,
            ))
        }),
        other => {
            // Unreachable while dispatch checks `supported_versions` first; closing is the safe answer anyway.
            tracing::warn!(request = ?std::mem::discriminant(&other), "request for an API without a handler");
            Box::pin(std::future::ready(None))
        }
    }
}

/// This broker's replica of a partition that a request names: NOT_LEADER_OR_FOLLOWER when the topic has the
/// partition but this broker does not host it, UNKNOWN_TOPIC_OR_PARTITION when the topic has no such partition.
fn local_partition(
    broker: &Broker,
    topic: &crate::metadata::TopicImage,
    index: ferrite_raft::PartitionIndex,
) -> Result<Arc<crate::replica::Partition>, ResponseError> {
    match broker.replicas.partition(topic.topic_id, index) {
        Some(partition) => Ok(partition),
        None if topic.partitions.contains_key(&index) => Err(ResponseError::NotLeaderOrFollower),
        None => Err(ResponseError::UnknownTopicOrPartition),
    }
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
            LogError::Io(_) => ResponseError::KafkaStorageError,
        }
    }
}

impl ToErrorCode for ReplicaError {
    fn error(&self) -> ResponseError {
        match self {
            ReplicaError::Log(error) => error.error(),
            ReplicaError::Flush(_) | ReplicaError::FlushAborted => ResponseError::KafkaStorageError,
            ReplicaError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
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
            ControllerError::InvalidConfig(_) => ResponseError::InvalidConfig,
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
            GroupError::InvalidRecord(_) => ResponseError::InvalidCommitOffsetSize,
            // As Kafka maps coordinator write failures: too large for the log is INVALID_COMMIT_OFFSET_SIZE,
            // anything else sends the client to look for the coordinator again.
            GroupError::Write(error) => match &**error {
                ReplicaError::Log(LogError::MessageTooLarge { .. })
                | ReplicaError::Log(LogError::RecordListTooLarge { .. }) => {
                    ResponseError::InvalidCommitOffsetSize
                }
                _ => ResponseError::NotCoordinator,
            },
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
