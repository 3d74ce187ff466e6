//! ProducerStateManager (Kafka's): what a partition's log knows of each idempotent producer that wrote to it, so
//! that a retried batch is not stored twice and a lost one is noticed.
//!
//! Per producer id it keeps the epoch and the metadata of the last [`BATCHES_TO_RETAIN`] batches (their sequence
//! and offset ranges). An append is checked against it ([`ProducerStateManager::check`], Kafka's rules):
//!
//! - a batch whose epoch is older than the producer's is INVALID_PRODUCER_EPOCH;
//! - a batch equal in epoch and sequence range to one of the retained batches is a duplicate: it is not written
//!   again and the producer hears the original offsets;
//! - with a new epoch the sequence restarts at 0; a producer the log has no record of must start at 0 too
//!   (UNKNOWN_PRODUCER_ID otherwise, as Kafka answers);
//! - otherwise the batch must follow the last one (OUT_OF_ORDER_SEQUENCE_NUMBER if not).
//!
//! The state is rebuilt from the log: on open the manager loads the newest snapshot at or below the log end and
//! replays the batches after it.
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
//! As in Kafka, a snapshot keeps only each producer's last batch. It is written to a temporary file, fsynced and
//! renamed, so a crash leaves either the old set of snapshots or the new one; a damaged file (bad CRC, short) is
//! ignored and the state is rebuilt from an older snapshot or the log start.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::batch::BatchHeader;
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

/// Why a producer's batch is refused.
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
    /// Oldest first, at most [`BATCHES_TO_RETAIN`].
    pub batches: VecDeque<BatchMetadata>,
}

impl ProducerStateEntry {
    fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
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

#[derive(Debug, Default)]
pub struct ProducerStateManager {
    producers: HashMap<ProducerId, ProducerStateEntry>,
}

/// The sequence of a batch's last record: sequences wrap from i32::MAX to 0, as Kafka's do.
pub fn last_sequence(header: &BatchHeader) -> i32 {
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

    /// Checks a batch a producer sent (see the module doc for the rules).
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceCheck, ProducerStateError> {
        let producer_id = ProducerId(header.producer_id);
        if producer_id == ProducerId::NONE {
            return Ok(SequenceCheck::Append);
        }
        let epoch = ProducerEpoch(header.producer_epoch);
        let first_seq = header.base_sequence;
        let last_seq = last_sequence(header);
        let Some(entry) = self.producers.get(&producer_id) else {
            return match first_seq {
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
        if epoch > entry.epoch {
            return match first_seq {
                0 => Ok(SequenceCheck::Append),
                found => Err(ProducerStateError::OutOfOrderSequence {
                    producer_id,
                    found,
                    last: -1,
                }),
            };
        }
        if let Some(original) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
        {
            return Ok(SequenceCheck::Duplicate(*original));
        }
        match entry.last_seq() {
            Some(last) if !in_sequence(last, first_seq) => {
                Err(ProducerStateError::OutOfOrderSequence {
                    producer_id,
                    found: first_seq,
                    last,
                })
            }
            _ => Ok(SequenceCheck::Append),
        }
    }

    /// Records a batch the log now holds (at its assigned offsets), whether just appended or replayed.
    pub fn update(&mut self, header: &BatchHeader) {
        let producer_id = ProducerId(header.producer_id);
        if producer_id == ProducerId::NONE {
            return;
        }
        let epoch = ProducerEpoch(header.producer_epoch);
        let batch = BatchMetadata {
            first_seq: header.base_sequence,
            last_seq: last_sequence(header),
            first_offset: Offset(header.base_offset),
            last_offset: Offset(header.base_offset + i64::from(header.last_offset_delta)),
            max_timestamp: header.max_timestamp,
        };
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerStateEntry {
                epoch,
                batches: VecDeque::new(),
            });
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(batch);
        while entry.batches.len() > BATCHES_TO_RETAIN {
            entry.batches.pop_front();
        }
    }

    /// Forgets batches at or after `end` (the log was truncated there), and producers left with none.
    pub fn truncate_to(&mut self, end: Offset) {
        self.producers.retain(|_, entry| {
            entry.batches.retain(|b| b.last_offset < end);
            !entry.batches.is_empty()
        });
    }

    /// Forgets producers whose last batch is older than `producer.id.expiration.ms`.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producers.retain(|_, entry| {
            entry
                .batches
                .back()
                .is_some_and(|b| now_ms.saturating_sub(b.max_timestamp) < expiration_ms)
        });
    }

    /// Writes `<end>.snapshot` (durably), then deletes all but the newest [`SNAPSHOTS_TO_KEEP`].
    pub fn write_snapshot(&self, dir: &Path, end: Offset) -> io::Result<()> {
        let mut entries: Vec<_> = self
            .producers
            .iter()
            .filter(|(_, entry)| !entry.batches.is_empty())
            .collect();
        entries.sort_by_key(|(id, _)| **id);
        let mut body = Vec::with_capacity(4 + entries.len() * SNAPSHOT_ENTRY_BYTES);
        body.extend_from_slice(&(entries.len() as i32).to_be_bytes());
        for (id, entry) in entries {
            let Some(last) = entry.batches.back() else {
                continue;
            };
            body.extend_from_slice(&id.0.to_be_bytes());
            body.extend_from_slice(&entry.epoch.0.to_be_bytes());
            body.extend_from_slice(&last.last_seq.to_be_bytes());
            body.extend_from_slice(&last.last_offset.0.to_be_bytes());
            let delta = i32::try_from(last.last_offset.0 - last.first_offset.0).unwrap_or(0);
            body.extend_from_slice(&delta.to_be_bytes());
            body.extend_from_slice(&last.max_timestamp.to_be_bytes());
            body.extend_from_slice(&(-1i32).to_be_bytes()); // coordinator epoch: no transactions yet
            body.extend_from_slice(&(-1i64).to_be_bytes()); // current transaction's first offset
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

    /// Loads the newest readable snapshot at or below `log_end`, deleting those beyond it (they describe records
    /// the log no longer has). Returns the manager and the offset replay must start from (`None`: no snapshot).
    pub fn load(dir: &Path, log_end: Offset) -> io::Result<(ProducerStateManager, Option<Offset>)> {
        let mut snapshots = list_snapshots(dir)?;
        while let Some((offset, path)) = snapshots.pop() {
            if offset > log_end {
                fs::remove_file(&path)?;
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
    let mut producers = HashMap::with_capacity(count);
    for entry in body[4..].chunks_exact(SNAPSHOT_ENTRY_BYTES) {
        let producer_id = ProducerId(i64::from_be_bytes(entry[0..8].try_into().ok()?));
        let epoch = ProducerEpoch(i16::from_be_bytes(entry[8..10].try_into().ok()?));
        let last_seq = i32::from_be_bytes(entry[10..14].try_into().ok()?);
        let last_offset = i64::from_be_bytes(entry[14..22].try_into().ok()?);
        let offset_delta = i32::from_be_bytes(entry[22..26].try_into().ok()?);
        let timestamp = i64::from_be_bytes(entry[26..34].try_into().ok()?);
        let batch = BatchMetadata {
            first_seq: last_seq.wrapping_sub(offset_delta).max(0),
            last_seq,
            first_offset: Offset(last_offset - i64::from(offset_delta)),
            last_offset: Offset(last_offset),
            max_timestamp: timestamp,
        };
        producers.insert(
            producer_id,
            ProducerStateEntry {
                epoch,
                batches: VecDeque::from([batch]),
            },
        );
    }
    Some(ProducerStateManager { producers })
}

#[cfg(test)]
#[path = "producer_state_tests.rs"]
mod tests;
