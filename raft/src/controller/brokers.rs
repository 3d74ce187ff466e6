//! The broker lifecycle on the controller, as KRaft's ClusterControlManager and BrokerHeartbeatManager run it.
//!
//! A broker registers once per process start (its incarnation) and is fenced from then until it has applied the
//! metadata log up to its own registration and says so in a heartbeat; the controller then unfences it. Fenced
//! brokers are left out of Metadata and get no new replicas. A broker whose heartbeats stop for
//! `broker.session.timeout.ms` is fenced again; one that asks to shut down is fenced at once.
//!
//! What is durable is in records (RegisterBroker, FenceBroker, UnfenceBroker), so every node's image agrees; when
//! each broker was last heard from is known only to the active controller ([`BrokerHeartbeats`]) and starts afresh
//! with every new leader, which therefore gives each broker a full session before fencing it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::controller::handlers::ControllerResult;
use crate::controller::state::ControllerState;
use crate::controller::ControllerError;
use crate::ids::{BrokerEpoch, BrokerId, IncarnationId};
use crate::record::MetadataRecord;

/// Kafka's BrokerRegistrationRequest, as far as Ferrite's brokers fill it in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistrationRequest {
    pub broker_id: BrokerId,
    pub incarnation_id: IncarnationId,
    /// The advertised client endpoint.
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
}

/// Kafka's BrokerHeartbeatRequest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerHeartbeatRequest {
    pub broker_id: BrokerId,
    pub broker_epoch: BrokerEpoch,
    /// The offset of the last metadata log entry the broker has applied.
    pub current_metadata_offset: i64,
    pub want_fence: bool,
    pub want_shut_down: bool,
}

/// Kafka's BrokerHeartbeatResponse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerHeartbeatReply {
    pub is_caught_up: bool,
    pub is_fenced: bool,
    pub should_shut_down: bool,
}

/// Registers a broker. A retry from the same incarnation answers the registration it already has (`Some(epoch)`)
/// and writes nothing; anything else writes a fenced registration whose epoch is its record's offset (`None`: the
/// caller reads it back once the record is applied). `other_incarnation_alive` says whether a different incarnation
/// registered under this id is still heartbeating, which makes this one a duplicate.
pub fn register_broker(
    state: &ControllerState,
    request: &BrokerRegistrationRequest,
    other_incarnation_alive: bool,
) -> ControllerResult<Result<Option<BrokerEpoch>, ControllerError>> {
    let refuse = |error: ControllerError| ControllerResult {
        records: Vec::new(),
        response: Err(error),
    };
    let invalid = |message: String| refuse(ControllerError::InvalidRegistration(message));
    if request.broker_id.to_node_id().is_none() {
        return invalid(format!("Broker id {} is negative.", request.broker_id));
    }
    if request.host.is_empty() {
        return invalid("The broker's host is empty.".to_string());
    }
    if request.port == 0 {
        return invalid("The broker's port is 0.".to_string());
    }
    if let Some(existing) = state.broker(request.broker_id) {
        if existing.incarnation_id == Some(request.incarnation_id) {
            return ControllerResult {
                records: Vec::new(),
                response: Ok(Some(existing.broker_epoch)),
            };
        }
        if !existing.fenced && other_incarnation_alive {
            return refuse(ControllerError::DuplicateBrokerRegistration(format!(
                "Another broker process is registered as broker {} and still heartbeating; a restarted broker is \
                 accepted once the earlier one's session times out.",
                request.broker_id
            )));
        }
    }
    ControllerResult {
        records: vec![MetadataRecord::RegisterBroker {
            broker_id: request.broker_id,
            host: request.host.clone(),
            port: request.port,
            rack: request.rack.clone(),
            incarnation_id: Some(request.incarnation_id),
            broker_epoch: None,
            fenced: true,
        }],
        response: Ok(None),
    }
}

