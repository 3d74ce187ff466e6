//! Leadership and ISR changes, tested by the records the handlers emit and the answers they give.

use super::*;

pub(crate) fn ids(brokers: &[i32]) -> Vec<BrokerId> {
    brokers.iter().copied().map(BrokerId).collect()
}

pub(crate) const TOPIC: TopicId = TopicId(uuid::Uuid::from_u128(1));

/// Brokers 1..=`brokers` registered (broker n with epoch 10 * n) and unfenced, and topic "orders" with one
/// partition per replica list, each led by its first replica with every replica in sync.
pub(crate) fn cluster(brokers: i32, partitions: &[&[i32]]) -> ControllerState {
    let mut records: Vec<MetadataRecord> = (1..=brokers)
        .map(|b| MetadataRecord::RegisterBroker {
            broker_id: BrokerId(b),
            host: format!("broker-{b}"),
            port: 9092,
            rack: None,
            incarnation_id: None,
            broker_epoch: Some(BrokerEpoch(i64::from(b) * 10)),
            fenced: false,
        })
        .collect();
    records.push(MetadataRecord::Topic {
        name: "orders".into(),
        topic_id: TOPIC,
    });
    for (index, replicas) in (0..).zip(partitions) {
        records.push(MetadataRecord::Partition {
            topic_id: TOPIC,
            partition: PartitionIndex(index),
            replicas: ids(replicas),
            isr: ids(replicas),
            leader: BrokerId(replicas[0]),
            leader_epoch: LeaderEpoch(0),
            partition_epoch: PartitionEpoch(0),
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        });
    }
    ControllerState::from_records(&records)
}

fn partition(state: &ControllerState, index: i32) -> PartitionRegistration {
    state
        .topic(TOPIC)
        .and_then(|t| t.partitions.get(&PartitionIndex(index)))
        .cloned()
        .expect("partition exists")
}

fn registration(
    replicas: &[i32],
    isr: &[i32],
    leader: i32,
    epochs: (i32, i32),
) -> PartitionRegistration {
    reassigning(replicas, isr, leader, epochs, (&[], &[]))
}

/// A partition state: replicas, ISR, leader, (leader epoch, partition epoch), adding, removing.
pub(crate) fn reassigning(
    replicas: &[i32],
    isr: &[i32],
    leader: i32,
    epochs: (i32, i32),
    (adding, removing): (&[i32], &[i32]),
) -> PartitionRegistration {
    PartitionRegistration {
        replicas: ids(replicas),
        isr: ids(isr),
        leader: BrokerId(leader),
        leader_epoch: LeaderEpoch(epochs.0),
        partition_epoch: PartitionEpoch(epochs.1),
        adding_replicas: ids(adding),
        removing_replicas: ids(removing),
    }
}

fn record(index: i32, registration: &PartitionRegistration) -> MetadataRecord {
    registration.to_record(TOPIC, PartitionIndex(index))
}

fn apply(state: &mut ControllerState, records: &[MetadataRecord]) {
    for record in records {
        state.replay(record).expect("replays");
    }
}

fn fence(state: &mut ControllerState, broker: i32) {
    let epoch = state
        .broker(BrokerId(broker))
        .expect("registered")
        .broker_epoch;
    let records = with_partition_changes(
        state,
        vec![MetadataRecord::FenceBroker {
            broker_id: BrokerId(broker),
            broker_epoch: epoch,
        }],
    );
    apply(state, &records);
}

fn unfence(state: &mut ControllerState, broker: i32) {
    let epoch = state
        .broker(BrokerId(broker))
        .expect("registered")
        .broker_epoch;
    let records = with_partition_changes(
        state,
        vec![MetadataRecord::UnfenceBroker {
            broker_id: BrokerId(broker),
            broker_epoch: epoch,
        }],
    );
    apply(state, &records);
}

fn set_config(state: &mut ControllerState, resource: ConfigResource, value: &str) {
    let config = MetadataRecord::Config {
        resource,
        name: UNCLEAN_LEADER_ELECTION_ENABLE.into(),
        value: Some(value.into()),
    };
    apply(state, &[config]);
}

