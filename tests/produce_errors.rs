//! Produce errors a real producer acts on: KIP-467 record errors (a keyless record on a compacted topic, a timestamp
//! outside message.timestamp.*.max.ms) fail exactly the records that broke the rule, and acks=all follows
//! min.insync.replicas as Kafka applies it.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::TestBroker;
use futures::future::join_all;
use rdkafka::admin::{AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

async fn create(broker: &TestBroker, name: &str, configs: &[(&str, &str)]) {
    let mut topic = NewTopic::new(name, 1, TopicReplication::Fixed(1));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let results = broker
        .admin()
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .expect("create_topics");
    for result in results {
        result.expect("topic created");
    }
}

/// Sends one record and returns its delivery: the offset, or the error code the producer reported for it.
async fn send(
    producer: &FutureProducer,
    topic: &str,
    key: Option<&str>,
    timestamp_ms: Option<i64>,
) -> Result<i64, RDKafkaErrorCode> {
    let mut record = FutureRecord::<str, str>::to(topic).payload("value");
    if let Some(key) = key {
        record = record.key(key);
    }
    if let Some(timestamp_ms) = timestamp_ms {
        record = record.timestamp(timestamp_ms);
    }
    match producer.send(record, Duration::from_secs(30)).await {
        Ok(delivery) => Ok(delivery.offset),
        Err((KafkaError::MessageProduction(code), _)) => Err(code),
        Err((other, _)) => panic!("unexpected producer error: {other}"),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_records_fail_on_a_compacted_topic_and_keyed_ones_succeed() {
    let broker = TestBroker::start();
    create(&broker, "compacted", &[("cleanup.policy", "compact")]).await;

    // One record a batch: only the keyless one fails.
    let producer = broker.producer(&[]);
    assert_eq!(send(&producer, "compacted", Some("k1"), None).await, Ok(0));
    assert_eq!(
        send(&producer, "compacted", None, None).await,
        Err(RDKafkaErrorCode::InvalidRecord)
    );
    assert_eq!(send(&producer, "compacted", Some("k2"), None).await, Ok(1));

    // In one batch, Kafka refuses the whole batch; the record errors tell the producer which records were at
    // fault, and it fails the others with its own "different record" error. (librdkafka does so only for two or
    // more record errors: with one, it reports the partition's error for every record of the batch.)
    let batching = broker.producer(&[("linger.ms", "500")]);
    let keys = [Some("a"), None, Some("b"), None];
    let results = join_all(
        keys.iter()
            .map(|key| send(&batching, "compacted", *key, None)),
    )
    .await;
    assert_eq!(
        results,
        vec![
            Err(RDKafkaErrorCode::InvalidDifferentRecord),
            Err(RDKafkaErrorCode::InvalidRecord),
            Err(RDKafkaErrorCode::InvalidDifferentRecord),
            Err(RDKafkaErrorCode::InvalidRecord),
        ]
    );

    let stored: Vec<Option<Vec<u8>>> = broker
        .consume_all("compacted", 1)
        .iter()
        .map(|m| m.key().map(<[u8]>::to_vec))
        .collect();
    assert_eq!(stored, vec![Some(b"k1".to_vec()), Some(b"k2".to_vec())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_outside_the_window_fail_with_invalid_timestamp() {
    let broker = TestBroker::start();
    let hour_ms = 3_600_000;
    create(
        &broker,
        "window",
        &[
            ("message.timestamp.before.max.ms", "3600000"),
            ("message.timestamp.after.max.ms", "3600000"),
        ],
    )
    .await;
    let producer = broker.producer(&[]);
    let now = now_ms();
    assert_eq!(send(&producer, "window", Some("k"), Some(now)).await, Ok(0));
    for stale in [now - 2 * hour_ms, now + 2 * hour_ms] {
        assert_eq!(
            send(&producer, "window", Some("k"), Some(stale)).await,
            Err(RDKafkaErrorCode::InvalidTimestamp)
        );
    }
}

/// Kafka (since 3.7) never requires more in-sync replicas than a partition has: with one replica, acks=all is
/// satisfied whatever min.insync.replicas says. Refusals (NOT_ENOUGH_REPLICAS) need an ISR smaller than the
/// replica set, which the unit tests of `replica::Partition` cover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_insync_replicas_is_capped_at_the_replication_factor() {
    let broker = TestBroker::start();
    create(&broker, "durable", &[("min.insync.replicas", "2")]).await;
    let acks_all = broker.producer(&[("acks", "all"), ("message.timeout.ms", "5000")]);
    let acks_one = broker.producer(&[("acks", "1")]);
    assert_eq!(send(&acks_all, "durable", Some("k"), None).await, Ok(0));
    assert_eq!(send(&acks_one, "durable", Some("k"), None).await, Ok(1));

    // Raising it further through AlterConfigs changes nothing either.
    let altered = broker
        .admin()
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic("durable"))
                .set("min.insync.replicas", "3")],
            &AdminOptions::new(),
        )
        .await
        .expect("alter_configs");
    altered[0].as_ref().expect("altered");
    assert_eq!(send(&acks_all, "durable", Some("k"), None).await, Ok(2));
}

/// On the wire (Produce v8+): the partition's error, a message, and one record error per keyless record, in batch
/// order, which is what producers match their records against.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_errors_name_each_offending_record() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    let broker = TestBroker::start();
    create(&broker, "wire", &[("cleanup.policy", "compact")]).await;
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("wire")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(common::keyed_record_batch(
                    &[Some(b"a"), None, Some(b"b"), None],
                    b"value",
                    now_ms(),
                )))])]);
    for version in [8, 9, 12] {
        let response: ProduceResponse = common::call(&broker, ApiKey::Produce, version, &request);
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, 87, "v{version}: INVALID_RECORD");
        assert!(partition.error_message.is_some(), "v{version}");
        let named: Vec<i32> = partition
            .record_errors
            .iter()
            .map(|e| e.batch_index)
            .collect();
        assert_eq!(named, vec![1, 3], "v{version}");
        assert!(partition
            .record_errors
            .iter()
            .all(|e| e.batch_index_error_message.is_some()));
    }
}
