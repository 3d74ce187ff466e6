//! A consumer group across the failover of its coordinator (issue 12, part 5): `__consumer_offsets` is
//! replicated, so when the coordinator's broker is killed the group's partition gets a new leader, whose
//! coordinator loads the group from the log; the consumer finds it, keeps consuming, and the offsets committed
//! before the kill are there.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{coordinator_of, eventually, TestCluster};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TOPIC: &str = "orders";
const GROUP: &str = "failover-group";

fn consumer(bootstrap: &str) -> Result<BaseConsumer, rdkafka::error::KafkaError> {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .create()
}

/// Polls until the consumer has read up to (not including) `until`, checking each offset follows the last.
fn consume_to(consumer: &BaseConsumer, next: &mut i64, until: i64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while *next < until {
        if Instant::now() > deadline {
            return Err(format!("consumed up to {next}, not {until}, within 60 s"));
        }
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                if message.offset() != *next {
                    return Err(format!(
                        "read offset {} after {}",
                        message.offset(),
                        *next - 1
                    ));
                }
                *next += 1;
            }
            // Errors while the coordinator moves (NOT_COORDINATOR, transport) are the client's to retry.
            Some(Err(error)) => eprintln!("consumer: {error}"),
            None => {}
        }
    }
    Ok(())
}

/// Commits `offset` for partition 0, retrying while the group's coordinator is being found again.
fn commit(consumer: &BaseConsumer, offset: i64) -> Result<(), String> {
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(TOPIC, 0, Offset::Offset(offset))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match consumer.commit(&offsets, CommitMode::Sync) {
            Ok(()) => return Ok(()),
            Err(error) if Instant::now() < deadline => {
                eprintln!("commit {offset}: {error}; retrying");
                // Keep the consumer's own machinery (coordinator lookup, heartbeats) running.
                let _ = consumer.poll(Duration::from_millis(200));
            }
            Err(error) => return Err(format!("commit {offset}: {error}")),
        }
    }
}

/// The group's committed offset of partition 0, as the coordinator answers it.
fn committed(consumer: &BaseConsumer) -> Result<Option<i64>, String> {
    let mut asked = TopicPartitionList::new();
    asked.add_partition(TOPIC, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match consumer.committed_offsets(asked.clone(), Duration::from_secs(10)) {
            Ok(list) => {
                return Ok(list.elements().first().and_then(|e| match e.offset() {
                    Offset::Offset(offset) => Some(offset),
                    _ => None,
                }))
            }
            Err(error) if Instant::now() < deadline => eprintln!("committed: {error}; retrying"),
            Err(error) => return Err(error.to_string()),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_keeps_consuming_across_its_coordinators_failover_from_its_committed_offsets(
) -> TestResult {
    let mut cluster = TestCluster::start(3);
    let bootstrap = cluster.bootstrap();
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("broker.address.family", "v4")
        .create()?;
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(3));
    for result in admin.create_topics(&[topic], &AdminOptions::new()).await? {
        result.map_err(|(topic, code)| format!("{topic}: {code}"))?;
    }
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("broker.address.family", "v4")
        .set("acks", "all")
        .set("linger.ms", "2")
        .create()?;
    let sends = (0..100).map(|i| {
        let producer = producer.clone();
        async move {
            let value = format!("record-{i}");
            producer
                .send(
                    FutureRecord::to(TOPIC).key("k").payload(&value),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(error, _)| error)
        }
    });
    for delivery in futures::future::join_all(sends).await {
        delivery?;
    }

    let member = consumer(&bootstrap)?;
    member.subscribe(&[TOPIC])?;
    let mut next = 0;
    consume_to(&member, &mut next, 40)?;
    commit(&member, 40)?;

    // kill -9 the group's coordinator: __consumer_offsets' partition for the group gets a new leader.
    let addr = cluster.nodes[0].addr();
    let coordinator = coordinator_of(&addr, GROUP);
    assert!(coordinator > 0, "the group has a coordinator");
    cluster.node(coordinator).kill();
    let survivor = cluster
        .nodes
        .iter()
        .find(|n| n.node_id != coordinator)
        .map(|n| n.addr())
        .ok_or("no survivor")?;
    eventually(Duration::from_secs(30), "a new coordinator", || {
        let now = coordinator_of(&survivor, GROUP);
        now > 0 && now != coordinator
    })?;

    // The new coordinator has the offset committed before the kill, and the member keeps consuming and committing.
    assert_eq!(committed(&member)?, Some(40), "the commit before the kill");
    consume_to(&member, &mut next, 70)?;
    commit(&member, 70)?;
    member.unsubscribe();
    drop(member);

    // A new member of the group starts where the group committed.
    let successor = consumer(&survivor)?;
    successor.subscribe(&[TOPIC])?;
    let first = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match successor.poll(Duration::from_millis(500)) {
                Some(Ok(message)) => break message.offset(),
                Some(Err(error)) => eprintln!("successor: {error}"),
                None if Instant::now() > deadline => {
                    return Err("the successor read nothing".into())
                }
                None => {}
            }
        }
    };
    assert_eq!(first, 70, "the successor resumes at the committed offset");
    cluster.node(coordinator).restart();
    Ok(())
}
