//! The memory-mapped file under both indexes: fixed-size entries, preallocated while the segment is active and
//! trimmed to its entries when it is not (Kafka's AbstractIndex). The entry count lives in memory; on open it is
//! the file length divided by the entry size, which is why a clean close trims the file.
//!
//! What the two indexes share lives here: the file, the offsets stored relative to the segment's base offset, the
//! binary search over sorted entries, the entry-by-entry sanity check and truncation. Each index's module holds its
//! entry format ([`IndexEntry`]) and what its lookups mean.

use std::fs::{File, OpenOptions};
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

use crate::ids::Offset;

/// One entry of an index file, as stored: `SIZE` big-endian bytes holding, among the rest, an offset relative to
/// the segment's base offset.
pub trait IndexEntry: Copy {
    const SIZE: usize;

    /// Reads an entry from exactly `SIZE` bytes.
    fn decode(bytes: &[u8], base_offset: Offset) -> Self;

    /// Writes the entry into exactly `SIZE` bytes, its offset given as `relative_offset`.
    fn encode(&self, relative_offset: u32, out: &mut [u8]);

    /// The log offset the entry points at.
    fn offset(&self) -> Offset;
}

pub struct IndexFile<E> {
    path: PathBuf,
    file: File,
    /// `None` while the file is empty: a zero-length mapping is not portable.
    mmap: Option<MmapMut>,
    base_offset: Offset,
    entries: usize,
    max_entries: usize,
    entry: PhantomData<E>,
}

impl<E: IndexEntry> IndexFile<E> {
    /// Opens or creates the index at `path`. `None` when the file length is not a whole number of entries, which
    /// can only mean damage: the caller rebuilds it via [`IndexFile::create`].
    pub fn open(
        path: &Path,
        base_offset: Offset,
        max_bytes: u32,
        preallocate: bool,
    ) -> io::Result<Option<IndexFile<E>>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = usize::try_from(file.metadata()?.len()).map_err(io::Error::other)?;
        if len % E::SIZE != 0 {
            return Ok(None);
        }
        let mut index = IndexFile {
            path: path.to_path_buf(),
            file,
            mmap: None,
            base_offset,
            entries: len / E::SIZE,
            max_entries: len / E::SIZE,
            entry: PhantomData,
        };
        if preallocate {
            index.resize(max_bytes)?;
        } else {
            index.remap()?;
        }
        Ok(Some(index))
    }

    /// Deletes whatever is at `path` and starts an empty index there.
    pub fn create(
        path: &Path,
        base_offset: Offset,
        max_bytes: u32,
        preallocate: bool,
    ) -> io::Result<IndexFile<E>> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut index = Self::open(path, base_offset, max_bytes, preallocate)?
            .ok_or_else(|| io::Error::other("fresh index file is not empty"))?;
        index.entries = 0;
        Ok(index)
    }

    fn remap(&mut self) -> io::Result<()> {
        self.mmap = None;
        let len = self.max_entries * E::SIZE;
        if len > 0 {
            // SAFETY: the partition directory belongs to this broker alone and the file is only resized through
            // `self`, after dropping the old mapping; nobody truncates it under us while it is mapped.
            self.mmap = Some(unsafe { MmapMut::map_mut(&self.file)? });
        }
        Ok(())
    }

    /// Sets the file to hold at most `max_bytes` (rounded down to whole entries), never fewer than the current
    /// entries.
    pub fn resize(&mut self, max_bytes: u32) -> io::Result<()> {
        let wanted = (max_bytes as usize / E::SIZE).max(self.entries);
        self.mmap = None;
        self.file.set_len((wanted * E::SIZE) as u64)?;
        self.max_entries = wanted;
        self.remap()
    }

    /// Shrinks the file to exactly its entries, for a segment that takes no more appends.
    pub fn trim(&mut self) -> io::Result<()> {
        if self.max_entries == self.entries {
            return Ok(());
        }
        self.flush()?;
        self.mmap = None;
        self.file.set_len((self.entries * E::SIZE) as u64)?;
        self.max_entries = self.entries;
        self.remap()
    }

    pub fn entries(&self) -> usize {
        self.entries
    }

    pub(super) fn max_entries(&self) -> usize {
        self.max_entries
    }

    pub(super) fn base_offset(&self) -> Offset {
        self.base_offset
    }

    /// The n-th entry.
    pub fn entry(&self, n: usize) -> Option<E> {
        if n >= self.entries {
            return None;
        }
        let start = n * E::SIZE;
        let bytes = self.mmap.as_ref()?.get(start..start + E::SIZE)?;
        Some(E::decode(bytes, self.base_offset))
    }

    pub fn last_entry(&self) -> Option<E> {
        self.entries.checked_sub(1).and_then(|n| self.entry(n))
    }

    /// `offset` relative to the base offset, if an entry can hold it: `0..=i32::MAX`, so that Kafka's signed reader
    /// agrees.
    fn relative_offset(&self, offset: Offset) -> Option<u32> {
        u32::try_from(offset.0 - self.base_offset.0)
            .ok()
            .filter(|relative| *relative <= i32::MAX as u32)
    }

    /// Appends `entry`; nothing is written when the file is full or the entry's offset is out of the segment's
    /// range (a missing sparse entry only lengthens a scan). Ordering is the caller's to check.
    pub(super) fn push(&mut self, entry: E) {
        let Some(relative) = self.relative_offset(entry.offset()) else {
            return;
        };
        if self.entries >= self.max_entries {
            return;
        }
        let start = self.entries * E::SIZE;
        let Some(slot) = self
            .mmap
            .as_mut()
            .and_then(|m| m.get_mut(start..start + E::SIZE))
        else {
            return;
        };
        entry.encode(relative, slot);
        self.entries += 1;
    }

    /// The last entry for which `at_or_below` holds, given that it holds for a prefix of the (sorted) entries.
    pub(super) fn last_entry_where(&self, at_or_below: impl Fn(&E) -> bool) -> Option<E> {
        let (mut lo, mut hi) = (0usize, self.entries);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.entry(mid) {
                Some(e) if at_or_below(&e) => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo.checked_sub(1).and_then(|n| self.entry(n))
    }

    /// Whether every entry reads, has its offset inside the segment's range and passes `plausible(entry,
    /// previous entry)`. Linear in the index, which is the price of an index without a checksum.
    pub(super) fn all_entries_plausible(&self, plausible: impl Fn(E, Option<E>) -> bool) -> bool {
        let mut previous = None;
        for n in 0..self.entries {
            let Some(entry) = self.entry(n) else {
                return false;
            };
            if self.relative_offset(entry.offset()).is_none() || !plausible(entry, previous) {
                return false;
            }
            previous = Some(entry);
        }
        true
    }

    /// Keeps the leading entries for which `keep` holds and drops the rest, for a log cut short.
    pub(super) fn retain_while(&mut self, keep: impl Fn(&E) -> bool) {
        let kept = (0..self.entries)
            .take_while(|n| self.entry(*n).is_some_and(|e| keep(&e)))
            .count();
        self.truncate_entries(kept);
    }

    /// Forgets entries from `n` on and zeroes them, so that a crash before the next trim cannot resurrect them.
    pub fn truncate_entries(&mut self, n: usize) {
        if n >= self.entries {
            return;
        }
        let (from, to) = (n * E::SIZE, self.entries * E::SIZE);
        if let Some(stale) = self.mmap.as_mut().and_then(|m| m.get_mut(from..to)) {
            stale.fill(0);
        }
        self.entries = n;
    }

    pub fn flush(&self) -> io::Result<()> {
        match &self.mmap {
            Some(m) => m.flush(),
            None => Ok(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
