//! Retention with real clients: old segments go once a live topic's retention.ms is lowered (no restart), the
//! LogStartOffset advances and survives a restart, and consumers at a deleted offset are reset as their
//! auto.offset.reset says.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::TestBroker;
use rdkafka::admin::{AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset, TopicPartitionList};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn segment_bases(broker: &TestBroker, dir: &str) -> Vec<i64> {
    let mut bases: Vec<i64> = std::fs::read_dir(broker.data_dir().join(dir))
        .expect("partition dir")
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".log").and_then(|stem| stem.parse().ok())
        })
        .collect();
    bases.sort();
    bases
}

fn first_offset_read(broker: &TestBroker, reset: &str) -> i64 {
    let consumer: BaseConsumer = broker
        .client_config()
        .set("group.id", format!("retention-{reset}"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", reset)
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("aging", 0, Offset::Offset(0))
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            return message.offset();
        }
    }
    panic!("{reset}: no record read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_segments_go_and_consumers_are_reset() {
    let mut broker = TestBroker::start_with(&["--log.retention.check.interval.ms=200"]);
    let admin = broker.admin();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    admin
        .create_topics(
            &[NewTopic::new("aging", 1, TopicReplication::Fixed(1))
                .set("segment.ms", "500")
                .set("file.delete.delay.ms", "0")],
            &options,
        )
        .await
        .expect("create_topics")[0]
        .clone()
        .expect("created");

    // Six records an hour old, a second apart in record time (so each rolls a segment), then four fresh ones.
    let producer = broker.producer(&[("linger.ms", "0")]);
    let hour_ago = now_ms() - 3_600_000;
    for i in 0..10i64 {
        let timestamp = if i < 6 {
            hour_ago + i * 1_000
        } else {
            now_ms()
        };
        let record = FutureRecord::to("aging")
            .key("k")
            .payload("v")
            .timestamp(timestamp);
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .expect("produce");
    }
    let before = segment_bases(&broker, "aging-0");
    assert!(before.len() >= 7, "{before:?}");

    // Nothing is old under the default retention; lowering it on the live topic takes effect without a restart.
    let altered = admin
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic("aging"))
                .set("segment.ms", "500")
                .set("file.delete.delay.ms", "0")
                .set("retention.ms", "600000")],
            &options,
        )
        .await
        .expect("alter_configs");
    assert!(altered[0].is_ok());

    let consumer = broker.consumer();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut low = 0;
    while Instant::now() < deadline {
        low = consumer
            .fetch_watermarks("aging", 0, Duration::from_secs(10))
            .expect("watermarks")
            .0;
        if low > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(low, 6, "the six old records are gone");
    let after = segment_bases(&broker, "aging-0");
    assert!(after.iter().all(|base| *base >= 6), "{after:?}");
    assert!(!after.is_empty(), "the active segment stays");

    // A consumer positioned at offset 0 is out of range and resets as configured.
    assert_eq!(first_offset_read(&broker, "earliest"), 6);
    // With "latest" it jumps to the end and reads only what comes next.
    let later = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        producer
            .send(
                FutureRecord::to("aging").key("k").payload("new"),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produce")
    });
    assert_eq!(first_offset_read(&broker, "latest"), 10);
    later.await.expect("join");

    broker.restart();
    let (low, high) = broker
        .consumer()
        .fetch_watermarks("aging", 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!(
        (low, high),
        (6, 11),
        "the LogStartOffset survives a restart"
    );
}
