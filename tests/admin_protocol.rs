//! The admin APIs the rdkafka crate's AdminClient does not expose (IncrementalAlterConfigs, DescribeCluster,
//! DescribeLogDirs, DescribeQuorum) and the per-resource error codes it drops (AlterConfigs, DescribeConfigs),
//! checked on the wire with kafka-protocol's own encoding, at the newest version of each API.

mod common;

use common::{produce_one, TestBroker};
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::incremental_alter_configs_request as incremental;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, DescribeClusterRequest,
    DescribeClusterResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    DescribeLogDirsRequest, DescribeLogDirsResponse, DescribeQuorumRequest, DescribeQuorumResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const GROUP: i8 = 32;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// Sends one request at the API's newest version and decodes the response.
fn call<Q, P>(broker: &TestBroker, request: &Q) -> P
where
    Q: Encodable + Request,
    P: Decodable,
{
    let key = ApiKey::try_from(Q::KEY).expect("api key");
    common::call(broker, key, key.valid_versions().max, request)
}

fn describe_topic(broker: &TestBroker, topic: &str, synonyms: bool) -> DescribeConfigsResponse {
    describe(broker, TOPIC, topic, synonyms)
}

fn describe(broker: &TestBroker, kind: i8, name: &str, synonyms: bool) -> DescribeConfigsResponse {
    call(
        broker,
        &DescribeConfigsRequest::default()
            .with_resources(vec![DescribeConfigsResource::default()
                .with_resource_type(kind)
                .with_resource_name(StrBytes::from_string(name.to_string()))
                .with_configuration_keys(None)])
            .with_include_synonyms(synonyms)
            .with_include_documentation(synonyms),
    )
}

fn value_of(response: &DescribeConfigsResponse, key: &str) -> Option<String> {
    response.results[0]
        .configs
        .iter()
        .find(|c| &*c.name == key)
        .and_then(|c| c.value.as_ref().map(|v| v.to_string()))
}

