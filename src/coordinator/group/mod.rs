//! The GroupCoordinator: consumer groups and committed offsets, kept in the internal compacted topic
//! `__consumer_offsets` as in Kafka.
//!
//! A group lives in partition `abs(hashCode(group id)) % partitions` of `__consumer_offsets`; the broker leading that
//! partition coordinates it. Each led partition has a [`GroupCoordinatorShard`] (pure: handlers return records and
//! replies, timers are data) loaded by replaying the partition; meanwhile requests get COORDINATOR_LOAD_IN_PROGRESS.
//! This module is the runtime around the shards: it replays and appends a handler's records, delivers replies once
//! the records are durable, and drives each shard's timers with one tokio sleep until the earliest deadline.

pub mod classic;
mod ids;
pub mod offsets;
mod rebalance;
pub mod records;
pub mod shard;
#[cfg(test)]
mod shard_tests;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use crate::ids::{BrokerId, Offset, PartitionIndex, TopicId};
use bytes::Bytes;
use ferrite_raft::{CreateTopicSpec, QuorumController};
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use tokio::sync::{oneshot, Notify};

pub use classic::{GroupState, ResponderId};
pub use ids::{GroupId, GroupInstanceId, MemberId};
pub use offsets::{CommitPartition, CommitRequest, FetchedOffset, GroupDescription, GroupListing};
pub use records::CoordinatorRecord;
pub use shard::{
    GroupCoordinatorShard, JoinRequest, JoinResult, Output, Reply, SyncRequest, SyncResult,
};

