//! The record batch (magic v2) header: a zero-copy view, the checks a leader applies to a produced batch, and the
//! in-place rewrites of the fields the broker owns.
//!
//! Layout (big-endian), offsets from the start of the batch:
//!
//! ```text
//!  0 baseOffset           i64   assigned by the leader
//!  8 batchLength          i32   bytes that follow this field
//! 12 partitionLeaderEpoch i32   assigned by the leader
//! 16 magic                i8    2
//! 17 crc                  u32   CRC-32C of bytes 21..end
//! 21 attributes           i16   bits 0-2 compression, 3 timestamp type, 4 transactional, 5 control
//! 23 lastOffsetDelta      i32
//! 27 baseTimestamp        i64
//! 35 maxTimestamp         i64
//! 43 producerId           i64
//! 51 producerEpoch        i16
//! 53 baseSequence         i32
//! 57 recordCount          i32
//! 61 records
//! ```
//!
//! The CRC starts after the fields the broker rewrites on every append (base offset, leader epoch), so assigning
//! offsets never costs a checksum; only a rewrite of the max timestamp or attributes (LogAppendTime) does.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression as Codec, Record, RecordBatchEncoder, RecordEncodeOptions,
};

use super::records;
use super::{LogConfig, LogError, RecordError, RecordRule, TimestampType};
use crate::ids::{ProducerEpoch, ProducerId};

pub const BASE_OFFSET_POS: usize = 0;
pub const LENGTH_POS: usize = 8;
pub const PARTITION_LEADER_EPOCH_POS: usize = 12;
pub const MAGIC_POS: usize = 16;
pub const CRC_POS: usize = 17;
pub const ATTRIBUTES_POS: usize = 21;
pub const LAST_OFFSET_DELTA_POS: usize = 23;
pub const BASE_TIMESTAMP_POS: usize = 27;
pub const MAX_TIMESTAMP_POS: usize = 35;
pub const PRODUCER_ID_POS: usize = 43;
pub const PRODUCER_EPOCH_POS: usize = 51;
pub const RECORD_COUNT_POS: usize = 57;
/// Bytes before the batch length field counts from: base offset and the length itself.
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed header; the smallest possible batch.
pub const HEADER_SIZE: usize = 61;
pub const MAGIC_V2: i8 = 2;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;
/// Kafka's `RecordBatch.NO_TIMESTAMP`: the producer did not set one, so there is nothing to validate.
pub const NO_TIMESTAMP: i64 = -1;
/// Kafka's `RecordBatch.NO_SEQUENCE`: the batch carries no sequence (a broker-written batch with a producer id).
pub const NO_SEQUENCE: i32 = -1;
/// The version of a control record's key (Kafka's `ControlRecordType.CURRENT_CONTROL_RECORD_KEY_VERSION`).
const CONTROL_KEY_VERSION: i16 = 0;
/// The version of a transaction marker's value (Kafka's `EndTransactionMarker.CURRENT_END_TXN_MARKER_VERSION`).
const END_TXN_MARKER_VERSION: i16 = 0;

/// Compression codecs by their attribute id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// The fixed header of one batch, decoded. Cheap to copy; holds no bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

fn be_i64(buf: &[u8], pos: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[pos..pos + 8]);
    i64::from_be_bytes(b)
}

fn be_i32(buf: &[u8], pos: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[pos..pos + 4]);
    i32::from_be_bytes(b)
}

fn be_i16(buf: &[u8], pos: usize) -> i16 {
    i16::from_be_bytes([buf[pos], buf[pos + 1]])
}

