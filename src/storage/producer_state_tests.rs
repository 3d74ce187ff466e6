use super::*;

impl ProducerStateManager {
    fn check_client(&self, header: &BatchHeader) -> Result<SequenceCheck, ProducerStateError> {
        self.check(header, AppendOrigin::Client)
    }
}

fn header(
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    records: i32,
    base_offset: i64,
) -> BatchHeader {
    BatchHeader {
        base_offset,
        batch_length: 0,
        partition_leader_epoch: 0,
        magic: 2,
        crc: 0,
        attributes: 0,
        last_offset_delta: records - 1,
        base_timestamp: 1_000,
        max_timestamp: 1_000,
        producer_id,
        producer_epoch: epoch,
        base_sequence,
        record_count: records,
    }
}

fn appended(state: &mut ProducerStateManager, batch: &BatchHeader) {
    assert_eq!(
        state.check(batch, AppendOrigin::Client),
        Ok(SequenceCheck::Append)
    );
    state.update(batch, None);
}

#[test]
fn batches_without_a_producer_id_are_not_tracked() {
    let mut state = ProducerStateManager::default();
    appended(&mut state, &header(-1, -1, -1, 3, 0));
    assert!(state.is_empty());
}

#[test]
fn a_retried_batch_is_a_duplicate_of_one_of_the_last_five() {
    let mut state = ProducerStateManager::default();
    for i in 0..7 {
        appended(&mut state, &header(7, 0, i * 2, 2, i64::from(i) * 2));
    }
    // The third-newest batch (sequences 8..9 at offsets 8..9) is still remembered.
    match state.check_client(&header(7, 0, 8, 2, 99)) {
        Ok(SequenceCheck::Duplicate(original)) => {
            assert_eq!(
                (original.first_offset, original.last_offset),
                (Offset(8), Offset(9))
            );
        }
        other => panic!("expected a duplicate, got {other:?}"),
    }
    // The first two have been forgotten: a retry of them is out of order now.
    assert!(matches!(
        state.check_client(&header(7, 0, 0, 2, 99)),
        Err(ProducerStateError::OutOfOrderSequence { .. })
    ));
    assert_eq!(
        state.entry(ProducerId(7)).map(|e| e.batches.len()),
        Some(BATCHES_TO_RETAIN)
    );
}

#[test]
fn gaps_stale_epochs_and_unknown_producers_are_refused_as_kafka_does() {
    let mut state = ProducerStateManager::default();
    assert_eq!(
        state.check_client(&header(7, 0, 5, 1, 0)),
        Err(ProducerStateError::UnknownProducerId {
            producer_id: ProducerId(7),
            found: 5
        })
    );
    appended(&mut state, &header(7, 1, 0, 3, 0));
    assert_eq!(
        state.check_client(&header(7, 1, 4, 1, 3)),
        Err(ProducerStateError::OutOfOrderSequence {
            producer_id: ProducerId(7),
            found: 4,
            last: 2
        })
    );
    assert!(matches!(
        state.check_client(&header(7, 0, 3, 1, 3)),
        Err(ProducerStateError::InvalidProducerEpoch { .. })
    ));
    // A new epoch starts again at 0, and forgets the old epoch's batches.
    assert!(matches!(
        state.check_client(&header(7, 2, 3, 1, 3)),
        Err(ProducerStateError::OutOfOrderSequence { .. })
    ));
    appended(&mut state, &header(7, 2, 0, 1, 3));
    assert_eq!(state.entry(ProducerId(7)).map(|e| e.batches.len()), Some(1));
}

#[test]
fn sequences_wrap_at_i32_max() {
    let mut state = ProducerStateManager::default();
    let near_end = header(7, 0, i32::MAX - 1, 3, 0);
    assert_eq!(last_sequence(&near_end), 0);
    appended(&mut state, &header(7, 0, 0, 1, 0));
    if let Some(entry) = state.producers.get_mut(&ProducerId(7)) {
        entry.batches[0].last_seq = i32::MAX;
    }
    appended(&mut state, &header(7, 0, 0, 1, 1));
}

#[test]
fn expiry_forgets_idle_producers() {
    let mut state = ProducerStateManager::default();
    appended(&mut state, &header(1, 0, 0, 2, 0));
    state.expire(1_000 + 49, 50);
    assert!(state.entry(ProducerId(1)).is_some());
    state.expire(1_000 + 50, 50);
    assert!(state.is_empty());
}

