//! Kafka's broker metrics, under the names operators already chart: the JMX MBeans as Prometheus's JMX exporter
//! names them with its usual Kafka rules (`kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=t`
//! becomes `kafka_server_brokertopicmetrics_messagesin_total{topic="t"}`). The README lists every name.
//!
//! Two kinds:
//! - Events, counted where they happen and kept here, process-wide as Kafka's Yammer registry is
//!   ([`broker_metrics`]): bytes and messages per topic, requests and errors per API, request latency, connections,
//!   log flushes, ISR changes, rebalances. Counting one is an atomic add; the per-topic handles are looked up by
//!   name under a read lock, without allocating.
//! - State, read when Prometheus scrapes ([`scrape`]): partition logs, under-replicated and offline partitions,
//!   the controller and the metadata quorum, groups and their consumer lag. Nothing on a request path pays for them.
//!
//! Rates (`...PerSec` in JMX) are counters here: Prometheus's `rate()` makes the rate. Kafka's timers (`TotalTimeMs`,
//! `LogFlushRateAndTimeMs`) are histograms in milliseconds, for `histogram_quantile()`.

pub mod errors;
pub mod scrape;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A metric's labels: Kafka's MBean tags (`topic`, `partition`, `request`, `error`, ...).
pub type Labels = Vec<(&'static str, String)>;

/// The counters of Kafka's `BrokerTopicMetrics`, each per topic and for all topics (no `topic` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicMeter {
    MessagesIn,
    BytesIn,
    BytesOut,
    TotalProduceRequests,
    TotalFetchRequests,
    FailedProduceRequests,
    FailedFetchRequests,
}

/// Name (without `_total`) and help of each [`TopicMeter`], in its order.
const TOPIC_METERS: [(&str, &str); 7] = [
    (
        "kafka_server_brokertopicmetrics_messagesin",
        "Records appended by clients (MessagesInPerSec)",
    ),
    (
        "kafka_server_brokertopicmetrics_bytesin",
        "Record batch bytes produced by clients (BytesInPerSec)",
    ),
    (
        "kafka_server_brokertopicmetrics_bytesout",
        "Record bytes fetched by consumers (BytesOutPerSec)",
    ),
    (
        "kafka_server_brokertopicmetrics_totalproducerequests",
        "Produce requests, per partition (TotalProduceRequestsPerSec)",
    ),
    (
        "kafka_server_brokertopicmetrics_totalfetchrequests",
        "Consumer fetches, per partition (TotalFetchRequestsPerSec)",
    ),
    (
        "kafka_server_brokertopicmetrics_failedproducerequests",
        "Produce requests that failed, per partition (FailedProduceRequestsPerSec)",
    ),
    (
        "kafka_server_brokertopicmetrics_failedfetchrequests",
        "Consumer fetches that failed, per partition (FailedFetchRequestsPerSec)",
    ),
];

/// Request latency buckets, in milliseconds: from a cached read to a long-polled fetch.
const LATENCY_BUCKETS_MS: [f64; 16] = [
    0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
    10000.0,
];

/// Everything counted as it happens; see the module documentation.
pub struct BrokerMetrics {
    registry: Registry,
    topic_families: [Family<Labels, Counter>; 7],
    all_topics: [Counter; 7],
    by_topic: RwLock<HashMap<String, Arc<[Counter; 7]>>>,
    requests: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    request_time_ms: Family<Labels, Histogram, fn() -> Histogram>,
    /// Per API key: requests by version, errors by code, and the latency histogram, once seen.
    by_request: RwLock<HashMap<(i16, i16), Counter>>,
    by_error: RwLock<HashMap<(i16, i16), Counter>>,
    time_by_request: RwLock<HashMap<i16, Histogram>>,
    connections: Gauge,
    connections_created: Counter,
    log_flush_ms: Histogram,
    isr_shrinks: Counter,
    isr_expands: Counter,
    rebalances: Counter,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_MS)
}

/// The process's event metrics.
pub fn broker_metrics() -> &'static BrokerMetrics {
    static METRICS: LazyLock<BrokerMetrics> = LazyLock::new(BrokerMetrics::new);
    &METRICS
}

