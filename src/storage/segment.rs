//! A LogSegment: one `.log` file of record batches, its two sparse indexes and its transaction index.
//!
//! The `.log` file is a plain concatenation of v2 record batches ([`super::batch`]) with increasing offsets, nothing
//! else: no file header, no padding, no preallocation. Its length is the segment's size. Appends go to the end with
//! positional writes; reads are positional too, so readers and the writer share the file without a cursor. A crash
//! can leave a torn batch at the end (or, without fsync, any suffix of unsynced pages in any state); recovery
//! ([`LogSegment::recover`]) walks the batches from the start, checks lengths and CRCs, cuts the file at the first
//! batch that fails and rebuilds both indexes from what remains. The transaction index cannot be rebuilt from the
//! segment alone (an entry needs the transaction's first offset, which may lie in an earlier segment): the log
//! rebuilds it for every recovered segment from its producer state replay.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::batch::{self, BatchHeader, HEADER_SIZE, MAGIC_V2};
use super::offset_index::OffsetIndex;
use super::records;
use super::time_index::TimeIndex;
use super::transaction_index::TransactionIndex;
use super::{LogConfig, LogError};
use crate::ids::Offset;

pub const LOG_SUFFIX: &str = "log";
pub const INDEX_SUFFIX: &str = "index";
pub const TIME_INDEX_SUFFIX: &str = "timeindex";
pub const TXN_INDEX_SUFFIX: &str = "txnindex";
/// Every file of a segment, by suffix.
pub const SEGMENT_SUFFIXES: [&str; 4] = [
    LOG_SUFFIX,
    INDEX_SUFFIX,
    TIME_INDEX_SUFFIX,
    TXN_INDEX_SUFFIX,
];

/// Header scans read ahead this much, so walking many small batches costs few system calls.
const READ_AHEAD_BYTES: usize = 64 * 1024;

/// `<20-digit base offset>.<suffix>`, Kafka's naming.
pub fn file_name(base_offset: Offset, suffix: &str) -> String {
    format!("{:020}.{suffix}", base_offset.0)
}

/// The base offset and suffix of a segment file name, if it is one.
pub fn parse_file_name(name: &str) -> Option<(Offset, &str)> {
    let (stem, suffix) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((Offset(stem.parse().ok()?), suffix))
}

/// A window of file bytes for walking batches without a system call per header.
struct ChunkReader<'a> {
    file: &'a File,
    end: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

/// What sits at a position of a `.log` file.
enum Slot {
    Batch(BatchHeader, u64),
    End,
    /// Not a plausible batch: a torn write, garbage, or a length running past the end.
    Damaged(String),
}

impl<'a> ChunkReader<'a> {
    fn new(file: &'a File, end: u64) -> Self {
        ChunkReader {
            file,
            end,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    /// Bytes `[pos, pos + len)`; the caller keeps the range within `end`.
    fn get(&mut self, pos: u64, len: usize) -> std::io::Result<&[u8]> {
        let buf_end = self.buf_start + self.buf.len() as u64;
        if pos < self.buf_start || pos + len as u64 > buf_end {
            let available = usize::try_from(self.end.saturating_sub(pos)).unwrap_or(usize::MAX);
            let want = len.max(READ_AHEAD_BYTES).min(available).max(len);
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, pos)?;
            self.buf_start = pos;
        }
        let from = (pos - self.buf_start) as usize;
        Ok(&self.buf[from..from + len])
    }

    fn slot_at(&mut self, pos: u64) -> std::io::Result<Slot> {
        let remaining = self.end.saturating_sub(pos);
        if remaining == 0 {
            return Ok(Slot::End);
        }
        if remaining < HEADER_SIZE as u64 {
            return Ok(Slot::Damaged(format!("{remaining} stray bytes at the end")));
        }
        let Some(header) = BatchHeader::parse(self.get(pos, HEADER_SIZE)?) else {
            return Ok(Slot::Damaged("short header".into()));
        };
        if header.magic != MAGIC_V2 {
            return Ok(Slot::Damaged(format!("magic {}", header.magic)));
        }
        match header.size_in_bytes() {
            Some(size) if size as u64 <= remaining => Ok(Slot::Batch(header, size as u64)),
            Some(size) => Ok(Slot::Damaged(format!(
                "batch of {size} bytes with {remaining} left"
            ))),
            None => Ok(Slot::Damaged(format!(
                "batch length {}",
                header.batch_length
            ))),
        }
    }
}

pub struct LogSegment {
    base_offset: Offset,
    log: Arc<File>,
    log_path: PathBuf,
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    txn_index: TransactionIndex,
    bytes_since_last_index_entry: u64,
    /// The largest batch max timestamp and the last offset of the first batch that reached it.
    max_timestamp_so_far: Option<(i64, Offset)>,
    next_offset: Offset,
    /// Max timestamp of the first batch: `segment.ms` is measured in record time from it, as Kafka does.
    first_batch_timestamp: Option<i64>,
    created_ms: i64,
}

/// What [`LogSegment::recover`] found.
pub struct Recovered {
    pub truncated_bytes: u64,
}

impl LogSegment {
    /// Creates an empty active segment, replacing stale index files of the same name.
    pub fn create(
        dir: &Path,
        base_offset: Offset,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<LogSegment, LogError> {
        let log_path = dir.join(file_name(base_offset, LOG_SUFFIX));
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&log_path)?;
        let max = config.segment_index_bytes;
        let offset_index = OffsetIndex::create(
            &dir.join(file_name(base_offset, INDEX_SUFFIX)),
            base_offset,
            max,
            true,
        )?;
        let time_index = TimeIndex::create(
            &dir.join(file_name(base_offset, TIME_INDEX_SUFFIX)),
            base_offset,
            max,
            true,
        )?;
        let txn_index = TransactionIndex::create(
            &dir.join(file_name(base_offset, TXN_INDEX_SUFFIX)),
            base_offset,
        )?;
        Ok(LogSegment {
            base_offset,
            log: Arc::new(log),
            log_path,
            size: 0,
            offset_index,
            time_index,
            txn_index,
            bytes_since_last_index_entry: 0,
            max_timestamp_so_far: None,
            next_offset: base_offset,
            first_batch_timestamp: None,
            created_ms: now_ms,
        })
    }

