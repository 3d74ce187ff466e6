//! The group state machine driven through its handlers, records and timers with a hand-moved clock, in the style
//! of Kafka's GroupMetadataManagerTest: what the runtime does (replay the records, deliver the replies, fire due
//! timers) is done here by [`Harness`].

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};

use super::classic::GroupState;
use super::ids::{GroupId, GroupInstanceId, MemberId};
use super::offsets::{CommitPartition, CommitRequest};
use super::records::CoordinatorRecord;
use super::shard::{
    GroupCoordinatorShard, JoinRequest, JoinResult, Output, Reply, SyncRequest, SyncResult,
    TimerKey,
};
use super::GroupError;
use crate::config::BrokerConfig;
use crate::coordinator::runtime::ResponderId;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 60_000;

struct Harness {
    shard: GroupCoordinatorShard,
    now: i64,
    next: u64,
    replies: HashMap<ResponderId, Reply>,
    log: Vec<CoordinatorRecord>,
}

impl Harness {
    fn new() -> Harness {
        Self::with_delay(0)
    }

    fn with_delay(initial_delay_ms: i64) -> Harness {
        let mut config = BrokerConfig::default().group_coordinator;
        config.initial_rebalance_delay_ms = initial_delay_ms;
        config.min_session_timeout_ms = 1_000;
        let mut shard = GroupCoordinatorShard::new(config);
        shard.on_loaded(0);
        Harness {
            shard,
            now: 0,
            next: 0,
            replies: HashMap::new(),
            log: Vec::new(),
        }
    }

    fn apply<R>(&mut self, output: Output<R>, replayed: bool) -> R {
        if !replayed {
            for record in &output.records {
                self.shard.replay(record);
            }
        }
        self.log.extend(output.records);
        self.replies.extend(output.replies);
        output.response
    }

    fn responder(&mut self) -> ResponderId {
        self.next += 1;
        ResponderId(self.next)
    }

    fn advance(&mut self, ms: i64) {
        self.now += ms;
        let output = self.shard.fire_timers(self.now);
        self.apply(output, true);
    }

    fn join(
        &mut self,
        member_id: impl AsRef<str>,
        instance: Option<&str>,
        v4: bool,
    ) -> ResponderId {
        let responder = self.responder();
        let request = JoinRequest {
            group_id: g(),
            member_id: member_id.as_ref().into(),
            group_instance_id: instance.map(GroupInstanceId::from),
            fresh_member_id: format!("client-{}", self.next).into(),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: SESSION_MS,
            rebalance_timeout_ms: REBALANCE_MS,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), subscription(&["t"]))],
            require_known_member_id: v4,
        };
        let output = self.shard.join(self.now, request, responder);
        self.apply(output, false);
        responder
    }

    fn join_result(&mut self, responder: ResponderId) -> Option<JoinResult> {
        match self.replies.remove(&responder)? {
            Reply::Join(result) => Some(result),
            Reply::Sync(_) => panic!("a sync reply to a join"),
        }
    }

    fn sync(
        &mut self,
        member_id: impl AsRef<str>,
        generation: i32,
        assignments: &[(&MemberId, &str)],
    ) -> ResponderId {
        let responder = self.responder();
        let request = SyncRequest {
            group_id: g(),
            member_id: member_id.as_ref().into(),
            group_instance_id: None,
            generation,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: assignments
                .iter()
                .map(|(m, a)| ((*m).clone(), Bytes::copy_from_slice(a.as_bytes())))
                .collect(),
        };
        let output = self.shard.sync(self.now, request, responder);
        self.apply(output, false);
        responder
    }

    fn sync_result(&mut self, responder: ResponderId) -> Option<SyncResult> {
        match self.replies.remove(&responder)? {
            Reply::Sync(result) => Some(result),
            Reply::Join(_) => panic!("a join reply to a sync"),
        }
    }

    fn heartbeat(&mut self, member_id: impl AsRef<str>, generation: i32) -> Result<(), GroupError> {
        let member_id = MemberId::from(member_id.as_ref());
        let output = self
            .shard
            .heartbeat(self.now, &g(), &member_id, None, generation);
        self.apply(output, false)
    }

    fn state(&self) -> GroupState {
        self.shard
            .group(&g())
            .map(|g| g.state)
            .unwrap_or(GroupState::Dead)
    }

    /// One member joins (KIP-394 two-step) and syncs; returns its id and generation.
    fn stable_single_member(&mut self) -> (MemberId, i32) {
        let first = self.join("", None, true);
        let required = self.join_result(first).expect("member id required at once");
        assert_eq!(required.error, Some(GroupError::MemberIdRequired));
        let joined = self.join(&required.member_id, None, true);
        self.advance(0);
        let result = self
            .join_result(joined)
            .expect("join completes after the initial delay");
        assert_eq!(result.error, None);
        let sync = self.sync(
            &result.member_id,
            result.generation,
            &[(&result.member_id, "a1")],
        );
        assert_eq!(
            self.sync_result(sync).expect("leader synced").assignment,
            "a1"
        );
        (result.member_id, result.generation)
    }

    fn commit(
        &mut self,
        member_id: impl AsRef<str>,
        generation: i32,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Option<GroupError> {
        let request = CommitRequest {
            group_id: g(),
            member_id: member_id.as_ref().into(),
            group_instance_id: None,
            generation,
            retention_ms: None,
            partitions: vec![CommitPartition {
                topic: topic.into(),
                partition,
                offset,
                leader_epoch: -1,
                metadata: Some("meta".into()),
            }],
        };
        let output = self.shard.commit_offsets(self.now, &request);
        self.apply(output, false).pop().flatten()
    }
}

