//! Idempotent producers (KIP-98): InitProducerId hands out producer ids, and each partition's producer state keeps
//! a retried batch from being stored twice, across clean restarts and `kill -9` alike. librdkafka's idempotent
//! producer drives the first test; the others speak the protocol, to send the retries and gaps a client would only
//! send under faults.

mod common;

use std::collections::BTreeSet;

use bytes::Bytes;
use common::TestBroker;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, TimestampType};
use rdkafka::message::Message;

const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const UNKNOWN_PRODUCER_ID: i16 = 59;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_librdkafka_producer_writes_each_record_once() {
    let broker = TestBroker::start();
    broker.create_topic("idem", 3).await;
    let producer = broker.producer(&[("enable.idempotence", "true"), ("linger.ms", "2")]);
    let sends = (0..600).map(|i| {
        let producer = producer.clone();
        async move {
            common::produce_one(
                &producer,
                "idem",
                &format!("k{i}"),
                format!("v{i}").as_bytes(),
            )
            .await
        }
    });
    let acked = futures::future::join_all(sends).await;
    assert_eq!(acked.len(), 600);
    let messages = broker.consume("idem", 3, 600);
    let values: BTreeSet<Vec<u8>> = messages.iter().filter_map(common::payload).collect();
    assert_eq!(values.len(), 600, "every record once");
    for partition in 0..3 {
        let offsets: Vec<i64> = messages
            .iter()
            .filter(|m| m.partition() == partition)
            .map(|m| m.offset())
            .collect();
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets, expected,
            "partition {partition}: no gaps, no duplicates"
        );
    }
}

fn init_producer_id(broker: &TestBroker) -> (i64, i16) {
    let response: InitProducerIdResponse = common::call(
        broker,
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(kafka_protocol::messages::ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(response.error_code, 0);
    (response.producer_id.0, response.producer_epoch)
}

/// One batch of `count` records from an idempotent producer, starting at `sequence`.
fn batch(producer_id: i64, epoch: i16, sequence: i32, count: i32) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: sequence + i,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(format!("s{}", sequence + i))),
            headers: Default::default(),
        })
        .collect();
    common::encode_batch(&records)
}

/// Produces one batch to partition 0 of `topic`; returns (error code, base offset).
fn produce(broker: &TestBroker, topic: &'static str, records: Bytes) -> (i16, i64) {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let response: ProduceResponse = common::call(broker, ApiKey::Produce, 9, &request);
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_ids_are_unique_and_retries_are_answered_with_the_first_offsets() {
    let mut broker = TestBroker::start();
    broker.create_topic("raw", 1).await;
    let (a, epoch) = init_producer_id(&broker);
    let (b, _) = init_producer_id(&broker);
    assert!(a >= 0 && b >= 0 && a != b, "{a} {b}");
    assert_eq!(epoch, 0);

    assert_eq!(produce(&broker, "raw", batch(a, 0, 0, 3)), (0, 0));
    assert_eq!(produce(&broker, "raw", batch(a, 0, 3, 2)), (0, 3));
    // The retry of either batch is answered with its offsets, and not written again.
    assert_eq!(produce(&broker, "raw", batch(a, 0, 0, 3)), (0, 0));
    assert_eq!(produce(&broker, "raw", batch(a, 0, 3, 2)), (0, 3));
    assert_eq!(produce(&broker, "raw", batch(b, 0, 0, 1)), (0, 5));

    // A gap, an unknown producer that does not start at 0, an older epoch.
    assert_eq!(
        produce(&broker, "raw", batch(a, 0, 9, 1)).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(
        produce(&broker, "raw", batch(a + 1_000, 0, 4, 1)).0,
        UNKNOWN_PRODUCER_ID
    );
    assert_eq!(produce(&broker, "raw", batch(b, 1, 0, 1)), (0, 6));
    assert_eq!(
        produce(&broker, "raw", batch(b, 0, 1, 1)).0,
        INVALID_PRODUCER_EPOCH
    );

    // The producer state survives a clean restart (its snapshot) and a kill -9 (rebuilt from the log).
    broker.restart();
    assert_eq!(produce(&broker, "raw", batch(a, 0, 3, 2)), (0, 3));
    assert_eq!(produce(&broker, "raw", batch(a, 0, 5, 1)), (0, 7));
    broker.crash_and_restart();
    assert_eq!(produce(&broker, "raw", batch(a, 0, 5, 1)), (0, 7));
    assert_eq!(produce(&broker, "raw", batch(a, 0, 6, 1)), (0, 8));
    // Ids handed out before the restarts are never handed out again.
    let (c, _) = init_producer_id(&broker);
    assert!(c != a && c != b, "{c}");

    let values: Vec<Vec<u8>> = broker
        .consume_all("raw", 1)
        .iter()
        .filter_map(common::payload)
        .collect();
    assert_eq!(values.len(), 9, "{values:?}");
}
