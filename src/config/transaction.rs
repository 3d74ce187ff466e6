//! The transaction coordinator's broker keys (`transaction.*`, `transactional.id.*`), Kafka's names and defaults.

use super::broker::parse_num;
use super::ConfigError;

/// What the TransactionCoordinator and its topic `__transaction_state` are configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionCoordinatorConfig {
    /// `transaction.state.log.num.partitions`.
    pub state_log_num_partitions: i32,
    /// `transaction.state.log.replication.factor`: lowered to the brokers registered, as for `__consumer_offsets`.
    pub state_log_replication_factor: i16,
    /// `transaction.state.log.segment.bytes`.
    pub state_log_segment_bytes: i64,
    /// `transaction.state.log.min.isr`: the topic's min.insync.replicas.
    pub state_log_min_isr: i32,
    /// `transaction.max.timeout.ms`: the longest transaction timeout a producer may ask for.
    pub max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how often expired transactions are looked for.
    pub abort_timed_out_cleanup_interval_ms: u64,
    /// `transactional.id.expiration.ms`.
    pub transactional_id_expiration_ms: i64,
}

impl TransactionCoordinatorConfig {
    pub(super) fn parse<'a>(get: &impl Fn(&str) -> &'a str) -> Result<Self, ConfigError> {
        let int = i64::from(i32::MAX);
        Ok(TransactionCoordinatorConfig {
            state_log_num_partitions: parse_num(
                get,
                "transaction.state.log.num.partitions",
                1,
                10_000,
            )? as i32,
            state_log_replication_factor: parse_num(
                get,
                "transaction.state.log.replication.factor",
                1,
                i64::from(i16::MAX),
            )? as i16,
            state_log_segment_bytes: parse_num(get, "transaction.state.log.segment.bytes", 1, int)?,
            state_log_min_isr: parse_num(get, "transaction.state.log.min.isr", 1, int)? as i32,
            max_timeout_ms: parse_num(get, "transaction.max.timeout.ms", 1, int)? as i32,
            abort_timed_out_cleanup_interval_ms: parse_num(
                get,
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                1,
                int,
            )? as u64,
            transactional_id_expiration_ms: parse_num(
                get,
                "transactional.id.expiration.ms",
                1,
                int,
            )?,
        })
    }
}
