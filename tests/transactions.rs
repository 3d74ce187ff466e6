//! Transactions (KIP-98) driven by librdkafka's transactional producer against a real broker: a
//! consume-transform-produce loop that commits and aborts, fencing by transactional.id, the coordinator aborting a
//! transaction past its timeout, transactions across a restart, and the transaction timeout limit.
//! librdkafka's transactional API blocks, so these are plain tests.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::TestBroker;
use kafka_protocol::messages::describe_producers_request::{
    DescribeProducersRequest, TopicRequest,
};
use kafka_protocol::messages::describe_producers_response::DescribeProducersResponse;
use kafka_protocol::messages::{ApiKey, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

/// Broker flags for quick transaction tests: small internal topics, no initial rebalance delay.
const TXN_FLAGS: &[&str] = &[
    "--group.initial.rebalance.delay.ms=0",
    "--offsets.topic.num.partitions=5",
    "--transaction.state.log.num.partitions=5",
];

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

type TxnProducer = ThreadedProducer<DefaultProducerContext>;

fn start(extra: &[&str]) -> TestBroker {
    let flags: Vec<&str> = TXN_FLAGS.iter().chain(extra).copied().collect();
    TestBroker::start_with(&flags)
}

fn create_topic(broker: &TestBroker, name: &str, partitions: i32) {
    futures::executor::block_on(broker.create_topic(name, partitions));
}

/// A transactional producer. message.timeout.ms is left to librdkafka, which keeps it within transaction.timeout.ms.
fn txn_producer(
    broker: &TestBroker,
    transactional_id: &str,
    extra: &[(&str, &str)],
) -> TxnProducer {
    let mut config = broker.client_config();
    config
        .set("transactional.id", transactional_id)
        .set("linger.ms", "5");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().expect("transactional producer")
}

fn send(producer: &TxnProducer, topic: &str, key: &str, value: &str) {
    let mut record = BaseRecord::to(topic).key(key).payload(value);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                if Instant::now() < deadline =>
            {
                record = back;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err((error, _)) => panic!("send to {topic}: {error}"),
        }
    }
}

/// Produces plain (non-transactional) records and waits for every acknowledgement.
fn produce_plain(broker: &TestBroker, topic: &str, records: &[(String, String)]) {
    let producer = broker.producer(&[]);
    let deliveries: Vec<_> = records
        .iter()
        .map(|(key, value)| {
            producer
                .send_result(
                    rdkafka::producer::FutureRecord::to(topic)
                        .key(key)
                        .payload(value),
                )
                .map_err(|(error, _)| error)
                .expect("enqueued")
        })
        .collect();
    for delivery in futures::executor::block_on(futures::future::join_all(deliveries)) {
        delivery
            .expect("delivery reported")
            .map_err(|(error, _)| error)
            .expect("delivered");
    }
}

/// Reads every partition of `topic` from the beginning until each reports its end, at this isolation level
/// ("read_committed": up to the last stable offset, aborted records skipped).
fn read_to_end(
    broker: &TestBroker,
    topic: &str,
    partitions: i32,
    isolation: &str,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = broker
        .client_config()
        .set("group.id", "unused-with-assign")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");
    let mut at_end = BTreeSet::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while at_end.len() < partitions as usize {
        assert!(
            Instant::now() < deadline,
            "{isolation} consumer of {topic}: only partitions {at_end:?} reached their end in 30 s \
             ({} records so far)",
            out.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => out.push(message.detach()),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(error)) => panic!("{isolation} consumer of {topic}: {error}"),
            None => {}
        }
    }
    out
}

