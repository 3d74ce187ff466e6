//! The Log: a partition's segments, in offset order, the last one active.
//!
//! Durability is the caller's: appends only write to the page cache. A group-commit caller takes
//! [`Log::unflushed`] under its lock, fsyncs the files outside it, then reports back with [`Log::mark_flushed`];
//! the flushed offset is the recovery point persisted by [`Log::flush`], [`Log::checkpoint_recovery_point`] and
//! [`Log::close`]. A new segment's directory entry is fsynced when it is created, so syncing its file is enough to
//! make its data survive a crash. A segment's transaction index is fsynced along with its log.
//!
//! Recovery after a crash re-validates the segments from the recovery point on (and any whose indexes fail their
//! checks) and rebuilds their offset and time indexes from their batches. Their transaction indexes are rebuilt
//! by the producer state replay that follows: it starts from a snapshot at or below the first recovered segment
//! (or the log start), and every ABORT marker it meets in a recovered segment appends that segment's entry, exactly
//! as the original append did; segments that were not recovered keep theirs, so no entry is lost or doubled.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::batch::{self, BatchHeader, ControlRecordType, EndTxnMarker};
use super::checkpoint;
use super::leader_epoch::{EpochEnd, LeaderEpochFileCache};
use super::producer_state::{CompletedTxn, ProducerStateManager, SequenceCheck};
use super::segment::{self, LogSegment, LOG_SUFFIX, SEGMENT_SUFFIXES};
use super::transaction_index::AbortedTxn;
use super::{AppendOrigin, LogAppendInfo, LogConfig, LogError, TimestampType};
use crate::ids::{LeaderEpoch, Offset, ProducerEpoch, ProducerId};

/// How much of the log one read takes while producer state is rebuilt.
const PRODUCER_STATE_READ_BYTES: usize = 1 << 20;

pub struct Log {
    pub(super) dir: PathBuf,
    pub(super) config: LogConfig,
    /// Sorted by base offset, never empty; the last is the active segment.
    pub(super) segments: Vec<LogSegment>,
    /// Everything below this offset has been fsynced (the recovery point).
    flushed_offset: Offset,
    /// The LogStartOffset: at or above the first segment's base, at most the log end offset.
    pub(super) log_start_offset: Offset,
    /// Files of deleted segments, renamed to `.deleted`, and when they may go (`file.delete.delay.ms`).
    pub(super) pending_deletes: Vec<(i64, PathBuf)>,
    /// When tombstones the last cleaning pass had to keep pass `delete.retention.ms` (a pass is due then).
    pub(super) tombstones_due_ms: Option<i64>,
    /// The idempotent and transactional producers that wrote here, rebuilt on open from a snapshot and the batches
    /// after it.
    producer_state: ProducerStateManager,
    /// The HighWatermark as the partition last reported it ([`Log::update_high_watermark`]); transactions whose
    /// marker is below it are stable.
    high_watermark: Offset,
    /// Where each leader epoch began (`leader-epoch-checkpoint`): appends extend it, truncation cuts it.
    leader_epochs: LeaderEpochFileCache,
}

