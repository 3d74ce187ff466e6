//! One module per Kafka API, named after it, and the table of what this broker advertises.
//!
//! Errors become Kafka error codes here and nowhere else ([`error_code`]).

pub mod api_versions;
pub mod create_topics;
pub mod delete_topics;
pub mod fetch;
pub mod list_offsets;
pub mod metadata;
pub mod produce;

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::protocol::VersionRange;

use crate::replica::ReplicaError;
use crate::server::{Broker, HandlerFuture};
use crate::storage::LogError;
use crate::topic_config::TopicConfigError;
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
];

pub fn supported_versions(api_key: ApiKey) -> Option<VersionRange> {
    IMPLEMENTED
        .contains(&api_key)
        .then(|| api_key.valid_versions())
}

pub fn implemented() -> impl Iterator<Item = (ApiKey, VersionRange)> {
    IMPLEMENTED.iter().map(|key| (*key, key.valid_versions()))
}

/// Routes a decoded request to its handler.
pub fn handle(broker: &Arc<Broker>, header: &RequestHeader, request: RequestKind) -> HandlerFuture {
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
        RequestKind::DeleteTopics(request) => Box::pin(async move {
            Some(ResponseKind::DeleteTopics(
                delete_topics::handle(&broker, version, request).await,
            ))
        }),
        other => {
            // Unreachable while dispatch checks `supported_versions` first; closing is the safe answer anyway.
            tracing::warn!(request = ?std::mem::discriminant(&other), "request for an API without a handler");
            Box::pin(std::future::ready(None))
        }
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
            ControllerError::Timeout => ResponseError::RequestTimedOut,
            ControllerError::Quorum(_) => ResponseError::UnknownServerError,
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
