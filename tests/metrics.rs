//! The operations listener: `/metrics` counts what librdkafka produced and consumed, parses as Prometheus's
//! exposition format (promtool) and is scraped by a real Prometheus server; `/ready` waits for the metadata log.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{free_port, random_cluster_id};
use common::{http_get, TestBroker};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

const RECORDS: usize = 100;
const VALUE_BYTES: usize = 100;
const COMMITTED: i64 = 60;

/// `/metrics` as a map from series (`name{labels}`, as written) to value.
fn scrape(broker: &TestBroker) -> (String, HashMap<String, f64>) {
    let (status, text) = http_get(&broker.ops_addr, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200, "{text}");
    let mut series = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample line: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a sample value: {line:?}"));
        series.insert(name.to_string(), value);
    }
    (text, series)
}

fn value(series: &HashMap<String, f64>, name: &str) -> f64 {
    *series
        .get(name)
        .unwrap_or_else(|| panic!("no series {name} in /metrics"))
}

async fn produce(broker: &TestBroker, topic: &str, count: usize) {
    let producer = broker.producer(&[]);
    let value = vec![b'x'; VALUE_BYTES];
    for i in 0..count {
        let key = i.to_string();
        producer
            .send(
                FutureRecord::to(topic).key(&key).payload(&value),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(error, _)| error)
            .expect("delivery");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_librdkafka_produced_and_consumed() {
    let broker = TestBroker::start();
    broker.create_topic("metered", 1).await;
    produce(&broker, "metered", RECORDS).await;

    let read = broker.consume("metered", 1, RECORDS);
    assert_eq!(read.len(), RECORDS);
    let consumer = broker
        .client_config()
        .set("group.id", "metered-group")
        .set("enable.auto.commit", "false")
        .create::<rdkafka::consumer::BaseConsumer>()
        .expect("consumer");
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("metered", 0, Offset::Offset(COMMITTED))
        .expect("offset");
    consumer.commit(&offsets, CommitMode::Sync).expect("commit");

    let (text, series) = scrape(&broker);
    assert_eq!(
        value(
            &series,
            "kafka_server_brokertopicmetrics_messagesin_total{topic=\"metered\"}"
        ),
        RECORDS as f64
    );
    let bytes_in = value(
        &series,
        "kafka_server_brokertopicmetrics_bytesin_total{topic=\"metered\"}",
    );
    assert!(
        bytes_in >= (RECORDS * VALUE_BYTES) as f64 && bytes_in < (RECORDS * VALUE_BYTES * 3) as f64,
        "bytes in {bytes_in} for {RECORDS} records of {VALUE_BYTES} bytes"
    );
    let bytes_out = value(
        &series,
        "kafka_server_brokertopicmetrics_bytesout_total{topic=\"metered\"}",
    );
    assert!(
        bytes_out >= bytes_in,
        "the consumer read everything: out {bytes_out}, in {bytes_in}"
    );
    assert!(value(&series, "kafka_server_brokertopicmetrics_messagesin_total") >= RECORDS as f64);
    assert_eq!(
        value(
            &series,
            "kafka_log_log_logendoffset{topic=\"metered\",partition=\"0\"}"
        ),
        RECORDS as f64
    );
    assert_eq!(
        value(
            &series,
            "kafka_consumergroup_lag{consumergroup=\"metered-group\",topic=\"metered\",partition=\"0\"}"
        ),
        (RECORDS as i64 - COMMITTED) as f64,
        "the group's lag is what it has not committed"
    );
    assert_eq!(
        value(
            &series,
            "kafka_server_replicamanager_underreplicatedpartitions"
        ),
        0.0
    );
    assert_eq!(
        value(
            &series,
            "kafka_controller_kafkacontroller_activecontrollercount"
        ),
        1.0
    );
    let produce_requests: f64 = series
        .iter()
        .filter(|(name, _)| {
            name.starts_with("kafka_network_requestmetrics_requests_total{request=\"Produce\"")
        })
        .map(|(_, v)| v)
        .sum();
    assert!(produce_requests >= 1.0);
    assert!(
        series.contains_key("kafka_network_requestmetrics_totaltimems_count{request=\"Produce\"}"),
        "Produce's latency histogram"
    );
    assert!(
        value(
            &series,
            "kafka_log_logflushstats_logflushrateandtimems_count"
        ) >= 1.0
    );

    // promtool parses the text as Prometheus does; it exits 1 on a parse error and 3 on lint remarks (Kafka's own
    // names, such as connection_count, draw one: a gauge ending in _count).
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; scripts/test.sh installs it)");
    std::io::Write::write_all(&mut promtool.stdin.take().expect("stdin"), text.as_bytes())
        .expect("write to promtool");
    let checked = promtool.wait_with_output().expect("promtool");
    let said = String::from_utf8_lossy(&checked.stderr).to_string()
        + &String::from_utf8_lossy(&checked.stdout);
    assert!(
        matches!(checked.status.code(), Some(0 | 3)) && !said.contains("error while linting"),
        "promtool: {:?} {said}",
        checked.status
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prometheus_server_scrapes_ferrite() {
    let broker = TestBroker::start();
    broker.create_topic("scraped", 1).await;
    produce(&broker, "scraped", 10).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ferrite\n    static_configs:\n      - targets: ['{}']\n",
            broker.ops_addr
        ),
    )
    .expect("write prometheus.yml");
    let web = format!("127.0.0.1:{}", free_port());
    let mut prometheus = KillOnDrop(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian's prometheus package; scripts/test.sh installs it)"),
    );
    // The query an operator's dashboard makes, through Prometheus's HTTP API.
    let query = "/api/v1/query?query=kafka_server_brokertopicmetrics_messagesin_total%7Btopic%3D%22scraped%22%7D";
    let deadline = Instant::now() + Duration::from_secs(60);
    let found = loop {
        assert!(
            matches!(prometheus.0.try_wait(), Ok(None)),
            "prometheus exited"
        );
        if let Ok((200, body)) = http_get(&web, query) {
            let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            if let Some(sample) = answer["data"]["result"].get(0) {
                break sample.clone();
            }
        }
        assert!(Instant::now() < deadline, "Prometheus never had the series");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(found["metric"]["job"], "ferrite");
    assert_eq!(found["value"][1], "10", "{found}");
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A combined node of a two-voter quorum whose other voter is not running cannot catch up with the metadata log:
/// its ops listener answers, `/health` says it is up and `/ready` that it is not, until the other voter starts.
#[test]
fn ready_waits_for_the_metadata_log() {
    let temp = tempfile::tempdir().expect("temp dir");
    let cluster_id = random_cluster_id();
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let voters = format!("1@127.0.0.1:{},2@127.0.0.1:{}", ports[1], ports[4]);
    let start = |node: usize| -> KillOnDrop {
        let (client, controller, ops) = (ports[3 * node], ports[3 * node + 1], ports[3 * node + 2]);
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferrite"))
            .arg(format!("--node.id={}", node + 1))
            .arg(format!(
                "--listeners=PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{controller}"
            ))
            .arg(format!("--ops.listener=127.0.0.1:{ops}"))
            .arg(format!("--controller.quorum.voters={voters}"))
            .arg(format!("--cluster.id={cluster_id}"))
            .arg(format!(
                "--log.dirs={}",
                temp.path().join(format!("node-{node}")).display()
            ))
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ferrite");
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[ferrite {}] {line}", node + 1);
            }
        });
        KillOnDrop(child)
    };
    let ops = format!("127.0.0.1:{}", ports[2]);
    let _first = start(0);

    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(&ops, "/health").map(|(status, _)| status).ok() != Some(200) {
        assert!(Instant::now() < deadline, "the ops listener never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
    // No quorum, so no metadata log to catch up with: not ready, however long it waits.
    for _ in 0..10 {
        let (status, body) = http_get(&ops, "/ready").expect("GET /ready");
        assert_eq!(status, 503, "{body}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let _second = start(1);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = http_get(&ops, "/ready").expect("GET /ready");
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            Instant::now() < deadline,
            "never ready once the quorum formed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, _) = http_get(&ops, "/nowhere").expect("GET /nowhere");
    assert_eq!(status, 404);
}
