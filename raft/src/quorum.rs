//! The metadata quorum: this node's Raft member of the controller quorum, its storage, its RPC
//! server and its controller.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use openraft::error::{Fatal, InitializeError, RaftError};
use openraft::metrics::WaitError;
use openraft::{BasicNode, SnapshotPolicy};
use tokio::net::TcpListener;

use crate::controller::admin::ConfigSchema;
use crate::controller::channel::ControllerChannel;
use crate::controller::{ControllerError, QuorumController, SharedState};
use crate::ids::BrokerId;
use crate::log_store::{LogStoreError, RedbLogStore};
use crate::network::{PeerConnection, PeerContacts, TcpNetworkFactory};
use crate::raft_types::{NodeId, Raft};
use crate::record::MetadataListener;
use crate::rpc_server::{RpcServer, RpcTarget};
use crate::snapshot::{SnapshotError, SnapshotStore};
use crate::state_machine::MetadataStateMachine;
use crate::timeouts::QuorumTimeouts;

const CLUSTER_NAME: &str = "ferrite-metadata";
/// Snapshot chunks stay far below the RPC frame limit (`rpc::MAX_FRAME_BYTES`).
const SNAPSHOT_CHUNK_BYTES: u64 = 1024 * 1024;
const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 10_000;
/// Bounds one wait to apply up to the read index before asking again (the leader may change).
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often `start` reports that it is still waiting for a quorum.
const START_PROGRESS_INTERVAL: Duration = Duration::from_secs(10);
/// How long `shutdown` waits for openraft's tasks to let go of the database.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the active controller looks for brokers whose sessions expired.
const FENCING_CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// Kafka's default `leader.imbalance.check.interval.seconds`.
pub const LEADER_IMBALANCE_CHECK_INTERVAL: Duration = Duration::from_secs(300);

pub struct QuorumConfig {
    pub node_id: BrokerId,
    /// The metadata log dir: `<log.dirs>/__cluster_metadata-0`.
    pub dir: PathBuf,
    /// `controller.quorum.voters`: id -> "host:port" of each voter's Raft RPC listener.
    pub voters: BTreeMap<BrokerId, String>,
    /// This node's already-bound Raft RPC listener; `None` serves no RPC (a lone voter needs none).
    pub listener: Option<TcpListener>,
    /// Take a snapshot after this many entries since the last one; 0 never snapshots.
    pub snapshot_after_entries: u64,
    /// meta.properties' `cluster.id`: peers of another cluster are refused.
    pub cluster_id: String,
    /// How the controller checks config values.
    pub config_schema: Arc<dyn ConfigSchema>,
    /// `broker.session.timeout.ms`: a broker not heard from for this long is fenced.
    pub broker_session_timeout: Duration,
    /// `leader.imbalance.check.interval.seconds` ([`LEADER_IMBALANCE_CHECK_INTERVAL`] by default): how often the
    /// active controller moves leadership back to in-sync preferred replicas; `None` when
    /// `auto.leader.rebalance.enable` is false.
    pub leader_imbalance_check_interval: Option<Duration>,
    /// `Some` makes this node an observer (`process.roles=broker`): it follows the metadata log without voting. The
    /// active controller replicates the log to it at this address (openraft's learners are pushed to, where KRaft's
    /// observers fetch), so an observer needs its own listener too.
    pub observer_address: Option<String>,
    /// `controller.quorum.*` (see `timeouts`).
    pub timeouts: QuorumTimeouts,
}

