//! The TransactionCoordinatorShard: the transactional ids of one `__transaction_state` partition, as a pure state
//! machine on the coordinator runtime. Handlers take `now_ms` and return the records to append and the answer;
//! state changes only when a record is replayed. Kafka's rules (TransactionCoordinator.scala, transaction version
//! 1: the client keeps its epoch across transactions):
//!
//! - InitProducerId fences: every call bumps the epoch, so requests of an older incarnation of the producer are
//!   refused (PRODUCER_FENCED). A transaction still open is aborted first (with the bumped epoch, so that the data
//!   partitions learn it from the markers) and the caller hears CONCURRENT_TRANSACTIONS and retries.
//! - AddPartitionsToTxn moves Empty/Complete* to Ongoing and adds partitions; while a decision is being completed
//!   (Prepare*) it is CONCURRENT_TRANSACTIONS.
//! - EndTxn writes PrepareCommit/PrepareAbort; once durable the decision stands and the marker writer completes it,
//!   ending with CompleteCommit/CompleteAbort. A retried EndTxn of a completed transaction succeeds.
//! - A transaction open longer than its timeout is aborted the same way, by the coordinator, with a bumped epoch.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;

use super::metadata::{
    epoch_exhausted, Completion, TopicPartition, TransactionMetadata, TransactionState,
};
use super::records::{TransactionLogValue, TransactionRecord};
use super::TransactionError;
use crate::coordinator::runtime::{self, CoordinatorShard, Failable};
use crate::ids::{ProducerEpoch, ProducerId};

pub type Output<R> = runtime::Output<TransactionRecord, (), R>;

/// How InitProducerId went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitOutcome {
    /// Answer the producer with this id and epoch.
    Initialized(ProducerId, ProducerEpoch),
    /// A new producer id is needed (a new transactional id, or the epoch is exhausted): call again with one.
    NeedsProducerId,
    /// The open transaction is being aborted: complete it, and answer CONCURRENT_TRANSACTIONS.
    Fencing(Completion),
    Failed(TransactionError),
}

impl Failable<TransactionError> for InitOutcome {
    fn fail(&mut self, error: TransactionError) {
        *self = InitOutcome::Failed(error);
    }
}

/// How EndTxn went, when it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndOutcome {
    /// The decision is written: complete it.
    Prepared(Completion),
    /// A retry of a transaction already completed this way.
    AlreadyComplete,
}

/// DescribeTransactions' view of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    pub producer_id: ProducerId,
    pub producer_epoch: ProducerEpoch,
    pub state: TransactionState,
    pub timeout_ms: i32,
    pub start_timestamp_ms: i64,
    pub partitions: Vec<TopicPartition>,
}

/// ListTransactions' view of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    pub transactional_id: String,
    pub producer_id: ProducerId,
    pub state: TransactionState,
}

#[derive(Debug, Default)]
pub struct TransactionCoordinatorShard {
    transactions: HashMap<String, TransactionMetadata>,
    /// Transactions found decided but not completed when the partition was loaded: their markers are (re)written.
    recovering: Vec<String>,
}

fn record(transactional_id: &str, value: TransactionLogValue) -> TransactionRecord {
    TransactionRecord {
        transactional_id: transactional_id.to_string(),
        value: Some(value),
    }
}

fn with_record<R>(transactional_id: &str, value: TransactionLogValue, response: R) -> Output<R> {
    let mut output = Output::new(response);
    output.records.push(record(transactional_id, value));
    output
}

fn bumped(epoch: ProducerEpoch) -> ProducerEpoch {
    if epoch_exhausted(epoch) {
        epoch
    } else {
        ProducerEpoch(epoch.0 + 1)
    }
}

impl TransactionCoordinatorShard {
    pub fn new() -> Self {
        Self::default()
    }

