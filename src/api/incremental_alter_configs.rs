//! IncrementalAlterConfigs (key 44): SET, DELETE, APPEND and SUBTRACT on individual configs of topics, of this
//! broker and of the cluster-wide broker default (their dynamic keys), and of groups. Unknown keys and bad values are INVALID_CONFIG naming them; `validate_only` checks
//! and changes nothing.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::IncrementalAlterConfigsRequest;
use kafka_protocol::messages::incremental_alter_configs_response::{
    AlterConfigsResourceResponse, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::alter_configs::{alter, check_broker_value, check_key, ResourceConfigs};
use super::KafkaApis;
use ferrite_raft::ConfigOp;

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

pub async fn handle(
    apis: &Arc<KafkaApis>,
    _version: i16,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let resources = request
        .resources
        .into_iter()
        .map(|resource| ResourceConfigs {
            resource_type: resource.resource_type,
            resource_name: resource.resource_name,
            configs: resource
                .configs
                .into_iter()
                .map(|config| (config.name.to_string(), config))
                .collect(),
        })
        .collect();
    let outcomes = alter(
        apis,
        resources,
        false,
        request.validate_only,
        |target, key, config| {
            let op = config.config_operation;
            check_key(apis, target, &key, op == APPEND || op == SUBTRACT)?;
            let value = config.value.map(|v| v.to_string());
            let needs_value = || {
                value.clone().ok_or_else(|| {
                    (
                        ResponseError::InvalidConfig,
                        format!("Null value not supported for config {key}"),
                    )
                })
            };
            Ok(match op {
                SET => {
                    let value = needs_value()?;
                    check_broker_value(apis, target, &key, &value)?;
                    ConfigOp::Set(key.clone(), value)
                }
                DELETE => ConfigOp::Delete(key.clone()),
                APPEND => ConfigOp::Append(key.clone(), needs_value()?),
                SUBTRACT => ConfigOp::Subtract(key.clone(), needs_value()?),
                other => {
                    return Err((
                        ResponseError::InvalidRequest,
                        format!("Unknown config operation {other} for {key}"),
                    ))
                }
            })
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
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
