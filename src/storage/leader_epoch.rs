//! Kafka's leader-epoch cache (`LeaderEpochFileCache`) and its file, `leader-epoch-checkpoint`: for each leader
//! epoch of a partition, the first offset its leader wrote. Followers and returning leaders use it to find where
//! their log diverges from the current leader's (OffsetForLeaderEpoch, KIP-101/KIP-279) and truncate there.
//!
//! The file is text: the format version (`0`), the number of entries, then one `<epoch> <start offset>` line per
//! entry, epochs and offsets both strictly increasing. It is replaced atomically (temporary file, fsync, rename,
//! fsync of the directory), so a crash leaves the old or the new version; a missing file is an empty cache (the
//! log's batches carry their epochs, from which it can be rebuilt). The [`Log`](super::Log) extends it as batches
//! of a newer epoch arrive (as leader or follower) and cuts it when it truncates or recovery cuts its tail; a leader
//! answers a follower's `last_fetched_epoch` from it (Fetch's diverging epoch, KIP-320).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::ids::{LeaderEpoch, Offset};
use crate::storage::checkpoint::sync_dir;

pub const LEADER_EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";
const VERSION: &str = "0";

#[derive(Debug, thiserror::Error)]
pub enum LeaderEpochError {
    #[error("cannot read or write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is malformed at line {line}")]
    Malformed { path: PathBuf, line: usize },
}

/// One epoch and the first offset its leader wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: LeaderEpoch,
    pub start_offset: Offset,
}

/// The answer to OffsetForLeaderEpoch: the largest epoch at or below the one asked for, and where it ends.
/// `None` (Kafka's UNDEFINED_EPOCH, -1 / -1) when nothing is known.
pub type EpochEnd = Option<(LeaderEpoch, Offset)>;

