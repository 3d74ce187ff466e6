//! KIP-227 incremental fetch sessions, spoken raw (librdkafka does not use them; kafka-python's use is in
//! compat-tests/python): a full fetch opens a session, incremental fetches list only partitions with news, and
//! wrong session ids and epochs get Kafka's errors.

mod common;

use std::time::Duration;

use common::{call, TestBroker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::FutureRecord;

const TOPIC: &str = "sessions";

async fn produce_to(broker: &TestBroker, partition: i32, value: &str) {
    broker
        .producer(&[])
        .send(
            FutureRecord::<(), _>::to(TOPIC)
                .partition(partition)
                .payload(value),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(error, _)| error)
        .expect("delivery");
}

fn partition(index: i32, fetch_offset: i64) -> FetchPartition {
    FetchPartition::default()
        .with_partition(index)
        .with_fetch_offset(fetch_offset)
        .with_partition_max_bytes(1 << 20)
}

fn fetch(session_id: i32, epoch: i32, partitions: Vec<FetchPartition>) -> FetchRequest {
    let topics = if partitions.is_empty() {
        vec![]
    } else {
        vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(partitions)]
    };
    FetchRequest::default()
        .with_max_wait_ms(50)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_id(session_id)
        .with_session_epoch(epoch)
        .with_topics(topics)
}

/// (partition, record bytes) of every partition a response lists.
fn listed(response: &FetchResponse) -> Vec<(i32, usize)> {
    response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.records.as_ref().map_or(0, |r| r.len())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_fetches_list_only_partitions_with_news() {
    let broker = TestBroker::start();
    broker.create_topic(TOPIC, 3).await;
    produce_to(&broker, 0, "first").await;

    // Epoch 0 opens a session; the full response lists every partition.
    let full: FetchResponse = call(
        &broker,
        ApiKey::Fetch,
        12,
        &fetch(
            0,
            0,
            vec![partition(0, 0), partition(1, 0), partition(2, 0)],
        ),
    );
    assert_eq!(full.error_code, 0);
    let session = full.session_id;
    assert!(session > 0, "a session was opened");
    let parts = listed(&full);
    assert_eq!(parts.iter().map(|p| p.0).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!(parts[0].1 > 0, "partition 0 has its record");

    // Epoch 1 moves partition 0 past its record: nothing has news.
    let quiet: FetchResponse = call(
        &broker,
        ApiKey::Fetch,
        12,
        &fetch(session, 1, vec![partition(0, 1)]),
    );
    assert_eq!((quiet.error_code, quiet.session_id), (0, session));
    assert_eq!(listed(&quiet), vec![], "no records, no new HighWatermark");

    // A record on partition 2: epoch 2, naming no partition at all, lists just that one, with the record.
    produce_to(&broker, 2, "second").await;
    let news: FetchResponse = call(&broker, ApiKey::Fetch, 12, &fetch(session, 2, vec![]));
    let parts = listed(&news);
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!(parts[0].0, 2);
    assert!(parts[0].1 > 0);

    // Forgetting partition 2 takes it out of the session: its next record is not fetched.
    let forget =
        fetch(session, 3, vec![]).with_forgotten_topics_data(vec![ForgottenTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![2])]);
    let _: FetchResponse = call(&broker, ApiKey::Fetch, 12, &forget);
    produce_to(&broker, 2, "third").await;
    let after: FetchResponse = call(&broker, ApiKey::Fetch, 12, &fetch(session, 4, vec![]));
    assert_eq!(listed(&after), vec![]);

    // A replayed epoch, an unknown session, a switch to topic ids: Kafka's errors.
    let replayed: FetchResponse = call(&broker, ApiKey::Fetch, 12, &fetch(session, 4, vec![]));
    assert_eq!(
        replayed.error_code,
        ResponseError::InvalidFetchSessionEpoch.code()
    );
    let unknown: FetchResponse = call(
        &broker,
        ApiKey::Fetch,
        12,
        &fetch(session + 1000, 1, vec![]),
    );
    assert_eq!(
        unknown.error_code,
        ResponseError::FetchSessionIdNotFound.code()
    );
    let by_id: FetchResponse = call(&broker, ApiKey::Fetch, 13, &fetch(session, 5, vec![]));
    assert_eq!(
        by_id.error_code,
        ResponseError::FetchSessionTopicIdError.code()
    );

    // Epoch -1 closes the session and is answered as a full fetch without one.
    let closing: FetchResponse = call(
        &broker,
        ApiKey::Fetch,
        12,
        &fetch(session, -1, vec![partition(0, 0)]),
    );
    assert_eq!((closing.error_code, closing.session_id), (0, 0));
    assert_eq!(listed(&closing).len(), 1);
    let gone: FetchResponse = call(&broker, ApiKey::Fetch, 12, &fetch(session, 5, vec![]));
    assert_eq!(
        gone.error_code,
        ResponseError::FetchSessionIdNotFound.code()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_session_cache_answers_without_a_session() {
    let broker = TestBroker::start_with(&["--max.incremental.fetch.session.cache.slots=1"]);
    broker.create_topic(TOPIC, 1).await;
    let first: FetchResponse = call(
        &broker,
        ApiKey::Fetch,
        12,
        &fetch(0, 0, vec![partition(0, 0)]),
    );
    assert!(first.session_id > 0);
    let second: FetchResponse = call(
        &broker,
        ApiKey::Fetch,
        12,
        &fetch(0, 0, vec![partition(0, 0)]),
    );
    assert_eq!(
        (second.error_code, second.session_id),
        (0, 0),
        "no free slot and no session idle for two minutes: a full fetch without a session"
    );
    assert_eq!(listed(&second).len(), 1);
}
