//! One partition replica hosted by this broker: its [`Log`], its leader and ISR as the MetadataImage last gave
//! them, its HighWatermark, and the group commit that makes appends durable before they are acknowledged.
//!
//! Requests do not call it directly: the [`ReplicaManager`](super::ReplicaManager) finds the partition, checks that
//! this broker leads it and then appends or reads here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::ids::{
    BrokerId, LeaderEpoch, Offset, PartitionIndex, ProducerEpoch, ProducerId, TopicId,
};
use bytes::Bytes;
use tokio::sync::watch;

use super::fetch::IsolationLevel;
use super::remote_replica::RemoteReplica;
use super::ReplicaError;
use crate::config::FlushPolicy;
use crate::metadata::PartitionRegistration;
use crate::storage::batch::whole_batches;
use crate::storage::producer_state::ProducerStateEntry;
use crate::storage::{AbortedTxn, AppendOrigin, ControlRecordType, Log, LogAppendInfo, LogConfig};

mod replication;
pub mod stats;

pub struct Partition {
    pub topic: Arc<str>,
    pub topic_id: TopicId,
    pub index: PartitionIndex,
    log: Mutex<Log>,
    /// Leader, leader epoch, replicas and ISR, as of the last MetadataImage this broker applied.
    state: Mutex<PartitionRegistration>,
    /// Held by whoever is fsyncing; appends that arrive meanwhile queue here and usually find their data already
    /// covered by the flush in progress (group commit).
    flush: tokio::sync::Mutex<()>,
    /// Offsets below the HighWatermark are visible to consumers. With one replica it is the log end offset once the
    /// data is as durable as the flush policy promises. Fetches waiting for data watch it.
    high_watermark: watch::Sender<Offset>,
    policy: FlushPolicy,
    messages_since_flush: AtomicU64,
    /// This broker.
    local: BrokerId,
    /// As leader: what each follower has fetched (empty as follower).
    followers: Mutex<HashMap<BrokerId, RemoteReplica>>,
    /// The log end offset, which followers' fetches wait on as consumers' wait on the HighWatermark.
    log_end: watch::Sender<Offset>,
    /// Set while an AlterPartition for this partition is on its way to the controller: one at a time, as Kafka.
    isr_change_in_flight: AtomicBool,
}

/// How a new MetadataImage changed this broker's part in a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    /// Still leader or follower of the same leader epoch.
    Unchanged,
    /// This broker leads from now on, in this epoch.
    BecameLeader(LeaderEpoch),
    /// This broker follows `leader` in `epoch` (or has no leader to follow: -1).
    BecameFollower {
        leader: BrokerId,
        epoch: LeaderEpoch,
    },
}

/// A follower's fetch as the leader reads it: where the follower's log is and what it last fetched.
#[derive(Debug, Clone, Copy)]
pub struct FollowerFetch {
    pub replica: BrokerId,
    pub fetch_offset: Offset,
    pub last_fetched_epoch: Option<LeaderEpoch>,
}

/// What a fetch gets from one partition.
#[derive(Debug, Clone)]
pub struct PartitionRead {
    pub records: Bytes,
    pub high_watermark: Offset,
    pub last_stable_offset: Offset,
    pub log_start_offset: Offset,
    /// For read_committed, the aborted transactions overlapping `records` (the consumer skips their records);
    /// `None` for read_uncommitted, as Kafka leaves the field null.
    pub aborted_transactions: Option<Vec<AbortedTxn>>,
    /// KIP-320: the fetcher's last fetched epoch ends earlier in this log (or is not in it): the epoch and end
    /// offset to truncate to before fetching again. No records come with it.
    pub diverging_epoch: Option<(LeaderEpoch, Offset)>,
}

/// The state of a replica that has no part in the partition: as opened, before its first state, and once stopped.
fn no_role() -> PartitionRegistration {
    PartitionRegistration {
        replicas: Vec::new(),
        isr: Vec::new(),
        leader: BrokerId(-1),
        leader_epoch: LeaderEpoch(-1),
        partition_epoch: crate::ids::PartitionEpoch(-1),
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
    }
}

