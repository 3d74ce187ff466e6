//! The memory-mapped file under both indexes: fixed-size entries, preallocated while the segment is active and
//! trimmed to its entries when it is not (Kafka's AbstractIndex). The entry count lives in memory; on open it is
//! the file length divided by the entry size, which is why a clean close trims the file.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

pub(crate) struct IndexFile {
    path: PathBuf,
    file: File,
    /// `None` while the file is empty: a zero-length mapping is not portable.
    mmap: Option<MmapMut>,
    entry_size: usize,
    entries: usize,
    max_entries: usize,
}

impl IndexFile {
    /// Opens or creates the index at `path`. `None` when the file length is not a whole number of entries, which
    /// can only mean damage: the caller rebuilds it.
    pub(crate) fn open(
        path: &Path,
        entry_size: usize,
        max_bytes: u32,
        preallocate: bool,
    ) -> io::Result<Option<IndexFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = usize::try_from(file.metadata()?.len()).map_err(io::Error::other)?;
        if len % entry_size != 0 {
            return Ok(None);
        }
        let mut index = IndexFile {
            path: path.to_path_buf(),
            file,
            mmap: None,
            entry_size,
            entries: len / entry_size,
            max_entries: len / entry_size,
        };
        if preallocate {
            index.resize(max_bytes)?;
        } else {
            index.remap()?;
        }
        Ok(Some(index))
    }

    /// Deletes whatever is at `path` and starts an empty index there.
    pub(crate) fn create(
        path: &Path,
        entry_size: usize,
        max_bytes: u32,
        preallocate: bool,
    ) -> io::Result<IndexFile> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut index = Self::open(path, entry_size, max_bytes, preallocate)?
            .ok_or_else(|| io::Error::other("fresh index file is not empty"))?;
        index.entries = 0;
        Ok(index)
    }

    fn remap(&mut self) -> io::Result<()> {
        self.mmap = None;
        let len = self.max_entries * self.entry_size;
        if len > 0 {
            // SAFETY: the partition directory belongs to this broker alone and the file is only resized through
            // `self`, after dropping the old mapping; nobody truncates it under us while it is mapped.
            self.mmap = Some(unsafe { MmapMut::map_mut(&self.file)? });
        }
        Ok(())
    }

    /// Sets the file to hold at most `max_bytes` (rounded down to whole entries), never fewer than the current
    /// entries.
    pub(crate) fn resize(&mut self, max_bytes: u32) -> io::Result<()> {
        let wanted = (max_bytes as usize / self.entry_size).max(self.entries);
        self.mmap = None;
        self.file.set_len((wanted * self.entry_size) as u64)?;
        self.max_entries = wanted;
        self.remap()
    }

    /// Shrinks the file to exactly its entries, for a segment that takes no more appends.
    pub(crate) fn trim(&mut self) -> io::Result<()> {
        if self.max_entries == self.entries {
            return Ok(());
        }
        self.flush()?;
        self.mmap = None;
        self.file.set_len((self.entries * self.entry_size) as u64)?;
        self.max_entries = self.entries;
        self.remap()
    }

    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    pub(crate) fn max_entries(&self) -> usize {
        self.max_entries
    }

    pub(crate) fn entry(&self, n: usize) -> Option<&[u8]> {
        if n >= self.entries {
            return None;
        }
        let start = n * self.entry_size;
        self.mmap.as_ref()?.get(start..start + self.entry_size)
    }

    /// Appends one entry; `false` (and nothing written) when the file is full.
    pub(crate) fn push(&mut self, entry: &[u8]) -> bool {
        if entry.len() != self.entry_size || self.entries >= self.max_entries {
            return false;
        }
        let start = self.entries * self.entry_size;
        let Some(slot) = self
            .mmap
            .as_mut()
            .and_then(|m| m.get_mut(start..start + entry.len()))
        else {
            return false;
        };
        slot.copy_from_slice(entry);
        self.entries += 1;
        true
    }

    /// Forgets entries from `n` on and zeroes them, so that a crash before the next trim cannot resurrect them.
    pub(crate) fn truncate_entries(&mut self, n: usize) {
        if n >= self.entries {
            return;
        }
        let (from, to) = (n * self.entry_size, self.entries * self.entry_size);
        if let Some(stale) = self.mmap.as_mut().and_then(|m| m.get_mut(from..to)) {
            stale.fill(0);
        }
        self.entries = n;
    }

    pub(crate) fn flush(&self) -> io::Result<()> {
        match &self.mmap {
            Some(m) => m.flush(),
            None => Ok(()),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
