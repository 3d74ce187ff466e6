//! DescribeConfigs (key 32): every config of a topic, of this broker, of the cluster-wide broker default (the
//! broker resource with the empty name: the dynamic defaults that are set) or of a group, with its value, source,
//! read-only and sensitive flags, type, Kafka's synonyms (the chain of places a value may come from) when asked, and
//! documentation (v3+) when asked.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
    DescribeConfigsSynonym,
};
use kafka_protocol::protocol::StrBytes;

use super::alter_configs::{broker_resource, RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC};
use super::KafkaApis;
use crate::config::topic as topic_config;
use crate::config::{group as group_config, ConfigEntry};
use crate::metadata::MetadataImage;

pub fn handle(
    apis: &Arc<KafkaApis>,
    _version: i16,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let image = apis.image();
    let options = Options {
        synonyms: request.include_synonyms,
        documentation: request.include_documentation,
    };
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match describe(apis, &image, &resource) {
                Ok(entries) => result.with_configs(
                    filter(entries, &resource)
                        .into_iter()
                        .map(|entry| encode(entry, options))
                        .collect(),
                ),
                Err((error, message)) => result
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

#[derive(Clone, Copy)]
struct Options {
    synonyms: bool,
    documentation: bool,
}

fn describe(
    apis: &KafkaApis,
    image: &MetadataImage,
    resource: &DescribeConfigsResource,
) -> Result<Vec<ConfigEntry>, (ResponseError, String)> {
    let empty = BTreeMap::new();
    let broker_dynamic = image
        .broker_configs
        .get(&apis.config.node_id)
        .unwrap_or(&empty);
    let cluster_default = &image.broker_default_configs;
    let name = &*resource.resource_name;
    match resource.resource_type {
        RESOURCE_TOPIC => match image.topic(name) {
            Some(topic) => Ok(topic_config::describe(
                &apis.config,
                cluster_default,
                broker_dynamic,
                &topic.configs,
            )),
            None => Err((
                ResponseError::UnknownTopicOrPartition,
                format!("Topic '{name}' does not exist."),
            )),
        },
        RESOURCE_BROKER if name.is_empty() => {
            Ok(apis.config.describe_cluster_default(cluster_default))
        }
        RESOURCE_BROKER => broker_resource(apis, name)
            .map(|_| apis.config.describe(cluster_default, broker_dynamic)),
        RESOURCE_GROUP if name.is_empty() => Err((
            ResponseError::InvalidRequest,
            "Group name must not be empty".into(),
        )),
        RESOURCE_GROUP => Ok(group_config::describe(
            &apis.config,
            image.group_configs.get(name).unwrap_or(&empty),
        )),
        other => Err((
            ResponseError::InvalidRequest,
            format!("Unsupported resource type: {other}"),
        )),
    }
}

fn filter(entries: Vec<ConfigEntry>, resource: &DescribeConfigsResource) -> Vec<ConfigEntry> {
    match &resource.configuration_keys {
        Some(keys) if !keys.is_empty() => entries
            .into_iter()
            .filter(|entry| keys.iter().any(|key| key.as_str() == entry.name))
            .collect(),
        _ => entries,
    }
}

/// One config on the wire, whichever resource it belongs to; synonyms and documentation only when asked for.
fn encode(entry: ConfigEntry, options: Options) -> DescribeConfigsResourceResult {
    let mut result = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(entry.name))
        .with_value(entry.value.map(StrBytes::from_string))
        .with_read_only(entry.read_only)
        .with_is_sensitive(entry.sensitive)
        .with_config_source(entry.source.code())
        .with_config_type(entry.config_type.code());
    if options.synonyms {
        result = result.with_synonyms(
            entry
                .synonyms
                .into_iter()
                .map(|synonym| {
                    DescribeConfigsSynonym::default()
                        .with_name(StrBytes::from_string(synonym.name))
                        .with_value(synonym.value.map(StrBytes::from_string))
                        .with_source(synonym.source.code())
                })
                .collect(),
        );
    }
    if options.documentation {
        result = result.with_documentation(Some(StrBytes::from_string(entry.documentation)));
    }
    result
}