/// The group every test drives.
fn g() -> GroupId {
    "g".into()
}

/// A ConsumerProtocolSubscription v0 for these topics.
fn subscription(topics: &[&str]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    buf.put_i32(topics.len() as i32);
    for t in topics {
        buf.put_i16(t.len() as i16);
        buf.put_slice(t.as_bytes());
    }
    buf.put_i32(-1);
    buf.freeze()
}

#[test]
fn first_join_requires_a_member_id_then_completes_after_the_initial_delay() {
    let mut h = Harness::with_delay(3_000);
    let first = h.join("", None, true);
    let required = h.join_result(first).expect("answered at once");
    assert_eq!(required.error, Some(GroupError::MemberIdRequired));
    assert!(required.member_id.as_str().starts_with("client-"));
    let joined = h.join(&required.member_id, None, true);
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    h.advance(2_999);
    assert!(
        h.join_result(joined).is_none(),
        "parked during the initial delay"
    );
    h.advance(1);
    let result = h.join_result(joined).expect("join phase over");
    assert_eq!(result.generation, 1);
    assert_eq!(result.leader, required.member_id);
    assert_eq!(result.protocol_name.as_deref(), Some("range"));
    assert_eq!(
        result.members.len(),
        1,
        "the leader gets every member's metadata"
    );
    assert_eq!(h.state(), GroupState::CompletingRebalance);
}

#[test]
fn join_before_v4_gets_a_member_id_at_once() {
    let mut h = Harness::new();
    let joined = h.join("", None, false);
    h.advance(0);
    let result = h.join_result(joined).expect("joined");
    assert_eq!(result.error, None);
    assert_eq!(result.generation, 1);
}

#[test]
fn new_members_during_the_initial_delay_extend_it_up_to_the_rebalance_timeout() {
    let mut h = Harness::with_delay(3_000);
    let a = h.join("", None, false);
    h.advance(2_000);
    let b = h.join("", None, false);
    h.advance(1_000);
    assert!(
        h.join_result(a).is_none(),
        "a new member arrived: the delay is extended"
    );
    h.advance(3_000);
    let (ra, rb) = (h.join_result(a).expect("a"), h.join_result(b).expect("b"));
    assert_eq!((ra.generation, rb.generation), (1, 1));
    assert_eq!(ra.leader, rb.leader);
}

#[test]
fn leader_sync_writes_the_assignment_and_the_group_becomes_stable() {
    let mut h = Harness::new();
    let (member, generation) = h.stable_single_member();
    assert_eq!(h.state(), GroupState::Stable);
    let record = h.log.last().expect("group metadata written");
    let CoordinatorRecord::GroupMetadata {
        value: Some(value), ..
    } = record
    else {
        panic!("expected group metadata, got {record:?}");
    };
    assert_eq!(value.generation, generation);
    assert_eq!(value.members[0].member_id, member);
    assert_eq!(value.members[0].assignment, "a1");
    assert_eq!(h.heartbeat(&member, generation), Ok(()));
    assert_eq!(
        h.heartbeat(&member, generation + 1),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        h.heartbeat("nobody", generation),
        Err(GroupError::UnknownMemberId)
    );
}

