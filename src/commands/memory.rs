//! MEMORY: USAGE (a key's records), STATS (the process's memory in Redis's fields, from the
//! allocator and the engine), DOCTOR, MALLOC-STATS (mimalloc's own report) and PURGE (freed
//! memory back to the operating system).

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::args::{self, eq};
use super::error::syntax;
use super::object::help_reply;
use super::{container, reply, ApplyFn, CmdResult, Ctx, Handler};
use crate::metrics::allocator;
use crate::metrics::process;
use crate::protocol::Reply;

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("memory", container, None),
    ("memory|usage", memory_usage, None),
    ("memory|stats", memory_stats, None),
    ("memory|doctor", memory_doctor, None),
    ("memory|malloc-stats", memory_malloc_stats, None),
    ("memory|purge", memory_purge, None),
    ("memory|help", memory_help, None),
];

/// Bytes one key costs: its metadata record (key and value) plus per-record overhead.
/// MEMORY USAGE key [SAMPLES count]: the key's encoded records. A collection's elements
/// are estimated from the first `count` of them (default 5, 0 = all), as Redis samples.
fn memory_usage(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut samples = 5i64;
    let mut i = 3;
    while i < args.len() {
        if eq(&args[i], "SAMPLES") && i + 1 < args.len() {
            samples = args::int(&args[i + 1])?;
            if samples < 0 {
                return Err(syntax());
            }
            i += 2;
        } else {
            return Err(syntax());
        }
    }
    const RECORD_OVERHEAD_BYTES: u64 = 48 + 17;
    let Some(meta) = ctx.lookup(&args[2])? else {
        return reply(Reply::Null);
    };
    let mut bytes = args[2].len() as u64 + meta.value.len() as u64 + RECORD_OVERHEAD_BYTES;
    if let Some(c) = meta.collection_header() {
        let limit = if samples <= 0 {
            usize::MAX
        } else {
            samples as usize
        };
        let sampled =
            ctx.keyspace
                .scan_elements(ctx.db(), &args[2], c.version, None, limit, false)?;
        if !sampled.is_empty() {
            // Element records repeat the key, the version and the sub key.
            let per_element = sampled
                .iter()
                .map(|(sub, v)| (args[2].len() + 16 + sub.len() + v.len()) as u64)
                .sum::<u64>()
                / sampled.len() as u64
                + RECORD_OVERHEAD_BYTES;
            bytes += per_element * c.count;
        }
    }
    reply(Reply::Integer(bytes as i64))
}

/// The figures MEMORY STATS and DOCTOR are made of.
struct Figures {
    peak: u64,
    total: u64,
    startup: u64,
    clients: u64,
    lua: u64,
    functions: u64,
    keys: u64,
    resident: u64,
    rss: u64,
}

