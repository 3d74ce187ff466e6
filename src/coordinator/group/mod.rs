//! The GroupCoordinator: consumer groups and committed offsets, kept in the internal compacted topic
//! `__consumer_offsets` as in Kafka.
//!
//! A group lives in partition `abs(hashCode(group id)) % partitions` of `__consumer_offsets`; the broker leading that
//! partition coordinates it. Each led partition has a [`GroupCoordinatorShard`] (pure: handlers return records and
//! replies, timers are data) that the [`CoordinatorRuntime`] loads by replaying the partition, writes for and drives
//! timers of. This module routes each group to its shard and turns the runtime's results into group answers.
//!
//! Offsets a transactional producer commits (TxnOffsetCommit) go to the same partition as a transactional batch of
//! that producer and stay pending ([`txn_offsets`]) until the transaction coordinator, having written the
//! transaction's marker on that partition, reports it with [`GroupCoordinator::complete_transaction`]; a reload
//! replays the marker from the log instead.

pub mod classic;
mod ids;
pub mod offsets;
mod rebalance;
pub mod records;
pub mod shard;
#[cfg(test)]
mod shard_tests;
pub mod txn_offsets;
#[cfg(test)]
mod txn_offsets_tests;

use std::sync::Arc;
use std::time::Duration;

use crate::ids::{BrokerId, PartitionIndex, ProducerId, TopicId};
use ferrite_raft::{ControllerChannel, CreateTopicSpec};

pub use classic::GroupState;
pub use ids::{GroupId, GroupInstanceId, MemberId};
pub use offsets::{CommitPartition, CommitRequest, FetchedOffset, GroupDescription, GroupListing};
pub use records::CoordinatorRecord;
pub use shard::{
    GroupCoordinatorShard, JoinRequest, JoinResult, Output, Reply, SyncRequest, SyncResult,
};
pub use txn_offsets::TxnCommitRequest;

pub use crate::coordinator::partition_for;
use crate::coordinator::runtime::{
    CoordinatorRuntime, Failable, ResponderId, RuntimeError, ShardHandle,
};

