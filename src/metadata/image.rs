//! [`MetadataImage`]: brokers, topics, partitions and configs as of some point in the metadata log.
//!
//! The image changes only by [`MetadataImage::replay`] of committed records, so every broker that has applied the
//! same prefix of the log holds the same image.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::ids::{BrokerId, PartitionIndex, TopicId};
use ferrite_raft::{
    replay_broker, BrokerRegistration, ConfigResource, MetadataRecord, PartitionRegistration,
};

use super::MetadataDelta;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: Arc<str>,
    pub topic_id: TopicId,
    pub partitions: BTreeMap<PartitionIndex, PartitionRegistration>,
    /// Topic-level overrides only; defaults come from the broker config.
    pub configs: BTreeMap<String, String>,
}

impl TopicImage {
    pub fn is_internal(&self) -> bool {
        is_internal_topic(&self.name)
    }
}

/// Kafka's internal topics start with two underscores and are flagged in Metadata; clients may not produce to them.
pub fn is_internal_topic(name: &str) -> bool {
    name.starts_with("__")
}

#[derive(Debug, Clone, Default)]
pub struct MetadataImage {
    pub brokers: BTreeMap<BrokerId, BrokerRegistration>,
    /// Shared with the previous image until a record changes the topic, so the next image costs a map of pointers,
    /// not a copy of every partition.
    topics: HashMap<TopicId, Arc<TopicImage>>,
    topic_ids: HashMap<Arc<str>, TopicId>,
    /// Configs of topics arrive before or after their TopicRecord; held by name.
    pending_topic_configs: HashMap<String, BTreeMap<String, String>>,
    pub broker_configs: BTreeMap<BrokerId, BTreeMap<String, String>>,
    /// The cluster-wide dynamic defaults of every broker.
    pub broker_default_configs: BTreeMap<String, String>,
    /// Group configs by group id, whether or not the group exists.
    pub group_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// The offset of the last metadata log entry replayed (0 after a snapshot alone): how far this broker has
    /// caught up, as its heartbeats report.
    pub offset: u64,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topic_ids
            .get(name)
            .and_then(|id| self.topics.get(id))
            .map(|topic| &**topic)
    }

    pub fn topic_by_id(&self, id: TopicId) -> Option<&TopicImage> {
        self.topics.get(&id).map(|topic| &**topic)
    }

    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> {
        self.topics.values().map(|topic| &**topic)
    }

    /// Brokers that serve clients: registered and unfenced. Metadata lists only these.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// A broker's registration, fenced or not.
    pub fn broker(&self, broker: BrokerId) -> Option<&BrokerRegistration> {
        self.brokers.get(&broker)
    }

    pub fn is_live(&self, broker: BrokerId) -> bool {
        self.brokers.get(&broker).is_some_and(|b| !b.fenced)
    }

    /// Applies one record whose offset does not matter (snapshots, tests).
    pub fn replay(&mut self, record: &MetadataRecord, delta: &mut MetadataDelta) {
        self.replay_at(record, self.offset, delta);
    }

    /// Applies one committed record of the metadata log entry at `offset`, noting in `delta` what it changed.
    pub fn replay_at(&mut self, record: &MetadataRecord, offset: u64, delta: &mut MetadataDelta) {
        delta.note(record, self);
        self.offset = self.offset.max(offset);
        match record {
            MetadataRecord::RegisterBroker { .. }
            | MetadataRecord::FenceBroker { .. }
            | MetadataRecord::UnfenceBroker { .. } => {
                // As the controller replays them; a stale fencing record changes nothing here either.
                let _ = replay_broker(&mut self.brokers, record, offset);
            }
            MetadataRecord::Topic { name, topic_id } => {
                // As the controller replays it (ControllerState::replay): a name belongs to one topic id.
                if self.topic_ids.contains_key(name.as_str()) {
                    return;
                }
                let name: Arc<str> = Arc::from(name.as_str());
                let configs = self
                    .pending_topic_configs
                    .remove(&*name)
                    .unwrap_or_default();
                self.topic_ids.insert(name.clone(), *topic_id);
                self.topics.insert(
                    *topic_id,
                    Arc::new(TopicImage {
                        name,
                        topic_id: *topic_id,
                        partitions: BTreeMap::new(),
                        configs,
                    }),
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
                if let Some(topic) = self.topics.get_mut(topic_id).map(Arc::make_mut) {
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
            }
            MetadataRecord::Config {
                resource,
                name,
                value,
            } => {
                let configs = match resource {
                    ConfigResource::Topic(topic) => match self.topic_ids.get(topic.as_str()) {
                        Some(id) => match self.topics.get_mut(id).map(Arc::make_mut) {
                            Some(image) => &mut image.configs,
                            None => return,
                        },
                        None => self.pending_topic_configs.entry(topic.clone()).or_default(),
                    },
                    ConfigResource::Broker(id) => self.broker_configs.entry(*id).or_default(),
                    ConfigResource::BrokerDefault => &mut self.broker_default_configs,
                    ConfigResource::Group(group) => {
                        self.group_configs.entry(group.clone()).or_default()
                    }
                };
                match value {
                    Some(value) => configs.insert(name.clone(), value.clone()),
                    None => configs.remove(name),
                };
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(topic) = self.topics.remove(topic_id) {
                    self.topic_ids.remove(&topic.name);
                }
            }
            // Producer id blocks concern only the controller and the broker the block went to, which hears of it
            // in the controller's answer.
            MetadataRecord::ProducerIds { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::LeaderEpoch;

    #[test]
    fn replay_builds_and_removes_topics() {
        let id = TopicId(uuid::Uuid::from_u128(7));
        let mut image = MetadataImage::default();
        let mut delta = MetadataDelta::default();
        image.replay(
            &MetadataRecord::Config {
                resource: ConfigResource::Topic("t".into()),
                name: "retention.ms".into(),
                value: Some("1000".into()),
            },
            &mut delta,
        );
        image.replay(
            &MetadataRecord::Topic {
                name: "t".into(),
                topic_id: id,
            },
            &mut delta,
        );
        image.replay(
            &MetadataRecord::Partition {
                topic_id: id,
                partition: PartitionIndex(0),
                replicas: vec![BrokerId(1)],
                isr: vec![BrokerId(1)],
                leader: BrokerId(1),
                leader_epoch: LeaderEpoch(0),
                partition_epoch: crate::ids::PartitionEpoch(0),
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            },
            &mut delta,
        );
        let topic = image.topic("t").expect("topic replayed");
        assert_eq!(topic.partitions.len(), 1);
        assert_eq!(
            topic.configs.get("retention.ms").map(String::as_str),
            Some("1000")
        );
        image.replay(&MetadataRecord::RemoveTopic { topic_id: id }, &mut delta);
        assert!(image.topic("t").is_none());
        assert!(image.topic_by_id(id).is_none());
    }
}
