//! What a leader knows of each follower of a partition (Kafka's `Replica` in `Partition.scala`): how far its log
//! reaches, learnt from the offsets it fetches at, and when it was last caught up, which decides ISR membership.
//!
//! A follower that fetches at or beyond the leader's log end offset is caught up at that moment; one that fetches at
//! or beyond where the leader's log ended at its previous fetch was caught up as of that previous fetch (it has since
//! read everything the leader had then). A follower not caught up for `replica.lag.time.max.ms` leaves the ISR; one
//! whose log reaches the HighWatermark (and the current leader epoch's start) joins it.

use crate::ids::Offset;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteReplica {
    /// The follower's log end offset: its last fetch offset. `None` until it fetches from this leader.
    pub log_end_offset: Option<Offset>,
    /// When the follower last had everything the leader had.
    pub last_caught_up_time_ms: i64,
    last_fetch_time_ms: i64,
    /// The leader's log end offset at the follower's last fetch.
    last_fetch_leader_log_end_offset: Offset,
}

impl RemoteReplica {
    /// A follower as a new leader first sees it: ISR members count as caught up now, so that they get a full
    /// `replica.lag.time.max.ms` to fetch before they are dropped.
    pub fn new(in_isr: bool, now_ms: i64) -> RemoteReplica {
        RemoteReplica {
            log_end_offset: None,
            last_caught_up_time_ms: if in_isr { now_ms } else { 0 },
            last_fetch_time_ms: 0,
            last_fetch_leader_log_end_offset: Offset(0),
        }
    }

    /// Notes a fetch at `fetch_offset` while the leader's log ends at `leader_log_end_offset`.
    pub fn on_fetch(&mut self, fetch_offset: Offset, leader_log_end_offset: Offset, now_ms: i64) {
        if fetch_offset >= leader_log_end_offset {
            self.last_caught_up_time_ms = self.last_caught_up_time_ms.max(now_ms);
        } else if fetch_offset >= self.last_fetch_leader_log_end_offset {
            self.last_caught_up_time_ms = self.last_caught_up_time_ms.max(self.last_fetch_time_ms);
        }
        self.log_end_offset = Some(fetch_offset);
        self.last_fetch_time_ms = now_ms;
        self.last_fetch_leader_log_end_offset = leader_log_end_offset;
    }

    /// Whether an ISR member has fallen out: not caught up for longer than `lag_time_max_ms`.
    pub fn is_lagging(&self, now_ms: i64, lag_time_max_ms: i64) -> bool {
        now_ms.saturating_sub(self.last_caught_up_time_ms) > lag_time_max_ms
    }

    /// Whether a follower outside the ISR may join it: its log reaches the HighWatermark and the start of the
    /// leader's current epoch (so that it holds nothing from an earlier leader that this one truncated away).
    pub fn may_join_isr(&self, high_watermark: Offset, epoch_start_offset: Offset) -> bool {
        self.log_end_offset
            .is_some_and(|end| end >= high_watermark && end >= epoch_start_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caught_up_at_the_log_end_or_with_what_the_previous_fetch_saw() {
        let mut follower = RemoteReplica::new(false, 1_000);
        assert_eq!(follower.last_caught_up_time_ms, 0);
        follower.on_fetch(Offset(5), Offset(10), 2_000);
        assert_eq!(follower.last_caught_up_time_ms, 0, "behind the leader");
        // It read up to where the leader was at its previous fetch: caught up as of that fetch.
        follower.on_fetch(Offset(10), Offset(12), 3_000);
        assert_eq!(follower.last_caught_up_time_ms, 2_000);
        follower.on_fetch(Offset(12), Offset(12), 4_000);
        assert_eq!(follower.last_caught_up_time_ms, 4_000);
        assert!(!follower.is_lagging(30_000, 30_000));
        assert!(follower.is_lagging(34_001, 30_000));
    }

    #[test]
    fn joins_the_isr_once_it_reaches_the_high_watermark_and_the_epoch_start() {
        let mut follower = RemoteReplica::new(false, 0);
        assert!(
            !follower.may_join_isr(Offset(0), Offset(0)),
            "never fetched"
        );
        follower.on_fetch(Offset(7), Offset(9), 1);
        assert!(!follower.may_join_isr(Offset(8), Offset(0)));
        assert!(!follower.may_join_isr(Offset(7), Offset(8)));
        assert!(follower.may_join_isr(Offset(7), Offset(7)));
        assert!(RemoteReplica::new(true, 50).last_caught_up_time_ms == 50);
    }
}
