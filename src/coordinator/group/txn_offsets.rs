//! Transactional offset commits of a [`GroupCoordinatorShard`] (KIP-98; Kafka's OffsetMetadataManager): the offsets a
//! transactional producer sends with TxnOffsetCommit (`sendOffsetsToTransaction`).
//!
//! They are OffsetCommit records like any other, in a transactional batch of the producer (its id and epoch in the
//! header, base sequence -1). Replaying such a record keeps the offset as pending for that producer; the COMMIT
//! marker of the producer's transaction, when it reaches this partition, makes the pending offsets committed, and an
//! ABORT drops them. A committed offset whose record came after the pending one's (a plain OffsetCommit made while the
//! transaction was open) stays. Until then OffsetFetch does not see them, and with require_stable answers
//! UNSTABLE_OFFSET_COMMIT for their partitions.
//!
//! A crash leaves nothing to repair: the records and the marker are in the log, and a reload replays them in order.
//! A transaction whose marker is not in the log yet is still open after the reload; the transaction coordinator
//! writes the marker again when it completes the transaction.

use super::ids::{GroupId, GroupInstanceId, MemberId};
use super::offsets::CommitPartition;
use super::records::{CoordinatorRecord, OffsetCommitValue};
use super::shard::{validate_member, GroupCoordinatorShard, Output};
use super::{GroupError, GroupState};
use crate::ids::{ProducerEpoch, ProducerId};

/// A TxnOffsetCommit: the offsets a transactional producer commits for a group as part of its transaction.
#[derive(Debug, Clone)]
pub struct TxnCommitRequest {
    pub group_id: GroupId,
    pub producer_id: ProducerId,
    pub producer_epoch: ProducerEpoch,
    /// Empty, with generation -1 and no instance id, before v3 (and from producers outside group management).
    pub member_id: MemberId,
    pub group_instance_id: Option<GroupInstanceId>,
    pub generation: i32,
    pub partitions: Vec<CommitPartition>,
}

impl GroupCoordinatorShard {
    /// TxnOffsetCommit: one OffsetCommit record per accepted partition, which the runtime writes as a
    /// transactional batch of the request's producer. Per partition, the error if it was refused: the group's when
    /// the request fails validation, OFFSET_METADATA_TOO_LARGE for oversized metadata.
    pub fn txn_commit_offsets(
        &mut self,
        now: i64,
        request: &TxnCommitRequest,
    ) -> Output<Vec<Option<GroupError>>> {
        let group_check = self.validate_txn_commit(request);
        let max_metadata = self.config.offset_metadata_max_bytes;
        let mut output = Output::new(Vec::with_capacity(request.partitions.len()));
        for p in &request.partitions {
            let error = match &group_check {
                Err(error) => Some(error.clone()),
                Ok(()) if p.metadata.as_ref().is_some_and(|m| m.len() > max_metadata) => {
                    Some(GroupError::OffsetMetadataTooLarge)
                }
                Ok(()) => {
                    output.records.push(CoordinatorRecord::OffsetCommit {
                        group: request.group_id.clone(),
                        topic: p.topic.clone(),
                        partition: p.partition,
                        // No retention time: TxnOffsetCommit has none.
                        value: Some(OffsetCommitValue {
                            offset: p.offset,
                            leader_epoch: p.leader_epoch,
                            metadata: p.metadata.clone().unwrap_or_default(),
                            commit_timestamp_ms: now,
                            expire_timestamp_ms: None,
                        }),
                    });
                    None
                }
            };
            output.response.push(error);
        }
        output
    }

