//! Walking the records inside one batch, for the few places that must look past the header: validating records on
//! a produce and finding a record by timestamp.
//!
//! Only the first fields of each record are read (length, attributes, timestamp delta, offset delta, key length). We do
//! not use `RecordBatchDecoder` here: it materialises every key, value and header, and it reserves room for
//! `recordCount` records up front, a count that a hostile batch sets to two billion. kafka-protocol keeps its varint
//! decoder crate-private, so the two varint readers below are ours. Decompression is kafka-protocol's.

use bytes::Bytes;
use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};

use super::batch::{BatchHeader, Compression, HEADER_SIZE};
use super::{LogError, TimestampType};

/// Whether a record walk should go on.
pub(crate) enum Flow {
    Continue,
    Stop,
}

/// What a walk sees of one record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordView {
    pub offset_delta: i32,
    pub timestamp: i64,
    /// A null key (length -1) is no key; an empty key is one.
    pub has_key: bool,
}

/// How far a walk got.
pub(crate) struct Walked {
    /// Bytes of the records section consumed.
    pub consumed: usize,
}

fn corrupt(what: &str) -> LogError {
    LogError::CorruptMessage(format!("malformed record: {what}"))
}

/// Reads an unsigned LEB128 varint of at most `max_bytes` bytes.
fn read_unsigned(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Result<u64, LogError> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let b = *buf
            .get(*pos)
            .ok_or_else(|| corrupt("varint runs past the record"))?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(corrupt("varint too long"))
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32, LogError> {
    let z = read_unsigned(buf, pos, 5)? as u32;
    Ok(((z >> 1) as i32) ^ -((z & 1) as i32))
}

fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, LogError> {
    let z = read_unsigned(buf, pos, 10)?;
    Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
}

/// Calls `f` for each record of an uncompressed records section, in order, until `f` says stop or
/// `header.record_count` records have been seen. Under LogAppendTime every record's timestamp is the batch's max
/// timestamp, as Kafka defines it.
pub(crate) fn for_each_record<F>(
    records: &[u8],
    header: &BatchHeader,
    mut f: F,
) -> Result<Walked, LogError>
where
    F: FnMut(RecordView) -> Result<Flow, LogError>,
{
    let append_time = header.timestamp_type() == TimestampType::LogAppendTime;
    let mut pos = 0usize;
    // Every iteration consumes at least one byte or fails, so a lying count cannot spin.
    for _ in 0..header.record_count.max(0) {
        if pos >= records.len() {
            return Err(LogError::CorruptMessage(format!(
                "batch claims {} records but holds fewer",
                header.record_count
            )));
        }
        let len = read_varint(records, &mut pos)?;
        let len = usize::try_from(len).map_err(|_| corrupt("negative length"))?;
        let end = pos
            .checked_add(len)
            .filter(|end| *end <= records.len())
            .ok_or_else(|| corrupt("length runs past the batch"))?;
        let record = &records[pos..end];
        let mut at = 1; // attributes: unused
        let timestamp_delta = read_varlong(record, &mut at)?;
        let offset_delta = read_varint(record, &mut at)?;
        let has_key = read_varint(record, &mut at)? >= 0;
        pos = end;
        let timestamp = if append_time {
            header.max_timestamp
        } else {
            header.base_timestamp.saturating_add(timestamp_delta)
        };
        let view = RecordView {
            offset_delta,
            timestamp,
            has_key,
        };
        if let Flow::Stop = f(view)? {
            break;
        }
    }
    Ok(Walked { consumed: pos })
}

/// The key and value of the first record of an uncompressed records section (`None` for a null one); `None` when
/// the section is empty. For control records, whose key and value are what they mean.
pub(crate) fn first_key_value(records: &[u8]) -> Result<Option<KeyValue<'_>>, LogError> {
    if records.is_empty() {
        return Ok(None);
    }
    let mut pos = 0usize;
    let len =
        usize::try_from(read_varint(records, &mut pos)?).map_err(|_| corrupt("negative length"))?;
    let record = pos
        .checked_add(len)
        .and_then(|end| records.get(pos..end))
        .ok_or_else(|| corrupt("length runs past the batch"))?;
    let mut at = 1; // attributes: unused
    read_varlong(record, &mut at)?; // timestamp delta
    read_varint(record, &mut at)?; // offset delta
    let key = read_field(record, &mut at)?;
    let value = read_field(record, &mut at)?;
    Ok(Some((key, value)))
}

