//! A YCSB-style load generator for servers that speak the Redis protocol (Basalt and
//! redis-server alike), over the `redis` client crate: closed-loop clients, one connection
//! each, the YCSB redis binding's command shapes (`workload.rs`), YCSB's key distributions
//! (`distribution.rs`), and latency histograms per operation.
//!
//! ```text
//! cargo run --release --example ycsb -- --port 6379 --phase load --records 100000
//! cargo run --release --example ycsb -- --port 6379 --phase run --workload b --seconds 20
//! ```
//! `bench/ycsb.py` runs the phases against redis-server and Basalt side by side and prints
//! one table.

mod distribution;
mod workload;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::aio::MultiplexedConnection;
use redis::Value;

use distribution::{Distribution, KeyChooser};

/// The server's allocator: the generator's own share of the machine stays small.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use workload::{index_score, key_name, string_key, Op, Values, Workload, INDEX_KEY};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    /// Insert `--records` records.
    Load,
    /// Run `--workload` over the loaded records.
    Run,
}

#[derive(Parser, Debug)]
#[command(about = "YCSB-style load for Redis-protocol servers")]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 6379)]
    port: u16,
    #[arg(long, value_enum, default_value_t = Phase::Run)]
    phase: Phase,
    /// Core workload a–f, or m (memtier_benchmark's default SET:GET mix; no load phase).
    #[arg(long, default_value_t = 'a')]
    workload: char,
    /// Concurrent clients, one connection each.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Records loaded (the run phase chooses among these and those it inserts).
    #[arg(long, default_value_t = 100_000)]
    records: u64,
    #[arg(long, default_value_t = 10)]
    field_count: usize,
    #[arg(long, default_value_t = 100)]
    field_length: usize,
    /// Read this many fields with HMGET instead of all of them with HGETALL.
    #[arg(long)]
    read_fields: Option<usize>,
    /// Scans return 1..=this many records (uniformly).
    #[arg(long, default_value_t = 100)]
    max_scan_length: u64,
    /// Overrides the workload's key distribution.
    #[arg(long, value_enum)]
    distribution: Option<Distribution>,
    /// How long the run phase lasts.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Stop the run phase after this many operations instead.
    #[arg(long)]
    operations: Option<u64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// What every client shares.
struct Shared {
    args: Args,
    workload: Workload,
    /// The next record number to insert.
    next_insert: AtomicU64,
    /// Records whose insert completed (reads choose below it).
    inserted: AtomicU64,
    /// Operations started (for `--operations`).
    started: AtomicU64,
    stop: AtomicBool,
}

/// One client's results.
#[derive(Default)]
struct Tally {
    latency_us: BTreeMap<Op, Histogram<u64>>,
    not_found: BTreeMap<Op, u64>,
}

impl Tally {
    fn record(&mut self, op: Op, took: Duration, found: bool) {
        let h = self
            .latency_us
            .entry(op)
            .or_insert_with(|| Histogram::new_with_bounds(1, 60_000_000, 3).expect("bounds"));
        h.saturating_record(took.as_micros() as u64);
        if !found {
            *self.not_found.entry(op).or_default() += 1;
        }
    }

    fn merge(&mut self, other: Tally) {
        for (op, h) in other.latency_us {
            match self.latency_us.get_mut(&op) {
                Some(mine) => mine.add(&h).expect("same bounds"),
                None => {
                    self.latency_us.insert(op, h);
                }
            }
        }
        for (op, n) in other.not_found {
            *self.not_found.entry(op).or_default() += n;
        }
    }
}

struct Client {
    shared: Arc<Shared>,
    con: MultiplexedConnection,
    rng: StdRng,
    keys: KeyChooser,
    values: Arc<Values>,
}

impl Client {
    fn field(&mut self) -> String {
        format!(
            "field{}",
            self.rng.gen_range(0..self.shared.args.field_count)
        )
    }

    fn existing_key(&mut self) -> String {
        key_name(self.existing_number())
    }

    fn existing_number(&mut self) -> u64 {
        let inserted = self.shared.inserted.load(Ordering::Relaxed);
        self.keys.next(&mut self.rng, inserted)
    }

