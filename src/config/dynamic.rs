//! The broker keys for retention, cleanup and the log cleaner, and what lets a [`BrokerConfig`] describe itself
//! and take dynamic changes (DescribeConfigs, AlterConfigs on the broker resource).

use std::collections::BTreeMap;

use super::broker::{parse_bool, parse_num, DEFAULTS};
use super::catalog::{self, CatalogEntry, ConfigType, UpdateMode};
use super::{invalid, BrokerConfig, ConfigError};

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

/// Where a broker config's value comes from (Kafka's ConfigSource), highest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerConfigSource {
    /// Set on this broker through AlterConfigs.
    Dynamic,
    /// Set as the cluster-wide default (the broker resource with the empty name).
    DynamicDefault,
    Static,
    Default,
}

/// Which broker resource a dynamic change is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigLevel {
    Broker,
    ClusterDefault,
}

/// One broker config as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfigEntry {
    pub name: &'static str,
    /// `None` for sensitive configs and for configs with no value.
    pub value: Option<String>,
    pub source: BrokerConfigSource,
    pub read_only: bool,
    pub sensitive: bool,
    pub config_type: ConfigType,
    pub documentation: &'static str,
    /// Every level that holds a value, highest precedence first (Kafka's synonyms).
    pub synonyms: Vec<(Option<String>, BrokerConfigSource)>,
}

/// A key Ferrite acts on but Kafka does not define: read-only text.
const FERRITE_ONLY: CatalogEntry = CatalogEntry {
    name: "",
    default: None,
    config_type: ConfigType::String,
    mode: UpdateMode::ReadOnly,
    documentation: "",
};

/// Every broker key: Kafka's catalogue and the keys only Ferrite has, by name.
fn all_keys() -> Vec<(&'static str, &'static CatalogEntry)> {
    let mut keys: Vec<_> = catalog::BROKER_CONFIGS
        .iter()
        .map(|e| (e.name, e))
        .collect();
    for (name, _) in DEFAULTS {
        if catalog::lookup(name).is_none() {
            keys.push((name, &FERRITE_ONLY));
        }
    }
    keys.sort_by_key(|(name, _)| *name);
    keys
}

/// Kafka's coarser spellings of two broker durations, finest first after the millisecond key itself.
const TIME_SYNONYMS: &[(&str, &[(&str, i64)])] = &[
    (
        "log.retention.ms",
        &[
            ("log.retention.minutes", 60_000),
            ("log.retention.hours", 3_600_000),
        ],
    ),
    ("log.roll.ms", &[("log.roll.hours", 3_600_000)]),
];

/// `values` with `log.retention.ms` and `log.roll.ms` filled in from `log.retention.minutes`/`.hours` and
/// `log.roll.hours` where only those are given: Kafka's stock server.properties sets `log.retention.hours`, and the
/// finest spelling given wins, as in Kafka. A negative retention means "keep forever" (-1).
pub(super) fn with_time_synonyms(
    values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut resolved = values.clone();
    for (ms_key, coarser) in TIME_SYNONYMS {
        if values.contains_key(*ms_key) {
            continue;
        }
        let Some((key, text)) = coarser
            .iter()
            .find_map(|(key, _)| values.get(*key).map(|text| (*key, text)))
        else {
            continue;
        };
        let ms = in_millis(key, text).ok_or_else(|| invalid(key, text, "not a number"))?;
        resolved.insert(ms_key.to_string(), ms.to_string());
    }
    Ok(resolved)
}

/// The coarser spellings of a broker millisecond key (`log.retention.ms`: minutes, then hours), finest first.
pub fn coarser_spellings(ms_key: &str) -> impl Iterator<Item = &'static str> + '_ {
    TIME_SYNONYMS
        .iter()
        .filter(move |(key, _)| *key == ms_key)
        .flat_map(|(_, coarser)| coarser.iter().map(|(key, _)| *key))
}

/// A value of one of the coarser spellings, in milliseconds (negative: -1, forever).
pub fn in_millis(key: &str, value: &str) -> Option<i64> {
    let unit_ms = TIME_SYNONYMS
        .iter()
        .flat_map(|(_, coarser)| coarser.iter())
        .find(|(k, _)| *k == key)?
        .1;
    let count: i64 = value.trim().parse().ok()?;
    Some(if count < 0 {
        -1
    } else {
        count.saturating_mul(unit_ms)
    })
}

/// Checks a value against its Kafka type, as Kafka does when it parses a config.
pub(super) fn check_type(entry: &CatalogEntry, value: &str) -> Result<(), ConfigError> {
    let trimmed = value.trim();
    let fits = match entry.config_type {
        ConfigType::Boolean => {
            trimmed.eq_ignore_ascii_case("true") || trimmed.eq_ignore_ascii_case("false")
        }
        ConfigType::Int => trimmed.parse::<i32>().is_ok(),
        ConfigType::Short => trimmed.parse::<i16>().is_ok(),
        ConfigType::Long => trimmed.parse::<i64>().is_ok(),
        ConfigType::Double => trimmed.parse::<f64>().is_ok(),
        ConfigType::String | ConfigType::List | ConfigType::Class | ConfigType::Password => true,
    };
    if fits {
        return Ok(());
    }
    let kind = match entry.config_type {
        ConfigType::Boolean => "Expected value to be either true or false",
        ConfigType::Int => "Not a number of type INT",
        ConfigType::Short => "Not a number of type SHORT",
        ConfigType::Long => "Not a number of type LONG",
        _ => "Not a number of type DOUBLE",
    };
    Err(invalid(entry.name, value, kind))
}

