//! Produce (key 0): append each partition's batch, then answer once the appends are as durable as `acks` and the
//! flush policy require. acks=0 gets no response at all, as in Kafka.
//!
//! A transactional producer's first batch in a partition is checked first against its ongoing transaction (KIP-890
//! part 1, Kafka's `transaction.partition.verification.enable`): a batch the coordinator does not know to be part of
//! the transaction (a zombie's, or one that arrives after its transaction was aborted) is refused, so it can never
//! hang the partition's last stable offset.
//!
//! The appends go through [`ReplicaManager::append_records`](crate::replica::ReplicaManager::append_records) before
//! this returns its future, so that batches from one connection reach the log in the order the client sent them
//! even though responses are pipelined.

use crate::metrics::{broker_metrics, TopicMeter};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::ProduceRequest;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::ResponseKind;
use kafka_protocol::protocol::StrBytes;

use super::{HandlerFuture, KafkaApis, ToErrorCode};
use crate::ids::{Offset, PartitionIndex, TopicId};
use crate::metadata::TopicImage;
use crate::replica::{now_ms, AppendOrigin, PendingAppend, ReplicaError, RequiredAcks};
use crate::storage::LogError;

/// One partition's outcome, before or after waiting for durability.
enum Outcome {
    Appended(PendingAppend),
    Failed(Failure),
}

/// Why a partition's append failed: the error code, a message, and (KIP-467) the records that caused it.
struct Failure {
    error: ResponseError,
    message: Option<String>,
    record_errors: Vec<BatchIndexAndErrorMessage>,
}

impl Failure {
    fn new(error: ResponseError) -> Self {
        Failure {
            error,
            message: None,
            record_errors: Vec::new(),
        }
    }

    fn with_message(error: ResponseError, message: String) -> Self {
        Failure {
            message: Some(message),
            ..Failure::new(error)
        }
    }

    fn from_replica(error: &ReplicaError) -> Self {
        let record_errors = match error {
            ReplicaError::Log(LogError::InvalidRecords(errors)) => errors
                .iter()
                .map(|e| {
                    BatchIndexAndErrorMessage::default()
                        .with_batch_index(e.batch_index)
                        .with_batch_index_error_message(Some(StrBytes::from_string(
                            e.message.clone(),
                        )))
                })
                .collect(),
            _ => Vec::new(),
        };
        Failure {
            record_errors,
            ..Failure::with_message(error.error(), error.to_string())
        }
    }
}

pub fn handle(apis: &Arc<KafkaApis>, version: i16, request: ProduceRequest) -> HandlerFuture {
    let acks = RequiredAcks::from_wire(request.acks);
    let transactional_id = request
        .transactional_id
        .as_ref()
        .map(|id| id.0.to_string())
        .filter(|id| !id.is_empty());
    let image = apis.image();
    let now = now_ms();
    // acks=all waits for the ISR at most this long, then answers REQUEST_TIMED_OUT (the records stay).
    let timeout = std::time::Duration::from_millis(request.timeout_ms.max(0) as u64);
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let by_id = version >= 13;
        let found = if by_id {
            image.topic_by_id(TopicId(topic.topic_id))
        } else {
            image.topic(&topic.name.0)
        };
        let outcomes: Vec<(i32, Outcome)> = topic
            .partition_data
            .into_iter()
            .map(|data| {
                let failed = |error| Outcome::Failed(Failure::new(error));
                let outcome = match (found, acks) {
                    (_, None) => failed(ResponseError::InvalidRequiredAcks),
                    (None, _) if by_id => failed(ResponseError::UnknownTopicId),
                    (None, _) => failed(ResponseError::UnknownTopicOrPartition),
                    (Some(t), Some(acks)) => {
                        let index = PartitionIndex(data.index);
                        let verified = match (&transactional_id, &data.records) {
                            (Some(id), Some(records)) => {
                                verify_transaction(apis, version, id, t, index, records)
                            }
                            _ => Ok(()),
                        };
                        match verified {
                            Ok(()) => match append(apis, t, index, data.records, acks, now) {
                                Outcome::Appended(pending) => {
                                    Outcome::Appended(pending.with_timeout(timeout))
                                }
                                failed => failed,
                            },
                            Err(failure) => Outcome::Failed(failure),
                        }
                    }
                };
                (data.index, outcome)
            })
            .collect();
        topics.push((topic.name, topic.topic_id, outcomes));
    }
    if acks == Some(RequiredAcks::None) {
        // Nobody waits for these; still finish them so the HighWatermark moves.
        tokio::spawn(async move {
            for (_, _, outcomes) in topics {
                for (_, outcome) in outcomes {
                    if let Outcome::Appended(pending) = outcome {
                        let _ = pending.wait().await;
                    }
                }
            }
        });
        return Box::pin(std::future::ready(None));
    }
    Box::pin(async move {
        let responses = join_all(
            topics
                .into_iter()
                .map(|(name, topic_id, outcomes)| async move {
                    let partition_responses = join_all(
                        outcomes
                            .into_iter()
                            .map(|(index, outcome)| respond(index, outcome)),
                    )
                    .await;
                    TopicProduceResponse::default()
                        .with_name(name)
                        .with_topic_id(topic_id)
                        .with_partition_responses(partition_responses)
                }),
        )
        .await;
        Some(ResponseKind::Produce(
            ProduceResponse::default().with_responses(responses),
        ))
    })
}

