//! Kafka's on-disk partition log.
//!
//! A partition is a directory (the caller picks the path, by convention `<topic>-<partition>`) holding a sequence of
//! [`LogSegment`](segment::LogSegment)s. Each segment is three files named after the segment's base offset (the first
//! offset it may hold), zero-padded to 20 digits:
//!
//! * `<base>.log`: record batches (magic v2) exactly as producers sent them, except for the fields the broker owns
//!   (base offset, partition leader epoch and, for `LogAppendTime` topics, the max timestamp). See [`batch`].
//! * `<base>.index`: the sparse offset index, see [`offset_index`].
//! * `<base>.timeindex`: the sparse time index, see [`time_index`].
//! * `<base>.txnindex`: the aborted transactions whose ABORT marker the segment holds, see [`transaction_index`];
//!   present only once there is one.
//!
//! Transactions (KIP-98): a transactional producer's batches are ordinary data batches with the transactional bit;
//! the transaction coordinator ends a transaction by having each partition's leader append a marker, a control
//! batch ([`batch::encode_control_batch`], [`Log::append_marker`]). The [`producer_state`] tracks the open
//! transactions, whose first offset holds back the LastStableOffset that read_committed fetches stop at, and the
//! transaction index lets such a fetch tell the consumer which of the records it returns were aborted.
//!
//! Small checkpoint files record how far the directory is known to be intact, the LogStartOffset and the log
//! cleaner's progress; see [`checkpoint`]. Retention renames deleted segments to `*.deleted` (see `retention`), and
//! the log cleaner writes `*.log.cleaned` and `*.log.<end>.swap` files while it swaps segments (see `cleaner`);
//! [`Log::open`] clears or completes whatever a crash left of those. The files are
//! byte-compatible with Kafka's, so a partition directory copied from a Kafka broker opens here and vice versa.
//!
//! [`Log`] is the only type the rest of the broker needs: it appends a producer's batch (assigning offsets),
//! serves fetches, answers ListOffsets, rolls segments and recovers after a crash. It does no locking of its own;
//! the caller serialises mutation (appends take `&mut self`) and fsyncs outside its lock via
//! [`Log::unflushed`] / [`Log::mark_flushed`].

pub mod batch;
pub mod checkpoint;
mod cleaner;
pub mod leader_epoch;
mod log;
pub mod meta_properties;
pub mod offset_index;
mod offset_map;
pub mod producer_state;
mod records;
pub mod segment;
pub mod time_index;
pub mod transaction_index;

mod index_file;
mod retention;

#[cfg(test)]
mod log_tests;
#[cfg(test)]
mod log_txn_tests;
#[cfg(test)]
pub(crate) mod test_batches;

pub use batch::{BatchHeader, ControlRecordType, EndTxnMarker};
pub use cleaner::{build as build_cleaned, CleanPlan, CleanStats, Cleaned};
pub use log::Log;
pub use offset_map::OffsetMap;
pub use transaction_index::AbortedTxn;

use crate::ids::{LeaderEpoch, Offset};

/// Which clock a topic's record timestamps come from (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// The producer's timestamp, validated against `message.timestamp.{before,after}.max.ms`.
    #[default]
    CreateTime,
    /// The broker overwrites the batch's max timestamp with the time of the append.
    LogAppendTime,
}

/// The per-topic settings a log obeys. Field comments name Kafka's config keys.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `segment.bytes` / `log.segment.bytes`.
    pub segment_bytes: u32,
    /// `segment.ms` / `log.roll.ms`.
    pub segment_ms: i64,
    /// `index.interval.bytes` / `log.index.interval.bytes`.
    pub index_interval_bytes: u32,
    /// `segment.index.bytes` / `log.index.size.max.bytes`.
    pub segment_index_bytes: u32,
    /// `max.message.bytes` / `message.max.bytes`: the limit on one batch, header included.
    pub max_message_bytes: u32,
    /// `message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`.
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`.
    pub message_timestamp_after_max_ms: i64,
    /// `cleanup.policy` contains `delete`: time and size retention apply.
    pub cleanup_delete: bool,
    /// `cleanup.policy` contains `compact`: the log cleaner compacts the log, and every record needs a key.
    pub cleanup_compact: bool,
    /// `retention.ms` / `log.retention.ms`; negative means no limit.
    pub retention_ms: i64,
    /// `retention.bytes` / `log.retention.bytes`; negative means no limit.
    pub retention_bytes: i64,
    /// `file.delete.delay.ms` / `log.segment.delete.delay.ms`: how long a deleted segment's files linger.
    pub file_delete_delay_ms: i64,
    /// `delete.retention.ms` / `log.cleaner.delete.retention.ms`: how long tombstones survive cleaning.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms` / `log.cleaner.min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms` / `log.cleaner.max.compaction.lag.ms`.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio` / `log.cleaner.min.cleanable.ratio`.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.insync.replicas`: stored now, enforced once partitions have followers.
    pub min_insync_replicas: i32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
            max_message_bytes: 1024 * 1024 + 12,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: i64::MAX,
            cleanup_delete: true,
            cleanup_compact: false,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            file_delete_delay_ms: 60_000,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
            min_insync_replicas: 1,
        }
    }
}