impl BatchHeader {
    /// Decodes the fixed header from the start of `buf`; `None` if fewer than [`HEADER_SIZE`] bytes. Checks nothing
    /// else: callers decide what a bad field means for them.
    pub fn parse(buf: &[u8]) -> Option<BatchHeader> {
        if buf.len() < HEADER_SIZE {
            return None;
        }
        Some(BatchHeader {
            base_offset: be_i64(buf, BASE_OFFSET_POS),
            batch_length: be_i32(buf, LENGTH_POS),
            partition_leader_epoch: be_i32(buf, PARTITION_LEADER_EPOCH_POS),
            magic: buf[MAGIC_POS] as i8,
            crc: be_i32(buf, CRC_POS) as u32,
            attributes: be_i16(buf, ATTRIBUTES_POS),
            last_offset_delta: be_i32(buf, LAST_OFFSET_DELTA_POS),
            base_timestamp: be_i64(buf, BASE_TIMESTAMP_POS),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_POS),
            producer_id: be_i64(buf, PRODUCER_ID_POS),
            producer_epoch: be_i16(buf, PRODUCER_EPOCH_POS),
            base_sequence: be_i32(buf, 53),
            record_count: be_i32(buf, RECORD_COUNT_POS),
        })
    }

    /// The whole batch's size on disk, or `None` when the length field is too small to hold a header.
    pub fn size_in_bytes(&self) -> Option<usize> {
        let len = usize::try_from(self.batch_length).ok()?;
        (len >= HEADER_SIZE - LOG_OVERHEAD).then_some(len + LOG_OVERHEAD)
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// `None` for ids 5..=7, which no Kafka version defines.
    pub fn compression(&self) -> Option<Compression> {
        match self.attributes & COMPRESSION_MASK {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
}

/// The whole batches at the front of `bytes`, each with its header, in order; stops at a partial batch (a read or
/// a fetch may end mid-batch) or a length field too small for a header. Checks nothing else.
pub fn whole_batches(mut bytes: Bytes) -> impl Iterator<Item = (BatchHeader, Bytes)> {
    std::iter::from_fn(move || {
        let header = BatchHeader::parse(&bytes)?;
        let size = header.size_in_bytes().filter(|size| *size <= bytes.len())?;
        Some((header, bytes.split_to(size)))
    })
}

/// CRC-32C of everything after the CRC field; `batch` must hold the whole batch.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(ATTRIBUTES_POS..).unwrap_or_default())
}

/// Checks that `batch` is exactly one complete, uncorrupted v2 batch and returns its header. This is the check
/// applied to every batch read back during recovery as well as to produced batches.
pub fn check_framing(batch: &[u8]) -> Result<BatchHeader, LogError> {
    let header = BatchHeader::parse(batch).ok_or_else(|| {
        LogError::CorruptMessage(format!(
            "{} bytes is shorter than a record batch header",
            batch.len()
        ))
    })?;
    if header.magic != MAGIC_V2 {
        return Err(LogError::InvalidRecord(format!(
            "magic {} is not supported, only {MAGIC_V2}",
            header.magic
        )));
    }
    let size = header.size_in_bytes().ok_or_else(|| {
        LogError::CorruptMessage(format!("batch length {} is too small", header.batch_length))
    })?;
    if size > batch.len() {
        return Err(LogError::CorruptMessage(format!(
            "batch claims {size} bytes but only {} are present",
            batch.len()
        )));
    }
    if size < batch.len() {
        return Err(LogError::InvalidRecord(
            "a produce must carry exactly one record batch per partition".into(),
        ));
    }
    let crc = compute_crc(batch);
    if crc != header.crc {
        return Err(LogError::CorruptMessage(format!(
            "CRC mismatch: batch says {:#010x}, computed {crc:#010x}",
            header.crc
        )));
    }
    if header.compression().is_none() {
        return Err(LogError::InvalidRecord(format!(
            "unknown compression type {}",
            header.attributes & COMPRESSION_MASK
        )));
    }
    Ok(header)
}

/// What the leader learned about a produced batch while validating it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatedBatch {
    pub header: BatchHeader,
    pub size: usize,
    /// The max record timestamp, recomputed from the records when they are uncompressed.
    pub max_timestamp: i64,
}

