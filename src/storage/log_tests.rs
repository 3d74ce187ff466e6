//! Tests of [`super::Log`]: appends, reads, rolls, lookups and recovery, on real files in temporary directories.
//! Dropping a `Log` without `close` stands in for a crash: the clean-shutdown marker is missing on the next open.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_protocol::records::Compression as Codec;

use super::batch::{self, BatchHeader};
use super::segment::{file_name, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use super::test_batches::{batch, batch_with, TestRecord};
use super::{AppendOrigin, Log, LogConfig, LogError, TimestampType};
use crate::ids::{LeaderEpoch, Offset};

const NOW: i64 = 1_700_000_000_000;
const ALL: Offset = Offset(i64::MAX);

fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(dir.to_path_buf(), config, NOW).expect("open log")
}

fn headers(bytes: &Bytes) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let h = BatchHeader::parse(rest).expect("whole batch header");
        let size = h.size_in_bytes().expect("length");
        batch::check_framing(&rest[..size]).expect("valid batch with correct CRC");
        out.push(h);
        rest = &rest[size..];
    }
    out
}

fn bases(bytes: &Bytes) -> Vec<i64> {
    headers(bytes).iter().map(|h| h.base_offset).collect()
}

/// Every offset reads back as the batch that holds it, through every segment.
fn assert_every_offset_readable(log: &Log) {
    for o in log.log_start_offset().0..log.log_end_offset().0 {
        let got = log.read(Offset(o), 1, ALL, true).expect("read");
        let h = headers(&got);
        assert_eq!(h.len(), 1, "offset {o}");
        assert!(
            h[0].base_offset <= o && o <= h[0].last_offset(),
            "offset {o} in {h:?}"
        );
    }
}

fn seg_path(dir: &Path, base: i64, suffix: &str) -> PathBuf {
    dir.join(file_name(Offset(base), suffix))
}

#[test]
fn assigns_offsets_across_appends_and_stamps_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    let a = log
        .append(batch(3, NOW), LeaderEpoch(5), AppendOrigin::Client, NOW)
        .expect("append");
    let b = log
        .append(batch(1, NOW), LeaderEpoch(5), AppendOrigin::Client, NOW)
        .expect("append");
    let c = log
        .append(batch(5, NOW), LeaderEpoch(6), AppendOrigin::Client, NOW)
        .expect("append");
    assert_eq!(
        (a.first_offset, a.last_offset, a.record_count),
        (Offset(0), Offset(2), 3)
    );
    assert_eq!((b.first_offset, b.last_offset), (Offset(3), Offset(3)));
    assert_eq!((c.first_offset, c.last_offset), (Offset(4), Offset(8)));
    assert_eq!(a.log_append_time_ms, None);
    assert_eq!(c.max_timestamp, NOW + 4);
    assert_eq!(log.log_end_offset(), Offset(9));
    let all = log.read(Offset(0), 1 << 20, ALL, false).expect("read");
    let h = headers(&all);
    assert_eq!(bases(&all), vec![0, 3, 4]);
    assert_eq!(
        h.iter()
            .map(|h| h.partition_leader_epoch)
            .collect::<Vec<_>>(),
        vec![5, 5, 6]
    );
}

#[test]
fn rejected_batches_leave_the_log_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    log.append(batch(2, NOW), LeaderEpoch(0), AppendOrigin::Client, NOW)
        .expect("append");
    let mut bad = batch(2, NOW).to_vec();
    bad[70] ^= 1;
    assert!(matches!(
        log.append(Bytes::from(bad), LeaderEpoch(0), AppendOrigin::Client, NOW),
        Err(LogError::CorruptMessage(_))
    ));
    let tiny = LogConfig {
        max_message_bytes: 64,
        ..LogConfig::default()
    };
    log.update_config(tiny);
    assert!(matches!(
        log.append(batch(4, NOW), LeaderEpoch(0), AppendOrigin::Client, NOW),
        Err(LogError::MessageTooLarge { .. })
    ));
    assert_eq!(log.log_end_offset(), Offset(2));
}

#[test]
fn read_from_the_middle_of_a_batch_returns_that_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    log.append(batch(4, NOW), LeaderEpoch(0), AppendOrigin::Client, NOW)
        .expect("append");
    log.append(batch(4, NOW), LeaderEpoch(0), AppendOrigin::Client, NOW)
        .expect("append");
    assert_eq!(
        bases(&log.read(Offset(2), 1 << 20, ALL, false).expect("read")),
        vec![0, 4]
    );
    assert_eq!(
        bases(&log.read(Offset(5), 1 << 20, ALL, false).expect("read")),
        vec![4]
    );
}

