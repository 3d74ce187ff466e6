//! What DescribeConfigs says about one config, for brokers, topics and groups alike: [`ConfigEntry`], with Kafka's
//! [`ConfigSource`] and [`ConfigType`] and their wire codes. The broker builds these entries and encodes them
//! (`api::describe_configs`); `ferrite admin` decodes the response into the same type to print it, so both sides
//! agree on the codes and on Kafka's names for them.

/// Kafka's ConfigType, with its DescribeConfigs wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// What a response carries when the broker names no type (DescribeConfigs before v3).
    Unknown = 0,
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    Class = 8,
    Password = 9,
}

impl ConfigType {
    /// The type a wire code stands for; codes Kafka does not define are `Unknown`, as Kafka's client reads them.
    pub fn from_code(code: i8) -> Self {
        match code {
            1 => ConfigType::Boolean,
            2 => ConfigType::String,
            3 => ConfigType::Int,
            4 => ConfigType::Short,
            5 => ConfigType::Long,
            6 => ConfigType::Double,
            7 => ConfigType::List,
            8 => ConfigType::Class,
            9 => ConfigType::Password,
            _ => ConfigType::Unknown,
        }
    }

    pub fn code(self) -> i8 {
        self as i8
    }
}

/// Where a config's value comes from (Kafka's ConfigSource), with its DescribeConfigs wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// A code Kafka does not define, or none (DescribeConfigs v0 carries no source).
    Unknown = 0,
    /// Set on the topic.
    DynamicTopic = 1,
    /// Set on this broker through AlterConfigs.
    DynamicBroker = 2,
    /// Set as the cluster-wide default (the broker resource with the empty name).
    DynamicDefaultBroker = 3,
    /// Set in the broker's properties file, environment or flags.
    StaticBroker = 4,
    Default = 5,
    DynamicBrokerLogger = 6,
    ClientMetrics = 7,
    /// Set on the group.
    Group = 8,
}

impl ConfigSource {
    /// The source a wire code stands for; codes Kafka does not define are `Unknown`, as Kafka's client reads them.
    pub fn from_code(code: i8) -> Self {
        match code {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            6 => ConfigSource::DynamicBrokerLogger,
            7 => ConfigSource::ClientMetrics,
            8 => ConfigSource::Group,
            _ => ConfigSource::Unknown,
        }
    }

    pub fn code(self) -> i8 {
        self as i8
    }

    /// Kafka's name for the source, as kafka-configs.sh prints it (`ConfigEntry.ConfigSource`).
    pub fn name(self) -> &'static str {
        match self {
            ConfigSource::Unknown => "UNKNOWN",
            ConfigSource::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
            ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
            ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
            ConfigSource::Default => "DEFAULT_CONFIG",
            ConfigSource::DynamicBrokerLogger => "DYNAMIC_BROKER_LOGGER_CONFIG",
            ConfigSource::ClientMetrics => "CLIENT_METRICS_CONFIG",
            ConfigSource::Group => "GROUP_CONFIG",
        }
    }
}

/// One config of a broker, topic or group as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    /// `None` for sensitive configs and for configs with no value.
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    pub sensitive: bool,
    pub config_type: ConfigType,
    pub documentation: String,
    /// Every place that holds a value for the config, highest precedence first (Kafka's synonyms); the first is
    /// where `value` comes from.
    pub synonyms: Vec<ConfigSynonym>,
}

/// One place a config's value may come from: a key (the config's own, or the broker key behind a topic config) at
/// one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes_round_trip() {
        for code in 0..=9 {
            assert_eq!(ConfigType::from_code(code).code(), code);
        }
        for code in 0..=8 {
            assert_eq!(ConfigSource::from_code(code).code(), code);
        }
        assert_eq!(ConfigSource::from_code(-1), ConfigSource::Unknown);
        assert_eq!(ConfigSource::from_code(4).name(), "STATIC_BROKER_CONFIG");
    }
}
