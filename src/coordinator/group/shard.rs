//! GroupCoordinatorShard: the groups and committed offsets of one `__consumer_offsets` partition, and the classic
//! rebalance protocol (Kafka's GroupMetadataManager for classic groups).
//!
//! Pure: handlers take `now_ms`, return [`Output`] (records to append, replies to deliver once they are durable) and
//! keep timers as data ([`TimerKey`] → deadline) that the [`CoordinatorRuntime`](crate::coordinator::runtime)
//! turns into tokio sleeps. Durable state (committed
//! offsets, each group's generation, leader, members and assignments) changes only in [`GroupCoordinatorShard::replay`]
//! and, for a transactional producer's offsets, in its transactional twins (see [`txn_offsets`](super::txn_offsets));
//! the runtime replays a handler's records before anything else touches the shard. Rebalance bookkeeping (who is
//! awaiting a join or sync response, pending member ids, timers) is volatile, as in Kafka: after a coordinator move
//! members simply rejoin.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;

use super::classic::{ClassicGroup, ClassicGroupMember, GroupState};
use super::ids::{GroupId, GroupInstanceId, MemberId};
use super::offsets::Committed;
use super::rebalance::{
    heartbeat_expired, join_existing_member, join_new_member, join_timer_fired,
    maybe_complete_join, member_session_ms, remove_member_and_update, sync_timer_fired,
    validate_sync,
};
use super::records::CoordinatorRecord;
use super::GroupError;
use crate::config::GroupCoordinatorConfig;
use crate::coordinator::runtime::{self, CoordinatorShard, Failable, ResponderId};
use crate::ids::{ProducerEpoch, ProducerId};

/// Kafka's classic.group.new.member.join.timeout.ms: a new member's JoinGroup is parked at most this long.
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 300_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKey {
    Heartbeat { group: GroupId, member: MemberId },
    Join { group: GroupId },
    Sync { group: GroupId },
    OffsetExpiration,
}

#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub group_id: GroupId,
    /// Empty for a member without an id yet.
    pub member_id: MemberId,
    pub group_instance_id: Option<GroupInstanceId>,
    /// The id a new member gets (client id + "-" + a UUID), drawn by the caller so that the shard stays pure.
    pub fresh_member_id: MemberId,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// KIP-394: JoinGroup v4+ first hands out a member id with MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: MemberId,
    pub group_instance_id: Option<GroupInstanceId>,
    pub metadata: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinResult {
    pub error: Option<GroupError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: MemberId,
    pub skip_assignment: bool,
    pub member_id: MemberId,
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    pub fn failed(error: GroupError, member_id: &MemberId) -> JoinResult {
        JoinResult {
            error: Some(error),
            generation: -1,
            member_id: member_id.clone(),
            ..JoinResult::default()
        }
    }
}

#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub group_id: GroupId,
    pub member_id: MemberId,
    pub group_instance_id: Option<GroupInstanceId>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(MemberId, Bytes)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncResult {
    pub error: Option<GroupError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn failed(error: GroupError) -> SyncResult {
        SyncResult {
            error: Some(error),
            ..SyncResult::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Join(JoinResult),
    Sync(SyncResult),
}

impl Failable<GroupError> for Reply {
    fn fail(&mut self, error: GroupError) {
        *self = match self {
            Reply::Join(j) => Reply::Join(JoinResult::failed(error, &j.member_id)),
            Reply::Sync(_) => Reply::Sync(SyncResult::failed(error)),
        };
    }
}

/// What a handler produced: records to append (and replay), replies to parked requests, and its own response.
pub type Output<R> = runtime::Output<CoordinatorRecord, Reply, R>;

/// Side effects collected while a handler runs.
pub(super) struct Effects<'a> {
    pub now: i64,
    pub config: &'a GroupCoordinatorConfig,
    pub timers: &'a mut HashMap<TimerKey, i64>,
    pub records: Vec<CoordinatorRecord>,
    pub replies: Vec<(ResponderId, Reply)>,
}

impl Effects<'_> {
    pub(super) fn schedule(&mut self, key: TimerKey, after_ms: i64) {
        self.timers
            .insert(key, self.now.saturating_add(after_ms.max(0)));
    }

    pub(super) fn cancel(&mut self, key: &TimerKey) {
        self.timers.remove(key);
    }

    pub(super) fn reply(&mut self, to: ResponderId, reply: Reply) {
        self.replies.push((to, reply));
    }

    pub(super) fn finish<R>(self, response: R) -> Output<R> {
        Output {
            records: self.records,
            replies: self.replies,
            response,
        }
    }
}

