//! The records of `__transaction_state`, in Kafka's own schemas (transaction-coordinator's `TransactionLogKey` and
//! `TransactionLogValue`), so that Kafka's tools can read the topic and a Kafka-written topic loads here.
//!
//! Key: int16 version (0) then the transactional id (int16-length string). Value: int16 version then the fields; a
//! null value is a tombstone (an expired transactional id). Version 0 is the classic encoding; version 1 (what
//! Kafka writes for KIP-890 part 2 clients) is flexible: compact strings and arrays and tagged fields, of which
//! PreviousProducerId (tag 0) and NextProducerId (tag 1) are read. Ferrite writes version 0.

use std::collections::BTreeSet;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::metadata::{TopicPartition, TransactionState};
use crate::ids::{ProducerEpoch, ProducerId};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("record truncated")]
    Truncated,
    #[error("a string is not UTF-8")]
    Utf8,
    #[error("unsupported {what} version {version}")]
    Version { what: &'static str, version: i16 },
    #[error("unknown transaction state {0}")]
    State(i8),
    #[error("a field is too long to encode")]
    TooLong,
}

/// What `__transaction_state` holds for one transactional id (TransactionLogValue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionLogValue {
    pub producer_id: ProducerId,
    /// The producer id before the last rotation (KIP-360), or [`ProducerId::NONE`].
    pub previous_producer_id: ProducerId,
    pub producer_epoch: ProducerEpoch,
    pub timeout_ms: i32,
    pub state: TransactionState,
    pub partitions: BTreeSet<TopicPartition>,
    pub last_update_timestamp_ms: i64,
    /// When the ongoing transaction began (-1 when none has).
    pub start_timestamp_ms: i64,
}

/// One record of a `__transaction_state` partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRecord {
    pub transactional_id: String,
    /// `None`: a tombstone.
    pub value: Option<TransactionLogValue>,
}

impl TransactionRecord {
    pub fn encode_key(&self) -> Result<Bytes, RecordError> {
        let mut buf = BytesMut::new();
        buf.put_i16(0);
        put_string(&mut buf, &self.transactional_id)?;
        Ok(buf.freeze())
    }

    pub fn encode_value(&self) -> Result<Option<Bytes>, RecordError> {
        let Some(value) = &self.value else {
            return Ok(None);
        };
        let mut buf = BytesMut::new();
        buf.put_i16(0);
        buf.put_i64(value.producer_id.0);
        buf.put_i16(value.producer_epoch.0);
        buf.put_i32(value.timeout_ms);
        buf.put_i8(value.state.id());
        let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
        for tp in &value.partitions {
            match topics.last_mut() {
                Some((topic, ids)) if *topic == tp.topic => ids.push(tp.partition),
                _ => topics.push((&tp.topic, vec![tp.partition])),
            }
        }
        buf.put_i32(len_i32(topics.len())?);
        for (topic, ids) in topics {
            put_string(&mut buf, topic)?;
            buf.put_i32(len_i32(ids.len())?);
            for id in ids {
                buf.put_i32(id);
            }
        }
        buf.put_i64(value.last_update_timestamp_ms);
        buf.put_i64(value.start_timestamp_ms);
        Ok(Some(buf.freeze()))
    }

    /// A stored record.
    pub fn decode(mut key: &[u8], value: Option<&[u8]>) -> Result<TransactionRecord, RecordError> {
        let version = get_i16(&mut key)?;
        if version != 0 {
            return Err(RecordError::Version {
                what: "TransactionLogKey",
                version,
            });
        }
        let transactional_id = get_string(&mut key)?;
        let value = value.map(decode_value).transpose()?;
        Ok(TransactionRecord {
            transactional_id,
            value,
        })
    }
}

