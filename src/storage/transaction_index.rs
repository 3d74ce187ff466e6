//! The transaction index: `<base offset>.txnindex`, the aborted transactions whose ABORT marker is in the segment
//! (Kafka's TransactionIndex).
//!
//! Format: a flat array of 34-byte entries, no header, big-endian, in the order their markers were written, so by
//! strictly increasing last offset:
//!
//! ```text
//! version            i16   0
//! producer_id        i64
//! first_offset       i64   the transaction's first record in this partition
//! last_offset        i64   its ABORT marker
//! last_stable_offset i64   the LastStableOffset once the marker was written: the first offset of the earliest
//!                          transaction of another producer still open then, else last_offset + 1
//! ```
//!
//! A read_committed fetch hands the consumer the aborted transactions overlapping what it returns, so that the
//! consumer can skip their records: [`TransactionIndex::collect`] returns the entries with `last_offset >= fetch
//! offset` and `first_offset < upper bound`, and says the search is complete once an entry's LastStableOffset
//! reaches the upper bound (no transaction that starts below the bound can end in a later segment: it would have
//! held that LastStableOffset down). The log searches from the segment holding the fetch offset onward until a
//! segment says so.
//!
//! Unlike the offset and time indexes the file is neither preallocated nor memory-mapped: entries are appended with
//! positional writes, and the file only comes into being with the segment's first aborted transaction (most
//! segments never have one). Group commit fsyncs it with the segment's log, so below the recovery point it is
//! complete. A crash can leave a shorter file or a torn or zeroed tail; such a file fails the check on open (length
//! not a whole number of entries, an unknown version, last offsets not increasing or below the segment's base
//! offset) and the segment is recovered: its entries are rebuilt from the markers in the log by the producer state
//! replay (see `Log::open`). A shorter file that passes the check is only possible above the recovery point, where
//! the segment is recovered anyway.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ids::{Offset, ProducerId};

pub const ENTRY_SIZE: usize = 34;
const VERSION: i16 = 0;
/// Entries read per system call while searching.
const ENTRIES_PER_READ: usize = 1024;

/// One aborted transaction of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: ProducerId,
    pub first_offset: Offset,
    pub last_offset: Offset,
    pub last_stable_offset: Offset,
}

impl AbortedTxn {
    fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut out = [0u8; ENTRY_SIZE];
        out[0..2].copy_from_slice(&VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.0.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.0.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.0.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.0.to_be_bytes());
        out
    }

    /// `None` for a version this broker does not know.
    fn decode(bytes: &[u8]) -> Option<AbortedTxn> {
        let i64_at = |pos: usize| -> Option<i64> {
            Some(i64::from_be_bytes(
                bytes.get(pos..pos + 8)?.try_into().ok()?,
            ))
        };
        let version = i16::from_be_bytes(bytes.get(0..2)?.try_into().ok()?);
        if version != VERSION {
            return None;
        }
        Some(AbortedTxn {
            producer_id: ProducerId(i64_at(2)?),
            first_offset: Offset(i64_at(10)?),
            last_offset: Offset(i64_at(18)?),
            last_stable_offset: Offset(i64_at(26)?),
        })
    }
}

/// What a search of one segment's index found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnIndexSearch {
    pub aborted: Vec<AbortedTxn>,
    /// No later segment can hold more of what was searched for.
    pub complete: bool,
}

pub struct TransactionIndex {
    path: PathBuf,
    /// The segment's base offset: no entry may end below it.
    start_offset: Offset,
    /// `None` until the first entry is appended.
    file: Option<Arc<File>>,
    entries: u64,
    last_offset: Option<Offset>,
}

fn damaged(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {why}", path.display()),
    )
}

impl TransactionIndex {
    /// Opens the index at `path` if the file exists (an absent file is an empty index). `None` when the file fails
    /// the check described in the module doc: the caller recovers the segment and rebuilds it.
    pub fn open(path: &Path, start_offset: Offset) -> io::Result<Option<TransactionIndex>> {
        let mut index = TransactionIndex {
            path: path.to_path_buf(),
            start_offset,
            file: None,
            entries: 0,
            last_offset: None,
        };
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(index)),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        if len % ENTRY_SIZE as u64 != 0 {
            return Ok(None);
        }
        index.file = Some(Arc::new(file));
        index.entries = len / ENTRY_SIZE as u64;
        let mut last: Option<Offset> = None;
        let mut plausible = true;
        let scanned = index.for_each(|e| {
            plausible = e.last_offset >= start_offset
                && e.first_offset <= e.last_offset
                && last.is_none_or(|l| e.last_offset > l);
            last = Some(e.last_offset);
            plausible
        });
        match scanned {
            Ok(()) if plausible => {
                index.last_offset = last;
                Ok(Some(index))
            }
            Ok(()) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// An empty index at `path`, deleting whatever file was there.
    pub fn create(path: &Path, start_offset: Offset) -> io::Result<TransactionIndex> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(TransactionIndex {
            path: path.to_path_buf(),
            start_offset,
            file: None,
            entries: 0,
            last_offset: None,
        })
    }

