//! One voter, as the broker runs today: start, write, restart from the same dir.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{eventually, register, single_voter, topic, Event, Recorder};
use ferrite_raft::{
    AlterPartitionRequest, BrokerHeartbeatRequest, BrokerId, ConfigResource, ControllerError,
    ElectionType, IsrChange, LeaderEpoch, MetadataQuorum, MetadataRecord, PartitionEpoch,
    PartitionIndex, PartitionRegistration, TopicRef,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn start(
    dir: &std::path::Path,
    snapshot_after_entries: u64,
) -> Result<(MetadataQuorum, Arc<Recorder>), ferrite_raft::QuorumError> {
    let recorder = Arc::new(Recorder::default());
    let quorum =
        MetadataQuorum::start(single_voter(dir, snapshot_after_entries), recorder.clone()).await?;
    Ok((quorum, recorder))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_and_deletes_topics_and_the_listener_sees_the_records() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (quorum, recorder) = start(dir.path(), 0).await?;
    assert_eq!(quorum.leader_id(), Some(BrokerId(1)));
    assert_eq!(recorder.events(), vec![Event::Snapshot(Vec::new())]);

    let controller = quorum.controller();
    // A registration, then the heartbeat that unfences the broker.
    register(controller, BrokerId(1), None).await?;
    assert_eq!(recorder.events().len(), 3);

    let checked = controller.create_topics(vec![topic("dry", 1)], true).await;
    assert!(checked[0].is_ok());
    assert_eq!(recorder.events().len(), 3, "validate_only must not write");

    let mut orders = topic("orders", 3);
    orders.configs = vec![("retention.ms".into(), "1000".into())];
    let created = controller
        .create_topics(
            vec![orders, topic("payments", 1), topic("bad name", 1)],
            false,
        )
        .await;
    assert_eq!(created.len(), 3);
    let orders = created[0].as_ref().map_err(|e| e.to_string())?;
    assert_eq!((orders.num_partitions, orders.replication_factor), (3, 1));
    assert!(created[1].is_ok());
    assert!(matches!(created[2], Err(ControllerError::InvalidTopic(_))));

    // create_topics returns once the records are applied: the listener has them already.
    let image = recorder.image();
    let registered = image
        .topic_by_name("orders")
        .map(|t| (t.topic_id, t.partitions.len()));
    assert_eq!(registered, Some((orders.topic_id, 3)));
    assert_eq!(
        image
            .configs(&ConfigResource::Topic("orders".into()))
            .and_then(|c| c.get("retention.ms"))
            .map(String::as_str),
        Some("1000")
    );
    assert_eq!(controller.with_state(|s| s.clone()), image);

    let again = controller
        .create_topics(vec![topic("orders", 1)], false)
        .await;
    assert!(matches!(
        again[0],
        Err(ControllerError::TopicAlreadyExists(_))
    ));

    let deleted = controller
        .delete_topics(vec![
            TopicRef::Id(orders.topic_id),
            TopicRef::Name("nope".into()),
        ])
        .await;
    assert_eq!(
        deleted[0].as_ref().map(|d| d.name.clone()).ok(),
        Some("orders".to_string())
    );
    assert!(matches!(
        deleted[1],
        Err(ControllerError::UnknownTopicOrPartition(_))
    ));
    assert_eq!(
        recorder.events().last(),
        Some(&Event::Records(vec![MetadataRecord::RemoveTopic {
            topic_id: orders.topic_id
        }]))
    );
    assert_eq!(recorder.topic_names(), vec!["payments".to_string()]);

    quorum.shutdown().await?;
    let after = quorum
        .controller()
        .create_topics(vec![topic("late", 1)], false)
        .await;
    assert!(matches!(after[0], Err(ControllerError::Quorum(_))));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_replays_the_log_into_the_same_image() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (quorum, recorder) = start(dir.path(), 0).await?;
    let controller = quorum.controller();
    register(controller, BrokerId(1), Some("rack-a".into())).await?;
    for name in ["a", "b", "c"] {
        let created = controller.create_topics(vec![topic(name, 2)], false).await;
        assert!(created[0].is_ok());
    }
    let deleted = controller
        .delete_topics(vec![TopicRef::Name("b".into())])
        .await;
    assert!(deleted[0].is_ok());
    let before = recorder.image();
    quorum.shutdown().await?;

    for _ in 0..2 {
        let (quorum, recorder) = start(dir.path(), 0).await?;
        // No snapshot: an empty one first, then the committed entries replayed in order.
        let events = recorder.events();
        assert_eq!(events.first(), Some(&Event::Snapshot(Vec::new())));
        assert_eq!(recorder.image(), before);
        assert_eq!(quorum.controller().with_state(|s| s.clone()), before);

        // The restarted controller validates against the replayed state.
        let again = quorum
            .controller()
            .create_topics(vec![topic("a", 1)], false)
            .await;
        assert!(matches!(
            again[0],
            Err(ControllerError::TopicAlreadyExists(_))
        ));
        quorum.shutdown().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_loads_the_snapshot_then_the_entries_after_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (quorum, recorder) = start(dir.path(), 3).await?;
    let controller = quorum.controller();
    register(controller, BrokerId(1), None).await?;
    for i in 0..10 {
        let created = controller
            .create_topics(vec![topic(&format!("t{i}"), 1)], false)
            .await;
        assert!(created[0].is_ok());
    }
    let snapshots = dir.path().join("snapshots");
    let has_snapshot = || {
        std::fs::read_dir(&snapshots)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .any(|e| e.file_name().to_string_lossy().ends_with(".checkpoint"))
            })
            .unwrap_or(false)
    };
    assert!(eventually(Duration::from_secs(10), has_snapshot).await);
    let before = recorder.image();
    assert_eq!(before.topics().count(), 10);
    quorum.shutdown().await?;

    let (quorum, recorder) = start(dir.path(), 3).await?;
    match recorder.events().first() {
        Some(Event::Snapshot(records)) => {
            assert!(!records.is_empty(), "expected the snapshot's records")
        }
        other => panic!("expected a snapshot first, got {other:?}"),
    }
    assert_eq!(recorder.image(), before);

    // Writes after the restart land on top of the snapshot, and survive another restart.
    let created = quorum
        .controller()
        .create_topics(vec![topic("after", 1)], false)
        .await;
    assert!(created[0].is_ok());
    let before = recorder.image();
    quorum.shutdown().await?;
    let (quorum, recorder) = start(dir.path(), 3).await?;
    assert_eq!(recorder.image(), before);
    quorum.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_outside_the_voters_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut config = single_voter(dir.path(), 0);
    config.node_id = BrokerId(2);
    let refused = MetadataQuorum::start(config, Arc::new(Recorder::default())).await;
    assert!(matches!(
        refused,
        Err(ferrite_raft::QuorumError::InvalidConfig(_))
    ));
    Ok(())
}

