//! The classic group's rebalance transitions (Kafka's GroupMetadataManager for classic groups): joining, the
//! join and sync phases, static member replacement, and what the session, join and sync timers do when they fire.

use bytes::Bytes;

use super::classic::{ClassicGroup, ClassicGroupMember, GroupState, InitialDelay};
use super::ids::MemberId;
use super::records::CoordinatorRecord;
use super::shard::{
    heartbeat_key, validate_member, Effects, JoinRequest, JoinResult, JoinedMember, Reply,
    SyncRequest, SyncResult, TimerKey, NEW_MEMBER_JOIN_TIMEOUT_MS,
};
use super::GroupError;
use crate::coordinator::runtime::ResponderId;

pub(super) fn validate_sync(group: &ClassicGroup, request: &SyncRequest) -> Result<(), GroupError> {
    if group.is(GroupState::Dead) {
        return Err(GroupError::CoordinatorNotAvailable);
    }
    validate_member(
        group,
        &request.member_id,
        request.group_instance_id.as_ref(),
    )?;
    if request.generation != group.generation {
        return Err(GroupError::IllegalGeneration);
    }
    if request
        .protocol_type
        .as_ref()
        .is_some_and(|p| Some(p) != group.protocol_type.as_ref())
        || request
            .protocol_name
            .as_ref()
            .is_some_and(|p| Some(p) != group.protocol_name.as_ref())
    {
        return Err(GroupError::InconsistentGroupProtocol);
    }
    Ok(())
}

pub(super) fn member_session_ms(group: &ClassicGroup, member_id: &MemberId) -> i64 {
    group
        .members
        .get(member_id)
        .map(|m| i64::from(m.session_timeout_ms))
        .unwrap_or(0)
}

pub(super) fn join_new_member(
    group: &mut ClassicGroup,
    request: JoinRequest,
    responder: ResponderId,
    fx: &mut Effects,
) {
    if group.is(GroupState::Dead) {
        fx.reply(
            responder,
            Reply::Join(JoinResult::failed(
                GroupError::CoordinatorNotAvailable,
                &MemberId::UNKNOWN,
            )),
        );
        return;
    }
    if !group.supports_protocols(&request.protocol_type, &request.protocols) {
        fx.reply(
            responder,
            Reply::Join(JoinResult::failed(
                GroupError::InconsistentGroupProtocol,
                &MemberId::UNKNOWN,
            )),
        );
        return;
    }
    let member_id = request.fresh_member_id.clone();
    let existing_static = request
        .group_instance_id
        .as_ref()
        .and_then(|i| group.static_members.get(i))
        .cloned();
    if let Some(old_member_id) = existing_static {
        replace_static_member(group, &old_member_id, member_id, request, responder, fx);
    } else if request.group_instance_id.is_none() && request.require_known_member_id {
        fx.schedule(
            heartbeat_key(&group.group_id, &member_id),
            i64::from(request.session_timeout_ms),
        );
        group.pending_members.insert(member_id.clone());
        fx.reply(
            responder,
            Reply::Join(JoinResult::failed(GroupError::MemberIdRequired, &member_id)),
        );
    } else {
        add_member_and_rebalance(group, member_id, request, responder, fx);
    }
}

pub(super) fn join_existing_member(
    group: &mut ClassicGroup,
    request: JoinRequest,
    responder: ResponderId,
    fx: &mut Effects,
) {
    let member_id = request.member_id.clone();
    let fail = |fx: &mut Effects, error| {
        fx.reply(
            responder,
            Reply::Join(JoinResult::failed(error, &member_id)),
        )
    };
    if group.is(GroupState::Dead) {
        return fail(fx, GroupError::CoordinatorNotAvailable);
    }
    if !group.supports_protocols(&request.protocol_type, &request.protocols) {
        return fail(fx, GroupError::InconsistentGroupProtocol);
    }
    if group.pending_members.remove(&member_id) {
        fx.cancel(&heartbeat_key(&group.group_id, &member_id));
        return add_member_and_rebalance(group, member_id.clone(), request, responder, fx);
    }
    if let Err(error) = validate_member(group, &member_id, request.group_instance_id.as_ref()) {
        return fail(fx, error);
    }
    let Some(member) = group.members.get(&member_id) else {
        return fail(fx, GroupError::UnknownMemberId);
    };
    let unchanged = member.same_protocols(&request.protocols);
    match group.state {
        GroupState::PreparingRebalance => {
            update_member_and_rebalance(group, &member_id, request, responder, fx)
        }
        GroupState::CompletingRebalance if unchanged => {
            // The member lost the JoinGroup response: send it again.
            let result = current_join_result(group, &member_id);
            fx.reply(responder, Reply::Join(result));
        }
        GroupState::Stable if unchanged && !group.is_leader(&member_id) => {
            let result = current_join_result(group, &member_id);
            fx.reply(responder, Reply::Join(result));
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            update_member_and_rebalance(group, &member_id, request, responder, fx)
        }
        GroupState::Empty | GroupState::Dead => fail(fx, GroupError::UnknownMemberId),
    }
}