/// Large sources are boxed: this error travels inside every `ControllerError`.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error("invalid metadata quorum configuration: {0}")]
    InvalidConfig(String),
    #[error("metadata log dir {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    LogStore(Box<LogStoreError>),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("raft configuration: {0}")]
    RaftConfig(#[source] Box<openraft::ConfigError>),
    /// Raft stopped: shut down, or a storage failure stopped it.
    #[error("metadata raft stopped: {0}")]
    Stopped(#[source] Box<Fatal<NodeId>>),
    #[error("initialising the metadata quorum: {0}")]
    Initialize(#[source] Box<RaftError<NodeId, InitializeError<NodeId, BasicNode>>>),
    #[error("the metadata log database was still open {0:?} after shutdown")]
    StillOpen(Duration),
}

impl From<LogStoreError> for QuorumError {
    fn from(error: LogStoreError) -> QuorumError {
        QuorumError::LogStore(Box::new(error))
    }
}

impl From<openraft::ConfigError> for QuorumError {
    fn from(error: openraft::ConfigError) -> QuorumError {
        QuorumError::RaftConfig(Box::new(error))
    }
}

impl From<Fatal<NodeId>> for QuorumError {
    fn from(fatal: Fatal<NodeId>) -> QuorumError {
        QuorumError::Stopped(Box::new(fatal))
    }
}

/// The metadata quorum's state, as KRaft's DescribeQuorum reports it. Offsets are Raft log
/// positions (next index), the closest thing openraft has to KRaft's metadata log offsets.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuorumStatus {
    pub leader_id: Option<BrokerId>,
    /// The Raft term.
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<QuorumReplica>,
    /// Brokers that follow the log without voting (`process.roles=broker`).
    pub observers: Vec<QuorumReplica>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuorumReplica {
    pub replica_id: BrokerId,
    pub log_end_offset: i64,
    /// When the leader last heard from it, ms since the epoch; -1 when unknown (not asked of the leader).
    #[serde(default)]
    pub last_fetch_timestamp: i64,
    /// When it last held every committed entry; -1 when unknown.
    #[serde(default)]
    pub last_caught_up_timestamp: i64,
}

/// A handle on this node's member of the metadata quorum; clones share it.
#[derive(Clone)]
pub struct MetadataQuorum {
    node: Arc<QuorumNode>,
}

struct QuorumNode {
    node_id: NodeId,
    raft: Raft,
    controller: Arc<QuorumController>,
    channel: ControllerChannel,
    rpc_server: Mutex<Option<RpcServer>>,
    /// The controller's periodic tasks (session expiry, leader balance), stopped at shutdown.
    periodic: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    db: Weak<redb::Database>,
    cluster_id: Arc<str>,
    timeouts: QuorumTimeouts,
}

impl MetadataQuorum {
    /// Opens the metadata log dir, initialises a new cluster of the configured voters when the
    /// log is empty, starts Raft, and returns once this node has applied everything committed
    /// before the start: the listener has seen the full image by then.
    ///
    /// Waits as long as it takes to find a leader (a voter of a quorum that is down waits for
    /// the others); bound it with a timeout if needed: dropping the future stops everything.
    pub async fn start(
        config: QuorumConfig,
        listener: Arc<dyn MetadataListener>,
    ) -> Result<MetadataQuorum, QuorumError> {
        let node_id = node_id(config.node_id)?;
        let mut voters = BTreeMap::new();
        for (id, addr) in &config.voters {
            voters.insert(node_id_of_voter(*id)?, addr.clone());
        }
        let observer_address = config.observer_address.clone();
        match (&observer_address, voters.contains_key(&node_id)) {
            (None, false) => {
                return Err(QuorumError::InvalidConfig(format!(
                    "node.id {} is not in controller.quorum.voters {:?}",
                    config.node_id,
                    config.voters.keys().collect::<Vec<_>>()
                )))
            }
            (Some(_), true) => {
                return Err(QuorumError::InvalidConfig(format!(
                    "node.id {} is in controller.quorum.voters, so it cannot be an observer",
                    config.node_id
                )))
            }
            _ => {}
        }

        // tokio's intervals panic on a zero period; Kafka's minimum is one second.
        if config.leader_imbalance_check_interval == Some(Duration::ZERO) {
            return Err(QuorumError::InvalidConfig(
                "leader.imbalance.check.interval.seconds must be at least 1".to_string(),
            ));
        }

        if config.listener.is_none() && voters.len() > 1 {
            tracing::warn!("no raft rpc listener: the other voters cannot reach this one");
        }

        let dir = config.dir.clone();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|source| QuorumError::Io {
                path: dir.clone(),
                source,
            })?;
        let log_store = RedbLogStore::open(&dir.join("raft.redb")).await?;
        let db = log_store.downgrade();
        let snapshot_dir = dir.join("snapshots");
        let snapshots = tokio::task::spawn_blocking(move || SnapshotStore::open(snapshot_dir))
            .await
            .map_err(SnapshotError::from)??;
        let state = SharedState::default();
        let state_machine =
            MetadataStateMachine::open(snapshots, state.clone(), listener.clone()).await?;

        let timeouts = config.timeouts;
        let raft_config = raft_config(config.snapshot_after_entries, &timeouts)?;
        let cluster_id: Arc<str> = config.cluster_id.into();
        let contacts = Arc::new(PeerContacts::default());
        let network = TcpNetworkFactory::new(
            node_id,
            cluster_id.clone(),
            voters.clone(),
            timeouts.request_timeout(),
            contacts.clone(),
        );
        let raft = Raft::new(
            node_id,
            Arc::new(raft_config),
            network,
            log_store,
            state_machine,
        )
        .await?;
        let controller = Arc::new(QuorumController::new(
            raft.clone(),
            state,
            listener.clone(),
            config.config_schema,
            config.broker_session_timeout,
            contacts,
        ));
        let rpc_server = config.listener.map(|listener| {
            let target = RpcTarget {
                cluster_id: cluster_id.clone(),
                raft: raft.clone(),
                controller: controller.clone(),
            };
            RpcServer::spawn(listener, target)
        });
        let channel = ControllerChannel::new(
            node_id,
            cluster_id.clone(),
            raft.clone(),
            controller.clone(),
            voters.clone(),
            listener.clone(),
            timeouts,
        );
        let mut periodic = vec![tokio::spawn(fence_expired_brokers(controller.clone()))];
        if let Some(interval) = config.leader_imbalance_check_interval {
            periodic.push(tokio::spawn(balance_partition_leaders(
                controller.clone(),
                interval,
            )));
        }
        let quorum = MetadataQuorum {
            node: Arc::new(QuorumNode {
                node_id,
                controller,
                channel,
                raft,
                rpc_server: Mutex::new(rpc_server),
                periodic: Mutex::new(periodic),
                db,
                cluster_id,
                timeouts,
            }),
        };
        // From here a failure must stop Raft, or the database would stay open (and locked).
        let joined = match &observer_address {
            Some(address) => quorum.observe(config.node_id, address, &voters).await,
            None => quorum.join(&voters).await,
        };
        match joined {
            Ok(()) => {
                listener.caught_up().await;
                Ok(quorum)
            }
            Err(error) => {
                if let Err(shutdown_error) = quorum.shutdown().await {
                    tracing::warn!(%shutdown_error, "stopping the metadata quorum after a failed start");
                }
                Err(error)
            }
        }
    }

    /// This node's own controller; it acts only while this node leads. Brokers use [`MetadataQuorum::channel`].
    pub fn controller(&self) -> &QuorumController {
        &self.node.controller
    }

    /// The active controller, wherever it runs.
    pub fn channel(&self) -> &ControllerChannel {
        &self.node.channel
    }

    /// The quorum's current leader (the active controller), as far as this node knows.
    pub fn leader_id(&self) -> Option<BrokerId> {
        let leader = self.node.raft.metrics().borrow().current_leader;
        leader.and_then(BrokerId::from_node_id)
    }

    /// The quorum as this node sees it (see [`status_of`]).
    pub fn status(&self) -> QuorumStatus {
        status_of(&self.node.raft, &self.node.controller.contacts)
    }

    /// The quorum as its leader sees it (every voter's and observer's progress): asked of the active controller
    /// when that is another node, this node's own view if it cannot be reached.
    pub async fn describe(&self) -> QuorumStatus {
        if self.leader_id().and_then(BrokerId::to_node_id) == Some(self.node.node_id) {
            return self.status();
        }
        match self.node.channel.describe_quorum().await {
            Ok(status) => status,
            Err(_) => self.status(),
        }
    }

    /// Stops the RPC server and Raft, and returns once the database is closed, so that the same
    /// dir can be opened again.
    pub async fn shutdown(&self) -> Result<(), QuorumError> {
        let periodic = std::mem::take(
            &mut *self
                .node
                .periodic
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for task in periodic {
            task.abort();
            let _ = task.await;
        }
        let server = self
            .node
            .rpc_server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(server) = server {
            server.stop().await;
        }
        if let Err(error) = self.node.raft.shutdown().await {
            tracing::warn!(%error, "metadata raft task ended abnormally");
        }
        // openraft's tasks release their handles on the database as they finish.
        let started = Instant::now();
        while self.node.db.strong_count() > 0 {
            if started.elapsed() > CLOSE_TIMEOUT {
                return Err(QuorumError::StillOpen(CLOSE_TIMEOUT));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    async fn join(&self, voters: &BTreeMap<NodeId, String>) -> Result<(), QuorumError> {
        let raft = &self.node.raft;
        if raft.is_initialized().await? {
            self.check_membership(voters)?;
        } else {
            // Every voter bootstraps with the same membership at log index 0, so whichever
            // voters get here first agree, and the others find their logs already started.
            let members: BTreeMap<NodeId, BasicNode> = voters
                .iter()
                .map(|(id, addr)| (*id, BasicNode::new(addr)))
                .collect();
            match raft.initialize(members).await {
                Ok(()) => tracing::info!(?voters, "initialised a new metadata quorum"),
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(error) => return Err(QuorumError::Initialize(Box::new(error))),
            }
        }
        self.wait_caught_up(voters).await
    }

    /// An observer asks the active controller to replicate the metadata log to it (as an openraft learner; a retry,
    /// or a restart, finds it added already), then catches up like a voter.
    async fn observe(
        &self,
        broker_id: BrokerId,
        address: &str,
        voters: &BTreeMap<NodeId, String>,
    ) -> Result<(), QuorumError> {
        let mut last_report = Instant::now();
        loop {
            match self
                .node
                .channel
                .add_observer(broker_id, address.to_string())
                .await
            {
                Ok(()) => break,
                Err(error @ ControllerError::InvalidRequest(_)) => {
                    return Err(QuorumError::InvalidConfig(error.to_string()))
                }
                Err(error) => {
                    if last_report.elapsed() >= START_PROGRESS_INTERVAL {
                        last_report = Instant::now();
                        tracing::info!(%error, "still waiting for the active controller to add this observer");
                    }
                    tokio::time::sleep(self.node.timeouts.retry_backoff()).await;
                }
            }
        }
        tracing::info!(address, "following the metadata log as an observer");
        self.wait_caught_up(voters).await
    }

    /// A log dir from another cluster, or a changed `node.id`, would leave this node waiting
    /// forever for an election it cannot take part in: refuse it instead.
    fn check_membership(&self, voters: &BTreeMap<NodeId, String>) -> Result<(), QuorumError> {
        let metrics = self.node.raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        let stored: Vec<NodeId> = membership.voter_ids().collect();
        // A voter that has only voted (for a peer that bootstrapped first) holds no membership yet: it gets the
        // membership entry by replication, so there is nothing to check.
        if stored.is_empty() {
            return Ok(());
        }
        if !stored.contains(&self.node.node_id) {
            return Err(QuorumError::InvalidConfig(format!(
                "node.id {} is not a voter of the quorum stored in the metadata log (voters \
                 {stored:?})",
                self.node.node_id
            )));
        }
        let configured: Vec<NodeId> = voters.keys().copied().collect();
        if stored != configured {
            // Voter changes need a membership change through Raft, which is not built yet.
            tracing::warn!(
                ?stored,
                ?configured,
                "controller.quorum.voters differs from the stored quorum; using the stored one"
            );
        }
        Ok(())
    }

    /// Waits until this node has applied everything the quorum committed before now: asks the
    /// leader (itself, or over RPC) for its read index, which it confirms with a quorum first,
    /// then waits to apply up to it. Asking is what makes a restarted node wait for the current
    /// leader rather than trust the leader or term it remembers from before.
    async fn wait_caught_up(&self, voters: &BTreeMap<NodeId, String>) -> Result<(), QuorumError> {
        let raft = &self.node.raft;
        let me = self.node.node_id;
        let mut metrics = raft.metrics();
        let mut peers: BTreeMap<NodeId, PeerConnection> = BTreeMap::new();
        let mut last_report = Instant::now();
        loop {
            let (leader, leader_addr) = {
                let m = metrics.borrow_and_update();
                if let Err(fatal) = &m.running_state {
                    return Err(fatal.clone().into());
                }
                let leader = m.current_leader;
                let addr = leader.and_then(|l| {
                    let stored = m.membership_config.membership().get_node(&l);
                    voters.get(&l).cloned().or(stored.map(|n| n.addr.clone()))
                });
                (leader, addr)
            };
            let read_index = match (leader, leader_addr) {
                (Some(leader), _) if leader == me => {
                    match tokio::time::timeout(
                        self.node.timeouts.request_timeout(),
                        raft.get_read_log_id(),
                    )
                    .await
                    {
                        Ok(Ok((read, _applied))) => Some(read),
                        Ok(Err(RaftError::Fatal(fatal))) => return Err(fatal.into()),
                        Ok(Err(RaftError::APIError(_))) | Err(_) => None,
                    }
                }
                (Some(leader), Some(addr)) => {
                    peers
                        .entry(leader)
                        .or_insert_with(|| {
                            PeerConnection::new(
                                me,
                                leader,
                                addr,
                                self.node.cluster_id.clone(),
                                self.node.timeouts.request_timeout(),
                            )
                        })
                        .read_index(self.node.timeouts.request_timeout())
                        .await
                }
                _ => None,
            };
            if let Some(read) = read_index {
                let index = read.map(|id| id.index);
                let applied = raft
                    .wait(Some(CATCH_UP_TIMEOUT))
                    .applied_index_at_least(index, "catching up with the metadata quorum")
                    .await;
                match applied {
                    Ok(m) => {
                        tracing::info!(leader = ?m.current_leader, applied = ?m.last_applied, "metadata quorum caught up");
                        return Ok(());
                    }
                    Err(WaitError::ShuttingDown) => return Err(Fatal::Stopped.into()),
                    Err(WaitError::Timeout(..)) => {}
                }
            }
            if last_report.elapsed() >= START_PROGRESS_INTERVAL {
                last_report = Instant::now();
                let m = metrics.borrow();
                tracing::info!(
                    leader = ?m.current_leader,
                    term = m.current_term,
                    applied = ?m.last_applied,
                    "still waiting for the metadata quorum"
                );
            }
            // Wake on news (a leader elected) or retry after a while.
            let _ =
                tokio::time::timeout(self.node.timeouts.retry_backoff(), metrics.changed()).await;
        }
    }
}

/// The quorum as this node's openraft metrics show it. Replication progress is known only on the leader;
/// elsewhere the replicas are listed with unknown offsets (-1).
pub(crate) fn status_of(raft: &Raft, contacts: &PeerContacts) -> QuorumStatus {
    let now_ms = crate::network::now_ms();
    let metrics = raft.metrics().borrow().clone();
    let next_offset = |log_id: Option<&openraft::LogId<NodeId>>| {
        log_id.map_or(0, |id| i64::try_from(id.index + 1).unwrap_or(i64::MAX))
    };
    let replication = metrics.replication.clone().unwrap_or_default();
    let replica = |id: NodeId| {
        let broker = BrokerId::from_node_id(id)?;
        let log_end_offset = if id == metrics.id {
            metrics
                .last_log_index
                .map_or(0, |i| i64::try_from(i + 1).unwrap_or(i64::MAX))
        } else {
            match replication.get(&id) {
                Some(matched) => next_offset(matched.as_ref()),
                None => -1,
            }
        };
        // The leader itself is current by definition, as in Kafka; the others as their replication last went.
        let (last_fetch_timestamp, last_caught_up_timestamp) = if id == metrics.id {
            (now_ms, now_ms)
        } else {
            contacts
                .get(id)
                .map_or((-1, -1), |c| (c.last_fetch_ms, c.last_caught_up_ms))
        };
        Some(QuorumReplica {
            replica_id: broker,
            log_end_offset,
            last_fetch_timestamp,
            last_caught_up_timestamp,
        })
    };
    let membership = metrics.membership_config.membership();
    QuorumStatus {
        leader_id: metrics.current_leader.and_then(BrokerId::from_node_id),
        leader_epoch: i32::try_from(metrics.current_term).unwrap_or(i32::MAX),
        high_watermark: next_offset(metrics.last_applied.as_ref()),
        voters: membership.voter_ids().filter_map(replica).collect(),
        observers: membership.learner_ids().filter_map(replica).collect(),
    }
}

/// Fences brokers whose sessions expired, for as long as the quorum runs; only the active controller finds any.
async fn fence_expired_brokers(controller: Arc<QuorumController>) {
    let mut interval = tokio::time::interval(FENCING_CHECK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(error) = controller.fence_expired_brokers().await {
            tracing::debug!(%error, "fencing expired brokers");
        }
    }
}

/// Moves leadership back to preferred replicas every `interval`, for as long as the quorum runs; only the active
/// controller finds anything to do. The first pass waits a whole interval, as Kafka's does.
async fn balance_partition_leaders(controller: Arc<QuorumController>, interval: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(error) = controller.balance_partition_leaders().await {
            tracing::debug!(%error, "moving leadership to preferred replicas");
        }
    }
}

fn node_id(broker_id: BrokerId) -> Result<NodeId, QuorumError> {
    broker_id
        .to_node_id()
        .ok_or_else(|| QuorumError::InvalidConfig(format!("node.id {broker_id} is negative")))
}

fn node_id_of_voter(broker_id: BrokerId) -> Result<NodeId, QuorumError> {
    broker_id.to_node_id().ok_or_else(|| {
        QuorumError::InvalidConfig(format!(
            "controller.quorum.voters has a negative id {broker_id}"
        ))
    })
}

fn raft_config(
    snapshot_after_entries: u64,
    timeouts: &QuorumTimeouts,
) -> Result<openraft::Config, QuorumError> {
    let snapshot_policy = match snapshot_after_entries {
        0 => SnapshotPolicy::Never,
        n => SnapshotPolicy::LogsSinceLast(n),
    };
    let config = openraft::Config {
        cluster_name: CLUSTER_NAME.to_string(),
        election_timeout_min: timeouts.election_timeout_min_ms(),
        election_timeout_max: timeouts.election_timeout_max_ms(),
        heartbeat_interval: timeouts.heartbeat_interval_ms(),
        install_snapshot_timeout: INSTALL_SNAPSHOT_TIMEOUT_MS,
        snapshot_policy,
        snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
        // Keep one snapshot interval of log behind the snapshot, so that a follower a little
        // behind catches up from the log rather than by a whole snapshot.
        max_in_snapshot_log_to_keep: snapshot_after_entries,
        ..Default::default()
    };
    Ok(config.validate()?)
}
