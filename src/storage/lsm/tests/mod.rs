//! Model test: the LSM engine against a `BTreeMap` under random put, delete, delete-range,
//! get, scan, snapshot, flush, compaction and reopen. Shrunk failures become named tests
//! below the property. `hot_keys.rs` runs the model over a few keys overwritten thousands
//! of times and checks what range reads over them cost.

mod hot_keys;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use proptest::prelude::*;

use super::wal::SyncPolicy;
use super::{LsmEngine, LsmOptions};
use crate::storage::{Engine, KeyRange, Snapshot, WriteBatch};

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u16),
    /// `n` writes of one key, one batch each (versions with consecutive sequence numbers).
    Burst(u8, u16),
    Delete(u8),
    DeleteRange(u8, u8),
    Get(u8),
    /// Bounds `a`, `b` with kinds (0 included, 1 excluded, 2 unbounded), reverse, limit.
    Scan(u8, u8, (u8, u8), bool, usize),
    TakeSnapshot,
    /// Drops the oldest snapshot held.
    ReleaseSnapshot,
    CheckSnapshots,
    Flush,
    Compact,
    Reopen,
}

fn key(k: u8) -> Bytes {
    Bytes::from(format!("key{:03}", k % 64))
}

/// Two keys in order.
fn ordered(a: u8, b: u8) -> (Bytes, Bytes) {
    let (a, b) = (key(a), key(b));
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

fn value(v: u16) -> Bytes {
    // Values of varied sizes, so memtables fill and files split.
    Bytes::from(format!("{v}-{}", "v".repeat(usize::from(v % 200))))
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::Put(k, v)),
        8 => any::<u8>().prop_map(Op::Delete),
        4 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::DeleteRange(a, b)),
        15 => any::<u8>().prop_map(Op::Get),
        6 => (any::<u8>(), any::<u8>(), (0u8..3, 0u8..3), any::<bool>(), 1usize..20)
            .prop_map(|(a, b, kinds, r, l)| Op::Scan(a, b, kinds, r, l)),
        2 => Just(Op::TakeSnapshot),
        3 => Just(Op::CheckSnapshots),
        2 => Just(Op::Flush),
        2 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

fn small_options() -> LsmOptions {
    LsmOptions {
        memtable_bytes: 4 << 10,
        max_immutable: 2,
        l0_compaction_trigger: 2,
        l0_stall_files: 8,
        level1_bytes: 16 << 10,
        level_ratio: 4,
        target_file_bytes: 8 << 10,
        sync: SyncPolicy::No,
        ..LsmOptions::default()
    }
}

fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "basalt-lsm-model-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn model_scan(
    model: &BTreeMap<Bytes, Bytes>,
    range: &KeyRange,
    reverse: bool,
    limit: usize,
) -> Vec<(Bytes, Bytes)> {
    let items = model
        .range::<Bytes, _>((range.start.clone(), range.end.clone()))
        .map(|(k, v)| (k.clone(), v.clone()));
    if reverse {
        items.rev().take(limit).collect()
    } else {
        items.take(limit).collect()
    }
}

fn run(ops: Vec<Op>) {
    run_with(ops, small_options());
}

