//! ISR changes proposed by leaders (Kafka's `AlterPartitionManager`): a leader adds a follower that caught up and
//! drops one that lagged `replica.lag.time.max.ms`, by asking the controller with AlterPartition. One request per
//! partition is in flight at a time; the new ISR takes effect only when the controller's record arrives in the
//! metadata log, so every broker agrees on it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::{now_ms, Partition, ReplicaManager};
use crate::ids::{BrokerId, LeaderEpoch, PartitionEpoch, PartitionIndex, TopicId};

/// One proposed ISR: the partition, the state it builds on (so that the controller refuses it if that moved on)
/// and the ISR wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    pub topic_id: TopicId,
    pub index: PartitionIndex,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
    pub new_isr: Vec<BrokerId>,
}

/// Carries AlterPartition to the active controller; the node supplies it once the broker has registered.
pub trait AlterPartitionSender: Send + Sync + 'static {
    /// Resolves when the controller answered (or the attempt failed, with why).
    fn alter_partition(
        &self,
        proposal: IsrProposal,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
}

impl ReplicaManager {
    /// Has ISR changes go to the controller through `sender`. Until then leaders propose none.
    pub fn set_alter_partition_sender(&self, sender: Arc<dyn AlterPartitionSender>) {
        let _ = self.isr_sender.set(sender);
    }

    /// Proposes `partition`'s ISR with `add` joined, or `remove` dropped, unless a proposal is in flight.
    pub(super) fn propose_isr(
        &self,
        partition: &Arc<Partition>,
        add: &[BrokerId],
        remove: &[BrokerId],
    ) {
        let Some(sender) = self.isr_sender.get().cloned() else {
            return;
        };
        let state = partition.registration();
        if state.leader != self.broker_id {
            return;
        }
        let mut new_isr: Vec<BrokerId> = state
            .isr
            .iter()
            .copied()
            .filter(|id| !remove.contains(id))
            .collect();
        let eligible = self.isr_eligible.read().unwrap_or_else(|p| p.into_inner());
        for id in add {
            if !new_isr.contains(id) && state.replicas.contains(id) && eligible.contains(id) {
                new_isr.push(*id);
            }
        }
        drop(eligible);
        if new_isr == state.isr
            || !new_isr.contains(&self.broker_id)
            || !partition.begin_isr_change()
        {
            return;
        }
        let proposal = IsrProposal {
            topic_id: partition.topic_id,
            index: partition.index,
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            new_isr,
        };
        tracing::info!(topic = %partition.topic, partition = partition.index.0, isr = ?proposal.new_isr, "proposing a new ISR");
        let partition = partition.clone();
        let (grows, shrinks) = (
            proposal.new_isr.iter().any(|id| !state.isr.contains(id)),
            state.isr.iter().any(|id| !proposal.new_isr.contains(id)),
        );
        tokio::spawn(async move {
            match sender.alter_partition(proposal).await {
                Ok(_) => {
                    let metrics = crate::metrics::broker_metrics();
                    if grows {
                        metrics.record_isr_expand();
                    }
                    if shrinks {
                        metrics.record_isr_shrink();
                    }
                }
                Err(reason) => {
                    tracing::warn!(topic = %partition.topic, partition = partition.index.0, %reason, "AlterPartition failed")
                }
            }
            partition.end_isr_change();
        });
    }

    /// Drops from the ISRs of the partitions this broker leads the followers that lagged too long (Kafka's
    /// `maybeShrinkIsr`, run every half `replica.lag.time.max.ms`).
    pub fn shrink_isrs(&self) {
        let lag = self.config.replication.lag_time_max_ms;
        let now = now_ms();
        for partition in self.all() {
            if !partition.is_leader(self.broker_id) {
                continue;
            }
            let lagging = partition.lagging_followers(now, lag);
            if !lagging.is_empty() {
                self.propose_isr(&partition, &[], &lagging);
            }
        }
    }
}