impl BrokerConfig {
    /// The default of a key: Ferrite's where it acts on the key, else Kafka's.
    fn default_of(name: &str, entry: &CatalogEntry) -> Option<String> {
        match DEFAULTS.iter().find(|(k, _)| *k == name) {
            Some((_, "")) => None,
            Some((_, value)) => Some(value.to_string()),
            None => entry.default.map(String::from),
        }
    }

    /// The value of any broker key as configured at start-up: the explicit setting, else its default (`None`
    /// where there is none).
    pub fn value_of(&self, key: &str) -> Option<String> {
        let entry = catalog::lookup(key).unwrap_or(&FERRITE_ONLY);
        self.explicit
            .get(key)
            .cloned()
            .or_else(|| Self::default_of(key, entry))
    }

    /// Every key with its value, given the cluster-wide dynamic defaults and this broker's dynamic configs (both
    /// from the metadata log).
    pub fn describe(
        &self,
        cluster_default: &BTreeMap<String, String>,
        dynamic: &BTreeMap<String, String>,
    ) -> Vec<BrokerConfigEntry> {
        all_keys()
            .into_iter()
            .map(|(name, entry)| {
                let mut synonyms = Vec::new();
                if let Some(value) = dynamic.get(name) {
                    synonyms.push((Some(value.clone()), BrokerConfigSource::Dynamic));
                }
                if let Some(value) = cluster_default.get(name) {
                    synonyms.push((Some(value.clone()), BrokerConfigSource::DynamicDefault));
                }
                if let Some(value) = self.explicit.get(name) {
                    synonyms.push((Some(value.clone()), BrokerConfigSource::Static));
                }
                let default = Self::default_of(name, entry);
                if default.is_some() {
                    synonyms.push((default.clone(), BrokerConfigSource::Default));
                }
                let (value, source) = synonyms
                    .first()
                    .cloned()
                    .unwrap_or((None, BrokerConfigSource::Default));
                self.entry(name, entry, value, source, synonyms)
            })
            .collect()
    }

    /// The cluster-wide dynamic defaults that are set, as DescribeConfigs of the default broker resource shows
    /// them.
    pub fn describe_cluster_default(
        &self,
        cluster_default: &BTreeMap<String, String>,
    ) -> Vec<BrokerConfigEntry> {
        cluster_default
            .iter()
            .filter_map(|(name, value)| {
                let (name, entry) = all_keys().into_iter().find(|(key, _)| key == name)?;
                let source = BrokerConfigSource::DynamicDefault;
                let synonyms = vec![(Some(value.clone()), source)];
                Some(self.entry(name, entry, Some(value.clone()), source, synonyms))
            })
            .collect()
    }

    fn entry(
        &self,
        name: &'static str,
        entry: &CatalogEntry,
        value: Option<String>,
        source: BrokerConfigSource,
        synonyms: Vec<(Option<String>, BrokerConfigSource)>,
    ) -> BrokerConfigEntry {
        let sensitive = entry.is_sensitive();
        let hide = |value: Option<String>| value.filter(|v| !sensitive && !v.is_empty());
        BrokerConfigEntry {
            name,
            value: hide(value),
            source,
            read_only: !entry.is_dynamic(),
            sensitive,
            config_type: entry.config_type,
            documentation: entry.documentation,
            synonyms: synonyms.into_iter().map(|(v, s)| (hide(v), s)).collect(),
        }
    }

