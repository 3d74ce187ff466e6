//! What a nemesis run saw, and the checker that judges it, after Jepsen's analyses of Kafka: every client operation
//! and every fault is an event with the time it began; the checker reads the whole history afterwards and names the
//! anomalies it finds.
//!
//! Producers' sends are indefinite until acknowledged: a send the client gave up on may or may not be in the log,
//! so it may be read at most once but need not be. An acknowledged send must be read exactly once, at the offset it
//! was acknowledged at. The anomalies:
//!
//! - **lost**: acknowledged, not in the final read of the log.
//! - **duplicated**: one record read at two offsets.
//! - **moved**: acknowledged at one offset and read at another (Jepsen's inconsistent offsets).
//! - **divergent**: one offset read with two different records (a read of data that was later truncated, or two
//!   logs that disagree below their HighWatermark).
//! - **vanished**: read by a consumer during the run, absent from the final read.
//! - **reordered**: two records of one producer to one partition whose offsets disagree with their send order (an
//!   idempotent producer keeps its order across retries).
//! - **unexpected**: read, never sent.
//! - **gap**: an offset missing from the final read of a partition (no compaction, no transactions: offsets are dense).
//! - **commit went backwards**: the group's committed offset, read by a watcher, lower than an earlier reading or
//!   than a commit acknowledged before the reading began.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Which consumer read a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    /// The group member that consumes and commits during the run.
    Group,
    /// The read of every partition from its start after the faults are healed.
    Final,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A producer handed a record to its client; `producer` names the client instance (a new one after a fatal error).
    Send {
        producer: String,
        partition: i32,
        value: String,
    },
    /// The broker acknowledged the record at `offset`.
    Acked {
        value: String,
        partition: i32,
        offset: i64,
    },
    /// The client gave up on the record: it may or may not have been written.
    Failed { value: String, error: String },
    Read {
        reader: Reader,
        partition: i32,
        offset: i64,
        value: String,
    },
    /// The group member's commit of `offset` (the next one to read) was acknowledged.
    Committed { partition: i32, offset: i64 },
    /// A watcher's OffsetFetch, begun at the event's time, answered `offset`.
    CommitSeen { partition: i32, offset: i64 },
    /// A fault began or ended.
    Nemesis { what: String },
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub at_ms: u64,
    pub event: Event,
}

