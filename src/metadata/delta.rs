//! MetadataDelta: what a run of committed metadata records changed, noted while they are replayed into the next
//! [`MetadataImage`] (Kafka's `MetadataDelta`). Publishers act on the delta (the topics it names) instead of
//! re-examining every partition of the image on every committed entry.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ferrite_raft::{ConfigResource, MetadataRecord};

use super::MetadataImage;
use crate::ids::TopicId;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MetadataDelta {
    /// The records replaced the whole image (a snapshot): every part of it may have changed.
    pub full: bool,
    /// Topics created, or whose partitions or configs changed.
    pub changed_topics: BTreeSet<TopicId>,
    /// Topics removed, with their names (partition directories are named after them).
    pub removed_topics: BTreeMap<TopicId, Arc<str>>,
    /// A broker registered, re-registered, or was fenced or unfenced.
    pub brokers_changed: bool,
    /// A dynamic broker config (of one broker or the cluster default) changed: the defaults of every topic may have.
    pub broker_configs_changed: bool,
    /// Groups whose configs changed.
    pub changed_group_configs: BTreeSet<String>,
}

impl MetadataDelta {
    /// The delta of a snapshot: everything is new.
    pub fn full() -> MetadataDelta {
        MetadataDelta {
            full: true,
            ..MetadataDelta::default()
        }
    }

    /// Whether the topic was created, changed or removed (always, for a snapshot).
    pub fn touches_topic(&self, topic_id: TopicId) -> bool {
        self.full
            || self.changed_topics.contains(&topic_id)
            || self.removed_topics.contains_key(&topic_id)
    }

    /// Notes what `record` changes; `before` is the image it is about to be replayed into.
    pub(super) fn note(&mut self, record: &MetadataRecord, before: &MetadataImage) {
        match record {
            MetadataRecord::RegisterBroker { .. }
            | MetadataRecord::FenceBroker { .. }
            | MetadataRecord::UnfenceBroker { .. } => self.brokers_changed = true,
            MetadataRecord::Topic { topic_id, .. } | MetadataRecord::Partition { topic_id, .. } => {
                self.changed_topics.insert(*topic_id);
            }
            MetadataRecord::Config { resource, .. } => match resource {
                ConfigResource::Topic(name) => {
                    // Configs of a topic not created yet wait in the image and arrive with its TopicRecord.
                    if let Some(topic) = before.topic(name) {
                        self.changed_topics.insert(topic.topic_id);
                    }
                }
                ConfigResource::Broker(_) | ConfigResource::BrokerDefault => {
                    self.broker_configs_changed = true
                }
                ConfigResource::Group(group) => {
                    self.changed_group_configs.insert(group.clone());
                }
            },
            MetadataRecord::RemoveTopic { topic_id } => {
                self.changed_topics.remove(topic_id);
                if let Some(topic) = before.topic_by_id(*topic_id) {
                    self.removed_topics.insert(*topic_id, topic.name.clone());
                }
            }
            MetadataRecord::ProducerIds { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{BrokerId, LeaderEpoch, PartitionIndex};

    fn topic(id: TopicId, name: &str) -> MetadataRecord {
        MetadataRecord::Topic {
            name: name.into(),
            topic_id: id,
        }
    }

    #[test]
    fn a_delta_names_what_its_records_touched() {
        let (a, b) = (
            TopicId(uuid::Uuid::from_u128(1)),
            TopicId(uuid::Uuid::from_u128(2)),
        );
        let mut image = MetadataImage::default();
        image.replay(&topic(a, "a"), &mut MetadataDelta::default());
        image.replay(&topic(b, "b"), &mut MetadataDelta::default());

        let mut delta = MetadataDelta::default();
        image.replay(
            &MetadataRecord::Partition {
                topic_id: a,
                partition: PartitionIndex(0),
                replicas: vec![BrokerId(1)],
                isr: vec![BrokerId(1)],
                leader: BrokerId(1),
                leader_epoch: LeaderEpoch(1),
                partition_epoch: crate::ids::PartitionEpoch(0),
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            },
            &mut delta,
        );
        image.replay(
            &MetadataRecord::Config {
                resource: ConfigResource::Group("g".into()),
                name: "consumer.session.timeout.ms".into(),
                value: Some("45000".into()),
            },
            &mut delta,
        );
        image.replay(&MetadataRecord::RemoveTopic { topic_id: b }, &mut delta);

        assert!(delta.touches_topic(a));
        assert!(delta.touches_topic(b));
        assert_eq!(delta.removed_topics.get(&b).map(|n| &**n), Some("b"));
        assert!(!delta.changed_topics.contains(&b), "removed, not changed");
        assert!(!delta.broker_configs_changed);
        assert!(delta.changed_group_configs.contains("g"));
        assert!(!delta.touches_topic(TopicId(uuid::Uuid::from_u128(3))));
    }

    #[test]
    fn topic_configs_before_their_topic_arrive_with_it() {
        let id = TopicId(uuid::Uuid::from_u128(9));
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
        assert!(delta.changed_topics.is_empty());
        image.replay(&topic(id, "t"), &mut delta);
        assert!(delta.touches_topic(id));
    }
}