fn incremental_alter(
    broker: &TestBroker,
    kind: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, String) {
    let configs = ops
        .iter()
        .map(|(key, op, value)| {
            incremental::AlterableConfig::default()
                .with_name(StrBytes::from_string(key.to_string()))
                .with_config_operation(*op)
                .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
        })
        .collect();
    let response: IncrementalAlterConfigsResponse = call(
        broker,
        &IncrementalAlterConfigsRequest::default()
            .with_resources(vec![incremental::AlterConfigsResource::default()
                .with_resource_type(kind)
                .with_resource_name(StrBytes::from_string(name.to_string()))
                .with_configs(configs)])
            .with_validate_only(validate_only),
    );
    let result = &response.responses[0];
    (
        result.error_code,
        result
            .error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_alter_configs_set_delete_append_subtract() {
    let broker = TestBroker::start();
    broker.create_topic("inc", 1).await;

    let ok = incremental_alter(
        &broker,
        TOPIC,
        "inc",
        &[("retention.ms", SET, Some("5000"))],
        false,
    );
    assert_eq!(ok.0, 0, "{ok:?}");
    // APPEND starts from the default list ("delete").
    let ok = incremental_alter(
        &broker,
        TOPIC,
        "inc",
        &[("cleanup.policy", APPEND, Some("compact"))],
        false,
    );
    assert_eq!(ok.0, 0, "{ok:?}");
    let described = describe_topic(&broker, "inc", false);
    assert_eq!(
        value_of(&described, "retention.ms").as_deref(),
        Some("5000")
    );
    assert_eq!(
        value_of(&described, "cleanup.policy").as_deref(),
        Some("delete,compact")
    );

    let ok = incremental_alter(
        &broker,
        TOPIC,
        "inc",
        &[("cleanup.policy", SUBTRACT, Some("delete"))],
        false,
    );
    assert_eq!(ok.0, 0, "{ok:?}");
    let ok = incremental_alter(
        &broker,
        TOPIC,
        "inc",
        &[("retention.ms", DELETE, None)],
        false,
    );
    assert_eq!(ok.0, 0, "{ok:?}");
    let described = describe_topic(&broker, "inc", false);
    assert_eq!(
        value_of(&described, "cleanup.policy").as_deref(),
        Some("compact")
    );
    assert_eq!(
        value_of(&described, "retention.ms").as_deref(),
        Some("604800000")
    );

    // Errors name the key; validate_only changes nothing.
    let (code, message) = incremental_alter(
        &broker,
        TOPIC,
        "inc",
        &[("no.such.key", SET, Some("1"))],
        false,
    );
    assert_eq!(code, INVALID_CONFIG);
    assert!(message.contains("no.such.key"), "{message}");
    let (code, message) = incremental_alter(
        &broker,
        TOPIC,
        "inc",
        &[("segment.ms", SET, Some("soon"))],
        false,
    );
    assert_eq!(code, INVALID_CONFIG);
    assert!(message.contains("segment.ms"), "{message}");
    let (code, _) = incremental_alter(
        &broker,
        TOPIC,
        "inc",
        &[("segment.ms", APPEND, Some("1"))],
        false,
    );
    assert_eq!(code, INVALID_CONFIG, "APPEND needs a list config");
    let (code, _) = incremental_alter(
        &broker,
        TOPIC,
        "inc",
        &[("segment.ms", SET, Some("9000"))],
        true,
    );
    assert_eq!(code, 0);
    let described = describe_topic(&broker, "inc", false);
    assert_eq!(
        value_of(&described, "segment.ms").as_deref(),
        Some("604800000")
    );
    let (code, _) = incremental_alter(
        &broker,
        TOPIC,
        "nope",
        &[("segment.ms", SET, Some("9000"))],
        false,
    );
    assert_eq!(code, UNKNOWN_TOPIC_OR_PARTITION);

    // Broker resources: dynamic keys may change, read-only ones may not.
    let (code, _) = incremental_alter(
        &broker,
        BROKER,
        "1",
        &[("log.retention.bytes", SET, Some("123456789"))],
        false,
    );
    assert_eq!(code, 0);
    let (code, _) = incremental_alter(
        &broker,
        BROKER,
        "1",
        &[("log.dirs", SET, Some("/tmp"))],
        false,
    );
    assert_ne!(code, 0);
    let described = describe_topic(&broker, "inc", true);
    let bytes = described.results[0]
        .configs
        .iter()
        .find(|c| &*c.name == "retention.bytes")
        .expect("retention.bytes");
    assert_eq!(bytes.value.as_deref(), Some("123456789"));
    assert_eq!(bytes.config_source, 2, "DYNAMIC_BROKER_CONFIG");
    let synonyms: Vec<(&str, i8)> = bytes
        .synonyms
        .iter()
        .map(|s| (&*s.name, s.source))
        .collect();
    assert_eq!(
        synonyms,
        vec![("log.retention.bytes", 2), ("retention.bytes", 5)]
    );
    assert!(bytes.documentation.as_ref().is_some_and(|d| !d.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_and_describe_configs_error_codes() {
    let broker = TestBroker::start();
    broker.create_topic("legacy", 1).await;
    let alter = |key: &str, value: Option<&str>, topic: &str| -> (i16, String) {
        let response: AlterConfigsResponse = call(
            &broker,
            &AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(StrBytes::from_string(topic.to_string()))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_string(key.to_string()))
                    .with_value(value.map(|v| StrBytes::from_string(v.to_string())))])]),
        );
        let r = &response.responses[0];
        (
            r.error_code,
            r.error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default(),
        )
    };
    assert_eq!(alter("retention.ms", Some("1000"), "legacy").0, 0);
    let (code, message) = alter("no.such.config", Some("1"), "legacy");
    assert_eq!(code, INVALID_CONFIG);
    assert!(message.contains("no.such.config"), "{message}");
    let (code, message) = alter("retention.ms", Some("soon"), "legacy");
    assert_eq!(code, INVALID_CONFIG);
    assert!(message.contains("retention.ms"), "{message}");
    assert_eq!(
        alter("retention.ms", Some("1"), "nope").0,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        describe_topic(&broker, "nope", false).results[0].error_code,
        UNKNOWN_TOPIC_OR_PARTITION
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_cluster_log_dirs_and_quorum() {
    let broker = TestBroker::start();
    broker.create_topic("sized", 2).await;
    let producer = broker.producer(&[]);
    produce_one(&producer, "sized", "k", b"some bytes").await;

    let cluster: DescribeClusterResponse = call(
        &broker,
        &DescribeClusterRequest::default().with_endpoint_type(1),
    );
    assert_eq!(cluster.error_code, 0);
    assert_eq!(cluster.cluster_id.len(), 22);
    assert_eq!(cluster.controller_id.0, 1);
    assert_eq!(cluster.brokers.len(), 1);
    assert_eq!(cluster.brokers[0].broker_id.0, 1);
    assert_eq!(
        format!("{}:{}", cluster.brokers[0].host, cluster.brokers[0].port),
        broker.addr
    );

    let dirs: DescribeLogDirsResponse = call(
        &broker,
        &DescribeLogDirsRequest::default().with_topics(Some(vec![
            DescribableLogDirTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("sized")))
                .with_partitions(vec![0, 1]),
        ])),
    );
    assert_eq!(dirs.results.len(), 1);
    let dir = &dirs.results[0];
    assert!(dir.log_dir.ends_with("data"), "{}", dir.log_dir);
    assert_eq!(dir.topics.len(), 1);
    let sizes: i64 = dir.topics[0]
        .partitions
        .iter()
        .map(|p| p.partition_size)
        .sum();
    assert_eq!(dir.topics[0].partitions.len(), 2);
    assert!(sizes > 0);

    let quorum: DescribeQuorumResponse = call(
        &broker,
        &DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)])]),
    );
    assert_eq!(quorum.error_code, 0);
    let partition = &quorum.topics[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    assert_eq!(partition.leader_id.0, 1);
    assert!(partition.leader_epoch >= 1);
    assert!(partition.high_watermark > 0);
    assert_eq!(partition.current_voters.len(), 1);
    assert_eq!(partition.current_voters[0].replica_id.0, 1);
    assert!(partition.current_voters[0].log_end_offset >= partition.high_watermark);
    assert_eq!(quorum.nodes.len(), 1);
}