impl BrokerMetrics {
    fn new() -> BrokerMetrics {
        let mut registry = Registry::default();
        let topic_families: [Family<Labels, Counter>; 7] = Default::default();
        for (family, (name, help)) in topic_families.iter().zip(TOPIC_METERS) {
            registry.register(name, help, family.clone());
        }
        // The all-topics MBean has no topic tag: the same family without the label.
        let all_topics = topic_families
            .each_ref()
            .map(|family| family.get_or_create(&Vec::new()).clone());
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "kafka_network_requestmetrics_requests",
            "Requests received, by API and version (RequestsPerSec)",
            requests.clone(),
        );
        let errors = Family::<Labels, Counter>::default();
        registry.register(
            "kafka_network_requestmetrics_errors",
            "Error codes in responses, by API and error (ErrorsPerSec)",
            errors.clone(),
        );
        let request_time_ms =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "kafka_network_requestmetrics_totaltimems",
            "Time from a request's last byte read to its response's last byte written, ms (TotalTimeMs)",
            request_time_ms.clone(),
        );
        let connection_family = Family::<Labels, Gauge>::default();
        let connections = connection_family
            .get_or_create(&vec![("listener", "PLAINTEXT".to_string())])
            .clone();
        registry.register(
            "kafka_server_socket_server_metrics_connection_count",
            "Open client connections (socket-server-metrics connection-count)",
            connection_family,
        );
        let connections_created = Counter::default();
        registry.register(
            "kafka_server_socket_server_metrics_connection_creation",
            "Client connections accepted (socket-server-metrics connection-creation-total)",
            connections_created.clone(),
        );
        let log_flush_ms = Histogram::new(LATENCY_BUCKETS_MS);
        registry.register(
            "kafka_log_logflushstats_logflushrateandtimems",
            "Log flushes (the group-commit fsync rounds) and their time, ms (LogFlushRateAndTimeMs)",
            log_flush_ms.clone(),
        );
        let isr_shrinks = Counter::default();
        registry.register(
            "kafka_server_replicamanager_isrshrinks",
            "ISR shrinks this broker made as leader (IsrShrinksPerSec)",
            isr_shrinks.clone(),
        );
        let isr_expands = Counter::default();
        registry.register(
            "kafka_server_replicamanager_isrexpands",
            "ISR expansions this broker made as leader (IsrExpandsPerSec)",
            isr_expands.clone(),
        );
        let rebalances = Counter::default();
        registry.register(
            "kafka_server_group_coordinator_metrics_classic_group_completed_rebalance",
            "Classic group rebalances completed (classic-group-completed-rebalance-count)",
            rebalances.clone(),
        );
        BrokerMetrics {
            registry,
            topic_families,
            all_topics,
            by_topic: RwLock::new(HashMap::new()),
            requests,
            errors,
            request_time_ms,
            by_request: RwLock::new(HashMap::new()),
            by_error: RwLock::new(HashMap::new()),
            time_by_request: RwLock::new(HashMap::new()),
            connections,
            connections_created,
            log_flush_ms,
            isr_shrinks,
            isr_expands,
            rebalances,
        }
    }

    /// Adds `amount` to `meter`, for `topic` and for all topics.
    pub fn record_topic(&self, topic: &str, meter: TopicMeter, amount: u64) {
        self.topic(topic).add(meter, amount);
    }

    /// `topic`'s counters, for a caller that counts several meters of one topic.
    pub fn topic<'a>(&'a self, topic: &str) -> TopicCounters<'a> {
        let known = self
            .by_topic
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .cloned();
        let counters = known.unwrap_or_else(|| {
            let labels = vec![("topic", topic.to_string())];
            let counters = Arc::new(
                self.topic_families
                    .each_ref()
                    .map(|family| family.get_or_create(&labels).clone()),
            );
            self.by_topic
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .entry(topic.to_string())
                .or_insert(counters)
                .clone()
        });
        TopicCounters {
            topic: counters,
            all_topics: &self.all_topics,
        }
    }

    /// One request of `api_key` v`version` received.
    pub fn record_request(&self, api_key: ApiKey, version: i16) {
        cached(&self.by_request, (api_key as i16, version), || {
            self.requests
                .get_or_create(&vec![
                    ("request", request_name(api_key)),
                    ("version", version.to_string()),
                ])
                .clone()
        })
        .inc();
    }

    /// One `code` in a response of `api_key` (Kafka counts NONE too).
    pub fn record_error(&self, api_key: ApiKey, code: i16) {
        cached(&self.by_error, (api_key as i16, code), || {
            self.errors
                .get_or_create(&vec![
                    ("request", request_name(api_key)),
                    ("error", errors::error_name(code)),
                ])
                .clone()
        })
        .inc();
    }

    /// A request of `api_key` answered `elapsed` after it was read.
    pub fn record_request_time(&self, api_key: ApiKey, elapsed: Duration) {
        cached(&self.time_by_request, api_key as i16, || {
            self.request_time_ms
                .get_or_create(&vec![("request", request_name(api_key))])
                .clone()
        })
        .observe(elapsed.as_secs_f64() * 1000.0);
    }

    pub fn connection_opened(&self) {
        self.connections.inc();
        self.connections_created.inc();
    }

    pub fn connection_closed(&self) {
        self.connections.dec();
    }

    /// One fsync round of a partition log, `elapsed` long.
    pub fn record_log_flush(&self, elapsed: Duration) {
        self.log_flush_ms.observe(elapsed.as_secs_f64() * 1000.0);
    }

    pub fn record_isr_shrink(&self) {
        self.isr_shrinks.inc();
    }

    pub fn record_isr_expand(&self) {
        self.isr_expands.inc();
    }

    pub fn record_rebalance(&self) {
        self.rebalances.inc();
    }

    /// The event metrics, in Prometheus's text format.
    pub fn encode(&self, out: &mut String) -> std::fmt::Result {
        prometheus_client::encoding::prometheus_text::encode(out, &self.registry)
    }
}

