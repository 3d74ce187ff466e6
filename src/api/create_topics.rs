//! CreateTopics (key 19): validate names, partition counts, replication factors and configs, then commit the new
//! topics through the metadata quorum. `validate_only` checks everything and creates nothing.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::KafkaApis;
use super::ToErrorCode;
use crate::config::topic as topic_config;
use crate::ids::{BrokerId, PartitionIndex};
use ferrite_raft::CreateTopicSpec;

pub async fn handle(
    apis: &Arc<KafkaApis>,
    version: i16,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for topic in &request.topics {
        *seen.entry(topic.name.0.to_string()).or_default() += 1;
    }
    // Each topic is either rejected here or handed to the controller; results keep the request's order.
    let mut results: Vec<Result<CreateTopicSpec, CreatableTopicResult>> =
        Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        results.push(if seen.get(&name).copied().unwrap_or(0) > 1 {
            Err(error_result(
                &name,
                ResponseError::InvalidRequest,
                format!("Duplicate topic name {name} in request"),
            ))
        } else {
            spec(apis, topic).map_err(|(error, message)| error_result(&name, error, message))
        });
    }
    let specs: Vec<CreateTopicSpec> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    let mut created = apis
        .quorum
        .channel()
        .create_topics(
            specs,
            request.validate_only,
            super::controller_timeout(request.timeout_ms),
        )
        .await
        .into_iter();
    let topics = results
        .into_iter()
        .map(|result| match result {
            Err(rejected) => rejected,
            Ok(spec) => match created.next() {
                Some(Ok(topic)) => {
                    let overrides = topic.configs.iter().cloned().collect();
                    let mut result = CreatableTopicResult::default()
                        .with_name(kafka_protocol::messages::TopicName(StrBytes::from_string(
                            topic.name,
                        )))
                        .with_topic_id(topic.topic_id.0)
                        .with_num_partitions(topic.num_partitions)
                        .with_replication_factor(topic.replication_factor);
                    if version >= 5 {
                        result = result.with_configs(Some(configs(apis, &overrides)));
                    }
                    result
                }
                Some(Err(error)) => error_result(&spec.name, error.error(), error.to_string()),
                None => error_result(
                    &spec.name,
                    ResponseError::UnknownServerError,
                    "no answer from the controller".into(),
                ),
            },
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

/// The controller's view of one requested topic, with the broker's defaults filled in.
fn spec(
    apis: &KafkaApis,
    topic: CreatableTopic,
) -> Result<CreateTopicSpec, (ResponseError, String)> {
    let mut configs = Vec::with_capacity(topic.configs.len());
    for config in topic.configs {
        let value = config.value.as_ref().map(|v| v.to_string());
        topic_config::validate(&config.name, value.as_deref())
            .map_err(|error| (error.error(), error.to_string()))?;
        configs.push((config.name.to_string(), value.unwrap_or_default()));
    }
    let manual = !topic.assignments.is_empty();
    if manual && (topic.num_partitions != -1 || topic.replication_factor != -1) {
        return Err((
            ResponseError::InvalidRequest,
            "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time."
                .into(),
        ));
    }
    let num_partitions = match topic.num_partitions {
        -1 if manual => topic.assignments.len() as i32,
        -1 => apis.config.num_partitions,
        n => n,
    };
    let replication_factor = match topic.replication_factor {
        -1 if manual => topic
            .assignments
            .first()
            .map(|a| a.broker_ids.len() as i16)
            .unwrap_or(0),
        -1 => apis.config.default_replication_factor,
        n => n,
    };
    Ok(CreateTopicSpec {
        name: topic.name.0.to_string(),
        num_partitions,
        replication_factor,
        assignments: topic
            .assignments
            .into_iter()
            .map(|a| {
                (
                    PartitionIndex(a.partition_index),
                    a.broker_ids.into_iter().map(|b| BrokerId(b.0)).collect(),
                )
            })
            .collect(),
        configs,
    })
}

fn configs(
    apis: &KafkaApis,
    overrides: &std::collections::BTreeMap<String, String>,
) -> Vec<CreatableTopicConfigs> {
    topic_config::effective(&apis.config, overrides)
        .into_iter()
        .map(|entry| {
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_string(entry.name))
                .with_value(entry.value.map(StrBytes::from_string))
                .with_config_source(entry.source.code())
        })
        .collect()
}

fn error_result(name: &str, error: ResponseError, message: String) -> CreatableTopicResult {
    CreatableTopicResult::default()
        .with_name(kafka_protocol::messages::TopicName(StrBytes::from_string(
            name.to_string(),
        )))
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message)))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
}
