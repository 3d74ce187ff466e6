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
use crate::config::topic::{self as topic_config, ConfigSource};
use crate::config::{group as group_config, BrokerConfigEntry, BrokerConfigSource};
use crate::metadata::MetadataImage;
use crate::server::Broker;

const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const SOURCE_GROUP: i8 = 8;

pub fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let image = broker.image();
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
            match describe(broker, &image, &resource, options) {
                Ok(configs) => result.with_configs(filter(configs, &resource)),
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
    broker: &Broker,
    image: &MetadataImage,
    resource: &DescribeConfigsResource,
    options: Options,
) -> Result<Vec<DescribeConfigsResourceResult>, (ResponseError, String)> {
    let empty = BTreeMap::new();
    let broker_dynamic = image
        .broker_configs
        .get(&broker.config.node_id)
        .unwrap_or(&empty);
    let cluster_default = &image.broker_default_configs;
    let name = &*resource.resource_name;
    match resource.resource_type {
        RESOURCE_TOPIC => match image.topic(name) {
            Some(topic) => Ok(describe_topic(
                broker,
                cluster_default,
                broker_dynamic,
                &topic.configs,
                options,
            )),
            None => Err((
                ResponseError::UnknownTopicOrPartition,
                format!("Topic '{name}' does not exist."),
            )),
        },
        RESOURCE_BROKER if name.is_empty() => Ok(broker_results(
            broker.config.describe_cluster_default(cluster_default),
            options,
        )),
        RESOURCE_BROKER => broker_resource(broker, name).map(|_| {
            broker_results(
                broker.config.describe(cluster_default, broker_dynamic),
                options,
            )
        }),
        RESOURCE_GROUP if name.is_empty() => Err((
            ResponseError::InvalidRequest,
            "Group name must not be empty".into(),
        )),
        RESOURCE_GROUP => Ok(describe_group(
            broker,
            image.group_configs.get(name).unwrap_or(&empty),
            options,
        )),
        other => Err((
            ResponseError::InvalidRequest,
            format!("Unsupported resource type: {other}"),
        )),
    }
}

fn filter(
    configs: Vec<DescribeConfigsResourceResult>,
    resource: &DescribeConfigsResource,
) -> Vec<DescribeConfigsResourceResult> {
    match &resource.configuration_keys {
        Some(keys) if !keys.is_empty() => configs
            .into_iter()
            .filter(|c| keys.contains(&c.name))
            .collect(),
        _ => configs,
    }
}

fn synonym(name: &'static str, value: Option<String>, source: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(StrBytes::from_static_str(name))
        .with_value(value.map(StrBytes::from_string))
        .with_source(source)
}

fn describe_topic(
    broker: &Broker,
    cluster_default: &BTreeMap<String, String>,
    broker_dynamic: &BTreeMap<String, String>,
    overrides: &BTreeMap<String, String>,
    options: Options,
) -> Vec<DescribeConfigsResourceResult> {
    topic_config::describe(&broker.config, cluster_default, broker_dynamic, overrides)
        .into_iter()
        .map(|described| {
            let name = described.entry.name;
            let mut result = DescribeConfigsResourceResult::default()
                .with_name(StrBytes::from_static_str(name))
                .with_value(Some(StrBytes::from_string(described.entry.value)))
                .with_config_source(described.entry.source as i8)
                .with_config_type(topic_config::config_type(name));
            if options.synonyms {
                result = result.with_synonyms(
                    described
                        .synonyms
                        .into_iter()
                        .map(|(name, value, source): (_, _, ConfigSource)| {
                            synonym(name, Some(value), source as i8)
                        })
                        .collect(),
                );
            }
            if options.documentation {
                result = result.with_documentation(Some(StrBytes::from_static_str(
                    topic_config::documentation(name),
                )));
            }
            result
        })
        .collect()
}

fn broker_source(source: BrokerConfigSource) -> i8 {
    match source {
        BrokerConfigSource::Dynamic => SOURCE_DYNAMIC_BROKER,
        BrokerConfigSource::DynamicDefault => SOURCE_DYNAMIC_DEFAULT_BROKER,
        BrokerConfigSource::Static => SOURCE_STATIC_BROKER,
        BrokerConfigSource::Default => SOURCE_DEFAULT,
    }
}

fn broker_results(
    entries: Vec<BrokerConfigEntry>,
    options: Options,
) -> Vec<DescribeConfigsResourceResult> {
    entries
        .into_iter()
        .map(|entry| {
            let mut result = DescribeConfigsResourceResult::default()
                .with_name(StrBytes::from_static_str(entry.name))
                .with_value(entry.value.map(StrBytes::from_string))
                .with_read_only(entry.read_only)
                .with_is_sensitive(entry.sensitive)
                .with_config_source(broker_source(entry.source))
                .with_config_type(entry.config_type as i8);
            if options.synonyms {
                result = result.with_synonyms(
                    entry
                        .synonyms
                        .into_iter()
                        .map(|(value, source)| synonym(entry.name, value, broker_source(source)))
                        .collect(),
                );
            }
            if options.documentation {
                result =
                    result.with_documentation(Some(StrBytes::from_static_str(entry.documentation)));
            }
            result
        })
        .collect()
}

fn describe_group(
    broker: &Broker,
    overrides: &BTreeMap<String, String>,
    options: Options,
) -> Vec<DescribeConfigsResourceResult> {
    group_config::describe(&broker.config, overrides)
        .into_iter()
        .map(|entry| {
            let source = if entry.is_set {
                SOURCE_GROUP
            } else {
                SOURCE_DEFAULT
            };
            let mut result = DescribeConfigsResourceResult::default()
                .with_name(StrBytes::from_static_str(entry.name))
                .with_value(Some(StrBytes::from_string(entry.value.clone())))
                .with_config_source(source)
                .with_config_type(entry.config_type as i8);
            if options.synonyms {
                result = result.with_synonyms(vec![synonym(entry.name, Some(entry.value), source)]);
            }
            if options.documentation {
                result =
                    result.with_documentation(Some(StrBytes::from_static_str(entry.documentation)));
            }
            result
        })
        .collect()
}
