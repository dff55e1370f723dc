//! A db_bench-style comparison of Basalt's LSM engine with fjall and sled, in one run, on the
//! same keys (16 bytes), values (100 bytes) and durability (no fsync per write).
//!
//! `cargo run --release --features bench-peers --bin db_bench -- --num 1000000 [--engines basalt,fjall,sled]`
//! (`basalt-lz4` is Basalt with LZ4 on the bottom level too, instead of zstd)
//!
//! Prints a Markdown table: ops/s per workload and engine, each engine's ratio to Basalt,
//! space amplification (bytes on disk / live data) and write amplification (bytes passed to
//! write() / bytes the workload wrote).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::Instant;

use basalt::storage::lsm::{wal::SyncPolicy, LsmEngine, LsmOptions};
use basalt::storage::{Engine, KeyRange, WriteBatch};
use bytes::Bytes;

/// The allocator the server runs with, for every engine in the comparison alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const VALUE_BYTES: usize = 100;

trait Store {
    fn put(&mut self, key: &[u8], value: &[u8]);
    fn get(&mut self, key: &[u8]) -> bool;
    fn delete(&mut self, key: &[u8]);
    /// Reads up to `n` entries from `start`; returns how many.
    fn scan(&mut self, start: &[u8], n: usize) -> usize;
    /// Waits for background work and makes data durable.
    fn settle(&mut self);
}

struct Basalt(LsmEngine);

impl Store for Basalt {
    fn put(&mut self, key: &[u8], value: &[u8]) {
        let mut b = WriteBatch::new();
        b.put(Bytes::copy_from_slice(key), Bytes::copy_from_slice(value));
        self.0.write(b).expect("basalt put");
    }
    fn get(&mut self, key: &[u8]) -> bool {
        self.0.get(key).expect("basalt get").is_some()
    }
    fn delete(&mut self, key: &[u8]) {
        let mut b = WriteBatch::new();
        b.delete(Bytes::copy_from_slice(key));
        self.0.write(b).expect("basalt delete");
    }
    fn scan(&mut self, start: &[u8], n: usize) -> usize {
        let range = KeyRange {
            start: Bound::Included(Bytes::copy_from_slice(start)),
            end: Bound::Unbounded,
        };
        self.0.scan(&range, false, n).expect("basalt scan").len()
    }
    fn settle(&mut self) {
        self.0.flush().expect("basalt flush");
        self.0.wait_idle();
    }
}

struct Fjall(fjall::Database, fjall::Keyspace);

impl Store for Fjall {
    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.1.insert(key, value).expect("fjall put");
    }
    fn get(&mut self, key: &[u8]) -> bool {
        self.1.get(key).expect("fjall get").is_some()
    }
    fn delete(&mut self, key: &[u8]) {
        self.1.remove(key).expect("fjall delete");
    }
    fn scan(&mut self, start: &[u8], n: usize) -> usize {
        let mut read = 0;
        for guard in self.1.range(start..).take(n) {
            let (_key, _value) = guard.into_inner().expect("fjall scan");
            read += 1;
        }
        read
    }
    fn settle(&mut self) {
        self.0
            .persist(fjall::PersistMode::SyncAll)
            .expect("fjall persist");
    }
}

struct Sled(sled::Db);

impl Store for Sled {
    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.0.insert(key, value).expect("sled put");
    }
    fn get(&mut self, key: &[u8]) -> bool {
        self.0.get(key).expect("sled get").is_some()
    }
    fn delete(&mut self, key: &[u8]) {
        self.0.remove(key).expect("sled delete");
    }
    fn scan(&mut self, start: &[u8], n: usize) -> usize {
        let mut read = 0;
        for entry in self.0.range(start..).take(n) {
            let (_key, _value) = entry.expect("sled scan");
            read += 1;
        }
        read
    }
    fn settle(&mut self) {
        self.0.flush().expect("sled flush");
    }
}

fn open(engine: &str, dir: &Path) -> Box<dyn Store> {
    match engine {
        "basalt" | "basalt-lz4" => {
            let mut opts = LsmOptions {
                sync: SyncPolicy::No,
                ..LsmOptions::default()
            };
            // The default compresses the bottom level with zstd; `basalt-lz4` uses LZ4 on
            // every level, as fjall does by default.
            if engine == "basalt-lz4" {
                opts.bottom_compression = basalt::storage::lsm::sstable::Compression::Lz4;
            }
            Box::new(Basalt(LsmEngine::open(dir, opts).expect("open basalt")))
        }
        "fjall" => {
            let db = fjall::Database::builder(dir).open().expect("open fjall");
            let ks = db
                .keyspace("bench", fjall::KeyspaceCreateOptions::default)
                .expect("fjall keyspace");
            Box::new(Fjall(db, ks))
        }
        "sled" => Box::new(Sled(sled::open(dir).expect("open sled"))),
        other => panic!("unknown engine {other}"),
    }
}

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(b"userkey_");
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