/// Everything Kafka's LogValidator checks for a leader append of a client's batch: framing and CRC, size limit,
/// record count against the offset delta, and the per-record rules (a key on a compacted topic, CreateTime
/// timestamps in the window), each broken rule reported against its record (KIP-467). Uncompressed batches are
/// walked record by record, also checking counts and offset deltas. Compressed batches are inflated only when a
/// rule needs their records: always on a compacted topic, else only when the header's timestamps fall outside the
/// window (to name the culprits), because inflating every batch on the produce path would cost more than the
/// lookups it protects.
pub fn validate_for_append(
    batch: &[u8],
    config: &LogConfig,
    now_ms: i64,
) -> Result<ValidatedBatch, LogError> {
    let header = check_framing(batch)?;
    let size = batch.len();
    if size > config.max_message_bytes as usize {
        return Err(LogError::MessageTooLarge {
            size,
            max: config.max_message_bytes,
        });
    }
    if header.record_count < 1 {
        return Err(LogError::InvalidRecord(format!(
            "record count {} (a batch holds at least one record)",
            header.record_count
        )));
    }
    if i64::from(header.last_offset_delta) + 1 != i64::from(header.record_count) {
        return Err(LogError::InvalidRecord(format!(
            "last offset delta {} does not match record count {}",
            header.last_offset_delta, header.record_count
        )));
    }
    if header.is_control() {
        return Err(LogError::InvalidRecord(
            "clients may not produce control batches".into(),
        ));
    }
    let check_timestamps = config.message_timestamp_type == TimestampType::CreateTime;
    let (errors, max_timestamp) = if header.compression() == Some(Compression::None) {
        let records = &batch[HEADER_SIZE..];
        let walk = walk_records(records, &header, config, now_ms, true)?;
        if walk.consumed != records.len() {
            return Err(LogError::CorruptMessage(format!(
                "{} bytes follow the last record",
                records.len() - walk.consumed
            )));
        }
        (walk.errors, walk.max_timestamp)
    } else {
        let header_in_window = !check_timestamps
            || (in_window(header.base_timestamp, config, now_ms)
                && in_window(header.max_timestamp, config, now_ms));
        let errors = if config.cleanup_compact || !header_in_window {
            records::with_records(batch, &header, |records| {
                Ok(walk_records(records, &header, config, now_ms, false)?.errors)
            })?
        } else {
            Vec::new()
        };
        if !header_in_window && errors.is_empty() {
            // The header claims a timestamp that no record has: refuse the batch as a whole.
            return Err(LogError::InvalidTimestamp {
                timestamp_ms: header.max_timestamp,
                now_ms,
            });
        }
        (errors, header.max_timestamp)
    };
    if !errors.is_empty() {
        return Err(LogError::InvalidRecords(errors));
    }
    Ok(ValidatedBatch {
        header,
        size,
        max_timestamp,
    })
}

/// What one walk over a batch's records found.
struct Walk {
    errors: Vec<RecordError>,
    max_timestamp: i64,
    consumed: usize,
}

/// Applies the per-record rules to every record, one error per record at most (the key's first, as Kafka reports
/// them). With `strict_offsets`, offset deltas that do not count 0, 1, 2... refuse the batch outright.
fn walk_records(
    records: &[u8],
    header: &BatchHeader,
    config: &LogConfig,
    now_ms: i64,
    strict_offsets: bool,
) -> Result<Walk, LogError> {
    let check_timestamps = config.message_timestamp_type == TimestampType::CreateTime;
    let mut errors = Vec::new();
    let mut max_timestamp = NO_TIMESTAMP;
    let mut index = 0i32;
    let walked = records::for_each_record(records, header, |record| {
        if strict_offsets && record.offset_delta != index {
            return Err(LogError::InvalidRecord(format!(
                "record offset delta {} where {index} was expected",
                record.offset_delta
            )));
        }
        let broken = if config.cleanup_compact && !record.has_key {
            Some((
                RecordRule::KeyRequired,
                "Compacted topic cannot accept message without key".to_string(),
            ))
        } else if check_timestamps && !in_window(record.timestamp, config, now_ms) {
            Some((
                RecordRule::TimestampInWindow,
                format!(
                    "timestamp {} is outside the accepted window [{}, {}]",
                    record.timestamp,
                    now_ms.saturating_sub(config.message_timestamp_before_max_ms),
                    now_ms.saturating_add(config.message_timestamp_after_max_ms)
                ),
            ))
        } else {
            None
        };
        if let Some((rule, message)) = broken {
            errors.push(RecordError {
                batch_index: index,
                rule,
                message,
            });
        }
        index = index.saturating_add(1);
        max_timestamp = max_timestamp.max(record.timestamp);
        Ok(records::Flow::Continue)
    })?;
    Ok(Walk {
        errors,
        max_timestamp,
        consumed: walked.consumed,
    })
}

/// Whether a CreateTime timestamp is within `message.timestamp.{before,after}.max.ms` of the broker's clock. A
/// record without a timestamp has nothing to check.
fn in_window(timestamp_ms: i64, config: &LogConfig, now_ms: i64) -> bool {
    if timestamp_ms == NO_TIMESTAMP {
        return true;
    }
    let too_old = now_ms.saturating_sub(timestamp_ms) > config.message_timestamp_before_max_ms;
    let too_new = timestamp_ms.saturating_sub(now_ms) > config.message_timestamp_after_max_ms;
    !(too_old || too_new)
}