#[test]
fn a_second_member_triggers_a_rebalance_that_completes_when_all_rejoined() {
    let mut h = Harness::new();
    let (a, generation) = h.stable_single_member();
    let b_first = h.join("", None, true);
    let b_id = h.join_result(b_first).expect("member id").member_id;
    let b = h.join(&b_id, None, true);
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    assert_eq!(
        h.heartbeat(&a, generation),
        Err(GroupError::RebalanceInProgress)
    );
    assert!(
        h.join_result(b).is_none(),
        "waits for the old member to rejoin"
    );
    let a_join = h.join(&a, None, true);
    let (ra, rb) = (
        h.join_result(a_join).expect("a"),
        h.join_result(b).expect("b"),
    );
    assert_eq!(ra.generation, generation + 1);
    assert_eq!(ra.leader, a, "the first member stays leader");
    assert_eq!(ra.members.len(), 2);
    assert!(rb.members.is_empty(), "followers get no member list");
    // The follower syncs first and waits for the leader's assignment.
    let b_sync = h.sync(&b_id, rb.generation, &[]);
    assert!(h.sync_result(b_sync).is_none());
    let a_sync = h.sync(&a, ra.generation, &[(&a, "pa"), (&b_id, "pb")]);
    assert_eq!(h.sync_result(a_sync).expect("leader").assignment, "pa");
    assert_eq!(h.sync_result(b_sync).expect("follower").assignment, "pb");
    assert_eq!(h.state(), GroupState::Stable);
}

