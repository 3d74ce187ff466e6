//! The produce phase: as kafka-producer-perf-test, records of a fixed size sent as fast as
//! the client accepts them (or at `--throughput`), each one's ack latency measured from the
//! moment `send` accepted it to its delivery report.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use crate::args::Options;
use crate::cluster::{self, report_client_error, report_client_log};
use crate::histogram::Histogram;
use crate::report::{mib_per_s, micros_as_ms, per_s, Table};

const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);
/// Payloads are windows at different offsets into one random buffer this much longer than a
/// record, so that records differ (compression sees realistic data) without a per-record copy.
const PAYLOAD_OFFSETS: usize = 4096;
/// Long enough for a topic that was just created to get its leaders elected.
const TOPIC_WAIT: Duration = Duration::from_secs(30);
/// How long one commit may take: it waits for every record of the transaction, then the markers.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

pub struct ProduceReport {
    pub partitions: usize,
    pub records: u64,
    pub payload_bytes: u64,
    pub elapsed: Duration,
    pub latency_us: Histogram,
}

#[derive(Default)]
struct Deliveries {
    acked: u64,
    failed: u64,
    first_error: Option<String>,
}

struct BenchContext {
    start: Instant,
    latency_us: Mutex<Histogram>,
    deliveries: Mutex<Deliveries>,
}

impl BenchContext {
    fn micros_since_start(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn deliveries(&self) -> MutexGuard<'_, Deliveries> {
        // Poisoning cannot leave counters half-updated; keep going rather than panic.
        self.deliveries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn latency_us(&self) -> MutexGuard<'_, Histogram> {
        self.latency_us.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ClientContext for BenchContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        report_client_log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        report_client_error(&error, reason);
    }
}

impl ProducerContext for BenchContext {
    /// The send time, in microseconds since `start`.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_us: usize) {
        let latency_us = self.micros_since_start().saturating_sub(sent_us as u64);
        match result {
            Ok(_) => {
                self.latency_us().record(latency_us);
                self.deliveries().acked += 1;
            }
            Err((error, _)) => {
                let mut deliveries = self.deliveries();
                deliveries.failed += 1;
                deliveries
                    .first_error
                    .get_or_insert_with(|| error.to_string());
            }
        }
    }
}

pub fn run(options: &Options) -> Result<ProduceReport> {
    if options.create {
        cluster::create_topic(options)?;
    }
    let mut config = cluster::base_config(options);
    config
        .set("acks", &options.acks)
        .set("compression.type", &options.compression)
        .set("linger.ms", options.linger_ms.to_string())
        .set("batch.size", options.batch_size.to_string())
        // Let batch.size, not the message count, bound a batch.
        .set("batch.num.messages", "1000000")
        // Deep enough that the client, not the queue, is what limits an unthrottled run.
        .set("queue.buffering.max.messages", "2000000")
        .set("queue.buffering.max.kbytes", "2097152");
    if options.transaction_records.is_some() {
        config.set(
            "transactional.id",
            format!("ferrite-bench-{}", std::process::id()),
        );
    }
    cluster::apply_overrides(&mut config, options);
    let context = BenchContext {
        start: Instant::now(),
        latency_us: Mutex::new(Histogram::new()),
        deliveries: Mutex::new(Deliveries::default()),
    };
    let producer: BaseProducer<BenchContext> = config
        .create_with_context(context)
        .context("invalid producer configuration")?;

    // Fail fast and clearly if the broker is unreachable or the topic is missing, rather than
    // queueing records until message.timeout.ms expires.
    let partitions = cluster::topic_partitions(producer.client(), options, TOPIC_WAIT)?;
    eprintln!(
        "producing {} records of {} bytes to '{}' ({} partitions, acks={}, compression={})",
        options.records,
        options.record_size,
        options.topic,
        partitions.len(),
        options.acks,
        options.compression
    );

    if options.transaction_records.is_some() {
        producer
            .init_transactions(TOPIC_WAIT)
            .context("init_transactions")?;
    }
    let payloads = random_letters(options.record_size + PAYLOAD_OFFSETS);
    let context = producer.context();
    let start = Instant::now();
    let mut progress = Progress::new(start);
    for index in 0..options.records {
        if let Some(rate) = options.throughput {
            pace(&producer, start, index, rate);
        }
        if let Some(per_transaction) = options.transaction_records {
            if index % per_transaction == 0 {
                if index > 0 {
                    finish_transaction(&producer)?;
                    producer
                        .commit_transaction(TRANSACTION_TIMEOUT)
                        .with_context(|| format!("committing before record {index}"))?;
                }
                producer.begin_transaction().context("begin_transaction")?;
            }
        }
        let offset = (index as usize).wrapping_mul(7919) % PAYLOAD_OFFSETS;
        let payload = &payloads[offset..offset + options.record_size];
        loop {
            let sent_us = context.micros_since_start() as usize;
            let record = BaseRecord::<[u8], [u8], usize>::with_opaque_to(&options.topic, sent_us)
                .payload(payload);
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // The queue drains as acks arrive: serve them, then retry with a fresh
                    // send time, since the record has not been accepted yet.
                    producer.poll(Duration::from_millis(1));
                }
                Err((error, _)) => {
                    return Err(error).with_context(|| format!("sending record {index}"))
                }
            }
        }
        // Serve delivery reports as they come, so latencies are not inflated by our polling.
        producer.poll(Duration::ZERO);
        if index % 1024 == 0 {
            progress.maybe_print(index + 1, context.deliveries().acked);
        }
    }
    if options.transaction_records.is_some() {
        finish_transaction(&producer)?;
        producer
            .commit_transaction(TRANSACTION_TIMEOUT)
            .context("committing the last transaction")?;
    }
    while producer.in_flight_count() > 0 {
        producer.poll(Duration::from_millis(50));
        progress.maybe_print(options.records, context.deliveries().acked);
    }
    let elapsed = start.elapsed();

    let deliveries = context.deliveries();
    if deliveries.failed > 0 {
        bail!(
            "{} of {} records failed delivery; the first error: {}",
            deliveries.failed,
            options.records,
            deliveries.first_error.as_deref().unwrap_or("unknown")
        );
    }
    let latency_us = std::mem::replace(&mut *context.latency_us(), Histogram::new());
    Ok(ProduceReport {
        partitions: partitions.len(),
        records: deliveries.acked,
        payload_bytes: deliveries.acked * options.record_size as u64,
        elapsed,
        latency_us,
    })
}

