//! Topic-level configs: which keys Kafka accepts, how their values are checked, and how a topic's overrides combine
//! with the broker's defaults into the [`LogConfig`] its partitions run with.

use std::collections::BTreeMap;

use super::log::{coarser_spellings, in_millis};
use super::{BrokerConfig, ConfigEntry, ConfigSource, ConfigSynonym, ConfigType};
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

/// Whether Kafka knows `key` as a topic config.
pub fn is_known(key: &str) -> bool {
    TOPIC_CONFIGS.iter().any(|(name, _, _)| *name == key)
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

/// The broker key that supplies a topic config's default (Kafka's synonyms), where Ferrite has one.
pub fn broker_synonym(topic_key: &str) -> Option<&'static str> {
    Some(match topic_key {
        "segment.bytes" => "log.segment.bytes",
        "segment.ms" => "log.roll.ms",
        "index.interval.bytes" => "log.index.interval.bytes",
        "segment.index.bytes" => "log.index.size.max.bytes",
        "max.message.bytes" => "message.max.bytes",
        "message.timestamp.type" => "log.message.timestamp.type",
        "message.timestamp.before.max.ms" => "log.message.timestamp.before.max.ms",
        "message.timestamp.after.max.ms" => "log.message.timestamp.after.max.ms",
        "retention.ms" => "log.retention.ms",
        "retention.bytes" => "log.retention.bytes",
        "cleanup.policy" => "log.cleanup.policy",
        "file.delete.delay.ms" => "log.segment.delete.delay.ms",
        "delete.retention.ms" => "log.cleaner.delete.retention.ms",
        "min.compaction.lag.ms" => "log.cleaner.min.compaction.lag.ms",
        "max.compaction.lag.ms" => "log.cleaner.max.compaction.lag.ms",
        "min.cleanable.dirty.ratio" => "log.cleaner.min.cleanable.ratio",
        "min.insync.replicas" => "min.insync.replicas",
        "flush.messages" => "log.flush.interval.messages",
        "flush.ms" => "log.flush.interval.ms",
        _ => return None,
    })
}

/// Kafka's ConfigType of a topic config (DescribeConfigs v3+).
fn config_type(key: &str) -> ConfigType {
    match TOPIC_CONFIGS.iter().find(|(name, _, _)| *name == key) {
        Some((_, Kind::Bool, _)) => ConfigType::Boolean,
        Some((_, Kind::Int { .. }, _)) => ConfigType::Int,
        Some((_, Kind::Long { .. }, _)) => ConfigType::Long,
        Some((_, Kind::Ratio, _)) => ConfigType::Double,
        Some((_, Kind::ListOf(_), _)) => ConfigType::List,
        Some((_, Kind::OneOf(_) | Kind::Text, _)) | None => ConfigType::String,
    }
}

/// Whether `key` is a list config (APPEND and SUBTRACT apply to it).
pub fn is_list(key: &str) -> bool {
    TOPIC_CONFIGS
        .iter()
        .any(|(name, kind, _)| *name == key && matches!(kind, Kind::ListOf(_) | Kind::Text))
}

/// A one-line description, as DescribeConfigs' documentation.
fn documentation(key: &str) -> &'static str {
    match key {
        "cleanup.policy" => "The retention policy for old log segments: delete, compact, or both.",
        "retention.ms" => "How long a segment is kept (by its largest record timestamp) before it is deleted; -1 keeps it forever.",
        "retention.bytes" => "The size a partition's log may grow to before old segments are deleted; -1 means no limit.",
        "segment.bytes" => "The size at which a new log segment is rolled.",
        "segment.ms" => "The time after which a new log segment is rolled even if not full.",
        "segment.index.bytes" => "The size of a segment's offset and time index.",
        "max.message.bytes" => "The largest record batch the topic accepts.",
        "message.timestamp.type" => "Whether record timestamps are the producer's (CreateTime) or the broker's (LogAppendTime).",
        "message.timestamp.before.max.ms" => "How far in the past a CreateTime timestamp may lie.",
        "message.timestamp.after.max.ms" => "How far in the future a CreateTime timestamp may lie.",
        "min.insync.replicas" => "The fewest in-sync replicas an acks=all produce needs.",
        "file.delete.delay.ms" => "How long a deleted segment's files linger before they are removed.",
        "delete.retention.ms" => "How long tombstones are kept in a compacted log.",
        "min.compaction.lag.ms" => "The least time a record stays uncompacted.",
        "max.compaction.lag.ms" => "The most time a record may stay uncompacted.",
        "min.cleanable.dirty.ratio" => "The dirty share of a log at which it is compacted.",
        "index.interval.bytes" => "Bytes of log between two offset index entries.",
        _ => "",
    }
}

