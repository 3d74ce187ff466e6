//! Reassignments, tested by the records the handlers emit and the answers they give.

use super::*;
use crate::controller::replication::tests::{cluster, ids, reassigning as registration, TOPIC};
use crate::controller::replication::{
    alter_partition, with_partition_changes, AlterPartitionRequest, IsrChange,
    UNCLEAN_LEADER_ELECTION_ENABLE,
};
use crate::ids::BrokerEpoch;
use crate::record::{ConfigResource, MetadataRecord};

const NONE: (&[i32], &[i32]) = (&[], &[]);

fn record(index: i32, registration: &PartitionRegistration) -> MetadataRecord {
    registration.to_record(TOPIC, PartitionIndex(index))
}

fn partition(state: &ControllerState, index: i32) -> PartitionRegistration {
    state
        .topic(TOPIC)
        .and_then(|t| t.partitions.get(&PartitionIndex(index)))
        .cloned()
        .expect("partition exists")
}

fn apply(state: &mut ControllerState, records: &[MetadataRecord]) {
    for record in records {
        state.replay(record).expect("replays");
    }
}

fn target(topic: &str, index: i32, replicas: Option<&[i32]>) -> ReassignmentTarget {
    ReassignmentTarget {
        topic: topic.into(),
        partition: PartitionIndex(index),
        replicas: replicas.map(ids),
    }
}

/// Reassigns partition `index` of "orders" (`None`: cancels); the records and the partition's answer.
fn reassign(
    state: &ControllerState,
    index: i32,
    replicas: Option<&[i32]>,
) -> (Vec<MetadataRecord>, Result<(), ControllerError>) {
    let mut result =
        alter_partition_reassignments(state, &[target("orders", index, replicas)], true);
    assert_eq!(result.response.len(), 1);
    (result.records, result.response.remove(0).result)
}

/// The leader of partition 0 sets its ISR (AlterPartition, on the partition's current epochs).
fn set_isr(state: &ControllerState, isr: &[i32]) -> Vec<MetadataRecord> {
    let current = partition(state, 0);
    let leader = current.leader;
    let request = AlterPartitionRequest {
        broker_id: leader,
        broker_epoch: BrokerEpoch(i64::from(leader.0) * 10),
        partitions: vec![IsrChange {
            topic_id: TOPIC,
            partition: PartitionIndex(0),
            leader_epoch: current.leader_epoch,
            partition_epoch: current.partition_epoch,
            new_isr: ids(isr),
        }],
    };
    let result = alter_partition(state, &request);
    let answers = result.response.expect("request accepted");
    assert!(answers[0].result.is_ok(), "{:?}", answers[0].result);
    result.records
}

/// Starts a reassignment of partition `index` and applies it.
fn start(state: &mut ControllerState, index: i32, replicas: Option<&[i32]>) {
    let (records, answer) = reassign(state, index, replicas);
    assert!(answer.is_ok(), "{answer:?}");
    apply(state, &records);
}

/// Sets partition 0's ISR and applies the change.
fn sync(state: &mut ControllerState, isr: &[i32]) {
    let records = set_isr(state, isr);
    apply(state, &records);
}

fn fence(state: &mut ControllerState, broker: i32) {
    let records = with_partition_changes(
        state,
        vec![MetadataRecord::FenceBroker {
            broker_id: BrokerId(broker),
            broker_epoch: BrokerEpoch(i64::from(broker) * 10),
        }],
    );
    apply(state, &records);
}

#[test]
fn a_reassignment_starts_with_the_target_then_the_removed_replicas() {
    let state = cluster(3, &[&[1, 2]]);
    let (records, answer) = reassign(&state, 0, Some(&[3, 2]));
    assert!(answer.is_ok());
    // The leader and ISR stay; only the partition epoch moves, and 3 is to be added, 1 removed.
    assert_eq!(
        records,
        vec![record(
            0,
            &registration(&[3, 2, 1], &[1, 2], 1, (0, 1), (&[3], &[1]))
        )]
    );
}