pub(super) fn heartbeat_key(group: &GroupId, member: &MemberId) -> TimerKey {
    TimerKey::Heartbeat {
        group: group.clone(),
        member: member.clone(),
    }
}

/// One group's offsets by (topic, partition).
pub(super) type GroupOffsets = BTreeMap<(String, i32), Committed>;

pub struct GroupCoordinatorShard {
    pub(super) config: GroupCoordinatorConfig,
    pub(super) groups: HashMap<GroupId, ClassicGroup>,
    /// group → (topic, partition) → committed offset.
    pub(super) offsets: HashMap<GroupId, GroupOffsets>,
    /// producer id → group → (topic, partition) → the offset that producer's open transaction commits (Kafka's
    /// pendingTransactionalOffsets). A group's entry stays, maybe empty, until the transaction ends.
    pub(super) pending_offsets: HashMap<ProducerId, HashMap<GroupId, GroupOffsets>>,
    /// group → the producers whose open transaction commits offsets of it (Kafka's openTransactionsByGroup).
    pub(super) open_transactions: HashMap<GroupId, BTreeSet<ProducerId>>,
    /// How many offset commit records have been replayed: each one's number orders it in the partition (replay
    /// follows the log both live and on load), in place of the record offset Kafka compares.
    pub(super) commit_records: u64,
    pub(super) timers: HashMap<TimerKey, i64>,
}

impl GroupCoordinatorShard {
    pub fn new(config: GroupCoordinatorConfig) -> GroupCoordinatorShard {
        GroupCoordinatorShard {
            config,
            groups: HashMap::new(),
            offsets: HashMap::new(),
            pending_offsets: HashMap::new(),
            open_transactions: HashMap::new(),
            commit_records: 0,
            timers: HashMap::new(),
        }
    }

    pub fn group(&self, group_id: &GroupId) -> Option<&ClassicGroup> {
        self.groups.get(group_id)
    }

    pub fn next_deadline(&self) -> Option<i64> {
        self.timers.values().min().copied()
    }

    pub(super) fn effects(
        &mut self,
        now: i64,
    ) -> (Effects<'_>, &mut HashMap<GroupId, ClassicGroup>) {
        (
            Effects {
                now,
                config: &self.config,
                timers: &mut self.timers,
                records: Vec::new(),
                replies: Vec::new(),
            },
            &mut self.groups,
        )
    }

    /// Called once the partition has been replayed: members of loaded groups must heartbeat within their session
    /// timeout, and offset expiry starts.
    pub fn on_loaded(&mut self, now: i64) {
        let mut timers = Vec::new();
        for group in self.groups.values() {
            for member in group.members.values() {
                timers.push((
                    heartbeat_key(&group.group_id, &member.member_id),
                    now + i64::from(member.session_timeout_ms),
                ));
            }
        }
        self.timers.extend(timers);
        self.timers.insert(
            TimerKey::OffsetExpiration,
            now + self.config.offsets_retention_check_interval_ms,
        );
    }

