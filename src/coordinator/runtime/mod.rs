//! The CoordinatorRuntime (Kafka's `CoordinatorRuntime`): what every coordinator that keeps its state in an internal
//! topic needs, whatever that state is. The group coordinator (`__consumer_offsets`) uses it; the transaction
//! coordinator (`__transaction_state`) will.
//!
//! A coordinator is a set of shards, one per partition of its topic that this broker leads. A shard implements
//! [`CoordinatorShard`]: pure, its handlers take `now_ms` and return an [`Output`] (records to append, replies to
//! parked requests, the handler's own response), and its durable state changes only by replaying records. The
//! runtime, for each shard:
//!
//! - loads it by replaying its partition from the LogStartOffset to the log end (a leader keeps all its log holds,
//!   so a leader just elected, whose HighWatermark still lags, must not stop short); until then requests get
//!   COORDINATOR_LOAD_IN_PROGRESS ([`RuntimeError::LoadInProgress`]);
//! - runs a handler under the shard's lock, appends its records through
//!   [`ReplicaManager::append_records`](crate::replica::ReplicaManager::append_records) (acks=all, and only while
//!   this broker leads the partition) and replays them, so the log holds them in replay order; records the log
//!   refuses are not replayed, so the shard stays what a reload would build;
//! - hands out the replies and the response once the records are durable ([`Pending::finish`]), or the error
//!   instead ([`Failable`]);
//! - writes a handler's records as a transactional batch of a producer when asked
//!   ([`ShardHandle::write_transactional`]: producer id and epoch in the header, base sequence -1), replays those with
//!   [`CoordinatorShard::replay_transactional`], and hands the transaction's end to
//!   [`CoordinatorShard::replay_end_transaction`]: on load from the control batch (its record's key is int16
//!   version, int16 type: 0 ABORT, 1 COMMIT), live from the transaction coordinator through [`ShardHandle::apply`]
//!   once it has written that marker;
//! - drives the shard's timers with one tokio sleep until its earliest deadline.

mod handle;

pub use handle::{Pending, ShardHandle};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use crate::ids::{BrokerId, PartitionIndex, ProducerEpoch, ProducerId, TopicId};
use crate::metadata::{MetadataDelta, MetadataImage};
use crate::replica::{ReplicaError, ReplicaManager};

/// Identifies a request parked until a later handler answers it (a JoinGroup waiting for the rebalance); the runtime
/// maps it to the channel the request waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResponderId(pub u64);

/// What the runtime itself fails with; each coordinator turns these into its own errors.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    /// This broker does not lead the shard's partition (any more).
    #[error("this broker does not coordinate the partition")]
    NotCoordinator,
    /// The shard is still replaying its partition.
    #[error("the coordinator is loading the partition")]
    LoadInProgress,
    /// The records do not fit one batch.
    #[error("the records do not fit a batch")]
    BatchTooLarge,
    /// The log refused the records, or they did not become durable.
    #[error("writing to the coordinator's partition failed")]
    Write(#[source] Arc<ReplicaError>),
}

/// What a handler produced: records to append (and replay), replies to parked requests, and its own response.
#[derive(Debug)]
pub struct Output<Record, Reply, R> {
    pub records: Vec<Record>,
    pub replies: Vec<(ResponderId, Reply)>,
    pub response: R,
}

impl<Record, Reply, R> Output<Record, Reply, R> {
    pub fn new(response: R) -> Self {
        Output {
            records: Vec::new(),
            replies: Vec::new(),
            response,
        }
    }

    /// The same records and replies with the response `f` makes of this one.
    pub fn map<R2>(self, f: impl FnOnce(R) -> R2) -> Output<Record, Reply, R2> {
        Output {
            records: self.records,
            replies: self.replies,
            response: f(self.response),
        }
    }
}

/// A response or reply that a failed write turns into an error.
pub trait Failable<E> {
    fn fail(&mut self, error: E);
}

impl<E> Failable<E> for () {
    fn fail(&mut self, _: E) {}
}

impl<T, E> Failable<E> for Result<T, E> {
    fn fail(&mut self, error: E) {
        *self = Err(error);
    }
}

/// Something the handler would have done had its records become durable: nothing, when they did not.
impl<T, E> Failable<E> for Option<T> {
    fn fail(&mut self, _: E) {
        *self = None;
    }
}

impl<E: Clone> Failable<E> for Vec<Option<E>> {
    fn fail(&mut self, error: E) {
        for slot in self.iter_mut() {
            *slot = Some(error.clone());
        }
    }
}

