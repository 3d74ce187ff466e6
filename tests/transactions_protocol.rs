//! The transaction coordinator's answers on the wire, for the cases a client library only shows as a retry or a
//! fatal error: KIP-890's check of a transactional batch that was never added to its transaction, the error codes
//! of AddPartitionsToTxn, InitProducerId and EndTxn (and their older versions' codes), CONCURRENT_TRANSACTIONS
//! while markers are written, DescribeTransactions and ListTransactions.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::TestBroker;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnResponse;
use kafka_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use kafka_protocol::messages::describe_transactions_response::DescribeTransactionsResponse;
use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::end_txn_response::EndTxnResponse;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::find_coordinator_response::FindCoordinatorResponse;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::list_transactions_request::ListTransactionsRequest;
use kafka_protocol::messages::list_transactions_response::ListTransactionsResponse;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ProduceRequest, ProduceResponse, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, TimestampType};

const INVALID_REQUEST: i16 = 42;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const CONCURRENT_TRANSACTIONS: i16 = 51;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OPERATION_NOT_ATTEMPTED: i16 = 55;
const PRODUCER_FENCED: i16 = 90;
const TRANSACTION_ABORTABLE: i16 = 120;

fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(id.to_string()))
}

/// FindCoordinator for a transactional id: creates `__transaction_state` and waits for its partition to load.
fn find_coordinator(broker: &TestBroker, id: &str) -> FindCoordinatorResponse {
    common::call(
        broker,
        ApiKey::FindCoordinator,
        3,
        &FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(id.to_string()))
            .with_key_type(1),
    )
}

fn init(broker: &TestBroker, version: i16, id: &str, timeout_ms: i32) -> InitProducerIdResponse {
    common::call(
        broker,
        ApiKey::InitProducerId,
        version,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(txn_id(id)))
            .with_transaction_timeout_ms(timeout_ms)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    )
}

/// InitProducerId, retried while the coordinator is busy (CONCURRENT_TRANSACTIONS) or loading.
fn init_ok(broker: &TestBroker, id: &str) -> (i64, i16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = init(broker, 4, id, 30_000);
        if response.error_code == 0 {
            return (response.producer_id.0, response.producer_epoch);
        }
        assert!(
            Instant::now() < deadline,
            "InitProducerId kept failing: {}",
            response.error_code
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn add_partitions(
    broker: &TestBroker,
    version: i16,
    id: &str,
    (producer_id, epoch): (i64, i16),
    topics: &[(&str, &[i32])],
) -> Vec<(String, i32, i16)> {
    let topics: Vec<AddPartitionsToTxnTopic> = topics
        .iter()
        .map(|(name, partitions)| {
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                .with_partitions(partitions.to_vec())
        })
        .collect();
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txn_id(id))
        .with_v3_and_below_producer_id(ProducerId(producer_id))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(topics);
    let response: AddPartitionsToTxnResponse =
        common::call(broker, ApiKey::AddPartitionsToTxn, version, &request);
    response
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition.iter().map(|p| {
                (
                    t.name.to_string(),
                    p.partition_index,
                    p.partition_error_code,
                )
            })
        })
        .collect()
}

fn end_txn(
    broker: &TestBroker,
    version: i16,
    id: &str,
    (producer_id, epoch): (i64, i16),
    commit: bool,
) -> i16 {
    let response: EndTxnResponse = common::call(
        broker,
        ApiKey::EndTxn,
        version,
        &EndTxnRequest::default()
            .with_transactional_id(txn_id(id))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_committed(commit),
    );
    response.error_code
}

/// AddPartitionsToTxn v4 with verify_only (KIP-890, the form brokers send): the code for partition 0 of `topic`.
fn verify(broker: &TestBroker, id: &str, (producer_id, epoch): (i64, i16), topic: &str) -> i16 {
    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(txn_id(id))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_verify_only(true)
            .with_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![0])]),
    ]);
    let response: AddPartitionsToTxnResponse =
        common::call(broker, ApiKey::AddPartitionsToTxn, 4, &request);
    response.results_by_transaction[0].topic_results[0].results_by_partition[0].partition_error_code
}