    /// Appends an entry; its last offset must be beyond every entry's so far (Kafka refuses it too). Creates the
    /// file on the first entry, making its directory entry durable. Does not fsync the data.
    pub fn append(&mut self, txn: &AbortedTxn) -> io::Result<()> {
        if self.last_offset.is_some_and(|last| txn.last_offset <= last) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: aborted transaction ending at {} does not follow the last one, at {:?}",
                    self.path.display(),
                    txn.last_offset,
                    self.last_offset
                ),
            ));
        }
        let file = match &self.file {
            Some(file) => Arc::clone(file),
            None => {
                let file = Arc::new(
                    OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .open(&self.path)?,
                );
                if let Some(dir) = self.path.parent() {
                    super::checkpoint::sync_dir(dir)?;
                }
                self.file = Some(Arc::clone(&file));
                file
            }
        };
        let pos = self.entries * ENTRY_SIZE as u64;
        if let Err(e) = file.write_all_at(&txn.encode(), pos) {
            // No torn entry may stay behind: a later append would land after it.
            let _ = file.set_len(pos);
            return Err(e);
        }
        self.entries += 1;
        self.last_offset = Some(txn.last_offset);
        Ok(())
    }

    /// The aborted transactions that overlap `[fetch_offset, upper_bound)`: `last_offset >= fetch_offset` and
    /// `first_offset < upper_bound` (Kafka's `collectAbortedTxns`).
    pub fn collect(&self, fetch_offset: Offset, upper_bound: Offset) -> io::Result<TxnIndexSearch> {
        let mut aborted = Vec::new();
        let mut complete = false;
        self.for_each(|txn| {
            if txn.last_offset >= fetch_offset && txn.first_offset < upper_bound {
                aborted.push(txn);
            }
            complete = txn.last_stable_offset >= upper_bound;
            !complete
        })?;
        Ok(TxnIndexSearch { aborted, complete })
    }

    /// Every entry, in order.
    pub fn all(&self) -> io::Result<Vec<AbortedTxn>> {
        let mut all = Vec::new();
        self.for_each(|txn| {
            all.push(txn);
            true
        })?;
        Ok(all)
    }

    /// Calls `f` for each entry in order until it returns `false`. An entry that does not decode is InvalidData.
    fn for_each(&self, mut f: impl FnMut(AbortedTxn) -> bool) -> io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let mut buf = Vec::new();
        let mut next = 0u64;
        while next < self.entries {
            let count = (self.entries - next).min(ENTRIES_PER_READ as u64) as usize;
            buf.resize(count * ENTRY_SIZE, 0);
            file.read_exact_at(&mut buf, next * ENTRY_SIZE as u64)?;
            for chunk in buf.chunks_exact(ENTRY_SIZE) {
                let Some(entry) = AbortedTxn::decode(chunk) else {
                    return Err(damaged(&self.path, "entry of an unknown version"));
                };
                if !f(entry) {
                    return Ok(());
                }
            }
            next += count as u64;
        }
        Ok(())
    }

    /// Drops the entries whose marker is at or after `offset`, for a log cut there.
    pub fn truncate_to(&mut self, offset: Offset) -> io::Result<()> {
        let mut kept = 0u64;
        let mut last = None;
        self.for_each(|txn| {
            let keep = txn.last_offset < offset;
            if keep {
                kept += 1;
                last = Some(txn.last_offset);
            }
            keep
        })?;
        if kept < self.entries {
            if let Some(file) = &self.file {
                file.set_len(kept * ENTRY_SIZE as u64)?;
            }
            self.entries = kept;
            self.last_offset = last;
        }
        Ok(())
    }

    /// Forgets every entry (the segment is being recovered and its entries rebuilt).
    pub fn reset(&mut self) -> io::Result<()> {
        if let Some(file) = &self.file {
            file.set_len(0)?;
        }
        self.entries = 0;
        self.last_offset = None;
        Ok(())
    }

    pub fn flush(&self) -> io::Result<()> {
        match &self.file {
            Some(file) => file.sync_data(),
            None => Ok(()),
        }
    }

    /// The open file, once there is one, for group commit to fsync.
    pub fn file(&self) -> Option<&Arc<File>> {
        self.file.as_ref()
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }

    pub fn start_offset(&self) -> Offset {
        self.start_offset
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(producer: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: ProducerId(producer),
            first_offset: Offset(first),
            last_offset: Offset(last),
            last_stable_offset: Offset(lso),
        }
    }

    fn path(dir: &Path) -> PathBuf {
        dir.join("00000000000000000100.txnindex")
    }

    #[test]
    fn appends_collects_and_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut index = TransactionIndex::create(&path(dir.path()), Offset(100)).expect("create");
        assert!(!path(dir.path()).exists(), "no file before the first entry");
        assert_eq!(
            index.collect(Offset(0), Offset(1_000)).expect("collect"),
            TxnIndexSearch {
                aborted: vec![],
                complete: false
            }
        );
        let entries = [
            txn(1, 100, 110, 111),
            txn(2, 105, 120, 115),
            txn(3, 115, 130, 131),
            txn(4, 140, 150, 151),
        ];
        for e in &entries {
            index.append(e).expect("append");
        }
        assert!(index.append(&txn(5, 140, 150, 151)).is_err());
        assert_eq!(
            std::fs::metadata(path(dir.path())).expect("file").len(),
            4 * ENTRY_SIZE as u64
        );
        // Overlapping [112, 125): producer 1 ended before it; 4 starts after it. The search stops at producer 3,
        // whose LastStableOffset passed the bound, without looking at 4.
        let found = index.collect(Offset(112), Offset(125)).expect("collect");
        assert_eq!(found.aborted, vec![entries[1], entries[2]]);
        assert!(found.complete);
        let found = index.collect(Offset(0), Offset(1_000)).expect("collect");
        assert_eq!(found.aborted, entries.to_vec());
        assert!(!found.complete);

        index.flush().expect("flush");
        drop(index);
        let index = TransactionIndex::open(&path(dir.path()), Offset(100))
            .expect("io")
            .expect("valid");
        assert_eq!(index.entries(), 4);
        assert_eq!(index.all().expect("all"), entries.to_vec());
    }

    #[test]
    fn truncation_and_reset_drop_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut index = TransactionIndex::create(&path(dir.path()), Offset(100)).expect("create");
        for e in [txn(1, 100, 110, 111), txn(2, 111, 120, 121)] {
            index.append(&e).expect("append");
        }
        index.truncate_to(Offset(121)).expect("truncate");
        assert_eq!(index.entries(), 2);
        // A cut at the second marker drops it; the one before may be followed again.
        index.truncate_to(Offset(120)).expect("truncate");
        assert_eq!(index.all().expect("all"), vec![txn(1, 100, 110, 111)]);
        index.append(&txn(3, 112, 115, 116)).expect("append");
        assert_eq!(index.entries(), 2);
        index.reset().expect("reset");
        assert_eq!(index.entries(), 0);
        index
            .append(&txn(1, 100, 101, 102))
            .expect("append after reset");
        drop(index);
        let index = TransactionIndex::open(&path(dir.path()), Offset(100))
            .expect("io")
            .expect("valid");
        assert_eq!(index.all().expect("all"), vec![txn(1, 100, 101, 102)]);
    }

    #[test]
    fn damaged_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = path(dir.path());
        let mut index = TransactionIndex::create(&p, Offset(100)).expect("create");
        for e in [txn(1, 100, 110, 111), txn(2, 111, 120, 121)] {
            index.append(&e).expect("append");
        }
        drop(index);
        let good = std::fs::read(&p).expect("read");
        let refused = |bytes: &[u8]| {
            std::fs::write(&p, bytes).expect("write");
            TransactionIndex::open(&p, Offset(100))
                .expect("io")
                .is_none()
        };
        // A torn last entry.
        assert!(refused(&good[..good.len() - 3]));
        // A zeroed tail, as a crash leaves an extended file whose data never reached the disk.
        let mut zeroed = good.clone();
        zeroed.extend_from_slice(&[0u8; ENTRY_SIZE]);
        assert!(refused(&zeroed));
        // An unknown version.
        let mut version = good.clone();
        version[ENTRY_SIZE] = 7;
        assert!(refused(&version));
        // Out of order.
        let mut swapped = good[ENTRY_SIZE..].to_vec();
        swapped.extend_from_slice(&good[..ENTRY_SIZE]);
        assert!(refused(&swapped));
        assert!(!refused(&good));
        // Below the segment's base offset.
        std::fs::write(&p, &good).expect("write");
        assert!(TransactionIndex::open(&p, Offset(115))
            .expect("io")
            .is_none());
    }
}