impl Partition {
    /// A partition replica as opened; call [`Partition::set_state`] with `state` next to take up its role.
    pub fn new(
        topic: Arc<str>,
        topic_id: TopicId,
        index: PartitionIndex,
        log: Log,
        local: BrokerId,
        policy: FlushPolicy,
    ) -> Self {
        // Whatever survived recovery has been fsynced (or was written before a clean shutdown). A leader that is the
        // only replica may show all of it; with followers, what they lack is cut back by truncation before it could
        // be read (a follower's log never holds what the leader's does not at a lower HighWatermark).
        let (high_watermark, _) = watch::channel(log.log_end_offset());
        let (log_end, _) = watch::channel(log.log_end_offset());
        // The log took the same HighWatermark on open.
        Self {
            topic,
            topic_id,
            index,
            log: Mutex::new(log),
            state: Mutex::new(no_role()),
            flush: tokio::sync::Mutex::new(()),
            high_watermark,
            policy,
            messages_since_flush: AtomicU64::new(0),
            local,
            followers: Mutex::new(HashMap::new()),
            log_end,
            isr_change_in_flight: AtomicBool::new(false),
        }
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        // A panic while holding the lock cannot leave the Log half-updated in a way later calls trust: appends
        // validate before writing, and recovery checks the files at the next start.
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, PartitionRegistration> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.state().leader_epoch
    }

    /// Whether `producer_id` at `epoch` has a transaction open in this partition: its next transactional batch
    /// continues that transaction, so KIP-890's verification is needed only when this is false.
    pub fn in_transaction(&self, producer_id: ProducerId, epoch: ProducerEpoch) -> bool {
        self.log()
            .producer_state()
            .entry(producer_id)
            .is_some_and(|e| e.epoch == epoch && e.current_txn_first_offset.is_some())
    }

    /// Whether `broker` leads this partition, as of the last image applied.
    pub fn is_leader(&self, broker: BrokerId) -> bool {
        self.state().leader == broker
    }

    /// Whether this broker still leads in `epoch`: an acks=all append waits for the HighWatermark only while it
    /// does. Once this broker follows, its HighWatermark is the new leader's, over a log it may have truncated, and
    /// passing an old append's offset says nothing about that append.
    pub fn leads_in(&self, epoch: LeaderEpoch) -> bool {
        let state = self.state();
        state.leader == self.local && state.leader_epoch == epoch
    }

    /// The leader, epoch, replicas and ISR as last applied.
    pub fn registration(&self) -> PartitionRegistration {
        self.state().clone()
    }

    /// This broker left the replica set (reassigned away, or the topic deleted): whatever still holds the partition
    /// (a delayed fetch, an ISR proposal) finds that it leads nothing, so no follower is served from a log being
    /// deleted and no ISR change is proposed for it.
    pub(super) fn stop(&self) {
        *self.state() = no_role();
        self.followers().clear();
    }

    /// Takes the leader, epoch, replicas and ISR of a newly applied MetadataImage, and says how this broker's role
    /// changed. A new leader (Kafka's `makeLeader`) starts its epoch at its log end and counts the ISR as caught up
    /// as of now; a follower's fetcher (the caller's) takes it from there.
    pub fn set_state(
        &self,
        state: &PartitionRegistration,
        now_ms: i64,
    ) -> Result<RoleChange, ReplicaError> {
        let mut current = self.state();
        if *current == *state {
            return Ok(RoleChange::Unchanged);
        }
        let new_term = current.leader != state.leader || current.leader_epoch != state.leader_epoch;
        *current = state.clone();
        drop(current);
        if new_term {
            // Appends waiting for the ISR in the old term wake up to find it over (see `leads_in`).
            self.high_watermark.send_modify(|_| {});
        }
        self.isr_change_in_flight.store(false, Ordering::Release);
        let leads = state.leader == self.local;
        let mut followers = self.followers();
        if !leads {
            followers.clear();
            drop(followers);
            return Ok(if new_term {
                RoleChange::BecameFollower {
                    leader: state.leader,
                    epoch: state.leader_epoch,
                }
            } else {
                RoleChange::Unchanged
            });
        }
        if new_term {
            followers.clear();
        }
        for replica in state.replicas.iter().filter(|r| **r != self.local) {
            followers
                .entry(*replica)
                .or_insert_with(|| RemoteReplica::new(state.isr.contains(replica), now_ms));
        }
        followers.retain(|id, _| state.replicas.contains(id));
        drop(followers);
        if new_term {
            let mut log = self.log();
            let end = log.log_end_offset();
            log.begin_epoch(state.leader_epoch, end)?;
        }
        self.maybe_increment_high_watermark();
        Ok(if new_term {
            RoleChange::BecameLeader(state.leader_epoch)
        } else {
            RoleChange::Unchanged
        })
    }

