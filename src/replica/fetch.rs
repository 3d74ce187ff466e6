//! The ReplicaManager's read path (Kafka's `ReplicaManager.fetchMessages`): read each wanted partition this broker
//! leads, and long-poll (Kafka's delayed fetch) until `min_bytes` are ready, `max_wait_ms` passes or a partition
//! fails. Waiting fetches are woken by HighWatermark changes, never by polling.
//!
//! Limits follow KIP-74: `max_bytes` bounds the whole answer and each partition's `max_bytes` its own share, except
//! that the first batch of the first non-empty partition comes whole even when larger, so a consumer always makes
//! progress.

use std::sync::Arc;
use std::time::Duration;

use futures::future::select_all;
use tokio::sync::watch;

use super::partition::FollowerFetch;
use super::{Partition, PartitionRead, ReplicaError, ReplicaManager};
use crate::ids::{BrokerId, LeaderEpoch, Offset, PartitionIndex, TopicId};

/// Which records a fetch may see (Fetch's `isolation_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationLevel {
    /// Everything below the HighWatermark.
    ReadUncommitted,
    /// Everything below the LastStableOffset (the HighWatermark, or the first offset of an open transaction if
    /// lower), with the aborted transactions among what is read.
    ReadCommitted,
}

impl IsolationLevel {
    /// The codec's `isolation_level`: 1 is READ_COMMITTED; anything else reads uncommitted, as Kafka treats it.
    pub fn from_wire(level: i8) -> IsolationLevel {
        if level == 1 {
            IsolationLevel::ReadCommitted
        } else {
            IsolationLevel::ReadUncommitted
        }
    }
}

/// What a whole fetch asks for.
#[derive(Debug, Clone, Copy)]
pub struct FetchParams {
    pub max_wait_ms: u64,
    pub min_bytes: usize,
    pub max_bytes: usize,
    pub isolation: IsolationLevel,
    /// A follower's fetch (Fetch's `replica_id`): reads up to the log end, not the HighWatermark, and tells the
    /// leader how far the follower's log reaches.
    pub replica: Option<BrokerId>,
}

/// One partition to read.
#[derive(Debug, Clone, Copy)]
pub struct FetchPartition {
    pub topic_id: TopicId,
    pub index: PartitionIndex,
    pub fetch_offset: Offset,
    pub max_bytes: usize,
    /// KIP-320: checked against the partition's leader epoch when given.
    pub current_leader_epoch: Option<LeaderEpoch>,
    /// KIP-320: the epoch of the last batch the fetcher has, checked against this log's history (followers).
    pub last_fetched_epoch: Option<LeaderEpoch>,
}

/// What a fetch got from one partition.
#[derive(Debug)]
pub enum FetchedPartition {
    Read(PartitionRead),
    /// The read failed. `offsets` are the partition's HighWatermark and LogStartOffset when this broker has it.
    Failed {
        error: ReplicaError,
        offsets: Option<(Offset, Offset)>,
    },
}

/// A wanted partition, when this broker leads it.
type Lookup = Result<Arc<Partition>, ReplicaError>;

impl ReplicaManager {
    /// Reads `wanted`, in order, waiting as [`FetchParams`] allow; the answer has one entry per wanted partition.
    pub async fn fetch_records(
        &self,
        params: FetchParams,
        wanted: &[FetchPartition],
    ) -> Vec<FetchedPartition> {
        let partitions: Vec<Lookup> = wanted
            .iter()
            .map(|w| self.leader_partition_at(w.topic_id, w.index, w.current_leader_epoch))
            .collect();
        // A partition this broker cannot serve is an error the client acts on now, not after max_wait_ms.
        let lookup_failed = partitions.iter().any(Result::is_err);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(params.max_wait_ms);
        // Consumers wait for the HighWatermark to move, followers for the log end.
        let mut watchers: Vec<watch::Receiver<Offset>> = partitions
            .iter()
            .flatten()
            .map(|p| match params.replica {
                Some(_) => p.subscribe_log_end(),
                None => p.subscribe(),
            })
            .collect();
        loop {
            // Mark the current HighWatermarks as seen before reading, so an append racing the read still wakes us.
            for watcher in &mut watchers {
                watcher.borrow_and_update();
            }
            let (reads, bytes, errors) = self.read_once(&params, wanted, &partitions);
            let now = tokio::time::Instant::now();
            if bytes >= params.min_bytes
                || errors
                || lookup_failed
                || now >= deadline
                || watchers.is_empty()
            {
                return reads;
            }
            let changed = select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.read_once(&params, wanted, &partitions).0;
            }
        }
    }
}

/// Another copy of a lookup's error, for each read of the partition (`leader_partition_at` fails only these ways).
fn lookup_error(error: &ReplicaError) -> ReplicaError {
    match error {
        ReplicaError::FencedLeaderEpoch { epoch, current } => ReplicaError::FencedLeaderEpoch {
            epoch: *epoch,
            current: *current,
        },
        ReplicaError::UnknownLeaderEpoch { epoch, current } => ReplicaError::UnknownLeaderEpoch {
            epoch: *epoch,
            current: *current,
        },
        _ => ReplicaError::NotLeaderOrFollower,
    }
}

impl ReplicaManager {
    /// Reads every partition once: one answer per partition, the bytes read, and whether any read failed. A
    /// follower that caught up is proposed for the ISR.
    fn read_once(
        &self,
        params: &FetchParams,
        wanted: &[FetchPartition],
        partitions: &[Lookup],
    ) -> (Vec<FetchedPartition>, usize, bool) {
        let (reads, total, errors, joining) = read_partitions(params, wanted, partitions);
        if let Some(replica) = params.replica {
            for partition in joining {
                self.propose_isr(&partition, &[replica], &[]);
            }
        }
        (reads, total, errors)
    }
}

fn read_partitions(
    params: &FetchParams,
    wanted: &[FetchPartition],
    partitions: &[Lookup],
) -> (Vec<FetchedPartition>, usize, bool, Vec<Arc<Partition>>) {
    let mut total = 0usize;
    let mut joining = Vec::new();
    let now = super::now_ms();
    let mut errors = false;
    let reads = wanted
        .iter()
        .zip(partitions)
        .map(|(w, partition)| {
            let partition = match partition {
                Ok(partition) => partition,
                Err(error) => {
                    return FetchedPartition::Failed {
                        error: lookup_error(error),
                        offsets: None,
                    }
                }
            };
            let budget = w.max_bytes.min(params.max_bytes.saturating_sub(total));
            let read = match params.replica {
                Some(replica) => {
                    let fetch = FollowerFetch {
                        replica,
                        fetch_offset: w.fetch_offset,
                        last_fetched_epoch: w.last_fetched_epoch,
                    };
                    partition
                        .read_for_follower(fetch, budget, total == 0, now)
                        .map(|(read, joins)| {
                            if joins {
                                joining.push(partition.clone());
                            }
                            read
                        })
                }
                None => partition.read(w.fetch_offset, budget, total == 0, params.isolation),
            };
            match read {
                Ok(read) => {
                    total += read.records.len();
                    FetchedPartition::Read(read)
                }
                Err(error) => {
                    errors = true;
                    FetchedPartition::Failed {
                        error,
                        offsets: Some((partition.high_watermark(), partition.log_start_offset())),
                    }
                }
            }
        })
        .collect();
    (reads, total, errors, joining)
}
