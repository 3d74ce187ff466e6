//! Partition leadership and ISR on the controller, as KRaft's ReplicationControlManager keeps them: who leads each
//! partition and which replicas are in sync change when brokers are fenced or unfenced, when a leader reports a new
//! ISR (AlterPartition, KIP-497), and on leader elections (ElectLeaders, and the periodic preferred-leader election
//! of `auto.leader.rebalance.enable`).
//!
//! Every change is a whole `Partition` record built by [`PartitionChange`] (partition_change.rs): its partition epoch
//! is one higher, its leader epoch one higher when the leader changed or a replica left; a leader's AlterPartition
//! built on an older partition state is refused, so two writers never both win. There is no ELR (KIP-966) yet, so an
//! ISR never becomes empty: its last member stays, as in Kafka without ELR.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::controller::handlers::ControllerResult;
use crate::controller::partition_change::{Acceptor, Election, PartitionChange};
use crate::controller::state::{ControllerState, PartitionRegistration, TopicRegistration};
use crate::controller::{ControllerError, QuorumController, TopicRef};
use crate::ids::{BrokerEpoch, BrokerId, LeaderEpoch, PartitionEpoch, PartitionIndex, TopicId};
use crate::record::{ConfigResource, MetadataRecord};

/// The leader of a partition that has none (an offline partition).
pub const NO_LEADER: BrokerId = BrokerId(-1);

/// The topic config (and broker default) that lets an out-of-sync replica lead rather than leave a partition offline.
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";

/// Elections one periodic preferred-leader pass writes at most per entry (Kafka's `maxElectionsPerImbalance`), so
/// that a large imbalance does not make one huge metadata entry.
const MAX_ELECTIONS_PER_IMBALANCE: usize = 1000;

/// Kafka's AlterPartitionRequest (v2+: topics by id), as a partition leader sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartitionRequest {
    pub broker_id: BrokerId,
    pub broker_epoch: BrokerEpoch,
    pub partitions: Vec<IsrChange>,
}

/// One partition of an AlterPartitionRequest: the ISR its leader wants, and the state it built that on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsrChange {
    pub topic_id: TopicId,
    pub partition: PartitionIndex,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
    pub new_isr: Vec<BrokerId>,
}

/// One partition's answer: its state after the request, or why the change was refused.
#[derive(Debug, Serialize, Deserialize)]
pub struct AlterPartitionResult {
    pub topic_id: TopicId,
    pub partition: PartitionIndex,
    pub result: Result<PartitionRegistration, ControllerError>,
}

/// Kafka's ElectionType of ElectLeaders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionType {
    /// Move leadership to the first replica, if it is in sync and unfenced.
    Preferred,
    /// Give a leaderless partition any unfenced replica as leader, in sync or not (may lose records).
    Unclean,
}

/// One partition's answer to ElectLeaders; `topic` is as the request named it (by name when it named none).
#[derive(Debug, Serialize, Deserialize)]
pub struct ElectLeadersResult {
    pub topic: TopicRef,
    pub partition: PartitionIndex,
    pub result: Result<(), ControllerError>,
}

/// `unclean.leader.election.enable` for the topic: its own config, else the brokers' dynamic default, else false.
pub(crate) fn unclean_enabled(state: &ControllerState, topic: &str) -> bool {
    let lookup = |resource: ConfigResource| {
        state
            .configs(&resource)
            .and_then(|configs| configs.get(UNCLEAN_LEADER_ELECTION_ENABLE))
            .map(|value| value.trim().eq_ignore_ascii_case("true"))
    };
    lookup(ConfigResource::Topic(topic.to_string()))
        .or_else(|| lookup(ConfigResource::BrokerDefault))
        .unwrap_or(false)
}

pub(crate) fn online_election(state: &ControllerState, topic: &TopicRegistration) -> Election {
    match unclean_enabled(state, &topic.name) {
        true => Election::Unclean,
        false => Election::Online,
    }
}

/// The partition changes of fencing `broker_id` (session expired, or it asked to be fenced or to shut down): it
/// leaves every ISR (except as the last member), and the partitions it led get the next in-sync unfenced replica,
/// an out-of-sync one where unclean election is enabled, or no leader. `state` is before the FenceBroker record.
pub fn on_broker_fenced(state: &ControllerState, broker_id: BrokerId) -> Vec<MetadataRecord> {
    let acceptor = Acceptor {
        state,
        fencing: Some(broker_id),
        unfencing: None,
    };
    let mut records = Vec::new();
    for topic in state.topics() {
        let election = online_election(state, topic);
        for (index, partition) in &topic.partitions {
            if !partition.isr.contains(&broker_id) && partition.leader != broker_id {
                continue;
            }
            let target_isr = partition
                .isr
                .iter()
                .copied()
                .filter(|b| *b != broker_id)
                .collect();
            let change = PartitionChange::new(partition, acceptor)
                .isr(target_isr)
                .election(election);
            if let Some(next) = change.build() {
                records.push(next.to_record(topic.topic_id, *index));
            }
        }
    }
    records
}

