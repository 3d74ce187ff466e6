//! The log cleaner's key -> latest offset map, in memory of a fixed size (Kafka's `SkimpyOffsetMap`, sized by
//! `log.cleaner.dedupe.buffer.size`).
//!
//! Keys are not stored: each is reduced to a 128-bit digest (two independently keyed SipHash-1-3 passes), the
//! width Kafka gets from MD5, so that two keys colliding, which would make the cleaner drop a live record, is
//! out of practical reach. Slots are (digest, offset + 1) in a flat open-addressing table with linear probing;
//! an all-zero slot is empty, so the table is allocated zeroed and only the pages used ever become resident.
//! The map refuses inserts beyond Kafka's load factor (0.9), and the cleaner then cleans only up to the last
//! offset it managed to map.

use std::hash::{Hash, Hasher};

use crate::ids::Offset;

/// Bytes per slot: a 128-bit digest and an offset.
const SLOT_BYTES: usize = 24;
/// `log.cleaner.io.buffer.load.factor`.
const LOAD_FACTOR: f64 = 0.9;

pub struct OffsetMap {
    slots: Vec<[u64; 3]>,
    used: usize,
    max_used: usize,
    latest: Option<Offset>,
}

impl OffsetMap {
    /// A map in `memory_bytes` of memory (at least one slot).
    pub fn with_memory(memory_bytes: usize) -> OffsetMap {
        let count = (memory_bytes / SLOT_BYTES).max(2);
        OffsetMap {
            slots: vec![[0u64; 3]; count],
            used: 0,
            max_used: ((count as f64 * LOAD_FACTOR) as usize).clamp(1, count - 1),
            latest: None,
        }
    }

    fn digest(key: &[u8]) -> [u64; 2] {
        let mut out = [0u64; 2];
        for (i, part) in out.iter_mut().enumerate() {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (i as u8).hash(&mut hasher);
            key.hash(&mut hasher);
            *part = hasher.finish();
        }
        // An all-zero slot means empty; no digest may look like one.
        if out == [0, 0] {
            out[0] = 1;
        }
        out
    }

    fn probe(&self, digest: [u64; 2]) -> usize {
        let len = self.slots.len();
        let mut i = (digest[0] as usize) % len;
        loop {
            let slot = &self.slots[i];
            if slot[2] == 0 || (slot[0] == digest[0] && slot[1] == digest[1]) {
                return i;
            }
            i = (i + 1) % len;
        }
    }

    /// Records `offset` as the latest for `key`. `false` when the map is full and the key is new: nothing changed.
    pub fn put(&mut self, key: &[u8], offset: Offset) -> bool {
        let digest = Self::digest(key);
        let i = self.probe(digest);
        if self.slots[i][2] == 0 {
            if self.used >= self.max_used {
                return false;
            }
            self.used += 1;
        }
        self.slots[i] = [digest[0], digest[1], offset.0 as u64 + 1];
        self.latest = Some(self.latest.map_or(offset, |l| l.max(offset)));
        true
    }

    /// The latest offset recorded for `key`.
    pub fn get(&self, key: &[u8]) -> Option<Offset> {
        let slot = self.slots[self.probe(Self::digest(key))];
        (slot[2] != 0).then(|| Offset(slot[2] as i64 - 1))
    }

    pub fn len(&self) -> usize {
        self.used
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// The largest offset put so far.
    pub fn latest_offset(&self) -> Option<Offset> {
        self.latest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_offset_per_key() {
        let mut map = OffsetMap::with_memory(24 * 100);
        assert!(map.put(b"a", Offset(1)));
        assert!(map.put(b"b", Offset(2)));
        assert!(map.put(b"a", Offset(3)));
        assert_eq!(map.get(b"a"), Some(Offset(3)));
        assert_eq!(map.get(b"b"), Some(Offset(2)));
        assert_eq!(map.get(b"c"), None);
        assert_eq!(map.len(), 2);
        assert_eq!(map.latest_offset(), Some(Offset(3)));
    }

    #[test]
    fn refuses_new_keys_when_full_but_updates_old_ones() {
        let mut map = OffsetMap::with_memory(24 * 10);
        let mut accepted = 0;
        for i in 0..100 {
            if map.put(format!("k{i}").as_bytes(), Offset(i)) {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 9);
        assert!(map.put(b"k0", Offset(500)));
        assert_eq!(map.get(b"k0"), Some(Offset(500)));
    }
}
