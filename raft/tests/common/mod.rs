//! What the quorum tests share: a listener that records what it was told, and a quorum config.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferrite_raft::{
    BrokerId, ControllerState, CreateTopicSpec, MetadataListener, MetadataRecord, QuorumConfig,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Snapshot(Vec<MetadataRecord>),
    Records(Vec<MetadataRecord>),
}

/// Plays the broker: keeps every call, and the image they add up to.
#[derive(Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// The image a broker applying these calls would hold.
    pub fn image(&self) -> ControllerState {
        let mut image = ControllerState::default();
        for event in self.events() {
            match event {
                Event::Snapshot(records) => image = ControllerState::from_records(&records),
                Event::Records(records) => {
                    for record in &records {
                        image.replay(record).ok();
                    }
                }
            }
        }
        image
    }

    pub fn topic_names(&self) -> Vec<String> {
        self.image().topics().map(|t| t.name.clone()).collect()
    }

    fn push(&self, event: Event) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }
}

impl MetadataListener for Recorder {
    fn on_snapshot(&self, records: &[MetadataRecord]) {
        self.push(Event::Snapshot(records.to_vec()));
    }

    fn on_records(&self, records: &[MetadataRecord]) {
        self.push(Event::Records(records.to_vec()));
    }
}

pub fn single_voter(dir: &Path, snapshot_after_entries: u64) -> QuorumConfig {
    QuorumConfig {
        node_id: BrokerId(1),
        dir: dir.to_path_buf(),
        voters: BTreeMap::from([(BrokerId(1), "127.0.0.1:1".to_string())]),
        listener: None,
        snapshot_after_entries,
    }
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
