//! `ferrite admin` (and the kafka-*.sh wrappers in bin/) against a real broker: each command's output in Kafka's
//! formats, and its effect seen through librdkafka.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::TestBroker;
use rdkafka::admin::{AdminOptions, ResourceSpecifier};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

const GROUP_FLAGS: &[&str] = &[
    "--group.initial.rebalance.delay.ms=0",
    "--group.min.session.timeout.ms=500",
    "--offsets.topic.num.partitions=3",
];

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

    for (script, args, expected) in [
        (
            "kafka-configs.sh",
            "--entity-type topics --entity-name wrapped --describe",
            "Dynamic configs for topic wrapped are:\n",
        ),
        ("kafka-consumer-groups.sh", "--list", ""),
    ] {
        let run = finish(
            Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/bin/").to_string() + script)
                .args(["--bootstrap-server", &broker.addr])
                .args(args.split(' '))
                .env("FERRITE_BIN", env!("CARGO_BIN_EXE_ferrite"))
                .output()
                .expect("run the wrapper"),
        );
        assert_eq!(run.code, Some(0), "{script}: {}", run.stderr);
        assert_eq!(run.stdout, expected, "{script}");
    }
}

/// A topic config's value and source as librdkafka's DescribeConfigs sees it.
async fn topic_config(broker: &TestBroker, topic: &str, key: &str) -> (Option<String>, String) {
    let results = broker
        .admin()
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .expect("describe_configs");
    let resource = results
        .into_iter()
        .next()
        .expect("a result")
        .expect("described");
    let entry = resource.get(key).expect("the config is described");
    (entry.value.clone(), format!("{:?}", entry.source))
}

#[tokio::test(flavor = "multi_thread")]
async fn configs_describe_and_alter_topics_and_brokers() {
    let broker = TestBroker::start();
    broker.create_topic("settings", 1).await;
    let topic = ["--entity-type", "topics", "--entity-name", "settings"];

    assert_eq!(
        admin_ok(&broker, "configs", &[&topic[..], &["--describe"]].concat()),
        "Dynamic configs for topic settings are:\n"
    );
    let out = admin_ok(
        &broker,
        "configs",
        &[
            &topic[..],
            &[
                "--alter",
                "--add-config",
                "retention.ms=1000,cleanup.policy=[compact,delete]",
            ],
        ]
        .concat(),
    );
    assert_eq!(out, "Completed updating config for topic settings.\n");
    let out = admin_ok(&broker, "configs", &[&topic[..], &["--describe"]].concat());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "Dynamic configs for topic settings are:");
    assert!(
        lines[1].starts_with(
            "  cleanup.policy=compact,delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,delete"
        ),
        "{out}"
    );
    assert!(
        lines[2].starts_with(
            "  retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000"
        ),
        "{out}"
    );
    let (value, source) = topic_config(&broker, "settings", "retention.ms").await;
    assert_eq!(value.as_deref(), Some("1000"));
    assert_eq!(source, "DynamicTopic");

    // The --topic shorthand and --delete-config: back to the default.
    let out = admin_ok(
        &broker,
        "configs",
        &[
            "--topic",
            "settings",
            "--alter",
            "--delete-config",
            "retention.ms",
        ],
    );
    assert_eq!(out, "Completed updating config for topic settings.\n");
    let out = admin_ok(&broker, "configs", &["--topic", "settings", "--describe"]);
    assert!(!out.contains("retention.ms"), "{out}");
    let (value, source) = topic_config(&broker, "settings", "retention.ms").await;
    assert_eq!(value.as_deref(), Some("604800000"));
    assert_eq!(source, "Default");
    let all = admin_ok(
        &broker,
        "configs",
        &["--topic", "settings", "--describe", "--all"],
    );
    assert!(
        all.starts_with("All configs for topic settings are:\n"),
        "{all}"
    );
    assert!(
        all.contains("\n  retention.ms=604800000 sensitive=false synonyms={DEFAULT_CONFIG:"),
        "{all}"
    );

    let err = admin_fails(
        &broker,
        "configs",
        &[
            "--topic",
            "settings",
            "--alter",
            "--delete-config",
            "segment.ms",
        ],
    );
    assert!(err.contains("Invalid config(s): segment.ms"), "{err}");
    let err = admin_fails(
        &broker,
        "configs",
        &[
            "--topic",
            "settings",
            "--alter",
            "--add-config",
            "retention.ms=soon",
        ],
    );
    assert!(err.contains("INVALID_CONFIG"), "{err}");
    let err = admin_fails(&broker, "configs", &["--topic", "absent", "--describe"]);
    assert!(err.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{err}");

    // A broker's dynamic config.
    let out = admin_ok(
        &broker,
        "configs",
        &[
            "--entity-type",
            "brokers",
            "--entity-name",
            "1",
            "--alter",
            "--add-config",
            "log.retention.ms=99999",
        ],
    );
    assert_eq!(out, "Completed updating config for broker 1.\n");
    let out = admin_ok(
        &broker,
        "configs",
        &["--entity-type", "brokers", "--describe"],
    );
    assert!(
        out.starts_with("Dynamic configs for broker 1 are:\n"),
        "{out}"
    );
    assert!(
        out.contains("\n  log.retention.ms=99999 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:log.retention.ms=99999"),
        "{out}"
    );
    let results = broker
        .admin()
        .describe_configs(&[ResourceSpecifier::Broker(1)], &AdminOptions::new())
        .await
        .expect("describe broker");
    let resource = results
        .into_iter()
        .next()
        .expect("result")
        .expect("described");
    assert_eq!(
        resource
            .get("log.retention.ms")
            .and_then(|e| e.value.clone())
            .as_deref(),
        Some("99999")
    );
    let err = admin_fails(
        &broker,
        "configs",
        &[
            "--entity-type",
            "brokers",
            "--entity-name",
            "x",
            "--describe",
        ],
    );
    assert!(err.contains("valid integer broker id"), "{err}");
}

