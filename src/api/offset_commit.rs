//! OffsetCommit (key 8): committed offsets become records in the group's `__consumer_offsets` partition; the
//! response waits until they are durable.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_request::OffsetCommitRequest;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};

use super::KafkaApis;
use super::ToErrorCode;
use crate::coordinator::group::{CommitPartition, CommitRequest, GroupError};
use crate::ids::PartitionIndex;

pub async fn handle(
    apis: &Arc<KafkaApis>,
    version: i16,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
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
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                });
            }
        }
        outcomes.push(topic_outcomes);
    }
    let commit = CommitRequest {
        group_id: request.group_id.to_string().into(),
        member_id: request.member_id.to_string().into(),
        group_instance_id: request
            .group_instance_id
            .as_ref()
            .map(|i| i.to_string().into()),
        generation: request.generation_id_or_member_epoch,
        retention_ms: Some(request.retention_time_ms).filter(|r| version <= 4 && *r >= 0),
        partitions,
    };
    let mut results: Box<dyn Iterator<Item = i16>> = if commit.partitions.is_empty() {
        Box::new(std::iter::empty())
    } else {
        match apis.groups.commit_offsets(&commit).await {
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
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
