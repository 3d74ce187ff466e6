use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::records::{Compression as Codec, RecordBatchDecoder};

use super::*;
use crate::ids::LeaderEpoch;
use crate::storage::test_batches::keyed_batch;
use crate::storage::AppendOrigin;

const NOW: i64 = 50_000_000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 400,
        cleanup_delete: false,
        cleanup_compact: true,
        min_cleanable_dirty_ratio: 0.01,
        delete_retention_ms: 1_000,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    }
}

/// Every record of the log as (offset, key, value).
fn contents(log: &Log) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut at = log.log_start_offset();
    let end = log.log_end_offset();
    while at < end {
        let bytes = log.read(at, 1 << 20, end, true).expect("read");
        if bytes.is_empty() {
            break;
        }
        let mut buf = bytes.clone();
        for set in RecordBatchDecoder::decode_all(&mut buf).expect("decode") {
            for r in set.records {
                if r.offset >= at.0 {
                    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
                    out.push((
                        r.offset,
                        r.key.as_ref().map(text).unwrap_or_default(),
                        r.value.as_ref().map(text),
                    ));
                    at = Offset(r.offset + 1);
                }
            }
        }
        let mut rest = bytes;
        while let Some(h) = BatchHeader::parse(&rest) {
            at = at.max(Offset(h.next_offset()));
            let size = h.size_in_bytes().unwrap_or(rest.len()).min(rest.len());
            let _ = rest.split_to(size);
        }
    }
    out
}

/// Writes `rounds` versions of keys k0..k{keys}, deletes k0 with a tombstone, and rolls so all but the last
/// record sit in inactive segments. Returns the latest value per key.
fn fill(
    log: &mut Log,
    keys: usize,
    rounds: usize,
    ts: i64,
    codec: Codec,
) -> BTreeMap<String, Option<String>> {
    let mut latest = BTreeMap::new();
    for round in 0..rounds {
        let records: Vec<(String, String)> = (0..keys)
            .map(|k| (format!("k{k}"), format!("v{round}-{k}")))
            .collect();
        let refs: Vec<(Option<&str>, Option<&str>)> = records
            .iter()
            .map(|(k, v)| (Some(k.as_str()), Some(v.as_str())))
            .collect();
        log.append(
            keyed_batch(&refs, ts, codec),
            LeaderEpoch(0),
            AppendOrigin::Client,
            NOW,
        )
        .expect("append");
        for (k, v) in records {
            latest.insert(k, Some(v));
        }
    }
    log.append(
        keyed_batch(&[(Some("k0"), None)], ts, codec),
        LeaderEpoch(0),
        AppendOrigin::Client,
        NOW,
    )
    .expect("tombstone");
    latest.insert("k0".into(), None);
    log.roll(NOW).expect("roll");
    log.append(
        keyed_batch(&[(Some("tail"), Some("t"))], ts, codec),
        LeaderEpoch(0),
        AppendOrigin::Client,
        NOW,
    )
    .expect("tail");
    latest
}

fn assert_compacted(log: &Log, latest: &BTreeMap<String, Option<String>>, tombstones: bool) {
    let records = contents(log);
    let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "offsets ascend: {offsets:?}"
    );
    let mut seen = BTreeMap::new();
    for (_, key, value) in &records {
        assert!(
            seen.insert(key.clone(), value.clone()).is_none(),
            "{key} appears once: {records:?}"
        );
    }
    for (key, value) in latest {
        match value {
            None if !tombstones => assert!(!seen.contains_key(key), "tombstone for {key} removed"),
            _ => assert_eq!(seen.get(key), Some(value), "{key}"),
        }
    }
    assert_eq!(
        seen.get("tail"),
        Some(&Some("t".to_string())),
        "active segment untouched"
    );
}

/// The log read as a table (last value per key wins; a tombstone or no record both mean absent).
fn assert_same_view(log: &Log, latest: &BTreeMap<String, Option<String>>) {
    let records = contents(log);
    let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "offsets ascend: {offsets:?}"
    );
    let mut table = BTreeMap::new();
    for (_, key, value) in records {
        table.insert(key, value);
    }
    for (key, value) in latest {
        assert_eq!(table.get(key).cloned().flatten(), value.clone(), "{key}");
    }
}