    /// Opens an existing segment. With `trust_log`, the log is taken as valid and the indexes are kept if they pass
    /// their sanity checks; otherwise (or if they fail) the segment is recovered, which `Some` reports. Recovery
    /// leaves the transaction index as it found it (emptied if it failed its check): the caller rebuilds it.
    pub fn open(
        dir: &Path,
        base_offset: Offset,
        config: &LogConfig,
        now_ms: i64,
        active: bool,
        trust_log: bool,
    ) -> Result<(LogSegment, Option<Recovered>), LogError> {
        let log_path = dir.join(file_name(base_offset, LOG_SUFFIX));
        let log = OpenOptions::new().read(true).write(true).open(&log_path)?;
        let size = log.metadata()?.len();
        let max = config.segment_index_bytes;
        let index_path = dir.join(file_name(base_offset, INDEX_SUFFIX));
        let time_path = dir.join(file_name(base_offset, TIME_INDEX_SUFFIX));
        let offset_index = OffsetIndex::open(&index_path, base_offset, max, active)?;
        let time_index = TimeIndex::open(&time_path, base_offset, max, active)?;
        let txn_path = dir.join(file_name(base_offset, TXN_INDEX_SUFFIX));
        let txn_index = TransactionIndex::open(&txn_path, base_offset)?;
        let damaged = offset_index.is_none() || time_index.is_none() || txn_index.is_none();
        let txn_index = match txn_index {
            Some(i) => i,
            None => TransactionIndex::create(&txn_path, base_offset)?,
        };
        let offset_index = match offset_index {
            Some(i) => i,
            None => OffsetIndex::create(&index_path, base_offset, max, active)?,
        };
        let time_index = match time_index {
            Some(i) => i,
            None => TimeIndex::create(&time_path, base_offset, max, active)?,
        };
        let mut segment = LogSegment {
            base_offset,
            log: Arc::new(log),
            log_path,
            size,
            offset_index,
            time_index,
            txn_index,
            bytes_since_last_index_entry: 0,
            max_timestamp_so_far: None,
            next_offset: base_offset,
            first_batch_timestamp: None,
            created_ms: now_ms,
        };
        if trust_log && !damaged && segment.load_trusted()? {
            return Ok((segment, None));
        }
        if trust_log {
            tracing::warn!(segment = %segment.log_path.display(), "index damaged, rebuilding from the log");
        }
        let recovered = segment.recover(config.index_interval_bytes, config.segment_index_bytes)?;
        Ok((segment, Some(recovered)))
    }