/// The JoinGroup response of the current generation for one member (the leader gets everyone's metadata).
fn current_join_result(group: &ClassicGroup, member_id: &MemberId) -> JoinResult {
    let protocol = group.protocol_name.clone().unwrap_or_default();
    let members = if group.is_leader(member_id) {
        group
            .members
            .values()
            .map(|m| JoinedMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(&protocol),
            })
            .collect()
    } else {
        Vec::new()
    };
    JoinResult {
        error: None,
        generation: group.generation,
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol_name.clone(),
        leader: group.leader.clone().unwrap_or_default(),
        skip_assignment: false,
        member_id: member_id.clone(),
        members,
    }
}

fn add_member_and_rebalance(
    group: &mut ClassicGroup,
    member_id: MemberId,
    request: JoinRequest,
    responder: ResponderId,
    fx: &mut Effects,
) {
    if group.is(GroupState::PreparingRebalance) && group.generation == 0 {
        group.new_member_added = true;
    }
    fx.schedule(
        heartbeat_key(&group.group_id, &member_id),
        NEW_MEMBER_JOIN_TIMEOUT_MS,
    );
    group.add_member(ClassicGroupMember {
        member_id,
        group_instance_id: request.group_instance_id,
        client_id: request.client_id,
        client_host: request.client_host,
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        session_timeout_ms: request.session_timeout_ms,
        protocol_type: request.protocol_type,
        protocols: request.protocols,
        assignment: Bytes::new(),
        awaiting_join: Some(responder),
        awaiting_sync: None,
        is_new: true,
    });
    maybe_prepare_rebalance_or_complete_join(group, fx);
}

fn update_member_and_rebalance(
    group: &mut ClassicGroup,
    member_id: &MemberId,
    request: JoinRequest,
    responder: ResponderId,
    fx: &mut Effects,
) {
    if let Some(member) = group.members.get_mut(member_id) {
        member.protocols = request.protocols;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.session_timeout_ms = request.session_timeout_ms;
        if let Some(old) = member.awaiting_join.replace(responder) {
            fx.reply(
                old,
                Reply::Join(JoinResult::failed(
                    GroupError::RebalanceInProgress,
                    member_id,
                )),
            );
        }
    }
    maybe_prepare_rebalance_or_complete_join(group, fx);
}

/// KIP-345: a static member that rejoins without its member id takes over its old membership; the old id is
/// fenced. In a Stable group whose protocol stays, no rebalance: the member gets its generation and assignment back.
fn replace_static_member(
    group: &mut ClassicGroup,
    old_member_id: &MemberId,
    new_member_id: MemberId,
    request: JoinRequest,
    responder: ResponderId,
    fx: &mut Effects,
) {
    let Some(mut member) = group.members.shift_remove(old_member_id) else {
        return;
    };
    fx.cancel(&heartbeat_key(&group.group_id, old_member_id));
    if let Some(old) = member.awaiting_join.take() {
        fx.reply(
            old,
            Reply::Join(JoinResult::failed(
                GroupError::FencedInstanceId,
                old_member_id,
            )),
        );
    }
    if let Some(old) = member.awaiting_sync.take() {
        fx.reply(
            old,
            Reply::Sync(SyncResult::failed(GroupError::FencedInstanceId)),
        );
    }
    let was_leader = group.is_leader(old_member_id);
    if group.pending_sync.remove(old_member_id) {
        group.pending_sync.insert(new_member_id.clone());
    }
    member.member_id = new_member_id.clone();
    member.protocols = request.protocols;
    member.rebalance_timeout_ms = request.rebalance_timeout_ms;
    member.session_timeout_ms = request.session_timeout_ms;
    member.client_id = request.client_id;
    member.client_host = request.client_host;
    fx.schedule(
        heartbeat_key(&group.group_id, &new_member_id),
        i64::from(member.session_timeout_ms),
    );
    if let Some(instance) = &member.group_instance_id {
        group
            .static_members
            .insert(instance.clone(), new_member_id.clone());
    }
    group.members.insert(new_member_id.clone(), member);
    if was_leader {
        group.leader = Some(new_member_id.clone());
    }
    match group.state {
        GroupState::Stable if group.select_protocol() == group.protocol_name => {
            fx.records.push(CoordinatorRecord::GroupMetadata {
                group: group.group_id.clone(),
                value: Some(group.to_record_value()),
            });
            let mut result = current_join_result(group, &new_member_id);
            result.skip_assignment = group.is_leader(&new_member_id);
            fx.reply(responder, Reply::Join(result));
        }
        GroupState::Stable | GroupState::CompletingRebalance => {
            set_awaiting_join(group, &new_member_id, responder);
            prepare_rebalance(group, fx);
        }
        _ => {
            set_awaiting_join(group, &new_member_id, responder);
            maybe_complete_join(group, fx);
        }
    }
}