/// (value, source) of one config in a DescribeConfigs response, and its synonyms' (name, value, source).
type Described = (Option<String>, i8, Vec<(String, Option<String>, i8)>);

fn config_of(response: &DescribeConfigsResponse, key: &str) -> Option<Described> {
    let config = response.results[0]
        .configs
        .iter()
        .find(|c| &*c.name == key)?;
    let synonyms = config
        .synonyms
        .iter()
        .map(|s| {
            (
                s.name.to_string(),
                s.value.as_ref().map(|v| v.to_string()),
                s.source,
            )
        })
        .collect();
    Some((
        config.value.as_ref().map(|v| v.to_string()),
        config.config_source,
        synonyms,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_broker_keys_cluster_defaults_and_group_configs() {
    let mut broker = TestBroker::start();
    broker.create_topic("defaults", 1).await;
    let ok = |result: (i16, String)| assert_eq!(result.0, 0, "{result:?}");

    // What librdkafka's admin test does to a broker: Kafka keys Ferrite does not act on are stored all the same.
    ok(incremental_alter(
        &broker,
        BROKER,
        "1",
        &[
            ("background.threads", SET, Some("9")),
            ("log.cleanup.policy", APPEND, Some("compact")),
        ],
        false,
    ));
    let described = describe(&broker, BROKER, "1", true);
    let (value, source, _) = config_of(&described, "background.threads").expect("described");
    assert_eq!((value.as_deref(), source), (Some("9"), 2));
    assert_eq!(
        value_of(&described, "log.cleanup.policy").as_deref(),
        Some("delete,compact")
    );
    ok(incremental_alter(
        &broker,
        BROKER,
        "1",
        &[
            ("background.threads", DELETE, Some("")),
            ("log.cleanup.policy", SUBTRACT, Some("compact")),
        ],
        false,
    ));
    let described = describe(&broker, BROKER, "1", true);
    assert_eq!(
        config_of(&described, "background.threads").map(|c| (c.0, c.1)),
        Some((Some("10".into()), 5))
    );
    ok(incremental_alter(
        &broker,
        BROKER,
        "1",
        &[("sasl.kerberos.min.time.before.relogin", SET, Some("58000"))],
        false,
    ));
    // Kafka's refusals: keystores only per listener, thread pools within half and double, read-only keys.
    for (key, value) in [
        ("ssl.keystore.password", "secret"),
        ("background.threads", "50"),
        ("num.partitions", "3"),
    ] {
        let (code, message) =
            incremental_alter(&broker, BROKER, "1", &[(key, SET, Some(value))], false);
        assert_eq!(code, INVALID_REQUEST, "{key}: {message}");
        assert!(message.contains(key), "{message}");
    }

    // The cluster-wide default: set on the empty name, below the broker's own dynamic values.
    ok(incremental_alter(
        &broker,
        BROKER,
        "",
        &[("log.retention.bytes", SET, Some("5555"))],
        false,
    ));
    let (code, message) = incremental_alter(
        &broker,
        BROKER,
        "",
        &[("sasl.kerberos.min.time.before.relogin", SET, Some("1000"))],
        false,
    );
    assert_eq!(code, INVALID_REQUEST, "{message}");
    assert!(message.contains("broker id must be specified"), "{message}");
    let defaults = describe(&broker, BROKER, "", true);
    assert_eq!(defaults.results[0].error_code, 0);
    assert_eq!(defaults.results[0].configs.len(), 1);
    assert_eq!(
        config_of(&defaults, "log.retention.bytes"),
        Some((
            Some("5555".into()),
            3,
            vec![("log.retention.bytes".into(), Some("5555".into()), 3)]
        ))
    );
    let described = describe(&broker, BROKER, "1", true);
    let (value, source, synonyms) =
        config_of(&described, "log.retention.bytes").expect("described");
    assert_eq!((value.as_deref(), source), (Some("5555"), 3));
    assert_eq!(synonyms.iter().map(|s| s.2).collect::<Vec<_>>(), vec![3, 5]);
    let (value, source, _) =
        config_of(&described, "sasl.kerberos.min.time.before.relogin").expect("described");
    assert_eq!((value.as_deref(), source), (Some("58000"), 2));
    let password = described.results[0]
        .configs
        .iter()
        .find(|c| &*c.name == "ssl.keystore.password")
        .expect("described");
    assert!(password.is_sensitive && password.value.is_none());
    assert_eq!(password.config_type, 9);
    let topic = describe_topic(&broker, "defaults", true);
    let (value, source, synonyms) = config_of(&topic, "retention.bytes").expect("described");
    assert_eq!((value.as_deref(), source), (Some("5555"), 3));
    assert_eq!(
        synonyms[0],
        ("log.retention.bytes".into(), Some("5555".into()), 3)
    );

    // Group configs, for a group that does not exist, as Kafka allows.
    ok(incremental_alter(
        &broker,
        GROUP,
        "my-group",
        &[("consumer.session.timeout.ms", SET, Some("50000"))],
        false,
    ));
    let group = describe(&broker, GROUP, "my-group", true);
    assert_eq!(group.results[0].error_code, 0);
    assert_eq!(
        config_of(&group, "consumer.session.timeout.ms").map(|c| (c.0, c.1)),
        Some((Some("50000".into()), 8))
    );
    assert_eq!(
        config_of(&group, "consumer.heartbeat.interval.ms").map(|c| (c.0, c.1)),
        Some((Some("5000".into()), 5))
    );
    assert_eq!(
        config_of(&group, "share.auto.offset.reset").map(|c| c.0),
        Some(Some("latest".into()))
    );
    let (code, message) = incremental_alter(
        &broker,
        GROUP,
        "my-group",
        &[("no.such.key", SET, Some("1"))],
        false,
    );
    assert_eq!(code, INVALID_CONFIG);
    assert!(message.contains("no.such.key"), "{message}");
    let (code, message) = incremental_alter(
        &broker,
        GROUP,
        "my-group",
        &[("consumer.session.timeout.ms", SET, Some("1000"))],
        false,
    );
    assert_eq!(code, INVALID_CONFIG);
    assert!(
        message.contains("group.consumer.min.session.timeout.ms"),
        "{message}"
    );
    assert_eq!(
        incremental_alter(
            &broker,
            GROUP,
            "",
            &[("consumer.session.timeout.ms", SET, Some("50000"))],
            false
        )
        .0,
        INVALID_REQUEST
    );
    assert_eq!(
        describe(&broker, GROUP, "", false).results[0].error_code,
        INVALID_REQUEST
    );
    ok(incremental_alter(
        &broker,
        GROUP,
        "other-group",
        &[("share.record.lock.duration.ms", SET, Some("20000"))],
        false,
    ));
    ok(incremental_alter(
        &broker,
        GROUP,
        "other-group",
        &[("share.record.lock.duration.ms", DELETE, None)],
        false,
    ));
    let other = describe(&broker, GROUP, "other-group", false);
    assert_eq!(
        config_of(&other, "share.record.lock.duration.ms").map(|c| (c.0, c.1)),
        Some((Some("30000".into()), 5))
    );

    // Cluster defaults and group configs are metadata records: they survive a restart.
    broker.restart();
    let defaults = describe(&broker, BROKER, "", false);
    assert_eq!(
        value_of(&defaults, "log.retention.bytes").as_deref(),
        Some("5555")
    );
    let group = describe(&broker, GROUP, "my-group", false);
    assert_eq!(
        config_of(&group, "consumer.session.timeout.ms").map(|c| (c.0, c.1)),
        Some((Some("50000".into()), 8))
    );
}
