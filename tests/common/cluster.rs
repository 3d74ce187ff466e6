//! Test harness for clusters: several `ferrite` processes on 127.0.0.1, each with its own data directory and its
//! own client and controller ports, voters of one quorum, formatted for one cluster id. Nodes are killed with
//! SIGKILL, paused with SIGSTOP (a broker that stops heartbeating while its sockets stay open) and restarted on the
//! same directory and ports. [`TestCluster::start_isolated`] puts each node in a network namespace of its own
//! ([`Network`]), so that a test can cut it off from its peers. [`produce`] and [`read_all`] write acks=all records
//! and read them back, for the tests that check none was lost.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::netns::Network;

/// Kafka's 9 s session would make fencing tests slow; these keep them to a few seconds.
pub const SESSION_TIMEOUT_MS: u64 = 3000;
const HEARTBEAT_INTERVAL_MS: u64 = 500;
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// `process.roles` of a test node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Combined,
    Broker,
    Controller,
}

impl Role {
    fn process_roles(self) -> &'static str {
        match self {
            Role::Combined => "broker,controller",
            Role::Broker => "broker",
            Role::Controller => "controller",
        }
    }

    fn votes(self) -> bool {
        self != Role::Broker
    }

    /// What the node logs once it is up: a broker once it serves clients, a controller once it has joined.
    fn ready_line(self) -> &'static str {
        match self {
            Role::Controller => "ferrite controller is running",
            _ => "ferrite is listening",
        }
    }
}

pub struct ClusterNode {
    pub node_id: i32,
    pub role: Role,
    /// The address it listens on: 127.0.0.1, or its own in its namespace.
    pub host: String,
    /// The network namespace it runs in, if any.
    namespace: Option<String>,
    pub client_port: u16,
    pub controller_port: u16,
    /// `ops.listener`'s port (/metrics, /health, /ready), on `host`.
    pub ops_port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    /// Flags every start of this node gets.
    args: Vec<String>,
    /// Every line the node logged, across restarts.
    logs: Arc<Mutex<Vec<String>>>,
}

pub struct TestCluster {
    pub cluster_id: String,
    pub nodes: Vec<ClusterNode>,
    /// The namespaces of [`start_isolated`](Self::start_isolated); dropped after the nodes.
    pub network: Option<Network>,
    _temp: tempfile::TempDir,
}

impl TestCluster {
    /// Starts `size` combined nodes (broker and controller each) and waits until every one serves clients.
    pub fn start(size: usize) -> TestCluster {
        Self::start_roles(&vec![Role::Combined; size])
    }

    /// Starts one node per role (node ids 1, 2, ... in order; the controllers are the voters) and waits until
    /// every one is up.
    pub fn start_roles(roles: &[Role]) -> TestCluster {
        Self::start_with_intruders(roles, &[])
    }

    /// As [`start_roles`](Self::start_roles), but the nodes in `intruders` are formatted for another cluster id; they
    /// are started and not waited for.
    pub fn start_with_intruders(roles: &[Role], intruders: &[i32]) -> TestCluster {
        Self::launch(roles, intruders, None)
    }

    /// Starts `size` combined nodes, each in a network namespace of its own with its own address (ports 9092 and
    /// 9093 on it), and waits until every one serves clients. Needs root.
    pub fn start_isolated(size: usize) -> TestCluster {
        let ids: Vec<i32> = (1..=size)
            .map(|i| i32::try_from(i).expect("small cluster"))
            .collect();
        Self::launch(&vec![Role::Combined; size], &[], Some(Network::new(&ids)))
    }