#[test]
fn fencing_the_leader_elects_the_next_in_sync_replica_and_bumps_both_epochs() {
    let state = cluster(3, &[&[1, 2, 3], &[2, 3, 1]]);
    let records = on_broker_fenced(&state, BrokerId(1));
    assert_eq!(
        records,
        vec![
            record(0, &registration(&[1, 2, 3], &[2, 3], 2, (1, 1))),
            // A follower leaves the ISR; the leader stays, so only the partition epoch moves.
            record(1, &registration(&[2, 3, 1], &[2, 3], 2, (0, 1))),
        ]
    );
}

#[test]
fn the_new_leader_must_be_unfenced() {
    let mut state = cluster(3, &[&[1, 2, 3]]);
    apply(
        &mut state,
        &[MetadataRecord::FenceBroker {
            broker_id: BrokerId(2),
            broker_epoch: BrokerEpoch(20),
        }],
    );
    let records = on_broker_fenced(&state, BrokerId(1));
    assert_eq!(
        records,
        vec![record(0, &registration(&[1, 2, 3], &[2, 3], 3, (1, 1)))]
    );
}

#[test]
fn brokers_fenced_together_each_see_the_others_fenced() {
    let state = cluster(3, &[&[1, 2, 3]]);
    let records = with_partition_changes(
        &state,
        vec![
            MetadataRecord::FenceBroker {
                broker_id: BrokerId(1),
                broker_epoch: BrokerEpoch(10),
            },
            MetadataRecord::FenceBroker {
                broker_id: BrokerId(2),
                broker_epoch: BrokerEpoch(20),
            },
        ],
    );
    let mut after = state.clone();
    apply(&mut after, &records);
    assert_eq!(
        partition(&after, 0),
        registration(&[1, 2, 3], &[3], 3, (2, 2))
    );
    // Each broker's partition changes come before its FenceBroker, as in Kafka.
    assert!(matches!(records[1], MetadataRecord::FenceBroker { .. }));
    assert_eq!(records.len(), 4);
}

#[test]
fn fencing_the_last_in_sync_replica_leaves_it_in_the_isr_and_the_partition_leaderless() {
    let mut state = cluster(2, &[&[1, 2]]);
    fence(&mut state, 2);
    assert_eq!(partition(&state, 0), registration(&[1, 2], &[1], 1, (0, 1)));
    fence(&mut state, 1);
    assert_eq!(
        partition(&state, 0),
        registration(&[1, 2], &[1], NO_LEADER.0, (1, 2))
    );
    // The out-of-sync replica comes back: without unclean election it may not lead.
    unfence(&mut state, 2);
    assert_eq!(
        partition(&state, 0),
        registration(&[1, 2], &[1], NO_LEADER.0, (1, 2))
    );
    // The last in-sync replica comes back and leads again.
    let records = on_broker_unfenced(&state, BrokerId(1));
    assert_eq!(
        records,
        vec![record(0, &registration(&[1, 2], &[1], 1, (2, 3)))]
    );
    unfence(&mut state, 1);
    assert_eq!(partition(&state, 0), registration(&[1, 2], &[1], 1, (2, 3)));
}

#[test]
fn unclean_election_on_fencing_picks_an_unfenced_replica_and_cuts_the_isr_to_it() {
    let mut state = cluster(2, &[&[1, 2]]);
    fence(&mut state, 2);
    unfence(&mut state, 2);
    // 2 is back but not in sync; the ISR is [1].
    assert_eq!(partition(&state, 0).isr, ids(&[1]));
    set_config(&mut state, ConfigResource::Topic("orders".into()), "true");
    let records = on_broker_fenced(&state, BrokerId(1));
    assert_eq!(
        records,
        vec![record(0, &registration(&[1, 2], &[2], 2, (1, 2)))]
    );
}

#[test]
fn unclean_election_on_unfencing_and_the_topic_config_overrides_the_default() {
    let mut state = cluster(2, &[&[1, 2]]);
    fence(&mut state, 2);
    fence(&mut state, 1);
    set_config(&mut state, ConfigResource::BrokerDefault, "true");
    set_config(&mut state, ConfigResource::Topic("orders".into()), "false");
    assert!(on_broker_unfenced(&state, BrokerId(2)).is_empty());
    set_config(&mut state, ConfigResource::Topic("orders".into()), "true");
    assert_eq!(
        on_broker_unfenced(&state, BrokerId(2)),
        vec![record(0, &registration(&[1, 2], &[2], 2, (2, 3)))]
    );
}

