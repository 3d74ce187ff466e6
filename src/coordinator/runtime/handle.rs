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
use crate::ids::{LeaderEpoch, Offset, PartitionIndex, ProducerEpoch, ProducerId, TopicId};
use crate::replica::{
    now_ms, AppendOrigin, PendingAppend, ReplicaError, ReplicaManager, RequiredAcks,
};
use crate::storage::batch::{self, BrokerRecord};

/// How much of the partition one read takes while loading.
const LOAD_READ_BYTES: usize = 1 << 20;

/// How long a read waits for the records its answer rests on to be replicated (Kafka's `request.timeout.ms`
/// default) before answering NOT_COORDINATOR, which sends the client to look for the coordinator again.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

enum ShardState<S> {
    Loading,
    Loaded(Box<S>),
}

struct ShardSlot<S: CoordinatorShard> {
    state: ShardState<S>,
    /// The end of the last records the state holds (written or loaded), and the leader epoch they were written
    /// in: a read answers once they are replicated.
    state_end: Option<(Offset, LeaderEpoch)>,
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
    /// Signalled once the shard is loaded, and when it is stopped: what [`ShardHandle::apply`] waits for.
    settled: Notify,
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
                state_end: None,
                responders: HashMap::new(),
                next_responder: 0,
            }),
            wake: Notify::new(),
            settled: Notify::new(),
            stopped: AtomicBool::new(false),
        }
    }

    fn slot(&self) -> MutexGuard<'_, ShardSlot<S>> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The partition of the coordinator's topic this shard serves.
    pub fn partition(&self) -> (TopicId, PartitionIndex) {
        (self.topic_id, self.index)
    }

    /// Runs a read-only handler on the loaded shard.
    pub fn read<T>(&self, f: impl FnOnce(&S) -> T) -> Result<T, S::Error> {
        match &self.slot().state {
            ShardState::Loaded(shard) => Ok(f(shard)),
            ShardState::Loading => Err(RuntimeError::LoadInProgress.into()),
        }
    }

    /// [`read`](Self::read), answered only once every record the state was built from is replicated: a client
    /// never sees what a failover could take back (an offset commit acknowledged to nobody, which a leader cut off
    /// from its followers has in memory). Kafka's runtime reads at the last committed offset instead, which needs
    /// snapshots of the state; waiting for the records the state holds is cheaper and never answers staler.
    /// NOT_COORDINATOR if this broker stops leading meanwhile.
    pub async fn read_committed<T>(&self, f: impl FnOnce(&S) -> T) -> Result<T, S::Error> {
        let (value, state_end) = {
            let slot = self.slot();
            match &slot.state {
                ShardState::Loaded(shard) => (f(shard), slot.state_end),
                ShardState::Loading => return Err(RuntimeError::LoadInProgress.into()),
            }
        };
        if let Some((end, epoch)) = state_end {
            let partition = self
                .replicas
                .partition(self.topic_id, self.index)
                .ok_or(RuntimeError::NotCoordinator)?;
            partition
                .wait_replicated(end, epoch, READ_TIMEOUT)
                .await
                .map_err(|_| RuntimeError::NotCoordinator)?;
        }
        Ok(value)
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
        let pending = self.execute(None, false, None, |shard, _, now| handler(shard, now))?;
        Ok(pending.finish().await)
    }

    /// [`write`](Self::write), with the handler's records appended as one transactional batch of `producer_id` at
    /// `producer_epoch` (base sequence -1) and replayed with [`CoordinatorShard::replay_transactional`]: they take
    /// effect when that producer's COMMIT marker reaches the partition.
    pub async fn write_transactional<R: Failable<S::Error>>(
        &self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        handler: impl FnOnce(&mut S, i64) -> Output<S::Record, S::Reply, R>,
    ) -> Result<R, S::Error> {
        let transaction = Some((producer_id, producer_epoch));
        let pending = self.execute(None, false, transaction, |shard, _, now| {
            handler(shard, now)
        })?;
        Ok(pending.finish().await)
    }

    /// Runs a handler on the loaded shard under its lock, writing nothing: for a change that is already in the
    /// partition but was not written by this runtime (a transaction marker the transaction coordinator appended;
    /// Kafka's onTransactionCompleted). While the shard loads it waits, then applies: the load may have read the
    /// partition before the change was written. A change the load did replay is thus applied twice, which a
    /// transaction marker allows ([`CoordinatorShard::replay_end_transaction`]). NOT_COORDINATOR once the shard has
    /// been stopped: the next leader replays the change from the log.
    pub async fn apply<T>(&self, handler: impl FnOnce(&mut S, i64) -> T) -> Result<T, S::Error> {
        self.settled().await;
        if self.stopped.load(Ordering::SeqCst) {
            return Err(RuntimeError::NotCoordinator.into());
        }
        let mut slot = self.slot();
        let ShardState::Loaded(shard) = &mut slot.state else {
            return Err(RuntimeError::LoadInProgress.into());
        };
        let result = handler(shard, now_ms());
        drop(slot);
        // The handler may have moved a timer.
        self.wake.notify_one();
        Ok(result)
    }

    /// Returns once the shard is loaded or stopped.
    async fn settled(&self) {
        loop {
            let mut signalled = std::pin::pin!(self.settled.notified());
            // Registered before the check, so that a load finishing in between still wakes us.
            signalled.as_mut().enable();
            if self.stopped.load(Ordering::SeqCst) || self.is_loaded() {
                return;
            }
            signalled.await;
        }
    }

    /// Runs a handler that parks the request under a [`ResponderId`], and waits for the reply that this or a
    /// later handler (or a timer) gives it. A shard stopped meanwhile answers NOT_COORDINATOR.
    pub async fn write_and_wait(
        &self,
        handler: impl FnOnce(&mut S, ResponderId, i64) -> Output<S::Record, S::Reply, ()>,
    ) -> Result<S::Reply, S::Error> {
        let (sender, receiver) = oneshot::channel();
        self.execute(Some(sender), false, None, handler)?
            .finish()
            .await;
        receiver
            .await
            .map_err(|_| RuntimeError::NotCoordinator.into())
    }

    /// Runs a handler on the loaded shard under its lock: appends its records (as a transactional batch of the
    /// producer in `transaction`, if any), replays them unless the handler did already (timers), and collects the
    /// replies it gives.
    fn execute<R>(
        &self,
        reply_to: Option<oneshot::Sender<S::Reply>>,
        already_replayed: bool,
        transaction: Option<(ProducerId, ProducerEpoch)>,
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
        let mut state_end = None;
        if !output.records.is_empty() {
            let appended = encode_batch::<S>(&output.records, now, transaction)
                .and_then(|batch| self.append(batch, now));
            if let Ok(append) = &appended {
                state_end = Some((append.end_offset(), append.leader_epoch()));
            }
            if appended.is_ok() && !already_replayed {
                for record in &output.records {
                    match transaction {
                        Some((producer_id, epoch)) => {
                            shard.replay_transactional(producer_id, epoch, record)
                        }
                        None => shard.replay(record),
                    }
                }
            }
            write = Some(appended);
        }
        if state_end.is_some() {
            slot.state_end = state_end;
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
        self.settled.notify_waiters();
    }

    /// Replays the partition from its LogStartOffset to its log end as it was when loading began (this broker
    /// leads it: see [`Partition::read_to_log_end`](crate::replica::Partition::read_to_log_end)) into `shard`, then
    /// serves and drives timers until stopped.
    pub(super) async fn load_and_run(self: Arc<Self>, mut shard: S) {
        let started = std::time::Instant::now();
        let mut count = 0usize;
        let mut state_end = None;
        if let Some(partition) = self.replicas.partition(self.topic_id, self.index) {
            let end = partition.log_end_offset();
            // A new leader's log end may be past its HighWatermark: what it loads is replicated later.
            state_end = Some((end, partition.leader_epoch()));
            let mut offset = partition.log_start_offset();
            while offset < end && !self.stopped.load(Ordering::SeqCst) {
                let records = match partition.read_to_log_end(offset, LOAD_READ_BYTES) {
                    Ok((records, _)) => records,
                    Err(error) => {
                        tracing::error!(topic = self.topic, partition = self.index.0, %error, "cannot read the coordinator's partition");
                        break;
                    }
                };
                match replay_batches(self.topic, &mut shard, &records, offset) {
                    Some((next, n)) if next > offset => {
                        offset = next;
                        count += n;
                    }
                    _ => break,
                }
            }
        }
        shard.on_loaded(now_ms());
        {
            let mut slot = self.slot();
            slot.state = ShardState::Loaded(Box::new(shard));
            slot.state_end = state_end;
        }
        self.settled.notify_waiters();
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
                    match self.execute(None, true, None, |shard, _, now| shard.fire_timers(now)) {
                        Ok(pending) => { tokio::spawn(pending.finish()); }
                        Err(error) => tracing::warn!(?error, "timers not fired"),
                    }
                }
                _ = self.wake.notified() => {}
            }
        }
    }
}

