//! What a scrape of the broker's metrics reads of one partition (Kafka's `Log` and `Partition` gauges), under one
//! lock of the log and one of the state.

use super::{shortfall, Partition};
use crate::ids::Offset;

/// One partition replica as the metrics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionStats {
    pub size_bytes: u64,
    pub segments: usize,
    pub log_start_offset: Offset,
    pub log_end_offset: Offset,
    pub high_watermark: Offset,
    pub is_leader: bool,
    /// As leader: fewer replicas in sync than assigned (UnderReplicated).
    pub under_replicated: bool,
    /// As leader: fewer in sync than min.insync.replicas (UnderMinIsr): acks=all writes are refused.
    pub under_min_isr: bool,
}

impl Partition {
    pub fn stats(&self) -> PartitionStats {
        let log = self.log();
        let state = self.state();
        let is_leader = state.leader == self.local;
        PartitionStats {
            size_bytes: log.size_in_bytes(),
            segments: log.segment_count(),
            log_start_offset: log.log_start_offset(),
            log_end_offset: log.log_end_offset(),
            high_watermark: self.high_watermark(),
            is_leader,
            under_replicated: is_leader && state.isr.len() < state.replicas.len(),
            under_min_isr: is_leader && shortfall(&log, &state).is_some(),
        }
    }
}
