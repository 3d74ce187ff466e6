//! Partition reassignment on the controller (KIP-455), as KRaft's ReplicationControlManager does it.
//!
//! AlterPartitionReassignments gives a partition its target replicas. The partition's replicas become the target
//! followed by the current replicas it leaves out (`removing_replicas`, sorted), and `adding_replicas` names the
//! target replicas it did not have: the brokers act on that record, the new replicas create their logs and fetch
//! from the leader, which adds them to the ISR once they have caught up. Whichever change then puts every target
//! replica in the ISR (AlterPartition, usually) completes the reassignment in the same record
//! ([`PartitionChange`]): the replicas become the target, the ISR loses the removed replicas, a leader outside the
//! target hands over to the first in-sync target replica, and the removed replicas, no longer in the replica set,
//! delete their logs. A target that is already in sync completes at once.
//!
//! A null target cancels: the replicas and the ISR lose the replicas the reassignment was adding. A target equal to
//! the current replicas of a partition with no reassignment changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::controller::admin::validate_replicas;
use crate::controller::handlers::ControllerResult;
use crate::controller::partition_change::{Acceptor, PartitionChange};
use crate::controller::replication::{online_election, unclean_enabled};
use crate::controller::state::{ControllerState, PartitionRegistration, TopicRegistration};
use crate::controller::{ControllerError, QuorumController};
use crate::ids::{BrokerId, PartitionIndex, TopicId};

/// One partition of an AlterPartitionReassignments request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassignmentTarget {
    pub topic: String,
    pub partition: PartitionIndex,
    /// The replicas the partition should have, its preferred leader first; `None` cancels the reassignment in
    /// progress.
    pub replicas: Option<Vec<BrokerId>>,
}

/// One partition's answer to AlterPartitionReassignments.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReassignmentResult {
    pub topic: String,
    pub partition: PartitionIndex,
    pub result: Result<(), ControllerError>,
}

/// A partition whose reassignment is in progress, as ListPartitionReassignments reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OngoingReassignment {
    pub topic: String,
    pub partition: PartitionIndex,
    pub replicas: Vec<BrokerId>,
    pub adding_replicas: Vec<BrokerId>,
    pub removing_replicas: Vec<BrokerId>,
}

/// The topics (by name) and partitions a ListPartitionReassignments asks about; `None` asks about all.
pub type ReassignmentFilter = Option<Vec<(String, Vec<PartitionIndex>)>>;

/// The most partitions one AlterPartitionReassignments may name: each may write a record, and KRaft bounds the
/// records of one request (`MAX_RECORDS_PER_USER_OP`, 10000), so a hostile request cannot build a huge entry.
pub const MAX_REASSIGNMENTS_PER_REQUEST: usize = 10_000;

/// Kafka's AlterPartitionReassignments: starts, replaces or cancels each partition's reassignment. With
/// `allow_replication_factor_change` false (v1, KIP-860) a target of another size is refused. All the records
/// commit together, as Kafka's do; a partition named twice is changed the second time from what the first made
/// of it.
pub fn alter_partition_reassignments(
    state: &ControllerState,
    targets: &[ReassignmentTarget],
    allow_replication_factor_change: bool,
) -> ControllerResult<Vec<ReassignmentResult>> {
    if targets.len() > MAX_REASSIGNMENTS_PER_REQUEST {
        let message = format!(
            "The request names {} partitions, more than the {MAX_REASSIGNMENTS_PER_REQUEST} one request may \
             reassign.",
            targets.len()
        );
        let response = targets
            .iter()
            .map(|target| ReassignmentResult {
                topic: target.topic.clone(),
                partition: target.partition,
                result: Err(ControllerError::InvalidRequest(message.clone())),
            })
            .collect();
        return ControllerResult {
            records: Vec::new(),
            response,
        };
    }
    let mut changed: BTreeMap<(TopicId, PartitionIndex), PartitionRegistration> = BTreeMap::new();
    let mut records = Vec::new();
    let mut response = Vec::with_capacity(targets.len());
    for target in targets {
        let result = reassign_one(state, target, allow_replication_factor_change, &changed);
        let result = result.map(|done| {
            if let Some((topic_id, registration)) = done {
                records.push(registration.to_record(topic_id, target.partition));
                changed.insert((topic_id, target.partition), registration);
            }
        });
        response.push(ReassignmentResult {
            topic: target.topic.clone(),
            partition: target.partition,
            result,
        });
    }
    ControllerResult { records, response }
}

/// One partition's reassignment: the change to write, if any.
fn reassign_one(
    state: &ControllerState,
    target: &ReassignmentTarget,
    allow_replication_factor_change: bool,
    changed: &BTreeMap<(TopicId, PartitionIndex), PartitionRegistration>,
) -> Result<Option<(TopicId, PartitionRegistration)>, ControllerError> {
    let topic = state
        .topic_by_name(&target.topic)
        .ok_or_else(|| ControllerError::UnknownTopicOrPartition(target.topic.clone()))?;
    let partition = changed
        .get(&(topic.topic_id, target.partition))
        .or_else(|| topic.partitions.get(&target.partition))
        .ok_or_else(|| ControllerError::UnknownTopicOrPartition(topic.name.clone()))?;
    let next = match &target.replicas {
        None => cancel(state, topic, target.partition, partition)?,
        Some(replicas) => {
            if !allow_replication_factor_change {
                // The replication factor the partition has, or is headed for while a reassignment runs.
                let current =
                    (partition.replicas.len()).saturating_sub(partition.removing_replicas.len());
                if current != replicas.len() {
                    return Err(ControllerError::InvalidReplicationFactor(format!(
                        "The replication factor is changed from {current} to {}",
                        replicas.len()
                    )));
                }
            }
            start(state, partition, replicas)?
        }
    };
    Ok(next.map(|next| (topic.topic_id, next)))
}

