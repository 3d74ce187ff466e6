//! Retention: deleting whole segments from the front of a log, and moving the LogStartOffset.
//!
//! Kafka's rules (`UnifiedLog.deleteOldSegments`): with `delete` in `cleanup.policy`, a segment goes once its largest
//! record timestamp is older than `retention.ms`, or while the log without it is still at least `retention.bytes`
//! large; under any policy, a segment goes once it lies wholly below the LogStartOffset (DeleteRecords). Only a
//! prefix of segments is ever deleted, and never the active segment, so the log stays contiguous and appendable.
//!
//! The LogStartOffset is checkpointed before the files go. A deleted segment's files are renamed to `*.deleted` at
//! once (so a restart never sees them as part of the log: `Log::open` removes leftovers) and removed after
//! `file.delete.delay.ms`, as in Kafka.

use std::fs;
use std::path::PathBuf;

use super::checkpoint;
use super::log::{remove_if_present, segment_max_timestamp, Log};
use super::segment::{self, LogSegment, SEGMENT_SUFFIXES};
use super::{batch, LogError};
use crate::ids::Offset;

pub const DELETED_SUFFIX: &str = ".deleted";

/// Why segments were deleted, for the log line and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionCause {
    Time,
    Size,
    LogStartOffset,
}

impl Log {
    /// One retention pass: deletes the segments due under `retention.ms`, `retention.bytes` and the LogStartOffset,
    /// and removes the files of earlier deletions whose delay has passed. Returns how many segments went.
    pub fn delete_old_segments(&mut self, now_ms: i64) -> Result<usize, LogError> {
        self.remove_due_files(now_ms);
        let start = self.log_start_offset;
        // A segment is wholly below the LogStartOffset when the next one starts at or before it.
        let below_start = self.prefix_while(|_, next_base, _| next_base <= start);
        let mut deleted =
            self.delete_prefix(below_start, RetentionCause::LogStartOffset, now_ms)?;
        if !self.config.cleanup_delete {
            return Ok(deleted);
        }
        let retention_ms = self.config.retention_ms;
        if retention_ms >= 0 {
            let expired = self.prefix_while(|segment, _, _| {
                now_ms.saturating_sub(largest_timestamp(segment)) > retention_ms
            });
            deleted += self.delete_prefix(expired, RetentionCause::Time, now_ms)?;
        }
        let retention_bytes = self.config.retention_bytes;
        if retention_bytes >= 0 {
            let mut excess = self.size_in_bytes() as i64 - retention_bytes;
            let oversized = self.prefix_while(|segment, _, _| {
                let size = segment.size() as i64;
                let delete = excess - size >= 0;
                if delete {
                    excess -= size;
                }
                delete
            });
            deleted += self.delete_prefix(oversized, RetentionCause::Size, now_ms)?;
        }
        Ok(deleted)
    }

