//! Key choosers as YCSB defines them: uniform, zipfian (scrambled, so the popular keys are
//! spread over the key space), and latest (zipfian over recency: the newest keys are the
//! most popular).

use rand::Rng;

/// YCSB's skew constant.
pub const ZIPFIAN_THETA: f64 = 0.99;

/// 64-bit FNV-1a of a number, as YCSB hashes key numbers into key names and scrambles
/// zipfian draws.
pub fn fnv64(n: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in n.to_le_bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Draws from `[0, n)` with item `i` chosen in proportion to `1 / (i + 1)^theta` (Gray et
/// al., "Quickly generating billion-record synthetic databases"). The item count may grow;
/// the normalising sum grows with it incrementally.
pub struct Zipfian {
    items: u64,
    theta: f64,
    alpha: f64,
    zeta2: f64,
    zetan: f64,
    eta: f64,
}

impl Zipfian {
    pub fn new(items: u64) -> Zipfian {
        let theta = ZIPFIAN_THETA;
        let mut z = Zipfian {
            items: 0,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zeta2: 1.0 + 0.5f64.powf(theta),
            zetan: 0.0,
            eta: 0.0,
        };
        z.grow_to(items.max(1));
        z
    }

    /// Extends the item count to `items` (never shrinks).
    pub fn grow_to(&mut self, items: u64) {
        if items <= self.items {
            return;
        }
        for i in self.items + 1..=items {
            self.zetan += 1.0 / (i as f64).powf(self.theta);
        }
        self.items = items;
        self.eta =
            (1.0 - (2.0 / items as f64).powf(1.0 - self.theta)) / (1.0 - self.zeta2 / self.zetan);
    }

    pub fn next(&self, rng: &mut impl Rng) -> u64 {
        let u: f64 = rng.gen();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.items - 1);
        }
        let v = (self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        v.min(self.items - 1)
    }
}

/// How the key of each operation is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Distribution {
    Uniform,
    Zipfian,
    Latest,
}

/// A per-client chooser of existing key numbers.
pub struct KeyChooser {
    distribution: Distribution,
    zipfian: Zipfian,
}

impl KeyChooser {
    pub fn new(distribution: Distribution, records: u64) -> KeyChooser {
        KeyChooser {
            distribution,
            zipfian: Zipfian::new(records),
        }
    }

    /// A key number below `inserted` (the keys that exist).
    pub fn next(&mut self, rng: &mut impl Rng, inserted: u64) -> u64 {
        let inserted = inserted.max(1);
        match self.distribution {
            Distribution::Uniform => rng.gen_range(0..inserted),
            Distribution::Zipfian => {
                // Popularity by rank, spread over the key space by a hash.
                self.zipfian.grow_to(inserted);
                fnv64(self.zipfian.next(rng)) % inserted
            }
            Distribution::Latest => {
                self.zipfian.grow_to(inserted);
                inserted - 1 - self.zipfian.next(rng)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn zipfian_favours_the_first_items() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let z = Zipfian::new(1000);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[z.next(&mut rng) as usize] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[500]);
        // With theta 0.99 over 1,000 items the first takes about 13%.
        assert!((10_000..16_000).contains(&counts[0]), "{}", counts[0]);
    }

    #[test]
    fn latest_favours_the_newest_keys() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut chooser = KeyChooser::new(Distribution::Latest, 1000);
        let draws: Vec<u64> = (0..10_000).map(|_| chooser.next(&mut rng, 2000)).collect();
        assert!(draws.iter().all(|&k| k < 2000));
        let newest = draws.iter().filter(|&&k| k >= 1990).count();
        assert!(newest > 3000, "{newest}");
    }
}
