//! One connection to one broker: framing, correlation ids, ApiVersions negotiation and per-request timeouts.
//!
//! Requests may be in flight concurrently: a reader task matches each response frame to its waiting request by
//! correlation id, so callers can fan requests out over one connection as Kafka's clients do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{
    Decodable, Encodable, HeaderVersion, Message, Request, StrBytes, VersionRange,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::error::{ClientError, KafkaError};

/// Largest response frame accepted: a DescribeConfigs of every topic with documentation stays far below this.
const MAX_RESPONSE_BYTES: i32 = 256 * 1024 * 1024;
const UNSUPPORTED_VERSION: i16 = 35;

#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    pub client_id: String,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

#[derive(Default)]
struct Waiting {
    by_correlation_id: HashMap<i32, oneshot::Sender<Bytes>>,
    /// Set once the reader stops: later requests fail at once instead of waiting for their timeout.
    closed: bool,
}

pub struct Connection {
    addr: String,
    settings: ConnectionSettings,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    waiting: Arc<Mutex<Waiting>>,
    next_correlation_id: AtomicI32,
    /// The broker's supported versions per API key, from ApiVersions.
    broker_versions: HashMap<i16, VersionRange>,
    reader: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Connection {
    /// Connects and negotiates API versions.
    pub async fn connect(
        addr: &str,
        settings: &ConnectionSettings,
    ) -> Result<Connection, ClientError> {
        let stream =
            match tokio::time::timeout(settings.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(source)) => {
                    return Err(ClientError::Connect {
                        addr: addr.to_string(),
                        source,
                    })
                }
                Err(_) => {
                    return Err(ClientError::ConnectTimeout {
                        addr: addr.to_string(),
                        timeout_ms: millis(settings.connect_timeout),
                    })
                }
            };
        let _ = stream.set_nodelay(true);
        let (read_half, write_half) = stream.into_split();
        let waiting = Arc::new(Mutex::new(Waiting::default()));
        let reader = tokio::spawn(read_responses(read_half, waiting.clone()));
        let mut connection = Connection {
            addr: addr.to_string(),
            settings: settings.clone(),
            writer: tokio::sync::Mutex::new(write_half),
            waiting,
            next_correlation_id: AtomicI32::new(1),
            broker_versions: HashMap::new(),
            reader,
        };
        connection.broker_versions = connection.negotiate_versions().await?;
        Ok(connection)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends a request at the highest version both sides support; `build` makes the request for that version.
    pub async fn send<R: Request>(
        &self,
        build: impl FnOnce(i16) -> R,
    ) -> Result<R::Response, ClientError> {
        self.send_within(R::VERSIONS, build).await
    }

    /// As `send`, with the client's side narrowed to `client` (the versions whose fields the caller fills in).
    pub async fn send_within<R: Request>(
        &self,
        client: VersionRange,
        build: impl FnOnce(i16) -> R,
    ) -> Result<R::Response, ClientError> {
        let api = api_key::<R>();
        let version = self.version_for(api, R::VERSIONS.intersect(&client))?;
        let request = build(version);
        let mut body = self.round_trip(api, version, &request).await?;
        ResponseHeader::decode(&mut body, R::Response::header_version(version))
            .and_then(|_| R::Response::decode(&mut body, version))
            .map_err(|e| self.decode_error(api, version, e))
    }

    /// The version `send` would use for an API, for callers whose request shape depends on it.
    pub fn version_for(&self, api: ApiKey, client: VersionRange) -> Result<i16, ClientError> {
        let unsupported = |broker: String| ClientError::UnsupportedVersion {
            addr: self.addr.clone(),
            api,
            client,
            broker,
        };
        let Some(broker) = self.broker_versions.get(&(api as i16)) else {
            return Err(unsupported("none".to_string()));
        };
        let common = broker.intersect(&client);
        if common.is_empty() {
            return Err(unsupported(broker.to_string()));
        }
        Ok(common.max)
    }

    /// ApiVersions at our highest version; a broker that does not know it answers UNSUPPORTED_VERSION in v0 with
    /// its own range (KIP-511), and we ask again at the highest version it has.
    async fn negotiate_versions(&self) -> Result<HashMap<i16, VersionRange>, ClientError> {
        let api = ApiKey::ApiVersions;
        let mut version = ApiVersionsRequest::VERSIONS.max;
        for _ in 0..2 {
            let request = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("ferrite-admin"))
                .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
            let mut body = self.round_trip(api, version, &request).await?;
            ResponseHeader::decode(&mut body, ApiVersionsResponse::header_version(version))
                .map_err(|e| self.decode_error(api, version, e))?;
            let error_code = if body.len() >= 2 {
                (&body[..2]).get_i16()
            } else {
                0
            };
            let decode_version = if error_code == UNSUPPORTED_VERSION {
                0
            } else {
                version
            };
            let response = ApiVersionsResponse::decode(&mut body, decode_version)
                .map_err(|e| self.decode_error(api, decode_version, e))?;
            let ranges: HashMap<i16, VersionRange> = response
                .api_keys
                .iter()
                .map(|k| {
                    (
                        k.api_key,
                        VersionRange {
                            min: k.min_version,
                            max: k.max_version,
                        },
                    )
                })
                .collect();
            if error_code == UNSUPPORTED_VERSION {
                match ranges.get(&(api as i16)) {
                    Some(theirs) if theirs.max < version => {
                        version = theirs.max;
                        continue;
                    }
                    _ => {}
                }
            }
            if let Some(error) = KafkaError::from_code(error_code, None) {
                return Err(error.into());
            }
            return Ok(ranges);
        }
        Err(ClientError::UnsupportedVersion {
            addr: self.addr.clone(),
            api,
            client: ApiVersionsRequest::VERSIONS,
            broker: "no version in common".to_string(),
        })
    }