fn figures(ctx: &Ctx) -> Figures {
    let shared = ctx.shared;
    let alloc = allocator::memory();
    let clients = shared
        .clients
        .all()
        .iter()
        .map(|c| {
            c.query_buffer_bytes.load(Ordering::Relaxed) + c.output_bytes.load(Ordering::Relaxed)
        })
        .sum();
    let (_, eval_bytes) = shared.scripts.cached();
    let functions = shared
        .scripts
        .libraries()
        .values()
        .map(|l| l.code.len() as u64)
        .sum();
    let keys = (0..shared.keyspace.databases())
        .map(|db| shared.keyspace.dbsize(db))
        .sum();
    Figures {
        peak: alloc.peak_committed.max(alloc.committed),
        total: alloc.committed,
        startup: shared.startup_allocated_bytes.min(alloc.committed),
        clients,
        lua: eval_bytes as u64,
        functions,
        keys,
        resident: alloc.resident,
        rss: process::rss_bytes(),
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// MEMORY STATS: Redis's fields, filled from what Basalt has. Allocated memory is what
/// mimalloc has committed; the dataset is what is neither start-up memory nor the
/// overheads listed (memtables, caches and indexes included); Basalt keeps no in-memory
/// hash table per database, so its overheads are 0, and no replication backlog or AOF
/// buffer.
fn memory_stats(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let f = figures(ctx);
    let overhead = f.startup + f.clients + f.lua + f.functions;
    let dataset = f.total.saturating_sub(overhead);
    let int = |n: u64| Reply::Integer(n as i64);
    let mut fields: Vec<(&str, Reply)> = vec![
        ("peak.allocated", int(f.peak)),
        ("total.allocated", int(f.total)),
        ("startup.allocated", int(f.startup)),
        ("replication.backlog", int(0)),
        ("clients.slaves", int(0)),
        ("clients.normal", int(f.clients)),
        ("cluster.links", int(0)),
        ("aof.buffer", int(0)),
        ("lua.caches", int(f.lua)),
        ("functions.caches", int(f.functions)),
    ];
    let mut entries: Vec<(Reply, Reply)> =
        fields.drain(..).map(|(k, v)| (Reply::bulk(k), v)).collect();
    for db in 0..ctx.shared.keyspace.databases() {
        if ctx.shared.keyspace.dbsize(db) == 0 {
            continue;
        }
        entries.push((
            Reply::bulk(format!("db.{db}")),
            Reply::Map(vec![
                (Reply::bulk("overhead.hashtable.main"), int(0)),
                (Reply::bulk("overhead.hashtable.expires"), int(0)),
                (Reply::bulk("overhead.hashtable.slot-to-keys"), int(0)),
            ]),
        ));
    }
    let per_key = f
        .total
        .saturating_sub(f.startup)
        .checked_div(f.keys)
        .unwrap_or(0);
    let tail: Vec<(&str, Reply)> = vec![
        ("overhead.total", int(overhead)),
        ("keys.count", int(f.keys)),
        ("keys.bytes-per-key", int(per_key)),
        ("dataset.bytes", int(dataset)),
        (
            "dataset.percentage",
            Reply::Double(100.0 * ratio(dataset, f.total.saturating_sub(f.startup))),
        ),
        (
            "peak.percentage",
            Reply::Double(100.0 * ratio(f.total, f.peak)),
        ),
        ("allocator.allocated", int(f.total)),
        ("allocator.active", int(f.total)),
        ("allocator.resident", int(f.resident)),
        ("allocator-fragmentation.ratio", Reply::Double(1.0)),
        ("allocator-fragmentation.bytes", int(0)),
        (
            "allocator-rss.ratio",
            Reply::Double(ratio(f.resident, f.total)),
        ),
        (
            "allocator-rss.bytes",
            int(f.resident.saturating_sub(f.total)),
        ),
        (
            "rss-overhead.ratio",
            Reply::Double(ratio(f.rss, f.resident)),
        ),
        ("rss-overhead.bytes", int(f.rss.saturating_sub(f.resident))),
        ("fragmentation", Reply::Double(ratio(f.rss, f.total))),
        ("fragmentation.bytes", int(f.rss.saturating_sub(f.total))),
    ];
    entries.extend(tail.into_iter().map(|(k, v)| (Reply::bulk(k), v)));
    reply(Reply::Map(entries))
}

/// Below this peak, DOCTOR has nothing to say (as Redis).
const DOCTOR_PEAK_MIN_BYTES: u64 = 5 << 20;

const DOCTOR_EMPTY: &str = "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.";
const DOCTOR_FINE: &str = "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.";

/// MEMORY DOCTOR: Redis's texts when there is too little to judge or nothing to report;
/// otherwise Basalt's own list of what looks wrong (a peak far above the present,
/// resident memory far above what the allocator holds, big client buffers).
fn memory_doctor(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let f = figures(ctx);
    let text = if f.peak < DOCTOR_PEAK_MIN_BYTES {
        DOCTOR_EMPTY.to_string()
    } else {
        let mut issues = Vec::new();
        if ratio(f.peak, f.total) > 1.5 {
            issues.push(format!(
                " * Peak memory: at some point this node used {:.1} times the memory it uses now ({} bytes against {}). A burst of writes or large reads can do this; the allocator keeps some of it (MEMORY PURGE returns what it can).",
                ratio(f.peak, f.total),
                f.peak,
                f.total
            ));
        }
        if ratio(f.rss, f.total) > 1.4 && f.rss.saturating_sub(f.total) > 10 << 20 {
            issues.push(format!(
                " * High fragmentation: the process holds {:.2} times the memory the allocator has committed ({} bytes resident). MEMORY PURGE may return part of it.",
                ratio(f.rss, f.total),
                f.rss
            ));
        }
        if f.clients > 200 << 20 {
            issues.push(format!(
                " * Big client buffers: clients' query and output buffers hold {} bytes. CLIENT LIST shows which clients (qbuf, omem).",
                f.clients
            ));
        }
        if issues.is_empty() {
            DOCTOR_FINE.to_string()
        } else {
            format!(
                "Sam, I detected a few issues in this Basalt instance memory implants:\n\n{}\n",
                issues.join("\n\n")
            )
        }
    };
    reply(Reply::Verbatim("txt", Bytes::from(text)))
}

/// MEMORY MALLOC-STATS: mimalloc's own statistics report.
fn memory_malloc_stats(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(Reply::Verbatim("txt", Bytes::from(allocator::stats_text())))
}

/// MEMORY PURGE: returns freed memory the allocator keeps to the operating system.
fn memory_purge(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    crate::blocking_io::run(allocator::purge);
    reply(Reply::OK)
}

fn memory_help(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(help_reply(
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    ))
}
