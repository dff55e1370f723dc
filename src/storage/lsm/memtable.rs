//! The memtable: recent changes in an arena-backed skiplist (`skiplist.rs`), with byte
//! accounting.
//!
//! Entries are internal keys (user key, sequence number, kind) → value, newest version of a
//! key first. Readers see a version only if its sequence number is at or below their
//! snapshot. Range tombstones written to this memtable sit beside the skiplist until the
//! memtable is flushed. A memtable is written by one writer at a time (the engine's write
//! path) and read concurrently. An optional bloom filter (`mem_filter.rs`) over its keys and
//! key groups lets reads pass over a memtable that holds none of what they look for.
//! Versions the garbage collector removes (`gc.rs`) are unlinked, not freed: the byte count,
//! which decides when the memtable is full, counts every entry ever written. A point index
//! (`point_index.rs`) finds each key's newest version by hash, so a point read of the
//! current state does not search the skiplist.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use super::bloom;
use super::key::{InternalKey, Kind, SEQNO_MAX};
use super::mem_filter::MemFilter;
use super::point_index::{self, Newest, PointIndex};
use super::prefix::PrefixExtractor;
use super::range_del::{RangeDels, RangeTombstone};
use super::skiplist::SkipList;

pub use super::skiplist::Entry;

/// Per-entry overhead counted on top of key and value bytes (node header and links).
const ENTRY_OVERHEAD_BYTES: usize = 64;

/// Memory an entry is counted for.
fn entry_bytes(user_key: &[u8], value: &[u8]) -> usize {
    user_key.len() + value.len() + ENTRY_OVERHEAD_BYTES
}

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
    list: SkipList,
    index: PointIndex,
    /// The user keys and group prefixes written here (none: every read searches).
    filter: Option<MemFilter>,
    prefixes: Option<Arc<dyn PrefixExtractor>>,
    /// Replaced whole on each (rare) insert, so readers hold it without the lock.
    range_dels: RwLock<Arc<RangeDels>>,
    range_del_count: AtomicUsize,
    bytes: AtomicUsize,
    /// Point deletes held (what scans step over until compaction drops them).
    deletes: AtomicUsize,
    max_seqno: AtomicU64,
}

/// An insert that hid an older version of its key written to the same memtable.
pub struct Hidden {
    /// The version hidden.
    pub older: InternalKey,
    /// The version just written.
    pub newer: InternalKey,
}

fn newest(entry: &Entry<'_>) -> Newest {
    Newest {
        seqno: entry.seqno(),
        kind: entry.kind(),
        value: entry.value().clone(),
    }
}

fn lookup(version: Newest) -> Found {
    let found = match version.kind {
        Kind::Put => Lookup::Value(version.value),
        Kind::Delete => Lookup::Deleted,
    };
    (found, version.seqno)
}

impl Memtable {
    pub fn new() -> Memtable {
        Memtable::default()
    }

    /// A memtable with a bloom filter of about `filter_bits` bits over its user keys and,
    /// when `prefixes` is given, their group prefixes.
    pub fn with_filter(filter_bits: usize, prefixes: Option<Arc<dyn PrefixExtractor>>) -> Memtable {
        Memtable {
            filter: Some(MemFilter::with_bits(filter_bits)),
            prefixes,
            ..Memtable::default()
        }
    }

    /// Whether a user key with this hash (`bloom::hash64`) may have been written here.
    pub fn may_contain(&self, hash: u64) -> bool {
        self.filter.as_ref().is_none_or(|f| f.may_contain(hash))
    }

    /// Whether keys of the group whose prefix has this hash, under the grouping named
    /// `extractor`, may have been written here.
    pub fn may_contain_group(&self, extractor: u32, prefix_hash: u64) -> bool {
        let grouped = self.prefixes.as_ref().is_some_and(|p| p.id() == extractor);
        !grouped || self.may_contain(prefix_hash)
    }

