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

use super::index_file::{IndexEntry, IndexFile};
use crate::ids::Offset;

pub const ENTRY_SIZE: usize = 8;

/// Entries are (absolute offset, position).
pub type OffsetIndex = IndexFile<(Offset, u32)>;

impl IndexEntry for (Offset, u32) {
    const SIZE: usize = ENTRY_SIZE;

    fn decode(e: &[u8], base_offset: Offset) -> Self {
        let relative = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
        let position = u32::from_be_bytes([e[4], e[5], e[6], e[7]]);
        (Offset(base_offset.0 + i64::from(relative)), position)
    }

    fn encode(&self, relative_offset: u32, out: &mut [u8]) {
        out[..4].copy_from_slice(&relative_offset.to_be_bytes());
        out[4..].copy_from_slice(&self.1.to_be_bytes());
    }

    fn offset(&self) -> Offset {
        self.0
    }
}

impl OffsetIndex {
    pub fn is_full(&self) -> bool {
        self.entries() >= self.max_entries()
    }

    /// Adds an entry if it keeps the index strictly increasing and there is room; otherwise leaves the index as is
    /// (a missing sparse entry only lengthens a scan).
    pub fn append(&mut self, offset: Offset, position: u32) {
        if let Some((last_offset, last_position)) = self.last_entry() {
            if offset <= last_offset || position <= last_position {
                return;
            }
        }
        self.push((offset, position));
    }

    /// The last entry whose offset is at most `target`, or the segment start. Scanning forward from the returned
    /// position reaches the batch holding `target`, if the segment has it.
    pub fn lookup(&self, target: Offset) -> (Offset, u32) {
        self.last_entry_where(|(o, _)| *o <= target)
            .unwrap_or((self.base_offset(), 0))
    }

    /// Whether the entries are plausible for a log of `log_size` bytes: strictly increasing offsets and positions,
    /// every position inside the log.
    pub fn sanity_check(&self, log_size: u64) -> bool {
        self.all_entries_plausible(|(offset, position), previous| {
            u64::from(position) < log_size
                && previous.is_none_or(|(po, pp)| offset > po && position > pp)
        })
    }

    /// Drops the entries pointing at or after byte `position`, for a log cut there.
    pub fn truncate_to_position(&mut self, position: u64) {
        self.retain_while(|(_, p)| u64::from(*p) < position);
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