impl Log {
    /// Opens (creating if absent) the partition directory, recovering as needed: after a clean shutdown the
    /// segments are trusted and only their indexes checked; otherwise every segment from the recovery point on is
    /// re-validated and cut at the first damaged batch, and any later segments are deleted.
    pub fn open(dir: PathBuf, config: LogConfig, now_ms: i64) -> Result<Log, LogError> {
        if !dir.is_dir() {
            fs::create_dir_all(&dir)?;
            // The partition directory's own entry must survive a crash along with the data put in it.
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
            checkpoint::sync_dir(parent.unwrap_or(Path::new(".")))?;
        }
        let clean = checkpoint::has_clean_shutdown_marker(&dir);
        let recovery_point = checkpoint::read_recovery_point(&dir).unwrap_or_default();
        let (bases, swapped) = scan_dir(&dir)?;
        let mut segments: Vec<LogSegment> = Vec::with_capacity(bases.len().max(1));
        // Segments whose transaction index the producer state replay must rebuild.
        let mut recovered: Vec<Offset> = Vec::new();
        for (i, base) in bases.iter().enumerate() {
            let active = i + 1 == bases.len();
            let below_recovery_point = bases.get(i + 1).is_some_and(|next| *next <= recovery_point);
            // A swap the cleaner could not finish lost its transaction index with the segments it replaced.
            let trust = (clean || below_recovery_point) && !swapped.contains(base);
            if let Some(previous) = segments.last() {
                if *base < previous.next_offset() {
                    tracing::error!(dir = %dir.display(), base = base.0, "segment overlaps its predecessor; deleting it and all later segments");
                    delete_segments_from(&dir, &bases[i..])?;
                    break;
                }
            }
            let (mut segment, recovery) =
                LogSegment::open(&dir, *base, &config, now_ms, active, trust)?;
            let truncated = recovery.as_ref().map_or(0, |r| r.truncated_bytes);
            if recovery.is_some() {
                segment.txn_index_mut().reset()?;
                recovered.push(*base);
            }
            segments.push(segment);
            if truncated > 0 && !active {
                tracing::warn!(dir = %dir.display(), base = base.0, truncated, "log truncated mid-way; deleting later segments");
                delete_segments_from(&dir, &bases[i + 1..])?;
                break;
            }
        }
        let last = segments.len().saturating_sub(1);
        for (i, segment) in segments.iter_mut().enumerate() {
            if i < last {
                segment.on_become_inactive()?;
            }
        }
        match segments.last_mut() {
            Some(active) => active.resize_indexes(config.segment_index_bytes)?,
            None => segments.push(LogSegment::create(&dir, Offset(0), &config, now_ms)?),
        }
        let leader_epochs = LeaderEpochFileCache::open(&dir)?;
        let mut log = Log {
            dir,
            config,
            segments,
            flushed_offset: Offset(0),
            log_start_offset: Offset(0),
            pending_deletes: Vec::new(),
            tombstones_due_ms: None,
            producer_state: ProducerStateManager::default(),
            high_watermark: Offset(0),
            leader_epochs,
        };
        // Recovery may have cut batches whose epochs the checkpoint already named.
        let end = log.log_end_offset();
        log.leader_epochs.truncate_from_end(end)?;
        let first_base = log.segments[0].base_offset();
        let saved_start = checkpoint::read_offset(&log.dir, checkpoint::LOG_START_OFFSET_FILE);
        log.log_start_offset = saved_start
            .unwrap_or(first_base)
            .max(first_base)
            .min(log.log_end_offset());
        // Whatever survived recovery is on disk once the flush below is done: all of it is visible.
        log.high_watermark = log.log_end_offset();
        log.load_producer_state(&recovered)?;
        if !recovered.is_empty() || !clean {
            // What recovery kept and rebuilt must be on disk before the recovery point may move past it.
            for segment in &log.segments {
                segment.flush()?;
            }
        }
        log.flushed_offset = log.log_end_offset();
        checkpoint::sync_dir(&log.dir)?;
        if log.flushed_offset != recovery_point {
            checkpoint::write_recovery_point(&log.dir, log.flushed_offset)?;
        }
        checkpoint::remove_clean_shutdown_marker(&log.dir)?;
        Ok(log)
    }

    /// Loads the newest producer state snapshot at or below the log end and replays the batches after it (from
    /// the log start when there is none). The segments based at `rebuild_txn_index` (sorted, their transaction
    /// indexes emptied) get an entry for every aborted transaction whose marker they hold, so the replay starts at
    /// or below the first of them.
    fn load_producer_state(&mut self, rebuild_txn_index: &[Offset]) -> Result<(), LogError> {
        let end = self.log_end_offset();
        let at_most = rebuild_txn_index.first().copied().unwrap_or(end).min(end);
        let (state, snapshot) = ProducerStateManager::load(&self.dir, end, at_most)?;
        self.producer_state = state;
        let mut offset = snapshot
            .unwrap_or(self.log_start_offset)
            .max(self.log_start_offset);
        let mut replayed = 0usize;
        while offset < end {
            let bytes = self.read(offset, PRODUCER_STATE_READ_BYTES, end, true)?;
            let mut next = offset;
            for (header, bytes) in batch::whole_batches(bytes) {
                next = Offset(header.next_offset());
                if header.last_offset() < offset.0 {
                    continue;
                }
                replayed += 1;
                let marker = match batch::end_txn_marker(&bytes, &header) {
                    Ok(marker) => marker,
                    Err(error) => {
                        // Kafka would refuse to load the log; a marker we cannot read is better skipped.
                        tracing::warn!(dir = %self.dir.display(), offset = header.base_offset, %error, "ignoring an unreadable transaction marker");
                        None
                    }
                };
                let Some(txn) = self.producer_state.update(&header, marker) else {
                    continue;
                };
                let holder = self.segment_index(Offset(header.base_offset));
                if rebuild_txn_index.contains(&self.segments[holder].base_offset()) {
                    self.index_completed(holder, txn)?;
                }
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
        self.producer_state
            .on_high_watermark_updated(self.high_watermark);
        if replayed > 0 {
            tracing::debug!(dir = %self.dir.display(), batches = replayed, from = ?snapshot, "rebuilt producer state");
        }
        Ok(())
    }

    /// The position in `segments` of the segment holding `offset` (the first for an offset below it).
    fn segment_index(&self, offset: Offset) -> usize {
        self.segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1)
    }

    /// Writes the transaction index entry of a transaction that a marker in `segments[holder]` aborted.
    fn index_completed(&mut self, holder: usize, txn: CompletedTxn) -> Result<(), LogError> {
        if !txn.aborted {
            return Ok(());
        }
        let entry = AbortedTxn {
            producer_id: txn.producer_id,
            first_offset: txn.first_offset,
            last_offset: txn.last_offset,
            last_stable_offset: txn.last_stable_offset,
        };
        self.segments[holder].txn_index_mut().append(&entry)?;
        Ok(())
    }

    /// The idempotent and transactional producers this log knows.
    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producer_state
    }