fn values(messages: &[OwnedMessage]) -> Vec<String> {
    messages
        .iter()
        .filter_map(common::payload)
        .map(|v| String::from_utf8(v).expect("utf-8 value"))
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The error of a failed transactional call, for its code and flags.
fn txn_error(result: rdkafka::error::KafkaResult<()>, what: &str) -> rdkafka::error::RDKafkaError {
    match result {
        Ok(()) => panic!("{what} succeeded, but should have failed"),
        Err(KafkaError::Transaction(error)) => error,
        Err(other) => panic!("{what}: not a transaction error: {other:?}"),
    }
}

/// xorshift64*: a deterministic choice of which transactions to abort, without a dependency.
struct Xorshift(u64);

impl Xorshift {
    fn next_percent(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % 100
    }
}

/// Offsets to resume from for the partitions this consumer has a position in.
fn positions(consumer: &BaseConsumer) -> TopicPartitionList {
    let mut out = TopicPartitionList::new();
    for e in consumer.position().expect("position").elements() {
        if let Offset::Offset(offset) = e.offset() {
            out.add_partition_offset(e.topic(), e.partition(), Offset::Offset(offset))
                .expect("offset");
        }
    }
    out
}

/// Seeks every assigned partition back to the group's committed offset (the beginning where none is committed).
fn rewind_to_committed(consumer: &BaseConsumer) {
    let committed = consumer.committed(TXN_TIMEOUT).expect("committed offsets");
    let mut seek = TopicPartitionList::new();
    for e in committed.elements() {
        let offset = match e.offset() {
            Offset::Offset(offset) => Offset::Offset(offset),
            _ => Offset::Beginning,
        };
        seek.add_partition_offset(e.topic(), e.partition(), offset)
            .expect("seek offset");
    }
    for e in consumer
        .seek_partitions(seek, TXN_TIMEOUT)
        .expect("seek")
        .elements()
    {
        if let Err(error) = e.error() {
            panic!("seek {}/{}: {error}", e.topic(), e.partition());
        }
    }
}

#[test]
fn a_consume_transform_produce_loop_leaves_exactly_the_committed_output() {
    const INPUT: usize = 2000;
    const PARTITIONS: i32 = 3;
    const BATCH: usize = 100;
    let broker = start(&[]);
    create_topic(&broker, "ctp-in", PARTITIONS);
    create_topic(&broker, "ctp-out", PARTITIONS);
    let input: Vec<(String, String)> = (0..INPUT)
        .map(|i| (format!("k{i}"), format!("v{i:04}")))
        .collect();
    produce_plain(&broker, "ctp-in", &input);

    let consumer: BaseConsumer = broker
        .client_config()
        .set("group.id", "ctp")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&["ctp-in"]).expect("subscribe");
    let producer = txn_producer(&broker, "ctp-txn", &[]);
    producer
        .init_transactions(TXN_TIMEOUT)
        .expect("init_transactions");

    let mut rng = Xorshift(0x5eed_1234_abcd_0001);
    let (mut commits, mut aborts, mut aborted_records) = (0, 0, 0usize);
    let mut committed_values = 0usize;
    let deadline = Instant::now() + Duration::from_secs(45);
    while committed_values < INPUT {
        assert!(
            Instant::now() < deadline,
            "the loop did not finish in 45 s: {committed_values} of {INPUT} committed \
             ({commits} commits, {aborts} aborts)"
        );
        let mut batch = Vec::new();
        while batch.len() < BATCH {
            match consumer.poll(Duration::from_millis(300)) {
                Some(Ok(message)) => batch.push(message.detach()),
                Some(Err(error)) => panic!("input consumer: {error}"),
                None => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        producer.begin_transaction().expect("begin_transaction");
        for message in &batch {
            let value = String::from_utf8(common::payload(message).expect("value")).expect("utf-8");
            let key = String::from_utf8(message.key().expect("key").to_vec()).expect("utf-8");
            send(&producer, "ctp-out", &key, &value.replacen('v', "t", 1));
        }
        let offsets = positions(&consumer);
        let group = consumer.group_metadata().expect("group metadata");
        producer
            .send_offsets_to_transaction(&offsets, &group, TXN_TIMEOUT)
            .expect("send_offsets_to_transaction");
        if rng.next_percent() < 30 {
            // Flushed first, so the aborted copies are in the log for the read_committed reader to skip.
            producer.flush(TXN_TIMEOUT).expect("flush before abort");
            producer
                .abort_transaction(TXN_TIMEOUT)
                .expect("abort_transaction");
            aborts += 1;
            aborted_records += batch.len();
            rewind_to_committed(&consumer);
        } else {
            producer
                .commit_transaction(TXN_TIMEOUT)
                .expect("commit_transaction");
            commits += 1;
            committed_values += batch.len();
        }
    }
    eprintln!("{commits} commits, {aborts} aborts ({aborted_records} aborted records)");
    assert!(
        aborts > 0 && commits > 0,
        "{commits} commits, {aborts} aborts"
    );
    assert_eq!(committed_values, INPUT, "no input record committed twice");

    let expected = sorted(input.iter().map(|(_, v)| v.replacen('v', "t", 1)).collect());
    let committed = sorted(values(&read_to_end(
        &broker,
        "ctp-out",
        PARTITIONS,
        "read_committed",
    )));
    assert_eq!(
        committed.len(),
        INPUT,
        "read_committed: each input record once"
    );
    assert_eq!(
        committed, expected,
        "read_committed: every input record, transformed, once"
    );
    let uncommitted = values(&read_to_end(
        &broker,
        "ctp-out",
        PARTITIONS,
        "read_uncommitted",
    ));
    assert_eq!(
        uncommitted.len(),
        INPUT + aborted_records,
        "read_uncommitted: the committed records and the aborted copies"
    );
    let distinct: BTreeSet<String> = uncommitted.into_iter().collect();
    assert_eq!(distinct.len(), INPUT);

    // The group's offsets, committed through the transactions, are the input's end offsets.
    let mut query = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        query.add_partition("ctp-in", p);
    }
    let group_offsets: BTreeMap<i32, Offset> = consumer
        .committed_offsets(query, TXN_TIMEOUT)
        .expect("committed offsets")
        .elements()
        .iter()
        .map(|e| (e.partition(), e.offset()))
        .collect();
    let end_offsets: BTreeMap<i32, Offset> = (0..PARTITIONS)
        .map(|p| {
            let (_, high) = consumer
                .fetch_watermarks("ctp-in", p, TXN_TIMEOUT)
                .expect("watermarks");
            (p, Offset::Offset(high))
        })
        .collect();
    assert_eq!(group_offsets, end_offsets, "committed offsets of group ctp");
}

#[test]
fn a_second_producer_with_the_same_transactional_id_fences_the_first() {
    let broker = start(&[]);
    create_topic(&broker, "fence", 1);
    let a = txn_producer(&broker, "fenced-id", &[]);
    a.init_transactions(TXN_TIMEOUT)
        .expect("A init_transactions");
    a.begin_transaction().expect("A begin_transaction");
    for i in 0..3 {
        send(&a, "fence", "a", &format!("a{i}"));
    }
    a.flush(TXN_TIMEOUT).expect("A's records written");

    // B's InitProducerId aborts A's open transaction and bumps the epoch.
    let b = txn_producer(&broker, "fenced-id", &[]);
    b.init_transactions(TXN_TIMEOUT)
        .expect("B init_transactions");
    b.begin_transaction().expect("B begin_transaction");
    for i in 0..3 {
        send(&b, "fence", "b", &format!("b{i}"));
    }

    // A does not know yet: its next record goes out with the old epoch (the send itself may already fail).
    if let Err((error, _)) = a.send(BaseRecord::to("fence").key("a").payload("a3")) {
        eprintln!("A's send after B's init: {error}");
    }
    let error = txn_error(
        a.commit_transaction(TXN_TIMEOUT),
        "A's commit after B's init",
    );
    eprintln!(
        "A's commit: {:?} {error} (fatal {})",
        error.code(),
        error.is_fatal()
    );
    assert!(
        error.is_fatal() || error.code() == RDKafkaErrorCode::ProducerFenced,
        "A is fenced: {:?} {error}",
        error.code()
    );

    b.commit_transaction(TXN_TIMEOUT)
        .expect("B commit_transaction");
    let committed = values(&read_to_end(&broker, "fence", 1, "read_committed"));
    assert_eq!(
        committed,
        ["b0", "b1", "b2"],
        "read_committed: only B's records"
    );
    let uncommitted = values(&read_to_end(&broker, "fence", 1, "read_uncommitted"));
    assert_eq!(
        uncommitted,
        ["a0", "a1", "a2", "b0", "b1", "b2"],
        "read_uncommitted: A's aborted records, then B's; nothing of A's after it was fenced"
    );
}

#[test]
fn an_open_transaction_past_its_timeout_is_aborted_by_the_coordinator() {
    let broker = start(&["--transaction.abort.timed.out.transaction.cleanup.interval.ms=500"]);
    create_topic(&broker, "slow", 1);
    let slow = txn_producer(&broker, "slow-id", &[("transaction.timeout.ms", "2000")]);
    slow.init_transactions(TXN_TIMEOUT)
        .expect("init_transactions");
    slow.begin_transaction().expect("begin_transaction");
    for i in 0..3 {
        send(&slow, "slow", "s", &format!("s{i}"));
    }
    slow.flush(TXN_TIMEOUT).expect("records written");
    std::thread::sleep(Duration::from_secs(5));

    assert_eq!(
        values(&read_to_end(&broker, "slow", 1, "read_committed")),
        Vec::<String>::new(),
        "read_committed: the timed-out transaction's records are not visible"
    );
    let error = txn_error(
        slow.commit_transaction(TXN_TIMEOUT),
        "commit after the timeout abort",
    );
    eprintln!(
        "late commit: {:?} {error} (fatal {})",
        error.code(),
        error.is_fatal()
    );

    // Another transaction after the abort marker: visible, so the last stable offset moved past the aborted one.
    let quick = txn_producer(&broker, "quick-id", &[]);
    quick
        .init_transactions(TXN_TIMEOUT)
        .expect("init_transactions");
    quick.begin_transaction().expect("begin_transaction");
    send(&quick, "slow", "q", "q0");
    quick
        .commit_transaction(TXN_TIMEOUT)
        .expect("commit_transaction");
    assert_eq!(
        values(&read_to_end(&broker, "slow", 1, "read_committed")),
        ["q0"],
        "read_committed after a later commit"
    );
    let watermarks = |isolation: &str| {
        let consumer: BaseConsumer = broker
            .client_config()
            .set("group.id", "unused")
            .set("isolation.level", isolation)
            .create()
            .expect("consumer");
        consumer
            .fetch_watermarks("slow", 0, TXN_TIMEOUT)
            .expect("watermarks")
    };
    // 3 aborted records, the abort marker, q0, its commit marker.
    assert_eq!(watermarks("read_uncommitted"), (0, 6), "high watermark");
    assert_eq!(
        watermarks("read_committed"),
        (0, 6),
        "ListOffsets latest at read_committed: the last stable offset is the high watermark"
    );
}

/// DescribeProducers for partition 0 of `topic`: (producer id, epoch) of each active producer.
fn describe_producers(broker: &TestBroker, topic: &'static str) -> Vec<(i64, i32)> {
    let request = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(TopicName(StrBytes::from_static_str(topic)))
        .with_partition_indexes(vec![0])]);
    let response: DescribeProducersResponse =
        common::call(broker, ApiKey::DescribeProducers, 0, &request);
    let partition = &response.topics[0].partitions[0];
    assert_eq!(partition.error_code, 0, "DescribeProducers {topic}-0");
    partition
        .active_producers
        .iter()
        .map(|p| (p.producer_id.0, p.producer_epoch))
        .collect()
}

