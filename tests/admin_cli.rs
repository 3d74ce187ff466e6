//! `ferrite admin` (and the kafka-*.sh wrappers in bin/) against a real broker: each command's output in Kafka's
//! formats, and its effect seen through librdkafka.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::TestBroker;
use rdkafka::consumer::Consumer;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn finish(output: Output) -> Run {
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `ferrite admin <command> --bootstrap-server <broker> <args>`.
fn admin(broker: &TestBroker, command: &str, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .arg("admin")
        .arg(command)
        .args(["--bootstrap-server", &broker.addr])
        .args(args)
        .output()
        .expect("run ferrite admin");
    finish(output)
}

/// Runs an admin command that must succeed; returns its stdout.
fn admin_ok(broker: &TestBroker, command: &str, args: &[&str]) -> String {
    let run = admin(broker, command, args);
    assert_eq!(
        run.code,
        Some(0),
        "ferrite admin {command} {args:?} failed\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    run.stdout
}

/// Runs an admin command that must fail with exit code 1; returns its stderr.
fn admin_fails(broker: &TestBroker, command: &str, args: &[&str]) -> String {
    let run = admin(broker, command, args);
    assert_eq!(
        run.code,
        Some(1),
        "ferrite admin {command} {args:?} should have failed\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    run.stderr
}

/// Partition count of a topic as librdkafka sees it; `None` when the topic does not exist.
fn partition_count(broker: &TestBroker, topic: &str) -> Option<usize> {
    let consumer = broker.consumer();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let topic = metadata.topics().iter().find(|t| t.name() == topic)?;
    topic.error().is_none().then(|| topic.partitions().len())
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn topics_create_list_describe_alter_delete() {
    let broker = TestBroker::start();

    let out = admin_ok(
        &broker,
        "topics",
        &[
            "--create",
            "--topic",
            "orders",
            "--partitions",
            "3",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=12345",
            "--config=cleanup.policy=compact",
        ],
    );
    assert_eq!(out, "Created topic orders.\n");
    assert_eq!(partition_count(&broker, "orders"), Some(3));

    let err = admin_fails(&broker, "topics", &["--create", "--topic", "orders"]);
    assert!(err.contains("TOPIC_ALREADY_EXISTS"), "{err}");
    let out = admin_ok(
        &broker,
        "topics",
        &["--create", "--topic", "orders", "--if-not-exists"],
    );
    assert_eq!(out, "");

    // Broker defaults for partitions and replication factor (-1 on the wire).
    admin_ok(&broker, "topics", &["--create", "--topic", "audit"]);
    // Internal topics (librdkafka's consumer has made `__consumer_offsets` by now) are listed unless excluded.
    let list = admin_ok(&broker, "topics", &["--list", "--exclude-internal"]);
    assert_eq!(list, "audit\norders\n");
    let list = admin_ok(&broker, "topics", &["--list"]);
    assert!(list.lines().any(|l| l == "orders"), "{list}");

    let describe = admin_ok(&broker, "topics", &["--describe", "--topic", "orders"]);
    let lines: Vec<&str> = describe.lines().collect();
    assert_eq!(lines.len(), 4, "{describe}");
    let header: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(header[0], "Topic: orders");
    let topic_id = header[1].strip_prefix("TopicId: ").expect("TopicId");
    assert_eq!(
        topic_id.len(),
        22,
        "Kafka's base64 form of a Uuid: {topic_id}"
    );
    assert_eq!(header[2], "PartitionCount: 3");
    assert_eq!(header[3], "ReplicationFactor: 1");
    let configs = header[4].strip_prefix("Configs: ").expect("Configs");
    assert!(
        configs.split(',').any(|c| c == "retention.ms=12345"),
        "{configs}"
    );
    assert!(
        configs.split(',').any(|c| c == "cleanup.policy=compact"),
        "{configs}"
    );
    for (p, line) in lines[1..].iter().enumerate() {
        assert_eq!(
            *line,
            format!("\tTopic: orders\tPartition: {p}\tLeader: 1\tReplicas: 1\tIsr: 1")
        );
    }
    // Without --topic: every topic, in name order.
    let all = admin_ok(&broker, "topics", &["--describe", "--exclude-internal"]);
    let headers: Vec<&str> = all.lines().filter(|l| l.starts_with("Topic: ")).collect();
    assert_eq!(headers.len(), 2, "{all}");
    assert!(headers[0].starts_with("Topic: audit\t") && headers[1].starts_with("Topic: orders\t"));
    assert_eq!(
        admin_ok(
            &broker,
            "topics",
            &["--describe", "--under-replicated-partitions"]
        ),
        ""
    );

    admin_ok(
        &broker,
        "topics",
        &["--alter", "--topic", "orders", "--partitions", "5"],
    );
    wait_for("5 partitions", || {
        partition_count(&broker, "orders") == Some(5)
    });
    let err = admin_fails(
        &broker,
        "topics",
        &["--alter", "--topic", "orders", "--partitions", "2"],
    );
    assert!(err.contains("INVALID_PARTITIONS"), "{err}");

    admin_ok(&broker, "topics", &["--delete", "--topic", "orders"]);
    wait_for("orders deleted", || {
        partition_count(&broker, "orders").is_none()
    });
    let err = admin_fails(&broker, "topics", &["--describe", "--topic", "orders"]);
    assert!(
        err.contains("Topic 'orders' does not exist as expected"),
        "{err}"
    );
    assert_eq!(
        admin_ok(
            &broker,
            "topics",
            &["--delete", "--topic", "orders", "--if-exists"]
        ),
        ""
    );
    assert_eq!(
        admin_ok(&broker, "topics", &["--list", "--exclude-internal"]),
        "audit\n"
    );
}

#[test]
fn bad_invocations_fail_with_a_message() {
    let broker = TestBroker::start();
    let err = admin_fails(
        &broker,
        "topics",
        &["--list", "--zookeeper", "localhost:2181"],
    );
    assert!(err.contains("unrecognized option '--zookeeper'"), "{err}");
    let err = admin_fails(&broker, "topics", &["--list", "--describe"]);
    assert!(err.contains("exactly one action"), "{err}");
    let err = admin_fails(&broker, "topics", &["--create"]);
    assert!(err.contains("topic"), "{err}");
    let err = admin_fails(
        &broker,
        "topics",
        &["--create", "--topic", "x", "--config", "nonsense"],
    );
    assert!(err.contains("key=value"), "{err}");
    let err = admin_fails(
        &broker,
        "topics",
        &["--create", "--topic", "x", "--config", "no.such.key=1"],
    );
    assert!(err.contains("INVALID_CONFIG"), "{err}");

    // Nothing listening: a connection error naming the address, not a hang.
    let run = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args([
            "admin",
            "topics",
            "--bootstrap-server",
            "127.0.0.1:1",
            "--list",
        ])
        .output()
        .expect("run");
    let run = finish(run);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("127.0.0.1:1"), "{}", run.stderr);
}

/// The wrapper as librdkafka's test suite calls it (`test_kafka_topics`), with a harmless option Kafka's tool
/// takes and Ferrite ignores.
#[test]
fn kafka_topics_sh_wrapper() {
    let broker = TestBroker::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bin/kafka-topics.sh");
    let command = format!(
        "{script} --bootstrap-server {} --create --topic \"wrapped\" --replication-factor 1 --partitions 2 \
         --command-config /dev/null",
        broker.addr
    );
    let run = finish(
        Command::new("sh")
            .args(["-c", &command])
            .env("FERRITE_BIN", env!("CARGO_BIN_EXE_ferrite"))
            .output()
            .expect("run the wrapper"),
    );
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "Created topic wrapped.\n");
    assert!(
        run.stderr.contains("WARN: ignoring --command-config"),
        "{}",
        run.stderr
    );
    assert_eq!(partition_count(&broker, "wrapped"), Some(2));
}
