//! Writing a decided transaction's markers (Kafka's TransactionMarkerChannelManager and the receiving side of
//! WriteTxnMarkers). Once a transaction's PrepareCommit or PrepareAbort is durable in `__transaction_state`, the
//! decision stands: a COMMIT or ABORT control batch goes to every partition of the transaction, and only when all
//! are durable does the coordinator write CompleteCommit or CompleteAbort. Until then the producer's next
//! transaction is refused with CONCURRENT_TRANSACTIONS, and read_committed consumers of each partition stop at its
//! last stable offset.
//!
//! On one node a marker is a local append ([`write_txn_marker`]); between brokers it will be the WriteTxnMarkers
//! request to each partition's leader, with the same outcome per partition ([`MarkerOutcome`]).

use std::sync::Arc;
use std::time::Duration;

use crate::coordinator::group::{GroupCoordinator, OFFSETS_TOPIC};
use crate::ids::{PartitionIndex, TopicId};
use crate::metadata::MetadataImage;
use crate::replica::{now_ms, ReplicaError, ReplicaManager};
use crate::storage::producer_state::ProducerStateError;
use crate::storage::{ControlRecordType, LogError};

use super::metadata::{Completion, TopicPartition};

/// The longest wait between two rounds of retries for the partitions whose marker could not be written yet.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(1);
pub const FIRST_RETRY_BACKOFF: Duration = Duration::from_millis(20);

/// What became of one partition's marker.
#[derive(Debug, PartialEq, Eq)]
pub enum MarkerOutcome {
    /// Durable (or not needed: the topic or partition is gone, so nobody can read the transaction there).
    Done,
    /// Not now (no leader here, the ISR short of min.insync.replicas, a storage error): try again.
    Retry,
    /// Never: the partition refuses this producer epoch or this coordinator (a newer one took over), as Kafka gives
    /// up on INVALID_PRODUCER_EPOCH and TRANSACTION_COORDINATOR_FENCED.
    Refused,
}

/// Kafka's retriable WriteTxnMarkers errors: NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS(_AFTER_APPEND),
/// KAFKA_STORAGE_ERROR; the rest are for good.
fn outcome_of(error: &ReplicaError) -> MarkerOutcome {
    match error {
        ReplicaError::NotLeaderOrFollower
        | ReplicaError::NotEnoughReplicas { .. }
        | ReplicaError::NotEnoughReplicasAfterAppend { .. }
        | ReplicaError::Flush(_)
        | ReplicaError::FlushAborted
        | ReplicaError::Log(LogError::Io(_)) => MarkerOutcome::Retry,
        ReplicaError::Log(LogError::ProducerState(
            ProducerStateError::InvalidProducerEpoch { .. }
            | ProducerStateError::TransactionCoordinatorFenced { .. },
        )) => MarkerOutcome::Refused,
        _ => MarkerOutcome::Refused,
    }
}

/// WriteTxnMarkers for one partition, as its leader handles it: append the control batch with acks=all, wait until
/// it is durable, and when the partition is one of `__consumer_offsets`, tell the group coordinator, whose pending
/// transactional offsets there become committed or are dropped.
#[allow(clippy::too_many_arguments)]
pub async fn write_txn_marker(
    replicas: &ReplicaManager,
    groups: &GroupCoordinator,
    topic: &str,
    topic_id: TopicId,
    index: PartitionIndex,
    completion: &Completion,
    coordinator_epoch: i32,
) -> MarkerOutcome {
    let marker = if completion.commit {
        ControlRecordType::Commit
    } else {
        ControlRecordType::Abort
    };
    let appended = replicas.append_txn_marker(
        topic_id,
        index,
        completion.producer_id,
        completion.producer_epoch,
        marker,
        coordinator_epoch,
        now_ms(),
    );
    let result = match appended {
        Ok(pending) => pending.wait().await.map(|_| ()),
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => {
            if topic == OFFSETS_TOPIC {
                groups
                    .complete_transaction(
                        topic_id,
                        index,
                        completion.producer_id,
                        completion.commit,
                    )
                    .await;
            }
            MarkerOutcome::Done
        }
        Err(error) => {
            let outcome = outcome_of(&error);
            tracing::debug!(topic, partition = index.0, %error, ?outcome, transactional_id = %completion.transactional_id, "transaction marker not written");
            outcome
        }
    }
}

/// Writes the markers of `completion` to each of its partitions, retrying those that are not ready with a growing
/// backoff for as long as `still_coordinator` says this broker still coordinates the transaction. Returns whether
/// every partition is done (false: the coordinator moved, and the next one completes the transaction from its
/// Prepare record).
pub async fn write_markers(
    replicas: &ReplicaManager,
    groups: &GroupCoordinator,
    image: impl Fn() -> Arc<MetadataImage>,
    completion: &Completion,
    coordinator_epoch: i32,
    still_coordinator: impl Fn() -> bool,
) -> bool {
    let mut remaining: Vec<TopicPartition> = completion.partitions.clone();
    let mut backoff = FIRST_RETRY_BACKOFF;
    loop {
        if !still_coordinator() {
            return false;
        }
        let image = image();
        // Every partition of a round at once: each waits for its own fsync or replicas.
        let writes = remaining.into_iter().filter_map(|partition| {
            let index = PartitionIndex(partition.partition);
            // A topic deleted since it joined the transaction has no one to read it: nothing to write.
            let topic = image
                .topic(&partition.topic)
                .filter(|t| t.partitions.contains_key(&index))?;
            let topic_id = topic.topic_id;
            Some(async move {
                let outcome = write_txn_marker(
                    replicas,
                    groups,
                    &partition.topic,
                    topic_id,
                    index,
                    completion,
                    coordinator_epoch,
                )
                .await;
                (partition, outcome)
            })
        });
        let mut retry = Vec::new();
        for (partition, outcome) in futures::future::join_all(writes).await {
            match outcome {
                MarkerOutcome::Done => {}
                MarkerOutcome::Retry => retry.push(partition),
                MarkerOutcome::Refused => {
                    tracing::warn!(topic = %partition.topic, partition = partition.partition, transactional_id = %completion.transactional_id, "a partition refused the transaction marker; completing without it");
                }
            }
        }
        if retry.is_empty() {
            return true;
        }
        remaining = retry;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_RETRY_BACKOFF);
    }
}
