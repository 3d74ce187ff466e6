//! Newtypes for every id, offset and epoch in Ferrite: the metadata log's and the partition logs'. Raw integers
//! appear only at the codec edge; the broker reaches these as `ferrite::ids`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A Kafka `node.id`. A controller's broker id is also its Raft node id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BrokerId(pub i32);

impl BrokerId {
    /// openraft wants unsigned node ids; Kafka's node ids are never negative, so a negative id
    /// has no Raft identity (`None`) rather than a wrapped one that could alias another node.
    pub fn to_node_id(self) -> Option<u64> {
        u64::try_from(self.0).ok()
    }

    pub fn from_node_id(node_id: u64) -> Option<BrokerId> {
        i32::try_from(node_id).ok().map(BrokerId)
    }
}

impl fmt::Display for BrokerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A Kafka topic id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TopicId(pub uuid::Uuid);

impl TopicId {
    /// A random v4 id. Kafka reserves the nil uuid ("no topic id" on the wire), so never return it.
    pub fn random() -> TopicId {
        loop {
            let id = uuid::Uuid::new_v4();
            if !id.is_nil() {
                return TopicId(id);
            }
        }
    }
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A partition's index within its topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PartitionIndex(pub i32);

impl fmt::Display for PartitionIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A partition's leader epoch: bumped on every leader change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeaderEpoch(pub i32);

impl fmt::Display for LeaderEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A partition's epoch: bumped on every change of its leader, ISR or replicas, so that an AlterPartition built on
/// an older state is refused (INVALID_UPDATE_VERSION).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct PartitionEpoch(pub i32);

impl fmt::Display for PartitionEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An offset in a partition log. Raw `i64` only at the codec edge.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Offset(pub i64);

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A producer id (KIP-98), handed out by InitProducerId; `NONE` (-1) is a producer without one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProducerId(pub i64);

impl ProducerId {
    pub const NONE: ProducerId = ProducerId(-1);
}

impl fmt::Display for ProducerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A producer's epoch: bumped when a new instance with the same transactional id fences the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProducerEpoch(pub i16);

impl ProducerEpoch {
    pub const NONE: ProducerEpoch = ProducerEpoch(-1);
}

impl fmt::Display for ProducerEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Kafka's broker epoch: the metadata log offset of the broker's current registration. A heartbeat or request
/// carrying an older one comes from a previous incarnation of the broker.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct BrokerEpoch(pub i64);

impl fmt::Display for BrokerEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Kafka's incarnation id: drawn anew each time a broker process starts, so that the controller tells a retried
/// registration (same incarnation) from a second process claiming the same node id (another incarnation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncarnationId(pub uuid::Uuid);

impl IncarnationId {
    pub fn random() -> IncarnationId {
        IncarnationId(uuid::Uuid::new_v4())
    }
}

impl fmt::Display for IncarnationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_broker_ids_have_no_node_id() {
        assert_eq!(BrokerId(-1).to_node_id(), None);
        assert_eq!(BrokerId(3).to_node_id(), Some(3));
        assert_eq!(BrokerId::from_node_id(3), Some(BrokerId(3)));
        assert_eq!(BrokerId::from_node_id(u64::MAX), None);
    }

    #[test]
    fn ids_serialise_as_their_inner_value() -> Result<(), serde_json::Error> {
        assert_eq!(serde_json::to_string(&BrokerId(7))?, "7");
        let id = TopicId::random();
        assert!(!id.0.is_nil());
        assert_eq!(serde_json::to_string(&id)?, format!("\"{}\"", id.0));
        Ok(())
    }
}
