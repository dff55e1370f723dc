//! Hot keys: a few keys overwritten thousands of times, between snapshots, in memtables and
//! in tables. The engine must still match the model, and what a range read over them costs
//! (entries taken from memtables and tables) must not grow with the overwrites.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::storage::lsm::iterator;

fn hot_op_strategy() -> impl Strategy<Value = Op> {
    let k = || 0u8..6;
    prop_oneof![
        10 => (k(), 1u16..3000).prop_map(|(k, n)| Op::Burst(k, n)),
        10 => (k(), any::<u16>()).prop_map(|(k, v)| Op::Put(k, v)),
        4 => k().prop_map(Op::Delete),
        1 => (k(), k()).prop_map(|(a, b)| Op::DeleteRange(a, b)),
        6 => k().prop_map(Op::Get),
        10 => (k(), k(), (0u8..3, 0u8..3), any::<bool>(), 1usize..8)
            .prop_map(|(a, b, kinds, r, l)| Op::Scan(a, b, kinds, r, l)),
        3 => Just(Op::TakeSnapshot),
        2 => Just(Op::ReleaseSnapshot),
        4 => Just(Op::CheckSnapshots),
        2 => Just(Op::Flush),
        2 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

fn hot_options() -> LsmOptions {
    LsmOptions {
        memtable_bytes: 64 << 10,
        ..small_options()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn hot_keys_match_a_btreemap(ops in proptest::collection::vec(hot_op_strategy(), 1..60)) {
        run_with(ops, hot_options());
    }
}

/// Small tables, but a memtable large enough never to fill in these tests.
fn roomy_options() -> LsmOptions {
    LsmOptions {
        memtable_bytes: 64 << 20,
        ..small_options()
    }
}

/// A fresh engine holding `k00`..`k09`, `k03` then overwritten `n` times. With `pinned`, a
/// snapshot taken before the overwrites keeps every version (the memtable's garbage
/// collector and the flush may drop none); with `flushed`, they are written to a table.
fn hot_engine(n: u32, pinned: bool, flushed: bool) -> (LsmEngine, Option<Box<dyn Snapshot>>) {
    let dir = temp_dir();
    let engine = LsmEngine::open(&dir, roomy_options()).unwrap();
    for i in 0..10 {
        let mut b = WriteBatch::new();
        b.put(Bytes::from(format!("k{i:02}")), Bytes::from("first"));
        engine.write(b).unwrap();
    }
    let snapshot = pinned.then(|| engine.snapshot());
    for i in 0..n {
        let mut b = WriteBatch::new();
        b.put(Bytes::from("k03"), Bytes::from(format!("v{i}")));
        engine.write(b).unwrap();
    }
    if flushed {
        engine.flush().unwrap();
    }
    (engine, snapshot)
}

/// Entries the engine takes from memtables and tables for each of a set of range reads
/// over the hot key: forwards and backwards, whole and bounded, now and at the snapshot.
fn read_costs(engine: &LsmEngine, snapshot: Option<&dyn Snapshot>) -> Vec<u64> {
    let all = KeyRange {
        start: Bound::Unbounded,
        end: Bound::Unbounded,
    };
    let around = KeyRange::half_open(Bytes::from("k02"), Bytes::from("k05"));
    let mut costs = Vec::new();
    for range in [&all, &around] {
        for reverse in [false, true] {
            let before = engine.stats().scan_entries.load(Ordering::Relaxed);
            let pairs = engine.scan(range, reverse, usize::MAX).unwrap();
            costs.push(engine.stats().scan_entries.load(Ordering::Relaxed) - before);
            let hot = pairs
                .iter()
                .find(|(k, _)| k == "k03")
                .map(|(_, v)| v.clone());
            assert!(
                hot.is_some_and(|v| v != "first"),
                "k03 reads its newest value"
            );
            if let Some(snapshot) = snapshot {
                let before = engine.stats().scan_entries.load(Ordering::Relaxed);
                let old = snapshot.scan(range, reverse, usize::MAX).unwrap();
                costs.push(engine.stats().scan_entries.load(Ordering::Relaxed) - before);
                assert!(
                    old.iter().all(|(_, v)| v == "first"),
                    "the snapshot's values"
                );
            }
        }
    }
    costs
}

#[test]
fn range_reads_over_a_hot_key_cost_the_same_however_often_it_was_overwritten() {
    for (pinned, flushed) in [(false, false), (true, false), (true, true), (false, true)] {
        let (few, few_snapshot) = hot_engine(20, pinned, flushed);
        let (many, many_snapshot) = hot_engine(20_000, pinned, flushed);
        let few_costs = read_costs(&few, few_snapshot.as_deref());
        let many_costs = read_costs(&many, many_snapshot.as_deref());
        for (f, m) in few_costs.iter().zip(&many_costs) {
            // A handful of versions stepped over before each seek, never thousands.
            assert!(
                *m <= f + 2 * iterator::SKIP_BEFORE_SEEK as u64 && *m < 60,
                "pinned {pinned}, flushed {flushed}: 20 overwrites cost {few_costs:?} \
                 entries, 20,000 cost {many_costs:?}"
            );
        }
    }
}

#[test]
fn overwrites_without_snapshots_leave_one_version_in_the_memtable() {
    let (engine, _) = hot_engine(20_000, false, false);
    assert!(
        engine.memtable_entries() <= 12,
        "{}",
        engine.memtable_entries()
    );
    assert!(engine.stats().gc_removed.load(Ordering::Relaxed) >= 19_990);
    // Keys created and deleted here leave nothing behind either.
    for i in 0..1000 {
        let mut b = WriteBatch::new();
        b.put(Bytes::from(format!("short-lived{i:04}")), Bytes::from("x"));
        engine.write(b).unwrap();
        let mut b = WriteBatch::new();
        b.delete(Bytes::from(format!("short-lived{i:04}")));
        engine.write(b).unwrap();
    }
    assert!(
        engine.memtable_entries() <= 12,
        "{}",
        engine.memtable_entries()
    );
    let range = KeyRange::prefix(b"short-lived");
    let before = engine.stats().scan_entries.load(Ordering::Relaxed);
    assert!(engine.scan(&range, false, usize::MAX).unwrap().is_empty());
    assert!(engine.stats().scan_entries.load(Ordering::Relaxed) - before < 10);
}

#[test]
fn a_flush_writes_only_versions_some_reader_can_see() {
    let (engine, snapshot) = hot_engine(5_000, true, false);
    // The snapshot needs the first version; every newer one is newer than it.
    drop(snapshot);
    // With the snapshot gone the flush keeps one version of each key, and a key created and
    // deleted in the memtable not at all.
    let mut b = WriteBatch::new();
    b.put(Bytes::from("gone"), Bytes::from("x"));
    b.delete(Bytes::from("gone"));
    engine.write(b).unwrap();
    engine.flush().unwrap();
    let (levels, _) = engine.level_summary();
    assert_eq!(levels[0].0, 1);
    let all = KeyRange {
        start: Bound::Unbounded,
        end: Bound::Unbounded,
    };
    let before = engine.stats().scan_entries.load(Ordering::Relaxed);
    assert_eq!(engine.scan(&all, false, usize::MAX).unwrap().len(), 10);
    assert_eq!(
        engine.stats().scan_entries.load(Ordering::Relaxed) - before,
        10,
        "one entry per key, no delete"
    );
    assert_eq!(engine.get(b"k03").unwrap(), Some(Bytes::from("v4999")));
}

#[test]
fn a_snapshot_keeps_its_versions_while_the_collector_runs() {
    let dir = temp_dir();
    let options = LsmOptions {
        memtable_bytes: 4 << 20,
        ..small_options()
    };
    let engine = LsmEngine::open(&dir, options).unwrap();
    let put = |v: &str| {
        let mut b = WriteBatch::new();
        b.put(Bytes::from("a"), Bytes::from(v.to_string()));
        b.put(Bytes::from("b"), Bytes::from(v.to_string()));
        engine.write(b).unwrap();
    };
    put("0");
    let snapshot = engine.snapshot();
    for i in 1..2000 {
        put(&i.to_string());
    }
    assert_eq!(snapshot.get(b"a").unwrap(), Some(Bytes::from("0")));
    let pairs = snapshot.scan(&KeyRange::prefix(b""), true, 10).unwrap();
    assert_eq!(pairs.len(), 2);
    assert!(pairs.iter().all(|(_, v)| v == "0"));
    let held = engine.memtable_entries();
    assert!(held >= 3998, "{held} entries held with the snapshot");
    drop(snapshot);
    // The backlog goes a few versions per write.
    for i in 2000..2500 {
        put(&i.to_string());
    }
    let after = engine.memtable_entries();
    assert!(
        after < 10,
        "{held} entries held with the snapshot, {after} after"
    );
    assert_eq!(engine.get(b"b").unwrap(), Some(Bytes::from("2499")));
    assert_eq!(engine.stats().flushes.load(Ordering::Relaxed), 0);
}

/// Readers without snapshots race a writer that overwrites two keys together; the garbage
/// collector must never take a version a reader is about to read.
#[test]
fn concurrent_readers_never_miss_a_collected_version() {
    let dir = temp_dir();
    let engine = Arc::new(LsmEngine::open(&dir, roomy_options()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let write = |engine: &LsmEngine, i: u64| {
        let mut b = WriteBatch::new();
        for k in ["x1", "x2", "x3"] {
            b.put(Bytes::from(k), Bytes::from(format!("{i:012}")));
        }
        engine.write(b).unwrap();
    };
    write(&engine, 0);
    let mut readers = Vec::new();
    for reverse in [false, true] {
        let (engine, stop) = (engine.clone(), stop.clone());
        readers.push(std::thread::spawn(move || {
            let range = KeyRange::prefix(b"x");
            let mut last = 0u64;
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let pairs = engine.scan(&range, reverse, usize::MAX).unwrap();
                assert_eq!(pairs.len(), 3, "a version went missing: {pairs:?}");
                assert!(pairs.iter().all(|(_, v)| *v == pairs[0].1), "{pairs:?}");
                let seen: u64 = std::str::from_utf8(&pairs[0].1).unwrap().parse().unwrap();
                assert!(seen >= last, "went back from {last} to {seen}");
                last = seen;
                let got = engine.get(b"x2").unwrap();
                assert!(got.is_some(), "x2 went missing");
                reads += 1;
            }
            reads
        }));
    }
    for i in 1..=60_000u64 {
        write(&engine, i);
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    // Readers held the collector back at times (more so on a loaded machine), and the
    // last writes' versions waited for them; with writes stopped, the idle flush worker
    // collects the backlog.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while engine.memtable_entries() > 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} entries left after writes stopped",
            engine.memtable_entries()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(engine.stats().gc_removed.load(Ordering::Relaxed) >= 180_000);
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tables_mostly_of_deletes_are_compacted_away() {
    let dir = temp_dir();
    let engine = LsmEngine::open(
        &dir,
        LsmOptions {
            memtable_bytes: 1 << 20,
            l0_compaction_trigger: 8,
            // Tables large enough to hold the deletes that make one worth compacting
            // (`DELETES_FLUSH_MIN`): with smaller ones, deletes that compaction carried a
            // level above what they delete are split among tables too small to qualify.
            target_file_bytes: 64 << 10,
            ..small_options()
        },
    )
    .unwrap();
    let key = |i: u32| Bytes::from(format!("d{i:06}"));
    for i in 0..20_000 {
        let mut b = WriteBatch::new();
        b.put(key(i), Bytes::from("value"));
        engine.write(b).unwrap();
    }
    engine.flush().unwrap();
    engine.wait_idle();
    for i in (0..20_000).filter(|i| i % 10 != 0) {
        let mut b = WriteBatch::new();
        b.delete(key(i));
        engine.write(b).unwrap();
    }
    // The deletes filled most of a memtable: it was flushed early, and the table of
    // deletes compacted with what it deletes.
    engine.wait_idle();
    assert!(engine.stats().flushes.load(Ordering::Relaxed) >= 2);
    let range = KeyRange::prefix(b"d");
    let before = engine.stats().scan_entries.load(Ordering::Relaxed);
    assert_eq!(engine.scan(&range, false, usize::MAX).unwrap().len(), 2000);
    let cost = engine.stats().scan_entries.load(Ordering::Relaxed) - before;
    let (levels, memtable_bytes) = engine.level_summary();
    assert!(
        cost < 2000 + 18_000 / 4,
        "a scan of 2,000 live keys took {cost} entries ({memtable_bytes} memtable bytes, \
         tables and bytes by level {levels:?})"
    );
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Groups keys by what comes before the first `/`.
#[derive(Debug)]
struct UpToSlash;

impl crate::storage::lsm::PrefixExtractor for UpToSlash {
    fn id(&self) -> u32 {
        7
    }
    fn prefix_len(&self, key: &[u8]) -> Option<usize> {
        key.iter().position(|&b| b == b'/').map(|i| i + 1)
    }
}

fn info_counter(engine: &LsmEngine, name: &str) -> u64 {
    engine
        .info()
        .into_iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_scan_within_a_group_opens_only_the_tables_holding_it() {
    let dir = temp_dir();
    let options = LsmOptions {
        prefix_extractor: Some(std::sync::Arc::new(UpToSlash)),
        l0_compaction_trigger: 100,
        l0_stall_files: 200,
        ..small_options()
    };
    let engine = LsmEngine::open(&dir, options).unwrap();
    // Ten groups, each flushed to its own level-0 table, and every table spanning them all.
    for g in 0..10 {
        let mut b = WriteBatch::new();
        for i in 0..50 {
            b.put(Bytes::from(format!("g{g}/{i:03}")), Bytes::from("v"));
        }
        b.put(Bytes::from(format!("a{g}")), Bytes::from("edge"));
        b.put(Bytes::from(format!("z{g}")), Bytes::from("edge"));
        engine.write(b).unwrap();
        engine.flush().unwrap();
    }
    assert_eq!(engine.level_summary().0[0].0, 10);
    let group = KeyRange::prefix(b"g4/");
    let before = info_counter(&engine, "prefix_bloom_useful");
    let reads = engine.block_reads();
    let found = engine.scan(&group, false, usize::MAX).unwrap();
    assert_eq!(found.len(), 50);
    assert!(found.iter().all(|(k, _)| k.starts_with(b"g4/")));
    assert!(
        engine.block_reads() - reads <= 2,
        "blocks of other tables were read"
    );
    assert!(info_counter(&engine, "prefix_bloom_useful") - before >= 8);
    let back = engine.scan(&group, true, 5).unwrap();
    assert_eq!(back[0].0, "g4/049");
    // A range that is not within one group reads every table, as before.
    let across = KeyRange::half_open(Bytes::from("g4/"), Bytes::from("g6"));
    assert_eq!(engine.scan(&across, false, usize::MAX).unwrap().len(), 100);
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}

#[derive(Debug, Clone)]
enum GroupOp {
    Put(u8, u8, u16),
    Delete(u8, u8),
    Scan(u8, bool, usize),
    Flush,
    Compact,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    /// Scans within a group, with tables skipped by their prefix filters, match a model.
    #[test]
    fn group_scans_match_a_btreemap(ops in proptest::collection::vec(prop_oneof![
        20 => (0u8..6, any::<u8>(), any::<u16>()).prop_map(|(g, k, v)| GroupOp::Put(g, k, v)),
        5 => (0u8..6, any::<u8>()).prop_map(|(g, k)| GroupOp::Delete(g, k)),
        8 => (0u8..7, any::<bool>(), 1usize..30).prop_map(|(g, r, l)| GroupOp::Scan(g, r, l)),
        3 => Just(GroupOp::Flush),
        1 => Just(GroupOp::Compact),
    ], 1..300)) {
        let dir = temp_dir();
        let options = LsmOptions {
            prefix_extractor: Some(std::sync::Arc::new(UpToSlash)),
            ..small_options()
        };
        let engine = LsmEngine::open(&dir, options).unwrap();
        let mut model: BTreeMap<Bytes, Bytes> = BTreeMap::new();
        let key = |g: u8, k: u8| Bytes::from(format!("g{g}/{k:03}"));
        for op in ops {
            match op {
                GroupOp::Put(g, k, v) => {
                    let mut b = WriteBatch::new();
                    b.put(key(g, k), value(v));
                    engine.write(b).unwrap();
                    model.insert(key(g, k), value(v));
                }
                GroupOp::Delete(g, k) => {
                    let mut b = WriteBatch::new();
                    b.delete(key(g, k));
                    engine.write(b).unwrap();
                    model.remove(&key(g, k));
                }
                GroupOp::Scan(g, reverse, limit) => {
                    let range = KeyRange::prefix(format!("g{g}/").as_bytes());
                    prop_assert_eq!(
                        engine.scan(&range, reverse, limit).unwrap(),
                        model_scan(&model, &range, reverse, limit)
                    );
                }
                GroupOp::Flush => engine.flush().unwrap(),
                GroupOp::Compact => engine.wait_idle(),
            }
        }
        drop(engine);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A leaderboard's score index churned after a flush: each new score is written, then
/// deleted by the next change of its member. The garbage collector drops such a delete once
/// its put is gone unless a table holds the key; a bloom filter's false positive (about one
/// delete in a hundred) must not keep it, or reverse scans over the index step over hundreds.
#[test]
fn churned_index_keeps_only_deletes_of_flushed_keys() {
    let dir = temp_dir();
    let engine = LsmEngine::open(&dir, roomy_options()).unwrap();
    let mut scores: Vec<u64> = (0..50).map(|i| i * 100).collect();
    let score_key = |m: usize, s: u64| Bytes::from(format!("s|{s:08}|m{m:02}"));
    for (m, s) in scores.iter().enumerate() {
        let mut b = WriteBatch::new();
        b.put(score_key(m, *s), Bytes::new());
        b.put(
            Bytes::from(format!("m|m{m:02}")),
            Bytes::from(s.to_string()),
        );
        engine.write(b).unwrap();
    }
    let mut x = 12345u64;
    for i in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let m = (x % 50) as usize;
        let mut b = WriteBatch::new();
        b.delete(score_key(m, scores[m]));
        scores[m] += 1;
        b.put(score_key(m, scores[m]), Bytes::new());
        b.put(
            Bytes::from(format!("m|m{m:02}")),
            Bytes::from(scores[m].to_string()),
        );
        engine.write(b).unwrap();
        if i == 50_000 {
            engine.flush().unwrap();
        }
    }
    // 50 members, 50 current score keys, and 50 deletes of the score keys the table holds
    // (plus a few versions still waiting for the collector).
    let held = engine.memtable_entries();
    assert!(held <= 150 + 16, "memtable holds {held} entries");
    let top = engine.scan(&KeyRange::prefix(b"s|"), true, 10).unwrap();
    let mut best: Vec<u64> = scores.clone();
    best.sort_unstable_by(|a, b| b.cmp(a));
    let got: Vec<u64> = top
        .iter()
        .map(|(k, _)| std::str::from_utf8(&k[2..10]).unwrap().parse().unwrap())
        .collect();
    assert_eq!(got, best[..10]);
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}
