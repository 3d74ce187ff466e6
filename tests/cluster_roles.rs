//! `process.roles` across processes (issue 11, part 3): three controller-only nodes form the quorum and take no
//! clients; two broker-only nodes follow the metadata log as observers, register, host the partitions and serve
//! clients, forwarding what needs the controller; the quorum survives losing its leader.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::cluster::{describe_quorum, metadata, Role, TestCluster};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn create_topic(addr: &str, name: &str, partitions: i32, replication: i32) -> TestResult {
    let mut config = rdkafka::config::ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("broker.address.family", "v4");
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
    for result in admin.create_topics(&[topic], &AdminOptions::new()).await? {
        result.map_err(|(topic, code)| format!("{topic}: {code}"))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_only_nodes_observe_a_quorum_of_controller_only_nodes_and_serve_clients(
) -> TestResult {
    use Role::{Broker, Controller};
    let mut cluster =
        TestCluster::start_roles(&[Controller, Controller, Controller, Broker, Broker]);
    let (four, five) = (cluster.nodes[3].addr(), cluster.nodes[4].addr());

    // Only the brokers are in Metadata; the controller a client is told of is one it can reach.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metadata(&four).brokers.len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = metadata(&four);
    let brokers: BTreeSet<i32> = answer.brokers.iter().map(|b| b.node_id.0).collect();
    assert_eq!(brokers, BTreeSet::from([4, 5]));
    assert!(brokers.contains(&answer.controller_id.0));

    // The voters are the controllers; the brokers follow as observers.
    let quorum = describe_quorum(&five);
    let partition = &quorum.topics[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    assert!((1..=3).contains(&partition.leader_id.0));
    let voters: BTreeSet<i32> = partition
        .current_voters
        .iter()
        .map(|v| v.replica_id.0)
        .collect();
    let observers: BTreeSet<i32> = partition.observers.iter().map(|v| v.replica_id.0).collect();
    assert_eq!(voters, BTreeSet::from([1, 2, 3]));
    assert_eq!(observers, BTreeSet::from([4, 5]));
    // Asked of a broker, the answer is the active controller's: it knows how far every replica has the log.
    assert!(partition.high_watermark > 0);
    assert!(partition
        .current_voters
        .iter()
        .chain(&partition.observers)
        .all(|r| r.log_end_offset > 0
            && r.last_fetch_timestamp > 0
            && r.last_caught_up_timestamp > 0));

    // Created through a broker (forwarded to the active controller), placed on both brokers.
    create_topic(&four, "observed", 4, 2).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let leaders = loop {
        let leaders: BTreeSet<i32> = metadata(&five)
            .topics
            .iter()
            .filter(|t| t.name.as_ref().map(|n| n.as_str()) == Some("observed"))
            .flat_map(|t| t.partitions.iter().map(|p| p.leader_id.0))
            .collect();
        if !leaders.is_empty() || Instant::now() > deadline {
            break leaders;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(leaders, BTreeSet::from([4, 5]));

    // Produced through one broker, consumed through the other.
    let producer: FutureProducer = cluster.nodes[3]
        .client_config()
        .set("linger.ms", "5")
        .create()?;
    for i in 0..40 {
        let key = format!("key-{i}");
        producer
            .send(
                FutureRecord::to("observed").key(&key).payload("v"),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(error, _)| error)?;
    }
    let consumer: BaseConsumer = cluster.nodes[4]
        .client_config()
        .set("group.id", "observed-readers")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..4 {
        assignment.add_partition_offset("observed", p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut keys = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while keys.len() < 40 && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            keys.insert(message?.key().map(<[u8]>::to_vec).unwrap_or_default());
        }
    }
    assert_eq!(keys.len(), 40);

    // The active controller killed, the other two elect a leader and the brokers' changes go through again.
    let leader = partition.leader_id.0;
    cluster.node(leader).kill();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = describe_quorum(&four).topics[0].partitions[0].leader_id.0;
        if now != leader && now != -1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new controller after the kill"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    create_topic(&five, "after-controller-failover", 2, 2).await?;

    // A broker-only node killed and restarted on its directory follows the log again and serves its partitions.
    cluster.node(4).kill();
    cluster.node(4).restart();
    let topics = metadata(&four).topics;
    assert!(topics
        .iter()
        .any(|t| t.name.as_ref().map(|n| n.as_str()) == Some("after-controller-failover")));
    let consumer: BaseConsumer = cluster.nodes[3]
        .client_config()
        .set("group.id", "observed-readers-again")
        .create()?;
    consumer.assign(&assignment)?;
    let mut again = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while again < 40 && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            if message.is_ok() {
                again += 1;
            }
        }
    }
    assert_eq!(again, 40, "every record is still there after the restart");
    Ok(())
}
