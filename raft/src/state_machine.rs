//! The Raft state machine: the controller state in memory, rebuilt on start from the newest
//! snapshot plus the committed log entries after it (openraft re-applies those). Every applied
//! entry and every loaded snapshot is passed on to the broker's [`MetadataListener`].

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{AnyError, EntryPayload, ErrorSubject, ErrorVerb, StorageIOError};

use crate::controller::state::ControllerState;
use crate::controller::SharedState;
use crate::raft_types::{Entry, LogId, MetadataLog, SnapshotMeta, StorageError, StoredMembership};
use crate::record::MetadataListener;
use crate::snapshot::{SnapshotError, SnapshotFile, SnapshotStore};

pub(crate) struct MetadataStateMachine {
    state: SharedState,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    snapshots: SnapshotStore,
    listener: Arc<dyn MetadataListener>,
}

impl MetadataStateMachine {
    /// Loads the newest snapshot, if any, and hands it to the listener: always the listener's
    /// first call, so that a reused listener starts from a clean image.
    pub(crate) async fn open(
        snapshots: SnapshotStore,
        state: SharedState,
        listener: Arc<dyn MetadataListener>,
    ) -> Result<MetadataStateMachine, SnapshotError> {
        let store = snapshots.clone();
        let newest = tokio::task::spawn_blocking(move || store.load_newest()).await??;
        let mut machine = MetadataStateMachine {
            state,
            last_applied: None,
            membership: StoredMembership::default(),
            snapshots,
            listener,
        };
        match newest {
            Some((file, _)) => {
                tracing::info!(meta = %file.meta, "loaded metadata snapshot");
                machine.load(file);
            }
            None => {
                *state_write(&machine.state) = ControllerState::default();
                machine.listener.on_snapshot(&[]);
            }
        }
        Ok(machine)
    }

    fn load(&mut self, file: SnapshotFile) {
        *state_write(&self.state) = ControllerState::from_records(&file.records);
        self.last_applied = file.meta.last_log_id;
        self.membership = file.meta.last_membership;
        self.listener.on_snapshot(&file.records);
    }
}

pub(crate) struct MetadataSnapshotBuilder {
    file: SnapshotFile,
    snapshots: SnapshotStore,
}

impl RaftSnapshotBuilder<MetadataLog> for MetadataSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<MetadataLog>, StorageError> {
        let file = self.file.clone();
        let signature = Some(file.meta.signature());
        let store = self.snapshots.clone();
        let saved = tokio::task::spawn_blocking(move || {
            let bytes = file.encode()?;
            store.save(&file, &bytes)?;
            Ok::<_, SnapshotError>((file.meta, bytes))
        })
        .await
        .map_err(SnapshotError::from)
        .and_then(|r| r);
        let (meta, bytes) = saved.map_err(|e| {
            StorageError::from(StorageIOError::write_snapshot(signature, AnyError::new(&e)))
        })?;
        tracing::info!(%meta, "wrote metadata snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<MetadataLog> for MetadataStateMachine {
    type SnapshotBuilder = MetadataSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut responses = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(records) => {
                    {
                        let mut state = state_write(&self.state);
                        for record in &records {
                            if let Err(error) = state.replay_at(record, entry.log_id.index) {
                                tracing::warn!(%error, ?record, "skipping metadata record");
                            }
                        }
                    }
                    // Outside the state lock: the listener may read controller state.
                    if !records.is_empty() {
                        self.listener.on_records(entry.log_id.index, &records);
                    }
                }
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership);
                }
            }
            responses.push(());
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> MetadataSnapshotBuilder {
        // Captured now, built later on another task: the copy is what keeps it consistent.
        let records = state_read(&self.state).to_records();
        let snapshot_id = match &self.last_applied {
            Some(id) => format!("{}-{}", id.leader_id.term, id.index),
            None => "empty".to_string(),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        MetadataSnapshotBuilder {
            file: SnapshotFile::new(meta, records),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let signature = Some(meta.signature());
        let bytes = snapshot.into_inner();
        let store = self.snapshots.clone();
        let meta = meta.clone();
        let installed = tokio::task::spawn_blocking(move || {
            let mut file = SnapshotFile::decode(&meta.snapshot_id, &bytes)?;
            // The leader's meta is authoritative; the file's copy only travels with it.
            file.meta = meta;
            let bytes = file.encode()?;
            store.save(&file, &bytes)?;
            Ok::<_, SnapshotError>(file)
        })
        .await
        .map_err(SnapshotError::from)
        .and_then(|r| r)
        .map_err(|e| {
            StorageError::from(StorageIOError::write_snapshot(signature, AnyError::new(&e)))
        })?;
        tracing::info!(meta = %installed.meta, "installed metadata snapshot from the leader");
        self.load(installed);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<MetadataLog>>, StorageError> {
        let store = self.snapshots.clone();
        let newest = tokio::task::spawn_blocking(move || store.load_newest())
            .await
            .map_err(SnapshotError::from)
            .and_then(|r| r)
            .map_err(|e| {
                StorageError::from(StorageIOError::new(
                    ErrorSubject::Snapshot(None),
                    ErrorVerb::Read,
                    AnyError::new(&e),
                ))
            })?;
        Ok(newest.map(|(file, bytes)| Snapshot {
            meta: file.meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}

// Replay never panics (a record that does not fit is skipped), so a poisoned lock can only follow
// a panic elsewhere, e.g. in a listener; the state itself is whole, so keep using it rather than
// turn one panic into a controller that panics on every request.
pub(crate) fn state_read(state: &SharedState) -> std::sync::RwLockReadGuard<'_, ControllerState> {
    state
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn state_write(state: &SharedState) -> std::sync::RwLockWriteGuard<'_, ControllerState> {
    state
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