/// The partition changes of unfencing `broker_id`: leaderless partitions it can lead (in their ISR, or a replica
/// where unclean election is enabled) get a leader again. `state` is before the UnfenceBroker record.
pub fn on_broker_unfenced(state: &ControllerState, broker_id: BrokerId) -> Vec<MetadataRecord> {
    let acceptor = Acceptor {
        state,
        fencing: None,
        unfencing: Some(broker_id),
    };
    let mut records = Vec::new();
    for topic in state.topics() {
        let election = online_election(state, topic);
        for (index, partition) in &topic.partitions {
            if partition.leader != NO_LEADER || !partition.replicas.contains(&broker_id) {
                continue;
            }
            if let Some(next) = PartitionChange::new(partition, acceptor)
                .election(election)
                .build()
            {
                records.push(next.to_record(topic.topic_id, *index));
            }
        }
    }
    records
}

/// Adds to a batch of broker lifecycle records the partition changes each fence or unfence brings, each computed on
/// the state the batch's earlier records leave (so brokers fenced together are all out of the ISRs). Kafka's order:
/// a fenced broker's partition changes before its FenceBroker, an unfenced broker's after its UnfenceBroker.
pub(crate) fn with_partition_changes(
    state: &ControllerState,
    records: Vec<MetadataRecord>,
) -> Vec<MetadataRecord> {
    let mut scratch: Option<ControllerState> = None;
    let mut out = Vec::with_capacity(records.len());
    let count = records.len();
    for (i, record) in records.into_iter().enumerate() {
        let now = scratch.as_ref().unwrap_or(state);
        let step = match &record {
            MetadataRecord::FenceBroker { broker_id, .. } => {
                let mut step = on_broker_fenced(now, *broker_id);
                step.push(record);
                step
            }
            MetadataRecord::UnfenceBroker { broker_id, .. } => {
                let changes = on_broker_unfenced(now, *broker_id);
                std::iter::once(record).chain(changes).collect()
            }
            _ => vec![record],
        };
        // Only a later record of the batch reads the scratch state (so a lone record needs no copy), and a record
        // fails to replay there only when it would not apply for real either.
        if i + 1 < count {
            let next = scratch.get_or_insert_with(|| state.clone());
            for record in &step {
                let _ = next.replay(record);
            }
        }
        out.extend(step);
    }
    out
}

/// Kafka's AlterPartition: a partition leader shrinks or expands its ISR. Refused whole with STALE_BROKER_EPOCH from
/// another registration of the broker; per partition as Kafka's controller validates (in its order), and answered
/// with the partition's state after the request.
pub fn alter_partition(
    state: &ControllerState,
    request: &AlterPartitionRequest,
) -> ControllerResult<Result<Vec<AlterPartitionResult>, ControllerError>> {
    let stale = match state.broker(request.broker_id) {
        None => Some(format!(
            "No broker registration found for broker id {}.",
            request.broker_id
        )),
        Some(broker) if broker.broker_epoch != request.broker_epoch => Some(format!(
            "Expected broker epoch {}, but got broker epoch {}.",
            broker.broker_epoch, request.broker_epoch
        )),
        Some(_) => None,
    };
    if let Some(message) = stale {
        return ControllerResult {
            records: Vec::new(),
            response: Err(ControllerError::StaleBrokerEpoch(message)),
        };
    }
    // A partition named twice is validated the second time against what the first made of it.
    let mut changed: BTreeMap<(TopicId, PartitionIndex), PartitionRegistration> = BTreeMap::new();
    let mut records = Vec::new();
    let mut response = Vec::with_capacity(request.partitions.len());
    for isr_change in &request.partitions {
        let key = (isr_change.topic_id, isr_change.partition);
        let result = alter_one(state, request.broker_id, isr_change, changed.get(&key));
        let result = result.map(|(registration, is_new)| {
            if is_new {
                records.push(registration.to_record(key.0, key.1));
                changed.insert(key, registration.clone());
            }
            registration
        });
        response.push(AlterPartitionResult {
            topic_id: isr_change.topic_id,
            partition: isr_change.partition,
            result,
        });
    }
    ControllerResult {
        records,
        response: Ok(response),
    }
}

