//! What the coordinator knows of one transactional id (Kafka's `TransactionMetadata`) and the states a transaction
//! goes through (Kafka's `TransactionState`, with its ids as stored in `__transaction_state`):
//!
//! ```text
//! Empty ──AddPartitions──▶ Ongoing ──EndTxn(commit)──▶ PrepareCommit ──markers written──▶ CompleteCommit
//!   ▲                        │    └───EndTxn(abort), timeout, fencing──▶ PrepareAbort ──▶ CompleteAbort
//!   └──InitProducerId────────┴───────────────(from Empty or Complete*: epoch + 1)─────────────────┘
//! ```
//!
//! The decision is durable once the Prepare* record is: from then on the transaction is completed whatever
//! happens, by this coordinator or by the one that loads the partition after it.

use super::records::TransactionLogValue;
use crate::ids::{ProducerEpoch, ProducerId};

/// A partition by topic name, as transactions name them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    /// Being expired (a tombstone follows); never answered to clients.
    Dead,
    /// Kafka keeps this one in memory only, while fencing; Ferrite writes PrepareAbort straight away.
    PrepareEpochFence,
}

impl TransactionState {
    pub fn id(self) -> i8 {
        match self {
            TransactionState::Empty => 0,
            TransactionState::Ongoing => 1,
            TransactionState::PrepareCommit => 2,
            TransactionState::PrepareAbort => 3,
            TransactionState::CompleteCommit => 4,
            TransactionState::CompleteAbort => 5,
            TransactionState::Dead => 6,
            TransactionState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<TransactionState> {
        Some(match id {
            0 => TransactionState::Empty,
            1 => TransactionState::Ongoing,
            2 => TransactionState::PrepareCommit,
            3 => TransactionState::PrepareAbort,
            4 => TransactionState::CompleteCommit,
            5 => TransactionState::CompleteAbort,
            6 => TransactionState::Dead,
            7 => TransactionState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions report (Kafka's).
    pub fn name(self) -> &'static str {
        match self {
            TransactionState::Empty => "Empty",
            TransactionState::Ongoing => "Ongoing",
            TransactionState::PrepareCommit => "PrepareCommit",
            TransactionState::PrepareAbort => "PrepareAbort",
            TransactionState::CompleteCommit => "CompleteCommit",
            TransactionState::CompleteAbort => "CompleteAbort",
            TransactionState::Dead => "Dead",
            TransactionState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The state a ListTransactions filter names, by Kafka's name.
    pub fn from_name(name: &str) -> Option<TransactionState> {
        [
            TransactionState::Empty,
            TransactionState::Ongoing,
            TransactionState::PrepareCommit,
            TransactionState::PrepareAbort,
            TransactionState::CompleteCommit,
            TransactionState::CompleteAbort,
            TransactionState::Dead,
            TransactionState::PrepareEpochFence,
        ]
        .into_iter()
        .find(|state| state.name() == name)
    }

    pub fn is_prepared(self) -> bool {
        matches!(
            self,
            TransactionState::PrepareCommit | TransactionState::PrepareAbort
        )
    }

    /// Whether a new transaction may begin (or the producer re-initialise) from this state.
    pub fn is_complete(self) -> bool {
        matches!(
            self,
            TransactionState::Empty
                | TransactionState::CompleteCommit
                | TransactionState::CompleteAbort
        )
    }
}

/// One transactional id's state: what its last record says, plus what Kafka keeps only in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionMetadata {
    pub stored: TransactionLogValue,
    /// The epoch before the last bump, so that a retried InitProducerId is answered rather than fenced (KIP-360).
    pub last_producer_epoch: ProducerEpoch,
}

/// A decided transaction whose markers are to be written: what the marker writer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub transactional_id: String,
    pub producer_id: ProducerId,
    pub producer_epoch: ProducerEpoch,
    pub commit: bool,
    pub partitions: Vec<TopicPartition>,
}

/// Kafka's `isEpochExhausted`: the producer needs a new id rather than another bump.
pub fn epoch_exhausted(epoch: ProducerEpoch) -> bool {
    epoch.0 >= i16::MAX - 1
}

impl TransactionMetadata {
    pub fn state(&self) -> TransactionState {
        self.stored.state
    }

    pub fn producer_id(&self) -> ProducerId {
        self.stored.producer_id
    }

    pub fn producer_epoch(&self) -> ProducerEpoch {
        self.stored.producer_epoch
    }

    /// The value after moving to `state` at `now_ms`.
    pub fn transit(&self, state: TransactionState, now_ms: i64) -> TransactionLogValue {
        TransactionLogValue {
            state,
            last_update_timestamp_ms: now_ms,
            ..self.stored.clone()
        }
    }

    /// The transaction this metadata decided, if it is in a Prepare state.
    pub fn completion(&self, transactional_id: &str) -> Option<Completion> {
        let commit = match self.stored.state {
            TransactionState::PrepareCommit => true,
            TransactionState::PrepareAbort => false,
            _ => return None,
        };
        Some(Completion::of(transactional_id, &self.stored, commit))
    }
}

impl Completion {
    /// The decision `value` records.
    pub fn of(transactional_id: &str, value: &TransactionLogValue, commit: bool) -> Completion {
        Completion {
            transactional_id: transactional_id.to_string(),
            producer_id: value.producer_id,
            producer_epoch: value.producer_epoch,
            commit,
            partitions: value.partitions.iter().cloned().collect(),
        }
    }
}
