//! DeleteRecords (key 21): moves partitions' LogStartOffset (the low watermark) forward. An offset beyond the
//! HighWatermark is OFFSET_OUT_OF_RANGE; -1 means the HighWatermark. Segments wholly below the new start are
//! deleted and the start offset is checkpointed, so it holds across restarts.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_request::DeleteRecordsRequest;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};

use super::KafkaApis;
use super::{leader_partition, ToErrorCode};
use crate::ids::{Offset, PartitionIndex};
use crate::replica::now_ms;

pub fn handle(
    apis: &Arc<KafkaApis>,
    _version: i16,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let image = apis.image();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let found = image.topic(&topic.name.0);
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    let index = PartitionIndex(p.partition_index);
                    let Some(topic) = found else {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let partition = match leader_partition(apis, topic, index) {
                        Ok(partition) => partition,
                        Err(error) => return result.with_error_code(error.code()),
                    };
                    match partition.delete_records(Offset(p.offset), now_ms()) {
                        Ok(low) => result.with_low_watermark(low.0),
                        Err(error) => result.with_error_code(error.code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
