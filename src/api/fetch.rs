//! Fetch (key 1): read from each requested partition, long-polling until `min_bytes` are ready or `max_wait_ms`
//! passes. Waiting fetches are woken by HighWatermark changes, never by polling.
//!
//! Limits follow KIP-74: `max_bytes` bounds the whole response and `partition_max_bytes` each partition, except that
//! the first batch of the first non-empty partition is returned whole even when larger, so a consumer always makes
//! progress.
//!
//! Fetch sessions (KIP-227): this broker creates none. A request for a new session (epoch 0) is answered with
//! session id 0, which tells the client to keep sending full fetches, as Kafka answers when its session cache is
//! full; a session id we never issued gets FETCH_SESSION_ID_NOT_FOUND.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::select_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchRequest;
use kafka_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, TopicName};
use tokio::sync::watch;

use super::{local_partition, ToErrorCode};
use crate::replica::Partition;
use crate::server::Broker;
use crate::storage::Offset;
use ferrite_raft::{PartitionIndex, TopicId};

/// Session epoch a client sends when it wants no session at all.
const FINAL_EPOCH: i32 = -1;

/// One requested partition, resolved once.
struct Wanted {
    index: i32,
    fetch_offset: Offset,
    max_bytes: usize,
    partition: Result<Arc<Partition>, ResponseError>,
}

pub async fn handle(broker: &Arc<Broker>, version: i16, request: FetchRequest) -> FetchResponse {
    if request.session_id != 0 {
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code());
    }
    if request.session_epoch != 0 && request.session_epoch != FINAL_EPOCH {
        return FetchResponse::default()
            .with_error_code(ResponseError::InvalidFetchSessionEpoch.code());
    }
    let image = broker.image();
    let by_id = version >= 13;
    let topics: Vec<(TopicName, uuid::Uuid, Vec<Wanted>)> = request
        .topics
        .into_iter()
        .map(|topic| {
            let found = if by_id {
                image.topic_by_id(TopicId(topic.topic_id))
            } else {
                image.topic(&topic.topic.0)
            };
            let wanted = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let partition = match found {
                        None if by_id => Err(ResponseError::UnknownTopicId),
                        None => Err(ResponseError::UnknownTopicOrPartition),
                        Some(t) => local_partition(broker, t, PartitionIndex(p.partition)),
                    };
                    Wanted {
                        index: p.partition,
                        fetch_offset: Offset(p.fetch_offset),
                        max_bytes: p.partition_max_bytes.max(0) as usize,
                        partition,
                    }
                })
                .collect();
            (topic.topic, topic.topic_id, wanted)
        })
        .collect();

    let max_wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let deadline = tokio::time::Instant::now() + max_wait;
    let min_bytes = request.min_bytes.max(0) as usize;
    // The broker's fetch.max.bytes caps what a client may ask for, as in Kafka.
    let max_bytes = (request.max_bytes.max(0) as usize).min(broker.config.fetch_max_bytes as usize);
    let mut watchers: Vec<watch::Receiver<Offset>> = topics
        .iter()
        .flat_map(|(_, _, ps)| ps.iter())
        .filter_map(|w| w.partition.as_ref().ok())
        .map(|p| p.subscribe())
        .collect();
    loop {
        // Mark the current HighWatermarks as seen before reading, so an append racing the read still wakes us.
        for watcher in &mut watchers {
            watcher.borrow_and_update();
        }
        let (responses, bytes, errors) = read_all(&topics, max_bytes);
        let now = tokio::time::Instant::now();
        if bytes >= min_bytes || errors || now >= deadline || watchers.is_empty() {
            return FetchResponse::default()
                .with_responses(responses)
                .with_session_id(0);
        }
        let changed = select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            let (responses, _, _) = read_all(&topics, max_bytes);
            return FetchResponse::default()
                .with_responses(responses)
                .with_session_id(0);
        }
    }
}

/// Reads every requested partition once; returns the responses, the bytes they hold, and whether any failed.
fn read_all(
    topics: &[(TopicName, uuid::Uuid, Vec<Wanted>)],
    max_bytes: usize,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut total = 0usize;
    let mut errors = false;
    let responses = topics
        .iter()
        .map(|(name, id, wanted)| {
            let partitions = wanted
                .iter()
                .map(|w| {
                    let data = PartitionData::default()
                        .with_partition_index(w.index)
                        .with_preferred_read_replica(BrokerId(-1));
                    let partition = match &w.partition {
                        Ok(partition) => partition,
                        Err(error) => {
                            errors = true;
                            return failed(data, *error);
                        }
                    };
                    let budget = w.max_bytes.min(max_bytes.saturating_sub(total));
                    match partition.read(w.fetch_offset, budget, total == 0) {
                        Ok(read) => {
                            total += read.records.len();
                            data.with_high_watermark(read.high_watermark.0)
                                .with_last_stable_offset(read.high_watermark.0)
                                .with_log_start_offset(read.log_start_offset.0)
                                .with_records(Some(read.records))
                        }
                        Err(error) => {
                            errors = true;
                            failed(data, error.error())
                                .with_high_watermark(partition.high_watermark().0)
                                .with_log_start_offset(partition.log_start_offset().0)
                        }
                    }
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(name.clone())
                .with_topic_id(*id)
                .with_partitions(partitions)
        })
        .collect();
    (responses, total, errors)
}

fn failed(data: PartitionData, error: ResponseError) -> PartitionData {
    data.with_error_code(error.code())
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_records(Some(Bytes::new()))
}
