//! Topic administration through librdkafka's AdminClient: CreatePartitions, DescribeConfigs, AlterConfigs and
//! DeleteRecords, with Kafka's error codes, validate_only, and persistence across a restart.

mod common;

use std::time::Duration;

use common::{produce_one, TestBroker};
use rdkafka::admin::{
    AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::consumer::Consumer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))
}

fn partition_count(broker: &TestBroker, topic: &str) -> usize {
    let metadata = broker
        .consumer()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len())
}

/// A topic config's value and its source's name.
async fn topic_config(broker: &TestBroker, topic: &str, key: &str) -> (Option<String>, String) {
    let described = broker
        .admin()
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &options())
        .await
        .expect("describe_configs");
    let resource = described[0].as_ref().expect("topic described");
    let entry = resource
        .get(key)
        .unwrap_or_else(|| panic!("{key} described"));
    (entry.value.clone(), format!("{:?}", entry.source))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_partitions_grows_only_and_persists() {
    let mut broker = TestBroker::start();
    broker.create_topic("grow", 1).await;
    let admin = broker.admin();

    let grown = admin
        .create_partitions(&[NewPartitions::new("grow", 3)], &options())
        .await
        .expect("create_partitions");
    assert_eq!(grown[0], Ok("grow".to_string()));
    assert_eq!(partition_count(&broker, "grow"), 3);

    for count in [2, 3] {
        let refused = admin
            .create_partitions(&[NewPartitions::new("grow", count)], &options())
            .await
            .expect("create_partitions");
        assert_eq!(
            refused[0],
            Err(("grow".to_string(), RDKafkaErrorCode::InvalidPartitions)),
            "to {count}"
        );
    }
    let unknown = admin
        .create_partitions(&[NewPartitions::new("no-such-topic", 2)], &options())
        .await
        .expect("create_partitions");
    assert_eq!(
        unknown[0],
        Err((
            "no-such-topic".to_string(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))
    );
    let bad_assignment = admin
        .create_partitions(&[NewPartitions::new("grow", 4).assign(&[&[7]])], &options())
        .await
        .expect("create_partitions");
    assert_eq!(
        bad_assignment[0],
        Err((
            "grow".to_string(),
            RDKafkaErrorCode::InvalidReplicaAssignment
        ))
    );
    let manual = admin
        .create_partitions(&[NewPartitions::new("grow", 4).assign(&[&[1]])], &options())
        .await
        .expect("create_partitions");
    assert_eq!(manual[0], Ok("grow".to_string()));

    // validate_only leaves the count alone.
    let dry_run = admin
        .create_partitions(
            &[NewPartitions::new("grow", 8)],
            &options().validate_only(true),
        )
        .await
        .expect("create_partitions");
    assert_eq!(dry_run[0], Ok("grow".to_string()));
    assert_eq!(partition_count(&broker, "grow"), 4);

    // New partitions take records.
    let producer = broker.producer(&[]);
    for partition in 0..4 {
        let record = rdkafka::producer::FutureRecord::to("grow")
            .key("k")
            .payload("v")
            .partition(partition);
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .expect("produce to a new partition");
    }

    broker.restart();
    assert_eq!(partition_count(&broker, "grow"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_and_alter_configs_with_kafkas_errors_and_persistence() {
    let mut broker = TestBroker::start_with(&["--log.retention.bytes=1000000000"]);
    let admin = broker.admin();
    admin
        .create_topics(
            &[NewTopic::new("configured", 1, TopicReplication::Fixed(1))
                .set("retention.ms", "3600000")],
            &options(),
        )
        .await
        .expect("create_topics")[0]
        .clone()
        .expect("created");

    // Every topic config is described, with its source.
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic("configured")], &options())
        .await
        .expect("describe_configs");
    let resource = described[0].as_ref().expect("described");
    assert!(resource.entries.len() >= 30, "{}", resource.entries.len());
    let retention = resource.get("retention.ms").expect("retention.ms");
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert_eq!(retention.source, ConfigSource::DynamicTopic);
    assert!(!retention.is_default && !retention.is_read_only && !retention.is_sensitive);
    let segment = resource.get("segment.bytes").expect("segment.bytes");
    assert_eq!(segment.value.as_deref(), Some("1073741824"));
    assert_eq!(segment.source, ConfigSource::Default);
    assert!(segment.is_default);
    let bytes = resource.get("retention.bytes").expect("retention.bytes");
    assert_eq!(bytes.value.as_deref(), Some("1000000000"));
    assert_eq!(bytes.source, ConfigSource::StaticBroker);

    // The broker describes itself.
    let described = admin
        .describe_configs(&[ResourceSpecifier::Broker(1)], &options())
        .await
        .expect("describe_configs");
    let resource = described[0].as_ref().expect("broker described");
    let static_key = resource
        .get("log.retention.bytes")
        .expect("log.retention.bytes");
    assert_eq!(static_key.value.as_deref(), Some("1000000000"));
    assert_eq!(static_key.source, ConfigSource::StaticBroker);
    assert!(!static_key.is_read_only);
    let read_only = resource.get("num.partitions").expect("num.partitions");
    assert!(read_only.is_read_only);
    assert_eq!(read_only.source, ConfigSource::Default);
    let unknown = admin
        .describe_configs(&[ResourceSpecifier::Topic("no-such-topic")], &options())
        .await
        .expect("describe_configs");
    // The rdkafka crate drops per-resource errors of DescribeConfigs (tests/admin_protocol.rs checks the code).
    assert!(unknown[0].as_ref().map_or(true, |r| r.entries.is_empty()));

    // Legacy AlterConfigs replaces the topic's dynamic configs.
    let topic = ResourceSpecifier::Topic("configured");
    let altered = admin
        .alter_configs(
            &[AlterConfig::new(topic)
                .set("cleanup.policy", "compact,delete")
                .set("segment.ms", "100000")],
            &options(),
        )
        .await
        .expect("alter_configs");
    assert!(altered[0].is_ok(), "{:?}", altered[0]);
    assert_eq!(
        topic_config(&broker, "configured", "cleanup.policy").await,
        (Some("compact,delete".into()), "DynamicTopic".to_string())
    );
    assert_eq!(
        topic_config(&broker, "configured", "retention.ms").await,
        (Some("604800000".into()), "Default".to_string()),
        "not named, so deleted"
    );

    // Unknown keys and bad values change nothing. (The rdkafka crate reports every AlterConfigs resource as Ok;
    // tests/admin_protocol.rs checks the INVALID_CONFIG codes and messages on the wire.)
    for (key, value) in [
        ("no.such.config", "1"),
        ("segment.ms", "soon"),
        ("cleanup.policy", "shred"),
    ] {
        admin
            .alter_configs(&[AlterConfig::new(topic).set(key, value)], &options())
            .await
            .expect("alter_configs");
        assert_eq!(
            topic_config(&broker, "configured", "segment.ms")
                .await
                .0
                .as_deref(),
            Some("100000"),
            "{key}={value}"
        );
    }
    // validate_only: accepted, nothing changes.
    let dry_run = admin
        .alter_configs(
            &[AlterConfig::new(topic).set("segment.ms", "5000")],
            &options().validate_only(true),
        )
        .await
        .expect("alter_configs");
    assert!(dry_run[0].is_ok(), "{:?}", dry_run[0]);
    assert_eq!(
        topic_config(&broker, "configured", "segment.ms")
            .await
            .0
            .as_deref(),
        Some("100000")
    );
    let unknown_topic = admin
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic("no-such-topic"))
                .set("segment.ms", "1000")],
            &options(),
        )
        .await
        .expect("alter_configs");
    assert_eq!(unknown_topic.len(), 1);

    // A dynamic broker config, and a read-only one refused.
    let broker_resource = ResourceSpecifier::Broker(1);
    let dynamic = admin
        .alter_configs(
            &[AlterConfig::new(broker_resource).set("log.retention.ms", "7200000")],
            &options(),
        )
        .await
        .expect("alter_configs");
    assert!(dynamic[0].is_ok(), "{:?}", dynamic[0]);
    let read_only = admin
        .alter_configs(
            &[AlterConfig::new(broker_resource).set("num.partitions", "3")],
            &options(),
        )
        .await
        .expect("alter_configs");
    assert_eq!(read_only.len(), 1);

    // Everything survives a restart.
    broker.restart();
    assert_eq!(
        topic_config(&broker, "configured", "cleanup.policy").await,
        (Some("compact,delete".into()), "DynamicTopic".to_string())
    );
    assert_eq!(
        topic_config(&broker, "configured", "retention.ms").await,
        (Some("7200000".into()), "DynamicBroker".to_string()),
        "the broker's dynamic default now applies"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_moves_the_low_watermark() {
    let mut broker = TestBroker::start();
    broker.create_topic("trimmed", 1).await;
    let producer = broker.producer(&[]);
    for i in 0..10 {
        produce_one(&producer, "trimmed", "k", format!("v{i}").as_bytes()).await;
    }
    let admin = broker.admin();
    let mut request = TopicPartitionList::new();
    request
        .add_partition_offset("trimmed", 0, Offset::Offset(6))
        .expect("tpl");
    let result = admin
        .delete_records(&request, &options())
        .await
        .expect("delete_records");
    let element = result.find_partition("trimmed", 0).expect("partition");
    assert_eq!(element.error(), Ok(()));
    assert_eq!(element.offset(), Offset::Offset(6));
    let (low, high) = broker
        .consumer()
        .fetch_watermarks("trimmed", 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!((low, high), (6, 10));

    let mut beyond = TopicPartitionList::new();
    beyond
        .add_partition_offset("trimmed", 0, Offset::Offset(11))
        .expect("tpl");
    let result = admin.delete_records(&beyond, &options()).await;
    let refused = match result {
        Ok(list) => list
            .find_partition("trimmed", 0)
            .expect("partition")
            .error()
            .err(),
        Err(error) => Some(error),
    };
    assert_eq!(
        refused.and_then(|e| e.rdkafka_error_code()),
        Some(RDKafkaErrorCode::OffsetOutOfRange)
    );

    // The consumer starts at the new low watermark; it survives a restart.
    let records = broker.consume("trimmed", 1, 4);
    assert_eq!(records.first().map(rdkafka::Message::offset), Some(6));
    broker.restart();
    let (low, _) = broker
        .consumer()
        .fetch_watermarks("trimmed", 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!(low, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_configs_shows_kafkas_broker_and_group_keys() {
    let broker = TestBroker::start();
    let admin = broker.admin();
    let described = admin
        .describe_configs(&[ResourceSpecifier::Broker(1)], &options())
        .await
        .expect("describe_configs");
    let resource = described[0].as_ref().expect("broker described");
    for (key, value, read_only) in [
        ("background.threads", Some("10"), false),
        ("num.io.threads", Some("8"), false),
        (
            "sasl.kerberos.min.time.before.relogin",
            Some("60000"),
            false,
        ),
        ("broker.rack", None, true),
        (
            "log.dirs",
            Some(broker.data_dir().to_str().expect("utf-8 path")),
            true,
        ),
    ] {
        let entry = resource
            .get(key)
            .unwrap_or_else(|| panic!("{key} described"));
        assert_eq!(entry.value.as_deref(), value, "{key}");
        assert_eq!(entry.is_read_only, read_only, "{key}");
    }
    let password = resource
        .get("ssl.keystore.password")
        .expect("ssl.keystore.password");
    assert!(password.is_sensitive);
    assert_eq!(password.value, None);

    // A Kafka key Ferrite does not act on is stored and reported like any dynamic config.
    let altered = admin
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Broker(1))
                .set("sasl.kerberos.min.time.before.relogin", "58000")],
            &options(),
        )
        .await
        .expect("alter_configs");
    assert!(altered[0].is_ok(), "{:?}", altered[0]);
    let described = admin
        .describe_configs(&[ResourceSpecifier::Broker(1)], &options())
        .await
        .expect("describe_configs");
    let resource = described[0].as_ref().expect("broker described");
    let relogin = resource
        .get("sasl.kerberos.min.time.before.relogin")
        .expect("described");
    assert_eq!(relogin.value.as_deref(), Some("58000"));
    assert_eq!(relogin.source, ConfigSource::DynamicBroker);

    // A group that does not exist has Kafka's group configs, at the broker's defaults.
    let described = admin
        .describe_configs(&[ResourceSpecifier::Group("no-such-group")], &options())
        .await
        .expect("describe_configs");
    let group = described[0].as_ref().expect("group described");
    let session = group
        .get("consumer.session.timeout.ms")
        .expect("consumer.session.timeout.ms");
    assert_eq!(session.value.as_deref(), Some("45000"));
    assert_eq!(session.source, ConfigSource::Default);
    assert!(group.get("streams.num.standby.replicas").is_some());
}

/// Kafka's stock server.properties sets log.retention.hours; the coarser spellings must reach every topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_retention_and_roll_in_hours_or_minutes_apply_to_topics() {
    let broker = TestBroker::start_with(&["--log.retention.hours=24", "--log.roll.hours=2"]);
    broker.create_topic("hours", 1).await;
    let (retention, source) = topic_config(&broker, "hours", "retention.ms").await;
    assert_eq!(retention.as_deref(), Some("86400000"));
    assert_eq!(source, "StaticBroker");
    let (roll, _) = topic_config(&broker, "hours", "segment.ms").await;
    assert_eq!(roll.as_deref(), Some("7200000"));

    let broker =
        TestBroker::start_with(&["--log.retention.hours=24", "--log.retention.minutes=30"]);
    broker.create_topic("minutes", 1).await;
    let (retention, _) = topic_config(&broker, "minutes", "retention.ms").await;
    assert_eq!(retention.as_deref(), Some("1800000"), "minutes beat hours");
}