fn group_member(broker: &TestBroker, group: &str) -> BaseConsumer {
    broker
        .client_config()
        .set("group.id", group)
        .set("client.id", "cli-test-client")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer")
}

fn committed(consumer: &BaseConsumer, topic: &str, partitions: i32) -> Vec<Offset> {
    let mut wanted = TopicPartitionList::new();
    for p in 0..partitions {
        wanted.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(wanted, Duration::from_secs(10))
        .expect("committed offsets");
    (0..partitions)
        .map(|p| {
            committed
                .find_partition(topic, p)
                .expect("partition")
                .offset()
        })
        .collect()
}

/// Splits a table row on runs of spaces.
fn cells(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_groups_list_describe_reset_delete() {
    let broker = TestBroker::start_with(GROUP_FLAGS);
    broker.create_topic("events", 2).await;
    let producer = broker.producer(&[]);
    for partition in 0..2 {
        for i in 0..5 {
            producer
                .send(
                    FutureRecord::to("events")
                        .partition(partition)
                        .key("k")
                        .payload(&format!("v{i}")),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
                .expect("delivered");
        }
    }

    let member = group_member(&broker, "cg");
    member.subscribe(&["events"]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(30);
    while member.assignment().map(|a| a.count()).unwrap_or(0) != 2 {
        assert!(Instant::now() < deadline, "no assignment");
        let _ = member.poll(Duration::from_millis(100));
    }
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("events", 0, Offset::Offset(3))
        .expect("tpl");
    offsets
        .add_partition_offset("events", 1, Offset::Offset(5))
        .expect("tpl");
    member.commit(&offsets, CommitMode::Sync).expect("commit");

    assert_eq!(admin_ok(&broker, "consumer-groups", &["--list"]), "cg\n");
    let out = admin_ok(&broker, "consumer-groups", &["--describe", "--group", "cg"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "", "Kafka's tool starts with a blank line: {out}");
    assert_eq!(
        cells(lines[1]),
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID"
        ]
    );
    assert_eq!(lines.len(), 4, "{out}");
    let row0 = cells(lines[2]);
    assert_eq!(row0[..6], ["cg", "events", "0", "3", "5", "2"], "{out}");
    assert!(
        row0[6].starts_with("cli-test-client-") || row0[6].starts_with("rdkafka-"),
        "{out}"
    );
    assert_eq!(row0[7..], ["/127.0.0.1", "cli-test-client"], "{out}");
    assert_eq!(
        cells(lines[3])[..6],
        ["cg", "events", "1", "5", "5", "0"],
        "{out}"
    );
    // Columns line up: each header starts where its cells do.
    let topic_column = lines[1].find("TOPIC").expect("TOPIC");
    assert_eq!(lines[2].find("events"), Some(topic_column));

    let out = admin_ok(
        &broker,
        "consumer-groups",
        &["--describe", "--group", "cg", "--state"],
    );
    let row = cells(out.lines().nth(2).expect("state row"));
    assert_eq!(row[0], "cg");
    assert_eq!(row[row.len() - 3..], ["range", "Stable", "1"], "{out}");
    let out = admin_ok(
        &broker,
        "consumer-groups",
        &["--describe", "--group", "cg", "--members", "--verbose"],
    );
    let row = cells(out.lines().nth(2).expect("member row"));
    assert_eq!(
        row[2..],
        ["/127.0.0.1", "cli-test-client", "2", "events(0,1)"],
        "{out}"
    );

    // A group with a member can be neither reset nor deleted.
    let err = admin_fails(
        &broker,
        "consumer-groups",
        &[
            "--reset-offsets",
            "--group",
            "cg",
            "--topic",
            "events",
            "--to-earliest",
            "--execute",
        ],
    );
    assert!(
        err.contains("Assignments can only be reset if the group 'cg' is inactive, but the current state is Stable."),
        "{err}"
    );
    let err = admin_fails(&broker, "consumer-groups", &["--delete", "--group", "cg"]);
    assert!(
        err.contains("* Group 'cg' could not be deleted due to: NON_EMPTY_GROUP"),
        "{err}"
    );

    member.unsubscribe();
    drop(member);
    let observer = group_member(&broker, "cg");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = admin_ok(
            &broker,
            "consumer-groups",
            &["--describe", "--group", "cg", "--state"],
        );
        if out.contains(" Empty ") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the group did not become empty: {out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Dry run (the default): shows, changes nothing.
    let run = admin(
        &broker,
        "consumer-groups",
        &[
            "--reset-offsets",
            "--group",
            "cg",
            "--topic",
            "events",
            "--to-earliest",
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("--execute option is missing"),
        "{}",
        run.stderr
    );
    let rows: Vec<Vec<&str>> = run.stdout.lines().skip(2).map(cells).collect();
    assert_eq!(
        rows,
        [["cg", "events", "0", "0"], ["cg", "events", "1", "0"]]
    );
    assert_eq!(
        committed(&observer, "events", 2),
        [Offset::Offset(3), Offset::Offset(5)]
    );

    admin_ok(
        &broker,
        "consumer-groups",
        &[
            "--reset-offsets",
            "--group",
            "cg",
            "--topic",
            "events",
            "--to-earliest",
            "--execute",
        ],
    );
    assert_eq!(
        committed(&observer, "events", 2),
        [Offset::Offset(0), Offset::Offset(0)]
    );
    // One partition; an offset beyond the log end is moved to it, as Kafka's tool does.
    let out = admin_ok(
        &broker,
        "consumer-groups",
        &[
            "--reset-offsets",
            "--group",
            "cg",
            "--topic",
            "events:1",
            "--to-offset",
            "100",
            "--execute",
        ],
    );
    assert_eq!(
        cells(out.lines().nth(2).expect("row")),
        ["cg", "events", "1", "5"]
    );
    assert_eq!(
        committed(&observer, "events", 2),
        [Offset::Offset(0), Offset::Offset(5)]
    );
    admin_ok(
        &broker,
        "consumer-groups",
        &[
            "--reset-offsets",
            "--group",
            "cg",
            "--all-topics",
            "--shift-by",
            "-2",
            "--dry-run",
        ],
    );
    admin_ok(
        &broker,
        "consumer-groups",
        &[
            "--reset-offsets",
            "--group",
            "cg",
            "--all-topics",
            "--to-latest",
            "--execute",
        ],
    );
    assert_eq!(
        committed(&observer, "events", 2),
        [Offset::Offset(5), Offset::Offset(5)]
    );
    let run = admin(&broker, "consumer-groups", &["--describe", "--group", "cg"]);
    assert!(
        run.stderr
            .contains("Consumer group 'cg' has no active members."),
        "{}",
        run.stderr
    );
    let rows: Vec<Vec<&str>> = run.stdout.lines().skip(2).map(cells).collect();
    assert_eq!(
        rows,
        [
            ["cg", "events", "0", "5", "5", "0", "-", "-", "-"],
            ["cg", "events", "1", "5", "5", "0", "-", "-", "-"]
        ]
    );

    let out = admin_ok(&broker, "consumer-groups", &["--delete", "--group", "cg"]);
    assert_eq!(
        out,
        "Deletion of requested consumer groups ('cg') was successful.\n"
    );
    assert_eq!(admin_ok(&broker, "consumer-groups", &["--list"]), "");
    assert_eq!(
        committed(&observer, "events", 2),
        [Offset::Invalid, Offset::Invalid]
    );
    let err = admin_fails(&broker, "consumer-groups", &["--describe", "--group", "cg"]);
    assert!(err.contains("Consumer group 'cg' does not exist."), "{err}");
}
