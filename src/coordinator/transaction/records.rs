//! The records of `__transaction_state`, in Kafka's own schemas (transaction-coordinator's `TransactionLogKey` and
//! `TransactionLogValue`), so that Kafka's tools can read the topic and a Kafka-written topic loads here.
//!
//! Key: int16 version (0) then the transactional id (int16-length string). Value: int16 version then the fields; a
//! null value is a tombstone (an expired transactional id). Version 0 is the classic encoding; version 1 (what
//! Kafka writes for KIP-890 part 2 clients) is flexible: compact strings and arrays and tagged fields, of which
//! PreviousProducerId (tag 0) and NextProducerId (tag 1) are read. Ferrite writes version 0.

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};

use super::metadata::{TopicPartition, TransactionState};
use crate::coordinator::record_codec::{
    get_compact_len, get_compact_string, get_i16, get_i32, get_i64, get_i8, get_string,
    get_tagged_fields, put_len, put_string,
};
use crate::ids::{ProducerEpoch, ProducerId};

pub use crate::coordinator::record_codec::RecordError;

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
        put_len(&mut buf, topics.len())?;
        for (topic, ids) in topics {
            put_string(&mut buf, topic)?;
            put_len(&mut buf, ids.len())?;
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
    let state = TransactionState::from_id(state_id).ok_or(RecordError::BadValue {
        field: "TransactionStatus",
        value: i64::from(state_id),
    })?;
    let mut partitions = BTreeSet::new();
    let topics = if flexible {
        get_compact_len(&mut buf)?
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
            get_compact_len(&mut buf)?.unwrap_or(0)
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
            get_tagged_fields(&mut buf)?;
        }
    }
    let last_update_timestamp_ms = get_i64(&mut buf)?;
    let start_timestamp_ms = get_i64(&mut buf)?;
    let mut previous_producer_id = ProducerId::NONE;
    if flexible {
        for (tag, field) in get_tagged_fields(&mut buf)? {
            if tag == 0 {
                previous_producer_id = ProducerId(get_i64(&mut &field[..])?);
            }
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
        assert_eq!(
            decode_value(&bad_state),
            Err(RecordError::BadValue {
                field: "TransactionStatus",
                value: 42
            })
        );
    }
}