/// One transactional batch of the producer, as a transactional producer sends it.
fn transactional_batch((producer_id, epoch): (i64, i16), sequence: i32) -> Bytes {
    common::encode_batch(&[Record {
        transactional: true,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id,
        producer_epoch: epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence,
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(Bytes::from_static(b"v")),
        headers: Default::default(),
    }])
}

fn produce(broker: &TestBroker, version: i16, id: &str, topic: &str, records: Bytes) -> i16 {
    let request = ProduceRequest::default()
        .with_transactional_id(Some(txn_id(id)))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let response: ProduceResponse = common::call(broker, ApiKey::Produce, version, &request);
    response.responses[0].partition_responses[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_batch_outside_its_transaction_is_refused() {
    let broker = TestBroker::start();
    broker.create_topic("verified", 1).await;
    assert_eq!(find_coordinator(&broker, "t-verify").error_code, 0);
    let producer = init_ok(&broker, "t-verify");

    // Not added: the verification says so, and the batch is refused with the code each Produce version knows.
    assert_eq!(
        verify(&broker, "t-verify", producer, "verified"),
        TRANSACTION_ABORTABLE
    );
    assert_eq!(
        produce(
            &broker,
            9,
            "t-verify",
            "verified",
            transactional_batch(producer, 0)
        ),
        INVALID_TXN_STATE
    );
    assert_eq!(
        produce(
            &broker,
            11,
            "t-verify",
            "verified",
            transactional_batch(producer, 0)
        ),
        TRANSACTION_ABORTABLE
    );

    // Added: accepted, and the next batch (the transaction is open in the partition) needs no check.
    let added = add_partitions(&broker, 3, "t-verify", producer, &[("verified", &[0])]);
    assert_eq!(added, vec![("verified".to_string(), 0, 0)]);
    assert_eq!(verify(&broker, "t-verify", producer, "verified"), 0);
    assert_eq!(
        produce(
            &broker,
            9,
            "t-verify",
            "verified",
            transactional_batch(producer, 0)
        ),
        0
    );
    assert_eq!(
        produce(
            &broker,
            9,
            "t-verify",
            "verified",
            transactional_batch(producer, 1)
        ),
        0
    );
    assert_eq!(end_txn(&broker, 3, "t-verify", producer, false), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_partitions_to_txn_answers_as_kafka_does() {
    let broker = TestBroker::start();
    broker.create_topic("known", 2).await;
    find_coordinator(&broker, "t-add");
    let producer = init_ok(&broker, "t-add");

    // One unknown partition fails the whole request: the others were not attempted.
    let mut results = add_partitions(
        &broker,
        3,
        "t-add",
        producer,
        &[("known", &[0, 7]), ("missing", &[0])],
    );
    results.sort();
    assert_eq!(
        results,
        vec![
            ("known".to_string(), 0, OPERATION_NOT_ATTEMPTED),
            ("known".to_string(), 7, UNKNOWN_TOPIC_OR_PARTITION),
            ("missing".to_string(), 0, UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );

    // A stale epoch is fenced: PRODUCER_FENCED from v2, INVALID_PRODUCER_EPOCH before.
    let stale = (producer.0, producer.1 - 1);
    let fenced = |version| add_partitions(&broker, version, "t-add", stale, &[("known", &[0])]);
    assert_eq!(fenced(3)[0].2, PRODUCER_FENCED);
    assert_eq!(fenced(1)[0].2, INVALID_PRODUCER_EPOCH);

    // The transaction's markers are being written right after EndTxn; the next transaction either starts or hears
    // CONCURRENT_TRANSACTIONS until they are.
    assert_eq!(
        add_partitions(&broker, 3, "t-add", producer, &[("known", &[0, 1])])[0].2,
        0
    );
    assert_eq!(end_txn(&broker, 3, "t-add", producer, true), 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let code = add_partitions(&broker, 3, "t-add", producer, &[("known", &[0])])[0].2;
        if code == 0 {
            break;
        }
        assert_eq!(code, CONCURRENT_TRANSACTIONS);
        assert!(Instant::now() < deadline, "the markers were never written");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The transaction the loop started commits.
    assert_eq!(end_txn(&broker, 3, "t-add", producer, true), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_producer_id_checks_its_inputs_and_fences() {
    let broker = TestBroker::start_with(&["--transaction.max.timeout.ms=30000"]);
    find_coordinator(&broker, "t-init");
    assert_eq!(
        init(&broker, 4, "t-init", 30_001).error_code,
        INVALID_TRANSACTION_TIMEOUT
    );
    assert_eq!(
        init(&broker, 4, "t-init", 0).error_code,
        INVALID_TRANSACTION_TIMEOUT
    );
    assert_eq!(init(&broker, 4, "", 10_000).error_code, INVALID_REQUEST);
    let first = find_coordinator(&broker, "");
    assert_eq!(first.error_code, INVALID_REQUEST);

    let (producer_id, epoch) = init_ok(&broker, "t-init");
    let (again_id, again_epoch) = init_ok(&broker, "t-init");
    assert_eq!(
        again_id, producer_id,
        "the transactional id keeps its producer id"
    );
    assert_eq!(
        again_epoch,
        epoch + 1,
        "each InitProducerId bumps the epoch"
    );
    // The older incarnation is fenced: EndTxn v2+ says PRODUCER_FENCED, v0..=v1 INVALID_PRODUCER_EPOCH.
    assert_eq!(
        end_txn(&broker, 3, "t-init", (producer_id, epoch), true),
        PRODUCER_FENCED
    );
    assert_eq!(
        end_txn(&broker, 1, "t-init", (producer_id, epoch), true),
        INVALID_PRODUCER_EPOCH
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_and_list_transactions() {
    let broker = TestBroker::start();
    broker.create_topic("described", 2).await;
    find_coordinator(&broker, "t-described");
    let producer = init_ok(&broker, "t-described");
    add_partitions(
        &broker,
        3,
        "t-described",
        producer,
        &[("described", &[1, 0])],
    );

    let described: DescribeTransactionsResponse = common::call(
        &broker,
        ApiKey::DescribeTransactions,
        0,
        &DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![txn_id("t-described"), txn_id("t-unknown")]),
    );
    let open = &described.transaction_states[0];
    assert_eq!(open.error_code, 0);
    assert_eq!(open.transaction_state.as_str(), "Ongoing");
    assert_eq!(open.producer_id.0, producer.0);
    assert_eq!(open.producer_epoch, producer.1);
    assert_eq!(open.transaction_timeout_ms, 30_000);
    assert!(open.transaction_start_time_ms > 0);
    assert_eq!(open.topics.len(), 1);
    assert_eq!(open.topics[0].topic.as_str(), "described");
    assert_eq!(open.topics[0].partitions, vec![0, 1]);
    // TRANSACTIONAL_ID_NOT_FOUND (105), or NOT_COORDINATOR (16) for an id whose partition is not led here.
    assert!(matches!(
        described.transaction_states[1].error_code,
        105 | 16
    ));

    let list = |states: Vec<&str>, duration_ms: i64| -> ListTransactionsResponse {
        common::call(
            &broker,
            ApiKey::ListTransactions,
            1,
            &ListTransactionsRequest::default()
                .with_state_filters(
                    states
                        .into_iter()
                        .map(|s| StrBytes::from_string(s.to_string()))
                        .collect(),
                )
                .with_duration_filter(duration_ms),
        )
    };
    let all = list(vec![], -1);
    assert_eq!(all.error_code, 0);
    assert_eq!(all.transaction_states.len(), 1);
    assert_eq!(
        all.transaction_states[0].transactional_id.as_str(),
        "t-described"
    );
    assert_eq!(
        all.transaction_states[0].transaction_state.as_str(),
        "Ongoing"
    );
    assert!(list(vec!["CompleteCommit"], -1)
        .transaction_states
        .is_empty());
    let unknown = list(vec!["Ongoing", "Sleeping"], -1);
    assert_eq!(unknown.transaction_states.len(), 1);
    assert_eq!(unknown.unknown_state_filters.len(), 1);
    assert!(list(vec![], 3_600_000).transaction_states.is_empty());
}