    /// Fills in the in-memory state of a cleanly closed segment from its indexes and its tail. `false` if anything
    /// is inconsistent, in which case the caller recovers the segment instead.
    fn load_trusted(&mut self) -> Result<bool, LogError> {
        if !self.offset_index.sanity_check(self.size) {
            return Ok(false);
        }
        self.next_offset = self.base_offset;
        self.first_batch_timestamp = None;
        let (entry_offset, entry_pos) = self.offset_index.lookup(Offset(i64::MAX));
        let log = Arc::clone(&self.log);
        let mut reader = ChunkReader::new(&log, self.size);
        let mut pos = u64::from(entry_pos);
        let mut first = true;
        // Batches after the last index entry may have raised the max timestamp beyond the time index's last entry.
        let mut tail_max: Option<(i64, Offset)> = None;
        loop {
            match reader.slot_at(pos)? {
                Slot::End => break,
                Slot::Damaged(_) => return Ok(false),
                Slot::Batch(header, size) => {
                    // The indexed batch must be the one the entry names.
                    if first
                        && entry_pos > 0
                        && !(header.base_offset..=header.last_offset()).contains(&entry_offset.0)
                    {
                        return Ok(false);
                    }
                    if header.base_offset < self.next_offset.0 {
                        return Ok(false);
                    }
                    first = false;
                    if header.max_timestamp > tail_max.map_or(batch::NO_TIMESTAMP, |m| m.0) {
                        tail_max = Some((header.max_timestamp, Offset(header.last_offset())));
                    }
                    self.next_offset = Offset(header.next_offset());
                    pos += size;
                }
            }
        }
        if !self.time_index.sanity_check(self.next_offset) {
            return Ok(false);
        }
        self.max_timestamp_so_far = match (self.time_index.last_entry(), tail_max) {
            (Some(indexed), Some(tail)) if tail.0 > indexed.0 => Some(tail),
            (Some(indexed), _) => Some(indexed),
            (None, tail) => tail,
        };
        self.bytes_since_last_index_entry = self.size - u64::from(entry_pos);
        if self.size > 0 {
            if let Slot::Batch(header, _) = reader.slot_at(0)? {
                self.first_batch_timestamp = Some(header.max_timestamp);
            }
        }
        Ok(true)
    }

    /// Re-validates every batch (length, magic, CRC, offsets), truncates the log after the last good one and
    /// rebuilds both indexes.
    pub fn recover(
        &mut self,
        index_interval_bytes: u32,
        index_max_bytes: u32,
    ) -> Result<Recovered, LogError> {
        self.offset_index.truncate_entries(0);
        self.time_index.truncate_entries(0);
        self.max_timestamp_so_far = None;
        self.first_batch_timestamp = None;
        self.next_offset = self.base_offset;
        let file_len = self.log.metadata()?.len();
        let interval = u64::from(index_interval_bytes);
        // A rebuilt index may need more room than the damaged file had; inactive segments are trimmed afterwards.
        self.offset_index.resize(index_max_bytes)?;
        self.time_index.resize(index_max_bytes)?;
        let log = Arc::clone(&self.log);
        let mut reader = ChunkReader::new(&log, file_len);
        let (mut pos, mut last_entry_pos) = (0u64, 0u64);
        loop {
            let (header, size) = match reader.slot_at(pos)? {
                Slot::End => break,
                Slot::Damaged(why) => {
                    tracing::warn!(segment = %self.log_path.display(), pos, %why, "truncating damaged log tail");
                    break;
                }
                Slot::Batch(header, size) => (header, size),
            };
            let bytes = reader.get(pos, size as usize)?;
            let problem = if batch::compute_crc(bytes) != header.crc {
                Some("CRC mismatch")
            } else if header.compression().is_none() {
                Some("unknown compression")
            } else if header.last_offset_delta < 0 || header.base_offset < self.next_offset.0 {
                Some("offsets out of order")
            } else if header.last_offset() - self.base_offset.0 > i64::from(i32::MAX) {
                Some("offset beyond the segment's range")
            } else {
                None
            };
            if let Some(why) = problem {
                tracing::warn!(segment = %self.log_path.display(), pos, why, "truncating damaged log tail");
                break;
            }
            self.note_batch(&header, header.max_timestamp);
            if pos - last_entry_pos > interval {
                self.add_index_entries(&header, pos);
                last_entry_pos = pos;
            }
            pos += size;
        }
        self.bytes_since_last_index_entry = pos - last_entry_pos;
        self.size = pos;
        if pos < file_len {
            self.log.set_len(pos)?;
        }
        Ok(Recovered {
            truncated_bytes: file_len - pos,
        })
    }

