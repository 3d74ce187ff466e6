//! The broker lifecycle, tested by the records the handlers emit and the sessions the heartbeat tracker keeps.

use super::*;

fn incarnation(n: u128) -> IncarnationId {
    IncarnationId(uuid::Uuid::from_u128(n))
}

fn request(broker_id: i32, incarnation_id: u128) -> BrokerRegistrationRequest {
    BrokerRegistrationRequest {
        broker_id: BrokerId(broker_id),
        incarnation_id: incarnation(incarnation_id),
        host: "127.0.0.1".into(),
        port: 9092,
        rack: None,
    }
}

fn heartbeat(broker_id: i32, epoch: i64, offset: i64) -> BrokerHeartbeatRequest {
    BrokerHeartbeatRequest {
        broker_id: BrokerId(broker_id),
        broker_epoch: BrokerEpoch(epoch),
        current_metadata_offset: offset,
        want_fence: false,
        want_shut_down: false,
    }
}

/// Replays `records` as the entry at `offset`.
fn apply(state: &mut ControllerState, offset: u64, records: &[MetadataRecord]) {
    for record in records {
        state.replay_at(record, offset).expect("replays");
    }
}

/// Broker 1 registered at offset 10 by incarnation 1, still fenced.
fn registered() -> ControllerState {
    let mut state = ControllerState::default();
    let result = register_broker(&state, &request(1, 1), false);
    assert_eq!(result.response.ok(), Some(None));
    apply(&mut state, 10, &result.records);
    state
}

#[test]
fn a_registration_is_fenced_and_takes_its_offset_as_epoch() {
    let state = registered();
    let broker = state.broker(BrokerId(1)).expect("registered");
    assert!(broker.fenced);
    assert_eq!(broker.broker_epoch, BrokerEpoch(10));
    assert_eq!(state.unfenced_brokers().count(), 0);
}

#[test]
fn a_retry_from_the_same_incarnation_writes_nothing() {
    let state = registered();
    let retry = register_broker(&state, &request(1, 1), true);
    assert!(retry.records.is_empty());
    assert_eq!(retry.response.ok(), Some(Some(BrokerEpoch(10))));
}

#[test]
fn another_incarnation_waits_for_the_live_one_to_be_fenced() {
    let mut state = registered();
    let unfence = broker_heartbeat(&state, &heartbeat(1, 10, 10)).records;
    apply(&mut state, 11, &unfence);
    let duplicate = register_broker(&state, &request(1, 2), true);
    assert!(matches!(
        duplicate.response,
        Err(ControllerError::DuplicateBrokerRegistration(_))
    ));
    // Once its session lapsed, the new incarnation replaces it.
    let replacement = register_broker(&state, &request(1, 2), false);
    assert_eq!(replacement.records.len(), 1);
    apply(&mut state, 20, &replacement.records);
    assert_eq!(
        state
            .broker(BrokerId(1))
            .map(|b| (b.broker_epoch, b.fenced)),
        Some((BrokerEpoch(20), true))
    );
}

#[test]
fn bad_registrations_are_refused() {
    let state = ControllerState::default();
    let mut no_host = request(1, 1);
    no_host.host.clear();
    let mut no_port = request(1, 1);
    no_port.port = 0;
    for bad in [request(-1, 1), no_host, no_port] {
        let result = register_broker(&state, &bad, false);
        assert!(result.records.is_empty());
        assert!(matches!(
            result.response,
            Err(ControllerError::InvalidRegistration(_))
        ));
    }
}

#[test]
fn a_heartbeat_unfences_only_once_the_broker_has_caught_up() {
    let mut state = registered();
    let behind = broker_heartbeat(&state, &heartbeat(1, 10, 9));
    assert!(behind.records.is_empty());
    assert_eq!(
        behind.response.ok(),
        Some(BrokerHeartbeatReply {
            is_caught_up: false,
            is_fenced: true,
            should_shut_down: false
        })
    );
    let caught_up = broker_heartbeat(&state, &heartbeat(1, 10, 10));
    assert_eq!(
        caught_up.records,
        vec![MetadataRecord::UnfenceBroker {
            broker_id: BrokerId(1),
            broker_epoch: BrokerEpoch(10)
        }]
    );
    assert_eq!(caught_up.response.ok().map(|r| r.is_fenced), Some(false));
    apply(&mut state, 11, &caught_up.records);
    assert_eq!(state.unfenced_brokers().count(), 1);
    // Heartbeats of an unfenced broker write nothing.
    assert!(broker_heartbeat(&state, &heartbeat(1, 10, 11))
        .records
        .is_empty());
}

#[test]
fn heartbeats_from_other_epochs_or_unknown_brokers_are_refused() {
    let state = registered();
    assert!(matches!(
        broker_heartbeat(&state, &heartbeat(1, 3, 10)).response,
        Err(ControllerError::StaleBrokerEpoch(_))
    ));
    assert!(matches!(
        broker_heartbeat(&state, &heartbeat(2, 10, 10)).response,
        Err(ControllerError::BrokerIdNotRegistered(_))
    ));
}

#[test]
fn shutting_down_fences_the_broker() {
    let mut state = registered();
    let unfence = broker_heartbeat(&state, &heartbeat(1, 10, 10)).records;
    apply(&mut state, 11, &unfence);
    let mut shut_down = heartbeat(1, 10, 11);
    shut_down.want_shut_down = true;
    let result = broker_heartbeat(&state, &shut_down);
    assert_eq!(
        result.records,
        vec![MetadataRecord::FenceBroker {
            broker_id: BrokerId(1),
            broker_epoch: BrokerEpoch(10)
        }]
    );
    assert_eq!(
        result.response.ok(),
        Some(BrokerHeartbeatReply {
            is_caught_up: true,
            is_fenced: true,
            should_shut_down: true
        })
    );
}

#[test]
fn sessions_expire_after_the_timeout_and_restart_with_each_leadership() {
    let mut state = registered();
    let unfence = broker_heartbeat(&state, &heartbeat(1, 10, 10)).records;
    apply(&mut state, 11, &unfence);
    let start = Instant::now();
    let timeout = Duration::from_secs(9);
    let mut heartbeats = BrokerHeartbeats::new(timeout);
    // Not leading: nothing expires.
    assert!(heartbeats.expired(&state, start + timeout * 2).is_empty());

    heartbeats.set_leading(Some(4), start);
    assert!(heartbeats.expired(&state, start + timeout / 2).is_empty());
    heartbeats.touch(BrokerId(1), start + timeout / 2);
    assert!(heartbeats.expired(&state, start + timeout).is_empty());
    let lapsed = start + timeout / 2 + timeout;
    assert_eq!(
        heartbeats.expired(&state, lapsed),
        vec![(BrokerId(1), BrokerEpoch(10))]
    );
    assert_eq!(
        fence_brokers(&state, &heartbeats.expired(&state, lapsed)).len(),
        1
    );

    // A new term gives every broker a fresh session.
    heartbeats.set_leading(Some(5), lapsed);
    assert!(heartbeats.is_alive(BrokerId(1), lapsed));
    assert!(heartbeats.expired(&state, lapsed + timeout / 2).is_empty());
}