/// Holds the send loop to `rate` records/s, serving delivery reports while it waits.
fn pace(producer: &BaseProducer<BenchContext>, start: Instant, index: u64, rate: u64) {
    let due = start + Duration::from_secs_f64(index as f64 / rate as f64);
    loop {
        let now = Instant::now();
        if now >= due {
            return;
        }
        producer.poll(due - now);
    }
}

struct Progress {
    start: Instant,
    next: Instant,
    last_acked: u64,
    last_at: Instant,
}

impl Progress {
    fn new(start: Instant) -> Self {
        Progress {
            start,
            next: start + PROGRESS_INTERVAL,
            last_acked: 0,
            last_at: start,
        }
    }

    fn maybe_print(&mut self, sent: u64, acked: u64) {
        let now = Instant::now();
        if now < self.next {
            return;
        }
        let window = now - self.last_at;
        eprintln!(
            "{:>7.1}s  {sent} sent, {acked} acked, {:.0} acks/s over the last {:.1}s",
            (now - self.start).as_secs_f64(),
            per_s(acked - self.last_acked, window),
            window.as_secs_f64()
        );
        self.next = now + PROGRESS_INTERVAL;
        self.last_acked = acked;
        self.last_at = now;
    }
}

/// Uppercase letters from xorshift64, as kafka-producer-perf-test's random payloads are.
fn random_letters(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'A' + (state % 26) as u8
        })
        .collect()
}

/// Waits for every record sent to be acknowledged, serving delivery reports, before a commit. The rdkafka crate's
/// commit flushes too, but by polling in 100 ms steps, which would make that step, not the broker, the cost of
/// each transaction.
fn finish_transaction(producer: &BaseProducer<BenchContext>) -> Result<()> {
    let deadline = Instant::now() + TRANSACTION_TIMEOUT;
    while producer.in_flight_count() > 0 {
        if Instant::now() > deadline {
            bail!("the transaction's records were not acknowledged in time");
        }
        producer.poll(Duration::from_millis(1));
    }
    Ok(())
}

pub fn table(options: &Options, report: &ProduceReport) -> Table {
    let latency = &report.latency_us;
    Table {
        headers: vec![
            "produce",
            "records",
            "record B",
            "partitions",
            "acks",
            "compression",
            "linger ms",
            "elapsed s",
            "records/s",
            "MiB/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
        ],
        row: vec![
            options.topic.clone(),
            report.records.to_string(),
            options.record_size.to_string(),
            report.partitions.to_string(),
            options.acks.clone(),
            options.compression.clone(),
            options.linger_ms.to_string(),
            format!("{:.2}", report.elapsed.as_secs_f64()),
            format!("{:.0}", per_s(report.records, report.elapsed)),
            format!("{:.2}", mib_per_s(report.payload_bytes, report.elapsed)),
            micros_as_ms(latency.quantile(0.5)),
            micros_as_ms(latency.quantile(0.99)),
            micros_as_ms(latency.quantile(0.999)),
            micros_as_ms(latency.max()),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_letters_are_uppercase_and_varied() {
        let letters = random_letters(10_000);
        assert!(letters.iter().all(u8::is_ascii_uppercase));
        let distinct: std::collections::HashSet<_> = letters.iter().collect();
        assert_eq!(distinct.len(), 26);
    }
}
