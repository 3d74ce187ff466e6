//! Followers fetch from leaders (Kafka's `ReplicaFetcherManager` and `ReplicaFetcherThread`): one fetcher task per
//! source broker (times `num.replica.fetchers`, a partition always going to the same one), each sending the leader
//! Fetch requests with this broker's id as `replica_id` for all the partitions it follows there, appending what
//! comes back exactly as the leader wrote it.
//!
//! Every fetch carries each partition's last fetched epoch; when the leader answers with a diverging epoch
//! (KIP-320) the follower truncates there and fetches again, so a returning old leader or a follower that took
//! writes the new leader never had ends up with the leader's history. Errors back off `replica.fetch.backoff.ms`
//! and wait for the metadata to move the partition.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::{BrokerId as WireBrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{now_ms, Partition};
use crate::admin::connection::{Connection, ConnectionSettings};
use crate::config::ReplicationConfig;
use crate::ids::{BrokerId, LeaderEpoch, Offset, PartitionIndex, TopicId};

/// Fetch v12: topic names, `last_fetched_epoch` and the diverging epoch (KIP-320), `replica_id` in the header.
const FETCH_VERSION: i16 = 12;

type PartitionKey = (TopicId, PartitionIndex);

/// One partition a fetcher follows: the replica, and the leader epoch it follows in.
#[derive(Clone)]
struct Followed {
    partition: Arc<Partition>,
    leader_epoch: LeaderEpoch,
}

/// The partitions one fetcher follows at one leader, shared between the manager and the fetcher's task.
#[derive(Default)]
struct FetcherPartitions {
    partitions: Mutex<BTreeMap<PartitionKey, Followed>>,
    changed: Notify,
}

impl FetcherPartitions {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<PartitionKey, Followed>> {
        self.partitions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct Fetcher {
    addr: String,
    partitions: Arc<FetcherPartitions>,
    task: JoinHandle<()>,
}

/// The fetchers of this broker, by (source broker, fetcher id).
pub struct ReplicaFetcherManager {
    broker_id: BrokerId,
    config: ReplicationConfig,
    fetchers: Mutex<HashMap<(BrokerId, usize), Fetcher>>,
}

impl ReplicaFetcherManager {
    pub fn new(broker_id: BrokerId, config: ReplicationConfig) -> ReplicaFetcherManager {
        ReplicaFetcherManager {
            broker_id,
            config,
            fetchers: Mutex::new(HashMap::new()),
        }
    }

    fn fetchers(&self) -> MutexGuard<'_, HashMap<(BrokerId, usize), Fetcher>> {
        self.fetchers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fetcher_id(&self, key: PartitionKey) -> usize {
        let hash = key.0 .0.as_u128() as usize ^ key.1 .0 as usize;
        hash % self.config.num_replica_fetchers.max(1)
    }

    /// Stops following the partition wherever it was followed (it is led here now, or gone).
    pub fn remove_partition(&self, topic_id: TopicId, index: PartitionIndex) {
        for fetcher in self.fetchers().values() {
            if fetcher
                .partitions
                .lock()
                .remove(&(topic_id, index))
                .is_some()
            {
                fetcher.partitions.changed.notify_one();
            }
        }
    }

    /// Follows `partition` at `leader` (listening at `addr`) in `leader_epoch`, from its log end.
    pub fn add_partition(
        &self,
        partition: Arc<Partition>,
        leader: BrokerId,
        addr: String,
        leader_epoch: LeaderEpoch,
    ) {
        let key = (partition.topic_id, partition.index);
        self.remove_partition(key.0, key.1);
        let id = (leader, self.fetcher_id(key));
        let mut fetchers = self.fetchers();
        // A leader that moved to another address: a new fetcher there takes over all its partitions.
        let mut carried = None;
        if fetchers.get(&id).is_some_and(|f| f.addr != addr) {
            if let Some(old) = fetchers.remove(&id) {
                old.task.abort();
                carried = Some(old.partitions);
            }
        }
        let fetcher = fetchers.entry(id).or_insert_with(|| {
            let partitions = carried.unwrap_or_default();
            let task = tokio::spawn(run_fetcher(
                self.broker_id,
                addr.clone(),
                self.config.clone(),
                partitions.clone(),
            ));
            Fetcher {
                addr,
                partitions,
                task,
            }
        });
        fetcher.partitions.lock().insert(
            key,
            Followed {
                partition,
                leader_epoch,
            },
        );
        fetcher.partitions.changed.notify_one();
    }

