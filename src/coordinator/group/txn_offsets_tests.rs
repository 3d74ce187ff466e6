//! Transactional offset commits driven through the shard's handlers and replay, with the partition kept as a list
//! of entries (plain records, transactional records of a producer, markers) so that a reload can be replayed from
//! it, as the runtime would from the log.

use bytes::Bytes;

use super::classic::GroupState;
use super::ids::GroupId;
use super::offsets::{CommitPartition, CommitRequest, FetchedOffset};
use super::records::{CoordinatorRecord, GroupMetadataValue, MemberMetadata};
use super::shard::{GroupCoordinatorShard, Output};
use super::txn_offsets::TxnCommitRequest;
use super::GroupError;
use crate::config::BrokerConfig;
use crate::ids::{ProducerEpoch, ProducerId};

/// One entry of the partition, as the runtime would replay it.
#[derive(Debug, Clone)]
enum Entry {
    Plain(CoordinatorRecord),
    Transactional(ProducerId, CoordinatorRecord),
    Marker(ProducerId, bool),
}

struct Partition {
    shard: GroupCoordinatorShard,
    now: i64,
    log: Vec<Entry>,
}

const P1: ProducerId = ProducerId(1);
const P2: ProducerId = ProducerId(2);

fn g() -> GroupId {
    "g".into()
}

impl Partition {
    fn new() -> Partition {
        let mut shard = GroupCoordinatorShard::new(BrokerConfig::default().group_coordinator);
        shard.on_loaded(0);
        Partition {
            shard,
            now: 1_000,
            log: Vec::new(),
        }
    }

    fn replay(shard: &mut GroupCoordinatorShard, entry: &Entry) {
        match entry {
            Entry::Plain(record) => shard.replay(record),
            Entry::Transactional(producer_id, record) => {
                shard.replay_transactional(*producer_id, record)
            }
            Entry::Marker(producer_id, commit) => shard.end_transaction(*producer_id, *commit),
        }
    }

    /// Appends and replays a handler's records, as the runtime does once the log took them.
    fn write<R>(&mut self, transaction: Option<ProducerId>, output: Output<R>) -> R {
        for record in output.records {
            let entry = match transaction {
                Some(producer_id) => Entry::Transactional(producer_id, record),
                None => Entry::Plain(record),
            };
            Self::replay(&mut self.shard, &entry);
            self.log.push(entry);
        }
        output.response
    }

    /// A TxnOffsetCommit of `producer_id` from outside group management (v0..=v2, or a v3 producer without a
    /// group generation).
    fn txn_commit(
        &mut self,
        producer_id: ProducerId,
        partitions: &[(&str, i32, i64)],
    ) -> Vec<Option<GroupError>> {
        self.txn_commit_as(producer_id, "", -1, partitions)
    }

    fn txn_commit_as(
        &mut self,
        producer_id: ProducerId,
        member_id: &str,
        generation: i32,
        partitions: &[(&str, i32, i64)],
    ) -> Vec<Option<GroupError>> {
        let request = TxnCommitRequest {
            group_id: g(),
            producer_id,
            producer_epoch: ProducerEpoch(0),
            member_id: member_id.into(),
            group_instance_id: None,
            generation,
            partitions: partitions
                .iter()
                .map(|(topic, partition, offset)| commit_partition(topic, *partition, *offset))
                .collect(),
        };
        let output = self.shard.txn_commit_offsets(self.now, &request);
        self.write(Some(producer_id), output)
    }

    fn plain_commit(&mut self, topic: &str, partition: i32, offset: i64) {
        let request = CommitRequest {
            group_id: g(),
            member_id: "".into(),
            group_instance_id: None,
            generation: -1,
            retention_ms: None,
            partitions: vec![commit_partition(topic, partition, offset)],
        };
        let output = self.shard.commit_offsets(self.now, &request);
        assert_eq!(self.write(None, output), vec![None]);
    }

    /// The transaction coordinator's marker reaching the partition.
    fn end(&mut self, producer_id: ProducerId, commit: bool) {
        let entry = Entry::Marker(producer_id, commit);
        Self::replay(&mut self.shard, &entry);
        self.log.push(entry);
    }