    fn followers(&self) -> MutexGuard<'_, HashMap<BrokerId, RemoteReplica>> {
        self.followers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn high_watermark(&self) -> Offset {
        *self.high_watermark.borrow()
    }

    /// The LastStableOffset: the HighWatermark, or the first unstable offset (see
    /// [`Log::first_unstable_offset`]) when that is lower. read_committed fetches stop there.
    pub fn last_stable_offset(&self) -> Offset {
        let high_watermark = self.high_watermark();
        Self::stable(high_watermark, &self.log())
    }

    fn stable(high_watermark: Offset, log: &Log) -> Offset {
        log.first_unstable_offset()
            .map_or(high_watermark, |unstable| unstable.min(high_watermark))
    }

    pub fn subscribe(&self) -> watch::Receiver<Offset> {
        self.high_watermark.subscribe()
    }

    pub fn log_start_offset(&self) -> Offset {
        self.log().log_start_offset()
    }

    pub fn checkpoint_recovery_point(&self) -> Result<(), ReplicaError> {
        Ok(self.log().checkpoint_recovery_point()?)
    }

    pub fn update_config(&self, config: LogConfig) {
        self.log().update_config(config);
    }

    /// DeleteRecords: moves the LogStartOffset to `offset` (-1: the HighWatermark). Beyond the HighWatermark is
    /// OFFSET_OUT_OF_RANGE. Returns the new low watermark.
    pub fn delete_records(&self, offset: Offset, now_ms: i64) -> Result<Offset, ReplicaError> {
        let high_watermark = self.high_watermark();
        let target = if offset == Offset(-1) {
            high_watermark
        } else {
            offset
        };
        let mut log = self.log();
        if target < Offset(0) || target > high_watermark {
            return Err(ReplicaError::Log(
                crate::storage::LogError::OffsetOutOfRange {
                    offset,
                    log_start_offset: log.log_start_offset(),
                    log_end_offset: high_watermark,
                },
            ));
        }
        Ok(log.delete_records_before(target, now_ms)?)
    }

    /// One retention pass over this partition's log (segments past retention.ms / retention.bytes / the
    /// LogStartOffset). Returns how many segments went.
    pub fn delete_old_segments(&self, now_ms: i64) -> Result<usize, ReplicaError> {
        Ok(self.log().delete_old_segments(now_ms)?)
    }

    /// One log cleaner pass if one is due: the plan and the swap under the lock, the reading and writing (the
    /// slow part) without it, so appends and fetches continue meanwhile. The offset map takes `map_bytes`.
    pub fn clean(
        &self,
        map_bytes: usize,
        now_ms: i64,
    ) -> Result<Option<crate::storage::CleanStats>, ReplicaError> {
        let Some(plan) = self.log().clean_plan(now_ms) else {
            return Ok(None);
        };
        let mut map = crate::storage::OffsetMap::with_memory(map_bytes);
        let Some(cleaned) = crate::storage::build_cleaned(&plan, &mut map, now_ms)? else {
            return Ok(None);
        };
        Ok(self.log().install_cleaned(cleaned, now_ms)?)
    }

    /// The idempotent and transactional producers this partition knows, by id (DescribeProducers).
    pub fn active_producers(&self) -> Vec<(ProducerId, ProducerStateEntry)> {
        let log = self.log();
        let mut producers: Vec<_> = log
            .producer_state()
            .entries()
            .map(|(id, entry)| (*id, entry.clone()))
            .collect();
        producers.sort_by_key(|(id, _)| *id);
        producers
    }

