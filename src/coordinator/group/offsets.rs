//! Committed offsets and the group admin operations of a [`GroupCoordinatorShard`]: OffsetCommit, OffsetFetch,
//! OffsetDelete, ListGroups, DescribeGroups, DeleteGroups, and offset expiry (offsets.retention.minutes).
//!
//! Offsets a transaction commits ([`txn_offsets`](super::txn_offsets)) are pending until it ends: OffsetFetch does
//! not return them (and with require_stable answers UNSTABLE_OFFSET_COMMIT for their partitions), expiry keeps the
//! committed offset of such a partition and the group, and the deletions tombstone them too.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::classic::{ClassicGroup, GroupState};
use super::ids::{GroupId, GroupInstanceId, MemberId};
use super::records::{CoordinatorRecord, OffsetCommitValue};
use super::shard::{validate_member, GroupCoordinatorShard, Output, TimerKey};
use super::GroupError;

#[derive(Debug, Clone)]
pub struct CommitRequest {
    pub group_id: GroupId,
    pub member_id: MemberId,
    pub group_instance_id: Option<GroupInstanceId>,
    /// -1 for commits from outside group management (simple consumers, admin tools).
    pub generation: i32,
    /// OffsetCommit v2..=v4's retention_time_ms when not -1.
    pub retention_ms: Option<i64>,
    pub partitions: Vec<CommitPartition>,
}

#[derive(Debug, Clone)]
pub struct CommitPartition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: MemberId,
    pub group_instance_id: Option<GroupInstanceId>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: GroupId,
    pub protocol_type: String,
    pub state: GroupState,
}

/// One partition's committed offset as OffsetFetch reports it (-1 and "" when nothing was committed, or when
/// `error` says why not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedOffset {
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    /// UNSTABLE_OFFSET_COMMIT: require_stable was asked and a transaction has an offset pending here.
    pub error: Option<GroupError>,
}

impl FetchedOffset {
    /// Nothing to report for `partition`, because of `error` if any.
    pub fn none(partition: i32, error: Option<GroupError>) -> FetchedOffset {
        FetchedOffset {
            partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error,
        }
    }
}

/// A committed offset, numbered by the place of its record among the partition's offset commits (Kafka keeps the
/// record offset): a committing transaction's offset replaces the committed one only if its record came later, so
/// that a plain commit made meanwhile stands, as it would after a reload of a compacted partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Committed {
    pub value: OffsetCommitValue,
    pub order: u64,
}

impl GroupCoordinatorShard {
    /// The next offset commit record, replayed: its number, and its group, which it creates if needed (Kafka's
    /// "simple" group: Empty, without a protocol type).
    pub(super) fn next_commit(&mut self, group: &GroupId, value: &OffsetCommitValue) -> Committed {
        self.groups
            .entry(group.clone())
            .or_insert_with(|| ClassicGroup::new(group.clone(), value.commit_timestamp_ms));
        self.commit_records += 1;
        Committed {
            value: value.clone(),
            order: self.commit_records,
        }
    }

