//! `ferrite admin configs`: Kafka's kafka-configs.sh (ConfigCommand) for topics and brokers — describe, and alter
//! through IncrementalAlterConfigs.

use std::fmt::Write;
use std::sync::Arc;

use anyhow::{bail, Context};
use kafka_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::args::{switch, value, OptionSpec, Parsed};
use super::client::AdminClient;
use super::connection::Connection;
use super::error::KafkaError;
use super::{parse_key_value, Session, RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::config::{ConfigEntry, ConfigSource, ConfigSynonym, ConfigType};

pub const OPTIONS: &[OptionSpec] = &[
    value("--bootstrap-server", "REQUIRED: the Kafka server to connect to, host:port[,host:port]"),
    value("--entity-type", "Type of entity: topics or brokers."),
    value("--entity-name", "Name of entity: a topic name or a broker id."),
    switch("--entity-default", "With --entity-type brokers: the cluster-wide default broker configs."),
    value("--topic", "The topic's configs: as --entity-type topics --entity-name <topic>."),
    value("--broker", "The broker's configs: as --entity-type brokers --entity-name <id>."),
    switch("--describe", "List configs for the given entity."),
    switch("--all", "With --describe: every config, not only the dynamic ones."),
    switch("--alter", "Alter the configuration of the entity."),
    value(
        "--add-config",
        "Configs to add or change: 'k1=v1,k2=[v1,v2,v2],k3=v3' (square brackets group a list value).",
    ),
    value("--delete-config", "Configs to remove (back to their default): 'k1,k2'."),
    switch("--help", "Print usage information."),
];

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntityType {
    Topics,
    Brokers,
}

impl EntityType {
    fn resource_type(self) -> i8 {
        match self {
            EntityType::Topics => RESOURCE_TOPIC,
            EntityType::Brokers => RESOURCE_BROKER,
        }
    }
}

/// One thing whose configs we read or change: a topic, a broker, or the brokers' cluster-wide default ("").
struct Entity {
    kind: EntityType,
    name: String,
}

impl Entity {
    /// As ConfigCommand words it: "topic orders", "broker 1", "default config for brokers in the cluster".
    fn describe(&self) -> String {
        match (self.kind, self.name.as_str()) {
            (EntityType::Topics, name) => format!("topic {name}"),
            (EntityType::Brokers, "") => "the default broker".to_string(),
            (EntityType::Brokers, id) => format!("broker {id}"),
        }
    }

    /// The only config source a plain `--describe` shows: the entity's dynamic overrides.
    fn dynamic_source(&self) -> ConfigSource {
        match (self.kind, self.name.as_str()) {
            (EntityType::Topics, _) => ConfigSource::DynamicTopic,
            (EntityType::Brokers, "") => ConfigSource::DynamicDefaultBroker,
            (EntityType::Brokers, _) => ConfigSource::DynamicBroker,
        }
    }

    /// Kafka's AdminClient sends a broker's config requests to that broker; anything else goes anywhere.
    async fn connection(&self, client: &AdminClient) -> anyhow::Result<Arc<Connection>> {
        match (self.kind, self.name.parse::<i32>()) {
            (EntityType::Brokers, Ok(id)) => Ok(client.node(id).await?),
            _ => Ok(client.any_broker()),
        }
    }
}

pub async fn run(session: &Session, opts: &Parsed, out: &mut String) -> anyhow::Result<()> {
    let describe = opts.has("--describe");
    if describe == opts.has("--alter") {
        bail!("Command must include exactly one action: --describe, --alter");
    }
    let (kind, name) = entity(opts)?;
    let client = session.connect().await?;
    let entities: Vec<Entity> = match name {
        Some(name) => vec![Entity { kind, name }],
        None if describe => all_entities(&client, kind).await?,
        None => bail!("--entity-name or --entity-default must be specified with --alter"),
    };
    if describe {
        for entity in &entities {
            describe_entity(&client, entity, opts.has("--all"), out).await?;
        }
        Ok(())
    } else {
        alter(&client, &entities[0], opts, out).await
    }
}

/// The entity type and name from `--entity-type/--entity-name/--entity-default` or the `--topic/--broker`
/// shorthands. A `None` name means every entity of the type.
fn entity(opts: &Parsed) -> anyhow::Result<(EntityType, Option<String>)> {
    if let Some(topic) = opts.value("--topic") {
        return Ok((EntityType::Topics, Some(topic.to_string())));
    }
    if let Some(broker) = opts.value("--broker") {
        return Ok((EntityType::Brokers, Some(broker_id(broker)?)));
    }
    let kind = match opts.value("--entity-type") {
        Some("topics") => EntityType::Topics,
        Some("brokers") => EntityType::Brokers,
        Some(other) => bail!(
            "Ferrite's configs command handles --entity-type topics and brokers, not '{other}'"
        ),
        None => bail!("an entity-type must be specified with --entity-type, --topic or --broker"),
    };
    let name = match (opts.value("--entity-name"), opts.has("--entity-default")) {
        (Some(_), true) => bail!("--entity-name and --entity-default cannot be used together"),
        (None, true) if kind == EntityType::Topics => {
            bail!("--entity-default is for brokers, not topics")
        }
        (None, true) => Some(String::new()),
        (Some(name), false) if kind == EntityType::Brokers => Some(broker_id(name)?),
        (Some(name), false) => Some(name.to_string()),
        (None, false) => None,
    };
    Ok((kind, name))
}

fn broker_id(name: &str) -> anyhow::Result<String> {
    match name.parse::<i32>() {
        Ok(id) if id >= 0 => Ok(id.to_string()),
        _ => bail!(
            "The entity name for brokers must be a valid integer broker id, but it is: {name}"
        ),
    }
}

async fn all_entities(client: &AdminClient, kind: EntityType) -> anyhow::Result<Vec<Entity>> {
    let names: Vec<String> = match kind {
        EntityType::Brokers => client.broker_ids().iter().map(i32::to_string).collect(),
        EntityType::Topics => {
            let mut names: Vec<String> = client
                .metadata(None)
                .await?
                .topics
                .iter()
                .filter(|t| t.error_code == 0)
                .filter_map(|t| t.name.as_ref().map(|n| n.as_str().to_string()))
                .collect();
            names.sort_unstable();
            names
        }
    };
    Ok(names
        .into_iter()
        .map(|name| Entity { kind, name })
        .collect())
}

async fn describe_configs(
    client: &AdminClient,
    entity: &Entity,
) -> anyhow::Result<Vec<ConfigEntry>> {
    let response = entity
        .connection(client)
        .await?
        .send(|_| {
            DescribeConfigsRequest::default()
                .with_include_synonyms(true)
                .with_resources(vec![DescribeConfigsResource::default()
                    .with_resource_type(entity.kind.resource_type())
                    .with_resource_name(StrBytes::from_string(entity.name.clone()))
                    .with_configuration_keys(None)])
        })
        .await?;
    let Some(result) = response.results.into_iter().next() else {
        bail!("DescribeConfigs answered nothing for {}", entity.describe());
    };
    KafkaError::check(result.error_code, result.error_message.as_deref())
        .with_context(|| format!("cannot describe the configs of {}", entity.describe()))?;
    let mut configs: Vec<ConfigEntry> = result.configs.into_iter().map(decode_entry).collect();
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(configs)
}

/// A config of a DescribeConfigs response as the broker's own entry type, so that both read the wire codes alike.
pub(super) fn decode_entry(config: DescribeConfigsResourceResult) -> ConfigEntry {
    ConfigEntry {
        name: config.name.to_string(),
        value: config.value.map(|value| value.to_string()),
        source: ConfigSource::from_code(config.config_source),
        read_only: config.read_only,
        sensitive: config.is_sensitive,
        config_type: ConfigType::from_code(config.config_type),
        documentation: config
            .documentation
            .map(|doc| doc.to_string())
            .unwrap_or_default(),
        synonyms: config
            .synonyms
            .into_iter()
            .map(|synonym| ConfigSynonym {
                name: synonym.name.to_string(),
                value: synonym.value.map(|value| value.to_string()),
                source: ConfigSource::from_code(synonym.source),
            })
            .collect(),
    }
}

async fn describe_entity(
    client: &AdminClient,
    entity: &Entity,
    all: bool,
    out: &mut String,
) -> anyhow::Result<()> {
    let configs = describe_configs(client, entity).await?;
    let heading = match (all, entity.kind, entity.name.as_str()) {
        (false, EntityType::Brokers, "") => {
            "Default configs for brokers in the cluster are:".to_string()
        }
        (true, EntityType::Brokers, "") => {
            "All default configs for brokers in the cluster are:".to_string()
        }
        (false, _, _) => format!("Dynamic configs for {} are:", entity.describe()),
        (true, _, _) => format!("All configs for {} are:", entity.describe()),
    };
    writeln!(out, "{heading}")?;
    for config in configs
        .iter()
        .filter(|c| all || c.source == entity.dynamic_source())
    {
        let synonyms: Vec<String> = config
            .synonyms
            .iter()
            .map(|s| {
                format!(
                    "{}:{}={}",
                    s.source.name(),
                    s.name,
                    s.value.as_deref().unwrap_or("null")
                )
            })
            .collect();
        writeln!(
            out,
            "  {}={} sensitive={} synonyms={{{}}}",
            config.name,
            config.value.as_deref().unwrap_or("null"),
            config.sensitive,
            synonyms.join(", ")
        )?;
    }
    Ok(())
}

async fn alter(
    client: &AdminClient,
    entity: &Entity,
    opts: &Parsed,
    out: &mut String,
) -> anyhow::Result<()> {
    let mut changes = Vec::new();
    for entry in opts
        .values("--add-config")
        .iter()
        .flat_map(|v| split_config_list(v))
    {
        let (key, value) = parse_key_value(&entry)?;
        let value = value
            .strip_prefix('[')
            .and_then(|v| v.strip_suffix(']'))
            .map_or(value.clone(), str::to_string);
        changes.push((key, OP_SET, Some(value)));
    }
    let deletes: Vec<String> = opts
        .values("--delete-config")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    if changes.is_empty() && deletes.is_empty() {
        bail!("--alter needs --add-config or --delete-config");
    }
    if !deletes.is_empty() {
        // As ConfigCommand: deleting a config that is not set is a mistake worth reporting.
        let current = describe_configs(client, entity).await?;
        let missing: Vec<&str> = deletes
            .iter()
            .filter(|k| {
                !current
                    .iter()
                    .any(|c| c.name.as_str() == k.as_str() && c.source == entity.dynamic_source())
            })
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            bail!("Invalid config(s): {}", missing.join(","));
        }
    }
    changes.extend(deletes.into_iter().map(|key| (key, OP_DELETE, None)));
    let response = entity
        .connection(client)
        .await?
        .send(|_| {
            IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(entity.kind.resource_type())
                    .with_resource_name(StrBytes::from_string(entity.name.clone()))
                    .with_configs(
                        changes
                            .into_iter()
                            .map(|(key, op, value)| {
                                AlterableConfig::default()
                                    .with_name(StrBytes::from_string(key))
                                    .with_config_operation(op)
                                    .with_value(value.map(StrBytes::from_string))
                            })
                            .collect(),
                    ),
            ])
        })
        .await?;
    for result in &response.responses {
        KafkaError::check(result.error_code, result.error_message.as_deref())
            .with_context(|| format!("cannot alter the configs of {}", entity.describe()))?;
    }
    match (entity.kind, entity.name.as_str()) {
        (EntityType::Brokers, "") => writeln!(
            out,
            "Completed updating default config for brokers in the cluster."
        )?,
        _ => writeln!(out, "Completed updating config for {}.", entity.describe())?,
    }
    Ok(())
}

/// Splits `k1=v1,k2=[a,b],k3=v3` at the commas outside square brackets.
fn split_config_list(list: &str) -> Vec<String> {
    let mut entries = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in list.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                entries.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    entries.push(current);
    entries
        .into_iter()
        .filter(|e| !e.trim().is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_config_lists_outside_brackets() {
        assert_eq!(
            split_config_list("a=1,b=[x,y],c=3"),
            ["a=1", "b=[x,y]", "c=3"]
        );
        assert_eq!(
            split_config_list("retention.ms=1000"),
            ["retention.ms=1000"]
        );
        assert!(split_config_list("").is_empty());
    }
}