    /// DeleteRecords: moves the LogStartOffset up to `offset` (never down), persists it, and deletes the segments
    /// now wholly below it. The caller has checked `offset` against the high watermark. Returns the new
    /// LogStartOffset (the low watermark).
    pub fn delete_records_before(
        &mut self,
        offset: Offset,
        now_ms: i64,
    ) -> Result<Offset, LogError> {
        let end = self.log_end_offset();
        if offset < Offset(0) || offset > end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: end,
            });
        }
        if offset > self.log_start_offset {
            self.set_log_start_offset(offset)?;
            let below_start = self.prefix_while(|_, next_base, _| next_base <= offset);
            self.delete_prefix(below_start, RetentionCause::LogStartOffset, now_ms)?;
        }
        Ok(self.log_start_offset)
    }

    pub(super) fn set_log_start_offset(&mut self, offset: Offset) -> Result<(), LogError> {
        checkpoint::write_offset(&self.dir, checkpoint::LOG_START_OFFSET_FILE, offset)?;
        self.log_start_offset = offset;
        Ok(())
    }

    /// How many segments from the front satisfy `keep_going(segment, next segment's base, index)`, stopping before
    /// the active segment.
    fn prefix_while(
        &self,
        mut keep_going: impl FnMut(&LogSegment, Offset, usize) -> bool,
    ) -> usize {
        let inactive = self.segments.len().saturating_sub(1);
        (0..inactive)
            .take_while(|&i| keep_going(&self.segments[i], self.segments[i + 1].base_offset(), i))
            .count()
    }

    /// Deletes the first `count` segments (never the active one), advancing the LogStartOffset to the first
    /// remaining segment.
    fn delete_prefix(
        &mut self,
        count: usize,
        cause: RetentionCause,
        now_ms: i64,
    ) -> Result<usize, LogError> {
        let count = count.min(self.segments.len().saturating_sub(1));
        if count == 0 {
            return Ok(0);
        }
        let new_start = self.segments[count].base_offset();
        if new_start > self.log_start_offset {
            self.set_log_start_offset(new_start)?;
        }
        let gone: Vec<LogSegment> = self.segments.drain(..count).collect();
        for segment in gone {
            let base = segment.base_offset();
            tracing::info!(dir = %self.dir.display(), base = base.0, ?cause, "deleting log segment");
            drop(segment);
            self.schedule_delete(base, now_ms)?;
        }
        checkpoint::sync_dir(&self.dir)?;
        Ok(count)
    }

    /// Renames a segment's files out of the log's namespace, and removes them now or after `file.delete.delay.ms`.
    pub(super) fn schedule_delete(&mut self, base: Offset, now_ms: i64) -> Result<(), LogError> {
        let delay_ms = self.config.file_delete_delay_ms;
        for suffix in SEGMENT_SUFFIXES {
            let path = self.dir.join(segment::file_name(base, suffix));
            if delay_ms <= 0 {
                remove_if_present(&path)?;
                continue;
            }
            let renamed = PathBuf::from(format!("{}{DELETED_SUFFIX}", path.display()));
            match fs::rename(&path, &renamed) {
                Ok(()) => self
                    .pending_deletes
                    .push((now_ms.saturating_add(delay_ms), renamed)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Removes the renamed files whose delay has passed. A failure is logged and retried on the next pass.
    pub fn remove_due_files(&mut self, now_ms: i64) {
        self.pending_deletes.retain(|(due_ms, path)| {
            if *due_ms > now_ms {
                return true;
            }
            match remove_if_present(path) {
                Ok(()) => false,
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot remove a deleted segment file");
                    true
                }
            }
        });
    }
}

/// Kafka's `LogSegment.largestTimestamp`: the largest record timestamp, or the file's modification time when the
/// segment holds no timestamps.
pub(super) fn largest_timestamp(segment: &LogSegment) -> i64 {
    let max = segment_max_timestamp(segment);
    if max != batch::NO_TIMESTAMP {
        return max;
    }
    segment
        .log_file()
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(batch::NO_TIMESTAMP, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::LeaderEpoch;
    use crate::storage::test_batches::batch;
    use crate::storage::AppendOrigin;
    use crate::storage::LogConfig;

    const NOW: i64 = 10_000_000;

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 300,
            file_delete_delay_ms: 0,
            ..LogConfig::default()
        }
    }

    fn fill(log: &mut Log, batches: i64, first_ts: i64) {
        for i in 0..batches {
            log.append(
                batch(2, first_ts + i * 1000),
                LeaderEpoch(0),
                AppendOrigin::Client,
                NOW,
            )
            .expect("append");
        }
    }

    #[test]
    fn time_retention_deletes_old_segments_but_never_the_active_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::open(dir.path().to_path_buf(), config(), NOW).expect("open");
        fill(&mut log, 20, NOW - 1_000_000);
        let segments = log.segment_count();
        assert!(segments > 3, "{segments}");
        let mut cfg = config();
        cfg.retention_ms = 1;
        log.update_config(cfg);
        let deleted = log.delete_old_segments(NOW).expect("retention");
        assert_eq!(deleted, segments - 1);
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.log_start_offset(), log.segment_base_offsets()[0]);
        assert_eq!(log.log_end_offset(), Offset(40));
        assert!(matches!(
            log.read(Offset(0), 1000, Offset(40), true),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        // The start offset survives a restart.
        let start = log.log_start_offset();
        log.close().expect("close");
        let log = Log::open(dir.path().to_path_buf(), config(), NOW).expect("reopen");
        assert_eq!(log.log_start_offset(), start);
    }

    #[test]
    fn size_retention_keeps_at_most_retention_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::open(dir.path().to_path_buf(), config(), NOW).expect("open");
        fill(&mut log, 20, NOW);
        let mut cfg = config();
        cfg.retention_bytes = 600;
        log.update_config(cfg);
        assert!(log.delete_old_segments(NOW).expect("retention") > 0);
        // Kafka deletes a segment only while what remains is still at least retention.bytes.
        let size = log.size_in_bytes();
        let first = log.segments[0].size();
        assert!(size >= 600 && size - first < 600, "{size} {first}");
        // Compact-only topics have no time or size retention.
        let mut cfg = config();
        cfg.retention_bytes = 0;
        cfg.cleanup_delete = false;
        cfg.cleanup_compact = true;
        log.update_config(cfg);
        assert_eq!(log.delete_old_segments(NOW).expect("retention"), 0);
    }

    #[test]
    fn delete_records_moves_the_start_offset_inside_a_segment_and_persists_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::open(dir.path().to_path_buf(), config(), NOW).expect("open");
        fill(&mut log, 10, NOW);
        assert_eq!(
            log.delete_records_before(Offset(7), NOW).expect("delete"),
            Offset(7)
        );
        assert_eq!(
            log.delete_records_before(Offset(3), NOW)
                .expect("never back"),
            Offset(7)
        );
        assert!(log.segment_base_offsets()[0] <= Offset(7));
        assert!(log.read(Offset(6), 1000, Offset(20), true).is_err());
        assert!(log.read(Offset(7), 1000, Offset(20), true).is_ok());
        assert!(matches!(
            log.delete_records_before(Offset(21), NOW),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        drop(log);
        // Even after a crash (no clean close) the start offset holds.
        let log = Log::open(dir.path().to_path_buf(), config(), NOW).expect("reopen");
        assert_eq!(log.log_start_offset(), Offset(7));
    }

    #[test]
    fn delayed_deletion_renames_then_removes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = config();
        cfg.file_delete_delay_ms = 1_000;
        let mut log = Log::open(dir.path().to_path_buf(), cfg.clone(), NOW).expect("open");
        fill(&mut log, 10, NOW);
        log.delete_records_before(Offset(20), NOW).expect("delete");
        let deleted = |dir: &std::path::Path| {
            fs::read_dir(dir)
                .expect("read_dir")
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(DELETED_SUFFIX))
                .count()
        };
        assert!(deleted(dir.path()) > 0);
        log.delete_old_segments(NOW + 500).expect("retention");
        assert!(deleted(dir.path()) > 0);
        log.delete_old_segments(NOW + 1_000).expect("retention");
        assert_eq!(deleted(dir.path()), 0);
    }
}
