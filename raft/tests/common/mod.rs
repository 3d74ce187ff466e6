//! What the quorum tests share: a listener that records what it was told, and a quorum config.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::sync::Arc;

use ferrite_raft::{
    BrokerHeartbeatRequest, BrokerId, BrokerRegistrationRequest, ConfigResource, ConfigSchema,
    ControllerError, ControllerState, CreateTopicSpec, IncarnationId, MetadataListener,
    MetadataRecord, QuorumConfig, QuorumController,
};

/// The cluster id every test quorum shares.
pub const CLUSTER_ID: &str = "test-cluster-AAAAAAAAAA";

/// Accepts every config value; the broker's real schema is tested with the broker.
pub struct AnyConfig;

impl ConfigSchema for AnyConfig {
    fn validate(&self, _: &ConfigResource, _: &str, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn default_value(&self, _: &ConfigResource, _: &str) -> Option<String> {
        None
    }
}

/// The quorum settings every test shares.
pub fn quorum_config(
    node_id: BrokerId,
    dir: &Path,
    voters: BTreeMap<BrokerId, String>,
    listener: Option<tokio::net::TcpListener>,
    snapshot_after_entries: u64,
) -> QuorumConfig {
    QuorumConfig {
        node_id,
        dir: dir.to_path_buf(),
        voters,
        listener,
        snapshot_after_entries,
        cluster_id: CLUSTER_ID.to_string(),
        config_schema: Arc::new(AnyConfig),
        broker_session_timeout: Duration::from_secs(9),
        leader_imbalance_check_interval: Some(ferrite_raft::LEADER_IMBALANCE_CHECK_INTERVAL),
        observer_address: None,
        timeouts: ferrite_raft::QuorumTimeouts::default(),
    }
}

/// Registers a broker and unfences it (a heartbeat that claims to have applied everything), so that topics can
/// be placed on it.
pub async fn register(
    controller: &QuorumController,
    broker_id: BrokerId,
    rack: Option<String>,
) -> Result<(), ControllerError> {
    let broker_epoch = controller
        .register_broker(BrokerRegistrationRequest {
            broker_id,
            incarnation_id: IncarnationId::random(),
            host: "localhost".into(),
            port: 9092,
            rack,
        })
        .await?;
    controller
        .broker_heartbeat(BrokerHeartbeatRequest {
            broker_id,
            broker_epoch,
            current_metadata_offset: i64::MAX,
            want_fence: false,
            want_shut_down: false,
        })
        .await?;
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Snapshot(Vec<MetadataRecord>),
    Records(Vec<MetadataRecord>),
}

/// Plays the broker: keeps every call, and the image they add up to.
#[derive(Default)]
pub struct Recorder {
    /// Each call, with the offset of its entry (0 for a snapshot).
    events: Mutex<Vec<(u64, Event)>>,
}

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .map(|e| e.iter().map(|(_, event)| event.clone()).collect())
            .unwrap_or_default()
    }

    /// The image a broker applying these calls would hold.
    pub fn image(&self) -> ControllerState {
        let mut image = ControllerState::default();
        let events = self.events.lock().map(|e| e.clone()).unwrap_or_default();
        for (offset, event) in events {
            match event {
                Event::Snapshot(records) => image = ControllerState::from_records(&records),
                Event::Records(records) => {
                    for record in &records {
                        image.replay_at(record, offset).ok();
                    }
                }
            }
        }
        image
    }

    pub fn topic_names(&self) -> Vec<String> {
        self.image().topics().map(|t| t.name.clone()).collect()
    }

    fn push(&self, offset: u64, event: Event) {
        if let Ok(mut events) = self.events.lock() {
            events.push((offset, event));
        }
    }
}

impl MetadataListener for Recorder {
    fn on_snapshot(&self, records: &[MetadataRecord]) {
        self.push(0, Event::Snapshot(records.to_vec()));
    }

    fn on_records(&self, offset: u64, records: &[MetadataRecord]) {
        self.push(offset, Event::Records(records.to_vec()));
    }
}

pub fn single_voter(dir: &Path, snapshot_after_entries: u64) -> QuorumConfig {
    quorum_config(
        BrokerId(1),
        dir,
        BTreeMap::from([(BrokerId(1), "127.0.0.1:1".to_string())]),
        None,
        snapshot_after_entries,
    )
}

pub fn topic(name: &str, num_partitions: i32) -> CreateTopicSpec {
    CreateTopicSpec {
        name: name.to_string(),
        num_partitions,
        replication_factor: 1,
        assignments: Vec::new(),
        configs: Vec::new(),
    }
}

/// Polls `check` until it holds or `timeout` passes; returns whether it held.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}
