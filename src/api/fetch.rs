//! Fetch (key 1): resolve the requested partitions against the MetadataImage and read them through
//! [`ReplicaManager::fetch_records`](crate::replica::ReplicaManager::fetch_records), which long-polls until
//! `min_bytes` are ready or `max_wait_ms` passes and applies KIP-74's byte limits.
//!
//! Fetch sessions (KIP-227): the request's session fields go through the broker's
//! [`FetchSessionCache`](crate::replica::fetch_session::FetchSessionCache), which says which partitions to read (an
//! incremental fetch reads its whole session) and which of them the response lists (an incremental response lists
//! only partitions with news).

use crate::metrics::{broker_metrics, TopicMeter};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchRequest;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchResponse, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, ProducerId as WireProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::KafkaApis;
use super::ToErrorCode;
use crate::ids::{LeaderEpoch, Offset, PartitionIndex, TopicId};
use crate::replica::fetch_session::{
    FetchPosition, PartitionOutcome, PartitionState, TopicKey, NO_SESSION,
};
use crate::replica::{now_ms, FetchParams, FetchPartition, FetchedPartition, IsolationLevel};

/// One requested partition: where it goes in the response, and what to read (or why it cannot be read).
struct Wanted {
    index: i32,
    read: Result<FetchPartition, ResponseError>,
}

type TopicReads = Vec<(TopicName, uuid::Uuid, Vec<Wanted>)>;

