//! Record batches for tests, built with kafka-protocol's encoder as a producer would build them.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// One record's test-relevant fields.
pub struct TestRecord {
    pub timestamp: i64,
    pub value: Vec<u8>,
}

impl TestRecord {
    pub fn at(timestamp: i64) -> Self {
        TestRecord {
            timestamp,
            value: format!("value@{timestamp}").into_bytes(),
        }
    }
}

/// One batch holding `records`, offsets 0.., as a producer sends it.
pub fn batch_with(records: &[TestRecord], compression: Compression) -> Bytes {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder splits batches where offset - sequence changes; this keeps one batch with base sequence -1.
            sequence: i as i32 - 1,
            timestamp: r.timestamp,
            key: None,
            value: Some(Bytes::from(r.value.clone())),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode test batch");
    buf.freeze()
}

/// An uncompressed batch of `count` records with timestamps `first_ts`, `first_ts + 1`, ...
pub fn batch(count: usize, first_ts: i64) -> Bytes {
    let records: Vec<TestRecord> = (0..count)
        .map(|i| TestRecord::at(first_ts + i as i64))
        .collect();
    batch_with(&records, Compression::None)
}

/// One batch of keyed records (`None` value: a tombstone) with timestamps `ts`, `ts + 1`, ...
pub fn keyed_batch(
    records: &[(Option<&str>, Option<&str>)],
    ts: i64,
    compression: Compression,
) -> Bytes {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: ts + i as i64,
            key: key.map(|k| Bytes::from(k.as_bytes().to_vec())),
            value: value.map(|v| Bytes::from(v.as_bytes().to_vec())),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode test batch");
    buf.freeze()
}