/// Stamps the fields the leader owns. The base offset and leader epoch sit before the CRC'd range, so they cost
/// nothing; the timestamp type and max timestamp are inside it, so the CRC is recomputed only when they change.
pub fn assign_in_place(
    batch: &mut [u8],
    base_offset: i64,
    leader_epoch: i32,
    timestamp_type: TimestampType,
    max_timestamp: i64,
) {
    if batch.len() < HEADER_SIZE {
        return;
    }
    batch[BASE_OFFSET_POS..BASE_OFFSET_POS + 8].copy_from_slice(&base_offset.to_be_bytes());
    batch[PARTITION_LEADER_EPOCH_POS..PARTITION_LEADER_EPOCH_POS + 4]
        .copy_from_slice(&leader_epoch.to_be_bytes());
    let old_attributes = be_i16(batch, ATTRIBUTES_POS);
    let attributes = match timestamp_type {
        TimestampType::CreateTime => old_attributes & !TIMESTAMP_TYPE_BIT,
        TimestampType::LogAppendTime => old_attributes | TIMESTAMP_TYPE_BIT,
    };
    let old_max = be_i64(batch, MAX_TIMESTAMP_POS);
    if attributes != old_attributes || max_timestamp != old_max {
        batch[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
        batch[MAX_TIMESTAMP_POS..MAX_TIMESTAMP_POS + 8]
            .copy_from_slice(&max_timestamp.to_be_bytes());
        let crc = compute_crc(batch);
        batch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

/// A record the broker writes itself (the group coordinator's records; tests'), as [`encode_batch`] takes it.
pub struct BrokerRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub timestamp_ms: i64,
}

/// Encodes `records` as one magic v2 batch with offsets 0.. (the leader assigns real ones on append), CreateTime,
/// no producer id, compressed with `codec`.
pub fn encode_batch(
    records: impl IntoIterator<Item = BrokerRecord>,
    codec: Codec,
) -> Result<Bytes, LogError> {
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, record)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: i as i64,
            // kafka-protocol's encoder starts a new batch wherever offset - sequence changes; keeping it constant
            // keeps one batch, whose base sequence stays -1 (no idempotent producer).
            sequence: i as i32 - 1,
            timestamp: record.timestamp_ms,
            key: record.key,
            value: record.value,
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: codec,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options)
        .map_err(|e| LogError::InvalidRecord(format!("cannot encode a batch: {e:#}")))?;
    Ok(buf.freeze())
}

/// [`encode_batch`], as part of a transaction of `producer_id`: the transactional attribute set, the producer's id
/// and epoch in the header, base sequence -1 (as Kafka's coordinators write their transactional records: they are
/// no idempotent producer, so there is no sequence to check). The header fields are stamped after encoding and the
/// CRC recomputed, which keeps the encoder in one place.
pub fn encode_transactional_batch(
    records: impl IntoIterator<Item = BrokerRecord>,
    codec: Codec,
    producer_id: ProducerId,
    producer_epoch: ProducerEpoch,
) -> Result<Bytes, LogError> {
    let mut batch = encode_batch(records, codec)?.to_vec();
    if batch.len() < HEADER_SIZE {
        return Err(LogError::InvalidRecord(
            "an encoded batch without a header".into(),
        ));
    }
    let attributes = i16::from_be_bytes([batch[ATTRIBUTES_POS], batch[ATTRIBUTES_POS + 1]]);
    batch[ATTRIBUTES_POS..ATTRIBUTES_POS + 2]
        .copy_from_slice(&(attributes | TRANSACTIONAL_BIT).to_be_bytes());
    batch[PRODUCER_ID_POS..PRODUCER_ID_POS + 8].copy_from_slice(&producer_id.0.to_be_bytes());
    batch[PRODUCER_EPOCH_POS..PRODUCER_EPOCH_POS + 2]
        .copy_from_slice(&producer_epoch.0.to_be_bytes());
    let crc = compute_crc(&batch);
    batch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(Bytes::from(batch))
}

/// The type of a transaction marker, the key of the one record in a control batch (Kafka's `ControlRecordType`;
/// other control types, such as KRaft's, never carry a producer id and are not markers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRecordType {
    /// The transaction's records are to be skipped by read_committed consumers.
    Abort,
    /// The transaction's records become visible to read_committed consumers.
    Commit,
}

impl ControlRecordType {
    fn to_wire(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
        }
    }

    fn from_wire(value: i16) -> Option<ControlRecordType> {
        match value {
            0 => Some(ControlRecordType::Abort),
            1 => Some(ControlRecordType::Commit),
            _ => None,
        }
    }
}

