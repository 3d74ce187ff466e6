//! The TransactionCoordinator (Kafka's). So far it hands out producer ids to idempotent producers (InitProducerId
//! without a transactional id), from blocks that the controller allocates through the metadata quorum (Kafka's
//! ProducerIdsRecord), so that no two brokers, and no restart, ever hand out the same id. Transactions come next:
//! their state on `__transaction_state`, on the coordinator runtime like the groups.

pub mod metadata;
pub mod records;
pub mod shard;

use std::sync::Arc;

use ferrite_raft::{ControllerError, ProducerIdBlock, QuorumController};
use tokio::sync::Mutex;

use crate::ids::{BrokerId, ProducerEpoch, ProducerId};

/// What transactional requests fail with; api/mod.rs turns these into Kafka error codes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransactionError {
    /// No producer id block could be had from the controller. Kafka: COORDINATOR_LOAD_IN_PROGRESS (retriable).
    #[error("no producer id block from the controller")]
    ProducerIdsUnavailable(#[source] Arc<ControllerError>),
    #[error("this broker does not coordinate the transactional id")]
    NotCoordinator,
    #[error("the coordinator is loading the transactional id's partition")]
    CoordinatorLoadInProgress,
    #[error("the transaction timeout exceeds transaction.max.timeout.ms")]
    InvalidTransactionTimeout,
    #[error("a previous transaction is still being completed")]
    ConcurrentTransactions,
    #[error("a newer producer with this transactional id exists")]
    ProducerFenced,
    #[error("the producer id does not belong to the transactional id")]
    InvalidProducerIdMapping,
    #[error("the request does not fit the transaction's state")]
    InvalidTxnState,
    #[error("no such transactional id")]
    TransactionalIdNotFound,
    #[error("the partition is not part of the transaction")]
    TransactionAbortable,
    #[error("a record does not fit the __transaction_state schema")]
    InvalidRecord(#[source] records::RecordError),
    #[error("writing to __transaction_state failed")]
    Write(#[source] Arc<crate::replica::ReplicaError>),
    /// A transactional producer: this broker has no transaction coordinator yet. Kafka: COORDINATOR_NOT_AVAILABLE.
    #[error("transactions are not supported yet")]
    TransactionsUnsupported,
}

/// Producer ids from the current block; a new block from the controller when it runs out.
pub struct ProducerIdManager {
    broker_id: BrokerId,
    /// The next id to hand out and the end of its block (exclusive).
    block: Mutex<Option<(i64, i64)>>,
}

impl ProducerIdManager {
    pub fn new(broker_id: BrokerId) -> ProducerIdManager {
        ProducerIdManager {
            broker_id,
            block: Mutex::new(None),
        }
    }

    pub async fn generate(
        &self,
        controller: &QuorumController,
    ) -> Result<ProducerId, ControllerError> {
        let mut block = self.block.lock().await;
        let (next, end) = match *block {
            Some((next, end)) if next < end => (next, end),
            _ => {
                let ProducerIdBlock { first, size } =
                    controller.allocate_producer_ids(self.broker_id).await?;
                (first.0, first.0 + size)
            }
        };
        *block = Some((next + 1, end));
        Ok(ProducerId(next))
    }
}

impl From<crate::coordinator::runtime::RuntimeError> for TransactionError {
    fn from(error: crate::coordinator::runtime::RuntimeError) -> TransactionError {
        use crate::coordinator::runtime::RuntimeError;
        match error {
            RuntimeError::NotCoordinator => TransactionError::NotCoordinator,
            RuntimeError::LoadInProgress => TransactionError::CoordinatorLoadInProgress,
            RuntimeError::BatchTooLarge => {
                TransactionError::InvalidRecord(records::RecordError::TooLong)
            }
            RuntimeError::Write(error) => TransactionError::Write(error),
        }
    }
}

/// Errors compare by kind (their sources are not comparable).
impl PartialEq for TransactionError {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}
impl Eq for TransactionError {}

pub struct TransactionCoordinator {
    producer_ids: ProducerIdManager,
}

impl TransactionCoordinator {
    pub fn new(broker_id: BrokerId) -> TransactionCoordinator {
        TransactionCoordinator {
            producer_ids: ProducerIdManager::new(broker_id),
        }
    }

    /// InitProducerId. An idempotent producer (no transactional id) gets a new producer id with epoch 0 every
    /// time, as from Kafka: the id it had, if it names one (KIP-360), is simply replaced.
    pub async fn init_producer_id(
        &self,
        controller: &QuorumController,
        transactional_id: Option<&str>,
    ) -> Result<(ProducerId, ProducerEpoch), TransactionError> {
        if transactional_id.is_some() {
            return Err(TransactionError::TransactionsUnsupported);
        }
        let producer_id = self
            .producer_ids
            .generate(controller)
            .await
            .map_err(|e| TransactionError::ProducerIdsUnavailable(Arc::new(e)))?;
        Ok((producer_id, ProducerEpoch(0)))
    }
}
