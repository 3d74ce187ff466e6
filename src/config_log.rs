//! The broker keys for retention, cleanup and the log cleaner, and what lets a [`BrokerConfig`] describe itself
//! and take dynamic changes (DescribeConfigs, AlterConfigs on the broker resource).

use std::collections::BTreeMap;

use super::{invalid, parse_bool, parse_num, BrokerConfig, ConfigError, DEFAULTS};

/// Retention, cleanup and the log cleaner (`log.retention.*`, `log.cleaner.*`, ...): the broker-wide defaults of
/// the topic configs that shape a log's life after the append, and the cleaner's own settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LogCleanupConfig {
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub retention_check_interval_ms: u64,
    pub cleanup_policy: String,
    pub segment_delete_delay_ms: i64,
    pub cleaner_enable: bool,
    pub cleaner_backoff_ms: u64,
    pub cleaner_dedupe_buffer_size: usize,
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub min_cleanable_ratio: f64,
    pub message_timestamp_before_max_ms: i64,
    pub message_timestamp_after_max_ms: i64,
    pub min_insync_replicas: i32,
}

impl LogCleanupConfig {
    pub(super) fn parse<'a>(get: &impl Fn(&str) -> &'a str) -> Result<Self, ConfigError> {
        let policy = get("log.cleanup.policy").trim().to_string();
        if policy
            .split(',')
            .any(|p| !matches!(p.trim(), "delete" | "compact"))
        {
            return Err(invalid(
                "log.cleanup.policy",
                &policy,
                "expected a list of delete, compact",
            ));
        }
        let ratio_text = get("log.cleaner.min.cleanable.ratio");
        let min_cleanable_ratio = ratio_text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| {
                invalid(
                    "log.cleaner.min.cleanable.ratio",
                    ratio_text,
                    "must be between 0 and 1",
                )
            })?;
        Ok(LogCleanupConfig {
            retention_ms: parse_num(get, "log.retention.ms", -1, i64::MAX)?,
            retention_bytes: parse_num(get, "log.retention.bytes", -1, i64::MAX)?,
            retention_check_interval_ms: parse_num(
                get,
                "log.retention.check.interval.ms",
                1,
                i64::MAX / 2,
            )? as u64,
            cleanup_policy: policy,
            segment_delete_delay_ms: parse_num(get, "log.segment.delete.delay.ms", 0, i64::MAX)?,
            cleaner_enable: parse_bool(get, "log.cleaner.enable")?,
            cleaner_backoff_ms: parse_num(get, "log.cleaner.backoff.ms", 1, i64::MAX / 2)? as u64,
            cleaner_dedupe_buffer_size: parse_num(
                get,
                "log.cleaner.dedupe.buffer.size",
                1024,
                i64::from(i32::MAX),
            )? as usize,
            delete_retention_ms: parse_num(get, "log.cleaner.delete.retention.ms", 0, i64::MAX)?,
            min_compaction_lag_ms: parse_num(
                get,
                "log.cleaner.min.compaction.lag.ms",
                0,
                i64::MAX,
            )?,
            max_compaction_lag_ms: parse_num(
                get,
                "log.cleaner.max.compaction.lag.ms",
                1,
                i64::MAX,
            )?,
            min_cleanable_ratio,
            message_timestamp_before_max_ms: parse_num(
                get,
                "log.message.timestamp.before.max.ms",
                0,
                i64::MAX,
            )?,
            message_timestamp_after_max_ms: parse_num(
                get,
                "log.message.timestamp.after.max.ms",
                0,
                i64::MAX,
            )?,
            min_insync_replicas: parse_num(get, "min.insync.replicas", 1, i64::from(i32::MAX))?
                as i32,
        })
    }
}

/// Broker keys that AlterConfigs may change at run time (Kafka's dynamic log configs, per broker). The rest are
/// read-only, as in Kafka.
pub const DYNAMIC_BROKER_KEYS: &[&str] = &[
    "log.retention.ms",
    "log.retention.bytes",
    "log.cleanup.policy",
    "log.segment.bytes",
    "log.roll.ms",
    "log.index.interval.bytes",
    "log.segment.delete.delay.ms",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.max.compaction.lag.ms",
    "log.cleaner.min.cleanable.ratio",
    "log.message.timestamp.type",
    "log.message.timestamp.before.max.ms",
    "log.message.timestamp.after.max.ms",
    "message.max.bytes",
    "min.insync.replicas",
];

/// Where a broker config's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerConfigSource {
    Dynamic,
    Static,
    Default,
}

/// One broker config as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfigEntry {
    pub name: &'static str,
    pub value: String,
    pub default: &'static str,
    pub source: BrokerConfigSource,
    pub read_only: bool,
}

impl BrokerConfig {
    /// Every key with its value, given this broker's dynamic overrides (from the metadata log).
    pub fn describe(&self, dynamic: &BTreeMap<String, String>) -> Vec<BrokerConfigEntry> {
        DEFAULTS
            .iter()
            .map(|(name, default)| {
                let (value, source) = match (dynamic.get(*name), self.explicit.get(*name)) {
                    (Some(v), _) => (v.clone(), BrokerConfigSource::Dynamic),
                    (None, Some(v)) => (v.clone(), BrokerConfigSource::Static),
                    (None, None) => (default.to_string(), BrokerConfigSource::Default),
                };
                BrokerConfigEntry {
                    name,
                    value,
                    default,
                    source,
                    read_only: !DYNAMIC_BROKER_KEYS.contains(name),
                }
            })
            .collect()
    }

    /// This configuration with dynamic overrides applied; overrides that do not parse are ignored (they were
    /// validated before they were committed, so this only guards against a newer broker's keys).
    pub fn with_dynamic(&self, dynamic: &BTreeMap<String, String>) -> BrokerConfig {
        if dynamic.is_empty() {
            return self.clone();
        }
        let mut values = self.explicit.clone();
        for (key, value) in dynamic {
            if DYNAMIC_BROKER_KEYS.contains(&key.as_str()) {
                values.insert(key.clone(), value.clone());
            }
        }
        match Self::from_map(&values) {
            Ok(mut config) => {
                config.explicit = self.explicit.clone();
                config
            }
            Err(error) => {
                tracing::warn!(%error, "ignoring dynamic broker configs that do not apply");
                self.clone()
            }
        }
    }

    /// Checks a dynamic change: the key must be known and dynamic, and the result must be a valid configuration.
    pub fn validate_dynamic(&self, key: &str, value: Option<&str>) -> Result<(), ConfigError> {
        if !DEFAULTS.iter().any(|(k, _)| *k == key) {
            return Err(ConfigError::Unknown(key.to_string()));
        }
        if !DYNAMIC_BROKER_KEYS.contains(&key) {
            return Err(invalid(
                key,
                value.unwrap_or_default(),
                "cannot be updated dynamically",
            ));
        }
        let mut values = self.explicit.clone();
        match value {
            Some(value) => values.insert(key.to_string(), value.to_string()),
            None => values.remove(key),
        };
        Self::from_map(&values).map(|_| ())
    }
}
