//! Kafka's PartitionChangeBuilder: a partition's next state from the ISR, replicas and reassignment it should have,
//! with the leader election that follows and the epochs that move. Every handler that changes a partition (fencing,
//! AlterPartition, ElectLeaders, reassignments) goes through it, so a reassignment completes whichever change puts
//! its last target replica in sync, and every change bumps its epochs the same way.
//!
//! There is no ELR (KIP-966), so an empty target ISR leaves the ISR as it is: its last member stays, as in Kafka
//! without ELR.

use crate::controller::replication::NO_LEADER;
use crate::controller::state::{ControllerState, PartitionRegistration};
use crate::ids::{BrokerId, LeaderEpoch, PartitionEpoch};

/// How a change picks the leader: Kafka's PartitionChangeBuilder elections, without ELR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Election {
    /// The first replica if it may lead; else keep a leader that may; else any in-sync replica that may.
    Preferred,
    /// Keep a leader that may lead; else the first in-sync replica (in replica order) that may.
    Online,
    /// As `Online`; failing that, the first replica that may lead, with the ISR cut to it.
    Unclean,
}

/// Which brokers may lead: unfenced ones, as the state will be once the write that is being built applies (the
/// broker it fences or unfences is not yet so in the state the handlers see).
#[derive(Clone, Copy)]
pub(crate) struct Acceptor<'a> {
    pub(crate) state: &'a ControllerState,
    pub(crate) fencing: Option<BrokerId>,
    pub(crate) unfencing: Option<BrokerId>,
}

impl<'a> Acceptor<'a> {
    /// The brokers unfenced in `state`.
    pub(crate) fn new(state: &'a ControllerState) -> Acceptor<'a> {
        Acceptor {
            state,
            fencing: None,
            unfencing: None,
        }
    }

    fn may_lead(&self, broker: BrokerId) -> bool {
        Some(broker) != self.fencing
            && (Some(broker) == self.unfencing
                || self.state.broker(broker).is_some_and(|b| !b.fenced))
    }
}

/// A partition's change being built: the targets start as the partition's current state.
pub(crate) struct PartitionChange<'a> {
    partition: &'a PartitionRegistration,
    acceptor: Acceptor<'a>,
    election: Election,
    isr: Vec<BrokerId>,
    replicas: Vec<BrokerId>,
    adding: Vec<BrokerId>,
    removing: Vec<BrokerId>,
}

impl<'a> PartitionChange<'a> {
    pub(crate) fn new(partition: &'a PartitionRegistration, acceptor: Acceptor<'a>) -> Self {
        PartitionChange {
            partition,
            acceptor,
            election: Election::Online,
            isr: partition.isr.clone(),
            replicas: partition.replicas.clone(),
            adding: partition.adding_replicas.clone(),
            removing: partition.removing_replicas.clone(),
        }
    }

    pub(crate) fn election(mut self, election: Election) -> Self {
        self.election = election;
        self
    }

    /// The ISR wanted; empty leaves the ISR as it is, with no in-sync replica to elect.
    pub(crate) fn isr(mut self, isr: Vec<BrokerId>) -> Self {
        self.isr = isr;
        self
    }

    /// The replicas wanted and the reassignment they belong to (nothing added or removed: none).
    pub(crate) fn assignment(
        mut self,
        replicas: Vec<BrokerId>,
        adding: Vec<BrokerId>,
        removing: Vec<BrokerId>,
    ) -> Self {
        self.replicas = replicas;
        self.adding = adding;
        self.removing = removing;
        self
    }

    /// Kafka's `PartitionReassignmentReplicas.maybeCompleteReassignment`: once every replica the reassignment keeps
    /// is in the target ISR, the replicas and the ISR lose those it removes and the reassignment is over.
    fn complete_reassignment_if_done(&mut self) {
        if self.adding.is_empty() && self.removing.is_empty() {
            return;
        }
        let kept = |replicas: &[BrokerId]| -> Vec<BrokerId> {
            replicas
                .iter()
                .copied()
                .filter(|b| !self.removing.contains(b))
                .collect()
        };
        let isr = kept(&self.isr);
        let replicas = kept(&self.replicas);
        if isr.is_empty() || replicas.is_empty() || !replicas.iter().all(|b| isr.contains(b)) {
            return;
        }
        self.isr = isr;
        self.replicas = replicas;
        self.adding.clear();
        self.removing.clear();
    }

    /// The partition's next state, or `None` when nothing would change. The partition epoch moves on every change;
    /// the leader epoch when the leader changes or a replica leaves the replica set (Kafka bumps it then too, so
    /// that the removed replica's fetches are fenced).
    pub(crate) fn build(mut self) -> Option<PartitionRegistration> {
        self.complete_reassignment_if_done();
        let partition = self.partition;
        let acceptor = self.acceptor;
        let target_isr = &self.isr;
        let valid = |broker: BrokerId| target_isr.contains(&broker) && acceptor.may_lead(broker);
        let preferred = self.replicas.first().copied().filter(|b| valid(*b));
        let current = Some(partition.leader).filter(|b| valid(*b));
        let in_sync = || self.replicas.iter().copied().find(|b| valid(*b));
        let clean = match self.election {
            Election::Preferred => preferred.or(current).or_else(in_sync),
            Election::Online | Election::Unclean => current.or_else(in_sync),
        };
        let unclean = match (clean, self.election) {
            (None, Election::Unclean) => self
                .replicas
                .iter()
                .copied()
                .find(|b| acceptor.may_lead(*b)),
            _ => None,
        };
        let leader = clean.or(unclean).unwrap_or(NO_LEADER);
        let isr = match unclean {
            // Data written only to the old ISR may be lost: the new leader's log is the partition's now.
            Some(leader) => vec![leader],
            None if self.isr.is_empty() => partition.isr.clone(),
            None => self.isr,
        };
        let replica_left = partition
            .replicas
            .iter()
            .any(|b| !self.replicas.contains(b));
        let bump_leader_epoch = leader != partition.leader || replica_left;
        let next = PartitionRegistration {
            replicas: self.replicas,
            isr,
            leader,
            leader_epoch: match bump_leader_epoch {
                true => LeaderEpoch(partition.leader_epoch.0.saturating_add(1)),
                false => partition.leader_epoch,
            },
            partition_epoch: partition.partition_epoch,
            adding_replicas: self.adding,
            removing_replicas: self.removing,
        };
        if next == *partition {
            return None;
        }
        Some(PartitionRegistration {
            partition_epoch: PartitionEpoch(partition.partition_epoch.0.saturating_add(1)),
            ..next
        })
    }
}