    fn note_batch(&mut self, header: &BatchHeader, max_timestamp: i64) {
        if self.first_batch_timestamp.is_none() {
            self.first_batch_timestamp = Some(max_timestamp);
        }
        let current = self
            .max_timestamp_so_far
            .map_or(batch::NO_TIMESTAMP, |m| m.0);
        if max_timestamp > current {
            self.max_timestamp_so_far = Some((max_timestamp, Offset(header.last_offset())));
        }
        self.next_offset = Offset(header.next_offset());
    }

    fn add_index_entries(&mut self, header: &BatchHeader, pos: u64) {
        if let Ok(pos) = u32::try_from(pos) {
            self.offset_index.append(Offset(header.last_offset()), pos);
        }
        if let Some((ts, offset)) = self.max_timestamp_so_far {
            self.time_index.maybe_append(ts, offset);
        }
    }

    /// Removes every batch whose last offset is at or after `target`; a batch straddling `target` goes whole, as in
    /// Kafka. The cut is fsynced: truncated data must not come back after a crash. Returns the bytes removed.
    pub fn truncate_to(&mut self, target: Offset, config: &LogConfig) -> Result<u64, LogError> {
        let log = Arc::clone(&self.log);
        let mut reader = ChunkReader::new(&log, self.size);
        let (_, from_pos) = self.offset_index.lookup(target);
        let Some((pos, _, _)) = self.find_batch(&mut reader, from_pos, target)? else {
            return Ok(0);
        };
        let removed = self.size - pos;
        self.log.set_len(pos)?;
        self.log.sync_all()?;
        self.size = pos;
        self.offset_index.truncate_to_position(pos);
        self.time_index.truncate_to_offset(target);
        self.txn_index.truncate_to(target)?;
        if !self.load_trusted()? {
            self.recover(config.index_interval_bytes, config.segment_index_bytes)?;
        }
        Ok(removed)
    }

    /// Whether the next batch must go to a new segment (Kafka's `shouldRoll`). An empty segment never rolls: the
    /// new one would have the same base offset.
    pub fn should_roll(
        &self,
        batch_size: usize,
        batch_max_timestamp: i64,
        last_offset: Offset,
        config: &LogConfig,
        now_ms: i64,
    ) -> bool {
        if self.size == 0 {
            return false;
        }
        let full = self.size + batch_size as u64 > u64::from(config.segment_bytes);
        let waited_ms = match self.first_batch_timestamp {
            Some(first) if first >= 0 => batch_max_timestamp.saturating_sub(first),
            _ => now_ms.saturating_sub(self.created_ms),
        };
        let old = waited_ms > config.segment_ms;
        let indexes_full = self.offset_index.is_full() || self.time_index.is_full();
        let overflow = last_offset.0.saturating_sub(self.base_offset.0) > i64::from(i32::MAX);
        full || old || indexes_full || overflow
    }

