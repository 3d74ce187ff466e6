//! The ReplicaManager: every partition replica this broker hosts, kept in step with the MetadataImage, and the one
//! way requests and coordinators reach partition data: [`ReplicaManager::append_records`] (`append.rs`) and
//! [`ReplicaManager::fetch_records`] (`fetch.rs`), which decide leadership, acks and delayed operations. Fetch
//! sessions (`fetch_session.rs`) live beside them.

mod append;
mod fetch;
pub mod fetch_session;
mod fetcher;
mod isr;
mod log_cleanup;
mod partition;
mod remote_replica;

pub use append::{AppendOrigin, PendingAppend, RequiredAcks};
pub use fetch::{FetchParams, FetchPartition, FetchedPartition, IsolationLevel};
pub use fetcher::ReplicaFetcherManager;
pub use isr::{AlterPartitionSender, IsrProposal};
pub use partition::stats::PartitionStats;
pub use partition::{FollowerFetch, Partition, PartitionRead, RoleChange};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::ids::{BrokerId, LeaderEpoch, Offset, PartitionIndex, TopicId};

use crate::config::topic as topic_config;
use crate::config::{BrokerConfig, FlushPolicy};
use crate::metadata::{MetadataDelta, MetadataImage, MetadataPublisher, TopicImage};
use crate::storage::{Log, LogError};

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("fsync failed")]
    Flush(#[from] std::io::Error),
    #[error("the flush task was cancelled")]
    FlushAborted,
    /// This broker does not lead the partition (or does not host it). Kafka: NOT_LEADER_OR_FOLLOWER (6).
    #[error("this broker does not lead the partition")]
    NotLeaderOrFollower,
    /// The client's leader epoch is older than the partition's. Kafka: FENCED_LEADER_EPOCH (74).
    #[error("leader epoch {epoch} is older than the partition's {current}")]
    FencedLeaderEpoch {
        epoch: LeaderEpoch,
        current: LeaderEpoch,
    },
    /// The client's leader epoch is newer than this broker knows. Kafka: UNKNOWN_LEADER_EPOCH (75).
    #[error("leader epoch {epoch} is newer than the partition's {current}")]
    UnknownLeaderEpoch {
        epoch: LeaderEpoch,
        current: LeaderEpoch,
    },
    /// A client wrote to an internal topic. Kafka: INVALID_TOPIC_EXCEPTION (17).
    #[error("{0} is an internal topic")]
    InternalTopic(String),
    /// acks=all appended, but the ISR did not all have it within the request's timeout. Kafka: REQUEST_TIMED_OUT (7).
    #[error("the in-sync replicas did not acknowledge the append in time")]
    RequestTimedOut,
    /// acks=all refused before the append: the ISR is smaller than the effective min.insync.replicas.
    /// Kafka: NOT_ENOUGH_REPLICAS (19).
    #[error("the ISR has {isr} replica(s), fewer than the {min_isr} min.insync.replicas requires")]
    NotEnoughReplicas { isr: usize, min_isr: usize },
    /// acks=all appended, but the ISR shrank below the effective min.insync.replicas while it waited.
    /// Kafka: NOT_ENOUGH_REPLICAS_AFTER_APPEND (20).
    #[error("appended, but the ISR shrank to {isr} replica(s), fewer than the {min_isr} min.insync.replicas requires")]
    NotEnoughReplicasAfterAppend { isr: usize, min_isr: usize },
}

/// The name Kafka gives a partition's directory.
pub fn partition_dir(log_dir: &Path, topic: &str, partition: PartitionIndex) -> PathBuf {
    log_dir.join(format!("{topic}-{}", partition.0))
}

/// `partition.metadata` beside a partition's segments records which topic id the directory belongs to, so that a
/// directory left behind by a deleted topic is never mistaken for a new topic of the same name.
const PARTITION_METADATA: &str = "partition.metadata";

pub struct ReplicaManager {
    broker_id: BrokerId,
    config: BrokerConfig,
    partitions: RwLock<HashMap<(TopicId, PartitionIndex), Arc<Partition>>>,
    /// Follows, for each partition this broker does not lead, its leader.
    fetchers: ReplicaFetcherManager,
    /// How leaders reach the controller with ISR changes.
    isr_sender: std::sync::OnceLock<Arc<dyn AlterPartitionSender>>,
    /// The brokers the last MetadataImage has registered and unfenced: only they may join an ISR (KIP-841). A
    /// restarted broker fetches, and catches up, before the controller unfences it; proposing it would only be
    /// refused, again on every fetch.
    isr_eligible: RwLock<HashSet<BrokerId>>,
}

