//! Idempotent producers (KIP-98): InitProducerId hands out producer ids, and each partition's producer state keeps
//! a retried batch from being stored twice, across clean restarts and `kill -9` alike. librdkafka's idempotent
//! producer drives the first test; the others speak the protocol, to send the retries and gaps a client would only
//! send under faults.

mod common;

use std::collections::BTreeSet;

use bytes::Bytes;
use common::TestBroker;
use kafka_protocol::messages::describe_producers_request::{
    DescribeProducersRequest, TopicRequest,
};
use kafka_protocol::messages::describe_producers_response::DescribeProducersResponse;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, TimestampType};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;

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
        // The codec's default transactional id is "", which Kafka refuses (INVALID_REQUEST): an idempotent
        // producer sends null.
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(kafka_protocol::messages::ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(response.error_code, 0);
    (response.producer_id.0, response.producer_epoch)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
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
            timestamp: now_ms(),
            key: None,
            value: Some(Bytes::from(format!("s{}", sequence + i))),
            headers: Default::default(),
        })
        .collect();
    common::encode_batch(&records)
}

/// DescribeProducers for partition 0 of `topic`: (producer id, epoch, last sequence) of each.
fn describe_producers(broker: &TestBroker, topic: &'static str) -> Vec<(i64, i32, i32)> {
    let request = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(TopicName(StrBytes::from_static_str(topic)))
        .with_partition_indexes(vec![0])]);
    let response: DescribeProducersResponse =
        common::call(broker, ApiKey::DescribeProducers, 0, &request);
    let partition = &response.topics[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    partition
        .active_producers
        .iter()
        .map(|p| (p.producer_id.0, p.producer_epoch, p.last_sequence))
        .collect()
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

    let mut expected = vec![(a, 0, 6), (b, 1, 0)];
    expected.sort();
    assert_eq!(describe_producers(&broker, "raw"), expected);

    let values: Vec<Vec<u8>> = broker
        .consume_all("raw", 1)
        .iter()
        .filter_map(common::payload)
        .collect();
    assert_eq!(values.len(), 9, "{values:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_producers_expire_after_producer_id_expiration_ms() {
    let broker = TestBroker::start_with(&[
        "--producer.id.expiration.ms=1000",
        "--producer.id.expiration.check.interval.ms=100",
    ]);
    broker.create_topic("expiry", 1).await;
    let (id, _) = init_producer_id(&broker);
    assert_eq!(produce(&broker, "expiry", batch(id, 0, 0, 1)), (0, 0));
    assert_eq!(describe_producers(&broker, "expiry"), vec![(id, 0, 0)]);
    // Idle for more than producer.id.expiration.ms, and a check has run since.
    tokio::time::sleep(std::time::Duration::from_millis(1_600)).await;
    assert_eq!(describe_producers(&broker, "expiry"), vec![]);
    assert_eq!(
        produce(&broker, "expiry", batch(id, 0, 1, 1)).0,
        UNKNOWN_PRODUCER_ID
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_mid_stream_loses_and_duplicates_nothing() {
    // A fixed client port, so the producer finds the broker again after the restart.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listeners = format!("--listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:0");
    let mut broker = TestBroker::start_with(&[&listeners]);
    broker.create_topic("stream", 1).await;
    let producer = broker.producer(&[
        ("enable.idempotence", "true"),
        ("linger.ms", "1"),
        ("message.timeout.ms", "60000"),
        ("retry.backoff.ms", "50"),
    ]);
    const COUNT: usize = 3000;
    let mut deliveries = Vec::with_capacity(COUNT);
    for i in 0..COUNT {
        // Enqueued here, in order: librdkafka sends them in this order and must keep it through the retries.
        let payload = format!("{i:05}");
        let delivery = producer
            .send_result(
                FutureRecord::<str, str>::to("stream")
                    .key("k")
                    .payload(&payload),
            )
            .map_err(|(error, _)| error)
            .expect("enqueued");
        deliveries.push(delivery);
        if i == COUNT / 2 {
            // Let some of the first half be in flight, then kill the broker under them.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            broker.crash_and_restart();
        } else if i % 100 == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    for delivery in deliveries {
        delivery
            .await
            .expect("delivery reported")
            .map_err(|(error, _)| error)
            .expect("delivered");
    }
    let values: Vec<Vec<u8>> = broker
        .consume("stream", 1, COUNT)
        .iter()
        .filter_map(common::payload)
        .collect();
    let expected: Vec<Vec<u8>> = (0..COUNT).map(|i| format!("{i:05}").into_bytes()).collect();
    assert_eq!(values.len(), COUNT, "each record exactly once");
    assert_eq!(values, expected, "in the order it was sent");
}
