//! Tests of [`super::Log`] with transactions: transactional appends and markers, the first unstable offset, the
//! transaction index through appends, reopen, crash recovery, truncation and retention. Dropping a `Log` without
//! `close` stands in for a crash.

use std::fs;
use std::path::Path;

use super::batch::{self, BatchHeader, ControlRecordType};
use super::producer_state::ProducerStateError;
use super::segment::{file_name, TXN_INDEX_SUFFIX};
use super::test_batches::{batch, producer_batch, txn_batch, TestProducer};
use super::{AbortedTxn, AppendOrigin, Log, LogConfig, LogError};
use crate::ids::{LeaderEpoch, Offset, ProducerEpoch, ProducerId};

const NOW: i64 = 1_700_000_000_000;
const EPOCH: LeaderEpoch = LeaderEpoch(0);
const ABORT: ControlRecordType = ControlRecordType::Abort;
const COMMIT: ControlRecordType = ControlRecordType::Commit;

fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(dir.to_path_buf(), config, NOW).expect("open log")
}

fn append(log: &mut Log, records: bytes::Bytes) -> Offset {
    log.append(records, EPOCH, AppendOrigin::Client, NOW)
        .expect("append")
        .first_offset
}

fn marker(
    log: &mut Log,
    producer: i64,
    epoch: i16,
    kind: ControlRecordType,
    coordinator: i32,
) -> Offset {
    log.append_marker(
        ProducerId(producer),
        ProducerEpoch(epoch),
        kind,
        coordinator,
        EPOCH,
        NOW,
    )
    .expect("marker")
    .first_offset
}

fn aborted(producer: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id: ProducerId(producer),
        first_offset: Offset(first),
        last_offset: Offset(last),
        last_stable_offset: Offset(lso),
    }
}

fn all_aborted(log: &Log) -> Vec<AbortedTxn> {
    log.collect_aborted_transactions(Offset(0), Offset(i64::MAX))
        .expect("collect")
}

/// Small segments, so that transactions span several.
fn small() -> LogConfig {
    LogConfig {
        segment_bytes: 400,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    }
}

#[test]
fn markers_are_kafka_control_batches() {
    let bytes = batch::encode_control_batch(ProducerId(7), ProducerEpoch(3), ABORT, 12, NOW);
    let header = batch::check_framing(&bytes).expect("valid batch with its CRC");
    assert!(header.is_control() && header.is_transactional());
    assert_eq!((header.producer_id, header.producer_epoch), (7, 3));
    assert_eq!((header.base_sequence, header.record_count), (-1, 1));
    assert_eq!(header.max_timestamp, NOW);
    // kafka-protocol's decoder, an independent reading of the format, sees the same record.
    let mut buf = bytes.clone();
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).expect("decode");
    let record = &set.records[0];
    assert!(record.control && record.transactional);
    assert_eq!(record.key.as_deref(), Some(&[0u8, 0, 0, 0][..]));
    assert_eq!(record.value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 12][..]));
    let parsed = batch::end_txn_marker(&bytes, &header).expect("parse");
    assert_eq!(
        parsed.map(|m| (m.control_type, m.coordinator_epoch)),
        Some((ABORT, 12))
    );
    let commit = batch::encode_control_batch(ProducerId(7), ProducerEpoch(3), COMMIT, 0, NOW);
    let header = BatchHeader::parse(&commit).expect("header");
    assert_eq!(
        batch::end_txn_marker(&commit, &header)
            .expect("parse")
            .map(|m| m.control_type),
        Some(COMMIT)
    );
    // A data batch carries none; clients may still not produce control batches.
    let data = batch(1, NOW);
    let header = BatchHeader::parse(&data).expect("header");
    assert_eq!(batch::end_txn_marker(&data, &header).expect("parse"), None);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    assert!(matches!(
        log.append(bytes, EPOCH, AppendOrigin::Coordinator, NOW),
        Err(LogError::InvalidRecord(_))
    ));
}