    /// Writes one request frame and waits for the frame answering it; returns it from the response header on.
    async fn round_trip<R: Encodable + HeaderVersion>(
        &self,
        api: ApiKey,
        version: i16,
        request: &R,
    ) -> Result<Bytes, ClientError> {
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_string(self.settings.client_id.clone())));
        let mut frame = BytesMut::with_capacity(256);
        frame.put_i32(0);
        let encode_error = |e: anyhow::Error| ClientError::Encode {
            api,
            version,
            message: e.to_string(),
        };
        header
            .encode(&mut frame, R::header_version(version))
            .map_err(encode_error)?;
        request.encode(&mut frame, version).map_err(encode_error)?;
        let size = i32::try_from(frame.len() - 4).map_err(|_| ClientError::Encode {
            api,
            version,
            message: "request larger than 2 GiB".to_string(),
        })?;
        frame[..4].copy_from_slice(&size.to_be_bytes());

        let (tx, rx) = oneshot::channel();
        {
            let mut waiting = lock(&self.waiting);
            if waiting.closed {
                return Err(self.disconnected(api));
            }
            waiting.by_correlation_id.insert(correlation_id, tx);
        }
        let exchange = async {
            self.writer
                .lock()
                .await
                .write_all(&frame)
                .await
                .map_err(|source| ClientError::Io {
                    addr: self.addr.clone(),
                    source,
                })?;
            rx.await.map_err(|_| self.disconnected(api))
        };
        let result = match tokio::time::timeout(self.settings.request_timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                addr: self.addr.clone(),
                api,
                timeout_ms: millis(self.settings.request_timeout),
            }),
        };
        if result.is_err() {
            lock(&self.waiting)
                .by_correlation_id
                .remove(&correlation_id);
        }
        result
    }

    fn disconnected(&self, api: ApiKey) -> ClientError {
        ClientError::Disconnected {
            addr: self.addr.clone(),
            api,
        }
    }

    fn decode_error(&self, api: ApiKey, version: i16, error: anyhow::Error) -> ClientError {
        ClientError::Decode {
            addr: self.addr.clone(),
            api,
            version,
            message: error.to_string(),
        }
    }
}

/// Hands each response frame to the request with its correlation id; on EOF or a bad frame, fails all waiters.
async fn read_responses(mut reader: OwnedReadHalf, waiting: Arc<Mutex<Waiting>>) {
    loop {
        let size = match reader.read_i32().await {
            Ok(size) if (4..=MAX_RESPONSE_BYTES).contains(&size) => size,
            _ => break,
        };
        let mut frame = vec![0u8; size as usize];
        if reader.read_exact(&mut frame).await.is_err() {
            break;
        }
        let frame = Bytes::from(frame);
        let correlation_id = (&frame[..4]).get_i32();
        // A response nobody waits for any more (its request timed out) is dropped.
        if let Some(tx) = lock(&waiting).by_correlation_id.remove(&correlation_id) {
            let _ = tx.send(frame);
        }
    }
    let mut waiting = lock(&waiting);
    waiting.closed = true;
    waiting.by_correlation_id.clear();
}