#[test]
fn transactions_survive_a_restart() {
    let mut broker = start(&[]);
    create_topic(&broker, "durable", 1);
    {
        let first = txn_producer(&broker, "durable-id", &[]);
        first
            .init_transactions(TXN_TIMEOUT)
            .expect("init_transactions");
        first.begin_transaction().expect("begin_transaction");
        for i in 0..3 {
            send(&first, "durable", "r", &format!("r{i}"));
        }
        first
            .commit_transaction(TXN_TIMEOUT)
            .expect("commit_transaction");
    }
    let before = describe_producers(&broker, "durable");
    assert_eq!(before.len(), 1, "one producer: {before:?}");

    broker.restart();
    let second = txn_producer(&broker, "durable-id", &[]);
    second
        .init_transactions(TXN_TIMEOUT)
        .expect("init_transactions after the restart");
    second.begin_transaction().expect("begin_transaction");
    for i in 0..3 {
        send(&second, "durable", "s", &format!("s{i}"));
    }
    second
        .commit_transaction(TXN_TIMEOUT)
        .expect("commit_transaction");

    let after = describe_producers(&broker, "durable");
    assert_eq!(
        after.len(),
        1,
        "still one producer id: {before:?} then {after:?}"
    );
    assert_eq!(
        after[0].0, before[0].0,
        "the transactional id keeps its producer id"
    );
    assert!(
        after[0].1 > before[0].1,
        "init_transactions after the restart bumped the epoch: {before:?} then {after:?}"
    );
    assert_eq!(
        values(&read_to_end(&broker, "durable", 1, "read_committed")),
        ["r0", "r1", "r2", "s0", "s1", "s2"],
        "read_committed: both transactions"
    );
}

#[test]
fn init_producer_id_refuses_a_timeout_over_the_maximum() {
    let broker = start(&["--transaction.max.timeout.ms=10000"]);
    let producer = txn_producer(&broker, "too-long", &[("transaction.timeout.ms", "20000")]);
    let error = txn_error(
        producer.init_transactions(TXN_TIMEOUT),
        "init_transactions with transaction.timeout.ms over transaction.max.timeout.ms",
    );
    assert_eq!(
        error.code(),
        RDKafkaErrorCode::InvalidTransactionTimeout,
        "{error}"
    );
}
