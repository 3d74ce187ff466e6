//! The offset index: `<base offset>.index`, mapping offsets to byte positions in the segment's `.log`.
//!
//! Format: a flat array of 8-byte entries, no header, big-endian:
//!
//! ```text
//! relative offset u32   offset - segment base offset (0..=i32::MAX, so Kafka's signed reader agrees)
//! position        u32   byte position of a batch in the .log file
//! ```
//!
//! An entry `(o, p)` says: the batch starting at byte `p` ends at offset `o` (its last offset). The index is sparse:
//! a segment gets an entry for a batch only once more than `index.interval.bytes` of log were written since the
//! previous entry, so to find an offset one takes the last entry at or below it and scans batch headers forward
//! from its position. The first batch of a segment never needs one: position 0 is the implicit first entry.
//! Entries are strictly increasing in both fields.
//!
//! While its segment is active the file is preallocated to `segment.index.bytes` and memory-mapped; the number of
//! valid entries is kept in memory. Rolling or closing the segment trims the file to its entries, so a reader
//! can count entries from the file length. After a crash the active segment's index still has its preallocated
//! zero tail (or pages that never reached the disk) and is rebuilt from the log by recovery. Any index that fails
//! the sanity check on open (length not a whole number of entries, entries not increasing, positions past the end
//! of the log) is likewise rebuilt from its log rather than trusted.

use std::io;
use std::path::Path;

use super::index_file::IndexFile;
use super::Offset;

pub const ENTRY_SIZE: usize = 8;

pub struct OffsetIndex {
    file: IndexFile,
    base_offset: Offset,
}

impl OffsetIndex {
    /// `None` if the existing file is damaged beyond opening (caller rebuilds via [`OffsetIndex::create`]).
    pub fn open(
        path: &Path,
        base_offset: Offset,
        max_bytes: u32,
        preallocate: bool,
    ) -> io::Result<Option<OffsetIndex>> {
        Ok(IndexFile::open(path, ENTRY_SIZE, max_bytes, preallocate)?
            .map(|file| OffsetIndex { file, base_offset }))
    }

    pub fn create(
        path: &Path,
        base_offset: Offset,
        max_bytes: u32,
        preallocate: bool,
    ) -> io::Result<OffsetIndex> {
        let file = IndexFile::create(path, ENTRY_SIZE, max_bytes, preallocate)?;
        Ok(OffsetIndex { file, base_offset })
    }

    pub fn entries(&self) -> usize {
        self.file.entries()
    }

    pub fn is_full(&self) -> bool {
        self.file.entries() >= self.file.max_entries()
    }

    /// The n-th entry as (absolute offset, position).
    pub fn entry(&self, n: usize) -> Option<(Offset, u32)> {
        let e = self.file.entry(n)?;
        let relative = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
        let position = u32::from_be_bytes([e[4], e[5], e[6], e[7]]);
        Some((Offset(self.base_offset.0 + i64::from(relative)), position))
    }

    pub fn last_entry(&self) -> Option<(Offset, u32)> {
        self.entries().checked_sub(1).and_then(|n| self.entry(n))
    }

    /// Adds an entry if it keeps the index strictly increasing and there is room; otherwise leaves the index as is
    /// (a missing sparse entry only lengthens a scan).
    pub fn append(&mut self, offset: Offset, position: u32) {
        let Ok(relative) = u32::try_from(offset.0 - self.base_offset.0) else {
            return;
        };
        if relative > i32::MAX as u32 {
            return;
        }
        if let Some((last_offset, last_position)) = self.last_entry() {
            if offset <= last_offset || position <= last_position {
                return;
            }
        }
        let mut entry = [0u8; ENTRY_SIZE];
        entry[..4].copy_from_slice(&relative.to_be_bytes());
        entry[4..].copy_from_slice(&position.to_be_bytes());
        self.file.push(&entry);
    }