    async fn insert(&mut self, n: u64) -> Result<bool> {
        let key = key_name(n);
        let mut hset = redis::cmd("HSET");
        hset.arg(&key);
        for i in 0..self.shared.args.field_count {
            hset.arg(format!("field{i}"))
                .arg(self.values.next(&mut self.rng));
        }
        hset.query_async::<Value>(&mut self.con).await?;
        redis::cmd("ZADD")
            .arg(INDEX_KEY)
            .arg(index_score(&key))
            .arg(&key)
            .query_async::<Value>(&mut self.con)
            .await?;
        Ok(true)
    }

    /// Reads one record; says whether it was there.
    async fn read(&mut self, key: &str) -> Result<bool> {
        let reply = match self.shared.args.read_fields {
            None => {
                redis::cmd("HGETALL")
                    .arg(key)
                    .query_async(&mut self.con)
                    .await?
            }
            Some(n) => {
                let mut hmget = redis::cmd("HMGET");
                hmget.arg(key);
                for _ in 0..n {
                    hmget.arg(self.field());
                }
                hmget.query_async(&mut self.con).await?
            }
        };
        Ok(match reply {
            Value::Array(items) => items.iter().any(|v| !matches!(v, Value::Nil)),
            Value::Map(items) => !items.is_empty(),
            _ => false,
        })
    }

    async fn update(&mut self, key: &str) -> Result<()> {
        let field = self.field();
        let value = self.values.next(&mut self.rng).to_vec();
        redis::cmd("HSET")
            .arg(key)
            .arg(field)
            .arg(value)
            .query_async::<Value>(&mut self.con)
            .await?;
        Ok(())
    }

    async fn scan(&mut self, start: &str) -> Result<bool> {
        let length = self.rng.gen_range(1..=self.shared.args.max_scan_length);
        let keys: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(INDEX_KEY)
            .arg(index_score(start))
            .arg("+inf")
            .arg("LIMIT")
            .arg(0)
            .arg(length)
            .query_async(&mut self.con)
            .await?;
        for key in &keys {
            self.read(key).await?;
        }
        Ok(!keys.is_empty())
    }

    async fn one(&mut self, op: Op) -> Result<bool> {
        match op {
            Op::Insert => {
                let n = self.shared.next_insert.fetch_add(1, Ordering::Relaxed);
                let ok = self.insert(n).await?;
                self.shared.inserted.fetch_max(n + 1, Ordering::Relaxed);
                Ok(ok)
            }
            Op::Read => {
                let key = self.existing_key();
                self.read(&key).await
            }
            Op::Update => {
                let key = self.existing_key();
                self.update(&key).await.map(|_| true)
            }
            Op::Scan => {
                let key = self.existing_key();
                self.scan(&key).await
            }
            Op::ReadModifyWrite => {
                let key = self.existing_key();
                let found = self.read(&key).await?;
                self.update(&key).await?;
                Ok(found)
            }
            Op::Set => {
                let key = string_key(self.existing_number());
                let value = self.values.next(&mut self.rng).to_vec();
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .query_async::<Value>(&mut self.con)
                    .await?;
                Ok(true)
            }
            Op::Get => {
                let key = string_key(self.existing_number());
                let value: Value = redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut self.con)
                    .await?;
                Ok(!matches!(value, Value::Nil))
            }
        }
    }

    /// Inserts records until `--records` are claimed.
    async fn load(mut self) -> Result<Tally> {
        let mut tally = Tally::default();
        loop {
            let n = self.shared.next_insert.fetch_add(1, Ordering::Relaxed);
            if n >= self.shared.args.records {
                return Ok(tally);
            }
            let t0 = Instant::now();
            let found = self.insert(n).await?;
            tally.record(Op::Insert, t0.elapsed(), found);
        }
    }

    /// Runs the workload until the time or operation budget is spent.
    async fn run(mut self) -> Result<Tally> {
        let mut tally = Tally::default();
        while !self.shared.stop.load(Ordering::Relaxed) {
            if let Some(budget) = self.shared.args.operations {
                if self.shared.started.fetch_add(1, Ordering::Relaxed) >= budget {
                    break;
                }
            }
            let op = self.shared.workload.choose(&mut self.rng);
            let t0 = Instant::now();
            let found = self.one(op).await?;
            tally.record(op, t0.elapsed(), found);
        }
        Ok(tally)
    }
}

fn percentiles(h: &Histogram<u64>) -> String {
    format!(
        "\"count\":{},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{}",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    )
}

