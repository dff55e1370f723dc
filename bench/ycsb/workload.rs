//! The YCSB core workloads and the commands the YCSB redis binding sends for each operation.
//!
//! A record is a hash of `fieldcount` fields (`field0`..) of `fieldlength` random bytes
//! under `user<fnv64(n)>`, and its key is a member of the sorted set `_indices` scored by a
//! hash of the key, which scans walk:
//! - insert: `HSET key field0 v0 .. fieldN vN` and `ZADD _indices <hash(key)> key`
//! - read: `HGETALL key` (or `HMGET key` of some fields)
//! - update: `HSET key fieldI v` (one field)
//! - scan: `ZRANGEBYSCORE _indices <hash(start)> +inf LIMIT 0 <len>`, then `HGETALL` of each
//! - read-modify-write: a read, then an update of the same key
//!
//! Workload `m` is not YCSB's: memtier_benchmark's default mix, 1 `SET` to 10 `GET`s of
//! string keys `memtier-<n>` chosen uniformly among the record numbers, values of
//! `fieldlength` bytes, nothing loaded first (a `GET` of a key not yet set finds nothing).

use rand::Rng;

use crate::distribution::{fnv64, Distribution};

pub const INDEX_KEY: &str = "_indices";

/// One kind of operation, as YCSB reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Insert,
    Read,
    Update,
    Scan,
    ReadModifyWrite,
    /// Workload `m`: a string `SET` / `GET`.
    Set,
    Get,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Insert => "INSERT",
            Op::Read => "READ",
            Op::Update => "UPDATE",
            Op::Scan => "SCAN",
            Op::ReadModifyWrite => "READ-MODIFY-WRITE",
            Op::Set => "SET",
            Op::Get => "GET",
        }
    }
}

/// A core workload: its operation mix (weights sum to 1) and its key distribution.
pub struct Workload {
    pub mix: &'static [(Op, f64)],
    pub distribution: Distribution,
}

/// YCSB's core workloads A–F, and `m` (memtier_benchmark's default SET:GET mix).
pub fn core(name: char) -> Option<Workload> {
    use Op::*;
    let (mix, distribution): (&'static [(Op, f64)], Distribution) = match name {
        'a' => (&[(Read, 0.5), (Update, 0.5)], Distribution::Zipfian),
        'b' => (&[(Read, 0.95), (Update, 0.05)], Distribution::Zipfian),
        'c' => (&[(Read, 1.0)], Distribution::Zipfian),
        'd' => (&[(Read, 0.95), (Insert, 0.05)], Distribution::Latest),
        'e' => (&[(Scan, 0.95), (Insert, 0.05)], Distribution::Zipfian),
        'f' => (
            &[(Read, 0.5), (ReadModifyWrite, 0.5)],
            Distribution::Zipfian,
        ),
        'm' => (
            &[(Get, 10.0 / 11.0), (Set, 1.0 / 11.0)],
            Distribution::Uniform,
        ),
        _ => return None,
    };
    Some(Workload { mix, distribution })
}

impl Workload {
    pub fn choose(&self, rng: &mut impl Rng) -> Op {
        let mut x: f64 = rng.gen();
        for (op, weight) in self.mix {
            if x < *weight {
                return *op;
            }
            x -= weight;
        }
        self.mix[self.mix.len() - 1].0
    }
}

/// Whether the workload works on strings of its own and needs no loaded records.
pub fn needs_no_load(name: char) -> bool {
    name == 'm'
}

/// The string key of workload `m` numbered `n`.
pub fn string_key(n: u64) -> String {
    format!("memtier-{n}")
}

/// The key name of record `n`.
pub fn key_name(n: u64) -> String {
    format!("user{}", fnv64(n))
}

/// The score of a key in the index set (a 32-bit hash, so scores are exact doubles).
pub fn index_score(key: &str) -> u64 {
    key.bytes()
        .fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        })
        .into()
}

/// Field values: slices of one buffer of random printable bytes, at random offsets.
pub struct Values {
    pool: Vec<u8>,
    length: usize,
}

impl Values {
    pub fn new(length: usize, rng: &mut impl Rng) -> Values {
        let pool = (0..(1 << 20) + length)
            .map(|_| rng.gen_range(b' '..=b'~'))
            .collect();
        Values { pool, length }
    }

    pub fn next(&self, rng: &mut impl Rng) -> &[u8] {
        let at = rng.gen_range(0..self.pool.len() - self.length);
        &self.pool[at..at + self.length]
    }
}