    /// Adds a version; says which older version of the key written here it hides, if any.
    /// Only the engine's writer calls this (and [`Memtable::remove`]).
    pub fn insert(&self, user_key: Bytes, seqno: u64, kind: Kind, value: Bytes) -> Option<Hidden> {
        self.bytes
            .fetch_add(entry_bytes(&user_key, &value), Ordering::Relaxed);
        if kind == Kind::Delete {
            self.deletes.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(filter) = &self.filter {
            filter.insert(bloom::hash64(&user_key));
            let prefix = self.prefixes.as_ref().and_then(|p| p.prefix_len(&user_key));
            if let Some(prefix) = prefix.and_then(|len| user_key.get(..len)) {
                filter.insert(bloom::hash64(prefix));
            }
        }
        self.max_seqno.fetch_max(seqno, Ordering::Relaxed);
        if self
            .index
            .note(user_key.clone(), seqno, kind, value.clone())
        {
            self.bytes
                .fetch_add(point_index::ENTRY_BYTES, Ordering::Relaxed);
        }
        let entry = self.list.insert(&user_key, seqno, kind, value);
        // A key's versions sort newest first: the entry after this one, if it is of the same
        // key, is the version it hides.
        let older = entry.next()?;
        (older.user_key() == &user_key[..]).then(|| Hidden {
            older: InternalKey::new(user_key.clone(), older.seqno(), older.kind()),
            newer: InternalKey::new(user_key, seqno, kind),
        })
    }

    /// Unlinks one version (one no reader can see any more).
    pub fn remove(&self, key: &InternalKey) {
        if let Some((_, Kind::Delete)) = self.list.unlink(&key.user_key, key.seqno, key.kind) {
            self.deletes.fetch_sub(1, Ordering::Relaxed);
        }
        self.index.removed(&key.user_key, key.seqno, || {
            let entry = self.list.seek_ge(&key.user_key, SEQNO_MAX, Kind::Put)?;
            (entry.user_key() == &key.user_key[..]).then(|| newest(&entry))
        });
    }

    /// Whether `key` is here and is the only version of its user key here.
    pub fn is_only_version(&self, key: &InternalKey) -> bool {
        let Some(entry) = self.list.seek_ge(&key.user_key, key.seqno, key.kind) else {
            return false;
        };
        if entry.user_key() != &key.user_key[..] || entry.seqno() != key.seqno {
            return false;
        }
        let same_key =
            |other: Option<Entry<'_>>| other.is_some_and(|o| o.user_key() == &key.user_key[..]);
        !same_key(entry.prev()) && !same_key(entry.next())
    }

    /// Records a delete of `[start, end)` at `seqno`.
    pub fn insert_range_delete(&self, start: Bytes, end: Bytes, seqno: u64) {
        let tombstone = RangeTombstone { start, end, seqno };
        self.bytes.fetch_add(tombstone.bytes(), Ordering::Relaxed);
        Arc::make_mut(&mut self.range_dels.write()).insert(tombstone);
        self.range_del_count.fetch_add(1, Ordering::Release);
        self.max_seqno.fetch_max(seqno, Ordering::Relaxed);
    }

    /// The range tombstones written here.
    pub fn range_dels(&self) -> Vec<RangeTombstone> {
        self.range_dels.read().iter().cloned().collect()
    }

    /// The range tombstones written here, indexed.
    pub fn range_del_index(&self) -> Arc<RangeDels> {
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
        self.range_dels.read().covering_seqno(user_key, snapshot)
    }

    /// Point deletes held.
    pub fn deletes(&self) -> usize {
        self.deletes.load(Ordering::Relaxed)
    }

    /// Entries held (every version and delete not removed).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Approximate memory held: every entry ever written, removed or not.
    pub fn approximate_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Nothing was ever written here (what garbage collection removed still counts: its
    /// sequence numbers must reach the flushed state).
    pub fn is_empty(&self) -> bool {
        self.max_seqno() == 0
    }

    pub fn max_seqno(&self) -> u64 {
        self.max_seqno.load(Ordering::Relaxed)
    }

    /// The newest version of `user_key` visible at `snapshot`.
    pub fn get(&self, user_key: &[u8], snapshot: u64) -> Option<Found> {
        let newest_here = self.index.newest(user_key)?;
        if newest_here.seqno <= snapshot {
            return Some(lookup(newest_here));
        }
        // An older snapshot: its version, if any, is further down the skiplist.
        let entry = self
            .list
            .seek_ge(user_key, snapshot.min(SEQNO_MAX), Kind::Put)?;
        (entry.user_key() == user_key).then(|| lookup(newest(&entry)))
    }

    /// The first entry, in internal-key order.
    pub fn first(&self) -> Option<Entry<'_>> {
        self.list.first()
    }

    /// The last entry.
    pub fn last(&self) -> Option<Entry<'_>> {
        self.list.last_entry()
    }