#[test]
fn kip74_first_batch_and_whole_batches_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    let one = batch(10, NOW);
    let size = one.len();
    for _ in 0..3 {
        log.append(batch(10, NOW), LeaderEpoch(0), AppendOrigin::Client, NOW)
            .expect("append");
    }
    let first = log.read(Offset(0), 10, ALL, true).expect("read");
    assert_eq!((bases(&first), first.len()), (vec![0], size));
    assert!(log
        .read(Offset(0), 10, ALL, false)
        .expect("read")
        .is_empty());
    // One and a half batches of budget: only whole batches come back.
    let partial = log
        .read(Offset(0), size + size / 2, ALL, false)
        .expect("read");
    assert_eq!(bases(&partial), vec![0]);
    assert_eq!(
        bases(&log.read(Offset(0), 3 * size, ALL, false).expect("read")),
        vec![0, 10, 20]
    );
}

#[test]
fn max_offset_cuts_off_batches_and_range_is_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    log.append(batch(3, NOW), LeaderEpoch(0), AppendOrigin::Client, NOW)
        .expect("append");
    log.append(batch(1, NOW), LeaderEpoch(0), AppendOrigin::Client, NOW)
        .expect("append");
    log.append(batch(5, NOW), LeaderEpoch(0), AppendOrigin::Client, NOW)
        .expect("append");
    assert_eq!(
        bases(
            &log.read(Offset(0), 1 << 20, Offset(4), false)
                .expect("read")
        ),
        vec![0, 3]
    );
    // A high watermark inside a batch excludes the whole batch.
    assert_eq!(
        bases(
            &log.read(Offset(0), 1 << 20, Offset(6), false)
                .expect("read")
        ),
        vec![0, 3]
    );
    assert!(log
        .read(Offset(4), 1 << 20, Offset(4), true)
        .expect("read")
        .is_empty());
    assert!(log
        .read(Offset(1), 1 << 20, Offset(2), true)
        .expect("read")
        .is_empty());
    assert!(log
        .read(Offset(9), 1 << 20, ALL, true)
        .expect("read at LEO")
        .is_empty());
    assert!(matches!(
        log.read(Offset(10), 1 << 20, ALL, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        log.read(Offset(-1), 1 << 20, ALL, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn index_lookup_with_dense_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    for n in 1..=40 {
        log.append(
            batch(n % 4 + 1, NOW),
            LeaderEpoch(0),
            AppendOrigin::Client,
            NOW,
        )
        .expect("append");
    }
    assert_every_offset_readable(&log);
    log.close().expect("close");
    let index_len = fs::metadata(seg_path(dir.path(), 0, INDEX_SUFFIX))
        .expect("index")
        .len();
    // Every batch but the first gets an entry; the closed index is trimmed to them.
    assert_eq!(index_len, 39 * 8);
    let log = open(dir.path(), LogConfig::default());
    assert_every_offset_readable(&log);
}

#[test]
fn rolls_by_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let size = batch(2, NOW).len() as u32;
    let config = LogConfig {
        segment_bytes: size * 3,
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    for _ in 0..10 {
        log.append(batch(2, NOW), LeaderEpoch(0), AppendOrigin::Client, NOW)
            .expect("append");
    }
    assert_eq!(
        log.segment_base_offsets(),
        vec![Offset(0), Offset(6), Offset(12), Offset(18)]
    );
    assert!(seg_path(dir.path(), 6, LOG_SUFFIX).is_file());
    // Rolled segments' indexes are trimmed to their entries.
    let trimmed = fs::metadata(seg_path(dir.path(), 0, INDEX_SUFFIX))
        .expect("index")
        .len();
    assert_eq!(trimmed, 2 * 8);
    assert_every_offset_readable(&log);
    // A read never spans segments.
    assert_eq!(
        bases(&log.read(Offset(4), 1 << 20, ALL, false).expect("read")),
        vec![4]
    );
    log.close().expect("close");
    let mut log = open(dir.path(), config);
    assert_eq!(log.segment_count(), 4);
    assert_eq!(
        log.append(batch(1, NOW), LeaderEpoch(0), AppendOrigin::Client, NOW)
            .expect("append")
            .first_offset,
        Offset(20)
    );
    assert_every_offset_readable(&log);
}

#[test]
fn batch_larger_than_a_segment_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 100,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    assert!(matches!(
        log.append(batch(5, NOW), LeaderEpoch(0), AppendOrigin::Client, NOW),
        Err(LogError::RecordListTooLarge { .. })
    ));
}

#[test]
fn rolls_by_time_and_by_full_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_ms: 1_000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    log.append(batch(1, NOW), LeaderEpoch(0), AppendOrigin::Client, NOW)
        .expect("append");
    log.append(
        batch(1, NOW + 1_000),
        LeaderEpoch(0),
        AppendOrigin::Client,
        NOW,
    )
    .expect("append");
    assert_eq!(log.segment_count(), 1);
    // Measured in record time from the first batch, as Kafka does.
    log.append(
        batch(1, NOW + 1_001),
        LeaderEpoch(0),
        AppendOrigin::Client,
        NOW,
    )
    .expect("append");
    assert_eq!(log.segment_base_offsets(), vec![Offset(0), Offset(2)]);

    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        index_interval_bytes: 1,
        segment_index_bytes: 8 * 3,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    for _ in 0..8 {
        log.append(batch(1, NOW), LeaderEpoch(0), AppendOrigin::Client, NOW)
            .expect("append");
    }
    assert!(log.segment_count() > 1, "{:?}", log.segment_base_offsets());
    assert_every_offset_readable(&log);
}

#[test]
fn offset_for_timestamp_inside_batches_and_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        index_interval_bytes: 1,
        segment_bytes: 400,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let t = |ms: i64| TestRecord::at(NOW + ms);
    let batches = [
        batch_with(&[t(10), t(30), t(20)], Codec::None), // offsets 0..=2
        batch_with(&[t(40), t(60), t(50), t(55)], Codec::Gzip), // 3..=6
        batch_with(&[t(45), t(90), t(70)], Codec::Lz4),  // 7..=9
        batch_with(&[t(80), t(100)], Codec::None),       // 10..=11
    ];
    for b in batches {
        log.append(b, LeaderEpoch(0), AppendOrigin::Client, NOW)
            .expect("append");
    }
    assert!(log.segment_count() > 1, "{:?}", log.segment_base_offsets());
    let find = |ms: i64| log.offset_for_timestamp(NOW + ms).expect("lookup");
    assert_eq!(find(0), Some((NOW + 10, Offset(0))));
    assert_eq!(find(25), Some((NOW + 30, Offset(1))));
    assert_eq!(find(31), Some((NOW + 40, Offset(3))));
    assert_eq!(find(51), Some((NOW + 60, Offset(4))));
    assert_eq!(find(61), Some((NOW + 90, Offset(8))));
    assert_eq!(find(75), Some((NOW + 90, Offset(8))));
    assert_eq!(find(95), Some((NOW + 100, Offset(11))));
    assert_eq!(find(101), None);
    assert_eq!(
        log.max_timestamp_offset().expect("max"),
        Some((NOW + 100, Offset(11)))
    );
}

