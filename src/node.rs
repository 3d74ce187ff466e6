//! The node: recovers the logs, starts the metadata quorum, registers the broker, wires the request layer
//! ([`KafkaApis`]) to the transport ([`crate::server`]) and takes them all down cleanly.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use ferrite_raft::{MetadataListener, MetadataQuorum, QuorumConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::KafkaApis;
use crate::config::BrokerConfig;
use crate::coordinator::group::GroupCoordinator;
use crate::coordinator::transaction::TransactionCoordinator;
use crate::metadata::{MetadataLoader, MetadataPublisher};
use crate::replica::ReplicaManager;
use crate::server::{ConnectionLimits, Shutdown};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot use the log directory {path}")]
    LogDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} in meta.properties does not match this node's configuration")]
    MetaProperties(String),
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
    #[error("cannot register this broker with the controller")]
    Register(#[from] ferrite_raft::ControllerError),
}

/// A running node.
pub struct Node {
    pub apis: Arc<KafkaApis>,
    loader: Arc<MetadataLoader>,
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    accept: JoinHandle<()>,
    housekeeping: JoinHandle<()>,
    transaction_housekeeping: JoinHandle<()>,
}

impl Node {
    /// Recovers the logs, starts the metadata quorum, registers the broker and starts accepting clients.
    pub async fn start(config: BrokerConfig) -> Result<Node, NodeError> {
        let log_dir = config.log_dirs.clone();
        std::fs::create_dir_all(&log_dir).map_err(|source| NodeError::LogDir {
            path: log_dir.clone(),
            source,
        })?;
        let cluster_id = load_or_create_meta_properties(&log_dir, &config)?;

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
        let controller_listener = match config.controller_listener() {
            Some(listener) => Some(bind(listener.socket_addr()?).await?),
            None => None,
        };

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
        // The coordinators hear each update after the replica manager, so the partitions they load are open.
        let loader = MetadataLoader::start(vec![
            replicas.clone() as Arc<dyn MetadataPublisher>,
            groups.clone() as Arc<dyn MetadataPublisher>,
            transactions.clone() as Arc<dyn MetadataPublisher>,
        ])
        .map_err(NodeError::Loader)?;
        let quorum = MetadataQuorum::start(
            QuorumConfig {
                node_id: config.node_id,
                dir: log_dir.join("__cluster_metadata-0"),
                voters: config.controller_quorum_voters.clone(),
                listener: controller_listener,
                snapshot_after_entries: config.metadata_snapshot_after_entries,
            },
            loader.clone(),
        )
        .await?;
        let (host, port) = config.advertised_endpoint(local_addr);
        quorum
            .controller()
            .register_broker(config.node_id, host.clone(), port, None)
            .await?;
        tracing::info!(%cluster_id, node_id = config.node_id.0, %local_addr, advertised = %format!("{host}:{port}"), "ferrite is listening");

        let (stop, stopped) = watch::channel(false);
        let limits = ConnectionLimits::from_config(&config);
        let apis = Arc::new(KafkaApis::new(
            config,
            cluster_id,
            replicas.clone(),
            quorum,
            groups,
            transactions.clone(),
            loader.clone(),
        ));
        let accept = tokio::spawn(crate::server::run(
            apis.clone(),
            limits,
            client_listener,
            Shutdown::new(stopped.clone()),
        ));
        let transaction_housekeeping = tokio::spawn(transactions.run_housekeeping(stopped.clone()));
        let housekeeping = tokio::spawn(replicas.run_housekeeping(stopped));
        Ok(Node {
            apis,
            loader,
            local_addr,
            stop,
            accept,
            housekeeping,
            transaction_housekeeping,
        })
    }

    /// Where clients reach this node (the bound address, which matters when the configured port was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets connections finish the requests in flight, stops the quorum and closes every log.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.accept.await;
        let _ = self.housekeeping.await;
        let _ = self.transaction_housekeeping.await;
        if let Err(error) = self.apis.quorum.shutdown().await {
            tracing::error!(%error, "metadata quorum did not stop cleanly");
        }
        // The last committed entries may still be on their way to the publishers; let them land before the
        // partitions close, so no log is opened after shutdown.
        self.loader.caught_up().await;
        self.apis.transactions.shutdown();
        self.apis.groups.shutdown();
        self.apis.replicas.shutdown();
        tracing::info!("ferrite stopped");
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { addr, source })
}

/// KRaft's `meta.properties`: the cluster id this directory belongs to, created on first start (what
/// `kafka-storage format` does for Kafka).
fn load_or_create_meta_properties(
    log_dir: &Path,
    config: &BrokerConfig,
) -> Result<String, NodeError> {
    let path = log_dir.join("meta.properties");
    let io_error = |source| NodeError::LogDir {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let value = |key: &str| {
                text.lines()
                    .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                    .map(str::trim)
                    .map(String::from)
            };
            if value("node.id").and_then(|id| id.parse::<i32>().ok()) != Some(config.node_id.0) {
                return Err(NodeError::MetaProperties("node.id".into()));
            }
            value("cluster.id").ok_or_else(|| NodeError::MetaProperties("cluster.id".into()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let cluster_id = new_cluster_id();
            let text = format!(
                "version=1\ncluster.id={cluster_id}\nnode.id={}\n",
                config.node_id.0
            );
            let tmp = log_dir.join("meta.properties.tmp");
            std::fs::write(&tmp, text).map_err(io_error)?;
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(io_error)?;
            std::fs::rename(&tmp, &path).map_err(io_error)?;
            Ok(cluster_id)
        }
        Err(e) => Err(io_error(e)),
    }
}

/// Kafka's cluster ids are a random UUID in URL-safe base64 without padding (22 characters).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = uuid::Uuid::new_v4().as_u128();
    (0..22)
        .map(|i| ALPHABET[((bits >> (i * 6)) & 63) as usize] as char)
        .collect()
}