fn set_awaiting_join(group: &mut ClassicGroup, member_id: &MemberId, responder: ResponderId) {
    if let Some(member) = group.members.get_mut(member_id) {
        member.awaiting_join = Some(responder);
    }
}

fn maybe_prepare_rebalance_or_complete_join(group: &mut ClassicGroup, fx: &mut Effects) {
    match group.state {
        GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty => {
            prepare_rebalance(group, fx)
        }
        GroupState::PreparingRebalance => maybe_complete_join(group, fx),
        GroupState::Dead => {}
    }
}

fn prepare_rebalance(group: &mut ClassicGroup, fx: &mut Effects) {
    if group.is(GroupState::CompletingRebalance) {
        for member in group.members.values_mut() {
            member.assignment = Bytes::new();
            if let Some(waiting) = member.awaiting_sync.take() {
                fx.reply(
                    waiting,
                    Reply::Sync(SyncResult::failed(GroupError::RebalanceInProgress)),
                );
            }
        }
    }
    fx.cancel(&TimerKey::Sync {
        group: group.group_id.clone(),
    });
    let initial = group.is(GroupState::Empty);
    group.transition(GroupState::PreparingRebalance, fx.now);
    let join = TimerKey::Join {
        group: group.group_id.clone(),
    };
    if initial {
        let delay_ms = fx.config.initial_rebalance_delay_ms;
        group.initial_delay = Some(InitialDelay {
            delay_ms,
            remaining_ms: (group.rebalance_timeout_ms() - delay_ms).max(0),
        });
        fx.schedule(join, delay_ms);
    } else {
        group.initial_delay = None;
        fx.schedule(join, group.rebalance_timeout_ms());
        maybe_complete_join(group, fx);
    }
}

pub(super) fn maybe_complete_join(group: &mut ClassicGroup, fx: &mut Effects) {
    if group.is(GroupState::PreparingRebalance)
        && group.all_members_joined()
        && group.previous_state != GroupState::Empty
    {
        complete_join(group, fx);
    }
}