#[test]
fn transactions_hold_back_the_first_unstable_offset_until_their_marker_is_below_the_high_watermark()
{
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, batch(2, NOW)); // 0..=1, no producer
    assert_eq!(log.first_unstable_offset(), None);
    let first = append(&mut log, txn_batch(1, 0, 0, 2, NOW)); // 2..=3
    assert_eq!(first, Offset(2));
    assert_eq!(log.first_unstable_offset(), Some(Offset(2)));
    append(&mut log, txn_batch(2, 0, 0, 1, NOW)); // 4
    append(&mut log, txn_batch(1, 0, 2, 1, NOW)); // 5: extends producer 1's transaction
    let commit = marker(&mut log, 1, 0, COMMIT, 0); // 6
    assert_eq!(commit, Offset(6));
    // Closed, but its marker is not below the HighWatermark yet.
    assert_eq!(log.first_unstable_offset(), Some(Offset(2)));
    log.update_high_watermark(Offset(6));
    assert_eq!(log.first_unstable_offset(), Some(Offset(2)));
    log.update_high_watermark(Offset(7));
    assert_eq!(log.first_unstable_offset(), Some(Offset(4)));
    let abort = marker(&mut log, 2, 0, ABORT, 0); // 7
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(log.first_unstable_offset(), None);
    // A commit leaves no trace in the index; an abort does, with the LastStableOffset after its marker.
    assert_eq!(all_aborted(&log), vec![aborted(2, 4, abort.0, 8)]);
    let entry = log
        .producer_state()
        .entry(ProducerId(1))
        .expect("producer 1");
    assert_eq!(entry.current_txn_first_offset, None);
    assert_eq!(entry.coordinator_epoch, 0);
}

#[test]
fn an_aborted_transactions_stable_offset_is_the_next_open_one_of_another_producer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, txn_batch(1, 0, 0, 1, NOW)); // 0
    append(&mut log, txn_batch(2, 0, 0, 1, NOW)); // 1
    append(&mut log, txn_batch(3, 0, 0, 1, NOW)); // 2
    marker(&mut log, 2, 0, ABORT, 0); // 3: producer 1's transaction (from 0) is still open
    marker(&mut log, 1, 0, ABORT, 0); // 4: producer 3's (from 2) is
    marker(&mut log, 3, 0, ABORT, 0); // 5: none is
    assert_eq!(
        all_aborted(&log),
        vec![
            aborted(2, 1, 3, 0),
            aborted(1, 0, 4, 2),
            aborted(3, 2, 5, 6)
        ]
    );
    // Kafka's selection: overlapping [start, upper bound).
    let overlapping = |start: i64, upper: i64| -> Vec<i64> {
        log.collect_aborted_transactions(Offset(start), Offset(upper))
            .expect("collect")
            .iter()
            .map(|t| t.producer_id.0)
            .collect()
    };
    assert_eq!(overlapping(0, 1), vec![1]);
    assert_eq!(overlapping(4, 6), vec![1, 3]);
    assert_eq!(overlapping(5, 6), vec![3]);
    assert_eq!(overlapping(6, 7), Vec::<i64>::new());
}

#[test]
fn producer_and_coordinator_epochs_fence_markers_and_open_transactions_refuse_plain_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    // A marker for a producer the log has never seen is fine and records the epochs.
    marker(&mut log, 9, 4, ABORT, 2);
    append(&mut log, txn_batch(1, 3, 0, 2, NOW));
    let plain = producer_batch(
        TestProducer {
            transactional: false,
            ..TestProducer::txn(1, 3, 2)
        },
        &[(Some("k"), Some("v"))],
        NOW,
    );
    assert!(matches!(
        log.append(plain, EPOCH, AppendOrigin::Client, NOW),
        Err(LogError::ProducerState(
            ProducerStateError::InvalidTxnState { .. }
        ))
    ));
    let end = log.log_end_offset();
    let refused = |log: &mut Log, epoch: i16, coordinator: i32| {
        log.append_marker(
            ProducerId(1),
            ProducerEpoch(epoch),
            COMMIT,
            coordinator,
            EPOCH,
            NOW,
        )
        .expect_err("refused")
    };
    assert!(matches!(
        refused(&mut log, 2, 5),
        LogError::ProducerState(ProducerStateError::InvalidProducerEpoch { .. })
    ));
    // The coordinator bumps the epoch when it aborts (a timeout, a new producer instance): the marker may be newer.
    marker(&mut log, 1, 4, ABORT, 5);
    assert!(matches!(
        refused(&mut log, 4, 4),
        LogError::ProducerState(ProducerStateError::TransactionCoordinatorFenced {
            coordinator_epoch: 4,
            current: 5,
            ..
        })
    ));
    assert_eq!(log.log_end_offset(), Offset(end.0 + 1));
    // The new epoch forgot the old one's batches: the producer's sequence starts again at 0.
    let entry = log
        .producer_state()
        .entry(ProducerId(1))
        .expect("producer 1");
    assert_eq!((entry.epoch, entry.batches.len()), (ProducerEpoch(4), 0));
    assert!(matches!(
        log.append(txn_batch(1, 4, 3, 1, NOW), EPOCH, AppendOrigin::Client, NOW),
        Err(LogError::ProducerState(
            ProducerStateError::OutOfOrderSequence { .. }
        ))
    ));
    append(&mut log, txn_batch(1, 4, 0, 1, NOW));
    // And a marker with no open transaction is fine, as in Kafka.
    marker(&mut log, 1, 4, COMMIT, 5);
    marker(&mut log, 1, 4, COMMIT, 5);
}

