//! The controller's view of the cluster, built only by replaying committed metadata records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{
    BrokerEpoch, BrokerId, IncarnationId, LeaderEpoch, PartitionEpoch, PartitionIndex, ProducerId,
    TopicId,
};
use crate::record::{ConfigResource, MetadataRecord};

/// A record that does not fit the state it is replayed on. Committed records are the same on
/// every replica, so every replica skips the same record the same way; the error is for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("record for unknown topic id {0}")]
    UnknownTopicId(TopicId),
    #[error("topic name {name} is already used by topic id {existing}")]
    TopicNameInUse { name: String, existing: TopicId },
    #[error("broker {broker_id} has no registration of epoch {broker_epoch}")]
    StaleBrokerEpoch {
        broker_id: BrokerId,
        broker_epoch: BrokerEpoch,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub broker_id: BrokerId,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    pub incarnation_id: Option<IncarnationId>,
    /// The offset of the registration's record: a broker is caught up once it has applied that far.
    pub broker_epoch: BrokerEpoch,
    /// Fenced brokers are left out of Metadata and get no new replicas.
    pub fenced: bool,
}

/// Replays a broker lifecycle record (RegisterBroker, FenceBroker, UnfenceBroker) of the entry at `offset` into a
/// broker map; the controller's state and every broker's MetadataImage share it, so they cannot disagree. Other
/// records change nothing. A registration without an explicit epoch takes the offset, as Kafka's do; fencing
/// applies only to the registration of the epoch it names.
pub fn replay_broker(
    brokers: &mut BTreeMap<BrokerId, BrokerRegistration>,
    record: &MetadataRecord,
    offset: u64,
) -> Result<(), ReplayError> {
    match record {
        MetadataRecord::RegisterBroker {
            broker_id,
            host,
            port,
            rack,
            incarnation_id,
            broker_epoch,
            fenced,
        } => {
            let offset = BrokerEpoch(i64::try_from(offset).unwrap_or(i64::MAX));
            brokers.insert(
                *broker_id,
                BrokerRegistration {
                    broker_id: *broker_id,
                    host: host.clone(),
                    port: *port,
                    rack: rack.clone(),
                    incarnation_id: *incarnation_id,
                    broker_epoch: broker_epoch.unwrap_or(offset),
                    fenced: *fenced,
                },
            );
        }
        MetadataRecord::FenceBroker {
            broker_id,
            broker_epoch,
        }
        | MetadataRecord::UnfenceBroker {
            broker_id,
            broker_epoch,
        } => {
            let broker = brokers
                .get_mut(broker_id)
                .filter(|b| b.broker_epoch == *broker_epoch)
                .ok_or(ReplayError::StaleBrokerEpoch {
                    broker_id: *broker_id,
                    broker_epoch: *broker_epoch,
                })?;
            broker.fenced = matches!(record, MetadataRecord::FenceBroker { .. });
        }
        _ => {}
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRegistration {
    /// During a reassignment: the target replicas, then those being removed (KRaft's order).
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    pub leader: BrokerId,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
    /// The replicas a reassignment in progress adds (KIP-455); empty when none is.
    #[serde(default)]
    pub adding_replicas: Vec<BrokerId>,
    /// The replicas a reassignment in progress removes once the target replicas are all in sync.
    #[serde(default)]
    pub removing_replicas: Vec<BrokerId>,
}

impl PartitionRegistration {
    /// Whether a reassignment is in progress (Kafka's `PartitionRegistration.isReassigning`).
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The record that sets the partition to this state.
    pub fn to_record(&self, topic_id: TopicId, partition: PartitionIndex) -> MetadataRecord {
        MetadataRecord::Partition {
            topic_id,
            partition,
            replicas: self.replicas.clone(),
            isr: self.isr.clone(),
            leader: self.leader,
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            adding_replicas: self.adding_replicas.clone(),
            removing_replicas: self.removing_replicas.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicRegistration {
    pub name: String,
    pub topic_id: TopicId,
    pub partitions: BTreeMap<PartitionIndex, PartitionRegistration>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ControllerState {
    brokers: BTreeMap<BrokerId, BrokerRegistration>,
    topics: BTreeMap<TopicId, TopicRegistration>,
    topic_ids_by_name: BTreeMap<String, TopicId>,
    configs: BTreeMap<ConfigResource, BTreeMap<String, String>>,
    /// The last producer id block handed out: its broker, and the first id not yet taken.
    producer_ids: Option<(BrokerId, ProducerId)>,
}

impl ControllerState {
    /// Replays records in order; a record that does not fit is skipped (see [`ReplayError`]).
    pub fn from_records(records: &[MetadataRecord]) -> ControllerState {
        let mut state = ControllerState::default();
        for record in records {
            if let Err(error) = state.replay(record) {
                tracing::warn!(%error, ?record, "skipping metadata record");
            }
        }
        state
    }

    /// Replays a record whose log offset does not matter (tests, snapshots: their registrations carry epochs).
    pub fn replay(&mut self, record: &MetadataRecord) -> Result<(), ReplayError> {
        self.replay_at(record, 0)
    }

    /// The only way state changes: replays a record of the log entry at `offset`. A registration without an
    /// explicit epoch takes that offset as its broker epoch, as Kafka's do.
    pub fn replay_at(&mut self, record: &MetadataRecord, offset: u64) -> Result<(), ReplayError> {
        match record {
            MetadataRecord::RegisterBroker { .. }
            | MetadataRecord::FenceBroker { .. }
            | MetadataRecord::UnfenceBroker { .. } => {
                replay_broker(&mut self.brokers, record, offset)?;
            }
            MetadataRecord::Topic { name, topic_id } => {
                if let Some(existing) = self.topic_ids_by_name.get(name) {
                    if existing != topic_id {
                        return Err(ReplayError::TopicNameInUse {
                            name: name.clone(),
                            existing: *existing,
                        });
                    }
                    return Ok(());
                }
                self.topic_ids_by_name.insert(name.clone(), *topic_id);
                self.topics.insert(
                    *topic_id,
                    TopicRegistration {
                        name: name.clone(),
                        topic_id: *topic_id,
                        partitions: BTreeMap::new(),
                    },
                );
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
                adding_replicas,
                removing_replicas,
            } => {
                let topic = self
                    .topics
                    .get_mut(topic_id)
                    .ok_or(ReplayError::UnknownTopicId(*topic_id))?;
                topic.partitions.insert(
                    *partition,
                    PartitionRegistration {
                        replicas: replicas.clone(),
                        isr: isr.clone(),
                        leader: *leader,
                        leader_epoch: *leader_epoch,
                        partition_epoch: *partition_epoch,
                        adding_replicas: adding_replicas.clone(),
                        removing_replicas: removing_replicas.clone(),
                    },
                );
            }
            MetadataRecord::Config {
                resource,
                name,
                value,
            } => match value {
                Some(value) => {
                    self.configs
                        .entry(resource.clone())
                        .or_default()
                        .insert(name.clone(), value.clone());
                }
                None => {
                    if let Some(configs) = self.configs.get_mut(resource) {
                        configs.remove(name);
                        if configs.is_empty() {
                            self.configs.remove(resource);
                        }
                    }
                }
            },
            MetadataRecord::RemoveTopic { topic_id } => {
                let topic = self
                    .topics
                    .remove(topic_id)
                    .ok_or(ReplayError::UnknownTopicId(*topic_id))?;
                self.topic_ids_by_name.remove(&topic.name);
                // As in KRaft: a deleted topic's configs go with it, so a new topic of the same
                // name starts from the defaults.
                self.configs.remove(&ConfigResource::Topic(topic.name));
            }
            MetadataRecord::ProducerIds {
                broker_id,
                next_producer_id,
            } => {
                // Blocks only move forward; an older record (replayed out of place) changes nothing.
                if *next_producer_id > self.next_producer_id() {
                    self.producer_ids = Some((*broker_id, *next_producer_id));
                }
            }
        }
        Ok(())
    }

    /// Records that rebuild this state from empty: a snapshot's contents.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut records = Vec::new();
        for broker in self.brokers.values() {
            records.push(MetadataRecord::RegisterBroker {
                broker_id: broker.broker_id,
                host: broker.host.clone(),
                port: broker.port,
                rack: broker.rack.clone(),
                incarnation_id: broker.incarnation_id,
                broker_epoch: Some(broker.broker_epoch),
                fenced: broker.fenced,
            });
        }
        for topic in self.topics.values() {
            records.push(MetadataRecord::Topic {
                name: topic.name.clone(),
                topic_id: topic.topic_id,
            });
            for (partition, registration) in &topic.partitions {
                records.push(registration.to_record(topic.topic_id, *partition));
            }
        }
        for (resource, configs) in &self.configs {
            for (name, value) in configs {
                records.push(MetadataRecord::Config {
                    resource: resource.clone(),
                    name: name.clone(),
                    value: Some(value.clone()),
                });
            }
        }
        if let Some((broker_id, next_producer_id)) = self.producer_ids {
            records.push(MetadataRecord::ProducerIds {
                broker_id,
                next_producer_id,
            });
        }
        records
    }

    /// The first producer id no block has taken yet.
    pub fn next_producer_id(&self) -> ProducerId {
        self.producer_ids.map_or(ProducerId(0), |(_, next)| next)
    }

    pub fn brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values()
    }

    pub fn broker(&self, broker_id: BrokerId) -> Option<&BrokerRegistration> {
        self.brokers.get(&broker_id)
    }

    /// The brokers new replicas may go to: registered and unfenced (Kafka's usable brokers).
    pub fn unfenced_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    pub fn topics(&self) -> impl Iterator<Item = &TopicRegistration> {
        self.topics.values()
    }

    pub fn topic(&self, topic_id: TopicId) -> Option<&TopicRegistration> {
        self.topics.get(&topic_id)
    }

    pub fn topic_by_name(&self, name: &str) -> Option<&TopicRegistration> {
        self.topic_ids_by_name
            .get(name)
            .and_then(|id| self.topics.get(id))
    }

    /// The topic a request names, by name or by id; UNKNOWN_TOPIC_OR_PARTITION or UNKNOWN_TOPIC_ID when none.
    pub fn resolve_topic(
        &self,
        topic: &super::TopicRef,
    ) -> Result<&TopicRegistration, super::ControllerError> {
        match topic {
            super::TopicRef::Name(name) => self
                .topic_by_name(name)
                .ok_or_else(|| super::ControllerError::UnknownTopicOrPartition(name.clone())),
            super::TopicRef::Id(id) => self
                .topic(*id)
                .ok_or(super::ControllerError::UnknownTopicId(*id)),
        }
    }

    pub fn configs(&self, resource: &ConfigResource) -> Option<&BTreeMap<String, String>> {
        self.configs.get(resource)
    }

    /// An existing topic whose name differs from `name` but is the same once '.' is read as '_'
    /// (both map to the same metric names in Kafka, which is why Kafka rejects the pair).
    pub fn colliding_topic(&self, name: &str) -> Option<&str> {
        let key = collision_key(name);
        self.topic_ids_by_name
            .keys()
            .find(|existing| existing.as_str() != name && collision_key(existing) == key)
            .map(String::as_str)
    }
}

pub(crate) fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic_id(n: u128) -> TopicId {
        TopicId(uuid::Uuid::from_u128(n))
    }

    fn partition(topic: TopicId, index: i32, replicas: &[i32]) -> MetadataRecord {
        let replicas: Vec<BrokerId> = replicas.iter().copied().map(BrokerId).collect();
        MetadataRecord::Partition {
            topic_id: topic,
            partition: PartitionIndex(index),
            isr: replicas.clone(),
            leader: replicas[0],
            replicas,
            leader_epoch: LeaderEpoch(0),
            partition_epoch: PartitionEpoch(0),
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }

    fn sample() -> Vec<MetadataRecord> {
        vec![
            MetadataRecord::RegisterBroker {
                broker_id: BrokerId(1),
                host: "a".into(),
                port: 9092,
                rack: None,
                incarnation_id: None,
                broker_epoch: None,
                fenced: false,
            },
            MetadataRecord::Topic {
                name: "orders".into(),
                topic_id: topic_id(1),
            },
            partition(topic_id(1), 0, &[1]),
            partition(topic_id(1), 1, &[1]),
            MetadataRecord::Config {
                resource: ConfigResource::Topic("orders".into()),
                name: "cleanup.policy".into(),
                value: Some("compact".into()),
            },
            MetadataRecord::Config {
                resource: ConfigResource::Broker(BrokerId(1)),
                name: "log.retention.ms".into(),
                value: Some("1000".into()),
            },
        ]
    }

    #[test]
    fn replay_builds_brokers_topics_partitions_and_configs() {
        let state = ControllerState::from_records(&sample());
        assert_eq!(state.broker(BrokerId(1)).map(|b| b.port), Some(9092));
        let topic = state.topic_by_name("orders");
        assert_eq!(topic.map(|t| t.topic_id), Some(topic_id(1)));
        assert_eq!(topic.map(|t| t.partitions.len()), Some(2));
        assert_eq!(
            state
                .configs(&ConfigResource::Topic("orders".into()))
                .and_then(|c| c.get("cleanup.policy"))
                .map(String::as_str),
            Some("compact")
        );
    }

    #[test]
    fn to_records_rebuilds_the_same_state() {
        let state = ControllerState::from_records(&sample());
        assert_eq!(ControllerState::from_records(&state.to_records()), state);
    }

    #[test]
    fn config_with_no_value_deletes_it() {
        let mut state = ControllerState::from_records(&sample());
        let resource = ConfigResource::Broker(BrokerId(1));
        let delete = MetadataRecord::Config {
            resource: resource.clone(),
            name: "log.retention.ms".into(),
            value: None,
        };
        assert_eq!(state.replay(&delete), Ok(()));
        assert_eq!(state.configs(&resource), None);
    }

    #[test]
    fn remove_topic_drops_partitions_name_and_configs() {
        let mut state = ControllerState::from_records(&sample());
        let remove = MetadataRecord::RemoveTopic {
            topic_id: topic_id(1),
        };
        assert_eq!(state.replay(&remove), Ok(()));
        assert!(state.topic(topic_id(1)).is_none());
        assert!(state.topic_by_name("orders").is_none());
        assert!(state
            .configs(&ConfigResource::Topic("orders".into()))
            .is_none());
        assert_eq!(
            state.replay(&remove),
            Err(ReplayError::UnknownTopicId(topic_id(1)))
        );
    }

    #[test]
    fn records_that_do_not_fit_are_rejected_without_change() {
        let mut state = ControllerState::from_records(&sample());
        let before = state.clone();
        assert_eq!(
            state.replay(&partition(topic_id(9), 0, &[1])),
            Err(ReplayError::UnknownTopicId(topic_id(9)))
        );
        assert_eq!(
            state.replay(&MetadataRecord::Topic {
                name: "orders".into(),
                topic_id: topic_id(2),
            }),
            Err(ReplayError::TopicNameInUse {
                name: "orders".into(),
                existing: topic_id(1),
            })
        );
        assert_eq!(state, before);
    }

    #[test]
    fn re_registration_replaces_the_broker() {
        let mut state = ControllerState::from_records(&sample());
        let again = MetadataRecord::RegisterBroker {
            broker_id: BrokerId(1),
            host: "b".into(),
            port: 9093,
            rack: Some("r1".into()),
            incarnation_id: None,
            broker_epoch: None,
            fenced: true,
        };
        assert_eq!(state.replay(&again), Ok(()));
        assert_eq!(state.brokers().count(), 1);
        assert_eq!(
            state.broker(BrokerId(1)).map(|b| b.host.as_str()),
            Some("b")
        );
    }

    #[test]
    fn registrations_take_their_offset_as_epoch_and_fencing_applies_to_that_epoch_only() {
        let mut state = ControllerState::default();
        let register = MetadataRecord::RegisterBroker {
            broker_id: BrokerId(2),
            host: "h".into(),
            port: 9092,
            rack: None,
            incarnation_id: Some(IncarnationId(uuid::Uuid::from_u128(7))),
            broker_epoch: None,
            fenced: true,
        };
        assert_eq!(state.replay_at(&register, 41), Ok(()));
        assert_eq!(
            state
                .broker(BrokerId(2))
                .map(|b| (b.broker_epoch, b.fenced)),
            Some((BrokerEpoch(41), true))
        );
        assert_eq!(state.unfenced_brokers().count(), 0);
        let stale = MetadataRecord::UnfenceBroker {
            broker_id: BrokerId(2),
            broker_epoch: BrokerEpoch(3),
        };
        assert!(state.replay(&stale).is_err());
        let unfence = MetadataRecord::UnfenceBroker {
            broker_id: BrokerId(2),
            broker_epoch: BrokerEpoch(41),
        };
        assert_eq!(state.replay(&unfence), Ok(()));
        assert_eq!(state.unfenced_brokers().count(), 1);
        // A snapshot keeps the epoch, wherever it is replayed.
        assert_eq!(ControllerState::from_records(&state.to_records()), state);
    }

    #[test]
    fn collisions_ignore_the_exact_name() {
        let state = ControllerState::from_records(&[MetadataRecord::Topic {
            name: "a.b".into(),
            topic_id: topic_id(1),
        }]);
        assert_eq!(state.colliding_topic("a_b"), Some("a.b"));
        assert_eq!(state.colliding_topic("a.b"), None);
        assert_eq!(state.colliding_topic("ab"), None);
    }
}