fn append(
    apis: &KafkaApis,
    topic: &TopicImage,
    index: PartitionIndex,
    records: Option<Bytes>,
    acks: RequiredAcks,
    now: i64,
) -> Outcome {
    if !topic.partitions.contains_key(&index) {
        return Outcome::Failed(Failure::new(ResponseError::UnknownTopicOrPartition));
    }
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return Outcome::Failed(Failure::with_message(
            ResponseError::InvalidRecord,
            "no record batch".into(),
        ));
    };
    let bytes = records.len() as u64;
    let appended = apis.replicas.append_records(
        topic.topic_id,
        index,
        records,
        acks,
        AppendOrigin::Client,
        now,
    );
    let counters = broker_metrics().topic(&topic.name);
    counters.add(TopicMeter::TotalProduceRequests, 1);
    match appended {
        Ok(pending) => {
            counters.add(TopicMeter::BytesIn, bytes);
            counters.add(TopicMeter::MessagesIn, u64::from(pending.record_count()));
            Outcome::Appended(pending)
        }
        Err(error) => {
            counters.add(TopicMeter::FailedProduceRequests, 1);
            tracing::debug!(topic = %topic.name, partition = index.0, %error, "produce rejected");
            Outcome::Failed(Failure::from_replica(&error))
        }
    }
}

/// KIP-890 part 1: a transactional batch that would start a transaction in this partition must belong to the
/// producer's ongoing transaction, as its coordinator says (AddPartitionsToTxn's verify form). Errors as Kafka
/// answers them: TRANSACTION_ABORTABLE (INVALID_TXN_STATE for Produce v10 and older, which do not know it), and
/// NOT_ENOUGH_REPLICAS for a coordinator that cannot tell right now, which every client retries. A coordinator on
/// another broker is asked nothing yet (that is the inter-broker AddPartitionsToTxn, with the cluster).
fn verify_transaction(
    apis: &KafkaApis,
    version: i16,
    transactional_id: &str,
    topic: &TopicImage,
    index: PartitionIndex,
    records: &Bytes,
) -> Result<(), Failure> {
    use crate::coordinator::transaction::{TopicPartition, TransactionError};
    use crate::ids::{ProducerEpoch, ProducerId};
    let Some(header) = crate::storage::BatchHeader::parse(records) else {
        return Ok(());
    };
    if !header.is_transactional() || header.is_control() {
        return Ok(());
    }
    let (producer_id, epoch) = (
        ProducerId(header.producer_id),
        ProducerEpoch(header.producer_epoch),
    );
    let Some(partition) = apis.replicas.partition(topic.topic_id, index) else {
        return Ok(());
    };
    if partition.in_transaction(producer_id, epoch) {
        return Ok(());
    }
    let partitions = [TopicPartition {
        topic: topic.name.to_string(),
        partition: index.0,
    }];
    let error =
        match apis
            .transactions
            .verify_partitions(transactional_id, producer_id, epoch, &partitions)
        {
            Ok(errors) => errors.into_iter().next().flatten(),
            Err(TransactionError::NotCoordinator) => None,
            Err(error) => Some(error),
        };
    let Some(error) = error else {
        return Ok(());
    };
    let code = match &error {
        TransactionError::TransactionAbortable if version <= 10 => ResponseError::InvalidTxnState,
        TransactionError::ConcurrentTransactions
        | TransactionError::CoordinatorLoadInProgress
        | TransactionError::CoordinatorNotAvailable => ResponseError::NotEnoughReplicas,
        error => error.error(),
    };
    tracing::debug!(%transactional_id, topic = %topic.name, partition = index.0, %error, "transactional batch not in the transaction");
    Err(Failure::with_message(
        code,
        "the partition was not added to the transaction".into(),
    ))
}

async fn respond(index: i32, outcome: Outcome) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default().with_index(index);
    let pending = match outcome {
        Outcome::Appended(pending) => pending,
        Outcome::Failed(failure) => return failed(response, failure),
    };
    let partition = pending.partition().clone();
    match pending.wait().await {
        Ok(info) => response
            .with_base_offset(info.first_offset.0)
            .with_log_append_time_ms(info.log_append_time_ms.unwrap_or(-1))
            .with_log_start_offset(partition.log_start_offset().0),
        Err(error) => {
            if !matches!(error, ReplicaError::NotEnoughReplicasAfterAppend { .. }) {
                tracing::error!(topic = %partition.topic, partition = index, %error, "append not made durable");
            }
            failed(response, Failure::from_replica(&error))
        }
    }
}

fn failed(response: PartitionProduceResponse, failure: Failure) -> PartitionProduceResponse {
    response
        .with_error_code(failure.error.code())
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(Offset(-1).0)
        .with_error_message(failure.message.map(StrBytes::from_string))
        .with_record_errors(failure.record_errors)
}
