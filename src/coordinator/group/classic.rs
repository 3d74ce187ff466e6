//! The classic group: members, generations, the leader and the protocol they agreed on, and the five states of
//! Kafka's ClassicGroup.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use kafka_protocol::indexmap::IndexMap;

use super::ids::{GroupId, GroupInstanceId, MemberId};
use super::records::{GroupMetadataValue, MemberMetadata};
use crate::coordinator::runtime::ResponderId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// Kafka's names, as ListGroups and DescribeGroups report them.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClassicGroupMember {
    pub member_id: MemberId,
    pub group_instance_id: Option<GroupInstanceId>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub awaiting_join: Option<ResponderId>,
    pub awaiting_sync: Option<ResponderId>,
    /// Joined during the current rebalance and not yet part of a generation.
    pub is_new: bool,
}

impl ClassicGroupMember {
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    pub fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }
}

/// When the join phase ends: the initial rebalance of an empty group waits group.initial.rebalance.delay.ms (and
/// again while members keep arriving, up to the rebalance timeout); later ones wait the rebalance timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialDelay {
    pub delay_ms: i64,
    pub remaining_ms: i64,
}

#[derive(Debug, Clone)]
pub struct ClassicGroup {
    pub group_id: GroupId,
    pub state: GroupState,
    pub previous_state: GroupState,
    pub state_timestamp_ms: Option<i64>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation: i32,
    pub leader: Option<MemberId>,
    /// In join order: the first member that joins leads.
    pub members: IndexMap<MemberId, ClassicGroupMember>,
    pub static_members: HashMap<GroupInstanceId, MemberId>,
    /// KIP-394: member ids handed out with MEMBER_ID_REQUIRED, waiting for the second join.
    pub pending_members: HashSet<MemberId>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pub pending_sync: HashSet<MemberId>,
    pub new_member_added: bool,
    pub initial_delay: Option<InitialDelay>,
    pub subscribed_topics: Option<HashSet<String>>,
}

impl ClassicGroup {
    pub fn new(group_id: GroupId, now_ms: i64) -> ClassicGroup {
        ClassicGroup {
            group_id,
            state: GroupState::Empty,
            previous_state: GroupState::Empty,
            state_timestamp_ms: Some(now_ms),
            protocol_type: None,
            protocol_name: None,
            generation: 0,
            leader: None,
            members: IndexMap::new(),
            static_members: HashMap::new(),
            pending_members: HashSet::new(),
            pending_sync: HashSet::new(),
            new_member_added: false,
            initial_delay: None,
            subscribed_topics: None,
        }
    }

    pub fn transition(&mut self, to: GroupState, now_ms: i64) {
        if self.state == GroupState::CompletingRebalance && to == GroupState::Stable {
            crate::metrics::broker_metrics().record_rebalance();
        }
        self.previous_state = self.state;
        self.state = to;
        self.state_timestamp_ms = Some(now_ms);
    }

    pub fn is(&self, state: GroupState) -> bool {
        self.state == state
    }

    pub fn is_leader(&self, member_id: &MemberId) -> bool {
        self.leader.as_ref() == Some(member_id)
    }

    pub fn awaiting_join_count(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.awaiting_join.is_some())
            .count()
    }

    pub fn all_members_joined(&self) -> bool {
        self.members.len() == self.awaiting_join_count() && self.pending_members.is_empty()
    }

    pub fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    /// Whether a member offering these protocols can join: the protocol type must match and one of its protocols
    /// must be supported by every current member.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(name, _)| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
    }

    /// The protocol every member supports that most members prefer (ties go to the earlier member's preference).
    pub fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(name, _)| name)
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
            })
            .collect();
        let mut votes: Vec<(&String, usize)> = candidates.iter().map(|c| (*c, 0)).collect();
        for member in self.members.values() {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(&n))
            {
                if let Some(vote) = votes.iter_mut().find(|(c, _)| *c == name) {
                    vote.1 += 1;
                }
            }
        }
        let best = votes.iter().map(|(_, n)| *n).max()?;
        votes
            .into_iter()
            .find(|(_, n)| *n == best)
            .map(|(name, _)| name.clone())
    }

    pub fn add_member(&mut self, member: ClassicGroupMember) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member.member_id.clone());
        }
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), member.member_id.clone());
        }
        self.members.insert(member.member_id.clone(), member);
    }

    /// Removes a member; the leader's role passes to the next member.
    pub fn remove_member(&mut self, member_id: &MemberId) -> Option<ClassicGroupMember> {
        let member = self.members.shift_remove(member_id)?;
        if let Some(instance) = &member.group_instance_id {
            if self.static_members.get(instance) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        self.pending_sync.remove(member_id);
        if self.is_leader(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
        Some(member)
    }

    /// A leader that did not rejoin hands the role to a member that did (Kafka's maybeElectNewJoinedLeader).
    pub fn elect_joined_leader(&mut self) {
        let leader_joined = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .is_some_and(|m| m.awaiting_join.is_some());
        if !leader_joined {
            self.leader = self
                .members
                .values()
                .find(|m| m.awaiting_join.is_some())
                .or_else(|| self.members.values().next())
                .map(|m| m.member_id.clone());
        }
    }

    /// The persisted form of the group as it stands.
    pub fn to_record_value(&self) -> GroupMetadataValue {
        let protocol = self.protocol_name.clone();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp_ms: self.state_timestamp_ms.unwrap_or(-1),
            members: self
                .members
                .values()
                .map(|m| MemberMetadata {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: protocol
                        .as_deref()
                        .map(|p| m.metadata(p))
                        .unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// The topics the members subscribe to, when they speak the consumer protocol (for OffsetDelete and offset
    /// expiry).
    pub fn compute_subscribed_topics(&self) -> Option<HashSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = HashSet::new();
        for member in self.members.values() {
            topics.extend(subscription_topics(&member.metadata(protocol))?);
        }
        Some(topics)
    }
}

/// The topics of a ConsumerProtocolSubscription (int16 version, then the message).
pub fn subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    let mut buf = Bytes::copy_from_slice(metadata);
    if buf.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    bytes::Buf::advance(&mut buf, 2);
    // Newer subscription versions only add fields at the end: read them as the newest this codec knows.
    let version = version.clamp(0, 3);
    ConsumerProtocolSubscription::decode(&mut buf, version)
        .ok()
        .map(|s| s.topics.into_iter().map(|t| t.to_string()).collect())
}
