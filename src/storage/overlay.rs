//! An engine of changes held in memory over another engine, never written to it: what a
//! transaction's commands see of each other's writes before the transaction is proposed
//! (EXEC runs them against an overlay to learn their replies, then proposes them as one
//! entry). Reads see the overlay's writes and, where it has none, the base engine as it
//! is now.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::{Engine, KeyRange, Result, Snapshot, WriteBatch, WriteOp};

/// A scan of the base engine: a range and how many pairs at most.
type BaseScan<'a> = &'a dyn Fn(&KeyRange, usize) -> Result<Vec<(Bytes, Bytes)>>;

/// The overlay's changes: written keys (None = deleted) and deleted ranges.
#[derive(Default, Clone)]
struct Changes {
    writes: BTreeMap<Bytes, Option<Bytes>>,
    /// `[start, end)` ranges deleted; a later write in one is in `writes`.
    cleared: Vec<(Bytes, Bytes)>,
}

impl Changes {
    /// What the overlay says of `key`: `Some(value or None)` if it decides, `None` to ask
    /// the base.
    fn lookup(&self, key: &[u8]) -> Option<Option<Bytes>> {
        if let Some(v) = self.writes.get(key) {
            return Some(v.clone());
        }
        self.in_cleared(key).then_some(None)
    }

    fn in_cleared(&self, key: &[u8]) -> bool {
        self.cleared
            .iter()
            .any(|(s, e)| key >= s.as_ref() && key < e.as_ref())
    }

    fn hides(&self, key: &[u8]) -> bool {
        self.writes.contains_key(key) || self.in_cleared(key)
    }

    fn apply(&mut self, batch: WriteBatch) {
        for op in batch.into_ops() {
            match op {
                WriteOp::Put(k, v) => {
                    self.writes.insert(k, Some(v));
                }
                WriteOp::Delete(k) => {
                    self.writes.insert(k, None);
                }
                WriteOp::DeleteRange(start, end) => {
                    if start >= end {
                        continue;
                    }
                    let doomed: Vec<Bytes> = self
                        .writes
                        .range::<[u8], _>((Bound::Included(&start[..]), Bound::Excluded(&end[..])))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in doomed {
                        self.writes.remove(&k);
                    }
                    self.cleared.push((start, end));
                }
            }
        }
    }

    /// Merges up to `limit` pairs of `range` from `base` with the overlay's own.
    fn scan(
        &self,
        base: BaseScan<'_>,
        range: &KeyRange,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        if range.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let page = limit.clamp(16, 4096);
        let mut from_base = Vec::new();
        let mut cursor = range.clone();
        loop {
            let got = base(&cursor, page)?;
            let full = got.len() == page;
            let last = got.last().map(|(k, _)| k.clone());
            from_base.extend(got.into_iter().filter(|(k, _)| !self.hides(k)));
            match last {
                Some(last) if full && from_base.len() < limit => {
                    if reverse {
                        cursor.end = Bound::Excluded(last);
                    } else {
                        cursor.start = Bound::Excluded(last);
                    }
                }
                _ => break,
            }
        }
        let bounds = (as_slice(&range.start), as_slice(&range.end));
        let own = self
            .writes
            .range::<[u8], _>(bounds)
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)));
        let mut own: Vec<(Bytes, Bytes)> = own.collect();
        if reverse {
            own.reverse();
        }
        Ok(merge(from_base, own, reverse, limit))
    }
}