impl ReplicaManager {
    pub fn new(config: BrokerConfig) -> Self {
        Self {
            broker_id: config.node_id,
            fetchers: ReplicaFetcherManager::new(config.node_id, config.replication.clone()),
            config,
            partitions: RwLock::new(HashMap::new()),
            isr_sender: std::sync::OnceLock::new(),
            isr_eligible: RwLock::new(HashSet::new()),
        }
    }

    pub fn partition(&self, topic_id: TopicId, index: PartitionIndex) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(topic_id, index))
            .cloned()
    }

    /// OffsetForLeaderEpoch for a partition this broker hosts (Kafka's `ReplicaManager.lastOffsetForLeaderEpoch`):
    /// NOT_LEADER_OR_FOLLOWER when it is not hosted here; see [`Partition::last_offset_for_leader_epoch`].
    pub fn last_offset_for_leader_epoch(
        &self,
        topic_id: TopicId,
        index: PartitionIndex,
        current_leader_epoch: Option<LeaderEpoch>,
        requested: LeaderEpoch,
    ) -> Result<Option<(LeaderEpoch, Offset)>, ReplicaError> {
        self.partition(topic_id, index)
            .ok_or(ReplicaError::NotLeaderOrFollower)?
            .last_offset_for_leader_epoch(current_leader_epoch, requested)
    }

    /// Every partition replica this broker hosts.
    pub fn hosted(&self) -> Vec<Arc<Partition>> {
        self.all()
    }

    fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Background upkeep until shutdown: Kafka's page-cache mode flushes on a timer, every log's recovery point
    /// is checkpointed once a minute (as Kafka's log.flush.offset.checkpoint.interval.ms) so that recovery after a
    /// crash re-validates only the recent tail, and idle producer ids expire (producer.id.expiration.ms).
    pub async fn run_housekeeping(
        self: Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let flush_ms = match self.config.flush_policy {
            FlushPolicy::Interval { ms: Some(ms), .. } => Some(ms),
            _ => None,
        };
        let mut flush =
            tokio::time::interval(Duration::from_millis(flush_ms.unwrap_or(u64::MAX / 2)));
        let mut checkpoint = tokio::time::interval(Duration::from_secs(60));
        let mut shrink_isrs = tokio::time::interval(Duration::from_millis(
            (self.config.replication.lag_time_max_ms / 2).max(1) as u64,
        ));
        // The first check one interval after start, as Kafka schedules it.
        let expiry_interval =
            Duration::from_millis(self.config.producer_id_expiration_check_interval_ms);
        let mut expire_producers = tokio::time::interval_at(
            tokio::time::Instant::now() + expiry_interval,
            expiry_interval,
        );
        let cleanup = tokio::spawn(self.clone().run_log_cleanup(shutdown.clone()));
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = flush.tick(), if flush_ms.is_some() => {
                    for partition in self.all() {
                        let end = partition.high_watermark();
                        if let Err(error) = partition.flush_to(end).await {
                            tracing::error!(topic = %partition.topic, partition = partition.index.0, %error, "flush failed");
                        }
                    }
                }
                _ = shrink_isrs.tick() => self.shrink_isrs(),
                _ = checkpoint.tick() => {
                    for partition in self.all() {
                        if let Err(error) = partition.checkpoint_recovery_point() {
                            tracing::warn!(topic = %partition.topic, partition = partition.index.0, %error, "recovery point not saved");
                        }
                    }
                }
                _ = expire_producers.tick() => {
                    let now = now_ms();
                    for partition in self.all() {
                        partition.expire_producers(now, self.config.producer_id_expiration_ms);
                    }
                }
                _ = shutdown.changed() => {
                    let _ = cleanup.await;
                    return;
                }
            }
        }
    }

    /// Flushes and closes every log (clean shutdown).
    pub fn shutdown(&self) {
        self.fetchers.shutdown();
        let partitions: Vec<_> = self
            .partitions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        for ((_, _), partition) in partitions {
            if let Err(error) = partition.flush_now() {
                tracing::error!(topic = %partition.topic, partition = partition.index.0, %error, "flush on shutdown failed");
            }
            match Arc::try_unwrap(partition) {
                Ok(partition) => {
                    if let Err(error) = partition.into_log().close() {
                        tracing::error!(%error, "closing a log failed");
                    }
                }
                Err(partition) => {
                    tracing::warn!(topic = %partition.topic, partition = partition.index.0, "log still in use at shutdown; flushed but not closed");
                }
            }
        }
    }

    fn open(
        &self,
        topic: &TopicImage,
        index: PartitionIndex,
        config: &BrokerConfig,
    ) -> Result<Partition, LogError> {
        let topic_id = topic.topic_id;
        let dir = partition_dir(&self.config.log_dirs, &topic.name, index);
        let marker = dir.join(PARTITION_METADATA);
        let expected = format!("version: 0\ntopic_id: {}\n", topic_id.0);
        match std::fs::read_to_string(&marker) {
            Ok(found) if found != expected => {
                tracing::info!(dir = %dir.display(), "removing the log of an earlier topic with the same name");
                std::fs::remove_dir_all(&dir)?;
            }
            _ => {}
        }
        let log_config = topic_config::log_config(config, &topic.configs);
        let log = Log::open(dir.clone(), log_config, now_ms())?;
        if !marker.exists() {
            std::fs::write(&marker, expected)?;
        }
        Ok(Partition::new(
            topic.name.clone(),
            topic_id,
            index,
            log,
            self.broker_id,
            self.config.flush_policy,
        ))
    }
}

