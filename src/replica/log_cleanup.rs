//! The background work that ages partition logs, as Kafka's LogManager and LogCleaner do it: a retention pass over
//! every log each `log.retention.check.interval.ms` (segments past `retention.ms` / `retention.bytes` / the
//! LogStartOffset, and the delayed removal of deleted files), and a log cleaner pass over the compacted logs each
//! `log.cleaner.backoff.ms` (when `log.cleaner.enable`). File work runs on the blocking pool, one log at a time,
//! with one offset map of `log.cleaner.dedupe.buffer.size` bytes at most (Kafka's single cleaner thread).

use std::sync::Arc;
use std::time::Duration;

use super::{now_ms, ReplicaManager};

impl ReplicaManager {
    /// Runs until shutdown; returns only when no pass is in progress, so the logs can be closed after it.
    pub(super) async fn run_log_cleanup(
        self: Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let cleanup = &self.config.log_cleanup;
        let mut retention =
            tokio::time::interval(Duration::from_millis(cleanup.retention_check_interval_ms));
        let mut cleaner = tokio::time::interval(Duration::from_millis(cleanup.cleaner_backoff_ms));
        retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        cleaner.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let cleaner_enabled = cleanup.cleaner_enable;
        loop {
            tokio::select! {
                _ = retention.tick() => {
                    let manager = self.clone();
                    let _ = tokio::task::spawn_blocking(move || manager.retention_pass()).await;
                }
                _ = cleaner.tick(), if cleaner_enabled => {
                    let manager = self.clone();
                    let _ = tokio::task::spawn_blocking(move || manager.cleaner_pass()).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Kafka's `cleanupLogs`: deletes the segments each log's retention settings no longer keep.
    pub fn retention_pass(&self) {
        for partition in self.all() {
            match partition.delete_old_segments(now_ms()) {
                Ok(0) => {}
                Ok(deleted) => {
                    tracing::info!(topic = %partition.topic, partition = partition.index.0, deleted, "retention deleted segments")
                }
                Err(error) => {
                    tracing::warn!(topic = %partition.topic, partition = partition.index.0, %error, "retention pass failed")
                }
            }
        }
    }

    /// One log cleaner pass over every compacted log that is due.
    pub fn cleaner_pass(&self) {
        let map_bytes = self.config.log_cleanup.cleaner_dedupe_buffer_size;
        for partition in self.all() {
            if let Err(error) = partition.clean(map_bytes, now_ms()) {
                tracing::warn!(topic = %partition.topic, partition = partition.index.0, %error, "log cleaning failed");
            }
        }
    }
}
