//! AlterPartitionReassignments (key 45, KIP-455): moves partitions to target replicas, or cancels their reassignment
//! (null replicas); v1 (KIP-860) may forbid changing a partition's replication factor. Forwarded to the active
//! controller, which commits the change. Brokers act on it as they apply it (a new replica creates its log and fetches
//! from the leader), and the reassignment completes by itself once every target replica is in sync: the removed
//! replicas then leave the replica set and delete their logs.

use kafka_protocol::messages::alter_partition_reassignments_request::AlterPartitionReassignmentsRequest;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    AlterPartitionReassignmentsResponse, ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::ToErrorCode;
use crate::ids::{BrokerId, PartitionIndex};
use ferrite_raft::{ControllerError, MetadataQuorum, ReassignmentTarget};

pub async fn handle(
    quorum: &MetadataQuorum,
    version: i16,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    // v0 has no such option, and Kafka's default allows the change.
    let allow_replication_factor_change = version < 1 || request.allow_replication_factor_change;
    let targets: Vec<ReassignmentTarget> = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|partition| ReassignmentTarget {
                topic: topic.name.0.to_string(),
                partition: PartitionIndex(partition.partition_index),
                replicas: partition
                    .replicas
                    .as_ref()
                    .map(|replicas| replicas.iter().map(|b| BrokerId(b.0)).collect()),
            })
        })
        .collect();
    let outcome = quorum
        .channel()
        .alter_partition_reassignments(
            targets,
            allow_replication_factor_change,
            super::controller_timeout(request.timeout_ms),
        )
        .await;
    let response = AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(allow_replication_factor_change)
        .with_error_message(None);
    match outcome {
        Ok(results) => {
            let mut results = results.into_iter().map(|r| outcome_of(&r.result));
            let answered = answer(&request, || results.next().unwrap_or_else(not_answered));
            response.with_responses(answered)
        }
        // No controller answered: every partition fails alike, and the request says so too (Kafka's error response).
        Err(error) => {
            let (code, message) = outcome_of(&Err(error));
            let answered = answer(&request, || (code, message.clone()));
            response
                .with_error_code(code)
                .with_error_message(message.clone())
                .with_responses(answered)
        }
    }
}

/// A partition's error code and message.
fn outcome_of(result: &Result<(), ControllerError>) -> (i16, Option<StrBytes>) {
    match result {
        Ok(()) => (0, None),
        Err(error) => (error.code(), Some(StrBytes::from_string(error.to_string()))),
    }
}

/// The controller answers every partition asked, in order; a shorter answer would be its bug, not the client's.
fn not_answered() -> (i16, Option<StrBytes>) {
    outcome_of(&Err(ControllerError::NotController))
}

/// The response in the request's shape: each topic as it was named, each partition's outcome in turn.
fn answer(
    request: &AlterPartitionReassignmentsRequest,
    mut next: impl FnMut() -> (i16, Option<StrBytes>),
) -> Vec<ReassignableTopicResponse> {
    request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    let (code, message) = next();
                    ReassignablePartitionResponse::default()
                        .with_partition_index(partition.partition_index)
                        .with_error_code(code)
                        .with_error_message(message)
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect()
}
