//! The keyspace's compaction filter: element records nobody can read any more.
//!
//! An element is dead when its collection's metadata is gone or names another version
//! (DEL, SET over it, a re-created key), or when the collection expired more than
//! [`EXPIRED_GRACE_MS`] ago: no reader sees an expired key, and a write to it starts a new
//! version. The grace keeps a node whose clock runs ahead from dropping what the leader
//! still serves. Metadata records themselves are never filtered: an expired key is deleted
//! through the shard log by the expiry cycle, because DBSIZE counts it until then (as Redis
//! does) and every replica must count the same.

use bytes::Bytes;

use super::encoding::{element_owner, Meta};
use crate::storage::lsm::{CompactionFilter, FilterLookup};

/// How long after its expiry a collection's elements are left alone.
pub const EXPIRED_GRACE_MS: u64 = 60_000;

/// What the filter needs to know of a collection: its live version and expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    version: u64,
    expire_at_ms: u64,
}

#[derive(Debug, Default)]
pub struct ElementFilter {
    /// The last collection looked up in this compaction (compactions walk the elements of
    /// one collection in a row), and what was found.
    last: parking_lot::Mutex<Option<(Bytes, Option<Owner>)>>,
}

impl ElementFilter {
    fn owner(&self, mk: Bytes, lookup: &FilterLookup) -> Result<Option<Owner>, ()> {
        let mut last = self.last.lock();
        if let Some((cached, owner)) = &*last {
            if *cached == mk {
                return Ok(*owner);
            }
        }
        let found = lookup(&mk).map_err(|_| ())?;
        let owner = found.and_then(|raw| Meta::decode(&raw)).and_then(|m| {
            m.collection_header().map(|c| Owner {
                version: c.version,
                expire_at_ms: m.expire_at_ms,
            })
        });
        *last = Some((mk, owner));
        Ok(owner)
    }
}

impl CompactionFilter for ElementFilter {
    fn begin(&self) {
        *self.last.lock() = None;
    }

    fn remove(&self, key: &[u8], _value: &[u8], lookup: &FilterLookup) -> bool {
        let Some((mk, version)) = element_owner(key) else {
            return false;
        };
        match self.owner(mk, lookup) {
            Err(()) => false,
            Ok(None) => true,
            Ok(Some(owner)) => {
                let expired_long_ago = owner.expire_at_ms != 0
                    && owner.expire_at_ms.saturating_add(EXPIRED_GRACE_MS) < crate::clock::now_ms();
                owner.version != version || expired_long_ago
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Slot;
    use crate::keyspace::encoding::{element_key, meta_key, Encoding, ValueType};

    #[test]
    fn elements_of_gone_replaced_or_long_expired_collections_are_removed() {
        let now = crate::clock::now_ms();
        let element = element_key(0, Slot(3), b"h", 7, b"field");
        let check = |meta: Option<Meta>| {
            let filter = ElementFilter::default();
            let stored = meta.map(|m| m.encode());
            let lookup = |k: &[u8]| {
                assert_eq!(k, &meta_key(0, Slot(3), b"h")[..]);
                Ok(stored.clone())
            };
            filter.remove(&element, b"", &lookup)
        };
        let hash = |version, expire_at_ms| Meta {
            expire_at_ms,
            ..Meta::collection(ValueType::Hash, Encoding::Listpack, version, 1)
        };
        assert!(!check(Some(hash(7, 0))), "live");
        assert!(check(None), "deleted");
        assert!(check(Some(hash(8, 0))), "re-created");
        assert!(
            check(Some(Meta::string(Bytes::from("v"), 1, 0))),
            "replaced by a string"
        );
        assert!(!check(Some(hash(7, now + 10_000))), "expires later");
        assert!(
            !check(Some(hash(7, now - 1_000))),
            "expired within the grace"
        );
        assert!(
            check(Some(hash(7, now - EXPIRED_GRACE_MS - 1_000))),
            "expired long ago"
        );
        // A failed lookup keeps the element; other records are never removed.
        let filter = ElementFilter::default();
        let failing = |_: &[u8]| Err(crate::storage::StorageError::Poisoned("test".into()));
        assert!(!filter.remove(&element, b"", &failing));
        let ok_none = |_: &[u8]| Ok(None);
        assert!(!filter.remove(&meta_key(0, Slot(3), b"h"), b"", &ok_none));
    }
}