#[test]
fn the_broker_default_enables_unclean_election_when_the_topic_says_nothing() {
    let mut state = cluster(2, &[&[1, 2]]);
    fence(&mut state, 2);
    unfence(&mut state, 2);
    set_config(&mut state, ConfigResource::BrokerDefault, "TRUE");
    assert_eq!(on_broker_fenced(&state, BrokerId(1)).len(), 1);
}

#[test]
fn unrelated_partitions_are_left_alone() {
    let state = cluster(3, &[&[2, 3]]);
    assert!(on_broker_fenced(&state, BrokerId(1)).is_empty());
    assert!(on_broker_unfenced(&state, BrokerId(1)).is_empty());
}

fn alter(broker: i32, epoch: i64, changes: Vec<IsrChange>) -> AlterPartitionRequest {
    AlterPartitionRequest {
        broker_id: BrokerId(broker),
        broker_epoch: BrokerEpoch(epoch),
        partitions: changes,
    }
}

fn isr_change(index: i32, epochs: (i32, i32), new_isr: &[i32]) -> IsrChange {
    IsrChange {
        topic_id: TOPIC,
        partition: PartitionIndex(index),
        leader_epoch: LeaderEpoch(epochs.0),
        partition_epoch: PartitionEpoch(epochs.1),
        new_isr: ids(new_isr),
    }
}

/// The single partition answer of an AlterPartition for one partition.
fn alter_one_partition(
    state: &ControllerState,
    request: &AlterPartitionRequest,
) -> (
    Vec<MetadataRecord>,
    Result<PartitionRegistration, ControllerError>,
) {
    let result = alter_partition(state, request);
    let mut answers = result.response.expect("request accepted");
    assert_eq!(answers.len(), 1);
    (result.records, answers.remove(0).result)
}

#[test]
fn alter_partition_shrinks_and_expands_the_isr() {
    let mut state = cluster(3, &[&[1, 2, 3]]);
    let (records, answer) =
        alter_one_partition(&state, &alter(1, 10, vec![isr_change(0, (0, 0), &[1, 3])]));
    let shrunk = registration(&[1, 2, 3], &[1, 3], 1, (0, 1));
    assert_eq!(records, vec![record(0, &shrunk)]);
    assert_eq!(answer.ok(), Some(shrunk));
    apply(&mut state, &records);
    let (records, answer) = alter_one_partition(
        &state,
        &alter(1, 10, vec![isr_change(0, (0, 1), &[1, 3, 2])]),
    );
    let expanded = registration(&[1, 2, 3], &[1, 3, 2], 1, (0, 2));
    assert_eq!(records, vec![record(0, &expanded)]);
    assert_eq!(answer.ok(), Some(expanded));
}

#[test]
fn alter_partition_to_the_same_isr_writes_nothing_and_answers_the_current_state() {
    let state = cluster(3, &[&[1, 2, 3]]);
    let (records, answer) = alter_one_partition(
        &state,
        &alter(1, 10, vec![isr_change(0, (0, 0), &[1, 2, 3])]),
    );
    assert!(records.is_empty());
    assert_eq!(answer.ok(), Some(partition(&state, 0)));
}

#[test]
fn alter_partition_from_another_broker_epoch_is_refused_whole() {
    let state = cluster(3, &[&[1, 2, 3]]);
    for request in [
        alter(1, 11, vec![isr_change(0, (0, 0), &[1])]),
        alter(9, 10, vec![isr_change(0, (0, 0), &[1])]),
    ] {
        let result = alter_partition(&state, &request);
        assert!(result.records.is_empty());
        assert!(matches!(
            result.response,
            Err(ControllerError::StaleBrokerEpoch(_))
        ));
    }
}

/// Whether an answer is the error a case expects.
type ErrorCheck = fn(&ControllerError) -> bool;

