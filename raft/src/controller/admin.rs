//! Pure handlers for topic administration after creation: CreatePartitions and config changes. Like the handlers
//! in `handlers.rs` they validate against the state and return records; only replaying them changes anything.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::controller::handlers::{ControllerResult, MAX_PARTITIONS_PER_TOPIC};
use crate::controller::placement::{self, UsableBroker};
use crate::controller::state::ControllerState;
use crate::controller::ControllerError;
use crate::ids::{BrokerId, LeaderEpoch, PartitionEpoch, PartitionIndex};
use crate::record::{ConfigResource, MetadataRecord};

/// One topic of a CreatePartitions request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePartitionsSpec {
    pub name: String,
    /// The new total partition count.
    pub count: i32,
    /// Replicas of each new partition, in order; `None` lets the controller place them.
    pub assignments: Option<Vec<Vec<BrokerId>>>,
}

/// One change to one config of a resource (IncrementalAlterConfigs' operations).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigOp {
    Set(String, String),
    Delete(String),
    /// Adds the comma-separated items not already in the list (which starts from its default when unset).
    Append(String, String),
    /// Removes the comma-separated items from the list.
    Subtract(String, String),
}

/// The changes to one resource. With `replace` (the legacy AlterConfigs) every dynamic config the request does not
/// set is deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigAlteration {
    pub resource: ConfigResource,
    pub ops: Vec<ConfigOp>,
    pub replace: bool,
}

/// What the broker knows about configs and the controller does not: how to check a value, and defaults.
pub trait ConfigSchema: Send + Sync {
    /// Checks one resulting `name = value`; the error is the message for INVALID_CONFIG.
    fn validate(&self, resource: &ConfigResource, name: &str, value: &str) -> Result<(), String>;
    /// The value a list config has when no dynamic value is set, for APPEND.
    fn default_value(&self, resource: &ConfigResource, name: &str) -> Option<String>;
}

/// Adds partitions to existing topics (grow only), placing new replicas round-robin from `placement_start` unless
/// the request assigns them.
pub fn create_partitions(
    state: &ControllerState,
    specs: &[CreatePartitionsSpec],
    placement_start: usize,
) -> ControllerResult<Vec<Result<(), ControllerError>>> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for spec in specs {
        *counts.entry(spec.name.as_str()).or_default() += 1;
    }
    let brokers = placement::usable_brokers(state);
    let mut records = Vec::new();
    let response = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            if counts.get(spec.name.as_str()).copied().unwrap_or(0) > 1 {
                return Err(ControllerError::InvalidRequest(format!(
                    "Create topic partitions request for topic '{}' is a duplicate.",
                    spec.name
                )));
            }
            let new = grow_topic(state, spec, &brokers, placement_start.wrapping_add(i))?;
            records.extend(new);
            Ok(())
        })
        .collect();
    ControllerResult { records, response }
}

fn grow_topic(
    state: &ControllerState,
    spec: &CreatePartitionsSpec,
    brokers: &[UsableBroker],
    start: usize,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let topic = state
        .topic_by_name(&spec.name)
        .ok_or_else(|| ControllerError::UnknownTopicOrPartition(spec.name.clone()))?;
    let current = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    if spec.count < current {
        return Err(ControllerError::InvalidPartitions(format!(
            "The topic {} currently has {current} partition(s); {} would not be an increase.",
            spec.name, spec.count
        )));
    }
    if spec.count == current {
        return Err(ControllerError::InvalidPartitions(format!(
            "Topic already has {current} partition(s)."
        )));
    }
    if spec.count > MAX_PARTITIONS_PER_TOPIC {
        return Err(ControllerError::InvalidPartitions(format!(
            "Number of partitions {} is more than the maximum of {MAX_PARTITIONS_PER_TOPIC}.",
            spec.count
        )));
    }
    let additional = usize::try_from(spec.count - current).unwrap_or(0);
    let replication_factor = topic
        .partitions
        .values()
        .next()
        .map_or(1, |p| p.replicas.len());
    let assignment = match &spec.assignments {
        Some(assignments) => {
            if assignments.len() != additional {
                return Err(ControllerError::InvalidReplicaAssignment(format!(
                    "Attempted to add {additional} additional partition(s), but only {} assignment(s) \
                     were specified.",
                    assignments.len()
                )));
            }
            for replicas in assignments {
                validate_replicas(state, replicas, Some(replication_factor))?;
            }
            assignments.clone()
        }
        None => {
            if replication_factor > brokers.len() || brokers.is_empty() {
                return Err(ControllerError::InvalidReplicationFactor(format!(
                    "Unable to replicate the partition {replication_factor} time(s): only {} broker(s) \
                     are registered.",
                    brokers.len()
                )));
            }
            // Continuing the rotation where the existing partitions left it.
            let start = start.wrapping_add(usize::try_from(current).unwrap_or(0));
            placement::assign(brokers, additional, replication_factor, start)
        }
    };
    Ok(assignment
        .into_iter()
        .zip(current..)
        .filter_map(|(replicas, index)| {
            let leader = *replicas.first()?;
            Some(MetadataRecord::Partition {
                topic_id: topic.topic_id,
                partition: PartitionIndex(index),
                isr: replicas.clone(),
                replicas,
                leader,
                leader_epoch: LeaderEpoch(0),
                partition_epoch: PartitionEpoch(0),
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            })
        })
        .collect())
}

