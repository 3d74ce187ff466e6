//! Request dispatch: header parsing, version checks, decoding, and routing to the handler of each API; encoding the
//! response.
//!
//! A malformed frame, an unknown API key, a version we do not implement (for any API but ApiVersions, which answers
//! UNSUPPORTED_VERSION per KIP-511) or a body that does not decode closes the connection, as Kafka does: guessing at
//! what a client meant would be worse.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::KafkaApis;
use crate::api;

/// What the connection writes back for one request.
#[derive(Debug)]
pub enum Reply {
    /// A response frame, without its size prefix.
    Frame(Bytes),
    /// Nothing at all (Produce with acks=0).
    None,
    /// Close the connection after the responses before this one.
    Close(String),
}

pub type ReplyFuture = Pin<Box<dyn Future<Output = Reply> + Send + 'static>>;

/// A handler's result: the response, or nothing for a request Kafka does not answer.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Option<ResponseKind>> + Send + 'static>>;

/// Whether a request may run alongside the requests before and after it on its connection.
///
/// Kafka handles a connection's requests one at a time. Ferrite overlaps the ones whose order cannot be observed,
/// or is kept by other means: Produce appends in arrival order before it waits for durability, and reads and
/// ApiVersions change nothing. Every other request (commits, group membership, topic administration) runs alone,
/// after the ones before it have finished, so a client that pipelines them sees Kafka's order.
pub fn may_overlap(frame: &[u8]) -> bool {
    let Some(key) = frame.get(..2).map(|k| i16::from_be_bytes([k[0], k[1]])) else {
        return true;
    };
    matches!(
        ApiKey::try_from(key),
        Ok(ApiKey::Produce
            | ApiKey::Fetch
            | ApiKey::ListOffsets
            | ApiKey::OffsetForLeaderEpoch
            | ApiKey::Metadata
            | ApiKey::ApiVersions)
            | Err(_)
    )
}

/// Parses a request frame and starts its handler. The handler's synchronous part (for Produce: the appends) runs
/// now, in arrival order; the returned future finishes it.
pub(super) fn start(
    apis: &Arc<KafkaApis>,
    client_host: &Arc<str>,
    mut frame: Bytes,
) -> ReplyFuture {
    if frame.len() < 8 {
        return closed("request shorter than a header");
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Ok(api_key) = ApiKey::try_from(raw_key) else {
        return closed(&format!("unknown api key {raw_key}"));
    };
    let Some(supported) = api::supported_versions(api_key) else {
        return closed(&format!("{api_key:?} is not implemented"));
    };
    if version < supported.min || version > supported.max {
        if api_key == ApiKey::ApiVersions {
            return ready(encode(
                api_key,
                0,
                correlation_id,
                &api::api_versions::unsupported_version(),
            ));
        }
        return closed(&format!("{api_key:?} v{version} is not supported"));
    }
    let header = match RequestHeader::decode(&mut frame, api_key.request_header_version(version)) {
        Ok(header) => header,
        Err(e) => return closed(&format!("bad request header: {e}")),
    };
    let request = match RequestKind::decode(api_key, &mut frame, version) {
        Ok(request) => request,
        Err(e) => return closed(&format!("cannot decode {api_key:?} v{version}: {e}")),
    };
    if frame.has_remaining() {
        tracing::debug!(
            ?api_key,
            version,
            extra = frame.remaining(),
            "ignoring bytes after the request body"
        );
    }
    let metrics = crate::metrics::broker_metrics();
    metrics.record_request(api_key, version);
    let handler = api::handle(apis, &header, client_host, request);
    Box::pin(async move {
        match handler.await {
            Some(response) => {
                crate::metrics::errors::error_codes(&response, |code| {
                    metrics.record_error(api_key, code)
                });
                encode(api_key, version, correlation_id, &response)
            }
            None => Reply::None,
        }
    })
}

fn encode(api_key: ApiKey, version: i16, correlation_id: i32, response: &ResponseKind) -> Reply {
    let mut buf = BytesMut::with_capacity(64);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    if let Err(e) = header.encode(&mut buf, api_key.response_header_version(version)) {
        return Reply::Close(format!("cannot encode response header: {e}"));
    }
    match response.encode(&mut buf, version) {
        Ok(()) => Reply::Frame(buf.freeze()),
        Err(e) => {
            tracing::error!(?api_key, version, error = %e, "cannot encode response");
            Reply::Close(format!("cannot encode {api_key:?} response: {e}"))
        }
    }
}

fn ready(reply: Reply) -> ReplyFuture {
    Box::pin(std::future::ready(reply))
}

fn closed(reason: &str) -> ReplyFuture {
    tracing::debug!(reason, "closing connection");
    ready(Reply::Close(reason.to_string()))
}
