//! The clients of a nemesis run, each recording what it does in the [`History`]: idempotent acks=all producers
//! sending unique values to chosen partitions, a group member that consumes and commits, a watcher that reads the
//! group's committed offsets, and the final read of every partition once the faults are healed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio::task::JoinSet;

use super::history::{Event, History, Reader};

pub const GROUP: &str = "nemesis-group";

/// Records a producer may have in its client at once: a bound, so that a long fault does not pile up sends.
const MAX_IN_FLIGHT: usize = 500;

/// What every client of the run shares.
#[derive(Clone)]
pub struct Workload {
    pub bootstrap: String,
    pub topic: String,
    pub partitions: i32,
    pub history: History,
    /// Set when the faults are over: producers stop sending, the group member stops consuming.
    pub stop: Arc<AtomicBool>,
}

impl Workload {
    fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("broker.address.family", "v4")
            .set("socket.timeout.ms", "10000");
        config
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// One producer, sending `rate` records a second round-robin over the partitions until stopped, then waiting
    /// for every outstanding delivery. A client that hits a fatal error is replaced by a new one (a new producer id:
    /// a new name in the history, since ordering holds per client).
    pub async fn produce(self, id: u32, rate: u32) -> Result<(), KafkaError> {
        let mut generation = 0;
        let mut producer = self.producer()?;
        let mut deliveries = JoinSet::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
        let mut seq: u64 = 0;
        while !self.stopped() {
            tick.tick().await;
            if producer.client().fatal_error().is_some() {
                generation += 1;
                producer = self.producer()?;
            }
            while deliveries.len() >= MAX_IN_FLIGHT {
                deliveries.join_next().await;
            }
            let name = format!("p{id}.{generation}");
            let value = format!("{name}-{seq}");
            let partition = i32::try_from(seq % self.partitions as u64).unwrap_or(0);
            seq += 1;
            self.history.record(Event::Send {
                producer: name,
                partition,
                value: value.clone(),
            });
            // Enqueued here, in send order; only the wait for the acknowledgement runs apart.
            let record = FutureRecord::<(), _>::to(&self.topic)
                .partition(partition)
                .payload(&value);
            match producer.send_result(record) {
                Ok(delivery) => {
                    let history = self.history.clone();
                    deliveries.spawn(async move {
                        let event = match delivery.await {
                            Ok(Ok(d)) => Event::Acked {
                                value,
                                partition: d.partition,
                                offset: d.offset,
                            },
                            Ok(Err((error, _))) => Event::Failed {
                                value,
                                error: error.to_string(),
                            },
                            Err(_) => Event::Failed {
                                value,
                                error: "producer dropped".into(),
                            },
                        };
                        history.record(event);
                    });
                }
                Err((error, _)) => self.history.record(Event::Failed {
                    value,
                    error: error.to_string(),
                }),
            }
        }
        while deliveries.join_next().await.is_some() {}
        Ok(())
    }

    fn producer(&self) -> Result<FutureProducer, KafkaError> {
        self.config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("request.timeout.ms", "10000")
            .set("message.timeout.ms", "60000")
            .create()
    }