/// Kafka's `validateManualPartitionAssignment`: a non-empty list of distinct registered brokers, as long as
/// `replication_factor` when one is given (new partitions of a topic; a reassignment may change it).
pub(crate) fn validate_replicas(
    state: &ControllerState,
    replicas: &[BrokerId],
    replication_factor: Option<usize>,
) -> Result<(), ControllerError> {
    let invalid = |m: String| Err(ControllerError::InvalidReplicaAssignment(m));
    if replicas.is_empty() {
        return invalid("The manual partition assignment includes an empty replica list.".into());
    }
    if let Some(replication_factor) = replication_factor.filter(|rf| *rf != replicas.len()) {
        return invalid(format!(
            "The manual partition assignment includes a partition with {} replica(s), but this is not \
             consistent with previous partitions, which have {replication_factor} replica(s).",
            replicas.len()
        ));
    }
    let mut seen = BTreeSet::new();
    for broker in replicas {
        if !seen.insert(*broker) {
            return invalid(format!(
                "The manual partition assignment includes duplicate replica {broker}."
            ));
        }
        if state.broker(*broker).is_none() {
            return invalid(format!(
                "The manual partition assignment includes broker {broker}, but no such broker is \
                 registered."
            ));
        }
    }
    Ok(())
}

/// Applies config changes to resources: one `Config` record per config whose value changes.
pub fn alter_configs(
    state: &ControllerState,
    alterations: &[ConfigAlteration],
    schema: &dyn ConfigSchema,
) -> ControllerResult<Vec<Result<(), ControllerError>>> {
    let mut records = Vec::new();
    let response = alterations
        .iter()
        .map(|alteration| {
            let changes = alter_resource(state, alteration, schema)?;
            records.extend(changes);
            Ok(())
        })
        .collect();
    ControllerResult { records, response }
}

