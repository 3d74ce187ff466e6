//! `BrokerConfig`: the keys Ferrite acts on, with Kafka's names and defaults, read from a properties file, the
//! environment and the command line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::ids::BrokerId;

use super::catalog::{self, check_type};
use super::cluster::ClusterConfig;
use super::log::{with_time_synonyms, LogCleanupConfig};
use super::replication::ReplicationConfig;
use super::transaction::TransactionCoordinatorConfig;
use super::{invalid, ConfigError};

/// How produced data reaches the disk before a produce is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Ferrite's default: a produce is acknowledged only once its data is fsynced; concurrent appends share one
    /// fsync (group commit).
    Durable,
    /// Kafka's page-cache behaviour: acknowledge after the write; fsync after this many messages or this much time
    /// (whichever is set and comes first).
    Interval {
        messages: Option<u64>,
        ms: Option<u64>,
    },
}

/// A named listener, `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl Listener {
    pub fn socket_addr(&self) -> Result<SocketAddr, ConfigError> {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        format!("{host}:{}", self.port)
            .parse()
            .or_else(|_| {
                use std::net::ToSocketAddrs;
                (host, self.port)
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut addrs| addrs.next())
                    .ok_or(())
            })
            .map_err(|()| ConfigError::Invalid {
                key: "listeners".into(),
                value: format!("{}://{}:{}", self.name, self.host, self.port),
                reason: "host does not resolve".into(),
            })
    }
}

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: BrokerId,
    pub process_roles: Vec<String>,
    pub listeners: Vec<Listener>,
    pub advertised_listeners: Vec<Listener>,
    pub controller_listener_names: Vec<String>,
    pub controller_quorum_voters: BTreeMap<BrokerId, String>,
    pub log_dirs: PathBuf,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub log_segment_bytes: u32,
    pub log_roll_ms: i64,
    pub log_index_interval_bytes: u32,
    pub log_index_size_max_bytes: u32,
    pub message_max_bytes: u32,
    pub log_message_timestamp_type: crate::storage::TimestampType,
    pub socket_request_max_bytes: u32,
    pub max_connections: usize,
    pub connections_max_idle_ms: u64,
    pub queued_max_requests: usize,
    pub fetch_max_bytes: u32,
    /// KIP-227 incremental fetch sessions held at once (`max.incremental.fetch.session.cache.slots`).
    pub fetch_session_cache_slots: usize,
    pub flush_policy: FlushPolicy,
    pub metadata_snapshot_after_entries: u64,
    /// `ops.listener` (Ferrite's own key): where `/metrics`, `/health` and `/ready` are served; empty turns it off.
    pub ops_listener: Option<std::net::SocketAddr>,
    /// `producer.id.expiration.ms`: a partition forgets a producer whose last batch is older than this.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms`.
    pub producer_id_expiration_check_interval_ms: u64,
    pub log_cleanup: LogCleanupConfig,
    /// The keys set explicitly (file, environment, flags), as given: DescribeConfigs reports them as static.
    pub explicit: BTreeMap<String, String>,
    pub group_coordinator: GroupCoordinatorConfig,
    pub transaction_coordinator: TransactionCoordinatorConfig,
    pub cluster: ClusterConfig,
    /// Followers' fetching and the ISR (`replica.*`).
    pub replication: ReplicationConfig,
}

/// The group coordinator's keys (`group.*`, `offsets.*`), Kafka's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCoordinatorConfig {
    pub initial_rebalance_delay_ms: i64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub max_size: usize,
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_replication_factor: i16,
    pub offsets_topic_segment_bytes: i64,
    pub offsets_retention_ms: i64,
    pub offsets_retention_check_interval_ms: i64,
    pub offset_metadata_max_bytes: usize,
}

