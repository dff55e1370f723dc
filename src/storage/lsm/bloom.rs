//! A bloom filter over user keys, stable on disk.
//!
//! ## Format
//! `bits: [u8; m/8] | probes:u8`. Probe `i` of a key tests bit `(h1 + i·h2) mod m`, where
//! `h1`/`h2` are the halves of [`hash64`] — a fixed function (FNV-1a followed by the
//! murmur3 finaliser), so filters written by one build are read correctly by every other.

/// Bits per key (~1% false positives with 7 probes).
pub const BITS_PER_KEY: usize = 10;

/// A deterministic 64-bit hash; part of the on-disk format, never change it.
pub fn hash64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Builds the filter block for a set of key hashes.
pub fn build(hashes: &[u64], bits_per_key: usize) -> Vec<u8> {
    let probes = ((bits_per_key as f64) * 0.69).round().clamp(1.0, 30.0) as u8;
    let bits = (hashes.len() * bits_per_key).max(64);
    let bytes = bits.div_ceil(8);
    let bits = bytes * 8;
    let mut out = vec![0u8; bytes + 1];
    for &h in hashes {
        let (h1, h2) = (h as u32 as u64, h >> 32);
        for i in 0..u64::from(probes) {
            let bit = (h1.wrapping_add(i.wrapping_mul(h2)) % bits as u64) as usize;
            out[bit / 8] |= 1 << (bit % 8);
        }
    }
    out[bytes] = probes;
    out
}

/// Whether the key with hash `h` may be in the set the filter was built from. A malformed
/// filter answers "may be" (it never hides a key).
pub fn may_contain(filter: &[u8], h: u64) -> bool {
    let Some((&probes, bits)) = filter.split_last() else {
        return true;
    };
    if bits.is_empty() || probes == 0 || probes > 30 {
        return true;
    }
    let nbits = bits.len() as u64 * 8;
    let (h1, h2) = (h as u32 as u64, h >> 32);
    (0..u64::from(probes)).all(|i| {
        let bit = (h1.wrapping_add(i.wrapping_mul(h2)) % nbits) as usize;
        bits[bit / 8] & (1 << (bit % 8)) != 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let keys: Vec<Vec<u8>> = (0..10_000u32)
            .map(|i| format!("key:{i}").into_bytes())
            .collect();
        let hashes: Vec<u64> = keys.iter().map(|k| hash64(k)).collect();
        let filter = build(&hashes, BITS_PER_KEY);
        assert!(keys.iter().all(|k| may_contain(&filter, hash64(k))));
        let false_positives = (0..10_000u32)
            .filter(|i| may_contain(&filter, hash64(format!("other:{i}").as_bytes())))
            .count();
        assert!(
            false_positives < 250,
            "{false_positives} false positives in 10,000"
        );
    }

    #[test]
    fn hash_is_stable() {
        // Part of the on-disk format: these values must never change.
        assert_eq!(hash64(b""), 0xefd01f60ba992926);
        assert_eq!(hash64(b"basalt"), 0xb2cdb8834abcc876);
    }
}