/// The replication handlers through the real write path: a shutting-down leader hands its partition on in the
/// same write that fences it, its successor's AlterPartition brings it back into the ISR once it is unfenced, and
/// a preferred election gives it its leadership back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_follows_fencing_alter_partition_and_elections() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (quorum, _recorder) = start(dir.path(), 0).await?;
    let controller = quorum.controller();
    for broker in 1..=3 {
        register(controller, BrokerId(broker), None).await?;
    }
    let epoch =
        |broker: i32| controller.with_state(|s| s.broker(BrokerId(broker)).map(|b| b.broker_epoch));
    let mut spec = topic("orders", -1);
    spec.assignments = vec![(
        PartitionIndex(0),
        vec![BrokerId(1), BrokerId(2), BrokerId(3)],
    )];
    let created = controller.create_topics(vec![spec], false).await;
    let topic_id = created[0].as_ref().map_err(|e| e.to_string())?.topic_id;
    let partition = || {
        controller.with_state(|s| {
            s.topic(topic_id)
                .and_then(|t| t.partitions.get(&PartitionIndex(0)))
                .cloned()
        })
    };

    let heartbeat = |broker: i32, want_shut_down: bool| BrokerHeartbeatRequest {
        broker_id: BrokerId(broker),
        broker_epoch: epoch(broker).unwrap_or_default(),
        current_metadata_offset: i64::MAX,
        want_fence: false,
        want_shut_down,
    };
    controller.broker_heartbeat(heartbeat(1, true)).await?;
    let after_shutdown = partition().ok_or("no partition")?;
    assert_eq!(after_shutdown.leader, BrokerId(2));
    assert_eq!(after_shutdown.isr, vec![BrokerId(2), BrokerId(3)]);
    assert_eq!(
        (after_shutdown.leader_epoch, after_shutdown.partition_epoch),
        (LeaderEpoch(1), PartitionEpoch(1))
    );

    let expand = |partition: &PartitionRegistration| AlterPartitionRequest {
        broker_id: BrokerId(2),
        broker_epoch: epoch(2).unwrap_or_default(),
        partitions: vec![IsrChange {
            topic_id,
            partition: PartitionIndex(0),
            leader_epoch: partition.leader_epoch,
            partition_epoch: partition.partition_epoch,
            new_isr: vec![BrokerId(2), BrokerId(3), BrokerId(1)],
        }],
    };
    let refused = controller.alter_partition(expand(&after_shutdown)).await?;
    assert!(matches!(
        refused[0].result,
        Err(ControllerError::IneligibleReplica(_))
    ));

    controller.broker_heartbeat(heartbeat(1, false)).await?;
    let expanded = controller.alter_partition(expand(&after_shutdown)).await?;
    let expanded = expanded[0].result.as_ref().map_err(|e| e.to_string())?;
    assert_eq!(Some(expanded), partition().as_ref());
    assert_eq!(expanded.partition_epoch, PartitionEpoch(2));

    controller.balance_partition_leaders().await?;
    let balanced = partition().ok_or("no partition")?;
    assert_eq!(balanced.leader, BrokerId(1));
    assert_eq!(balanced.leader_epoch, LeaderEpoch(2));
    let again = controller
        .elect_leaders(
            ElectionType::Preferred,
            Some(vec![(TopicRef::Id(topic_id), PartitionIndex(0))]),
        )
        .await?;
    assert!(matches!(
        again[0].result,
        Err(ControllerError::ElectionNotNeeded(_))
    ));
    quorum.shutdown().await?;
    Ok(())
}