    fn fetch(&self, topic: &str, partition: i32, require_stable: bool) -> FetchedOffset {
        let wanted = [(topic.to_string(), vec![partition])];
        self.shard
            .fetch_offsets(&g(), Some(&wanted), require_stable)[0]
            .1[0]
            .clone()
    }

    fn offset(&self, topic: &str, partition: i32) -> i64 {
        self.fetch(topic, partition, false).offset
    }

    fn reloaded(&self) -> GroupCoordinatorShard {
        let mut shard = GroupCoordinatorShard::new(self.shard.config.clone());
        for entry in &self.log {
            Self::replay(&mut shard, entry);
        }
        shard.on_loaded(self.now);
        shard
    }
}

fn commit_partition(topic: &str, partition: i32, offset: i64) -> CommitPartition {
    CommitPartition {
        topic: topic.into(),
        partition,
        offset,
        leader_epoch: 3,
        metadata: Some("m".into()),
    }
}

/// A Stable classic group with one member "a" at `generation`, as its GroupMetadata record leaves it.
fn stable_group(p: &mut Partition, generation: i32) {
    let record = CoordinatorRecord::GroupMetadata {
        group: g(),
        value: Some(GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation,
            protocol: Some("range".into()),
            leader: Some("a".into()),
            current_state_timestamp_ms: p.now,
            members: vec![MemberMetadata {
                member_id: "a".into(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "h".into(),
                rebalance_timeout_ms: 60_000,
                session_timeout_ms: 10_000,
                subscription: Bytes::new(),
                assignment: Bytes::new(),
            }],
        }),
    };
    let mut output: Output<()> = Output::new(());
    output.records.push(record);
    p.write(None, output);
    assert_eq!(
        p.shard.group(&g()).map(|g| g.state),
        Some(GroupState::Stable)
    );
}

#[test]
fn pending_offsets_become_the_committed_ones_on_commit() {
    let mut p = Partition::new();
    assert_eq!(
        p.txn_commit(P1, &[("t", 0, 10), ("t", 1, 11)]),
        vec![None, None]
    );
    assert_eq!(p.offset("t", 0), -1, "pending, not committed");
    assert_eq!(
        p.fetch("t", 0, true).error,
        Some(GroupError::UnstableOffsetCommit)
    );
    assert!(p.shard.has_pending_offset(&g(), "t", 1));

    p.end(P1, true);
    let fetched = p.fetch("t", 0, true);
    assert_eq!((fetched.offset, fetched.error), (10, None));
    assert_eq!(fetched.leader_epoch, 3);
    assert_eq!(fetched.metadata, "m");
    assert_eq!(p.offset("t", 1), 11);
    assert!(p.shard.pending_view().is_empty());
    assert!(p.shard.open_transactions.is_empty());
}

#[test]
fn an_abort_drops_the_pending_offsets_and_the_committed_ones_stay() {
    let mut p = Partition::new();
    p.plain_commit("t", 0, 5);
    p.txn_commit(P1, &[("t", 0, 10)]);
    assert_eq!(
        p.offset("t", 0),
        5,
        "without require_stable: the committed offset"
    );
    let unstable = p.fetch("t", 0, true);
    assert_eq!(
        (unstable.offset, unstable.error),
        (-1, Some(GroupError::UnstableOffsetCommit))
    );
    // Every committed partition, when no topics are named, reports the same.
    let all = p.shard.fetch_offsets(&g(), None, true);
    assert_eq!(all[0].1[0].error, Some(GroupError::UnstableOffsetCommit));

    p.end(P1, false);
    assert_eq!(p.fetch("t", 0, true), p.fetch("t", 0, false));
    assert_eq!(p.offset("t", 0), 5);
    assert!(!p.shard.has_pending_offset(&g(), "t", 0));
}

#[test]
fn a_marker_applied_twice_or_for_another_producer_changes_nothing() {
    let mut p = Partition::new();
    p.txn_commit(P1, &[("t", 0, 10)]);
    p.txn_commit(P2, &[("t", 1, 20)]);
    p.end(P1, true);
    p.end(P1, true);
    p.end(ProducerId(99), false);
    assert_eq!(p.offset("t", 0), 10);
    assert_eq!(p.offset("t", 1), -1);
    assert_eq!(
        p.shard.pending_view(),
        vec![(P2, g(), "t".to_string(), 1, 20)]
    );
    assert_eq!(p.shard.open_transactions[&g()].len(), 1);
}

