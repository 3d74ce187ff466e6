//! The TransactionCoordinator (Kafka's): transactional ids and their transactions, kept in the internal compacted
//! topic `__transaction_state` as in Kafka, and the producer ids of idempotent producers.
//!
//! A transactional id lives in partition `abs(hashCode(id)) % partitions` of `__transaction_state`; the broker
//! leading that partition coordinates it. Each led partition has a [`TransactionCoordinatorShard`] (pure: handlers
//! return records and answers) on the [`CoordinatorRuntime`], which loads it by replaying the partition. This module
//! routes requests to shards and does what a pure shard cannot:
//!
//! - InitProducerId for a new transactional id takes a producer id from the [`ProducerIdManager`] and asks again;
//! - a decided transaction (EndTxn, fencing by InitProducerId, a timeout, or a Prepare record found on load) has its
//!   markers written by [`markers::write_markers`], then is completed in the shard;
//! - a housekeeping task looks for transactions past their timeout every
//!   `transaction.abort.timed.out.transaction.cleanup.interval.ms`, and for decided ones a load found.
//!
//! An idempotent producer (no transactional id) gets a new producer id with epoch 0 every time, as from Kafka.

pub mod markers;
pub mod metadata;
pub mod producer_ids;
pub mod records;
pub mod shard;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ferrite_raft::{ControllerChannel, ControllerError, CreateTopicSpec};
use tokio::sync::watch;

use crate::config::TransactionCoordinatorConfig;
use crate::coordinator::group::{GroupCoordinator, OFFSETS_TOPIC};
use crate::coordinator::partition_for;
use crate::coordinator::runtime::{CoordinatorRuntime, ShardHandle};
use crate::ids::{BrokerId, PartitionIndex, ProducerEpoch, ProducerId, TopicId};
use crate::metadata::{MetadataDelta, MetadataImage, MetadataPublisher};
use crate::replica::ReplicaManager;

pub use metadata::{Completion, TopicPartition, TransactionState};
pub use producer_ids::ProducerIdManager;
pub use shard::{
    EndOutcome, InitOutcome, TransactionCoordinatorShard, TransactionDescription,
    TransactionListing,
};

pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// How often the housekeeping task looks for decided transactions that a load found (their producers wait on them
/// with CONCURRENT_TRANSACTIONS, so this is short).
const RECOVERY_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// How long EndTxn waits for its markers after the decision is durable (well below clients' request timeouts).
const END_TXN_COMPLETION_WAIT: Duration = Duration::from_secs(5);

