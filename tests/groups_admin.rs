//! Group administration with real clients: ListGroups and DescribeGroups through librdkafka's group list,
//! DeleteGroups through its admin client, OffsetDelete and the wire details (authorized operations, Dead for unknown
//! groups, `__consumer_offsets` internal and closed to producers) through raw requests.

mod common;

use std::time::{Duration, Instant};

use common::{call, TestBroker};
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_groups_response::DescribeGroupsResponse;
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::metadata_response::MetadataResponse;
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_delete_response::OffsetDeleteResponse;
use kafka_protocol::messages::{ApiKey, GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::AdminOptions;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

const GROUP_FLAGS: &[&str] = &[
    "--group.initial.rebalance.delay.ms=0",
    "--group.min.session.timeout.ms=500",
    "--offsets.topic.num.partitions=3",
];

fn consumer(broker: &TestBroker, group: &str) -> BaseConsumer {
    broker
        .client_config()
        .set("group.id", group)
        .set("client.id", "admin-test-client")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer")
}

fn poll_until(consumer: &BaseConsumer, what: &str, mut done: impl FnMut(&BaseConsumer) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(consumer) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        let _ = consumer.poll(Duration::from_millis(100));
    }
}

fn offset_delete(
    broker: &TestBroker,
    group: &str,
    topic: &str,
    partition: i32,
) -> OffsetDeleteResponse {
    let request = OffsetDeleteRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partitions(vec![
                OffsetDeleteRequestPartition::default().with_partition_index(partition)
            ])]);
    call(broker, ApiKey::OffsetDelete, 0, &request)
}

#[tokio::test(flavor = "multi_thread")]
async fn list_describe_delete_groups_and_offsets() {
    let broker = TestBroker::start_with(GROUP_FLAGS);
    broker.create_topic("adm", 2).await;
    broker.create_topic("other", 1).await;
    let member = consumer(&broker, "g-adm");
    member.subscribe(&["adm"]).expect("subscribe");
    poll_until(&member, "an assignment", |c| {
        c.assignment().map(|a| a.count() == 2).unwrap_or(false)
    });
    // Offsets on the subscribed topic and on one the group does not subscribe to.
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("adm", 0, Offset::Offset(3))
        .expect("tpl");
    tpl.add_partition_offset("other", 0, Offset::Offset(5))
        .expect("tpl");
    member.commit(&tpl, CommitMode::Sync).expect("commit");

    // ListGroups + DescribeGroups, as librdkafka's list_groups() drives them.
    let list = member
        .fetch_group_list(None, Duration::from_secs(10))
        .expect("group list");
    let group = list
        .groups()
        .iter()
        .find(|g| g.name() == "g-adm")
        .expect("the group is listed");
    assert_eq!(group.state(), "Stable");
    assert_eq!(group.protocol_type(), "consumer");
    assert_eq!(group.protocol(), "range");
    assert_eq!(group.members().len(), 1);
    let m = &group.members()[0];
    assert_eq!(m.client_id(), "admin-test-client");
    assert_eq!(m.client_host(), "/127.0.0.1");
    assert!(
        m.metadata().is_some_and(|md| !md.is_empty()),
        "member metadata"
    );
    assert!(
        m.assignment().is_some_and(|a| !a.is_empty()),
        "member assignment"
    );

    // Raw DescribeGroups: authorized operations omitted unless asked; unknown groups are Dead.
    let described: DescribeGroupsResponse = call(
        &broker,
        ApiKey::DescribeGroups,
        5,
        &DescribeGroupsRequest::default().with_groups(vec![
            GroupId(StrBytes::from_static_str("g-adm")),
            GroupId(StrBytes::from_static_str("nobody")),
        ]),
    );
    assert_eq!(described.groups[0].authorized_operations, i32::MIN);
    assert_eq!(described.groups[0].error_code, 0);
    assert_eq!(&*described.groups[1].group_state, "Dead");
    assert_eq!(described.groups[1].error_code, 0);

    // OffsetDelete: refused for a subscribed topic, done for the other.
    let response = offset_delete(&broker, "g-adm", "adm", 0);
    assert_eq!(response.error_code, 0);
    assert_eq!(
        response.topics[0].partitions[0].error_code, 86,
        "GROUP_SUBSCRIBED_TO_TOPIC"
    );
    let response = offset_delete(&broker, "g-adm", "other", 0);
    assert_eq!(response.topics[0].partitions[0].error_code, 0);
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition("adm", 0);
    wanted.add_partition("other", 0);
    let committed = member
        .committed_offsets(wanted, Duration::from_secs(10))
        .expect("committed");
    assert_eq!(
        committed.find_partition("adm", 0).expect("adm").offset(),
        Offset::Offset(3)
    );
    assert_eq!(
        committed
            .find_partition("other", 0)
            .expect("other")
            .offset(),
        Offset::Invalid
    );
    assert_eq!(
        offset_delete(&broker, "nobody", "adm", 0).error_code,
        69,
        "GROUP_ID_NOT_FOUND"
    );

    // DeleteGroups: NON_EMPTY_GROUP while the member is there; gone once it left.
    let admin = broker.admin();
    let results = admin
        .delete_groups(&["g-adm"], &AdminOptions::new())
        .await
        .expect("delete groups");
    assert_eq!(
        results[0].as_ref().map_err(|(_, code)| *code),
        Err(RDKafkaErrorCode::NonEmptyGroup)
    );
    member.unsubscribe();
    drop(member);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let results = admin
            .delete_groups(&["g-adm"], &AdminOptions::new())
            .await
            .expect("delete groups");
        match &results[0] {
            Ok(_) => break,
            Err((_, RDKafkaErrorCode::NonEmptyGroup)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(other) => panic!("delete failed: {other:?}"),
        }
    }
    let after = consumer(&broker, "g-probe")
        .fetch_group_list(Some("g-adm"), Duration::from_secs(10))
        .expect("group list");
    assert!(
        after.groups().iter().all(|g| g.state() == "Dead"),
        "deleted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_offsets_is_internal_and_closed_to_producers() {
    let broker = TestBroker::start_with(GROUP_FLAGS);
    broker.create_topic("t", 1).await;
    // Creating a group creates __consumer_offsets.
    let member = consumer(&broker, "g-internal");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("t", 0, Offset::Offset(0))
        .expect("tpl");
    member.commit(&tpl, CommitMode::Sync).expect("commit");

    let metadata: MetadataResponse = call(
        &broker,
        ApiKey::Metadata,
        9,
        &MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
                TopicName(StrBytes::from_static_str("__consumer_offsets")),
            ))])),
    );
    let topic = &metadata.topics[0];
    assert_eq!(topic.error_code, 0);
    assert!(topic.is_internal);
    assert_eq!(topic.partitions.len(), 3, "offsets.topic.num.partitions");

    let producer = broker.producer(&[("message.timeout.ms", "5000")]);
    let result = producer
        .send(
            FutureRecord::to("__consumer_offsets").key("k").payload("v"),
            Duration::from_secs(5),
        )
        .await;
    match result {
        Err((KafkaError::MessageProduction(code), _)) => {
            assert_eq!(code, RDKafkaErrorCode::InvalidTopic)
        }
        other => panic!("expected INVALID_TOPIC_EXCEPTION, got {other:?}"),
    }
}
