//! Model test: the LSM engine against a `BTreeMap` under random put, delete, delete-range,
//! get, scan, snapshot, flush, compaction and reopen. Shrunk failures become named tests
//! below the property.

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
    Delete(u8),
    DeleteRange(u8, u8),
    Get(u8),
    Scan(u8, u8, bool, usize),
    TakeSnapshot,
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
        2 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::DeleteRange(a, b)),
        15 => any::<u8>().prop_map(Op::Get),
        6 => (any::<u8>(), any::<u8>(), any::<bool>(), 1usize..20).prop_map(|(a, b, r, l)| Op::Scan(a, b, r, l)),
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
    let dir = temp_dir();
    let mut engine = LsmEngine::open(&dir, small_options()).unwrap();
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
            Op::Scan(a, b, reverse, limit) => {
                let (a, b) = ordered(a, b);
                let range = KeyRange {
                    start: Bound::Included(a),
                    end: Bound::Excluded(b),
                };
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
                engine = LsmEngine::open(&dir, small_options()).unwrap();
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
    let reopened = LsmEngine::open(&dir, small_options()).unwrap();
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
