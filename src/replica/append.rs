//! The ReplicaManager's write path (Kafka's `ReplicaManager.appendRecords`): the one way records reach a partition
//! log, for producers and for the coordinators alike.
//!
//! An append happens in two steps. [`ReplicaManager::append_records`] finds the partition, checks that this broker
//! leads it, that the writer may write it and (acks=all) that the ISR meets min.insync.replicas, and appends, all
//! before it returns: callers append in the order their client sent the batches. The [`PendingAppend`] it returns
//! then waits, concurrently with later appends, until the records are as durable as `acks` and the flush policy
//! promise (Kafka's delayed produce).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{Partition, ReplicaError, ReplicaManager};
use crate::ids::{LeaderEpoch, Offset, PartitionIndex, ProducerEpoch, ProducerId, TopicId};
use crate::metadata::is_internal_topic;
/// Who appends: clients may not write the internal topics that the coordinators keep their state in (Kafka's
/// `internalTopicsAllowed`), and only a client's batches are checked for sequence and duplicates.
pub use crate::storage::AppendOrigin;
use crate::storage::{ControlRecordType, LogAppendInfo};

/// How many replicas must have an append before it is acknowledged: Produce's `acks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequiredAcks {
    /// `acks=0`: nobody waits.
    None,
    /// `acks=1`: the leader's log has it.
    Leader,
    /// `acks=-1` (all): every in-sync replica has it, and the ISR meets min.insync.replicas.
    All,
}

impl RequiredAcks {
    /// The codec's `acks`; `None` for a value Kafka rejects with INVALID_REQUIRED_ACKS.
    pub fn from_wire(acks: i16) -> Option<RequiredAcks> {
        match acks {
            0 => Some(RequiredAcks::None),
            1 => Some(RequiredAcks::Leader),
            -1 => Some(RequiredAcks::All),
            _ => None,
        }
    }
}

/// Records in the leader's log that are not yet acknowledged.
pub struct PendingAppend {
    partition: Arc<Partition>,
    info: LogAppendInfo,
    acks: RequiredAcks,
    /// How long acks=all waits for the ISR (Produce's `timeout_ms`).
    timeout: Duration,
}

/// How long acks=all waits for the ISR when the writer does not say (Kafka's `request.timeout.ms` default).
const DEFAULT_ACKS_TIMEOUT: Duration = Duration::from_secs(30);

impl PendingAppend {
    pub fn partition(&self) -> &Arc<Partition> {
        &self.partition
    }

    /// Returns once the records are as durable as the flush policy promises and visible below the HighWatermark;
    /// for acks=all, fails with NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below min.insync.replicas
    /// meanwhile (the records stay in the log, as in Kafka).
    pub async fn wait(self) -> Result<LogAppendInfo, ReplicaError> {
        self.partition.complete(&self.info).await?;
        if self.acks == RequiredAcks::All {
            // Kafka's delayed produce: done once every ISR member has the records, i.e. the HighWatermark passed
            // them (the leader's own copy counted as its flush policy makes it durable).
            // A broker that stopped leading in the append's epoch cannot vouch for it: the new leader may not
            // have it (Kafka's DelayedProduce answers NOT_LEADER_OR_FOLLOWER then).
            self.partition
                .wait_replicated(self.end_offset(), self.info.leader_epoch, self.timeout)
                .await?;
            self.partition.check_isr_after_append()?;
        }
        Ok(self.info)
    }

    /// The offset after the appended records, with the leader epoch they were written in: what a reader of state
    /// built from them waits for (see [`Partition::wait_replicated`]).
    pub fn end_offset(&self) -> Offset {
        Offset(self.info.last_offset.0 + 1)
    }

    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.info.leader_epoch
    }

    /// How many records the append holds (BrokerTopicMetrics' MessagesIn).
    pub fn record_count(&self) -> u32 {
        self.info.record_count
    }

    /// Waits at most `timeout` for the ISR (acks=all).
    pub fn with_timeout(mut self, timeout: Duration) -> PendingAppend {
        self.timeout = timeout;
        self
    }
}

impl ReplicaManager {
    /// This broker's replica of a partition, if it leads it: NOT_LEADER_OR_FOLLOWER otherwise (the client refreshes
    /// its metadata and finds the leader).
    pub fn leader_partition(
        &self,
        topic_id: TopicId,
        index: PartitionIndex,
    ) -> Result<Arc<Partition>, ReplicaError> {
        self.leader_partition_at(topic_id, index, None)
    }

