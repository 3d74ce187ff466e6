//! Produce (key 0): append each partition's batch, then answer once the appends are as durable as `acks` and the
//! flush policy require. acks=0 gets no response at all, as in Kafka.
//!
//! The appends happen before this returns its future, so that batches from one connection reach the log in the
//! order the client sent them even though responses are pipelined.

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

use super::{local_partition, ToErrorCode};
use crate::replica::{now_ms, Partition, ReplicaError};
use crate::server::{Broker, HandlerFuture};
use crate::storage::{LogAppendInfo, LogError, Offset};
use ferrite_raft::{PartitionIndex, TopicId};

/// `acks=-1`: wait for the in-sync replicas.
const ACKS_ALL: i16 = -1;

/// One partition's outcome, before or after waiting for durability.
enum Outcome {
    Appended(Arc<Partition>, LogAppendInfo),
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

pub fn handle(broker: &Arc<Broker>, version: i16, request: ProduceRequest) -> HandlerFuture {
    let acks = request.acks;
    let image = broker.image();
    let now = now_ms();
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
                let outcome = match found {
                    _ if !matches!(acks, -1..=1) => failed(ResponseError::InvalidRequiredAcks),
                    None if by_id => failed(ResponseError::UnknownTopicId),
                    None => failed(ResponseError::UnknownTopicOrPartition),
                    Some(t) if t.is_internal() => failed(ResponseError::InvalidTopicException),
                    Some(t) => append(
                        broker,
                        PartitionIndex(data.index),
                        data.records,
                        now,
                        acks == ACKS_ALL,
                        t,
                    ),
                };
                (data.index, outcome)
            })
            .collect();
        topics.push((topic.name, topic.topic_id, outcomes));
    }
    if acks == 0 {
        // Nobody waits for these; still finish them so the HighWatermark moves.
        tokio::spawn(async move {
            for (_, _, outcomes) in topics {
                for (_, outcome) in outcomes {
                    if let Outcome::Appended(partition, info) = outcome {
                        let _ = partition.complete(&info).await;
                    }
                }
            }
        });
        return Box::pin(std::future::ready(None));
    }
    let broker = broker.clone();
    Box::pin(async move {
        let broker = &broker;
        let responses = join_all(
            topics
                .into_iter()
                .map(|(name, topic_id, outcomes)| async move {
                    let partition_responses = join_all(
                        outcomes
                            .into_iter()
                            .map(|(index, outcome)| respond(broker, acks, index, outcome)),
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
    broker: &Broker,
    index: PartitionIndex,
    records: Option<Bytes>,
    now: i64,
    acks_all: bool,
    topic: &crate::metadata::TopicImage,
) -> Outcome {
    let partition = match local_partition(broker, topic, index) {
        Ok(partition) => partition,
        Err(error) => return Outcome::Failed(Failure::new(error)),
    };
    let Some(state) = topic.partitions.get(&index) else {
        return Outcome::Failed(Failure::new(ResponseError::NotLeaderOrFollower));
    };
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return Outcome::Failed(Failure::with_message(
            ResponseError::InvalidRecord,
            "no record batch".into(),
        ));
    };
    match partition.append_as_leader(records, now, acks_all, state) {
        Ok(info) => Outcome::Appended(partition, info),
        Err(error) => {
            tracing::debug!(topic = %partition.topic, partition = index.0, %error, "produce rejected");
            Outcome::Failed(Failure::from_replica(&error))
        }
    }
}

async fn respond(
    broker: &Broker,
    acks: i16,
    index: i32,
    outcome: Outcome,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default().with_index(index);
    match outcome {
        Outcome::Appended(partition, info) => match complete(broker, acks, &partition, &info).await
        {
            Ok(()) => response
                .with_base_offset(info.first_offset.0)
                .with_log_append_time_ms(info.log_append_time_ms.unwrap_or(-1))
                .with_log_start_offset(partition.log_start_offset().0),
            Err(failure) => failed(response, failure),
        },
        Outcome::Failed(failure) => failed(response, failure),
    }
}

/// Waits until the append is as durable as the flush policy promises; for acks=all, also checks that the ISR the
/// image gives now still meets min.insync.replicas.
async fn complete(
    broker: &Broker,
    acks: i16,
    partition: &Partition,
    info: &LogAppendInfo,
) -> Result<(), Failure> {
    partition
        .complete(info)
        .await
        .map_err(|error| {
            tracing::error!(topic = %partition.topic, partition = partition.index.0, %error, "append not made durable");
            Failure::from_replica(&error)
        })?;
    if acks != ACKS_ALL {
        return Ok(());
    }
    let image = broker.image();
    let state = image
        .topic_by_id(partition.topic_id)
        .and_then(|topic| topic.partitions.get(&partition.index))
        .ok_or_else(|| Failure::new(ResponseError::NotLeaderOrFollower))?;
    partition
        .check_isr_after_append(state)
        .map_err(|error| Failure::from_replica(&error))
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