/// A partition's leader epochs, in memory and in its directory's `leader-epoch-checkpoint`.
#[derive(Debug)]
pub struct LeaderEpochFileCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochFileCache {
    /// Reads the partition directory's checkpoint; none is an empty cache.
    pub fn open(dir: &Path) -> Result<LeaderEpochFileCache, LeaderEpochError> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT_FILE);
        let entries = match fs::read_to_string(&path) {
            Ok(text) => parse(&path, &text)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(LeaderEpochError::Io { path, source }),
        };
        Ok(LeaderEpochFileCache { path, entries })
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` begins at `start_offset` (a leader's first append in a new epoch). Entries it
    /// contradicts (an epoch at or above it, or a start at or after it) are dropped first, as Kafka does, so the
    /// cache stays monotonic; the same epoch again changes nothing.
    pub fn assign(
        &mut self,
        epoch: LeaderEpoch,
        start_offset: Offset,
    ) -> Result<(), LeaderEpochError> {
        if self.latest_epoch() == Some(epoch) {
            return Ok(());
        }
        self.entries
            .retain(|e| e.epoch < epoch && e.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        self.flush()
    }

    /// KIP-279's end offset of `requested`: for the latest epoch, the log end; for an earlier one, the start of the
    /// next epoch after it (paired with the largest epoch at or below `requested`, or `requested` itself when it is
    /// older than every entry); nothing for an epoch newer than the latest.
    pub fn end_offset_for(&self, requested: LeaderEpoch, log_end_offset: Offset) -> EpochEnd {
        let latest = self.latest_epoch()?;
        if requested.0 < 0 {
            return None;
        }
        if requested == latest {
            return Some((latest, log_end_offset));
        }
        let higher = self.entries.iter().find(|e| e.epoch > requested)?;
        let floor = self.entries.iter().rev().find(|e| e.epoch <= requested);
        Some((floor.map_or(requested, |e| e.epoch), higher.start_offset))
    }

    /// The log was truncated to end at `end_offset`: epochs that began at or after it are gone.
    pub fn truncate_from_end(&mut self, end_offset: Offset) -> Result<(), LeaderEpochError> {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        if self.entries.len() == before {
            return Ok(());
        }
        self.flush()
    }

    /// The log now starts at `start_offset`: epochs wholly below it are gone, and the one it falls in starts there.
    pub fn truncate_from_start(&mut self, start_offset: Offset) -> Result<(), LeaderEpochError> {
        let Some(keep) = self
            .entries
            .iter()
            .rposition(|e| e.start_offset <= start_offset)
        else {
            return Ok(());
        };
        if keep == 0 && self.entries[0].start_offset == start_offset {
            return Ok(());
        }
        self.entries.drain(..keep);
        self.entries[0].start_offset = start_offset;
        self.flush()
    }

    fn flush(&self) -> Result<(), LeaderEpochError> {
        let io_error = |source| LeaderEpochError::Io {
            path: self.path.clone(),
            source,
        };
        let mut text = format!("{VERSION}\n{}\n", self.entries.len());
        for entry in &self.entries {
            text.push_str(&format!("{} {}\n", entry.epoch.0, entry.start_offset.0));
        }
        let tmp = self.path.with_extension("tmp");
        {
            let mut file = File::create(&tmp).map_err(io_error)?;
            file.write_all(text.as_bytes()).map_err(io_error)?;
            file.sync_all().map_err(io_error)?;
        }
        fs::rename(&tmp, &self.path).map_err(io_error)?;
        match self.path.parent() {
            Some(dir) => sync_dir(dir).map_err(io_error),
            None => Ok(()),
        }
    }
}

fn parse(path: &Path, text: &str) -> Result<Vec<EpochEntry>, LeaderEpochError> {
    let malformed = |line: usize| LeaderEpochError::Malformed {
        path: path.to_path_buf(),
        line,
    };
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some(VERSION) {
        return Err(malformed(1));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| malformed(2))?;
    let mut entries: Vec<EpochEntry> = Vec::with_capacity(count.min(1024));
    for i in 0..count {
        let line = lines.next().ok_or_else(|| malformed(3 + i))?;
        let mut fields = line.split_whitespace();
        let epoch = fields.next().and_then(|f| f.parse::<i32>().ok());
        let offset = fields.next().and_then(|f| f.parse::<i64>().ok());
        let (Some(epoch), Some(offset)) = (epoch, offset) else {
            return Err(malformed(3 + i));
        };
        let entry = EpochEntry {
            epoch: LeaderEpoch(epoch),
            start_offset: Offset(offset),
        };
        let monotonic = entries
            .last()
            .is_none_or(|last| last.epoch < entry.epoch && last.start_offset < entry.start_offset);
        if epoch < 0 || offset < 0 || !monotonic {
            return Err(malformed(3 + i));
        }
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> (tempfile::TempDir, LeaderEpochFileCache) {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = LeaderEpochFileCache::open(dir.path()).expect("empty cache");
        (dir, cache)
    }

    fn epochs(cache: &LeaderEpochFileCache) -> Vec<(i32, i64)> {
        cache
            .entries()
            .iter()
            .map(|e| (e.epoch.0, e.start_offset.0))
            .collect()
    }

    #[test]
    fn assignments_survive_a_reopen_and_contradicted_entries_are_dropped(
    ) -> Result<(), LeaderEpochError> {
        let (dir, mut cache) = cache();
        cache.assign(LeaderEpoch(0), Offset(0))?;
        cache.assign(LeaderEpoch(0), Offset(5))?;
        cache.assign(LeaderEpoch(2), Offset(10))?;
        cache.assign(LeaderEpoch(4), Offset(30))?;
        assert_eq!(epochs(&cache), vec![(0, 0), (2, 10), (4, 30)]);
        assert_eq!(
            epochs(&LeaderEpochFileCache::open(dir.path())?),
            epochs(&cache)
        );
        // A new leader in epoch 3 starting at 20 contradicts epoch 4.
        cache.assign(LeaderEpoch(3), Offset(20))?;
        assert_eq!(epochs(&cache), vec![(0, 0), (2, 10), (3, 20)]);
        Ok(())
    }

    #[test]
    fn end_offsets_follow_kip_279() -> Result<(), LeaderEpochError> {
        let (_dir, mut cache) = cache();
        assert_eq!(cache.end_offset_for(LeaderEpoch(0), Offset(0)), None);
        cache.assign(LeaderEpoch(1), Offset(0))?;
        cache.assign(LeaderEpoch(3), Offset(10))?;
        cache.assign(LeaderEpoch(5), Offset(20))?;
        let end = Offset(25);
        let at = |epoch, offset| Some((LeaderEpoch(epoch), Offset(offset)));
        assert_eq!(cache.end_offset_for(LeaderEpoch(5), end), at(5, 25));
        assert_eq!(cache.end_offset_for(LeaderEpoch(3), end), at(3, 20));
        // Epoch 4 never had a leader that wrote: answered with epoch 3 and where epoch 5 begins.
        assert_eq!(cache.end_offset_for(LeaderEpoch(4), end), at(3, 20));
        // Older than everything known: the requested epoch, ending where the first known one starts.
        assert_eq!(cache.end_offset_for(LeaderEpoch(0), end), at(0, 0));
        assert_eq!(cache.end_offset_for(LeaderEpoch(6), end), None);
        assert_eq!(cache.end_offset_for(LeaderEpoch(-1), end), None);
        Ok(())
    }

    #[test]
    fn truncation_from_either_end() -> Result<(), LeaderEpochError> {
        let (dir, mut cache) = cache();
        cache.assign(LeaderEpoch(1), Offset(0))?;
        cache.assign(LeaderEpoch(3), Offset(10))?;
        cache.assign(LeaderEpoch(5), Offset(20))?;
        cache.truncate_from_end(Offset(20))?;
        assert_eq!(epochs(&cache), vec![(1, 0), (3, 10)]);
        cache.truncate_from_start(Offset(15))?;
        assert_eq!(epochs(&cache), vec![(3, 15)]);
        assert_eq!(
            epochs(&LeaderEpochFileCache::open(dir.path())?),
            vec![(3, 15)]
        );
        Ok(())
    }

    #[test]
    fn a_malformed_file_is_an_error_not_a_guess() {
        let dir = tempfile::tempdir().expect("temp dir");
        for text in ["1\n0\n", "0\n2\n1 0\n", "0\n2\n3 10\n2 20\n", "0\nx\n"] {
            fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE), text).expect("write");
            assert!(
                matches!(
                    LeaderEpochFileCache::open(dir.path()),
                    Err(LeaderEpochError::Malformed { .. })
                ),
                "{text:?}"
            );
        }
    }
}
