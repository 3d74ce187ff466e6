//! Consumer groups driven by librdkafka (the rdkafka crate) against a real broker: rebalancing across members,
//! committed offsets across a broker restart, cooperative-sticky and static membership.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{produce_one, TestBroker};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// Broker flags for fast group tests: no initial rebalance delay, short sessions allowed.
const GROUP_FLAGS: &[&str] = &[
    "--group.initial.rebalance.delay.ms=0",
    "--group.min.session.timeout.ms=500",
    "--offsets.topic.num.partitions=5",
];

/// A rebalance callback: "assign", "revoke" or "error", and the partitions it named.
type RebalanceEvent = (String, BTreeSet<i32>);

/// Records every rebalance callback.
#[derive(Default, Clone)]
struct Recorder {
    events: Arc<Mutex<Vec<RebalanceEvent>>>,
}

impl ClientContext for Recorder {}

impl ConsumerContext for Recorder {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let (kind, tpl) = match rebalance {
            Rebalance::Assign(tpl) => ("assign", Some(*tpl)),
            Rebalance::Revoke(tpl) => ("revoke", Some(*tpl)),
            Rebalance::Error(_) => ("error", None),
        };
        let partitions = tpl
            .map(|t| t.elements().iter().map(|e| e.partition()).collect())
            .unwrap_or_default();
        self.events
            .lock()
            .expect("lock")
            .push((kind.to_string(), partitions));
    }
}

/// A group member polling on its own thread: what it consumed, and its current assignment.
struct Member {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    assignment: Arc<Mutex<BTreeSet<i32>>>,
    consumed: Arc<Mutex<Vec<(i32, i64)>>>,
    recorder: Recorder,
}

impl Member {
    fn start(broker: &TestBroker, group: &str, topic: &str, extra: &[(&str, &str)]) -> Member {
        let recorder = Recorder::default();
        let mut config = broker.client_config();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500");
        for (k, v) in extra {
            config.set(*k, *v);
        }
        let consumer: BaseConsumer<Recorder> = config
            .create_with_context(recorder.clone())
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let assignment = Arc::new(Mutex::new(BTreeSet::new()));
        let consumed = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, assignment, consumed) = (stop.clone(), assignment.clone(), consumed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match consumer.poll(Duration::from_millis(50)) {
                        Some(Ok(message)) => {
                            consumed
                                .lock()
                                .expect("lock")
                                .push((message.partition(), message.offset()));
                            // Commit what was processed, so that a rebalance never skips a record.
                            let _ = consumer.commit_message(&message, CommitMode::Sync);
                        }
                        Some(Err(error)) => eprintln!("consumer error: {error}"),
                        None => {}
                    }
                    if let Ok(tpl) = consumer.assignment() {
                        *assignment.lock().expect("lock") =
                            tpl.elements().iter().map(|e| e.partition()).collect();
                    }
                }
                consumer.unsubscribe();
                drop(consumer);
            })
        };
        Member {
            stop,
            thread: Some(thread),
            assignment,
            consumed,
            recorder,
        }
    }

    fn assignment(&self) -> BTreeSet<i32> {
        self.assignment.lock().expect("lock").clone()
    }

    fn consumed(&self) -> Vec<(i32, i64)> {
        self.consumed.lock().expect("lock").clone()
    }

    fn rebalances(&self) -> usize {
        self.recorder.events.lock().expect("lock").len()
    }

    /// Closes the consumer (a dynamic member leaves the group).
    fn close(mut self) -> Vec<(i32, i64)> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("member thread");
        }
        self.consumed()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every partition of `0..partitions` is assigned to exactly one member.
fn exactly_once(members: &[&Member], partitions: i32) -> bool {
    let mut seen = BTreeMap::new();
    for member in members {
        for p in member.assignment() {
            *seen.entry(p).or_insert(0) += 1;
        }
    }
    seen.len() == partitions as usize && seen.values().all(|n| *n == 1)
}

async fn produce(
    broker: &TestBroker,
    topic: &str,
    per_partition: usize,
    partitions: i32,
) -> BTreeSet<(i32, i64)> {
    let producer = broker.producer(&[]);
    let mut produced = BTreeSet::new();
    for i in 0..per_partition * partitions as usize {
        let key = format!("k{i}");
        let (partition, offset) = produce_one(&producer, topic, &key, b"v").await;
        produced.insert((partition, offset));
    }
    produced
}