#[test]
fn a_member_that_stops_heartbeating_is_removed_after_its_session_timeout() {
    let mut h = Harness::new();
    let (a, generation) = h.stable_single_member();
    let b = h.join("", None, false);
    let a_join = h.join(&a, None, false);
    let (ra, rb) = (
        h.join_result(a_join).expect("a"),
        h.join_result(b).expect("b"),
    );
    let b_id = rb.member_id.clone();
    let a_sync = h.sync(&a, ra.generation, &[(&a, "pa"), (&b_id, "pb")]);
    h.sync_result(a_sync).expect("synced");
    let b_sync = h.sync(&b_id, rb.generation, &[]);
    h.sync_result(b_sync).expect("synced");
    // a keeps heartbeating, b goes silent.
    for _ in 0..3 {
        h.advance(3_000);
        assert_eq!(h.heartbeat(&a, generation + 1), Ok(()));
    }
    h.advance(1_000);
    assert_eq!(
        h.state(),
        GroupState::PreparingRebalance,
        "b expired after {SESSION_MS} ms"
    );
    assert!(!h
        .shard
        .group(&g())
        .expect("group")
        .members
        .contains_key(&b_id));
    assert_eq!(
        h.heartbeat(&a, generation + 1),
        Err(GroupError::RebalanceInProgress)
    );
    let rejoin = h.join(&a, None, false);
    let result = h
        .join_result(rejoin)
        .expect("only a left: completes at once");
    assert_eq!(result.generation, generation + 2);
    assert_eq!(result.members.len(), 1);
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_timeout() {
    let mut h = Harness::new();
    let (a, _) = h.stable_single_member();
    let b = h.join("", None, false);
    // a heartbeats (so its session holds) but never rejoins.
    for _ in 0..(REBALANCE_MS / 5_000) {
        h.advance(5_000);
        let _ = h.heartbeat(&a, 1);
    }
    let result = h
        .join_result(b)
        .expect("completed by the rebalance timeout");
    assert_eq!(result.error, None);
    assert_eq!(result.leader, result.member_id, "the joined member leads");
    assert!(!h.shard.group(&g()).expect("group").members.contains_key(&a));
}

#[test]
fn a_follower_that_never_syncs_is_removed_when_the_sync_phase_times_out() {
    let mut h = Harness::new();
    let (a, _) = h.stable_single_member();
    let b = h.join("", None, false);
    let a_join = h.join(&a, None, false);
    let ra = h.join_result(a_join).expect("a");
    let b_id = h.join_result(b).expect("b").member_id;
    let a_sync = h.sync(&a, ra.generation, &[(&a, "pa"), (&b_id, "pb")]);
    h.sync_result(a_sync).expect("synced");
    for _ in 0..(REBALANCE_MS / 5_000) {
        h.advance(5_000);
        let _ = h.heartbeat(&a, ra.generation);
        let _ = h.heartbeat(&b_id, ra.generation);
    }
    assert!(!h
        .shard
        .group(&g())
        .expect("group")
        .members
        .contains_key(&b_id));
    assert_eq!(h.state(), GroupState::PreparingRebalance);
}

#[test]
fn leave_group_rebalances_and_the_last_leave_empties_the_group() {
    let mut h = Harness::new();
    let (a, generation) = h.stable_single_member();
    let output = h
        .shard
        .leave(h.now, &g(), &[(a.clone(), None), ("ghost".into(), None)]);
    let errors = h.apply(output, false).expect("group exists");
    assert_eq!(errors, vec![None, Some(GroupError::UnknownMemberId)]);
    assert_eq!(h.state(), GroupState::Empty);
    let CoordinatorRecord::GroupMetadata {
        value: Some(value), ..
    } = h.log.last().expect("record")
    else {
        panic!("expected the empty group's metadata");
    };
    assert_eq!(value.generation, generation + 1);
    assert!(value.members.is_empty());
}

#[test]
fn a_restarted_static_member_gets_its_assignment_back_without_a_rebalance() {
    let mut h = Harness::new();
    let a = h.join("", Some("instance-a"), true);
    h.advance(0);
    let ra = h
        .join_result(a)
        .expect("static members join without MEMBER_ID_REQUIRED");
    let b = h.join("", None, false);
    let a2 = h.join(&ra.member_id, Some("instance-a"), true);
    let ra2 = h.join_result(a2).expect("a");
    let rb = h.join_result(b).expect("b");
    let sync_a = h.sync(
        &ra2.member_id,
        ra2.generation,
        &[(&ra2.member_id, "pa"), (&rb.member_id, "pb")],
    );
    h.sync_result(sync_a).expect("synced");
    let sync_b = h.sync(&rb.member_id, rb.generation, &[]);
    h.sync_result(sync_b).expect("synced");
    let generation = ra2.generation;

    // The static member restarts: a new process, no member id, the same instance id.
    let restarted = h.join("", Some("instance-a"), true);
    let result = h
        .join_result(restarted)
        .expect("answered without a rebalance");
    assert_eq!(result.error, None);
    assert_eq!(
        result.generation, generation,
        "same generation: no rebalance"
    );
    assert_ne!(result.member_id, ra.member_id);
    assert_eq!(h.state(), GroupState::Stable);
    assert_eq!(
        h.heartbeat(&rb.member_id, generation),
        Ok(()),
        "b sees no rebalance"
    );
    let sync = h.sync(&result.member_id, generation, &[]);
    assert_eq!(h.sync_result(sync).expect("stable").assignment, "pa");
    // The old incarnation is fenced.
    let output = h.shard.heartbeat(
        h.now,
        &g(),
        &ra.member_id,
        Some(&"instance-a".into()),
        generation,
    );
    assert_eq!(h.apply(output, false), Err(GroupError::FencedInstanceId));
    // LeaveGroup by instance id alone (KIP-345) removes it.
    let output = h.shard.leave(
        h.now,
        &g(),
        &[(MemberId::UNKNOWN, Some("instance-a".into()))],
    );
    assert_eq!(h.apply(output, false), Ok(vec![None]));
    assert_eq!(h.state(), GroupState::PreparingRebalance);
}

#[test]
fn offsets_commit_fetch_and_survive_a_reload_from_the_records() {
    let mut h = Harness::new();
    let (a, generation) = h.stable_single_member();
    assert_eq!(h.commit(&a, generation, "t", 0, 42), None);
    assert_eq!(
        h.commit(&a, generation + 5, "t", 1, 7),
        Some(GroupError::IllegalGeneration)
    );
    assert_eq!(
        h.commit("ghost", generation, "t", 1, 7),
        Some(GroupError::UnknownMemberId)
    );
    let wanted = [("t".to_string(), vec![0, 1])];
    let fetched = h.shard.fetch_offsets(&g(), Some(&wanted), false);
    assert_eq!(fetched[0].1[0].offset, 42);
    assert_eq!(fetched[0].1[0].metadata, "meta");
    assert_eq!(fetched[0].1[1].offset, -1, "never committed");

    // A new shard replaying the partition holds the same state.
    let mut loaded = GroupCoordinatorShard::new(h.shard.config.clone());
    for record in &h.log {
        loaded.replay(record);
    }
    assert_eq!(loaded.fetch_offsets(&g(), Some(&wanted), false), fetched);
    let group = loaded.group(&g()).expect("group loaded");
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(group.generation, generation);
    assert_eq!(group.members[&a].assignment, "a1");
}

#[test]
fn simple_consumer_commits_create_an_empty_group() {
    let mut h = Harness::new();
    assert_eq!(
        h.commit("", 5, "t", 0, 1),
        Some(GroupError::IllegalGeneration)
    );
    assert_eq!(h.commit("", -1, "t", 0, 1), None);
    assert_eq!(h.state(), GroupState::Empty);
    let listed = h.shard.list_groups(&["empty".into()]);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].protocol_type, "");
    assert!(h.shard.list_groups(&["Stable".into()]).is_empty());
}

