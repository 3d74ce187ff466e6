//! Kafka's broker configuration catalogue: every key a Kafka 4.1 broker defines, with the default DescribeConfigs
//! reports, its type, whether it is sensitive, and whether (and at which level) AlterConfigs may change it.
//!
//! Ferrite acts on the keys in `broker::DEFAULTS` and parses them itself; the rest are here so that a Kafka
//! properties file starts Ferrite unchanged, DescribeConfigs shows what a Kafka user expects, and dynamic values a
//! tool sets are stored and reported, even where Ferrite has nothing to apply them to.

use super::{invalid, ConfigError, ConfigType};

/// Whether and where a broker config may be changed at run time (Kafka's "Update Mode").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateMode {
    ReadOnly,
    /// Only on one broker's resource (listener and security settings).
    PerBroker,
    /// On a broker or as the cluster-wide default (the broker resource with the empty name).
    ClusterWide,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogEntry {
    pub name: &'static str,
    /// Kafka's default as DescribeConfigs shows it; `None` where Kafka has none (null).
    pub default: Option<&'static str>,
    pub config_type: ConfigType,
    pub mode: UpdateMode,
    pub documentation: &'static str,
}

impl CatalogEntry {
    /// Password values are never shown.
    pub fn is_sensitive(&self) -> bool {
        self.config_type == ConfigType::Password
    }

    pub fn is_dynamic(&self) -> bool {
        self.mode != UpdateMode::ReadOnly
    }
}

/// The catalogue entry of `name`.
pub fn lookup(name: &str) -> Option<&'static CatalogEntry> {
    BROKER_CONFIGS
        .binary_search_by(|entry| entry.name.cmp(name))
        .ok()
        .and_then(|index| BROKER_CONFIGS.get(index))
}

/// Kafka's keystore and truststore settings: dynamic only with a `listener.name.<listener>.` prefix.
pub fn needs_listener_prefix(name: &str) -> bool {
    matches!(
        name,
        "ssl.keystore.type"
            | "ssl.keystore.location"
            | "ssl.keystore.password"
            | "ssl.key.password"
            | "ssl.truststore.type"
            | "ssl.truststore.location"
            | "ssl.truststore.password"
            | "ssl.keystore.certificate.chain"
            | "ssl.keystore.key"
            | "ssl.truststore.certificates"
    )
}

