//! ProducerStateManager (Kafka's): what a partition's log knows of each idempotent or transactional producer that
//! wrote to it, so that a retried batch is not stored twice, a lost one is noticed, and the transactions still open
//! hold back the LastStableOffset.
//!
//! Per producer id it keeps the epoch, the metadata of the last [`BATCHES_TO_RETAIN`] batches (their sequence and
//! offset ranges), the epoch of the transaction coordinator that wrote its last marker, and where its open
//! transaction began. A client's batch is checked against it ([`ProducerStateManager::check`], Kafka's rules):
//!
//! - a batch whose epoch is older than the producer's is INVALID_PRODUCER_EPOCH;
//! - a batch equal in epoch and sequence range to one of the retained batches is a duplicate: it is not written
//!   again and the producer hears the original offsets;
//! - with a new epoch the sequence restarts at 0; a producer the log has no record of must start at 0 too
//!   (UNKNOWN_PRODUCER_ID otherwise, as Kafka answers);
//! - otherwise the batch must follow the last one (OUT_OF_ORDER_SEQUENCE_NUMBER if not);
//! - a non-transactional batch from a producer with an open transaction is INVALID_TXN_STATE.
//!
//! Batches a coordinator writes with a producer id (the group coordinator's transactional offset commits, with
//! base sequence -1) are checked for their epoch only, as Kafka checks non-client appends.
//!
//! # Transactions
//!
//! A producer's first transactional batch while it has no open transaction opens one at the batch's base offset.
//! The transaction's marker (see [`super::batch::encode_control_batch`]) closes it; a marker is refused if its
//! producer epoch is older than the producer's (INVALID_PRODUCER_EPOCH) or its coordinator epoch older than the
//! last one recorded (TRANSACTION_COORDINATOR_FENCED); a marker for a producer without an open transaction is
//! fine and changes only the epochs. The first unstable offset is the first offset of the earliest transaction that
//! is open, or closed by a marker that is not yet below the HighWatermark (Kafka's ongoing and unreplicated
//! transactions): read_committed consumers see nothing at or after it. Producers with an open transaction never
//! expire.
//!
//! The state is rebuilt from the log: on open the manager loads the newest snapshot at or below the log end (or an
//! older one, when the log must replay from further back) and replays the batches after it.
//!
//! # Snapshot file format (Kafka's `<offset>.snapshot`, version 1)
//!
//! The file is named after the log end offset it covers (20 digits) and holds, big-endian:
//!
//! ```text
//! version i16 (1) | crc u32 (CRC-32C of everything after it) | count i32 |
//! count × (producer_id i64 | epoch i16 | last_sequence i32 | last_offset i64 | offset_delta i32 |
//!          timestamp i64 | coordinator_epoch i32 | current_txn_first_offset i64)
//! ```
//!
//! As in Kafka, a snapshot keeps only each producer's last batch (last_sequence and last_offset -1 when it has
//! none: a marker with a new epoch forgets the batches of the old one), and `current_txn_first_offset` -1 when no
//! transaction is open. Transactions closed but not yet below the HighWatermark are not kept: a snapshot is only
//! loaded on open, where everything in the log is below it. It is written to a temporary file, fsynced and renamed,
//! so a crash leaves either the old set of snapshots or the new one; a damaged file (bad CRC, short) is ignored and
//! the state is rebuilt from an older snapshot or the log start.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::batch::{BatchHeader, ControlRecordType, EndTxnMarker, NO_SEQUENCE};
use super::AppendOrigin;
use crate::ids::{Offset, ProducerEpoch, ProducerId};

/// Batches per producer whose duplicates are recognised (Kafka's `NUM_BATCHES_TO_RETAIN`, and the most in-flight
/// requests an idempotent producer may have).
pub const BATCHES_TO_RETAIN: usize = 5;

pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
const SNAPSHOT_VERSION: i16 = 1;
const SNAPSHOT_HEADER_BYTES: usize = 2 + 4 + 4;
const SNAPSHOT_ENTRY_BYTES: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
/// Snapshots kept per partition; older ones are deleted when a new one is written.
const SNAPSHOTS_TO_KEEP: usize = 2;
/// Kafka's "no coordinator epoch yet".
pub const NO_COORDINATOR_EPOCH: i32 = -1;

