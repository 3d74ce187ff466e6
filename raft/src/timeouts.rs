//! Kafka's `controller.quorum.*` timeouts and what each becomes on openraft.
//!
//! | Kafka key (default)                         | here                                                          |
//! |---------------------------------------------|---------------------------------------------------------------|
//! | `controller.quorum.election.timeout.ms` (1000) | the shortest time a follower waits for the leader before standing for election |
//! | `controller.quorum.fetch.timeout.ms` (2000)    | the longest such wait (openraft draws each wait between the two) |
//! | `controller.quorum.request.timeout.ms` (2000)  | dialling a peer; asking the leader for its read index           |
//! | `controller.quorum.retry.backoff.ms` (20)      | the pause before asking again for a leader or the controller    |
//!
//! The leader's heartbeat is a quarter of the election timeout. `controller.quorum.election.backoff.max.ms` has no
//! counterpart: openraft's random election timeout already spreads the candidates out.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuorumTimeouts {
    pub election_timeout_ms: u64,
    pub fetch_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub retry_backoff_ms: u64,
}

impl Default for QuorumTimeouts {
    /// Kafka's defaults.
    fn default() -> QuorumTimeouts {
        QuorumTimeouts {
            election_timeout_ms: 1000,
            fetch_timeout_ms: 2000,
            request_timeout_ms: 2000,
            retry_backoff_ms: 20,
        }
    }
}

impl QuorumTimeouts {
    pub(crate) fn election_timeout_min_ms(&self) -> u64 {
        self.election_timeout_ms.max(1)
    }

    /// openraft wants a range, not a point.
    pub(crate) fn election_timeout_max_ms(&self) -> u64 {
        self.fetch_timeout_ms
            .max(self.election_timeout_min_ms() + 1)
    }

    /// Also openraft's deadline for one AppendEntries round trip, which includes the follower's fsync.
    pub(crate) fn heartbeat_interval_ms(&self) -> u64 {
        (self.election_timeout_min_ms() / 4).max(1)
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }

    pub(crate) fn retry_backoff(&self) -> Duration {
        Duration::from_millis(self.retry_backoff_ms.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_defaults_give_the_quorum_its_usual_timing() {
        let timeouts = QuorumTimeouts::default();
        assert_eq!(
            (
                timeouts.election_timeout_min_ms(),
                timeouts.election_timeout_max_ms(),
                timeouts.heartbeat_interval_ms()
            ),
            (1000, 2000, 250)
        );
        let odd = QuorumTimeouts {
            election_timeout_ms: 3000,
            fetch_timeout_ms: 1000,
            ..QuorumTimeouts::default()
        };
        assert!(odd.election_timeout_max_ms() > odd.election_timeout_min_ms());
    }
}
