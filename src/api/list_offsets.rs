//! ListOffsets (key 2): earliest, latest, max-timestamp and by-timestamp lookups.
//!
//! "Latest" is the HighWatermark, or the LastStableOffset for isolation_level=1 (read_committed), "earliest" the
//! LogStartOffset, and a timestamp finds the first record whose own timestamp is at least the target, through the
//! time index. As in Kafka, timestamp lookups only answer with offsets below that same bound.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::ListOffsetsRequest;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};

use super::KafkaApis;
use super::{leader_partition_at, ToErrorCode};
use crate::ids::{Offset, PartitionIndex};
use crate::replica::{IsolationLevel, Partition, ReplicaError};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
const EARLIEST_PENDING_UPLOAD: i64 = -6;

pub fn handle(
    apis: &Arc<KafkaApis>,
    version: i16,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let image = apis.image();
    // isolation_level exists from v2 on; the codec leaves 0 (read_uncommitted) before.
    let isolation = IsolationLevel::from_wire(request.isolation_level);
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let found = image.topic(&topic.name.0);
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    let Some(topic) = found else {
                        return response
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let index = PartitionIndex(p.partition_index);
                    let partition =
                        match leader_partition_at(apis, topic, index, p.current_leader_epoch) {
                            Ok(partition) => partition,
                            Err(error) => return response.with_error_code(error.code()),
                        };
                    match lookup(&partition, p.timestamp, isolation) {
                        // The leader epoch is in the response from v4 on; earlier versions must omit it.
                        Ok(Some((timestamp, offset))) if version >= 4 => response
                            .with_timestamp(timestamp)
                            .with_offset(offset)
                            .with_leader_epoch(partition.leader_epoch().0),
                        Ok(Some((timestamp, offset))) => {
                            response.with_timestamp(timestamp).with_offset(offset)
                        }
                        Ok(None) => response,
                        Err(error) => response.with_error_code(error.code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// (timestamp, offset) for one partition; None when no record qualifies.
fn lookup(
    partition: &Partition,
    target: i64,
    isolation: IsolationLevel,
) -> Result<Option<(i64, i64)>, ReplicaError> {
    // Kafka's lastFetchableOffset: what a consumer of this isolation level may read.
    let high_watermark: Offset = match isolation {
        IsolationLevel::ReadUncommitted => partition.high_watermark(),
        IsolationLevel::ReadCommitted => partition.last_stable_offset(),
    };
    Ok(match target {
        LATEST => Some((-1, high_watermark.0)),
        EARLIEST | EARLIEST_LOCAL => Some((-1, partition.log_start_offset().0)),
        // No tiered storage: nothing is uploaded or pending.
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => Some((-1, -1)),
        MAX_TIMESTAMP => partition
            .max_timestamp_offset()?
            .filter(|(_, offset)| *offset < high_watermark)
            .map(|(timestamp, offset)| (timestamp, offset.0)),
        timestamp => partition
            .offset_for_timestamp(timestamp)?
            .filter(|(_, offset)| *offset < high_watermark)
            .map(|(timestamp, offset)| (timestamp, offset.0)),
    })
}
