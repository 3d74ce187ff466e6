//! The log cleaner: compaction of `cleanup.policy=compact` logs, as Kafka's `LogCleaner` does it.
//!
//! A log is split at the first dirty offset (kept in `cleaner-offset.checkpoint`): below it the log was compacted
//! before; from it up to the first segment that is active or younger than `min.compaction.lag.ms` it is dirty. A
//! pass runs when the dirty share of those bytes reaches `min.cleanable.dirty.ratio` (or a dirty segment is older
//! than `max.compaction.lag.ms`, or tombstones kept by an earlier pass have outlived `delete.retention.ms`):
//!
//! 1. **Map** ([`OffsetMap`], fixed size): the dirty records' keys to their latest offset. If the map fills, the
//!    pass covers only what it mapped; the rest stays dirty for the next pass.
//! 2. **Copy**: every segment from the start of the log to the end of the mapped range is rewritten, grouped so a
//!    group fits in `segment.bytes`, keeping a record unless the map holds a later offset for its key, it has no
//!    key (Kafka drops those too), or it is a tombstone in a segment whose records are all older than
//!    `delete.retention.ms`. Offsets and timestamps are kept (gaps are normal in a compacted log). A batch whose
//!    records all survive is copied byte for byte; any other is re-encoded with its own compression codec,
//!    producer id, epoch, base sequence and leader epoch — the one place the broker writes batches of its own.
//!    Each group goes to `<base>.log.cleaned`, fsynced.
//! 3. **Swap**, atomic across a crash: `.cleaned` is renamed to `<base>.log.<end>.swap` (end: the offset after the
//!    group's old segments), the old segments' files are deleted, the swap is renamed to `<base>.log`. On open,
//!    [`complete_swaps`] finishes any swap a crash interrupted (the old segments it replaces are exactly those
//!    based in `[base, end)`), and `.cleaned` leftovers are deleted, so the log holds the old segments or the new
//!    ones, never a mix.
//!
//! Transactions: the cleaner never touches a segment that reaches the first unstable offset (an open transaction's
//! records, or a closed one's whose marker is not yet below the HighWatermark), as Kafka never cleans past the
//! LastStableOffset. Below it, committed transactional records compact like any others; the records of aborted
//! transactions (known from the transaction indexes) are never mapped, so they hide no committed record, and are
//! dropped. A marker stays while its transaction has records left, and otherwise until `delete.retention.ms` has
//! passed for its segment, as a tombstone does. The cleaned segment takes over the transaction index entries of the
//! segments it replaces.
//!
//! Steps 1 and 2 read only inactive segments, which never change, through their own file handles: the caller runs
//! them without the partition lock ([`Log::clean_plan`], [`build`], [`Log::install_cleaned`]), so produce and
//! fetch go on while a log is cleaned; only the swap takes the lock.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression as Codec, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

use super::batch::{self, BatchHeader, Compression, HEADER_SIZE};
use super::checkpoint;
use super::log::{remove_if_present, Log};
use super::offset_map::OffsetMap;
use super::retention::largest_timestamp;
use super::segment::{self, LogSegment, LOG_SUFFIX, SEGMENT_SUFFIXES, TXN_INDEX_SUFFIX};
use super::transaction_index::{AbortedTxn, TransactionIndex};
use super::{LogConfig, LogError, TimestampType};
use crate::ids::{Offset, ProducerId};

pub const CLEANED_SUFFIX: &str = ".cleaned";
const SWAP_SUFFIX: &str = ".swap";

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// The mapped (dirty) range was `[first_dirty, end)`; `end` is the next pass's first dirty offset.
    pub first_dirty: Offset,
    pub end: Offset,
    pub records_read: u64,
    pub records_kept: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// An inactive segment as the cleaner sees it: immutable, read through its own handle.
struct SegmentView {
    base: Offset,
    next_base: Offset,
    file: Arc<File>,
    size: u64,
    largest_timestamp: i64,
}