/// Answers a heartbeat, unfencing a broker that has caught up and fencing one that asks to be fenced or to shut
/// down. The records are the broker's alone; the controller adds the partition changes they bring
/// (`replication::with_partition_changes`), so a shutting-down broker's leaderships move as it is fenced. (Kafka
/// keeps such a broker unfenced, in controlled shutdown, until its leaderships have moved; here both happen in one
/// write.)
pub fn broker_heartbeat(
    state: &ControllerState,
    request: &BrokerHeartbeatRequest,
) -> ControllerResult<Result<BrokerHeartbeatReply, ControllerError>> {
    let refuse = |error: ControllerError| ControllerResult {
        records: Vec::new(),
        response: Err(error),
    };
    let Some(broker) = state.broker(request.broker_id) else {
        return refuse(ControllerError::BrokerIdNotRegistered(format!(
            "Broker {} is not registered.",
            request.broker_id
        )));
    };
    if broker.broker_epoch != request.broker_epoch {
        return refuse(ControllerError::StaleBrokerEpoch(format!(
            "Broker {} is registered with epoch {}, not {}.",
            request.broker_id, broker.broker_epoch, request.broker_epoch
        )));
    }
    let is_caught_up = request.current_metadata_offset >= broker.broker_epoch.0;
    let fence = request.want_shut_down || request.want_fence;
    let records = match (broker.fenced, fence) {
        (false, true) => vec![MetadataRecord::FenceBroker {
            broker_id: broker.broker_id,
            broker_epoch: broker.broker_epoch,
        }],
        (true, false) if is_caught_up => vec![MetadataRecord::UnfenceBroker {
            broker_id: broker.broker_id,
            broker_epoch: broker.broker_epoch,
        }],
        _ => Vec::new(),
    };
    let is_fenced = fence || (broker.fenced && records.is_empty());
    ControllerResult {
        records,
        response: Ok(BrokerHeartbeatReply {
            is_caught_up,
            is_fenced,
            should_shut_down: request.want_shut_down,
        }),
    }
}

/// Fences the brokers whose sessions expired, if they are still registered with that epoch and unfenced.
pub fn fence_brokers(
    state: &ControllerState,
    expired: &[(BrokerId, BrokerEpoch)],
) -> Vec<MetadataRecord> {
    expired
        .iter()
        .filter(|(id, epoch)| {
            state
                .broker(*id)
                .is_some_and(|b| b.broker_epoch == *epoch && !b.fenced)
        })
        .map(|(broker_id, broker_epoch)| MetadataRecord::FenceBroker {
            broker_id: *broker_id,
            broker_epoch: *broker_epoch,
        })
        .collect()
}

/// When the active controller last heard from each broker. Not replicated: a new leader starts every broker's
/// session at the moment it took over.
#[derive(Debug)]
pub(crate) struct BrokerHeartbeats {
    session_timeout: Duration,
    /// The Raft term this node leads in and since when; `None` while it does not lead.
    leading: Option<(u64, Instant)>,
    last_contact: HashMap<BrokerId, Instant>,
}

impl BrokerHeartbeats {
    pub(crate) fn new(session_timeout: Duration) -> BrokerHeartbeats {
        BrokerHeartbeats {
            session_timeout,
            leading: None,
            last_contact: HashMap::new(),
        }
    }

    /// Notes whether this node leads in `term`; a new term forgets every contact heard as an earlier leader.
    pub(crate) fn set_leading(&mut self, term: Option<u64>, now: Instant) {
        match (term, self.leading) {
            (Some(term), Some((leading, _))) if term == leading => {}
            (Some(term), _) => {
                self.leading = Some((term, now));
                self.last_contact.clear();
            }
            (None, _) => self.leading = None,
        }
    }

    pub(crate) fn touch(&mut self, broker: BrokerId, now: Instant) {
        self.last_contact.insert(broker, now);
    }

    /// Whether the broker's session is live: heard from (or, if never, this leadership began) within the timeout.
    pub(crate) fn is_alive(&self, broker: BrokerId, now: Instant) -> bool {
        let since = self
            .last_contact
            .get(&broker)
            .copied()
            .or(self.leading.map(|(_, since)| since));
        since.is_some_and(|since| now.saturating_duration_since(since) < self.session_timeout)
    }

    /// The unfenced brokers whose sessions expired; nothing while this node does not lead.
    pub(crate) fn expired(
        &self,
        state: &ControllerState,
        now: Instant,
    ) -> Vec<(BrokerId, BrokerEpoch)> {
        if self.leading.is_none() {
            return Vec::new();
        }
        state
            .unfenced_brokers()
            .filter(|b| !self.is_alive(b.broker_id, now))
            .map(|b| (b.broker_id, b.broker_epoch))
            .collect()
    }
}

#[cfg(test)]
#[path = "brokers_tests.rs"]
mod tests;