    /// The first offset read_committed consumers may not see yet (the LastStableOffset is the smaller of it and
    /// the HighWatermark): that of the earliest transaction open, or closed by a marker not yet below the
    /// HighWatermark, and never below the LogStartOffset. `None` when no transaction holds anything back.
    pub fn first_unstable_offset(&self) -> Option<Offset> {
        self.producer_state
            .first_unstable_offset()
            .map(|offset| offset.max(self.log_start_offset))
    }

    /// The partition's HighWatermark moved (Kafka's `onHighWatermarkUpdated`); at most the log end offset.
    pub fn update_high_watermark(&mut self, high_watermark: Offset) {
        // Racing reports may arrive out of order; the HighWatermark only moves back with a truncation.
        self.high_watermark = self
            .high_watermark
            .max(high_watermark)
            .min(self.log_end_offset());
        self.producer_state
            .on_high_watermark_updated(self.high_watermark);
    }

    /// The aborted transactions a read_committed fetch of `[start, upper_bound)` must report (Kafka's
    /// `collectAbortedTransactions`): those with `last_offset >= start` and `first_offset < upper_bound`, from the
    /// segment holding `start` on, until a segment's index says no later one can hold more.
    pub fn collect_aborted_transactions(
        &self,
        start: Offset,
        upper_bound: Offset,
    ) -> Result<Vec<AbortedTxn>, LogError> {
        let mut aborted = Vec::new();
        for segment in &self.segments[self.segment_index(start)..] {
            let found = segment.txn_index().collect(start, upper_bound)?;
            aborted.extend(found.aborted);
            if found.complete {
                break;
            }
        }
        Ok(aborted)
    }

    /// Forgets producers idle for `producer.id.expiration.ms`.
    pub fn expire_producers(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producer_state.expire(now_ms, expiration_ms);
    }

    fn active(&self) -> &LogSegment {
        // `segments` is never empty: open creates a segment and nothing removes the last one.
        &self.segments[self.segments.len() - 1]
    }

    fn active_mut(&mut self) -> &mut LogSegment {
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }

    /// Leader append of one batch for this partition (bytes exactly as the producer or coordinator sent them).
    /// Validates, checks the producer's state (sequence and duplicates for a client's batch only, as Kafka does),
    /// assigns offsets and the leader epoch in place, applies LogAppendTime, rolls if due and writes to the active
    /// segment. Does not fsync.
    pub fn append(
        &mut self,
        records: Bytes,
        leader_epoch: LeaderEpoch,
        origin: AppendOrigin,
        now_ms: i64,
    ) -> Result<LogAppendInfo, LogError> {
        let validated = batch::validate_for_append(&records, &self.config, now_ms)?;
        if let SequenceCheck::Duplicate(original) =
            self.producer_state.check(&validated.header, origin)?
        {
            // A retry of a batch the log has: answered with where it went, not written twice (as Kafka does).
            return Ok(LogAppendInfo {
                first_offset: original.first_offset,
                last_offset: original.last_offset,
                log_append_time_ms: None,
                record_count: 0,
                max_timestamp: original.max_timestamp,
                leader_epoch,
            });
        }
        if validated.size > self.config.segment_bytes as usize {
            return Err(LogError::RecordListTooLarge {
                size: validated.size,
                segment_bytes: self.config.segment_bytes,
            });
        }
        let max_timestamp = match self.config.message_timestamp_type {
            TimestampType::CreateTime => validated.max_timestamp,
            TimestampType::LogAppendTime => now_ms,
        };
        // Usually the request buffer is ours alone and this takes it over without copying.
        let buf = records
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let (info, header) = self.write_as_leader(buf, leader_epoch, max_timestamp, now_ms)?;
        // A data batch closes no transaction.
        self.producer_state.update(&header, None);
        Ok(info)
    }

