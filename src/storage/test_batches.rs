//! Record batches for tests, built with kafka-protocol's encoder as a producer would build them.

use bytes::Bytes;
use kafka_protocol::records::Compression;

use super::batch::{encode_batch, BrokerRecord};

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
    encode_batch(
        records.iter().map(|r| BrokerRecord {
            key: None,
            value: Some(Bytes::from(r.value.clone())),
            timestamp_ms: r.timestamp,
        }),
        compression,
    )
    .expect("encode test batch")
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
    encode_batch(
        records
            .iter()
            .enumerate()
            .map(|(i, (key, value))| BrokerRecord {
                key: key.map(|k| Bytes::from(k.as_bytes().to_vec())),
                value: value.map(|v| Bytes::from(v.as_bytes().to_vec())),
                timestamp_ms: ts + i as i64,
            }),
        compression,
    )
    .expect("encode test batch")
}