    fn launch(roles: &[Role], intruders: &[i32], network: Option<Network>) -> TestCluster {
        let temp = tempfile::tempdir().expect("temp dir");
        let cluster_id = random_cluster_id();
        let other_cluster_id = random_cluster_id();
        // Each node's host, client port, controller port and ops port.
        let places: Vec<(String, u16, u16, u16)> = (1..=roles.len())
            .map(|i| match &network {
                Some(network) => {
                    let node_id = i32::try_from(i).expect("small cluster");
                    (network.address(node_id).to_string(), 9092, 9093, 9644)
                }
                None => (
                    "127.0.0.1".to_string(),
                    free_port(),
                    free_port(),
                    free_port(),
                ),
            })
            .collect();
        let voters = places
            .iter()
            .zip(roles)
            .enumerate()
            .filter(|(_, (_, role))| role.votes())
            .map(|(i, ((host, _, controller, _), _))| format!("{}@{host}:{controller}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes: Vec<ClusterNode> = places
            .iter()
            .zip(roles)
            .enumerate()
            .map(|(i, ((host, client, controller, ops), role))| {
                let node_id = i32::try_from(i + 1).expect("small cluster");
                let dir = temp.path().join(format!("node-{node_id}"));
                let listeners = match role {
                    Role::Controller => format!("CONTROLLER://{host}:{controller}"),
                    _ => format!("PLAINTEXT://{host}:{client},CONTROLLER://{host}:{controller}"),
                };
                let args = vec![
                    format!("--node.id={node_id}"),
                    format!("--process.roles={}", role.process_roles()),
                    format!("--listeners={listeners}"),
                    format!("--ops.listener={host}:{ops}"),
                    format!("--controller.quorum.voters={voters}"),
                    format!("--log.dirs={}", dir.display()),
                    format!(
                        "--cluster.id={}",
                        if intruders.contains(&node_id) {
                            &other_cluster_id
                        } else {
                            &cluster_id
                        }
                    ),
                    format!("--broker.session.timeout.ms={SESSION_TIMEOUT_MS}"),
                    format!("--broker.heartbeat.interval.ms={HEARTBEAT_INTERVAL_MS}"),
                ];
                ClusterNode {
                    node_id,
                    role: *role,
                    host: host.clone(),
                    namespace: network.as_ref().map(|n| n.namespace(node_id)),
                    client_port: *client,
                    controller_port: *controller,
                    ops_port: *ops,
                    dir,
                    child: None,
                    args,
                    logs: Arc::new(Mutex::new(Vec::new())),
                }
            })
            .collect();
        // Every node must be running before any can finish starting: each waits for a quorum.
        let started: Vec<mpsc::Receiver<()>> = nodes.iter_mut().map(ClusterNode::spawn).collect();
        for (node, listening) in nodes.iter().zip(started) {
            if intruders.contains(&node.node_id) {
                continue;
            }
            assert!(
                listening.recv_timeout(START_TIMEOUT).is_ok(),
                "node {} did not start listening within {START_TIMEOUT:?}",
                node.node_id
            );
        }
        TestCluster {
            cluster_id,
            nodes,
            network,
            _temp: temp,
        }
    }

    pub fn node(&mut self, node_id: i32) -> &mut ClusterNode {
        self.nodes
            .iter_mut()
            .find(|n| n.node_id == node_id)
            .expect("a node of this cluster")
    }

    /// Every broker's client address, for a bootstrap list.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.role != Role::Controller)
            .map(ClusterNode::addr)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl ClusterNode {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.client_port)
    }

    /// A client config bootstrapped to this node only.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.addr())
            .set("broker.address.family", "v4");
        config
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
        }
    }

    /// SIGSTOP: the process keeps its sockets but does nothing, heartbeats included.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Starts the node again on its directory and ports and waits until it serves clients.
    pub fn restart(&mut self) {
        let listening = self.spawn();
        assert!(
            listening.recv_timeout(START_TIMEOUT).is_ok(),
            "node {} did not start listening again within {START_TIMEOUT:?}",
            self.node_id
        );
    }

    /// Whether the node has logged a line containing `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.logs
            .lock()
            .is_ok_and(|lines| lines.iter().any(|l| l.contains(needle)))
    }

    pub fn meta_properties(&self) -> String {
        std::fs::read_to_string(self.dir.join("meta.properties")).expect("meta.properties")
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(status.success(), "kill {signal} failed");
        }
    }

    /// Spawns the process; the receiver hears once it logs that it serves clients.
    fn spawn(&mut self) -> mpsc::Receiver<()> {
        let binary = env!("CARGO_BIN_EXE_ferrite");
        let mut command = match &self.namespace {
            // `ip netns exec` execs the program: the child's pid is the broker's, for kill -9 and SIGSTOP.
            Some(namespace) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", namespace, binary]);
                command
            }
            None => Command::new(binary),
        };
        let mut child = command
            .args(&self.args)
            .env("RUST_LOG", "info,openraft=error")
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ferrite");
        let stderr = child.stderr.take().expect("stderr");
        let node_id = self.node_id;
        let ready = self.role.ready_line();
        let logs = self.logs.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[node {node_id}] {line}");
                if let Ok(mut logs) = logs.lock() {
                    logs.push(line.clone());
                }
                if line.contains(ready) {
                    let _ = tx.send(());
                }
            }
        });
        self.child = Some(child);
        rx
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A paused process ignores nothing but SIGKILL; resume it anyway so that it does not linger stopped.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port nothing listens on right now (the kernel's pick, released at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// What `ferrite random-uuid` prints.
pub fn random_cluster_id() -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .arg("random-uuid")
        .output()
        .expect("ferrite random-uuid");
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A Metadata v12 request for every topic, to one node.
pub fn metadata(addr: &str) -> kafka_protocol::messages::metadata_response::MetadataResponse {
    try_metadata(addr).unwrap_or_else(|error| panic!("{error}"))
}

/// [`metadata`] of a node that may be down or stopped.
pub fn try_metadata(
    addr: &str,
) -> Result<kafka_protocol::messages::metadata_response::MetadataResponse, String> {
    use kafka_protocol::messages::metadata_request::MetadataRequest;
    super::try_call_addr(
        addr,
        kafka_protocol::messages::ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None),
    )
}

