//! The broker keys for retention, cleanup and the log cleaner, and Kafka's coarser spellings of the log durations
//! (`log.retention.hours`, `log.roll.hours`).

use std::collections::BTreeMap;

use super::broker::{parse_bool, parse_num};
use super::{invalid, ConfigError};

/// Retention, cleanup and the log cleaner (`log.retention.*`, `log.cleaner.*`, ...): the broker-wide defaults of
/// the topic configs that shape a log's life after the append, and the cleaner's own settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LogCleanupConfig {
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub retention_check_interval_ms: u64,
    pub cleanup_policy: String,
    pub segment_delete_delay_ms: i64,
    pub cleaner_enable: bool,
    pub cleaner_backoff_ms: u64,
    pub cleaner_dedupe_buffer_size: usize,
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub min_cleanable_ratio: f64,
    pub message_timestamp_before_max_ms: i64,
    pub message_timestamp_after_max_ms: i64,
    pub min_insync_replicas: i32,
}

impl LogCleanupConfig {
    pub(super) fn parse<'a>(get: &impl Fn(&str) -> &'a str) -> Result<Self, ConfigError> {
        let policy = get("log.cleanup.policy").trim().to_string();
        if policy
            .split(',')
            .any(|p| !matches!(p.trim(), "delete" | "compact"))
        {
            return Err(invalid(
                "log.cleanup.policy",
                &policy,
                "expected a list of delete, compact",
            ));
        }
        let ratio_text = get("log.cleaner.min.cleanable.ratio");
        let min_cleanable_ratio = ratio_text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| {
                invalid(
                    "log.cleaner.min.cleanable.ratio",
                    ratio_text,
                    "must be between 0 and 1",
                )
            })?;
        Ok(LogCleanupConfig {
            retention_ms: parse_num(get, "log.retention.ms", -1, i64::MAX)?,
            retention_bytes: parse_num(get, "log.retention.bytes", -1, i64::MAX)?,
            retention_check_interval_ms: parse_num(
                get,
                "log.retention.check.interval.ms",
                1,
                i64::MAX / 2,
            )? as u64,
            cleanup_policy: policy,
            segment_delete_delay_ms: parse_num(get, "log.segment.delete.delay.ms", 0, i64::MAX)?,
            cleaner_enable: parse_bool(get, "log.cleaner.enable")?,
            cleaner_backoff_ms: parse_num(get, "log.cleaner.backoff.ms", 1, i64::MAX / 2)? as u64,
            cleaner_dedupe_buffer_size: parse_num(
                get,
                "log.cleaner.dedupe.buffer.size",
                1024,
                i64::from(i32::MAX),
            )? as usize,
            delete_retention_ms: parse_num(get, "log.cleaner.delete.retention.ms", 0, i64::MAX)?,
            min_compaction_lag_ms: parse_num(
                get,
                "log.cleaner.min.compaction.lag.ms",
                0,
                i64::MAX,
            )?,
            max_compaction_lag_ms: parse_num(
                get,
                "log.cleaner.max.compaction.lag.ms",
                1,
                i64::MAX,
            )?,
            min_cleanable_ratio,
            message_timestamp_before_max_ms: parse_num(
                get,
                "log.message.timestamp.before.max.ms",
                0,
                i64::MAX,
            )?,
            message_timestamp_after_max_ms: parse_num(
                get,
                "log.message.timestamp.after.max.ms",
                0,
                i64::MAX,
            )?,
            min_insync_replicas: parse_num(get, "min.insync.replicas", 1, i64::from(i32::MAX))?
                as i32,
        })
    }
}

/// Kafka's coarser spellings of two broker durations, finest first after the millisecond key itself.
const TIME_SYNONYMS: &[(&str, &[(&str, i64)])] = &[
    (
        "log.retention.ms",
        &[
            ("log.retention.minutes", 60_000),
            ("log.retention.hours", 3_600_000),
        ],
    ),
    ("log.roll.ms", &[("log.roll.hours", 3_600_000)]),
];

/// `values` with `log.retention.ms` and `log.roll.ms` filled in from `log.retention.minutes`/`.hours` and
/// `log.roll.hours` where only those are given: Kafka's stock server.properties sets `log.retention.hours`, and the
/// finest spelling given wins, as in Kafka. A negative retention means "keep forever" (-1).
pub(super) fn with_time_synonyms(
    values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut resolved = values.clone();
    for (ms_key, coarser) in TIME_SYNONYMS {
        if values.contains_key(*ms_key) {
            continue;
        }
        let Some((key, text)) = coarser
            .iter()
            .find_map(|(key, _)| values.get(*key).map(|text| (*key, text)))
        else {
            continue;
        };
        let ms = in_millis(key, text).ok_or_else(|| invalid(key, text, "not a number"))?;
        resolved.insert(ms_key.to_string(), ms.to_string());
    }
    Ok(resolved)
}

/// The coarser spellings of a broker millisecond key (`log.retention.ms`: minutes, then hours), finest first.
pub(super) fn coarser_spellings(ms_key: &str) -> impl Iterator<Item = &'static str> + '_ {
    TIME_SYNONYMS
        .iter()
        .filter(move |(key, _)| *key == ms_key)
        .flat_map(|(_, coarser)| coarser.iter().map(|(key, _)| *key))
}

/// A value of one of the coarser spellings, in milliseconds (negative: -1, forever).
pub(super) fn in_millis(key: &str, value: &str) -> Option<i64> {
    let unit_ms = TIME_SYNONYMS
        .iter()
        .flat_map(|(_, coarser)| coarser.iter())
        .find(|(k, _)| *k == key)?
        .1;
    let count: i64 = value.trim().parse().ok()?;
    Some(if count < 0 {
        -1
    } else {
        count.saturating_mul(unit_ms)
    })
}

#[cfg(test)]
mod tests {
    use crate::config::BrokerConfig;

    #[test]
    fn coarser_time_spellings_apply_when_the_millisecond_key_is_not_given() {
        let config = |pairs: &[(&str, &str)]| {
            let values = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            BrokerConfig::from_map(&values).expect("valid")
        };
        let hours = config(&[("log.retention.hours", "24"), ("log.roll.hours", "1")]);
        assert_eq!(hours.log_cleanup.retention_ms, 86_400_000);
        assert_eq!(hours.log_roll_ms, 3_600_000);
        let minutes = config(&[
            ("log.retention.hours", "24"),
            ("log.retention.minutes", "5"),
        ]);
        assert_eq!(
            minutes.log_cleanup.retention_ms, 300_000,
            "minutes beat hours"
        );
        let ms = config(&[("log.retention.minutes", "5"), ("log.retention.ms", "1234")]);
        assert_eq!(ms.log_cleanup.retention_ms, 1234, "milliseconds beat both");
        let forever = config(&[("log.retention.hours", "-1")]);
        assert_eq!(forever.log_cleanup.retention_ms, -1);
        assert_eq!(
            BrokerConfig::default().log_cleanup.retention_ms,
            604_800_000
        );
        assert!(
            !hours.explicit.contains_key("log.retention.ms"),
            "the derived value is not reported as set"
        );
    }
}
