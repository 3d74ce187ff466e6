//! Snapshot files in `<metadata log dir>/snapshots/`. As in KRaft, a snapshot is the list of
//! records that rebuild the state, plus the Raft position it was taken at. Files are named like
//! KRaft's checkpoints, `<end offset>-<epoch>.checkpoint` (end offset = last included index + 1),
//! so the newest sorts last; they are written to a temp file, fsynced, renamed and the directory
//! fsynced, so a crash leaves either the old snapshot or the new one, never half of one.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::raft_types::SnapshotMeta;
use crate::record::MetadataRecord;

const FORMAT_VERSION: u32 = 1;
const SUFFIX: &str = ".checkpoint";
const TEMP_SUFFIX: &str = ".checkpoint.tmp";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("snapshot {what}: {source}")]
    Codec {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("snapshot {0} has format version {1}; this build reads version {FORMAT_VERSION}")]
    UnknownFormat(String, u32),
    #[error("snapshot task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A snapshot's contents; also the bytes openraft ships to followers that fell behind the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotFile {
    pub(crate) format_version: u32,
    pub(crate) meta: SnapshotMeta,
    pub(crate) records: Vec<MetadataRecord>,
}

impl SnapshotFile {
    pub(crate) fn new(meta: SnapshotMeta, records: Vec<MetadataRecord>) -> SnapshotFile {
        SnapshotFile {
            format_version: FORMAT_VERSION,
            meta,
            records,
        }
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>, SnapshotError> {
        serde_json::to_vec(self).map_err(|source| SnapshotError::Codec {
            what: self.meta.snapshot_id.clone(),
            source,
        })
    }

    pub(crate) fn decode(what: &str, bytes: &[u8]) -> Result<SnapshotFile, SnapshotError> {
        let file: SnapshotFile =
            serde_json::from_slice(bytes).map_err(|source| SnapshotError::Codec {
                what: what.to_string(),
                source,
            })?;
        if file.format_version != FORMAT_VERSION {
            return Err(SnapshotError::UnknownFormat(
                what.to_string(),
                file.format_version,
            ));
        }
        Ok(file)
    }

    fn file_name(&self) -> String {
        let (end_offset, epoch) = match &self.meta.last_log_id {
            Some(id) => (id.index + 1, id.leader_id.term),
            None => (0, 0),
        };
        format!("{end_offset:020}-{epoch:010}{SUFFIX}")
    }
}

#[derive(Clone, Debug)]
pub(crate) struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    /// Creates the directory and removes temp files a crash left behind.
    pub(crate) fn open(dir: PathBuf) -> Result<SnapshotStore, SnapshotError> {
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        for entry in fs::read_dir(&dir).map_err(io_error(&dir))? {
            let path = entry.map_err(io_error(&dir))?.path();
            if has_suffix(&path, TEMP_SUFFIX) {
                fs::remove_file(&path).map_err(io_error(&path))?;
            }
        }
        Ok(SnapshotStore { dir })
    }

    /// Writes the snapshot durably, then removes the snapshots it supersedes.
    pub(crate) fn save(&self, file: &SnapshotFile, bytes: &[u8]) -> Result<(), SnapshotError> {
        let name = file.file_name();
        let path = self.dir.join(&name);
        let temp = self.dir.join(format!("{name}.tmp"));
        {
            let mut out = fs::File::create(&temp).map_err(io_error(&temp))?;
            out.write_all(bytes).map_err(io_error(&temp))?;
            out.sync_all().map_err(io_error(&temp))?;
        }
        fs::rename(&temp, &path).map_err(io_error(&path))?;
        // The rename is durable only once the directory entry is.
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(&self.dir))?;
        for old in self.snapshot_paths()? {
            if old.file_name() < path.file_name() {
                if let Err(error) = fs::remove_file(&old) {
                    tracing::warn!(path = %old.display(), %error, "removing an old snapshot");
                }
            }
        }
        Ok(())
    }

    /// The newest snapshot and its bytes, if there is one.
    pub(crate) fn load_newest(&self) -> Result<Option<(SnapshotFile, Vec<u8>)>, SnapshotError> {
        let Some(path) = self.snapshot_paths()?.pop() else {
            return Ok(None);
        };
        let bytes = fs::read(&path).map_err(io_error(&path))?;
        let file = SnapshotFile::decode(&path.display().to_string(), &bytes)?;
        Ok(Some((file, bytes)))
    }

    /// Snapshot files, oldest first: the zero-padded names sort by position.
    fn snapshot_paths(&self) -> Result<Vec<PathBuf>, SnapshotError> {
        let mut paths = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_error(&self.dir))? {
            let path = entry.map_err(io_error(&self.dir))?.path();
            if has_suffix(&path, SUFFIX) {
                paths.push(path);
            }
        }
        paths.sort();
        Ok(paths)
    }
}

fn has_suffix(path: &Path, suffix: &str) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(suffix))
}

fn io_error(path: &Path) -> impl Fn(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, LogId};

    use super::*;
    use crate::ids::BrokerId;

    fn snapshot(index: u64) -> SnapshotFile {
        let meta = SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(3, 1), index)),
            last_membership: Default::default(),
            snapshot_id: format!("s-{index}"),
        };
        let records = vec![MetadataRecord::RegisterBroker {
            broker_id: BrokerId(1),
            host: "h".into(),
            port: 1,
            rack: None,
            incarnation_id: None,
            broker_epoch: None,
            fenced: false,
        }];
        SnapshotFile::new(meta, records)
    }

    #[test]
    fn keeps_only_the_newest_and_ignores_temp_files() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = SnapshotStore::open(dir.path().join("snapshots"))?;
        assert_eq!(store.load_newest()?, None);
        for index in [9, 10, 100] {
            let file = snapshot(index);
            store.save(&file, &file.encode()?)?;
        }
        fs::write(dir.path().join("snapshots/junk.checkpoint.tmp"), b"half")?;
        let store = SnapshotStore::open(dir.path().join("snapshots"))?;
        let newest = store.load_newest()?.map(|(file, _)| file);
        assert_eq!(newest, Some(snapshot(100)));
        let names: Vec<_> = fs::read_dir(dir.path().join("snapshots"))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        assert_eq!(names, vec!["00000000000000000101-0000000003.checkpoint"]);
        Ok(())
    }
}
