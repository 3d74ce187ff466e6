//! `ferrite admin topics`: Kafka's kafka-topics.sh (TopicCommand) — create, delete, list, describe, alter.

use std::fmt::Write;

use anyhow::{bail, Context};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsRequest, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use kafka_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use kafka_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::args::{switch, value, OptionSpec, Parsed};
use super::client::AdminClient;
use super::configs::decode_entry;
use super::error::KafkaError;
use super::{parse_key_value, Session, RESOURCE_TOPIC};
use crate::config::ConfigSource;

pub const OPTIONS: &[OptionSpec] = &[
    value(
        "--bootstrap-server",
        "REQUIRED: the Kafka server to connect to, host:port[,host:port]",
    ),
    switch("--create", "Create a new topic."),
    switch("--delete", "Delete a topic."),
    switch("--list", "List all available topics."),
    switch(
        "--describe",
        "List details for the given topics (all topics without --topic).",
    ),
    switch("--alter", "Alter the number of partitions of a topic."),
    value("--topic", "The topic to create, alter, describe or delete."),
    value(
        "--partitions",
        "The number of partitions for the topic being created or altered.",
    ),
    value(
        "--replication-factor",
        "The replication factor for each partition in the topic being created.",
    ),
    value(
        "--config",
        "A topic configuration override for the topic being created, key=value; repeatable.",
    ),
    switch(
        "--if-not-exists",
        "With --create: only create the topic if it does not already exist.",
    ),
    switch(
        "--if-exists",
        "With --alter, --delete or --describe: only act if the topic exists.",
    ),
    switch(
        "--exclude-internal",
        "Exclude internal topics when listing or describing all topics.",
    ),
    switch(
        "--under-replicated-partitions",
        "With --describe: only partitions whose ISR is smaller than their replica set.",
    ),
    switch(
        "--unavailable-partitions",
        "With --describe: only partitions without a leader.",
    ),
    switch("--help", "Print usage information."),
];

/// CreateTopics from v4 on takes -1 for "the broker's default" partitions and replication factor (KIP-464).
const CREATE_TOPICS_VERSIONS: VersionRange = VersionRange { min: 4, max: 7 };
const NO_LEADER: i32 = -1;

pub async fn run(session: &Session, opts: &Parsed, out: &mut String) -> anyhow::Result<()> {
    let actions = ["--create", "--delete", "--list", "--describe", "--alter"];
    let chosen: Vec<&str> = actions.iter().copied().filter(|a| opts.has(a)).collect();
    if chosen.len() != 1 {
        bail!("Command must include exactly one action: --list, --describe, --create, --alter or --delete");
    }
    let client = session.connect().await?;
    match chosen[0] {
        "--create" => create(session, &client, opts, out).await,
        "--delete" => delete(session, &client, opts).await,
        "--list" => list(&client, opts, out).await,
        "--describe" => describe(&client, opts, out).await,
        _ => alter(session, &client, opts).await,
    }
}