    /// Applies one record of the partition. The only way durable state changes.
    pub fn replay(&mut self, record: &CoordinatorRecord) {
        match record {
            CoordinatorRecord::OffsetCommit {
                group,
                topic,
                partition,
                value: Some(value),
            } => {
                let committed = self.next_commit(group, value);
                self.offsets
                    .entry(group.clone())
                    .or_default()
                    .insert((topic.clone(), *partition), committed);
            }
            CoordinatorRecord::OffsetCommit {
                group,
                topic,
                partition,
                value: None,
            } => {
                let key = (topic.clone(), *partition);
                if let Some(offsets) = self.offsets.get_mut(group) {
                    offsets.remove(&key);
                    if offsets.is_empty() {
                        self.offsets.remove(group);
                    }
                }
                // A tombstone also drops what open transactions would commit there, as Kafka's replay does.
                for producer_id in self.open_transactions.get(group).into_iter().flatten() {
                    if let Some(pending) = self
                        .pending_offsets
                        .get_mut(producer_id)
                        .and_then(|groups| groups.get_mut(group))
                    {
                        pending.remove(&key);
                    }
                }
            }
            CoordinatorRecord::GroupMetadata { group, value: None } => {
                self.groups.remove(group);
                self.timers.retain(|key, _| match key {
                    TimerKey::Heartbeat { group: g, .. }
                    | TimerKey::Join { group: g }
                    | TimerKey::Sync { group: g } => g != group,
                    TimerKey::OffsetExpiration => true,
                });
            }
            CoordinatorRecord::GroupMetadata {
                group: group_id,
                value: Some(value),
            } => {
                let now = value.current_state_timestamp_ms;
                let group = self
                    .groups
                    .entry(group_id.clone())
                    .or_insert_with(|| ClassicGroup::new(group_id.clone(), now));
                group.generation = value.generation;
                group.protocol_type = Some(value.protocol_type.clone()).filter(|p| !p.is_empty());
                group.protocol_name = value.protocol.clone();
                group.leader = value.leader.clone();
                if value.current_state_timestamp_ms >= 0 {
                    group.state_timestamp_ms = Some(value.current_state_timestamp_ms);
                }
                let keep: Vec<&MemberId> = value.members.iter().map(|m| &m.member_id).collect();
                let gone: Vec<MemberId> = group
                    .members
                    .keys()
                    .filter(|id| !keep.contains(id))
                    .cloned()
                    .collect();
                for id in gone {
                    group.remove_member(&id);
                }
                for m in &value.members {
                    match group.members.get_mut(&m.member_id) {
                        Some(member) => member.assignment = m.assignment.clone(),
                        None => group.add_member(ClassicGroupMember {
                            member_id: m.member_id.clone(),
                            group_instance_id: m.group_instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            rebalance_timeout_ms: m.rebalance_timeout_ms,
                            session_timeout_ms: m.session_timeout_ms,
                            protocol_type: value.protocol_type.clone(),
                            protocols: value
                                .protocol
                                .iter()
                                .map(|p| (p.clone(), m.subscription.clone()))
                                .collect(),
                            assignment: m.assignment.clone(),
                            awaiting_join: None,
                            awaiting_sync: None,
                            is_new: false,
                        }),
                    }
                }
                group.leader = value.leader.clone();
                if group.members.is_empty() {
                    if !group.is(GroupState::Empty) {
                        group.transition(GroupState::Empty, now);
                    }
                } else if matches!(
                    group.state,
                    GroupState::Empty | GroupState::CompletingRebalance
                ) {
                    group.transition(GroupState::Stable, now);
                }
                group.subscribed_topics = group.compute_subscribed_topics();
            }
        }
    }

    pub fn join(&mut self, now: i64, request: JoinRequest, responder: ResponderId) -> Output<()> {
        let (mut fx, groups) = self.effects(now);
        let fail = |fx: &mut Effects, error| {
            fx.reply(
                responder,
                Reply::Join(JoinResult::failed(error, &request.member_id)),
            )
        };
        if request.group_id.is_empty() {
            fail(&mut fx, GroupError::InvalidGroupId);
            return fx.finish(());
        }
        if request.session_timeout_ms < fx.config.min_session_timeout_ms
            || request.session_timeout_ms > fx.config.max_session_timeout_ms
        {
            fail(&mut fx, GroupError::InvalidSessionTimeout);
            return fx.finish(());
        }
        let unknown = request.member_id.is_empty();
        let existed = groups.contains_key(&request.group_id);
        if !existed && !unknown {
            fail(&mut fx, GroupError::UnknownMemberId);
            return fx.finish(());
        }
        let group = groups
            .entry(request.group_id.clone())
            .or_insert_with(|| ClassicGroup::new(request.group_id.clone(), now));
        let known = group.members.contains_key(&request.member_id)
            || group.pending_members.contains(&request.member_id);
        if !known && group.members.len() + group.pending_members.len() >= fx.config.max_size {
            fail(&mut fx, GroupError::GroupMaxSizeReached);
        } else if unknown {
            join_new_member(group, request, responder, &mut fx);
        } else {
            join_existing_member(group, request, responder, &mut fx);
        }
        if !existed && group.members.is_empty() && group.pending_members.is_empty() {
            let id = group.group_id.clone();
            groups.remove(&id);
        }
        fx.finish(())
    }