    /// Leader append of a transaction marker (Kafka's `appendAsLeader` of `MemoryRecords.withEndTransactionMarker`
    /// with origin COORDINATOR): refused if `producer_epoch` is older than the producer's or `coordinator_epoch`
    /// older than its last marker's; otherwise it closes the producer's open transaction, if it has one, and an
    /// ABORT adds the transaction to the active segment's transaction index. Does not fsync.
    pub fn append_marker(
        &mut self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        marker: ControlRecordType,
        coordinator_epoch: i32,
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<LogAppendInfo, LogError> {
        self.producer_state
            .check_marker(producer_id, producer_epoch, coordinator_epoch)?;
        let records = batch::encode_control_batch(
            producer_id,
            producer_epoch,
            marker,
            coordinator_epoch,
            now_ms,
        );
        let buf = BytesMut::from(&records[..]);
        let (info, header) = self.write_as_leader(buf, leader_epoch, now_ms, now_ms)?;
        let marker = EndTxnMarker {
            control_type: marker,
            coordinator_epoch,
        };
        if let Some(txn) = self.producer_state.update(&header, Some(marker)) {
            let active = self.segments.len() - 1;
            self.index_completed(active, txn)?;
        }
        Ok(info)
    }

    /// Assigns the next offsets, the leader epoch and (LogAppendTime) the timestamp to one validated batch, rolls if
    /// due and writes it to the active segment.
    fn write_as_leader(
        &mut self,
        mut buf: BytesMut,
        leader_epoch: LeaderEpoch,
        max_timestamp: i64,
        now_ms: i64,
    ) -> Result<(LogAppendInfo, BatchHeader), LogError> {
        let first_offset = self.log_end_offset();
        let delta = BatchHeader::parse(&buf)
            .map(|h| h.last_offset_delta)
            .ok_or_else(|| LogError::CorruptMessage("short batch header".into()))?;
        let last_offset = first_offset
            .0
            .checked_add(i64::from(delta))
            .ok_or_else(|| LogError::InvalidRecord("offsets would overflow".into()))?;
        let timestamp_type = self.config.message_timestamp_type;
        batch::assign_in_place(
            &mut buf,
            first_offset.0,
            leader_epoch.0,
            timestamp_type,
            max_timestamp,
        );
        let header = BatchHeader::parse(&buf)
            .ok_or_else(|| LogError::CorruptMessage("batch shrank during append".into()))?;
        self.begin_epoch(leader_epoch, first_offset)?;
        if self.active().should_roll(
            buf.len(),
            max_timestamp,
            Offset(last_offset),
            &self.config,
            now_ms,
        ) {
            self.roll(now_ms)?;
        }
        let interval = self.config.index_interval_bytes;
        self.active_mut()
            .append(&buf, &header, max_timestamp, interval)?;
        let info = LogAppendInfo {
            first_offset,
            last_offset: Offset(last_offset),
            log_append_time_ms: (timestamp_type == TimestampType::LogAppendTime).then_some(now_ms),
            record_count: header.record_count.unsigned_abs(),
            max_timestamp,
            leader_epoch,
        };
        Ok((info, header))
    }

    /// Follower append of batches fetched from the leader, offsets and epochs already assigned. Each batch is
    /// checked (framing, CRC, offsets not going backwards); a trailing partial batch, which a fetch may carry, is
    /// ignored. `None` if there was no whole batch. Does not fsync.
    pub fn append_as_follower(
        &mut self,
        records: Bytes,
        now_ms: i64,
    ) -> Result<Option<LogAppendInfo>, LogError> {
        let mut info: Option<LogAppendInfo> = None;
        for (_, batch) in batch::whole_batches(records) {
            let size = batch.len();
            let header = batch::check_framing(&batch)?;
            if header.base_offset < self.log_end_offset().0 || header.last_offset_delta < 0 {
                return Err(LogError::InvalidRecord(format!(
                    "batch at offset {} does not follow the log end offset {}",
                    header.base_offset,
                    self.log_end_offset()
                )));
            }
            if size > self.config.segment_bytes as usize {
                return Err(LogError::RecordListTooLarge {
                    size,
                    segment_bytes: self.config.segment_bytes,
                });
            }
            let (last_offset, max_ts) = (Offset(header.last_offset()), header.max_timestamp);
            if self
                .active()
                .should_roll(size, max_ts, last_offset, &self.config, now_ms)
                || last_offset.0 - self.active().base_offset().0 > i64::from(i32::MAX)
            {
                self.roll_at(Offset(header.base_offset), now_ms)?;
            }
            // Parsed before the write: a marker the leader wrote but we cannot read is refused, not half-applied.
            let marker = batch::end_txn_marker(&batch, &header)?;
            self.begin_epoch(
                LeaderEpoch(header.partition_leader_epoch),
                Offset(header.base_offset),
            )?;
            let interval = self.config.index_interval_bytes;
            self.active_mut()
                .append(&batch, &header, max_ts, interval)?;
            if let Some(txn) = self.producer_state.update(&header, marker) {
                let active = self.segments.len() - 1;
                self.index_completed(active, txn)?;
            }
            let count = header.record_count.max(0).unsigned_abs();
            match info.as_mut() {
                Some(info) => {
                    info.last_offset = last_offset;
                    info.record_count = info.record_count.saturating_add(count);
                    info.max_timestamp = info.max_timestamp.max(max_ts);
                    info.leader_epoch = LeaderEpoch(header.partition_leader_epoch);
                }
                None => {
                    info = Some(LogAppendInfo {
                        first_offset: Offset(header.base_offset),
                        last_offset,
                        log_append_time_ms: None,
                        record_count: count,
                        max_timestamp: max_ts,
                        leader_epoch: LeaderEpoch(header.partition_leader_epoch),
                    })
                }
            }
        }
        Ok(info)
    }

    /// Removes everything at and after `target` (a batch straddling it goes whole), as a follower does when its
    /// log diverged from the leader's. At or before the log start offset the log is emptied and restarts at
    /// `target`. The cut is durable when this returns.
    pub fn truncate_to(&mut self, target: Offset, now_ms: i64) -> Result<(), LogError> {
        if target >= self.log_end_offset() {
            return Ok(());
        }
        if target <= self.log_start_offset() {
            for segment in self.segments.drain(..) {
                segment.delete()?;
            }
            let target = Offset(target.0.max(0));
            self.segments
                .push(LogSegment::create(&self.dir, target, &self.config, now_ms)?);
            self.log_start_offset = target;
            checkpoint::write_offset(&self.dir, checkpoint::LOG_START_OFFSET_FILE, target)?;
        } else {
            while self.segments.len() > 1 && self.active().base_offset() >= target {
                if let Some(segment) = self.segments.pop() {
                    segment.delete()?;
                }
            }
            let config = self.config.clone();
            let active = self.active_mut();
            active.truncate_to(target, &config)?;
            active.resize_indexes(config.segment_index_bytes)?;
        }
        checkpoint::sync_dir(&self.dir)?;
        let end = self.log_end_offset();
        self.leader_epochs.truncate_from_end(end)?;
        self.flushed_offset = self.flushed_offset.min(self.log_end_offset());
        self.high_watermark = self.high_watermark.min(self.log_end_offset());
        // Snapshots past the cut describe batches that are gone; the state is rebuilt up to the new end (Kafka's
        // truncateAndReload), which reopens a transaction whose marker was cut and forgets one whose start was.
        // The transaction indexes were cut with their segments and need nothing rebuilt.
        self.load_producer_state(&[])?;
        self.checkpoint_recovery_point()
    }

    /// Notes that `epoch` begins at `start_offset` when it is newer than every epoch the log knows: a leader's
    /// first append in its epoch, a follower's first batch of a new epoch, or a new leader taking over (Kafka assigns
    /// the epoch at the log end then, so that followers' divergent tails are found before it writes).
    pub fn begin_epoch(
        &mut self,
        epoch: LeaderEpoch,
        start_offset: Offset,
    ) -> Result<(), LogError> {
        if epoch.0 >= 0
            && self
                .leader_epochs
                .latest_epoch()
                .is_none_or(|latest| latest < epoch)
        {
            self.leader_epochs.assign(epoch, start_offset)?;
        }
        Ok(())
    }

    /// The newest leader epoch of the log's batches (a follower's `last_fetched_epoch`).
    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.leader_epochs.latest_epoch()
    }