#[test]
fn max_timestamp_prefers_the_first_of_a_tie_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!(log.max_timestamp_offset().expect("max"), None);
    let t = |ms: i64| TestRecord::at(NOW + ms);
    log.append(
        batch_with(&[t(5), t(9), t(7)], Codec::Gzip),
        LeaderEpoch(0),
        AppendOrigin::Client,
        NOW,
    )
    .expect("append");
    log.append(
        batch_with(&[t(9), t(1)], Codec::None),
        LeaderEpoch(0),
        AppendOrigin::Client,
        NOW,
    )
    .expect("append");
    assert_eq!(
        log.max_timestamp_offset().expect("max"),
        Some((NOW + 9, Offset(1)))
    );
    log.close().expect("close");
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(
        log.max_timestamp_offset().expect("max"),
        Some((NOW + 9, Offset(1)))
    );
}

#[test]
fn log_append_time_rewrites_the_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let info = log
        .append(batch(3, 5), LeaderEpoch(0), AppendOrigin::Client, NOW)
        .expect("append");
    assert_eq!(info.log_append_time_ms, Some(NOW));
    assert_eq!(info.max_timestamp, NOW);
    let h = headers(&log.read(Offset(0), 1 << 20, ALL, false).expect("read"));
    assert_eq!(h[0].timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(h[0].max_timestamp, NOW);
    assert_eq!(
        log.offset_for_timestamp(NOW).expect("lookup"),
        Some((NOW, Offset(0)))
    );
}