pub async fn handle(apis: &Arc<KafkaApis>, version: i16, request: FetchRequest) -> FetchResponse {
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
                current_leader_epoch: p.current_leader_epoch,
                last_fetched_epoch: p.last_fetched_epoch,
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
    let plan = match apis.fetch_sessions.open(
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
    // A follower's fetch names its broker (Fetch v15 moved the id into `replica_state`); consumers send -1.
    let replica_id = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let replica = (replica_id >= 0).then_some(crate::ids::BrokerId(replica_id));
    let topics = resolve(apis, &plan.positions);
    let unresolved = topics
        .iter()
        .flat_map(|(_, _, wanted)| wanted)
        .any(|w| w.read.is_err());
    let params = FetchParams {
        // A partition unknown to the image is an error the client acts on now, not after max_wait_ms.
        max_wait_ms: if unresolved {
            0
        } else {
            request.max_wait_ms.max(0) as u64
        },
        min_bytes: request.min_bytes.max(0) as usize,
        // The broker's fetch.max.bytes caps what a client may ask for, as in Kafka.
        max_bytes: (request.max_bytes.max(0) as usize).min(apis.config.fetch_max_bytes as usize),
        isolation: IsolationLevel::from_wire(request.isolation_level),
        replica,
    };
    let reads: Vec<FetchPartition> = topics
        .iter()
        .flat_map(|(_, _, wanted)| wanted)
        .filter_map(|w| w.read.ok())
        .collect();
    let mut fetched = apis
        .replicas
        .fetch_records(params, &reads)
        .await
        .into_iter();
    let responses: Vec<FetchableTopicResponse> = topics
        .into_iter()
        .map(|(name, id, wanted)| {
            let partitions = wanted
                .into_iter()
                .map(|w| {
                    let data = PartitionData::default()
                        .with_partition_index(w.index)
                        .with_preferred_read_replica(BrokerId(-1));
                    match w.read {
                        Err(error) => failed(data, error),
                        Ok(_) => match fetched.next() {
                            Some(fetched) => partition_data(data, fetched),
                            None => failed(data, ResponseError::UnknownServerError),
                        },
                    }
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(name)
                .with_topic_id(id)
                .with_partitions(partitions)
        })
        .collect();
    if replica.is_none() {
        record_consumer_fetch(apis, &responses);
    }
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
        apis.fetch_sessions
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

/// BrokerTopicMetrics of a consumer's fetch: bytes out, fetches and failed fetches per partition. Replication
/// is not counted here, as Kafka keeps it apart (ReplicationBytesOutPerSec).
fn record_consumer_fetch(apis: &KafkaApis, responses: &[FetchableTopicResponse]) {
    let image = apis.image();
    let metrics = broker_metrics();
    for topic in responses {
        // Fetch v13+ names topics by id only.
        let name = match topic.topic.0.is_empty() {
            true => match image.topic_by_id(crate::ids::TopicId(topic.topic_id)) {
                Some(t) => t.name.clone(),
                None => continue,
            },
            false => topic.topic.0.as_str().into(),
        };
        let bytes: usize = topic
            .partitions
            .iter()
            .filter_map(|p| p.records.as_ref().map(Bytes::len))
            .sum();
        let failed = topic
            .partitions
            .iter()
            .filter(|p| p.error_code != 0)
            .count();
        let counters = metrics.topic(&name);
        counters.add(TopicMeter::BytesOut, bytes as u64);
        counters.add(
            TopicMeter::TotalFetchRequests,
            topic.partitions.len() as u64,
        );
        counters.add(TopicMeter::FailedFetchRequests, failed as u64);
    }
}

/// Resolves the partitions to read against the current image, one response topic per run of positions of the same
/// topic (as Kafka groups its responses).
fn resolve(apis: &Arc<KafkaApis>, positions: &[FetchPosition]) -> TopicReads {
    let image = apis.image();
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
        let index = PartitionIndex(position.partition);
        let read = match found {
            None if matches!(position.topic, TopicKey::Id(_)) => Err(ResponseError::UnknownTopicId),
            None => Err(ResponseError::UnknownTopicOrPartition),
            Some(t) if !t.partitions.contains_key(&index) => {
                Err(ResponseError::UnknownTopicOrPartition)
            }
            Some(t) => Ok(FetchPartition {
                topic_id: t.topic_id,
                index,
                fetch_offset: Offset(position.fetch_offset),
                max_bytes: position.max_bytes,
                current_leader_epoch: (position.current_leader_epoch >= 0)
                    .then_some(LeaderEpoch(position.current_leader_epoch)),
                last_fetched_epoch: (position.last_fetched_epoch >= 0)
                    .then_some(LeaderEpoch(position.last_fetched_epoch)),
            }),
        };
        let wanted = Wanted {
            index: position.partition,
            read,
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

fn partition_data(data: PartitionData, fetched: FetchedPartition) -> PartitionData {
    match fetched {
        FetchedPartition::Read(read) => {
            // Null for read_uncommitted, as Kafka sends it (Fetch v4+, the only versions served).
            let aborted = read.aborted_transactions.map(|aborted| {
                aborted
                    .into_iter()
                    .map(|txn| {
                        AbortedTransaction::default()
                            .with_producer_id(WireProducerId(txn.producer_id.0))
                            .with_first_offset(txn.first_offset.0)
                    })
                    .collect()
            });
            let data = match read.diverging_epoch {
                Some((epoch, end_offset)) => data.with_diverging_epoch(
                    EpochEndOffset::default()
                        .with_epoch(epoch.0)
                        .with_end_offset(end_offset.0),
                ),
                None => data,
            };
            data.with_high_watermark(read.high_watermark.0)
                .with_last_stable_offset(read.last_stable_offset.0)
                .with_log_start_offset(read.log_start_offset.0)
                .with_aborted_transactions(aborted)
                .with_records(Some(read.records))
        }
        FetchedPartition::Failed { error, offsets } => {
            let data = failed(data, error.error());
            match offsets {
                Some((high_watermark, log_start_offset)) => data
                    .with_high_watermark(high_watermark.0)
                    .with_log_start_offset(log_start_offset.0),
                None => data,
            }
        }
    }
}

fn failed(data: PartitionData, error: ResponseError) -> PartitionData {
    data.with_error_code(error.code())
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_aborted_transactions(None)
        .with_records(Some(Bytes::new()))
}
