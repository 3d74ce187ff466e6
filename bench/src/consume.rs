//! The consume phase: as kafka-consumer-perf-test, but with every partition assigned by hand
//! from its first offset, so it needs no consumer-group support from the broker.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::args::Options;
use crate::cluster::{self, ReportingContext};
use crate::report::{mib_per_s, per_s, Table};

/// Errors past this many are counted, not printed: a broken broker would flood the terminal.
const PRINTED_ERRORS: u64 = 10;

pub struct ConsumeReport {
    pub partitions: usize,
    pub records: u64,
    pub payload_bytes: u64,
    pub elapsed: Duration,
}

pub fn run(options: &Options) -> Result<ConsumeReport> {
    let mut config = cluster::base_config(options);
    config
        // librdkafka insists on a group id even for a consumer that only uses assign();
        // nothing is ever committed under it.
        .set("group.id", "ferrite-bench")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "4194304")
        .set("queued.max.messages.kbytes", "262144")
        // librdkafka pauses a partition's fetches for fetch.queue.backoff.ms (1 s) whenever more than
        // queued.min.messages (100000) wait locally; one 4 MiB fetch of 100-byte records is already
        // that many, so the defaults measure the back-off, not the broker.
        .set("queued.min.messages", "5000000")
        .set("fetch.queue.backoff.ms", "1");
    cluster::apply_overrides(&mut config, options);
    let consumer: BaseConsumer<ReportingContext> = config
        .create_with_context(ReportingContext)
        .context("invalid consumer configuration")?;

    let wait = Duration::from_millis(options.timeout_ms);
    let partitions = cluster::topic_partitions(consumer.client(), options, wait)?;
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        assignment
            .add_partition_offset(&options.topic, partition, Offset::Beginning)
            .with_context(|| format!("assigning partition {partition}"))?;
    }
    eprintln!(
        "consuming {} records from '{}' ({} partitions)",
        options.records,
        options.topic,
        partitions.len()
    );

    let start = Instant::now();
    consumer
        .assign(&assignment)
        .context("assigning the topic's partitions")?;
    let mut records = 0u64;
    let mut payload_bytes = 0u64;
    let mut errors = 0u64;
    let mut last_record = start;
    while records < options.records {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                records += 1;
                payload_bytes += message.payload_len() as u64;
                last_record = Instant::now();
            }
            Some(Err(error)) => {
                errors += 1;
                if errors <= PRINTED_ERRORS {
                    eprintln!("consume error: {error}");
                }
            }
            None => {}
        }
        if last_record.elapsed() >= wait {
            bail!(
                "consumed {records} of {} records; none arrived for {} ms (--timeout-ms){}",
                options.records,
                options.timeout_ms,
                if errors > 0 {
                    format!(", after {errors} consume errors")
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(ConsumeReport {
        partitions: partitions.len(),
        records,
        payload_bytes,
        elapsed: last_record - start,
    })
}

pub fn table(options: &Options, report: &ConsumeReport) -> Table {
    Table {
        headers: vec![
            "consume",
            "records",
            "partitions",
            "MiB",
            "elapsed s",
            "records/s",
            "MiB/s",
        ],
        row: vec![
            options.topic.clone(),
            report.records.to_string(),
            report.partitions.to_string(),
            format!("{:.2}", report.payload_bytes as f64 / crate::report::MIB),
            format!("{:.2}", report.elapsed.as_secs_f64()),
            format!("{:.0}", per_s(report.records, report.elapsed)),
            format!("{:.2}", mib_per_s(report.payload_bytes, report.elapsed)),
        ],
    }
}