    /// This configuration with dynamic values applied (this broker's over the cluster-wide defaults); values that
    /// do not parse are ignored (they were validated before they were committed, so this only guards against a
    /// newer broker's keys).
    pub fn with_dynamic(
        &self,
        cluster_default: &BTreeMap<String, String>,
        dynamic: &BTreeMap<String, String>,
    ) -> BrokerConfig {
        if dynamic.is_empty() && cluster_default.is_empty() {
            return self.clone();
        }
        let mut values = self.explicit.clone();
        for (key, value) in cluster_default.iter().chain(dynamic) {
            if catalog::lookup(key).is_some_and(CatalogEntry::is_dynamic) {
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

    /// Checks a dynamic change at `level`, as Kafka's DynamicBrokerConfig does: the key must be known and dynamic
    /// (keystores only per listener, listener settings only per broker), thread pools may at most halve or
    /// double, and the result must be a valid configuration.
    pub fn validate_dynamic(
        &self,
        key: &str,
        value: Option<&str>,
        level: ConfigLevel,
    ) -> Result<(), ConfigError> {
        let entry = catalog::lookup(key).ok_or_else(|| ConfigError::Unknown(key.to_string()))?;
        let refuse = |reason: &'static str| {
            Err(ConfigError::Refused {
                key: key.to_string(),
                reason,
            })
        };
        if !entry.is_dynamic() {
            return refuse("Cannot update these configs dynamically");
        }
        if catalog::needs_listener_prefix(key) {
            return refuse(
                "These security configs can be dynamically updated only per-listener using the listener prefix",
            );
        }
        if level == ConfigLevel::ClusterDefault && entry.mode == UpdateMode::PerBroker {
            return refuse(
                "Cannot update these configs at default cluster level, broker id must be specified",
            );
        }
        let Some(value) = value else {
            return Ok(());
        };
        check_type(entry, value)?;
        if catalog::is_thread_pool(key) {
            self.check_thread_pool(key, value)?;
        }
        let mut values = self.explicit.clone();
        values.insert(key.to_string(), value.to_string());
        Self::from_map(&values).map(|_| ())
    }

    fn check_thread_pool(&self, key: &str, value: &str) -> Result<(), ConfigError> {
        let new: i64 = value.trim().parse().unwrap_or_default();
        let old: i64 = self
            .value_of(key)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(1);
        let reason = if new <= 0 {
            "value should be at least 1".to_string()
        } else if new < old / 2 {
            format!("value should be at least half the current value {old}")
        } else if new > old * 2 {
            format!("value should not be greater than double the current value {old}")
        } else {
            return Ok(());
        };
        Err(invalid(key, value, &reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarser_time_spellings_apply_when_the_millisecond_key_is_not_given() {
        let config = |pairs: &[(&str, &str)]| {
            let values = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            BrokerConfig::from_map(&values).expect("valid")
        };
        let hours = config(&[("log.retention.hours", "24"), ("log.roll.hours", "1")]);
        assert_eq!(hours.log_cleanup.retention_ms, 86_400_000);
        assert_eq!(hours.log_roll_ms, 3_600_000);
        let minutes = config(&[
            ("log.retention.hours", "24"),
            ("log.retention.minutes", "5"),
        ]);
        assert_eq!(
            minutes.log_cleanup.retention_ms, 300_000,
            "minutes beat hours"
        );
        let ms = config(&[("log.retention.minutes", "5"), ("log.retention.ms", "1234")]);
        assert_eq!(ms.log_cleanup.retention_ms, 1234, "milliseconds beat both");
        let forever = config(&[("log.retention.hours", "-1")]);
        assert_eq!(forever.log_cleanup.retention_ms, -1);
        assert_eq!(
            BrokerConfig::default().log_cleanup.retention_ms,
            604_800_000
        );
        assert!(
            !hours.explicit.contains_key("log.retention.ms"),
            "the derived value is not reported as set"
        );
    }

    #[test]
    fn dynamic_changes_follow_kafkas_update_modes() {
        let config = BrokerConfig::default();
        let broker = ConfigLevel::Broker;
        let cluster = ConfigLevel::ClusterDefault;
        let key = "sasl.kerberos.min.time.before.relogin";
        assert!(config.validate_dynamic(key, Some("58000"), broker).is_ok());
        assert!(matches!(
            config.validate_dynamic(key, Some("58000"), cluster),
            Err(ConfigError::Refused { .. })
        ));
        assert!(config.validate_dynamic(key, Some("soon"), broker).is_err());
        assert!(matches!(
            config.validate_dynamic("ssl.keystore.password", Some("x"), broker),
            Err(ConfigError::Refused { .. })
        ));
        assert!(matches!(
            config.validate_dynamic("num.partitions", Some("3"), cluster),
            Err(ConfigError::Refused { .. })
        ));
        assert!(config
            .validate_dynamic("background.threads", Some("9"), cluster)
            .is_ok());
        assert!(config
            .validate_dynamic("background.threads", Some("21"), cluster)
            .is_err());
    }

    #[test]
    fn describe_orders_dynamic_over_cluster_default_over_static() {
        let config = BrokerConfig::default();
        let cluster = BTreeMap::from([("log.retention.bytes".to_string(), "2".to_string())]);
        let dynamic = BTreeMap::from([("log.retention.bytes".to_string(), "1".to_string())]);
        let described = config.describe(&cluster, &dynamic);
        let entry = described
            .iter()
            .find(|e| e.name == "log.retention.bytes")
            .expect("described");
        assert_eq!(entry.value.as_deref(), Some("1"));
        let sources: Vec<_> = entry.synonyms.iter().map(|(_, s)| *s).collect();
        use BrokerConfigSource::{Default, Dynamic, DynamicDefault};
        assert_eq!(sources, vec![Dynamic, DynamicDefault, Default]);
        let applied = config.with_dynamic(&cluster, &BTreeMap::new());
        assert_eq!(applied.log_cleanup.retention_bytes, 2);
        let secret = described
            .iter()
            .find(|e| e.name == "ssl.key.password")
            .expect("described");
        assert!(secret.sensitive && secret.value.is_none());
    }
}
