//! One shard in the runtime: its loading, its lock, its writes and its timers. See the module doc of
//! [`runtime`](super) for the rules.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use tokio::sync::{oneshot, Notify};

use super::{CoordinatorShard, Failable, Output, ResponderId, RuntimeError};
use crate::ids::{Offset, PartitionIndex, TopicId};
use crate::replica::{
    now_ms, AppendOrigin, IsolationLevel, PendingAppend, ReplicaError, ReplicaManager, RequiredAcks,
};
use crate::storage::batch::{self, BrokerRecord};

/// How much of the partition one read takes while loading.
const LOAD_READ_BYTES: usize = 1 << 20;

enum ShardState<S> {
    Loading,
    Loaded(Box<S>),
}

struct ShardSlot<S: CoordinatorShard> {
    state: ShardState<S>,
    responders: HashMap<ResponderId, oneshot::Sender<S::Reply>>,
    next_responder: u64,
}

/// One partition of a coordinator's topic led by this broker, and the shard built from it.
pub struct ShardHandle<S: CoordinatorShard> {
    topic: &'static str,
    topic_id: TopicId,
    index: PartitionIndex,
    replicas: Arc<ReplicaManager>,
    slot: Mutex<ShardSlot<S>>,
    wake: Notify,
    stopped: AtomicBool,
}

/// Records appended but not yet durable, and what to deliver once they are.
pub struct Pending<S: CoordinatorShard, R> {
    write: Option<Result<PendingAppend, S::Error>>,
    replies: Vec<(oneshot::Sender<S::Reply>, S::Reply)>,
    response: R,
}

impl<S: CoordinatorShard, R: Failable<S::Error>> Pending<S, R> {
    /// Waits for the records to be durable, then delivers the replies and returns the response; if the write
    /// failed, both carry the error instead.
    pub async fn finish(mut self) -> R {
        let failure: Option<S::Error> = match self.write.take() {
            None => None,
            Some(Err(error)) => Some(error),
            Some(Ok(append)) => append
                .wait()
                .await
                .err()
                .map(|e| RuntimeError::Write(Arc::new(e)).into()),
        };
        if let Some(error) = failure {
            tracing::error!(?error, "coordinator write failed");
            self.response.fail(error.clone());
            for (_, reply) in &mut self.replies {
                reply.fail(error.clone());
            }
        }
        for (sender, reply) in self.replies {
            let _ = sender.send(reply);
        }
        self.response
    }
}

impl<S: CoordinatorShard> ShardHandle<S> {
    pub(super) fn new(
        topic: &'static str,
        topic_id: TopicId,
        index: PartitionIndex,
        replicas: Arc<ReplicaManager>,
    ) -> Self {
        ShardHandle {
            topic,
            topic_id,
            index,
            replicas,
            slot: Mutex::new(ShardSlot {
                state: ShardState::Loading,
                responders: HashMap::new(),
                next_responder: 0,
            }),
            wake: Notify::new(),
            stopped: AtomicBool::new(false),
        }
    }

    fn slot(&self) -> MutexGuard<'_, ShardSlot<S>> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a read-only handler on the loaded shard.
    pub fn read<T>(&self, f: impl FnOnce(&S) -> T) -> Result<T, S::Error> {
        match &self.slot().state {
            ShardState::Loaded(shard) => Ok(f(shard)),
            ShardState::Loading => Err(RuntimeError::LoadInProgress.into()),
        }
    }

    /// Whether the shard has been loaded.
    pub fn is_loaded(&self) -> bool {
        matches!(self.slot().state, ShardState::Loaded(_))
    }

    /// Runs a write handler and returns its response once its records are durable.
    pub async fn write<R: Failable<S::Error>>(
        &self,
        handler: impl FnOnce(&mut S, i64) -> Output<S::Record, S::Reply, R>,
    ) -> Result<R, S::Error> {
        let pending = self.execute(None, false, |shard, _, now| handler(shard, now))?;
        Ok(pending.finish().await)
    }

    /// Runs a handler that parks the request under a [`ResponderId`], and waits for the reply that this or a
    /// later handler (or a timer) gives it. A shard stopped meanwhile answers NOT_COORDINATOR.
    pub async fn write_and_wait(
        &self,
        handler: impl FnOnce(&mut S, ResponderId, i64) -> Output<S::Record, S::Reply, ()>,
    ) -> Result<S::Reply, S::Error> {
        let (sender, receiver) = oneshot::channel();
        self.execute(Some(sender), false, handler)?.finish().await;
        receiver
            .await
            .map_err(|_| RuntimeError::NotCoordinator.into())
    }