/// Why a producer's batch or marker is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerStateError {
    /// Kafka: INVALID_PRODUCER_EPOCH (47).
    #[error("producer {producer_id} has epoch {current}; a batch with the older epoch {epoch} is refused")]
    InvalidProducerEpoch {
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        current: ProducerEpoch,
    },
    /// Kafka: OUT_OF_ORDER_SEQUENCE_NUMBER (45).
    #[error("producer {producer_id}: sequence {found} does not follow {last}")]
    OutOfOrderSequence {
        producer_id: ProducerId,
        found: i32,
        last: i32,
    },
    /// Kafka: UNKNOWN_PRODUCER_ID (59).
    #[error("no record of producer {producer_id} on this partition; its first batch has sequence {found}, not 0")]
    UnknownProducerId { producer_id: ProducerId, found: i32 },
    /// A non-transactional batch from a producer whose transaction (begun at `txn_first_offset`) is open.
    /// Kafka: INVALID_TXN_STATE (48).
    #[error("producer {producer_id} has a transaction open since offset {txn_first_offset}; a non-transactional batch is refused")]
    InvalidTxnState {
        producer_id: ProducerId,
        txn_first_offset: Offset,
    },
    /// A marker from a transaction coordinator older than the one that wrote the producer's last marker (a zombie
    /// coordinator). Kafka: TRANSACTION_COORDINATOR_FENCED (52).
    #[error("producer {producer_id}: a marker from coordinator epoch {coordinator_epoch} is refused, the last came from {current}")]
    TransactionCoordinatorFenced {
        producer_id: ProducerId,
        coordinator_epoch: i32,
        current: i32,
    },
}

/// Where one of a producer's batches went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: Offset,
    pub last_offset: Offset,
    pub max_timestamp: i64,
}

/// What the log knows of one producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateEntry {
    pub epoch: ProducerEpoch,
    /// Oldest first, at most [`BATCHES_TO_RETAIN`]; empty after a marker that moved the producer to a new epoch.
    pub batches: VecDeque<BatchMetadata>,
    /// The coordinator epoch of the producer's last marker ([`NO_COORDINATOR_EPOCH`] before any).
    pub coordinator_epoch: i32,
    /// The first offset of the producer's open transaction.
    pub current_txn_first_offset: Option<Offset>,
    /// The timestamp of the producer's last batch or marker, from which `producer.id.expiration.ms` counts.
    pub last_timestamp: i64,
}

impl ProducerStateEntry {
    fn new(epoch: ProducerEpoch) -> ProducerStateEntry {
        ProducerStateEntry {
            epoch,
            batches: VecDeque::new(),
            coordinator_epoch: NO_COORDINATOR_EPOCH,
            current_txn_first_offset: None,
            last_timestamp: super::batch::NO_TIMESTAMP,
        }
    }

    /// The sequence of the last retained batch.
    pub fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    /// Moves to `epoch`, forgetting the old epoch's batches (their sequences mean nothing in the new one).
    fn set_epoch(&mut self, epoch: ProducerEpoch) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
    }
}

/// The outcome of checking a batch that may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not from an idempotent producer, or the next batch in order: write it.
    Append,
    /// A retry of a batch already in the log: answer with where it went.
    Duplicate(BatchMetadata),
}

/// A transaction a marker closed (Kafka's `CompletedTxn`), with the LastStableOffset its transaction index entry
/// records (see [`super::transaction_index`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: ProducerId,
    pub first_offset: Offset,
    /// The marker's offset.
    pub last_offset: Offset,
    pub aborted: bool,
    pub last_stable_offset: Offset,
}

#[derive(Debug, Default)]
pub struct ProducerStateManager {
    producers: HashMap<ProducerId, ProducerStateEntry>,
    /// Open transactions by first offset.
    ongoing: BTreeMap<Offset, ProducerId>,
    /// Transactions closed by a marker not yet below the HighWatermark, by first offset, with the marker's offset.
    unreplicated: BTreeMap<Offset, (ProducerId, Offset)>,
}

/// The sequence of a batch's last record: sequences wrap from i32::MAX to 0, as Kafka's do. A batch without
/// sequences has none (-1) at either end.
pub fn last_sequence(header: &BatchHeader) -> i32 {
    if header.base_sequence == NO_SEQUENCE {
        return NO_SEQUENCE;
    }
    let last = i64::from(header.base_sequence) + i64::from(header.last_offset_delta);
    i32::try_from(last).unwrap_or_else(|_| (last - i64::from(i32::MAX) - 1) as i32)
}

fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (last == i32::MAX && next == 0)
}

