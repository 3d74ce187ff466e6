//! What both phases need from the cluster: client configuration, a context that surfaces
//! librdkafka's errors, topic creation and the topic's partitions.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::args::Options;

/// How long a metadata request may take before the broker counts as unreachable.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Prints librdkafka's logs and global errors (broker down, authentication, ...) to stderr:
/// without a `log` backend they would vanish, and a benchmark that stalls silently is worse
/// than useless. `-X log_level=N` and `-X debug=...` choose how much librdkafka says.
pub struct ReportingContext;

impl ClientContext for ReportingContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        report_client_log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        report_client_error(&error, reason);
    }
}

impl ConsumerContext for ReportingContext {}

pub fn report_client_log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    eprintln!("librdkafka {level:?} {facility}: {message}");
}

pub fn report_client_error(error: &KafkaError, reason: &str) {
    eprintln!("librdkafka: {error}: {reason}");
}

/// Settings common to every client, before the caller's own and the `-X` overrides.
pub fn base_config(options: &Options) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &options.bootstrap)
        .set("client.id", "ferrite-bench")
        .set_log_level(RDKafkaLogLevel::Warning);
    config
}

/// The `-X` properties. The rdkafka crate imposes its own log level after creating a client
/// (from the `log` crate's, which is off here), so `log_level` and `debug` are applied through it.
pub fn apply_overrides(config: &mut ClientConfig, options: &Options) {
    for (key, value) in &options.properties {
        config.set(key, value);
        match key.as_str() {
            "debug" => {
                config.set_log_level(RDKafkaLogLevel::Debug);
            }
            "log_level" => {
                config.set_log_level(log_level(value));
            }
            _ => {}
        }
    }
}

/// librdkafka's syslog-style level number; anything else is left for librdkafka to reject.
fn log_level(value: &str) -> RDKafkaLogLevel {
    match value.trim() {
        "0" => RDKafkaLogLevel::Emerg,
        "1" => RDKafkaLogLevel::Alert,
        "2" => RDKafkaLogLevel::Critical,
        "3" => RDKafkaLogLevel::Error,
        "4" => RDKafkaLogLevel::Warning,
        "5" => RDKafkaLogLevel::Notice,
        "6" => RDKafkaLogLevel::Info,
        _ => RDKafkaLogLevel::Debug,
    }
}

/// Creates the topic; one that already exists is left as it is, as `--if-not-exists` does.
pub fn create_topic(options: &Options) -> Result<()> {
    let mut config = base_config(options);
    apply_overrides(&mut config, options);
    let admin: AdminClient<ReportingContext> = config
        .create_with_context(ReportingContext)
        .context("invalid admin client configuration")?;
    let topic = NewTopic::new(
        &options.topic,
        options.partitions,
        TopicReplication::Fixed(options.replication_factor),
    );
    let admin_options = AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(30)))
        .operation_timeout(Some(Duration::from_secs(30)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime for the admin client")?;
    let results = runtime
        .block_on(admin.create_topics([&topic], &admin_options))
        .with_context(|| {
            format!(
                "creating topic '{}' on {}",
                options.topic, options.bootstrap
            )
        })?;
    for result in results {
        match result {
            Ok(name) => eprintln!(
                "created topic '{name}' with {} partitions",
                options.partitions
            ),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                eprintln!("topic '{name}' already exists; using it as it is")
            }
            Err((name, code)) => bail!("creating topic '{name}': {code}"),
        }
    }
    Ok(())
}

/// The topic's partition ids, waiting up to `wait` for a topic just created (or being
/// auto-created by this very request) to show up in metadata with all its leaders.
pub fn topic_partitions<C: ClientContext>(
    client: &Client<C>,
    options: &Options,
    wait: Duration,
) -> Result<Vec<i32>> {
    let deadline = Instant::now() + wait;
    loop {
        let metadata = client
            .fetch_metadata(Some(&options.topic), METADATA_TIMEOUT)
            .with_context(|| {
                format!(
                    "fetching metadata from {} (is a broker listening there?)",
                    options.bootstrap
                )
            })?;
        let topic = metadata
            .topics()
            .iter()
            .find(|topic| topic.name() == options.topic);
        let problem = match topic {
            None => "is missing from the metadata response".to_owned(),
            Some(topic) => match topic.error().map(RDKafkaErrorCode::from) {
                Some(code) => format!("has error {code}"),
                None if topic.partitions().is_empty() => "has no partitions".to_owned(),
                None if topic.partitions().iter().any(|p| p.leader() < 0) => {
                    "has partitions without a leader".to_owned()
                }
                None => {
                    let mut ids: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
                    ids.sort_unstable();
                    return Ok(ids);
                }
            },
        };
        if Instant::now() >= deadline {
            let hint = if options.create {
                ""
            } else {
                " (pass --create to create it)"
            };
            bail!(
                "topic '{}' on {} {problem}{hint}",
                options.topic,
                options.bootstrap
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}