/// Every key Ferrite acts on, with its default (Kafka's, except where Ferrite differs, e.g. `listeners`,
/// `log.dirs`). Other keys of Kafka's [`catalog`] are accepted and reported but change nothing; keys Kafka does not
/// know are ignored with a warning, as Kafka does.
pub(super) const DEFAULTS: &[(&str, &str)] = &[
    ("node.id", "1"),
    ("process.roles", "broker,controller"),
    (
        "listeners",
        "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
    ),
    ("advertised.listeners", ""),
    ("controller.listener.names", "CONTROLLER"),
    ("controller.quorum.voters", ""),
    ("log.dirs", "./data"),
    ("ops.listener", "127.0.0.1:9644"),
    ("num.partitions", "1"),
    ("default.replication.factor", "1"),
    ("auto.create.topics.enable", "true"),
    ("log.segment.bytes", "1073741824"),
    ("log.roll.ms", "604800000"),
    ("log.index.interval.bytes", "4096"),
    ("log.index.size.max.bytes", "10485760"),
    ("message.max.bytes", "1048588"),
    ("log.message.timestamp.type", "CreateTime"),
    ("socket.request.max.bytes", "104857600"),
    ("max.connections", "2147483647"),
    ("connections.max.idle.ms", "600000"),
    ("queued.max.requests", "500"),
    ("fetch.max.bytes", "57671680"),
    ("max.incremental.fetch.session.cache.slots", "1000"),
    ("log.flush.interval.messages", ""),
    ("log.flush.interval.ms", ""),
    ("metadata.log.max.snapshot.interval.entries", "1000"),
    ("producer.id.expiration.ms", "86400000"),
    ("producer.id.expiration.check.interval.ms", "600000"),
    ("log.retention.ms", "604800000"),
    ("log.retention.bytes", "-1"),
    ("log.retention.check.interval.ms", "300000"),
    ("log.cleanup.policy", "delete"),
    ("log.segment.delete.delay.ms", "60000"),
    ("log.cleaner.enable", "true"),
    ("log.cleaner.backoff.ms", "15000"),
    ("log.cleaner.dedupe.buffer.size", "134217728"),
    ("log.cleaner.delete.retention.ms", "86400000"),
    ("log.cleaner.min.compaction.lag.ms", "0"),
    ("log.cleaner.max.compaction.lag.ms", "9223372036854775807"),
    ("log.cleaner.min.cleanable.ratio", "0.5"),
    ("log.message.timestamp.before.max.ms", "9223372036854775807"),
    ("log.message.timestamp.after.max.ms", "9223372036854775807"),
    ("min.insync.replicas", "1"),
    ("group.initial.rebalance.delay.ms", "3000"),
    ("group.min.session.timeout.ms", "6000"),
    ("group.max.session.timeout.ms", "1800000"),
    ("group.max.size", "2147483647"),
    ("offsets.topic.num.partitions", "50"),
    ("offsets.topic.replication.factor", "3"),
    ("offsets.topic.segment.bytes", "104857600"),
    ("offsets.retention.minutes", "10080"),
    ("offsets.retention.check.interval.ms", "600000"),
    ("offset.metadata.max.bytes", "4096"),
    ("transaction.state.log.num.partitions", "50"),
    ("transaction.state.log.replication.factor", "3"),
    ("transaction.state.log.segment.bytes", "104857600"),
    ("transaction.state.log.min.isr", "2"),
    ("transaction.max.timeout.ms", "900000"),
    (
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "10000",
    ),
    ("transactional.id.expiration.ms", "604800000"),
    ("cluster.id", ""),
    ("broker.rack", ""),
    ("broker.heartbeat.interval.ms", "2000"),
    ("broker.session.timeout.ms", "9000"),
    ("initial.broker.registration.timeout.ms", "60000"),
    ("controller.quorum.election.timeout.ms", "1000"),
    ("controller.quorum.fetch.timeout.ms", "2000"),
    ("controller.quorum.request.timeout.ms", "2000"),
    ("controller.quorum.retry.backoff.ms", "20"),
    ("auto.leader.rebalance.enable", "true"),
    ("leader.imbalance.check.interval.seconds", "300"),
    ("num.replica.fetchers", "1"),
    ("replica.fetch.wait.max.ms", "500"),
    ("replica.fetch.min.bytes", "1"),
    ("replica.fetch.max.bytes", "1048576"),
    ("replica.fetch.response.max.bytes", "10485760"),
    ("replica.fetch.backoff.ms", "1000"),
    ("replica.socket.timeout.ms", "30000"),
    ("replica.lag.time.max.ms", "30000"),
];

