//! TxnOffsetCommit (key 28, v0..=v3): a transactional producer's consumer offsets (`sendOffsetsToTransaction`,
//! after AddOffsetsToTxn) become OffsetCommit records in the group's `__consumer_offsets` partition, written as a
//! transactional batch of that producer; the response waits until they are durable. They stay pending, invisible to
//! OffsetFetch, until the producer's transaction ends there (see
//! [`txn_offsets`](crate::coordinator::group::txn_offsets)).
//!
//! v3 (KIP-447) carries the consumer's member id, generation and group instance id, checked as for OffsetCommit so
//! that a zombie member's producer cannot commit; earlier versions carry none and are not checked. Per partition:
//! INVALID_GROUP_ID for an empty group id, UNKNOWN_TOPIC_OR_PARTITION for a partition the metadata does not know,
//! else what the coordinator answers.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequest;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};

use super::KafkaApis;
use super::ToErrorCode;
use crate::coordinator::group::{CommitPartition, GroupError, TxnCommitRequest};
use crate::ids::{PartitionIndex, ProducerEpoch, ProducerId};

pub async fn handle(
    apis: &Arc<KafkaApis>,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let image = apis.image();
    // Per partition: Some(error) decided here, or None for "ask the coordinator".
    let mut outcomes: Vec<Vec<Option<i16>>> = Vec::with_capacity(request.topics.len());
    let mut partitions = Vec::new();
    for topic in &request.topics {
        let known = image.topic(&topic.name);
        let mut topic_outcomes = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let exists = known.is_some_and(|t| {
                t.partitions
                    .contains_key(&PartitionIndex(p.partition_index))
            });
            if request.group_id.is_empty() {
                topic_outcomes.push(Some(GroupError::InvalidGroupId.code()));
            } else if !exists {
                topic_outcomes.push(Some(ResponseError::UnknownTopicOrPartition.code()));
            } else {
                topic_outcomes.push(None);
                partitions.push(CommitPartition {
                    topic: topic.name.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    // v0..=v1 have no leader epoch; the codec gives -1.
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                });
            }
        }
        outcomes.push(topic_outcomes);
    }
    // Before v3 the codec gives the defaults: generation -1, empty member id, no instance id.
    let commit = TxnCommitRequest {
        group_id: request.group_id.to_string().into(),
        producer_id: ProducerId(request.producer_id.0),
        producer_epoch: ProducerEpoch(request.producer_epoch),
        member_id: request.member_id.to_string().into(),
        group_instance_id: request
            .group_instance_id
            .as_ref()
            .map(|i| i.to_string().into()),
        generation: request.generation_id,
        partitions,
    };
    let mut results: Box<dyn Iterator<Item = i16> + Send> = if commit.partitions.is_empty() {
        Box::new(std::iter::empty())
    } else {
        match apis.groups.txn_commit_offsets(&commit).await {
            Ok(errors) => Box::new(
                errors
                    .into_iter()
                    .map(|e| e.map_or(0, |e| e.code()))
                    .collect::<Vec<_>>()
                    .into_iter(),
            ),
            Err(error) => Box::new(std::iter::repeat(error.code())),
        }
    };
    let topics = request
        .topics
        .into_iter()
        .zip(outcomes)
        .map(|(topic, topic_outcomes)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(topic_outcomes)
                .map(|(p, outcome)| {
                    let code = outcome.unwrap_or_else(|| results.next().unwrap_or(0));
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
