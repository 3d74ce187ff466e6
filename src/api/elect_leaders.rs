//! ElectLeaders (key 43): a preferred (v0+) or unclean (v1+, KIP-460) leader election, forwarded to the active
//! controller, which commits the new leaders; brokers act on them when they apply the records.
//!
//! A null partition list elects for every partition and, as Kafka does, answers only for the partitions that had
//! an election to hold. A named partition that needed none answers ELECTION_NOT_NEEDED.

use kafka_protocol::messages::elect_leaders_request::ElectLeadersRequest;
use kafka_protocol::messages::elect_leaders_response::{
    ElectLeadersResponse, PartitionResult, ReplicaElectionResult,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::ToErrorCode;
use crate::ids::PartitionIndex;
use ferrite_raft::{ElectLeadersResult, ElectionType, MetadataQuorum, TopicRef};

/// Kafka's ElectionType codes.
const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

pub async fn handle(
    quorum: &MetadataQuorum,
    version: i16,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    // v0 has no election type: it is always preferred.
    let election = match (version, request.election_type) {
        (0, _) | (_, PREFERRED) => ElectionType::Preferred,
        (_, UNCLEAN) => ElectionType::Unclean,
        _ => {
            return ElectLeadersResponse::default()
                .with_error_code(ResponseError::InvalidRequest.code())
        }
    };
    let asked: Option<Vec<(TopicRef, PartitionIndex)>> = request.topic_partitions.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let name = t.topic.0.to_string();
                t.partitions
                    .into_iter()
                    .map(move |p| (TopicRef::Name(name.clone()), PartitionIndex(p)))
            })
            .collect()
    });
    match quorum
        .channel()
        .elect_leaders(election, asked.clone())
        .await
    {
        Ok(results) => ElectLeadersResponse::default().with_replica_election_results(by_topic(
            results
                .into_iter()
                .map(|r| (r.topic.clone(), r.partition, outcome(&r))),
        )),
        Err(error) => {
            // No controller answered: every partition asked failed alike; v1+ also says so for the request.
            let code = error.code();
            let message = error.to_string();
            let failed = asked
                .unwrap_or_default()
                .into_iter()
                .map(|(topic, p)| (topic, p, (code, Some(message.clone()))));
            let response =
                ElectLeadersResponse::default().with_replica_election_results(by_topic(failed));
            if version >= 1 {
                response.with_error_code(code)
            } else {
                response
            }
        }
    }
}

/// A partition's error code and message.
fn outcome(result: &ElectLeadersResult) -> (i16, Option<String>) {
    match &result.result {
        Ok(()) => (0, None),
        Err(error) => (error.code(), Some(error.to_string())),
    }
}

/// Groups per-partition outcomes by topic, in the order the topics first appear.
fn by_topic(
    outcomes: impl Iterator<Item = (TopicRef, PartitionIndex, (i16, Option<String>))>,
) -> Vec<ReplicaElectionResult> {
    let mut topics: Vec<ReplicaElectionResult> = Vec::new();
    for (topic, partition, (code, message)) in outcomes {
        let name = match topic {
            TopicRef::Name(name) => name,
            TopicRef::Id(id) => id.0.to_string(),
        };
        let result = PartitionResult::default()
            .with_partition_id(partition.0)
            .with_error_code(code)
            .with_error_message(message.map(StrBytes::from_string));
        match topics.iter_mut().find(|t| t.topic.0.as_str() == name) {
            Some(entry) => entry.partition_result.push(result),
            None => topics.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(StrBytes::from_string(name)))
                    .with_partition_result(vec![result]),
            ),
        }
    }
    topics
}