fn as_slice(b: &Bound<Bytes>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_ref()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Two runs in scan order (no key in both) merged, up to `limit` pairs.
fn merge(
    a: Vec<(Bytes, Bytes)>,
    b: Vec<(Bytes, Bytes)>,
    reverse: bool,
    limit: usize,
) -> Vec<(Bytes, Bytes)> {
    let mut out = Vec::with_capacity(limit.min(a.len() + b.len()));
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    while out.len() < limit {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => (x.0 < y.0) != reverse,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
    out
}

/// Changes in memory over `base`. See the module doc.
pub struct OverlayEngine {
    base: Arc<dyn Engine>,
    changes: Mutex<Changes>,
}

impl OverlayEngine {
    pub fn new(base: Arc<dyn Engine>) -> OverlayEngine {
        OverlayEngine {
            base,
            changes: Mutex::new(Changes::default()),
        }
    }
}

impl Engine for OverlayEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        match self.changes.lock().lookup(key) {
            Some(decided) => Ok(decided),
            None => self.base.get(key),
        }
    }

    fn multi_get(&self, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>> {
        keys.iter().map(|k| self.get(k)).collect()
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        self.changes.lock().apply(batch);
        Ok(())
    }

    fn snapshot(&self) -> Box<dyn Snapshot> {
        Box::new(OverlaySnapshot {
            base: Arc::from(self.base.snapshot()),
            changes: self.changes.lock().clone(),
        })
    }

    fn scan(&self, range: &KeyRange, reverse: bool, limit: usize) -> Result<Vec<(Bytes, Bytes)>> {
        let changes = self.changes.lock().clone();
        let base = |r: &KeyRange, n: usize| self.base.scan(r, reverse, n);
        changes.scan(&base, range, reverse, limit)
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn memory_bytes(&self) -> u64 {
        self.base.memory_bytes()
    }
}

struct OverlaySnapshot {
    base: Arc<dyn Snapshot>,
    changes: Changes,
}

impl Snapshot for OverlaySnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        match self.changes.lookup(key) {
            Some(decided) => Ok(decided),
            None => self.base.get(key),
        }
    }

    fn scan(&self, range: &KeyRange, reverse: bool, limit: usize) -> Result<Vec<(Bytes, Bytes)>> {
        let base = |r: &KeyRange, n: usize| self.base.scan(r, reverse, n);
        self.changes.scan(&base, range, reverse, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryEngine;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn keys(pairs: &[(Bytes, Bytes)]) -> Vec<String> {
        pairs
            .iter()
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    #[test]
    fn reads_see_the_overlay_over_the_base_and_the_base_is_untouched() {
        let base = Arc::new(MemoryEngine::new());
        let mut batch = WriteBatch::new();
        for k in ["a", "b", "c", "d", "e"] {
            batch.put(b(k), b("base"));
        }
        base.write(batch).unwrap();
        let overlay = OverlayEngine::new(base.clone());
        let mut batch = WriteBatch::new();
        batch.delete(b("b"));
        batch.put(b("bb"), b("new"));
        batch.delete_range(b("d"), b("e"));
        batch.put(b("c"), b("changed"));
        overlay.write(batch).unwrap();

        assert_eq!(overlay.get(b"b").unwrap(), None);
        assert_eq!(overlay.get(b"c").unwrap(), Some(b("changed")));
        assert_eq!(overlay.get(b"d").unwrap(), None);
        assert_eq!(overlay.get(b"e").unwrap(), Some(b("base")));
        let all = KeyRange::prefix(b"");
        let forward = overlay.scan(&all, false, 100).unwrap();
        assert_eq!(keys(&forward), ["a", "bb", "c", "e"]);
        let backward = overlay.scan(&all, true, 3).unwrap();
        assert_eq!(keys(&backward), ["e", "c", "bb"]);
        let snap = overlay.snapshot().scan(&all, false, 2).unwrap();
        assert_eq!(keys(&snap), ["a", "bb"]);
        assert_eq!(base.get(b"b").unwrap(), Some(b("base")));
        assert_eq!(base.get(b"bb").unwrap(), None);
    }

    #[test]
    fn a_scan_steps_over_many_hidden_base_keys() {
        let base = Arc::new(MemoryEngine::new());
        let mut batch = WriteBatch::new();
        for i in 0..1000 {
            batch.put(Bytes::from(format!("k{i:04}")), b("v"));
        }
        base.write(batch).unwrap();
        let overlay = OverlayEngine::new(base);
        let mut batch = WriteBatch::new();
        batch.delete_range(b("k0000"), b("k0990"));
        overlay.write(batch).unwrap();
        let got = overlay.scan(&KeyRange::prefix(b"k"), false, 5).unwrap();
        assert_eq!(keys(&got), ["k0990", "k0991", "k0992", "k0993", "k0994"]);
    }
}
