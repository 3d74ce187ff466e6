//! How a broker belongs to its cluster: the cluster id, and its lifecycle towards the active controller
//! (registration, heartbeats, session), with Kafka's names and defaults.

use ferrite_raft::QuorumTimeouts;

use super::broker::{parse_bool, parse_num};
use super::ConfigError;

/// What the broker's lifecycle manager and the controller's session tracking are configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `cluster.id`, Ferrite's own key: the cluster this node formats its log directory for on first start, for
    /// set-ups that cannot run `ferrite format` first (compose files). Kafka keeps the id only in meta.properties.
    pub cluster_id: Option<String>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
    /// `broker.session.timeout.ms`: the controller fences a broker it has not heard from for this long.
    pub session_timeout_ms: u64,
    /// `initial.broker.registration.timeout.ms`: how long a starting broker tries to register before giving up.
    pub initial_registration_timeout_ms: u64,
    /// `controller.quorum.{election,fetch,request}.timeout.ms` and `.retry.backoff.ms`.
    pub quorum: QuorumTimeouts,
    /// `auto.leader.rebalance.enable`: the active controller moves leadership back to preferred replicas.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`: how often it looks.
    pub leader_imbalance_check_interval_seconds: u64,
}

impl ClusterConfig {
    pub(super) fn parse<'a>(get: &impl Fn(&str) -> &'a str) -> Result<Self, ConfigError> {
        let int = i64::from(i32::MAX);
        let optional = |key: &str| Some(get(key).trim().to_string()).filter(|v| !v.is_empty());
        let cluster_id = optional("cluster.id");
        if let Some(id) = &cluster_id {
            if !is_cluster_id(id) {
                return Err(ConfigError::Invalid {
                    key: "cluster.id".into(),
                    value: id.clone(),
                    reason:
                        "a cluster id is 22 characters of URL-safe base64 (ferrite format --help)"
                            .into(),
                });
            }
        }
        Ok(ClusterConfig {
            cluster_id,
            rack: optional("broker.rack"),
            heartbeat_interval_ms: parse_num(get, "broker.heartbeat.interval.ms", 1, int)? as u64,
            session_timeout_ms: parse_num(get, "broker.session.timeout.ms", 1, int)? as u64,
            initial_registration_timeout_ms: parse_num(
                get,
                "initial.broker.registration.timeout.ms",
                1,
                int,
            )? as u64,
            quorum: QuorumTimeouts {
                election_timeout_ms: parse_num(
                    get,
                    "controller.quorum.election.timeout.ms",
                    1,
                    int,
                )? as u64,
                fetch_timeout_ms: parse_num(get, "controller.quorum.fetch.timeout.ms", 1, int)?
                    as u64,
                request_timeout_ms: parse_num(get, "controller.quorum.request.timeout.ms", 1, int)?
                    as u64,
                retry_backoff_ms: parse_num(get, "controller.quorum.retry.backoff.ms", 1, int)?
                    as u64,
            },
            auto_leader_rebalance_enable: parse_bool(get, "auto.leader.rebalance.enable")?,
            leader_imbalance_check_interval_seconds: parse_num(
                get,
                "leader.imbalance.check.interval.seconds",
                1,
                int,
            )? as u64,
        })
    }
}

/// Kafka's cluster ids: a UUID in URL-safe base64 without padding, 22 characters.
pub fn is_cluster_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::config::BrokerConfig;

    fn config(pairs: &[(&str, &str)]) -> Result<BrokerConfig, crate::config::ConfigError> {
        let values: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BrokerConfig::from_map(&values)
    }

    const VOTERS: (&str, &str) = (
        "controller.quorum.voters",
        "1@127.0.0.1:19093,2@127.0.0.1:29093,3@127.0.0.1:39093",
    );

    #[test]
    fn roles_follow_krafts_rules() {
        // A controller-only node needs no client listener, but must vote.
        let controller = config(&[
            ("node.id", "2"),
            ("process.roles", "controller"),
            ("listeners", "CONTROLLER://127.0.0.1:29093"),
            VOTERS,
        ]);
        assert!(controller.is_ok_and(|c| c.is_controller() && !c.is_broker()));
        let not_a_voter = config(&[
            ("node.id", "7"),
            ("process.roles", "controller"),
            ("listeners", "CONTROLLER://127.0.0.1:29093"),
            VOTERS,
        ]);
        assert!(not_a_voter.is_err());
        // A broker-only node must not vote.
        let broker = config(&[("node.id", "4"), ("process.roles", "broker"), VOTERS]);
        assert!(broker.is_ok_and(|c| c.is_broker() && !c.is_controller()));
        let voting_broker = config(&[("node.id", "2"), ("process.roles", "broker"), VOTERS]);
        assert!(voting_broker.is_err());
        assert!(config(&[("process.roles", "observer")]).is_err());
    }

    #[test]
    fn a_cluster_id_must_look_like_kafkas() {
        assert!(config(&[("cluster.id", "MkU3OEVBNTcwNTJENDM2Qg")]).is_ok());
        assert!(config(&[("cluster.id", "not a cluster id")]).is_err());
    }
}