/// One coordinator's state for one partition of its topic (Kafka's `CoordinatorShard`).
pub trait CoordinatorShard: Send + 'static {
    /// A record of the coordinator's topic, decoded.
    type Record: Send + 'static;
    /// An answer to a parked request.
    type Reply: Failable<Self::Error> + Send + 'static;
    /// What the coordinator's operations fail with.
    type Error: From<RuntimeError> + Clone + std::fmt::Debug + Send + 'static;

    /// Applies one record of the partition: the only way durable state changes.
    fn replay(&mut self, record: &Self::Record);
    /// Applies one record of a transactional batch of `producer_id`: it takes effect only if a COMMIT marker of
    /// that producer follows ([`replay_end_transaction`](Self::replay_end_transaction)). A shard without
    /// transactional state applies it at once.
    fn replay_transactional(
        &mut self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        record: &Self::Record,
    ) {
        let _ = (producer_id, producer_epoch);
        self.replay(record)
    }
    /// Applies the COMMIT (`commit`) or ABORT marker of `producer_id`'s transaction on this partition: whether the
    /// records [`replay_transactional`](Self::replay_transactional) kept for that producer take effect. The same
    /// marker may be applied twice (once replayed, once by [`ShardHandle::apply`] when it was written during the
    /// load); the second finds nothing of that producer left and must change nothing.
    fn replay_end_transaction(&mut self, producer_id: ProducerId, commit: bool) {
        let _ = (producer_id, commit);
    }
    /// Called once the partition has been replayed, before the first request.
    fn on_loaded(&mut self, now_ms: i64);
    /// The earliest timer deadline, if any.
    fn next_deadline(&self) -> Option<i64>;
    /// Fires every timer due at `now_ms`.
    fn fire_timers(&mut self, now_ms: i64) -> Output<Self::Record, Self::Reply, ()>;
    /// The key and value a record is stored under (a `None` value is a tombstone).
    fn serialize(record: &Self::Record) -> Result<(Bytes, Option<Bytes>), Self::Error>;
    /// A stored record; `Ok(None)` for a kind of record this shard does not use.
    fn deserialize(key: &[u8], value: Option<&[u8]>) -> Result<Option<Self::Record>, String>;
}

/// A coordinator's shards by the partition each serves.
type Shards<S> = HashMap<(TopicId, PartitionIndex), Arc<ShardHandle<S>>>;

/// The shards of one coordinator on this broker.
pub struct CoordinatorRuntime<S: CoordinatorShard> {
    /// The coordinator's topic.
    topic: &'static str,
    broker_id: BrokerId,
    replicas: Arc<ReplicaManager>,
    /// The topic's id and partition count, once it exists.
    topic_partitions: RwLock<Option<(TopicId, i32)>>,
    shards: RwLock<Shards<S>>,
}

impl<S: CoordinatorShard> CoordinatorRuntime<S> {
    pub fn new(topic: &'static str, broker_id: BrokerId, replicas: Arc<ReplicaManager>) -> Self {
        CoordinatorRuntime {
            topic,
            broker_id,
            replicas,
            topic_partitions: RwLock::new(None),
            shards: RwLock::new(HashMap::new()),
        }
    }

    /// The partition of the coordinator's topic that a key (a group id, a transactional id) lives in
    /// ([`partition_for`](crate::coordinator::partition_for)), once the topic exists.
    pub fn partition_of(&self, key: &str) -> Option<(TopicId, PartitionIndex)> {
        let topic = *self
            .topic_partitions
            .read()
            .unwrap_or_else(|p| p.into_inner());
        topic.map(|(id, count)| {
            (
                id,
                PartitionIndex(crate::coordinator::partition_for(key, count)),
            )
        })
    }

    /// A coordinator's [`MetadataPublisher`](crate::metadata::MetadataPublisher) work: keeps a shard (from
    /// `new_shard`) for each partition of the coordinator's topic that this broker now leads and has opened, and
    /// stops the others. An update that does not touch the topic changes nothing.
    pub fn on_metadata_update(
        &self,
        delta: &MetadataDelta,
        image: &MetadataImage,
        new_shard: impl Fn() -> S,
    ) {
        let topic = image.topic(self.topic);
        let new = topic.map(|t| {
            (
                t.topic_id,
                i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
            )
        });
        let mut known = self
            .topic_partitions
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let touched = [*known, new]
            .into_iter()
            .flatten()
            .any(|(id, _)| delta.touches_topic(id));
        if !delta.full && !touched {
            return;
        }
        *known = new;
        drop(known);
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
        self.set_led_partitions(wanted, new_shard);
    }

    /// Waits (up to `timeout`) until the shard of `key` has been loaded: FindCoordinator answers after that, when
    /// it has just created the topic, sparing the client a round of COORDINATOR_LOAD_IN_PROGRESS.
    pub async fn wait_loaded(&self, key: &str, timeout: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            let loaded = self
                .partition_of(key)
                .and_then(|(id, index)| self.shard(id, index).ok())
                .is_some_and(|shard| shard.is_loaded());
            if loaded {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Keeps a shard for each partition of `wanted` (those this broker now leads), loading new ones with a shard
    /// from `new_shard`, and stops the others. Parked requests of a stopped shard answer NOT_COORDINATOR.
    fn set_led_partitions(
        &self,
        wanted: HashSet<(TopicId, PartitionIndex)>,
        new_shard: impl Fn() -> S,
    ) {
        let mut shards = self.shards.write().unwrap_or_else(|p| p.into_inner());
        shards.retain(|key, shard| {
            let keep = wanted.contains(key);
            if !keep {
                shard.stop();
            }
            keep
        });
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(
                topic = self.topic,
                "no tokio runtime to load coordinator shards on"
            );
            return;
        };
        for key in wanted {
            if shards.contains_key(&key) {
                continue;
            }
            let shard = Arc::new(ShardHandle::new(
                self.topic,
                key.0,
                key.1,
                self.replicas.clone(),
            ));
            shards.insert(key, shard.clone());
            runtime.spawn(shard.load_and_run(new_shard()));
        }
    }

    /// The shard of a partition this broker coordinates.
    pub fn shard(
        &self,
        topic_id: TopicId,
        index: PartitionIndex,
    ) -> Result<Arc<ShardHandle<S>>, RuntimeError> {
        self.shards
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(topic_id, index))
            .cloned()
            .ok_or(RuntimeError::NotCoordinator)
    }

    /// Every shard, loaded or not.
    pub fn shards(&self) -> Vec<Arc<ShardHandle<S>>> {
        self.shards
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
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
