//! Group configs (KIP-848's GROUP config resource, type 32): per-group overrides of the group coordinator's
//! settings, Kafka 4.1's keys. Their defaults are the broker's matching `group.*` configs, and a value must lie
//! within the broker's min/max for it. Ferrite's group coordinator runs the classic protocol only, so these are
//! stored (through the metadata log) and reported as Kafka does, but no group behaves differently because of them.

use std::collections::BTreeMap;

use super::{BrokerConfig, ConfigEntry, ConfigSource, ConfigSynonym, ConfigType};

/// One group config: its broker-level default and the broker configs bounding it.
struct GroupKey {
    name: &'static str,
    /// The broker config whose value is the default.
    default_from: Option<&'static str>,
    /// Used where no broker config supplies the default.
    fixed_default: &'static str,
    /// (minimum, maximum) broker configs.
    bounds: Option<(&'static str, &'static str)>,
    /// Allowed values of a string config; the entry ending in ':' admits any suffix.
    allowed: &'static [&'static str],
    documentation: &'static str,
}

const fn int(
    name: &'static str,
    default_from: &'static str,
    bounds: Option<(&'static str, &'static str)>,
    documentation: &'static str,
) -> GroupKey {
    GroupKey {
        name,
        default_from: Some(default_from),
        fixed_default: "",
        bounds,
        allowed: &[],
        documentation,
    }
}

/// Sorted by name.
const GROUP_CONFIGS: &[GroupKey] = &[
    int(
        "consumer.heartbeat.interval.ms",
        "group.consumer.heartbeat.interval.ms",
        Some((
            "group.consumer.min.heartbeat.interval.ms",
            "group.consumer.max.heartbeat.interval.ms",
        )),
        "Heartbeat interval this consumer group's members are told to use.",
    ),
    int(
        "consumer.session.timeout.ms",
        "group.consumer.session.timeout.ms",
        Some((
            "group.consumer.min.session.timeout.ms",
            "group.consumer.max.session.timeout.ms",
        )),
        "How long a consumer group member may go silent before it is removed.",
    ),
    GroupKey {
        name: "share.auto.offset.reset",
        default_from: None,
        fixed_default: "latest",
        bounds: None,
        allowed: &["latest", "earliest", "by_duration:"],
        documentation: "Where a share group starts reading a partition it has no state for.",
    },
    int(
        "share.heartbeat.interval.ms",
        "group.share.heartbeat.interval.ms",
        Some((
            "group.share.min.heartbeat.interval.ms",
            "group.share.max.heartbeat.interval.ms",
        )),
        "Heartbeat interval this share group's members are told to use.",
    ),
    GroupKey {
        name: "share.isolation.level",
        default_from: None,
        fixed_default: "read_uncommitted",
        bounds: None,
        allowed: &["read_committed", "read_uncommitted"],
        documentation: "Whether a share group delivers only committed transactional records.",
    },
    int(
        "share.record.lock.duration.ms",
        "group.share.record.lock.duration.ms",
        Some((
            "group.share.min.record.lock.duration.ms",
            "group.share.max.record.lock.duration.ms",
        )),
        "How long a share group member holds a delivered record before it is offered again.",
    ),
    int(
        "share.session.timeout.ms",
        "group.share.session.timeout.ms",
        Some((
            "group.share.min.session.timeout.ms",
            "group.share.max.session.timeout.ms",
        )),
        "How long a share group member may go silent before it is removed.",
    ),
    int(
        "streams.heartbeat.interval.ms",
        "group.streams.heartbeat.interval.ms",
        Some((
            "group.streams.min.heartbeat.interval.ms",
            "group.streams.max.heartbeat.interval.ms",
        )),
        "Heartbeat interval this streams group's members are told to use.",
    ),
    int(
        "streams.num.standby.replicas",
        "group.streams.num.standby.replicas",
        None,
        "Standby replicas of each task of this streams group.",
    ),
    int(
        "streams.session.timeout.ms",
        "group.streams.session.timeout.ms",
        Some((
            "group.streams.min.session.timeout.ms",
            "group.streams.max.session.timeout.ms",
        )),
        "How long a streams group member may go silent before it is removed.",
    ),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupConfigError {
    #[error("Unknown group config name: {0}")]
    Unknown(String),
    #[error("Invalid value {value} for configuration {key}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("{key} must be {relation} {bound}")]
    OutOfBounds {
        key: String,
        relation: &'static str,
        bound: &'static str,
    },
}

fn find(name: &str) -> Option<&'static GroupKey> {
    GROUP_CONFIGS.iter().find(|key| key.name == name)
}

