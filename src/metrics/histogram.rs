//! A latency histogram cheap enough to update on every command: power-of-two buckets of
//! microseconds, one atomic add per bucket hit and one for the sum.
//!
//! Bucket `i` counts observations of at most `2^i` µs (bucket 0: up to 1 µs); the last
//! bucket counts everything longer. Read by the Prometheus exposition (cumulative buckets
//! with upper bounds in seconds).

use std::sync::atomic::{AtomicU64, Ordering};

/// Buckets with a finite bound: up to 2^26 µs (about 67 s); one more counts the rest.
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
    if us <= 1 {
        return 0;
    }
    // The smallest i with 2^i >= us.
    let i = 64 - (us - 1).leading_zeros() as usize;
    i.min(FINITE_BUCKETS)
}

/// The upper bound of finite bucket `i`, in microseconds.
pub fn bucket_bound_us(i: usize) -> u64 {
    1 << i
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
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(2), 1);
        assert_eq!(bucket_of(3), 2);
        assert_eq!(bucket_of(4), 2);
        assert_eq!(bucket_of(5), 3);
        assert_eq!(bucket_of(1 << 26), 26);
        assert_eq!(bucket_of((1 << 26) + 1), FINITE_BUCKETS);
        assert_eq!(bucket_of(u64::MAX), FINITE_BUCKETS);
        let h = Histogram::default();
        for us in [1, 3, 4, 1000, u64::MAX / 2] {
            h.observe_us(us);
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 5);
        assert_eq!((s.buckets[0], s.buckets[2], s.buckets[10]), (1, 2, 1));
        assert_eq!(s.buckets[FINITE_BUCKETS], 1);
        h.reset();
        assert_eq!(h.snapshot().count(), 0);
    }
}