    /// Forgets producers idle for `producer.id.expiration.ms`.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) {
        self.log().expire_producers(now_ms, expiration_ms);
    }

    /// Bytes of log on disk (DescribeLogDirs).
    pub fn size_in_bytes(&self) -> u64 {
        self.log().size_in_bytes()
    }

    /// An append as leader, in the order the client sent its batches; then await [`Partition::complete`] for the
    /// acknowledgement, which may run concurrently with later appends. With acks=all it is refused before anything
    /// is written when the ISR is smaller than the effective min.insync.replicas, as Kafka refuses it.
    pub fn append_as_leader(
        &self,
        records: Bytes,
        origin: AppendOrigin,
        now_ms: i64,
        acks_all: bool,
    ) -> Result<LogAppendInfo, ReplicaError> {
        self.append_with(acks_all, |log, epoch| {
            log.append(records, epoch, origin, now_ms)
        })
    }

    /// A transaction marker appended as leader, with acks=all (see [`Log::append_marker`]); then await
    /// [`Partition::complete`] as for any append.
    pub fn append_txn_marker(
        &self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        marker: ControlRecordType,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<LogAppendInfo, ReplicaError> {
        self.append_with(true, |log, epoch| {
            log.append_marker(
                producer_id,
                producer_epoch,
                marker,
                coordinator_epoch,
                epoch,
                now_ms,
            )
        })
    }

    fn append_with(
        &self,
        acks_all: bool,
        append: impl FnOnce(&mut Log, LeaderEpoch) -> Result<LogAppendInfo, crate::storage::LogError>,
    ) -> Result<LogAppendInfo, ReplicaError> {
        let mut log = self.log();
        // Checked under the log's lock (the order every path takes the two in), so that a change of leadership
        // (which truncates under that lock) comes wholly before or after this append.
        let epoch = {
            let state = self.state();
            if state.leader != self.local {
                return Err(ReplicaError::NotLeaderOrFollower);
            }
            if acks_all {
                if let Some((isr, min_isr)) = shortfall(&log, &state) {
                    return Err(ReplicaError::NotEnoughReplicas { isr, min_isr });
                }
            }
            state.leader_epoch
        };
        let info = append(&mut log, epoch)?;
        let end = log.log_end_offset();
        drop(log);
        self.log_end.send_replace(end);
        if self.policy != FlushPolicy::Durable {
            // Page-cache mode: written counts as the leader's own copy.
            self.maybe_increment_high_watermark();
        }
        Ok(info)
    }

    /// For an acks=all append once [`Partition::complete`] returned: whether the ISR (as the image gives it now)
    /// still satisfies min.insync.replicas. If it shrank meanwhile, the records stay in the log but the producer
    /// hears NOT_ENOUGH_REPLICAS_AFTER_APPEND, as from Kafka, and may retry.
    pub fn check_isr_after_append(&self) -> Result<(), ReplicaError> {
        match self.isr_shortfall(&self.log()) {
            Some((isr, min_isr)) => {
                Err(ReplicaError::NotEnoughReplicasAfterAppend { isr, min_isr })
            }
            None => Ok(()),
        }
    }

    /// The ISR's size and the effective min.insync.replicas, when the first falls short of the second. The topic's
    /// min.insync.replicas is capped at the replication factor: Kafka (since 3.7, KAFKA-15583) accepts any value
    /// but never requires more in-sync replicas than the partition has.
    fn isr_shortfall(&self, log: &Log) -> Option<(usize, usize)> {
        shortfall(log, &self.state())
    }

    /// Returns once the append is as durable as the flush policy promises, and visible below the HighWatermark.
    pub async fn complete(&self, appended: &LogAppendInfo) -> Result<(), ReplicaError> {
        let end = Offset(appended.last_offset.0 + 1);
        match self.policy {
            FlushPolicy::Durable => self.flush_to(end).await,
            FlushPolicy::Interval { messages, .. } => {
                let count = u64::from(appended.record_count);
                let pending = self
                    .messages_since_flush
                    .fetch_add(count, Ordering::Relaxed)
                    + count;
                if messages.is_some_and(|limit| pending >= limit) {
                    self.flush_to(end).await?;
                }
                Ok(())
            }
        }
    }

    /// Returns once the HighWatermark reaches `end` while this broker leads in `epoch` (Kafka's delayed produce,
    /// for acks=all): NOT_LEADER_OR_FOLLOWER as soon as it no longer does (see [`leads_in`](Self::leads_in)),
    /// REQUEST_TIMED_OUT after `timeout`.
    pub async fn wait_replicated(
        &self,
        end: Offset,
        epoch: LeaderEpoch,
        timeout: std::time::Duration,
    ) -> Result<(), ReplicaError> {
        let mut high_watermark = self.subscribe();
        let replicated = async {
            loop {
                let reached = *high_watermark.borrow_and_update() >= end;
                if !self.leads_in(epoch) {
                    return Err(ReplicaError::NotLeaderOrFollower);
                }
                if reached {
                    return Ok(());
                }
                if high_watermark.changed().await.is_err() {
                    return Err(ReplicaError::RequestTimedOut);
                }
            }
        };
        tokio::time::timeout(timeout, replicated)
            .await
            .unwrap_or(Err(ReplicaError::RequestTimedOut))
    }

    /// Makes everything below `end` durable, sharing the fsync with every append that arrived in the meantime.
    pub async fn flush_to(&self, end: Offset) -> Result<(), ReplicaError> {
        if self.log().flushed_offset() >= end {
            return Ok(());
        }
        let _flushing = self.flush.lock().await;
        let (upto, files) = {
            let log = self.log();
            if log.flushed_offset() >= end {
                return Ok(());
            }
            log.unflushed()
        };
        let started = std::time::Instant::now();
        tokio::task::spawn_blocking(move || files.iter().try_for_each(|file| file.sync_data()))
            .await
            .map_err(|_| ReplicaError::FlushAborted)??;
        crate::metrics::broker_metrics().record_log_flush(started.elapsed());
        self.log().mark_flushed(upto);
        self.messages_since_flush.store(0, Ordering::Relaxed);
        if self.policy == FlushPolicy::Durable {
            self.maybe_increment_high_watermark();
        }
        Ok(())
    }

    /// As leader: moves the HighWatermark up to what every ISR member has, the leader's own copy counted as far as
    /// the flush policy makes it durable (fsynced in durable mode, written in page-cache mode) and each follower's
    /// as far as its fetch offset (a follower in durable mode fsyncs before it fetches again). Never moves it down.
    fn maybe_increment_high_watermark(&self) {
        let own = {
            let log = self.log();
            match self.policy {
                FlushPolicy::Durable => log.flushed_offset(),
                FlushPolicy::Interval { .. } => log.log_end_offset(),
            }
        };
        // State before followers, the order every path that holds both takes them in.
        let state = self.state();
        if state.leader != self.local {
            return;
        }
        let followers = self.followers();
        let lowest = state
            .isr
            .iter()
            .filter(|id| **id != self.local)
            .map(|id| {
                followers
                    .get(id)
                    .and_then(|f| f.log_end_offset)
                    .unwrap_or(Offset(-1))
            })
            .fold(own, Offset::min);
        drop(followers);
        drop(state);
        self.advance_high_watermark(lowest);
    }

    fn advance_high_watermark(&self, to: Offset) {
        // The log first, so that a fetch the watch wakes finds the transactions below `to` stable.
        if to > self.high_watermark() {
            self.log().update_high_watermark(to);
        }
        self.high_watermark.send_if_modified(|hw| {
            let advanced = to > *hw;
            if advanced {
                *hw = to;
            }
            advanced
        });
    }

    /// Reads from `offset`, never past what `isolation` may see: the HighWatermark, or for read_committed the
    /// LastStableOffset, with the aborted transactions among what was read (Kafka's upper bound for them is the
    /// end of the batches returned).
    pub fn read(
        &self,
        offset: Offset,
        max_bytes: usize,
        min_one_batch: bool,
        isolation: IsolationLevel,
    ) -> Result<PartitionRead, ReplicaError> {
        let high_watermark = self.high_watermark();
        let log = self.log();
        let last_stable_offset = Self::stable(high_watermark, &log);
        let visible = match isolation {
            IsolationLevel::ReadUncommitted => high_watermark,
            IsolationLevel::ReadCommitted => last_stable_offset,
        };
        let records = log.read(offset, max_bytes, visible, min_one_batch)?;
        let aborted_transactions = match isolation {
            IsolationLevel::ReadUncommitted => None,
            IsolationLevel::ReadCommitted => match whole_batches(records.clone()).last() {
                Some((last, _)) => {
                    let upper_bound = Offset(last.next_offset());
                    Some(log.collect_aborted_transactions(offset, upper_bound)?)
                }
                None => Some(Vec::new()),
            },
        };
        Ok(PartitionRead {
            records,
            high_watermark,
            last_stable_offset,
            log_start_offset: log.log_start_offset(),
            aborted_transactions,
            diverging_epoch: None,
        })
    }

    pub fn offset_for_timestamp(
        &self,
        target_ms: i64,
    ) -> Result<Option<(i64, Offset)>, ReplicaError> {
        Ok(self.log().offset_for_timestamp(target_ms)?)
    }

    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, Offset)>, ReplicaError> {
        Ok(self.log().max_timestamp_offset()?)
    }

    /// Takes the log out for closing or deletion; the partition must no longer be reachable.
    pub(super) fn into_log(self) -> Log {
        self.log
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn flush_now(&self) -> Result<(), ReplicaError> {
        let mut log = self.log();
        log.flush()?;
        let end = log.log_end_offset();
        drop(log);
        self.messages_since_flush.store(0, Ordering::Relaxed);
        self.advance_high_watermark(end);
        Ok(())
    }
}