fn decode_value(mut buf: &[u8]) -> Result<TransactionLogValue, RecordError> {
    let version = get_i16(&mut buf)?;
    let flexible = match version {
        0 => false,
        1 => true,
        version => {
            return Err(RecordError::Version {
                what: "TransactionLogValue",
                version,
            })
        }
    };
    let producer_id = ProducerId(get_i64(&mut buf)?);
    let producer_epoch = ProducerEpoch(get_i16(&mut buf)?);
    let timeout_ms = get_i32(&mut buf)?;
    let state_id = get_i8(&mut buf)?;
    let state = TransactionState::from_id(state_id).ok_or(RecordError::State(state_id))?;
    let mut partitions = BTreeSet::new();
    let topics = if flexible {
        get_uvarint(&mut buf)?.checked_sub(1).map(|n| n as usize)
    } else {
        usize::try_from(get_i32(&mut buf)?).ok()
    };
    for _ in 0..topics.unwrap_or(0) {
        let topic = if flexible {
            get_compact_string(&mut buf)?
        } else {
            get_string(&mut buf)?
        };
        let ids = if flexible {
            get_uvarint(&mut buf)?.saturating_sub(1) as usize
        } else {
            usize::try_from(get_i32(&mut buf)?).unwrap_or(0)
        };
        for _ in 0..ids {
            partitions.insert(TopicPartition {
                topic: topic.clone(),
                partition: get_i32(&mut buf)?,
            });
        }
        if flexible {
            skip_tagged_fields(&mut buf)?;
        }
    }
    let last_update_timestamp_ms = get_i64(&mut buf)?;
    let start_timestamp_ms = get_i64(&mut buf)?;
    let mut previous_producer_id = ProducerId::NONE;
    if flexible {
        let count = get_uvarint(&mut buf)?;
        for _ in 0..count {
            let tag = get_uvarint(&mut buf)?;
            let size = get_uvarint(&mut buf)? as usize;
            if buf.len() < size {
                return Err(RecordError::Truncated);
            }
            let (mut field, rest) = buf.split_at(size);
            if tag == 0 {
                previous_producer_id = ProducerId(get_i64(&mut field)?);
            }
            buf = rest;
        }
    }
    Ok(TransactionLogValue {
        producer_id,
        previous_producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_timestamp_ms,
        start_timestamp_ms,
    })
}

fn len_i32(len: usize) -> Result<i32, RecordError> {
    i32::try_from(len).map_err(|_| RecordError::TooLong)
}

fn put_string(buf: &mut BytesMut, s: &str) -> Result<(), RecordError> {
    buf.put_i16(i16::try_from(s.len()).map_err(|_| RecordError::TooLong)?);
    buf.put_slice(s.as_bytes());
    Ok(())
}

fn need(buf: &[u8], n: usize) -> Result<(), RecordError> {
    if buf.len() < n {
        Err(RecordError::Truncated)
    } else {
        Ok(())
    }
}

fn get_i8(buf: &mut &[u8]) -> Result<i8, RecordError> {
    need(buf, 1)?;
    Ok(buf.get_i8())
}

fn get_i16(buf: &mut &[u8]) -> Result<i16, RecordError> {
    need(buf, 2)?;
    Ok(buf.get_i16())
}

fn get_i32(buf: &mut &[u8]) -> Result<i32, RecordError> {
    need(buf, 4)?;
    Ok(buf.get_i32())
}

fn get_i64(buf: &mut &[u8]) -> Result<i64, RecordError> {
    need(buf, 8)?;
    Ok(buf.get_i64())
}

