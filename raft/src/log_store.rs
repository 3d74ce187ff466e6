//! The Raft log, vote, committed log id and last-purged log id in redb. Every redb write
//! transaction fsyncs on commit (`Durability::Immediate`, redb's default), so whatever openraft
//! is told is stored survives `kill -9`.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Weak};

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageIOError, Vote};
use redb::{Database, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::raft_types::{Entry, LogId, MetadataLog, NodeId, StorageError};

/// Entries by index, as JSON.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
/// The few single values, as JSON, under the keys below.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
const VOTE_KEY: &str = "vote";
const COMMITTED_KEY: &str = "committed";
const LAST_PURGED_KEY: &str = "last_purged";

#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    #[error("opening the raft log database: {0}")]
    Open(#[from] redb::DatabaseError),
    /// Boxed: redb's transaction error is large, and every storage call returns this type.
    #[error("raft log transaction: {0}")]
    Transaction(#[source] Box<redb::TransactionError>),
    #[error("raft log table: {0}")]
    Table(#[from] redb::TableError),
    #[error("raft log storage: {0}")]
    Storage(#[from] redb::StorageError),
    #[error("raft log commit: {0}")]
    Commit(#[from] redb::CommitError),
    #[error("raft log encoding: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("raft log task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<redb::TransactionError> for LogStoreError {
    fn from(error: redb::TransactionError) -> LogStoreError {
        LogStoreError::Transaction(Box::new(error))
    }
}

/// A handle on the redb database; clones share it (openraft wants a separate reader).
#[derive(Clone)]
pub(crate) struct RedbLogStore {
    db: Arc<Database>,
}

impl RedbLogStore {
    pub(crate) async fn open(path: &Path) -> Result<RedbLogStore, LogStoreError> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let db = Database::create(path)?;
            // Create both tables up front so that readers never meet a missing table.
            let txn = db.begin_write()?;
            txn.open_table(LOG)?;
            txn.open_table(META)?;
            txn.commit()?;
            Ok(RedbLogStore { db: Arc::new(db) })
        })
        .await?
    }

    /// Lets shutdown see when the last handle (held inside openraft) is gone: only then is the
    /// database file closed and its lock released for the next `start`.
    pub(crate) fn downgrade(&self) -> Weak<Database> {
        Arc::downgrade(&self.db)
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, LogStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, LogStoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db)).await?
    }

    async fn read_meta<T: DeserializeOwned + Send + 'static>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, LogStoreError> {
        self.blocking(move |db| read_meta(db, key)).await
    }

    async fn write_meta<T: Serialize>(
        &self,
        key: &'static str,
        value: &T,
    ) -> Result<(), LogStoreError> {
        let bytes = serde_json::to_vec(value)?;
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            txn.open_table(META)?.insert(key, bytes.as_slice())?;
            txn.commit()?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn entries(
        &self,
        range: (Bound<u64>, Bound<u64>),
    ) -> Result<Vec<Entry>, LogStoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(LOG)?;
            let mut entries = Vec::new();
            for item in table.range::<u64>(range)? {
                let (_, value) = item?;
                entries.push(serde_json::from_slice(value.value())?);
            }
            Ok(entries)
        })
        .await
    }

    pub(crate) async fn log_state(&self) -> Result<LogState<MetadataLog>, LogStoreError> {
        self.blocking(|db| {
            let last_purged_log_id: Option<LogId> = read_meta(db, LAST_PURGED_KEY)?;
            let txn = db.begin_read()?;
            let table = txn.open_table(LOG)?;
            let last = match table.last()? {
                Some((_, value)) => Some(serde_json::from_slice::<Entry>(value.value())?.log_id),
                None => None,
            };
            Ok(LogState {
                last_log_id: last.or(last_purged_log_id),
                last_purged_log_id,
            })
        })
        .await
    }

    pub(crate) async fn append_entries(&self, entries: Vec<Entry>) -> Result<(), LogStoreError> {
        let encoded = entries
            .iter()
            .map(|entry| Ok((entry.log_id.index, serde_json::to_vec(entry)?)))
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(LOG)?;
                for (index, bytes) in &encoded {
                    table.insert(*index, bytes.as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }

    /// Removes the entries from `log_id` on: a new leader's log replaces them.
    pub(crate) async fn truncate_from(&self, log_id: LogId) -> Result<(), LogStoreError> {
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            txn.open_table(LOG)?
                .retain_in(log_id.index.., |_, _| false)?;
            txn.commit()?;
            Ok(())
        })
        .await
    }

    /// Removes the entries up to and including `log_id`, which a snapshot now covers.
    pub(crate) async fn purge_upto(&self, log_id: LogId) -> Result<(), LogStoreError> {
        let purged = serde_json::to_vec(&Some(log_id))?;
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            // One transaction: last-purged and the removal land together or not at all.
            txn.open_table(META)?
                .insert(LAST_PURGED_KEY, purged.as_slice())?;
            txn.open_table(LOG)?
                .retain_in(..=log_id.index, |_, _| false)?;
            txn.commit()?;
            Ok(())
        })
        .await
    }
}