/// Kafka's thread-pool sizes, which a dynamic change may at most double or halve.
pub fn is_thread_pool(name: &str) -> bool {
    matches!(
        name,
        "num.io.threads"
            | "num.replica.fetchers"
            | "num.recovery.threads.per.data.dir"
            | "background.threads"
    )
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
        ConfigType::String
        | ConfigType::List
        | ConfigType::Class
        | ConfigType::Password
        | ConfigType::Unknown => true,
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

const fn entry(
    name: &'static str,
    default: Option<&'static str>,
    config_type: ConfigType,
    mode: UpdateMode,
    documentation: &'static str,
) -> CatalogEntry {
    CatalogEntry {
        name,
        default,
        config_type,
        mode,
        documentation,
    }
}

use ConfigType::{Boolean, Class, Double, Int, List, Long, Password, Short, String};
use UpdateMode::{ClusterWide, PerBroker, ReadOnly};

/// Sorted by name (lookup searches it).
#[rustfmt::skip]
pub const BROKER_CONFIGS: &[CatalogEntry] = &[
    entry("advertised.listeners", None, String, PerBroker, "Addresses handed to clients in Metadata, when they differ from the bound listeners."),
    entry("alter.config.policy.class.name", None, Class, ReadOnly, "Broker setting: alter config policy class name."),
    entry("alter.log.dirs.replication.quota.window.num", Some("11"), Int, ReadOnly, "Log directory move quota setting: alter log dirs replication quota window num."),
    entry("alter.log.dirs.replication.quota.window.size.seconds", Some("1"), Int, ReadOnly, "Log directory move quota setting: alter log dirs replication quota window size seconds."),
    entry("authorizer.class.name", Some(""), String, ReadOnly, "Broker setting: authorizer class name."),
    entry("auto.create.topics.enable", Some("true"), Boolean, ReadOnly, "Whether a Metadata or produce request for an unknown topic creates it."),
    entry("auto.leader.rebalance.enable", Some("true"), Boolean, ReadOnly, "Broker setting: auto leader rebalance enable."),
    entry("background.threads", Some("10"), Int, ClusterWide, "Threads for background housekeeping tasks."),
    entry("broker.heartbeat.interval.ms", Some("2000"), Int, ReadOnly, "Broker lifecycle setting: broker heartbeat interval ms."),
    entry("broker.id", Some("-1"), Int, ReadOnly, "Legacy name of the node id."),
    entry("broker.rack", None, String, ReadOnly, "Broker lifecycle setting: broker rack."),
    entry("broker.session.timeout.ms", Some("9000"), Int, ReadOnly, "Broker lifecycle setting: broker session timeout ms."),
    entry("client.quota.callback.class", None, Class, ReadOnly, "Broker setting: client quota callback class."),
    entry("compression.gzip.level", Some("-1"), Int, ClusterWide, "Level used for gzip compression."),
    entry("compression.lz4.level", Some("9"), Int, ClusterWide, "Level used for lz4 compression."),
    entry("compression.type", Some("producer"), String, ClusterWide, "Compression applied to topics by default; producer keeps the producer's codec."),
    entry("compression.zstd.level", Some("3"), Int, ClusterWide, "Level used for zstd compression."),
    entry("connection.failed.authentication.delay.ms", Some("100"), Int, ReadOnly, "Broker setting: connection failed authentication delay ms."),
    entry("connections.max.idle.ms", Some("600000"), Long, ReadOnly, "Idle time after which a connection is closed."),
    entry("connections.max.reauth.ms", Some("0"), Long, ReadOnly, "Broker setting: connections max reauth ms."),
    entry("controlled.shutdown.enable", Some("true"), Boolean, ReadOnly, "Controlled shutdown setting: controlled shutdown enable."),
    entry("controlled.shutdown.max.retries", Some("3"), Int, ReadOnly, "Controlled shutdown setting: controlled shutdown max retries."),
    entry("controlled.shutdown.retry.backoff.ms", Some("5000"), Long, ReadOnly, "Controlled shutdown setting: controlled shutdown retry backoff ms."),
    entry("controller.listener.names", None, String, ReadOnly, "Listeners the controllers are reached on."),
    entry("controller.quorum.append.linger.ms", Some("25"), Int, ReadOnly, "Controller quorum setting: controller quorum append linger ms."),
    entry("controller.quorum.bootstrap.servers", Some(""), List, ReadOnly, "Controller endpoints used to discover a dynamic quorum."),
    entry("controller.quorum.election.backoff.max.ms", Some("1000"), Int, ReadOnly, "Controller quorum setting: controller quorum election backoff max ms."),
    entry("controller.quorum.election.timeout.ms", Some("1000"), Int, ReadOnly, "Controller quorum setting: controller quorum election timeout ms."),
    entry("controller.quorum.fetch.timeout.ms", Some("2000"), Int, ReadOnly, "Controller quorum setting: controller quorum fetch timeout ms."),
    entry("controller.quorum.request.timeout.ms", Some("2000"), Int, ReadOnly, "Controller quorum setting: controller quorum request timeout ms."),
    entry("controller.quorum.retry.backoff.ms", Some("20"), Int, ReadOnly, "Controller quorum setting: controller quorum retry backoff ms."),
    entry("controller.quorum.voters", Some(""), List, ReadOnly, "The static controller quorum as id@host:port entries."),
    entry("controller.quota.window.num", Some("11"), Int, ReadOnly, "Controller setting: controller quota window num."),
    entry("controller.quota.window.size.seconds", Some("1"), Int, ReadOnly, "Controller setting: controller quota window size seconds."),
    entry("controller.socket.timeout.ms", Some("30000"), Int, ReadOnly, "Controller setting: controller socket timeout ms."),
    entry("create.topic.policy.class.name", None, Class, ReadOnly, "Broker setting: create topic policy class name."),
    entry("default.replication.factor", Some("1"), Int, ReadOnly, "Replication factor of a topic created without one."),
    entry("delegation.token.expiry.check.interval.ms", Some("3600000"), Long, ReadOnly, "Delegation token setting: delegation token expiry check interval ms."),
    entry("delegation.token.expiry.time.ms", Some("86400000"), Long, ReadOnly, "Delegation token setting: delegation token expiry time ms."),
    entry("delegation.token.max.lifetime.ms", Some("604800000"), Long, ReadOnly, "Delegation token setting: delegation token max lifetime ms."),
    entry("delegation.token.secret.key", None, Password, ReadOnly, "Delegation token setting: delegation token secret key."),
    entry("delete.records.purgatory.purge.interval.requests", Some("1"), Int, ReadOnly, "Broker setting: delete records purgatory purge interval requests."),
    entry("delete.topic.enable", Some("true"), Boolean, ReadOnly, "Whether DeleteTopics may delete topics."),
    entry("early.start.listeners", None, String, ReadOnly, "Broker setting: early start listeners."),
    entry("fetch.max.bytes", Some("57671680"), Int, ReadOnly, "Most bytes one fetch response carries."),
    entry("fetch.purgatory.purge.interval.requests", Some("1000"), Int, ReadOnly, "Broker setting: fetch purgatory purge interval requests."),
    entry("group.consumer.assignors", Some("uniform,range"), List, ReadOnly, "Consumer group (KIP-848) setting: group consumer assignors."),
    entry("group.consumer.heartbeat.interval.ms", Some("5000"), Int, ReadOnly, "Consumer group (KIP-848) setting: group consumer heartbeat interval ms."),
    entry("group.consumer.max.heartbeat.interval.ms", Some("15000"), Int, ReadOnly, "Consumer group (KIP-848) setting: group consumer max heartbeat interval ms."),
    entry("group.consumer.max.session.timeout.ms", Some("60000"), Int, ReadOnly, "Consumer group (KIP-848) setting: group consumer max session timeout ms."),
    entry("group.consumer.max.size", Some("2147483647"), Int, ReadOnly, "Consumer group (KIP-848) setting: group consumer max size."),
    entry("group.consumer.min.heartbeat.interval.ms", Some("5000"), Int, ReadOnly, "Consumer group (KIP-848) setting: group consumer min heartbeat interval ms."),
    entry("group.consumer.min.session.timeout.ms", Some("45000"), Int, ReadOnly, "Consumer group (KIP-848) setting: group consumer min session timeout ms."),
    entry("group.consumer.session.timeout.ms", Some("45000"), Int, ReadOnly, "Consumer group (KIP-848) setting: group consumer session timeout ms."),
    entry("group.coordinator.append.linger.ms", Some("10"), Int, ReadOnly, "Group coordinator setting: group coordinator append linger ms."),
    entry("group.coordinator.rebalance.protocols", Some("classic,consumer,streams"), List, ReadOnly, "Group coordinator setting: group coordinator rebalance protocols."),
    entry("group.coordinator.threads", Some("1"), Int, ReadOnly, "Group coordinator setting: group coordinator threads."),
    entry("group.initial.rebalance.delay.ms", Some("3000"), Int, ReadOnly, "Wait for more members before a new classic group's first rebalance."),
    entry("group.max.session.timeout.ms", Some("1800000"), Int, ReadOnly, "Largest session timeout a classic group member may ask for."),
    entry("group.max.size", Some("2147483647"), Int, ReadOnly, "Most members of one classic group."),
    entry("group.min.session.timeout.ms", Some("6000"), Int, ReadOnly, "Smallest session timeout a classic group member may ask for."),
    entry("group.share.assignors", Some("simple"), List, ReadOnly, "Share group setting: group share assignors."),
    entry("group.share.delivery.count.limit", Some("5"), Int, ReadOnly, "Share group setting: group share delivery count limit."),
    entry("group.share.heartbeat.interval.ms", Some("5000"), Int, ReadOnly, "Share group setting: group share heartbeat interval ms."),
    entry("group.share.max.groups", Some("10"), Short, ReadOnly, "Share group setting: group share max groups."),
    entry("group.share.max.heartbeat.interval.ms", Some("15000"), Int, ReadOnly, "Share group setting: group share max heartbeat interval ms."),
    entry("group.share.max.record.lock.duration.ms", Some("60000"), Int, ReadOnly, "Share group setting: group share max record lock duration ms."),
    entry("group.share.max.session.timeout.ms", Some("60000"), Int, ReadOnly, "Share group setting: group share max session timeout ms."),
    entry("group.share.max.share.sessions", Some("2000"), Int, ReadOnly, "Share group setting: group share max share sessions."),
    entry("group.share.max.size", Some("200"), Int, ReadOnly, "Share group setting: group share max size."),
    entry("group.share.min.heartbeat.interval.ms", Some("5000"), Int, ReadOnly, "Share group setting: group share min heartbeat interval ms."),
    entry("group.share.min.record.lock.duration.ms", Some("15000"), Int, ReadOnly, "Share group setting: group share min record lock duration ms."),
    entry("group.share.min.session.timeout.ms", Some("45000"), Int, ReadOnly, "Share group setting: group share min session timeout ms."),
    entry("group.share.partition.max.record.locks", Some("2000"), Int, ReadOnly, "Share group setting: group share partition max record locks."),
    entry("group.share.persister.class.name", Some("org.apache.kafka.server.share.persister.DefaultStatePersister"), String, ReadOnly, "Share group setting: group share persister class name."),
    entry("group.share.record.lock.duration.ms", Some("30000"), Int, ReadOnly, "Share group setting: group share record lock duration ms."),
    entry("group.share.session.timeout.ms", Some("45000"), Int, ReadOnly, "Share group setting: group share session timeout ms."),
    entry("group.streams.heartbeat.interval.ms", Some("5000"), Int, ReadOnly, "Streams group setting: group streams heartbeat interval ms."),
    entry("group.streams.max.heartbeat.interval.ms", Some("15000"), Int, ReadOnly, "Streams group setting: group streams max heartbeat interval ms."),
    entry("group.streams.max.session.timeout.ms", Some("60000"), Int, ReadOnly, "Streams group setting: group streams max session timeout ms."),
    entry("group.streams.max.size", Some("2147483647"), Int, ReadOnly, "Streams group setting: group streams max size."),
    entry("group.streams.max.standby.replicas", Some("2"), Int, ReadOnly, "Streams group setting: group streams max standby replicas."),
    entry("group.streams.min.heartbeat.interval.ms", Some("5000"), Int, ReadOnly, "Streams group setting: group streams min heartbeat interval ms."),
    entry("group.streams.min.session.timeout.ms", Some("45000"), Int, ReadOnly, "Streams group setting: group streams min session timeout ms."),
    entry("group.streams.num.standby.replicas", Some("0"), Int, ReadOnly, "Streams group setting: group streams num standby replicas."),
    entry("group.streams.session.timeout.ms", Some("45000"), Int, ReadOnly, "Streams group setting: group streams session timeout ms."),
    entry("initial.broker.registration.timeout.ms", Some("60000"), Int, ReadOnly, "Broker setting: initial broker registration timeout ms."),
    entry("inter.broker.listener.name", None, String, ReadOnly, "Broker setting: inter broker listener name."),
    entry("kafka.metrics.polling.interval.secs", Some("10"), Int, ReadOnly, "Metrics setting: kafka metrics polling interval secs."),
    entry("kafka.metrics.reporters", Some(""), List, ReadOnly, "Metrics setting: kafka metrics reporters."),
    entry("leader.imbalance.check.interval.seconds", Some("300"), Long, ReadOnly, "Leader balancing setting: leader imbalance check interval seconds."),
    entry("leader.imbalance.per.broker.percentage", Some("10"), Int, ReadOnly, "Leader balancing setting: leader imbalance per broker percentage."),
    entry("listener.security.protocol.map", Some("SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"), String, PerBroker, "Which security protocol each named listener speaks."),
    entry("listeners", Some("PLAINTEXT://:9092"), String, PerBroker, "The NAME://host:port endpoints the node binds."),
    entry("log.cleaner.backoff.ms", Some("15000"), Long, ClusterWide, "Pause of the cleaner when no log needs cleaning."),
    entry("log.cleaner.dedupe.buffer.size", Some("134217728"), Long, ClusterWide, "Memory all cleaner threads share for deduplication."),
    entry("log.cleaner.delete.retention.ms", Some("86400000"), Long, ClusterWide, "How long tombstones stay in compacted logs."),
    entry("log.cleaner.enable", Some("true"), Boolean, ReadOnly, "Whether the log cleaner runs, compacting topics that ask for it."),
    entry("log.cleaner.io.buffer.load.factor", Some("0.9"), Double, ClusterWide, "How full the cleaner's dedupe map may become."),
    entry("log.cleaner.io.buffer.size", Some("524288"), Int, ClusterWide, "I/O buffer memory of all cleaner threads."),
    entry("log.cleaner.io.max.bytes.per.second", Some("1.7976931348623157E308"), Double, ClusterWide, "I/O rate limit of the cleaner."),
    entry("log.cleaner.max.compaction.lag.ms", Some("9223372036854775807"), Long, ClusterWide, "Most time a record may stay uncompacted."),
    entry("log.cleaner.min.cleanable.ratio", Some("0.5"), Double, ClusterWide, "Dirty share of a log at which it is compacted."),
    entry("log.cleaner.min.compaction.lag.ms", Some("0"), Long, ClusterWide, "Least time a record stays uncompacted."),
    entry("log.cleaner.threads", Some("1"), Int, ClusterWide, "Threads that compact logs."),
    entry("log.cleanup.policy", Some("delete"), List, ClusterWide, "Default retention policy of topics: delete, compact or both."),
    entry("log.dir", Some("/tmp/kafka-logs"), String, ReadOnly, "Directory for partition logs when log.dirs is not set."),
    entry("log.dir.failure.timeout.ms", Some("30000"), Long, ReadOnly, "How long a failed log directory may go unreported before the broker stops."),
    entry("log.dirs", None, String, ReadOnly, "Directories that hold partition logs."),
    entry("log.flush.interval.messages", Some("9223372036854775807"), Long, ClusterWide, "Messages appended to a partition before it is fsynced."),
    entry("log.flush.interval.ms", None, Long, ClusterWide, "Longest time data sits unflushed in a partition."),
    entry("log.flush.offset.checkpoint.interval.ms", Some("60000"), Int, ReadOnly, "How often the recovery point checkpoint is written."),
    entry("log.flush.scheduler.interval.ms", Some("9223372036854775807"), Long, ReadOnly, "How often the flusher checks whether logs need a flush."),
    entry("log.flush.start.offset.checkpoint.interval.ms", Some("60000"), Int, ReadOnly, "How often the log start offset checkpoint is written."),
    entry("log.index.interval.bytes", Some("4096"), Int, ClusterWide, "Log bytes between two offset index entries."),
    entry("log.index.size.max.bytes", Some("10485760"), Int, ClusterWide, "Largest size of a segment's offset or time index."),
    entry("log.initial.task.delay.ms", Some("30000"), Long, ReadOnly, "Delay before the log manager's periodic tasks first run."),
    entry("log.local.retention.bytes", Some("-2"), Long, ClusterWide, "Local retention of tiered topics, in bytes; -2 follows log.retention.bytes."),
    entry("log.local.retention.ms", Some("-2"), Long, ClusterWide, "Local retention of tiered topics, in milliseconds; -2 follows log.retention.ms."),
    entry("log.message.timestamp.after.max.ms", Some("9223372036854775807"), Long, ClusterWide, "How far in the future a CreateTime timestamp may lie."),
    entry("log.message.timestamp.before.max.ms", Some("9223372036854775807"), Long, ClusterWide, "How far in the past a CreateTime timestamp may lie."),
    entry("log.message.timestamp.type", Some("CreateTime"), String, ClusterWide, "Whether record timestamps are the producer's (CreateTime) or the broker's (LogAppendTime)."),
    entry("log.preallocate", Some("false"), Boolean, ClusterWide, "Whether new segment files are preallocated."),
    entry("log.retention.bytes", Some("-1"), Long, ClusterWide, "Size a partition log may reach before old segments go; -1 means no limit."),
    entry("log.retention.check.interval.ms", Some("300000"), Long, ReadOnly, "How often the retention policy is checked."),
    entry("log.retention.hours", Some("168"), Int, ReadOnly, "How long log segments are kept, in hours."),
    entry("log.retention.minutes", None, Int, ReadOnly, "How long log segments are kept, in minutes (log.retention.ms wins)."),
    entry("log.retention.ms", None, Long, ClusterWide, "How long log segments are kept, in milliseconds."),
    entry("log.roll.hours", Some("168"), Int, ReadOnly, "Age at which a log segment is rolled, in hours (log.roll.ms wins)."),
    entry("log.roll.jitter.hours", Some("0"), Int, ReadOnly, "Random reduction of the roll time, in hours."),
    entry("log.roll.jitter.ms", None, Long, ClusterWide, "Random reduction of the roll time, in milliseconds."),
    entry("log.roll.ms", None, Long, ClusterWide, "Age at which a log segment is rolled, in milliseconds."),
    entry("log.segment.bytes", Some("1073741824"), Int, ClusterWide, "Size at which a log segment is rolled."),
    entry("log.segment.delete.delay.ms", Some("60000"), Long, ClusterWide, "How long a deleted segment's files wait before removal."),
    entry("max.connection.creation.rate", Some("2147483647"), Int, ClusterWide, "Most new connections per second."),
    entry("max.connections", Some("2147483647"), Int, ClusterWide, "Most connections the broker accepts at a time."),
    entry("max.connections.per.ip", Some("2147483647"), Int, ClusterWide, "Most connections from one address."),
    entry("max.connections.per.ip.overrides", Some(""), String, ClusterWide, "Per-address exceptions to max.connections.per.ip, as host:count pairs."),
    entry("max.incremental.fetch.session.cache.slots", Some("1000"), Int, ReadOnly, "Broker setting: max incremental fetch session cache slots."),
    entry("max.request.partition.size.limit", Some("2000"), Int, ReadOnly, "Broker setting: max request partition size limit."),
    entry("message.max.bytes", Some("1048588"), Int, ClusterWide, "Largest record batch a topic accepts unless the topic overrides max.message.bytes."),
    entry("metadata.log.dir", None, String, ReadOnly, "Metadata log setting: metadata log dir."),
    entry("metadata.log.max.record.bytes.between.snapshots", Some("20971520"), Long, ReadOnly, "Metadata log bytes between two snapshots."),
    entry("metadata.log.max.snapshot.interval.ms", Some("3600000"), Long, ReadOnly, "Longest time between metadata snapshots."),
    entry("metadata.log.segment.bytes", Some("1073741824"), Int, ReadOnly, "Metadata log setting: metadata log segment bytes."),
    entry("metadata.log.segment.ms", Some("604800000"), Long, ReadOnly, "Metadata log setting: metadata log segment ms."),
    entry("metadata.max.idle.interval.ms", Some("500"), Int, ReadOnly, "Metadata log setting: metadata max idle interval ms."),
    entry("metadata.max.retention.bytes", Some("104857600"), Long, ReadOnly, "Metadata log setting: metadata max retention bytes."),
    entry("metadata.max.retention.ms", Some("604800000"), Long, ReadOnly, "Metadata log setting: metadata max retention ms."),
    entry("metric.reporters", Some("org.apache.kafka.common.metrics.JmxReporter"), List, ClusterWide, "Metrics setting: metric reporters."),
    entry("metrics.num.samples", Some("2"), Int, ReadOnly, "Metrics setting: metrics num samples."),
    entry("metrics.recording.level", Some("INFO"), String, ReadOnly, "Metrics setting: metrics recording level."),
    entry("metrics.sample.window.ms", Some("30000"), Long, ReadOnly, "Metrics setting: metrics sample window ms."),
    entry("min.insync.replicas", Some("1"), Int, ClusterWide, "Fewest in-sync replicas an acks=all produce needs."),
    entry("node.id", Some("-1"), Int, ReadOnly, "This node's id in the cluster and the quorum."),
    entry("num.io.threads", Some("8"), Int, ClusterWide, "Threads that execute requests, disk I/O included."),
    entry("num.network.threads", Some("3"), Int, ClusterWide, "Threads that read requests from and write responses to sockets."),
    entry("num.partitions", Some("1"), Int, ReadOnly, "Partition count of a topic created without one."),
    entry("num.recovery.threads.per.data.dir", Some("1"), Int, ClusterWide, "Threads per log directory that recover logs at startup and flush them at shutdown."),
    entry("num.replica.alter.log.dirs.threads", None, Int, ReadOnly, "Broker setting: num replica alter log dirs threads."),
    entry("num.replica.fetchers", Some("1"), Int, ClusterWide, "Fetcher threads per source broker for follower replication."),
    entry("offset.metadata.max.bytes", Some("4096"), Int, ReadOnly, "Largest metadata string an offset commit may carry."),
    entry("offsets.commit.timeout.ms", Some("5000"), Int, ReadOnly, "Offsets topic setting: offsets commit timeout ms."),
    entry("offsets.load.buffer.size", Some("5242880"), Int, ReadOnly, "Offsets topic setting: offsets load buffer size."),
    entry("offsets.retention.check.interval.ms", Some("600000"), Long, ReadOnly, "How often stale offsets are looked for."),
    entry("offsets.retention.minutes", Some("10080"), Int, ReadOnly, "How long committed offsets of an empty group are kept."),
    entry("offsets.topic.compression.codec", Some("0"), Int, ReadOnly, "Offsets topic setting: offsets topic compression codec."),
    entry("offsets.topic.num.partitions", Some("50"), Int, ReadOnly, "Partitions of the offsets topic."),
    entry("offsets.topic.replication.factor", Some("3"), Short, ReadOnly, "Replication factor of the offsets topic."),
    entry("offsets.topic.segment.bytes", Some("104857600"), Int, ReadOnly, "Segment size of the offsets topic."),
    entry("password.encoder.cipher.algorithm", Some("AES/CBC/PKCS5Padding"), String, ReadOnly, "Password encoding setting: password encoder cipher algorithm."),
    entry("password.encoder.iterations", Some("4096"), Int, ReadOnly, "Password encoding setting: password encoder iterations."),
    entry("password.encoder.key.length", Some("128"), Int, ReadOnly, "Password encoding setting: password encoder key length."),
    entry("password.encoder.keyfactory.algorithm", None, String, ReadOnly, "Password encoding setting: password encoder keyfactory algorithm."),
    entry("password.encoder.old.secret", None, Password, ReadOnly, "Password encoding setting: password encoder old secret."),
    entry("password.encoder.secret", None, Password, ReadOnly, "Password encoding setting: password encoder secret."),
    entry("principal.builder.class", Some("org.apache.kafka.common.security.authenticator.DefaultKafkaPrincipalBuilder"), Class, PerBroker, "Broker setting: principal builder class."),
    entry("process.roles", Some(""), List, ReadOnly, "Roles this node plays: broker, controller or both."),
    entry("producer.id.expiration.check.interval.ms", Some("600000"), Int, ReadOnly, "How often idle producer ids are looked for."),
    entry("producer.id.expiration.ms", Some("86400000"), Int, ClusterWide, "How long an idle producer id is remembered."),
    entry("producer.purgatory.purge.interval.requests", Some("1000"), Int, ReadOnly, "Broker setting: producer purgatory purge interval requests."),
    entry("queued.max.request.bytes", Some("-1"), Long, ReadOnly, "Bytes of queued requests before reading stops; -1 means no limit."),
    entry("queued.max.requests", Some("500"), Int, ReadOnly, "Requests queued before the network threads stop reading."),
    entry("quota.window.num", Some("11"), Int, ReadOnly, "Client quota setting: quota window num."),
    entry("quota.window.size.seconds", Some("1"), Int, ReadOnly, "Client quota setting: quota window size seconds."),
    entry("remote.fetch.max.wait.ms", Some("500"), Int, ClusterWide, "Tiered storage setting: remote fetch max wait ms."),
    entry("remote.list.offsets.request.timeout.ms", Some("30000"), Long, ClusterWide, "Tiered storage setting: remote list offsets request timeout ms."),
    entry("remote.log.index.file.cache.total.size.bytes", Some("1073741824"), Long, ClusterWide, "Tiered storage setting: remote log index file cache total size bytes."),
    entry("remote.log.manager.copier.thread.pool.size", Some("10"), Int, ReadOnly, "Tiered storage setting: remote log manager copier thread pool size."),
    entry("remote.log.manager.copy.max.bytes.per.second", Some("9223372036854775807"), Long, ClusterWide, "Tiered storage setting: remote log manager copy max bytes per second."),
    entry("remote.log.manager.copy.quota.window.num", Some("11"), Int, ReadOnly, "Tiered storage setting: remote log manager copy quota window num."),
    entry("remote.log.manager.copy.quota.window.size.seconds", Some("1"), Int, ReadOnly, "Tiered storage setting: remote log manager copy quota window size seconds."),
    entry("remote.log.manager.expiration.thread.pool.size", Some("10"), Int, ReadOnly, "Tiered storage setting: remote log manager expiration thread pool size."),
    entry("remote.log.manager.fetch.max.bytes.per.second", Some("9223372036854775807"), Long, ClusterWide, "Tiered storage setting: remote log manager fetch max bytes per second."),
    entry("remote.log.manager.fetch.quota.window.num", Some("11"), Int, ReadOnly, "Tiered storage setting: remote log manager fetch quota window num."),
    entry("remote.log.manager.fetch.quota.window.size.seconds", Some("1"), Int, ReadOnly, "Tiered storage setting: remote log manager fetch quota window size seconds."),
    entry("remote.log.manager.follower.thread.pool.size", Some("2"), Int, ReadOnly, "Tiered storage setting: remote log manager follower thread pool size."),
    entry("remote.log.manager.task.interval.ms", Some("30000"), Long, ReadOnly, "Tiered storage setting: remote log manager task interval ms."),
    entry("remote.log.manager.thread.pool.size", Some("2"), Int, ReadOnly, "Tiered storage setting: remote log manager thread pool size."),
    entry("remote.log.metadata.custom.metadata.max.bytes", Some("128"), Int, ReadOnly, "Tiered storage setting: remote log metadata custom metadata max bytes."),
    entry("remote.log.metadata.manager.class.name", Some("org.apache.kafka.server.log.remote.metadata.storage.TopicBasedRemoteLogMetadataManager"), String, ReadOnly, "Tiered storage setting: remote log metadata manager class name."),
    entry("remote.log.metadata.manager.class.path", None, String, ReadOnly, "Tiered storage setting: remote log metadata manager class path."),
    entry("remote.log.metadata.manager.impl.prefix", Some("rlmm.config."), String, ReadOnly, "Tiered storage setting: remote log metadata manager impl prefix."),
    entry("remote.log.metadata.manager.listener.name", None, String, ReadOnly, "Tiered storage setting: remote log metadata manager listener name."),
    entry("remote.log.reader.max.pending.tasks", Some("100"), Int, ReadOnly, "Tiered storage setting: remote log reader max pending tasks."),
    entry("remote.log.reader.threads", Some("10"), Int, ReadOnly, "Tiered storage setting: remote log reader threads."),
    entry("remote.log.storage.manager.class.name", None, String, ReadOnly, "Tiered storage setting: remote log storage manager class name."),
    entry("remote.log.storage.manager.class.path", None, String, ReadOnly, "Tiered storage setting: remote log storage manager class path."),
    entry("remote.log.storage.manager.impl.prefix", Some("rsm.config."), String, ReadOnly, "Tiered storage setting: remote log storage manager impl prefix."),
    entry("remote.log.storage.system.enable", Some("false"), Boolean, ReadOnly, "Tiered storage setting: remote log storage system enable."),
    entry("replica.fetch.backoff.ms", Some("1000"), Int, ReadOnly, "Follower replication setting: replica fetch backoff ms."),
    entry("replica.fetch.max.bytes", Some("1048576"), Int, ReadOnly, "Follower replication setting: replica fetch max bytes."),
    entry("replica.fetch.min.bytes", Some("1"), Int, ReadOnly, "Follower replication setting: replica fetch min bytes."),
    entry("replica.fetch.response.max.bytes", Some("10485760"), Int, ReadOnly, "Follower replication setting: replica fetch response max bytes."),
    entry("replica.fetch.wait.max.ms", Some("500"), Int, ReadOnly, "Follower replication setting: replica fetch wait max ms."),
    entry("replica.high.watermark.checkpoint.interval.ms", Some("5000"), Long, ReadOnly, "Follower replication setting: replica high watermark checkpoint interval ms."),
    entry("replica.lag.time.max.ms", Some("30000"), Long, ReadOnly, "Follower replication setting: replica lag time max ms."),
    entry("replica.selector.class", None, String, ReadOnly, "Follower replication setting: replica selector class."),
    entry("replica.socket.receive.buffer.bytes", Some("65536"), Int, ReadOnly, "Follower replication setting: replica socket receive buffer bytes."),
    entry("replica.socket.timeout.ms", Some("30000"), Int, ReadOnly, "Follower replication setting: replica socket timeout ms."),
    entry("replication.quota.window.num", Some("11"), Int, ReadOnly, "Replication quota setting: replication quota window num."),
    entry("replication.quota.window.size.seconds", Some("1"), Int, ReadOnly, "Replication quota setting: replication quota window size seconds."),
    entry("request.timeout.ms", Some("30000"), Int, ReadOnly, "How long the node waits for a response to its own requests."),
    entry("sasl.client.callback.handler.class", None, Class, ReadOnly, "SASL setting: sasl client callback handler class."),
    entry("sasl.enabled.mechanisms", Some("GSSAPI"), List, PerBroker, "SASL setting: sasl enabled mechanisms."),
    entry("sasl.jaas.config", None, Password, PerBroker, "SASL setting: sasl jaas config."),
    entry("sasl.kerberos.kinit.cmd", Some("/usr/bin/kinit"), String, PerBroker, "Kerberos setting: sasl kerberos kinit cmd."),
    entry("sasl.kerberos.min.time.before.relogin", Some("60000"), Long, PerBroker, "Least time between two Kerberos relogins."),
    entry("sasl.kerberos.principal.to.local.rules", Some("DEFAULT"), List, PerBroker, "Kerberos setting: sasl kerberos principal to local rules."),
    entry("sasl.kerberos.service.name", None, String, PerBroker, "Kerberos setting: sasl kerberos service name."),
    entry("sasl.kerberos.ticket.renew.jitter", Some("0.05"), Double, PerBroker, "Kerberos setting: sasl kerberos ticket renew jitter."),
    entry("sasl.kerberos.ticket.renew.window.factor", Some("0.8"), Double, PerBroker, "Kerberos setting: sasl kerberos ticket renew window factor."),
    entry("sasl.login.callback.handler.class", None, Class, ReadOnly, "SASL login setting: sasl login callback handler class."),
    entry("sasl.login.class", None, Class, ReadOnly, "SASL login setting: sasl login class."),
    entry("sasl.login.connect.timeout.ms", None, Int, ReadOnly, "SASL login setting: sasl login connect timeout ms."),
    entry("sasl.login.read.timeout.ms", None, Int, ReadOnly, "SASL login setting: sasl login read timeout ms."),
    entry("sasl.login.refresh.buffer.seconds", Some("300"), Short, PerBroker, "SASL login setting: sasl login refresh buffer seconds."),
    entry("sasl.login.refresh.min.period.seconds", Some("60"), Short, PerBroker, "SASL login setting: sasl login refresh min period seconds."),
    entry("sasl.login.refresh.window.factor", Some("0.8"), Double, PerBroker, "SASL login setting: sasl login refresh window factor."),
    entry("sasl.login.refresh.window.jitter", Some("0.05"), Double, PerBroker, "SASL login setting: sasl login refresh window jitter."),
    entry("sasl.login.retry.backoff.max.ms", Some("10000"), Long, ReadOnly, "SASL login setting: sasl login retry backoff max ms."),
    entry("sasl.login.retry.backoff.ms", Some("100"), Long, ReadOnly, "SASL login setting: sasl login retry backoff ms."),
    entry("sasl.mechanism.controller.protocol", Some("GSSAPI"), String, ReadOnly, "SASL setting: sasl mechanism controller protocol."),
    entry("sasl.mechanism.inter.broker.protocol", Some("GSSAPI"), String, PerBroker, "SASL setting: sasl mechanism inter broker protocol."),
    entry("sasl.oauthbearer.clock.skew.seconds", Some("30"), Int, ReadOnly, "OAUTHBEARER setting: sasl oauthbearer clock skew seconds."),
    entry("sasl.oauthbearer.expected.audience", None, List, ReadOnly, "OAUTHBEARER setting: sasl oauthbearer expected audience."),
    entry("sasl.oauthbearer.expected.issuer", None, String, ReadOnly, "OAUTHBEARER setting: sasl oauthbearer expected issuer."),
    entry("sasl.oauthbearer.jwks.endpoint.refresh.ms", Some("3600000"), Long, ReadOnly, "OAUTHBEARER setting: sasl oauthbearer jwks endpoint refresh ms."),
    entry("sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", Some("10000"), Long, ReadOnly, "OAUTHBEARER setting: sasl oauthbearer jwks endpoint retry backoff max ms."),
    entry("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", Some("100"), Long, ReadOnly, "OAUTHBEARER setting: sasl oauthbearer jwks endpoint retry backoff ms."),
    entry("sasl.oauthbearer.jwks.endpoint.url", None, String, ReadOnly, "OAUTHBEARER setting: sasl oauthbearer jwks endpoint url."),
    entry("sasl.oauthbearer.scope.claim.name", Some("scope"), String, ReadOnly, "OAUTHBEARER setting: sasl oauthbearer scope claim name."),
    entry("sasl.oauthbearer.sub.claim.name", Some("sub"), String, ReadOnly, "OAUTHBEARER setting: sasl oauthbearer sub claim name."),
    entry("sasl.oauthbearer.token.endpoint.url", None, String, ReadOnly, "OAUTHBEARER setting: sasl oauthbearer token endpoint url."),
    entry("sasl.server.callback.handler.class", None, Class, ReadOnly, "SASL setting: sasl server callback handler class."),
    entry("sasl.server.max.receive.size", Some("524288"), Int, ReadOnly, "SASL setting: sasl server max receive size."),
    entry("security.inter.broker.protocol", Some("PLAINTEXT"), String, ReadOnly, "Broker setting: security inter broker protocol."),
    entry("security.providers", None, String, ReadOnly, "Broker setting: security providers."),
    entry("share.coordinator.append.linger.ms", Some("10"), Int, ReadOnly, "Share coordinator setting: share coordinator append linger ms."),
    entry("share.coordinator.cold.partition.snapshot.interval.ms", Some("300000"), Int, ReadOnly, "Share coordinator setting: share coordinator cold partition snapshot interval ms."),
    entry("share.coordinator.load.buffer.size", Some("5242880"), Int, ReadOnly, "Share coordinator setting: share coordinator load buffer size."),
    entry("share.coordinator.snapshot.update.records.per.snapshot", Some("500"), Int, ReadOnly, "Share coordinator setting: share coordinator snapshot update records per snapshot."),
    entry("share.coordinator.state.topic.compression.codec", Some("0"), Int, ReadOnly, "Share coordinator setting: share coordinator state topic compression codec."),
    entry("share.coordinator.state.topic.min.isr", Some("2"), Short, ReadOnly, "Share coordinator setting: share coordinator state topic min isr."),
    entry("share.coordinator.state.topic.num.partitions", Some("50"), Int, ReadOnly, "Share coordinator setting: share coordinator state topic num partitions."),
    entry("share.coordinator.state.topic.prune.interval.ms", Some("300000"), Int, ReadOnly, "Share coordinator setting: share coordinator state topic prune interval ms."),
    entry("share.coordinator.state.topic.replication.factor", Some("3"), Short, ReadOnly, "Share coordinator setting: share coordinator state topic replication factor."),
    entry("share.coordinator.state.topic.segment.bytes", Some("104857600"), Int, ReadOnly, "Share coordinator setting: share coordinator state topic segment bytes."),
    entry("share.coordinator.threads", Some("1"), Int, ReadOnly, "Share coordinator setting: share coordinator threads."),
    entry("share.coordinator.write.timeout.ms", Some("5000"), Int, ReadOnly, "Share coordinator setting: share coordinator write timeout ms."),
    entry("share.fetch.purgatory.purge.interval.requests", Some("1000"), Int, ReadOnly, "Share group setting: share fetch purgatory purge interval requests."),
    entry("socket.connection.setup.timeout.max.ms", Some("30000"), Long, ReadOnly, "Socket setting: socket connection setup timeout max ms."),
    entry("socket.connection.setup.timeout.ms", Some("10000"), Long, ReadOnly, "Socket setting: socket connection setup timeout ms."),
    entry("socket.listen.backlog.size", Some("50"), Int, ReadOnly, "Pending connection queue length of server sockets."),
    entry("socket.receive.buffer.bytes", Some("102400"), Int, ReadOnly, "SO_RCVBUF of server sockets; -1 uses the OS default."),
    entry("socket.request.max.bytes", Some("104857600"), Int, ReadOnly, "Largest request the server reads."),
    entry("socket.send.buffer.bytes", Some("102400"), Int, ReadOnly, "SO_SNDBUF of server sockets; -1 uses the OS default."),
    entry("ssl.allow.dn.changes", Some("false"), Boolean, ReadOnly, "TLS setting of the listeners: ssl allow dn changes."),
    entry("ssl.allow.san.changes", Some("false"), Boolean, ReadOnly, "TLS setting of the listeners: ssl allow san changes."),
    entry("ssl.cipher.suites", Some(""), List, PerBroker, "TLS setting of the listeners: ssl cipher suites."),
    entry("ssl.client.auth", Some("none"), String, PerBroker, "TLS setting of the listeners: ssl client auth."),
    entry("ssl.enabled.protocols", Some("TLSv1.2,TLSv1.3"), List, PerBroker, "TLS setting of the listeners: ssl enabled protocols."),
    entry("ssl.endpoint.identification.algorithm", Some("https"), String, PerBroker, "TLS setting of the listeners: ssl endpoint identification algorithm."),
    entry("ssl.engine.factory.class", None, Class, PerBroker, "TLS setting of the listeners: ssl engine factory class."),
    entry("ssl.key.password", None, Password, PerBroker, "Password of the private key."),
    entry("ssl.keymanager.algorithm", Some("SunX509"), String, PerBroker, "TLS setting of the listeners: ssl keymanager algorithm."),
    entry("ssl.keystore.certificate.chain", None, Password, PerBroker, "TLS setting of the listeners: ssl keystore certificate chain."),
    entry("ssl.keystore.key", None, Password, PerBroker, "TLS setting of the listeners: ssl keystore key."),
    entry("ssl.keystore.location", None, String, PerBroker, "TLS setting of the listeners: ssl keystore location."),
    entry("ssl.keystore.password", None, Password, PerBroker, "Password of the keystore file."),
    entry("ssl.keystore.type", Some("JKS"), String, PerBroker, "TLS setting of the listeners: ssl keystore type."),
    entry("ssl.principal.mapping.rules", Some("DEFAULT"), String, ReadOnly, "TLS setting of the listeners: ssl principal mapping rules."),
    entry("ssl.protocol", Some("TLSv1.3"), String, PerBroker, "TLS setting of the listeners: ssl protocol."),
    entry("ssl.provider", None, String, PerBroker, "TLS setting of the listeners: ssl provider."),
    entry("ssl.secure.random.implementation", None, String, PerBroker, "TLS setting of the listeners: ssl secure random implementation."),
    entry("ssl.trustmanager.algorithm", Some("PKIX"), String, PerBroker, "TLS setting of the listeners: ssl trustmanager algorithm."),
    entry("ssl.truststore.certificates", None, Password, PerBroker, "TLS setting of the listeners: ssl truststore certificates."),
    entry("ssl.truststore.location", None, String, PerBroker, "TLS setting of the listeners: ssl truststore location."),
    entry("ssl.truststore.password", None, Password, PerBroker, "Password of the truststore file."),
    entry("ssl.truststore.type", Some("JKS"), String, PerBroker, "TLS setting of the listeners: ssl truststore type."),
    entry("telemetry.max.bytes", Some("1048576"), Int, ReadOnly, "Broker setting: telemetry max bytes."),
    entry("transaction.abort.timed.out.transaction.cleanup.interval.ms", Some("10000"), Int, ReadOnly, "Transaction coordinator setting: transaction abort timed out transaction cleanup interval ms."),
    entry("transaction.max.timeout.ms", Some("900000"), Int, ReadOnly, "Largest transaction timeout a producer may ask for."),
    entry("transaction.partition.verification.enable", Some("true"), Boolean, ClusterWide, "Transaction coordinator setting: transaction partition verification enable."),
    entry("transaction.remove.expired.transaction.cleanup.interval.ms", Some("3600000"), Int, ReadOnly, "Transaction coordinator setting: transaction remove expired transaction cleanup interval ms."),
    entry("transaction.state.log.load.buffer.size", Some("5242880"), Int, ReadOnly, "Transaction coordinator setting: transaction state log load buffer size."),
    entry("transaction.state.log.min.isr", Some("2"), Int, ReadOnly, "Transaction coordinator setting: transaction state log min isr."),
    entry("transaction.state.log.num.partitions", Some("50"), Int, ReadOnly, "Transaction coordinator setting: transaction state log num partitions."),
    entry("transaction.state.log.replication.factor", Some("3"), Short, ReadOnly, "Transaction coordinator setting: transaction state log replication factor."),
    entry("transaction.state.log.segment.bytes", Some("104857600"), Int, ReadOnly, "Transaction coordinator setting: transaction state log segment bytes."),
    entry("transactional.id.expiration.ms", Some("604800000"), Int, ReadOnly, "Transaction coordinator setting: transactional id expiration ms."),
    entry("unclean.leader.election.enable", Some("false"), Boolean, ClusterWide, "Whether an out-of-sync replica may become leader, losing data."),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_complete() {
        assert!(BROKER_CONFIGS.windows(2).all(|w| w[0].name < w[1].name));
        assert!(BROKER_CONFIGS.len() > 250);
        let relogin = lookup("sasl.kerberos.min.time.before.relogin").expect("catalogued");
        assert_eq!(relogin.default, Some("60000"));
        assert_eq!(relogin.mode, UpdateMode::PerBroker);
        assert_eq!(
            lookup("background.threads").map(|e| e.mode),
            Some(UpdateMode::ClusterWide)
        );
        assert!(lookup("ssl.keystore.password").is_some_and(CatalogEntry::is_sensitive));
        assert!(lookup("no.such.key").is_none());
    }
}
