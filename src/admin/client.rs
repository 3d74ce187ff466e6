//! AdminClient: a cluster seen through its bootstrap servers — the brokers it has, connections to each on demand,
//! and the node to send a request to (any broker, a partition's leader, a group's coordinator).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::metadata_response::MetadataResponse;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::connection::{Connection, ConnectionSettings};
use super::error::{ClientError, KafkaError};

/// Metadata from v4 on lets us turn off auto-creation: an admin tool must never create what it looks up.
const METADATA_VERSIONS: VersionRange = VersionRange { min: 4, max: 13 };
const RETRY_BACKOFF: Duration = Duration::from_millis(200);
const GROUP_KEY_TYPE: i8 = 0;

pub struct AdminClient {
    settings: ConnectionSettings,
    bootstrap: Arc<Connection>,
    /// host:port of each broker, by node id, from the latest Metadata or FindCoordinator response.
    brokers: Mutex<HashMap<i32, String>>,
    connections: tokio::sync::Mutex<HashMap<i32, Arc<Connection>>>,
}

impl AdminClient {
    /// Connects to the first bootstrap server that answers and learns the cluster's brokers.
    pub async fn connect(
        bootstrap_servers: &str,
        settings: ConnectionSettings,
    ) -> Result<AdminClient, ClientError> {
        let servers: Vec<&str> = bootstrap_servers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if servers.is_empty() || servers.iter().any(|s| !is_host_port(s)) {
            return Err(ClientError::BadBootstrap(bootstrap_servers.to_string()));
        }
        let mut last_error = None;
        for server in servers {
            match Connection::connect(server, &settings).await {
                Ok(connection) => {
                    let client = AdminClient {
                        settings,
                        bootstrap: Arc::new(connection),
                        brokers: Mutex::new(HashMap::new()),
                        connections: tokio::sync::Mutex::new(HashMap::new()),
                    };
                    client.metadata(Some(&[])).await?;
                    return Ok(client);
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| ClientError::BadBootstrap(bootstrap_servers.to_string())))
    }

    pub fn bootstrap(&self) -> &Arc<Connection> {
        &self.bootstrap
    }

    /// Metadata for the named topics (`None`: every topic), never creating any; refreshes the broker list.
    pub async fn metadata(
        &self,
        topics: Option<&[String]>,
    ) -> Result<MetadataResponse, ClientError> {
        let response = self
            .bootstrap
            .send_within(METADATA_VERSIONS, |_| {
                MetadataRequest::default()
                    .with_allow_auto_topic_creation(false)
                    .with_topics(topics.map(|names| {
                        names
                            .iter()
                            .map(|name| {
                                MetadataRequestTopic::default()
                                    .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                            })
                            .collect()
                    }))
            })
            .await?;
        let mut brokers = lock(&self.brokers);
        for broker in &response.brokers {
            brokers.insert(broker.node_id.0, format!("{}:{}", broker.host, broker.port));
        }
        Ok(response)
    }

    /// Node ids of the brokers in the latest metadata, ascending.
    pub fn broker_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = lock(&self.brokers).keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// A connection to a broker by node id, opened on first use.
    pub async fn node(&self, node_id: i32) -> Result<Arc<Connection>, ClientError> {
        let mut connections = self.connections.lock().await;
        if let Some(connection) = connections.get(&node_id) {
            return Ok(connection.clone());
        }
        let addr = lock(&self.brokers)
            .get(&node_id)
            .cloned()
            .ok_or(ClientError::UnknownBroker(node_id))?;
        let connection = if addr == self.bootstrap.addr() {
            self.bootstrap.clone()
        } else {
            Arc::new(Connection::connect(&addr, &self.settings).await?)
        };
        connections.insert(node_id, connection.clone());
        Ok(connection)
    }

    /// The connection for cluster-wide changes (CreateTopics, CreatePartitions, configs). In KRaft any broker
    /// forwards them to the active controller, so the bootstrap connection serves, as for Kafka's AdminClient.
    pub fn any_broker(&self) -> Arc<Connection> {
        self.bootstrap.clone()
    }

    /// The coordinator of a consumer group (node id and connection), retrying while it is being elected or loaded.
    pub async fn group_coordinator(
        &self,
        group: &str,
    ) -> Result<(i32, Arc<Connection>), ClientError> {
        let deadline = Instant::now() + self.settings.request_timeout;
        loop {
            match self.find_group_coordinator(group).await {
                Ok(node_id) => return Ok((node_id, self.node(node_id).await?)),
                Err(ClientError::Kafka(error))
                    if error.error.is_retriable() && Instant::now() + RETRY_BACKOFF < deadline =>
                {
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn find_group_coordinator(&self, group: &str) -> Result<i32, ClientError> {
        let mut batched = false;
        let response = self
            .bootstrap
            .send(|version| {
                let request = FindCoordinatorRequest::default();
                let request = if version >= 1 {
                    request.with_key_type(GROUP_KEY_TYPE)
                } else {
                    request
                };
                // v4 (KIP-699) looks up a batch of keys; we ask for one either way.
                batched = version >= 4;
                if batched {
                    request.with_coordinator_keys(vec![StrBytes::from_string(group.to_string())])
                } else {
                    request.with_key(StrBytes::from_string(group.to_string()))
                }
            })
            .await?;
        let (node_id, host, port, error_code, message) = if batched {
            let Some(c) = response.coordinators.into_iter().next() else {
                return Err(KafkaError {
                    error: ResponseError::UnknownServerError,
                    message: Some("FindCoordinator answered no coordinator".to_string()),
                }
                .into());
            };
            (c.node_id.0, c.host, c.port, c.error_code, c.error_message)
        } else {
            (
                response.node_id.0,
                response.host,
                response.port,
                response.error_code,
                response.error_message,
            )
        };
        if let Some(error) = KafkaError::from_code(error_code, message.as_deref()) {
            return Err(error.into());
        }
        lock(&self.brokers).insert(node_id, format!("{host}:{port}"));
        Ok(node_id)
    }
}

fn is_host_port(server: &str) -> bool {
    server
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