fn read_meta<T: DeserializeOwned>(db: &Database, key: &str) -> Result<Option<T>, LogStoreError> {
    let txn = db.begin_read()?;
    let table = txn.open_table(META)?;
    match table.get(key)? {
        Some(value) => Ok(serde_json::from_slice(value.value())?),
        None => Ok(None),
    }
}

fn storage_error(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: LogStoreError) -> StorageError {
    StorageIOError::new(subject, verb, AnyError::new(&e)).into()
}

impl RaftLogReader<MetadataLog> for RedbLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let range = (range.start_bound().cloned(), range.end_bound().cloned());
        self.entries(range)
            .await
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, e))
    }
}

impl RaftLogStorage<MetadataLog> for RedbLogStore {
    type LogReader = RedbLogStore;

    async fn get_log_state(&mut self) -> Result<LogState<MetadataLog>, StorageError> {
        self.log_state()
            .await
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, e))
    }

    async fn get_log_reader(&mut self) -> RedbLogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.write_meta(VOTE_KEY, vote)
            .await
            .map_err(|e| storage_error(ErrorSubject::Vote, ErrorVerb::Write, e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.read_meta(VOTE_KEY)
            .await
            .map_err(|e| storage_error(ErrorSubject::Vote, ErrorVerb::Read, e))
    }

    // openraft 0.9 only re-applies committed entries on restart when the committed log id is
    // stored; without it a restarted node would show an empty image until the next commit.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.write_meta(COMMITTED_KEY, &committed)
            .await
            .map_err(|e| storage_error(ErrorSubject::Store, ErrorVerb::Write, e))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.read_meta::<Option<LogId>>(COMMITTED_KEY)
            .await
            .map(Option::flatten)
            .map_err(|e| storage_error(ErrorSubject::Store, ErrorVerb::Read, e))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<MetadataLog>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let result = self.append_entries(entries.into_iter().collect()).await;
        // The commit above has fsynced: the entries are durable when openraft hears so.
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                Err(storage_error(ErrorSubject::Logs, ErrorVerb::Write, e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.truncate_from(log_id)
            .await
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.purge_upto(log_id)
            .await
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::ids::BrokerId;
    use crate::record::MetadataRecord;

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            log_id: log_id(term, index),
            payload: EntryPayload::Normal(vec![MetadataRecord::RegisterBroker {
                broker_id: BrokerId(1),
                host: format!("host-{index}"),
                port: 9092,
                rack: None,
                incarnation_id: None,
                broker_epoch: None,
                fenced: false,
            }]),
        }
    }

    fn indexes(entries: &[Entry]) -> Vec<u64> {
        entries.iter().map(|e| e.log_id.index).collect()
    }

    #[tokio::test]
    async fn stores_entries_vote_committed_and_purge_across_reopen(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("raft.redb");
        {
            let mut store = RedbLogStore::open(&path).await?;
            assert_eq!(store.get_log_state().await?, LogState::default());
            assert_eq!(store.read_vote().await?, None);
            assert_eq!(store.read_committed().await?, None);

            store
                .append_entries((1..=5).map(|i| entry(1, i)).collect())
                .await?;
            store.save_vote(&Vote::new(2, 1)).await?;
            store.save_committed(Some(log_id(1, 4))).await?;

            // A new leader's entries replace the tail from index 4.
            store.truncate(log_id(1, 4)).await?;
            store.append_entries(vec![entry(2, 4)]).await?;
            let all = store.try_get_log_entries(..).await?;
            assert_eq!(indexes(&all), vec![1, 2, 3, 4]);
            assert_eq!(all.last().map(|e| e.log_id), Some(log_id(2, 4)));

            store.purge(log_id(1, 2)).await?;
        }
        // The database is closed once every handle is dropped; reopen it as a restart would.
        let mut store = RedbLogStore::open(&path).await?;
        assert_eq!(store.read_vote().await?, Some(Vote::new(2, 1)));
        assert_eq!(store.read_committed().await?, Some(log_id(1, 4)));
        assert_eq!(
            store.get_log_state().await?,
            LogState {
                last_purged_log_id: Some(log_id(1, 2)),
                last_log_id: Some(log_id(2, 4)),
            }
        );
        let tail = store.try_get_log_entries(3..10).await?;
        assert_eq!(indexes(&tail), vec![3, 4]);
        assert_eq!(tail.first(), Some(&entry(1, 3)));

        // Purging everything leaves the last purged id as the last log id.
        store.purge(log_id(2, 4)).await?;
        assert_eq!(
            store.get_log_state().await?,
            LogState {
                last_purged_log_id: Some(log_id(2, 4)),
                last_log_id: Some(log_id(2, 4)),
            }
        );
        assert!(store.try_get_log_entries(..).await?.is_empty());
        Ok(())
    }
}