    /// Kafka's ClassicGroup.validateOffsetCommit for a transactional commit. Unlike a plain commit, a request
    /// without member id, generation and instance id (TxnOffsetCommit before v3) is accepted whatever the group's
    /// state, and so is one during CompletingRebalance: the transaction, not the group, fences such producers.
    fn validate_txn_commit(&self, request: &TxnCommitRequest) -> Result<(), GroupError> {
        let Some(group) = self.groups.get(&request.group_id) else {
            // A producer outside group management commits for a group of its own, which the records create.
            return if request.generation < 0 {
                Ok(())
            } else {
                Err(GroupError::IllegalGeneration)
            };
        };
        if group.is(GroupState::Dead) {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if request.generation < 0 && group.is(GroupState::Empty) {
            return Ok(());
        }
        if request.generation >= 0
            || !request.member_id.is_empty()
            || request.group_instance_id.is_some()
        {
            validate_member(
                group,
                &request.member_id,
                request.group_instance_id.as_ref(),
            )?;
            if request.generation != group.generation {
                return Err(GroupError::IllegalGeneration);
            }
        }
        Ok(())
    }

    /// Applies a record of a transactional batch of `producer_id`: an offset commit becomes pending for that
    /// producer (creating its group, as a plain commit does); anything else applies at once, as Kafka replays group
    /// metadata and tombstones whatever batch they are in.
    pub fn replay_transactional(&mut self, producer_id: ProducerId, record: &CoordinatorRecord) {
        let CoordinatorRecord::OffsetCommit {
            group,
            topic,
            partition,
            value: Some(value),
        } = record
        else {
            self.replay(record);
            return;
        };
        let pending = self.next_commit(group, value);
        self.pending_offsets
            .entry(producer_id)
            .or_default()
            .entry(group.clone())
            .or_default()
            .insert((topic.clone(), *partition), pending);
        self.open_transactions
            .entry(group.clone())
            .or_default()
            .insert(producer_id);
    }

    /// Applies the end of `producer_id`'s transaction on this partition: on COMMIT its pending offsets become the
    /// committed ones (unless a later record committed that partition already), on ABORT they are dropped. Nothing
    /// pending for the producer (a marker already applied, a transaction without offsets here) changes nothing.
    pub fn end_transaction(&mut self, producer_id: ProducerId, commit: bool) {
        let Some(pending) = self.pending_offsets.remove(&producer_id) else {
            return;
        };
        for group in pending.keys() {
            if let Some(producers) = self.open_transactions.get_mut(group) {
                producers.remove(&producer_id);
                if producers.is_empty() {
                    self.open_transactions.remove(group);
                }
            }
        }
        if !commit {
            return;
        }
        for (group, offsets) in pending {
            for (key, offset) in offsets {
                let committed = self.offsets.entry(group.clone()).or_default();
                if committed
                    .get(&key)
                    .is_none_or(|existing| offset.order > existing.order)
                {
                    committed.insert(key, offset);
                }
            }
        }
    }

    /// Whether an open transaction has an offset pending for the partition (Kafka's hasPendingTransactionalOffsets).
    pub fn has_pending_offset(&self, group_id: &GroupId, topic: &str, partition: i32) -> bool {
        let key = (topic.to_string(), partition);
        self.open_transactions
            .get(group_id)
            .into_iter()
            .flatten()
            .any(|producer_id| {
                self.pending_offsets
                    .get(producer_id)
                    .and_then(|groups| groups.get(group_id))
                    .is_some_and(|offsets| offsets.contains_key(&key))
            })
    }

    /// Tombstones for the partitions open transactions commit offsets of but that have no committed offset (those
    /// get one anyway): deleting a group drops its pending offsets too, with one tombstone per partition.
    pub(super) fn pending_tombstones(&self, group_id: &GroupId) -> Vec<CoordinatorRecord> {
        let committed = self.offsets.get(group_id);
        let mut keys: Vec<&(String, i32)> = self
            .open_transactions
            .get(group_id)
            .into_iter()
            .flatten()
            .filter_map(|producer_id| self.pending_offsets.get(producer_id)?.get(group_id))
            .flat_map(|offsets| offsets.keys())
            .filter(|key| committed.is_none_or(|c| !c.contains_key(*key)))
            .collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .map(|(topic, partition)| CoordinatorRecord::OffsetCommit {
                group: group_id.clone(),
                topic: topic.clone(),
                partition: *partition,
                value: None,
            })
            .collect()
    }
}

/// Pending offsets as a test sees them: `(producer, group, topic, partition)` → offset.
#[cfg(test)]
impl GroupCoordinatorShard {
    pub(super) fn pending_view(&self) -> Vec<(ProducerId, GroupId, String, i32, i64)> {
        let mut view: Vec<_> = self
            .pending_offsets
            .iter()
            .flat_map(|(producer_id, groups)| {
                groups.iter().flat_map(move |(group, offsets)| {
                    offsets.iter().map(move |((topic, partition), c)| {
                        (
                            *producer_id,
                            group.clone(),
                            topic.clone(),
                            *partition,
                            c.value.offset,
                        )
                    })
                })
            })
            .collect();
        view.sort_by(|a, b| (a.0, &a.1, &a.2, a.3).cmp(&(b.0, &b.1, &b.2, b.3)));
        view
    }
}