/// What to clean, taken under the partition lock; [`build`] needs nothing else.
pub struct CleanPlan {
    dir: PathBuf,
    config: LogConfig,
    first_dirty: Offset,
    segments: Vec<SegmentView>,
    /// Tombstones kept by an earlier pass may go now: a pass is due even with nothing dirty.
    tombstone_pass: bool,
    /// The aborted transactions of the planned segments, by producer: `(first offset, marker offset)`, in order.
    aborted: HashMap<ProducerId, Vec<(Offset, Offset)>>,
}

impl CleanPlan {
    /// Whether a transactional batch of `producer_id` at `base_offset` belongs to an aborted transaction.
    fn is_aborted(&self, producer_id: ProducerId, base_offset: Offset) -> bool {
        let Some(ranges) = self.aborted.get(&producer_id) else {
            return false;
        };
        // A producer's transactions do not overlap: the only candidate is the last one starting at or before it.
        let later = ranges.partition_point(|(first, _)| *first <= base_offset);
        later
            .checked_sub(1)
            .is_some_and(|i| base_offset < ranges[i].1)
    }
}

/// Cleaned copies written and fsynced, waiting for [`Log::install_cleaned`].
pub struct Cleaned {
    groups: Vec<CleanedGroup>,
    stats: CleanStats,
    /// When a tombstone kept by this pass may go (its segment's largest timestamp + `delete.retention.ms`).
    tombstones_due_ms: Option<i64>,
}

struct CleanedGroup {
    old_bases: Vec<Offset>,
    base: Offset,
    end: Offset,
    /// `None` when nothing in the group survived.
    cleaned: Option<PathBuf>,
}

fn swap_name(base: Offset, end: Offset) -> String {
    format!("{:020}.{LOG_SUFFIX}.{:020}{SWAP_SUFFIX}", base.0, end.0)
}

fn parse_swap_name(name: &str) -> Option<(Offset, Offset)> {
    let rest = name.strip_suffix(SWAP_SUFFIX)?;
    let (base, rest) = rest.split_once('.')?;
    let end = rest.strip_prefix(LOG_SUFFIX)?.strip_prefix('.')?;
    if base.len() != 20 || end.len() != 20 {
        return None;
    }
    Some((Offset(base.parse().ok()?), Offset(end.parse().ok()?)))
}

/// Finishes swaps a crash interrupted: deletes every segment file based in the swap's range, then renames the swap
/// into place. Idempotent, so a crash during this is finished by the next open. Returns the base offsets of the
/// segments swapped in: their transaction index went with the old files, and the log rebuilds it.
pub fn complete_swaps(dir: &Path) -> Result<Vec<Offset>, LogError> {
    let mut swaps = Vec::new();
    let mut segment_files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if let Some(range) = parse_swap_name(&name) {
            swaps.push((range, entry.path()));
        } else if let Some((base, suffix)) = segment::parse_file_name(&name) {
            if SEGMENT_SUFFIXES.contains(&suffix) {
                segment_files.push((base, entry.path()));
            }
        }
    }
    if swaps.is_empty() {
        return Ok(Vec::new());
    }
    let swapped = swaps.iter().map(|((base, _), _)| *base).collect();
    for ((base, end), swap) in swaps {
        tracing::warn!(dir = %dir.display(), base = base.0, end = end.0, "completing an interrupted log cleaner swap");
        for (file_base, path) in &segment_files {
            if (base..end).contains(file_base) {
                remove_if_present(path)?;
            }
        }
        fs::rename(&swap, dir.join(segment::file_name(base, LOG_SUFFIX)))?;
    }
    checkpoint::sync_dir(dir)?;
    Ok(swapped)
}

