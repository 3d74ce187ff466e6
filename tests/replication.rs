//! Replicated partitions on separate `ferrite` processes (issue 12): acks=all records survive `kill -9` of the
//! partition leader and of the controller leader, the restarted broker catches up and rejoins the ISR, and
//! min.insync.replicas refuses acks=all writes once too few replicas are in sync.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::cluster::{
    check_read_back, create_replicated_topic, eventually, leader_and_isr, produce, producer,
    quorum_leader, read_all, Role, TestCluster,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TOPIC: &str = "replicated";

#[tokio::test(flavor = "multi_thread")]
async fn acks_all_records_survive_kill_9_of_the_leader_and_of_the_controller() -> TestResult {
    let mut cluster = TestCluster::start(3);
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, 1, "2").await?;
    let addr = cluster.nodes[0].addr();
    eventually(
        Duration::from_secs(20),
        "the topic in node 1's metadata",
        || leader_and_isr(&addr, TOPIC).is_some_and(|(_, isr)| isr == [1, 2, 3]),
    )?;
    let producer = producer(&bootstrap)?;
    let mut acked = BTreeMap::new();
    produce(&producer, TOPIC, "before", 300, &mut acked).await?;

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
    produce(&producer, TOPIC, "leader-killed", 300, &mut acked).await?;

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
    produce(&producer, TOPIC, "controller-killed", 300, &mut acked).await?;
    cluster.node(controller).restart();

    check_read_back(read_all(&survivor, TOPIC)?, &acked)?;
    assert_eq!(acked.len(), 900);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn min_insync_replicas_refuses_acks_all_with_two_of_three_brokers_down() -> TestResult {
    // One controller and three brokers: killing two brokers leaves the quorum, which shrinks the ISR.
    let mut cluster =
        TestCluster::start_roles(&[Role::Controller, Role::Broker, Role::Broker, Role::Broker]);
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, 1, "2").await?;
    let addr = cluster.nodes[1].addr();
    eventually(Duration::from_secs(20), "the topic in metadata", || {
        leader_and_isr(&addr, TOPIC).is_some_and(|(_, isr)| isr.len() == 3)
    })?;
    let producer = producer(&bootstrap)?;
    let mut acked = BTreeMap::new();
    produce(&producer, TOPIC, "in-sync", 50, &mut acked).await?;
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
    let read = read_all(&leader_addr, TOPIC)?;
    assert_eq!(read.len(), 50);
    assert!(read.iter().all(|(_, v)| v != "refused"));
    Ok(())
}

/// acks=1 Produce requests of one record each (`{label}-{i}`), sent straight to `addr` as a client that reaches
/// only that broker would; returns the offsets it acknowledged.
fn produce_acks_1(addr: &str, label: &str, count: usize) -> Vec<(i64, String)> {
    use kafka_protocol::messages::produce_request::{
        PartitionProduceData, ProduceRequest, TopicProduceData,
    };
    use kafka_protocol::messages::produce_response::ProduceResponse;
    use kafka_protocol::messages::{ApiKey, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let mut acknowledged = Vec::new();
    for i in 0..count {
        let value = format!("{label}-{i}");
        let record = common::plain_record(
            0,
            1_700_000_000_000,
            Some(bytes::Bytes::from_static(b"k")),
            bytes::Bytes::from(value.clone()),
        );
        let request = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(5_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(common::encode_batch(&[record])))])]);
        let response: ProduceResponse = common::call_addr(addr, ApiKey::Produce, 9, &request);
        let answer = response
            .responses
            .first()
            .and_then(|t| t.partition_responses.first());
        if let Some(answer) = answer.filter(|p| p.error_code == 0) {
            acknowledged.push((answer.base_offset, value));
        }
    }
    acknowledged
}

