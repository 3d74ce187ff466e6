//! Writing a decided transaction's markers (Kafka's TransactionMarkerChannelManager and the receiving side of
//! WriteTxnMarkers). Once a transaction's PrepareCommit or PrepareAbort is durable in `__transaction_state`, the
//! decision stands: a COMMIT or ABORT control batch goes to every partition of the transaction, and only when all
//! are durable does the coordinator write CompleteCommit or CompleteAbort. Until then the producer's next
//! transaction is refused with CONCURRENT_TRANSACTIONS, and read_committed consumers of each partition stop at its
//! last stable offset.
//!
//! A partition led here gets its marker by a local append ([`write_txn_marker`]); one led by another broker by
//! Kafka's WriteTxnMarkers request to that leader ([`TransactionMarkerChannel`]), whose handler
//! (`api/write_txn_markers.rs`) makes the same local append there. Either way each partition ends in a
//! [`MarkerOutcome`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest,
};
use kafka_protocol::messages::{ProducerId as WireProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::admin::connection::{Connection, ConnectionSettings};
use crate::coordinator::group::{GroupCoordinator, OFFSETS_TOPIC};
use crate::ids::{BrokerId, PartitionIndex, TopicId};
use crate::ids::{ProducerEpoch, ProducerId};
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

/// How long one WriteTxnMarkers to another broker may take (its leader waits for acks=all).
const MARKER_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Kafka's retriable WriteTxnMarkers errors: NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS(_AFTER_APPEND),
/// KAFKA_STORAGE_ERROR; the rest are for good.
fn outcome_of(error: &ReplicaError) -> MarkerOutcome {
    match error {
        ReplicaError::NotLeaderOrFollower
        | ReplicaError::NotEnoughReplicas { .. }
        | ReplicaError::NotEnoughReplicasAfterAppend { .. }
        | ReplicaError::RequestTimedOut
        | ReplicaError::Flush(_)
        | ReplicaError::FlushAborted
        | ReplicaError::Log(LogError::Io(_) | LogError::LeaderEpoch(_)) => MarkerOutcome::Retry,
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
pub async fn write_txn_marker(
    replicas: &ReplicaManager,
    groups: &GroupCoordinator,
    topic: &str,
    topic_id: TopicId,
    index: PartitionIndex,
    marker: &TxnMarker,
) -> Result<(), ReplicaError> {
    let record_type = if marker.commit {
        ControlRecordType::Commit
    } else {
        ControlRecordType::Abort
    };
    let pending = replicas.append_txn_marker(
        topic_id,
        index,
        marker.producer_id,
        marker.producer_epoch,
        record_type,
        marker.coordinator_epoch,
        now_ms(),
    )?;
    pending.wait().await?;
    if topic == OFFSETS_TOPIC {
        groups
            .complete_transaction(topic_id, index, marker.producer_id, marker.commit)
            .await;
    }
    Ok(())
}

/// A transaction's decision as it goes to each partition (one WriteTxnMarkers entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnMarker {
    pub producer_id: ProducerId,
    pub producer_epoch: ProducerEpoch,
    pub commit: bool,
    /// The leader epoch of the coordinator's `__transaction_state` partition.
    pub coordinator_epoch: i32,
}

/// The coordinator's connections to the other brokers, for WriteTxnMarkers (Kafka's TransactionMarkerChannelManager).
pub struct TransactionMarkerChannel {
    settings: ConnectionSettings,
    connections: tokio::sync::Mutex<HashMap<BrokerId, Arc<Connection>>>,
}

impl TransactionMarkerChannel {
    pub fn new(broker_id: BrokerId) -> TransactionMarkerChannel {
        TransactionMarkerChannel {
            settings: ConnectionSettings {
                client_id: format!("ferrite-txn-markers-{}", broker_id.0),
                connect_timeout: CONNECT_TIMEOUT,
                request_timeout: MARKER_REQUEST_TIMEOUT,
            },
            connections: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Sends one marker for `partitions` to `leader`; the outcome of each partition. A connection that failed is
    /// dropped and every partition retried.
    async fn send(
        &self,
        image: &MetadataImage,
        leader: BrokerId,
        marker: &TxnMarker,
        partitions: Vec<TopicPartition>,
    ) -> Vec<(TopicPartition, MarkerOutcome)> {
        let retry_all = |partitions: Vec<TopicPartition>| {
            partitions
                .into_iter()
                .map(|p| (p, MarkerOutcome::Retry))
                .collect::<Vec<_>>()
        };
        let Some(broker) = image.brokers.get(&leader).filter(|_| image.is_live(leader)) else {
            return retry_all(partitions);
        };
        let addr = format!("{}:{}", broker.host, broker.port);
        let connection = match self.connection(leader, &addr).await {
            Some(connection) => connection,
            None => return retry_all(partitions),
        };
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for partition in &partitions {
            by_topic
                .entry(partition.topic.as_str())
                .or_default()
                .push(partition.partition);
        }
        let topics = by_topic
            .into_iter()
            .map(|(topic, indexes)| {
                WritableTxnMarkerTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partition_indexes(indexes)
            })
            .collect();
        let request =
            WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(WireProducerId(marker.producer_id.0))
                .with_producer_epoch(marker.producer_epoch.0)
                .with_transaction_result(marker.commit)
                .with_coordinator_epoch(marker.coordinator_epoch)
                .with_topics(topics)]);
        let response = match connection.send(|_| request).await {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(%addr, %error, "WriteTxnMarkers failed; reconnecting");
                self.connections.lock().await.remove(&leader);
                return retry_all(partitions);
            }
        };
        let mut codes: HashMap<(String, i32), i16> = HashMap::new();
        for result in response.markers {
            for topic in result.topics {
                for partition in topic.partitions {
                    codes.insert(
                        (topic.name.0.to_string(), partition.partition_index),
                        partition.error_code,
                    );
                }
            }
        }
        partitions
            .into_iter()
            .map(|p| {
                let code = codes.get(&(p.topic.clone(), p.partition)).copied();
                (p, code.map_or(MarkerOutcome::Retry, outcome_of_code))
            })
            .collect()
    }

    async fn connection(&self, leader: BrokerId, addr: &str) -> Option<Arc<Connection>> {
        let mut connections = self.connections.lock().await;
        if let Some(connection) = connections.get(&leader).filter(|c| c.addr() == addr) {
            return Some(connection.clone());
        }
        match Connection::connect(addr, &self.settings).await {
            Ok(connection) => {
                let connection = Arc::new(connection);
                connections.insert(leader, connection.clone());
                Some(connection)
            }
            Err(error) => {
                tracing::debug!(%addr, %error, "cannot reach a partition leader for transaction markers");
                None
            }
        }
    }
}

/// What a WriteTxnMarkers partition error means to the coordinator, as Kafka's completion handler reads it.
fn outcome_of_code(code: i16) -> MarkerOutcome {
    match ResponseError::try_from_code(code) {
        None => MarkerOutcome::Done,
        Some(
            ResponseError::UnknownTopicOrPartition
            | ResponseError::NotLeaderOrFollower
            | ResponseError::NotEnoughReplicas
            | ResponseError::NotEnoughReplicasAfterAppend
            | ResponseError::RequestTimedOut
            | ResponseError::KafkaStorageError,
        ) => MarkerOutcome::Retry,
        Some(_) => MarkerOutcome::Refused,
    }
}

/// Writes the markers of `completion` to each of its partitions (here, or through `channel` to their leaders),
/// retrying those that are not ready with a growing backoff for as long as `still_coordinator` says this broker
/// still coordinates the transaction. Returns whether every partition is done (false: the coordinator moved, and
/// the next one completes the transaction from its Prepare record).
#[allow(clippy::too_many_arguments)]
pub async fn write_markers(
    replicas: &ReplicaManager,
    groups: &GroupCoordinator,
    channel: &TransactionMarkerChannel,
    broker_id: BrokerId,
    image: impl Fn() -> Arc<MetadataImage>,
    completion: &Completion,
    coordinator_epoch: i32,
    still_coordinator: impl Fn() -> bool,
) -> bool {
    let marker = TxnMarker {
        producer_id: completion.producer_id,
        producer_epoch: completion.producer_epoch,
        commit: completion.commit,
        coordinator_epoch,
    };
    let mut remaining: Vec<TopicPartition> = completion.partitions.clone();
    let mut backoff = FIRST_RETRY_BACKOFF;
    loop {
        if !still_coordinator() {
            return false;
        }
        let image = image();
        let mut local = Vec::new();
        let mut remote: BTreeMap<BrokerId, Vec<TopicPartition>> = BTreeMap::new();
        for partition in remaining {
            let index = PartitionIndex(partition.partition);
            // A topic deleted since it joined the transaction has no one to read it: nothing to write.
            let Some((topic_id, leader)) = image.topic(&partition.topic).and_then(|t| {
                let registration = t.partitions.get(&index)?;
                Some((t.topic_id, registration.leader))
            }) else {
                continue;
            };
            if leader == broker_id {
                local.push((partition, topic_id, index));
            } else {
                remote.entry(leader).or_default().push(partition);
            }
        }
        // Every partition of a round at once: each waits for its own fsync or replicas.
        let local_writes = futures::future::join_all(local.into_iter().map(
            |(partition, topic_id, index)| async move {
                let written =
                    write_txn_marker(replicas, groups, &partition.topic, topic_id, index, &marker)
                        .await;
                let outcome = match written {
                    Ok(()) => MarkerOutcome::Done,
                    Err(error) => {
                        let outcome = outcome_of(&error);
                        tracing::debug!(topic = %partition.topic, partition = index.0, %error, ?outcome, transactional_id = %completion.transactional_id, "transaction marker not written");
                        outcome
                    }
                };
                (partition, outcome)
            },
        ));
        let image = &image;
        let remote_writes = futures::future::join_all(
            remote
                .into_iter()
                .map(|(leader, partitions)| channel.send(image, leader, &marker, partitions)),
        );
        let (local_outcomes, remote_outcomes) =
            futures::future::join(local_writes, remote_writes).await;
        let mut retry = Vec::new();
        for (partition, outcome) in local_outcomes
            .into_iter()
            .chain(remote_outcomes.into_iter().flatten())
        {
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