fn run_with(ops: Vec<Op>, options: LsmOptions) {
    let dir = temp_dir();
    let mut engine = LsmEngine::open(&dir, options.clone()).unwrap();
    let mut model: BTreeMap<Bytes, Bytes> = BTreeMap::new();
    let mut snapshots: Vec<(Box<dyn Snapshot>, BTreeMap<Bytes, Bytes>)> = Vec::new();
    for op in ops {
        match op {
            Op::Put(k, v) => {
                let mut b = WriteBatch::new();
                b.put(key(k), value(v));
                engine.write(b).unwrap();
                model.insert(key(k), value(v));
            }
            Op::Burst(k, n) => {
                for v in 0..n {
                    let mut b = WriteBatch::new();
                    b.put(key(k), value(v));
                    engine.write(b).unwrap();
                }
                if n > 0 {
                    model.insert(key(k), value(n - 1));
                }
            }
            Op::Delete(k) => {
                let mut b = WriteBatch::new();
                b.delete(key(k));
                engine.write(b).unwrap();
                model.remove(&key(k));
            }
            Op::DeleteRange(a, b) => {
                let (a, b) = ordered(a, b);
                let mut batch = WriteBatch::new();
                batch.put(a.clone(), Bytes::from("in-batch"));
                batch.delete_range(a.clone(), b.clone());
                engine.write(batch).unwrap();
                model.insert(a.clone(), Bytes::from("in-batch"));
                let doomed: Vec<Bytes> = model.range(a..b).map(|(k, _)| k.clone()).collect();
                for k in doomed {
                    model.remove(&k);
                }
            }
            Op::Get(k) => assert_eq!(
                engine.get(&key(k)).unwrap(),
                model.get(&key(k)).cloned(),
                "get {k}"
            ),
            Op::Scan(a, b, (start_kind, end_kind), reverse, limit) => {
                let (a, b) = ordered(a, b);
                let bound = |k: Bytes, kind: u8| match kind {
                    0 => Bound::Included(k),
                    1 => Bound::Excluded(k),
                    _ => Bound::Unbounded,
                };
                let range = KeyRange {
                    start: bound(a, start_kind),
                    end: bound(b, end_kind),
                };
                if matches!((&range.start, &range.end), (Bound::Excluded(x), Bound::Excluded(y)) if x == y)
                {
                    continue; // BTreeMap refuses an empty excluded range
                }
                assert_eq!(
                    engine.scan(&range, reverse, limit).unwrap(),
                    model_scan(&model, &range, reverse, limit)
                );
                let all = KeyRange {
                    start: Bound::Unbounded,
                    end: Bound::Unbounded,
                };
                assert_eq!(
                    engine.scan(&all, false, usize::MAX).unwrap(),
                    model_scan(&model, &all, false, usize::MAX)
                );
            }
            Op::TakeSnapshot => snapshots.push((engine.snapshot(), model.clone())),
            Op::ReleaseSnapshot => {
                if !snapshots.is_empty() {
                    snapshots.remove(0);
                }
            }
            Op::CheckSnapshots => {
                let all = KeyRange {
                    start: Bound::Unbounded,
                    end: Bound::Unbounded,
                };
                for (snap, expected) in &snapshots {
                    assert_eq!(
                        snap.scan(&all, false, usize::MAX).unwrap(),
                        model_scan(expected, &all, false, usize::MAX)
                    );
                    for k in 0..64u8 {
                        assert_eq!(snap.get(&key(k)).unwrap(), expected.get(&key(k)).cloned());
                    }
                }
            }
            Op::Flush => engine.flush().unwrap(),
            Op::Compact => engine.wait_idle(),
            Op::Reopen => {
                snapshots.clear();
                engine.close();
                drop(engine);
                engine = LsmEngine::open(&dir, options.clone()).unwrap();
            }
        }
    }
    let all = KeyRange {
        start: Bound::Unbounded,
        end: Bound::Unbounded,
    };
    engine.wait_idle();
    assert_eq!(
        engine.scan(&all, false, usize::MAX).unwrap(),
        model_scan(&model, &all, false, usize::MAX)
    );
    snapshots.clear();
    engine.close();
    drop(engine);
    let reopened = LsmEngine::open(&dir, options).unwrap();
    assert_eq!(
        reopened.scan(&all, false, usize::MAX).unwrap(),
        model_scan(&model, &all, false, usize::MAX)
    );
    drop(reopened);
    let _ = std::fs::remove_dir_all(&dir);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn engine_matches_a_btreemap(ops in proptest::collection::vec(op_strategy(), 1..400)) {
        run(ops);
    }
}

#[test]
fn many_writes_flush_and_compact_into_levels() {
    let ops: Vec<Op> = (0..3000u16)
        .map(|i| Op::Put((i % 251) as u8, i))
        .chain([Op::Compact, Op::Reopen])
        .collect();
    run(ops);
}

