//! WriteTxnMarkers (key 27): a transaction coordinator on another broker asks this one, as the leader of some of a
//! transaction's partitions, to append the transaction's COMMIT or ABORT marker to each of them (acks=all), and
//! answers per partition. The coordinator retries what is retriable (NOT_LEADER_OR_FOLLOWER,
//! NOT_ENOUGH_REPLICAS...) and gives up on INVALID_PRODUCER_EPOCH or TRANSACTION_COORDINATOR_FENCED.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::WriteTxnMarkersRequest;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    WriteTxnMarkersResponse,
};

use super::{KafkaApis, ToErrorCode};
use crate::coordinator::transaction::markers::{write_txn_marker, TxnMarker};
use crate::ids::{PartitionIndex, ProducerEpoch, ProducerId};

pub async fn handle(apis: &KafkaApis, request: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let image = apis.image();
    let mut results = Vec::with_capacity(request.markers.len());
    for entry in request.markers {
        let marker = TxnMarker {
            producer_id: ProducerId(entry.producer_id.0),
            producer_epoch: ProducerEpoch(entry.producer_epoch),
            commit: entry.transaction_result,
            coordinator_epoch: entry.coordinator_epoch,
        };
        let mut topics = Vec::with_capacity(entry.topics.len());
        for topic in entry.topics {
            let name = topic.name.0.to_string();
            let found = image.topic(&name);
            // The partitions of one marker at once: each waits for its own acks.
            let writes = topic.partition_indexes.iter().map(|&index| {
                let found = found.map(|t| {
                    (
                        t.topic_id,
                        t.partitions.contains_key(&PartitionIndex(index)),
                    )
                });
                let name = &name;
                async move {
                    let code = match found {
                        Some((topic_id, true)) => write_txn_marker(
                            &apis.replicas,
                            &apis.groups,
                            name,
                            topic_id,
                            PartitionIndex(index),
                            &marker,
                        )
                        .await
                        .map_or_else(|error| error.error().code(), |()| 0),
                        _ => ResponseError::UnknownTopicOrPartition.code(),
                    };
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(code)
                }
            });
            let partitions = futures::future::join_all(writes).await;
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(topic.name)
                    .with_partitions(partitions),
            );
        }
        results.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(entry.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(results)
}
