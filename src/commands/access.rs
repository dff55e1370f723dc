//! Approximate per-key access tracking for OBJECT IDLETIME and OBJECT FREQ.
//!
//! Redis keeps an LRU clock or an LFU counter in every object header. Basalt keeps values on
//! disk, so it tracks access in fixed arrays indexed by a hash of (db, key): memory stays
//! bounded whatever the key count; two keys that share a bucket share their numbers (an idle
//! time can then read lower than the truth). The LFU counter follows Redis's logarithmic
//! increment and per-minute decay.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};

use rand::Rng;

use crate::clock;

const BUCKETS: usize = 1 << 20;
/// Redis's LFU_INIT_VAL.
const LFU_INIT: u32 = 5;
/// Redis's defaults for lfu-log-factor and lfu-decay-time (those settings are reported but
/// not acted on; docs/CONFIG.md lists them).
const LFU_LOG_FACTOR: u32 = 10;
const LFU_DECAY_MINUTES: u32 = 1;

pub struct AccessTracker {
    hasher: ahash::RandomState,
    /// Seconds since the epoch of the last access.
    last_access_secs: Vec<AtomicU32>,
    /// `minutes_at_last_decay << 8 | counter`.
    lfu: Vec<AtomicU32>,
}

impl Default for AccessTracker {
    fn default() -> Self {
        AccessTracker {
            hasher: ahash::RandomState::with_seeds(1, 2, 3, 4),
            last_access_secs: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            lfu: (0..BUCKETS).map(|_| AtomicU32::new(LFU_INIT)).collect(),
        }
    }
}

impl AccessTracker {
    fn bucket(&self, db: u8, key: &[u8]) -> usize {
        let mut h = self.hasher.build_hasher();
        h.write_u8(db);
        h.write(key);
        (h.finish() as usize) & (BUCKETS - 1)
    }

    /// Records an access at `now_ms`; the LFU counter only moves under an LFU policy (as in
    /// Redis, where the object header holds one or the other).
    pub fn touch(&self, db: u8, key: &[u8], now_ms: u64, lfu: bool) {
        let b = self.bucket(db, key);
        if !lfu {
            self.last_access_secs[b].store((now_ms / 1000) as u32, Ordering::Relaxed);
            return;
        }
        let now = now_ms;
        let minutes = ((now / 60_000) & 0xffff) as u32;
        let packed = self.lfu[b].load(Ordering::Relaxed);
        let mut counter = decayed(packed, minutes, LFU_DECAY_MINUTES);
        if counter < 255 {
            let base = counter.saturating_sub(LFU_INIT) as f64;
            let p = 1.0 / (base * f64::from(LFU_LOG_FACTOR) + 1.0);
            if rand::thread_rng().gen::<f64>() < p {
                counter += 1;
            }
        }
        self.lfu[b].store((minutes << 8) | counter, Ordering::Relaxed);
    }

    pub fn idle_secs(&self, db: u8, key: &[u8]) -> u64 {
        let last = self.last_access_secs[self.bucket(db, key)].load(Ordering::Relaxed);
        (clock::now_ms() / 1000).saturating_sub(u64::from(last))
    }

    pub fn frequency(&self, db: u8, key: &[u8]) -> u32 {
        let minutes = ((clock::now_ms() / 60_000) & 0xffff) as u32;
        decayed(
            self.lfu[self.bucket(db, key)].load(Ordering::Relaxed),
            minutes,
            LFU_DECAY_MINUTES,
        )
    }
}

fn decayed(packed: u32, now_minutes: u32, decay_minutes: u32) -> u32 {
    let counter = packed & 0xff;
    let last = packed >> 8;
    let elapsed = if now_minutes >= last {
        now_minutes - last
    } else {
        65535 - last + now_minutes
    };
    let periods = elapsed.checked_div(decay_minutes).unwrap_or(0);
    counter.saturating_sub(periods)
}