fn value(i: u64) -> Vec<u8> {
    let mut v = vec![0u8; VALUE_BYTES];
    let mut s = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for (n, b) in v.iter_mut().enumerate() {
        // Half compressible, half random, like db_bench's default compression ratio 0.5.
        if n % 2 == 0 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *b = s as u8;
        } else {
            *b = b'v';
        }
    }
    v
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("wchar: ")
                    .and_then(|v| v.trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            total += if p.is_dir() {
                dir_bytes(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            };
        }
    }
    total
}

fn timed(ops: u64, f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    ops as f64 / start.elapsed().as_secs_f64()
}

/// Runs every workload on one engine; returns ops/s by workload plus amplification figures.
fn run_engine(engine: &str, num: u64, root: &Path) -> BTreeMap<&'static str, f64> {
    let mut results = BTreeMap::new();
    let record = (16 + VALUE_BYTES) as f64;
    // fillseq on its own directory.
    let dir: PathBuf = root.join(format!("{engine}-seq"));
    {
        let mut s = open(engine, &dir);
        results.insert(
            "fillseq",
            timed(num, || (0..num).for_each(|i| s.put(&key(i), &value(i)))),
        );
        s.settle();
    }
    let _ = std::fs::remove_dir_all(&dir);
    let dir = root.join(engine);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let written_before = written_bytes();
    let mut s = open(engine, &dir);
    results.insert(
        "fillrandom",
        timed(num, || {
            (0..num).for_each(|_| {
                let i = rng.below(num);
                s.put(&key(i), &value(i))
            })
        }),
    );
    results.insert(
        "overwrite",
        timed(num, || {
            (0..num).for_each(|_| {
                let i = rng.below(num);
                s.put(&key(i), &value(i + 1))
            })
        }),
    );
    s.settle();
    let written = written_bytes() - written_before;
    results.insert("write_amp", written as f64 / (2.0 * num as f64 * record));
    let live = (0..num).filter(|&i| s.get(&key(i))).count() as f64;
    results.insert("space_amp", dir_bytes(&dir) as f64 / (live * record));
    drop(s);
    // Cold cache: a fresh open; hot: the same reads again.
    let mut s = open(engine, &dir);
    let reads = num / 2;
    results.insert(
        "readrandom_cold",
        timed(reads, || {
            (0..reads).for_each(|_| {
                s.get(&key(rng.below(num)));
            })
        }),
    );
    results.insert(
        "readrandom_hot",
        timed(reads, || {
            (0..reads).for_each(|_| {
                s.get(&key(rng.below(num / 100 + 1)));
            })
        }),
    );
    results.insert(
        "readseq",
        timed(num, || {
            s.scan(&key(0), num as usize);
        }),
    );
    let seeks = num / 10;
    results.insert(
        "seekrandom_next10",
        timed(seeks, || {
            (0..seeks).for_each(|_| {
                s.scan(&key(rng.below(num)), 11);
            })
        }),
    );
    results.insert(
        "deleterandom",
        timed(seeks, || {
            (0..seeks).for_each(|_| s.delete(&key(rng.below(num))))
        }),
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
    results
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let num: u64 = arg("--num")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let engines = arg("--engines").unwrap_or_else(|| "basalt,fjall,sled".into());
    let root = std::env::temp_dir().join(format!("basalt-db-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("bench dir");
    let engines: Vec<&str> = engines.split(',').collect();
    let results: Vec<(&str, BTreeMap<&str, f64>)> = engines
        .iter()
        .map(|e| (*e, run_engine(e, num, &root)))
        .collect();
    let _ = std::fs::remove_dir_all(&root);
    println!(
        "{num} keys of 16 bytes, values of {VALUE_BYTES} bytes, no fsync per write, one thread\n"
    );
    print!("| workload |");
    for (e, _) in &results {
        print!(" {e} |");
    }
    for (e, _) in results.iter().skip(1) {
        print!(" {e}/basalt |");
    }
    println!();
    println!("|---|{}", "---:|".repeat(results.len() * 2 - 1));
    let workloads = [
        "fillseq",
        "fillrandom",
        "overwrite",
        "readrandom_cold",
        "readrandom_hot",
        "readseq",
        "seekrandom_next10",
        "deleterandom",
        "space_amp",
        "write_amp",
    ];
    for w in workloads {
        print!("| {w} |");
        for (_, r) in &results {
            let v = r.get(w).copied().unwrap_or(0.0);
            if w.ends_with("_amp") {
                print!(" {v:.2} |");
            } else {
                print!(" {v:.0} |");
            }
        }
        let base = results[0].1.get(w).copied().unwrap_or(1.0);
        for (_, r) in results.iter().skip(1) {
            print!(" {:.2} |", r.get(w).copied().unwrap_or(0.0) / base);
        }
        println!();
    }
}