    /// [`leader_partition`](Self::leader_partition), checking first (as Kafka's Partition does, KIP-320) the leader
    /// epoch the client believes current: an older one is FENCED_LEADER_EPOCH (the client's metadata is stale), a
    /// newer one UNKNOWN_LEADER_EPOCH (this broker's is).
    pub fn leader_partition_at(
        &self,
        topic_id: TopicId,
        index: PartitionIndex,
        current_leader_epoch: Option<LeaderEpoch>,
    ) -> Result<Arc<Partition>, ReplicaError> {
        let partition = self
            .partition(topic_id, index)
            .ok_or(ReplicaError::NotLeaderOrFollower)?;
        if let Some(epoch) = current_leader_epoch {
            let current = partition.leader_epoch();
            if epoch < current {
                return Err(ReplicaError::FencedLeaderEpoch { epoch, current });
            }
            if epoch > current {
                return Err(ReplicaError::UnknownLeaderEpoch { epoch, current });
            }
        }
        if !partition.is_leader(self.broker_id) {
            return Err(ReplicaError::NotLeaderOrFollower);
        }
        Ok(partition)
    }

    /// Appends one batch (bytes as the writer sent them) to a partition this broker leads. See the module doc for
    /// the two steps.
    pub fn append_records(
        &self,
        topic_id: TopicId,
        index: PartitionIndex,
        records: Bytes,
        acks: RequiredAcks,
        origin: AppendOrigin,
        now_ms: i64,
    ) -> Result<PendingAppend, ReplicaError> {
        let partition = self.leader_partition(topic_id, index)?;
        if origin == AppendOrigin::Client && is_internal_topic(&partition.topic) {
            return Err(ReplicaError::InternalTopic(partition.topic.to_string()));
        }
        let info =
            partition.append_as_leader(records, origin, now_ms, acks == RequiredAcks::All)?;
        Ok(PendingAppend {
            partition,
            info,
            acks,
            timeout: DEFAULT_ACKS_TIMEOUT,
        })
    }

    /// Appends a transaction marker (WriteTxnMarkers, from the transaction coordinator) to a partition this broker
    /// leads, with acks=all as Kafka writes markers: refused before the append if the ISR is short of
    /// min.insync.replicas, and [`PendingAppend::wait`] tells when it is durable. See [`crate::storage::Log::
    /// append_marker`] for what the partition's producer state makes of it.
    #[allow(clippy::too_many_arguments)]
    pub fn append_txn_marker(
        &self,
        topic_id: TopicId,
        index: PartitionIndex,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        marker: ControlRecordType,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<PendingAppend, ReplicaError> {
        let partition = self.leader_partition(topic_id, index)?;
        let info = partition.append_txn_marker(
            producer_id,
            producer_epoch,
            marker,
            coordinator_epoch,
            now_ms,
        )?;
        Ok(PendingAppend {
            partition,
            info,
            acks: RequiredAcks::All,
            timeout: DEFAULT_ACKS_TIMEOUT,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::partition::tests::{partition, state};
    use crate::storage::test_batches::batch;

    fn pending(partition: &Arc<Partition>) -> PendingAppend {
        let info = partition
            .append_as_leader(batch(1, 0), AppendOrigin::Client, 0, true)
            .expect("append");
        PendingAppend {
            partition: partition.clone(),
            info,
            acks: RequiredAcks::All,
            timeout: Duration::from_secs(30),
        }
    }

    #[tokio::test]
    async fn an_acks_all_append_fails_once_its_broker_stops_leading_in_its_epoch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Arc::new(partition(dir.path(), 1));
        p.set_state(&state(&[1, 2], &[1, 2]), 0).expect("lead");
        let waiting = tokio::spawn(pending(&p).wait());
        tokio::task::yield_now().await;
        // Broker 2 leads in epoch 1. As its follower this broker will truncate and refetch, and its HighWatermark
        // may pass the old append's offset over records that are not that append's.
        let mut follows = state(&[2, 1], &[2, 1]);
        follows.leader_epoch = LeaderEpoch(1);
        p.set_state(&follows, 0).expect("follow");
        assert!(matches!(
            waiting.await.expect("joined"),
            Err(ReplicaError::NotLeaderOrFollower)
        ));
        assert!(matches!(
            p.append_as_leader(batch(1, 0), AppendOrigin::Client, 0, true),
            Err(ReplicaError::NotLeaderOrFollower)
        ));
    }

    #[tokio::test]
    async fn leading_again_in_a_later_epoch_does_not_vouch_for_an_earlier_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Arc::new(partition(dir.path(), 1));
        let earlier = pending(&p);
        let mut again = state(&[1], &[1]);
        again.leader_epoch = LeaderEpoch(2);
        p.set_state(&again, 0).expect("lead again");
        assert!(matches!(
            earlier.wait().await,
            Err(ReplicaError::NotLeaderOrFollower)
        ));
        // An append of the new epoch is acknowledged as usual.
        pending(&p).wait().await.expect("acknowledged");
    }
}