use crate::config::GroupCoordinatorConfig;
use crate::metadata::{MetadataDelta, MetadataImage, MetadataPublisher};
use crate::replica::{
    now_ms, AppendOrigin, IsolationLevel, PendingAppend, ReplicaError, ReplicaManager, RequiredAcks,
};
use crate::storage;
use crate::storage::batch::BrokerRecord;

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
    #[error("a record does not fit the __consumer_offsets schema")]
    InvalidRecord(#[source] records::RecordError),
    #[error("writing to __consumer_offsets failed")]
    Write(#[source] Arc<ReplicaError>),
}

/// Errors compare by kind (their sources are not comparable).
impl PartialEq for GroupError {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}
impl Eq for GroupError {}

/// Kafka's partitioning of groups: `Utils.abs(groupId.hashCode()) % partitions`, with Java's String.hashCode over
/// UTF-16 code units.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let hash = group_id.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

/// A response that a failed write turns into an error.
pub trait Failable {
    fn fail(&mut self, error: GroupError);
}

impl Failable for () {
    fn fail(&mut self, _: GroupError) {}
}

impl<T> Failable for Result<T, GroupError> {
    fn fail(&mut self, error: GroupError) {
        *self = Err(error);
    }
}

impl Failable for Vec<Option<GroupError>> {
    fn fail(&mut self, error: GroupError) {
        for slot in self.iter_mut() {
            *slot = Some(error.clone());
        }
    }
}

enum ShardState {
    Loading,
    Loaded(Box<GroupCoordinatorShard>),
}

struct ShardSlot {
    state: ShardState,
    responders: HashMap<ResponderId, oneshot::Sender<Reply>>,
    next_responder: u64,
}

/// One `__consumer_offsets` partition led by this broker.
pub struct ShardHandle {
    topic_id: TopicId,
    index: PartitionIndex,
    replicas: Arc<ReplicaManager>,
    slot: Mutex<ShardSlot>,
    wake: Notify,
    stopped: AtomicBool,
}

/// Records appended but not yet durable, and what to deliver once they are.
pub struct Pending<R> {
    write: Option<Result<PendingAppend, GroupError>>,
    replies: Vec<(oneshot::Sender<Reply>, Reply)>,
    response: R,
}

impl<R: Failable> Pending<R> {
    pub async fn finish(mut self) -> R {
        let failure = match self.write.take() {
            None => None,
            Some(Err(error)) => Some(error),
            Some(Ok(append)) => append
                .wait()
                .await
                .err()
                .map(|e| GroupError::Write(Arc::new(e))),
        };
        if let Some(error) = failure {
            tracing::error!(error = ?error, "group coordinator write failed");
            self.response.fail(error.clone());
            for (_, reply) in &mut self.replies {
                *reply = reply.failed(error.clone());
            }
        }
        for (sender, reply) in self.replies {
            let _ = sender.send(reply);
        }
        self.response
    }
}

impl ShardHandle {
    fn slot(&self) -> MutexGuard<'_, ShardSlot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a handler on the loaded shard: its records are appended to the partition and then replayed, under the
    /// lock (so the log holds them in replay order); replies are handed out with the returned [`Pending`].
    ///
    /// Records the log refused (too large for it, leadership lost) are not replayed: the shard's state must be
    /// what a reload from the log would build, and the handler's response then carries the error.
    fn execute<R>(
        &self,
        reply_to: Option<oneshot::Sender<Reply>>,
        already_replayed: bool,
        handler: impl FnOnce(&mut GroupCoordinatorShard, ResponderId, i64) -> Output<R>,
    ) -> Result<Pending<R>, GroupError> {
        let now = now_ms();
        let mut slot = self.slot();
        let responder = ResponderId(slot.next_responder);
        slot.next_responder += 1;
        let ShardState::Loaded(shard) = &mut slot.state else {
            return Err(GroupError::CoordinatorLoadInProgress);
        };
        let output = handler(shard, responder, now);
        let mut write = None;
        if !output.records.is_empty() {
            let appended =
                encode_batch(&output.records, now).and_then(|batch| self.append(batch, now));
            if appended.is_ok() && !already_replayed {
                for record in &output.records {
                    shard.replay(record);
                }
            }
            write = Some(appended);
        }
        if let Some(sender) = reply_to {
            slot.responders.insert(responder, sender);
        }
        let replies = output
            .replies
            .into_iter()
            .filter_map(|(id, reply)| slot.responders.remove(&id).map(|s| (s, reply)))
            .collect();
        drop(slot);
        self.wake.notify_one();
        Ok(Pending {
            write,
            replies,
            response: output.response,
        })
    }

    /// Writes through the ReplicaManager as Kafka's coordinators do: acks=all, and only while this broker leads
    /// the partition (NOT_COORDINATOR otherwise).
    fn append(&self, batch: Bytes, now: i64) -> Result<PendingAppend, GroupError> {
        self.replicas
            .append_records(
                self.topic_id,
                self.index,
                batch,
                RequiredAcks::All,
                AppendOrigin::Coordinator,
                now,
            )
            .map_err(|error| match error {
                ReplicaError::NotLeaderOrFollower => GroupError::NotCoordinator,
                error => GroupError::Write(Arc::new(error)),
            })
    }

    fn read<T>(&self, f: impl FnOnce(&GroupCoordinatorShard) -> T) -> Result<T, GroupError> {
        match &self.slot().state {
            ShardState::Loaded(shard) => Ok(f(shard)),
            ShardState::Loading => Err(GroupError::CoordinatorLoadInProgress),
        }
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Parked JoinGroup/SyncGroup requests see their channel close and answer NOT_COORDINATOR.
        self.slot().responders.clear();
        self.wake.notify_one();
    }

    /// Replays the partition from its log start to its HighWatermark, then serves and drives timers.
    async fn load_and_run(self: Arc<Self>, config: GroupCoordinatorConfig) {
        let started = std::time::Instant::now();
        let mut shard = GroupCoordinatorShard::new(config);
        let mut count = 0usize;
        if let Some(partition) = self.replicas.partition(self.topic_id, self.index) {
            let end = partition.high_watermark();
            let mut offset = partition.log_start_offset();
            while offset < end {
                let read = match partition.read(
                    offset,
                    1 << 20,
                    true,
                    IsolationLevel::ReadUncommitted,
                ) {
                    Ok(read) => read,
                    Err(error) => {
                        tracing::error!(partition = self.index.0, %error, "cannot read __consumer_offsets");
                        break;
                    }
                };
                match replay_batches(&mut shard, &read.records, offset) {
                    Some((next, n)) if next > offset => {
                        offset = next;
                        count += n;
                    }
                    _ => break,
                }
            }
        }
        shard.on_loaded(now_ms());
        self.slot().state = ShardState::Loaded(Box::new(shard));
        tracing::info!(
            partition = self.index.0,
            records = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded __consumer_offsets partition"
        );
        self.drive_timers().await;
    }

    async fn drive_timers(self: Arc<Self>) {
        while !self.stopped.load(Ordering::SeqCst) {
            let deadline = match &self.slot().state {
                ShardState::Loaded(shard) => shard.next_deadline(),
                ShardState::Loading => None,
            };
            let sleep = async move {
                match deadline {
                    Some(at) => {
                        let wait = u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0);
                        tokio::time::sleep(Duration::from_millis(wait)).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => {
                    match self.execute(None, true, |shard, _, now| shard.fire_timers(now)) {
                        Ok(pending) => { tokio::spawn(pending.finish()); }
                        Err(error) => tracing::warn!(%error, "timers not fired"),
                    }
                }
                _ = self.wake.notified() => {}
            }
        }
    }
}

/// Replays the records of `bytes` at or after `from`; returns the offset after the last batch and how many records
/// were applied, or `None` when nothing could be read.
fn replay_batches(
    shard: &mut GroupCoordinatorShard,
    bytes: &Bytes,
    from: Offset,
) -> Option<(Offset, usize)> {
    let mut rest = bytes.clone();
    let mut next = None;
    let mut count = 0;
    while rest.len() >= 61 {
        let base = i64::from_be_bytes(rest[0..8].try_into().ok()?);
        let length = i32::from_be_bytes(rest[8..12].try_into().ok()?);
        let size = 12 + usize::try_from(length).ok()?;
        if rest.len() < size {
            break;
        }
        let last_delta = i32::from_be_bytes(rest[23..27].try_into().ok()?);
        let mut batch = rest.split_to(size);
        next = Some(Offset(base + i64::from(last_delta) + 1));
        let records = match RecordBatchDecoder::decode(&mut batch) {
            Ok(set) => set.records,
            Err(error) => {
                tracing::error!(offset = base, %error, "skipping an unreadable __consumer_offsets batch");
                continue;
            }
        };
        for record in records {
            if record.offset < from.0 || record.control {
                continue;
            }
            let Some(key) = record.key.as_deref() else {
                continue;
            };
            match CoordinatorRecord::decode(key, record.value.as_deref()) {
                Ok(Some(decoded)) => {
                    shard.replay(&decoded);
                    count += 1;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(offset = record.offset, %error, "skipping an unreadable __consumer_offsets record")
                }
            }
        }
    }
    next.map(|n| (n, count))
}

fn encode_batch(records: &[CoordinatorRecord], now: i64) -> Result<Bytes, GroupError> {
    let encoded = records
        .iter()
        .map(|record| {
            Ok(BrokerRecord {
                key: Some(record.encode_key().map_err(GroupError::InvalidRecord)?),
                value: record.encode_value().map_err(GroupError::InvalidRecord)?,
                timestamp_ms: now,
            })
        })
        .collect::<Result<Vec<_>, GroupError>>()?;
    storage::batch::encode_batch(encoded, Compression::None)
        .map_err(|_| GroupError::InvalidRecord(records::RecordError::TooLong))
}

pub struct GroupCoordinator {
    broker_id: BrokerId,
    config: GroupCoordinatorConfig,
    replicas: Arc<ReplicaManager>,
    shards: RwLock<HashMap<(TopicId, PartitionIndex), Arc<ShardHandle>>>,
    /// `__consumer_offsets`' id and partition count, once it exists.
    offsets_topic: RwLock<Option<(TopicId, i32)>>,
}

impl GroupCoordinator {
    pub fn new(
        broker_id: BrokerId,
        config: GroupCoordinatorConfig,
        replicas: Arc<ReplicaManager>,
    ) -> GroupCoordinator {
        GroupCoordinator {
            broker_id,
            config,
            replicas,
            shards: RwLock::new(HashMap::new()),
            offsets_topic: RwLock::new(None),
        }
    }

    pub fn config(&self) -> &GroupCoordinatorConfig {
        &self.config
    }

    /// Creates `__consumer_offsets` (offsets.topic.num.partitions, cleanup.policy=compact). Its replication factor
    /// is offsets.topic.replication.factor, lowered to the number of registered brokers when fewer are registered
    /// (so that a single node works out of the box; Kafka would refuse until enough brokers exist).
    pub async fn create_offsets_topic(&self, controller: &QuorumController, brokers: usize) {
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
        for result in controller.create_topics(vec![spec], false).await {
            match result {
                Ok(_) => tracing::info!("created {OFFSETS_TOPIC}"),
                Err(error) => tracing::debug!(%error, "{OFFSETS_TOPIC} not created"),
            }
        }
    }

    /// The `__consumer_offsets` partition of a group, once the topic exists.
    pub fn partition_of(&self, group_id: &GroupId) -> Option<(TopicId, PartitionIndex)> {
        let topic = *self.offsets_topic.read().unwrap_or_else(|p| p.into_inner());
        topic.map(|(id, count)| (id, PartitionIndex(partition_for(group_id.as_str(), count))))
    }

    fn shard(&self, group_id: &GroupId) -> Result<Arc<ShardHandle>, GroupError> {
        let key = self
            .partition_of(group_id)
            .ok_or(GroupError::NotCoordinator)?;
        self.shards
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned()
            .ok_or(GroupError::NotCoordinator)
    }

    /// Waits (briefly) until the shard of a group has been loaded, after FindCoordinator created the topic.
    pub async fn wait_loaded(&self, group_id: &GroupId, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if let Ok(shard) = self.shard(group_id) {
                if shard.read(|_| ()).is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn parked<T>(
        &self,
        group_id: &GroupId,
        unwrap: impl FnOnce(Reply) -> Option<T>,
        failed: impl Fn(GroupError) -> T,
        handler: impl FnOnce(&mut GroupCoordinatorShard, ResponderId, i64) -> Output<()>,
    ) -> T {
        let shard = match self.shard(group_id) {
            Ok(shard) => shard,
            Err(error) => return failed(error),
        };
        let (sender, receiver) = oneshot::channel();
        match shard.execute(Some(sender), false, handler) {
            Ok(pending) => pending.finish().await,
            Err(error) => return failed(error),
        }
        match receiver.await {
            Ok(reply) => {
                unwrap(reply).unwrap_or_else(|| failed(GroupError::CoordinatorNotAvailable))
            }
            Err(_) => failed(GroupError::NotCoordinator),
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

    async fn run<R: Failable>(
        &self,
        group_id: &GroupId,
        handler: impl FnOnce(&mut GroupCoordinatorShard, i64) -> Output<R>,
    ) -> Result<R, GroupError> {
        let shard = self.shard(group_id)?;
        let pending = shard.execute(None, false, |s, _, now| handler(s, now))?;
        Ok(pending.finish().await)
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

    pub fn fetch_offsets(
        &self,
        group_id: &GroupId,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<(String, Vec<FetchedOffset>)>, GroupError> {
        self.shard(group_id)?
            .read(|s| s.fetch_offsets(group_id, topics))
    }

    pub fn describe_group(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupDescription>, GroupError> {
        self.shard(group_id)?.read(|s| s.describe_group(group_id))
    }

    /// Every group this broker coordinates; COORDINATOR_LOAD_IN_PROGRESS while a shard loads.
    pub fn list_groups(&self, states: &[String]) -> Result<Vec<GroupListing>, GroupError> {
        let shards: Vec<Arc<ShardHandle>> = self
            .shards
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let mut listed = Vec::new();
        for shard in shards {
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
        let shards: Vec<_> = self
            .shards
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        for (_, shard) in shards {
            shard.stop();
        }
    }
}

impl MetadataPublisher for GroupCoordinator {
    /// Loads a shard for each `__consumer_offsets` partition this broker now leads, and drops the others; an update
    /// that does not touch `__consumer_offsets` changes nothing here.
    fn on_metadata_update(&self, delta: &MetadataDelta, image: &MetadataImage) {
        let topic = image.topic(OFFSETS_TOPIC);
        let new = topic.map(|t| {
            (
                t.topic_id,
                i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
            )
        });
        let mut offsets_topic = self
            .offsets_topic
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let touched = [*offsets_topic, new]
            .into_iter()
            .flatten()
            .any(|(id, _)| delta.touches_topic(id));
        if !delta.full && !touched {
            return;
        }
        *offsets_topic = new;
        drop(offsets_topic);
        let wanted: HashSet<(TopicId, PartitionIndex)> = topic
            .into_iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter(|(_, p)| p.leader == self.broker_id)
                    .map(move |(index, _)| (t.topic_id, *index))
            })
            .filter(|(id, index)| self.replicas.partition(*id, *index).is_some())
            .collect();
        let mut shards = self.shards.write().unwrap_or_else(|p| p.into_inner());
        shards.retain(|key, shard| {
            let keep = wanted.contains(key);
            if !keep {
                shard.stop();
            }
            keep
        });
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!("no tokio runtime to load __consumer_offsets on");
            return;
        };
        for key in wanted {
            if shards.contains_key(&key) {
                continue;
            }
            let shard = Arc::new(ShardHandle {
                topic_id: key.0,
                index: key.1,
                replicas: self.replicas.clone(),
                slot: Mutex::new(ShardSlot {
                    state: ShardState::Loading,
                    responders: HashMap::new(),
                    next_responder: 0,
                }),
                wake: Notify::new(),
                stopped: AtomicBool::new(false),
            });
            shards.insert(key, shard.clone());
            runtime.spawn(shard.load_and_run(self.config.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::records::OffsetCommitValue;
    use super::*;

    #[test]
    fn a_handlers_records_go_out_as_one_batch_and_replay_back() {
        let commit = |partition| CoordinatorRecord::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition,
            value: Some(OffsetCommitValue {
                offset: 10 + i64::from(partition),
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 5,
                expire_timestamp_ms: None,
            }),
        };
        let batch = encode_batch(&[commit(0), commit(1), commit(2)], 5).expect("encodes");
        let sets = RecordBatchDecoder::decode_all(&mut batch.clone()).expect("decodes");
        assert_eq!(
            sets.len(),
            1,
            "one batch: the log takes one batch per append"
        );
        assert_eq!(sets[0].records.len(), 3);
        let mut shard =
            GroupCoordinatorShard::new(crate::config::BrokerConfig::default().group_coordinator);
        let (next, count) = replay_batches(&mut shard, &batch, Offset(1)).expect("replayed");
        assert_eq!(
            (next, count),
            (Offset(3), 2),
            "records before the start offset are skipped"
        );
        let offsets = shard.fetch_offsets(&"g".into(), None);
        assert_eq!(
            offsets[0].1.iter().map(|o| o.offset).collect::<Vec<_>>(),
            vec![11, 12]
        );
    }

    #[test]
    fn partitions_groups_as_kafka_does() {
        // Java: Math.abs("test-group".hashCode()) % 50 etc., computed with the JDK.
        assert_eq!("".encode_utf16().count(), 0);
        assert_eq!(partition_for("", 50), 0);
        let hash = "a"
            .encode_utf16()
            .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)));
        assert_eq!(hash, 97);
        assert_eq!(partition_for("a", 50), 97 % 50);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE: Kafka's Utils.abs maps it to 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // "console-consumer-1".hashCode() is negative; abs then modulo.
        let h = "console-consumer-1"
            .encode_utf16()
            .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)));
        assert_eq!(partition_for("console-consumer-1", 50), h.abs() % 50);
    }
}
