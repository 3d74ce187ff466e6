//! AlterConfigs (key 33), the legacy form: each resource's dynamic configs are replaced by the request's (keys not
//! named are deleted). Also the pieces IncrementalAlterConfigs shares: [`alter`] (resource parsing, duplicate keys,
//! one controller write for the request), key checks, and the [`ConfigSchema`] through which the controller
//! validates resulting values. Changes are `Config` records through the quorum, so they survive restarts and reach
//! the live partitions when the ReplicaManager follows the image.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_request::AlterConfigsRequest;
use kafka_protocol::messages::alter_configs_response::{
    AlterConfigsResourceResponse, AlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::KafkaApis;
use super::ToErrorCode;
use crate::config::topic as topic_config;
use crate::config::{catalog, group as group_config, BrokerConfig, ConfigLevel, ConfigType};
use crate::ids::BrokerId;
use ferrite_raft::{ConfigAlteration, ConfigOp, ConfigResource, ConfigSchema};

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_GROUP: i8 = 32;

pub type Rejection = (ResponseError, String);

pub async fn handle(
    apis: &Arc<KafkaApis>,
    _version: i16,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let resources = request
        .resources
        .into_iter()
        .map(|resource| ResourceConfigs {
            resource_type: resource.resource_type,
            resource_name: resource.resource_name,
            configs: resource
                .configs
                .into_iter()
                .map(|config| (config.name.to_string(), config.value))
                .collect(),
        })
        .collect();
    let outcomes = alter(
        apis,
        resources,
        true,
        request.validate_only,
        |target, key, value| {
            let Some(value) = value else {
                return Err((
                    ResponseError::InvalidConfig,
                    format!("Null value not supported for config {key}"),
                ));
            };
            check_key(apis, target, &key, false)?;
            check_broker_value(apis, target, &key, &value)?;
            Ok(ConfigOp::Set(key, value.to_string()))
        },
    )
    .await;
    let responses = outcomes
        .into_iter()
        .map(|((kind, name), outcome)| {
            let response = AlterConfigsResourceResponse::default()
                .with_resource_type(kind)
                .with_resource_name(name);
            match outcome {
                Ok(()) => response,
                Err((error, message)) => response
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

/// One resource of an AlterConfigs or IncrementalAlterConfigs request, its configs keyed by name.
pub struct ResourceConfigs<C> {
    pub resource_type: i8,
    pub resource_name: StrBytes,
    pub configs: Vec<(String, C)>,
}

/// What both AlterConfigs APIs do with their resources: name each one's target, turn its configs (keyed by name)
/// into ops with `to_op` after rejecting a key named twice, send the valid alterations to the controller in one
/// write, and pair every (resource type, resource name) with its outcome. `replace` drops the dynamic configs the
/// ops do not name.
pub async fn alter<C>(
    apis: &KafkaApis,
    resources: Vec<ResourceConfigs<C>>,
    replace: bool,
    validate_only: bool,
    to_op: impl Fn(&ConfigResource, String, C) -> Result<ConfigOp, Rejection>,
) -> Vec<((i8, StrBytes), Result<(), Rejection>)> {
    let mut prepared = Vec::new();
    for resource in resources {
        let (kind, name) = (resource.resource_type, resource.resource_name);
        let alteration = target(apis, kind, &name).and_then(|target| {
            let mut seen = HashSet::new();
            let mut ops = Vec::new();
            for (key, config) in resource.configs {
                if !seen.insert(key.clone()) {
                    return Err(duplicate(&key));
                }
                ops.push(to_op(&target, key, config)?);
            }
            Ok(ConfigAlteration {
                resource: target,
                ops,
                replace,
            })
        });
        prepared.push(((kind, name), alteration));
    }
    commit(apis, prepared, validate_only).await
}

/// Sends the valid alterations to the controller in one write and pairs every resource with its outcome.
async fn commit<K>(
    apis: &KafkaApis,
    prepared: Vec<(K, Result<ConfigAlteration, Rejection>)>,
    validate_only: bool,
) -> Vec<(K, Result<(), Rejection>)> {
    let alterations: Vec<ConfigAlteration> = prepared
        .iter()
        .filter_map(|(_, a)| a.as_ref().ok().cloned())
        .collect();
    let mut answers = apis
        .quorum
        .channel()
        .alter_configs(alterations, validate_only)
        .await
        .into_iter();
    prepared
        .into_iter()
        .map(|(key, alteration)| {
            let outcome = match alteration {
                Err(rejection) => Err(rejection),
                Ok(_) => match answers.next() {
                    Some(Ok(())) => Ok(()),
                    Some(Err(error)) => Err((error.error(), error.to_string())),
                    None => Err((
                        ResponseError::UnknownServerError,
                        "no answer from the controller".into(),
                    )),
                },
            };
            (key, outcome)
        })
        .collect()
}

/// The resource a request names: a topic, this broker by its id, every broker (the empty name), or a group.
fn target(apis: &KafkaApis, kind: i8, name: &str) -> Result<ConfigResource, Rejection> {
    match kind {
        RESOURCE_TOPIC => Ok(ConfigResource::Topic(name.to_string())),
        RESOURCE_BROKER if name.is_empty() => Ok(ConfigResource::BrokerDefault),
        RESOURCE_BROKER => broker_resource(apis, name).map(ConfigResource::Broker),
        RESOURCE_GROUP if name.is_empty() => Err((
            ResponseError::InvalidRequest,
            "Default group resources are not allowed.".into(),
        )),
        RESOURCE_GROUP => Ok(ConfigResource::Group(name.to_string())),
        other => Err((
            ResponseError::InvalidRequest,
            format!("Unsupported resource type {other}"),
        )),
    }
}

/// A broker resource name (other than the cluster-wide default's empty one) must be this broker's id.
pub fn broker_resource(apis: &KafkaApis, name: &str) -> Result<BrokerId, Rejection> {
    let id: i32 = name.trim().parse().map_err(|_| {
        (
            ResponseError::InvalidRequest,
            format!("Broker id must be an integer, but it is: {name}"),
        )
    })?;
    if BrokerId(id) != apis.config.node_id {
        return Err((
            ResponseError::InvalidRequest,
            format!(
                "Unexpected broker id, expected {}, but received {id}",
                apis.config.node_id
            ),
        ));
    }
    Ok(BrokerId(id))
}

fn duplicate(key: &str) -> Rejection {
    (
        ResponseError::InvalidRequest,
        format!("Error due to duplicate config keys: {key}"),
    )
}

/// Whether `key` may be changed on `target` (and, with `list_op`, whether APPEND/SUBTRACT apply to it).
pub fn check_key(
    apis: &KafkaApis,
    target: &ConfigResource,
    key: &str,
    list_op: bool,
) -> Result<(), Rejection> {
    match target {
        ConfigResource::Topic(_) => {
            if !topic_config::is_known(key) {
                return Err((
                    ResponseError::InvalidConfig,
                    format!("Unknown topic config name: {key}"),
                ));
            }
            if list_op && !topic_config::is_list(key) {
                return Err(not_a_list(key));
            }
        }
        ConfigResource::Broker(_) | ConfigResource::BrokerDefault => {
            let level = broker_level(target);
            if let Err(error) = apis.config.validate_dynamic(key, None, level) {
                return Err((error.error(), error.to_string()));
            }
            let is_list = catalog::lookup(key).is_some_and(|e| e.config_type == ConfigType::List);
            if list_op && !is_list {
                return Err(not_a_list(key));
            }
        }
        ConfigResource::Group(_) => {
            if !group_config::is_known(key) {
                return Err((
                    ResponseError::InvalidConfig,
                    format!("Unknown group config name: {key}"),
                ));
            }
            if list_op {
                return Err(not_a_list(key));
            }
        }
    }
    Ok(())
}

/// A broker config's value is checked before it goes to the controller, so that a bad one is INVALID_REQUEST, as
/// Kafka's brokers answer; other resources' values are checked by the controller (INVALID_CONFIG).
pub fn check_broker_value(
    apis: &KafkaApis,
    target: &ConfigResource,
    key: &str,
    value: &str,
) -> Result<(), Rejection> {
    if !matches!(
        target,
        ConfigResource::Broker(_) | ConfigResource::BrokerDefault
    ) {
        return Ok(());
    }
    apis.config
        .validate_dynamic(key, Some(value), broker_level(target))
        .map_err(|error| (error.error(), error.to_string()))
}

fn not_a_list(key: &str) -> Rejection {
    (
        ResponseError::InvalidConfig,
        format!("Config value append is not allowed for config key: {key}"),
    )
}

fn broker_level(resource: &ConfigResource) -> ConfigLevel {
    match resource {
        ConfigResource::BrokerDefault => ConfigLevel::ClusterDefault,
        _ => ConfigLevel::Broker,
    }
}

/// The broker's knowledge of config values, lent to the controller.
pub struct Schema {
    pub config: BrokerConfig,
}

impl ConfigSchema for Schema {
    fn validate(&self, resource: &ConfigResource, name: &str, value: &str) -> Result<(), String> {
        match resource {
            ConfigResource::Topic(_) => {
                topic_config::validate(name, Some(value)).map_err(|e| e.to_string())
            }
            ConfigResource::Broker(_) | ConfigResource::BrokerDefault => self
                .config
                .validate_dynamic(name, Some(value), broker_level(resource))
                .map_err(|e| e.to_string()),
            ConfigResource::Group(_) => {
                group_config::validate(name, value, &self.config).map_err(|e| e.to_string())
            }
        }
    }

    fn default_value(&self, resource: &ConfigResource, name: &str) -> Option<String> {
        match resource {
            ConfigResource::Topic(_) => topic_config::effective(&self.config, &BTreeMap::new())
                .into_iter()
                .find(|entry| entry.name == name)
                .and_then(|entry| entry.value),
            ConfigResource::Broker(_) | ConfigResource::BrokerDefault => self.config.value_of(name),
            ConfigResource::Group(_) => None,
        }
    }
}