#[test]
fn the_last_target_replica_joining_the_isr_completes_it_and_moves_leadership_into_the_target() {
    let mut state = cluster(3, &[&[1, 2]]);
    start(&mut state, 0, Some(&[3, 2]));
    // An ISR change that leaves the target short of sync is only an ISR change.
    let shrunk = set_isr(&state, &[1]);
    assert_eq!(
        shrunk,
        vec![record(
            0,
            &registration(&[3, 2, 1], &[1], 1, (0, 2), (&[3], &[1]))
        )]
    );
    apply(&mut state, &shrunk);
    sync(&mut state, &[1, 2]);
    // 3 catches up: the replicas become the target, 1 leaves the ISR and hands leadership to the first in-sync
    // target replica, in one record.
    let done = set_isr(&state, &[1, 2, 3]);
    assert_eq!(
        done,
        vec![record(0, &registration(&[3, 2], &[2, 3], 3, (1, 4), NONE))]
    );
    apply(&mut state, &done);
    assert!(list_partition_reassignments(&state, None).is_empty());
}

#[test]
fn a_leader_in_the_target_keeps_leading_and_the_leader_epoch_still_moves_as_a_replica_leaves() {
    let mut state = cluster(3, &[&[1, 2]]);
    start(&mut state, 0, Some(&[1, 3]));
    assert_eq!(
        partition(&state, 0),
        registration(&[1, 3, 2], &[1, 2], 1, (0, 1), (&[3], &[2]))
    );
    assert_eq!(
        set_isr(&state, &[1, 2, 3]),
        vec![record(0, &registration(&[1, 3], &[1, 3], 1, (1, 2), NONE))]
    );
}

#[test]
fn a_target_already_in_sync_completes_at_once() {
    let state = cluster(3, &[&[1, 2, 3]]);
    let (records, answer) = reassign(&state, 0, Some(&[2, 1]));
    assert!(answer.is_ok());
    assert_eq!(
        records,
        vec![record(0, &registration(&[2, 1], &[1, 2], 1, (1, 1), NONE))]
    );
}

#[test]
fn the_current_replicas_change_nothing_and_a_new_order_is_only_a_new_order() {
    let state = cluster(3, &[&[1, 2, 3]]);
    let (records, answer) = reassign(&state, 0, Some(&[1, 2, 3]));
    assert!(answer.is_ok());
    assert!(records.is_empty());
    let (records, answer) = reassign(&state, 0, Some(&[3, 1, 2]));
    assert!(answer.is_ok());
    assert_eq!(
        records,
        vec![record(
            0,
            &registration(&[3, 1, 2], &[1, 2, 3], 1, (0, 1), NONE)
        )]
    );
}

#[test]
fn cancelling_takes_out_the_replicas_being_added_in_sync_or_not() {
    let mut state = cluster(4, &[&[1, 2]]);
    start(&mut state, 0, Some(&[3, 4]));
    // 3 caught up, 4 has not: still in progress.
    sync(&mut state, &[1, 2, 3]);
    assert_eq!(
        partition(&state, 0),
        registration(&[3, 4, 1, 2], &[1, 2, 3], 1, (0, 2), (&[3, 4], &[1, 2]))
    );
    let (records, answer) = reassign(&state, 0, None);
    assert!(answer.is_ok());
    assert_eq!(
        records,
        vec![record(0, &registration(&[1, 2], &[1, 2], 1, (1, 3), NONE))]
    );
    apply(&mut state, &records);
    // Nothing left to cancel.
    let (records, answer) = reassign(&state, 0, None);
    assert!(records.is_empty());
    assert!(matches!(
        answer,
        Err(ControllerError::NoReassignmentInProgress(_))
    ));
}