/// One topic's [`TopicMeter`]s, and the all-topics ones beside them.
pub struct TopicCounters<'a> {
    topic: Arc<[Counter; 7]>,
    all_topics: &'a [Counter; 7],
}

impl TopicCounters<'_> {
    pub fn add(&self, meter: TopicMeter, amount: u64) {
        self.topic[meter as usize].inc_by(amount);
        self.all_topics[meter as usize].inc_by(amount);
    }
}

/// Kafka's name of an API as its RequestMetrics tag shows it (`Produce`, `FindCoordinator`).
fn request_name(api_key: ApiKey) -> String {
    format!("{api_key:?}")
}

/// The metric under `key`, made by `create` the first time; later lookups take only the read lock.
fn cached<K: std::hash::Hash + Eq + Copy, M: Clone>(
    map: &RwLock<HashMap<K, M>>,
    key: K,
    create: impl FnOnce() -> M,
) -> M {
    if let Some(metric) = map.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return metric.clone();
    }
    map.write()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_insert_with(create)
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_meters_count_per_topic_and_for_all_topics() {
        let metrics = BrokerMetrics::new();
        metrics.record_topic("a", TopicMeter::MessagesIn, 3);
        metrics.record_topic("b", TopicMeter::MessagesIn, 2);
        metrics.record_topic("a", TopicMeter::MessagesIn, 1);
        let mut text = String::new();
        metrics.encode(&mut text).expect("encode");
        assert!(
            text.contains("kafka_server_brokertopicmetrics_messagesin_total{topic=\"a\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("kafka_server_brokertopicmetrics_messagesin_total{topic=\"b\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("kafka_server_brokertopicmetrics_messagesin_total 6\n"),
            "{text}"
        );
    }

    #[test]
    fn requests_errors_and_latency_are_labelled_with_kafkas_tags() {
        let metrics = BrokerMetrics::new();
        metrics.record_request(ApiKey::Produce, 9);
        metrics.record_error(ApiKey::Produce, 0);
        metrics.record_error(ApiKey::Produce, 6);
        metrics.record_request_time(ApiKey::Produce, Duration::from_micros(1500));
        let mut text = String::new();
        metrics.encode(&mut text).expect("encode");
        assert!(
            text.contains(
                "kafka_network_requestmetrics_requests_total{request=\"Produce\",version=\"9\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "kafka_network_requestmetrics_errors_total{request=\"Produce\",error=\"NONE\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("error=\"NOT_LEADER_OR_FOLLOWER\""), "{text}");
        assert!(
            text.contains("kafka_network_requestmetrics_totaltimems_count{request=\"Produce\"} 1"),
            "{text}"
        );
    }
}