/// One partition of an AlterPartition: its state afterwards, and whether that is a change to write.
fn alter_one(
    state: &ControllerState,
    requester: BrokerId,
    request: &IsrChange,
    changed: Option<&PartitionRegistration>,
) -> Result<(PartitionRegistration, bool), ControllerError> {
    let topic = Some(request.topic_id)
        .filter(|id| !id.0.is_nil())
        .and_then(|id| state.topic(id))
        .ok_or(ControllerError::UnknownTopicId(request.topic_id))?;
    let partition = changed
        .or_else(|| topic.partitions.get(&request.partition))
        .ok_or_else(|| ControllerError::UnknownTopicOrPartition(topic.name.clone()))?;
    let name = format!("{}-{}", topic.name, request.partition);
    // A leader ahead of this controller's state heard of a change this node has not applied: it likely no
    // longer leads the quorum, and NOT_CONTROLLER has the broker look for the one that does.
    if request.leader_epoch > partition.leader_epoch
        || request.partition_epoch > partition.partition_epoch
    {
        return Err(ControllerError::NotController);
    }
    if request.leader_epoch < partition.leader_epoch {
        return Err(ControllerError::FencedLeaderEpoch(format!(
            "The leader epoch of {name} is {}, not {}.",
            partition.leader_epoch, request.leader_epoch
        )));
    }
    if requester != partition.leader {
        return Err(ControllerError::InvalidRequest(format!(
            "Broker {requester} does not lead {name}; broker {} does.",
            partition.leader
        )));
    }
    if request.partition_epoch < partition.partition_epoch {
        return Err(ControllerError::InvalidUpdateVersion(format!(
            "The partition epoch of {name} is {}, not {}.",
            partition.partition_epoch, request.partition_epoch
        )));
    }
    let mut seen = Vec::with_capacity(request.new_isr.len());
    for broker in &request.new_isr {
        if !partition.replicas.contains(broker) || seen.contains(broker) {
            return Err(ControllerError::InvalidRequest(format!(
                "The new ISR {:?} of {name} names broker {broker} twice or is not a subset of the replicas {:?}.",
                request.new_isr, partition.replicas
            )));
        }
        seen.push(*broker);
    }
    if !request.new_isr.contains(&partition.leader) {
        return Err(ControllerError::InvalidRequest(format!(
            "The new ISR {:?} of {name} does not include its leader {}.",
            request.new_isr, partition.leader
        )));
    }
    let ineligible: Vec<String> = request
        .new_isr
        .iter()
        .filter_map(|broker| match state.broker(*broker) {
            None => Some(format!("{broker} (not registered)")),
            Some(b) if b.fenced => Some(format!("{broker} (fenced)")),
            Some(_) => None,
        })
        .collect();
    if !ineligible.is_empty() {
        return Err(ControllerError::IneligibleReplica(format!(
            "The new ISR {:?} of {name} has ineligible replicas: {}.",
            request.new_isr,
            ineligible.join(", ")
        )));
    }
    // The new ISR may complete a reassignment, and with it elect a leader among the target replicas; Kafka then
    // answers NEW_LEADER_ELECTED, where Ferrite's leaders learn it from the metadata log as any leader change.
    match PartitionChange::new(partition, Acceptor::new(state))
        .isr(request.new_isr.clone())
        .build()
    {
        Some(next) => Ok((next, true)),
        None => Ok((partition.clone(), false)),
    }
}

/// Kafka's ElectLeaders. `None` elects for every partition and, as Kafka does, leaves out of the answer the
/// partitions that needed no election.
pub fn elect_leaders(
    state: &ControllerState,
    election: ElectionType,
    partitions: Option<&[(TopicRef, PartitionIndex)]>,
) -> ControllerResult<Vec<ElectLeadersResult>> {
    let mut changed: BTreeMap<(TopicId, PartitionIndex), PartitionRegistration> = BTreeMap::new();
    let mut records = Vec::new();
    let mut response = Vec::new();
    let mut elect = |topic: TopicRef, partition: PartitionIndex| {
        let result = elect_one(state, election, &topic, partition, &changed).map(|done| {
            if let Some((topic_id, registration)) = done {
                records.push(registration.to_record(topic_id, partition));
                changed.insert((topic_id, partition), registration);
            }
        });
        ElectLeadersResult {
            topic,
            partition,
            result,
        }
    };
    match partitions {
        Some(partitions) => {
            for (topic, partition) in partitions {
                response.push(elect(topic.clone(), *partition));
            }
        }
        None => {
            for topic in state.topics() {
                for partition in topic.partitions.keys() {
                    let result = elect(TopicRef::Name(topic.name.clone()), *partition);
                    if !matches!(result.result, Err(ControllerError::ElectionNotNeeded(_))) {
                        response.push(result);
                    }
                }
            }
        }
    }
    ControllerResult { records, response }
}