/// [`Partition::isr_shortfall`] of a state already locked.
fn shortfall(log: &Log, state: &PartitionRegistration) -> Option<(usize, usize)> {
    let configured = usize::try_from(log.config().min_insync_replicas).unwrap_or(1);
    let min_isr = configured.min(state.replicas.len());
    (state.isr.len() < min_isr).then_some((state.isr.len(), min_isr))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::storage::test_batches::batch;

    /// Broker 1's replica of a partition, in a log under `dir`.
    pub(in crate::replica) fn partition(
        dir: &std::path::Path,
        min_insync_replicas: i32,
    ) -> Partition {
        let config = LogConfig {
            min_insync_replicas,
            ..LogConfig::default()
        };
        let log = Log::open(dir.to_path_buf(), config, 0).expect("open");
        let p = Partition::new(
            "t".into(),
            TopicId(uuid::Uuid::new_v4()),
            PartitionIndex(0),
            log,
            BrokerId(1),
            FlushPolicy::Durable,
        );
        p.set_state(&state(&[1], &[1]), 0).expect("state");
        p
    }

    /// Led by the first of `replicas`, in epoch 0.
    pub(in crate::replica) fn state(replicas: &[i32], isr: &[i32]) -> PartitionRegistration {
        PartitionRegistration {
            replicas: replicas.iter().map(|id| BrokerId(*id)).collect(),
            isr: isr.iter().map(|id| BrokerId(*id)).collect(),
            leader: BrokerId(replicas[0]),
            leader_epoch: LeaderEpoch(0),
            partition_epoch: crate::ids::PartitionEpoch(0),
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }

    #[test]
    fn acks_all_needs_min_insync_replicas_in_the_isr() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = partition(dir.path(), 2);
        let shrunk = state(&[1, 2, 3], &[1]);
        p.set_state(&shrunk, 0).expect("state");
        assert!(matches!(
            p.append_as_leader(batch(1, 0), AppendOrigin::Client, 0, true),
            Err(ReplicaError::NotEnoughReplicas { isr: 1, min_isr: 2 })
        ));
        assert_eq!(
            p.log().log_end_offset(),
            Offset(0),
            "refused before the append"
        );
        // acks=1 does not wait for followers, so the ISR does not matter to it.
        p.append_as_leader(batch(1, 0), AppendOrigin::Client, 0, false)
            .expect("acks=1");
        p.set_state(&state(&[1, 2, 3], &[1, 2]), 0).expect("state");
        p.append_as_leader(batch(1, 0), AppendOrigin::Client, 0, true)
            .expect("acks=all with 2 in sync");
        assert!(p.check_isr_after_append().is_ok());
        p.set_state(&shrunk, 0).expect("state");
        assert!(matches!(
            p.check_isr_after_append(),
            Err(ReplicaError::NotEnoughReplicasAfterAppend { isr: 1, min_isr: 2 })
        ));
    }

    #[test]
    fn min_insync_replicas_never_exceeds_the_replication_factor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = partition(dir.path(), 2);
        p.append_as_leader(batch(1, 0), AppendOrigin::Client, 0, true)
            .expect("min.insync.replicas=2 on one replica requires one, as in Kafka");
        assert!(p.check_isr_after_append().is_ok());
        // A lowered min.insync.replicas (AlterConfigs) applies to the next append.
        p.update_config(LogConfig {
            min_insync_replicas: 1,
            ..LogConfig::default()
        });
        p.set_state(&state(&[1, 2], &[1]), 0).expect("state");
        p.append_as_leader(batch(1, 0), AppendOrigin::Client, 0, true)
            .expect("one in sync is enough now");
    }

    #[tokio::test]
    async fn read_committed_stops_at_the_last_stable_offset_and_names_the_aborted() {
        use crate::storage::test_batches::txn_batch;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = partition(dir.path(), 1);
        let client = AppendOrigin::Client;
        let append = |records: Bytes| {
            let info = p
                .append_as_leader(records, client, 0, true)
                .expect("append");
            info.last_offset
        };
        append(batch(2, 0)); // 0..=1
        append(txn_batch(1, 0, 0, 2, 0)); // 2..=3, left open
        let read = |isolation| p.read(Offset(0), 1 << 20, true, isolation).expect("read");
        // Nothing is visible before the flush: the HighWatermark is 0.
        assert_eq!(
            read(IsolationLevel::ReadCommitted).aborted_transactions,
            Some(vec![])
        );
        p.flush_to(Offset(4)).await.expect("flush");
        assert_eq!(p.high_watermark(), Offset(4));
        assert_eq!(p.last_stable_offset(), Offset(2));
        let committed = read(IsolationLevel::ReadCommitted);
        assert_eq!(committed.last_stable_offset, Offset(2));
        let ends: Vec<i64> = whole_batches(committed.records.clone())
            .map(|(h, _)| h.next_offset())
            .collect();
        assert_eq!(ends, vec![2]);
        let uncommitted = read(IsolationLevel::ReadUncommitted);
        assert_eq!(uncommitted.aborted_transactions, None);
        assert_eq!(whole_batches(uncommitted.records).count(), 2);

        let pending = p
            .append_txn_marker(
                ProducerId(1),
                ProducerEpoch(0),
                ControlRecordType::Abort,
                0,
                0,
            )
            .expect("marker");
        assert_eq!(pending.last_offset, Offset(4));
        // Until the marker is durable and below the HighWatermark the transaction still holds the LSO back.
        assert_eq!(p.last_stable_offset(), Offset(2));
        p.complete(&pending).await.expect("durable");
        assert_eq!(
            (p.high_watermark(), p.last_stable_offset()),
            (Offset(5), Offset(5))
        );
        let committed = read(IsolationLevel::ReadCommitted);
        assert_eq!(whole_batches(committed.records.clone()).count(), 3);
        assert_eq!(
            committed.aborted_transactions,
            Some(vec![AbortedTxn {
                producer_id: ProducerId(1),
                first_offset: Offset(2),
                last_offset: Offset(4),
                last_stable_offset: Offset(5),
            }])
        );
        // A read that ends before the transaction does not name it.
        let first = p
            .read(Offset(0), 1, true, IsolationLevel::ReadCommitted)
            .expect("read");
        assert_eq!(first.aborted_transactions, Some(vec![]));
        // The producer's epoch fences a stale marker.
        assert!(p
            .append_txn_marker(
                ProducerId(1),
                ProducerEpoch(0),
                ControlRecordType::Commit,
                -5,
                0
            )
            .is_err());
        let producers = p.active_producers();
        assert_eq!(producers.len(), 1);
        assert_eq!(producers[0].1.coordinator_epoch, 0);
    }
}