    /// Runs a handler on the loaded shard under its lock: appends its records, replays them unless the handler
    /// did already (timers), and collects the replies it gives.
    fn execute<R>(
        &self,
        reply_to: Option<oneshot::Sender<S::Reply>>,
        already_replayed: bool,
        handler: impl FnOnce(&mut S, ResponderId, i64) -> Output<S::Record, S::Reply, R>,
    ) -> Result<Pending<S, R>, S::Error> {
        let now = now_ms();
        let mut slot = self.slot();
        let responder = ResponderId(slot.next_responder);
        slot.next_responder += 1;
        let ShardState::Loaded(shard) = &mut slot.state else {
            return Err(RuntimeError::LoadInProgress.into());
        };
        let output = handler(shard, responder, now);
        let mut write = None;
        if !output.records.is_empty() {
            let appended =
                encode_batch::<S>(&output.records, now).and_then(|batch| self.append(batch, now));
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
    /// the partition.
    fn append(&self, batch: Bytes, now: i64) -> Result<PendingAppend, S::Error> {
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
                ReplicaError::NotLeaderOrFollower => RuntimeError::NotCoordinator.into(),
                error => RuntimeError::Write(Arc::new(error)).into(),
            })
    }

    pub(super) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Parked requests see their channel close and answer NOT_COORDINATOR.
        self.slot().responders.clear();
        self.wake.notify_one();
    }

    /// Replays the partition from its LogStartOffset to its HighWatermark into `shard`, then serves and drives
    /// timers until stopped.
    pub(super) async fn load_and_run(self: Arc<Self>, mut shard: S) {
        let started = std::time::Instant::now();
        let mut count = 0usize;
        if let Some(partition) = self.replicas.partition(self.topic_id, self.index) {
            let end = partition.high_watermark();
            let mut offset = partition.log_start_offset();
            while offset < end {
                let read = match partition.read(
                    offset,
                    LOAD_READ_BYTES,
                    true,
                    IsolationLevel::ReadUncommitted,
                ) {
                    Ok(read) => read,
                    Err(error) => {
                        tracing::error!(topic = self.topic, partition = self.index.0, %error, "cannot read the coordinator's partition");
                        break;
                    }
                };
                match replay_batches(self.topic, &mut shard, &read.records, offset) {
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
            topic = self.topic,
            partition = self.index.0,
            records = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded coordinator partition"
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
                    // Timer handlers replay their own records as they go.
                    match self.execute(None, true, |shard, _, now| shard.fire_timers(now)) {
                        Ok(pending) => { tokio::spawn(pending.finish()); }
                        Err(error) => tracing::warn!(?error, "timers not fired"),
                    }
                }
                _ = self.wake.notified() => {}
            }
        }
    }
}

/// Replays the records of `bytes` at or after `from`; returns the offset after the last batch and how many records
/// were applied, or `None` when nothing could be read.
fn replay_batches<S: CoordinatorShard>(
    topic: &str,
    shard: &mut S,
    bytes: &Bytes,
    from: Offset,
) -> Option<(Offset, usize)> {
    let mut next = None;
    let mut count = 0;
    for (header, mut batch) in batch::whole_batches(bytes.clone()) {
        next = Some(Offset(header.next_offset()));
        let records = match RecordBatchDecoder::decode(&mut batch) {
            Ok(set) => set.records,
            Err(error) => {
                tracing::error!(topic, offset = header.base_offset, %error, "skipping an unreadable batch");
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
            match S::deserialize(key, record.value.as_deref()) {
                Ok(Some(decoded)) => {
                    shard.replay(&decoded);
                    count += 1;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(topic, offset = record.offset, %error, "skipping an unreadable record")
                }
            }
        }
    }
    next.map(|n| (n, count))
}

fn encode_batch<S: CoordinatorShard>(records: &[S::Record], now: i64) -> Result<Bytes, S::Error> {
    let encoded = records
        .iter()
        .map(|record| {
            let (key, value) = S::serialize(record)?;
            Ok(BrokerRecord {
                key: Some(key),
                value,
                timestamp_ms: now,
            })
        })
        .collect::<Result<Vec<_>, S::Error>>()?;
    batch::encode_batch(encoded, Compression::None).map_err(|_| RuntimeError::BatchTooLarge.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::group::records::OffsetCommitValue;
    use crate::coordinator::group::{CoordinatorRecord, GroupCoordinatorShard};

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
        let batch = encode_batch::<GroupCoordinatorShard>(&[commit(0), commit(1), commit(2)], 5)
            .expect("encodes");
        let sets = RecordBatchDecoder::decode_all(&mut batch.clone()).expect("decodes");
        assert_eq!(
            sets.len(),
            1,
            "one batch: the log takes one batch per append"
        );
        assert_eq!(sets[0].records.len(), 3);
        let mut shard =
            GroupCoordinatorShard::new(crate::config::BrokerConfig::default().group_coordinator);
        let (next, count) = replay_batches("t", &mut shard, &batch, Offset(1)).expect("replayed");
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
}