impl Default for BrokerConfig {
    fn default() -> Self {
        Self::from_map(&BTreeMap::new()).expect("invariant: the built-in defaults are valid")
    }
}

impl BrokerConfig {
    /// Parses `ferrite [PROPERTIES_FILE] [--key=value | --key value | --override key=value]...`, with the
    /// environment in between.
    pub fn from_args_and_env(
        args: impl IntoIterator<Item = String>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut values = BTreeMap::new();
        let mut flags = Vec::new();
        let mut args = args.into_iter().peekable();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                values.extend(read_properties(Path::new(&arg))?);
                continue;
            };
            let pair = if flag == "override" {
                args.next()
                    .ok_or_else(|| ConfigError::Usage("--override needs key=value".into()))?
            } else if flag.contains('=') {
                flag.to_string()
            } else {
                let value = args
                    .next()
                    .ok_or_else(|| ConfigError::Usage(format!("--{flag} needs a value")))?;
                format!("{flag}={value}")
            };
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| ConfigError::Usage(format!("expected key=value, got {pair:?}")))?;
            flags.push((key.trim().to_string(), value.trim().to_string()));
        }
        for (name, value) in env {
            if let Some(key) = name.strip_prefix("FERRITE_") {
                let key = key.to_ascii_lowercase().replace('_', ".");
                if DEFAULTS.iter().any(|(k, _)| *k == key) || catalog::lookup(&key).is_some() {
                    values.insert(key, value);
                }
            }
        }
        values.extend(flags);
        Self::from_map(&values)
    }

    pub fn from_map(values: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut values = values.clone();
        values.retain(|key, _| {
            if DEFAULTS.iter().any(|(d, _)| d == key) || key.starts_with("listener.name.") {
                return true;
            }
            if catalog::lookup(key).is_none() {
                tracing::warn!(%key, "ignoring a configuration Kafka does not know");
                return false;
            }
            true
        });
        for (key, value) in &values {
            if let Some(entry) = catalog::lookup(key) {
                check_type(entry, value)?;
            }
        }
        let given = values;
        let values = &with_time_synonyms(&given)?;
        let get = |key: &str| -> &str {
            values.get(key).map(String::as_str).unwrap_or_else(|| {
                DEFAULTS
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| *v)
                    .unwrap_or_default()
            })
        };
        let node_id = BrokerId(parse_num(get, "node.id", 0, i32::MAX as i64)? as i32);
        let listeners = parse_listeners("listeners", get("listeners"))?;
        let advertised_listeners = match get("advertised.listeners") {
            "" => listeners.clone(),
            value => parse_listeners("advertised.listeners", value)?,
        };
        let controller_listener_names = split_list(get("controller.listener.names"));
        let controller_quorum_voters = match get("controller.quorum.voters") {
            "" => {
                // A lone combined node votes for itself, reachable on its controller listener.
                let controller = listeners
                    .iter()
                    .find(|l| controller_listener_names.contains(&l.name))
                    .map(|l| format!("{}:{}", l.host, l.port))
                    .unwrap_or_default();
                BTreeMap::from([(node_id, controller)])
            }
            value => parse_voters(value)?,
        };
        let flush_messages = parse_optional(get, "log.flush.interval.messages")?;
        let flush_ms = parse_optional(get, "log.flush.interval.ms")?;
        let flush_policy = if flush_messages.is_none() && flush_ms.is_none() {
            FlushPolicy::Durable
        } else {
            FlushPolicy::Interval {
                messages: flush_messages,
                ms: flush_ms,
            }
        };
        let log_message_timestamp_type = match get("log.message.timestamp.type") {
            "CreateTime" => crate::storage::TimestampType::CreateTime,
            "LogAppendTime" => crate::storage::TimestampType::LogAppendTime,
            other => {
                return Err(invalid(
                    "log.message.timestamp.type",
                    other,
                    "expected CreateTime or LogAppendTime",
                ))
            }
        };
        let log_dirs = match get("log.dirs") {
            "" => return Err(invalid("log.dirs", "", "must name a directory")),
            dirs if dirs.contains(',') => {
                return Err(invalid(
                    "log.dirs",
                    dirs,
                    "Ferrite supports one log directory for now",
                ))
            }
            dir => PathBuf::from(dir),
        };
        let ops_listener = match get("ops.listener") {
            "" => None,
            addr => Some(addr.parse().map_err(|_| {
                invalid(
                    "ops.listener",
                    addr,
                    "expected host:port with an IP address",
                )
            })?),
        };
        let log_cleanup = LogCleanupConfig::parse(&get)?;
        let transaction_coordinator = TransactionCoordinatorConfig::parse(&get)?;
        let cluster = ClusterConfig::parse(&get)?;
        let replication = ReplicationConfig::parse(&get)?;
        let config = BrokerConfig {
            cluster,
            replication,
            log_cleanup,
            transaction_coordinator,
            explicit: given.clone(),
            node_id,
            process_roles: split_list(get("process.roles")),
            listeners,
            advertised_listeners,
            controller_listener_names,
            controller_quorum_voters,
            log_dirs,
            num_partitions: parse_num(get, "num.partitions", 1, i32::MAX as i64)? as i32,
            default_replication_factor: parse_num(
                get,
                "default.replication.factor",
                1,
                i16::MAX as i64,
            )? as i16,
            auto_create_topics_enable: parse_bool(get, "auto.create.topics.enable")?,
            log_segment_bytes: parse_num(get, "log.segment.bytes", 14, i32::MAX as i64)? as u32,
            log_roll_ms: parse_num(get, "log.roll.ms", 1, i64::MAX)?,
            log_index_interval_bytes: parse_num(
                get,
                "log.index.interval.bytes",
                0,
                i32::MAX as i64,
            )? as u32,
            log_index_size_max_bytes: parse_num(
                get,
                "log.index.size.max.bytes",
                4,
                i32::MAX as i64,
            )? as u32,
            message_max_bytes: parse_num(get, "message.max.bytes", 0, i32::MAX as i64)? as u32,
            log_message_timestamp_type,
            socket_request_max_bytes: parse_num(
                get,
                "socket.request.max.bytes",
                1,
                i32::MAX as i64,
            )? as u32,
            max_connections: parse_num(get, "max.connections", 0, i32::MAX as i64)? as usize,
            connections_max_idle_ms: parse_num(get, "connections.max.idle.ms", 1, i64::MAX)? as u64,
            queued_max_requests: parse_num(get, "queued.max.requests", 1, i32::MAX as i64)?
                as usize,
            fetch_max_bytes: parse_num(get, "fetch.max.bytes", 1024, i32::MAX as i64)? as u32,
            fetch_session_cache_slots: parse_num(
                get,
                "max.incremental.fetch.session.cache.slots",
                0,
                i32::MAX as i64,
            )? as usize,
            flush_policy,
            ops_listener,
            metadata_snapshot_after_entries: parse_num(
                get,
                "metadata.log.max.snapshot.interval.entries",
                1,
                i64::MAX,
            )? as u64,
            producer_id_expiration_ms: parse_num(
                get,
                "producer.id.expiration.ms",
                1,
                i32::MAX as i64,
            )?,
            producer_id_expiration_check_interval_ms: parse_num(
                get,
                "producer.id.expiration.check.interval.ms",
                1,
                i32::MAX as i64,
            )? as u64,
            group_coordinator: GroupCoordinatorConfig {
                initial_rebalance_delay_ms: parse_num(
                    get,
                    "group.initial.rebalance.delay.ms",
                    0,
                    i32::MAX as i64,
                )?,
                min_session_timeout_ms: parse_num(
                    get,
                    "group.min.session.timeout.ms",
                    0,
                    i32::MAX as i64,
                )? as i32,
                max_session_timeout_ms: parse_num(
                    get,
                    "group.max.session.timeout.ms",
                    0,
                    i32::MAX as i64,
                )? as i32,
                max_size: parse_num(get, "group.max.size", 1, i32::MAX as i64)? as usize,
                offsets_topic_num_partitions: parse_num(
                    get,
                    "offsets.topic.num.partitions",
                    1,
                    10_000,
                )? as i32,
                offsets_topic_replication_factor: parse_num(
                    get,
                    "offsets.topic.replication.factor",
                    1,
                    i16::MAX as i64,
                )? as i16,
                offsets_topic_segment_bytes: parse_num(
                    get,
                    "offsets.topic.segment.bytes",
                    1,
                    i32::MAX as i64,
                )?,
                offsets_retention_ms: parse_num(
                    get,
                    "offsets.retention.minutes",
                    1,
                    i32::MAX as i64,
                )? * 60_000,
                offsets_retention_check_interval_ms: parse_num(
                    get,
                    "offsets.retention.check.interval.ms",
                    1,
                    i64::MAX / 2,
                )?,
                offset_metadata_max_bytes: parse_num(
                    get,
                    "offset.metadata.max.bytes",
                    0,
                    i32::MAX as i64,
                )? as usize,
            },
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for role in &self.process_roles {
            if role != "broker" && role != "controller" {
                return Err(invalid(
                    "process.roles",
                    role,
                    "roles are broker and controller",
                ));
            }
        }
        let (broker, controller) = (self.is_broker(), self.is_controller());
        if !broker && !controller {
            return Err(invalid(
                "process.roles",
                &self.process_roles.join(","),
                "name broker, controller or both",
            ));
        }
        if broker && self.client_listener().is_none() {
            return Err(invalid(
                "listeners",
                "",
                "a broker needs a listener that is not a controller listener",
            ));
        }
        if self.controller_listener().is_none() {
            // A broker-only node needs one too: the active controller replicates the metadata log to it there.
            return Err(invalid(
                "listeners",
                "",
                "needs a listener named in controller.listener.names",
            ));
        }
        let voter = self.controller_quorum_voters.contains_key(&self.node_id);
        if controller && !voter {
            return Err(invalid(
                "controller.quorum.voters",
                &format!("{:?}", self.controller_quorum_voters),
                "a controller must be one of the voters",
            ));
        }
        if !controller && voter {
            return Err(invalid(
                "controller.quorum.voters",
                &format!("{:?}", self.controller_quorum_voters),
                "a broker-only node (process.roles=broker) must not be one of the voters",
            ));
        }
        Ok(())
    }

    /// `process.roles` has `broker`: this node hosts partitions and serves clients.
    pub fn is_broker(&self) -> bool {
        self.process_roles.iter().any(|r| r == "broker")
    }

    /// `process.roles` has `controller`: this node votes in the metadata quorum.
    pub fn is_controller(&self) -> bool {
        self.process_roles.iter().any(|r| r == "controller")
    }

    /// The listener clients connect to: the first one that is not a controller listener.
    pub fn client_listener(&self) -> Option<&Listener> {
        self.listeners
            .iter()
            .find(|l| !self.controller_listener_names.contains(&l.name))
    }

    pub fn controller_listener(&self) -> Option<&Listener> {
        self.listeners
            .iter()
            .find(|l| self.controller_listener_names.contains(&l.name))
    }

    /// What Metadata tells clients to connect to, given the port the client listener actually bound (which differs
    /// from the configured one when that was 0).
    pub fn advertised_endpoint(&self, bound: SocketAddr) -> (String, u16) {
        let client = self
            .client_listener()
            .map(|l| l.name.as_str())
            .unwrap_or("PLAINTEXT");
        let advertised = self.advertised_listeners.iter().find(|l| l.name == client);
        let host = match advertised {
            Some(l) if !l.host.is_empty() && l.host != "0.0.0.0" => l.host.clone(),
            _ if bound.ip().is_unspecified() => "127.0.0.1".to_string(),
            _ => bound.ip().to_string(),
        };
        let port = match advertised {
            Some(l) if l.port != 0 => l.port,
            _ => bound.port(),
        };
        (host, port)
    }
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

