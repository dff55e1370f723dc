//! The in-memory engine: a copy-on-write `BTreeMap`.
//!
//! Readers take an `Arc` of the current map under a short lock, so a snapshot is O(1); a write
//! clones the map only while a snapshot of it is still alive. Good for tests and for the
//! foundation; the LSM engine replaces it as the default.

use super::{Engine, KeyRange, Result, Snapshot, WriteBatch, WriteOp};
use bytes::Bytes;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

type Map = BTreeMap<Bytes, Bytes>;

#[derive(Default)]
pub struct MemoryEngine {
    map: RwLock<Arc<Map>>,
    bytes: AtomicU64,
}

impl MemoryEngine {
    pub fn new() -> Self {
        Self::default()
    }
}

struct MemorySnapshot(Arc<Map>);

fn range_bounds(range: &KeyRange) -> (Bound<&[u8]>, Bound<&[u8]>) {
    fn conv(b: &Bound<Bytes>) -> Bound<&[u8]> {
        match b {
            Bound::Included(k) => Bound::Included(k.as_ref()),
            Bound::Excluded(k) => Bound::Excluded(k.as_ref()),
            Bound::Unbounded => Bound::Unbounded,
        }
    }
    (conv(&range.start), conv(&range.end))
}

fn is_empty_range(range: &KeyRange) -> bool {
    match (&range.start, &range.end) {
        (Bound::Included(s), Bound::Excluded(e)) => s >= e,
        (Bound::Excluded(s), Bound::Excluded(e)) | (Bound::Excluded(s), Bound::Included(e)) => {
            s >= e
        }
        (Bound::Included(s), Bound::Included(e)) => s > e,
        _ => false,
    }
}

fn scan_map(map: &Map, range: &KeyRange, reverse: bool, limit: usize) -> Vec<(Bytes, Bytes)> {
    if is_empty_range(range) {
        return Vec::new();
    }
    let iter = map.range::<[u8], _>(range_bounds(range));
    let pairs = |(k, v): (&Bytes, &Bytes)| (k.clone(), v.clone());
    if reverse {
        iter.rev().take(limit).map(pairs).collect()
    } else {
        iter.take(limit).map(pairs).collect()
    }
}

impl Snapshot for MemorySnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.0.get(key).cloned())
    }
    fn scan(&self, range: &KeyRange, reverse: bool, limit: usize) -> Result<Vec<(Bytes, Bytes)>> {
        Ok(scan_map(&self.0, range, reverse, limit))
    }
}

fn entry_bytes(k: &[u8], v: &[u8]) -> u64 {
    (k.len() + v.len() + 48) as u64
}

impl Engine for MemoryEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.map.read().get(key).cloned())
    }

    fn multi_get(&self, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>> {
        let map = self.map.read();
        Ok(keys.iter().map(|k| map.get(k).cloned()).collect())
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        let mut guard = self.map.write();
        let map = Arc::make_mut(&mut guard);
        let mut added: i64 = 0;
        for op in batch.into_ops() {
            match op {
                WriteOp::Put(k, v) => {
                    added += entry_bytes(&k, &v) as i64;
                    if let Some(old) = map.insert(k.clone(), v) {
                        added -= entry_bytes(&k, &old) as i64;
                    }
                }
                WriteOp::Delete(k) => {
                    if let Some(old) = map.remove(&k) {
                        added -= entry_bytes(&k, &old) as i64;
                    }
                }
                WriteOp::DeleteRange(start, end) => {
                    if start >= end {
                        continue;
                    }
                    let doomed: Vec<Bytes> = map
                        .range::<[u8], _>((Bound::Included(&start[..]), Bound::Excluded(&end[..])))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in doomed {
                        if let Some(old) = map.remove(&k) {
                            added -= entry_bytes(&k, &old) as i64;
                        }
                    }
                }
            }
        }
        if added >= 0 {
            self.bytes.fetch_add(added as u64, Ordering::Relaxed);
        } else {
            self.bytes
                .fetch_sub(added.unsigned_abs(), Ordering::Relaxed);
        }
        Ok(())
    }

    fn snapshot(&self) -> Box<dyn Snapshot> {
        Box::new(MemorySnapshot(self.map.read().clone()))
    }

    fn scan(&self, range: &KeyRange, reverse: bool, limit: usize) -> Result<Vec<(Bytes, Bytes)>> {
        Ok(scan_map(&self.map.read(), range, reverse, limit))
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn memory_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn info(&self) -> Vec<(String, String)> {
        vec![("storage_engine".to_string(), "memory".to_string())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_scan_snapshot_and_delete_range() {
        let engine = MemoryEngine::new();
        let mut batch = WriteBatch::new();
        for k in ["a1", "a2", "b1", "b2", "c1"] {
            batch.put(Bytes::from(k), Bytes::from("v"));
        }
        engine.write(batch).unwrap();
        let snap = engine.snapshot();
        let mut batch = WriteBatch::new();
        batch.delete_range(Bytes::from("b"), Bytes::from("c"));
        batch.delete(Bytes::from("a1"));
        engine.write(batch).unwrap();
        let keys = |pairs: Vec<(Bytes, Bytes)>| pairs.into_iter().map(|p| p.0).collect::<Vec<_>>();
        let all = KeyRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        };
        assert_eq!(
            keys(engine.scan(&all, false, 10).unwrap()),
            vec!["a2", "c1"]
        );
        assert_eq!(
            snap.scan(&KeyRange::prefix(b"b"), true, 10).unwrap().len(),
            2
        );
        assert_eq!(keys(snap.scan(&all, true, 2).unwrap()), vec!["c1", "b2"]);
        assert_eq!(engine.get(b"a1").unwrap(), None);
        assert_eq!(snap.get(b"a1").unwrap(), Some(Bytes::from("v")));
    }
}
