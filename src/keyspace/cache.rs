//! The collection cache: the elements of small collections read whole (HGETALL, SMEMBERS,
//! LRANGE 0 -1 …), by physical database and key, each tagged with the revision and version
//! of the metadata it was read under.
//!
//! A reader has the key's metadata anyway (type, expiry, version); an entry serves it only
//! if its revision and version are the metadata's. Every change to a collection's records
//! stamps the key's revision (`Txn::commit`), and a revision names one change of one
//! shard's log, so equal revisions mean equal contents: entries are never invalidated,
//! only replaced or evicted. Elements are copied into one buffer per entry, so a cached
//! collection pins no data block or memtable value.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::storage::lsm::cache::LruCache;

/// Collections larger than this are read from the engine each time.
pub const ELEMENTS_MAX: usize = 1024;
const BYTES_MAX: usize = 64 << 10;
/// Bytes counted per cached element beside its field and value.
const ELEMENT_OVERHEAD_BYTES: usize = 64;

/// The elements of one collection, as a reader gets them.
pub type Elements = Arc<[(Bytes, Bytes)]>;

#[derive(Clone)]
struct Cached {
    revision: u64,
    version: u64,
    elements: Elements,
}

pub struct CollectionCache {
    entries: LruCache<(u8, Bytes), Cached>,
}

impl CollectionCache {
    /// A cache of up to `capacity_bytes` (0: off).
    pub fn new(capacity_bytes: usize) -> CollectionCache {
        CollectionCache {
            entries: LruCache::new(capacity_bytes),
        }
    }

    /// The elements of `key` (physical database `pdb`) if cached at this revision and version.
    pub fn get(&self, pdb: u8, key: &[u8], revision: u64, version: u64) -> Option<Elements> {
        if !self.entries.enabled() {
            return None;
        }
        let hash = self.entries.hash_of(&(pdb, key));
        let is_key = |(p, k): &(u8, Bytes)| *p == pdb && k[..] == *key;
        let cached = self.entries.get(hash, is_key)?;
        (cached.revision == revision && cached.version == version).then_some(cached.elements)
    }

    /// Keeps a copy of `elements`, read under this revision and version, if small enough;
    /// returns them for the reader either way.
    pub fn put(
        &self,
        pdb: u8,
        key: &[u8],
        revision: u64,
        version: u64,
        elements: Vec<(Bytes, Bytes)>,
    ) -> Elements {
        let bytes: usize = elements
            .iter()
            .map(|(f, v)| f.len() + v.len() + ELEMENT_OVERHEAD_BYTES)
            .sum();
        if !self.entries.enabled() || elements.len() > ELEMENTS_MAX || bytes > BYTES_MAX {
            return elements.into();
        }
        let mut buf = BytesMut::with_capacity(bytes);
        for (f, v) in &elements {
            buf.extend_from_slice(f);
            buf.extend_from_slice(v);
        }
        let mut all = buf.freeze();
        let copied: Elements = elements
            .iter()
            .map(|(f, v)| {
                let field = all.split_to(f.len());
                (field, all.split_to(v.len()))
            })
            .collect();
        let entry = Cached {
            revision,
            version,
            elements: copied.clone(),
        };
        let hash = self.entries.hash_of(&(pdb, key));
        let owned = (pdb, Bytes::copy_from_slice(key));
        self.entries.put(hash, owned, entry, bytes + key.len());
        copied
    }

    /// Bytes held and the hit ratio so far, for INFO.
    pub fn usage(&self) -> (usize, f64) {
        (self.entries.bytes(), self.entries.hit_ratio())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(n: usize) -> Vec<(Bytes, Bytes)> {
        (0..n)
            .map(|i| (Bytes::from(format!("f{i}")), Bytes::from(format!("v{i}"))))
            .collect()
    }

    #[test]
    fn serves_only_the_revision_and_version_it_was_read_at() {
        let cache = CollectionCache::new(1 << 20);
        let read = cache.put(0, b"h", 7, 3, pairs(3));
        assert_eq!(&read[..], &pairs(3)[..]);
        assert_eq!(cache.get(0, b"h", 7, 3).as_deref(), Some(&pairs(3)[..]));
        assert!(cache.get(0, b"h", 8, 3).is_none(), "a later change");
        assert!(cache.get(0, b"h", 7, 4).is_none(), "another version");
        assert!(cache.get(1, b"h", 7, 3).is_none(), "another database");
        cache.put(0, b"h", 8, 3, pairs(2));
        assert_eq!(cache.get(0, b"h", 8, 3).map(|e| e.len()), Some(2));
        assert!(cache.get(0, b"h", 7, 3).is_none());
    }

    #[test]
    fn large_collections_and_a_disabled_cache_pass_through() {
        let cache = CollectionCache::new(1 << 20);
        assert_eq!(
            cache.put(0, b"big", 1, 1, pairs(ELEMENTS_MAX + 1)).len(),
            ELEMENTS_MAX + 1
        );
        assert!(cache.get(0, b"big", 1, 1).is_none());
        let off = CollectionCache::new(0);
        assert_eq!(off.put(0, b"h", 1, 1, pairs(2)).len(), 2);
        assert!(off.get(0, b"h", 1, 1).is_none());
    }
}