    /// The first entry at or after `key`.
    pub fn seek(&self, key: &InternalKey) -> Option<Entry<'_>> {
        self.list
            .seek_ge(&key.user_key, key.seqno.min(SEQNO_MAX), key.kind)
    }

    /// The last entry at or before `key`.
    pub fn seek_for_prev(&self, key: &InternalKey) -> Option<Entry<'_>> {
        self.list
            .seek_le(&key.user_key, key.seqno.min(SEQNO_MAX), key.kind)
    }

    /// Every entry, in internal-key order.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_>> + '_ {
        std::iter::successors(self.first(), |e| e.next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_see_their_versions() {
        let m = Memtable::new();
        assert!(m
            .insert(Bytes::from("k"), 1, Kind::Put, Bytes::from("v1"))
            .is_none());
        let hidden = m.insert(Bytes::from("k"), 5, Kind::Put, Bytes::from("v5"));
        let hidden = hidden.expect("v5 hides v1");
        assert_eq!(hidden.older, InternalKey::new("k", 1, Kind::Put));
        assert_eq!(hidden.newer, InternalKey::new("k", 5, Kind::Put));
        let hidden = m.insert(Bytes::from("k"), 7, Kind::Delete, Bytes::new());
        assert_eq!(hidden.map(|h| h.older.seqno), Some(5));
        assert!(m
            .insert(Bytes::from("kk"), 2, Kind::Put, Bytes::from("other"))
            .is_none());
        assert_eq!(m.get(b"k", 0), None);
        assert_eq!(m.get(b"k", 1), Some((Lookup::Value(Bytes::from("v1")), 1)));
        assert_eq!(m.get(b"k", 6), Some((Lookup::Value(Bytes::from("v5")), 5)));
        assert_eq!(m.get(b"k", 7), Some((Lookup::Deleted, 7)));
        assert_eq!(m.get(b"j", 9), None);
        assert_eq!(m.max_seqno(), 7);
        assert!(m.approximate_bytes() > 0);
        let all: Vec<_> = m.entries().map(|e| e.seqno()).collect();
        assert_eq!(all, vec![7, 5, 1, 2]);
        let back = m
            .seek_for_prev(&InternalKey::new("k", 0, Kind::Delete))
            .unwrap();
        assert_eq!(back.seqno(), 1);
        assert_eq!(back.prev().map(|e| e.seqno()), Some(5));

        let delete = InternalKey::new("k", 7, Kind::Delete);
        assert!(!m.is_only_version(&delete));
        let before = m.approximate_bytes();
        m.remove(&InternalKey::new("k", 1, Kind::Put));
        m.remove(&InternalKey::new("k", 5, Kind::Put));
        assert_eq!(before, m.approximate_bytes(), "removal frees nothing");
        assert_eq!((m.len(), m.deletes()), (2, 1));
        assert!(m.is_only_version(&delete));
        assert!(m.is_only_version(&InternalKey::new("kk", 2, Kind::Put)));
        assert_eq!(m.get(b"k", 6), None);
        m.remove(&delete);
        assert!(!m.is_only_version(&delete));
        assert!(!m.is_empty(), "written to, though nothing of k is left");
        assert_eq!((m.len(), m.deletes()), (1, 0));
        assert!(
            m.may_contain(bloom::hash64(b"nothing")),
            "no filter: every key may be here"
        );
    }

    #[derive(Debug)]
    struct FirstByte;

    impl PrefixExtractor for FirstByte {
        fn id(&self) -> u32 {
            9
        }
        fn prefix_len(&self, key: &[u8]) -> Option<usize> {
            (!key.is_empty()).then_some(1)
        }
    }

    #[test]
    fn the_filter_knows_the_keys_and_groups_written() {
        let m = Memtable::with_filter(1 << 16, Some(Arc::new(FirstByte)));
        for i in 0..100 {
            m.insert(Bytes::from(format!("a{i}")), i + 1, Kind::Put, Bytes::new());
        }
        assert!((0..100).all(|i| m.may_contain(bloom::hash64(format!("a{i}").as_bytes()))));
        let absent = (0..1000)
            .filter(|i| m.may_contain(bloom::hash64(format!("b{i}").as_bytes())))
            .count();
        assert!(absent < 20, "{absent} of 1,000 absent keys may be here");
        assert!(m.may_contain_group(9, bloom::hash64(b"a")));
        assert!(!m.may_contain_group(9, bloom::hash64(b"z")));
        // Another grouping's prefixes were never recorded: the answer is "may be".
        assert!(m.may_contain_group(3, bloom::hash64(b"z")));
    }
}