/// The events of one run, shared by every client thread and the nemesis.
#[derive(Clone)]
pub struct History {
    started: Instant,
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl History {
    pub fn new() -> History {
        History {
            started: Instant::now(),
            entries: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Milliseconds since the run began, to stamp an operation when it begins.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn record(&self, event: Event) {
        self.record_at(self.now_ms(), event);
    }

    /// Records an event stamped with the time its operation began.
    pub fn record_at(&self, at_ms: u64, event: Event) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.push(Entry { at_ms, event });
        }
    }

    /// Every entry, in time order (stable: events of one thread keep their order).
    pub fn entries(&self) -> Vec<Entry> {
        let mut entries = self.entries.lock().map(|e| e.clone()).unwrap_or_default();
        entries.sort_by_key(|e| e.at_ms);
        entries
    }
}

/// What the checker found. Each anomaly list holds one line per finding.
#[derive(Debug, Default)]
pub struct Report {
    pub sent: usize,
    pub acked: usize,
    pub failed: usize,
    /// Failed sends that are in the log all the same (allowed: the failure was indefinite).
    pub failed_but_written: usize,
    pub read_by_group: usize,
    pub read_final: usize,
    pub commits: usize,
    pub commit_readings: usize,
    pub faults: usize,
    pub lost: Vec<String>,
    pub duplicated: Vec<String>,
    pub moved: Vec<String>,
    pub divergent: Vec<String>,
    pub vanished: Vec<String>,
    pub reordered: Vec<String>,
    pub unexpected: Vec<String>,
    pub gaps: Vec<String>,
    pub commits_backwards: Vec<String>,
}

impl Report {
    fn anomalies(&self) -> [(&'static str, &Vec<String>); 9] {
        [
            ("lost", &self.lost),
            ("duplicated", &self.duplicated),
            ("moved", &self.moved),
            ("divergent", &self.divergent),
            ("vanished", &self.vanished),
            ("reordered", &self.reordered),
            ("unexpected", &self.unexpected),
            ("gap", &self.gaps),
            ("commit went backwards", &self.commits_backwards),
        ]
    }

    pub fn is_valid(&self) -> bool {
        self.anomalies().iter().all(|(_, found)| found.is_empty())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sent {}, acknowledged {}, failed {} ({} of them written all the same), faults {}",
            self.sent, self.acked, self.failed, self.failed_but_written, self.faults
        )?;
        writeln!(
            f,
            "read by the group {}, in the final read {}; commits {}, commit readings {}",
            self.read_by_group, self.read_final, self.commits, self.commit_readings
        )?;
        for (name, found) in self.anomalies() {
            writeln!(f, "{name}: {}", found.len())?;
            for line in found.iter().take(10) {
                writeln!(f, "    {line}")?;
            }
        }
        Ok(())
    }
}

/// A sent record: who sent it, where, and its place in that producer's sends to that partition.
struct Sent {
    producer: String,
    partition: i32,
    order: usize,
}

/// Judges a whole history.
pub fn check(entries: &[Entry]) -> Report {
    let mut report = Report::default();
    let mut sent: HashMap<&str, Sent> = HashMap::new();
    let mut sends_per_stream: HashMap<(&str, i32), usize> = HashMap::new();
    let mut acked: BTreeMap<&str, (i32, i64)> = BTreeMap::new();
    let mut failed: BTreeSet<&str> = BTreeSet::new();
    // Every place each record was read at, and every record each place was read with.
    let mut places_of: HashMap<&str, BTreeSet<(i32, i64)>> = HashMap::new();
    let mut values_at: BTreeMap<(i32, i64), BTreeSet<&str>> = BTreeMap::new();
    let mut group_reads: BTreeSet<&str> = BTreeSet::new();
    let mut final_log: BTreeMap<(i32, i64), &str> = BTreeMap::new();
    let mut final_values: BTreeSet<&str> = BTreeSet::new();
    // Per partition: the highest acknowledged commit and the last reading.
    let mut acked_commit: HashMap<i32, (i64, u64)> = HashMap::new();
    let mut last_reading: HashMap<i32, (i64, u64)> = HashMap::new();

    for entry in entries {
        match &entry.event {
            Event::Send {
                producer,
                partition,
                value,
            } => {
                report.sent += 1;
                let order = sends_per_stream
                    .entry((producer.as_str(), *partition))
                    .or_default();
                *order += 1;
                sent.insert(
                    value,
                    Sent {
                        producer: producer.clone(),
                        partition: *partition,
                        order: *order,
                    },
                );
            }
            Event::Acked {
                value,
                partition,
                offset,
            } => {
                report.acked += 1;
                acked.insert(value, (*partition, *offset));
            }
            Event::Failed { value, .. } => {
                report.failed += 1;
                failed.insert(value);
            }
            Event::Read {
                reader,
                partition,
                offset,
                value,
            } => {
                places_of
                    .entry(value)
                    .or_default()
                    .insert((*partition, *offset));
                values_at
                    .entry((*partition, *offset))
                    .or_default()
                    .insert(value);
                match reader {
                    Reader::Group => {
                        report.read_by_group += 1;
                        group_reads.insert(value);
                    }
                    Reader::Final => {
                        report.read_final += 1;
                        final_log.insert((*partition, *offset), value);
                        final_values.insert(value);
                    }
                }
            }
            Event::Committed { partition, offset } => {
                report.commits += 1;
                let best = acked_commit
                    .entry(*partition)
                    .or_insert((*offset, entry.at_ms));
                if *offset > best.0 {
                    *best = (*offset, entry.at_ms);
                }
            }
            Event::CommitSeen { partition, offset } => {
                report.commit_readings += 1;
                if let Some((earlier, at_ms)) = last_reading.get(partition) {
                    if offset < earlier {
                        report.commits_backwards.push(format!(
                            "partition {partition}: read {offset} at {} ms after {earlier} at {at_ms} ms",
                            entry.at_ms
                        ));
                    }
                }
                // A commit acknowledged before this reading began must be in it.
                if let Some((committed, at_ms)) = acked_commit.get(partition) {
                    if offset < committed && *at_ms < entry.at_ms {
                        report.commits_backwards.push(format!(
                            "partition {partition}: read {offset} at {} ms after a commit of {committed} was acknowledged at {at_ms} ms",
                            entry.at_ms
                        ));
                    }
                }
                last_reading.insert(*partition, (*offset, entry.at_ms));
            }
            Event::Nemesis { .. } => report.faults += 1,
        }
    }
    // A fault is recorded as it begins and as it ends.
    report.faults /= 2;

    for (value, (partition, offset)) in &acked {
        if !final_values.contains(value) {
            report
                .lost
                .push(format!("{value}, acknowledged at {partition}/{offset}"));
        }
        if let Some(places) = places_of.get(value) {
            for (p, o) in places {
                if (p, o) != (partition, offset) {
                    report.moved.push(format!(
                        "{value}: acknowledged at {partition}/{offset}, read at {p}/{o}"
                    ));
                }
            }
        }
    }
    report.failed_but_written = failed.iter().filter(|v| final_values.contains(*v)).count();
    for (value, places) in &places_of {
        if places.len() > 1 {
            report
                .duplicated
                .push(format!("{value} read at {places:?}"));
        }
        if !sent.contains_key(value) {
            report
                .unexpected
                .push(format!("{value} read at {places:?}"));
        }
    }
    for ((partition, offset), values) in &values_at {
        if values.len() > 1 {
            report
                .divergent
                .push(format!("{partition}/{offset} read as {values:?}"));
        }
    }
    for value in group_reads.difference(&final_values) {
        report.vanished.push(format!(
            "{value}, read by the group at {:?}",
            places_of.get(value)
        ));
    }
    report.gaps = gaps(&final_log);
    report.reordered = reorderings(&sent, &acked);
    report.duplicated.sort();
    report.unexpected.sort();
    report
}

/// Offsets missing between the first and last offset read of each partition, and before the first (the log starts
/// at 0: nothing is deleted during a run).
fn gaps(final_log: &BTreeMap<(i32, i64), &str>) -> Vec<String> {
    let mut found = Vec::new();
    let mut next: HashMap<i32, i64> = HashMap::new();
    for (partition, offset) in final_log.keys() {
        let expected = next.entry(*partition).or_insert(0);
        if *offset != *expected {
            found.push(format!(
                "partition {partition}: offsets {expected}..{offset} missing"
            ));
        }
        *expected = offset + 1;
    }
    found
}

/// One producer's acknowledged records to one partition: (send order, offset, value).
type Stream<'a> = Vec<(usize, i64, &'a str)>;

