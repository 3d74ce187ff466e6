//! Produce and consume through librdkafka: every codec, keys, headers, null and empty values, large records,
//! oversized records, auto-created topics.

mod common;

use std::time::Duration;

use common::{produce_one, TestBroker};
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_with_every_codec() {
    let broker = TestBroker::start();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        broker.create_topic(&topic, 1).await;
        let producer = broker.producer(&[("compression.type", codec)]);
        let mut sent = Vec::new();
        for i in 0..50u32 {
            let value = format!("{codec} record {i} {}", "x".repeat(i as usize * 10));
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "index",
                    value: Some(&i.to_be_bytes()),
                })
                .insert(Header {
                    key: "empty",
                    value: None::<&[u8]>,
                });
            let key = format!("key-{i}");
            let record = FutureRecord::to(&topic)
                .key(&key)
                .payload(value.as_bytes())
                .headers(headers);
            let pending = producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("enqueue");
            sent.push((format!("key-{i}"), value, pending));
        }
        // A record with a null value (a tombstone) and one with an empty value.
        let tombstone = producer
            .send_result(FutureRecord::<str, [u8]>::to(&topic).key("null"))
            .map_err(|(e, _)| e);
        let empty = producer
            .send_result(FutureRecord::to(&topic).key("empty").payload(&[][..]))
            .map_err(|(e, _)| e);
        for (_, _, pending) in &mut sent {
            pending
                .await
                .expect("delivered")
                .map_err(|(e, _)| e)
                .expect("acknowledged");
        }
        tombstone
            .expect("enqueue")
            .await
            .expect("delivered")
            .map_err(|(e, _)| e)
            .expect("acknowledged");
        empty
            .expect("enqueue")
            .await
            .expect("delivered")
            .map_err(|(e, _)| e)
            .expect("acknowledged");

        let received = broker.consume(&topic, 1, sent.len() + 2);
        assert_eq!(
            received.len(),
            sent.len() + 2,
            "{codec}: every record comes back"
        );
        for (i, ((key, value, _), message)) in sent.iter().zip(&received).enumerate() {
            assert_eq!(message.offset(), i as i64, "{codec}: offsets are dense");
            assert_eq!(message.key(), Some(key.as_bytes()));
            assert_eq!(message.payload(), Some(value.as_bytes()));
            let headers = message.headers().expect("headers");
            assert_eq!(headers.count(), 2);
            assert_eq!(headers.get(0).value, Some(&(i as u32).to_be_bytes()[..]));
            assert_eq!(headers.get(1).value, None);
        }
        let tombstone = &received[sent.len()];
        assert_eq!(tombstone.key(), Some(&b"null"[..]));
        assert_eq!(
            tombstone.payload(),
            None,
            "{codec}: a null value stays null"
        );
        let empty = &received[sent.len() + 1];
        assert_eq!(
            empty.payload().map(<[u8]>::len).unwrap_or(usize::MAX),
            0,
            "{codec}: an empty value stays empty"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabyte_records_and_message_max_bytes() {
    let broker = TestBroker::start();
    broker.create_topic("large", 1).await;
    let producer = broker.producer(&[
        ("message.max.bytes", "3000000"),
        ("compression.type", "none"),
    ]);
    let big = vec![7u8; 1_000_000];
    let (_, offset) = produce_one(&producer, "large", "big", &big).await;
    assert_eq!(offset, 0);

    // Over message.max.bytes (1048588): rejected by the broker, which keeps serving.
    let too_big = vec![8u8; 1_100_000];
    let rejected = producer
        .send(
            FutureRecord::to("large").key("too-big").payload(&too_big),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e);
    assert!(
        matches!(
            rejected,
            Err(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageSizeTooLarge
            ))
        ),
        "{rejected:?}"
    );
    let (_, offset) = produce_one(&producer, "large", "after", b"still serving").await;
    assert_eq!(offset, 1);

    let received = broker.consume("large", 1, 2);
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].payload().map(<[u8]>::len), Some(1_000_000));
    assert!(received[0]
        .payload()
        .is_some_and(|p| p.iter().all(|b| *b == 7)));
    assert_eq!(received[1].payload(), Some(&b"still serving"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producing_to_an_unknown_topic_creates_it() {
    let broker = TestBroker::start_with(&["--num.partitions=3"]);
    let producer = broker.producer(&[]);
    produce_one(&producer, "auto-created", "k", b"v").await;
    let metadata = broker
        .consumer()
        .fetch_metadata(Some("auto-created"), Duration::from_secs(10))
        .expect("metadata");
    let topic = &metadata.topics()[0];
    assert_eq!(topic.name(), "auto-created");
    assert!(topic.error().is_none());
    assert_eq!(
        topic.partitions().len(),
        3,
        "num.partitions applies to auto-created topics"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_long_poll_and_see_new_records() {
    let broker = TestBroker::start();
    broker.create_topic("live", 2).await;
    let consumer_broker = broker.addr.clone();
    let reader = std::thread::spawn(move || {
        let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &consumer_broker)
            .set("group.id", "live")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "500")
            .create()
            .expect("consumer");
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition_offset("live", 0, rdkafka::Offset::Beginning)
            .expect("tpl");
        tpl.add_partition_offset("live", 1, rdkafka::Offset::Beginning)
            .expect("tpl");
        rdkafka::consumer::Consumer::assign(&consumer, &tpl).expect("assign");
        let mut got = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while got < 100 && std::time::Instant::now() < deadline {
            if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
                got += 1;
            }
        }
        got
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let producer = broker.producer(&[]);
    for i in 0..100 {
        let key = format!("{i}");
        producer
            .send(
                FutureRecord::to("live").key(&key).payload("v"),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("delivered");
    }
    assert_eq!(reader.join().expect("reader thread"), 100);
}
