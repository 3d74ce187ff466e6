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

/// Who writes a producer's batch: its id, epoch and first sequence (-1: none), and whether it is transactional.
#[derive(Debug, Clone, Copy)]
pub struct TestProducer {
    pub id: i64,
    pub epoch: i16,
    pub sequence: i32,
    pub transactional: bool,
}

impl TestProducer {
    /// A transactional producer's batch from `sequence` on.
    pub fn txn(id: i64, epoch: i16, sequence: i32) -> Self {
        TestProducer {
            id,
            epoch,
            sequence,
            transactional: true,
        }
    }
}

/// One uncompressed batch of keyed records from `producer`, timestamps `ts`, `ts + 1`, ...
pub fn producer_batch(
    producer: TestProducer,
    records: &[(Option<&str>, Option<&str>)],
    ts: i64,
) -> Bytes {
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: producer.transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: producer.id,
            producer_epoch: producer.epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: producer.sequence + i as i32,
            timestamp: ts + i as i64,
            key: key.map(|k| Bytes::from(k.as_bytes().to_vec())),
            value: value.map(|v| Bytes::from(v.as_bytes().to_vec())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode test batch");
    buf.freeze()
}

/// A transactional batch of `count` keyless records k0.. with values v0..
pub fn txn_batch(producer_id: i64, epoch: i16, sequence: i32, count: usize, ts: i64) -> Bytes {
    let keys: Vec<(String, String)> = (0..count)
        .map(|i| (format!("k{i}"), format!("v{i}")))
        .collect();
    let records: Vec<(Option<&str>, Option<&str>)> = keys
        .iter()
        .map(|(k, v)| (Some(k.as_str()), Some(v.as_str())))
        .collect();
    producer_batch(
        TestProducer::txn(producer_id, epoch, sequence),
        &records,
        ts,
    )
}
