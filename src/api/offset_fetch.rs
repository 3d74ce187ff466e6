//! OffsetFetch (key 9): committed offsets of one group (v1..=v7) or several (v8+); -1 for partitions without a
//! commit, every committed partition when no topics are named.
//!
//! Offsets an open transaction commits are not returned until it commits. With require_stable (v7+, KIP-447: a
//! consumer with isolation.level=read_committed asks for it), a partition that has one answers
//! UNSTABLE_OFFSET_COMMIT instead, which the consumer retries; without it, the committed offset.

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use super::KafkaApis;
use super::ToErrorCode;
use crate::coordinator::group::{FetchedOffset, GroupError};

type Fetched = Result<Vec<(String, Vec<FetchedOffset>)>, GroupError>;

async fn fetch(
    apis: &KafkaApis,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Fetched {
    apis.groups
        .fetch_offsets(&group_id.into(), topics.as_deref(), require_stable)
        .await
}

pub async fn handle(
    apis: &Arc<KafkaApis>,
    version: i16,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    // The codec gives false before v7.
    let require_stable = request.require_stable;
    if version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for group in request.groups {
            let topics = group.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes))
                    .collect()
            });
            let fetched = fetch(apis, &group.group_id, topics, require_stable).await;
            let response = OffsetFetchResponseGroup::default().with_group_id(group.group_id);
            groups.push(match fetched {
                Err(error) => response.with_error_code(error.code()),
                Ok(topics) => response.with_topics(
                    topics
                        .into_iter()
                        .map(|(name, offsets)| {
                            OffsetFetchResponseTopics::default()
                                .with_name(TopicName(StrBytes::from_string(name)))
                                .with_partitions(
                                    offsets
                                        .into_iter()
                                        .map(|o| {
                                            OffsetFetchResponsePartitions::default()
                                                .with_error_code(
                                                    o.error.as_ref().map_or(0, |e| e.code()),
                                                )
                                                .with_partition_index(o.partition)
                                                .with_committed_offset(o.offset)
                                                .with_committed_leader_epoch(o.leader_epoch)
                                                .with_metadata(Some(StrBytes::from_string(
                                                    o.metadata,
                                                )))
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            });
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.to_string(), t.partition_indexes))
            .collect()
    });
    let fetched = fetch(apis, &request.group_id, wanted.clone(), require_stable).await;
    let partition = |o: FetchedOffset, group_error: i16| {
        let error = o.error.as_ref().map_or(group_error, |e| e.code());
        OffsetFetchResponsePartition::default()
            .with_partition_index(o.partition)
            .with_committed_offset(o.offset)
            .with_committed_leader_epoch(if version >= 5 { o.leader_epoch } else { -1 })
            .with_metadata(Some(StrBytes::from_string(o.metadata)))
            .with_error_code(error)
    };
    let (topics, error) = match fetched {
        Ok(topics) => (topics, 0),
        // v1 has no top-level error: each requested partition carries it.
        Err(error) => {
            let unknown = wanted
                .unwrap_or_default()
                .into_iter()
                .map(|(topic, partitions)| {
                    let offsets = partitions
                        .into_iter()
                        .map(|partition| FetchedOffset::none(partition, None))
                        .collect();
                    (topic, offsets)
                })
                .collect();
            (unknown, error.code())
        }
    };
    let partition_error = if version < 2 { error } else { 0 };
    OffsetFetchResponse::default()
        .with_error_code(if version >= 2 { error } else { 0 })
        .with_topics(
            topics
                .into_iter()
                .map(|(name, offsets)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name)))
                        .with_partitions(
                            offsets
                                .into_iter()
                                .map(|o| partition(o, partition_error))
                                .collect(),
                        )
                })
                .collect(),
        )
}
