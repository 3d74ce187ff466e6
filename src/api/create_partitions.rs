//! CreatePartitions (key 37): grows topics' partition counts through the controller. Shrinking or keeping the count
//! is INVALID_PARTITIONS; `validate_only` checks everything and changes nothing; manual assignments name the
//! replicas of each new partition.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsRequest;
use kafka_protocol::messages::create_partitions_response::{
    CreatePartitionsResponse, CreatePartitionsTopicResult,
};
use kafka_protocol::protocol::StrBytes;

use super::KafkaApis;
use super::ToErrorCode;
use crate::ids::BrokerId;
use ferrite_raft::{ControllerError, CreatePartitionsSpec};

pub async fn handle(
    apis: &Arc<KafkaApis>,
    _version: i16,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for topic in &request.topics {
        *seen.entry(topic.name.0.to_string()).or_default() += 1;
    }
    let mut results: Vec<(String, Option<ControllerError>)> = Vec::new();
    let mut specs = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        if seen.get(&name).copied().unwrap_or(0) > 1 {
            results.push((
                name.clone(),
                Some(ControllerError::InvalidRequest(format!(
                    "Create topic partitions request for topic '{name}' is a duplicate."
                ))),
            ));
            continue;
        }
        specs.push(CreatePartitionsSpec {
            name: name.clone(),
            count: topic.count,
            assignments: topic.assignments.map(|assignments| {
                assignments
                    .into_iter()
                    .map(|a| a.broker_ids.into_iter().map(|b| BrokerId(b.0)).collect())
                    .collect()
            }),
        });
        results.push((name, None));
    }
    let mut answers = apis
        .quorum
        .channel()
        .create_partitions(
            specs,
            request.validate_only,
            super::controller_timeout(request.timeout_ms),
        )
        .await
        .into_iter();
    let results = results
        .into_iter()
        .map(|(name, rejected)| {
            let error = match rejected {
                Some(error) => Some(error),
                None => answers.next().and_then(Result::err),
            };
            let result = CreatePartitionsTopicResult::default().with_name(
                kafka_protocol::messages::TopicName(StrBytes::from_string(name)),
            );
            match error {
                None => result,
                Some(error) => result
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_string(error.to_string()))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
