//! The node: checks which cluster its log directory belongs to, recovers the logs, starts the metadata quorum,
//! registers the broker and waits to be unfenced, wires the request layer ([`KafkaApis`]) to the transport
//! ([`crate::server`]) and takes them all down cleanly.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ferrite_raft::{MetadataListener, MetadataQuorum, QuorumConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::alter_configs::Schema;
use crate::api::KafkaApis;
use crate::broker_lifecycle::{BrokerLifecycleManager, LifecycleError};
use crate::config::BrokerConfig;
use crate::coordinator::group::GroupCoordinator;
use crate::coordinator::transaction::TransactionCoordinator;
use crate::metadata::{MetadataLoader, MetadataPublisher};
use crate::metrics::broker_metrics;
use crate::metrics::scrape::{self, NodeParts};
use crate::replica::ReplicaManager;
use crate::server::ops::Operations;
use crate::server::{ConnectionLimits, Shutdown};
use crate::storage::meta_properties::{MetaProperties, MetaPropertiesError};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot use the log directory {path}")]
    LogDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    MetaProperties(#[from] MetaPropertiesError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot start the metadata loader's thread")]
    Loader(#[source] std::io::Error),
    #[error("the metadata quorum failed")]
    Quorum(#[from] ferrite_raft::QuorumError),
    #[error("cannot join the cluster")]
    Lifecycle(#[from] LifecycleError),
}

/// A running node: the metadata quorum (as a voter, or as an observer on a broker-only node) and, unless it is a
/// controller only, the broker.
pub struct Node {
    quorum: MetadataQuorum,
    loader: Arc<MetadataLoader>,
    broker: Option<BrokerServer>,
    ops: Option<OpsServer>,
}

/// The operations listener (`ops.listener`) and what it serves.
struct OpsServer {
    operations: Arc<NodeOperations>,
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// What `/metrics` and `/ready` read of this node. The listener is up before the metadata quorum has started
/// (which may wait for an election), so the parts arrive later; until then /metrics shows the event metrics alone.
struct NodeOperations {
    parts: std::sync::OnceLock<NodeParts>,
    ready: AtomicBool,
}

impl Operations for NodeOperations {
    async fn metrics(&self) -> String {
        let mut text = String::with_capacity(32 * 1024);
        // Writing to a String cannot fail.
        let _ = broker_metrics().encode(&mut text);
        if let Some(parts) = self.parts.get() {
            let _ = crate::metrics::scrape::encode(parts, &mut text).await;
        }
        text
    }

    fn ready(&self) -> Result<(), String> {
        match self.ready.load(Ordering::Acquire) {
            true => Ok(()),
            false => Err("catching up with the metadata log".into()),
        }
    }
}

impl OpsServer {
    fn start(listener: TcpListener) -> OpsServer {
        let local_addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let operations = Arc::new(NodeOperations {
            parts: std::sync::OnceLock::new(),
            ready: AtomicBool::new(false),
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(crate::server::ops::run(
            listener,
            operations.clone(),
            Shutdown::new(stopped),
        ));
        tracing::info!(%local_addr, "ops listener (/metrics, /health, /ready) is listening");
        OpsServer {
            operations,
            local_addr,
            stop,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The broker side of a node: the request layer, its transport and its background tasks.
struct BrokerServer {
    apis: Arc<KafkaApis>,
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    accept: JoinHandle<()>,
    housekeeping: JoinHandle<()>,
    transaction_housekeeping: JoinHandle<()>,
    lifecycle: BrokerLifecycleManager,
}

/// What the broker side is made of before the quorum starts: its publishers must hear the first image.
struct BrokerParts {
    client_listener: TcpListener,
    local_addr: SocketAddr,
    replicas: Arc<ReplicaManager>,
    groups: Arc<GroupCoordinator>,
    transactions: Arc<TransactionCoordinator>,
}

impl Node {
    /// Checks the log directory's cluster, recovers the logs, starts the metadata quorum and, for a broker,
    /// registers, waits to be unfenced and starts accepting clients.
    pub async fn start(config: BrokerConfig) -> Result<Node, NodeError> {
        let log_dir = config.log_dirs.clone();
        std::fs::create_dir_all(&log_dir).map_err(|source| NodeError::LogDir {
            path: log_dir.clone(),
            source,
        })?;
        let sole_voter = config.controller_quorum_voters.len() == 1
            && config
                .controller_quorum_voters
                .contains_key(&config.node_id);
        let meta = MetaProperties::load_or_format(
            &log_dir,
            config.node_id,
            config.cluster.cluster_id.as_deref(),
            sole_voter,
        )?;
        let cluster_id = meta.cluster_id;

        let controller = config.controller_listener().cloned().ok_or_else(|| {
            crate::config::ConfigError::Invalid {
                key: "listeners".into(),
                value: String::new(),
                reason: "no controller listener".into(),
            }
        })?;
        let controller_listener = bind(controller.socket_addr()?).await?;
        let ops = match config.ops_listener {
            Some(addr) => Some(OpsServer::start(bind(addr).await?)),
            None => None,
        };
        let controller_port = controller_listener
            .local_addr()
            .map_or(controller.port, |a| a.port());
        let broker = match config.is_broker() {
            true => Some(BrokerParts::new(&config).await?),
            false => None,
        };
        // The coordinators hear each update after the replica manager, so the partitions they load are open.
        let publishers: Vec<Arc<dyn MetadataPublisher>> = match &broker {
            Some(parts) => vec![
                parts.replicas.clone(),
                parts.groups.clone(),
                parts.transactions.clone(),
            ],
            None => Vec::new(),
        };
        let loader = MetadataLoader::start(publishers).map_err(NodeError::Loader)?;
        let observer_address =
            (!config.is_controller()).then(|| format!("{}:{controller_port}", controller.host));
        let quorum = MetadataQuorum::start(
            QuorumConfig {
                node_id: config.node_id,
                dir: log_dir.join("__cluster_metadata-0"),
                voters: config.controller_quorum_voters.clone(),
                listener: Some(controller_listener),
                snapshot_after_entries: config.metadata_snapshot_after_entries,
                cluster_id: cluster_id.clone(),
                config_schema: Arc::new(Schema {
                    config: config.clone(),
                }),
                broker_session_timeout: std::time::Duration::from_millis(
                    config.cluster.session_timeout_ms,
                ),
                leader_imbalance_check_interval: config.cluster.auto_leader_rebalance_enable.then(
                    || {
                        std::time::Duration::from_secs(
                            config.cluster.leader_imbalance_check_interval_seconds,
                        )
                    },
                ),
                observer_address,
                timeouts: config.cluster.quorum,
            },
            loader.clone(),
        )
        .await?;
        if let Some(ops) = &ops {
            let parts = NodeParts {
                node_id: config.node_id,
                quorum: quorum.clone(),
                metadata: loader.clone(),
                broker: broker.as_ref().map(|b| scrape::BrokerParts {
                    replicas: b.replicas.clone(),
                    groups: b.groups.clone(),
                }),
            };
            let _ = ops.operations.parts.set(parts);
        }
        let broker = match broker {
            Some(parts) => {
                let started = parts
                    .start(config, cluster_id.clone(), quorum.clone(), loader.clone())
                    .await;
                match started {
                    Ok(server) => Some(server),
                    Err(error) => {
                        if let Some(ops) = ops {
                            ops.stop().await;
                        }
                        let _ = quorum.shutdown().await;
                        return Err(error);
                    }
                }
            }
            None => {
                tracing::info!(%cluster_id, controller = %format!("{}:{controller_port}", controller.host), "ferrite controller is running");
                None
            }
        };
        if let Some(ops) = &ops {
            ops.operations.ready.store(true, Ordering::Release);
        }
        Ok(Node {
            quorum,
            loader,
            broker,
            ops,
        })
    }

    /// Where the operations listener is (`ops.listener`, the bound address), if it is on.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        self.ops.as_ref().map(|ops| ops.local_addr)
    }

    /// Where clients reach this node (the bound address, which matters when the configured port was 0); `None`
    /// on a controller-only node.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.broker.as_ref().map(|b| b.local_addr)
    }

    /// Stops accepting, lets connections finish the requests in flight, stops the quorum and closes every log.
    pub async fn shutdown(self) {
        let broker = match self.broker {
            Some(broker) => {
                // Fenced first, so that Metadata stops sending clients here while the node winds down.
                broker.lifecycle.shutdown().await;
                let _ = broker.stop.send(true);
                let _ = broker.accept.await;
                let _ = broker.housekeeping.await;
                let _ = broker.transaction_housekeeping.await;
                Some(broker.apis)
            }
            None => None,
        };
        if let Err(error) = self.quorum.shutdown().await {
            tracing::error!(%error, "metadata quorum did not stop cleanly");
        }
        // The last committed entries may still be on their way to the publishers; let them land before the
        // partitions close, so no log is opened after shutdown.
        self.loader.caught_up().await;
        if let Some(apis) = broker {
            apis.transactions.shutdown();
            apis.groups.shutdown();
            apis.replicas.shutdown();
        }
        if let Some(ops) = self.ops {
            ops.stop().await;
        }
        tracing::info!("ferrite stopped");
    }
}

impl BrokerParts {
    /// Binds the client listener and builds the replica manager and coordinators (the logs open as the first
    /// image arrives).
    async fn new(config: &BrokerConfig) -> Result<BrokerParts, NodeError> {
        let client = config.client_listener().cloned().ok_or_else(|| {
            crate::config::ConfigError::Invalid {
                key: "listeners".into(),
                value: String::new(),
                reason: "no client listener".into(),
            }
        })?;
        let client_listener = bind(client.socket_addr()?).await?;
        let local_addr = client_listener
            .local_addr()
            .map_err(|source| NodeError::Bind {
                addr: client.socket_addr().unwrap_or(([0, 0, 0, 0], 0).into()),
                source,
            })?;
        let replicas = Arc::new(ReplicaManager::new(config.clone()));
        let groups = Arc::new(GroupCoordinator::new(
            config.node_id,
            config.group_coordinator.clone(),
            replicas.clone(),
        ));
        let transactions = Arc::new(TransactionCoordinator::new(
            config.node_id,
            config.transaction_coordinator.clone(),
            replicas.clone(),
            groups.clone(),
        ));
        Ok(BrokerParts {
            client_listener,
            local_addr,
            replicas,
            groups,
            transactions,
        })
    }

    /// Registers with the controller, waits to be unfenced, then serves clients.
    async fn start(
        self,
        config: BrokerConfig,
        cluster_id: String,
        quorum: MetadataQuorum,
        loader: Arc<MetadataLoader>,
    ) -> Result<BrokerServer, NodeError> {
        let local_addr = self.local_addr;
        let (host, port) = config.advertised_endpoint(local_addr);
        let lifecycle = BrokerLifecycleManager::start(
            quorum.clone(),
            loader.clone(),
            config.node_id,
            host.clone(),
            port,
            &config.cluster,
        )
        .await?;
        self.replicas
            .set_alter_partition_sender(lifecycle.alter_partition_sender());
        lifecycle.wait_unfenced().await?;
        tracing::info!(%cluster_id, node_id = config.node_id.0, %local_addr, advertised = %format!("{host}:{port}"), "ferrite is listening");

        let (stop, stopped) = watch::channel(false);
        let limits = ConnectionLimits::from_config(&config);
        let apis = Arc::new(KafkaApis::new(
            config,
            cluster_id,
            self.replicas.clone(),
            quorum,
            self.groups,
            self.transactions.clone(),
            loader,
        ));
        let accept = tokio::spawn(crate::server::run(
            apis.clone(),
            limits,
            self.client_listener,
            Shutdown::new(stopped.clone()),
        ));
        let transaction_housekeeping =
            tokio::spawn(self.transactions.run_housekeeping(stopped.clone()));
        let housekeeping = tokio::spawn(self.replicas.run_housekeeping(stopped));
        Ok(BrokerServer {
            apis,
            local_addr,
            stop,
            accept,
            housekeeping,
            transaction_housekeeping,
            lifecycle,
        })
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { addr, source })
}
