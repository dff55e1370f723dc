//! The engine's counters and the fields it reports in INFO (storage section): memtables,
//! levels, flushes and compactions, the memtable garbage collector, scans, caches and
//! bloom filters.

use std::sync::atomic::{AtomicU64, Ordering};

use super::engine::{LsmEngine, Shared};
use super::worker;

/// Counters reported in INFO storage.
#[derive(Default)]
pub struct LsmStats {
    pub flushes: AtomicU64,
    pub compactions: AtomicU64,
    pub write_stalls: AtomicU64,
    pub bytes_flushed: AtomicU64,
    pub bytes_compacted: AtomicU64,
    /// Values the compaction filter removed.
    pub filtered_values: AtomicU64,
    /// Versions removed from the active memtable once no reader could see them.
    pub gc_removed: AtomicU64,
    /// Range reads, and the entries they took from memtables and tables (versions and
    /// deletes they stepped over included).
    pub scans: AtomicU64,
    pub scan_entries: AtomicU64,
}

/// The INFO fields of `engine` (whose shared state is `shared`).
pub(super) fn report(engine: &LsmEngine, shared: &Shared) -> Vec<(String, String)> {
    let (levels, mem_bytes) = engine.level_summary();
    let stats = &shared.stats;
    let state = shared.state.read().clone();
    let mut out = vec![
        ("storage_engine".to_string(), "lsm".to_string()),
        ("memtable_bytes".to_string(), mem_bytes.to_string()),
        (
            "memtable_entries".to_string(),
            state
                .memtables()
                .map(|m| m.len())
                .sum::<usize>()
                .to_string(),
        ),
        (
            "immutable_memtables".to_string(),
            state.imm.len().to_string(),
        ),
    ];
    for (level, (files, bytes)) in levels.iter().enumerate() {
        out.push((
            format!("level{level}"),
            format!("files={files},bytes={bytes}"),
        ));
    }
    let oldest = shared.oldest_snapshot();
    let pending = worker::pick(&shared.opts, &state.version, oldest).map_or(0, |t| {
        t.inputs
            .iter()
            .chain(t.next.iter())
            .map(|f| f.meta.size)
            .sum::<u64>()
    });
    let counters = [
        ("pending_compaction_bytes", pending),
        ("range_tombstones", state.range_dels().count() as u64),
        ("flushes", stats.flushes.load(Ordering::Relaxed)),
        ("compactions", stats.compactions.load(Ordering::Relaxed)),
        ("write_stalls", stats.write_stalls.load(Ordering::Relaxed)),
        ("bytes_flushed", stats.bytes_flushed.load(Ordering::Relaxed)),
        (
            "bytes_compacted",
            stats.bytes_compacted.load(Ordering::Relaxed),
        ),
        (
            "compaction_filter_removed",
            stats.filtered_values.load(Ordering::Relaxed),
        ),
        (
            "memtable_gc_removed",
            stats.gc_removed.load(Ordering::Relaxed),
        ),
        ("scans", stats.scans.load(Ordering::Relaxed)),
        ("scan_entries", stats.scan_entries.load(Ordering::Relaxed)),
    ];
    out.extend(counters.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let cache = &shared.cache;
    out.push(("block_cache_bytes".to_string(), cache.bytes().to_string()));
    out.push(("block_reads".to_string(), cache.block_reads().to_string()));
    out.push((
        "block_cache_hit_ratio".to_string(),
        format!("{:.4}", cache.hit_ratio()),
    ));
    out.push(("row_cache_bytes".to_string(), cache.row_bytes().to_string()));
    out.push((
        "row_cache_hit_ratio".to_string(),
        format!("{:.4}", cache.row_hit_ratio()),
    ));
    let checks = cache.bloom_checks.load(Ordering::Relaxed);
    let negatives = cache.bloom_negatives.load(Ordering::Relaxed);
    out.push(("bloom_checks".to_string(), checks.to_string()));
    out.push(("bloom_useful".to_string(), negatives.to_string()));
    let prefix_checks = cache.prefix_checks.load(Ordering::Relaxed);
    let prefix_negatives = cache.prefix_negatives.load(Ordering::Relaxed);
    out.push(("prefix_bloom_checks".to_string(), prefix_checks.to_string()));
    out.push((
        "prefix_bloom_useful".to_string(),
        prefix_negatives.to_string(),
    ));
    out.push((
        "sync_policy".to_string(),
        format!("{:?}", shared.sync_policy()).to_lowercase(),
    ));
    let poisoned = shared.check_poison().is_err();
    out.push((
        "poisoned".to_string(),
        if poisoned { "1" } else { "0" }.to_string(),
    ));
    out
}