use crate::config::GroupCoordinatorConfig;
use crate::metadata::{MetadataDelta, MetadataImage, MetadataPublisher};
use crate::replica::{ReplicaError, ReplicaManager};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// What group operations fail with; api/mod.rs turns these into Kafka error codes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GroupError {
    #[error("unknown member id")]
    UnknownMemberId,
    #[error("illegal generation")]
    IllegalGeneration,
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    #[error("another member uses this group instance id")]
    FencedInstanceId,
    #[error("rejoin with the member id given")]
    MemberIdRequired,
    #[error("protocol type or protocols do not match the group's")]
    InconsistentGroupProtocol,
    #[error("session timeout outside group.min/max.session.timeout.ms")]
    InvalidSessionTimeout,
    #[error("invalid group id")]
    InvalidGroupId,
    #[error("the group is full")]
    GroupMaxSizeReached,
    #[error("the coordinator is not available")]
    CoordinatorNotAvailable,
    #[error("this broker does not coordinate the group")]
    NotCoordinator,
    #[error("the coordinator is loading the group")]
    CoordinatorLoadInProgress,
    #[error("no such group")]
    GroupIdNotFound,
    #[error("the group has members")]
    NonEmptyGroup,
    #[error("offset metadata is larger than offset.metadata.max.bytes")]
    OffsetMetadataTooLarge,
    #[error("the group subscribes to the topic")]
    GroupSubscribedToTopic,
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    /// OffsetFetch with require_stable: an open transaction has an offset pending for the partition.
    #[error("a transaction has an offset pending for the partition")]
    UnstableOffsetCommit,
    #[error("a record does not fit the __consumer_offsets schema")]
    InvalidRecord(#[source] records::RecordError),
    #[error("writing to __consumer_offsets failed")]
    Write(#[source] Arc<ReplicaError>),
}

impl From<RuntimeError> for GroupError {
    fn from(error: RuntimeError) -> GroupError {
        match error {
            RuntimeError::NotCoordinator => GroupError::NotCoordinator,
            RuntimeError::LoadInProgress => GroupError::CoordinatorLoadInProgress,
            RuntimeError::BatchTooLarge => GroupError::InvalidRecord(records::RecordError::TooLong),
            RuntimeError::Write(error) => GroupError::Write(error),
        }
    }
}

/// Errors compare by kind (their sources are not comparable).
impl PartialEq for GroupError {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}
impl Eq for GroupError {}

pub struct GroupCoordinator {
    config: GroupCoordinatorConfig,
    runtime: CoordinatorRuntime<GroupCoordinatorShard>,
}

impl GroupCoordinator {
    pub fn new(
        broker_id: BrokerId,
        config: GroupCoordinatorConfig,
        replicas: Arc<ReplicaManager>,
    ) -> GroupCoordinator {
        GroupCoordinator {
            config,
            runtime: CoordinatorRuntime::new(OFFSETS_TOPIC, broker_id, replicas),
        }
    }

    pub fn config(&self) -> &GroupCoordinatorConfig {
        &self.config
    }

    /// Creates `__consumer_offsets` (offsets.topic.num.partitions, cleanup.policy=compact). Its replication factor
    /// is offsets.topic.replication.factor, lowered to the number of registered brokers when fewer are registered
    /// (so that a single node works out of the box; Kafka would refuse until enough brokers exist).
    pub async fn create_offsets_topic(
        &self,
        controller: &ControllerChannel,
        brokers: usize,
        timeout: std::time::Duration,
    ) {
        let replication_factor = self
            .config
            .offsets_topic_replication_factor
            .min(i16::try_from(brokers.max(1)).unwrap_or(i16::MAX));
        let spec = CreateTopicSpec {
            name: OFFSETS_TOPIC.to_string(),
            num_partitions: self.config.offsets_topic_num_partitions,
            replication_factor,
            assignments: Vec::new(),
            configs: vec![
                ("cleanup.policy".into(), "compact".into()),
                ("compression.type".into(), "producer".into()),
                (
                    "segment.bytes".into(),
                    self.config.offsets_topic_segment_bytes.to_string(),
                ),
            ],
        };
        for result in controller.create_topics(vec![spec], false, timeout).await {
            match result {
                Ok(_) => tracing::info!("created {OFFSETS_TOPIC}"),
                Err(error) => tracing::debug!(%error, "{OFFSETS_TOPIC} not created"),
            }
        }
    }

    /// The `__consumer_offsets` partition of a group, once the topic exists.
    pub fn partition_of(&self, group_id: &GroupId) -> Option<(TopicId, PartitionIndex)> {
        self.offsets_topic_partition_of(group_id.as_str())
    }

    /// The `__consumer_offsets` partition a group id maps to, once the topic exists (this broker's latest metadata):
    /// where the transaction coordinator writes the markers of a transaction that committed offsets of the group
    /// (AddOffsetsToTxn). `None` before the topic exists.
    pub fn offsets_topic_partition_of(&self, group_id: &str) -> Option<(TopicId, PartitionIndex)> {
        self.runtime.partition_of(group_id)
    }

    fn shard(
        &self,
        group_id: &GroupId,
    ) -> Result<Arc<ShardHandle<GroupCoordinatorShard>>, GroupError> {
        let (topic_id, index) = self
            .partition_of(group_id)
            .ok_or(GroupError::NotCoordinator)?;
        Ok(self.runtime.shard(topic_id, index)?)
    }

    /// Waits (briefly) until the shard of a group has been loaded, after FindCoordinator created the topic.
    pub async fn wait_loaded(&self, group_id: &GroupId, timeout: Duration) {
        self.runtime.wait_loaded(group_id.as_str(), timeout).await
    }

    /// A request the shard parks until the rebalance answers it (JoinGroup, SyncGroup).
    async fn parked<T>(
        &self,
        group_id: &GroupId,
        unwrap: impl FnOnce(Reply) -> Option<T>,
        failed: impl Fn(GroupError) -> T,
        handler: impl FnOnce(&mut GroupCoordinatorShard, ResponderId, i64) -> Output<()>,
    ) -> T {
        let reply = match self.shard(group_id) {
            Ok(shard) => shard.write_and_wait(handler).await,
            Err(error) => Err(error),
        };
        match reply {
            Ok(reply) => {
                unwrap(reply).unwrap_or_else(|| failed(GroupError::CoordinatorNotAvailable))
            }
            Err(error) => failed(error),
        }
    }

    pub async fn join_group(&self, request: JoinRequest) -> JoinResult {
        let group_id = request.group_id.clone();
        let member_id = request.member_id.clone();
        self.parked(
            &group_id,
            |reply| match reply {
                Reply::Join(result) => Some(result),
                Reply::Sync(_) => None,
            },
            |error| JoinResult::failed(error, &member_id),
            |shard, responder, now| shard.join(now, request, responder),
        )
        .await
    }

    pub async fn sync_group(&self, request: SyncRequest) -> SyncResult {
        let group_id = request.group_id.clone();
        self.parked(
            &group_id,
            |reply| match reply {
                Reply::Sync(result) => Some(result),
                Reply::Join(_) => None,
            },
            SyncResult::failed,
            |shard, responder, now| shard.sync(now, request, responder),
        )
        .await
    }

    async fn run<R: Failable<GroupError>>(
        &self,
        group_id: &GroupId,
        handler: impl FnOnce(&mut GroupCoordinatorShard, i64) -> Output<R>,
    ) -> Result<R, GroupError> {
        self.shard(group_id)?.write(handler).await
    }

    pub async fn heartbeat(
        &self,
        group_id: &GroupId,
        member_id: &MemberId,
        group_instance_id: Option<&GroupInstanceId>,
        generation: i32,
    ) -> Result<(), GroupError> {
        self.run(group_id, |s, now| {
            s.heartbeat(now, group_id, member_id, group_instance_id, generation)
        })
        .await?
    }

    pub async fn leave_group(
        &self,
        group_id: &GroupId,
        members: &[(MemberId, Option<GroupInstanceId>)],
    ) -> Result<Vec<Option<GroupError>>, GroupError> {
        self.run(group_id, |s, now| s.leave(now, group_id, members))
            .await?
    }

    pub async fn commit_offsets(
        &self,
        request: &CommitRequest,
    ) -> Result<Vec<Option<GroupError>>, GroupError> {
        self.run(&request.group_id, |s, now| s.commit_offsets(now, request))
            .await
    }

    /// TxnOffsetCommit: the offsets are written as a transactional batch of the request's producer and stay
    /// pending until [`complete_transaction`](Self::complete_transaction) (or a reload's replay of the marker)
    /// ends that producer's transaction. Per partition, the error if it was refused.
    pub async fn txn_commit_offsets(
        &self,
        request: &TxnCommitRequest,
    ) -> Result<Vec<Option<GroupError>>, GroupError> {
        self.shard(&request.group_id)?
            .write_transactional(request.producer_id, request.producer_epoch, |s, now| {
                s.txn_commit_offsets(now, request)
            })
            .await
    }

    /// The transaction coordinator wrote the COMMIT (`commit`) or ABORT marker of `producer_id` on this
    /// `__consumer_offsets` partition: the producer's pending offsets there become committed, or are dropped
    /// (Kafka's onTransactionCompleted). Waits while the partition's shard loads. A no-op if this broker does not
    /// coordinate the partition (any more): whoever loads it replays the marker from the log.
    pub async fn complete_transaction(
        &self,
        topic_id: TopicId,
        index: PartitionIndex,
        producer_id: ProducerId,
        commit: bool,
    ) {
        let Ok(shard) = self.runtime.shard(topic_id, index) else {
            return;
        };
        if let Err(error) = shard
            .apply(|s, _| s.end_transaction(producer_id, commit))
            .await
        {
            tracing::debug!(partition = index.0, %producer_id, ?error, "transaction marker left to the next coordinator");
        }
    }

    /// Committed offsets of a group, once replicated; with `require_stable`, UNSTABLE_OFFSET_COMMIT for partitions
    /// an open transaction has an offset pending for.
    pub async fn fetch_offsets(
        &self,
        group_id: &GroupId,
        topics: Option<&[(String, Vec<i32>)]>,
        require_stable: bool,
    ) -> Result<Vec<(String, Vec<FetchedOffset>)>, GroupError> {
        self.shard(group_id)?
            .read_committed(|s| s.fetch_offsets(group_id, topics, require_stable))
            .await
    }

    pub fn describe_group(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupDescription>, GroupError> {
        self.shard(group_id)?.read(|s| s.describe_group(group_id))
    }

    /// Every group this broker coordinates; COORDINATOR_LOAD_IN_PROGRESS while a shard loads.
    pub fn list_groups(&self, states: &[String]) -> Result<Vec<GroupListing>, GroupError> {
        let mut listed = Vec::new();
        for shard in self.runtime.shards() {
            listed.extend(shard.read(|s| s.list_groups(states))?);
        }
        listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(listed)
    }

    pub async fn delete_group(&self, group_id: &GroupId) -> Option<GroupError> {
        let ids = [group_id.clone()];
        match self.run(group_id, |s, _| s.delete_groups(&ids)).await {
            Ok(errors) => errors.into_iter().next().flatten(),
            Err(error) => Some(error),
        }
    }

    pub async fn delete_offsets(
        &self,
        group_id: &GroupId,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Option<GroupError>>, GroupError> {
        self.run(group_id, |s, _| s.delete_offsets(group_id, partitions))
            .await?
    }

    /// Stops every shard (clean shutdown).
    pub fn shutdown(&self) {
        self.runtime.shutdown();
    }
}

impl MetadataPublisher for GroupCoordinator {
    /// Loads a shard for each `__consumer_offsets` partition this broker now leads, and drops the others.
    fn on_metadata_update(&self, delta: &MetadataDelta, image: &MetadataImage) {
        let config = self.config.clone();
        self.runtime
            .on_metadata_update(delta, image, || GroupCoordinatorShard::new(config.clone()));
    }
}