fn get_uvarint(buf: &mut &[u8]) -> Result<u64, RecordError> {
    let mut value = 0u64;
    for shift in (0..35).step_by(7) {
        need(buf, 1)?;
        let byte = buf.get_u8();
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(RecordError::Truncated)
}

fn take_str(buf: &mut &[u8], len: usize) -> Result<String, RecordError> {
    need(buf, len)?;
    let (s, rest) = buf.split_at(len);
    *buf = rest;
    String::from_utf8(s.to_vec()).map_err(|_| RecordError::Utf8)
}

fn get_string(buf: &mut &[u8]) -> Result<String, RecordError> {
    let len = usize::try_from(get_i16(buf)?).map_err(|_| RecordError::Truncated)?;
    take_str(buf, len)
}

fn get_compact_string(buf: &mut &[u8]) -> Result<String, RecordError> {
    let len = get_uvarint(buf)?
        .checked_sub(1)
        .ok_or(RecordError::Truncated)?;
    take_str(buf, len as usize)
}

fn skip_tagged_fields(buf: &mut &[u8]) -> Result<(), RecordError> {
    for _ in 0..get_uvarint(buf)? {
        get_uvarint(buf)?;
        let size = get_uvarint(buf)? as usize;
        need(buf, size)?;
        buf.advance(size);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value() -> TransactionLogValue {
        TransactionLogValue {
            producer_id: ProducerId(7),
            previous_producer_id: ProducerId::NONE,
            producer_epoch: ProducerEpoch(3),
            timeout_ms: 60_000,
            state: TransactionState::Ongoing,
            partitions: [("a", 0), ("a", 2), ("b", 1)]
                .into_iter()
                .map(|(t, p)| TopicPartition {
                    topic: t.into(),
                    partition: p,
                })
                .collect(),
            last_update_timestamp_ms: 20,
            start_timestamp_ms: 10,
        }
    }

    #[test]
    fn version_0_round_trips_and_matches_kafkas_layout() {
        let record = TransactionRecord {
            transactional_id: "tx".into(),
            value: Some(value()),
        };
        let key = record.encode_key().expect("key");
        assert_eq!(&key[..], &[0, 0, 0, 2, b't', b'x']);
        let bytes = record
            .encode_value()
            .expect("value")
            .expect("not a tombstone");
        // version, pid, epoch, timeout, state, 2 topics ("a": [0, 2], "b": [1]), timestamps.
        assert_eq!(
            bytes.len(),
            2 + 8 + 2 + 4 + 1 + 4 + (2 + 1 + 4 + 8) + (2 + 1 + 4 + 4) + 16
        );
        assert_eq!(bytes[16], 1, "Ongoing is state 1");
        let decoded = TransactionRecord::decode(&key, Some(&bytes)).expect("decodes");
        assert_eq!(decoded, record);
        let tombstone = TransactionRecord::decode(&key, None).expect("decodes");
        assert_eq!(tombstone.value, None);
    }

    #[test]
    fn version_1_is_read_with_its_tagged_fields() {
        let mut buf = BytesMut::new();
        buf.put_i16(1);
        buf.put_i64(7);
        buf.put_i16(3);
        buf.put_i32(60_000);
        buf.put_i8(1);
        buf.put_u8(2); // one topic
        buf.put_u8(2); // "a"
        buf.put_u8(b'a');
        buf.put_u8(3); // two partitions
        buf.put_i32(0);
        buf.put_i32(2);
        buf.put_u8(0); // no tagged fields in the topic
        buf.put_i64(20);
        buf.put_i64(10);
        buf.put_u8(2); // two tagged fields
        buf.put_u8(0); // PreviousProducerId
        buf.put_u8(8);
        buf.put_i64(5);
        buf.put_u8(2); // ClientTransactionVersion
        buf.put_u8(2);
        buf.put_i16(2);
        let decoded = decode_value(&buf).expect("decodes");
        assert_eq!(decoded.previous_producer_id, ProducerId(5));
        assert_eq!(decoded.partitions.len(), 2);
        assert_eq!(decoded.start_timestamp_ms, 10);
    }

    #[test]
    fn damaged_values_are_errors() {
        let record = TransactionRecord {
            transactional_id: "tx".into(),
            value: Some(value()),
        };
        let bytes = record.encode_value().expect("value").expect("value");
        for cut in 0..bytes.len() {
            assert!(decode_value(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad_state = bytes.to_vec();
        bad_state[16] = 42;
        assert_eq!(decode_value(&bad_state), Err(RecordError::State(42)));
    }
}