#[test]
fn alter_partition_refuses_each_bad_partition_with_kafkas_error() {
    let mut state = cluster(4, &[&[1, 2, 3]]);
    apply(
        &mut state,
        &[MetadataRecord::FenceBroker {
            broker_id: BrokerId(3),
            broker_epoch: BrokerEpoch(30),
        }],
    );
    // Leader epoch 1, partition epoch 2.
    apply(
        &mut state,
        &[record(0, &registration(&[1, 2, 3], &[1, 2], 1, (1, 2)))],
    );
    let unknown_topic = IsrChange {
        topic_id: TopicId(uuid::Uuid::from_u128(99)),
        ..isr_change(0, (1, 2), &[1])
    };
    let nil_topic = IsrChange {
        topic_id: TopicId(uuid::Uuid::nil()),
        ..isr_change(0, (1, 2), &[1])
    };
    let cases: Vec<(i32, IsrChange, ErrorCheck)> = vec![
        (1, unknown_topic, |e| {
            matches!(e, ControllerError::UnknownTopicId(_))
        }),
        (1, nil_topic, |e| {
            matches!(e, ControllerError::UnknownTopicId(_))
        }),
        (1, isr_change(5, (1, 2), &[1]), |e| {
            matches!(e, ControllerError::UnknownTopicOrPartition(_))
        }),
        (1, isr_change(0, (2, 2), &[1]), |e| {
            matches!(e, ControllerError::NotController)
        }),
        (1, isr_change(0, (1, 3), &[1]), |e| {
            matches!(e, ControllerError::NotController)
        }),
        (1, isr_change(0, (0, 2), &[1]), |e| {
            matches!(e, ControllerError::FencedLeaderEpoch(_))
        }),
        (2, isr_change(0, (1, 2), &[2]), |e| {
            matches!(e, ControllerError::InvalidRequest(_))
        }),
        (1, isr_change(0, (1, 1), &[1]), |e| {
            matches!(e, ControllerError::InvalidUpdateVersion(_))
        }),
        (1, isr_change(0, (1, 2), &[1, 4]), |e| {
            matches!(e, ControllerError::InvalidRequest(_))
        }),
        (1, isr_change(0, (1, 2), &[1, 1]), |e| {
            matches!(e, ControllerError::InvalidRequest(_))
        }),
        (1, isr_change(0, (1, 2), &[2]), |e| {
            matches!(e, ControllerError::InvalidRequest(_))
        }),
        (1, isr_change(0, (1, 2), &[]), |e| {
            matches!(e, ControllerError::InvalidRequest(_))
        }),
        (1, isr_change(0, (1, 2), &[1, 3]), |e| {
            matches!(e, ControllerError::IneligibleReplica(_))
        }),
    ];
    for (broker, change, expected) in cases {
        let epoch = i64::from(broker) * 10;
        let (records, answer) =
            alter_one_partition(&state, &alter(broker, epoch, vec![change.clone()]));
        assert!(records.is_empty(), "{change:?}");
        match answer {
            Err(error) => assert!(expected(&error), "{change:?}: {error:?}"),
            Ok(answer) => panic!("{change:?} accepted: {answer:?}"),
        }
    }
}

#[test]
fn a_partition_named_twice_is_checked_against_the_first_change() {
    let state = cluster(3, &[&[1, 2, 3]]);
    let request = alter(
        1,
        10,
        vec![isr_change(0, (0, 0), &[1, 2]), isr_change(0, (0, 0), &[1])],
    );
    let result = alter_partition(&state, &request);
    assert_eq!(result.records.len(), 1);
    let answers = result.response.expect("accepted");
    assert!(answers[0].result.is_ok());
    assert!(matches!(
        answers[1].result,
        Err(ControllerError::InvalidUpdateVersion(_))
    ));
}

fn by_name(index: i32) -> (TopicRef, PartitionIndex) {
    (TopicRef::Name("orders".into()), PartitionIndex(index))
}

#[test]
fn preferred_election_moves_leadership_back_to_the_first_replica() {
    let mut state = cluster(3, &[&[1, 2, 3], &[2, 3, 1]]);
    fence(&mut state, 1);
    unfence(&mut state, 1);
    // 1 is back but out of sync: not available yet.
    let early = elect_leaders(&state, ElectionType::Preferred, Some(&[by_name(0)]));
    assert!(early.records.is_empty());
    assert!(matches!(
        early.response[0].result,
        Err(ControllerError::PreferredLeaderNotAvailable(_))
    ));
    assert!(preferred_imbalance(&state).is_empty());
    // It catches up: its leader adds it to the ISR.
    let current = partition(&state, 0);
    let (records, _) = alter_one_partition(
        &state,
        &alter(
            2,
            20,
            vec![isr_change(
                0,
                (current.leader_epoch.0, current.partition_epoch.0),
                &[2, 3, 1],
            )],
        ),
    );
    apply(&mut state, &records);
    assert_eq!(
        preferred_imbalance(&state),
        vec![(TOPIC, PartitionIndex(0))]
    );
    let result = elect_leaders(
        &state,
        ElectionType::Preferred,
        Some(&[by_name(0), by_name(1)]),
    );
    assert_eq!(
        result.records,
        vec![record(0, &registration(&[1, 2, 3], &[2, 3, 1], 1, (2, 3)))]
    );
    assert!(result.response[0].result.is_ok());
    assert!(matches!(
        result.response[1].result,
        Err(ControllerError::ElectionNotNeeded(_))
    ));
    apply(&mut state, &result.records);
    assert!(preferred_imbalance(&state).is_empty());
}