    /// Appends one batch whose offsets are already assigned. Does not fsync. On a failed write the file is cut
    /// back so that no partial batch stays behind.
    pub fn append(
        &mut self,
        bytes: &[u8],
        header: &BatchHeader,
        max_timestamp: i64,
        index_interval_bytes: u32,
    ) -> Result<(), LogError> {
        let pos = self.size;
        if let Err(e) = self.log.write_all_at(bytes, pos) {
            let _ = self.log.set_len(pos);
            return Err(e.into());
        }
        self.note_batch(header, max_timestamp);
        if self.bytes_since_last_index_entry > u64::from(index_interval_bytes) {
            self.add_index_entries(header, pos);
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += bytes.len() as u64;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// The segment takes no more appends: record its final max timestamp and give back the preallocated space.
    pub fn on_become_inactive(&mut self) -> Result<(), LogError> {
        if let Some((ts, offset)) = self.max_timestamp_so_far {
            self.time_index.maybe_append(ts, offset);
        }
        self.offset_index.trim()?;
        self.time_index.trim()?;
        Ok(())
    }

    /// Grows the indexes back to `segment.index.bytes` for a reopened active segment.
    pub fn resize_indexes(&mut self, max_bytes: u32) -> Result<(), LogError> {
        self.offset_index.resize(max_bytes)?;
        self.time_index.resize(max_bytes)?;
        Ok(())
    }

    /// Position and header of the first batch whose last offset is at least `target`.
    fn find_batch(
        &self,
        reader: &mut ChunkReader<'_>,
        from_pos: u32,
        target: Offset,
    ) -> Result<Option<(u64, BatchHeader, u64)>, LogError> {
        let mut pos = u64::from(from_pos);
        loop {
            match reader.slot_at(pos)? {
                Slot::End => return Ok(None),
                Slot::Damaged(why) => return Err(self.damaged(pos, &why)),
                Slot::Batch(header, size) => {
                    if header.last_offset() >= target.0 {
                        return Ok(Some((pos, header, size)));
                    }
                    pos += size;
                }
            }
        }
    }

    fn damaged(&self, pos: u64, why: &str) -> LogError {
        LogError::CorruptMessage(format!("{} at byte {pos}: {why}", self.log_path.display()))
    }

    /// Whole batches from the one holding `start`, at most `max_bytes` (unless `min_one_batch` and the first batch is
    /// larger), none ending at or beyond `max_offset`. `None` if this segment has nothing at or after `start`.
    pub fn read(
        &self,
        start: Offset,
        max_bytes: usize,
        max_offset: Offset,
        min_one_batch: bool,
    ) -> Result<Option<Bytes>, LogError> {
        let mut reader = ChunkReader::new(&self.log, self.size);
        let (_, from_pos) = self.offset_index.lookup(start);
        let Some((pos, first, first_size)) = self.find_batch(&mut reader, from_pos, start)? else {
            return Ok(None);
        };
        if first.last_offset() >= max_offset.0 {
            return Ok(Some(Bytes::new()));
        }
        let first_size = first_size as usize;
        let want = if first_size > max_bytes {
            if !min_one_batch {
                return Ok(Some(Bytes::new()));
            }
            first_size
        } else {
            let left = usize::try_from(self.size - pos).unwrap_or(usize::MAX);
            max_bytes.min(left)
        };
        let mut buf = vec![0u8; want];
        self.log.read_exact_at(&mut buf, pos)?;
        let mut keep = 0usize;
        while let Some(header) = buf.get(keep..).and_then(BatchHeader::parse) {
            let Some(size) = header.size_in_bytes() else {
                return Err(self.damaged(pos + keep as u64, "bad batch length"));
            };
            if keep + size > buf.len() || header.last_offset() >= max_offset.0 {
                break;
            }
            keep += size;
        }
        buf.truncate(keep);
        Ok(Some(Bytes::from(buf)))
    }

    /// The first record at or after `target_ms` in this segment, as (timestamp, offset).
    pub fn find_offset_by_timestamp(
        &self,
        target_ms: i64,
    ) -> Result<Option<(i64, Offset)>, LogError> {
        let from = self
            .time_index
            .lookup(target_ms)
            .unwrap_or(self.base_offset);
        let (_, from_pos) = self.offset_index.lookup(from);
        let mut reader = ChunkReader::new(&self.log, self.size);
        let mut pos = u64::from(from_pos);
        loop {
            match reader.slot_at(pos)? {
                Slot::End => return Ok(None),
                Slot::Damaged(why) => return Err(self.damaged(pos, &why)),
                Slot::Batch(header, size) => {
                    if header.max_timestamp >= target_ms {
                        let bytes = reader.get(pos, size as usize)?;
                        if let Some((ts, offset)) =
                            records::first_at_or_after(bytes, &header, target_ms)?
                        {
                            return Ok(Some((ts, Offset(offset))));
                        }
                    }
                    pos += size;
                }
            }
        }
    }

    pub fn flush(&self) -> Result<(), LogError> {
        self.log.sync_data()?;
        self.offset_index.flush()?;
        self.time_index.flush()?;
        self.txn_index.flush()?;
        Ok(())
    }

    /// Removes the segment's files.
    pub fn delete(self) -> Result<(), LogError> {
        let paths = [
            self.log_path.clone(),
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
            self.txn_index.path().to_path_buf(),
        ];
        drop(self);
        for path in paths {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    pub fn base_offset(&self) -> Offset {
        self.base_offset
    }

    /// One past the last offset in the segment (the base offset when empty).
    pub fn next_offset(&self) -> Offset {
        self.next_offset
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn max_timestamp_so_far(&self) -> Option<(i64, Offset)> {
        self.max_timestamp_so_far
    }

    pub fn log_file(&self) -> &Arc<File> {
        &self.log
    }

    pub fn offset_index(&self) -> &OffsetIndex {
        &self.offset_index
    }

    pub fn time_index(&self) -> &TimeIndex {
        &self.time_index
    }

    pub fn txn_index(&self) -> &TransactionIndex {
        &self.txn_index
    }

    /// For the log, which alone knows the transactions: it appends an entry when an ABORT marker lands here and
    /// rebuilds the index of a recovered segment.
    pub fn txn_index_mut(&mut self) -> &mut TransactionIndex {
        &mut self.txn_index
    }
}
