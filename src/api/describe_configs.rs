//! DescribeConfigs (key 32): every config of a topic or of this broker, with its value, source, read-only and
//! sensitive flags, Kafka's synonyms (the chain of places a value may come from) when asked, and documentation
//! (v3+) when asked.

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

use super::alter_configs::{broker_resource, RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::config::BrokerConfigSource;
use crate::server::Broker;
use crate::topic_config::{self, ConfigSource};

const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const TYPE_STRING: i8 = 2;

pub fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let image = broker.image();
    let empty = BTreeMap::new();
    let broker_dynamic = image
        .broker_configs
        .get(&broker.config.node_id)
        .unwrap_or(&empty);
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
            let configs = match resource.resource_type {
                RESOURCE_TOPIC => match image.topic(&resource.resource_name) {
                    Some(topic) => Ok(describe_topic(
                        broker,
                        broker_dynamic,
                        &topic.configs,
                        options,
                    )),
                    None => Err((
                        ResponseError::UnknownTopicOrPartition,
                        format!("Topic '{}' does not exist.", &*resource.resource_name),
                    )),
                },
                RESOURCE_BROKER => broker_resource(broker, &resource.resource_name)
                    .map(|_| describe_broker(broker, broker_dynamic, options)),
                other => Err((
                    ResponseError::InvalidRequest,
                    format!("Unsupported resource type {other}"),
                )),
            };
            match configs {
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

fn filter(
    configs: Vec<DescribeConfigsResourceResult>,
    resource: &DescribeConfigsResource,
) -> Vec<DescribeConfigsResourceResult> {
    match &resource.configuration_keys {
        Some(keys) => configs
            .into_iter()
            .filter(|c| keys.contains(&c.name))
            .collect(),
        None => configs,
    }
}

fn topic_source(source: ConfigSource) -> i8 {
    source as i8
}

fn describe_topic(
    broker: &Broker,
    broker_dynamic: &BTreeMap<String, String>,
    overrides: &BTreeMap<String, String>,
    options: Options,
) -> Vec<DescribeConfigsResourceResult> {
    topic_config::describe(&broker.config, broker_dynamic, overrides)
        .into_iter()
        .map(|described| {
            let name = described.entry.name;
            let mut result = DescribeConfigsResourceResult::default()
                .with_name(StrBytes::from_static_str(name))
                .with_value(Some(StrBytes::from_string(described.entry.value)))
                .with_config_source(topic_source(described.entry.source))
                .with_config_type(topic_config::config_type(name));
            if options.synonyms {
                result = result.with_synonyms(
                    described
                        .synonyms
                        .into_iter()
                        .map(|(name, value, source)| {
                            DescribeConfigsSynonym::default()
                                .with_name(StrBytes::from_static_str(name))
                                .with_value(Some(StrBytes::from_string(value)))
                                .with_source(topic_source(source))
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

fn describe_broker(
    broker: &Broker,
    broker_dynamic: &BTreeMap<String, String>,
    options: Options,
) -> Vec<DescribeConfigsResourceResult> {
    broker
        .config
        .describe(broker_dynamic)
        .into_iter()
        .map(|entry| {
            let source = match entry.source {
                BrokerConfigSource::Dynamic => SOURCE_DYNAMIC_BROKER,
                BrokerConfigSource::Static => SOURCE_STATIC_BROKER,
                BrokerConfigSource::Default => SOURCE_DEFAULT,
            };
            let mut result = DescribeConfigsResourceResult::default()
                .with_name(StrBytes::from_static_str(entry.name))
                .with_value(
                    (!entry.value.is_empty()).then(|| StrBytes::from_string(entry.value.clone())),
                )
                .with_read_only(entry.read_only)
                .with_config_source(source)
                .with_config_type(TYPE_STRING);
            if options.synonyms {
                let mut synonyms = Vec::new();
                if let Some(value) = broker_dynamic.get(entry.name) {
                    synonyms.push((value.clone(), SOURCE_DYNAMIC_BROKER));
                }
                if let Some(value) = broker.config.explicit.get(entry.name) {
                    synonyms.push((value.clone(), SOURCE_STATIC_BROKER));
                }
                synonyms.push((entry.default.to_string(), SOURCE_DEFAULT));
                result = result.with_synonyms(
                    synonyms
                        .into_iter()
                        .map(|(value, source)| {
                            DescribeConfigsSynonym::default()
                                .with_name(StrBytes::from_static_str(entry.name))
                                .with_value(Some(StrBytes::from_string(value)))
                                .with_source(source)
                        })
                        .collect(),
                );
            }
            if options.documentation {
                result = result.with_documentation(Some(StrBytes::from_static_str("")));
            }
            result
        })
        .collect()
}