#[test]
fn electing_every_partition_leaves_out_those_that_need_none() {
    let mut state = cluster(3, &[&[1, 2, 3], &[2, 3, 1]]);
    apply(
        &mut state,
        &[record(0, &registration(&[1, 2, 3], &[1, 2, 3], 2, (1, 1)))],
    );
    let result = elect_leaders(&state, ElectionType::Preferred, None);
    assert_eq!(result.records.len(), 1);
    assert_eq!(result.response.len(), 1);
    assert_eq!(result.response[0].partition, PartitionIndex(0));
    assert!(result.response[0].result.is_ok());
}

#[test]
fn unclean_election_only_for_leaderless_partitions() {
    let mut state = cluster(2, &[&[1, 2], &[2, 1]]);
    fence(&mut state, 2);
    fence(&mut state, 1);
    // Both leaderless, with ISR [1].
    let none_available = elect_leaders(&state, ElectionType::Unclean, Some(&[by_name(0)]));
    assert!(matches!(
        none_available.response[0].result,
        Err(ControllerError::EligibleLeadersNotAvailable(_))
    ));
    apply(
        &mut state,
        &[MetadataRecord::UnfenceBroker {
            broker_id: BrokerId(2),
            broker_epoch: BrokerEpoch(20),
        }],
    );
    let result = elect_leaders(
        &state,
        ElectionType::Unclean,
        Some(&[by_name(0), by_name(1)]),
    );
    // Only the out-of-sync replica 2 is available: it leads alone.
    assert_eq!(
        result.records,
        vec![
            record(0, &registration(&[1, 2], &[2], 2, (2, 3))),
            record(1, &registration(&[2, 1], &[2], 2, (3, 3))),
        ]
    );
    apply(&mut state, &result.records);
    let again = elect_leaders(&state, ElectionType::Unclean, Some(&[by_name(0)]));
    assert!(matches!(
        again.response[0].result,
        Err(ControllerError::ElectionNotNeeded(_))
    ));
}

#[test]
fn elections_for_unknown_topics_and_partitions() {
    let state = cluster(1, &[&[1]]);
    let unknown_id = TopicId(uuid::Uuid::from_u128(42));
    let result = elect_leaders(
        &state,
        ElectionType::Preferred,
        Some(&[
            (TopicRef::Name("nope".into()), PartitionIndex(0)),
            (TopicRef::Id(unknown_id), PartitionIndex(0)),
            by_name(7),
        ]),
    );
    assert!(result.records.is_empty());
    assert!(matches!(
        result.response[0].result,
        Err(ControllerError::UnknownTopicOrPartition(_))
    ));
    assert!(matches!(
        result.response[1].result,
        Err(ControllerError::UnknownTopicId(id)) if id == unknown_id
    ));
    assert!(matches!(
        result.response[2].result,
        Err(ControllerError::UnknownTopicOrPartition(_))
    ));
}

#[test]
fn a_snapshot_keeps_partition_epochs() {
    let mut state = cluster(3, &[&[1, 2, 3]]);
    fence(&mut state, 1);
    assert_eq!(partition(&state, 0).partition_epoch, PartitionEpoch(1));
    let restored = ControllerState::from_records(&state.to_records());
    assert_eq!(restored, state);
    assert_eq!(partition(&restored, 0).partition_epoch, PartitionEpoch(1));
}

#[test]
fn answers_serialise_for_the_channel() -> Result<(), serde_json::Error> {
    let answer = AlterPartitionResult {
        topic_id: TOPIC,
        partition: PartitionIndex(0),
        result: Ok(registration(&[1], &[1], 1, (0, 3))),
    };
    let json = serde_json::to_string(&answer)?;
    let back: AlterPartitionResult = serde_json::from_str(&json)?;
    assert_eq!(back.result.ok(), Some(registration(&[1], &[1], 1, (0, 3))));
    Ok(())
}