impl Log {
    /// Whether a pass is due, and over what (Kafka's `LogCleanerManager.grabFilthiestCompactedLog`, for one log).
    pub fn clean_plan(&self, now_ms: i64) -> Option<CleanPlan> {
        if !self.config.cleanup_compact || self.segments.len() < 2 {
            return None;
        }
        let inactive = &self.segments[..self.segments.len() - 1];
        let lag_ms = self.config.min_compaction_lag_ms;
        // Nothing at or after the first unstable offset is cleaned: a segment must end at or below it.
        let unstable = self.first_unstable_offset().unwrap_or(Offset(i64::MAX));
        let cleanable = inactive
            .iter()
            .zip(&self.segments[1..])
            .take_while(|(s, next)| {
                now_ms.saturating_sub(largest_timestamp(s)) >= lag_ms
                    && next.base_offset() <= unstable
            })
            .count();
        if cleanable == 0 {
            return None;
        }
        let first_base = self.segments[0].base_offset();
        let first_dirty = checkpoint::read_offset(&self.dir, checkpoint::CLEANER_OFFSET_FILE)
            .unwrap_or(first_base)
            .max(first_base);
        let views: Vec<SegmentView> = (0..cleanable)
            .map(|i| {
                let s = &self.segments[i];
                SegmentView {
                    base: s.base_offset(),
                    next_base: self.segments[i + 1].base_offset(),
                    file: Arc::clone(s.log_file()),
                    size: s.size(),
                    largest_timestamp: largest_timestamp(s),
                }
            })
            .collect();
        let (mut clean_bytes, mut dirty_bytes) = (0u64, 0u64);
        let mut overdue = false;
        for view in &views {
            if view.next_base <= first_dirty {
                clean_bytes += view.size;
            } else {
                dirty_bytes += view.size;
                let max_lag = self.config.max_compaction_lag_ms;
                overdue |= now_ms.saturating_sub(view.largest_timestamp) > max_lag;
            }
        }
        let total = clean_bytes + dirty_bytes;
        let ratio = if total == 0 {
            0.0
        } else {
            dirty_bytes as f64 / total as f64
        };
        let tombstones_due = self.tombstones_due_ms.is_some_and(|due| now_ms >= due);
        let due = (dirty_bytes > 0 && (ratio >= self.config.min_cleanable_dirty_ratio || overdue))
            || tombstones_due;
        if !due {
            return None;
        }
        let mut aborted: HashMap<ProducerId, Vec<(Offset, Offset)>> = HashMap::new();
        for segment in &self.segments[..cleanable] {
            let entries = match segment.txn_index().all() {
                Ok(entries) => entries,
                Err(error) => {
                    // Without them aborted records could hide committed ones: no pass until they read.
                    tracing::warn!(dir = %self.dir.display(), %error, "cannot read a transaction index; not cleaning");
                    return None;
                }
            };
            for txn in entries {
                aborted
                    .entry(txn.producer_id)
                    .or_default()
                    .push((txn.first_offset, txn.last_offset));
            }
        }
        for ranges in aborted.values_mut() {
            ranges.sort();
        }
        Some(CleanPlan {
            dir: self.dir.clone(),
            config: self.config.clone(),
            first_dirty,
            segments: views,
            tombstone_pass: tombstones_due,
            aborted,
        })
    }

    /// Swaps the cleaned copies in, unless the log changed under the pass (then the copies are discarded).
    pub fn install_cleaned(
        &mut self,
        cleaned: Cleaned,
        now_ms: i64,
    ) -> Result<Option<CleanStats>, LogError> {
        self.install_until(cleaned, now_ms, InstallStop::Never)
    }

    /// The whole pass in one call, holding the log throughout (tests, tools).
    pub fn clean(&mut self, map_bytes: usize, now_ms: i64) -> Result<Option<CleanStats>, LogError> {
        let Some(plan) = self.clean_plan(now_ms) else {
            return Ok(None);
        };
        let mut map = OffsetMap::with_memory(map_bytes);
        match build(&plan, &mut map, now_ms)? {
            Some(cleaned) => self.install_cleaned(cleaned, now_ms),
            None => Ok(None),
        }
    }