pub fn is_known(name: &str) -> bool {
    find(name).is_some()
}

impl GroupKey {
    fn config_type(&self) -> ConfigType {
        if self.default_from.is_some() {
            ConfigType::Int
        } else {
            ConfigType::String
        }
    }

    fn default_value(&self, broker: &BrokerConfig) -> String {
        self.default_from
            .and_then(|key| broker.value_of(key))
            .unwrap_or_else(|| self.fixed_default.to_string())
    }
}

/// Checks one `name = value` a client asked to set on a group, against this broker's bounds.
pub fn validate(name: &str, value: &str, broker: &BrokerConfig) -> Result<(), GroupConfigError> {
    let key = find(name).ok_or_else(|| GroupConfigError::Unknown(name.to_string()))?;
    let invalid = |reason: &str| GroupConfigError::InvalidValue {
        key: name.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    if key.config_type() == ConfigType::String {
        let trimmed = value.trim();
        let fits = key
            .allowed
            .iter()
            .any(|allowed| match allowed.strip_suffix(':') {
                Some(prefix) => trimmed.starts_with(prefix) && trimmed.len() > allowed.len(),
                None => trimmed == *allowed,
            });
        return if fits {
            Ok(())
        } else {
            Err(invalid(&format!(
                "String must be one of: {}",
                key.allowed.join(", ")
            )))
        };
    }
    let n: i32 = value
        .trim()
        .parse()
        .map_err(|_| invalid("Not a number of type INT"))?;
    let minimum = if key.bounds.is_some() { 1 } else { 0 };
    if n < minimum {
        return Err(invalid(&format!("Value must be at least {minimum}")));
    }
    let bound_of = |bound: &str| {
        broker
            .value_of(bound)
            .and_then(|v| v.trim().parse::<i32>().ok())
    };
    let (min_key, max_key) = key
        .bounds
        .unwrap_or(("", "group.streams.max.standby.replicas"));
    if bound_of(min_key).is_some_and(|min| n < min) {
        return Err(GroupConfigError::OutOfBounds {
            key: name.to_string(),
            relation: "greater than or equal to",
            bound: min_key,
        });
    }
    if bound_of(max_key).is_some_and(|max| n > max) {
        return Err(GroupConfigError::OutOfBounds {
            key: name.to_string(),
            relation: "less than or equal to",
            bound: max_key,
        });
    }
    Ok(())
}

/// Every group config with its value: the group's own where set (GROUP_CONFIG), else the broker's default
/// (DEFAULT_CONFIG). The value's one source is its only synonym.
pub fn describe(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    GROUP_CONFIGS
        .iter()
        .map(|key| {
            let set = overrides.get(key.name);
            let value = set.cloned().unwrap_or_else(|| key.default_value(broker));
            let source = if set.is_some() {
                ConfigSource::Group
            } else {
                ConfigSource::Default
            };
            ConfigEntry {
                name: key.name.to_string(),
                value: Some(value.clone()),
                source,
                read_only: false,
                sensitive: false,
                config_type: key.config_type(),
                documentation: key.documentation.to_string(),
                synonyms: vec![ConfigSynonym {
                    name: key.name.to_string(),
                    value: Some(value),
                    source,
                }],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_broker_and_bounds_apply() {
        let broker = BrokerConfig::default();
        let described = describe(&broker, &BTreeMap::new());
        let session = described
            .iter()
            .find(|e| e.name == "consumer.session.timeout.ms")
            .expect("described");
        assert_eq!(
            (session.value.as_deref(), session.source),
            (Some("45000"), ConfigSource::Default)
        );
        assert!(validate("consumer.session.timeout.ms", "50000", &broker).is_ok());
        assert!(matches!(
            validate("consumer.session.timeout.ms", "1000", &broker),
            Err(GroupConfigError::OutOfBounds { .. })
        ));
        assert!(matches!(
            validate("consumer.session.timeout.ms", "soon", &broker),
            Err(GroupConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            validate("no.such.key", "1", &broker),
            Err(GroupConfigError::Unknown(_))
        ));
        assert!(validate("share.auto.offset.reset", "by_duration:PT1H", &broker).is_ok());
        assert!(validate("share.isolation.level", "dirty", &broker).is_err());
        assert!(validate("streams.num.standby.replicas", "3", &broker).is_err());
    }
}
