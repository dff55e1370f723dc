//! A memtable's point index: the newest version of each user key written to the memtable,
//! found by hash. A point read at a snapshot that sees that version (nearly every read of
//! the current state) skips the skiplist search, the largest single cost of GET and of a
//! write's read of the value it replaces; an older snapshot, or a key whose newest version
//! it cannot see yet, searches the skiplist as before. A key absent here was never written
//! to the memtable.
//!
//! The engine's writer updates it in the same step as the skiplist, before it publishes
//! the sequence numbers written, so a reader never finds a key missing here that its
//! snapshot could see in the skiplist.

use std::collections::HashMap;

use bytes::Bytes;
use parking_lot::RwLock;

use super::key::Kind;

/// Shards of the index (each behind its own lock).
const SHARDS: usize = 16;

/// Bytes an indexed key is counted for in the memtable's size (map slot, key and value
/// handles), beside its skiplist entry.
pub const ENTRY_BYTES: usize = 96;

/// The newest version of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newest {
    pub seqno: u64,
    pub kind: Kind,
    pub value: Bytes,
}

type Shard = RwLock<HashMap<Bytes, Newest, ahash::RandomState>>;

pub struct PointIndex {
    hasher: ahash::RandomState,
    shards: Box<[Shard]>,
}

impl Default for PointIndex {
    fn default() -> PointIndex {
        PointIndex {
            hasher: ahash::RandomState::new(),
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

impl PointIndex {
    fn shard(&self, user_key: &[u8]) -> &Shard {
        let hash = self.hasher.hash_one(user_key);
        &self.shards[(hash as usize) % SHARDS]
    }

    /// Records a version; true if the key is new here. An older version than the one
    /// recorded changes nothing.
    pub fn note(&self, user_key: Bytes, seqno: u64, kind: Kind, value: Bytes) -> bool {
        let mut shard = self.shard(&user_key).write();
        match shard.get_mut(&user_key[..]) {
            Some(newest) => {
                if seqno > newest.seqno {
                    *newest = Newest { seqno, kind, value };
                }
                false
            }
            None => {
                shard.insert(user_key, Newest { seqno, kind, value });
                true
            }
        }
    }

    /// The newest version of `user_key` written here, if any.
    pub fn newest(&self, user_key: &[u8]) -> Option<Newest> {
        self.shard(user_key).read().get(user_key).cloned()
    }

    /// The version `seqno` of `user_key` was removed: if it was the one recorded, the
    /// newest remaining (`remaining`, looked up in the skiplist) takes its place.
    pub fn removed(&self, user_key: &[u8], seqno: u64, remaining: impl FnOnce() -> Option<Newest>) {
        let mut shard = self.shard(user_key).write();
        if shard.get(user_key).is_none_or(|n| n.seqno != seqno) {
            return;
        }
        match remaining() {
            Some(newest) => {
                if let Some(slot) = shard.get_mut(user_key) {
                    *slot = newest;
                }
            }
            None => {
                shard.remove(user_key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_version_stays_and_a_removal_falls_back() {
        let index = PointIndex::default();
        assert!(index.note(Bytes::from("k"), 3, Kind::Put, Bytes::from("v3")));
        assert!(!index.note(Bytes::from("k"), 5, Kind::Delete, Bytes::new()));
        assert!(!index.note(Bytes::from("k"), 4, Kind::Put, Bytes::from("late")));
        let newest = index.newest(b"k").unwrap();
        assert_eq!((newest.seqno, newest.kind), (5, Kind::Delete));
        assert_eq!(index.newest(b"j"), None);
        // Removing another version changes nothing; removing the newest falls back.
        index.removed(b"k", 3, || panic!("not asked"));
        let older = Newest {
            seqno: 3,
            kind: Kind::Put,
            value: Bytes::from("v3"),
        };
        index.removed(b"k", 5, || Some(older.clone()));
        assert_eq!(index.newest(b"k"), Some(older));
        index.removed(b"k", 3, || None);
        assert_eq!(index.newest(b"k"), None);
    }
}