impl ProducerStateManager {
    pub fn entry(&self, producer_id: ProducerId) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    pub fn entries(&self) -> impl Iterator<Item = (&ProducerId, &ProducerStateEntry)> {
        self.producers.iter()
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Checks a data batch before it is written (see the module doc for the rules). Only a client's batches are
    /// checked for sequence and duplicates.
    pub fn check(
        &self,
        header: &BatchHeader,
        origin: AppendOrigin,
    ) -> Result<SequenceCheck, ProducerStateError> {
        let producer_id = ProducerId(header.producer_id);
        if producer_id == ProducerId::NONE {
            return Ok(SequenceCheck::Append);
        }
        let epoch = ProducerEpoch(header.producer_epoch);
        let Some(entry) = self.producers.get(&producer_id) else {
            return match header.base_sequence {
                _ if origin == AppendOrigin::Coordinator => Ok(SequenceCheck::Append),
                0 => Ok(SequenceCheck::Append),
                found => Err(ProducerStateError::UnknownProducerId { producer_id, found }),
            };
        };
        if epoch < entry.epoch {
            return Err(ProducerStateError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current: entry.epoch,
            });
        }
        if origin == AppendOrigin::Client {
            if let Some(duplicate) = check_sequence(producer_id, entry, header)? {
                return Ok(SequenceCheck::Duplicate(duplicate));
            }
        }
        match entry.current_txn_first_offset {
            Some(txn_first_offset) if !header.is_transactional() => {
                Err(ProducerStateError::InvalidTxnState {
                    producer_id,
                    txn_first_offset,
                })
            }
            _ => Ok(SequenceCheck::Append),
        }
    }

