//! Partition reassignment (KIP-455) on three `ferrite` processes: AlterPartitionReassignments moves a partition from
//! brokers {1, 2} to {2, 3} while ListPartitionReassignments reports it, the new replica fetches everything and the
//! old one deletes its log, every acknowledged record reads back from the new replicas and producing goes on; a
//! reassignment that cannot finish is cancelled; bad targets get Kafka's error codes.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::cluster::{
    check_read_back, eventually, metadata, produce, producer, quorum_leader, read_all, TestCluster,
};
use kafka_protocol::messages::alter_partition_reassignments_request::{
    AlterPartitionReassignmentsRequest, ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::alter_partition_reassignments_response::AlterPartitionReassignmentsResponse;
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsRequest;
use kafka_protocol::messages::list_partition_reassignments_response::ListPartitionReassignmentsResponse;
use kafka_protocol::messages::{ApiKey, BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rdkafka::admin::{NewTopic, TopicReplication};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const MOVED: &str = "moved";
const CANCELLED: &str = "cancelled";

/// A one-partition topic on exactly `replicas` (CreateTopics with a manual assignment).
async fn create_topic(bootstrap: &str, topic: &str, replicas: &[i32]) -> Result<(), String> {
    let assignment = [replicas];
    common::cluster::create_topic(
        bootstrap,
        NewTopic::new(topic, 1, TopicReplication::Variable(&assignment)),
    )
    .await
}

/// Partition 0's leader, replicas (in order) and ISR (sorted), as `addr` sees them.
fn placement(addr: &str, topic: &str) -> Option<(i32, Vec<i32>, Vec<i32>)> {
    let answer = metadata(addr);
    let topic = answer
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(topic))?;
    let partition = topic.partitions.iter().find(|p| p.partition_index == 0)?;
    let replicas = partition.replica_nodes.iter().map(|b| b.0).collect();
    let mut isr: Vec<i32> = partition.isr_nodes.iter().map(|b| b.0).collect();
    isr.sort_unstable();
    Some((partition.leader_id.0, replicas, isr))
}

/// Partition 0's leader epoch, as `addr` sees it.
fn leader_epoch(addr: &str, topic: &str) -> Option<i32> {
    metadata(addr)
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(topic))?
        .partitions
        .iter()
        .find(|p| p.partition_index == 0)
        .map(|p| p.leader_epoch)
}

/// One partition of an AlterPartitionReassignments: topic, partition, target replicas (`None` cancels).
type Target<'a> = (&'a str, i32, Option<&'a [i32]>);

