//! Replicated partitions on separate `ferrite` processes (issue 12): acks=all records survive `kill -9` of the
//! partition leader and of the controller leader, the restarted broker catches up and rejoins the ISR, and
//! min.insync.replicas refuses acks=all writes once too few replicas are in sync.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cluster::{metadata, quorum_leader, Role, TestCluster};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TOPIC: &str = "replicated";

/// Polls `check` every 100 ms until it holds, or fails after `timeout` with `what`.
fn eventually(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> bool,
) -> Result<(), String> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if check() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{what} did not happen within {timeout:?}"))
}

/// Partition 0's leader and ISR, as `addr` sees them.
fn leader_and_isr(addr: &str, topic: &str) -> Option<(i32, Vec<i32>)> {
    let answer = metadata(addr);
    let topic = answer
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(topic))?;
    let partition = topic.partitions.iter().find(|p| p.partition_index == 0)?;
    let mut isr: Vec<i32> = partition.isr_nodes.iter().map(|b| b.0).collect();
    isr.sort_unstable();
    Some((partition.leader_id.0, isr))
}

async fn create_topic(bootstrap: &str, topic: &str, min_isr: &str) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .create()
        .map_err(|e| e.to_string())?;
    let new =
        NewTopic::new(topic, 1, TopicReplication::Fixed(3)).set("min.insync.replicas", min_isr);
    for result in admin
        .create_topics(&[new], &AdminOptions::new())
        .await
        .map_err(|e| e.to_string())?
    {
        result.map_err(|(topic, code)| format!("{topic}: {code}"))?;
    }
    Ok(())
}

fn producer(bootstrap: &str) -> Result<FutureProducer, KafkaError> {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "60000")
        .create()
}

/// Sends `count` records named `{label}-{i}` with acks=all; returns the acknowledged offset of each.
async fn produce(
    producer: &FutureProducer,
    label: &str,
    count: usize,
    acked: &mut BTreeMap<i64, String>,
) -> Result<(), String> {
    let sends: Vec<_> = (0..count)
        .map(|i| {
            let value = format!("{label}-{i}");
            let producer = producer.clone();
            async move {
                let delivery = producer
                    .send(
                        FutureRecord::to(TOPIC).key("k").payload(&value),
                        Duration::from_secs(60),
                    )
                    .await;
                (value, delivery)
            }
        })
        .collect();
    for (value, delivery) in futures::future::join_all(sends).await {
        let delivery = delivery.map_err(|(error, _)| format!("{value}: {error}"))?;
        if let Some(earlier) = acked.insert(delivery.offset, value.clone()) {
            return Err(format!(
                "offset {} acknowledged twice: {earlier} and {value}",
                delivery.offset
            ));
        }
    }
    Ok(())
}

/// Reads the partition from the start up to its HighWatermark.
fn read_all(bootstrap: &str) -> Result<Vec<(i64, String)>, KafkaError> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("group.id", "replication-reader")
        .set("enable.auto.commit", "false")
        .create()?;
    let (_, high) = consumer.fetch_watermarks(TOPIC, 0, Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(TOPIC, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let mut read = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while read.last().map_or(0, |(o, _)| o + 1) < high && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            let message = message?;
            let value = message
                .payload()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            read.push((message.offset(), value));
        }
    }
    Ok(read)
}