/// DescribeQuorum of `__cluster_metadata-0`, asked of one node.
pub fn describe_quorum(
    addr: &str,
) -> kafka_protocol::messages::describe_quorum_response::DescribeQuorumResponse {
    try_describe_quorum(addr).unwrap_or_else(|error| panic!("{error}"))
}

/// [`describe_quorum`] of a node that may be down or stopped.
pub fn try_describe_quorum(
    addr: &str,
) -> Result<kafka_protocol::messages::describe_quorum_response::DescribeQuorumResponse, String> {
    use kafka_protocol::messages::describe_quorum_request::{
        DescribeQuorumRequest, PartitionData, TopicData,
    };
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    super::try_call_addr(
        addr,
        kafka_protocol::messages::ApiKey::DescribeQuorum,
        1,
        &request,
    )
}

/// The active controller as `addr` knows it (-1: none, or `addr` does not answer).
pub fn quorum_leader(addr: &str) -> i32 {
    let Ok(quorum) = try_describe_quorum(addr) else {
        return -1;
    };
    quorum
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .map_or(-1, |p| p.leader_id.0)
}

/// Polls `check` every 100 ms until it holds, or fails after `timeout` with `what`.
pub fn eventually(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> bool,
) -> Result<(), String> {
    let started = std::time::Instant::now();
    while started.elapsed() < timeout {
        if check() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{what} did not happen within {timeout:?}"))
}

/// Partition 0's leader and ISR (sorted), as `addr` sees them.
pub fn leader_and_isr(addr: &str, topic: &str) -> Option<(i32, Vec<i32>)> {
    partition_leader_and_isr(addr, topic, 0)
}

/// A partition's leader and ISR (sorted), as `addr` sees them; `None` if it does not answer or know it.
pub fn partition_leader_and_isr(
    addr: &str,
    topic: &str,
    partition: i32,
) -> Option<(i32, Vec<i32>)> {
    let answer = try_metadata(addr).ok()?;
    let topic = answer
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(topic))?;
    let partition = topic
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)?;
    let mut isr: Vec<i32> = partition.isr_nodes.iter().map(|b| b.0).collect();
    isr.sort_unstable();
    Some((partition.leader_id.0, isr))
}

