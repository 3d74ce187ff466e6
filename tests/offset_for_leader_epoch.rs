//! OffsetForLeaderEpoch (KIP-101, KIP-279, KIP-320) against a real broker: where each leader epoch ends, the
//! answers for epochs the leader never had, and the fencing of stale or future `current_leader_epoch`s.

mod common;

use std::time::{Duration, Instant};

use common::{call, produce_one, TestBroker};
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::metadata_response::MetadataResponse;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderEpochRequest, OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse,
};
use kafka_protocol::messages::{ApiKey, TopicName};
use kafka_protocol::protocol::StrBytes;

const TOPIC: &str = "epochs";
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const FENCED_LEADER_EPOCH: i16 = 74;
const UNKNOWN_LEADER_EPOCH: i16 = 75;

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// The leader and leader epoch of the topic's partition 0, from Metadata v12.
fn leader(broker: &TestBroker) -> (i32, i32) {
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(name(TOPIC))),
    ]));
    let response: MetadataResponse = call(broker, ApiKey::Metadata, 12, &request);
    let partition = &response.topics[0].partitions[0];
    (partition.leader_id.0, partition.leader_epoch)
}

/// One OffsetForLeaderEpoch request for (topic, partition, current_leader_epoch, leader_epoch)s, and the answer for
/// each, in order.
fn ask(
    broker: &TestBroker,
    version: i16,
    partitions: &[(&str, i32, i32, i32)],
) -> Vec<EpochEndOffset> {
    let topics = partitions
        .iter()
        .map(|(topic, partition, current, requested)| {
            OffsetForLeaderTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(*partition)
                    .with_current_leader_epoch(*current)
                    .with_leader_epoch(*requested)])
        })
        .collect();
    // A consumer's replica id, as KIP-320's validation sends it.
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id((-1).into())
        .with_topics(topics);
    let response: OffsetForLeaderEpochResponse =
        call(broker, ApiKey::OffsetForLeaderEpoch, version, &request);
    assert_eq!(response.topics.len(), partitions.len());
    response
        .topics
        .into_iter()
        .zip(partitions)
        .map(|(topic, (asked, partition, ..))| {
            assert_eq!(topic.topic.0.as_str(), *asked);
            let answer = topic.partitions.into_iter().next().expect("one partition");
            assert_eq!(answer.partition, *partition);
            answer
        })
        .collect()
}

fn answer(e: &EpochEndOffset) -> (i16, i32, i64) {
    (e.error_code, e.leader_epoch, e.end_offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_answers_where_each_epoch_ends() {
    let mut broker = TestBroker::start();
    let versions: ApiVersionsResponse = call(
        &broker,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    );
    let advertised = versions
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::OffsetForLeaderEpoch as i16)
        .expect("OffsetForLeaderEpoch is advertised");
    assert_eq!((advertised.min_version, advertised.max_version), (2, 4));

    broker.create_topic(TOPIC, 1).await;
    let producer = broker.producer(&[("acks", "all")]);
    for i in 0..2 {
        produce_one(&producer, TOPIC, &format!("a{i}"), b"first").await;
    }
    drop(producer);
    let (_, first_epoch) = leader(&broker);
    assert_eq!(first_epoch, 0, "a new partition's first leader epoch");

    // A clean stop fences the broker, which leaves the partition leaderless; its return elects it again in a newer
    // epoch, which begins at its log end (2).
    broker.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    let latest = loop {
        let (leader_id, epoch) = leader(&broker);
        if leader_id >= 0 && epoch > first_epoch {
            break epoch;
        }
        assert!(
            Instant::now() < deadline,
            "no new leader epoch after restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let producer = broker.producer(&[("acks", "all")]);
    for i in 0..3 {
        produce_one(&producer, TOPIC, &format!("b{i}"), b"second").await;
    }
    drop(producer);

    for version in 2..=4 {
        let answers = ask(
            &broker,
            version,
            &[
                // Epoch 0 ends where the next epoch this log knows begins.
                (TOPIC, 0, latest, 0),
                // The latest epoch ends at the log end offset.
                (TOPIC, 0, latest, latest),
                // Without a current_leader_epoch nothing is fenced.
                (TOPIC, 0, -1, latest),
                // Newer than every epoch the leader has: UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET.
                (TOPIC, 0, -1, latest + 1),
                ("no-such-topic", 0, -1, 0),
                (TOPIC, 7, -1, 0),
                (TOPIC, 0, latest - 1, 0),
                (TOPIC, 0, latest + 1, 0),
            ],
        );
        let answers: Vec<_> = answers.iter().map(answer).collect();
        assert_eq!(
            answers,
            vec![
                (0, 0, 2),
                (0, latest, 5),
                (0, latest, 5),
                (0, -1, -1),
                (UNKNOWN_TOPIC_OR_PARTITION, -1, -1),
                (UNKNOWN_TOPIC_OR_PARTITION, -1, -1),
                (FENCED_LEADER_EPOCH, -1, -1),
                (UNKNOWN_LEADER_EPOCH, -1, -1),
            ],
            "v{version}"
        );
    }

    // An epoch between the two that this broker never led (the leaderless one, if the controller bumped through
    // it) answers the largest epoch below it that the log knows.
    if latest > 1 {
        let between = ask(&broker, 4, &[(TOPIC, 0, latest, latest - 1)]);
        assert_eq!(answer(&between[0]), (0, 0, 2));
    }
}