/// Acknowledged records of one producer and partition whose offsets do not rise with their send order.
fn reorderings(sent: &HashMap<&str, Sent>, acked: &BTreeMap<&str, (i32, i64)>) -> Vec<String> {
    let mut streams: BTreeMap<(&str, i32), Stream> = BTreeMap::new();
    for (value, (partition, offset)) in acked {
        if let Some(s) = sent.get(value) {
            if s.partition == *partition {
                streams
                    .entry((s.producer.as_str(), *partition))
                    .or_default()
                    .push((s.order, *offset, value));
            }
        }
    }
    let mut found = Vec::new();
    for ((producer, partition), mut records) in streams {
        records.sort_unstable();
        for pair in records.windows(2) {
            let ((_, first, a), (_, second, b)) = (pair[0], pair[1]);
            if second <= first {
                found.push(format!(
                    "{producer} to {partition}: {a} at {first}, sent before {b} at {second}"
                ));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(at_ms: u64, event: Event) -> Entry {
        Entry { at_ms, event }
    }

    fn send(value: &str, partition: i32) -> Event {
        Event::Send {
            producer: "p0".into(),
            partition,
            value: value.into(),
        }
    }

    fn acked(value: &str, partition: i32, offset: i64) -> Event {
        Event::Acked {
            value: value.into(),
            partition,
            offset,
        }
    }

    fn read(reader: Reader, value: &str, partition: i32, offset: i64) -> Event {
        Event::Read {
            reader,
            partition,
            offset,
            value: value.into(),
        }
    }

    #[test]
    fn a_clean_history_is_valid() {
        let history = [
            at(0, send("a", 0)),
            at(1, send("b", 0)),
            at(2, send("c", 0)),
            at(3, acked("a", 0, 0)),
            at(4, acked("b", 0, 1)),
            at(
                5,
                Event::Failed {
                    value: "c".into(),
                    error: "timed out".into(),
                },
            ),
            at(6, read(Reader::Group, "a", 0, 0)),
            at(
                7,
                Event::Committed {
                    partition: 0,
                    offset: 1,
                },
            ),
            at(
                8,
                Event::CommitSeen {
                    partition: 0,
                    offset: 1,
                },
            ),
            at(9, read(Reader::Final, "a", 0, 0)),
            at(9, read(Reader::Final, "b", 0, 1)),
            at(9, read(Reader::Final, "c", 0, 2)),
        ];
        let report = check(&history);
        assert!(report.is_valid(), "{report}");
        assert_eq!(
            (report.sent, report.acked, report.failed_but_written),
            (3, 2, 1)
        );
    }

    #[test]
    fn an_acknowledged_record_missing_from_the_final_read_is_lost() {
        let history = [
            at(0, send("a", 0)),
            at(1, acked("a", 0, 0)),
            at(2, send("b", 0)),
            at(3, acked("b", 0, 1)),
            at(4, read(Reader::Final, "a", 0, 0)),
        ];
        let report = check(&history);
        assert_eq!(report.lost, ["b, acknowledged at 0/1"]);
        assert!(report.gaps.is_empty());
    }

    #[test]
    fn a_record_at_two_offsets_is_duplicated_and_one_elsewhere_than_acknowledged_moved() {
        let history = [
            at(0, send("a", 0)),
            at(1, acked("a", 0, 1)),
            at(2, read(Reader::Final, "a", 0, 0)),
            at(2, read(Reader::Final, "a", 0, 1)),
        ];
        let report = check(&history);
        assert_eq!(report.duplicated.len(), 1);
        assert_eq!(report.moved, ["a: acknowledged at 0/1, read at 0/0"]);
    }

    #[test]
    fn a_read_later_truncated_is_divergent_and_vanished() {
        let history = [
            at(0, send("a", 0)),
            at(0, send("b", 0)),
            at(1, read(Reader::Group, "a", 0, 0)),
            at(2, acked("b", 0, 0)),
            at(3, read(Reader::Final, "b", 0, 0)),
        ];
        let report = check(&history);
        assert_eq!(report.divergent.len(), 1);
        assert_eq!(report.vanished.len(), 1);
        assert!(report.lost.is_empty());
    }

    #[test]
    fn offsets_against_send_order_are_reordered_and_holes_are_gaps() {
        let history = [
            at(0, send("a", 0)),
            at(0, send("b", 0)),
            at(1, acked("a", 0, 2)),
            at(1, acked("b", 0, 1)),
            at(2, read(Reader::Final, "b", 0, 1)),
            at(2, read(Reader::Final, "a", 0, 2)),
            at(2, read(Reader::Final, "x", 0, 4)),
        ];
        let report = check(&history);
        assert_eq!(report.reordered.len(), 1);
        assert_eq!(report.unexpected.len(), 1);
        assert_eq!(
            report.gaps,
            [
                "partition 0: offsets 0..1 missing",
                "partition 0: offsets 3..4 missing"
            ]
        );
    }

    #[test]
    fn a_committed_offset_read_lower_than_an_acknowledged_commit_went_backwards() {
        let history = [
            at(
                1,
                Event::Committed {
                    partition: 0,
                    offset: 10,
                },
            ),
            // Begun before the commit was acknowledged: may not see it.
            at(
                0,
                Event::CommitSeen {
                    partition: 0,
                    offset: 5,
                },
            ),
            at(
                2,
                Event::CommitSeen {
                    partition: 0,
                    offset: 10,
                },
            ),
            at(
                3,
                Event::CommitSeen {
                    partition: 0,
                    offset: 7,
                },
            ),
        ];
        let mut entries = history.to_vec();
        entries.sort_by_key(|e| e.at_ms);
        let report = check(&entries);
        assert_eq!(report.commits_backwards.len(), 2, "{report}");
    }
}