    pub fn sync(&mut self, now: i64, request: SyncRequest, responder: ResponderId) -> Output<()> {
        let (mut fx, groups) = self.effects(now);
        let Some(group) = groups.get_mut(&request.group_id) else {
            fx.reply(
                responder,
                Reply::Sync(SyncResult::failed(GroupError::UnknownMemberId)),
            );
            return fx.finish(());
        };
        if let Err(error) = validate_sync(group, &request) {
            fx.reply(responder, Reply::Sync(SyncResult::failed(error)));
            return fx.finish(());
        }
        let member_id = request.member_id.clone();
        match group.state {
            GroupState::Empty | GroupState::Dead => {
                fx.reply(
                    responder,
                    Reply::Sync(SyncResult::failed(GroupError::UnknownMemberId)),
                );
            }
            GroupState::PreparingRebalance => {
                fx.reply(
                    responder,
                    Reply::Sync(SyncResult::failed(GroupError::RebalanceInProgress)),
                );
            }
            GroupState::CompletingRebalance => {
                group.pending_sync.remove(&member_id);
                let session = member_session_ms(group, &member_id);
                fx.schedule(heartbeat_key(&group.group_id, &member_id), session);
                if let Some(member) = group.members.get_mut(&member_id) {
                    if let Some(old) = member.awaiting_sync.replace(responder) {
                        fx.reply(
                            old,
                            Reply::Sync(SyncResult::failed(GroupError::RebalanceInProgress)),
                        );
                    }
                }
                if group.is_leader(&member_id) {
                    let mut value = group.to_record_value();
                    for member in &mut value.members {
                        member.assignment = request
                            .assignments
                            .iter()
                            .find(|(id, _)| *id == member.member_id)
                            .map(|(_, a)| a.clone())
                            .unwrap_or_default();
                    }
                    for member in group.members.values_mut() {
                        if let Some(waiting) = member.awaiting_sync.take() {
                            let assignment = value
                                .members
                                .iter()
                                .find(|m| m.member_id == member.member_id)
                                .map(|m| m.assignment.clone())
                                .unwrap_or_default();
                            fx.reply(
                                waiting,
                                Reply::Sync(SyncResult {
                                    error: None,
                                    protocol_type: group.protocol_type.clone(),
                                    protocol_name: group.protocol_name.clone(),
                                    assignment,
                                }),
                            );
                        }
                    }
                    fx.records.push(CoordinatorRecord::GroupMetadata {
                        group: group.group_id.clone(),
                        value: Some(value),
                    });
                }
            }
            GroupState::Stable => {
                group.pending_sync.remove(&member_id);
                let session = member_session_ms(group, &member_id);
                fx.schedule(heartbeat_key(&group.group_id, &member_id), session);
                let assignment = group
                    .members
                    .get(&member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                fx.reply(
                    responder,
                    Reply::Sync(SyncResult {
                        error: None,
                        protocol_type: group.protocol_type.clone(),
                        protocol_name: group.protocol_name.clone(),
                        assignment,
                    }),
                );
            }
        }
        fx.finish(())
    }

    pub fn heartbeat(
        &mut self,
        now: i64,
        group_id: &GroupId,
        member_id: &MemberId,
        group_instance_id: Option<&GroupInstanceId>,
        generation: i32,
    ) -> Output<Result<(), GroupError>> {
        let (mut fx, groups) = self.effects(now);
        let Some(group) = groups.get_mut(group_id) else {
            return fx.finish(Err(GroupError::UnknownMemberId));
        };
        let result = (|| {
            if group.is(GroupState::Dead) {
                return Err(GroupError::CoordinatorNotAvailable);
            }
            if group.is(GroupState::Empty) {
                return Err(GroupError::UnknownMemberId);
            }
            validate_member(group, member_id, group_instance_id)?;
            if generation != group.generation {
                return Err(GroupError::IllegalGeneration);
            }
            Ok(())
        })();
        if let Err(error) = result {
            return fx.finish(Err(error));
        }
        let session = member_session_ms(group, member_id);
        fx.schedule(heartbeat_key(group_id, member_id), session);
        let response = match group.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            _ => Ok(()),
        };
        fx.finish(response)
    }

    /// LeaveGroup for a batch of (member id, group instance id); a member id may be empty when the instance id names
    /// a static member (KIP-345).
    #[allow(clippy::type_complexity)]
    pub fn leave(
        &mut self,
        now: i64,
        group_id: &GroupId,
        members: &[(MemberId, Option<GroupInstanceId>)],
    ) -> Output<Result<Vec<Option<GroupError>>, GroupError>> {
        let (mut fx, groups) = self.effects(now);
        let Some(group) = groups.get_mut(group_id) else {
            let errors = members
                .iter()
                .map(|_| Some(GroupError::UnknownMemberId))
                .collect();
            return fx.finish(Ok(errors));
        };
        if group.is(GroupState::Dead) {
            return fx.finish(Err(GroupError::CoordinatorNotAvailable));
        }
        let mut errors = Vec::with_capacity(members.len());
        for (member_id, instance_id) in members {
            let error = if member_id.is_empty() {
                match instance_id
                    .as_ref()
                    .and_then(|i| group.static_members.get(i))
                    .cloned()
                {
                    Some(id) => {
                        remove_member_and_update(group, &id, &mut fx);
                        None
                    }
                    None => Some(GroupError::UnknownMemberId),
                }
            } else if group.pending_members.remove(member_id) {
                fx.cancel(&heartbeat_key(group_id, member_id));
                maybe_complete_join(group, &mut fx);
                None
            } else if let Err(error) = validate_member(group, member_id, instance_id.as_ref()) {
                Some(error)
            } else {
                remove_member_and_update(group, member_id, &mut fx);
                None
            };
            errors.push(error);
        }
        fx.finish(Ok(errors))
    }

