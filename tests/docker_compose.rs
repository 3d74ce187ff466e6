//! `docker/docker-compose.yml`, brought up by the compose tool as a user would (Debian's docker-compose 1.29, or
//! `docker compose`): three `ferrite:dev` containers form one cluster, kcat lists three brokers through the host
//! ports, and librdkafka creates a replicated topic through one node, produces through another and consumes
//! through the third.
//!
//! Without a usable Docker engine the test prints SKIPPED and returns, unless FERRITE_REQUIRE_DOCKER=1 (set by
//! scripts/test.sh). A missing image is a failure: build it with `docker/build.sh`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const COMPOSE_FILE: &str = "docker/docker-compose.yml";
const PORTS: [u16; 3] = [19092, 29092, 39092];
const RECORDS: usize = 300;

/// The project, taken down with its volumes however the test ends.
struct Project {
    compose: Vec<String>,
    name: String,
}

impl Project {
    fn run(&self, args: &[&str]) -> Output {
        let (program, first) = self.compose.split_first().expect("a compose command");
        Command::new(program)
            .args(first)
            .args(["-p", &self.name, "-f", COMPOSE_FILE])
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run the compose tool")
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let logs = self.run(&["logs", "--no-color"]);
        eprintln!("{}", String::from_utf8_lossy(&logs.stdout));
        let down = self.run(&["down", "-v", "--timeout", "30"]);
        if !down.status.success() {
            eprintln!(
                "compose down failed: {}",
                String::from_utf8_lossy(&down.stderr)
            );
        }
    }
}

/// `docker-compose` (v1) if installed, else the `docker compose` plugin.
fn compose_command() -> Option<Vec<String>> {
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works("docker-compose", &["version"]) {
        Some(vec!["docker-compose".into()])
    } else if works("docker", &["compose", "version"]) {
        Some(vec!["docker".into(), "compose".into()])
    } else {
        None
    }
}

fn skip_or_fail(reason: &str) {
    if std::env::var("FERRITE_REQUIRE_DOCKER").as_deref() == Ok("1") {
        panic!("FERRITE_REQUIRE_DOCKER=1 but {reason}");
    }
    eprintln!(
        "\n{0}\nSKIPPED compose_brings_up_a_three_node_cluster: {reason}\n{0}\n",
        "*".repeat(100)
    );
}

fn kcat_listing(port: u16) -> String {
    Command::new("kcat")
        .args(["-b", &format!("127.0.0.1:{port}"), "-L", "-m", "5"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn client(port: u16) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .set("broker.address.family", "v4");
    config
}

#[test]
fn compose_brings_up_a_three_node_cluster() {
    let docker_works = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !docker_works {
        return skip_or_fail("the Docker engine is unusable");
    }
    let Some(compose) = compose_command() else {
        return skip_or_fail("neither docker-compose nor docker compose is installed");
    };
    let image = Command::new("docker")
        .args(["image", "inspect", "ferrite:dev"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        image,
        "image ferrite:dev is missing; build it with docker/build.sh"
    );
    assert!(Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(COMPOSE_FILE)
        .exists());

    let project = Project {
        compose,
        name: format!("ferrite-compose-test-{}", std::process::id()),
    };
    let up = project.run(&["up", "-d"]);
    assert!(
        up.status.success(),
        "compose up failed: {}",
        String::from_utf8_lossy(&up.stderr)
    );

    let deadline = Instant::now() + Duration::from_secs(90);
    let mut listing = String::new();
    while Instant::now() < deadline {
        listing = kcat_listing(PORTS[0]);
        if listing.contains(" 3 brokers:") {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(listing.contains(" 3 brokers:"), "kcat -L: {listing}");
    for port in PORTS {
        assert!(
            listing.contains(&format!("at 127.0.0.1:{port}")),
            "broker on {port} missing: {listing}"
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let admin: AdminClient<DefaultClientContext> =
            client(PORTS[1]).create().expect("admin client");
        let results = admin
            .create_topics(
                &[NewTopic::new("compose", 6, TopicReplication::Fixed(3))],
                &AdminOptions::new(),
            )
            .await
            .expect("create_topics");
        for result in results {
            result.expect("topic created through node 2");
        }

        let producer: FutureProducer = client(PORTS[2])
            .set("linger.ms", "5")
            .set("message.timeout.ms", "60000")
            .create()
            .expect("producer");
        let mut partitions = BTreeSet::new();
        for i in 0..RECORDS {
            let key = format!("key-{i}");
            let delivery = producer
                .send(
                    FutureRecord::to("compose").key(&key).payload("value"),
                    Duration::from_secs(60),
                )
                .await
                .map_err(|(error, _)| error)
                .expect("delivery through node 3");
            partitions.insert(delivery.partition);
        }
        assert_eq!(partitions.len(), 6);
    });

    let consumer: BaseConsumer = client(PORTS[0])
        .set("group.id", "compose-test")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..6 {
        assignment
            .add_partition_offset("compose", p, Offset::Beginning)
            .expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");
    let mut keys = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while keys.len() < RECORDS && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("consume through node 1");
            keys.insert(message.key().map(<[u8]>::to_vec).unwrap_or_default());
        }
    }
    assert_eq!(keys.len(), RECORDS, "every record consumed through node 1");
    drop(project);
}