#[test]
fn a_cancel_that_needs_an_unclean_election_is_refused_unless_the_topic_allows_one() {
    let mut state = cluster(3, &[&[1]]);
    start(&mut state, 0, Some(&[2, 3]));
    sync(&mut state, &[1, 2]);
    // The old replica is fenced: only the replica being added is in sync, and it leads.
    fence(&mut state, 1);
    assert_eq!(
        partition(&state, 0),
        registration(&[2, 3, 1], &[2], 2, (1, 3), (&[2, 3], &[1]))
    );
    let (records, answer) = reassign(&state, 0, None);
    assert!(records.is_empty());
    assert!(matches!(
        answer,
        Err(ControllerError::InvalidReplicaAssignment(_))
    ));
    apply(
        &mut state,
        &[MetadataRecord::Config {
            resource: ConfigResource::Topic("orders".into()),
            name: UNCLEAN_LEADER_ELECTION_ENABLE.into(),
            value: Some("true".into()),
        }],
    );
    // Allowed now: back to broker 1 alone, which, fenced, cannot lead yet.
    let (records, answer) = reassign(&state, 0, None);
    assert!(answer.is_ok());
    assert_eq!(
        records,
        vec![record(0, &registration(&[1], &[1], -1, (2, 4), NONE))]
    );
}

#[test]
fn fencing_a_removed_leader_elects_within_the_isr_and_the_reassignment_goes_on() {
    let mut state = cluster(3, &[&[1, 2]]);
    start(&mut state, 0, Some(&[2, 3]));
    fence(&mut state, 1);
    assert_eq!(
        partition(&state, 0),
        registration(&[2, 3, 1], &[2], 2, (1, 2), (&[3], &[1]))
    );
    assert_eq!(
        set_isr(&state, &[2, 3]),
        vec![record(0, &registration(&[2, 3], &[2, 3], 2, (2, 3), NONE))]
    );
}

#[test]
fn a_new_target_replaces_the_reassignment_in_progress() {
    let mut state = cluster(4, &[&[1, 2]]);
    start(&mut state, 0, Some(&[2, 3]));
    let (records, answer) = reassign(&state, 0, Some(&[2, 4]));
    assert!(answer.is_ok());
    assert_eq!(
        records,
        vec![record(
            0,
            &registration(&[2, 4, 1, 3], &[1, 2], 1, (0, 2), (&[4], &[1, 3]))
        )]
    );
}

#[test]
fn bad_targets_get_kafkas_errors_and_write_nothing() {
    let state = cluster(3, &[&[1, 2]]);
    type ErrorCheck = fn(&ControllerError) -> bool;
    let cases: Vec<(ReassignmentTarget, ErrorCheck)> = vec![
        (target("nope", 0, Some(&[1])), |e| {
            matches!(e, ControllerError::UnknownTopicOrPartition(_))
        }),
        (target("orders", 5, Some(&[1])), |e| {
            matches!(e, ControllerError::UnknownTopicOrPartition(_))
        }),
        (target("orders", 0, Some(&[])), |e| {
            matches!(e, ControllerError::InvalidReplicaAssignment(_))
        }),
        (target("orders", 0, Some(&[2, 2])), |e| {
            matches!(e, ControllerError::InvalidReplicaAssignment(_))
        }),
        (target("orders", 0, Some(&[2, 9])), |e| {
            matches!(e, ControllerError::InvalidReplicaAssignment(_))
        }),
        (target("orders", 0, None), |e| {
            matches!(e, ControllerError::NoReassignmentInProgress(_))
        }),
    ];
    for (target, expected) in cases {
        let result = alter_partition_reassignments(&state, std::slice::from_ref(&target), true);
        assert!(result.records.is_empty(), "{target:?}");
        match &result.response[0].result {
            Err(error) => assert!(expected(error), "{target:?}: {error:?}"),
            Ok(()) => panic!("{target:?} accepted"),
        }
    }
}

#[test]
fn a_request_naming_too_many_partitions_is_refused_whole() {
    let state = cluster(3, &[&[1, 2]]);
    let targets = vec![target("orders", 0, Some(&[2, 3])); MAX_REASSIGNMENTS_PER_REQUEST + 1];
    let result = alter_partition_reassignments(&state, &targets, true);
    assert!(result.records.is_empty());
    assert_eq!(result.response.len(), targets.len());
    assert!(result
        .response
        .iter()
        .all(|r| matches!(r.result, Err(ControllerError::InvalidRequest(_)))));
}

