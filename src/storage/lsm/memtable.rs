//! The memtable: recent changes in a concurrent skiplist, with byte accounting.
//!
//! Entries are internal keys (user key, sequence number, kind) → value, newest version of a
//! key first. Readers see a version only if its sequence number is at or below their
//! snapshot. Range tombstones written to this memtable sit beside the skiplist until the
//! memtable is flushed. A memtable is written by one writer at a time (the engine's write
//! path) and read concurrently.

use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;
use parking_lot::RwLock;

use super::key::{InternalKey, Kind, SEQNO_MAX};
use super::range_del::{covering_seqno, RangeTombstone};

/// Per-entry overhead counted on top of key and value bytes (skiplist node and links).
const ENTRY_OVERHEAD_BYTES: usize = 64;

/// What a memtable or table knows about a key at a snapshot: its newest version there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Value(Bytes),
    Deleted,
}

/// A [`Lookup`] with the sequence number of the version found.
pub type Found = (Lookup, u64);

#[derive(Default)]
pub struct Memtable {
    map: SkipMap<InternalKey, Bytes>,
    range_dels: RwLock<Vec<RangeTombstone>>,
    range_del_count: AtomicUsize,
    bytes: AtomicUsize,
    max_seqno: AtomicU64,
}

impl Memtable {
    pub fn new() -> Memtable {
        Memtable::default()
    }

    pub fn insert(&self, user_key: Bytes, seqno: u64, kind: Kind, value: Bytes) {
        let size = user_key.len() + value.len() + ENTRY_OVERHEAD_BYTES;
        self.map
            .insert(InternalKey::new(user_key, seqno, kind), value);
        self.bytes.fetch_add(size, Ordering::Relaxed);
        self.max_seqno.fetch_max(seqno, Ordering::Relaxed);
    }

    /// Records a delete of `[start, end)` at `seqno`.
    pub fn insert_range_delete(&self, start: Bytes, end: Bytes, seqno: u64) {
        let tombstone = RangeTombstone { start, end, seqno };
        self.bytes.fetch_add(tombstone.bytes(), Ordering::Relaxed);
        self.range_dels.write().push(tombstone);
        self.range_del_count.fetch_add(1, Ordering::Release);
        self.max_seqno.fetch_max(seqno, Ordering::Relaxed);
    }

    /// The range tombstones written here.
    pub fn range_dels(&self) -> Vec<RangeTombstone> {
        self.range_dels.read().clone()
    }

    /// Whether any range tombstone was written here (cheap; for the read paths).
    pub fn has_range_dels(&self) -> bool {
        self.range_del_count.load(Ordering::Acquire) > 0
    }

    /// The highest range tombstone seqno at or below `snapshot` covering `user_key`.
    pub fn covering_seqno(&self, user_key: &[u8], snapshot: u64) -> u64 {
        if !self.has_range_dels() {
            return 0;
        }
        covering_seqno(self.range_dels.read().iter(), user_key, snapshot)
    }

    /// Approximate memory held.
    pub fn approximate_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// No points and no range tombstones.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty() && !self.has_range_dels()
    }

    pub fn max_seqno(&self) -> u64 {
        self.max_seqno.load(Ordering::Relaxed)
    }

    /// The newest version of `user_key` visible at `snapshot`.
    pub fn get(&self, user_key: &[u8], snapshot: u64) -> Option<Found> {
        let seek = InternalKey::new(
            Bytes::copy_from_slice(user_key),
            snapshot.min(SEQNO_MAX),
            Kind::Put,
        );
        let entry = self.map.range(seek..).next()?;
        let key = entry.key();
        if key.user_key != user_key {
            return None;
        }
        let lookup = match key.kind {
            Kind::Put => Lookup::Value(entry.value().clone()),
            Kind::Delete => Lookup::Deleted,
        };
        Some((lookup, key.seqno))
    }

    /// Every entry up to `end` (an internal key), in descending internal-key order.
    pub fn entries_until_rev(
        &self,
        end: Bound<InternalKey>,
    ) -> impl Iterator<Item = (InternalKey, Bytes)> + '_ {
        self.map
            .range((Bound::Unbounded, end))
            .rev()
            .map(|e| (e.key().clone(), e.value().clone()))
    }

    /// Every entry from `start` (inclusive, an internal key) on, in internal-key order.
    pub fn entries_from(
        &self,
        start: Bound<InternalKey>,
    ) -> impl Iterator<Item = (InternalKey, Bytes)> + '_ {
        self.map
            .range((start, Bound::Unbounded))
            .map(|e| (e.key().clone(), e.value().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_see_their_versions() {
        let m = Memtable::new();
        m.insert(Bytes::from("k"), 1, Kind::Put, Bytes::from("v1"));
        m.insert(Bytes::from("k"), 5, Kind::Put, Bytes::from("v5"));
        m.insert(Bytes::from("k"), 7, Kind::Delete, Bytes::new());
        m.insert(Bytes::from("kk"), 2, Kind::Put, Bytes::from("other"));
        assert_eq!(m.get(b"k", 0), None);
        assert_eq!(m.get(b"k", 1), Some((Lookup::Value(Bytes::from("v1")), 1)));
        assert_eq!(m.get(b"k", 6), Some((Lookup::Value(Bytes::from("v5")), 5)));
        assert_eq!(m.get(b"k", 7), Some((Lookup::Deleted, 7)));
        assert_eq!(m.get(b"j", 9), None);
        assert_eq!(m.max_seqno(), 7);
        assert!(m.approximate_bytes() > 0);
        let all: Vec<_> = m
            .entries_from(Bound::Unbounded)
            .map(|(k, _)| k.seqno)
            .collect();
        assert_eq!(all, vec![7, 5, 1, 2]);
        let back: Vec<_> = m
            .entries_until_rev(Bound::Included(InternalKey::new("k", 0, Kind::Delete)))
            .map(|(k, _)| k.seqno)
            .collect();
        assert_eq!(back, vec![1, 5, 7]);
    }
}