/// One partition's election: the change to write, if any.
fn elect_one(
    state: &ControllerState,
    election: ElectionType,
    topic: &TopicRef,
    partition: PartitionIndex,
    changed: &BTreeMap<(TopicId, PartitionIndex), PartitionRegistration>,
) -> Result<Option<(TopicId, PartitionRegistration)>, ControllerError> {
    let registration = state.resolve_topic(topic)?;
    let current = changed
        .get(&(registration.topic_id, partition))
        .or_else(|| registration.partitions.get(&partition))
        .ok_or_else(|| ControllerError::UnknownTopicOrPartition(registration.name.clone()))?;
    let name = format!("{}-{partition}", registration.name);
    let needed = match election {
        ElectionType::Preferred => current.replicas.first() != Some(&current.leader),
        ElectionType::Unclean => current.leader == NO_LEADER,
    };
    if !needed {
        return Err(ControllerError::ElectionNotNeeded(format!(
            "Leader election not needed for topic partition {name}."
        )));
    }
    let how = match election {
        ElectionType::Preferred => Election::Preferred,
        ElectionType::Unclean => Election::Unclean,
    };
    match PartitionChange::new(current, Acceptor::new(state))
        .election(how)
        .build()
    {
        Some(next) => Ok(Some((registration.topic_id, next))),
        None => Err(match election {
            ElectionType::Preferred => ControllerError::PreferredLeaderNotAvailable(format!(
                "The preferred leader of {name} is not in sync or not available."
            )),
            ElectionType::Unclean => ControllerError::EligibleLeadersNotAvailable(format!(
                "No replica of {name} is available to lead."
            )),
        }),
    }
}

/// The partitions whose preferred (first) replica is in sync and unfenced but does not lead: what a
/// preferred-leader election would move (`auto.leader.rebalance.enable`).
pub fn preferred_imbalance(state: &ControllerState) -> Vec<(TopicId, PartitionIndex)> {
    let mut imbalanced = Vec::new();
    for topic in state.topics() {
        for (index, partition) in &topic.partitions {
            let Some(&preferred) = partition.replicas.first() else {
                continue;
            };
            let available = state.broker(preferred).is_some_and(|b| !b.fenced);
            if partition.leader != preferred && partition.isr.contains(&preferred) && available {
                imbalanced.push((topic.topic_id, *index));
            }
        }
    }
    imbalanced
}

impl QuorumController {
    /// Kafka's AlterPartition: commits the ISR changes the request's partition leader asked for.
    pub async fn alter_partition(
        &self,
        request: AlterPartitionRequest,
    ) -> Result<Vec<AlterPartitionResult>, ControllerError> {
        let _write = self.writes.lock().await;
        self.catch_up().await.map_err(|f| f.to_error())?;
        let result = self.with_state(|state| alter_partition(state, &request));
        let response = result.response?;
        if !result.records.is_empty() {
            self.write(result.records).await.map_err(|f| f.to_error())?;
        }
        Ok(response)
    }

    /// Kafka's ElectLeaders; `None` elects for every partition.
    pub async fn elect_leaders(
        &self,
        election: ElectionType,
        partitions: Option<Vec<(TopicRef, PartitionIndex)>>,
    ) -> Result<Vec<ElectLeadersResult>, ControllerError> {
        let _write = self.writes.lock().await;
        self.catch_up().await.map_err(|f| f.to_error())?;
        let result = self.with_state(|state| elect_leaders(state, election, partitions.as_deref()));
        if !result.records.is_empty() {
            self.write(result.records).await.map_err(|f| f.to_error())?;
        }
        Ok(result.response)
    }

    /// Moves leadership back to preferred replicas that are in sync (`auto.leader.rebalance.enable`); run
    /// periodically on every controller, it does something only on the active one.
    pub async fn balance_partition_leaders(&self) -> Result<(), ControllerError> {
        if !self.is_active() || self.with_state(preferred_imbalance).is_empty() {
            return Ok(());
        }
        let _write = self.writes.lock().await;
        loop {
            self.catch_up().await.map_err(|f| f.to_error())?;
            let result = self.with_state(|state| {
                let imbalanced: Vec<(TopicRef, PartitionIndex)> = preferred_imbalance(state)
                    .into_iter()
                    .take(MAX_ELECTIONS_PER_IMBALANCE)
                    .map(|(topic_id, partition)| (TopicRef::Id(topic_id), partition))
                    .collect();
                elect_leaders(state, ElectionType::Preferred, Some(&imbalanced))
            });
            if result.records.is_empty() {
                return Ok(());
            }
            let more = result.records.len() >= MAX_ELECTIONS_PER_IMBALANCE;
            tracing::info!(
                partitions = result.records.len(),
                "moving leadership to preferred replicas"
            );
            self.write(result.records).await.map_err(|f| f.to_error())?;
            if !more {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
#[path = "replication_tests.rs"]
pub(crate) mod tests;