#[test]
fn flush_bookkeeping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!(log.unflushed().1.len(), 0);
    log.append(batch(2, NOW), LeaderEpoch(0), AppendOrigin::Client, NOW)
        .expect("append");
    let (upto, files) = log.unflushed();
    assert_eq!((upto, files.len()), (Offset(2), 1));
    for f in &files {
        f.sync_data().expect("sync");
    }
    log.mark_flushed(upto);
    assert_eq!(log.flushed_offset(), Offset(2));
    assert!(log.unflushed().1.is_empty());
    log.append(batch(2, NOW), LeaderEpoch(0), AppendOrigin::Client, NOW)
        .expect("append");
    log.flush().expect("flush");
    assert_eq!(log.flushed_offset(), Offset(4));
    let path = log.dir().to_path_buf();
    log.delete().expect("delete");
    assert!(!path.exists());
}

/// Appends `n` two-record batches and "crashes" (drops without close).
fn crashed_log(dir: &Path, n: usize, config: &LogConfig) -> usize {
    let mut log = open(dir, config.clone());
    for _ in 0..n {
        log.append(batch(2, NOW), LeaderEpoch(0), AppendOrigin::Client, NOW)
            .expect("append");
    }
    drop(log);
    batch(2, NOW).len()
}

fn assert_recovered(dir: &Path, config: &LogConfig, batches: i64) {
    let mut log = open(dir, config.clone());
    assert_eq!(log.log_end_offset(), Offset(2 * batches));
    assert_every_offset_readable(&log);
    let info = log
        .append(batch(2, NOW), LeaderEpoch(0), AppendOrigin::Client, NOW)
        .expect("append after recovery");
    assert_eq!(info.first_offset, Offset(2 * batches));
    assert_every_offset_readable(&log);
    log.close().expect("close");
    let log = open(dir, config.clone());
    assert_eq!(log.log_end_offset(), Offset(2 * batches + 2));
}

fn dense() -> LogConfig {
    LogConfig {
        index_interval_bytes: 1,
        ..LogConfig::default()
    }
}

#[test]
fn recovery_truncates_a_torn_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let size = crashed_log(dir.path(), 5, &dense()) as u64;
    let f = OpenOptions::new()
        .write(true)
        .open(seg_path(dir.path(), 0, LOG_SUFFIX))
        .expect("open");
    f.set_len(5 * size - 7).expect("truncate");
    assert_recovered(dir.path(), &dense(), 4);
}

#[test]
fn recovery_drops_garbage_after_the_last_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    crashed_log(dir.path(), 3, &dense());
    let mut bytes = fs::read(seg_path(dir.path(), 0, LOG_SUFFIX)).expect("read");
    bytes.extend((0..1000u32).map(|i| (i * 7 + 3) as u8));
    fs::write(seg_path(dir.path(), 0, LOG_SUFFIX), &bytes).expect("write");
    assert_recovered(dir.path(), &dense(), 3);
}

#[test]
fn recovery_cuts_at_a_corrupt_batch_and_drops_later_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let size = batch(2, NOW).len();
    let config = LogConfig {
        segment_bytes: (size * 3) as u32,
        ..dense()
    };
    crashed_log(dir.path(), 8, &config);
    // Flip a byte inside the second batch of the first segment.
    let path = seg_path(dir.path(), 0, LOG_SUFFIX);
    let mut bytes = fs::read(&path).expect("read");
    bytes[size + 70] ^= 0x55;
    fs::write(&path, &bytes).expect("write");
    assert_recovered(dir.path(), &config, 1);
    assert!(!seg_path(dir.path(), 6, LOG_SUFFIX).exists());
}

#[test]
fn missing_or_corrupt_indexes_are_rebuilt_after_clean_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), dense());
    for _ in 0..6 {
        log.append(batch(2, NOW), LeaderEpoch(0), AppendOrigin::Client, NOW)
            .expect("append");
    }
    log.close().expect("close");
    fs::remove_file(seg_path(dir.path(), 0, INDEX_SUFFIX)).expect("delete index");
    fs::write(seg_path(dir.path(), 0, TIME_INDEX_SUFFIX), [7u8; 30]).expect("bad length");
    assert_recovered(dir.path(), &dense(), 6);

    // Whole entries, but not increasing.
    let mut junk = Vec::new();
    for (o, p) in [(9u32, 500u32), (3, 100), (0, 0)] {
        junk.extend_from_slice(&o.to_be_bytes());
        junk.extend_from_slice(&p.to_be_bytes());
    }
    fs::write(seg_path(dir.path(), 0, INDEX_SUFFIX), &junk).expect("corrupt index");
    assert_recovered(dir.path(), &dense(), 7);
    assert!(
        fs::metadata(seg_path(dir.path(), 0, INDEX_SUFFIX))
            .expect("index")
            .len()
            > 8
    );
}

