//! The primitive encodings of Kafka's coordinator record schemas (`__consumer_offsets`, `__transaction_state`):
//! int16-length strings, int32-length bytes, and for flexible versions unsigned varints, compact strings and tagged
//! fields. kafka-protocol keeps its own primitive codecs private, so the few the records need are here, once.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Why a coordinator record cannot be encoded or decoded.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("record truncated")]
    Truncated,
    #[error("a string is not UTF-8")]
    Utf8,
    #[error("a required field is null")]
    Null,
    #[error("unsupported {what} version {version}")]
    Version { what: &'static str, version: i16 },
    #[error("{field} has no meaning for {value}")]
    BadValue { field: &'static str, value: i64 },
    #[error("a field is too long to encode")]
    TooLong,
}

pub fn put_string(buf: &mut BytesMut, s: &str) -> Result<(), RecordError> {
    put_nullable_string(buf, Some(s))
}

pub fn put_nullable_string(buf: &mut BytesMut, s: Option<&str>) -> Result<(), RecordError> {
    match s {
        None => buf.put_i16(-1),
        Some(s) => {
            buf.put_i16(i16::try_from(s.len()).map_err(|_| RecordError::TooLong)?);
            buf.put_slice(s.as_bytes());
        }
    }
    Ok(())
}

pub fn put_bytes(buf: &mut BytesMut, b: &[u8]) -> Result<(), RecordError> {
    buf.put_i32(i32::try_from(b.len()).map_err(|_| RecordError::TooLong)?);
    buf.put_slice(b);
    Ok(())
}

/// An array's int32 length.
pub fn put_len(buf: &mut BytesMut, len: usize) -> Result<(), RecordError> {
    buf.put_i32(i32::try_from(len).map_err(|_| RecordError::TooLong)?);
    Ok(())
}

pub fn get_i8(buf: &mut &[u8]) -> Result<i8, RecordError> {
    buf.try_get_i8().map_err(|_| RecordError::Truncated)
}

pub fn get_i16(buf: &mut &[u8]) -> Result<i16, RecordError> {
    buf.try_get_i16().map_err(|_| RecordError::Truncated)
}

pub fn get_i32(buf: &mut &[u8]) -> Result<i32, RecordError> {
    buf.try_get_i32().map_err(|_| RecordError::Truncated)
}

pub fn get_i64(buf: &mut &[u8]) -> Result<i64, RecordError> {
    buf.try_get_i64().map_err(|_| RecordError::Truncated)
}

pub fn take(buf: &mut &[u8], len: usize) -> Result<Bytes, RecordError> {
    if buf.remaining() < len {
        return Err(RecordError::Truncated);
    }
    Ok(buf.copy_to_bytes(len))
}

fn utf8(bytes: Bytes) -> Result<String, RecordError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| RecordError::Utf8)
}

pub fn get_nullable_string(buf: &mut &[u8]) -> Result<Option<String>, RecordError> {
    let len = get_i16(buf)?;
    if len < 0 {
        return Ok(None);
    }
    take(buf, len as usize).and_then(utf8).map(Some)
}

pub fn get_string(buf: &mut &[u8]) -> Result<String, RecordError> {
    get_nullable_string(buf)?.ok_or(RecordError::Null)
}

pub fn get_bytes(buf: &mut &[u8]) -> Result<Bytes, RecordError> {
    let len = get_i32(buf)?;
    if len < 0 {
        return Ok(Bytes::new());
    }
    take(buf, len as usize)
}

/// An unsigned varint of at most 5 bytes (the lengths and tags of flexible versions).
pub fn get_uvarint(buf: &mut &[u8]) -> Result<u64, RecordError> {
    let mut value = 0u64;
    for shift in (0..35).step_by(7) {
        let byte = buf.try_get_u8().map_err(|_| RecordError::Truncated)?;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(RecordError::Truncated)
}

/// A compact (varint length + 1) array or string length; `None` for null.
pub fn get_compact_len(buf: &mut &[u8]) -> Result<Option<usize>, RecordError> {
    match get_uvarint(buf)?.checked_sub(1) {
        None => Ok(None),
        Some(len) => usize::try_from(len)
            .map(Some)
            .map_err(|_| RecordError::Truncated),
    }
}

pub fn get_compact_string(buf: &mut &[u8]) -> Result<String, RecordError> {
    let len = get_compact_len(buf)?.ok_or(RecordError::Null)?;
    take(buf, len).and_then(utf8)
}

/// Tagged fields as (tag, data), in order.
pub fn get_tagged_fields(buf: &mut &[u8]) -> Result<Vec<(u64, Bytes)>, RecordError> {
    let count = get_uvarint(buf)?;
    let mut fields = Vec::new();
    for _ in 0..count {
        let tag = get_uvarint(buf)?;
        let size = usize::try_from(get_uvarint(buf)?).map_err(|_| RecordError::Truncated)?;
        fields.push((tag, take(buf, size)?));
    }
    Ok(fields)
}