pub(super) fn parse_num<'a>(
    get: impl Fn(&str) -> &'a str,
    key: &str,
    min: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    let value = get(key);
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, "not a number"))?;
    if n < min || n > max {
        return Err(invalid(
            key,
            value,
            &format!("must be between {min} and {max}"),
        ));
    }
    Ok(n)
}

fn parse_optional<'a>(
    get: impl Fn(&str) -> &'a str,
    key: &str,
) -> Result<Option<u64>, ConfigError> {
    match get(key).trim() {
        "" => Ok(None),
        value => value
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| invalid(key, value, "must be a positive number")),
    }
}

pub(super) fn parse_bool<'a>(
    get: impl Fn(&str) -> &'a str,
    key: &str,
) -> Result<bool, ConfigError> {
    match get(key).trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(invalid(key, other, "expected true or false")),
    }
}

fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    split_list(value)
        .into_iter()
        .map(|item| {
            let (name, rest) = item
                .split_once("://")
                .ok_or_else(|| invalid(key, &item, "expected NAME://host:port"))?;
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| invalid(key, &item, "expected NAME://host:port"))?;
            let port = port.parse().map_err(|_| invalid(key, &item, "bad port"))?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            Ok(Listener {
                name: name.to_string(),
                host,
                port,
            })
        })
        .collect()
}

