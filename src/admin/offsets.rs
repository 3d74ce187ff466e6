//! Offsets the consumer-groups command reads and writes: log offsets (ListOffsets to each partition's leader) and
//! a group's committed offsets (OffsetFetch and OffsetCommit to its coordinator).

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequest, OffsetFetchRequestGroup};
use kafka_protocol::messages::{BrokerId, GroupId, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::client::AdminClient;
use super::connection::Connection;
use super::error::{ClientError, KafkaError};

/// A topic partition, ordered by topic then partition as the tools print them.
pub type TopicPartition = (String, i32);

/// ListOffsets' special timestamps.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

/// OffsetFetch from v2 on returns every partition of the group for a null topic list.
const OFFSET_FETCH_VERSIONS: VersionRange = VersionRange { min: 2, max: 9 };
const CONSUMER_REPLICA_ID: i32 = -1;
const NO_LEADER: i32 = -1;

/// The offset at `timestamp` (LATEST, EARLIEST) of each partition, asking each partition's leader.
pub async fn log_offsets(
    client: &AdminClient,
    partitions: &[TopicPartition],
    timestamp: i64,
) -> Result<HashMap<TopicPartition, i64>, ClientError> {
    let mut topics: Vec<String> = partitions.iter().map(|(t, _)| t.clone()).collect();
    topics.sort_unstable();
    topics.dedup();
    let metadata = client.metadata(Some(&topics)).await?;
    let mut leaders: HashMap<TopicPartition, i32> = HashMap::new();
    for topic in &metadata.topics {
        let name = topic.name.as_ref().map_or("", |n| n.as_str());
        for p in &topic.partitions {
            leaders.insert((name.to_string(), p.partition_index), p.leader_id.0);
        }
    }
    let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
    for (topic, partition) in partitions {
        let leader = match leaders.get(&(topic.clone(), *partition)) {
            Some(&leader) if leader != NO_LEADER => leader,
            Some(_) => {
                return Err(kafka_error(
                    ResponseError::LeaderNotAvailable,
                    topic,
                    *partition,
                ))
            }
            None => {
                return Err(kafka_error(
                    ResponseError::UnknownTopicOrPartition,
                    topic,
                    *partition,
                ))
            }
        };
        by_leader
            .entry(leader)
            .or_default()
            .entry(topic.clone())
            .or_default()
            .push(*partition);
    }
    let mut offsets = HashMap::new();
    for (leader, topics) in by_leader {
        let response = client
            .node(leader)
            .await?
            .send(|_| {
                ListOffsetsRequest::default()
                    .with_replica_id(BrokerId(CONSUMER_REPLICA_ID))
                    .with_topics(
                        topics
                            .iter()
                            .map(|(topic, partitions)| {
                                ListOffsetsTopic::default()
                                    .with_name(topic_name(topic))
                                    .with_partitions(
                                        partitions
                                            .iter()
                                            .map(|p| {
                                                ListOffsetsPartition::default()
                                                    .with_partition_index(*p)
                                                    .with_timestamp(timestamp)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    )
            })
            .await?;
        for topic in response.topics {
            for p in topic.partitions {
                KafkaError::check(p.error_code, None)?;
                offsets.insert(
                    (topic.name.as_str().to_string(), p.partition_index),
                    p.offset,
                );
            }
        }
    }
    Ok(offsets)
}

/// Every committed offset of a group, from its coordinator.
pub async fn committed_offsets(
    coordinator: &Connection,
    group: &str,
) -> Result<BTreeMap<TopicPartition, i64>, ClientError> {
    let mut batched = false;
    let response = coordinator
        .send_within(OFFSET_FETCH_VERSIONS, |version| {
            // v8 (KIP-709) asks for a batch of groups; we ask for one either way.
            batched = version >= 8;
            if batched {
                OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                    .with_group_id(group_id(group))
                    .with_topics(None)])
            } else {
                OffsetFetchRequest::default()
                    .with_group_id(group_id(group))
                    .with_topics(None)
            }
        })
        .await?;
    let mut offsets = BTreeMap::new();
    let mut record = |topic: &str, partition: i32, offset: i64, error_code: i16| {
        KafkaError::check(error_code, None)?;
        // -1: nothing committed for this partition.
        if offset >= 0 {
            offsets.insert((topic.to_string(), partition), offset);
        }
        Ok::<(), KafkaError>(())
    };
    if batched {
        for g in response.groups {
            KafkaError::check(g.error_code, None)?;
            for t in g.topics {
                for p in t.partitions {
                    record(
                        t.name.as_str(),
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    )?;
                }
            }
        }
    } else {
        KafkaError::check(response.error_code, None)?;
        for t in response.topics {
            for p in t.partitions {
                record(
                    t.name.as_str(),
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                )?;
            }
        }
    }
    Ok(offsets)
}

/// Commits offsets for a group with no active members, as an admin does: no member id, no generation.
pub async fn commit_offsets(
    coordinator: &Connection,
    group: &str,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<(), ClientError> {
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((topic, partition), offset) in offsets {
        topics.entry(topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset),
        );
    }
    let response = coordinator
        .send(|_| {
            OffsetCommitRequest::default()
                .with_group_id(group_id(group))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(topic, partitions)| {
                            OffsetCommitRequestTopic::default()
                                .with_name(topic_name(topic))
                                .with_partitions(partitions)
                        })
                        .collect(),
                )
        })
        .await?;
    for topic in response.topics {
        for p in topic.partitions {
            KafkaError::check(p.error_code, None).map_err(|mut e| {
                e.message = Some(format!(
                    "committing {}-{}",
                    topic.name.as_str(),
                    p.partition_index
                ));
                e
            })?;
        }
    }
    Ok(())
}

fn kafka_error(error: ResponseError, topic: &str, partition: i32) -> ClientError {
    KafkaError {
        error,
        message: Some(format!("{topic}-{partition}")),
    }
    .into()
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_string()))
}
