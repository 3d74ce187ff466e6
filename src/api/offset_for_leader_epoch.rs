//! OffsetForLeaderEpoch (key 23): where a leader epoch ends in the leader's log (KIP-101, KIP-279).
//!
//! Followers of Kafka brokers ask it to find where to truncate, and consumers since KIP-320 ask it after a leader
//! change to check that the log they read from was not truncated under them. The leader answers the largest epoch
//! at or below the one asked for and the offset where it ends: the start of the next epoch it knows, or its log end
//! offset for its latest epoch; -1 / -1 when it knows no such epoch.
//!
//! Versions 2 to 4 are served: kafka-protocol 0.18 has no codec for v0 and v1, which Kafka 4.0 removed (KIP-896).
//! As in Kafka, only the leader answers, whoever asks (Kafka's broker passes fetchOnlyFromLeader=true whatever the
//! `replica_id`).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderEpochRequest;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};

use super::{KafkaApis, ToErrorCode};
use crate::ids::{LeaderEpoch, PartitionIndex};

pub fn handle(
    apis: &Arc<KafkaApis>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let image = apis.image();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let found = image.topic(&topic.topic.0);
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    // The defaults are Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET (-1 / -1).
                    let response = EpochEndOffset::default().with_partition(p.partition);
                    let index = PartitionIndex(p.partition);
                    let Some(topic) = found.filter(|t| t.partitions.contains_key(&index)) else {
                        return response
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    // -1: the client names no epoch of its own, so nothing fences it.
                    let current = (p.current_leader_epoch >= 0)
                        .then_some(LeaderEpoch(p.current_leader_epoch));
                    match apis.replicas.last_offset_for_leader_epoch(
                        topic.topic_id,
                        index,
                        current,
                        LeaderEpoch(p.leader_epoch),
                    ) {
                        Ok(Some((epoch, end_offset))) => response
                            .with_leader_epoch(epoch.0)
                            .with_end_offset(end_offset.0),
                        Ok(None) => response,
                        Err(error) => response.with_error_code(error.code()),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