/// The coordinator of `group` as `addr` answers FindCoordinator (-1: none).
pub fn coordinator_of(addr: &str, group: &str) -> i32 {
    use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
    use kafka_protocol::messages::find_coordinator_response::FindCoordinatorResponse;
    use kafka_protocol::protocol::StrBytes;
    let response: FindCoordinatorResponse = super::call_addr(
        addr,
        kafka_protocol::messages::ApiKey::FindCoordinator,
        3,
        &FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_string())),
    );
    if response.error_code == 0 {
        response.node_id.0
    } else {
        -1
    }
}

/// Creates `topic` with `partitions` partitions of three replicas each and the given min.insync.replicas.
pub async fn create_replicated_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    min_isr: &str,
) -> Result<(), String> {
    use rdkafka::admin::{NewTopic, TopicReplication};
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(3))
        .set("min.insync.replicas", min_isr);
    create_topic(bootstrap, new).await
}

/// Creates one topic with librdkafka's admin client.
pub async fn create_topic(
    bootstrap: &str,
    new: rdkafka::admin::NewTopic<'_>,
) -> Result<(), String> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .create()
        .map_err(|e| e.to_string())?;
    for result in admin
        .create_topics(&[new], &AdminOptions::new())
        .await
        .map_err(|e| e.to_string())?
    {
        result.map_err(|(topic, code)| format!("{topic}: {code}"))?;
    }
    Ok(())
}

/// An acks=all producer that retries for a minute (through leader changes).
pub fn producer(bootstrap: &str) -> Result<FutureProducer, KafkaError> {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "60000")
        .create()
}

/// Sends `count` records named `{label}-{i}` to partition 0 of `topic`; notes the acknowledged offset of each.
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    label: &str,
    count: usize,
    acked: &mut BTreeMap<i64, String>,
) -> Result<(), String> {
    let sends: Vec<_> = (0..count)
        .map(|i| {
            let value = format!("{label}-{i}");
            let producer = producer.clone();
            async move {
                let delivery = producer
                    .send(
                        FutureRecord::to(topic).key("k").payload(&value),
                        Duration::from_secs(60),
                    )
                    .await;
                (value, delivery)
            }
        })
        .collect();
    for (value, delivery) in futures::future::join_all(sends).await {
        let delivery = delivery.map_err(|(error, _)| format!("{value}: {error}"))?;
        if let Some(earlier) = acked.insert(delivery.offset, value.clone()) {
            return Err(format!(
                "offset {} acknowledged twice: {earlier} and {value}",
                delivery.offset
            ));
        }
    }
    Ok(())
}

/// Reads partition 0 of `topic` from the start up to its HighWatermark.
pub fn read_all(bootstrap: &str, topic: &str) -> Result<Vec<(i64, String)>, KafkaError> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("group.id", "replication-reader")
        .set("enable.auto.commit", "false")
        .create()?;
    // Just after a leader change the client may still ask the old leader: it refreshes and asks again.
    let started = Instant::now();
    let (_, high) = loop {
        match consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)) {
            Ok(watermarks) => break watermarks,
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(200))
            }
            Err(error) => return Err(error),
        }
    };
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let mut read = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while read.last().map_or(0, |(o, _)| o + 1) < high && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            let message = message?;
            let value = message
                .payload()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            read.push((message.offset(), value));
        }
    }
    Ok(read)
}

/// Checks a [`read_all`]: offsets dense from 0, none read twice, and every acknowledged record at its offset.
/// Returns the records by offset.
pub fn check_read_back(
    read: Vec<(i64, String)>,
    acked: &BTreeMap<i64, String>,
) -> Result<BTreeMap<i64, String>, String> {
    let mut by_offset = BTreeMap::new();
    for (i, (offset, value)) in read.into_iter().enumerate() {
        if offset != i as i64 {
            return Err(format!(
                "offset {offset} read where {i} was due: a gap or a repeat"
            ));
        }
        by_offset.insert(offset, value);
    }
    for (offset, value) in acked {
        if by_offset.get(offset) != Some(value) {
            return Err(format!(
                "acknowledged {value} at offset {offset}, read {:?}",
                by_offset.get(offset)
            ));
        }
    }
    Ok(by_offset)
}
