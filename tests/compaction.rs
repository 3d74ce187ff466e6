//! Compaction with real clients: many versions of a set of keys plus tombstones go to a compacted topic; once the
//! segments roll and the log cleaner has run, a consumer from the beginning sees exactly the latest value of each
//! key, no tombstone older than delete.retention.ms, and ascending offsets. Keyless records are refused.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::TestBroker;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

async fn send(producer: &FutureProducer, key: &str, value: Option<&str>) -> i64 {
    let mut record = FutureRecord::<str, str>::to("compacted").key(key);
    if let Some(value) = value {
        record = record.payload(value);
    }
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map_err(|(e, _)| e)
        .expect("produce")
        .offset
}

/// Every record from the beginning up to the high watermark, as (offset, key, value).
fn read_all(broker: &TestBroker) -> Vec<(i64, String, Option<String>)> {
    let consumer = broker.consumer();
    let (_, high) = consumer
        .fetch_watermarks("compacted", 0, Duration::from_secs(10))
        .expect("watermarks");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("compacted", 0, Offset::Beginning)
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
                out.push((
                    m.offset(),
                    text(m.key()).unwrap_or_default(),
                    text(m.payload()),
                ));
                if m.offset() + 1 >= high {
                    break;
                }
            }
            Some(Err(error)) => panic!("consume: {error}"),
            None => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cleaner_keeps_the_latest_value_per_key() {
    let broker = TestBroker::start_with(&["--log.cleaner.backoff.ms=200"]);
    let admin = broker.admin();
    admin
        .create_topics(
            &[NewTopic::new("compacted", 1, TopicReplication::Fixed(1))
                .set("cleanup.policy", "compact")
                .set("segment.ms", "100")
                .set("min.cleanable.dirty.ratio", "0.01")
                .set("delete.retention.ms", "1000")
                .set("file.delete.delay.ms", "0")],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("create_topics")[0]
        .clone()
        .expect("created");
    let producer = broker.producer(&[("linger.ms", "0")]);

    // Kafka refuses keyless records on a compacted topic.
    let keyless = producer
        .send(
            FutureRecord::<str, str>::to("compacted").payload("no key"),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e);
    assert!(
        matches!(
            keyless,
            Err(KafkaError::MessageProduction(
                RDKafkaErrorCode::InvalidRecord
            ))
        ),
        "{keyless:?}"
    );

    let mut latest: BTreeMap<String, Option<String>> = BTreeMap::new();
    for round in 0..6 {
        for k in 0..8 {
            let (key, value) = (format!("key-{k}"), format!("value-{round}-{k}"));
            send(&producer, &key, Some(&value)).await;
            latest.insert(key, Some(value));
        }
        // Rolls a segment per round (segment.ms is measured in record time).
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    for k in 0..3 {
        let key = format!("key-{k}");
        send(&producer, &key, None).await;
        latest.insert(key, None);
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The last record rolls the tombstones into an inactive segment; it stays in the active one.
    let last = send(&producer, "last", Some("end")).await;
    latest.insert("last".into(), Some("end".into()));

    let expected: BTreeMap<String, String> = latest
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut records = read_all(&broker);
    loop {
        let seen: BTreeMap<String, String> = records
            .iter()
            .filter_map(|(_, k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        let compacted = records.len() == latest.len() - 3 && seen == expected;
        if compacted || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        records = read_all(&broker);
    }
    let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    assert_eq!(offsets.last(), Some(&last), "offsets are preserved");
    assert!(
        records.iter().all(|(_, _, v)| v.is_some()),
        "tombstones are gone after delete.retention.ms: {records:?}"
    );
    let mut keys: Vec<&str> = records.iter().map(|r| r.1.as_str()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), records.len(), "one record per key: {records:?}");
    let seen: BTreeMap<String, String> = records
        .into_iter()
        .filter_map(|(_, k, v)| v.map(|v| (k, v)))
        .collect();
    assert_eq!(seen, expected);
}