    /// InitProducerId with a transactional id. `expected` is the producer's current id and epoch when it re-inits
    /// (KIP-360); `fresh` a newly allocated producer id, given on the second call after [`InitOutcome::NeedsProducerId`].
    pub fn init_producer_id(
        &mut self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(ProducerId, ProducerEpoch)>,
        fresh: Option<ProducerId>,
        now_ms: i64,
    ) -> Output<InitOutcome> {
        let Some(meta) = self.transactions.get(transactional_id) else {
            let Some(producer_id) = fresh else {
                return Output::new(InitOutcome::NeedsProducerId);
            };
            let value = TransactionLogValue {
                producer_id,
                previous_producer_id: ProducerId::NONE,
                producer_epoch: ProducerEpoch(0),
                timeout_ms,
                state: TransactionState::Empty,
                partitions: BTreeSet::new(),
                last_update_timestamp_ms: now_ms,
                start_timestamp_ms: -1,
            };
            return with_record(
                transactional_id,
                value,
                InitOutcome::Initialized(producer_id, ProducerEpoch(0)),
            );
        };
        let fail = |error| Output::new(InitOutcome::Failed(error));
        if let Some((id, epoch)) = expected {
            let valid = meta.producer_epoch() == ProducerEpoch::NONE
                || id == meta.producer_id()
                || (id == meta.stored.previous_producer_id && epoch_exhausted(epoch));
            if !valid {
                return fail(TransactionError::ProducerFenced);
            }
        }
        match meta.state() {
            TransactionState::PrepareCommit | TransactionState::PrepareAbort => {
                fail(TransactionError::ConcurrentTransactions)
            }
            TransactionState::Ongoing => {
                let mut value = meta.transit(TransactionState::PrepareAbort, now_ms);
                value.producer_epoch = bumped(meta.producer_epoch());
                let completion = Completion::of(transactional_id, &value, false);
                with_record(transactional_id, value, InitOutcome::Fencing(completion))
            }
            TransactionState::Empty
            | TransactionState::CompleteCommit
            | TransactionState::CompleteAbort => {
                let current = meta.producer_epoch();
                let rotate =
                    epoch_exhausted(current) && expected.is_none_or(|(_, epoch)| epoch == current);
                let mut value = meta.transit(TransactionState::Empty, now_ms);
                value.timeout_ms = timeout_ms;
                value.partitions = BTreeSet::new();
                value.start_timestamp_ms = -1;
                if rotate {
                    let Some(producer_id) = fresh else {
                        return Output::new(InitOutcome::NeedsProducerId);
                    };
                    value.previous_producer_id = meta.producer_id();
                    value.producer_id = producer_id;
                    value.producer_epoch = ProducerEpoch(0);
                } else {
                    match expected.map(|(_, epoch)| epoch) {
                        None => {}
                        Some(epoch) if epoch == current || current == ProducerEpoch::NONE => {}
                        // A retry whose answer was lost: the bump happened already.
                        Some(epoch) if epoch == meta.last_producer_epoch => {
                            return Output::new(InitOutcome::Initialized(
                                meta.producer_id(),
                                current,
                            ));
                        }
                        Some(_) => return fail(TransactionError::ProducerFenced),
                    }
                    value.producer_epoch = ProducerEpoch(current.0.saturating_add(1));
                }
                let answer = InitOutcome::Initialized(value.producer_id, value.producer_epoch);
                with_record(transactional_id, value, answer)
            }
            TransactionState::Dead | TransactionState::PrepareEpochFence => {
                fail(TransactionError::InvalidTxnState)
            }
        }
    }

    /// The transaction of `transactional_id` if `producer_id` and `epoch` are its current ones.
    fn current(
        &self,
        transactional_id: &str,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
    ) -> Result<&TransactionMetadata, TransactionError> {
        let meta = self
            .transactions
            .get(transactional_id)
            .ok_or(TransactionError::InvalidProducerIdMapping)?;
        if meta.producer_id() != producer_id {
            return Err(TransactionError::InvalidProducerIdMapping);
        }
        if meta.producer_epoch() != epoch {
            return Err(TransactionError::ProducerFenced);
        }
        Ok(meta)
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's `__consumer_offsets` partition).
    pub fn add_partitions(
        &mut self,
        transactional_id: &str,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        partitions: &[TopicPartition],
        now_ms: i64,
    ) -> Output<Result<(), TransactionError>> {
        let meta = match self.current(transactional_id, producer_id, epoch) {
            Ok(meta) => meta,
            Err(error) => return Output::new(Err(error)),
        };
        let state = meta.state();
        if state.is_prepared() {
            return Output::new(Err(TransactionError::ConcurrentTransactions));
        }
        if !state.is_complete() && state != TransactionState::Ongoing {
            return Output::new(Err(TransactionError::InvalidTxnState));
        }
        if state == TransactionState::Ongoing
            && partitions
                .iter()
                .all(|p| meta.stored.partitions.contains(p))
        {
            return Output::new(Ok(()));
        }
        let mut value = meta.transit(TransactionState::Ongoing, now_ms);
        if state != TransactionState::Ongoing {
            value.start_timestamp_ms = now_ms;
            value.partitions = BTreeSet::new();
        }
        value.partitions.extend(partitions.iter().cloned());
        with_record(transactional_id, value, Ok(()))
    }

    /// KIP-890's verification (AddPartitionsToTxn v4+ with verify_only): whether each partition is in the ongoing
    /// transaction (TRANSACTION_ABORTABLE for one that is not).
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        partitions: &[TopicPartition],
    ) -> Result<Vec<Option<TransactionError>>, TransactionError> {
        let meta = self.current(transactional_id, producer_id, epoch)?;
        if meta.state().is_prepared() {
            return Err(TransactionError::ConcurrentTransactions);
        }
        Ok(partitions
            .iter()
            .map(|p| {
                (!meta.stored.partitions.contains(p))
                    .then_some(TransactionError::TransactionAbortable)
            })
            .collect())
    }