/// Kafka's `changePartitionReassignment`: the replicas become `target` followed by those it leaves out, which are
/// removed once every target replica is in sync (at once, if they already are). A new target replaces a
/// reassignment in progress, from the replicas the partition has now.
fn start(
    state: &ControllerState,
    partition: &PartitionRegistration,
    target: &[BrokerId],
) -> Result<Option<PartitionRegistration>, ControllerError> {
    validate_replicas(state, target, None)?;
    let removing: BTreeSet<BrokerId> = partition
        .replicas
        .iter()
        .filter(|b| !target.contains(b))
        .copied()
        .collect();
    let adding: BTreeSet<BrokerId> = target
        .iter()
        .filter(|b| !partition.replicas.contains(b))
        .copied()
        .collect();
    let replicas = target.iter().chain(&removing).copied().collect();
    Ok(PartitionChange::new(partition, Acceptor::new(state))
        .assignment(
            replicas,
            adding.into_iter().collect(),
            removing.into_iter().collect(),
        )
        .build())
}

/// Kafka's `cancelPartitionReassignment` (PartitionReassignmentRevert): the replicas and the ISR lose the replicas
/// being added. When only those were in sync, the first remaining replica is made the ISR, which is an unclean
/// election and so refused unless the topic allows one.
fn cancel(
    state: &ControllerState,
    topic: &TopicRegistration,
    index: PartitionIndex,
    partition: &PartitionRegistration,
) -> Result<Option<PartitionRegistration>, ControllerError> {
    if !partition.is_reassigning() {
        return Err(ControllerError::NoReassignmentInProgress(format!(
            "No partition reassignment is in progress for {}-{index}.",
            topic.name
        )));
    }
    let kept = |replicas: &[BrokerId]| -> Vec<BrokerId> {
        replicas
            .iter()
            .copied()
            .filter(|b| !partition.adding_replicas.contains(b))
            .collect()
    };
    let replicas = kept(&partition.replicas);
    let mut isr = kept(&partition.isr);
    if isr.is_empty() {
        let first = replicas.first().copied().ok_or_else(|| {
            ControllerError::InvalidReplicaAssignment(
                "Invalid replica assignment: addingReplicas contains all replicas.".to_string(),
            )
        })?;
        if !unclean_enabled(state, &topic.name) {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "Unable to revert partition assignment for {}:{index} because it would require an unclean \
                 leader election.",
                topic.name
            )));
        }
        isr.push(first);
    }
    Ok(PartitionChange::new(partition, Acceptor::new(state))
        .isr(isr)
        .assignment(replicas, Vec::new(), Vec::new())
        .election(online_election(state, topic))
        .build())
}

/// Kafka's ListPartitionReassignments: the partitions asked about (every partition, for `None`) whose
/// reassignment is in progress. Unknown topics and partitions are left out, as Kafka leaves them.
pub fn list_partition_reassignments(
    state: &ControllerState,
    topics: Option<&[(String, Vec<PartitionIndex>)]>,
) -> Vec<OngoingReassignment> {
    let ongoing = |topic: &TopicRegistration, index: PartitionIndex| {
        let partition = topic
            .partitions
            .get(&index)
            .filter(|p| p.is_reassigning())?;
        Some(OngoingReassignment {
            topic: topic.name.clone(),
            partition: index,
            replicas: partition.replicas.clone(),
            adding_replicas: partition.adding_replicas.clone(),
            removing_replicas: partition.removing_replicas.clone(),
        })
    };
    match topics {
        None => state
            .topics()
            .flat_map(|topic| {
                topic
                    .partitions
                    .keys()
                    .filter_map(move |index| ongoing(topic, *index))
            })
            .collect(),
        Some(topics) => topics
            .iter()
            .filter_map(|(name, partitions)| Some((state.topic_by_name(name)?, partitions)))
            .flat_map(|(topic, partitions)| {
                partitions
                    .iter()
                    .filter_map(move |index| ongoing(topic, *index))
            })
            .collect(),
    }
}

impl QuorumController {
    /// Kafka's AlterPartitionReassignments: commits the reassignments started, replaced or cancelled.
    pub async fn alter_partition_reassignments(
        &self,
        targets: Vec<ReassignmentTarget>,
        allow_replication_factor_change: bool,
    ) -> Result<Vec<ReassignmentResult>, ControllerError> {
        let _write = self.writes.lock().await;
        self.catch_up().await.map_err(|f| f.to_error())?;
        let result = self.with_state(|state| {
            alter_partition_reassignments(state, &targets, allow_replication_factor_change)
        });
        if !result.records.is_empty() {
            self.write(result.records).await.map_err(|f| f.to_error())?;
        }
        Ok(result.response)
    }

    /// Kafka's ListPartitionReassignments, from the state as of every committed write.
    pub async fn list_partition_reassignments(
        &self,
        topics: ReassignmentFilter,
    ) -> Result<Vec<OngoingReassignment>, ControllerError> {
        self.catch_up().await.map_err(|f| f.to_error())?;
        Ok(self.with_state(|state| list_partition_reassignments(state, topics.as_deref())))
    }
}

#[cfg(test)]
#[path = "reassignment_tests.rs"]
mod tests;