/// Replays the records of `bytes` at or after `from`: a transactional batch's with
/// [`CoordinatorShard::replay_transactional`], a control batch's COMMIT or ABORT marker with
/// [`CoordinatorShard::replay_end_transaction`] (other control records, and markers Kafka could not parse either,
/// are skipped). Returns the offset after the last batch and how many records were applied, or `None` when nothing
/// could be read.
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
        let producer_id = ProducerId(header.producer_id);
        for record in records {
            if record.offset < from.0 {
                continue;
            }
            if header.is_control() {
                match end_transaction_marker(record.key.as_deref()) {
                    Some(commit) => {
                        shard.replay_end_transaction(producer_id, commit);
                        count += 1;
                    }
                    None => {
                        tracing::debug!(topic, offset = record.offset, "skipping a control record")
                    }
                }
                continue;
            }
            let Some(key) = record.key.as_deref() else {
                continue;
            };
            match S::deserialize(key, record.value.as_deref()) {
                Ok(Some(decoded)) => {
                    if header.is_transactional() {
                        let epoch = ProducerEpoch(header.producer_epoch);
                        shard.replay_transactional(producer_id, epoch, &decoded);
                    } else {
                        shard.replay(&decoded);
                    }
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

/// What a control record's key says (Kafka's ControlRecordType): `Some(true)` COMMIT, `Some(false)` ABORT, `None`
/// for another type (a leader change) or a key too short to say. Key: int16 version, int16 type; versions other
/// than 0 are read as 0, a negative one is corrupt, as Kafka parses them.
fn end_transaction_marker(key: Option<&[u8]>) -> Option<bool> {
    let key = key?;
    let version = i16::from_be_bytes([*key.first()?, *key.get(1)?]);
    let kind = i16::from_be_bytes([*key.get(2)?, *key.get(3)?]);
    match (version >= 0, kind) {
        (true, 0) => Some(false),
        (true, 1) => Some(true),
        _ => None,
    }
}

fn encode_batch<S: CoordinatorShard>(
    records: &[S::Record],
    now: i64,
    transaction: Option<(ProducerId, ProducerEpoch)>,
) -> Result<Bytes, S::Error> {
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
    let batch = match transaction {
        Some((producer_id, epoch)) => {
            batch::encode_transactional_batch(encoded, Compression::None, producer_id, epoch)
        }
        None => batch::encode_batch(encoded, Compression::None),
    };
    batch.map_err(|_| RuntimeError::BatchTooLarge.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::group::records::OffsetCommitValue;
    use crate::coordinator::group::{CoordinatorRecord, GroupCoordinatorShard, GroupError};

    fn commit(partition: i32) -> CoordinatorRecord {
        commit_of("t", partition, 10 + i64::from(partition))
    }

    fn commit_of(topic: &str, partition: i32, offset: i64) -> CoordinatorRecord {
        CoordinatorRecord::OffsetCommit {
            group: "g".into(),
            topic: topic.into(),
            partition,
            value: Some(OffsetCommitValue {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 5,
                expire_timestamp_ms: None,
            }),
        }
    }

    fn shard() -> GroupCoordinatorShard {
        GroupCoordinatorShard::new(crate::config::BrokerConfig::default().group_coordinator)
    }

    /// Sets a batch's base offset, as the leader does on append (outside the CRC).
    fn at(batch: Bytes, base_offset: i64) -> Vec<u8> {
        let mut batch = batch.to_vec();
        batch[..8].copy_from_slice(&base_offset.to_be_bytes());
        batch
    }

    /// A control batch of `producer_id` as the transaction coordinator writes it: one record, key int16 version 0
    /// and int16 type (0 ABORT, 1 COMMIT), value int16 version 0 and int32 coordinator epoch.
    fn marker(producer_id: i64, commit: bool, base_offset: i64) -> Vec<u8> {
        use kafka_protocol::records::{
            Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let kind: i16 = if commit { 1 } else { 0 };
        let mut key = 0i16.to_be_bytes().to_vec();
        key.extend_from_slice(&kind.to_be_bytes());
        let mut value = 0i16.to_be_bytes().to_vec();
        value.extend_from_slice(&7i32.to_be_bytes());
        let record = Record {
            transactional: true,
            control: true,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 5,
            key: Some(Bytes::from(key)),
            value: Some(Bytes::from(value)),
            headers: Default::default(),
        };
        let mut buf = bytes::BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, std::slice::from_ref(&record), &options)
            .expect("encodes");
        at(buf.freeze(), base_offset)
    }

    #[test]
    fn a_transactional_batch_carries_the_producer_and_no_sequence() {
        let transaction = Some((ProducerId(42), ProducerEpoch(3)));
        let batch = encode_batch::<GroupCoordinatorShard>(&[commit(0), commit(1)], 5, transaction)
            .expect("encodes");
        let header = batch::check_framing(&batch).expect("one whole batch with a good CRC");
        assert!(header.is_transactional());
        assert!(!header.is_control());
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (42, 3, -1)
        );
        assert_eq!(header.record_count, 2);
        let plain = encode_batch::<GroupCoordinatorShard>(&[commit(0)], 5, None).expect("encodes");
        let header = batch::check_framing(&plain).expect("framed");
        assert!(!header.is_transactional());
        assert_eq!((header.producer_id, header.base_sequence), (-1, -1));
    }

    #[test]
    fn loading_keeps_transactional_records_pending_until_their_marker() {
        let batch = |records: &[CoordinatorRecord], producer: Option<i64>, base_offset| {
            let transaction = producer.map(|id| (ProducerId(id), ProducerEpoch(0)));
            let encoded =
                encode_batch::<GroupCoordinatorShard>(records, 5, transaction).expect("encodes");
            at(encoded, base_offset)
        };
        let mut log = Vec::new();
        log.extend(batch(&[commit_of("t", 0, 1)], None, 0));
        // Producer 7 commits t-0 and t-1 and its transaction commits; producer 8 aborts; producer 9 is still open.
        log.extend(batch(
            &[commit_of("t", 0, 70), commit_of("t", 1, 71)],
            Some(7),
            1,
        ));
        log.extend(batch(&[commit_of("t", 2, 80)], Some(8), 3));
        log.extend(marker(7, true, 4));
        log.extend(marker(8, false, 5));
        log.extend(batch(&[commit_of("t", 0, 90)], Some(9), 6));
        let log = Bytes::from(log);

        let mut loaded = shard();
        let (next, count) = replay_batches("t", &mut loaded, &log, Offset(0)).expect("replayed");
        assert_eq!(next, Offset(7));
        assert_eq!(count, 7, "five offset commits and two markers");
        let wanted = [("t".to_string(), vec![0, 1, 2])];
        let offsets: Vec<i64> = loaded.fetch_offsets(&"g".into(), Some(&wanted), false)[0]
            .1
            .iter()
            .map(|o| o.offset)
            .collect();
        assert_eq!(offsets, vec![70, 71, -1]);
        let stable = loaded.fetch_offsets(&"g".into(), Some(&wanted), true);
        assert_eq!(
            stable[0].1[0].error,
            Some(GroupError::UnstableOffsetCommit),
            "producer 9's offset is pending"
        );
        assert_eq!(stable[0].1[1].error, None);

        // Producer 9's marker, applied later (live), commits its offset.
        loaded.end_transaction(ProducerId(9), true);
        let fetched = loaded.fetch_offsets(&"g".into(), Some(&wanted), true);
        assert_eq!(
            (fetched[0].1[0].offset, fetched[0].1[0].error.clone()),
            (90, None)
        );
    }

    #[test]
    fn only_commit_and_abort_control_records_end_a_transaction() {
        assert_eq!(end_transaction_marker(Some(&[0, 0, 0, 1])), Some(true));
        assert_eq!(end_transaction_marker(Some(&[0, 0, 0, 0])), Some(false));
        assert_eq!(
            end_transaction_marker(Some(&[0, 1, 0, 1])),
            Some(true),
            "a newer key version is read as version 0"
        );
        assert_eq!(
            end_transaction_marker(Some(&[0, 0, 0, 2])),
            None,
            "a leader change"
        );
        assert_eq!(end_transaction_marker(Some(&[0xff, 0xff, 0, 1])), None);
        assert_eq!(end_transaction_marker(Some(&[0, 0, 0])), None);
        assert_eq!(end_transaction_marker(None), None);
    }

    #[tokio::test]
    async fn apply_waits_for_the_load_and_fails_once_stopped() {
        let replicas = Arc::new(ReplicaManager::new(crate::config::BrokerConfig::default()));
        let handle = Arc::new(ShardHandle::<GroupCoordinatorShard>::new(
            "t",
            TopicId::random(),
            PartitionIndex(0),
            replicas.clone(),
        ));
        let waiting = tokio::spawn({
            let handle = handle.clone();
            async move {
                handle
                    .apply(|shard, _| shard.next_deadline().is_some())
                    .await
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the shard is still loading");
        // No partition to read: the load finishes at once, then serves.
        tokio::spawn(handle.clone().load_and_run(shard()));
        let applied = waiting.await.expect("joined");
        assert_eq!(applied, Ok(true), "applied on the loaded shard");

        handle.stop();
        assert_eq!(
            handle.apply(|_, _| ()).await,
            Err(GroupError::NotCoordinator)
        );

        // A shard stopped while loading answers the waiting apply too.
        let loading = Arc::new(ShardHandle::<GroupCoordinatorShard>::new(
            "t",
            TopicId::random(),
            PartitionIndex(1),
            replicas,
        ));
        let waiting = tokio::spawn({
            let loading = loading.clone();
            async move { loading.apply(|_, _| ()).await }
        });
        tokio::task::yield_now().await;
        loading.stop();
        assert_eq!(
            waiting.await.expect("joined"),
            Err(GroupError::NotCoordinator)
        );
    }

    #[test]
    fn a_handlers_records_go_out_as_one_batch_and_replay_back() {
        let batch =
            encode_batch::<GroupCoordinatorShard>(&[commit(0), commit(1), commit(2)], 5, None)
                .expect("encodes");
        let sets = RecordBatchDecoder::decode_all(&mut batch.clone()).expect("decodes");
        assert_eq!(
            sets.len(),
            1,
            "one batch: the log takes one batch per append"
        );
        assert_eq!(sets[0].records.len(), 3);
        let mut shard = shard();
        let (next, count) = replay_batches("t", &mut shard, &batch, Offset(1)).expect("replayed");
        assert_eq!(
            (next, count),
            (Offset(3), 2),
            "records before the start offset are skipped"
        );
        let offsets = shard.fetch_offsets(&"g".into(), None, false);
        assert_eq!(
            offsets[0].1.iter().map(|o| o.offset).collect::<Vec<_>>(),
            vec![11, 12]
        );
    }
}
