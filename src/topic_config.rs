//! Topic-level configs: which keys Kafka accepts, how their values are checked, and how a topic's overrides combine
//! with the broker's defaults into the [`LogConfig`] its partitions run with.

use std::collections::BTreeMap;

use crate::config::BrokerConfig;
use crate::storage::{LogConfig, TimestampType};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Long {
        min: i64,
    },
    Int {
        min: i64,
    },
    Bool,
    Ratio,
    OneOf(&'static [&'static str]),
    /// A comma-separated list whose items are each one of these.
    ListOf(&'static [&'static str]),
    /// Free text (throttled replica lists and the like).
    Text,
}

/// Every topic config Kafka 4.1 knows, with the broker default's value as Kafka documents it.
const TOPIC_CONFIGS: &[(&str, Kind, &str)] = &[
    (
        "cleanup.policy",
        Kind::ListOf(&["delete", "compact"]),
        "delete",
    ),
    (
        "compression.type",
        Kind::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        "producer",
    ),
    ("compression.gzip.level", Kind::Int { min: -1 }, "-1"),
    ("compression.lz4.level", Kind::Int { min: 1 }, "9"),
    ("compression.zstd.level", Kind::Int { min: -131072 }, "3"),
    ("delete.retention.ms", Kind::Long { min: 0 }, "86400000"),
    ("file.delete.delay.ms", Kind::Long { min: 0 }, "60000"),
    (
        "flush.messages",
        Kind::Long { min: 1 },
        "9223372036854775807",
    ),
    ("flush.ms", Kind::Long { min: 0 }, "9223372036854775807"),
    ("follower.replication.throttled.replicas", Kind::Text, ""),
    ("index.interval.bytes", Kind::Int { min: 0 }, "4096"),
    ("leader.replication.throttled.replicas", Kind::Text, ""),
    ("local.retention.bytes", Kind::Long { min: -2 }, "-2"),
    ("local.retention.ms", Kind::Long { min: -2 }, "-2"),
    (
        "max.compaction.lag.ms",
        Kind::Long { min: 1 },
        "9223372036854775807",
    ),
    ("max.message.bytes", Kind::Int { min: 0 }, "1048588"),
    (
        "message.timestamp.after.max.ms",
        Kind::Long { min: 0 },
        "9223372036854775807",
    ),
    (
        "message.timestamp.before.max.ms",
        Kind::Long { min: 0 },
        "9223372036854775807",
    ),
    (
        "message.timestamp.type",
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
        "CreateTime",
    ),
    ("min.cleanable.dirty.ratio", Kind::Ratio, "0.5"),
    ("min.compaction.lag.ms", Kind::Long { min: 0 }, "0"),
    ("min.insync.replicas", Kind::Int { min: 1 }, "1"),
    ("preallocate", Kind::Bool, "false"),
    ("remote.storage.enable", Kind::Bool, "false"),
    ("retention.bytes", Kind::Long { min: -1 }, "-1"),
    ("retention.ms", Kind::Long { min: -1 }, "604800000"),
    ("segment.bytes", Kind::Int { min: 1_048_576 }, "1073741824"),
    ("segment.index.bytes", Kind::Int { min: 4 }, "10485760"),
    ("segment.jitter.ms", Kind::Long { min: 0 }, "0"),
    ("segment.ms", Kind::Long { min: 1 }, "604800000"),
    ("unclean.leader.election.enable", Kind::Bool, "false"),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicConfigError {
    #[error("Unknown topic config name: {0}")]
    Unknown(String),
    #[error("Invalid value {value} for configuration {key}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("Null value not supported for topic configs: {0}")]
    Null(String),
}

/// Checks one `key = value` a client asked to set on a topic.
pub fn validate(key: &str, value: Option<&str>) -> Result<(), TopicConfigError> {
    let (_, kind, _) = TOPIC_CONFIGS
        .iter()
        .find(|(name, _, _)| *name == key)
        .ok_or_else(|| TopicConfigError::Unknown(key.into()))?;
    let value = value.ok_or_else(|| TopicConfigError::Null(key.into()))?;
    let bad = |reason: &str| TopicConfigError::InvalidValue {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    };
    let trimmed = value.trim();
    match kind {
        Kind::Long { min } | Kind::Int { min } => {
            let max = if matches!(kind, Kind::Int { .. }) {
                i32::MAX as i64
            } else {
                i64::MAX
            };
            let n: i64 = trimmed.parse().map_err(|_| bad("not a number"))?;
            if n < *min || n > max {
                return Err(bad(&format!("must be at least {min}")));
            }
        }
        Kind::Bool => {
            if !trimmed.eq_ignore_ascii_case("true") && !trimmed.eq_ignore_ascii_case("false") {
                return Err(bad("expected true or false"));
            }
        }
        Kind::Ratio => {
            let r: f64 = trimmed.parse().map_err(|_| bad("not a number"))?;
            if !(0.0..=1.0).contains(&r) {
                return Err(bad("must be between 0 and 1"));
            }
        }
        Kind::OneOf(allowed) => {
            if !allowed.contains(&trimmed) {
                return Err(bad(&format!("expected one of {}", allowed.join(", "))));
            }
        }
        Kind::ListOf(allowed) => {
            let items: Vec<&str> = trimmed.split(',').map(str::trim).collect();
            if items.iter().any(|item| !allowed.contains(item)) {
                return Err(bad(&format!("expected a list of {}", allowed.join(", "))));
            }
        }
        Kind::Text => {}
    }
    Ok(())
}

/// Where a config's effective value comes from (Kafka's ConfigSource, as its wire code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic = 1,
    StaticBroker = 4,
    Default = 5,
}