#[test]
fn keeps_latest_per_key_and_drops_old_tombstones() {
    for codec in [Codec::None, Codec::Lz4, Codec::Zstd] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::open(dir.path().to_path_buf(), config(), NOW).expect("open");
        // Record time long before NOW - delete.retention.ms: tombstones may go in this pass.
        let latest = fill(&mut log, 5, 12, NOW - 10_000, codec);
        let end = log.log_end_offset();
        let before = log.segment_count();
        let stats = log.clean(1 << 16, NOW).expect("clean").expect("a pass ran");
        assert!(stats.records_kept < stats.records_read, "{stats:?}");
        assert!(log.segment_count() < before, "segments were merged");
        assert_eq!(log.log_end_offset(), end);
        assert_compacted(&log, &latest, false);
        // Nothing dirty is left, so no pass is due; the result survives a reopen.
        assert!(log.clean(1 << 16, NOW).expect("clean").is_none());
        log.close().expect("close");
        let log = Log::open(dir.path().to_path_buf(), config(), NOW).expect("reopen");
        assert_compacted(&log, &latest, false);
    }
}

#[test]
fn young_tombstones_stay_until_delete_retention_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::open(dir.path().to_path_buf(), config(), NOW).expect("open");
    let latest = fill(&mut log, 4, 6, NOW - 100, Codec::None);
    log.clean(1 << 16, NOW).expect("clean").expect("a pass ran");
    assert_compacted(&log, &latest, true);
    assert!(contents(&log).iter().any(|r| r.1 == "k0" && r.2.is_none()));
    // Once delete.retention.ms has passed, a pass is due even with nothing new to clean.
    log.clean(1 << 16, NOW + 5_000)
        .expect("clean")
        .expect("due for tombstones");
    assert_compacted(&log, &latest, false);
}

#[test]
fn a_full_map_cleans_part_and_the_next_pass_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::open(dir.path().to_path_buf(), config(), NOW).expect("open");
    let latest = fill(&mut log, 20, 5, NOW - 10_000, Codec::None);
    // Room for 9 keys: the first pass maps only part of the dirty range.
    let first = log.clean(24 * 10, NOW).expect("clean").expect("pass");
    assert!(first.end < log.log_end_offset(), "{first:?}");
    let mut passes = 1;
    while log.clean(24 * 10, NOW).expect("clean").is_some() {
        passes += 1;
        assert!(passes < 50);
    }
    let mut last = log.clean(1 << 16, NOW).expect("clean");
    while last.is_some() {
        last = log.clean(1 << 16, NOW).expect("clean");
    }
    assert_compacted(&log, &latest, false);
}

#[test]
fn keyless_records_are_refused_on_a_compacted_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::open(dir.path().to_path_buf(), config(), NOW).expect("open");
    for codec in [Codec::None, Codec::Gzip] {
        let result = log.append(
            keyed_batch(&[(Some("a"), Some("1")), (None, Some("x"))], NOW, codec),
            LeaderEpoch(0),
            AppendOrigin::Client,
            NOW,
        );
        assert!(
            matches!(&result, Err(LogError::InvalidRecords(errors)) if errors.len() == 1 && errors[0].batch_index == 1),
            "{codec:?}: {result:?}"
        );
    }
    assert_eq!(log.log_end_offset(), Offset(0));
}

/// A crash at each step of the swap leaves either the old segments or the cleaned ones, and the log opens valid.
#[test]
fn a_crash_mid_swap_recovers_to_old_or_new_segments() {
    for stop in [InstallStop::AfterSwapWritten, InstallStop::AfterOldDeleted] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::open(dir.path().to_path_buf(), config(), NOW).expect("open");
        let latest = fill(&mut log, 5, 12, NOW - 10_000, Codec::None);
        log.flush().expect("flush");
        let plan = log.clean_plan(NOW).expect("due");
        let mut map = OffsetMap::with_memory(1 << 16);
        let cleaned = build(&plan, &mut map, NOW).expect("build").expect("work");
        log.install_until(cleaned, NOW, stop).expect("install");
        // Simulated kill -9: the Log is dropped without closing.
        drop(log);
        let mut log = Log::open(dir.path().to_path_buf(), config(), NOW).expect("reopen");
        // Each group holds its old segments or its cleaned one: the log reads the same, offsets ascending.
        assert_same_view(&log, &latest);
        // And the next pass finishes the job.
        while log.clean(1 << 16, NOW).expect("clean").is_some() {}
        assert_compacted(&log, &latest, false);
        let leftovers: Vec<String> = fs::read_dir(dir.path())
            .expect("read_dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(SWAP_SUFFIX) || n.ends_with(CLEANED_SUFFIX))
            .collect();
        assert!(leftovers.is_empty(), "{stop:?}: {leftovers:?}");
    }
}

#[test]
fn a_crash_before_the_swap_keeps_the_old_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::open(dir.path().to_path_buf(), config(), NOW).expect("open");
    let _ = fill(&mut log, 5, 12, NOW - 10_000, Codec::None);
    log.flush().expect("flush");
    let before = contents(&log);
    let plan = log.clean_plan(NOW).expect("due");
    let mut map = OffsetMap::with_memory(1 << 16);
    let cleaned = build(&plan, &mut map, NOW).expect("build").expect("work");
    assert!(cleaned.groups.iter().any(|g| g.cleaned.is_some()));
    drop(log);
    let log = Log::open(dir.path().to_path_buf(), config(), NOW).expect("reopen");
    assert_eq!(contents(&log), before);
}