fn alter_resource(
    state: &ControllerState,
    alteration: &ConfigAlteration,
    schema: &dyn ConfigSchema,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let resource = &alteration.resource;
    match resource {
        ConfigResource::Topic(name) => {
            if state.topic_by_name(name).is_none() {
                return Err(ControllerError::UnknownTopicOrPartition(name.clone()));
            }
        }
        ConfigResource::Broker(id) => {
            if state.broker(*id).is_none() {
                return Err(ControllerError::InvalidRequest(format!(
                    "Broker {id} is not registered."
                )));
            }
        }
        // As in Kafka, a group's configs may be set before (or without) the group.
        ConfigResource::BrokerDefault | ConfigResource::Group(_) => {}
    }
    let old = state.configs(resource).cloned().unwrap_or_default();
    let mut new = if alteration.replace {
        BTreeMap::new()
    } else {
        old.clone()
    };
    let list_of = |map: &BTreeMap<String, String>, name: &str| -> Vec<String> {
        map.get(name)
            .cloned()
            .or_else(|| schema.default_value(resource, name))
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(String::from)
            .collect()
    };
    for op in &alteration.ops {
        match op {
            ConfigOp::Set(name, value) => {
                new.insert(name.clone(), value.clone());
            }
            ConfigOp::Delete(name) => {
                new.remove(name);
            }
            ConfigOp::Append(name, value) => {
                let mut items = list_of(&new, name);
                for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                    if !items.iter().any(|existing| existing == item) {
                        items.push(item.to_string());
                    }
                }
                new.insert(name.clone(), items.join(","));
            }
            ConfigOp::Subtract(name, value) => {
                let remove: Vec<&str> = value.split(',').map(str::trim).collect();
                let items: Vec<String> = list_of(&new, name)
                    .into_iter()
                    .filter(|item| !remove.contains(&item.as_str()))
                    .collect();
                if items.is_empty() {
                    new.remove(name);
                } else {
                    new.insert(name.clone(), items.join(","));
                }
            }
        }
    }
    let mut records = Vec::new();
    for (name, value) in &new {
        if old.get(name) != Some(value) {
            schema
                .validate(resource, name, value)
                .map_err(ControllerError::InvalidConfig)?;
            records.push(MetadataRecord::Config {
                resource: resource.clone(),
                name: name.clone(),
                value: Some(value.clone()),
            });
        }
    }
    for name in old.keys().filter(|name| !new.contains_key(*name)) {
        records.push(MetadataRecord::Config {
            resource: resource.clone(),
            name: name.clone(),
            value: None,
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TopicId;

    struct Schema;
    impl ConfigSchema for Schema {
        fn validate(&self, _: &ConfigResource, name: &str, value: &str) -> Result<(), String> {
            if name == "retention.ms" && value.parse::<i64>().is_err() {
                return Err(format!("Invalid value {value} for configuration {name}"));
            }
            Ok(())
        }
        fn default_value(&self, _: &ConfigResource, name: &str) -> Option<String> {
            (name == "cleanup.policy").then(|| "delete".to_string())
        }
    }

    fn state() -> ControllerState {
        let topic_id = TopicId(uuid::Uuid::from_u128(1));
        ControllerState::from_records(&[
            MetadataRecord::RegisterBroker {
                broker_id: BrokerId(1),
                host: "h".into(),
                port: 9092,
                rack: None,
                incarnation_id: None,
                broker_epoch: None,
                fenced: false,
            },
            MetadataRecord::Topic {
                name: "t".into(),
                topic_id,
            },
            MetadataRecord::Partition {
                topic_id,
                partition: PartitionIndex(0),
                replicas: vec![BrokerId(1)],
                isr: vec![BrokerId(1)],
                leader: BrokerId(1),
                leader_epoch: LeaderEpoch(0),
                partition_epoch: PartitionEpoch(0),
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            },
            MetadataRecord::Config {
                resource: ConfigResource::Topic("t".into()),
                name: "retention.ms".into(),
                value: Some("1000".into()),
            },
        ])
    }

    fn spec(count: i32) -> CreatePartitionsSpec {
        CreatePartitionsSpec {
            name: "t".into(),
            count,
            assignments: None,
        }
    }

    #[test]
    fn partitions_only_grow() {
        let state = state();
        let grown = create_partitions(&state, &[spec(3)], 0);
        assert!(grown.response[0].is_ok());
        assert_eq!(grown.records.len(), 2);
        for count in [0, 1] {
            let result = create_partitions(&state, &[spec(count)], 0);
            assert!(matches!(
                result.response[0],
                Err(ControllerError::InvalidPartitions(_))
            ));
            assert!(result.records.is_empty());
        }
        let unknown = CreatePartitionsSpec {
            name: "nope".into(),
            ..spec(2)
        };
        assert!(matches!(
            create_partitions(&state, &[unknown], 0).response[0],
            Err(ControllerError::UnknownTopicOrPartition(_))
        ));
        let bad = CreatePartitionsSpec {
            assignments: Some(vec![vec![BrokerId(7)]]),
            ..spec(2)
        };
        assert!(matches!(
            create_partitions(&state, &[bad], 0).response[0],
            Err(ControllerError::InvalidReplicaAssignment(_))
        ));
    }

    #[test]
    fn incremental_ops_and_replace() {
        let state = state();
        let topic = ConfigResource::Topic("t".into());
        let alter = |ops: Vec<ConfigOp>, replace: bool| {
            alter_configs(
                &state,
                &[ConfigAlteration {
                    resource: topic.clone(),
                    ops,
                    replace,
                }],
                &Schema,
            )
        };
        let result = alter(
            vec![ConfigOp::Append("cleanup.policy".into(), "compact".into())],
            false,
        );
        assert_eq!(
            result.records,
            vec![MetadataRecord::Config {
                resource: topic.clone(),
                name: "cleanup.policy".into(),
                value: Some("delete,compact".into()),
            }]
        );
        let result = alter(vec![ConfigOp::Set("segment.ms".into(), "5".into())], true);
        assert_eq!(result.records.len(), 2, "{:?}", result.records);
        let result = alter(
            vec![ConfigOp::Set("retention.ms".into(), "x".into())],
            false,
        );
        assert!(matches!(
            result.response[0],
            Err(ControllerError::InvalidConfig(_))
        ));
        let result = alter(vec![ConfigOp::Delete("retention.ms".into())], false);
        assert_eq!(
            result.records,
            vec![MetadataRecord::Config {
                resource: topic,
                name: "retention.ms".into(),
                value: None,
            }]
        );
    }
}