/// One config of a topic as DescribeConfigs and CreateTopics report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: &'static str,
    pub value: String,
    pub source: ConfigSource,
}

/// Every topic config with its effective value: the topic's override, else the broker's setting, else Kafka's
/// default.
pub fn effective(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    let from_broker = log_config(broker, &BTreeMap::new());
    let broker_value = |name: &str| -> Option<String> {
        Some(match name {
            "segment.bytes" => from_broker.segment_bytes.to_string(),
            "segment.ms" => from_broker.segment_ms.to_string(),
            "index.interval.bytes" => from_broker.index_interval_bytes.to_string(),
            "segment.index.bytes" => from_broker.segment_index_bytes.to_string(),
            "max.message.bytes" => from_broker.max_message_bytes.to_string(),
            "message.timestamp.type" => match from_broker.message_timestamp_type {
                TimestampType::CreateTime => "CreateTime".to_string(),
                TimestampType::LogAppendTime => "LogAppendTime".to_string(),
            },
            _ => return None,
        })
    };
    TOPIC_CONFIGS
        .iter()
        .map(|(name, _, default)| match overrides.get(*name) {
            Some(value) => ConfigEntry {
                name,
                value: value.clone(),
                source: ConfigSource::DynamicTopic,
            },
            None => match broker_value(name).filter(|value| value != default) {
                Some(value) => ConfigEntry {
                    name,
                    value,
                    source: ConfigSource::StaticBroker,
                },
                None => ConfigEntry {
                    name,
                    value: default.to_string(),
                    source: ConfigSource::Default,
                },
            },
        })
        .collect()
}

/// The log settings of a topic: its overrides on top of the broker's defaults.
pub fn log_config(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> LogConfig {
    let num = |key: &str| {
        overrides
            .get(key)
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    let clamp_u32 = |n: i64| n.clamp(0, u32::MAX as i64) as u32;
    LogConfig {
        segment_bytes: num("segment.bytes")
            .map(clamp_u32)
            .unwrap_or(broker.log_segment_bytes),
        segment_ms: num("segment.ms").unwrap_or(broker.log_roll_ms),
        index_interval_bytes: num("index.interval.bytes")
            .map(clamp_u32)
            .unwrap_or(broker.log_index_interval_bytes),
        segment_index_bytes: num("segment.index.bytes")
            .map(clamp_u32)
            .unwrap_or(broker.log_index_size_max_bytes),
        max_message_bytes: num("max.message.bytes")
            .map(clamp_u32)
            .unwrap_or(broker.message_max_bytes),
        message_timestamp_type: match overrides.get("message.timestamp.type").map(String::as_str) {
            Some("LogAppendTime") => TimestampType::LogAppendTime,
            Some(_) => TimestampType::CreateTime,
            None => broker.log_message_timestamp_type,
        },
        message_timestamp_before_max_ms: num("message.timestamp.before.max.ms").unwrap_or(i64::MAX),
        message_timestamp_after_max_ms: num("message.timestamp.after.max.ms").unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_like_kafka() {
        assert!(validate("retention.ms", Some("1000")).is_ok());
        assert!(validate("cleanup.policy", Some("compact,delete")).is_ok());
        assert!(matches!(
            validate("no.such", Some("1")),
            Err(TopicConfigError::Unknown(_))
        ));
        assert!(matches!(
            validate("retention.ms", Some("soon")),
            Err(TopicConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            validate("cleanup.policy", Some("shred")),
            Err(TopicConfigError::InvalidValue { .. })
        ));
    }

    #[test]
    fn overrides_win_over_broker_defaults() {
        let broker = BrokerConfig::default();
        let overrides = BTreeMap::from([("segment.bytes".to_string(), "2000000".to_string())]);
        let config = log_config(&broker, &overrides);
        assert_eq!(config.segment_bytes, 2_000_000);
        assert_eq!(config.max_message_bytes, broker.message_max_bytes);
    }
}