#[test]
fn without_replication_factor_changes_only_a_target_of_the_same_size_is_taken() {
    let mut state = cluster(3, &[&[1, 2]]);
    let grow =
        alter_partition_reassignments(&state, &[target("orders", 0, Some(&[1, 2, 3]))], false);
    assert!(grow.records.is_empty());
    match &grow.response[0].result {
        Err(ControllerError::InvalidReplicationFactor(message)) => {
            assert_eq!(message, "The replication factor is changed from 2 to 3")
        }
        other => panic!("{other:?}"),
    }
    let moved = alter_partition_reassignments(&state, &[target("orders", 0, Some(&[2, 3]))], false);
    assert!(moved.response[0].result.is_ok());
    apply(&mut state, &moved.records);
    // In progress, the partition counts as the size it is headed for; a cancellation is never refused for it.
    let again = alter_partition_reassignments(&state, &[target("orders", 0, Some(&[3, 1]))], false);
    assert!(again.response[0].result.is_ok());
    let cancel = alter_partition_reassignments(&state, &[target("orders", 0, None)], false);
    assert!(cancel.response[0].result.is_ok());
}

#[test]
fn a_partition_named_twice_is_changed_from_what_the_first_made_of_it() {
    let state = cluster(3, &[&[1, 2]]);
    let result = alter_partition_reassignments(
        &state,
        &[
            target("orders", 0, Some(&[2, 3])),
            target("orders", 0, None),
        ],
        true,
    );
    assert!(result.response.iter().all(|r| r.result.is_ok()));
    assert_eq!(
        result.records,
        vec![
            record(
                0,
                &registration(&[2, 3, 1], &[1, 2], 1, (0, 1), (&[3], &[1]))
            ),
            record(0, &registration(&[2, 1], &[1, 2], 1, (1, 2), NONE)),
        ]
    );
}

#[test]
fn listing_names_only_partitions_in_progress() {
    let mut state = cluster(3, &[&[1, 2], &[2, 3], &[3, 1]]);
    start(&mut state, 0, Some(&[2, 3]));
    start(&mut state, 2, Some(&[3, 2]));
    let ongoing =
        |partition: i32, replicas: &[i32], adding: &[i32], removing: &[i32]| OngoingReassignment {
            topic: "orders".into(),
            partition: PartitionIndex(partition),
            replicas: ids(replicas),
            adding_replicas: ids(adding),
            removing_replicas: ids(removing),
        };
    assert_eq!(
        list_partition_reassignments(&state, None),
        vec![
            ongoing(0, &[2, 3, 1], &[3], &[1]),
            ongoing(2, &[3, 2, 1], &[2], &[1]),
        ]
    );
    let asked = [
        (
            "orders".to_string(),
            vec![PartitionIndex(2), PartitionIndex(1), PartitionIndex(7)],
        ),
        ("nope".to_string(), vec![PartitionIndex(0)]),
    ];
    assert_eq!(
        list_partition_reassignments(&state, Some(&asked)),
        vec![ongoing(2, &[3, 2, 1], &[2], &[1])]
    );
}

#[test]
fn reassignments_survive_a_snapshot_and_older_records_read_without_them(
) -> Result<(), serde_json::Error> {
    let mut state = cluster(3, &[&[1, 2]]);
    start(&mut state, 0, Some(&[2, 3]));
    assert_eq!(ControllerState::from_records(&state.to_records()), state);
    // A partition with no reassignment writes no reassignment fields, and a record without them has none.
    let plain = record(0, &registration(&[1], &[1], 1, (0, 0), NONE));
    let json = serde_json::to_string(&plain)?;
    assert!(!json.contains("adding_replicas"), "{json}");
    let back: MetadataRecord = serde_json::from_str(&json)?;
    assert_eq!(back, plain);
    let answer = ReassignmentResult {
        topic: "orders".into(),
        partition: PartitionIndex(0),
        result: Err(ControllerError::NoReassignmentInProgress("none".into())),
    };
    let back: ReassignmentResult = serde_json::from_str(&serde_json::to_string(&answer)?)?;
    assert!(matches!(
        back.result,
        Err(ControllerError::NoReassignmentInProgress(_))
    ));
    Ok(())
}