#[test]
fn coordinator_batches_without_sequences_skip_the_sequence_checks_but_not_the_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    let commit = |epoch: i16| {
        producer_batch(
            TestProducer::txn(5, epoch, -1),
            &[(Some("group"), Some("offsets"))],
            NOW,
        )
    };
    // What the group coordinator writes for TxnOffsetCommit: NO_SEQUENCE, again and again.
    for _ in 0..3 {
        log.append(commit(2), EPOCH, AppendOrigin::Coordinator, NOW)
            .expect("coordinator append");
    }
    assert_eq!(log.log_end_offset(), Offset(3));
    assert_eq!(log.first_unstable_offset(), Some(Offset(0)));
    assert!(matches!(
        log.append(commit(1), EPOCH, AppendOrigin::Coordinator, NOW),
        Err(LogError::ProducerState(
            ProducerStateError::InvalidProducerEpoch { .. }
        ))
    ));
    // From a client, a batch that does not start the sequence would be out of order.
    let client = producer_batch(TestProducer::txn(5, 2, 3), &[(Some("k"), Some("v"))], NOW);
    assert!(matches!(
        log.append(client, EPOCH, AppendOrigin::Client, NOW),
        Err(LogError::ProducerState(
            ProducerStateError::OutOfOrderSequence { .. }
        ))
    ));
    marker(&mut log, 5, 2, COMMIT, 0);
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(log.first_unstable_offset(), None);
}

/// Three producers over several small segments: aborts, a commit, and a transaction left open. `pass` counts the
/// calls on one log, so that sequences go on.
fn fill_pass(log: &mut Log, pass: i32) -> Vec<AbortedTxn> {
    let mut expected = Vec::new();
    for round in pass * 4..pass * 4 + 4 {
        let seq = round * 2;
        let a = append(log, txn_batch(1, 0, seq, 2, NOW));
        append(log, batch(1, NOW));
        append(log, txn_batch(2, 0, seq, 2, NOW));
        let end = marker(log, 1, 0, ABORT, 1);
        // Producer 2's transaction is still open: it holds the LastStableOffset.
        expected.push(aborted(1, a.0, end.0, end.0 - 2));
        marker(log, 2, 0, COMMIT, 1);
    }
    append(log, txn_batch(3, 0, pass, 1, NOW));
    // As a partition reports it once the appends are durable.
    log.update_high_watermark(log.log_end_offset());
    expected
}

fn fill(log: &mut Log) -> Vec<AbortedTxn> {
    fill_pass(log, 0)
}

#[test]
fn a_crash_rebuilds_producer_state_and_every_recovered_segments_txn_index_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small());
    let expected = fill(&mut log);
    assert!(log.segment_count() > 3, "{:?}", log.segment_base_offsets());
    assert_eq!(all_aborted(&log), expected);
    let open_txn = log.first_unstable_offset();
    // The recovery point stays where open left it: every segment is recovered.
    drop(log);
    let log = open(dir.path(), small());
    assert_eq!(
        all_aborted(&log),
        expected,
        "rebuilt, complete, no duplicates"
    );
    assert_eq!(log.first_unstable_offset(), open_txn);
    let entry = log
        .producer_state()
        .entry(ProducerId(3))
        .expect("producer 3");
    assert!(entry.current_txn_first_offset.is_some());

    // Only the segments from the recovery point on are recovered: the others keep their entries, not doubled.
    let mut log = log;
    log.flush().expect("flush");
    // Producer 3's transaction, still open, is now what holds the LastStableOffset of every abort.
    let held = open_txn.expect("producer 3's transaction");
    let more = fill_pass(&mut log, 1).into_iter().map(|t| AbortedTxn {
        last_stable_offset: held,
        ..t
    });
    let before = all_aborted(&log);
    assert_eq!(
        before,
        expected.iter().copied().chain(more).collect::<Vec<_>>()
    );
    drop(log);
    let log = open(dir.path(), small());
    assert_eq!(all_aborted(&log), before);
}