    /// Stops every fetcher (shutdown).
    pub fn shutdown(&self) {
        for (_, fetcher) in self.fetchers().drain() {
            fetcher.task.abort();
        }
    }
}

async fn run_fetcher(
    broker_id: BrokerId,
    addr: String,
    config: ReplicationConfig,
    partitions: Arc<FetcherPartitions>,
) {
    let settings = ConnectionSettings {
        client_id: format!("ferrite-replica-fetcher-{}", broker_id.0),
        connect_timeout: Duration::from_millis(config.socket_timeout_ms),
        request_timeout: Duration::from_millis(config.socket_timeout_ms),
    };
    let mut connection: Option<Connection> = None;
    loop {
        let followed: Vec<(PartitionKey, Followed)> = partitions
            .lock()
            .iter()
            .map(|(k, f)| (*k, f.clone()))
            .collect();
        if followed.is_empty() {
            partitions.changed.notified().await;
            continue;
        }
        let conn = match &connection {
            Some(conn) => conn,
            None => match Connection::connect(&addr, &settings).await {
                Ok(conn) => connection.insert(conn),
                Err(error) => {
                    tracing::debug!(%addr, %error, "replica fetcher cannot reach the leader");
                    tokio::time::sleep(config.fetch_backoff()).await;
                    continue;
                }
            },
        };
        match fetch_once(broker_id, conn, &config, &followed).await {
            Ok(backoff) => {
                if backoff {
                    tokio::select! {
                        _ = tokio::time::sleep(config.fetch_backoff()) => {}
                        _ = partitions.changed.notified() => {}
                    }
                }
            }
            Err(error) => {
                tracing::debug!(%addr, %error, "replica fetch failed; reconnecting");
                connection = None;
                tokio::time::sleep(config.fetch_backoff()).await;
            }
        }
    }
}

/// One Fetch round for every followed partition. `Ok(true)` when a partition failed and the fetcher should back
/// off before the next round.
async fn fetch_once(
    broker_id: BrokerId,
    connection: &Connection,
    config: &ReplicationConfig,
    followed: &[(PartitionKey, Followed)],
) -> Result<bool, crate::admin::error::ClientError> {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (_, f) in followed {
        let (last_epoch, fetch_offset) = f.partition.fetch_position();
        let partition = FetchPartition::default()
            .with_partition(f.partition.index.0)
            .with_current_leader_epoch(f.leader_epoch.0)
            .with_fetch_offset(fetch_offset.0)
            .with_last_fetched_epoch(last_epoch.map_or(-1, |e| e.0))
            .with_log_start_offset(f.partition.log_start_offset().0)
            .with_partition_max_bytes(config.fetch_max_bytes);
        match topics.last_mut() {
            Some(topic) if topic.topic.0.as_str() == &*f.partition.topic => {
                topic.partitions.push(partition)
            }
            _ => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(
                        f.partition.topic.to_string(),
                    )))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    let request = FetchRequest::default()
        .with_replica_id(WireBrokerId(broker_id.0))
        .with_max_wait_ms(i32::try_from(config.fetch_wait_max_ms).unwrap_or(i32::MAX))
        .with_min_bytes(config.fetch_min_bytes)
        .with_max_bytes(config.fetch_response_max_bytes)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics);
    let range = kafka_protocol::protocol::VersionRange {
        min: FETCH_VERSION,
        max: FETCH_VERSION,
    };
    let response = connection.send_within(range, |_| request).await?;
    let by_name: HashMap<(&str, i32), &Followed> = followed
        .iter()
        .map(|(_, f)| ((&*f.partition.topic, f.partition.index.0), f))
        .collect();
    let mut backoff = false;
    for topic in &response.responses {
        for data in &topic.partitions {
            let Some(f) = by_name.get(&(topic.topic.0.as_str(), data.partition_index)) else {
                continue;
            };
            if let Err(reason) = apply(f, data).await {
                tracing::debug!(topic = %f.partition.topic, partition = data.partition_index, %reason, "replica fetch of a partition failed");
                backoff = true;
            }
        }
    }
    Ok(backoff)
}

/// Applies one partition's answer: truncate where the leader says the logs diverge, or append what it sent.
async fn apply(
    f: &Followed,
    data: &kafka_protocol::messages::fetch_response::PartitionData,
) -> Result<(), String> {
    if data.error_code != 0 {
        return Err(ResponseError::try_from_code(data.error_code).map_or_else(
            || format!("error code {}", data.error_code),
            |e| e.to_string(),
        ));
    }
    let now = now_ms();
    if data.diverging_epoch.epoch >= 0 || data.diverging_epoch.end_offset >= 0 {
        let end = Offset(data.diverging_epoch.end_offset.max(0));
        // Truncate to the leader's end of the epoch, or where ours ends if that is earlier.
        let ours = f
            .partition
            .end_offset_for_epoch(LeaderEpoch(data.diverging_epoch.epoch))
            .map_or(end, |(_, our_end)| our_end.min(end));
        tracing::info!(topic = %f.partition.topic, partition = f.partition.index.0, offset = ours.0, "truncating a diverged follower log");
        return f
            .partition
            .truncate_to(ours, now)
            .map_err(|e| e.to_string());
    }
    if let Some(records) = data.records.as_ref().filter(|r| !r.is_empty()) {
        f.partition
            .append_as_follower(records.clone(), f.leader_epoch, now)
            .await
            .map_err(|e| e.to_string())?;
    }
    f.partition
        .update_follower_high_watermark(Offset(data.high_watermark));
    Ok(())
}
