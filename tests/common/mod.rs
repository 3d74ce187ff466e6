//! Test harness: a real `ferrite` process on 127.0.0.1 with a free port and a temporary data directory, and
//! librdkafka clients pointed at it.
#![allow(dead_code)]

pub mod cluster;
pub mod netns;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

pub struct TestBroker {
    child: Option<Child>,
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    pub addr: String,
    /// The operations listener (/metrics, /health, /ready), host:port.
    pub ops_addr: String,
    extra: Vec<String>,
}

impl TestBroker {
    pub fn start() -> TestBroker {
        Self::start_with(&[])
    }

    /// Starts a broker with extra `--key=value` flags.
    pub fn start_with(extra: &[&str]) -> TestBroker {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().join("data");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, addr, ops_addr) = spawn(&dir, &extra);
        TestBroker {
            child: Some(child),
            dir,
            _temp: Some(temp),
            addr,
            ops_addr,
            extra,
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// SIGTERM, wait for a clean exit, start again on the same directory (the port may change).
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// `kill -9`, then start again on the same directory.
    pub fn crash_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
        }
        self.start_again();
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let status = wait_timeout(&mut child, Duration::from_secs(20));
            assert!(
                status.is_some_and(|s| s.success()),
                "ferrite did not exit cleanly on SIGTERM: {status:?}"
            );
        }
    }

    fn start_again(&mut self) {
        let (child, addr, ops_addr) = spawn(&self.dir, &self.extra);
        self.child = Some(child);
        self.addr = addr;
        self.ops_addr = ops_addr;
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.addr)
            .set("broker.address.family", "v4");
        config
    }

    pub fn producer(&self, extra: &[(&str, &str)]) -> FutureProducer {
        let mut config = self.client_config();
        config
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000");
        for (k, v) in extra {
            config.set(*k, *v);
        }
        config.create().expect("producer")
    }

    pub fn consumer(&self) -> BaseConsumer {
        self.client_config()
            .set("group.id", "ferrite-tests")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer")
    }

    pub fn admin(&self) -> AdminClient<DefaultClientContext> {
        self.client_config().create().expect("admin client")
    }

    pub async fn create_topic(&self, name: &str, partitions: i32) {
        let results = self
            .admin()
            .create_topics(
                &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new(),
            )
            .await
            .expect("create_topics");
        for result in results {
            result.expect("topic created");
        }
    }

    /// Reads every record of the partitions from `from` until `count` arrived (or the timeout passed).
    pub fn consume(&self, topic: &str, partitions: i32, count: usize) -> Vec<OwnedMessage> {
        let consumer = self.consumer();
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .expect("assignment");
        }
        consumer.assign(&assignment).expect("assign");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut out = Vec::new();
        while out.len() < count && std::time::Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => out.push(message.detach()),
                Some(Err(error)) => panic!("consume error: {error}"),
                None => {}
            }
        }
        out
    }
}

impl TestBroker {
    /// Reads every record below each partition's high watermark.
    pub fn consume_all(&self, topic: &str, partitions: i32) -> Vec<OwnedMessage> {
        let consumer = self.consumer();
        let mut total = 0;
        for p in 0..partitions {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks");
            total += (high - low) as usize;
        }
        self.consume(topic, partitions, total)
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts ferrite and waits until it serves clients: its child, client address and ops address.
fn spawn(dir: &Path, extra: &[String]) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .arg("--listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0")
        .arg("--ops.listener=127.0.0.1:0")
        .arg(format!("--log.dirs={}", dir.display()))
        .args(extra)
        .env("RUST_LOG", "info,openraft=warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferrite");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[ferrite] {line}");
            let local_addr = || {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix("local_addr="))
                    .map(str::to_string)
            };
            if line.contains("ops listener") {
                let _ = tx.send((false, local_addr()));
            } else if line.contains("ferrite is listening") {
                let _ = tx.send((true, local_addr()));
            }
        }
    });
    let mut ops_addr = String::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok((false, addr)) => ops_addr = addr.unwrap_or_default(),
            Ok((true, Some(addr))) => return (child, addr, ops_addr),
            Ok((true, None)) | Err(_) => {
                let _ = child.kill();
                panic!("ferrite did not start listening within 60 s");
            }
        }
    }
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

/// Sends one request on a fresh connection with kafka-protocol's encoding and decodes the response, for the wire
/// details librdkafka does not expose.
pub fn call<Req, Resp>(
    broker: &TestBroker,
    key: kafka_protocol::messages::ApiKey,
    version: i16,
    body: &Req,
) -> Resp
where
    Req: kafka_protocol::protocol::Encodable,
    Resp: kafka_protocol::protocol::Decodable,
{
    call_addr(&broker.addr, key, version, body)
}