    /// EndTxn from the producer.
    pub fn end_transaction(
        &mut self,
        transactional_id: &str,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        commit: bool,
        now_ms: i64,
    ) -> Output<Result<EndOutcome, TransactionError>> {
        let meta = match self.current(transactional_id, producer_id, epoch) {
            Ok(meta) => meta,
            Err(error) => return Output::new(Err(error)),
        };
        let result = match (meta.state(), commit) {
            (TransactionState::Ongoing, _) => {
                let state = if commit {
                    TransactionState::PrepareCommit
                } else {
                    TransactionState::PrepareAbort
                };
                let value = meta.transit(state, now_ms);
                let completion = Completion::of(transactional_id, &value, commit);
                return with_record(
                    transactional_id,
                    value,
                    Ok(EndOutcome::Prepared(completion)),
                );
            }
            (TransactionState::CompleteCommit, true) | (TransactionState::CompleteAbort, false) => {
                Ok(EndOutcome::AlreadyComplete)
            }
            (TransactionState::PrepareCommit, true) | (TransactionState::PrepareAbort, false) => {
                Err(TransactionError::ConcurrentTransactions)
            }
            _ => Err(TransactionError::InvalidTxnState),
        };
        Output::new(result)
    }

    /// The coordinator aborts a transaction that outlived its timeout, bumping the epoch so that the producer,
    /// should it still be alive, is fenced. `None` if the transaction moved on meanwhile.
    pub fn abort_timed_out(
        &mut self,
        transactional_id: &str,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        now_ms: i64,
    ) -> Output<Option<Completion>> {
        let Ok(meta) = self.current(transactional_id, producer_id, epoch) else {
            return Output::new(None);
        };
        if meta.state() != TransactionState::Ongoing {
            return Output::new(None);
        }
        let mut value = meta.transit(TransactionState::PrepareAbort, now_ms);
        value.producer_epoch = bumped(epoch);
        let completion = Completion::of(transactional_id, &value, false);
        with_record(transactional_id, value, Some(completion))
    }

    /// Once every marker of a decided transaction is written: Complete*.
    pub fn complete(&mut self, completion: &Completion, now_ms: i64) -> Output<()> {
        let Some(meta) = self.transactions.get(&completion.transactional_id) else {
            return Output::new(());
        };
        let expected = if completion.commit {
            TransactionState::PrepareCommit
        } else {
            TransactionState::PrepareAbort
        };
        if meta.state() != expected
            || meta.producer_id() != completion.producer_id
            || meta.producer_epoch() != completion.producer_epoch
        {
            return Output::new(());
        }
        let state = if completion.commit {
            TransactionState::CompleteCommit
        } else {
            TransactionState::CompleteAbort
        };
        let mut value = meta.transit(state, now_ms);
        value.partitions = BTreeSet::new();
        with_record(&completion.transactional_id, value, ())
    }

