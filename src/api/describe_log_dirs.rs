//! DescribeLogDirs (key 35): the broker's log directory and the size of each partition log in it. Ferrite has one
//! log directory; volume sizes (v4) are reported as unknown (-1).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_request::DescribeLogDirsRequest;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResponse, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use super::KafkaApis;
use crate::ids::PartitionIndex;

const UNKNOWN_VOLUME_BYTES: i64 = -1;

pub fn handle(
    apis: &Arc<KafkaApis>,
    _version: i16,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let image = apis.image();
    // Topic name -> partitions asked for (`None`: all of them).
    let mut wanted: BTreeMap<String, Option<Vec<i32>>> = BTreeMap::new();
    match request.topics {
        None => {
            for topic in image.topics() {
                wanted.insert(topic.name.to_string(), None);
            }
        }
        Some(topics) => {
            for topic in topics {
                wanted.insert(topic.topic.0.to_string(), Some(topic.partitions));
            }
        }
    }
    let topics = wanted
        .into_iter()
        .filter_map(|(name, partitions)| {
            let topic = image.topic(&name)?;
            let indexes: Vec<i32> = match partitions {
                Some(list) => list,
                None => topic.partitions.keys().map(|p| p.0).collect(),
            };
            let partitions: Vec<DescribeLogDirsPartition> = indexes
                .into_iter()
                .filter_map(|index| {
                    let partition = apis
                        .replicas
                        .partition(topic.topic_id, PartitionIndex(index))?;
                    Some(
                        DescribeLogDirsPartition::default()
                            .with_partition_index(index)
                            .with_partition_size(
                                i64::try_from(partition.size_in_bytes()).unwrap_or(i64::MAX),
                            )
                            .with_offset_lag(0)
                            .with_is_future_key(false),
                    )
                })
                .collect();
            (!partitions.is_empty()).then(|| {
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(partitions)
            })
        })
        .collect();
    let dir =
        std::path::absolute(&apis.config.log_dirs).unwrap_or_else(|_| apis.config.log_dirs.clone());
    let result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(UNKNOWN_VOLUME_BYTES)
        .with_usable_bytes(UNKNOWN_VOLUME_BYTES);
    DescribeLogDirsResponse::default().with_results(vec![result])
}