    fn install_until(
        &mut self,
        cleaned: Cleaned,
        now_ms: i64,
        stop: InstallStop,
    ) -> Result<Option<CleanStats>, LogError> {
        let still_there = cleaned.groups.iter().all(|group| {
            let Some(first) = self
                .segments
                .iter()
                .position(|s| s.base_offset() == group.base)
            else {
                return false;
            };
            let last = self.segments.len() - 1;
            group.old_bases.iter().enumerate().all(|(k, base)| {
                first + k < last && self.segments[first + k].base_offset() == *base
            })
        });
        if !still_there {
            tracing::info!(dir = %self.dir.display(), "log changed during cleaning; discarding the cleaned copy");
            for group in &cleaned.groups {
                if let Some(path) = &group.cleaned {
                    remove_if_present(path)?;
                }
            }
            return Ok(None);
        }
        for group in cleaned.groups {
            let swap = self.dir.join(swap_name(group.base, group.end));
            if let Some(path) = &group.cleaned {
                fs::rename(path, &swap)?;
                checkpoint::sync_dir(&self.dir)?;
            }
            if stop == InstallStop::AfterSwapWritten {
                return Ok(None);
            }
            let first = self
                .segments
                .iter()
                .position(|s| s.base_offset() == group.base)
                .unwrap_or(0);
            // Every control batch is kept, so the old segments' aborted transactions are the cleaned one's.
            let mut aborted: Vec<AbortedTxn> = Vec::new();
            for segment in &self.segments[first..first + group.old_bases.len()] {
                aborted.extend(segment.txn_index().all()?);
            }
            let old: Vec<LogSegment> = self
                .segments
                .drain(first..first + group.old_bases.len())
                .collect();
            for segment in old {
                segment.delete()?;
            }
            if stop == InstallStop::AfterOldDeleted {
                return Ok(None);
            }
            if group.cleaned.is_some() {
                // Durable before the swap becomes the segment: until then a crash leaves the swap, whose completion
                // deletes this file with the old ones and has the log rebuild it, so a completed swap never lacks it.
                let txn_path = self
                    .dir
                    .join(segment::file_name(group.base, TXN_INDEX_SUFFIX));
                let mut index = TransactionIndex::create(&txn_path, group.base)?;
                for txn in &aborted {
                    index.append(txn)?;
                }
                index.flush()?;
                drop(index);
                fs::rename(
                    &swap,
                    self.dir.join(segment::file_name(group.base, LOG_SUFFIX)),
                )?;
                checkpoint::sync_dir(&self.dir)?;
                let (mut segment, _) =
                    LogSegment::open(&self.dir, group.base, &self.config, now_ms, false, false)?;
                segment.on_become_inactive()?;
                self.segments.insert(first, segment);
            } else {
                checkpoint::sync_dir(&self.dir)?;
            }
        }
        let end = cleaned.stats.end;
        checkpoint::write_offset(&self.dir, checkpoint::CLEANER_OFFSET_FILE, end)?;
        self.tombstones_due_ms = cleaned.tombstones_due_ms;
        tracing::info!(dir = %self.dir.display(), stats = ?cleaned.stats, "cleaned log");
        Ok(Some(cleaned.stats))
    }
}

/// Where a test stops an install, to show what a crash there leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InstallStop {
    Never,
    AfterSwapWritten,
    AfterOldDeleted,
}