#[test]
fn compaction_moves_data_below_level_zero() {
    let dir = temp_dir();
    let engine = LsmEngine::open(&dir, small_options()).unwrap();
    for i in 0..5000u32 {
        let mut b = WriteBatch::new();
        b.put(Bytes::from(format!("k{:05}", i % 1500)), value(i as u16));
        engine.write(b).unwrap();
    }
    engine.flush().unwrap();
    engine.wait_idle();
    let (levels, _) = engine.level_summary();
    assert!(
        levels[1..].iter().any(|(files, _)| *files > 0),
        "{levels:?}"
    );
    assert!(engine.stats().compactions.load(Ordering::Relaxed) > 0);
    let all = KeyRange {
        start: Bound::Unbounded,
        end: Bound::Unbounded,
    };
    assert_eq!(engine.scan(&all, false, usize::MAX).unwrap().len(), 1500);
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_range_delete_is_one_record_and_its_space_comes_back() {
    let dir = temp_dir();
    let all = KeyRange {
        start: Bound::Unbounded,
        end: Bound::Unbounded,
    };
    let mut engine = LsmEngine::open(&dir, small_options()).unwrap();
    for i in 0..3000u32 {
        let mut b = WriteBatch::new();
        b.put(Bytes::from(format!("d{i:05}")), value(i as u16));
        engine.write(b).unwrap();
    }
    let mut b = WriteBatch::new();
    b.put(Bytes::from("e-outside"), Bytes::from("kept"));
    engine.write(b).unwrap();
    engine.flush().unwrap();
    engine.wait_idle();
    let stored = |e: &LsmEngine| e.level_summary().0.iter().map(|(_, b)| b).sum::<u64>();
    let before = stored(&engine);
    let snapshot = engine.snapshot();

    let mut b = WriteBatch::new();
    b.delete_range(Bytes::from("d"), Bytes::from("e"));
    b.put(Bytes::from("d00007"), Bytes::from("after"));
    engine.write(b).unwrap();
    let visible = engine.scan(&all, false, usize::MAX).unwrap();
    let expected = vec![
        (Bytes::from("d00007"), Bytes::from("after")),
        (Bytes::from("e-outside"), Bytes::from("kept")),
    ];
    assert_eq!(visible, expected);
    assert_eq!(engine.get(b"d00008").unwrap(), None);
    assert_eq!(snapshot.get(b"d00008").unwrap(), Some(value(8)));
    assert_eq!(snapshot.scan(&all, false, usize::MAX).unwrap().len(), 3001);

    // The tombstone survives a restart before any flush (WAL replay) ...
    drop(snapshot);
    engine.close();
    drop(engine);
    engine = LsmEngine::open(&dir, small_options()).unwrap();
    assert_eq!(engine.scan(&all, false, usize::MAX).unwrap(), expected);
    // ... and once no snapshot needs the covered points, compaction reclaims them and the
    // tombstone leaves the version.
    engine.flush().unwrap();
    engine.wait_idle();
    assert_eq!(engine.range_tombstones(), 0);
    let after = stored(&engine);
    assert!(after * 20 < before, "{before} bytes before, {after} after");
    assert_eq!(engine.scan(&all, false, usize::MAX).unwrap(), expected);
    engine.close();
    drop(engine);
    let engine = LsmEngine::open(&dir, small_options()).unwrap();
    assert_eq!(engine.scan(&all, false, usize::MAX).unwrap(), expected);
    assert_eq!(engine.get(b"d00009").unwrap(), None);
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_small_window_of_a_large_range_reads_few_blocks_either_way() {
    let dir = temp_dir();
    let engine = LsmEngine::open(&dir, small_options()).unwrap();
    for i in 0..5000u32 {
        let mut b = WriteBatch::new();
        b.put(Bytes::from(format!("w{i:05}")), value(i as u16));
        engine.write(b).unwrap();
    }
    engine.flush().unwrap();
    engine.wait_idle();
    drop(engine);
    let engine = LsmEngine::open(&dir, small_options()).unwrap();
    let range = KeyRange::half_open(Bytes::from("w"), Bytes::from("x"));
    let tail = engine.scan(&range, true, 3).unwrap();
    let keys: Vec<_> = tail.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, vec!["w04999", "w04998", "w04997"]);
    let head = engine.scan(&range, false, 3).unwrap();
    assert_eq!(head[0].0, "w00000");
    let window_reads = engine.block_reads();
    assert_eq!(engine.scan(&range, false, usize::MAX).unwrap().len(), 5000);
    let full_reads = engine.block_reads() - window_reads;
    assert!(
        window_reads * 5 < full_reads,
        "windows read {window_reads} blocks, the whole range {full_reads}"
    );
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Removes values that start with "dead".
#[derive(Debug)]
struct DeadValues;

impl crate::storage::lsm::CompactionFilter for DeadValues {
    fn remove(
        &self,
        _key: &[u8],
        value: &[u8],
        _lookup: &crate::storage::lsm::FilterLookup,
    ) -> bool {
        value.starts_with(b"dead")
    }
}

#[test]
fn the_compaction_filter_removes_values_without_resurrecting_older_ones() {
    let dir = temp_dir();
    let opts = LsmOptions {
        compaction_filter: Some(std::sync::Arc::new(DeadValues)),
        ..small_options()
    };
    let engine = LsmEngine::open(&dir, opts.clone()).unwrap();
    let key = |i: u32| Bytes::from(format!("f{i:05}"));
    // Old live versions first, pushed down the levels ...
    for i in 0..3000u32 {
        let mut b = WriteBatch::new();
        b.put(key(i), Bytes::from(format!("live-{i}-{}", "x".repeat(100))));
        engine.write(b).unwrap();
    }
    engine.flush().unwrap();
    engine.wait_idle();
    // ... then dead versions of every third key on top: compaction into upper levels must
    // leave a delete behind, or the live version below would come back.
    for i in (0..3000u32).step_by(3) {
        let mut b = WriteBatch::new();
        b.put(key(i), Bytes::from("dead"));
        engine.write(b).unwrap();
    }
    engine.flush().unwrap();
    engine.wait_idle();
    assert!(engine.stats().filtered_values.load(Ordering::Relaxed) > 0);
    for i in 0..3000u32 {
        let got = engine.get(&key(i)).unwrap();
        if i % 3 == 0 {
            assert!(
                got.is_none() || got == Some(Bytes::from("dead")),
                "{i}: {got:?}"
            );
        } else {
            assert!(got.unwrap().starts_with(b"live-"), "{i}");
        }
    }
    // Once everything is compacted, no dead value and no live one under it is visible.
    drop(engine);
    let engine = LsmEngine::open(&dir, opts).unwrap();
    let mut b = WriteBatch::new();
    b.put(Bytes::from("zz"), Bytes::from("x"));
    engine.write(b).unwrap();
    engine.flush().unwrap();
    engine.wait_idle();
    let all = KeyRange {
        start: Bound::Unbounded,
        end: Bound::Unbounded,
    };
    for (k, v) in engine.scan(&all, false, usize::MAX).unwrap() {
        assert!(!v.starts_with(b"live-0-"), "{k:?}");
        if v == "dead" {
            continue; // not compacted yet: the owner treats it as absent
        }
        assert!(v.starts_with(b"live-") || k == "zz", "{k:?}");
    }
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Crash test: a child process (this test binary, re-run) writes with `appendfsync always`
/// and prints each acknowledged key; the parent kill -9s it at varied moments, reopens the
/// directory, and checks every acknowledged write is present and nothing never written
/// appears. `BASALT_CRASH_CYCLES` raises the cycle count (long mode).
#[test]
fn crash_cycles_keep_every_acknowledged_write() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    if let Ok(dir) = std::env::var("BASALT_CRASH_CHILD_DIR") {
        crash_child(PathBuf::from(dir));
        return;
    }
    let cycles: u64 = std::env::var("BASALT_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let dir = temp_dir();
    let mut acked: Vec<u64> = Vec::new();
    let mut highest_sent = 0u64;
    for cycle in 0..cycles {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "storage::lsm::tests::crash_cycles_keep_every_acknowledged_write",
                "--nocapture",
            ])
            .env("BASALT_CRASH_CHILD_DIR", &dir)
            .env("BASALT_CRASH_FIRST", (highest_sent + 1).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = BufReader::new(stdout).lines();
        // Kill after a varying number of acknowledgements (0 to ~300).
        let kill_after = (cycle * 37) % 300;
        let mut seen = 0;
        for line in lines {
            let Ok(line) = line else { break };
            if let Some(n) = line
                .strip_prefix("ack ")
                .and_then(|n| n.parse::<u64>().ok())
            {
                acked.push(n);
                highest_sent = highest_sent.max(n + 1);
                seen += 1;
                if seen > kill_after {
                    break;
                }
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        // The child may have sent one more write than it acknowledged.
        highest_sent += 1;
    }
    assert!(
        acked.len() as u64 >= cycles,
        "every cycle acknowledges at least one write"
    );
    let engine = LsmEngine::open(&dir, small_options()).unwrap();
    for n in &acked {
        assert!(
            engine
                .get(format!("crash{n:010}").as_bytes())
                .unwrap()
                .is_some(),
            "acknowledged write {n} lost"
        );
    }
    let all = KeyRange {
        start: Bound::Unbounded,
        end: Bound::Unbounded,
    };
    for (k, v) in engine.scan(&all, false, usize::MAX).unwrap() {
        let n: u64 = std::str::from_utf8(&k[5..]).unwrap().parse().unwrap();
        assert!(n < highest_sent, "key {n} was never written");
        assert_eq!(v, Bytes::from(format!("value-{n}")));
    }
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The child side of the crash test: write forever, print each acknowledgement.
fn crash_child(dir: PathBuf) {
    use std::io::Write;
    let first: u64 = std::env::var("BASALT_CRASH_FIRST")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let opts = LsmOptions {
        sync: SyncPolicy::Always,
        ..small_options()
    };
    let engine = LsmEngine::open(&dir, opts).unwrap();
    let mut out = std::io::stdout().lock();
    for n in first.. {
        let mut b = WriteBatch::new();
        b.put(
            Bytes::from(format!("crash{n:010}")),
            Bytes::from(format!("value-{n}")),
        );
        engine.write(b).unwrap();
        if writeln!(out, "ack {n}").and_then(|_| out.flush()).is_err() {
            return;
        }
    }
}

/// A flipped byte in an SSTable is reported (with the file) or leaves data unchanged; a WAL
/// cut mid-record loses only the torn batch.
#[test]
fn corruption_is_reported_never_returned() {
    let dir = temp_dir();
    let engine = LsmEngine::open(&dir, small_options()).unwrap();
    for i in 0..400u32 {
        let mut b = WriteBatch::new();
        b.put(Bytes::from(format!("c{i:04}")), value(i as u16));
        engine.write(b).unwrap();
    }
    engine.flush().unwrap();
    engine.wait_idle();
    drop(engine);
    let sst = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sst"))
        .unwrap();
    let clean = std::fs::read(&sst).unwrap();
    let all = KeyRange {
        start: Bound::Unbounded,
        end: Bound::Unbounded,
    };
    for at in (0..clean.len()).step_by(clean.len() / 25 + 1) {
        let mut bytes = clean.clone();
        bytes[at] ^= 0x20;
        std::fs::write(&sst, &bytes).unwrap();
        match LsmEngine::open(&dir, small_options()) {
            Err(e) => assert!(e.to_string().contains(".sst"), "{e}"),
            Ok(engine) => {
                if let Ok(pairs) = engine.scan(&all, false, usize::MAX) {
                    for (k, v) in pairs {
                        let i: u16 = std::str::from_utf8(&k[1..]).unwrap().parse().unwrap();
                        assert_eq!(v, value(i), "byte {at} flipped: wrong data returned");
                    }
                }
            }
        }
    }
    std::fs::write(&sst, &clean).unwrap();
    // Torn WAL: append two batches, cut the second in half.
    let engine = LsmEngine::open(&dir, small_options()).unwrap();
    let mut b = WriteBatch::new();
    b.put(Bytes::from("walkey1"), Bytes::from("one"));
    engine.write(b).unwrap();
    let mut b = WriteBatch::new();
    b.put(Bytes::from("walkey2"), Bytes::from("two"));
    engine.write(b).unwrap();
    engine.close();
    drop(engine);
    let wal = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .max()
        .unwrap();
    let len = std::fs::metadata(&wal).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(len - 4)
        .unwrap();
    let engine = LsmEngine::open(&dir, small_options()).unwrap();
    assert_eq!(engine.get(b"walkey1").unwrap(), Some(Bytes::from("one")));
    assert_eq!(engine.get(b"walkey2").unwrap(), None);
    assert_eq!(engine.get(b"c0007").unwrap(), Some(value(7)));
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writers and readers at once while the worker flushes and compacts: a reader never sees a
/// key go back to an older version, and scans stay sorted and complete.
#[test]
fn concurrent_readers_see_monotonic_versions_during_compaction() {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    let dir = temp_dir();
    let engine = Arc::new(LsmEngine::open(&dir, small_options()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    const KEYS: u64 = 200;
    let mut writers = Vec::new();
    for w in 0..2u64 {
        let engine = engine.clone();
        writers.push(std::thread::spawn(move || {
            for version in 1..=150u64 {
                for k in (w..KEYS).step_by(2) {
                    let mut b = WriteBatch::new();
                    b.put(
                        Bytes::from(format!("m{k:04}")),
                        Bytes::from(format!("{version:08}-{}", "p".repeat(40))),
                    );
                    engine.write(b).unwrap();
                }
            }
        }));
    }
    let mut readers = Vec::new();
    for r in 0..2u64 {
        let (engine, stop) = (engine.clone(), stop.clone());
        readers.push(std::thread::spawn(move || {
            let mut seen = vec![0u64; KEYS as usize];
            let mut rng = r + 1;
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let k = (rng >> 33) % KEYS;
                if let Some(v) = engine.get(format!("m{k:04}").as_bytes()).unwrap() {
                    let version: u64 = std::str::from_utf8(&v[..8]).unwrap().parse().unwrap();
                    assert!(
                        version >= seen[k as usize],
                        "key {k} went back from {} to {version}",
                        seen[k as usize]
                    );
                    seen[k as usize] = version;
                }
                if reads.is_multiple_of(50) {
                    let all = KeyRange {
                        start: Bound::Unbounded,
                        end: Bound::Unbounded,
                    };
                    let pairs = engine.scan(&all, false, usize::MAX).unwrap();
                    assert!(
                        pairs.windows(2).all(|w| w[0].0 < w[1].0),
                        "scan out of order"
                    );
                }
                reads += 1;
            }
            reads
        }));
    }
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    engine.wait_idle();
    let all = KeyRange {
        start: Bound::Unbounded,
        end: Bound::Unbounded,
    };
    let pairs = engine.scan(&all, false, usize::MAX).unwrap();
    assert_eq!(pairs.len() as u64, KEYS);
    assert!(pairs.iter().all(|(_, v)| v.starts_with(b"00000150")));
    assert!(engine.stats().compactions.load(Ordering::Relaxed) > 0);
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A write failure (here: the disk is full) poisons the engine: no retry, every later write
/// fails with an error naming the first failure, and acknowledged data stays readable. The
/// disk is a 1 MiB tmpfs mounted for the test (root is needed: without it the test fails).
#[test]
fn a_failed_write_poisons_the_engine() {
    use std::process::Command;
    let dir = temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        mounted,
        "cannot mount a tmpfs at {} (root is needed to test a full disk)",
        dir.display()
    );
    let result = std::panic::catch_unwind(|| {
        let opts = LsmOptions {
            sync: SyncPolicy::Always,
            ..small_options()
        };
        std::fs::write(dir.join("spare"), vec![0u8; 200 << 10]).unwrap();
        let engine = LsmEngine::open(&dir.join("db"), opts).unwrap();
        let mut acknowledged = Vec::new();
        let mut first_error = None;
        for i in 0..100_000u32 {
            let mut b = WriteBatch::new();
            let key = Bytes::from(format!("p{i:06}"));
            b.put(key.clone(), Bytes::from(vec![b'x'; 1000]));
            match engine.write(b) {
                Ok(()) => acknowledged.push(key),
                Err(e) => {
                    first_error = Some(e.to_string());
                    break;
                }
            }
        }
        let first_error = first_error.expect("a 1 MiB disk fills up");
        assert!(!acknowledged.is_empty());
        // Every later write fails, even once space is available again.
        std::fs::remove_file(dir.join("spare")).unwrap();
        for _ in 0..3 {
            let mut b = WriteBatch::new();
            b.put(Bytes::from("later"), Bytes::from("v"));
            let err = engine.write(b).unwrap_err().to_string();
            assert!(err.contains("poisoned"), "{err} (first: {first_error})");
        }
        assert!(engine
            .info()
            .contains(&("poisoned".to_string(), "1".to_string())));
        for key in acknowledged.iter().step_by(50) {
            assert!(engine.get(key).unwrap().is_some(), "{key:?}");
        }
        drop(engine);
    });
    let _ = Command::new("umount").arg(&dir).status();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// With the WAL off (another log makes writes durable), a restart keeps exactly what was
/// flushed, and `flushed_seqno` says where that ends.
#[test]
fn without_the_wal_a_restart_keeps_what_was_flushed() {
    let dir = temp_dir();
    let opts = LsmOptions {
        wal: false,
        ..small_options()
    };
    let put = |engine: &LsmEngine, i: u32| {
        let mut b = WriteBatch::new();
        b.put(Bytes::from(format!("n{i:03}")), Bytes::from("v"));
        engine.write(b).unwrap();
    };
    let engine = LsmEngine::open(&dir, opts.clone()).unwrap();
    for i in 0..10 {
        put(&engine, i);
    }
    engine.flush().unwrap();
    assert_eq!(engine.flushed_seqno(), 10);
    for i in 10..20 {
        put(&engine, i);
    }
    assert_eq!(engine.last_seqno(), 20);
    assert_eq!(engine.flushed_seqno(), 10);
    drop(engine);
    let engine = LsmEngine::open(&dir, opts).unwrap();
    assert_eq!(engine.flushed_seqno(), 10);
    assert!(engine.get(b"n009").unwrap().is_some());
    assert!(engine.get(b"n010").unwrap().is_none());
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}
