//! How followers replicate from leaders, with Kafka's keys and defaults (`replica.*`, `num.replica.fetchers`).

use std::time::Duration;

use super::broker::parse_num;
use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// `num.replica.fetchers`: fetchers per source broker; a partition always goes to the same one.
    pub num_replica_fetchers: usize,
    /// `replica.fetch.wait.max.ms`: how long a follower's fetch waits at the leader for new data.
    pub fetch_wait_max_ms: u64,
    /// `replica.fetch.min.bytes`.
    pub fetch_min_bytes: i32,
    /// `replica.fetch.max.bytes`: per partition.
    pub fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`: per fetch.
    pub fetch_response_max_bytes: i32,
    /// `replica.fetch.backoff.ms`: the pause after a fetch fails.
    pub fetch_backoff_ms: u64,
    /// `replica.socket.timeout.ms`: how long a fetch waits for the leader's answer (beyond its wait).
    pub socket_timeout_ms: u64,
    /// `replica.lag.time.max.ms`: a follower that has not caught up for this long leaves the ISR.
    pub lag_time_max_ms: i64,
}

impl ReplicationConfig {
    pub(super) fn parse<'a>(get: &impl Fn(&str) -> &'a str) -> Result<Self, ConfigError> {
        let int = i64::from(i32::MAX);
        let wait = parse_num(get, "replica.fetch.wait.max.ms", 0, int)? as u64;
        let socket_timeout = parse_num(get, "replica.socket.timeout.ms", 1, int)? as u64;
        if socket_timeout < wait {
            return Err(ConfigError::Invalid {
                key: "replica.socket.timeout.ms".into(),
                value: socket_timeout.to_string(),
                reason: "must be at least replica.fetch.wait.max.ms".into(),
            });
        }
        Ok(ReplicationConfig {
            num_replica_fetchers: parse_num(get, "num.replica.fetchers", 1, 64)? as usize,
            fetch_wait_max_ms: wait,
            fetch_min_bytes: parse_num(get, "replica.fetch.min.bytes", 1, int)? as i32,
            fetch_max_bytes: parse_num(get, "replica.fetch.max.bytes", 0, int)? as i32,
            fetch_response_max_bytes: parse_num(get, "replica.fetch.response.max.bytes", 0, int)?
                as i32,
            fetch_backoff_ms: parse_num(get, "replica.fetch.backoff.ms", 0, int)? as u64,
            socket_timeout_ms: socket_timeout,
            lag_time_max_ms: parse_num(get, "replica.lag.time.max.ms", 1, i64::MAX)?,
        })
    }

    pub fn fetch_backoff(&self) -> Duration {
        Duration::from_millis(self.fetch_backoff_ms)
    }
}