/// A record's key and value; `None` for a null one.
pub(crate) type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// A varint length (-1: null) and that many bytes.
fn read_field<'a>(record: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, LogError> {
    let Ok(len) = usize::try_from(read_varint(record, pos)?) else {
        return Ok(None);
    };
    let field = pos
        .checked_add(len)
        .and_then(|end| record.get(*pos..end))
        .ok_or_else(|| corrupt("field runs past the record"))?;
    *pos += len;
    Ok(Some(field))
}

/// Runs `f` over the batch's records section, inflated if the batch is compressed.
pub(crate) fn with_records<R>(
    batch: &[u8],
    header: &BatchHeader,
    f: impl FnOnce(&[u8]) -> Result<R, LogError>,
) -> Result<R, LogError> {
    let mut body = batch.get(HEADER_SIZE..).unwrap_or_default();
    let take = |b: &mut Bytes| -> anyhow::Result<Bytes> { Ok(std::mem::take(b)) };
    let inflated = match header.compression() {
        Some(Compression::None) => return f(body),
        Some(Compression::Gzip) => Gzip::decompress(&mut body, take),
        Some(Compression::Snappy) => Snappy::decompress(&mut body, take),
        Some(Compression::Lz4) => Lz4::decompress(&mut body, take),
        Some(Compression::Zstd) => Zstd::decompress(&mut body, take),
        None => return Err(corrupt("unknown compression type")),
    }
    .map_err(|e| LogError::CorruptMessage(format!("cannot decompress batch: {e:#}")))?;
    f(&inflated)
}

/// The first record of `batch` whose timestamp is at least `target_ms`, as (timestamp, offset).
pub(crate) fn first_at_or_after(
    batch: &[u8],
    header: &BatchHeader,
    target_ms: i64,
) -> Result<Option<(i64, i64)>, LogError> {
    if header.timestamp_type() == TimestampType::LogAppendTime {
        let hit = header.max_timestamp >= target_ms;
        return Ok(hit.then_some((header.max_timestamp, header.base_offset)));
    }
    with_records(batch, header, |records| {
        let mut found = None;
        for_each_record(records, header, |record| {
            if record.timestamp >= target_ms {
                found = Some((
                    record.timestamp,
                    header
                        .base_offset
                        .saturating_add(i64::from(record.offset_delta)),
                ));
                return Ok(Flow::Stop);
            }
            Ok(Flow::Continue)
        })?;
        Ok(found)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_batches::{batch_with, TestRecord};
    use kafka_protocol::records::Compression as Codec;

    #[test]
    fn finds_record_inside_compressed_batches() {
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Lz4,
            Codec::Snappy,
            Codec::Zstd,
        ] {
            let b = batch_with(
                &[
                    TestRecord::at(100),
                    TestRecord::at(300),
                    TestRecord::at(200),
                    TestRecord::at(400),
                ],
                codec,
            );
            let h = BatchHeader::parse(&b).expect("header");
            assert_eq!(
                first_at_or_after(&b, &h, 150).expect("ok"),
                Some((300, 1)),
                "{codec:?}"
            );
            assert_eq!(first_at_or_after(&b, &h, 400).expect("ok"), Some((400, 3)));
            assert_eq!(first_at_or_after(&b, &h, 401).expect("ok"), None);
        }
    }

    #[test]
    fn varints_round_trip_edges() {
        // zigzag(-1) = 1, zigzag(i32::MIN) = u32::MAX.
        let mut pos = 0;
        assert_eq!(read_varint(&[0x01], &mut pos).expect("ok"), -1);
        let mut pos = 0;
        assert_eq!(
            read_varint(&[0xff, 0xff, 0xff, 0xff, 0x0f], &mut pos).expect("ok"),
            i32::MIN
        );
        let mut pos = 0;
        assert!(read_varint(&[0xff; 6], &mut pos).is_err());
    }
}