#[test]
fn swap_names_round_trip() {
    let name = swap_name(Offset(5), Offset(123));
    assert_eq!(parse_swap_name(&name), Some((Offset(5), Offset(123))));
    assert_eq!(parse_swap_name("00000000000000000005.log"), None);
}

/// How many control batches (transaction markers) the log holds.
fn markers(log: &Log) -> usize {
    let mut count = 0;
    let mut at = log.log_start_offset();
    let end = log.log_end_offset();
    while at < end {
        let mut rest = log.read(at, 1 << 20, end, true).expect("read");
        if rest.is_empty() {
            break;
        }
        while let Some(h) = BatchHeader::parse(&rest) {
            if h.next_offset() > at.0 {
                count += usize::from(h.is_control());
                at = Offset(h.next_offset());
            }
            let size = h.size_in_bytes().unwrap_or(rest.len()).min(rest.len());
            let _ = rest.split_to(size);
        }
    }
    count
}

/// The data records of the log (no markers), as (offset, key, value).
fn data_records(log: &Log) -> Vec<(i64, String, Option<String>)> {
    contents(log)
        .into_iter()
        .filter(|(_, key, _)| key.starts_with('k'))
        .collect()
}

/// Committed and aborted transactions below an open one, plain records around them: the cleaner compacts below
/// the open transaction only, drops the aborted records (which hide nothing), keeps the young markers, and the
/// transaction index survives it, also a crash in the middle of its swap.
#[test]
fn transactions_are_cleaned_around_and_never_past_the_first_unstable_offset() {
    use crate::ids::{ProducerEpoch, ProducerId};
    use crate::storage::test_batches::{producer_batch, TestProducer};
    use crate::storage::ControlRecordType;
    let ts = NOW - 10_000;
    for stop in [
        InstallStop::Never,
        InstallStop::AfterSwapWritten,
        InstallStop::AfterOldDeleted,
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::open(dir.path().to_path_buf(), config(), NOW).expect("open");
        let append = |log: &mut Log, producer: Option<TestProducer>, k: &str, v: &str| {
            let records = [(Some(k), Some(v))];
            let batch = match producer {
                Some(p) => producer_batch(p, &records, ts),
                None => keyed_batch(&records, ts, Codec::None),
            };
            log.append(batch, LeaderEpoch(0), AppendOrigin::Client, NOW)
                .expect("append");
        };
        let end = |log: &mut Log, producer: i64, kind: ControlRecordType| {
            log.append_marker(
                ProducerId(producer),
                ProducerEpoch(0),
                kind,
                0,
                LeaderEpoch(0),
                NOW,
            )
            .expect("marker");
        };
        for round in 0..3 {
            append(&mut log, None, "k0", &format!("plain{round}"));
            append(&mut log, None, "k1", &format!("plain{round}"));
        }
        append(
            &mut log,
            Some(TestProducer::txn(1, 0, 0)),
            "k0",
            "committed",
        );
        append(
            &mut log,
            Some(TestProducer::txn(1, 0, 1)),
            "k1",
            "committed",
        );
        end(&mut log, 1, ControlRecordType::Commit);
        append(&mut log, Some(TestProducer::txn(2, 0, 0)), "k0", "aborted");
        append(&mut log, Some(TestProducer::txn(2, 0, 1)), "k1", "aborted");
        end(&mut log, 2, ControlRecordType::Abort);
        for round in 0..3 {
            append(&mut log, None, "k2", &format!("plain{round}"));
        }
        log.roll(NOW).expect("roll");
        let open_at = log.log_end_offset();
        append(&mut log, Some(TestProducer::txn(3, 0, 0)), "k2", "open");
        for round in 3..6 {
            append(&mut log, None, "k2", &format!("plain{round}"));
        }
        log.roll(NOW).expect("roll");
        append(&mut log, None, "k9", "tail");
        log.update_high_watermark(log.log_end_offset());
        assert_eq!(log.first_unstable_offset(), Some(open_at));
        let before = data_records(&log);
        let aborted = log
            .collect_aborted_transactions(Offset(0), Offset(i64::MAX))
            .expect("collect");
        assert_eq!(aborted.len(), 1);

        let plan = log.clean_plan(NOW).expect("due");
        let mut map = OffsetMap::with_memory(1 << 16);
        let cleaned = build(&plan, &mut map, NOW).expect("build").expect("work");
        log.install_until(cleaned, NOW, stop).expect("install");
        if stop != InstallStop::Never {
            drop(log);
            log = Log::open(dir.path().to_path_buf(), config(), NOW).expect("reopen");
            log.update_high_watermark(log.log_end_offset());
            while log.clean(1 << 16, NOW).expect("clean").is_some() {}
        }
        let after = data_records(&log);
        let values = |key: &str| -> Vec<String> {
            after
                .iter()
                .filter(|(_, k, _)| k == key)
                .filter_map(|(_, _, v)| v.clone())
                .collect()
        };
        // The committed values survive the later aborted writes of their keys, which are gone, as are the plain
        // ones before.
        assert_eq!(values("k0"), vec!["committed"], "{stop:?}");
        assert_eq!(values("k1"), vec!["committed"], "{stop:?}");
        assert_eq!(
            markers(&log),
            2,
            "{stop:?}: markers younger than delete.retention.ms stay"
        );
        // Nothing at or after the open transaction was touched.
        let from_open =
            |records: &[(i64, String, Option<String>)]| -> Vec<(i64, String, Option<String>)> {
                records
                    .iter()
                    .filter(|r| r.0 >= open_at.0)
                    .cloned()
                    .collect()
            };
        assert_eq!(from_open(&after), from_open(&before), "{stop:?}");
        assert!(
            after.len() < before.len(),
            "{stop:?}: something was cleaned"
        );
        assert_eq!(
            log.collect_aborted_transactions(Offset(0), Offset(i64::MAX))
                .expect("collect"),
            aborted,
            "{stop:?}"
        );
        // A crash now may rebuild the cleaned segment's index from the log (nothing was flushed, so recovery
        // replays every segment): the aborted transaction's records are gone, so the rebuilt index may lack its
        // entry, but it never invents one, and no aborted record comes back.
        drop(log);
        let log = Log::open(dir.path().to_path_buf(), config(), NOW).expect("reopen");
        let recovered = log
            .collect_aborted_transactions(Offset(0), Offset(i64::MAX))
            .expect("collect");
        assert!(
            recovered.iter().all(|txn| aborted.contains(txn)),
            "{stop:?}: {recovered:?}"
        );
        assert_eq!(data_records(&log), after, "{stop:?}");
    }
}