    /// Ongoing transactions older than their timeout at `now_ms`.
    pub fn timed_out(&self, now_ms: i64) -> Vec<(String, ProducerId, ProducerEpoch)> {
        self.transactions
            .iter()
            .filter(|(_, m)| {
                m.state() == TransactionState::Ongoing
                    && m.stored
                        .start_timestamp_ms
                        .saturating_add(i64::from(m.stored.timeout_ms))
                        < now_ms
            })
            .map(|(id, m)| (id.clone(), m.producer_id(), m.producer_epoch()))
            .collect()
    }

    /// The decided transactions found on load, once each: their markers must be written.
    pub fn take_recovering(&mut self) -> Output<Vec<Completion>> {
        let completions = std::mem::take(&mut self.recovering)
            .into_iter()
            .filter_map(|id| self.transactions.get(&id)?.completion(&id))
            .collect();
        Output::new(completions)
    }

    pub fn describe(
        &self,
        transactional_id: &str,
    ) -> Result<TransactionDescription, TransactionError> {
        let meta = self
            .transactions
            .get(transactional_id)
            .filter(|m| m.state() != TransactionState::Dead)
            .ok_or(TransactionError::TransactionalIdNotFound)?;
        Ok(TransactionDescription {
            producer_id: meta.producer_id(),
            producer_epoch: meta.producer_epoch(),
            state: meta.state(),
            timeout_ms: meta.stored.timeout_ms,
            start_timestamp_ms: meta.stored.start_timestamp_ms,
            partitions: meta.stored.partitions.iter().cloned().collect(),
        })
    }

    /// ListTransactions: empty filters match everything; `min_duration_ms` (v1+, -1 for none) keeps transactions
    /// running at least that long.
    pub fn list(
        &self,
        states: &[String],
        producer_ids: &[ProducerId],
        min_duration_ms: i64,
        now_ms: i64,
    ) -> Vec<TransactionListing> {
        self.transactions
            .iter()
            .filter(|(_, m)| m.state() != TransactionState::Dead)
            .filter(|(_, m)| states.is_empty() || states.iter().any(|s| s == m.state().name()))
            .filter(|(_, m)| producer_ids.is_empty() || producer_ids.contains(&m.producer_id()))
            .filter(|(_, m)| {
                min_duration_ms < 0
                    || (m.state() == TransactionState::Ongoing
                        && now_ms.saturating_sub(m.stored.start_timestamp_ms) >= min_duration_ms)
            })
            .map(|(id, m)| TransactionListing {
                transactional_id: id.clone(),
                producer_id: m.producer_id(),
                state: m.state(),
            })
            .collect()
    }
}

impl CoordinatorShard for TransactionCoordinatorShard {
    type Record = TransactionRecord;
    type Reply = ();
    type Error = TransactionError;

    fn replay(&mut self, record: &TransactionRecord) {
        match &record.value {
            None => {
                self.transactions.remove(&record.transactional_id);
            }
            Some(value) => {
                let last_producer_epoch = match self.transactions.get(&record.transactional_id) {
                    Some(old) if old.producer_epoch() != value.producer_epoch => {
                        old.producer_epoch()
                    }
                    Some(old) => old.last_producer_epoch,
                    None => ProducerEpoch::NONE,
                };
                self.transactions.insert(
                    record.transactional_id.clone(),
                    TransactionMetadata {
                        stored: value.clone(),
                        last_producer_epoch,
                    },
                );
            }
        }
    }

    fn on_loaded(&mut self, _now_ms: i64) {
        self.recovering = self
            .transactions
            .iter()
            .filter(|(_, m)| m.state().is_prepared())
            .map(|(id, _)| id.clone())
            .collect();
    }

    fn next_deadline(&self) -> Option<i64> {
        // Timeouts are checked by the coordinator's own task: aborting needs markers written outside the shard.
        None
    }

    fn fire_timers(&mut self, _now_ms: i64) -> Output<()> {
        Output::new(())
    }

    fn serialize(record: &TransactionRecord) -> Result<(Bytes, Option<Bytes>), TransactionError> {
        let key = record
            .encode_key()
            .map_err(TransactionError::InvalidRecord)?;
        let value = record
            .encode_value()
            .map_err(TransactionError::InvalidRecord)?;
        Ok((key, value))
    }

    fn deserialize(key: &[u8], value: Option<&[u8]>) -> Result<Option<TransactionRecord>, String> {
        TransactionRecord::decode(key, value)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
#[path = "shard_tests.rs"]
mod tests;
