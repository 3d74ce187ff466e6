//! What can go wrong talking to a cluster: the client's errors, and Kafka's error codes as data.

use std::fmt;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad bootstrap server '{0}': expected host:port[,host:port...]")]
    BadBootstrap(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to {addr}: no answer within {timeout_ms} ms")]
    ConnectTimeout { addr: String, timeout_ms: u64 },
    #[error("connection to {addr} failed: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connection to {addr} closed before the {api:?} response arrived")]
    Disconnected { addr: String, api: ApiKey },
    #[error("{api:?} to {addr} got no response within {timeout_ms} ms")]
    Timeout {
        addr: String,
        api: ApiKey,
        timeout_ms: u64,
    },
    #[error("{addr} does not support {api:?} (this client speaks versions {client}, the broker {broker})")]
    UnsupportedVersion {
        addr: String,
        api: ApiKey,
        client: VersionRange,
        broker: String,
    },
    #[error("cannot encode {api:?} v{version}: {message}")]
    Encode {
        api: ApiKey,
        version: i16,
        message: String,
    },
    #[error("cannot decode the {api:?} v{version} response from {addr}: {message}")]
    Decode {
        addr: String,
        api: ApiKey,
        version: i16,
        message: String,
    },
    #[error("response frame of {size} bytes from {addr} is out of bounds")]
    BadFrame { addr: String, size: i32 },
    #[error("broker {0} is not in the cluster's metadata")]
    UnknownBroker(i32),
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

/// A Kafka error code a response carried, with the broker's message if it sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaError {
    pub error: ResponseError,
    pub message: Option<String>,
}

impl KafkaError {
    /// `None` for code 0.
    pub fn from_code(code: i16, message: Option<&str>) -> Option<KafkaError> {
        ResponseError::try_from_code(code).map(|error| KafkaError {
            error,
            message: message.filter(|m| !m.is_empty()).map(str::to_string),
        })
    }

    /// `Err` for a non-zero code.
    pub fn check(code: i16, message: Option<&str>) -> Result<(), KafkaError> {
        match KafkaError::from_code(code, message) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Kafka's name for the code, as its tools and documentation print it: `UNKNOWN_TOPIC_OR_PARTITION`.
    pub fn code_name(&self) -> String {
        code_name(self.error)
    }
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(message) => write!(f, "{} ({}): {message}", self.code_name(), self.error.code()),
            None => write!(f, "{} ({})", self.code_name(), self.error.code()),
        }
    }
}

impl std::error::Error for KafkaError {}

/// The crate names codes in CamelCase (`UnknownTopicOrPartition`); Kafka's protocol guide in upper snake case.
pub fn code_name(error: ResponseError) -> String {
    if let ResponseError::Unknown(code) = error {
        return format!("UNKNOWN_CODE_{code}");
    }
    let camel = error.to_string();
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_codes_as_kafka_does() {
        let e = KafkaError::from_code(3, Some("")).expect("an error");
        assert_eq!(e.code_name(), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(e.to_string(), "UNKNOWN_TOPIC_OR_PARTITION (3)");
        let e = KafkaError::from_code(36, Some("Topic 't' already exists.")).expect("an error");
        assert_eq!(
            e.to_string(),
            "TOPIC_ALREADY_EXISTS (36): Topic 't' already exists."
        );
        assert!(KafkaError::from_code(0, None).is_none());
        assert_eq!(code_name(ResponseError::Unknown(999)), "UNKNOWN_CODE_999");
    }
}