    /// Checks a transaction marker before it is written: its producer epoch may not be older than the producer's,
    /// nor its coordinator epoch older than the last marker's.
    pub fn check_marker(
        &self,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        coordinator_epoch: i32,
    ) -> Result<(), ProducerStateError> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if epoch < entry.epoch {
            return Err(ProducerStateError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current: entry.epoch,
            });
        }
        if coordinator_epoch < entry.coordinator_epoch {
            return Err(ProducerStateError::TransactionCoordinatorFenced {
                producer_id,
                coordinator_epoch,
                current: entry.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Records a batch the log now holds (at its assigned offsets), whether just appended or replayed: a data batch
    /// (`marker` is `None`) or a control batch with the marker it carries. Returns the transaction a marker closed.
    pub fn update(
        &mut self,
        header: &BatchHeader,
        marker: Option<EndTxnMarker>,
    ) -> Option<CompletedTxn> {
        let producer_id = ProducerId(header.producer_id);
        if producer_id == ProducerId::NONE {
            return None;
        }
        let epoch = ProducerEpoch(header.producer_epoch);
        if header.is_control() {
            // An empty control batch, or one that is not a marker, changes nothing (as in Kafka).
            let marker = marker?;
            return self.complete(producer_id, epoch, marker, header);
        }
        let first_offset = Offset(header.base_offset);
        let batch = BatchMetadata {
            first_seq: header.base_sequence,
            last_seq: last_sequence(header),
            first_offset,
            last_offset: Offset(header.last_offset()),
            max_timestamp: header.max_timestamp,
        };
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerStateEntry::new(epoch));
        entry.set_epoch(epoch);
        entry.batches.push_back(batch);
        while entry.batches.len() > BATCHES_TO_RETAIN {
            entry.batches.pop_front();
        }
        entry.last_timestamp = header.max_timestamp;
        if header.is_transactional() && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(first_offset);
            self.ongoing.insert(first_offset, producer_id);
        }
        None
    }

    /// Applies a marker (Kafka's `appendEndTxnMarker` and `completeTxn`).
    fn complete(
        &mut self,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        marker: EndTxnMarker,
        header: &BatchHeader,
    ) -> Option<CompletedTxn> {
        let marker_offset = Offset(header.base_offset);
        let open = self
            .producers
            .get(&producer_id)
            .and_then(|e| e.current_txn_first_offset);
        // Computed while the transaction still counts as open, so that it skips this producer's own.
        let completed = open.map(|first_offset| CompletedTxn {
            producer_id,
            first_offset,
            last_offset: marker_offset,
            aborted: marker.control_type == ControlRecordType::Abort,
            last_stable_offset: self
                .ongoing
                .iter()
                .find(|(_, id)| **id != producer_id)
                .map_or(Offset(marker_offset.0 + 1), |(first, _)| *first),
        });
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerStateEntry::new(epoch));
        entry.set_epoch(epoch);
        entry.coordinator_epoch = marker.coordinator_epoch;
        entry.last_timestamp = header.max_timestamp;
        entry.current_txn_first_offset = None;
        if let Some(txn) = &completed {
            self.ongoing.remove(&txn.first_offset);
            self.unreplicated
                .insert(txn.first_offset, (producer_id, txn.last_offset));
        }
        completed
    }

    /// The first offset read_committed consumers may not see yet: that of the earliest transaction still open, or
    /// closed by a marker that is not below the HighWatermark yet. `None` when there is none.
    pub fn first_unstable_offset(&self) -> Option<Offset> {
        let ongoing = self.ongoing.keys().next().copied();
        let unreplicated = self.unreplicated.keys().next().copied();
        match (ongoing, unreplicated) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The HighWatermark moved to `high_watermark`: transactions whose marker is below it are stable.
    pub fn on_high_watermark_updated(&mut self, high_watermark: Offset) {
        self.unreplicated
            .retain(|_, (_, marker)| *marker >= high_watermark);
    }

    /// Forgets producers whose last batch or marker is older than `producer.id.expiration.ms`, unless they have a
    /// transaction open.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producers.retain(|_, entry| {
            entry.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(entry.last_timestamp) < expiration_ms
        });
    }

    /// Writes `<end>.snapshot` (durably), then deletes all but the newest [`SNAPSHOTS_TO_KEEP`].
    pub fn write_snapshot(&self, dir: &Path, end: Offset) -> io::Result<()> {
        let mut entries: Vec<_> = self.producers.iter().collect();
        entries.sort_by_key(|(id, _)| **id);
        let mut body = Vec::with_capacity(4 + entries.len() * SNAPSHOT_ENTRY_BYTES);
        body.extend_from_slice(&(entries.len() as i32).to_be_bytes());
        for (id, entry) in entries {
            let (last_seq, last_offset, delta) = match entry.batches.back() {
                Some(last) => (
                    last.last_seq,
                    last.last_offset.0,
                    i32::try_from(last.last_offset.0 - last.first_offset.0).unwrap_or(0),
                ),
                None => (NO_SEQUENCE, -1, 0),
            };
            body.extend_from_slice(&id.0.to_be_bytes());
            body.extend_from_slice(&entry.epoch.0.to_be_bytes());
            body.extend_from_slice(&last_seq.to_be_bytes());
            body.extend_from_slice(&last_offset.to_be_bytes());
            body.extend_from_slice(&delta.to_be_bytes());
            body.extend_from_slice(&entry.last_timestamp.to_be_bytes());
            body.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
            let txn_first = entry.current_txn_first_offset.map_or(-1, |o| o.0);
            body.extend_from_slice(&txn_first.to_be_bytes());
        }
        let mut file = Vec::with_capacity(6 + body.len());
        file.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        file.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        file.extend_from_slice(&body);
        let path = snapshot_path(dir, end);
        let tmp = path.with_extension("snapshot.tmp");
        fs::write(&tmp, &file)?;
        fs::File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, &path)?;
        super::checkpoint::sync_dir(dir)?;
        let snapshots = list_snapshots(dir)?;
        for (_, old) in snapshots.iter().rev().skip(SNAPSHOTS_TO_KEEP) {
            let _ = fs::remove_file(old);
        }
        Ok(())
    }

    /// Loads the newest readable snapshot at or below `at_most` (itself at most `log_end`), deleting those beyond
    /// `log_end` (they describe records the log no longer has). Returns the manager and the offset replay must
    /// start from (`None`: no snapshot).
    pub fn load(
        dir: &Path,
        log_end: Offset,
        at_most: Offset,
    ) -> io::Result<(ProducerStateManager, Option<Offset>)> {
        let mut snapshots = list_snapshots(dir)?;
        while let Some((offset, path)) = snapshots.pop() {
            if offset > log_end {
                fs::remove_file(&path)?;
                continue;
            }
            if offset > at_most {
                continue;
            }
            match fs::read(&path)
                .ok()
                .and_then(|bytes| parse_snapshot(&bytes))
            {
                Some(manager) => return Ok((manager, Some(offset))),
                None => {
                    tracing::warn!(path = %path.display(), "ignoring an unreadable producer state snapshot");
                }
            }
        }
        Ok((ProducerStateManager::default(), None))
    }
}