fn parse_voters(value: &str) -> Result<BTreeMap<BrokerId, String>, ConfigError> {
    const KEY: &str = "controller.quorum.voters";
    split_list(value)
        .into_iter()
        .map(|item| {
            let (id, addr) = item
                .split_once('@')
                .ok_or_else(|| invalid(KEY, &item, "expected id@host:port"))?;
            let id = id.parse().map_err(|_| invalid(KEY, &item, "bad node id"))?;
            Ok((BrokerId(id), addr.to_string()))
        })
        .collect()
}

fn read_properties(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::File {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with('!'))
        .filter_map(|line| line.split_once(['=', ':']))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_are_kafkas() {
        let config = BrokerConfig::default();
        assert_eq!(config.node_id, BrokerId(1));
        assert_eq!(config.message_max_bytes, 1_048_588);
        assert_eq!(config.flush_policy, FlushPolicy::Durable);
        assert_eq!(config.client_listener().map(|l| l.port), Some(9092));
        assert_eq!(
            config
                .controller_quorum_voters
                .get(&BrokerId(1))
                .map(String::as_str),
            Some("127.0.0.1:9093")
        );
    }

    #[test]
    fn flags_override_environment() {
        let env = vec![("FERRITE_NUM_PARTITIONS".to_string(), "3".to_string())];
        let config =
            BrokerConfig::from_args_and_env(args(&["--num.partitions=6"]), env.clone()).unwrap();
        assert_eq!(config.num_partitions, 6);
        let config = BrokerConfig::from_args_and_env(args(&[]), env).unwrap();
        assert_eq!(config.num_partitions, 3);
        let config =
            BrokerConfig::from_args_and_env(args(&["--override", "log.flush.interval.ms=100"]), [])
                .unwrap();
        assert_eq!(
            config.flush_policy,
            FlushPolicy::Interval {
                messages: None,
                ms: Some(100)
            }
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let err =
            BrokerConfig::from_args_and_env(args(&["--num.partitions=zero"]), []).unwrap_err();
        assert!(err.to_string().contains("num.partitions"), "{err}");
        let err =
            BrokerConfig::from_args_and_env(args(&["--background.threads=many"]), []).unwrap_err();
        assert!(err.to_string().contains("background.threads"), "{err}");
    }

    #[test]
    fn kafka_keys_are_kept_and_unknown_ones_ignored() {
        let config = BrokerConfig::from_args_and_env(
            args(&["--num.io.threads=4", "--no.such.key=1"]),
            [("FERRITE_BACKGROUND_THREADS".to_string(), "6".to_string())],
        )
        .unwrap();
        assert_eq!(config.value_of("num.io.threads").as_deref(), Some("4"));
        assert_eq!(config.value_of("background.threads").as_deref(), Some("6"));
        assert_eq!(config.value_of("no.such.key"), None);
        assert_eq!(config.value_of("log.dirs").as_deref(), Some("./data"));
        assert_eq!(config.value_of("ssl.keystore.location"), None);
    }
}