#[test]
fn the_later_record_wins_between_a_plain_and_a_transactional_commit() {
    let mut p = Partition::new();
    // Plain commit after the transactional one: it stands when the transaction commits.
    p.txn_commit(P1, &[("t", 0, 10)]);
    p.plain_commit("t", 0, 20);
    // Plain commit before it: the transaction's offset replaces it.
    p.plain_commit("t", 1, 5);
    p.txn_commit(P1, &[("t", 1, 15)]);
    p.end(P1, true);
    assert_eq!(p.offset("t", 0), 20);
    assert_eq!(p.offset("t", 1), 15);
    // The later of two commits of one transaction is the one it leaves.
    p.txn_commit(P2, &[("t", 2, 1)]);
    p.txn_commit(P2, &[("t", 2, 2)]);
    p.end(P2, true);
    assert_eq!(p.offset("t", 2), 2);
}

#[test]
fn a_reload_replays_to_the_same_state() {
    let mut p = Partition::new();
    p.plain_commit("t", 0, 1);
    p.txn_commit(P1, &[("t", 0, 10), ("u", 0, 7)]);
    p.txn_commit(P2, &[("t", 1, 20)]);
    p.plain_commit("t", 1, 21);
    p.end(P1, true);
    p.end(P2, false);
    p.txn_commit(P2, &[("t", 2, 30)]);
    p.txn_commit(P1, &[("t", 0, 11)]);
    let reloaded = p.reloaded();
    for stable in [false, true] {
        assert_eq!(
            reloaded.fetch_offsets(&g(), None, stable),
            p.shard.fetch_offsets(&g(), None, stable)
        );
        let wanted = [("t".to_string(), vec![0, 1, 2])];
        assert_eq!(
            reloaded.fetch_offsets(&g(), Some(&wanted), stable),
            p.shard.fetch_offsets(&g(), Some(&wanted), stable)
        );
    }
    assert_eq!(reloaded.pending_view(), p.shard.pending_view());
    assert_eq!(reloaded.open_transactions, p.shard.open_transactions);
    assert_eq!(reloaded.offsets, p.shard.offsets);
    assert_eq!(p.offset("t", 0), 10);
    assert_eq!(p.offset("u", 0), 7);
    assert_eq!(p.offset("t", 1), 21);
    assert_eq!(
        p.fetch("t", 2, true).error,
        Some(GroupError::UnstableOffsetCommit)
    );
}

#[test]
fn a_group_with_only_pending_offsets_has_none_committed_and_outlives_expiry_until_the_transaction_ends(
) {
    let mut p = Partition::new();
    p.txn_commit(P1, &[("t", 0, 10)]);
    // Kafka's simple group: it exists (Empty, no protocol type), but has no committed offsets yet.
    let listed = p.shard.list_groups(&[]);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, GroupState::Empty);
    assert!(p.shard.fetch_offsets(&g(), None, false).is_empty());
    assert!(p.shard.fetch_offsets(&g(), None, true).is_empty());

    let retention = p.shard.config.offsets_retention_ms;
    let now = p.now + retention + 1;
    let output = p.shard.fire_timers(now);
    assert!(output.records.is_empty(), "{:?}", output.records);
    assert!(
        p.shard.group(&g()).is_some(),
        "an open transaction keeps the group"
    );

    p.end(P1, false);
    let now = now + p.shard.config.offsets_retention_check_interval_ms;
    let output = p.shard.fire_timers(now);
    assert!(matches!(
        output.records.as_slice(),
        [CoordinatorRecord::GroupMetadata { value: None, .. }]
    ));
    assert!(p.shard.group(&g()).is_none(), "aborted: nothing keeps it");
}