    /// The last entry whose offset is at most `target`, or the segment start. Scanning forward from the returned
    /// position reaches the batch holding `target`, if the segment has it.
    pub fn lookup(&self, target: Offset) -> (Offset, u32) {
        // Entries are sorted: binary search for the first entry above target.
        let (mut lo, mut hi) = (0usize, self.entries());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.entry(mid) {
                Some((o, _)) if o <= target => lo = mid + 1,
                _ => hi = mid,
            }
        }
        match lo.checked_sub(1).and_then(|n| self.entry(n)) {
            Some(found) => found,
            None => (self.base_offset, 0),
        }
    }

    /// Whether the entries are plausible for a log of `log_size` bytes: strictly increasing offsets and positions,
    /// every position inside the log. Linear in the index, which is the price of an index without a checksum.
    pub fn sanity_check(&self, log_size: u64) -> bool {
        let mut previous: Option<(Offset, u32)> = None;
        for n in 0..self.entries() {
            let Some((offset, position)) = self.entry(n) else {
                return false;
            };
            if offset.0 - self.base_offset.0 > i64::from(i32::MAX)
                || u64::from(position) >= log_size
            {
                return false;
            }
            if let Some((po, pp)) = previous {
                if offset <= po || position <= pp {
                    return false;
                }
            }
            previous = Some((offset, position));
        }
        true
    }

    /// Drops the entries pointing at or after byte `position`, for a log cut there.
    pub fn truncate_to_position(&mut self, position: u64) {
        let keep = (0..self.entries())
            .take_while(|n| self.entry(*n).is_some_and(|(_, p)| u64::from(p) < position))
            .count();
        self.file.truncate_entries(keep);
    }

    pub fn truncate_entries(&mut self, n: usize) {
        self.file.truncate_entries(n);
    }

    pub fn resize(&mut self, max_bytes: u32) -> io::Result<()> {
        self.file.resize(max_bytes)
    }

    pub fn trim(&mut self) -> io::Result<()> {
        self.file.trim()
    }

    pub fn flush(&self) -> io::Result<()> {
        self.file.flush()
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_last_entry_at_or_below() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("00000000000000000100.index");
        let mut idx = OffsetIndex::create(&path, Offset(100), 80, true).expect("create");
        assert_eq!(idx.lookup(Offset(150)), (Offset(100), 0));
        for (o, p) in [(110, 4000), (120, 8000), (130, 12000)] {
            idx.append(Offset(o), p);
        }
        idx.append(Offset(125), 13000); // not increasing: ignored
        assert_eq!(idx.entries(), 3);
        assert_eq!(idx.lookup(Offset(100)), (Offset(100), 0));
        assert_eq!(idx.lookup(Offset(109)), (Offset(100), 0));
        assert_eq!(idx.lookup(Offset(110)), (Offset(110), 4000));
        assert_eq!(idx.lookup(Offset(125)), (Offset(120), 8000));
        assert_eq!(idx.lookup(Offset(999)), (Offset(130), 12000));
        assert!(idx.sanity_check(20000));
        assert!(!idx.sanity_check(12000));
    }

    #[test]
    fn fills_up_trims_and_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("00000000000000000000.index");
        let mut idx = OffsetIndex::create(&path, Offset(0), 8 * 4 + 3, true).expect("create");
        for n in 1..=5 {
            idx.append(Offset(n * 10), (n * 100) as u32);
        }
        assert!(idx.is_full());
        assert_eq!(idx.entries(), 4);
        idx.trim().expect("trim");
        drop(idx);
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), 32);
        let idx = OffsetIndex::open(&path, Offset(0), 1024, false)
            .expect("open")
            .expect("whole entries");
        assert_eq!(idx.last_entry(), Some((Offset(40), 400)));
    }

    #[test]
    fn damaged_files_are_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("00000000000000000000.index");
        std::fs::write(&path, [0u8; 13]).expect("write");
        assert!(OffsetIndex::open(&path, Offset(0), 1024, false)
            .expect("io")
            .is_none());
        let mut bytes = Vec::new();
        for (o, p) in [(5u32, 100u32), (9, 200), (0, 0)] {
            bytes.extend_from_slice(&o.to_be_bytes());
            bytes.extend_from_slice(&p.to_be_bytes());
        }
        std::fs::write(&path, &bytes).expect("write");
        let idx = OffsetIndex::open(&path, Offset(0), 1024, false)
            .expect("io")
            .expect("whole entries");
        assert!(!idx.sanity_check(1_000));
    }
}
