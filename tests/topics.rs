//! Topic administration through librdkafka's AdminClient, and ListOffsets through its consumer.

mod common;

use std::time::Duration;

use common::{produce_one, TestBroker};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_delete_topics_with_kafkas_error_codes() {
    let broker = TestBroker::start();
    let admin = broker.admin();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));

    let created = admin
        .create_topics(
            &[
                NewTopic::new("orders", 3, TopicReplication::Fixed(1))
                    .set("retention.ms", "3600000"),
                NewTopic::new("bad/name", 1, TopicReplication::Fixed(1)),
                NewTopic::new("too-replicated", 1, TopicReplication::Fixed(3)),
                NewTopic::new("bad-config", 1, TopicReplication::Fixed(1))
                    .set("no.such.config", "1"),
                NewTopic::new("bad-value", 1, TopicReplication::Fixed(1))
                    .set("retention.ms", "soon"),
            ],
            &options,
        )
        .await
        .expect("create_topics");
    assert_eq!(created[0], Ok("orders".to_string()));
    assert_eq!(
        created[1],
        Err(("bad/name".to_string(), RDKafkaErrorCode::InvalidTopic))
    );
    assert_eq!(
        created[2],
        Err((
            "too-replicated".to_string(),
            RDKafkaErrorCode::InvalidReplicationFactor
        ))
    );
    assert_eq!(
        created[3],
        Err(("bad-config".to_string(), RDKafkaErrorCode::InvalidConfig))
    );
    assert_eq!(
        created[4],
        Err(("bad-value".to_string(), RDKafkaErrorCode::InvalidConfig))
    );

    let again = admin
        .create_topics(
            &[NewTopic::new("orders", 3, TopicReplication::Fixed(1))],
            &options,
        )
        .await
        .expect("create_topics");
    assert_eq!(
        again[0],
        Err(("orders".to_string(), RDKafkaErrorCode::TopicAlreadyExists))
    );

    // validate_only creates nothing.
    let dry_run = admin
        .create_topics(
            &[NewTopic::new("dry-run", 2, TopicReplication::Fixed(1))],
            &AdminOptions::new().validate_only(true),
        )
        .await
        .expect("create_topics");
    assert_eq!(dry_run[0], Ok("dry-run".to_string()));

    let metadata = broker
        .consumer()
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    let names: Vec<&str> = metadata.topics().iter().map(|t| t.name()).collect();
    assert!(names.contains(&"orders"), "{names:?}");
    assert!(!names.contains(&"dry-run"), "{names:?}");
    let orders = metadata
        .topics()
        .iter()
        .find(|t| t.name() == "orders")
        .expect("orders");
    assert_eq!(orders.partitions().len(), 3);
    assert!(orders
        .partitions()
        .iter()
        .all(|p| p.leader() == 1 && p.replicas() == [1] && p.isr() == [1]));
    assert_eq!(metadata.brokers().len(), 1);
    assert_eq!(metadata.brokers()[0].id(), 1);

    let producer = broker.producer(&[]);
    produce_one(&producer, "orders", "k", b"v").await;
    let deleted = admin
        .delete_topics(&["orders", "never-existed"], &options)
        .await
        .expect("delete_topics");
    assert_eq!(deleted[0], Ok("orders".to_string()));
    assert_eq!(
        deleted[1],
        Err((
            "never-existed".to_string(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))
    );
    let metadata = broker
        .consumer()
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    assert!(metadata.topics().iter().all(|t| t.name() != "orders"));
    assert!(
        !broker.data_dir().join("orders-0").exists(),
        "the partition logs are deleted"
    );

    // The name is free again, and the new topic starts empty.
    broker.create_topic("orders", 1).await;
    // A fresh producer: the old one's metadata cache still knows the deleted topic's three partitions.
    let producer = broker.producer(&[]);
    let (_, offset) = produce_one(&producer, "orders", "k", b"v").await;
    assert_eq!(offset, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_earliest_latest_and_by_time() {
    let broker = TestBroker::start();
    broker.create_topic("timed", 1).await;
    // Batches of several records each (linger), with record timestamps 1000, 2000, ... set by the producer.
    let producer = broker.producer(&[("linger.ms", "50")]);
    let mut pending = Vec::new();
    for i in 0..30i64 {
        let key = i.to_string();
        let record = FutureRecord::to("timed")
            .key(&key)
            .payload("v")
            .timestamp(1_000 * (i + 1));
        pending.push(
            producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("enqueue"),
        );
    }
    for p in pending {
        p.await
            .expect("delivered")
            .map_err(|(e, _)| e)
            .expect("acknowledged");
    }

    let consumer = broker.consumer();
    let (low, high) = consumer
        .fetch_watermarks("timed", 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!((low, high), (0, 30));

    for (target, expected) in [
        (1_000, 0),
        (1_500, 1),
        (15_000, 14),
        (15_001, 15),
        (30_000, 29),
    ] {
        let mut query = TopicPartitionList::new();
        query
            .add_partition_offset("timed", 0, Offset::Offset(target))
            .expect("tpl");
        let answer = consumer
            .offsets_for_times(query, Duration::from_secs(10))
            .expect("offsets_for_times");
        let found = answer
            .find_partition("timed", 0)
            .expect("partition")
            .offset();
        assert_eq!(
            found,
            Offset::Offset(expected),
            "first offset with timestamp >= {target}"
        );
    }
    let mut query = TopicPartitionList::new();
    query
        .add_partition_offset("timed", 0, Offset::Offset(99_000))
        .expect("tpl");
    let answer = consumer
        .offsets_for_times(query, Duration::from_secs(10))
        .expect("offsets_for_times");
    assert_eq!(
        answer
            .find_partition("timed", 0)
            .expect("partition")
            .offset(),
        Offset::End,
        "no such record"
    );
}
