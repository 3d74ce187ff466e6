//! What lets a [`BrokerConfig`] describe itself and take dynamic changes (DescribeConfigs, AlterConfigs on the
//! broker resources): the layers a broker key's value comes from, and Kafka's rules for changing it at run time.

use std::collections::BTreeMap;

use super::broker::DEFAULTS;
use super::catalog::{self, check_type, CatalogEntry, UpdateMode};
use super::{
    invalid, BrokerConfig, ConfigEntry, ConfigError, ConfigSource, ConfigSynonym, ConfigType,
};

/// Which broker resource a dynamic change is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigLevel {
    Broker,
    ClusterDefault,
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
    ) -> Vec<ConfigEntry> {
        all_keys()
            .into_iter()
            .map(|(name, entry)| {
                let mut synonyms = Vec::new();
                if let Some(value) = dynamic.get(name) {
                    synonyms.push((Some(value.clone()), ConfigSource::DynamicBroker));
                }
                if let Some(value) = cluster_default.get(name) {
                    synonyms.push((Some(value.clone()), ConfigSource::DynamicDefaultBroker));
                }
                if let Some(value) = self.explicit.get(name) {
                    synonyms.push((Some(value.clone()), ConfigSource::StaticBroker));
                }
                let default = Self::default_of(name, entry);
                if default.is_some() {
                    synonyms.push((default.clone(), ConfigSource::Default));
                }
                let (value, source) = synonyms
                    .first()
                    .cloned()
                    .unwrap_or((None, ConfigSource::Default));
                self.entry(name, entry, value, source, synonyms)
            })
            .collect()
    }

    /// The cluster-wide dynamic defaults that are set, as DescribeConfigs of the default broker resource shows
    /// them.
    pub fn describe_cluster_default(
        &self,
        cluster_default: &BTreeMap<String, String>,
    ) -> Vec<ConfigEntry> {
        cluster_default
            .iter()
            .filter_map(|(name, value)| {
                let (name, entry) = all_keys().into_iter().find(|(key, _)| key == name)?;
                let source = ConfigSource::DynamicDefaultBroker;
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
        source: ConfigSource,
        synonyms: Vec<(Option<String>, ConfigSource)>,
    ) -> ConfigEntry {
        let sensitive = entry.is_sensitive();
        let hide = |value: Option<String>| value.filter(|v| !sensitive && !v.is_empty());
        ConfigEntry {
            name: name.to_string(),
            value: hide(value),
            source,
            read_only: !entry.is_dynamic(),
            sensitive,
            config_type: entry.config_type,
            documentation: entry.documentation.to_string(),
            synonyms: synonyms
                .into_iter()
                .map(|(value, source)| ConfigSynonym {
                    name: name.to_string(),
                    value: hide(value),
                    source,
                })
                .collect(),
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
        let sources: Vec<_> = entry.synonyms.iter().map(|s| s.source).collect();
        use ConfigSource::{Default, DynamicBroker, DynamicDefaultBroker};
        assert_eq!(sources, vec![DynamicBroker, DynamicDefaultBroker, Default]);
        let applied = config.with_dynamic(&cluster, &BTreeMap::new());
        assert_eq!(applied.log_cleanup.retention_bytes, 2);
        let secret = described
            .iter()
            .find(|e| e.name == "ssl.key.password")
            .expect("described");
        assert!(secret.sensitive && secret.value.is_none());
    }
}
