//! The time index: `<base offset>.timeindex`, mapping timestamps to offsets in the segment.
//!
//! Format: a flat array of 12-byte entries, no header, big-endian:
//!
//! ```text
//! timestamp       i64   a max timestamp reached by the segment
//! relative offset u32   last offset of the first batch whose max timestamp reached it, minus the base offset
//! ```
//!
//! An entry `(t, o)` says: no batch before the one ending at `o` holds a timestamp of `t` or more, and that batch
//! holds `t`. Entries are written alongside offset index entries (every `index.interval.bytes` of log) but only
//! when the segment's max timestamp has grown since the last entry, so timestamps are strictly increasing and
//! offsets never decrease. When the segment becomes inactive (roll or close) one last entry records its final max
//! timestamp, which is how a reopened segment knows its largest timestamp without reading its log; to make room
//! for it, the index counts as full one entry early.
//!
//! To find the first record at or after time `T`: take the last entry with a timestamp at most `T`, look its
//! offset up in the offset index, and scan forward from there. Preallocation, trimming and crash behaviour are those
//! of the offset index: a damaged index (bad length, timestamps not increasing, offsets out of range) is rebuilt
//! from the log.

use super::index_file::{IndexEntry, IndexFile};
use crate::ids::Offset;

pub const ENTRY_SIZE: usize = 12;

/// Entries are (timestamp, absolute offset).
pub type TimeIndex = IndexFile<(i64, Offset)>;

impl IndexEntry for (i64, Offset) {
    const SIZE: usize = ENTRY_SIZE;

    fn decode(e: &[u8], base_offset: Offset) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&e[..8]);
        let relative = u32::from_be_bytes([e[8], e[9], e[10], e[11]]);
        (
            i64::from_be_bytes(ts),
            Offset(base_offset.0 + i64::from(relative)),
        )
    }

    fn encode(&self, relative_offset: u32, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.0.to_be_bytes());
        out[8..].copy_from_slice(&relative_offset.to_be_bytes());
    }

    fn offset(&self) -> Offset {
        self.1
    }
}

impl TimeIndex {
    /// Full one entry early, keeping a slot for the final entry written when the segment becomes inactive.
    pub fn is_full(&self) -> bool {
        self.entries() + 1 >= self.max_entries()
    }

    /// Adds `(timestamp, offset)` if the timestamp is above the last entry's and the offset not below it.
    pub fn maybe_append(&mut self, timestamp: i64, offset: Offset) {
        // An empty index behaves as if its last entry were (NO_TIMESTAMP, base): records without a timestamp are
        // never indexed.
        let (last_ts, last_offset) = self.last_entry().unwrap_or((-1, self.base_offset()));
        if timestamp <= last_ts || offset < last_offset {
            return;
        }
        self.push((timestamp, offset));
    }

    /// The offset of the last entry whose timestamp is at most `target_ms`; `None` means scan from the segment start.
    pub fn lookup(&self, target_ms: i64) -> Option<Offset> {
        self.last_entry_where(|(ts, _)| *ts <= target_ms)
            .map(|(_, offset)| offset)
    }

    /// Whether the entries are plausible for a segment holding offsets below `next_offset`: strictly increasing
    /// timestamps, non-decreasing offsets, every offset inside the segment.
    pub fn sanity_check(&self, next_offset: Offset) -> bool {
        self.all_entries_plausible(|(ts, offset), previous| {
            offset < next_offset && previous.is_none_or(|(pts, po)| ts > pts && offset >= po)
        })
    }

    /// Drops the entries for offsets at or after `offset`, for a log cut there.
    pub fn truncate_to_offset(&mut self, offset: Offset) {
        self.retain_while(|(_, o)| *o < offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_only_growing_timestamps_and_looks_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("00000000000000000050.timeindex");
        let mut idx = TimeIndex::create(&path, Offset(50), 12 * 10, true).expect("create");
        assert_eq!(idx.lookup(1_000), None);
        idx.maybe_append(1_000, Offset(55));
        idx.maybe_append(1_000, Offset(60)); // not growing: skipped
        idx.maybe_append(900, Offset(61)); // not growing: skipped
        idx.maybe_append(2_000, Offset(70));
        assert_eq!(idx.entries(), 2);
        assert_eq!(idx.lookup(999), None);
        assert_eq!(idx.lookup(1_000), Some(Offset(55)));
        assert_eq!(idx.lookup(1_999), Some(Offset(55)));
        assert_eq!(idx.lookup(5_000), Some(Offset(70)));
        assert!(idx.sanity_check(Offset(71)));
        assert!(!idx.sanity_check(Offset(70)));
    }

    #[test]
    fn keeps_a_slot_for_the_final_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("00000000000000000000.timeindex");
        let mut idx = TimeIndex::create(&path, Offset(0), 12 * 3, true).expect("create");
        idx.maybe_append(1, Offset(1));
        assert!(!idx.is_full());
        idx.maybe_append(2, Offset(2));
        assert!(idx.is_full());
        idx.maybe_append(3, Offset(3));
        assert_eq!(idx.last_entry(), Some((3, Offset(3))));
    }
}