/// Ends the join phase: dynamic members that did not rejoin are removed, a new generation starts and every joined
/// member gets its JoinGroup response.
fn complete_join(group: &mut ClassicGroup, fx: &mut Effects) {
    if !group.is(GroupState::PreparingRebalance) {
        return;
    }
    let not_rejoined: Vec<MemberId> = group
        .members
        .values()
        .filter(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
        .map(|m| m.member_id.clone())
        .collect();
    for id in not_rejoined {
        fx.cancel(&heartbeat_key(&group.group_id, &id));
        group.remove_member(&id);
    }
    let join = TimerKey::Join {
        group: group.group_id.clone(),
    };
    if group.members.is_empty() {
        fx.cancel(&join);
        group.initial_delay = None;
        group.generation += 1;
        group.protocol_name = None;
        group.leader = None;
        group.subscribed_topics = None;
        group.transition(GroupState::Empty, fx.now);
        fx.records.push(CoordinatorRecord::GroupMetadata {
            group: group.group_id.clone(),
            value: Some(group.to_record_value()),
        });
        return;
    }
    group.elect_joined_leader();
    if group.awaiting_join_count() == 0 {
        // Only static members that have not rejoined are left: wait for them, or for their session timeout.
        fx.schedule(join, group.rebalance_timeout_ms());
        return;
    }
    fx.cancel(&join);
    group.initial_delay = None;
    group.generation += 1;
    group.protocol_name = group.select_protocol();
    group.subscribed_topics = group.compute_subscribed_topics();
    group.transition(GroupState::CompletingRebalance, fx.now);
    group.pending_sync = group.members.keys().cloned().collect();
    let ids: Vec<MemberId> = group.members.keys().cloned().collect();
    for id in ids {
        let result = current_join_result(group, &id);
        let Some(member) = group.members.get_mut(&id) else {
            continue;
        };
        member.is_new = false;
        let session = i64::from(member.session_timeout_ms);
        if let Some(waiting) = member.awaiting_join.take() {
            fx.reply(waiting, Reply::Join(result));
        }
        fx.schedule(heartbeat_key(&group.group_id, &id), session);
    }
    fx.schedule(
        TimerKey::Sync {
            group: group.group_id.clone(),
        },
        group.rebalance_timeout_ms(),
    );
}

pub(super) fn remove_member_and_update(
    group: &mut ClassicGroup,
    member_id: &MemberId,
    fx: &mut Effects,
) {
    fx.cancel(&heartbeat_key(&group.group_id, member_id));
    let Some(member) = group.remove_member(member_id) else {
        return;
    };
    if let Some(waiting) = member.awaiting_join {
        fx.reply(
            waiting,
            Reply::Join(JoinResult::failed(GroupError::UnknownMemberId, member_id)),
        );
    }
    if let Some(waiting) = member.awaiting_sync {
        fx.reply(
            waiting,
            Reply::Sync(SyncResult::failed(GroupError::UnknownMemberId)),
        );
    }
    match group.state {
        GroupState::Stable | GroupState::CompletingRebalance => prepare_rebalance(group, fx),
        GroupState::PreparingRebalance => maybe_complete_join(group, fx),
        GroupState::Empty | GroupState::Dead => {}
    }
}

pub(super) fn heartbeat_expired(group: &mut ClassicGroup, member_id: &MemberId, fx: &mut Effects) {
    if group.pending_members.remove(member_id) {
        maybe_complete_join(group, fx);
        return;
    }
    let Some(member) = group.members.get(member_id) else {
        return;
    };
    // Members parked in a rebalance count as alive, except new ones (whose timer is the new-member join timeout).
    let alive =
        !member.is_new && (member.awaiting_join.is_some() || member.awaiting_sync.is_some());
    if !alive {
        tracing::info!(group = %group.group_id, member = member_id.as_str(), "member failed to heartbeat; removing it");
        remove_member_and_update(group, member_id, fx);
    }
}

pub(super) fn join_timer_fired(group: &mut ClassicGroup, fx: &mut Effects) {
    if !group.is(GroupState::PreparingRebalance) {
        return;
    }
    if let Some(delay) = group.initial_delay {
        if group.new_member_added && delay.remaining_ms != 0 {
            group.new_member_added = false;
            let next_delay = fx.config.initial_rebalance_delay_ms.min(delay.remaining_ms);
            group.initial_delay = Some(InitialDelay {
                delay_ms: next_delay,
                remaining_ms: (delay.remaining_ms - delay.delay_ms).max(0),
            });
            fx.schedule(
                TimerKey::Join {
                    group: group.group_id.clone(),
                },
                next_delay,
            );
            return;
        }
    }
    complete_join(group, fx);
}

pub(super) fn sync_timer_fired(group: &mut ClassicGroup, fx: &mut Effects) {
    if !matches!(
        group.state,
        GroupState::CompletingRebalance | GroupState::Stable
    ) || group.pending_sync.is_empty()
    {
        return;
    }
    let missing: Vec<MemberId> = group.pending_sync.drain().collect();
    for id in missing {
        tracing::info!(group = %group.group_id, member = %id, "member did not sync in time; removing it");
        fx.cancel(&heartbeat_key(&group.group_id, &id));
        if let Some(member) = group.remove_member(&id) {
            if let Some(waiting) = member.awaiting_sync {
                fx.reply(
                    waiting,
                    Reply::Sync(SyncResult::failed(GroupError::UnknownMemberId)),
                );
            }
        }
    }
    if matches!(
        group.state,
        GroupState::CompletingRebalance | GroupState::Stable
    ) {
        prepare_rebalance(group, fx);
    }
}