/// Steps 1 and 2: maps the dirty range and writes the cleaned copies. `None` when nothing could be mapped.
pub fn build(
    plan: &CleanPlan,
    map: &mut OffsetMap,
    now_ms: i64,
) -> Result<Option<Cleaned>, LogError> {
    let first_dirty = plan.first_dirty;
    let mut end = first_dirty;
    let mut stats = CleanStats {
        first_dirty,
        ..CleanStats::default()
    };
    'map: for view in plan.segments.iter().filter(|v| v.next_base > first_dirty) {
        let mut full = false;
        for_each_batch(view, |header, bytes| {
            if header.is_control() || header.next_offset() <= first_dirty.0 {
                return Ok(true);
            }
            if header.is_transactional()
                && plan.is_aborted(ProducerId(header.producer_id), Offset(header.base_offset))
            {
                // An aborted write supersedes nothing.
                end = end.max(Offset(header.next_offset()));
                return Ok(true);
            }
            for record in decode(bytes)? {
                let Some(key) = record.key.as_ref() else {
                    continue;
                };
                if record.offset < first_dirty.0 {
                    continue;
                }
                if !map.put(key, Offset(record.offset)) {
                    full = true;
                    return Ok(false);
                }
                end = Offset(record.offset + 1);
            }
            end = end.max(Offset(header.next_offset()));
            Ok(true)
        })?;
        if full {
            break 'map;
        }
        end = end.max(view.next_base);
    }
    if end <= first_dirty && !plan.tombstone_pass {
        return Ok(None);
    }
    stats.end = end;
    let to_clean: Vec<&SegmentView> = plan.segments.iter().filter(|v| v.base < end).collect();
    let mut groups = Vec::new();
    let mut tombstones_due_ms: Option<i64> = None;
    // Producers whose transaction, as read so far, still has records in the cleaned log: its marker must stay.
    let mut transaction_records: HashSet<ProducerId> = HashSet::new();
    for group in group_segments(&to_clean, plan.config.segment_bytes) {
        let base = group[0].base;
        let group_end = group[group.len() - 1].next_base;
        let path = plan.dir.join(format!(
            "{}{CLEANED_SUFFIX}",
            segment::file_name(base, LOG_SUFFIX)
        ));
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        let mut written = 0u64;
        for view in &group {
            stats.bytes_before += view.size;
            let horizon_ms = view
                .largest_timestamp
                .saturating_add(plan.config.delete_retention_ms);
            let drop_tombstones = now_ms >= horizon_ms;
            let mut kept_tombstone = false;
            for_each_batch(view, |header, bytes| {
                let producer_id = ProducerId(header.producer_id);
                if header.is_control() {
                    // A marker closes its producer's transaction. Once nothing of that transaction is left (an
                    // aborted one never has anything; a committed one when compaction took all its records), it
                    // goes like a tombstone: after delete.retention.ms, so that a consumer that read the
                    // transaction's records still sees how it ended.
                    let has_records = transaction_records.remove(&producer_id);
                    if !has_records {
                        if drop_tombstones {
                            return Ok(true);
                        }
                        kept_tombstone = true;
                    }
                    out.write_all(bytes)?;
                    written += bytes.len() as u64;
                    return Ok(true);
                }
                if header.is_transactional()
                    && plan.is_aborted(producer_id, Offset(header.base_offset))
                {
                    // No consumer may see an aborted record: read_committed ones skip it, and a compacted log
                    // keeps what a read_committed consumer would read.
                    stats.records_read += u64::from(header.record_count.max(0).unsigned_abs());
                    return Ok(true);
                }
                let records = decode(bytes)?;
                stats.records_read += records.len() as u64;
                let keep: Vec<&Record> = records
                    .iter()
                    .filter(|r| {
                        let Some(key) = r.key.as_ref() else {
                            return false;
                        };
                        if map.get(key).is_some_and(|latest| r.offset < latest.0) {
                            return false;
                        }
                        if r.value.is_none() && r.offset < end.0 {
                            if drop_tombstones {
                                return false;
                            }
                            kept_tombstone = true;
                        }
                        true
                    })
                    .collect();
                stats.records_kept += keep.len() as u64;
                if header.is_transactional() && !keep.is_empty() {
                    transaction_records.insert(producer_id);
                }
                if keep.len() == records.len() {
                    out.write_all(bytes)?;
                    written += bytes.len() as u64;
                } else if !keep.is_empty() {
                    let encoded = encode(&header, &keep)?;
                    out.write_all(&encoded)?;
                    written += encoded.len() as u64;
                }
                Ok(true)
            })?;
            if kept_tombstone {
                tombstones_due_ms =
                    Some(tombstones_due_ms.map_or(horizon_ms, |d| d.min(horizon_ms)));
            }
        }
        out.sync_all()?;
        drop(out);
        stats.bytes_after += written;
        let cleaned = if written == 0 {
            remove_if_present(&path)?;
            None
        } else {
            Some(path)
        };
        groups.push(CleanedGroup {
            old_bases: group.iter().map(|v| v.base).collect(),
            base,
            end: group_end,
            cleaned,
        });
    }
    Ok(Some(Cleaned {
        groups,
        stats,
        tombstones_due_ms,
    }))
}