/// Who appends as leader (Kafka's `AppendOrigin`). Only a client's batches are checked for sequence and
/// duplicates; the replica manager also refuses clients the internal topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer's request.
    Client,
    /// A coordinator of this broker writing its own records (the group coordinator's offset commits, the
    /// transaction coordinator's markers).
    Coordinator,
}

/// What a leader append did, for the produce response and the replica manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogAppendInfo {
    pub first_offset: Offset,
    pub last_offset: Offset,
    /// `Some(now_ms)` when the topic uses `LogAppendTime`; the produce response echoes it.
    pub log_append_time_ms: Option<i64>,
    pub record_count: u32,
    /// The batch's max timestamp as stored (the append time under `LogAppendTime`).
    pub max_timestamp: i64,
    /// The leader epoch the records were written in (for a retry recognised as a duplicate, the epoch it is
    /// answered in): an acks=all acknowledgement completes only while this broker still leads in it.
    pub leader_epoch: LeaderEpoch,
}

/// A per-record rule of Kafka's leader validation that a record can break (KIP-467 record errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordRule {
    /// A compacted topic's records need a key.
    KeyRequired,
    /// A CreateTime timestamp outside `message.timestamp.{before,after}.max.ms` of the broker's clock.
    TimestampInWindow,
}

/// One record of a refused batch: where it is in the batch (0-based) and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub rule: RecordRule,
    pub message: String,
}

/// Everything that can go wrong in the storage layer. The API boundary maps each variant to a Kafka error code
/// (noted per variant); the storage layer itself never deals in codes.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// CRC mismatch, a length field that disagrees with the bytes, a truncated batch. Kafka: CORRUPT_MESSAGE (2).
    #[error("corrupt record batch: {0}")]
    CorruptMessage(String),
    /// Not exactly one batch, wrong magic, nonsensical counts or offsets. Kafka: INVALID_RECORD (87).
    #[error("invalid record batch: {0}")]
    InvalidRecord(String),
    /// The batch is larger than `max.message.bytes`. Kafka: MESSAGE_TOO_LARGE (10).
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    MessageTooLarge { size: usize, max: u32 },
    /// The batch can never fit in a segment (`segment.bytes`). Kafka: RECORD_LIST_TOO_LARGE (18).
    #[error("record batch of {size} bytes exceeds segment.bytes {segment_bytes}")]
    RecordListTooLarge { size: usize, segment_bytes: u32 },
    /// A CreateTime timestamp outside the topic's accepted window. Kafka: INVALID_TIMESTAMP (32).
    #[error("timestamp {timestamp_ms} is outside the accepted window around {now_ms}")]
    InvalidTimestamp { timestamp_ms: i64, now_ms: i64 },
    /// Records broke per-record rules, so the whole batch is refused; the errors (in batch order, at least one)
    /// name each such record. Kafka: INVALID_TIMESTAMP (32) if any broke the timestamp window, else
    /// INVALID_RECORD (87), with the errors as the response's record_errors.
    #[error("{}", describe_record_errors(.0))]
    InvalidRecords(Vec<RecordError>),
    /// Kafka: OFFSET_OUT_OF_RANGE (1).
    #[error("offset {offset} is outside [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: Offset,
        log_start_offset: Offset,
        log_end_offset: Offset,
    },
    /// An idempotent producer's batch out of epoch or sequence (see [`producer_state`]).
    #[error(transparent)]
    ProducerState(#[from] producer_state::ProducerStateError),
    /// Kafka: KAFKA_STORAGE_ERROR (56). The log may be unusable afterwards; the caller should take it offline.
    #[error("log I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The leader-epoch checkpoint could not be read or written. Kafka: KAFKA_STORAGE_ERROR (56).
    #[error(transparent)]
    LeaderEpoch(#[from] leader_epoch::LeaderEpochError),
}

/// The partition-level message for a batch refused record by record: how many, and the first few reasons.
fn describe_record_errors(errors: &[RecordError]) -> String {
    const SHOWN: usize = 3;
    let first: Vec<String> = errors
        .iter()
        .take(SHOWN)
        .map(|e| format!("record {}: {}", e.batch_index, e.message))
        .collect();
    let more = errors.len().saturating_sub(SHOWN);
    let tail = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    format!(
        "batch refused, {} invalid record(s): {}{tail}",
        errors.len(),
        first.join("; ")
    )
}