/// Every topic config with its effective value: the topic's override, else the broker's setting, else Kafka's
/// default.
pub fn effective(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    describe(broker, &BTreeMap::new(), &BTreeMap::new(), overrides)
}

/// Every topic config, as DescribeConfigs reports it. `cluster_default` and `broker_dynamic` hold the dynamic
/// broker configs set for every broker and for this one.
pub fn describe(
    broker: &BrokerConfig,
    cluster_default: &BTreeMap<String, String>,
    broker_dynamic: &BTreeMap<String, String>,
    overrides: &BTreeMap<String, String>,
) -> Vec<ConfigEntry> {
    TOPIC_CONFIGS
        .iter()
        .map(|(name, _, default)| {
            let mut synonyms = Vec::new();
            if let Some(value) = overrides.get(*name) {
                synonyms.push((*name, value.clone(), ConfigSource::DynamicTopic));
            }
            if let Some(key) = broker_synonym(name) {
                if let Some(value) = broker_dynamic.get(key) {
                    synonyms.push((key, value.clone(), ConfigSource::DynamicBroker));
                }
                if let Some(value) = cluster_default.get(key) {
                    synonyms.push((key, value.clone(), ConfigSource::DynamicDefaultBroker));
                }
                if let Some(value) = broker.explicit.get(key) {
                    synonyms.push((key, value.clone(), ConfigSource::StaticBroker));
                }
                for coarser in coarser_spellings(key) {
                    if let Some(value) = broker.explicit.get(coarser) {
                        synonyms.push((coarser, value.clone(), ConfigSource::StaticBroker));
                    }
                }
            }
            synonyms.push((*name, default.to_string(), ConfigSource::Default));
            let (key, value, source) = synonyms[0].clone();
            // log.retention.hours=24 makes the topic's retention.ms 86400000.
            let value = in_millis(key, &value).map_or(value, |ms| ms.to_string());
            ConfigEntry {
                name: name.to_string(),
                value: Some(value),
                source,
                read_only: false,
                sensitive: false,
                config_type: config_type(name),
                documentation: documentation(name).to_string(),
                synonyms: synonyms
                    .into_iter()
                    .map(|(name, value, source)| ConfigSynonym {
                        name: name.to_string(),
                        value: Some(value),
                        source,
                    })
                    .collect(),
            }
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
    let cleanup = &broker.log_cleanup;
    let policy = overrides
        .get("cleanup.policy")
        .map(String::as_str)
        .unwrap_or(&cleanup.cleanup_policy);
    let has = |p: &str| policy.split(',').any(|item| item.trim() == p);
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
        message_timestamp_before_max_ms: num("message.timestamp.before.max.ms")
            .unwrap_or(cleanup.message_timestamp_before_max_ms),
        message_timestamp_after_max_ms: num("message.timestamp.after.max.ms")
            .unwrap_or(cleanup.message_timestamp_after_max_ms),
        cleanup_delete: has("delete"),
        cleanup_compact: has("compact"),
        retention_ms: num("retention.ms").unwrap_or(cleanup.retention_ms),
        retention_bytes: num("retention.bytes").unwrap_or(cleanup.retention_bytes),
        file_delete_delay_ms: num("file.delete.delay.ms")
            .unwrap_or(cleanup.segment_delete_delay_ms),
        delete_retention_ms: num("delete.retention.ms").unwrap_or(cleanup.delete_retention_ms),
        min_compaction_lag_ms: num("min.compaction.lag.ms")
            .unwrap_or(cleanup.min_compaction_lag_ms),
        max_compaction_lag_ms: num("max.compaction.lag.ms")
            .unwrap_or(cleanup.max_compaction_lag_ms),
        min_cleanable_dirty_ratio: overrides
            .get("min.cleanable.dirty.ratio")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(cleanup.min_cleanable_ratio),
        min_insync_replicas: num("min.insync.replicas")
            .map(|n| n.clamp(1, i64::from(i32::MAX)) as i32)
            .unwrap_or(cleanup.min_insync_replicas),
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
