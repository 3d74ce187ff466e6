//! A log-linear latency histogram: fixed memory whatever the record count, and every value is
//! reported to within 1/64 (1.6%) of what was recorded, which is finer than run-to-run noise.

/// Each power of two is split into this many equal sub-buckets.
const SUB_BUCKET_BITS: u32 = 6;
const SUB_BUCKETS: usize = 1 << SUB_BUCKET_BITS;
/// Enough buckets for any u64 value.
const BUCKETS: usize = SUB_BUCKETS * (64 - SUB_BUCKET_BITS as usize + 1);

pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    pub fn record(&mut self, value: u64) {
        self.counts[bucket_of(value)] += 1;
        self.total += 1;
        self.max = self.max.max(value);
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The smallest value that `quantile` (0.0..=1.0) of the recorded values do not exceed,
    /// rounded up to its bucket's upper edge (never above the true maximum). 0 when empty.
    pub fn quantile(&self, quantile: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        // The rank is at least 1 so that quantile 0 means the smallest value recorded.
        let rank = ((quantile.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return bucket_upper(bucket).min(self.max);
            }
        }
        self.max
    }
}

fn bucket_of(value: u64) -> usize {
    if value < SUB_BUCKETS as u64 {
        return value as usize;
    }
    let top_bit = 63 - value.leading_zeros();
    let shift = top_bit - SUB_BUCKET_BITS;
    // In [SUB_BUCKETS, 2 * SUB_BUCKETS): the leading one and the next SUB_BUCKET_BITS bits.
    let mantissa = (value >> shift) as usize;
    shift as usize * SUB_BUCKETS + mantissa
}

fn bucket_upper(bucket: usize) -> u64 {
    if bucket < SUB_BUCKETS {
        return bucket as u64;
    }
    let shift = (bucket / SUB_BUCKETS - 1) as u32;
    let mantissa = (bucket % SUB_BUCKETS + SUB_BUCKETS) as u64;
    let lower = mantissa << shift;
    lower + ((1u64 << shift) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_u64() {
        for value in [0, 1, 63, 64, 65, 127, 128, 129, 1000, 123_456_789, u64::MAX] {
            let bucket = bucket_of(value);
            assert!(bucket < BUCKETS, "{value}");
            assert!(bucket_upper(bucket) >= value, "{value}");
            if bucket > 0 {
                assert!(bucket_upper(bucket - 1) < value, "{value}");
            }
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_within_bucket_precision() {
        let mut histogram = Histogram::new();
        for value in 1..=100_000u64 {
            histogram.record(value);
        }
        assert_eq!(histogram.total, 100_000);
        assert_eq!(histogram.max(), 100_000);
        for (quantile, exact) in [(0.5, 50_000.0), (0.99, 99_000.0), (0.999, 99_900.0)] {
            let got = histogram.quantile(quantile) as f64;
            assert!(
                got >= exact && got <= exact * (1.0 + 1.0 / 64.0),
                "{quantile}: {got}"
            );
        }
        assert_eq!(histogram.quantile(1.0), 100_000);
        assert_eq!(histogram.quantile(0.0), 1);
    }

    #[test]
    fn empty_histogram_reports_zero() {
        assert_eq!(Histogram::new().quantile(0.99), 0);
    }
}