fn lock(waiting: &Mutex<Waiting>) -> std::sync::MutexGuard<'_, Waiting> {
    // The lock guards plain map updates that cannot panic half-way, so a poisoned lock is still consistent.
    waiting
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn api_key<R: Request>() -> ApiKey {
    // Every request type of the crate has a key the crate knows; the fallback only keeps this total.
    ApiKey::try_from(R::KEY).unwrap_or(ApiKey::ApiVersions)
}

pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::metadata_request::MetadataRequest;
    use kafka_protocol::messages::metadata_response::MetadataResponse;
    use kafka_protocol::messages::BrokerId;
    use tokio::net::TcpListener;

    use super::*;

    async fn read_request(stream: &mut TcpStream) -> (RequestHeader, Bytes) {
        let size = stream.read_i32().await.expect("size");
        let mut frame = vec![0u8; size as usize];
        stream.read_exact(&mut frame).await.expect("frame");
        let mut frame = Bytes::from(frame);
        let key = ApiKey::try_from((&frame[..2]).get_i16()).expect("api key");
        let version = (&frame[2..4]).get_i16();
        let header =
            RequestHeader::decode(&mut frame, key.request_header_version(version)).expect("header");
        (header, frame)
    }

    async fn respond<M: Encodable>(
        stream: &mut TcpStream,
        header: &RequestHeader,
        version: i16,
        body: &M,
    ) {
        let key = ApiKey::try_from(header.request_api_key).expect("api key");
        let mut buf = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(header.correlation_id)
            .encode(&mut buf, key.response_header_version(version))
            .expect("response header");
        body.encode(&mut buf, version).expect("response body");
        stream.write_i32(buf.len() as i32).await.expect("size");
        stream.write_all(&buf).await.expect("frame");
    }

    fn api(key: ApiKey, max: i16) -> ApiVersion {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_min_version(0)
            .with_max_version(max)
    }

    /// An old broker refuses our ApiVersions version (answering in v0, KIP-511), answers the retry, then answers
    /// two pipelined Metadata requests in reverse order and never answers a third.
    #[tokio::test]
    async fn negotiates_versions_matches_responses_and_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let broker = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let (header, _) = read_request(&mut stream).await;
            assert_eq!(header.request_api_version, ApiVersionsRequest::VERSIONS.max);
            let refusal = ApiVersionsResponse::default()
                .with_error_code(UNSUPPORTED_VERSION)
                .with_api_keys(vec![api(ApiKey::ApiVersions, 2)]);
            respond(&mut stream, &header, 0, &refusal).await;
            let (header, _) = read_request(&mut stream).await;
            assert_eq!(header.request_api_version, 2);
            let versions = ApiVersionsResponse::default()
                .with_api_keys(vec![api(ApiKey::ApiVersions, 2), api(ApiKey::Metadata, 9)]);
            respond(&mut stream, &header, 2, &versions).await;
            let (first, _) = read_request(&mut stream).await;
            let (second, _) = read_request(&mut stream).await;
            assert_eq!(
                first.request_api_version, 9,
                "the highest version both sides have"
            );
            for header in [&second, &first] {
                let response =
                    MetadataResponse::default().with_controller_id(BrokerId(header.correlation_id));
                respond(&mut stream, header, 9, &response).await;
            }
            let _ = read_request(&mut stream).await;
            // Hold the connection open so that the third request times out rather than sees EOF.
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let settings = ConnectionSettings {
            client_id: "test".to_string(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_millis(500),
        };
        let connection = Connection::connect(&addr, &settings)
            .await
            .expect("connect");
        assert_eq!(
            connection
                .version_for(ApiKey::Metadata, MetadataRequest::VERSIONS)
                .ok(),
            Some(9)
        );
        assert!(matches!(
            connection.version_for(ApiKey::CreateTopics, VersionRange { min: 0, max: 7 }),
            Err(ClientError::UnsupportedVersion { .. })
        ));
        let (a, b) = tokio::join!(
            connection.send(|_| MetadataRequest::default()),
            connection.send(|_| MetadataRequest::default())
        );
        let (a, b) = (a.expect("first"), b.expect("second"));
        assert_ne!(a.controller_id, b.controller_id);
        assert!(
            a.controller_id.0 < b.controller_id.0,
            "each caller got the response to its own request"
        );
        let timed_out = connection.send(|_| MetadataRequest::default()).await;
        assert!(
            matches!(
                timed_out,
                Err(ClientError::Timeout {
                    api: ApiKey::Metadata,
                    ..
                })
            ),
            "{timed_out:?}"
        );
        broker.abort();
    }
}