#[test]
fn snapshots_round_trip_and_bad_ones_are_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut state = ProducerStateManager::default();
    appended(&mut state, &header(1, 3, 0, 2, 0));
    appended(&mut state, &header(1, 3, 2, 2, 2));
    state
        .write_snapshot(dir.path(), Offset(4))
        .expect("snapshot");
    appended(&mut state, &header(9, 0, 0, 1, 4));
    state
        .write_snapshot(dir.path(), Offset(5))
        .expect("snapshot");

    // A snapshot beyond the log end describes records the log lost: it is deleted, the older one used.
    let (loaded, from) =
        ProducerStateManager::load(dir.path(), Offset(4), Offset(4)).expect("load");
    assert_eq!(from, Some(Offset(4)));
    assert!(loaded.entry(ProducerId(9)).is_none());
    let entry = loaded.entry(ProducerId(1)).expect("producer 1");
    assert_eq!(entry.epoch, ProducerEpoch(3));
    // The snapshot keeps the last batch: its retry is still recognised.
    assert!(matches!(
        loaded.check_client(&header(1, 3, 2, 2, 9)),
        Ok(SequenceCheck::Duplicate(_))
    ));

    // A damaged snapshot is ignored.
    let path = snapshot_path(dir.path(), Offset(4));
    let mut bytes = fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&path, bytes).expect("write");
    let (loaded, from) =
        ProducerStateManager::load(dir.path(), Offset(4), Offset(4)).expect("load");
    assert_eq!(from, None);
    assert!(loaded.is_empty());
}

fn txn_header(
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    records: i32,
    base_offset: i64,
) -> BatchHeader {
    BatchHeader {
        attributes: 1 << 4,
        ..header(producer_id, epoch, base_sequence, records, base_offset)
    }
}

fn marker_header(producer_id: i64, epoch: i16, offset: i64) -> BatchHeader {
    BatchHeader {
        attributes: (1 << 4) | (1 << 5),
        base_sequence: -1,
        ..header(producer_id, epoch, -1, 1, offset)
    }
}

fn end(kind: ControlRecordType, coordinator_epoch: i32) -> Option<EndTxnMarker> {
    Some(EndTxnMarker {
        control_type: kind,
        coordinator_epoch,
    })
}

#[test]
fn a_transaction_opens_with_its_first_batch_and_closes_with_its_marker() {
    let mut state = ProducerStateManager::default();
    appended(&mut state, &txn_header(1, 0, 0, 2, 10));
    appended(&mut state, &txn_header(2, 0, 0, 1, 12));
    appended(&mut state, &txn_header(1, 0, 2, 1, 13));
    assert_eq!(
        state
            .entry(ProducerId(1))
            .and_then(|e| e.current_txn_first_offset),
        Some(Offset(10))
    );
    assert_eq!(state.first_unstable_offset(), Some(Offset(10)));
    // Producer 2's transaction, still open, is the LastStableOffset its abort records.
    let done = state.update(&marker_header(1, 0, 14), end(ControlRecordType::Abort, 3));
    assert_eq!(
        done,
        Some(CompletedTxn {
            producer_id: ProducerId(1),
            first_offset: Offset(10),
            last_offset: Offset(14),
            aborted: true,
            last_stable_offset: Offset(12),
        })
    );
    let entry = state.entry(ProducerId(1)).expect("producer 1");
    assert_eq!(
        (entry.current_txn_first_offset, entry.coordinator_epoch),
        (None, 3)
    );
    // Unstable until the marker is below the HighWatermark.
    assert_eq!(state.first_unstable_offset(), Some(Offset(10)));
    state.on_high_watermark_updated(Offset(14));
    assert_eq!(state.first_unstable_offset(), Some(Offset(10)));
    state.on_high_watermark_updated(Offset(15));
    assert_eq!(state.first_unstable_offset(), Some(Offset(12)));
    let done = state.update(&marker_header(2, 0, 15), end(ControlRecordType::Commit, 3));
    assert_eq!(
        done.map(|t| (t.aborted, t.last_stable_offset)),
        Some((false, Offset(16)))
    );
    state.on_high_watermark_updated(Offset(16));
    assert_eq!(state.first_unstable_offset(), None);
    // A marker without an open transaction completes nothing; an empty control batch is no marker at all.
    assert_eq!(
        state.update(&marker_header(2, 0, 16), end(ControlRecordType::Commit, 3)),
        None
    );
    assert_eq!(state.update(&marker_header(2, 5, 17), None), None);
    assert_eq!(
        state.entry(ProducerId(2)).map(|e| e.epoch),
        Some(ProducerEpoch(0))
    );
}

