//! Bad input on raw sockets: each case gets Kafka's answer (an error code, or a closed connection), the broker keeps
//! serving, and a normal produce and consume work right after.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{produce_one, record_batch, TestBroker};
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, ProduceResponse, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::message::Message;

fn connect(broker: &TestBroker) -> TcpStream {
    let stream = TcpStream::connect(&broker.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn request<T: Encodable>(key: ApiKey, version: i16, header_version: i16, body: &T) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(42)
        .with_client_id(Some(StrBytes::from_static_str("raw-test")))
        .encode(&mut buf, header_version)
        .expect("header");
    body.encode(&mut buf, version).expect("body");
    frame(&buf)
}

/// Reads one response frame, or None if the broker closed the connection.
fn read_response(stream: &mut TcpStream) -> Option<Bytes> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(Bytes::from(body))
}

fn assert_closed(mut stream: TcpStream, what: &str) {
    let mut buf = [0u8; 1];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("{what}: expected the broker to close the connection, got {other:?}"),
    }
}

async fn still_serving(broker: &TestBroker, topic: &str) {
    let producer = broker.producer(&[]);
    let (_, offset) = produce_one(&producer, topic, "k", b"after bad input").await;
    let received = broker.consume(topic, 1, offset as usize + 1);
    assert_eq!(
        received.last().and_then(|m| m.payload()),
        Some(&b"after bad input"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_the_connection_and_nothing_else() {
    let broker = TestBroker::start();
    broker.create_topic("survivor", 1).await;
    let bystander = connect(&broker);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("negative frame length", (-5i32).to_be_bytes().to_vec()),
        (
            "frame over socket.request.max.bytes",
            (200_000_000i32).to_be_bytes().to_vec(),
        ),
        (
            "unknown api key",
            frame(&[0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef]),
        ),
        ("shorter than a header", frame(&[0, 3, 0])),
        (
            "garbage body",
            frame(&[0, 3, 0, 12, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff, 0x13, 0x37]),
        ),
        ("produce v99", frame(&[0, 0, 0, 99, 0, 0, 0, 8, 0xff, 0xff])),
        (
            "produce v2 (removed by KIP-896)",
            frame(&[0, 0, 0, 2, 0, 0, 0, 7, 0xff, 0xff]),
        ),
    ];
    for (what, bytes) in cases {
        let mut stream = connect(&broker);
        stream.write_all(&bytes).expect("write");
        assert_closed(stream, what);
        still_serving(&broker, "survivor").await;
    }

    // A request whose body stops short, then the client hangs up.
    let mut stream = connect(&broker);
    let full = request(ApiKey::ApiVersions, 3, 2, &ApiVersionsRequest::default());
    let mut truncated = full.clone();
    truncated[..4].copy_from_slice(&((full.len() - 4 + 50) as i32).to_be_bytes());
    stream.write_all(&truncated).expect("write");
    drop(stream);
    still_serving(&broker, "survivor").await;

    // The bystander connection was never disturbed.
    let mut bystander = bystander;
    bystander
        .write_all(&request(
            ApiKey::ApiVersions,
            3,
            2,
            &ApiVersionsRequest::default(),
        ))
        .expect("write");
    assert!(read_response(&mut bystander).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_too_new_gets_unsupported_version_in_a_v0_body() {
    let broker = TestBroker::start();
    let mut stream = connect(&broker);
    // A v3 request relabelled v99: the broker must not try to parse a body it cannot know.
    let mut too_new = request(ApiKey::ApiVersions, 3, 2, &ApiVersionsRequest::default());
    too_new[6..8].copy_from_slice(&99i16.to_be_bytes());
    stream.write_all(&too_new).expect("write");
    let mut response = read_response(&mut stream).expect("a response, not a closed connection");
    let header = ResponseHeader::decode(&mut response, 0).expect("v0 header");
    assert_eq!(header.correlation_id, 42);
    let body = ApiVersionsResponse::decode(&mut response, 0).expect("v0 body");
    assert_eq!(body.error_code, 35);
    assert!(body
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::ApiVersions as i16 && k.max_version >= 3));

    // The same connection then negotiates normally.
    stream
        .write_all(&request(
            ApiKey::ApiVersions,
            3,
            2,
            &ApiVersionsRequest::default(),
        ))
        .expect("write");
    let mut response = read_response(&mut stream).expect("response");
    ResponseHeader::decode(&mut response, 0).expect("header");
    let body = ApiVersionsResponse::decode(&mut response, 3).expect("v3 body");
    assert_eq!(body.error_code, 0);
    assert!(body
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::Produce as i16));
}

fn batch(corrupt: bool) -> Bytes {
    let batch = record_batch(b"key", b"value");
    if !corrupt {
        return batch;
    }
    let mut buf = BytesMut::from(&batch[..]);
    let last = buf.len() - 1;
    buf[last] ^= 0xff;
    buf.freeze()
}

fn produce(topic: &str, records: Bytes) -> Vec<u8> {
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    self::request(ApiKey::Produce, 8, 1, &request)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_batches_get_per_partition_errors() {
    let broker = TestBroker::start();
    broker.create_topic("batches", 1).await;
    let mut stream = connect(&broker);
    let mut two_batches = BytesMut::from(&batch(false)[..]);
    two_batches.extend_from_slice(&batch(false));
    let cases = [
        ("bad CRC", batch(true), 2),
        ("truncated batch", batch(false).slice(..40), 2),
        ("two batches in one produce", two_batches.freeze(), 87),
        ("a good batch", batch(false), 0),
    ];
    for (what, records, expected) in cases {
        stream
            .write_all(&produce("batches", records))
            .expect("write");
        let mut response = read_response(&mut stream).expect("response");
        ResponseHeader::decode(&mut response, 0).expect("header");
        let body = ProduceResponse::decode(&mut response, 8).expect("body");
        let code = body.responses[0].partition_responses[0].error_code;
        assert_eq!(code, expected, "{what}");
    }
    still_serving(&broker, "batches").await;
    // Only the good batch and the one from still_serving were stored.
    assert_eq!(broker.consume_all("batches", 1).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limits_are_enforced() {
    let broker = TestBroker::start_with(&["--max.connections=2", "--connections.max.idle.ms=1000"]);
    let mut first = connect(&broker);
    let _second = connect(&broker);
    // The third is accepted by the OS and closed by the broker straight away.
    assert_closed(connect(&broker), "connection over max.connections");

    // An idle connection is closed once connections.max.idle.ms passes...
    std::thread::sleep(Duration::from_millis(1500));
    let mut buf = [0u8; 1];
    assert!(
        matches!(first.read(&mut buf), Ok(0) | Err(_)),
        "idle connection should be closed"
    );
    // ...which frees its slot for a client that talks.
    drop(first);
    std::thread::sleep(Duration::from_millis(100));
    let mut fresh = connect(&broker);
    fresh
        .write_all(&request(
            ApiKey::ApiVersions,
            3,
            2,
            &ApiVersionsRequest::default(),
        ))
        .expect("write");
    assert!(read_response(&mut fresh).is_some(), "a slot is free again");
}
