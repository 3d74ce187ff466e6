//! The two small files that tell recovery how much of a partition directory it may trust.
//!
//! * `recovery-point.checkpoint`: text, two lines: the format version (`0`) and the recovery point, an offset below
//!   which every segment's log and indexes are known to be on disk. Kafka keeps the same number for all partitions
//!   of a log directory in one `recovery-point-offset-checkpoint`; we keep one per partition so that a partition
//!   directory is self-contained. It is replaced atomically (write a temporary file, fsync, rename, fsync the
//!   directory), so a crash leaves the old or the new value. A missing or unreadable file means recovery point 0:
//!   recovery re-validates everything, which is slow but never wrong.
//! * `clean-shutdown`: an empty marker written by a clean close after everything was flushed, and removed on open.
//!   If it is present the segments are trusted as they are (their indexes are still sanity-checked); if it is
//!   absent, every segment from the recovery point on is re-validated batch by batch and its indexes rebuilt.
//! * `log-start-offset.checkpoint`: same format, the LogStartOffset (Kafka's `log-start-offset-checkpoint`, kept per
//!   partition). DeleteRecords and retention move it; it may lie inside the first segment. Written before any
//!   segment below it is deleted, so after a crash it never points below data that is gone.
//! * `cleaner-offset.checkpoint`: same format, the first dirty offset: the log cleaner has compacted everything below
//!   it (Kafka's `cleaner-offset-checkpoint`).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::ids::Offset;

pub const RECOVERY_POINT_FILE: &str = "recovery-point.checkpoint";
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset.checkpoint";
pub const CLEANER_OFFSET_FILE: &str = "cleaner-offset.checkpoint";
pub const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
const VERSION: &str = "0";
const TMP_SUFFIX: &str = ".tmp";

/// The recovery point recorded in `dir`, or `None` if there is none or it cannot be read.
pub fn read_recovery_point(dir: &Path) -> Option<Offset> {
    read_offset(dir, RECOVERY_POINT_FILE)
}

/// Atomically replaces the recovery point in `dir`.
pub fn write_recovery_point(dir: &Path, offset: Offset) -> io::Result<()> {
    write_offset(dir, RECOVERY_POINT_FILE, offset)
}

/// The offset in one of the checkpoint files, or `None` if absent or unreadable.
pub fn read_offset(dir: &Path, file: &str) -> Option<Offset> {
    let text = fs::read_to_string(dir.join(file)).ok()?;
    let mut lines = text.lines();
    if lines.next()? != VERSION {
        return None;
    }
    let offset = lines.next()?.trim().parse::<i64>().ok()?;
    (offset >= 0).then_some(Offset(offset))
}

/// Atomically replaces one of the checkpoint files.
pub fn write_offset(dir: &Path, file: &str, offset: Offset) -> io::Result<()> {
    let path = dir.join(file);
    let tmp = dir.join(format!("{file}{TMP_SUFFIX}"));
    {
        let mut f = File::create(&tmp)?;
        write!(f, "{VERSION}\n{}\n", offset.0)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &path)?;
    sync_dir(dir)
}

pub fn has_clean_shutdown_marker(dir: &Path) -> bool {
    dir.join(CLEAN_SHUTDOWN_FILE).is_file()
}

pub fn write_clean_shutdown_marker(dir: &Path) -> io::Result<()> {
    File::create(dir.join(CLEAN_SHUTDOWN_FILE))?.sync_all()?;
    sync_dir(dir)
}

/// Removes the marker; once the log may change, a crash must not look clean.
pub fn remove_clean_shutdown_marker(dir: &Path) -> io::Result<()> {
    match fs::remove_file(dir.join(CLEAN_SHUTDOWN_FILE)) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether `name` is a temporary file a crash may have left behind.
pub fn is_leftover_temp(name: &str) -> bool {
    name.ends_with(TMP_SUFFIX)
}

/// Makes created, renamed and deleted directory entries durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_point_round_trips_and_tolerates_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_recovery_point(dir.path()), None);
        write_recovery_point(dir.path(), Offset(1234)).expect("write");
        assert_eq!(read_recovery_point(dir.path()), Some(Offset(1234)));
        fs::write(dir.path().join(RECOVERY_POINT_FILE), b"\xff\x00junk").expect("write");
        assert_eq!(read_recovery_point(dir.path()), None);
    }

    #[test]
    fn marker_comes_and_goes() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!has_clean_shutdown_marker(dir.path()));
        write_clean_shutdown_marker(dir.path()).expect("write");
        assert!(has_clean_shutdown_marker(dir.path()));
        remove_clean_shutdown_marker(dir.path()).expect("remove");
        remove_clean_shutdown_marker(dir.path()).expect("idempotent");
        assert!(!has_clean_shutdown_marker(dir.path()));
    }
}