#[test]
fn garbage_files_never_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(seg_path(dir.path(), 0, LOG_SUFFIX), vec![0xAB; 5000]).expect("write");
    fs::write(seg_path(dir.path(), 0, INDEX_SUFFIX), vec![0xFF; 64]).expect("write");
    fs::write(seg_path(dir.path(), 0, TIME_INDEX_SUFFIX), Vec::<u8>::new()).expect("write");
    fs::write(seg_path(dir.path(), 77, INDEX_SUFFIX), b"orphan").expect("write");
    fs::write(dir.path().join("recovery-point.checkpoint"), b"nonsense").expect("write");
    fs::write(dir.path().join("clean-shutdown"), b"").expect("write");
    assert_recovered(dir.path(), &dense(), 0);
    assert!(!seg_path(dir.path(), 77, INDEX_SUFFIX).exists());
}

#[test]
fn follower_copies_the_leader_and_truncates() {
    let (ldir, fdir) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let size = batch(2, NOW).len();
    let config = LogConfig {
        segment_bytes: (size * 2) as u32,
        ..dense()
    };
    let mut leader = open(ldir.path(), config.clone());
    for n in 0..5 {
        leader
            .append(batch(2, NOW + n), LeaderEpoch(3), AppendOrigin::Client, NOW)
            .expect("append");
    }
    let mut follower = open(fdir.path(), config.clone());
    // A fetch may end in a partial batch: it is left for the next fetch.
    let first = leader.read(Offset(0), 1 << 20, ALL, false).expect("read");
    let partial = Bytes::from([&first[..], &first[..size / 2]].concat());
    let info = follower.append_as_follower(partial, NOW).expect("append");
    assert_eq!(
        info.map(|i| (i.first_offset, i.last_offset)),
        Some((Offset(0), Offset(3)))
    );
    loop {
        let fetched = leader
            .read(follower.log_end_offset(), 1 << 20, ALL, false)
            .expect("read");
        if fetched.is_empty() {
            break;
        }
        follower.append_as_follower(fetched, NOW).expect("append");
    }
    assert_eq!(follower.log_end_offset(), Offset(10));
    assert_eq!(
        follower.segment_base_offsets(),
        leader.segment_base_offsets()
    );
    assert_eq!(
        follower.read(Offset(6), 1 << 20, ALL, false).expect("read"),
        leader.read(Offset(6), 1 << 20, ALL, false).expect("read")
    );
    let stale = leader.read(Offset(0), 1 << 20, ALL, false).expect("read");
    assert!(matches!(
        follower.append_as_follower(stale, NOW),
        Err(LogError::InvalidRecord(_))
    ));

    // Offset 5 is inside the batch 4..=5: the whole batch goes, and with it the segment based at 6 and beyond.
    follower.truncate_to(Offset(5), NOW).expect("truncate");
    assert_eq!(follower.log_end_offset(), Offset(4));
    assert_eq!(follower.segment_base_offsets(), vec![Offset(0), Offset(4)]);
    assert_every_offset_readable(&follower);
    assert_eq!(
        follower.max_timestamp_offset().expect("max"),
        Some((NOW + 2, Offset(3)))
    );
    let refetch = leader.read(Offset(4), 1 << 20, ALL, false).expect("read");
    follower.append_as_follower(refetch, NOW).expect("append");
    // The leader's segment at 4 holds two batches.
    assert_eq!(follower.log_end_offset(), Offset(8));
    drop(follower);
    let mut follower = open(fdir.path(), config.clone());
    assert_eq!(follower.log_end_offset(), Offset(8));
    assert_every_offset_readable(&follower);

    follower
        .truncate_to(Offset(0), NOW)
        .expect("truncate fully");
    assert_eq!(
        (follower.log_start_offset(), follower.log_end_offset()),
        (Offset(0), Offset(0))
    );
    assert_eq!(follower.segment_count(), 1);
}