fn all_consumed(members: &[&Member], gone: &[Vec<(i32, i64)>]) -> BTreeSet<(i32, i64)> {
    members
        .iter()
        .flat_map(|m| m.consumed())
        .chain(gone.iter().flatten().copied())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_consumers_share_six_partitions_and_take_over_when_one_leaves() {
    let broker = TestBroker::start_with(GROUP_FLAGS);
    broker.create_topic("six", 6).await;
    let mut produced = produce(&broker, "six", 5, 6).await;

    let a = Member::start(&broker, "g-three", "six", &[]);
    let b = Member::start(&broker, "g-three", "six", &[]);
    let c = Member::start(&broker, "g-three", "six", &[]);
    wait_until(
        "each of six partitions assigned once across three members",
        Duration::from_secs(30),
        || exactly_once(&[&a, &b, &c], 6) && [&a, &b, &c].iter().all(|m| m.assignment().len() == 2),
    );
    wait_until(
        "the first records consumed",
        Duration::from_secs(30),
        || all_consumed(&[&a, &b, &c], &[]).is_superset(&produced),
    );

    let gone = c.close();
    produced.extend(produce(&broker, "six", 5, 6).await);
    wait_until(
        "the leaver's partitions move to the others",
        Duration::from_secs(30),
        || exactly_once(&[&a, &b], 6),
    );
    wait_until(
        "every record consumed across the rebalance",
        Duration::from_secs(30),
        || all_consumed(&[&a, &b], std::slice::from_ref(&gone)).is_superset(&produced),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_that_stops_heartbeating_loses_its_partitions_within_the_session_timeout() {
    let broker = TestBroker::start_with(GROUP_FLAGS);
    broker.create_topic("hb", 6).await;
    let a = Member::start(&broker, "g-hb", "hb", &[]);
    wait_until("a owns every partition", Duration::from_secs(30), || {
        a.assignment().len() == 6
    });
    // kcat as the second member, then kill -9 it: no LeaveGroup, only silence.
    let mut kcat = std::process::Command::new("kcat")
        .args([
            "-b",
            &broker.addr,
            "-G",
            "g-hb",
            "-X",
            "session.timeout.ms=2000",
            "-X",
            "heartbeat.interval.ms=300",
            "-X",
            "broker.address.family=v4",
            "-q",
            "-o",
            "beginning",
            "hb",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kcat (Debian's kcat package) must be installed");
    wait_until(
        "kcat takes half the partitions",
        Duration::from_secs(30),
        || a.assignment().len() == 3,
    );
    kcat.kill().expect("kill -9 kcat");
    let _ = kcat.wait();
    let killed = Instant::now();
    wait_until(
        "a gets every partition back",
        Duration::from_secs(20),
        || a.assignment().len() == 6,
    );
    // session timeout (2 s) + a's rejoin, with room for a slow machine.
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "took {:?}",
        killed.elapsed()
    );
    let produced = produce(&broker, "hb", 3, 6).await;
    wait_until(
        "a consumes everything produced afterwards",
        Duration::from_secs(30),
        || all_consumed(&[&a], &[]).is_superset(&produced),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn consumption_resumes_at_the_committed_offsets_after_a_broker_restart() {
    let mut broker = TestBroker::start_with(GROUP_FLAGS);
    broker.create_topic("resume", 3).await;
    let first = produce(&broker, "resume", 4, 3).await;
    let member = Member::start(&broker, "g-resume", "resume", &[]);
    wait_until(
        "the first batch consumed and committed",
        Duration::from_secs(30),
        || all_consumed(&[&member], &[]).is_superset(&first),
    );
    member.close();

    broker.restart();
    let second = produce(&broker, "resume", 2, 3).await;
    let member = Member::start(&broker, "g-resume", "resume", &[]);
    wait_until("the second batch consumed", Duration::from_secs(60), || {
        all_consumed(&[&member], &[]).is_superset(&second)
    });
    std::thread::sleep(Duration::from_millis(500));
    let again: BTreeSet<(i32, i64)> = member.consumed().into_iter().collect();
    assert_eq!(
        again, second,
        "exactly the records after the committed offsets"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cooperative_sticky_members_keep_their_partitions_across_a_rebalance() {
    let broker = TestBroker::start_with(GROUP_FLAGS);
    broker.create_topic("coop", 6).await;
    let coop = [("partition.assignment.strategy", "cooperative-sticky")];
    let a = Member::start(&broker, "g-coop", "coop", &coop);
    wait_until("a owns every partition", Duration::from_secs(30), || {
        a.assignment().len() == 6
    });
    let b = Member::start(&broker, "g-coop", "coop", &coop);
    wait_until("the partitions are shared", Duration::from_secs(30), || {
        exactly_once(&[&a, &b], 6) && a.assignment().len() == 3
    });
    let kept = a.assignment();
    let events = a.recorder.events.lock().expect("lock").clone();
    assert!(
        events.iter().any(|(kind, _)| kind == "revoke"),
        "a gave partitions up: {events:?}"
    );
    for (kind, partitions) in &events {
        if kind == "revoke" {
            assert!(
                partitions.is_disjoint(&kept),
                "revoked {partitions:?} though it keeps {kept:?}"
            );
            assert_eq!(partitions.len(), 3, "only the moved partitions are revoked");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_member_restarting_within_its_session_causes_no_rebalance() {
    let broker = TestBroker::start_with(GROUP_FLAGS);
    broker.create_topic("static", 4).await;
    let a = Member::start(&broker, "g-static", "static", &[("group.instance.id", "a")]);
    let b = Member::start(&broker, "g-static", "static", &[("group.instance.id", "b")]);
    wait_until(
        "two static members share the partitions",
        Duration::from_secs(30),
        || exactly_once(&[&a, &b], 4) && a.assignment().len() == 2,
    );
    let a_partitions = a.assignment();
    std::thread::sleep(Duration::from_secs(1));
    let b_rebalances = b.rebalances();
    a.close();
    let a2 = Member::start(&broker, "g-static", "static", &[("group.instance.id", "a")]);
    wait_until(
        "the restarted member has its partitions back",
        Duration::from_secs(30),
        || a2.assignment() == a_partitions,
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(b.rebalances(), b_rebalances, "b saw a rebalance");
    assert_eq!(b.assignment().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn commit_metadata_round_trips_and_never_committed_partitions_fetch_nothing() {
    let broker = TestBroker::start_with(GROUP_FLAGS);
    broker.create_topic("meta", 2).await;
    let consumer: BaseConsumer = broker
        .client_config()
        .set("group.id", "g-meta")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("meta", 0, Offset::Offset(17))
        .expect("tpl");
    tpl.find_partition("meta", 0)
        .expect("partition")
        .set_metadata("checkpoint-7");
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition("meta", 0);
    wanted.add_partition("meta", 1);
    let committed = consumer
        .committed_offsets(wanted, Duration::from_secs(10))
        .expect("committed");
    let p0 = committed.find_partition("meta", 0).expect("p0");
    assert_eq!(p0.offset(), Offset::Offset(17));
    assert_eq!(p0.metadata(), "checkpoint-7");
    let p1 = committed.find_partition("meta", 1).expect("p1");
    assert_eq!(
        p1.offset(),
        Offset::Invalid,
        "never committed: the broker answers -1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_too_large_for_the_log_is_refused_and_leaves_no_trace() {
    // 50 partitions x 4000 bytes of metadata make a __consumer_offsets batch larger than message.max.bytes.
    let mut flags = GROUP_FLAGS.to_vec();
    flags.push("--message.max.bytes=100000");
    let broker = TestBroker::start_with(&flags);
    broker.create_topic("huge-commit", 50).await;
    let consumer: BaseConsumer = broker
        .client_config()
        .set("group.id", "g-huge")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = "m".repeat(4000);
    let mut tpl = TopicPartitionList::new();
    for partition in 0..50 {
        tpl.add_partition_offset("huge-commit", partition, Offset::Offset(5))
            .expect("tpl");
        tpl.find_partition("huge-commit", partition)
            .expect("partition")
            .set_metadata(metadata.as_str());
    }
    let error = consumer
        .commit(&tpl, CommitMode::Sync)
        .expect_err("the log refuses the batch");
    assert!(
        error.to_string().contains("size") || error.to_string().contains("Size"),
        "INVALID_COMMIT_OFFSET_SIZE, as Kafka answers: {error}"
    );

    let mut wanted = TopicPartitionList::new();
    wanted.add_partition("huge-commit", 0);
    let committed = consumer
        .committed_offsets(wanted.clone(), Duration::from_secs(10))
        .expect("committed");
    assert_eq!(
        committed
            .find_partition("huge-commit", 0)
            .expect("p0")
            .offset(),
        Offset::Invalid,
        "a refused commit must not be visible in the coordinator's state"
    );

    let mut small = TopicPartitionList::new();
    small
        .add_partition_offset("huge-commit", 0, Offset::Offset(9))
        .expect("tpl");
    consumer
        .commit(&small, CommitMode::Sync)
        .expect("a small commit");
    let committed = consumer
        .committed_offsets(wanted, Duration::from_secs(10))
        .expect("committed");
    assert_eq!(
        committed
            .find_partition("huge-commit", 0)
            .expect("p0")
            .offset(),
        Offset::Offset(9)
    );
}
