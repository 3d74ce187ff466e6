//! The metadata log's records: the shapes of KRaft's metadata records that Ferrite uses so far.
//! Their serde form is the log's on-disk and on-wire format, so only add variants and optional
//! fields (`#[serde(default)]`) to keep old logs and snapshots readable.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::ids::{
    BrokerEpoch, BrokerId, IncarnationId, LeaderEpoch, PartitionEpoch, PartitionIndex, ProducerId,
    TopicId,
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// A broker's registration: replaces any earlier registration of the same id (Kafka's RegisterBrokerRecord).
    RegisterBroker {
        broker_id: BrokerId,
        host: String,
        port: u16,
        rack: Option<String>,
        /// The broker process that registered; `None` in logs written before incarnations existed.
        #[serde(default)]
        incarnation_id: Option<IncarnationId>,
        /// `None` means the offset of this record, as in Kafka; snapshots carry the value explicitly.
        #[serde(default)]
        broker_epoch: Option<BrokerEpoch>,
        /// A new registration is fenced until the broker has caught up with the metadata log and heartbeats.
        #[serde(default)]
        fenced: bool,
    },
    /// Kafka's FenceBrokerRecord: the broker stopped heartbeating (or asked to stop); it leaves Metadata and takes
    /// no new replicas. Applies only to the registration of that epoch.
    FenceBroker {
        broker_id: BrokerId,
        broker_epoch: BrokerEpoch,
    },
    /// Kafka's UnfenceBrokerRecord: the broker caught up and heartbeats; it serves clients and takes replicas.
    UnfenceBroker {
        broker_id: BrokerId,
        broker_epoch: BrokerEpoch,
    },
    /// A new topic. Its partitions follow as `Partition` records.
    Topic { name: String, topic_id: TopicId },
    /// A partition's full state: replaces any earlier record for the same partition (Kafka's PartitionRecord and
    /// PartitionChangeRecord in one). `leader` is -1 while no eligible replica can lead (an offline partition).
    Partition {
        topic_id: TopicId,
        partition: PartitionIndex,
        replicas: Vec<BrokerId>,
        isr: Vec<BrokerId>,
        leader: BrokerId,
        leader_epoch: LeaderEpoch,
        /// Bumped on every change of the partition; 0 in logs written before it existed.
        #[serde(default)]
        partition_epoch: PartitionEpoch,
        /// While a reassignment (KIP-455) is in progress: the replicas it adds, which are in `replicas` already and
        /// join the ISR once caught up. Left out of the log when empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        adding_replicas: Vec<BrokerId>,
        /// While a reassignment is in progress: the replicas it removes once every target replica is in sync.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        removing_replicas: Vec<BrokerId>,
    },
    /// Sets (`Some`) or deletes (`None`) one dynamic config of a resource.
    Config {
        resource: ConfigResource,
        name: String,
        value: Option<String>,
    },
    /// Removes a topic, its partitions and its configs; the broker deletes the partitions' logs.
    RemoveTopic { topic_id: TopicId },
    /// A block of producer ids handed to a broker: every id below `next_producer_id` is taken
    /// (Kafka's ProducerIdsRecord).
    ProducerIds {
        broker_id: BrokerId,
        next_producer_id: ProducerId,
    },
}

/// The resource a dynamic config belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConfigResource {
    /// A topic, by name (as in Kafka's ConfigRecord).
    Topic(String),
    Broker(BrokerId),
    /// The cluster-wide default of every broker's dynamic configs (Kafka's broker resource with the empty name).
    BrokerDefault,
    /// A consumer, share or streams group, by id (KIP-848's group configs); the group need not exist.
    Group(String),
}

/// The broker's side of the metadata log: receives committed records in log order, and a full
/// rebuild when a snapshot is loaded or installed.
///
/// Calls come from the Raft state machine task, one at a time and in log order; keep them quick
/// (hand the work to another thread) and never call back into the quorum from them (a write waits
/// for this very task to apply).
pub trait MetadataListener: Send + Sync + 'static {
    /// Replace the whole image with these records. Always the first call after `start`
    /// (with no records when there is no snapshot yet).
    fn on_snapshot(&self, records: &[MetadataRecord]);

    /// One committed entry's records, in order; `offset` is the entry's position in the metadata log.
    fn on_records(&self, offset: u64, records: &[MetadataRecord]);

    /// Resolves once everything handed over before the call has taken effect. The controller
    /// awaits it after each write, and the quorum before `start` returns. A listener that acts
    /// within its calls needs nothing more than the default.
    fn caught_up(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::ready(()))
    }
}
