//! The controller's pure handlers: validate a request against the state, and return the records
//! that would carry it out with the response to give once they commit. They change nothing;
//! only replaying the committed records does.

use std::collections::{BTreeMap, BTreeSet};

use crate::controller::placement::{self, UsableBroker};
use crate::controller::state::{collision_key, ControllerState};
use crate::controller::{ControllerError, CreateTopicSpec, CreatedTopic, DeletedTopic, TopicRef};
use crate::ids::{BrokerId, LeaderEpoch, PartitionEpoch, PartitionIndex, ProducerId, TopicId};
use crate::record::{ConfigResource, MetadataRecord};

/// Kafka's limit on topic name length: the longest name whose log directory name
/// (`<topic>-<partition>` plus a deletion suffix) still fits in 255 bytes.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// The most partitions one topic may be created with. KRaft bounds the records one request may
/// produce (`MAX_RECORDS_PER_USER_OP`, 10000); this keeps a hostile partition count from
/// building a huge batch in memory.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;

/// What a handler decided: the records to commit, and the response to give once they have.
#[derive(Debug)]
pub struct ControllerResult<T> {
    pub records: Vec<MetadataRecord>,
    pub response: T,
}

/// Creates topics. `placement_start` rotates the first broker of round-robin placement between
/// calls; `new_topic_id` draws topic ids (random in production, fixed in tests).
pub fn create_topics(
    state: &ControllerState,
    topics: &[CreateTopicSpec],
    placement_start: usize,
    new_topic_id: &mut dyn FnMut() -> TopicId,
) -> ControllerResult<Vec<Result<CreatedTopic, ControllerError>>> {
    let mut name_counts: BTreeMap<&str, usize> = BTreeMap::new();
    for spec in topics {
        *name_counts.entry(spec.name.as_str()).or_default() += 1;
    }
    let brokers = placement::usable_brokers(state);
    let mut records = Vec::new();
    let mut response = Vec::with_capacity(topics.len());
    // Topics accepted earlier in this request: later ones must not collide with them either.
    let mut accepted_keys: BTreeMap<String, String> = BTreeMap::new();
    let mut accepted_ids: BTreeSet<TopicId> = BTreeSet::new();

    for (i, spec) in topics.iter().enumerate() {
        if name_counts.get(spec.name.as_str()).copied().unwrap_or(0) > 1 {
            response.push(Err(ControllerError::InvalidRequest(format!(
                "Found multiple entries for topic '{}' in the request.",
                spec.name
            ))));
            continue;
        }
        let start = placement_start.wrapping_add(i);
        let accepted = (&accepted_keys, &accepted_ids);
        match create_topic(state, spec, &brokers, start, accepted, new_topic_id) {
            Ok((created, topic_records)) => {
                accepted_keys.insert(collision_key(&created.name), created.name.clone());
                accepted_ids.insert(created.topic_id);
                records.extend(topic_records);
                response.push(Ok(created));
            }
            Err(error) => response.push(Err(error)),
        }
    }
    ControllerResult { records, response }
}

fn create_topic(
    state: &ControllerState,
    spec: &CreateTopicSpec,
    brokers: &[UsableBroker],
    placement_start: usize,
    (accepted_keys, accepted_ids): (&BTreeMap<String, String>, &BTreeSet<TopicId>),
    new_topic_id: &mut dyn FnMut() -> TopicId,
) -> Result<(CreatedTopic, Vec<MetadataRecord>), ControllerError> {
    validate_topic_name(&spec.name)?;
    if state.topic_by_name(&spec.name).is_some() {
        return Err(ControllerError::TopicAlreadyExists(spec.name.clone()));
    }
    let collides = state.colliding_topic(&spec.name).or_else(|| {
        accepted_keys
            .get(&collision_key(&spec.name))
            .map(String::as_str)
    });
    if let Some(other) = collides {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic '{}' collides with existing topic: {}",
            spec.name, other
        )));
    }
    let assignment = if spec.assignments.is_empty() {
        place_replicas(
            brokers,
            spec.num_partitions,
            spec.replication_factor,
            placement_start,
        )?
    } else {
        validate_manual_assignment(state, &spec.assignments)?
    };
    let topic_id = fresh_topic_id(state, accepted_ids, new_topic_id)?;

    let mut records = Vec::with_capacity(1 + assignment.len() + spec.configs.len());
    records.push(MetadataRecord::Topic {
        name: spec.name.clone(),
        topic_id,
    });
    for (index, replicas) in (0..).zip(&assignment) {
        let Some(&leader) = replicas.first() else {
            continue;
        };
        records.push(MetadataRecord::Partition {
            topic_id,
            partition: PartitionIndex(index),
            replicas: replicas.clone(),
            isr: replicas.clone(),
            leader,
            leader_epoch: LeaderEpoch(0),
            partition_epoch: PartitionEpoch(0),
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        });
    }
    for (name, value) in &spec.configs {
        records.push(MetadataRecord::Config {
            resource: ConfigResource::Topic(spec.name.clone()),
            name: name.clone(),
            value: Some(value.clone()),
        });
    }
    let created = CreatedTopic {
        name: spec.name.clone(),
        topic_id,
        num_partitions: i32::try_from(assignment.len()).unwrap_or(i32::MAX),
        replication_factor: assignment
            .first()
            .map(|r| i16::try_from(r.len()).unwrap_or(i16::MAX))
            .unwrap_or(0),
        configs: spec.configs.clone(),
    };
    Ok((created, records))
}