#[tokio::test(flavor = "multi_thread")]
async fn acks_all_records_survive_kill_9_of_the_leader_and_of_the_controller() -> TestResult {
    let mut cluster = TestCluster::start(3);
    let bootstrap = cluster.bootstrap();
    create_topic(&bootstrap, TOPIC, "2").await?;
    let addr = cluster.nodes[0].addr();
    eventually(
        Duration::from_secs(20),
        "the topic in node 1's metadata",
        || leader_and_isr(&addr, TOPIC).is_some_and(|(_, isr)| isr == [1, 2, 3]),
    )?;
    let producer = producer(&bootstrap)?;
    let mut acked = BTreeMap::new();
    produce(&producer, "before", 300, &mut acked).await?;

    // kill -9 the partition leader: the controller fences it, elects another ISR member, and acks=all goes on.
    let (leader, _) = leader_and_isr(&addr, TOPIC).ok_or("no leader")?;
    cluster.node(leader).kill();
    let survivor = cluster
        .nodes
        .iter()
        .find(|n| n.node_id != leader)
        .map(|n| n.addr())
        .ok_or("no survivor")?;
    eventually(Duration::from_secs(30), "a new leader from the ISR", || {
        leader_and_isr(&survivor, TOPIC)
            .is_some_and(|(l, isr)| l != leader && l > 0 && !isr.contains(&leader))
    })?;
    produce(&producer, "leader-killed", 300, &mut acked).await?;

    // The killed broker comes back, catches up and rejoins the ISR.
    cluster.node(leader).restart();
    eventually(
        Duration::from_secs(60),
        "the restarted broker back in the ISR",
        || leader_and_isr(&survivor, TOPIC).is_some_and(|(_, isr)| isr.len() == 3),
    )?;

    // kill -9 the controller leader (a broker too): the quorum elects another, the partition another leader if
    // it led that too, and no acknowledged record is lost.
    let controller = quorum_leader(&survivor);
    cluster.node(controller).kill();
    let survivor = cluster
        .nodes
        .iter()
        .find(|n| n.node_id != controller)
        .map(|n| n.addr())
        .ok_or("no survivor")?;
    eventually(
        Duration::from_secs(30),
        "a live leader after the controller's death",
        || {
            leader_and_isr(&survivor, TOPIC)
                .is_some_and(|(l, isr)| l != controller && l > 0 && !isr.contains(&controller))
        },
    )?;
    produce(&producer, "controller-killed", 300, &mut acked).await?;
    cluster.node(controller).restart();

    let read = read_all(&survivor)?;
    let mut by_offset = BTreeMap::new();
    for (offset, value) in &read {
        if by_offset.insert(*offset, value.clone()).is_some() {
            return Err(format!("offset {offset} read twice").into());
        }
    }
    for (i, (offset, _)) in read.iter().enumerate() {
        assert_eq!(*offset, i as i64, "no gap below the HighWatermark");
    }
    for (offset, value) in &acked {
        assert_eq!(
            by_offset.get(offset),
            Some(value),
            "acknowledged record at offset {offset} read back"
        );
    }
    assert_eq!(acked.len(), 900);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn min_insync_replicas_refuses_acks_all_with_two_of_three_brokers_down() -> TestResult {
    // One controller and three brokers: killing two brokers leaves the quorum, which shrinks the ISR.
    let mut cluster =
        TestCluster::start_roles(&[Role::Controller, Role::Broker, Role::Broker, Role::Broker]);
    let bootstrap = cluster.bootstrap();
    create_topic(&bootstrap, TOPIC, "2").await?;
    let addr = cluster.nodes[1].addr();
    eventually(Duration::from_secs(20), "the topic in metadata", || {
        leader_and_isr(&addr, TOPIC).is_some_and(|(_, isr)| isr.len() == 3)
    })?;
    let producer = producer(&bootstrap)?;
    let mut acked = BTreeMap::new();
    produce(&producer, "in-sync", 50, &mut acked).await?;
    let (leader, isr) = leader_and_isr(&addr, TOPIC).ok_or("no leader")?;
    for broker in isr.iter().filter(|b| **b != leader) {
        cluster.node(*broker).kill();
    }
    let leader_addr = cluster.node(leader).addr();
    eventually(
        Duration::from_secs(30),
        "the ISR shrunk to the leader",
        || {
            leader_and_isr(&leader_addr, TOPIC)
                .is_some_and(|(l, isr)| l == leader && isr == [leader])
        },
    )?;
    let lonely: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &leader_addr)
        .set("broker.address.family", "v4")
        .set("acks", "all")
        // NOT_ENOUGH_REPLICAS is retriable; without retries the producer reports it as it came.
        .set("retries", "0")
        .set("message.timeout.ms", "10000")
        .create()?;
    let refused = lonely
        .send(
            FutureRecord::to(TOPIC).key("k").payload("refused"),
            Duration::from_secs(10),
        )
        .await;
    match refused {
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::NotEnoughReplicas), _)) => {}
        other => return Err(format!("acks=all with one in-sync replica: {other:?}").into()),
    }
    // Nothing of the refused record reached the log.
    let read = read_all(&leader_addr)?;
    assert_eq!(read.len(), 50);
    assert!(read.iter().all(|(_, v)| v != "refused"));
    Ok(())
}
