//! Produce (key 0): append each partition's batch, then answer once the appends are as durable as `acks` and the
//! flush policy require. acks=0 gets no response at all, as in Kafka.
//!
//! The appends go through [`ReplicaManager::append_records`](crate::replica::ReplicaManager::append_records) before
//! this returns its future, so that batches from one connection reach the log in the order the client sent them
//! even though responses are pipelined.

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
    let image = apis.image();
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
                let outcome = match (found, acks) {
                    (_, None) => failed(ResponseError::InvalidRequiredAcks),
                    (None, _) if by_id => failed(ResponseError::UnknownTopicId),
                    (None, _) => failed(ResponseError::UnknownTopicOrPartition),
                    (Some(t), Some(acks)) => {
                        append(apis, t, PartitionIndex(data.index), data.records, acks, now)
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
    let appended = apis.replicas.append_records(
        topic.topic_id,
        index,
        records,
        acks,
        AppendOrigin::Client,
        now,
    );
    match appended {
        Ok(pending) => Outcome::Appended(pending),
        Err(error) => {
            tracing::debug!(topic = %topic.name, partition = index.0, %error, "produce rejected");
            Outcome::Failed(Failure::from_replica(&error))
        }
    }
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
