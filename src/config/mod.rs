//! Configuration, with Kafka's own key names and defaults: the broker's, the topics' and the groups'.
//!
//! Broker values come from, in rising precedence: Kafka's defaults, an optional properties file, environment
//! variables (`FERRITE_` followed by the key in upper case with `.` as `_`, e.g. `FERRITE_NODE_ID`), and command-line
//! flags (`--node.id=2` or `--override node.id=2`, as `kafka-server-start.sh` takes them); AlterConfigs then layers
//! dynamic values over them through the metadata log.
//!
//! - `broker`: [`BrokerConfig`], the keys Ferrite acts on, parsed from the file, the environment and the flags.
//! - [`catalog`]: every key a Kafka broker defines, for the ones Ferrite does not act on itself.
//! - `log`: the broker's retention, cleanup and log cleaner keys ([`LogCleanupConfig`]).
//! - `dynamic`: dynamic broker configs (AlterConfigs on the broker resources) and what DescribeConfigs shows of them.
//! - [`topic`]: topic configs, and how a topic's overrides and the broker's defaults make its [`LogConfig`].
//! - [`group`]: the GROUP config resource's keys.
//! - `transaction`: the transaction coordinator's keys ([`TransactionCoordinatorConfig`]).
//! - [`cluster`]: the cluster id and the broker's registration and heartbeats ([`ClusterConfig`]).
//! - [`replication`]: followers' fetching from leaders and the ISR ([`ReplicationConfig`]).
//! - `describe`: [`ConfigEntry`], one config as DescribeConfigs reports it, whichever resource it belongs to, with
//!   its [`ConfigSource`] and [`ConfigType`]; `ferrite admin` decodes responses into it too.
//!
//! [`LogConfig`]: crate::storage::LogConfig

use std::path::PathBuf;

mod broker;
pub mod catalog;
pub mod cluster;
mod describe;
mod dynamic;
pub mod group;
mod log;
pub mod replication;
pub mod topic;
mod transaction;

pub use broker::{BrokerConfig, FlushPolicy, GroupCoordinatorConfig, Listener};
pub use cluster::ClusterConfig;
pub use describe::{ConfigEntry, ConfigSource, ConfigSynonym, ConfigType};
pub use dynamic::ConfigLevel;
pub use log::LogCleanupConfig;
pub use replication::ReplicationConfig;
pub use transaction::TransactionCoordinatorConfig;

/// A broker config that cannot be read, parsed or changed. Start-up (`broker`, `log`) and dynamic changes
/// (`dynamic`) share it because a dynamic value is checked by parsing the whole configuration with it, so
/// AlterConfigs refuses a value with the same words start-up would.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value {value:?} for configuration {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("unknown configuration {0}")]
    Unknown(String),
    #[error("{reason}: {key}")]
    Refused { key: String, reason: &'static str },
    #[error("cannot read properties file {path}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bad command line: {0}")]
    Usage(String),
}

/// The `Invalid` error every parser of a key returns.
fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}