#[test]
fn expiry_keeps_a_committed_offset_that_a_transaction_will_replace() {
    let mut p = Partition::new();
    p.plain_commit("t", 0, 5);
    p.plain_commit("t", 1, 6);
    p.txn_commit(P1, &[("t", 0, 10)]);
    let now = p.now + p.shard.config.offsets_retention_ms + 1;
    let output = p.shard.fire_timers(now);
    let tombstoned: Vec<i32> = output
        .records
        .iter()
        .filter_map(|r| match r {
            CoordinatorRecord::OffsetCommit {
                partition,
                value: None,
                ..
            } => Some(*partition),
            _ => None,
        })
        .collect();
    assert_eq!(tombstoned, vec![1]);
    assert!(p.shard.group(&g()).is_some());
    assert_eq!(p.offset("t", 0), 5);
}

#[test]
fn deleting_the_group_or_an_offset_drops_pending_offsets_too() {
    let mut p = Partition::new();
    p.plain_commit("t", 0, 5);
    p.txn_commit(P1, &[("t", 0, 10), ("t", 1, 11), ("u", 0, 1)]);
    p.txn_commit(P2, &[("t", 1, 12)]);

    let output = p.shard.delete_offsets(&g(), &[("u".into(), 0)]);
    assert_eq!(p.write(None, output), Ok(vec![None]));
    assert!(
        !p.shard.has_pending_offset(&g(), "u", 0),
        "a tombstone drops it"
    );

    let output = p.shard.delete_groups(&[g()]);
    let tombstones: Vec<(String, i32)> = output
        .records
        .iter()
        .filter_map(|r| match r {
            CoordinatorRecord::OffsetCommit {
                topic,
                partition,
                value: None,
                ..
            } => Some((topic.clone(), *partition)),
            _ => None,
        })
        .collect();
    assert_eq!(
        tombstones,
        vec![("t".to_string(), 0), ("t".to_string(), 1)],
        "one tombstone per partition, committed or only pending"
    );
    assert_eq!(p.write(None, output), vec![None]);
    assert!(p.shard.group(&g()).is_none());
    assert!(p.shard.pending_view().is_empty());
    // The transactions end later; nothing comes back.
    p.end(P1, true);
    p.end(P2, true);
    assert_eq!(p.offset("t", 0), -1);
    assert_eq!(p.offset("t", 1), -1);
    assert!(p.shard.open_transactions.is_empty());
}

#[test]
fn v3_commits_are_checked_against_the_group_and_older_ones_are_not() {
    let mut p = Partition::new();
    assert_eq!(
        p.txn_commit_as(P1, "a", 1, &[("t", 0, 1)]),
        vec![Some(GroupError::IllegalGeneration)],
        "a generation for a group that does not exist"
    );
    stable_group(&mut p, 4);
    assert_eq!(p.txn_commit_as(P1, "a", 4, &[("t", 0, 1)]), vec![None]);
    assert_eq!(
        p.txn_commit_as(P1, "a", 3, &[("t", 0, 1)]),
        vec![Some(GroupError::IllegalGeneration)]
    );
    assert_eq!(
        p.txn_commit_as(P1, "zombie", 4, &[("t", 0, 1)]),
        vec![Some(GroupError::UnknownMemberId)]
    );
    assert_eq!(
        p.txn_commit(P2, &[("t", 1, 2)]),
        vec![None],
        "before v3: no member to check, even in a Stable group"
    );
    assert_eq!(p.shard.pending_view().len(), 2);
}

#[test]
fn oversized_metadata_is_refused_per_partition() {
    let mut p = Partition::new();
    let max = p.shard.config.offset_metadata_max_bytes;
    let mut big = commit_partition("t", 1, 1);
    big.metadata = Some("x".repeat(max + 1));
    let request = TxnCommitRequest {
        group_id: g(),
        producer_id: P1,
        producer_epoch: ProducerEpoch(0),
        member_id: "".into(),
        group_instance_id: None,
        generation: -1,
        partitions: vec![commit_partition("t", 0, 1), big],
    };
    let output = p.shard.txn_commit_offsets(p.now, &request);
    assert_eq!(output.records.len(), 1);
    assert_eq!(
        p.write(Some(P1), output),
        vec![None, Some(GroupError::OffsetMetadataTooLarge)]
    );
}
