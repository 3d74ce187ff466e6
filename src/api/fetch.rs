//! Fetch (key 1): read from each requested partition, long-polling until `min_bytes` are ready or `max_wait_ms`
//! passes. Waiting fetches are woken by HighWatermark changes, never by polling.
//!
//! Limits follow KIP-74: `max_bytes` bounds the whole response and `partition_max_bytes` each partition, except that
//! the first batch of the first non-empty partition is returned whole even when larger, so a consumer always makes
//! progress.
//!
//! Fetch sessions (KIP-227): the request's session fields go through the broker's
//! [`FetchSessionCache`](crate::server::fetch_session::FetchSessionCache), which says which partitions to read (an
//! incremental fetch reads its whole session) and which of them the response lists (an incremental response lists
//! only partitions with news).

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
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;

use super::{local_partition, ToErrorCode};
use crate::replica::{now_ms, Partition};
use crate::server::fetch_session::{
    FetchPosition, PartitionOutcome, PartitionState, TopicKey, NO_SESSION,
};
use crate::server::Broker;
use crate::storage::Offset;
use ferrite_raft::{PartitionIndex, TopicId};

/// One partition to read, resolved once.
struct Wanted {
    index: i32,
    fetch_offset: Offset,
    max_bytes: usize,
    partition: Result<Arc<Partition>, ResponseError>,
}

type TopicReads = Vec<(TopicName, uuid::Uuid, Vec<Wanted>)>;

pub async fn handle(broker: &Arc<Broker>, version: i16, request: FetchRequest) -> FetchResponse {
    let by_id = version >= 13;
    let key = |name: &TopicName, id: uuid::Uuid| {
        if by_id {
            TopicKey::Id(id)
        } else {
            TopicKey::Name(name.0.to_string())
        }
    };
    let requested = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|p| FetchPosition {
                topic: key(&topic.topic, topic.topic_id),
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(0) as usize,
            })
        })
        .collect();
    let forgotten: Vec<(TopicKey, i32)> = request
        .forgotten_topics_data
        .iter()
        .flat_map(|topic| {
            let topic_key = key(&topic.topic, topic.topic_id);
            topic
                .partitions
                .iter()
                .map(move |p| (topic_key.clone(), *p))
        })
        .collect();
    let plan = match broker.fetch_sessions.open(
        request.session_id,
        request.session_epoch,
        by_id,
        requested,
        &forgotten,
        now_ms(),
    ) {
        Ok(plan) => plan,
        Err(error) => {
            return FetchResponse::default()
                .with_error_code(error.error().code())
                .with_session_id(NO_SESSION)
        }
    };
    let topics = resolve(broker, &plan.positions);

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
    let responses = loop {
        // Mark the current HighWatermarks as seen before reading, so an append racing the read still wakes us.
        for watcher in &mut watchers {
            watcher.borrow_and_update();
        }
        let (responses, bytes, errors) = read_all(&topics, max_bytes);
        let now = tokio::time::Instant::now();
        if bytes >= min_bytes || errors || now >= deadline || watchers.is_empty() {
            break responses;
        }
        let changed = select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            break read_all(&topics, max_bytes).0;
        }
    };
    let outcomes: Vec<PartitionOutcome> = responses
        .iter()
        .flat_map(|topic| topic.partitions.iter())
        .map(|data| PartitionOutcome {
            state: PartitionState {
                high_watermark: data.high_watermark,
                last_stable_offset: data.last_stable_offset,
                log_start_offset: data.log_start_offset,
            },
            has_records: data.records.as_ref().is_some_and(|r| !r.is_empty()),
            has_error: data.error_code != 0,
        })
        .collect();
    let (listed, session_id) =
        broker
            .fetch_sessions
            .close(plan.context, &plan.positions, &outcomes, now_ms());
    let mut listed = listed.into_iter();
    let responses = responses
        .into_iter()
        .filter_map(|mut topic| {
            topic.partitions.retain(|_| listed.next().unwrap_or(true));
            (!topic.partitions.is_empty()).then_some(topic)
        })
        .collect();
    FetchResponse::default()
        .with_responses(responses)
        .with_session_id(session_id)
}

/// Resolves the partitions to read against the current image, one response topic per run of positions of the same
/// topic (as Kafka groups its responses).
fn resolve(broker: &Arc<Broker>, positions: &[FetchPosition]) -> TopicReads {
    let image = broker.image();
    let mut topics: TopicReads = Vec::new();
    for position in positions {
        let (name, id, found) = match &position.topic {
            TopicKey::Id(id) => (TopicName::default(), *id, image.topic_by_id(TopicId(*id))),
            TopicKey::Name(name) => (
                TopicName(StrBytes::from_string(name.clone())),
                uuid::Uuid::nil(),
                image.topic(name),
            ),
        };
        let partition = match found {
            None if matches!(position.topic, TopicKey::Id(_)) => Err(ResponseError::UnknownTopicId),
            None => Err(ResponseError::UnknownTopicOrPartition),
            Some(t) => local_partition(broker, t, PartitionIndex(position.partition)),
        };
        let wanted = Wanted {
            index: position.partition,
            fetch_offset: Offset(position.fetch_offset),
            max_bytes: position.max_bytes,
            partition,
        };
        match topics.last_mut() {
            Some((last_name, last_id, reads)) if *last_name == name && *last_id == id => {
                reads.push(wanted)
            }
            _ => topics.push((name, id, vec![wanted])),
        }
    }
    topics
}

/// Reads every requested partition once; returns the responses, the bytes they hold, and whether any failed.
fn read_all(topics: &TopicReads, max_bytes: usize) -> (Vec<FetchableTopicResponse>, usize, bool) {
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