    /// The group member: consumes every partition and commits its position each second, until stopped and then
    /// until it has read up to `drain_to` (the log end offsets after the faults), or a minute has passed.
    pub fn consume(
        self,
        drain_to: Arc<std::sync::Mutex<Option<BTreeMap<i32, i64>>>>,
    ) -> Result<(), KafkaError> {
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", GROUP)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            .create()?;
        consumer.subscribe(&[&self.topic])?;
        let mut last_commit = Instant::now();
        let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
        let mut drain_deadline = None;
        loop {
            if self.stopped() {
                let deadline =
                    *drain_deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(60));
                let caught_up = drain_to
                    .lock()
                    .ok()
                    .and_then(|d| d.clone())
                    .is_some_and(|ends| {
                        ends.iter()
                            .all(|(p, end)| positions.get(p).copied().unwrap_or(0) >= *end)
                    });
                if caught_up || Instant::now() > deadline {
                    self.commit(&consumer);
                    return Ok(());
                }
            }
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
                positions.insert(message.partition(), message.offset() + 1);
                self.record_read(Reader::Group, &message);
            }
            if last_commit.elapsed() > Duration::from_secs(1) {
                self.commit(&consumer);
                last_commit = Instant::now();
            }
        }
    }

    fn record_read(&self, reader: Reader, message: &rdkafka::message::BorrowedMessage<'_>) {
        let value = message
            .payload()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        self.history.record(Event::Read {
            reader,
            partition: message.partition(),
            offset: message.offset(),
            value,
        });
    }

    /// Commits the member's position in every assigned partition; records the commit once acknowledged.
    fn commit(&self, consumer: &BaseConsumer) {
        let Ok(positions) = consumer.position() else {
            return;
        };
        let mut commit = TopicPartitionList::new();
        for element in positions.elements() {
            if let Offset::Offset(offset) = element.offset() {
                let _ = commit.add_partition_offset(
                    element.topic(),
                    element.partition(),
                    Offset::Offset(offset),
                );
            }
        }
        if commit.count() == 0 {
            return;
        }
        if consumer.commit(&commit, CommitMode::Sync).is_ok() {
            for element in commit.elements() {
                if let Offset::Offset(offset) = element.offset() {
                    self.history.record(Event::Committed {
                        partition: element.partition(),
                        offset,
                    });
                }
            }
        }
    }

    /// Reads the group's committed offsets twice a second until stopped (and once more after), as an operator's
    /// lag monitor does, without joining the group.
    pub fn watch_commits(self, done: Arc<AtomicBool>) -> Result<(), KafkaError> {
        let watcher: BaseConsumer = self.config().set("group.id", GROUP).create()?;
        let mut partitions = TopicPartitionList::new();
        for partition in 0..self.partitions {
            partitions.add_partition(&self.topic, partition);
        }
        loop {
            let last = done.load(Ordering::Relaxed);
            let began = self.history.now_ms();
            if let Ok(committed) =
                watcher.committed_offsets(partitions.clone(), Duration::from_secs(10))
            {
                for element in committed.elements() {
                    if let Offset::Offset(offset) = element.offset() {
                        self.history.record_at(
                            began,
                            Event::CommitSeen {
                                partition: element.partition(),
                                offset,
                            },
                        );
                    }
                }
            }
            if last {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Each partition's log end offset (its HighWatermark), asked until every partition answers.
    pub fn log_ends(&self, timeout: Duration) -> Result<BTreeMap<i32, i64>, String> {
        let consumer: BaseConsumer = self.config().create().map_err(|e| e.to_string())?;
        let started = Instant::now();
        let mut ends = BTreeMap::new();
        for partition in 0..self.partitions {
            loop {
                match consumer.fetch_watermarks(&self.topic, partition, Duration::from_secs(5)) {
                    Ok((_, high)) => {
                        ends.insert(partition, high);
                        break;
                    }
                    Err(error) if started.elapsed() > timeout => {
                        return Err(format!("watermarks of partition {partition}: {error}"))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(500)),
                }
            }
        }
        Ok(ends)
    }

    /// Reads every partition from its start up to `ends`, recording each record as the final read.
    pub fn read_final(&self, ends: &BTreeMap<i32, i64>) -> Result<(), String> {
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", "nemesis-final-reader")
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| e.to_string())?;
        let mut assignment = TopicPartitionList::new();
        for partition in ends.keys() {
            assignment
                .add_partition_offset(&self.topic, *partition, Offset::Beginning)
                .map_err(|e| e.to_string())?;
        }
        consumer.assign(&assignment).map_err(|e| e.to_string())?;
        let mut next: BTreeMap<i32, i64> = ends.keys().map(|p| (*p, 0)).collect();
        let deadline = Instant::now() + Duration::from_secs(120);
        while ends.iter().any(|(p, end)| next[p] < *end) {
            if Instant::now() > deadline {
                return Err(format!("the final read stopped at {next:?} of {ends:?}"));
            }
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(message)) => {
                    next.insert(message.partition(), message.offset() + 1);
                    self.record_read(Reader::Final, &message);
                }
                Some(Err(error)) => eprintln!("final read: {error}"),
                None => {}
            }
        }
        Ok(())
    }
}
