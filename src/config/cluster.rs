//! How a broker belongs to its cluster: the cluster id, and its lifecycle towards the active controller
//! (registration, heartbeats, session), with Kafka's names and defaults.

use super::broker::parse_num;
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