fn required_topic(opts: &Parsed) -> anyhow::Result<String> {
    match opts.value("--topic") {
        Some(topic) if !topic.is_empty() => Ok(topic.to_string()),
        _ => bail!("Missing required argument \"[topic]\""),
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

async fn create(
    session: &Session,
    client: &AdminClient,
    opts: &Parsed,
    out: &mut String,
) -> anyhow::Result<()> {
    let topic = required_topic(opts)?;
    let partitions: i32 = match opts.value("--partitions") {
        Some(p) => p
            .parse()
            .ok()
            .filter(|p| *p >= 1)
            .context("The partitions must be greater than 0")?,
        None => -1,
    };
    let replication_factor: i16 = match opts.value("--replication-factor") {
        Some(r) => r
            .parse()
            .ok()
            .filter(|r| *r >= 1)
            .context("The replication factor must be between 1 and 32767 inclusive")?,
        None => -1,
    };
    let mut configs = Vec::new();
    for entry in opts.values("--config") {
        let (key, value) = parse_key_value(entry)?;
        configs.push(
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(key))
                .with_value(Some(StrBytes::from_string(value))),
        );
    }
    let response = client
        .any_broker()
        .send_within(CREATE_TOPICS_VERSIONS, |_| {
            CreateTopicsRequest::default()
                .with_topics(vec![CreatableTopic::default()
                    .with_name(topic_name(&topic))
                    .with_num_partitions(partitions)
                    .with_replication_factor(replication_factor)
                    .with_configs(configs)])
                .with_timeout_ms(session.timeout_ms())
        })
        .await?;
    for result in &response.topics {
        match KafkaError::check(result.error_code, result.error_message.as_deref()) {
            Ok(()) => {}
            Err(e)
                if e.error == ResponseError::TopicAlreadyExists && opts.has("--if-not-exists") =>
            {
                return Ok(())
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create topic '{topic}'")),
        }
    }
    writeln!(out, "Created topic {topic}.")?;
    Ok(())
}

/// Looks the topic up; `None` when it does not exist and `--if-exists` allows that.
async fn existing_topic(
    client: &AdminClient,
    opts: &Parsed,
    topic: &str,
) -> anyhow::Result<Option<MetadataResponseTopic>> {
    let metadata = client.metadata(Some(&[topic.to_string()])).await?;
    let found = metadata
        .topics
        .into_iter()
        .find(|t| name_of(t) == topic && t.error_code == 0);
    match found {
        Some(found) => Ok(Some(found)),
        None if opts.has("--if-exists") => Ok(None),
        None => bail!("Topic '{topic}' does not exist as expected"),
    }
}

async fn delete(session: &Session, client: &AdminClient, opts: &Parsed) -> anyhow::Result<()> {
    let topic = required_topic(opts)?;
    let Some(found) = existing_topic(client, opts, &topic).await? else {
        return Ok(());
    };
    if found.is_internal {
        bail!(
            "Topic {topic} is a kafka internal topic and is not allowed to be marked for deletion."
        );
    }
    let response = client
        .any_broker()
        .send(|version| {
            let request = DeleteTopicsRequest::default().with_timeout_ms(session.timeout_ms());
            // v6 names topics by name or id (KIP-516); earlier versions by name only.
            if version >= 6 {
                request.with_topics(vec![
                    DeleteTopicState::default().with_name(Some(topic_name(&topic)))
                ])
            } else {
                request.with_topic_names(vec![topic_name(&topic)])
            }
        })
        .await?;
    for result in &response.responses {
        KafkaError::check(result.error_code, result.error_message.as_deref())
            .with_context(|| format!("cannot delete topic '{topic}'"))?;
    }
    Ok(())
}

async fn list(client: &AdminClient, opts: &Parsed, out: &mut String) -> anyhow::Result<()> {
    let metadata = client.metadata(None).await?;
    let mut names: Vec<&str> = metadata
        .topics
        .iter()
        .filter(|t| !(t.is_internal && opts.has("--exclude-internal")))
        .map(name_of)
        .filter(|name| opts.value("--topic").is_none_or(|wanted| wanted == *name))
        .collect();
    names.sort_unstable();
    for name in names {
        writeln!(out, "{name}")?;
    }
    Ok(())
}

async fn describe(client: &AdminClient, opts: &Parsed, out: &mut String) -> anyhow::Result<()> {
    let mut topics = match opts.value("--topic") {
        Some(topic) => existing_topic(client, opts, topic)
            .await?
            .into_iter()
            .collect(),
        None => client
            .metadata(None)
            .await?
            .topics
            .into_iter()
            .filter(|t| t.error_code == 0 && !(t.is_internal && opts.has("--exclude-internal")))
            .collect::<Vec<_>>(),
    };
    if topics.is_empty() {
        return Ok(());
    }
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<String> = topics.iter().map(|t| name_of(t).to_string()).collect();
    let configs = client
        .any_broker()
        .send(|_| {
            DescribeConfigsRequest::default().with_resources(
                names
                    .iter()
                    .map(|name| {
                        DescribeConfigsResource::default()
                            .with_resource_type(RESOURCE_TOPIC)
                            .with_resource_name(StrBytes::from_string(name.clone()))
                            .with_configuration_keys(None)
                    })
                    .collect(),
            )
        })
        .await?;
    let partition_filter =
        opts.has("--under-replicated-partitions") || opts.has("--unavailable-partitions");
    for topic in &mut topics {
        let name = name_of(topic).to_string();
        let name = name.as_str();
        topic.partitions.sort_by_key(|p| p.partition_index);
        if !partition_filter {
            let replication_factor = topic
                .partitions
                .first()
                .map_or(0, |p| p.replica_nodes.len());
            // As TopicCommand: every config not at its default, i.e. overrides and broker-wide settings.
            let overrides: Vec<String> = configs
                .results
                .iter()
                .find(|r| r.resource_name.as_str() == name && r.error_code == 0)
                .map(|r| {
                    r.configs
                        .iter()
                        .cloned()
                        .map(decode_entry)
                        .filter(|c| c.source != ConfigSource::Default)
                        .map(|c| format!("{}={}", c.name, c.value.as_deref().unwrap_or("null")))
                        .collect()
                })
                .unwrap_or_default();
            writeln!(
                out,
                "Topic: {name}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
                kafka_uuid(&topic.topic_id),
                topic.partitions.len(),
                replication_factor,
                overrides.join(",")
            )?;
        }
        for p in &topic.partitions {
            let under_replicated = p.isr_nodes.len() < p.replica_nodes.len();
            let unavailable = p.leader_id.0 == NO_LEADER;
            if partition_filter
                && !(opts.has("--under-replicated-partitions") && under_replicated
                    || opts.has("--unavailable-partitions") && unavailable)
            {
                continue;
            }
            let leader = if unavailable {
                "none".to_string()
            } else {
                p.leader_id.0.to_string()
            };
            writeln!(
                out,
                "\tTopic: {name}\tPartition: {}\tLeader: {leader}\tReplicas: {}\tIsr: {}",
                p.partition_index,
                join_ids(p.replica_nodes.iter().map(|b| b.0)),
                join_ids(p.isr_nodes.iter().map(|b| b.0)),
            )?;
        }
    }
    Ok(())
}

async fn alter(session: &Session, client: &AdminClient, opts: &Parsed) -> anyhow::Result<()> {
    let topic = required_topic(opts)?;
    let count: i32 = match opts.value("--partitions") {
        Some(p) => p
            .parse()
            .ok()
            .filter(|p| *p >= 1)
            .context("The partitions must be greater than 0")?,
        None => {
            bail!("--alter needs --partitions: the only change Kafka's tool makes through --alter")
        }
    };
    if existing_topic(client, opts, &topic).await?.is_none() {
        return Ok(());
    }
    let response = client
        .any_broker()
        .send(|_| {
            CreatePartitionsRequest::default()
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(topic_name(&topic))
                    .with_count(count)
                    .with_assignments(None)])
                .with_timeout_ms(session.timeout_ms())
        })
        .await?;
    for result in &response.results {
        KafkaError::check(result.error_code, result.error_message.as_deref())
            .with_context(|| format!("cannot alter the partitions of topic '{topic}'"))?;
    }
    Ok(())
}

fn name_of(topic: &MetadataResponseTopic) -> &str {
    topic.name.as_ref().map_or("", |name| name.as_str())
}

fn join_ids(ids: impl Iterator<Item = i32>) -> String {
    ids.map(|id| id.to_string()).collect::<Vec<_>>().join(",")
}

/// Kafka prints a Uuid as URL-safe base64 of its 16 bytes without padding (`Uuid.toString()`).
pub fn kafka_uuid(id: &uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        let symbols = chunk.len() + 1;
        for i in 0..symbols {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_topic_ids_as_kafka_does() {
        // Kafka's Uuid.ZERO_UUID and METADATA_TOPIC_ID print as these.
        assert_eq!(kafka_uuid(&uuid::Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(
            kafka_uuid(&uuid::Uuid::from_u128(1)),
            "AAAAAAAAAAAAAAAAAAAAAQ"
        );
        let id = uuid::Uuid::from_u128(u128::MAX);
        assert_eq!(kafka_uuid(&id), "_____________________w");
    }
}