/// What transactional requests fail with; api/mod.rs turns these into Kafka error codes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransactionError {
    /// No producer id block could be had from the controller. Kafka: COORDINATOR_LOAD_IN_PROGRESS (retriable).
    #[error("no producer id block from the controller")]
    ProducerIdsUnavailable(#[source] Arc<ControllerError>),
    #[error("this broker does not coordinate the transactional id")]
    NotCoordinator,
    #[error("the coordinator is loading the transactional id's partition")]
    CoordinatorLoadInProgress,
    #[error("the transaction timeout exceeds transaction.max.timeout.ms")]
    InvalidTransactionTimeout,
    #[error("a previous transaction is still being completed")]
    ConcurrentTransactions,
    #[error("a newer producer with this transactional id exists")]
    ProducerFenced,
    #[error("the producer id does not belong to the transactional id")]
    InvalidProducerIdMapping,
    #[error("the request does not fit the transaction's state")]
    InvalidTxnState,
    #[error("no such transactional id")]
    TransactionalIdNotFound,
    #[error("the partition is not part of the transaction")]
    TransactionAbortable,
    #[error("a record does not fit the __transaction_state schema")]
    InvalidRecord(#[source] records::RecordError),
    #[error("writing to __transaction_state failed")]
    Write(#[source] Arc<crate::replica::ReplicaError>),
    /// An empty transactional id, which Kafka refuses rather than read as none.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// `__transaction_state` does not exist yet. Kafka: COORDINATOR_NOT_AVAILABLE.
    #[error("the transaction coordinator is not available")]
    CoordinatorNotAvailable,
}

impl From<crate::coordinator::runtime::RuntimeError> for TransactionError {
    fn from(error: crate::coordinator::runtime::RuntimeError) -> TransactionError {
        use crate::coordinator::runtime::RuntimeError;
        match error {
            RuntimeError::NotCoordinator => TransactionError::NotCoordinator,
            RuntimeError::LoadInProgress => TransactionError::CoordinatorLoadInProgress,
            RuntimeError::BatchTooLarge => {
                TransactionError::InvalidRecord(records::RecordError::TooLong)
            }
            RuntimeError::Write(error) => TransactionError::Write(error),
        }
    }
}

/// Errors compare by kind (their sources are not comparable).
impl PartialEq for TransactionError {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}
impl Eq for TransactionError {}

type Shard = Arc<ShardHandle<TransactionCoordinatorShard>>;

pub struct TransactionCoordinator {
    config: TransactionCoordinatorConfig,
    producer_ids: ProducerIdManager,
    replicas: Arc<ReplicaManager>,
    groups: Arc<GroupCoordinator>,
    runtime: CoordinatorRuntime<TransactionCoordinatorShard>,
    /// The latest metadata, for the topics a transaction's markers go to.
    image: RwLock<Arc<MetadataImage>>,
    /// The transactions whose markers are being written (transactional id, producer id, epoch): one writer each.
    completing: Mutex<HashSet<(String, ProducerId, ProducerEpoch)>>,
    broker_id: BrokerId,
    /// WriteTxnMarkers to the leaders of partitions led elsewhere.
    markers: markers::TransactionMarkerChannel,
}

impl TransactionCoordinator {
    pub fn new(
        broker_id: BrokerId,
        config: TransactionCoordinatorConfig,
        replicas: Arc<ReplicaManager>,
        groups: Arc<GroupCoordinator>,
    ) -> TransactionCoordinator {
        TransactionCoordinator {
            config,
            producer_ids: ProducerIdManager::new(broker_id),
            runtime: CoordinatorRuntime::new(TRANSACTION_STATE_TOPIC, broker_id, replicas.clone()),
            replicas,
            groups,
            image: RwLock::new(Arc::new(MetadataImage::default())),
            completing: Mutex::new(HashSet::new()),
            broker_id,
            markers: markers::TransactionMarkerChannel::new(broker_id),
        }
    }

    pub fn config(&self) -> &TransactionCoordinatorConfig {
        &self.config
    }

    fn image(&self) -> Arc<MetadataImage> {
        self.image.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Creates `__transaction_state` (transaction.state.log.num.partitions, cleanup.policy=compact,
    /// transaction.state.log.segment.bytes and .min.isr). Its replication factor is
    /// transaction.state.log.replication.factor lowered to the registered brokers, as for `__consumer_offsets`, and
    /// min.insync.replicas at most that.
    pub async fn create_state_topic(
        &self,
        controller: &ControllerChannel,
        brokers: usize,
        timeout: std::time::Duration,
    ) {
        let replication_factor = self
            .config
            .state_log_replication_factor
            .min(i16::try_from(brokers.max(1)).unwrap_or(i16::MAX));
        let min_isr = self
            .config
            .state_log_min_isr
            .min(i32::from(replication_factor));
        let spec = CreateTopicSpec {
            name: TRANSACTION_STATE_TOPIC.to_string(),
            num_partitions: self.config.state_log_num_partitions,
            replication_factor,
            assignments: Vec::new(),
            configs: vec![
                ("cleanup.policy".into(), "compact".into()),
                ("compression.type".into(), "uncompressed".into()),
                ("min.insync.replicas".into(), min_isr.to_string()),
                (
                    "segment.bytes".into(),
                    self.config.state_log_segment_bytes.to_string(),
                ),
            ],
        };
        for result in controller.create_topics(vec![spec], false, timeout).await {
            match result {
                Ok(_) => tracing::info!("created {TRANSACTION_STATE_TOPIC}"),
                Err(error) => tracing::debug!(%error, "{TRANSACTION_STATE_TOPIC} not created"),
            }
        }
    }

    /// The `__transaction_state` partition of a transactional id, once the topic exists.
    pub fn partition_of(&self, transactional_id: &str) -> Option<(TopicId, PartitionIndex)> {
        self.runtime.partition_of(transactional_id)
    }

    fn shard(&self, transactional_id: &str) -> Result<Shard, TransactionError> {
        if transactional_id.is_empty() {
            return Err(TransactionError::InvalidRequest("empty transactional id"));
        }
        let (topic_id, index) = self
            .partition_of(transactional_id)
            .ok_or(TransactionError::NotCoordinator)?;
        Ok(self.runtime.shard(topic_id, index)?)
    }

    /// Waits (briefly) until the shard of a transactional id has been loaded, after FindCoordinator created the
    /// topic.
    pub async fn wait_loaded(&self, transactional_id: &str, timeout: Duration) {
        self.runtime.wait_loaded(transactional_id, timeout).await
    }

    /// The `__consumer_offsets` partition of a group, where AddOffsetsToTxn puts the transaction's offsets: the
    /// topic's own partition count once it exists, offsets.topic.num.partitions before.
    pub fn offsets_partition_of(&self, group_id: &str) -> TopicPartition {
        let partition = match self.groups.offsets_topic_partition_of(group_id) {
            Some((_, index)) => index.0,
            None => partition_for(group_id, self.groups.config().offsets_topic_num_partitions),
        };
        TopicPartition {
            topic: OFFSETS_TOPIC.to_string(),
            partition,
        }
    }

    /// InitProducerId. Without a transactional id: a new producer id, epoch 0 (the id the producer had, if it names
    /// one, KIP-360, is simply replaced). With one: the transactional id's producer id with a bumped epoch, which
    /// fences every older incarnation of the producer; `expected` is the id and epoch the producer had (KIP-360).
    pub async fn init_producer_id(
        self: &Arc<Self>,
        controller: &ControllerChannel,
        transactional_id: Option<&str>,
        timeout_ms: i32,
        expected: Option<(ProducerId, ProducerEpoch)>,
    ) -> Result<(ProducerId, ProducerEpoch), TransactionError> {
        let Some(transactional_id) = transactional_id else {
            let producer_id = self.generate_producer_id(controller).await?;
            return Ok((producer_id, ProducerEpoch(0)));
        };
        let shard = self.shard(transactional_id)?;
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(TransactionError::InvalidTransactionTimeout);
        }
        let mut fresh = None;
        loop {
            let outcome = shard
                .write(|s, now| {
                    s.init_producer_id(transactional_id, timeout_ms, expected, fresh, now)
                })
                .await?;
            match outcome {
                InitOutcome::Initialized(producer_id, epoch) => return Ok((producer_id, epoch)),
                InitOutcome::NeedsProducerId if fresh.is_none() => {
                    fresh = Some(self.generate_producer_id(controller).await?);
                }
                // The shard changed between the two calls in a way that needs yet another id: let the client retry.
                InitOutcome::NeedsProducerId => {
                    return Err(TransactionError::ConcurrentTransactions)
                }
                InitOutcome::Fencing(completion) => {
                    self.spawn_completion(&shard, completion);
                    return Err(TransactionError::ConcurrentTransactions);
                }
                InitOutcome::Failed(error) => return Err(error),
            }
        }
    }

    async fn generate_producer_id(
        &self,
        controller: &ControllerChannel,
    ) -> Result<ProducerId, TransactionError> {
        self.producer_ids
            .generate(controller)
            .await
            .map_err(|e: ControllerError| TransactionError::ProducerIdsUnavailable(Arc::new(e)))
    }

    /// AddPartitionsToTxn, and AddOffsetsToTxn with the group's [`offsets_partition_of`](Self::offsets_partition_of).
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        partitions: &[TopicPartition],
    ) -> Result<(), TransactionError> {
        self.shard(transactional_id)?
            .write(|s, now| s.add_partitions(transactional_id, producer_id, epoch, partitions, now))
            .await?
    }

    /// KIP-890's verification: per partition, TRANSACTION_ABORTABLE unless it is in the ongoing transaction.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        partitions: &[TopicPartition],
    ) -> Result<Vec<Option<TransactionError>>, TransactionError> {
        self.shard(transactional_id)?
            .read(|s| s.verify_partitions(transactional_id, producer_id, epoch, partitions))?
    }

    /// EndTxn: answered once the decision (PrepareCommit or PrepareAbort) is durable; the markers follow.
    pub async fn end_transaction(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        commit: bool,
    ) -> Result<(), TransactionError> {
        let shard = self.shard(transactional_id)?;
        let outcome = shard
            .write(|s, now| s.end_transaction(transactional_id, producer_id, epoch, commit, now))
            .await??;
        if let EndOutcome::Prepared(completion) = outcome {
            // The decision is durable, which is all Kafka waits for. Waiting (a bounded while) for the markers
            // too spares the producer's next transaction the CONCURRENT_TRANSACTIONS retries it would otherwise
            // meet while they are written; a partition that cannot take its marker does not hold EndTxn longer.
            let completed = self.spawn_completion(&shard, completion);
            let _ = tokio::time::timeout(END_TXN_COMPLETION_WAIT, completed).await;
        }
        Ok(())
    }

    pub fn describe(
        &self,
        transactional_id: &str,
    ) -> Result<TransactionDescription, TransactionError> {
        self.shard(transactional_id)?
            .read(|s| s.describe(transactional_id))?
    }

    /// ListTransactions over every shard; COORDINATOR_LOAD_IN_PROGRESS while one loads.
    pub fn list(
        &self,
        states: &[String],
        producer_ids: &[ProducerId],
        min_duration_ms: i64,
    ) -> Result<Vec<TransactionListing>, TransactionError> {
        let now = crate::replica::now_ms();
        let mut listed = Vec::new();
        for shard in self.runtime.shards() {
            listed.extend(shard.read(|s| s.list(states, producer_ids, min_duration_ms, now))?);
        }
        listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(listed)
    }

    /// Writes a decided transaction's markers and completes it, in the background; one writer per transaction. The
    /// receiver hears when this writer is done (dropped unheard if another writer has the transaction).
    fn spawn_completion(
        self: &Arc<Self>,
        shard: &Shard,
        completion: Completion,
    ) -> tokio::sync::oneshot::Receiver<()> {
        let (done, receiver) = tokio::sync::oneshot::channel();
        let key = (
            completion.transactional_id.clone(),
            completion.producer_id,
            completion.producer_epoch,
        );
        if !self
            .completing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone())
        {
            return receiver;
        }
        let (this, shard) = (self.clone(), shard.clone());
        tokio::spawn(async move {
            this.complete(&shard, &completion).await;
            this.completing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            let _ = done.send(());
        });
        receiver
    }

    /// Whether `shard` is still the one serving its partition here (not stopped and replaced by a move).
    fn owns(&self, shard: &Shard) -> bool {
        let (topic_id, index) = shard.partition();
        self.runtime
            .shard(topic_id, index)
            .is_ok_and(|current| Arc::ptr_eq(&current, shard))
    }

    async fn complete(&self, shard: &Shard, completion: &Completion) {
        let (topic_id, index) = shard.partition();
        // Kafka's coordinator epoch: the leader epoch of the `__transaction_state` partition, so a partition can
        // refuse the markers of a coordinator that has since been replaced.
        let coordinator_epoch = self
            .replicas
            .partition(topic_id, index)
            .map_or(0, |p| p.leader_epoch().0);
        let written = markers::write_markers(
            &self.replicas,
            &self.groups,
            &self.markers,
            self.broker_id,
            || self.image(),
            completion,
            coordinator_epoch,
            || self.owns(shard),
        )
        .await;
        if !written {
            return;
        }
        let mut backoff = markers::FIRST_RETRY_BACKOFF;
        while self.owns(shard) {
            let result = shard
                .write(|s, now| s.complete(completion, now).map(|()| Ok(())))
                .await;
            match result.and_then(|r| r) {
                Ok(()) => return,
                Err(error) => {
                    tracing::debug!(%error, transactional_id = %completion.transactional_id, "completing the transaction failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(markers::MAX_RETRY_BACKOFF);
                }
            }
        }
    }

    /// Until `stop`: completes the decided transactions a load found, and aborts the transactions open past their
    /// timeout, bumping the producer's epoch (Kafka's abortTimedOutTransactions).
    pub async fn run_housekeeping(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let cleanup_interval =
            Duration::from_millis(self.config.abort_timed_out_cleanup_interval_ms.max(1));
        let mut next_cleanup = tokio::time::Instant::now() + cleanup_interval;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(RECOVERY_CHECK_INTERVAL) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            let cleanup = tokio::time::Instant::now() >= next_cleanup;
            if cleanup {
                next_cleanup = tokio::time::Instant::now() + cleanup_interval;
            }
            for shard in self.runtime.shards() {
                if !shard.is_loaded() {
                    continue;
                }
                if let Ok(found) = shard.apply(|s, _| s.take_recovering().response).await {
                    for completion in found {
                        self.spawn_completion(&shard, completion);
                    }
                }
                if cleanup {
                    self.abort_timed_out(&shard).await;
                }
            }
        }
    }

    async fn abort_timed_out(self: &Arc<Self>, shard: &Shard) {
        let now = crate::replica::now_ms();
        let Ok(expired) = shard.read(|s| s.timed_out(now)) else {
            return;
        };
        for (transactional_id, producer_id, epoch) in expired {
            tracing::info!(%transactional_id, %producer_id, "aborting a transaction past its timeout");
            let aborted = shard
                .write(|s, now| s.abort_timed_out(&transactional_id, producer_id, epoch, now))
                .await;
            if let Ok(Some(completion)) = aborted {
                self.spawn_completion(shard, completion);
            }
        }
    }

    /// Stops every shard (clean shutdown). Markers being written stop at their next retry.
    pub fn shutdown(&self) {
        self.runtime.shutdown();
    }
}

impl MetadataPublisher for TransactionCoordinator {
    /// Keeps the latest image for the markers, and loads a shard for each `__transaction_state` partition this
    /// broker now leads, dropping the others.
    fn on_metadata_update(&self, delta: &MetadataDelta, image: &MetadataImage) {
        *self.image.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(image.clone());
        self.runtime
            .on_metadata_update(delta, image, TransactionCoordinatorShard::new);
    }
}