/// [`call`], to any address.
pub fn call_addr<Req, Resp>(
    addr: &str,
    key: kafka_protocol::messages::ApiKey,
    version: i16,
    body: &Req,
) -> Resp
where
    Req: kafka_protocol::protocol::Encodable,
    Resp: kafka_protocol::protocol::Decodable,
{
    try_call_addr(addr, key, version, body).unwrap_or_else(|error| panic!("{error}"))
}

/// [`call_addr`], for a node that may be down or stopped: what failed, instead of a panic.
pub fn try_call_addr<Req, Resp>(
    addr: &str,
    key: kafka_protocol::messages::ApiKey,
    version: i16,
    body: &Req,
) -> Result<Resp, String>
where
    Req: kafka_protocol::protocol::Encodable,
    Resp: kafka_protocol::protocol::Decodable,
{
    use kafka_protocol::messages::{RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    use std::io::{Read, Write};

    let failed =
        |what: &'static str| move |error: std::io::Error| format!("{what} {addr}: {error}");
    let mut stream = std::net::TcpStream::connect(addr).map_err(failed("connect to"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(failed("set a timeout on"))?;
    let mut buf = bytes::BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("raw-test")))
        .encode(&mut buf, key.request_header_version(version))
        .map_err(|e| format!("request header: {e}"))?;
    body.encode(&mut buf, version)
        .map_err(|e| format!("request body: {e}"))?;
    let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&buf);
    stream.write_all(&frame).map_err(failed("send to"))?;
    let mut size = [0u8; 4];
    stream
        .read_exact(&mut size)
        .map_err(failed("read a response size from"))?;
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream
        .read_exact(&mut body)
        .map_err(failed("read a response from"))?;
    let mut body = bytes::Bytes::from(body);
    ResponseHeader::decode(&mut body, key.response_header_version(version))
        .map_err(|e| format!("response header: {e}"))?;
    Resp::decode(&mut body, version).map_err(|e| format!("response body: {e}"))
}

/// Produces one record and waits for its acknowledgement; returns (partition, offset).
pub async fn produce_one(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    value: &[u8],
) -> (i32, i64) {
    let delivery = producer
        .send(
            FutureRecord::to(topic).key(key).payload(value),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(error, _)| error)
        .expect("delivery");
    (delivery.partition, delivery.offset)
}

pub fn payload(message: &OwnedMessage) -> Option<Vec<u8>> {
    message.payload().map(<[u8]>::to_vec)
}

/// One uncompressed record batch, as a producer would send it, for raw-protocol tests.
pub fn record_batch(key: &'static [u8], value: &'static [u8]) -> bytes::Bytes {
    keyed_record_batch(&[Some(key)], value, 1_700_000_000_000)
}

/// One uncompressed batch of records with these keys (`None`: no key), each with `value` and `timestamp_ms`.
pub fn keyed_record_batch(
    keys: &[Option<&'static [u8]>],
    value: &'static [u8],
    timestamp_ms: i64,
) -> bytes::Bytes {
    use kafka_protocol::records::Record;
    let records: Vec<Record> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            plain_record(
                i as i64,
                timestamp_ms,
                key.map(bytes::Bytes::from_static),
                bytes::Bytes::from_static(value),
            )
        })
        .collect();
    encode_batch(&records)
}

/// A record of no producer (no idempotence, no transaction) at `offset` in its batch.
pub fn plain_record(
    offset: i64,
    timestamp_ms: i64,
    key: Option<bytes::Bytes>,
    value: bytes::Bytes,
) -> kafka_protocol::records::Record {
    kafka_protocol::records::Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: kafka_protocol::records::TimestampType::Creation,
        offset,
        // The encoder starts a new batch where offset - sequence changes; this keeps one batch.
        sequence: offset as i32 - 1,
        timestamp: timestamp_ms,
        key,
        value: Some(value),
        headers: Default::default(),
    }
}

/// Encodes records as uncompressed v2 batches (one batch when offsets and sequences advance together).
pub fn encode_batch(records: &[kafka_protocol::records::Record]) -> bytes::Bytes {
    use kafka_protocol::records::{Compression, RecordBatchEncoder, RecordEncodeOptions};
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, records, &options).expect("encode batch");
    buf.freeze()
}

/// `GET path` over HTTP/1.0 from `addr` (the ops listener, a Prometheus server): the status code and body.
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}