#[test]
fn delete_groups_refuses_non_empty_groups_and_tombstones_empty_ones() {
    let mut h = Harness::new();
    let (a, generation) = h.stable_single_member();
    h.commit(&a, generation, "t", 0, 5);
    let output = h.shard.delete_groups(&["g".into(), "other".into()]);
    assert_eq!(
        h.apply(output, false),
        vec![
            Some(GroupError::NonEmptyGroup),
            Some(GroupError::GroupIdNotFound)
        ]
    );
    let output = h.shard.leave(h.now, &g(), &[(a, None)]);
    h.apply(output, false).expect("left");
    let output = h.shard.delete_groups(&["g".into()]);
    assert_eq!(h.apply(output, false), vec![None]);
    assert!(h.shard.group(&g()).is_none());
    let wanted = [("t".to_string(), vec![0])];
    assert_eq!(
        h.shard.fetch_offsets(&g(), Some(&wanted), false)[0].1[0].offset,
        -1
    );
    assert!(h.log.iter().rev().take(2).all(|r| matches!(
        r,
        CoordinatorRecord::GroupMetadata { value: None, .. }
            | CoordinatorRecord::OffsetCommit { value: None, .. }
    )));
}

#[test]
fn offset_delete_refuses_subscribed_topics() {
    let mut h = Harness::new();
    let (a, generation) = h.stable_single_member();
    h.commit(&a, generation, "t", 0, 5);
    h.commit(&a, generation, "old", 0, 9);
    let output = h
        .shard
        .delete_offsets(&g(), &[("t".into(), 0), ("old".into(), 0)]);
    assert_eq!(
        h.apply(output, false),
        Ok(vec![Some(GroupError::GroupSubscribedToTopic), None])
    );
    let all = h.shard.fetch_offsets(&g(), None, false);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, "t");
    let output = h.shard.delete_offsets(&"nope".into(), &[]);
    assert_eq!(h.apply(output, false), Err(GroupError::GroupIdNotFound));
}

#[test]
fn offsets_of_an_empty_group_expire_after_the_retention_and_the_group_goes() {
    let mut h = Harness::new();
    let (a, generation) = h.stable_single_member();
    h.commit(&a, generation, "t", 0, 5);
    let output = h.shard.leave(h.now, &g(), &[(a, None)]);
    h.apply(output, false).expect("left");
    let retention = h.shard.config.offsets_retention_ms;
    let check = h.shard.config.offsets_retention_check_interval_ms;
    h.advance(retention - check);
    assert!(h.shard.group(&g()).is_some(), "not expired yet");
    h.advance(2 * check);
    assert!(h.shard.group(&g()).is_none(), "expired and deleted");
    assert!(h.shard.fetch_offsets(&g(), None, false).is_empty());
    assert!(
        h.shard.timers.contains_key(&TimerKey::OffsetExpiration),
        "the check repeats"
    );
}

#[test]
fn inconsistent_protocols_and_bad_session_timeouts_are_refused() {
    let mut h = Harness::new();
    h.stable_single_member();
    let responder = h.responder();
    let mut request = JoinRequest {
        group_id: g(),
        member_id: MemberId::UNKNOWN,
        group_instance_id: None,
        fresh_member_id: "x".into(),
        client_id: "c".into(),
        client_host: "h".into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        protocol_type: "consumer".into(),
        protocols: vec![("roundrobin".into(), Bytes::new())],
        require_known_member_id: false,
    };
    let output = h.shard.join(h.now, request.clone(), responder);
    h.apply(output, false);
    assert_eq!(
        h.join_result(responder).expect("refused").error,
        Some(GroupError::InconsistentGroupProtocol)
    );
    request.session_timeout_ms = 10;
    let responder = h.responder();
    let output = h.shard.join(h.now, request, responder);
    h.apply(output, false);
    assert_eq!(
        h.join_result(responder).expect("refused").error,
        Some(GroupError::InvalidSessionTimeout)
    );
}