/// Once delete.retention.ms has passed, a marker whose transaction has nothing left goes (the aborted one's, and a
/// committed one's whose records were all compacted away); one whose committed records remain stays.
#[test]
fn markers_go_after_delete_retention_once_their_transaction_is_empty() {
    use crate::ids::{ProducerEpoch, ProducerId};
    use crate::storage::test_batches::{producer_batch, TestProducer};
    use crate::storage::ControlRecordType;
    let ts = NOW - 10_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::open(dir.path().to_path_buf(), config(), NOW).expect("open");
    let txn = |log: &mut Log, producer: i64, key: &str, kind: ControlRecordType| {
        let batch = producer_batch(
            TestProducer::txn(producer, 0, 0),
            &[(Some(key), Some("v"))],
            ts,
        );
        log.append(batch, LeaderEpoch(0), AppendOrigin::Client, ts)
            .expect("append");
        log.append_marker(
            ProducerId(producer),
            ProducerEpoch(0),
            kind,
            0,
            LeaderEpoch(0),
            ts,
        )
        .expect("marker");
    };
    // Producer 1 commits k0, later overwritten by a plain record; producer 2 commits k1 (kept); 3 aborts.
    txn(&mut log, 1, "k0", ControlRecordType::Commit);
    txn(&mut log, 2, "k1", ControlRecordType::Commit);
    txn(&mut log, 3, "k2", ControlRecordType::Abort);
    let plain = keyed_batch(&[(Some("k0"), Some("plain"))], ts, Codec::None);
    log.append(plain, LeaderEpoch(0), AppendOrigin::Client, ts)
        .expect("append");
    log.roll(ts).expect("roll");
    let tail = keyed_batch(&[(Some("k9"), Some("tail"))], ts, Codec::None);
    log.append(tail, LeaderEpoch(0), AppendOrigin::Client, ts)
        .expect("append");
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(markers(&log), 3);

    while log.clean(1 << 16, NOW).expect("clean").is_some() {}
    let values: Vec<(String, Option<String>)> = data_records(&log)
        .into_iter()
        .map(|(_, k, v)| (k, v))
        .collect();
    assert_eq!(
        values,
        vec![
            ("k1".to_string(), Some("v".to_string())),
            ("k0".to_string(), Some("plain".to_string())),
            ("k9".to_string(), Some("tail".to_string())),
        ]
    );
    assert_eq!(
        markers(&log),
        1,
        "only the marker of the transaction with records left"
    );
}