/// Deletes topics by name or id: one `RemoveTopic` per topic.
pub fn delete_topics(
    state: &ControllerState,
    topics: &[TopicRef],
) -> ControllerResult<Vec<Result<DeletedTopic, ControllerError>>> {
    let mut ref_counts: BTreeMap<&TopicRef, usize> = BTreeMap::new();
    for topic in topics {
        *ref_counts.entry(topic).or_default() += 1;
    }
    let mut records = Vec::new();
    let mut removed = BTreeSet::new();
    let response = topics
        .iter()
        .map(|topic| {
            if ref_counts.get(topic).copied().unwrap_or(0) > 1 {
                return Err(ControllerError::InvalidRequest(format!(
                    "Found multiple entries for topic {topic} in the request."
                )));
            }
            let registration = state.resolve_topic(topic)?;
            // One topic named once by name and once by id: remove it once.
            if removed.insert(registration.topic_id) {
                records.push(MetadataRecord::RemoveTopic {
                    topic_id: registration.topic_id,
                });
            }
            Ok(DeletedTopic {
                name: registration.name.clone(),
                topic_id: registration.topic_id,
            })
        })
        .collect();
    ControllerResult { records, response }
}

/// Kafka's `Topic.validate`, with its messages.
pub fn validate_topic_name(name: &str) -> Result<(), ControllerError> {
    if name.is_empty() {
        return Err(ControllerError::InvalidTopic(
            "Topic name is illegal, it can't be empty".to_string(),
        ));
    }
    if name == "." || name == ".." {
        return Err(ControllerError::InvalidTopic(
            "Topic name cannot be \".\" or \"..\"".to_string(),
        ));
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LEN} characters, \
             topic name: {name}"
        )));
    }
    let legal = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-';
    if !name.chars().all(legal) {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than \
             ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// Checks the counts, then places the replicas (see `placement`).
fn place_replicas(
    brokers: &[UsableBroker],
    num_partitions: i32,
    replication_factor: i16,
    start: usize,
) -> Result<Vec<Vec<BrokerId>>, ControllerError> {
    if num_partitions < 1 {
        return Err(ControllerError::InvalidPartitions(
            "Number of partitions was set to an invalid non-positive value.".to_string(),
        ));
    }
    if num_partitions > MAX_PARTITIONS_PER_TOPIC {
        return Err(ControllerError::InvalidPartitions(format!(
            "Number of partitions {num_partitions} is more than the maximum of \
             {MAX_PARTITIONS_PER_TOPIC} a topic can be created with."
        )));
    }
    if replication_factor < 1 {
        return Err(ControllerError::InvalidReplicationFactor(
            "Replication factor must be larger than 0.".to_string(),
        ));
    }
    let rf = usize::try_from(replication_factor).unwrap_or(usize::MAX);
    let n = brokers.len();
    if rf > n {
        return Err(ControllerError::InvalidReplicationFactor(format!(
            "Unable to replicate the partition {rf} time(s): The target replication factor of \
             {rf} cannot be reached because only {n} broker(s) are registered."
        )));
    }
    let partitions = usize::try_from(num_partitions).unwrap_or(0);
    Ok(placement::assign(brokers, partitions, rf, start))
}

/// KRaft's checks on a manual assignment; returns the replicas indexed by partition.
fn validate_manual_assignment(
    state: &ControllerState,
    assignments: &[(PartitionIndex, Vec<BrokerId>)],
) -> Result<Vec<Vec<BrokerId>>, ControllerError> {
    let invalid = |m: String| Err(ControllerError::InvalidReplicaAssignment(m));
    if assignments.len() > usize::try_from(MAX_PARTITIONS_PER_TOPIC).unwrap_or(usize::MAX) {
        return Err(ControllerError::InvalidPartitions(format!(
            "The manual partition assignment has {} partitions, more than the maximum of \
             {MAX_PARTITIONS_PER_TOPIC} a topic can be created with.",
            assignments.len()
        )));
    }
    let mut by_partition: BTreeMap<PartitionIndex, &Vec<BrokerId>> = BTreeMap::new();
    for (partition, replicas) in assignments {
        if by_partition.insert(*partition, replicas).is_some() {
            return invalid(format!(
                "The manual partition assignment includes partition {partition} more than once."
            ));
        }
    }
    let mut replication_factor = None;
    let mut result = Vec::with_capacity(by_partition.len());
    for (expected, (partition, replicas)) in by_partition.into_iter().enumerate() {
        if usize::try_from(partition.0).ok() != Some(expected) {
            return invalid(format!(
                "The manual partition assignment includes partition {partition}, but partitions \
                 must be a consecutive 0-based sequence."
            ));
        }
        if replicas.is_empty() {
            return invalid(
                "The manual partition assignment includes an empty replica list.".to_string(),
            );
        }
        let mut seen = BTreeSet::new();
        for broker in replicas {
            if !seen.insert(*broker) {
                return invalid(format!(
                    "The manual partition assignment includes the partition {partition} with \
                     duplicate replica {broker}."
                ));
            }
            if state.broker(*broker).is_none() {
                return invalid(format!(
                    "The manual partition assignment includes broker {broker}, but no such \
                     broker is registered."
                ));
            }
        }
        match replication_factor {
            None => replication_factor = Some(replicas.len()),
            Some(rf) if rf != replicas.len() => {
                return invalid(
                    "All partitions in the manual partition assignment must have the same \
                     replication factor."
                        .to_string(),
                );
            }
            Some(_) => {}
        }
        result.push(replicas.clone());
    }
    Ok(result)
}

/// A v4 id that is neither nil nor in use. A random generator never loops here; the bound only
/// keeps a broken generator from hanging the controller.
fn fresh_topic_id(
    state: &ControllerState,
    taken: &BTreeSet<TopicId>,
    new_topic_id: &mut dyn FnMut() -> TopicId,
) -> Result<TopicId, ControllerError> {
    for _ in 0..16 {
        let id = new_topic_id();
        if !id.0.is_nil() && state.topic(id).is_none() && !taken.contains(&id) {
            return Ok(id);
        }
    }
    Err(ControllerError::InvalidRequest(
        "Could not draw an unused topic id.".to_string(),
    ))
}

/// Producer ids per block, as Kafka's controller hands them out (`ProducerIdManager`'s block size).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// A block of producer ids: `first`, `first + 1`, ... `first + size - 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProducerIdBlock {
    pub first: ProducerId,
    pub size: i64,
}

/// Kafka's AllocateProducerIds: the next block for `broker_id`.
pub fn allocate_producer_ids(
    state: &ControllerState,
    broker_id: BrokerId,
) -> ControllerResult<Result<ProducerIdBlock, ControllerError>> {
    if state.broker(broker_id).is_none() {
        return ControllerResult {
            records: Vec::new(),
            response: Err(ControllerError::InvalidRequest(format!(
                "Broker {broker_id} is not registered."
            ))),
        };
    }
    let first = state.next_producer_id();
    let Some(next) = first.0.checked_add(PRODUCER_ID_BLOCK_SIZE) else {
        return ControllerResult {
            records: Vec::new(),
            response: Err(ControllerError::InvalidRequest(
                "Producer ids are exhausted.".into(),
            )),
        };
    };
    ControllerResult {
        records: vec![MetadataRecord::ProducerIds {
            broker_id,
            next_producer_id: ProducerId(next),
        }],
        response: Ok(ProducerIdBlock {
            first,
            size: PRODUCER_ID_BLOCK_SIZE,
        }),
    }
}

#[cfg(test)]
#[path = "handlers_tests.rs"]
mod tests;
