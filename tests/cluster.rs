//! Three `ferrite` processes on loopback forming one cluster (issue 11, part 1): one cluster id, every broker in
//! Metadata, topics placed across the nodes and created through any of them, clients bootstrapped to one node
//! reaching partitions and coordinators led by the others, controller failover after `kill -9`, a restarted node
//! rejoining, and a broker that stops heartbeating fenced out of Metadata and back in once it resumes.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{
    coordinator_of, metadata, quorum_leader, Role, TestCluster, SESSION_TIMEOUT_MS,
};
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::list_offsets_response::ListOffsetsResponse;
use kafka_protocol::messages::metadata_response::MetadataResponse;
use kafka_protocol::messages::{ApiKey, BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn live_brokers(addr: &str) -> BTreeSet<i32> {
    metadata(addr).brokers.iter().map(|b| b.node_id.0).collect()
}

/// Polls `check` every 100 ms until it holds; returns how long that took, or `None` after `timeout`.
fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if check() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

async fn create_topic(
    admin: &AdminClient<DefaultClientContext>,
    name: &str,
    partitions: i32,
    replication: i32,
) -> Result<(), String> {
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
    let results = admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .map_err(|e| e.to_string())?;
    for result in results {
        result.map_err(|(topic, code)| format!("{topic}: {code}"))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_form_one_cluster_and_clients_reach_every_node_through_one() -> TestResult {
    let cluster = TestCluster::start(3);
    let [one, two, three] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];

    // One cluster id, in every directory and in every node's answers; every node lists all three brokers (once it
    // has applied the last one's unfencing, a moment after that one started serving).
    for node in &cluster.nodes {
        eventually(Duration::from_secs(10), || {
            live_brokers(&node.addr()) == BTreeSet::from([1, 2, 3])
        })
        .ok_or("a node does not list all three brokers")?;
        let properties = node.meta_properties();
        assert!(
            properties.contains(&format!("cluster.id={}", cluster.cluster_id)),
            "{properties}"
        );
        assert!(properties.contains(&format!("node.id={}", node.node_id)));
        let answer = metadata(&node.addr());
        assert_eq!(
            answer.cluster_id.as_ref().map(|id| id.to_string()),
            Some(cluster.cluster_id.clone())
        );
        let brokers: BTreeSet<i32> = answer.brokers.iter().map(|b| b.node_id.0).collect();
        assert_eq!(brokers, BTreeSet::from([1, 2, 3]));
        assert!(brokers.contains(&answer.controller_id.0));
    }
    let listing = Command::new("kcat")
        .args(["-b", &two.addr(), "-L"])
        .output()
        .expect("kcat is installed by scripts/test.sh");
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains(" 3 brokers:"), "{listing}");

    // Created through node 2, whichever node leads the quorum: leaders on all three.
    let admin: AdminClient<DefaultClientContext> = two.client_config().create()?;
    create_topic(&admin, "orders", 6, 3).await?;
    // Node 2 answers once it has applied the topic; node 3 follows the metadata log a moment later.
    let has_orders = |m: &MetadataResponse| {
        m.topics
            .iter()
            .any(|t| t.name.as_ref().map(|n| n.as_str()) == Some("orders"))
    };
    eventually(Duration::from_secs(10), || {
        has_orders(&metadata(&three.addr()))
    })
    .ok_or("orders never reached node 3's metadata")?;
    let answer = metadata(&three.addr());
    let orders = answer
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some("orders"))
        .ok_or("orders is not in node 3's metadata")?;
    assert_eq!(orders.partitions.len(), 6);
    let leaders: BTreeSet<i32> = orders.partitions.iter().map(|p| p.leader_id.0).collect();
    assert_eq!(leaders, BTreeSet::from([1, 2, 3]));
    assert!(orders.partitions.iter().all(|p| p.replica_nodes.len() == 3));

    // Partition requests sent to a broker that does not lead the partition, or with a leader epoch it does not
    // know, get Kafka's errors, so that clients refresh their metadata and go to the leader.
    let partition_zero_leader = orders.partitions[0].leader_id.0;
    let list_offsets = |node: i32, epoch: i32| -> i16 {
        let addr = cluster.nodes[usize::try_from(node - 1).unwrap_or(0)].addr();
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_current_leader_epoch(epoch)
                    .with_timestamp(-1)])]);
        let response: ListOffsetsResponse =
            common::call_addr(&addr, ApiKey::ListOffsets, 7, &request);
        response.topics[0].partitions[0].error_code
    };
    let elsewhere = (1..=3).find(|n| *n != partition_zero_leader).unwrap_or(1);
    assert_eq!(list_offsets(elsewhere, -1), 6, "NOT_LEADER_OR_FOLLOWER");
    // The leader answers once it has applied the topic itself, which may trail node 3.
    eventually(Duration::from_secs(10), || {
        list_offsets(partition_zero_leader, -1) == 0
    })
    .ok_or("the leader never answered ListOffsets")?;
    assert_eq!(list_offsets(partition_zero_leader, 0), 0);
    assert_eq!(
        list_offsets(partition_zero_leader, 3),
        75,
        "UNKNOWN_LEADER_EPOCH"
    );

    // A producer that knows only node 1 writes to every partition, wherever it is led.
    let producer: FutureProducer = one
        .client_config()
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()?;
    let mut partitions = BTreeSet::new();
    for i in 0..600 {
        let key = format!("key-{i}");
        let delivery = producer
            .send(
                FutureRecord::to("orders").key(&key).payload("value"),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(error, _)| error)?;
        partitions.insert(delivery.partition);
    }
    assert_eq!(partitions.len(), 6, "keys spread over every partition");

    // A group whose coordinator is not node 1, consumed through node 1.
    let group = (0..100)
        .map(|i| format!("cluster-group-{i}"))
        .find(|g| coordinator_of(&one.addr(), g) != 1)
        .ok_or("every group's coordinator is node 1")?;
    let consumer: StreamConsumer = one
        .client_config()
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&["orders"])?;
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < 600 && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await {
            Ok(Ok(message)) => {
                let key = message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned());
                seen.insert(key.unwrap_or_default());
            }
            Ok(Err(error)) => return Err(error.into()),
            Err(_) => {}
        }
    }
    assert_eq!(seen.len(), 600);
    consumer.commit_consumer_state(CommitMode::Sync)?;
    let committed = consumer.committed(Duration::from_secs(10))?;
    let total: i64 = committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            rdkafka::Offset::Offset(offset) => Some(offset),
            _ => None,
        })
        .sum();
    assert_eq!(total, 600, "committed offsets cover every record");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_fails_over_after_kill_9_and_the_node_rejoins() -> TestResult {
    let mut cluster = TestCluster::start(3);
    let first_addr = cluster.nodes[0].addr();
    let controller = quorum_leader(&first_addr);
    let survivor = cluster
        .nodes
        .iter()
        .find(|n| n.node_id != controller)
        .map(|n| n.addr())
        .ok_or("no other node")?;

    cluster.node(controller).kill();
    let elected = eventually(Duration::from_secs(15), || {
        let now = quorum_leader(&survivor);
        now != controller && now != -1
    });
    let elected = elected.ok_or("no new controller within 15 s")?;
    eprintln!("a new controller was elected {elected:?} after the kill");

    // Metadata changes work again, through either survivor.
    let admin: AdminClient<DefaultClientContext> = cluster
        .nodes
        .iter()
        .find(|n| n.node_id != controller)
        .ok_or("no other node")?
        .client_config()
        .create()?;
    create_topic(&admin, "after-failover", 3, 1).await?;
    // The killed broker's session expires: it leaves Metadata.
    let gone = eventually(Duration::from_millis(SESSION_TIMEOUT_MS * 3), || {
        !live_brokers(&survivor).contains(&controller)
    });
    assert!(gone.is_some(), "the killed broker is still listed");

    // Restarted on its directory, it registers again and is listed again.
    cluster.node(controller).restart();
    let back = eventually(Duration::from_secs(20), || {
        live_brokers(&survivor) == BTreeSet::from([1, 2, 3])
    });
    assert!(back.is_some(), "the restarted node is not listed again");
    let restarted = cluster.node(controller).addr();
    let topics = metadata(&restarted).topics;
    assert!(
        topics
            .iter()
            .any(|t| t.name.as_ref().map(|n| n.as_str()) == Some("after-failover")),
        "the restarted node caught up with the topic created while it was down"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_stops_heartbeating_is_fenced_and_unfenced_when_it_resumes() -> TestResult {
    let mut cluster = TestCluster::start(3);
    let first_addr = cluster.nodes[0].addr();
    let controller = quorum_leader(&first_addr);
    let paused = cluster
        .nodes
        .iter()
        .map(|n| n.node_id)
        .find(|id| *id != controller)
        .ok_or("no other node")?;
    let observer = cluster
        .nodes
        .iter()
        .find(|n| n.node_id != paused)
        .map(|n| n.addr())
        .ok_or("no other node")?;
    let admin: AdminClient<DefaultClientContext> = cluster.nodes[0].client_config().create()?;
    create_topic(&admin, "spread", 3, 1).await?;

    cluster.node(paused).pause();
    let fenced = eventually(Duration::from_millis(SESSION_TIMEOUT_MS * 3), || {
        !live_brokers(&observer).contains(&paused)
    });
    assert!(fenced.is_some(), "the paused broker is still listed");
    // Its partitions have no live leader now.
    let spread = metadata(&observer)
        .topics
        .into_iter()
        .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some("spread"))
        .ok_or("spread is not in metadata")?;
    for partition in &spread.partitions {
        if partition.replica_nodes.iter().any(|r| r.0 == paused) {
            assert_eq!(partition.leader_id.0, -1);
            assert_eq!(partition.offline_replicas.len(), 1);
        }
    }

    cluster.node(paused).resume();
    let unfenced = eventually(Duration::from_secs(10), || {
        live_brokers(&observer).contains(&paused)
    });
    assert!(unfenced.is_some(), "the resumed broker was not unfenced");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_and_abort_across_partitions_led_by_every_node() -> TestResult {
    use rdkafka::consumer::BaseConsumer;
    use rdkafka::error::KafkaError;
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    use rdkafka::{Offset, TopicPartitionList};

    let cluster = TestCluster::start(3);
    let admin: AdminClient<DefaultClientContext> = cluster.nodes[0].client_config().create()?;
    create_topic(&admin, "txn-spread", 6, 1).await?;
    // Node 1 answered once it applied the topic; node 3 follows a moment later.
    eventually(Duration::from_secs(10), || {
        metadata(&cluster.nodes[2].addr())
            .topics
            .iter()
            .any(|t| t.name.as_ref().map(|n| n.as_str()) == Some("txn-spread"))
    })
    .ok_or("txn-spread never reached node 3's metadata")?;
    let answer = metadata(&cluster.nodes[2].addr());
    let leaders: BTreeSet<i32> = answer
        .topics
        .iter()
        .filter(|t| t.name.as_ref().map(|n| n.as_str()) == Some("txn-spread"))
        .flat_map(|t| t.partitions.iter().map(|p| p.leader_id.0))
        .collect();
    assert_eq!(leaders, BTreeSet::from([1, 2, 3]));

    // The coordinator (wherever `__transaction_state` puts this id) writes markers to partitions on all three.
    let producer: ThreadedProducer<DefaultProducerContext> = cluster.nodes[0]
        .client_config()
        .set("transactional.id", "cluster-txn")
        .set("linger.ms", "5")
        .create()?;
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout)?;
    for (round, commit) in [(0, true), (1, false), (2, true)] {
        producer.begin_transaction()?;
        for i in 0..60 {
            let key = format!("r{round}-k{i}");
            producer
                .send(BaseRecord::to("txn-spread").key(&key).payload("v"))
                .map_err(|(error, _)| error)?;
        }
        if commit {
            producer.commit_transaction(timeout)?;
        } else {
            producer.abort_transaction(timeout)?;
        }
    }

    // read_committed through node 2: every partition reaches its end (its LSO passed every marker) with exactly the
    // committed rounds.
    let consumer: BaseConsumer = cluster.nodes[1]
        .client_config()
        .set("group.id", "unused-with-assign")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..6 {
        assignment.add_partition_offset("txn-spread", p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut keys = BTreeSet::new();
    let mut at_end = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while at_end.len() < 6 {
        assert!(Instant::now() < deadline, "partitions at end: {at_end:?}");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                keys.insert(
                    String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                );
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(error)) => return Err(error.into()),
            None => {}
        }
    }
    assert_eq!(keys.len(), 120);
    assert!(
        keys.iter().all(|k| !k.starts_with("r1-")),
        "aborted records were read"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_metadata_changes_fail_retriably_and_data_keeps_flowing() -> TestResult {
    use rdkafka::consumer::BaseConsumer;
    use rdkafka::types::RDKafkaErrorCode;
    use rdkafka::{Offset, TopicPartitionList};

    let mut cluster = TestCluster::start(3);
    let one = cluster.nodes[0].addr();
    let admin: AdminClient<DefaultClientContext> = cluster.nodes[0].client_config().create()?;
    create_topic(&admin, "steady", 6, 1).await?;
    eventually(Duration::from_secs(10), || {
        metadata(&one)
            .topics
            .iter()
            .any(|t| t.name.as_ref().map(|n| n.as_str()) == Some("steady"))
    })
    .ok_or("steady never reached node 1's metadata")?;
    let led_here: Vec<i32> = metadata(&one)
        .topics
        .iter()
        .filter(|t| t.name.as_ref().map(|n| n.as_str()) == Some("steady"))
        .flat_map(|t| t.partitions.iter())
        .filter(|p| p.leader_id.0 == 1)
        .map(|p| p.partition_index)
        .collect();
    assert!(!led_here.is_empty(), "node 1 leads none of the partitions");

    // Two of three controllers gone: no quorum.
    cluster.node(2).kill();
    cluster.node(3).kill();

    // Partitions led by the survivor still take and serve records.
    let producer: FutureProducer = cluster.nodes[0]
        .client_config()
        .set("linger.ms", "5")
        .set("message.timeout.ms", "20000")
        .create()?;
    for &partition in &led_here {
        for i in 0..10 {
            let key = format!("p{partition}-{i}");
            producer
                .send(
                    FutureRecord::to("steady")
                        .partition(partition)
                        .key(&key)
                        .payload("v"),
                    Duration::from_secs(20),
                )
                .await
                .map_err(|(error, _)| error)?;
        }
    }
    let consumer: BaseConsumer = cluster.nodes[0]
        .client_config()
        .set("group.id", "unused-with-assign")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for &partition in &led_here {
        assignment.add_partition_offset("steady", partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut read = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while read < led_here.len() * 10 && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(_)) => read += 1,
            // librdkafka reports the dead brokers' connections too; they are not this partition's.
            Some(Err(rdkafka::error::KafkaError::MessageConsumption(
                RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown,
            ))) => {}
            Some(Err(error)) => return Err(error.into()),
            None => {}
        }
    }
    assert_eq!(read, led_here.len() * 10);

    // A metadata change finds no controller: a retriable error once its timeout has passed.
    let started = Instant::now();
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(3)))
        .request_timeout(Some(Duration::from_secs(20)));
    let results = admin
        .create_topics(
            &[NewTopic::new("no-quorum", 1, TopicReplication::Fixed(1))],
            &options,
        )
        .await?;
    match &results[0] {
        Err((_, RDKafkaErrorCode::RequestTimedOut | RDKafkaErrorCode::NotController)) => {}
        other => return Err(format!("CreateTopics without a quorum answered {other:?}").into()),
    }
    assert!(started.elapsed() < Duration::from_secs(15));
    Ok(())
}

#[test]
fn a_node_of_another_cluster_is_refused_and_the_others_go_on() -> TestResult {
    let cluster = TestCluster::start_with_intruders(&[Role::Combined; 3], &[3]);
    let one = cluster.nodes[0].addr();
    let both = eventually(Duration::from_secs(10), || {
        live_brokers(&one) == BTreeSet::from([1, 2])
    });
    assert!(both.is_some(), "node 1 does not list nodes 1 and 2");
    let refused = eventually(Duration::from_secs(10), || {
        cluster.nodes[..2]
            .iter()
            .any(|n| n.logged("refusing a node of another cluster"))
    });
    assert!(refused.is_some(), "no node refused the intruder");
    assert!(!cluster.nodes[2].logged("ferrite is listening"));
    Ok(())
}