/// AlterPartitionReassignments asked of `addr`; each partition's error code, in the order asked.
fn alter(
    addr: &str,
    version: i16,
    allow_replication_factor_change: bool,
    targets: &[Target],
) -> Vec<i16> {
    let mut topics: Vec<ReassignableTopic> = Vec::new();
    for (topic, partition, replicas) in targets {
        let partition = ReassignablePartition::default()
            .with_partition_index(*partition)
            .with_replicas(replicas.map(|r| r.iter().copied().map(BrokerId).collect()));
        match topics.last_mut().filter(|t| t.name.0.as_str() == *topic) {
            Some(last) => last.partitions.push(partition),
            None => topics.push(
                ReassignableTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(10_000)
        .with_allow_replication_factor_change(allow_replication_factor_change)
        .with_topics(topics);
    let response: AlterPartitionReassignmentsResponse =
        common::call_addr(addr, ApiKey::AlterPartitionReassignments, version, &request);
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// One partition in progress: topic, partition, replicas, adding, removing.
type Ongoing = (String, i32, Vec<i32>, Vec<i32>, Vec<i32>);

/// ListPartitionReassignments of every partition, asked of `addr`.
fn list(addr: &str) -> Vec<Ongoing> {
    let request = ListPartitionReassignmentsRequest::default().with_timeout_ms(10_000);
    let response: ListPartitionReassignmentsResponse =
        common::call_addr(addr, ApiKey::ListPartitionReassignments, 0, &request);
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    let ids = |brokers: &[BrokerId]| brokers.iter().map(|b| b.0).collect::<Vec<i32>>();
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    ids(&p.replicas),
                    ids(&p.adding_replicas),
                    ids(&p.removing_replicas),
                )
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partition_moves_to_other_brokers_and_keeps_every_acknowledged_record() -> TestResult {
    let mut cluster = TestCluster::start(3);
    let bootstrap = cluster.bootstrap();
    let node1 = cluster.nodes[0].addr();
    create_topic(&bootstrap, MOVED, &[1, 2]).await?;
    eventually(
        Duration::from_secs(20),
        "the topic on brokers 1 and 2",
        || placement(&node1, MOVED) == Some((1, vec![1, 2], vec![1, 2])),
    )?;
    let producer = producer(&bootstrap)?;
    let mut acked = BTreeMap::new();
    produce(&producer, MOVED, "before", 200, &mut acked).await?;

    // Bad targets, each answered with Kafka's error, and nothing changes.
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    let invalid = ResponseError::InvalidReplicaAssignment.code();
    let refused = alter(
        &node1,
        0,
        true,
        &[
            ("nope", 0, Some(&[1])),
            (MOVED, 5, Some(&[1])),
            (MOVED, 0, Some(&[])),
            (MOVED, 0, Some(&[2, 2])),
            (MOVED, 0, Some(&[2, 9])),
            (MOVED, 0, None),
        ],
    );
    assert_eq!(
        refused,
        [
            unknown,
            unknown,
            invalid,
            invalid,
            invalid,
            ResponseError::NoReassignmentInProgress.code()
        ]
    );
    // v1 (KIP-860) may forbid a change of replication factor.
    assert_eq!(
        alter(&node1, 1, false, &[(MOVED, 0, Some(&[1, 2, 3]))]),
        [ResponseError::InvalidReplicationFactor.code()]
    );
    assert_eq!(placement(&node1, MOVED), Some((1, vec![1, 2], vec![1, 2])));
    assert!(list(&node1).is_empty());

    // The move: 3 is added and 1 removed. Once 3 is in sync, 3 (the first target replica) leads.
    assert_eq!(alter(&node1, 0, true, &[(MOVED, 0, Some(&[3, 2]))]), [0]);
    let in_progress = list(&node1);
    if let Some(ongoing) = in_progress.first() {
        assert_eq!(
            ongoing,
            &(MOVED.to_string(), 0, vec![3, 2, 1], vec![3], vec![1]),
            "in progress: the target, then the replica being removed"
        );
    }
    eventually(
        Duration::from_secs(60),
        "the reassignment to complete",
        || list(&node1).is_empty(),
    )?;
    for node in &cluster.nodes {
        let addr = node.addr();
        eventually(
            Duration::from_secs(20),
            &format!("node {} to see replicas and ISR {{2, 3}}", node.node_id),
            || placement(&addr, MOVED) == Some((3, vec![3, 2], vec![2, 3])),
        )?;
    }
    let old_log = cluster.nodes[0].dir.join("moved-0");
    eventually(Duration::from_secs(20), "node 1 to delete its log", || {
        !old_log.exists()
    })?;
    let new_log = cluster.nodes[2].dir.join("moved-0");
    assert!(
        new_log.join("partition.metadata").exists(),
        "node 3 holds the log"
    );

    // Producing goes on at the new leader, and everything reads back from it: broker 3's log, fetched in the move.
    produce(&producer, MOVED, "after", 50, &mut acked).await?;
    check_read_back(read_all(&cluster.nodes[2].addr(), MOVED)?, &acked)?;
    assert_eq!(acked.len(), 250);

    // A reassignment to a broker that cannot catch up (paused) stays in progress until it is cancelled. The
    // paused broker is not the active controller, so the quorum carries on without an election.
    let controller = quorum_leader(&node1);
    let paused = (1..=3)
        .find(|n| *n != controller)
        .ok_or("a broker to pause")?;
    let kept: Vec<i32> = (1..=3).filter(|n| *n != paused).collect();
    let (leader, follower) = (kept[0], kept[1]);
    create_topic(&bootstrap, CANCELLED, &kept).await?;
    let leader_addr = cluster.node(leader).addr();
    eventually(Duration::from_secs(20), "the second topic", || {
        placement(&leader_addr, CANCELLED) == Some((leader, kept.clone(), kept.clone()))
    })?;
    cluster.node(paused).pause();
    assert_eq!(
        alter(
            &leader_addr,
            0,
            true,
            &[(CANCELLED, 0, Some(&[leader, paused]))]
        ),
        [0]
    );
    assert_eq!(
        list(&leader_addr),
        [(
            CANCELLED.to_string(),
            0,
            vec![leader, paused, follower],
            vec![paused],
            vec![follower]
        )]
    );
    assert_eq!(alter(&leader_addr, 0, true, &[(CANCELLED, 0, None)]), [0]);
    assert!(list(&leader_addr).is_empty());
    assert_eq!(
        placement(&leader_addr, CANCELLED),
        Some((leader, kept.clone(), kept.clone()))
    );
    // Taking the added replica out bumped the leader epoch: the paused broker has applied the cancellation once it
    // sees that epoch (before, it still shows the topic as created).
    let cancelled_epoch = leader_epoch(&leader_addr, CANCELLED);
    assert_eq!(cancelled_epoch, Some(1));
    cluster.node(paused).resume();
    let paused_addr = cluster.node(paused).addr();
    eventually(
        Duration::from_secs(30),
        "the paused broker to apply the cancellation",
        || leader_epoch(&paused_addr, CANCELLED) == cancelled_epoch,
    )?;
    assert_eq!(
        placement(&paused_addr, CANCELLED),
        Some((leader, kept.clone(), kept.clone()))
    );
    assert!(
        !cluster.node(paused).dir.join("cancelled-0").exists(),
        "a cancelled replica keeps no log"
    );
    Ok(())
}
