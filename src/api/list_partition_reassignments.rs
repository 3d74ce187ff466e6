//! ListPartitionReassignments (key 46, KIP-455): the partitions whose reassignment is in progress, with their
//! replicas and the replicas being added and removed; all of them, or those of the topics and partitions asked
//! (unknown ones are left out, as Kafka leaves them). Asked of the active controller, which knows every committed
//! change.

use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsRequest;
use kafka_protocol::messages::list_partition_reassignments_response::{
    ListPartitionReassignmentsResponse, OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use super::ToErrorCode;
use crate::ids::{BrokerId, PartitionIndex};
use ferrite_raft::{MetadataQuorum, OngoingReassignment, ReassignmentFilter};

pub async fn handle(
    quorum: &MetadataQuorum,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let topics: ReassignmentFilter = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partition_indexes
                    .into_iter()
                    .map(PartitionIndex)
                    .collect();
                (t.name.0.to_string(), partitions)
            })
            .collect()
    });
    let response = ListPartitionReassignmentsResponse::default().with_error_message(None);
    match quorum
        .channel()
        .list_partition_reassignments(topics, super::controller_timeout(request.timeout_ms))
        .await
    {
        Ok(ongoing) => response.with_topics(by_topic(ongoing)),
        Err(error) => response
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_string(error.to_string()))),
    }
}

fn broker_ids(brokers: Vec<BrokerId>) -> Vec<kafka_protocol::messages::BrokerId> {
    brokers
        .into_iter()
        .map(|b| kafka_protocol::messages::BrokerId(b.0))
        .collect()
}

/// Groups the partitions by topic, in the order the topics first appear.
fn by_topic(ongoing: Vec<OngoingReassignment>) -> Vec<OngoingTopicReassignment> {
    let mut topics: Vec<OngoingTopicReassignment> = Vec::new();
    for reassignment in ongoing {
        let partition = OngoingPartitionReassignment::default()
            .with_partition_index(reassignment.partition.0)
            .with_replicas(broker_ids(reassignment.replicas))
            .with_adding_replicas(broker_ids(reassignment.adding_replicas))
            .with_removing_replicas(broker_ids(reassignment.removing_replicas));
        match topics
            .iter_mut()
            .find(|t| t.name.0.as_str() == reassignment.topic)
        {
            Some(topic) => topic.partitions.push(partition),
            None => topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(StrBytes::from_string(reassignment.topic)))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    topics
}