#[test]
fn a_damaged_txn_index_is_rebuilt_after_a_clean_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small());
    let expected = fill(&mut log);
    let bases = log.segment_base_offsets();
    log.close().expect("close");
    let damaged = bases
        .iter()
        .map(|base| dir.path().join(file_name(*base, TXN_INDEX_SUFFIX)))
        .find(|path| path.exists())
        .expect("a segment with an aborted transaction");
    let bytes = fs::read(&damaged).expect("read");
    fs::write(&damaged, &bytes[..bytes.len() - 5]).expect("tear");
    let log = open(dir.path(), small());
    assert_eq!(all_aborted(&log), expected);
    assert_eq!(fs::read(&damaged).expect("read"), bytes);
}

#[test]
fn a_clean_reopen_keeps_open_transactions_from_the_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, txn_batch(1, 0, 0, 2, NOW));
    append(&mut log, txn_batch(2, 0, 0, 2, NOW));
    marker(&mut log, 2, 1, ABORT, 3);
    log.close().expect("close");
    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!(log.first_unstable_offset(), Some(Offset(0)));
    let entry = log
        .producer_state()
        .entry(ProducerId(2))
        .expect("producer 2");
    assert_eq!(
        (
            entry.epoch,
            entry.coordinator_epoch,
            entry.current_txn_first_offset
        ),
        (ProducerEpoch(1), 3, None)
    );
    // The coordinator epoch survived: an older coordinator is still fenced.
    assert!(log
        .append_marker(ProducerId(2), ProducerEpoch(1), ABORT, 2, EPOCH, NOW)
        .is_err());
    marker(&mut log, 1, 0, COMMIT, 3);
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(log.first_unstable_offset(), None);
}

#[test]
fn truncation_reopens_a_transaction_whose_marker_was_cut_and_forgets_one_whose_start_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small());
    let expected = fill(&mut log);
    let last = expected[expected.len() - 1];
    log.truncate_to(last.last_offset, NOW).expect("truncate");
    // The abort is gone from the index and producer 1's transaction is open again.
    assert_eq!(all_aborted(&log), expected[..expected.len() - 1].to_vec());
    assert_eq!(log.first_unstable_offset(), Some(last.first_offset));
    let entry = log
        .producer_state()
        .entry(ProducerId(1))
        .expect("producer 1");
    assert_eq!(entry.current_txn_first_offset, Some(last.first_offset));
    // Cutting at its first batch forgets the transaction; producer 2's, begun after it, goes too.
    log.truncate_to(last.first_offset, NOW).expect("truncate");
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(log.first_unstable_offset(), None);
    let entry = log
        .producer_state()
        .entry(ProducerId(1))
        .expect("producer 1");
    assert_eq!(entry.current_txn_first_offset, None);
    // A crash now must not bring the cut entry back.
    drop(log);
    let log = open(dir.path(), small());
    assert_eq!(all_aborted(&log), expected[..expected.len() - 1].to_vec());
}

#[test]
fn retention_takes_a_segments_txn_index_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small());
    let expected = fill(&mut log);
    let bases = log.segment_base_offsets();
    let first_index = bases
        .iter()
        .copied()
        .find(|base| dir.path().join(file_name(*base, TXN_INDEX_SUFFIX)).exists())
        .expect("a txn index");
    let next = bases[bases.iter().position(|b| *b == first_index).expect("base") + 1];
    log.delete_records_before(next, NOW)
        .expect("delete records");
    assert!(!dir
        .path()
        .join(file_name(first_index, TXN_INDEX_SUFFIX))
        .exists());
    let kept: Vec<AbortedTxn> = expected
        .into_iter()
        .filter(|t| t.last_offset >= next)
        .collect();
    assert_eq!(
        log.collect_aborted_transactions(next, Offset(i64::MAX))
            .expect("collect"),
        kept
    );
}
