//! A memtable's bloom filter over the user keys and key-group prefixes written to it, so a
//! point read, or a scan within one group (`prefix.rs`), passes over a memtable that holds
//! none of them without searching its skiplist. Blocked: every probe of a key falls in one
//! 64-byte line, so a check costs one cache miss. Bits are set with atomic ORs by the one
//! writer and read concurrently; a bit once set stays set.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bits tested per key (6 probes in a 512-bit line: about 1% false positives at 10 bits a key).
const PROBES: u32 = 6;
const LINE_WORDS: usize = 8;

pub struct MemFilter {
    lines: Box<[[AtomicU64; LINE_WORDS]]>,
}

impl MemFilter {
    /// A filter of about `bits` bits (at least one line).
    pub fn with_bits(bits: usize) -> MemFilter {
        let lines = bits.div_ceil(64 * LINE_WORDS).max(1);
        MemFilter {
            lines: (0..lines)
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
        }
    }

    /// The line and the bit positions in it of a key hash (a `bloom::hash64`).
    fn probes(&self, hash: u64) -> (&[AtomicU64; LINE_WORDS], impl Iterator<Item = u32>) {
        let line = &self.lines[(hash as u32 as usize) % self.lines.len()];
        let mixed = hash.rotate_left(32).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (
            line,
            (0..PROBES).map(move |i| (mixed >> (i * 9)) as u32 & 511),
        )
    }

    pub fn insert(&self, hash: u64) {
        let (line, bits) = self.probes(hash);
        for bit in bits {
            line[(bit / 64) as usize].fetch_or(1 << (bit % 64), Ordering::Relaxed);
        }
    }

    /// False only when the key was never inserted.
    pub fn may_contain(&self, hash: u64) -> bool {
        let (line, mut bits) = self.probes(hash);
        bits.all(|bit| line[(bit / 64) as usize].load(Ordering::Relaxed) & 1 << (bit % 64) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::lsm::bloom::hash64;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let filter = MemFilter::with_bits(100_000);
        for i in 0..10_000u32 {
            filter.insert(hash64(format!("key:{i}").as_bytes()));
        }
        assert!((0..10_000u32).all(|i| filter.may_contain(hash64(format!("key:{i}").as_bytes()))));
        let false_positives = (0..10_000u32)
            .filter(|i| filter.may_contain(hash64(format!("other:{i}").as_bytes())))
            .count();
        assert!(
            false_positives < 300,
            "{false_positives} false positives in 10,000"
        );
    }
}