    /// Fires every timer due at `now`.
    pub fn fire_timers(&mut self, now: i64) -> Output<()> {
        let mut due: Vec<(i64, TimerKey)> = self
            .timers
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(key, deadline)| (*deadline, key.clone()))
            .collect();
        due.sort();
        let mut output = Output::new(());
        for (_, key) in due {
            // An earlier timer in this round may have rescheduled or cancelled this one.
            if self.timers.get(&key).is_none_or(|deadline| *deadline > now) {
                continue;
            }
            self.timers.remove(&key);
            let fired = match &key {
                TimerKey::OffsetExpiration => self.expire_offsets(now),
                TimerKey::Heartbeat { group, member } => {
                    self.on_group(now, group, |g, fx| heartbeat_expired(g, member, fx))
                }
                TimerKey::Join { group } => self.on_group(now, group, join_timer_fired),
                TimerKey::Sync { group } => self.on_group(now, group, sync_timer_fired),
            };
            // Apply at once: a later timer of this round must see this one's effect.
            for record in &fired.records {
                self.replay(record);
            }
            output.records.extend(fired.records);
            output.replies.extend(fired.replies);
        }
        output
    }

    fn on_group(
        &mut self,
        now: i64,
        group_id: &GroupId,
        f: impl FnOnce(&mut ClassicGroup, &mut Effects),
    ) -> Output<()> {
        let (mut fx, groups) = self.effects(now);
        if let Some(group) = groups.get_mut(group_id) {
            f(group, &mut fx);
        }
        fx.finish(())
    }
}

/// Kafka's ClassicGroup.validateMember: a static member's instance id must map to this member id.
pub(super) fn validate_member(
    group: &ClassicGroup,
    member_id: &MemberId,
    group_instance_id: Option<&GroupInstanceId>,
) -> Result<(), GroupError> {
    match group_instance_id {
        Some(instance) => match group.static_members.get(instance) {
            None => Err(GroupError::UnknownMemberId),
            Some(id) if id != member_id => Err(GroupError::FencedInstanceId),
            Some(_) => Ok(()),
        },
        None if !group.members.contains_key(member_id) => Err(GroupError::UnknownMemberId),
        None => Ok(()),
    }
}

impl CoordinatorShard for GroupCoordinatorShard {
    type Record = CoordinatorRecord;
    type Reply = Reply;
    type Error = GroupError;

    fn replay(&mut self, record: &CoordinatorRecord) {
        GroupCoordinatorShard::replay(self, record)
    }

    fn replay_transactional(
        &mut self,
        producer_id: ProducerId,
        _producer_epoch: ProducerEpoch,
        record: &CoordinatorRecord,
    ) {
        GroupCoordinatorShard::replay_transactional(self, producer_id, record)
    }

    fn replay_end_transaction(&mut self, producer_id: ProducerId, commit: bool) {
        GroupCoordinatorShard::end_transaction(self, producer_id, commit)
    }

    fn on_loaded(&mut self, now_ms: i64) {
        GroupCoordinatorShard::on_loaded(self, now_ms)
    }

    fn next_deadline(&self) -> Option<i64> {
        GroupCoordinatorShard::next_deadline(self)
    }

    fn fire_timers(&mut self, now_ms: i64) -> Output<()> {
        GroupCoordinatorShard::fire_timers(self, now_ms)
    }

    fn serialize(record: &CoordinatorRecord) -> Result<(Bytes, Option<Bytes>), GroupError> {
        let key = record.encode_key().map_err(GroupError::InvalidRecord)?;
        let value = record.encode_value().map_err(GroupError::InvalidRecord)?;
        Ok((key, value))
    }

    fn deserialize(key: &[u8], value: Option<&[u8]>) -> Result<Option<CoordinatorRecord>, String> {
        CoordinatorRecord::decode(key, value).map_err(|error| error.to_string())
    }
}
