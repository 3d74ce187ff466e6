//! Durability: a clean restart and a `kill -9` both keep every acknowledged record and topic.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{produce_one, TestBroker};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_topics_and_records() {
    let mut broker = TestBroker::start();
    broker.create_topic("kept", 2).await;
    let producer = broker.producer(&[("acks", "all")]);
    for i in 0..200 {
        let key = format!("k{i}");
        produce_one(&producer, "kept", &key, key.as_bytes()).await;
    }
    drop(producer);
    broker.restart();

    let received = broker.consume("kept", 2, 200);
    assert_eq!(received.len(), 200);
    let keys: BTreeSet<Vec<u8>> = received
        .iter()
        .filter_map(|m| m.key().map(<[u8]>::to_vec))
        .collect();
    assert_eq!(keys.len(), 200);
    // Appends continue after the recovered end.
    let producer = broker.producer(&[]);
    let (partition, offset) = produce_one(&producer, "kept", "after", b"restart").await;
    assert!(offset >= 1, "partition {partition} continues at {offset}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_acks_all_produce_loses_nothing_acknowledged() {
    let mut broker = TestBroker::start();
    broker.create_topic("crash", 3).await;
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = broker.producer(&[
        ("acks", "all"),
        ("linger.ms", "1"),
        ("message.timeout.ms", "5000"),
    ]);
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (producer, acknowledged, stop) = (producer.clone(), acknowledged.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("w{writer}-{i}");
                let sent = producer
                    .send(
                        FutureRecord::to("crash").key(&key).payload(key.as_bytes()),
                        Duration::from_secs(5),
                    )
                    .await;
                if sent.is_ok() {
                    acknowledged.lock().expect("lock").insert(key);
                }
                i += 1;
            }
        }));
    }
    // Let acknowledged records pile up, then pull the plug mid-stream.
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.crash_and_restart();
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        let _ = writer.await;
    }
    drop(producer);

    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() > 100,
        "the test produced too little to mean anything: {}",
        acknowledged.len()
    );
    let received = broker.consume_all("crash", 3);
    let keys: BTreeSet<String> = received
        .iter()
        .filter_map(|m| m.key().map(|k| String::from_utf8_lossy(k).into_owned()))
        .collect();
    let lost: Vec<_> = acknowledged.difference(&keys).take(10).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost after kill -9: {lost:?} (of {})",
        acknowledged.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_cache_flush_policy_serves_and_survives_a_clean_restart() {
    // Kafka's behaviour: acknowledge on write, fsync every log.flush.interval.ms / .messages.
    let mut broker = TestBroker::start_with(&[
        "--log.flush.interval.ms=200",
        "--log.flush.interval.messages=50",
    ]);
    broker.create_topic("paged", 1).await;
    let producer = broker.producer(&[("acks", "all")]);
    for i in 0..120 {
        let key = format!("k{i}");
        produce_one(&producer, "paged", &key, key.as_bytes()).await;
    }
    assert_eq!(
        broker.consume_all("paged", 1).len(),
        120,
        "written is visible at once"
    );
    drop(producer);
    broker.restart();
    assert_eq!(broker.consume_all("paged", 1).len(), 120);
}

#[test]
fn invalid_configuration_names_the_key_and_exits_non_zero() {
    for (flag, key) in [
        ("--num.partitions=zero", "num.partitions"),
        ("--background.threads=many", "background.threads"),
        (
            "--log.message.timestamp.type=Sometimes",
            "log.message.timestamp.type",
        ),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ferrite"))
            .arg(flag)
            .output()
            .expect("run ferrite");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flag}: should not start");
        assert!(
            stderr.contains(key),
            "{flag}: the message should name {key}: {stderr}"
        );
    }
}
