//! A partition's replication, both sides: as leader, answering followers' fetches (reads up to the log end, the
//! KIP-320 divergence check, what each follower has, ISR changes to propose); as follower, appending what the
//! leader sent, truncating where the logs diverged, and taking the leader's HighWatermark.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{FollowerFetch, Partition, PartitionRead};
use crate::config::FlushPolicy;
use crate::ids::{BrokerId, LeaderEpoch, Offset};
use crate::replica::ReplicaError;
use crate::storage::{Log, LogAppendInfo};

/// KIP-320's check of a fetcher's `last_fetched_epoch` at `fetch_offset`: the log diverges when that epoch ends
/// before the fetch offset here, or this log knows only an older epoch at or below it. Answers the epoch and end
/// offset to truncate to; nothing when the histories agree or this log has no epochs to compare with.
pub(super) fn diverging_epoch(
    log: &Log,
    last_fetched_epoch: Option<LeaderEpoch>,
    fetch_offset: Offset,
) -> Option<(LeaderEpoch, Offset)> {
    let last_fetched = last_fetched_epoch?;
    let (epoch, end) = log.end_offset_for_epoch(last_fetched)?;
    (epoch < last_fetched || end < fetch_offset).then_some((epoch, end))
}

impl Partition {
    /// A follower's fetch, as leader: records from its fetch offset up to the log end (not the HighWatermark),
    /// unless its last fetched epoch diverges from this log; then notes how far the follower's log reaches, which
    /// may move the HighWatermark. Returns the read and whether the follower may now join the ISR.
    pub fn read_for_follower(
        &self,
        fetch: FollowerFetch,
        max_bytes: usize,
        min_one_batch: bool,
        now_ms: i64,
    ) -> Result<(PartitionRead, bool), ReplicaError> {
        // A delayed fetch may outlive this broker's leadership, or its part in the partition.
        if !self.is_leader(self.local) {
            return Err(ReplicaError::NotLeaderOrFollower);
        }
        let log = self.log();
        let log_end = log.log_end_offset();
        let diverging = diverging_epoch(&log, fetch.last_fetched_epoch, fetch.fetch_offset);
        let records = match diverging {
            Some(_) => Bytes::new(),
            None => log.read(fetch.fetch_offset, max_bytes, log_end, min_one_batch)?,
        };
        let log_start_offset = log.log_start_offset();
        // A leader starts its epoch at its log end when it takes over (set_state), so this is where it began.
        let epoch_start = log.latest_epoch_start_offset();
        drop(log);
        let joins = if diverging.is_none() {
            let mut followers = self.followers();
            let follower = followers.get_mut(&fetch.replica);
            match follower {
                Some(follower) => {
                    follower.on_fetch(fetch.fetch_offset, log_end, now_ms);
                    let high_watermark = self.high_watermark();
                    let follower = follower.clone();
                    drop(followers);
                    self.maybe_increment_high_watermark();
                    !self.state().isr.contains(&fetch.replica)
                        && follower.may_join_isr(high_watermark, epoch_start)
                }
                None => false,
            }
        } else {
            false
        };
        let high_watermark = self.high_watermark();
        let last_stable_offset = self.last_stable_offset();
        Ok((
            PartitionRead {
                records,
                high_watermark,
                last_stable_offset,
                log_start_offset,
                aborted_transactions: None,
                diverging_epoch: diverging,
            },
            joins,
        ))
    }

    /// Wakes a follower's fetch when the log end moves.
    pub fn subscribe_log_end(&self) -> tokio::sync::watch::Receiver<Offset> {
        self.log_end.subscribe()
    }