/// What a transaction marker says (Kafka's `EndTransactionMarker`): how the transaction ended, and the epoch of the
/// transaction coordinator that ended it (so a marker from a zombie coordinator can be refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnMarker {
    pub control_type: ControlRecordType,
    pub coordinator_epoch: i32,
}

fn put_varint(out: &mut Vec<u8>, value: i32) {
    let mut z = ((value << 1) ^ (value >> 31)) as u32;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Encodes a transaction marker as Kafka's `MemoryRecords.withEndTransactionMarker` does: one uncompressed batch,
/// attributes transactional and control, the producer's id and epoch, base sequence -1 (NO_SEQUENCE), CreateTime,
/// offsets from 0 (the leader assigns them on append), and one record whose key is `version i16 (0) | type i16
/// (0 ABORT, 1 COMMIT)` and whose value is `version i16 (0) | coordinator_epoch i32`.
pub fn encode_control_batch(
    producer_id: ProducerId,
    producer_epoch: ProducerEpoch,
    marker: ControlRecordType,
    coordinator_epoch: i32,
    timestamp_ms: i64,
) -> Bytes {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&CONTROL_KEY_VERSION.to_be_bytes());
    key.extend_from_slice(&marker.to_wire().to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&END_TXN_MARKER_VERSION.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let mut body = vec![0u8]; // record attributes: unused
    body.push(0); // timestamp delta 0 (a varlong)
    put_varint(&mut body, 0); // offset delta
    put_varint(&mut body, key.len() as i32);
    body.extend_from_slice(&key);
    put_varint(&mut body, value.len() as i32);
    body.extend_from_slice(&value);
    put_varint(&mut body, 0); // no headers
    let mut record = Vec::with_capacity(body.len() + 1);
    put_varint(&mut record, body.len() as i32);
    record.extend_from_slice(&body);

    let mut buf = Vec::with_capacity(HEADER_SIZE + record.len());
    buf.extend_from_slice(&0i64.to_be_bytes()); // base offset
    buf.extend_from_slice(&((HEADER_SIZE - LOG_OVERHEAD + record.len()) as i32).to_be_bytes());
    buf.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch, assigned on append
    buf.push(MAGIC_V2 as u8);
    buf.extend_from_slice(&0u32.to_be_bytes()); // CRC, below
    buf.extend_from_slice(&(TRANSACTIONAL_BIT | CONTROL_BIT).to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    buf.extend_from_slice(&timestamp_ms.to_be_bytes());
    buf.extend_from_slice(&timestamp_ms.to_be_bytes());
    buf.extend_from_slice(&producer_id.0.to_be_bytes());
    buf.extend_from_slice(&producer_epoch.0.to_be_bytes());
    buf.extend_from_slice(&NO_SEQUENCE.to_be_bytes());
    buf.extend_from_slice(&1i32.to_be_bytes()); // record count
    buf.extend_from_slice(&record);
    let crc = compute_crc(&buf);
    buf[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(buf)
}

/// The transaction marker a batch carries: `None` for a data batch, an empty control batch (Kafka's cleaner leaves
/// those once a transaction's records are gone) or a control record of another type. A control record too short
/// for its key or value, or with a negative key version, is corrupt, as Kafka's `EndTransactionMarker` finds it.
pub fn end_txn_marker(
    batch: &[u8],
    header: &BatchHeader,
) -> Result<Option<EndTxnMarker>, LogError> {
    if !header.is_control() || header.record_count < 1 {
        return Ok(None);
    }
    records::with_records(batch, header, |records| {
        let Some((key, value)) = records::first_key_value(records)? else {
            return Ok(None);
        };
        let corrupt = |what: &str| LogError::CorruptMessage(format!("control record: {what}"));
        let key = key
            .filter(|k| k.len() >= 4)
            .ok_or_else(|| corrupt("key too short"))?;
        if be_i16(key, 0) < 0 {
            return Err(corrupt("negative key version"));
        }
        let Some(control_type) = ControlRecordType::from_wire(be_i16(key, 2)) else {
            return Ok(None);
        };
        let value = value
            .filter(|v| v.len() >= 6)
            .ok_or_else(|| corrupt("transaction marker value too short"))?;
        Ok(Some(EndTxnMarker {
            control_type,
            coordinator_epoch: be_i32(value, 2),
        }))
    })
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