/// ElectLeaders (preferred) for partition 0, asked of `addr`; the partition's error code.
fn elect_preferred_leader(addr: &str) -> i16 {
    use kafka_protocol::messages::elect_leaders_request::{ElectLeadersRequest, TopicPartitions};
    use kafka_protocol::messages::elect_leaders_response::ElectLeadersResponse;
    use kafka_protocol::messages::{ApiKey, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let request = ElectLeadersRequest::default()
        .with_election_type(0)
        .with_timeout_ms(10_000)
        .with_topic_partitions(Some(vec![TopicPartitions::default()
            .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![0])]));
    let response: ElectLeadersResponse = common::call_addr(addr, ApiKey::ElectLeaders, 2, &request);
    response
        .replica_election_results
        .first()
        .and_then(|t| t.partition_result.first())
        .map_or(-1, |p| p.error_code)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_cut_off_from_the_others_loses_its_acks_1_records_and_no_acks_all_record(
) -> TestResult {
    // Each node in a network namespace of its own: the test process (the clients) reaches all three, and the
    // leader's links to its peers are cut.
    let mut cluster = TestCluster::start_isolated(3);
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, 1, "2").await?;
    let addr = cluster.nodes[0].addr();
    eventually(Duration::from_secs(20), "the topic in metadata", || {
        leader_and_isr(&addr, TOPIC).is_some_and(|(_, isr)| isr == [1, 2, 3])
    })?;
    let mut acked = BTreeMap::new();
    produce(&producer(&bootstrap)?, TOPIC, "before", 100, &mut acked).await?;

    let (old_leader, _) = leader_and_isr(&addr, TOPIC).ok_or("no leader")?;
    let network = cluster.network.as_ref().ok_or("no network")?;
    network.isolate(old_leader);
    // A client on the old leader's side goes on producing with acks=1: the leader, which has not heard that it
    // lost anything, acknowledges after its own durability step.
    let old_leader_addr = cluster.node(old_leader).addr();
    let minority = produce_acks_1(&old_leader_addr, "minority", 20);
    assert_eq!(
        minority.len(),
        20,
        "the cut-off leader acknowledges acks=1 writes"
    );

    // The majority fences the old leader, elects a new one from the ISR and takes acks=all writes.
    let majority: Vec<String> = cluster
        .nodes
        .iter()
        .filter(|n| n.node_id != old_leader)
        .map(|n| n.addr())
        .collect();
    eventually(
        Duration::from_secs(30),
        "a new leader on the majority's side",
        || {
            leader_and_isr(&majority[0], TOPIC).is_some_and(|(leader, isr)| {
                leader > 0 && leader != old_leader && !isr.contains(&old_leader)
            })
        },
    )?;
    produce(
        &producer(&majority.join(","))?,
        TOPIC,
        "majority",
        100,
        &mut acked,
    )
    .await?;

    // Healed, the old leader finds its history diverged from the new leader's epoch, truncates and catches up.
    let network = cluster.network.as_ref().ok_or("no network")?;
    network.heal(old_leader);
    eventually(
        Duration::from_secs(60),
        "the old leader back in the ISR",
        || leader_and_isr(&majority[0], TOPIC).is_some_and(|(_, isr)| isr.len() == 3),
    )?;
    assert!(cluster
        .node(old_leader)
        .logged("truncating a diverged follower log"));

    // Leadership back to the old leader (the preferred replica), so that what is read next is its log.
    assert_eq!(elect_preferred_leader(&majority[0]), 0, "ElectLeaders");
    eventually(
        Duration::from_secs(20),
        "the old leader leading again",
        || leader_and_isr(&majority[0], TOPIC).is_some_and(|(leader, _)| leader == old_leader),
    )?;
    let by_offset = check_read_back(read_all(&old_leader_addr, TOPIC)?, &acked)?;
    assert!(
        by_offset.values().all(|v| !v.starts_with("minority-")),
        "the acks=1 records that were never replicated are gone"
    );
    assert_eq!(acked.len(), 200);
    Ok(())
}
