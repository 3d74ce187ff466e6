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
    PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::ResponseKind;
use kafka_protocol::protocol::StrBytes;

use super::{local_partition, ToErrorCode};
use crate::replica::{now_ms, Partition};
use crate::server::{Broker, HandlerFuture};
use crate::storage::{LogAppendInfo, Offset};
use ferrite_raft::{PartitionIndex, TopicId};

/// One partition's outcome, before or after waiting for durability.
enum Outcome {
    Appended(Arc<Partition>, LogAppendInfo),
    Failed(ResponseError, Option<String>),
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
                let outcome = match found {
                    _ if !matches!(acks, -1..=1) => {
                        Outcome::Failed(ResponseError::InvalidRequiredAcks, None)
                    }
                    None if by_id => Outcome::Failed(ResponseError::UnknownTopicId, None),
                    None => Outcome::Failed(ResponseError::UnknownTopicOrPartition, None),
                    Some(t) if t.is_internal() => {
                        Outcome::Failed(ResponseError::InvalidTopicException, None)
                    }
                    Some(t) => append(broker, PartitionIndex(data.index), data.records, now, t),
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
    broker: &Broker,
    index: PartitionIndex,
    records: Option<Bytes>,
    now: i64,
    topic: &crate::metadata::TopicImage,
) -> Outcome {
    let partition = match local_partition(broker, topic, index) {
        Ok(partition) => partition,
        Err(error) => return Outcome::Failed(error, None),
    };
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return Outcome::Failed(ResponseError::InvalidRecord, Some("no record batch".into()));
    };
    match partition.append(records, now) {
        Ok(info) => Outcome::Appended(partition, info),
        Err(error) => {
            tracing::debug!(topic = %partition.topic, partition = index.0, %error, "produce rejected");
            Outcome::Failed(error.error(), Some(error.to_string()))
        }
    }
}

async fn respond(index: i32, outcome: Outcome) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default().with_index(index);
    match outcome {
        Outcome::Appended(partition, info) => match partition.complete(&info).await {
            Ok(()) => response
                .with_base_offset(info.first_offset.0)
                .with_log_append_time_ms(info.log_append_time_ms.unwrap_or(-1))
                .with_log_start_offset(partition.log_start_offset().0),
            Err(error) => {
                tracing::error!(topic = %partition.topic, partition = index, %error, "append not made durable");
                failed(response, error.error(), Some(error.to_string()))
            }
        },
        Outcome::Failed(error, message) => failed(response, error, message),
    }
}

fn failed(
    response: PartitionProduceResponse,
    error: ResponseError,
    message: Option<String>,
) -> PartitionProduceResponse {
    response
        .with_error_code(error.code())
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(Offset(-1).0)
        .with_error_message(message.map(StrBytes::from_string))
}
