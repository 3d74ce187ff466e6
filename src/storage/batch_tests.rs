use super::*;
use crate::storage::test_batches::{batch, batch_with, keyed_batch, TestRecord};
use kafka_protocol::records::Compression as Codec;

fn config() -> LogConfig {
    LogConfig::default()
}

#[test]
fn good_batch_passes() {
    let b = batch(3, 1_000);
    let v = validate_for_append(&b, &config(), 1_000).expect("valid");
    assert_eq!(v.header.record_count, 3);
    assert_eq!(v.header.last_offset_delta, 2);
    assert_eq!(v.size, b.len());
    assert_eq!(v.max_timestamp, 1_002);
}

#[test]
fn bad_crc_is_corrupt() {
    let mut b = batch(2, 0).to_vec();
    let last = b.len() - 1;
    b[last] ^= 0xff;
    assert!(matches!(
        validate_for_append(&b, &config(), 0),
        Err(LogError::CorruptMessage(_))
    ));
}

#[test]
fn truncated_is_corrupt() {
    let b = batch(2, 0);
    for cut in [0, 10, HEADER_SIZE - 1, HEADER_SIZE, b.len() - 1] {
        assert!(
            matches!(
                validate_for_append(&b[..cut], &config(), 0),
                Err(LogError::CorruptMessage(_))
            ),
            "cut at {cut}"
        );
    }
}

#[test]
fn wrong_magic_is_invalid() {
    let mut b = batch(1, 0).to_vec();
    b[MAGIC_POS] = 1;
    assert!(matches!(
        validate_for_append(&b, &config(), 0),
        Err(LogError::InvalidRecord(_))
    ));
}

#[test]
fn too_large_is_rejected() {
    let b = batch(5, 0);
    let cfg = LogConfig {
        max_message_bytes: (b.len() - 1) as u32,
        ..config()
    };
    assert!(matches!(
        validate_for_append(&b, &cfg, 0),
        Err(LogError::MessageTooLarge { .. })
    ));
}

#[test]
fn two_batches_are_invalid() {
    let mut b = batch(1, 0).to_vec();
    b.extend_from_slice(&batch(1, 0));
    assert!(matches!(
        validate_for_append(&b, &config(), 0),
        Err(LogError::InvalidRecord(_))
    ));
}

#[test]
fn count_must_match_offset_delta_and_records() {
    // Claim 3 records while holding 2: the count no longer matches the records.
    let mut b = batch(2, 0).to_vec();
    b[RECORD_COUNT_POS..RECORD_COUNT_POS + 4].copy_from_slice(&3i32.to_be_bytes());
    b[LAST_OFFSET_DELTA_POS..LAST_OFFSET_DELTA_POS + 4].copy_from_slice(&2i32.to_be_bytes());
    let crc = compute_crc(&b);
    b[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    assert!(validate_for_append(&b, &config(), 0).is_err());

    let mut b = batch(2, 0).to_vec();
    b[LAST_OFFSET_DELTA_POS..LAST_OFFSET_DELTA_POS + 4].copy_from_slice(&5i32.to_be_bytes());
    let crc = compute_crc(&b);
    b[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        validate_for_append(&b, &config(), 0),
        Err(LogError::InvalidRecord(_))
    ));
}

#[test]
fn timestamps_outside_window_are_rejected() {
    let cfg = LogConfig {
        message_timestamp_before_max_ms: 1_000,
        message_timestamp_after_max_ms: 1_000,
        ..config()
    };
    let now = 1_000_000;
    let refused = |result: Result<ValidatedBatch, LogError>| -> Vec<(i32, RecordRule)> {
        match result {
            Err(LogError::InvalidRecords(errors)) => {
                errors.iter().map(|e| (e.batch_index, e.rule)).collect()
            }
            other => panic!("expected record errors, got {other:?}"),
        }
    };
    let late = RecordRule::TimestampInWindow;
    assert!(validate_for_append(&batch(2, now - 500), &cfg, now).is_ok());
    assert_eq!(
        refused(validate_for_append(&batch(2, now - 5_000), &cfg, now)),
        vec![(0, late), (1, late)]
    );
    assert_eq!(
        refused(validate_for_append(&batch(2, now + 5_000), &cfg, now)),
        vec![(0, late), (1, late)]
    );
    // Only the records out of the window are named, compressed or not.
    for codec in [Codec::None, Codec::Gzip] {
        let mixed = batch_with(
            &[
                TestRecord::at(now),
                TestRecord::at(now + 5_000),
                TestRecord::at(now - 200),
                TestRecord::at(now - 6_000),
            ],
            codec,
        );
        assert_eq!(
            refused(validate_for_append(&mixed, &cfg, now)),
            vec![(1, late), (3, late)],
            "{codec:?}"
        );
    }
}

#[test]
fn keyless_records_on_a_compacted_topic_are_named() {
    let cfg = LogConfig {
        cleanup_compact: true,
        message_timestamp_before_max_ms: 1_000,
        ..config()
    };
    let now = 1_000_000;
    for codec in [Codec::None, Codec::Lz4] {
        let b = keyed_batch(
            &[(Some("a"), Some("1")), (None, Some("2")), (Some(""), None)],
            now,
            codec,
        );
        match validate_for_append(&b, &cfg, now) {
            Err(LogError::InvalidRecords(errors)) => {
                let named: Vec<_> = errors.iter().map(|e| (e.batch_index, e.rule)).collect();
                assert_eq!(named, vec![(1, RecordRule::KeyRequired)], "{codec:?}");
            }
            other => panic!("{codec:?}: expected record errors, got {other:?}"),
        }
        // A keyless record with a timestamp out of the window is reported once, for its key.
        let old = keyed_batch(
            &[(None, Some("1")), (Some("k"), Some("2"))],
            now - 5_000,
            codec,
        );
        match validate_for_append(&old, &cfg, now) {
            Err(LogError::InvalidRecords(errors)) => {
                let named: Vec<_> = errors.iter().map(|e| (e.batch_index, e.rule)).collect();
                assert_eq!(
                    named,
                    vec![
                        (0, RecordRule::KeyRequired),
                        (1, RecordRule::TimestampInWindow)
                    ],
                    "{codec:?}"
                );
            }
            other => panic!("{codec:?}: expected record errors, got {other:?}"),
        }
    }
    let keyed = keyed_batch(&[(Some("a"), Some("1"))], now, Codec::None);
    assert!(validate_for_append(&keyed, &cfg, now).is_ok());
}

#[test]
fn assign_rewrites_owned_fields_and_keeps_crc_valid() {
    let mut b = batch(2, 50).to_vec();
    assign_in_place(&mut b, 42, 7, TimestampType::CreateTime, 51);
    let h = check_framing(&b).expect("still valid");
    assert_eq!((h.base_offset, h.partition_leader_epoch), (42, 7));
    assign_in_place(&mut b, 42, 7, TimestampType::LogAppendTime, 9_999);
    let h = check_framing(&b).expect("CRC recomputed");
    assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(h.max_timestamp, 9_999);
}