    /// Where the newest epoch began (a leader's current epoch, from its taking over); 0 when none is known.
    pub fn latest_epoch_start_offset(&self) -> Offset {
        self.leader_epochs
            .entries()
            .last()
            .map_or(Offset(0), |e| e.start_offset)
    }

    /// KIP-279's end offset of `epoch` in this log (see [`LeaderEpochFileCache::end_offset_for`]).
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> EpochEnd {
        self.leader_epochs
            .end_offset_for(epoch, self.log_end_offset())
    }

    /// Starts a new active segment at the log end offset. A no-op on an empty active segment.
    pub fn roll(&mut self, now_ms: i64) -> Result<(), LogError> {
        self.roll_at(self.log_end_offset(), now_ms)
    }

    /// Rolls to a segment based at `base` (a follower's next batch may start past the log end offset).
    fn roll_at(&mut self, base: Offset, now_ms: i64) -> Result<(), LogError> {
        if self.active().size() == 0 {
            return Ok(());
        }
        self.active_mut().on_become_inactive()?;
        let segment = LogSegment::create(&self.dir, base, &self.config, now_ms)?;
        // The new file's directory entry must be durable before any fsync of its data can acknowledge anything.
        checkpoint::sync_dir(&self.dir)?;
        tracing::debug!(dir = %self.dir.display(), base = base.0, "rolled new log segment");
        self.segments.push(segment);
        // As Kafka does on roll (an empty state too): recovery after a crash then replays producer state from
        // here, not from the log start.
        self.producer_state
            .write_snapshot(&self.dir, self.log_end_offset())?;
        Ok(())
    }