    /// Where `epoch` ends in this replica's log (KIP-279).
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        self.log().end_offset_for_epoch(epoch)
    }

    /// OffsetForLeaderEpoch as this partition's leader (Kafka's `Partition.lastOffsetForLeaderEpoch` with
    /// fetchOnlyFromLeader, which Kafka's broker always sets): the client's `current` epoch is checked first
    /// (FENCED_LEADER_EPOCH when older, UNKNOWN_LEADER_EPOCH when newer), then leadership; the answer is the
    /// largest epoch at or below `requested` and where it ends (see [`Log::end_offset_for_epoch`]), or nothing
    /// (Kafka's -1 / -1) when the log cannot say.
    pub fn last_offset_for_leader_epoch(
        &self,
        current: Option<LeaderEpoch>,
        requested: LeaderEpoch,
    ) -> Result<Option<(LeaderEpoch, Offset)>, ReplicaError> {
        let state = self.state();
        if let Some(epoch) = current {
            let current = state.leader_epoch;
            if epoch < current {
                return Err(ReplicaError::FencedLeaderEpoch { epoch, current });
            }
            if epoch > current {
                return Err(ReplicaError::UnknownLeaderEpoch { epoch, current });
            }
        }
        if state.leader != self.local {
            return Err(ReplicaError::NotLeaderOrFollower);
        }
        // The state lock is held until the log is locked (state, then log, as append_as_follower takes them), so
        // the answer comes from the epoch just checked, as Kafka reads it under its leaderIsrUpdateLock.
        let log = self.log();
        drop(state);
        Ok(log.end_offset_for_epoch(requested))
    }

    pub fn log_end_offset(&self) -> Offset {
        self.log().log_end_offset()
    }

    /// The newest epoch in this replica's log and where it fetches next: a follower's `last_fetched_epoch` and
    /// fetch offset.
    pub fn fetch_position(&self) -> (Option<LeaderEpoch>, Offset) {
        let log = self.log();
        (log.latest_epoch(), log.log_end_offset())
    }

    /// As leader, for a coordinator loading its shard: records from `offset` up to the log end, and that end. A
    /// leader keeps all it holds (only followers truncate), so what lies above the HighWatermark becomes committed
    /// while this broker leads; a shard loaded only to the HighWatermark of a leader just elected, before its
    /// followers have fetched, would miss records its partition already has.
    pub fn read_to_log_end(
        &self,
        offset: Offset,
        max_bytes: usize,
    ) -> Result<(Bytes, Offset), ReplicaError> {
        let log = self.log();
        let log_end = log.log_end_offset();
        Ok((log.read(offset, max_bytes, log_end, true)?, log_end))
    }

    /// The ISR members (other than this leader) that have not caught up for `lag_time_max_ms`.
    pub fn lagging_followers(&self, now_ms: i64, lag_time_max_ms: i64) -> Vec<BrokerId> {
        let isr = self.state().isr.clone();
        let followers = self.followers();
        isr.into_iter()
            .filter(|id| *id != self.local)
            .filter(|id| {
                followers
                    .get(id)
                    .is_some_and(|f| f.is_lagging(now_ms, lag_time_max_ms))
            })
            .collect()
    }

    /// Claims the right to send the next AlterPartition; false while one is in flight.
    pub fn begin_isr_change(&self) -> bool {
        !self.isr_change_in_flight.swap(true, Ordering::AcqRel)
    }

    /// The AlterPartition finished (the new state, if any, arrives with the metadata).
    pub fn end_isr_change(&self) {
        self.isr_change_in_flight.store(false, Ordering::Release);
    }

    /// As follower of `leader_epoch`: appends batches the leader sent, as it wrote them, then (durable mode) fsyncs
    /// them, so that the next fetch offset tells the leader what this replica holds durably. Refused when this
    /// replica has meanwhile become leader or moved to another epoch (the fetch was from the leader before).
    pub async fn append_as_follower(
        &self,
        records: Bytes,
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<Option<LogAppendInfo>, ReplicaError> {
        let info = {
            let state = self.state();
            if state.leader == self.local || state.leader_epoch != leader_epoch {
                return Err(ReplicaError::NotLeaderOrFollower);
            }
            let mut log = self.log();
            drop(state);
            log.append_as_follower(records, now_ms)?
        };
        let end = self.log_end_offset();
        self.log_end.send_replace(end);
        if self.policy == FlushPolicy::Durable {
            self.flush_to(end).await?;
        }
        Ok(info)
    }

    /// As follower: cuts the log back to `offset`, where it diverged from the leader's (KIP-320's answer, which is
    /// never below the HighWatermark of a clean election: every ISR member had everything below it).
    pub fn truncate_to(&self, offset: Offset, now_ms: i64) -> Result<(), ReplicaError> {
        let mut log = self.log();
        log.truncate_to(offset, now_ms)?;
        let end = log.log_end_offset();
        drop(log);
        self.log_end.send_replace(end);
        // The log lowered its own copy of the HighWatermark; the partition's follows (followers serve no reads).
        self.high_watermark.send_if_modified(|hw| {
            let lowered = *hw > end;
            if lowered {
                *hw = end;
            }
            lowered
        });
        Ok(())
    }

    /// As follower: takes the leader's HighWatermark, as far as this log reaches.
    pub fn update_follower_high_watermark(&self, leader_high_watermark: Offset) {
        let end = self.log_end_offset();
        self.advance_high_watermark(leader_high_watermark.min(end));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{PartitionEpoch, PartitionIndex, TopicId};
    use crate::metadata::PartitionRegistration;
    use crate::storage::test_batches::batch;
    use crate::storage::{AppendOrigin, LogConfig};

    const LOCAL: BrokerId = BrokerId(1);

    fn registration(leader: i32, epoch: i32) -> PartitionRegistration {
        PartitionRegistration {
            replicas: vec![LOCAL, BrokerId(2)],
            isr: vec![LOCAL, BrokerId(2)],
            leader: BrokerId(leader),
            leader_epoch: LeaderEpoch(epoch),
            partition_epoch: PartitionEpoch(epoch),
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }

    /// A leader that took over in each `(epoch, records)` in turn and appended that many records in it.
    fn leader(dir: &std::path::Path, epochs: &[(i32, usize)]) -> Partition {
        let log = Log::open(dir.to_path_buf(), LogConfig::default(), 0).expect("open");
        let p = Partition::new(
            "t".into(),
            TopicId(uuid::Uuid::new_v4()),
            PartitionIndex(0),
            log,
            LOCAL,
            FlushPolicy::Durable,
        );
        for (epoch, records) in epochs {
            p.set_state(&registration(LOCAL.0, *epoch), 0)
                .expect("state");
            p.append_as_leader(batch(*records, 0), AppendOrigin::Client, 0, false)
                .expect("append");
        }
        p
    }

    fn ask(p: &Partition, current: Option<i32>, requested: i32) -> Option<(i32, i64)> {
        p.last_offset_for_leader_epoch(current.map(LeaderEpoch), LeaderEpoch(requested))
            .expect("answer")
            .map(|(epoch, end)| (epoch.0, end.0))
    }

    #[test]
    fn known_epochs_end_where_the_next_begins_and_the_latest_at_the_log_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Epoch 0 holds 0..2, epoch 2 holds 2..5; epoch 1 never wrote.
        let p = leader(dir.path(), &[(0, 2), (2, 3)]);
        assert_eq!(ask(&p, None, 0), Some((0, 2)));
        // An epoch the log never saw answers the largest one below it.
        assert_eq!(ask(&p, None, 1), Some((0, 2)));
        assert_eq!(ask(&p, Some(2), 2), Some((2, 5)));
        // Newer than the latest, or Kafka's UNDEFINED_EPOCH: nothing known (-1 / -1 on the wire).
        assert_eq!(ask(&p, None, 3), None);
        assert_eq!(ask(&p, None, -1), None);
    }

    #[test]
    fn an_epoch_below_every_known_one_ends_where_the_first_known_begins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = leader(dir.path(), &[(3, 2), (5, 1)]);
        // As Kafka's LeaderEpochFileCache.endOffsetFor: the requested epoch itself, with the first entry's start,
        // so a follower truncates no further than what the leader has.
        assert_eq!(ask(&p, None, 1), Some((1, 0)));
        assert_eq!(ask(&p, None, 3), Some((3, 2)));
        assert_eq!(ask(&p, None, 5), Some((5, 3)));
    }

    #[test]
    fn a_log_without_epochs_knows_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(dir.path().to_path_buf(), LogConfig::default(), 0).expect("open");
        let p = Partition::new(
            "t".into(),
            TopicId(uuid::Uuid::new_v4()),
            PartitionIndex(0),
            log,
            LOCAL,
            FlushPolicy::Durable,
        );
        // A leader of epoch -1 (none yet) begins no epoch in its log.
        p.set_state(&registration(LOCAL.0, -1), 0).expect("state");
        assert_eq!(ask(&p, None, 0), None);
    }

    #[test]
    fn the_current_leader_epoch_fences_old_and_unknown_clients() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = leader(dir.path(), &[(0, 1), (4, 1)]);
        assert!(matches!(
            p.last_offset_for_leader_epoch(Some(LeaderEpoch(3)), LeaderEpoch(0)),
            Err(ReplicaError::FencedLeaderEpoch {
                epoch: LeaderEpoch(3),
                current: LeaderEpoch(4)
            })
        ));
        assert!(matches!(
            p.last_offset_for_leader_epoch(Some(LeaderEpoch(5)), LeaderEpoch(0)),
            Err(ReplicaError::UnknownLeaderEpoch {
                epoch: LeaderEpoch(5),
                current: LeaderEpoch(4)
            })
        ));
    }

    #[test]
    fn only_the_leader_answers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = leader(dir.path(), &[(0, 1)]);
        p.set_state(&registration(2, 1), 0).expect("follow");
        assert!(matches!(
            p.last_offset_for_leader_epoch(None, LeaderEpoch(0)),
            Err(ReplicaError::NotLeaderOrFollower)
        ));
        // The epoch check comes first, as in Kafka's getLocalLog: a stale client learns it is stale.
        assert!(matches!(
            p.last_offset_for_leader_epoch(Some(LeaderEpoch(0)), LeaderEpoch(0)),
            Err(ReplicaError::FencedLeaderEpoch { .. })
        ));
    }
}
