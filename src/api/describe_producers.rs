//! DescribeProducers (key 61, KIP-664): the idempotent and transactional producers each partition's leader knows,
//! with their epoch, last sequence, last timestamp, coordinator epoch and open transaction's first offset, as
//! `kafka-transactions.sh describe-producers` shows them.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_producers_request::DescribeProducersRequest;
use kafka_protocol::messages::describe_producers_response::{
    DescribeProducersResponse, PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::ProducerId as WireProducerId;

use super::{leader_partition, KafkaApis};
use crate::ids::PartitionIndex;

pub fn handle(apis: &KafkaApis, request: DescribeProducersRequest) -> DescribeProducersResponse {
    let image = apis.image();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let found = image.topic(&topic.name.0);
            let partitions = topic
                .partition_indexes
                .into_iter()
                .map(|index| {
                    let response = PartitionResponse::default().with_partition_index(index);
                    let partition = found
                        .ok_or(ResponseError::UnknownTopicOrPartition)
                        .and_then(|t| leader_partition(apis, t, PartitionIndex(index)));
                    let partition = match partition {
                        Ok(partition) => partition,
                        Err(error) => return response.with_error_code(error.code()),
                    };
                    let producers = partition
                        .active_producers()
                        .into_iter()
                        .map(|(producer_id, entry)| {
                            ProducerState::default()
                                .with_producer_id(WireProducerId(producer_id.0))
                                .with_producer_epoch(i32::from(entry.epoch.0))
                                .with_last_sequence(entry.last_seq().unwrap_or(-1))
                                .with_last_timestamp(entry.last_timestamp)
                                .with_coordinator_epoch(entry.coordinator_epoch)
                                .with_current_txn_start_offset(
                                    entry.current_txn_first_offset.map_or(-1, |o| o.0),
                                )
                        })
                        .collect();
                    response.with_active_producers(producers)
                })
                .collect();
            TopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