/// Kafka's `checkSequence` and duplicate detection for a client's batch of a known producer: the original batch
/// if this one is a retry of it.
fn check_sequence(
    producer_id: ProducerId,
    entry: &ProducerStateEntry,
    header: &BatchHeader,
) -> Result<Option<BatchMetadata>, ProducerStateError> {
    let epoch = ProducerEpoch(header.producer_epoch);
    let first_seq = header.base_sequence;
    if epoch > entry.epoch {
        return match first_seq {
            0 => Ok(None),
            found => Err(ProducerStateError::OutOfOrderSequence {
                producer_id,
                found,
                last: NO_SEQUENCE,
            }),
        };
    }
    let last_seq = last_sequence(header);
    if let Some(original) = entry
        .batches
        .iter()
        .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
    {
        return Ok(Some(*original));
    }
    // A producer whose batches a marker forgot (a new epoch) starts its sequence again at 0, as in Kafka.
    let last = entry.last_seq().unwrap_or(NO_SEQUENCE);
    if !in_sequence(last, first_seq) {
        return Err(ProducerStateError::OutOfOrderSequence {
            producer_id,
            found: first_seq,
            last,
        });
    }
    Ok(None)
}

fn snapshot_path(dir: &Path, offset: Offset) -> PathBuf {
    dir.join(format!("{:020}{SNAPSHOT_SUFFIX}", offset.0))
}

/// The snapshot files of `dir`, oldest first.
fn list_snapshots(dir: &Path) -> io::Result<Vec<(Offset, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let offset = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(SNAPSHOT_SUFFIX))
            .and_then(|n| n.parse::<i64>().ok());
        if let Some(offset) = offset {
            found.push((Offset(offset), path));
        }
    }
    found.sort();
    Ok(found)
}

fn parse_snapshot(bytes: &[u8]) -> Option<ProducerStateManager> {
    if bytes.len() < SNAPSHOT_HEADER_BYTES {
        return None;
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    let crc = u32::from_be_bytes(bytes[2..6].try_into().ok()?);
    let body = &bytes[6..];
    if version != SNAPSHOT_VERSION || crc32c::crc32c(body) != crc {
        return None;
    }
    let count = usize::try_from(i32::from_be_bytes(body[0..4].try_into().ok()?)).ok()?;
    if body.len() != 4 + count.checked_mul(SNAPSHOT_ENTRY_BYTES)? {
        return None;
    }
    let mut manager = ProducerStateManager {
        producers: HashMap::with_capacity(count),
        ..ProducerStateManager::default()
    };
    for entry in body[4..].chunks_exact(SNAPSHOT_ENTRY_BYTES) {
        let i64_at = |pos: usize| -> Option<i64> {
            Some(i64::from_be_bytes(
                entry.get(pos..pos + 8)?.try_into().ok()?,
            ))
        };
        let i32_at = |pos: usize| -> Option<i32> {
            Some(i32::from_be_bytes(
                entry.get(pos..pos + 4)?.try_into().ok()?,
            ))
        };
        let producer_id = ProducerId(i64_at(0)?);
        let epoch = ProducerEpoch(i16::from_be_bytes(entry[8..10].try_into().ok()?));
        let last_seq = i32_at(10)?;
        let last_offset = i64_at(14)?;
        let offset_delta = i32_at(22)?;
        let timestamp = i64_at(26)?;
        let coordinator_epoch = i32_at(34)?;
        let txn_first_offset = i64_at(38)?;
        let mut state = ProducerStateEntry::new(epoch);
        // A producer without a batch (a marker moved it to a new epoch) has last offset -1.
        if last_offset >= 0 {
            let first_seq = if last_seq == NO_SEQUENCE {
                NO_SEQUENCE
            } else {
                last_seq.wrapping_sub(offset_delta).max(0)
            };
            state.batches.push_back(BatchMetadata {
                first_seq,
                last_seq,
                first_offset: Offset(last_offset - i64::from(offset_delta)),
                last_offset: Offset(last_offset),
                max_timestamp: timestamp,
            });
        }
        state.last_timestamp = timestamp;
        state.coordinator_epoch = coordinator_epoch;
        if txn_first_offset >= 0 {
            state.current_txn_first_offset = Some(Offset(txn_first_offset));
            manager
                .ongoing
                .insert(Offset(txn_first_offset), producer_id);
        }
        manager.producers.insert(producer_id, state);
    }
    Some(manager)
}

#[cfg(test)]
#[path = "producer_state_tests.rs"]
mod tests;
