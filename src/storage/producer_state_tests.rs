use super::*;

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
    assert_eq!(state.check(batch), Ok(SequenceCheck::Append));
    state.update(batch);
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
    match state.check(&header(7, 0, 8, 2, 99)) {
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
        state.check(&header(7, 0, 0, 2, 99)),
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
        state.check(&header(7, 0, 5, 1, 0)),
        Err(ProducerStateError::UnknownProducerId {
            producer_id: ProducerId(7),
            found: 5
        })
    );
    appended(&mut state, &header(7, 1, 0, 3, 0));
    assert_eq!(
        state.check(&header(7, 1, 4, 1, 3)),
        Err(ProducerStateError::OutOfOrderSequence {
            producer_id: ProducerId(7),
            found: 4,
            last: 2
        })
    );
    assert!(matches!(
        state.check(&header(7, 0, 3, 1, 3)),
        Err(ProducerStateError::InvalidProducerEpoch { .. })
    ));
    // A new epoch starts again at 0, and forgets the old epoch's batches.
    assert!(matches!(
        state.check(&header(7, 2, 3, 1, 3)),
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
fn truncation_and_expiry_forget_batches() {
    let mut state = ProducerStateManager::default();
    appended(&mut state, &header(1, 0, 0, 2, 0));
    appended(&mut state, &header(2, 0, 0, 2, 2));
    state.truncate_to(Offset(2));
    assert!(state.entry(ProducerId(1)).is_some());
    assert!(state.entry(ProducerId(2)).is_none());
    state.expire(1_000 + 100, 50);
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
    let (loaded, from) = ProducerStateManager::load(dir.path(), Offset(4)).expect("load");
    assert_eq!(from, Some(Offset(4)));
    assert!(loaded.entry(ProducerId(9)).is_none());
    let entry = loaded.entry(ProducerId(1)).expect("producer 1");
    assert_eq!(entry.epoch, ProducerEpoch(3));
    // The snapshot keeps the last batch: its retry is still recognised.
    assert!(matches!(
        loaded.check(&header(1, 3, 2, 2, 9)),
        Ok(SequenceCheck::Duplicate(_))
    ));

    // A damaged snapshot is ignored.
    let path = snapshot_path(dir.path(), Offset(4));
    let mut bytes = fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&path, bytes).expect("write");
    let (loaded, from) = ProducerStateManager::load(dir.path(), Offset(4)).expect("load");
    assert_eq!(from, None);
    assert!(loaded.is_empty());
}
