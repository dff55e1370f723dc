//! A latency histogram cheap enough to update on every command: power-of-two buckets, one
//! atomic add per bucket hit and one for the sum.
//!
//! Bucket `i` counts observations of at most `1024 · 2^i` ns — the bounds of Redis's
//! LATENCY HISTOGRAM, which it reports as `bound / 1000` µs (1, 2, 4, 8, 16, 32, 65, 131…);
//! the last bucket counts everything longer (about 69 s and up). Read by LATENCY
//! HISTOGRAM, INFO latencystats and the Prometheus exposition.

use std::sync::atomic::{AtomicU64, Ordering};

/// Buckets with a finite bound: up to 1024 · 2^26 ns (about 69 s); one more counts the rest.
pub const FINITE_BUCKETS: usize = 27;

#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; FINITE_BUCKETS + 1],
    sum_us: AtomicU64,
}

/// A histogram's counts at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Observations per bucket (not cumulative); the last one has no upper bound.
    pub buckets: [u64; FINITE_BUCKETS + 1],
    pub sum_us: u64,
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// The bucket an observation of `us` microseconds falls in.
fn bucket_of(us: u64) -> usize {
    let ns = us.saturating_mul(1000);
    if ns <= 1024 {
        return 0;
    }
    // The smallest i with 1024 · 2^i >= ns.
    let i = 64 - ((ns - 1) >> 10).leading_zeros() as usize;
    i.min(FINITE_BUCKETS)
}

/// The upper bound of finite bucket `i`, in nanoseconds.
pub fn bucket_bound_ns(i: usize) -> u64 {
    1024 << i
}

impl Histogram {
    pub fn observe_us(&self, us: u64) {
        self.buckets[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }

    pub fn reset(&self) {
        for b in &self.buckets {
            b.store(0, Ordering::Relaxed);
        }
        self.sum_us.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_smallest_bucket_that_bounds_them() {
        // Bounds 1.024, 2.048, 4.096, 8.192 … µs.
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(2), 1);
        assert_eq!(bucket_of(3), 2);
        assert_eq!(bucket_of(4), 2);
        assert_eq!(bucket_of(5), 3);
        assert_eq!(bucket_of(12), 4); // Redis reports 12 µs in its bucket 16
        assert_eq!(bucket_of(16), 4);
        assert_eq!(bucket_of(17), 5);
        assert_eq!(bucket_of(1000), 10); // under 1,048.576 µs
        assert_eq!(bucket_of(1049), 11);
        assert_eq!(bucket_of(68_719_476), 26);
        assert_eq!(bucket_of(68_719_477), FINITE_BUCKETS);
        assert_eq!(bucket_of(u64::MAX), FINITE_BUCKETS);
        let h = Histogram::default();
        for us in [1, 3, 4, 1000, u64::MAX / 2] {
            h.observe_us(us);
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 5);
        assert_eq!((s.buckets[0], s.buckets[2], s.buckets[10]), (1, 2, 1));
        assert_eq!(bucket_bound_ns(5) / 1000, 32);
        assert_eq!(bucket_bound_ns(6) / 1000, 65);
        assert_eq!(s.buckets[FINITE_BUCKETS], 1);
        h.reset();
        assert_eq!(h.snapshot().count(), 0);
    }
}