#[test]
fn markers_and_plain_batches_are_checked_against_the_transaction_state() {
    let mut state = ProducerStateManager::default();
    appended(&mut state, &txn_header(1, 2, 0, 1, 0));
    assert_eq!(
        state.check_client(&header(1, 2, 1, 1, 1)),
        Err(ProducerStateError::InvalidTxnState {
            producer_id: ProducerId(1),
            txn_first_offset: Offset(0)
        })
    );
    assert!(matches!(
        state.check_marker(ProducerId(1), ProducerEpoch(1), 0),
        Err(ProducerStateError::InvalidProducerEpoch { .. })
    ));
    // A newer epoch (the coordinator fenced the producer) is fine, and forgets the old epoch's batches.
    assert_eq!(
        state.check_marker(ProducerId(1), ProducerEpoch(3), 4),
        Ok(())
    );
    state.update(&marker_header(1, 3, 1), end(ControlRecordType::Abort, 4));
    assert_eq!(
        state.check_marker(ProducerId(1), ProducerEpoch(3), 3),
        Err(ProducerStateError::TransactionCoordinatorFenced {
            producer_id: ProducerId(1),
            coordinator_epoch: 3,
            current: 4
        })
    );
    let entry = state.entry(ProducerId(1)).expect("producer 1");
    assert!(entry.batches.is_empty());
    // The new epoch's sequence starts at 0, as Kafka requires.
    assert!(matches!(
        state.check_client(&txn_header(1, 3, 1, 1, 2)),
        Err(ProducerStateError::OutOfOrderSequence { .. })
    ));
    appended(&mut state, &txn_header(1, 3, 0, 1, 2));
    // A coordinator's batch without sequences only has its epoch checked, and opens or extends a transaction.
    let coordinator = txn_header(8, 1, -1, 2, 3);
    assert_eq!(last_sequence(&coordinator), -1);
    for offset in [3, 5] {
        let batch = BatchHeader {
            base_offset: offset,
            ..coordinator
        };
        assert_eq!(
            state.check(&batch, AppendOrigin::Coordinator),
            Ok(SequenceCheck::Append)
        );
        state.update(&batch, None);
    }
    assert!(matches!(
        state.check(&txn_header(8, 0, -1, 1, 7), AppendOrigin::Coordinator),
        Err(ProducerStateError::InvalidProducerEpoch { .. })
    ));
    assert_eq!(
        state
            .entry(ProducerId(8))
            .and_then(|e| e.current_txn_first_offset),
        Some(Offset(3))
    );
}

#[test]
fn producers_with_an_open_transaction_do_not_expire() {
    let mut state = ProducerStateManager::default();
    appended(&mut state, &txn_header(1, 0, 0, 1, 0));
    appended(&mut state, &header(2, 0, 0, 1, 1));
    state.expire(1_000_000, 50);
    assert!(state.entry(ProducerId(1)).is_some());
    assert!(state.entry(ProducerId(2)).is_none());
    // The marker's timestamp counts as the producer's last activity.
    let mut marker = marker_header(1, 0, 2);
    marker.max_timestamp = 999_990;
    state.update(&marker, end(ControlRecordType::Commit, 0));
    state.expire(1_000_000, 50);
    assert!(state.entry(ProducerId(1)).is_some());
    state.expire(1_000_040, 50);
    assert!(state.is_empty());
}

#[test]
fn snapshots_keep_open_transactions_coordinator_epochs_and_producers_without_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut state = ProducerStateManager::default();
    appended(&mut state, &txn_header(1, 0, 0, 2, 0));
    appended(&mut state, &txn_header(2, 4, 0, 1, 2));
    state.update(&marker_header(2, 5, 3), end(ControlRecordType::Abort, 7));
    appended(&mut state, &txn_header(3, 0, 0, 1, 4));
    state
        .write_snapshot(dir.path(), Offset(5))
        .expect("snapshot");
    let (loaded, from) =
        ProducerStateManager::load(dir.path(), Offset(5), Offset(5)).expect("load");
    assert_eq!(from, Some(Offset(5)));
    for id in [1, 2, 3] {
        assert_eq!(
            loaded.entry(ProducerId(id)),
            state.entry(ProducerId(id)),
            "producer {id}"
        );
    }
    let two = loaded.entry(ProducerId(2)).expect("producer 2");
    assert_eq!((two.epoch, two.coordinator_epoch), (ProducerEpoch(5), 7));
    assert!(two.batches.is_empty());
    // The ongoing set is rebuilt: the LastStableOffset and the next abort's entry come out as before.
    assert_eq!(loaded.first_unstable_offset(), Some(Offset(0)));
    let mut loaded = loaded;
    let done = loaded.update(&marker_header(1, 0, 5), end(ControlRecordType::Abort, 7));
    assert_eq!(done.map(|t| t.last_stable_offset), Some(Offset(4)));
    // Only snapshots at or below the bound asked for are used.
    let (_, from) = ProducerStateManager::load(dir.path(), Offset(5), Offset(4)).expect("load");
    assert_eq!(from, None);
    assert!(
        snapshot_path(dir.path(), Offset(5)).exists(),
        "kept for later"
    );
}