    pub fn commit_offsets(
        &mut self,
        now: i64,
        request: &CommitRequest,
    ) -> Output<Vec<Option<GroupError>>> {
        let group_check = self.validate_commit(request);
        let max_metadata = self.config.offset_metadata_max_bytes;
        let mut output = Output::new(Vec::with_capacity(request.partitions.len()));
        if let Some(member) = self
            .groups
            .get(&request.group_id)
            .and_then(|g| g.members.get(&request.member_id))
        {
            if group_check.is_ok() {
                self.timers.insert(
                    TimerKey::Heartbeat {
                        group: request.group_id.clone(),
                        member: request.member_id.clone(),
                    },
                    now + i64::from(member.session_timeout_ms),
                );
            }
        }
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
                        value: Some(OffsetCommitValue {
                            offset: p.offset,
                            leader_epoch: p.leader_epoch,
                            metadata: p.metadata.clone().unwrap_or_default(),
                            commit_timestamp_ms: now,
                            expire_timestamp_ms: request
                                .retention_ms
                                .map(|r| now.saturating_add(r)),
                        }),
                    });
                    None
                }
            };
            output.response.push(error);
        }
        output
    }

    fn validate_commit(&self, request: &CommitRequest) -> Result<(), GroupError> {
        let Some(group) = self.groups.get(&request.group_id) else {
            // Without a group, only commits from outside group management are accepted (and create it).
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
        validate_member(
            group,
            &request.member_id,
            request.group_instance_id.as_ref(),
        )?;
        if request.generation != group.generation {
            return Err(GroupError::IllegalGeneration);
        }
        if group.is(GroupState::CompletingRebalance) {
            return Err(GroupError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Committed offsets of `topics` (every committed partition when `None`). With `require_stable` (OffsetFetch
    /// v7+), a partition with an offset pending in an open transaction answers UNSTABLE_OFFSET_COMMIT instead.
    pub fn fetch_offsets(
        &self,
        group_id: &GroupId,
        topics: Option<&[(String, Vec<i32>)]>,
        require_stable: bool,
    ) -> Vec<(String, Vec<FetchedOffset>)> {
        let committed = self.offsets.get(group_id);
        let fetched = |topic: &str, value: Option<&Committed>, partition: i32| match value {
            _ if require_stable && self.has_pending_offset(group_id, topic, partition) => {
                FetchedOffset::none(partition, Some(GroupError::UnstableOffsetCommit))
            }
            Some(Committed { value: v, .. }) => FetchedOffset {
                partition,
                offset: v.offset,
                leader_epoch: v.leader_epoch,
                metadata: v.metadata.clone(),
                error: None,
            },
            None => FetchedOffset::none(partition, None),
        };
        match topics {
            Some(topics) => topics
                .iter()
                .map(|(topic, partitions)| {
                    let offsets = partitions
                        .iter()
                        .map(|p| {
                            let value = committed.and_then(|c| c.get(&(topic.clone(), *p)));
                            fetched(topic, value, *p)
                        })
                        .collect();
                    (topic.clone(), offsets)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<FetchedOffset>> = BTreeMap::new();
                for ((topic, partition), value) in committed.into_iter().flatten() {
                    by_topic.entry(topic.clone()).or_default().push(fetched(
                        topic,
                        Some(value),
                        *partition,
                    ));
                }
                by_topic.into_iter().collect()
            }
        }
    }

    /// Groups in the given states (all when `states` is empty; names compare case-insensitively, as Kafka's).
    pub fn list_groups(&self, states: &[String]) -> Vec<GroupListing> {
        let mut listed: Vec<GroupListing> = self
            .groups
            .values()
            .filter(|g| {
                states.is_empty()
                    || states
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(g.state.name()))
            })
            .map(|g| GroupListing {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
            })
            .collect();
        listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        listed
    }

    /// Kafka's group summary: members' metadata and assignments only while the group is Stable.
    pub fn describe_group(&self, group_id: &GroupId) -> Option<GroupDescription> {
        let group = self.groups.get(group_id)?;
        let stable = group.is(GroupState::Stable);
        let protocol = if stable {
            group.protocol_name.clone().unwrap_or_default()
        } else {
            String::new()
        };
        let members = group
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata(&protocol)
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        Some(GroupDescription {
            state: group.state,
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol,
            members,
        })
    }

    /// DeleteGroups: only Empty groups go; their offsets and metadata are tombstoned.
    pub fn delete_groups(&mut self, group_ids: &[GroupId]) -> Output<Vec<Option<GroupError>>> {
        let mut output = Output::new(Vec::with_capacity(group_ids.len()));
        for group_id in group_ids {
            let error = match self.groups.get(group_id) {
                None => Some(GroupError::GroupIdNotFound),
                Some(g) if g.is(GroupState::Dead) => Some(GroupError::GroupIdNotFound),
                Some(g) if !g.is(GroupState::Empty) || !g.pending_members.is_empty() => {
                    Some(GroupError::NonEmptyGroup)
                }
                Some(_) => {
                    output.records.extend(self.tombstones(group_id, |_| true));
                    output.records.extend(self.pending_tombstones(group_id));
                    output.records.push(CoordinatorRecord::GroupMetadata {
                        group: group_id.clone(),
                        value: None,
                    });
                    None
                }
            };
            output.response.push(error);
        }
        output
    }

    /// OffsetDelete: offsets of topics the group is not subscribed to (or of an Empty group) are tombstoned.
    #[allow(clippy::type_complexity)]
    pub fn delete_offsets(
        &mut self,
        group_id: &GroupId,
        partitions: &[(String, i32)],
    ) -> Output<Result<Vec<Option<GroupError>>, GroupError>> {
        let Some(group) = self.groups.get(group_id) else {
            return Output::new(Err(GroupError::GroupIdNotFound));
        };
        if group.is(GroupState::Dead) {
            return Output::new(Err(GroupError::GroupIdNotFound));
        }
        let empty = group.is(GroupState::Empty);
        if !empty && group.protocol_type.as_deref() != Some("consumer") {
            return Output::new(Err(GroupError::NonEmptyGroup));
        }
        let subscribed = |topic: &str| {
            !empty
                && group
                    .subscribed_topics
                    .as_ref()
                    .is_none_or(|topics| topics.contains(topic))
        };
        let mut output = Output::new(Ok(Vec::with_capacity(partitions.len())));
        let mut errors = Vec::with_capacity(partitions.len());
        for (topic, partition) in partitions {
            if subscribed(topic) {
                errors.push(Some(GroupError::GroupSubscribedToTopic));
                continue;
            }
            let committed = self
                .offsets
                .get(group_id)
                .is_some_and(|o| o.contains_key(&(topic.clone(), *partition)));
            if committed || self.has_pending_offset(group_id, topic, *partition) {
                output.records.push(CoordinatorRecord::OffsetCommit {
                    group: group_id.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: None,
                });
            }
            errors.push(None);
        }
        output.response = Ok(errors);
        output
    }

    fn tombstones(
        &self,
        group_id: &GroupId,
        expired: impl Fn(&((String, i32), &OffsetCommitValue)) -> bool,
    ) -> Vec<CoordinatorRecord> {
        self.offsets
            .get(group_id)
            .into_iter()
            .flatten()
            .filter(|(key, committed)| expired(&((*key).clone(), &committed.value)))
            .map(|((topic, partition), _)| CoordinatorRecord::OffsetCommit {
                group: group_id.clone(),
                topic: topic.clone(),
                partition: *partition,
                value: None,
            })
            .collect()
    }

    /// Kafka's offset expiry: offsets of Empty groups expire offsets.retention.minutes after the group became empty
    /// (after the commit for groups that never had members); a Stable consumer group's offsets of topics it no
    /// longer subscribes to expire that long after their commit. An Empty group left without offsets is deleted.
    pub(super) fn expire_offsets(&mut self, now: i64) -> Output<()> {
        let retention = self.config.offsets_retention_ms;
        let mut output = Output::new(());
        let group_ids: Vec<GroupId> = self.groups.keys().cloned().collect();
        for group_id in group_ids {
            let Some(group) = self.groups.get(&group_id) else {
                continue;
            };
            let empty = group.is(GroupState::Empty) && group.pending_members.is_empty();
            let stable_subscriptions = group
                .subscribed_topics
                .clone()
                .filter(|_| group.is(GroupState::Stable));
            let state_since = group.protocol_type.as_ref().and(group.state_timestamp_ms);
            let expired = self.tombstones(&group_id, |((topic, partition), value)| {
                // What an open transaction would commit there decides when it ends; not expiry.
                if self.has_pending_offset(&group_id, topic, *partition) {
                    return false;
                }
                let base = match (&stable_subscriptions, empty) {
                    (_, true) => state_since.unwrap_or(value.commit_timestamp_ms),
                    (Some(topics), false) if !topics.contains(topic) => value.commit_timestamp_ms,
                    _ => return false,
                };
                match value.expire_timestamp_ms {
                    Some(expire) => now >= expire,
                    None => now.saturating_sub(base) >= retention,
                }
            });
            let remaining = self.offsets.get(&group_id).map_or(0, |o| o.len());
            // A group an open transaction commits offsets of stays, whatever it holds now.
            let delete_group = empty
                && remaining == expired.len()
                && !self.open_transactions.contains_key(&group_id);
            output.records.extend(expired);
            if delete_group {
                output.records.push(CoordinatorRecord::GroupMetadata {
                    group: group_id.clone(),
                    value: None,
                });
            }
        }
        self.timers.insert(
            TimerKey::OffsetExpiration,
            now + self.config.offsets_retention_check_interval_ms,
        );
        output
    }
}