/// Consecutive segments whose combined size fits in `segment.bytes` and whose offsets fit one segment's range.
fn group_segments<'a>(
    segments: &[&'a SegmentView],
    segment_bytes: u32,
) -> Vec<Vec<&'a SegmentView>> {
    let mut groups: Vec<Vec<&SegmentView>> = Vec::new();
    for view in segments {
        let fits = groups.last().is_some_and(|group| {
            let size: u64 = group.iter().map(|v| v.size).sum::<u64>() + view.size;
            let span = view.next_base.0 - group[0].base.0;
            size <= u64::from(segment_bytes) && span <= i64::from(i32::MAX)
        });
        match groups.last_mut() {
            Some(group) if fits => group.push(view),
            _ => groups.push(vec![view]),
        }
    }
    groups
}

/// Calls `f(header, batch bytes)` for each batch of an inactive segment until it returns `false`.
fn for_each_batch(
    view: &SegmentView,
    mut f: impl FnMut(BatchHeader, &[u8]) -> Result<bool, LogError>,
) -> Result<(), LogError> {
    let mut pos = 0u64;
    let mut header_buf = [0u8; HEADER_SIZE];
    let mut buf = Vec::new();
    while pos + HEADER_SIZE as u64 <= view.size {
        view.file.read_exact_at(&mut header_buf, pos)?;
        let header = BatchHeader::parse(&header_buf)
            .ok_or_else(|| LogError::CorruptMessage("short batch header".into()))?;
        let size = header
            .size_in_bytes()
            .filter(|size| pos + *size as u64 <= view.size)
            .ok_or_else(|| {
                LogError::CorruptMessage(format!(
                    "bad batch length at byte {pos} of segment {}",
                    view.base
                ))
            })?;
        buf.resize(size, 0);
        view.file.read_exact_at(&mut buf, pos)?;
        if !f(header, &buf)? {
            return Ok(());
        }
        pos += size as u64;
    }
    Ok(())
}

fn decode(bytes: &[u8]) -> Result<Vec<Record>, LogError> {
    let mut buf = Bytes::copy_from_slice(bytes);
    RecordBatchDecoder::decode(&mut buf)
        .map(|set| set.records)
        .map_err(|e| LogError::CorruptMessage(format!("cannot decode a batch for cleaning: {e:#}")))
}

/// Re-encodes the surviving records of one batch with its codec, keeping offsets, timestamps, producer fields and
/// leader epoch; a LogAppendTime batch keeps its type and max timestamp.
fn encode(header: &BatchHeader, records: &[&Record]) -> Result<Bytes, LogError> {
    let compression = match header.compression() {
        Some(Compression::Gzip) => Codec::Gzip,
        Some(Compression::Snappy) => Codec::Snappy,
        Some(Compression::Lz4) => Codec::Lz4,
        Some(Compression::Zstd) => Codec::Zstd,
        _ => Codec::None,
    };
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, records.iter().copied(), &options).map_err(|e| {
        LogError::CorruptMessage(format!("cannot re-encode a cleaned batch: {e:#}"))
    })?;
    let mut out = buf.to_vec();
    if header.timestamp_type() == TimestampType::LogAppendTime {
        let Some(first) = BatchHeader::parse(&out) else {
            return Err(LogError::CorruptMessage(
                "re-encoded batch too short".into(),
            ));
        };
        batch::assign_in_place(
            &mut out,
            first.base_offset,
            first.partition_leader_epoch,
            TimestampType::LogAppendTime,
            header.max_timestamp,
        );
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
#[path = "cleaner_tests.rs"]
mod tests;