    /// Batches from the one holding `start`, at most `max_bytes` of them, none with a last offset at or beyond
    /// `max_offset` (exclusive, normally the high watermark). With `min_one_batch` (KIP-74) a first batch larger
    /// than `max_bytes` is returned whole. Empty at the log end or at `max_offset`; `OffsetOutOfRange` outside
    /// `[log_start_offset, log_end_offset]`. Data comes from a single segment, as in Kafka.
    pub fn read(
        &self,
        start: Offset,
        max_bytes: usize,
        max_offset: Offset,
        min_one_batch: bool,
    ) -> Result<Bytes, LogError> {
        let (log_start_offset, log_end_offset) = (self.log_start_offset(), self.log_end_offset());
        if start < log_start_offset || start > log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset: start,
                log_start_offset,
                log_end_offset,
            });
        }
        if start == log_end_offset || start >= max_offset {
            return Ok(Bytes::new());
        }
        for segment in &self.segments[self.segment_index(start)..] {
            if let Some(bytes) = segment.read(start, max_bytes, max_offset, min_one_batch)? {
                return Ok(bytes);
            }
        }
        Ok(Bytes::new())
    }

    pub fn log_start_offset(&self) -> Offset {
        self.log_start_offset
    }

    pub fn log_end_offset(&self) -> Offset {
        self.active().next_offset()
    }

    /// Kafka ListOffsets by timestamp: the first record whose timestamp is at least `target_ms`, as (timestamp,
    /// offset), looking inside multi-record and compressed batches.
    pub fn offset_for_timestamp(&self, target_ms: i64) -> Result<Option<(i64, Offset)>, LogError> {
        for segment in &self.segments {
            if segment.size() == 0 || segment_max_timestamp(segment) < target_ms {
                continue;
            }
            if let Some(found) = segment.find_offset_by_timestamp(target_ms)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// KIP-734 MAX_TIMESTAMP: the record with the largest timestamp (the first such record if tied), as (timestamp,
    /// offset). `None` for an empty log.
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, Offset)>, LogError> {
        let max = self
            .segments
            .iter()
            .filter(|s| s.size() > 0)
            .map(segment_max_timestamp)
            .max();
        match max {
            Some(max) => self.offset_for_timestamp(max),
            None => Ok(None),
        }
    }

    /// For group commit: the log end offset and the files holding data not yet fsynced (logs and their transaction
    /// indexes). The caller syncs them (`File::sync_data`) outside its lock and then calls [`Log::mark_flushed`]
    /// with that offset.
    pub fn unflushed(&self) -> (Offset, Vec<Arc<File>>) {
        let files = self
            .segments
            .iter()
            .filter(|s| s.next_offset() > self.flushed_offset)
            .flat_map(|s| std::iter::once(s.log_file()).chain(s.txn_index().file()))
            .map(Arc::clone)
            .collect();
        (self.log_end_offset(), files)
    }

    pub fn mark_flushed(&mut self, upto: Offset) {
        let upto = upto.min(self.log_end_offset());
        self.flushed_offset = self.flushed_offset.max(upto);
    }

    pub fn flushed_offset(&self) -> Offset {
        self.flushed_offset
    }

    /// Fsyncs everything not yet flushed and persists the recovery point.
    pub fn flush(&mut self) -> Result<(), LogError> {
        for segment in &self.segments {
            if segment.next_offset() > self.flushed_offset {
                segment.flush()?;
            }
        }
        self.flushed_offset = self.log_end_offset();
        self.checkpoint_recovery_point()
    }

    /// Persists the flushed offset as the recovery point (Kafka does this for every log once a minute), so that
    /// recovery after a crash re-validates only what came after it.
    pub fn checkpoint_recovery_point(&self) -> Result<(), LogError> {
        checkpoint::write_recovery_point(&self.dir, self.flushed_offset)?;
        Ok(())
    }

    /// Clean shutdown: flush, trim the active segment's indexes, persist the recovery point, leave the marker.
    pub fn close(mut self) -> Result<(), LogError> {
        self.active_mut().on_become_inactive()?;
        for segment in &self.segments {
            segment.flush()?;
        }
        self.flushed_offset = self.log_end_offset();
        self.checkpoint_recovery_point()?;
        self.producer_state
            .write_snapshot(&self.dir, self.log_end_offset())?;
        checkpoint::write_clean_shutdown_marker(&self.dir)?;
        Ok(())
    }

    /// Size of all segments' `.log` files in bytes (DescribeLogDirs' partition size).
    pub fn size_in_bytes(&self) -> u64 {
        self.segments.iter().map(LogSegment::size).sum()
    }

    /// Deletes the partition directory (topic deletion).
    pub fn delete(self) -> Result<(), LogError> {
        let dir = self.dir.clone();
        drop(self);
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    /// Applies to later appends and rolls.
    pub fn update_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, in order.
    pub fn segment_base_offsets(&self) -> Vec<Offset> {
        self.segments.iter().map(|s| s.base_offset()).collect()
    }
}

/// The largest timestamp in a segment; batches without timestamps count as Kafka's NO_TIMESTAMP.
pub(super) fn segment_max_timestamp(segment: &LogSegment) -> i64 {
    segment
        .max_timestamp_so_far()
        .map_or(batch::NO_TIMESTAMP, |(ts, _)| ts)
}

/// Base offsets of the directory's segments, sorted, and those of segments a cleaner swap was completed for. Clears
/// away what a crash can leave behind: temporary files and indexes whose log is gone.
fn scan_dir(dir: &Path) -> Result<(Vec<Offset>, Vec<Offset>), LogError> {
    let swapped = super::cleaner::complete_swaps(dir)?;
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if checkpoint::is_leftover_temp(&name)
            || name.ends_with(super::cleaner::CLEANED_SUFFIX)
            || name.ends_with(super::retention::DELETED_SUFFIX)
        {
            remove_if_present(&entry.path())?;
            continue;
        }
        match segment::parse_file_name(&name) {
            Some((base, LOG_SUFFIX)) => logs.push(base),
            Some((base, suffix)) if SEGMENT_SUFFIXES.contains(&suffix) => {
                indexes.push((base, entry.path()))
            }
            _ => {}
        }
    }
    logs.sort();
    for (base, path) in indexes {
        if logs.binary_search(&base).is_err() {
            tracing::warn!(path = %path.display(), "deleting index without a log");
            remove_if_present(&path)?;
        }
    }
    Ok((logs, swapped))
}

fn delete_segments_from(dir: &Path, bases: &[Offset]) -> Result<(), LogError> {
    for base in bases {
        for suffix in SEGMENT_SUFFIXES {
            remove_if_present(&dir.join(segment::file_name(*base, suffix)))?;
        }
    }
    Ok(())
}

pub(super) fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