fn report(args: &Args, tally: &Tally, elapsed: Duration) -> String {
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    for h in tally.latency_us.values() {
        all.add(h).expect("same bounds");
    }
    let throughput = all.len() as f64 / elapsed.as_secs_f64();
    let phase = match args.phase {
        Phase::Load => "load".to_string(),
        Phase::Run => format!("run-{}", args.workload),
    };
    if args.json {
        let mut ops = String::new();
        for (op, h) in &tally.latency_us {
            let not_found = tally.not_found.get(op).copied().unwrap_or(0);
            let _ = write!(
                ops,
                "{}\"{}\":{{{},\"not_found\":{not_found}}}",
                if ops.is_empty() { "" } else { "," },
                op.name(),
                percentiles(h)
            );
        }
        return format!(
            "{{\"phase\":\"{phase}\",\"clients\":{},\"seconds\":{:.3},\"throughput\":{throughput:.1},\
             \"all\":{{{}}},\"ops\":{{{ops}}}}}",
            args.clients,
            elapsed.as_secs_f64(),
            percentiles(&all)
        );
    }
    let mut out = format!(
        "{phase}: {} operations in {:.2} s, {throughput:.0} ops/s ({} clients)\n",
        all.len(),
        elapsed.as_secs_f64(),
        args.clients
    );
    for (name, h) in tally
        .latency_us
        .iter()
        .map(|(op, h)| (op.name(), h))
        .chain([("ALL", &all)])
    {
        let _ = writeln!(
            out,
            "  {name:<18} {:>9}  p50 {:>6} us  p99 {:>6} us  p99.9 {:>6} us  max {:>7} us",
            h.len(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max()
        );
    }
    out
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let Some(mut workload) = workload::core(args.workload.to_ascii_lowercase()) else {
        bail!("unknown workload {:?} (a–f, m)", args.workload);
    };
    if let Some(d) = args.distribution {
        workload.distribution = d;
    }
    let client = redis::Client::open(format!("redis://{}:{}/", args.host, args.port))?;
    let mut seed_rng = StdRng::seed_from_u64(args.seed);
    let values = Arc::new(Values::new(args.field_length, &mut seed_rng));
    let (next_insert, inserted) = match args.phase {
        Phase::Load => (0, 0),
        // Its keys are numbered below the record count.
        Phase::Run if workload::needs_no_load(args.workload.to_ascii_lowercase()) => {
            (args.records, args.records)
        }
        Phase::Run => {
            // Records inserted by earlier runs count too (the index set holds every key).
            let mut con = client.get_multiplexed_async_connection().await?;
            let indexed: u64 = redis::cmd("ZCARD")
                .arg(INDEX_KEY)
                .query_async(&mut con)
                .await?;
            if indexed == 0 {
                bail!("no records: run the load phase first");
            }
            (indexed, indexed)
        }
    };
    let shared = Arc::new(Shared {
        workload,
        next_insert: AtomicU64::new(next_insert),
        inserted: AtomicU64::new(inserted),
        started: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        args,
    });
    let mut tasks = Vec::new();
    for i in 0..shared.args.clients {
        let con = client
            .get_multiplexed_async_connection()
            .await
            .context("connecting")?;
        let c = Client {
            keys: KeyChooser::new(shared.workload.distribution, shared.args.records),
            rng: StdRng::seed_from_u64(seed_rng.gen::<u64>() ^ i as u64),
            shared: shared.clone(),
            con,
            values: values.clone(),
        };
        tasks.push(c);
    }
    let start = Instant::now();
    let handles: Vec<_> = tasks
        .into_iter()
        .map(|c| match shared.args.phase {
            Phase::Load => tokio::spawn(c.load()),
            Phase::Run => tokio::spawn(c.run()),
        })
        .collect();
    if shared.args.phase == Phase::Run && shared.args.operations.is_none() {
        tokio::time::sleep(Duration::from_secs_f64(shared.args.seconds)).await;
        shared.stop.store(true, Ordering::Relaxed);
    }
    let mut tally = Tally::default();
    for h in handles {
        tally.merge(h.await??);
    }
    let elapsed = start.elapsed();
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = writeln!(
        std::io::stdout(),
        "{}",
        report(&shared.args, &tally, elapsed)
    );
    Ok(())
}