impl MetadataPublisher for ReplicaManager {
    /// Opens the partitions assigned to this broker and deletes those no longer assigned, looking only at the topics
    /// the delta names; a snapshot or a dynamic broker config change (new defaults for every topic) looks at all.
    fn on_metadata_update(&self, delta: &MetadataDelta, image: &MetadataImage) {
        *self.isr_eligible.write().unwrap_or_else(|p| p.into_inner()) =
            image.live_brokers().map(|b| b.broker_id).collect();
        let mut partitions = self.partitions.write().unwrap_or_else(|p| p.into_inner());
        // Dynamic broker configs (AlterConfigs on this broker or on the cluster default) change the defaults of
        // every topic.
        let empty = BTreeMap::new();
        let dynamic = image.broker_configs.get(&self.broker_id).unwrap_or(&empty);
        let config = self
            .config
            .with_dynamic(&image.broker_default_configs, dynamic);
        let every_topic = delta.full || delta.broker_configs_changed;
        let in_scope = |topic_id: TopicId| every_topic || delta.touches_topic(topic_id);
        let topics: Vec<&TopicImage> = if every_topic {
            image.topics().collect()
        } else {
            delta
                .changed_topics
                .iter()
                .filter_map(|id| image.topic_by_id(*id))
                .collect()
        };
        let mut wanted = HashMap::new();
        for topic in topics {
            for (index, partition) in &topic.partitions {
                if partition.replicas.contains(&self.broker_id) {
                    wanted.insert((topic.topic_id, *index), (topic, partition));
                }
            }
        }
        let gone: Vec<_> = partitions
            .keys()
            .filter(|key| in_scope(key.0) && !wanted.contains_key(key))
            .copied()
            .collect();
        for key in gone {
            self.fetchers.remove_partition(key.0, key.1);
            if let Some(partition) = partitions.remove(&key) {
                tracing::info!(topic = %partition.topic, partition = key.1 .0, "deleting partition");
                partition.stop();
                match Arc::try_unwrap(partition) {
                    Ok(partition) => {
                        if let Err(error) = partition.into_log().delete() {
                            tracing::error!(%error, "deleting a log failed");
                        }
                    }
                    Err(partition) => {
                        // A request still holds it; remove the files underneath, which the OS keeps readable for
                        // the holder until it lets go.
                        let dir = partition_dir(&self.config.log_dirs, &partition.topic, key.1);
                        if let Err(error) = std::fs::remove_dir_all(&dir) {
                            tracing::error!(%error, dir = %dir.display(), "deleting a log failed");
                        }
                    }
                }
            }
        }
        let now = now_ms();
        for (key, (topic, partition_image)) in wanted {
            let partition = match partitions.get(&key) {
                Some(partition) => {
                    partition.update_config(topic_config::log_config(&config, &topic.configs));
                    partition.clone()
                }
                None => match self.open(topic, key.1, &config) {
                    Ok(partition) => {
                        let partition = Arc::new(partition);
                        partitions.insert(key, partition.clone());
                        partition
                    }
                    Err(error) => {
                        tracing::error!(topic = %topic.name, partition = key.1 .0, %error, "cannot open partition log");
                        continue;
                    }
                },
            };
            match partition.set_state(partition_image, now) {
                Ok(RoleChange::Unchanged) => {}
                Ok(RoleChange::BecameLeader(epoch)) => {
                    tracing::debug!(topic = %topic.name, partition = key.1 .0, epoch = epoch.0, "leading");
                    self.fetchers.remove_partition(key.0, key.1);
                }
                Ok(RoleChange::BecameFollower { leader, epoch }) => {
                    let endpoint = image
                        .broker(leader)
                        .map(|b| format!("{}:{}", b.host, b.port));
                    match endpoint {
                        Some(addr) => self.fetchers.add_partition(partition, leader, addr, epoch),
                        None => self.fetchers.remove_partition(key.0, key.1),
                    }
                }
                Err(error) => {
                    tracing::error!(topic = %topic.name, partition = key.1 .0, %error, "cannot take up the partition's new state");
                }
            }
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
