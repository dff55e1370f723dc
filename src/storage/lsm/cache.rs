//! The caches: decompressed data blocks by (table id, offset), and rows — the newest version
//! of a key in one table — by (table id, user key), each bounded in bytes.
//!
//! Sharded to keep lock hold times short; each shard evicts with the CLOCK algorithm (a
//! hand sweeps the slots, sparing and clearing those used since its last pass), which
//! approximates LRU with no linked list, touches slots in order, and keeps every operation
//! amortised O(1). Tables never change once written, so nothing is ever invalidated:
//! entries of deleted tables simply age out.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use super::memtable::Found;
use super::sstable::block::Block;

const SHARDS: usize = 16;

struct Slot<K, V> {
    key: K,
    value: V,
    bytes: usize,
    /// Used since the clock hand last passed.
    referenced: bool,
}

struct Shard<K, V> {
    slots: Vec<Slot<K, V>>,
    index: HashMap<K, usize, ahash::RandomState>,
    bytes: usize,
    hand: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> Shard<K, V> {
    fn new() -> Self {
        Shard {
            slots: Vec::new(),
            index: HashMap::default(),
            bytes: 0,
            hand: 0,
        }
    }

    fn get(&mut self, key: &K) -> Option<V> {
        let i = *self.index.get(key)?;
        self.slots[i].referenced = true;
        Some(self.slots[i].value.clone())
    }

    fn insert(&mut self, key: K, value: V, bytes: usize, capacity: usize) {
        if self.index.contains_key(&key) || bytes > capacity {
            return;
        }
        self.add(key, value, bytes, capacity);
    }

    /// Inserts, or replaces the value held under `key`.
    fn put(&mut self, key: K, value: V, bytes: usize, capacity: usize) {
        if let Some(&i) = self.index.get(&key) {
            let slot = self.slots.swap_remove(i);
            self.index.remove(&slot.key);
            self.bytes -= slot.bytes;
            if let Some(moved) = self.slots.get(i) {
                self.index.insert(moved.key.clone(), i);
            }
        }
        if bytes <= capacity {
            self.add(key, value, bytes, capacity);
        }
    }

    fn add(&mut self, key: K, value: V, bytes: usize, capacity: usize) {
        while self.bytes + bytes > capacity && !self.slots.is_empty() {
            self.evict_one();
        }
        self.index.insert(key.clone(), self.slots.len());
        self.slots.push(Slot {
            key,
            value,
            bytes,
            referenced: false,
        });
        self.bytes += bytes;
    }

    fn evict_one(&mut self) {
        // At most two sweeps: the first clears every bit it passes.
        let victim = loop {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let slot = &mut self.slots[self.hand];
            if !slot.referenced {
                break self.hand;
            }
            slot.referenced = false;
            self.hand += 1;
        };
        let removed = self.slots.swap_remove(victim);
        self.index.remove(&removed.key);
        self.bytes -= removed.bytes;
        if let Some(moved) = self.slots.get(victim) {
            self.index.insert(moved.key.clone(), victim);
        }
    }
}

/// A sharded, bytes-bounded map with approximate LRU eviction, counting hits and misses.
pub struct LruCache<K, V> {
    shards: Vec<Mutex<Shard<K, V>>>,
    hasher: ahash::RandomState,
    shard_capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<K: Hash + Eq + Clone, V: Clone> LruCache<K, V> {
    pub fn new(capacity_bytes: usize) -> Self {
        LruCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect(),
            hasher: ahash::RandomState::with_seeds(1, 2, 3, 4),
            shard_capacity: capacity_bytes / SHARDS,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &K) -> &Mutex<Shard<K, V>> {
        let h = self.hasher.hash_one(key);
        &self.shards[(h >> 32) as usize % SHARDS]
    }

    /// Whether the cache can hold anything at all.
    pub fn enabled(&self) -> bool {
        self.shard_capacity > 0
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let found = self.shard(key).lock().get(key);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Inserts unless `key` is held already (values under a key never change).
    pub fn insert(&self, key: K, value: V, bytes: usize) {
        self.shard(&key)
            .lock()
            .insert(key, value, bytes, self.shard_capacity);
    }

    /// Inserts, or replaces what `key` held.
    pub fn put(&self, key: K, value: V, bytes: usize) {
        self.shard(&key)
            .lock()
            .put(key, value, bytes, self.shard_capacity);
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().bytes).sum()
    }

    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Hit ratio so far, 0..1.
    pub fn hit_ratio(&self) -> f64 {
        let hits = self.hits.load(Ordering::Relaxed) as f64;
        let total = hits + self.misses.load(Ordering::Relaxed) as f64;
        if total == 0.0 {
            0.0
        } else {
            hits / total
        }
    }
}

/// Per-entry bytes counted on top of a row's key and value.
const ROW_OVERHEAD_BYTES: usize = 64;

/// The caches every table of an engine shares, and its bloom filter counters.
pub struct BlockCache {
    blocks: LruCache<(u64, u64), Block>,
    /// The newest version of a user key in a table, by (table id, user key).
    rows: LruCache<(u64, Bytes), Found>,
    /// Point reads a table's bloom filter answered "absent" (no block read), and all checks.
    pub bloom_negatives: AtomicU64,
    pub bloom_checks: AtomicU64,
    /// Tables a scan within one key group skipped by their filter, and all such checks.
    pub prefix_negatives: AtomicU64,
    pub prefix_checks: AtomicU64,
}

impl BlockCache {
    pub fn new(block_bytes: usize, row_bytes: usize) -> BlockCache {
        BlockCache {
            blocks: LruCache::new(block_bytes),
            rows: LruCache::new(row_bytes),
            bloom_negatives: AtomicU64::new(0),
            bloom_checks: AtomicU64::new(0),
            prefix_negatives: AtomicU64::new(0),
            prefix_checks: AtomicU64::new(0),
        }
    }

    pub fn get(&self, table: u64, offset: u64) -> Option<Block> {
        self.blocks.get(&(table, offset))
    }

    pub fn insert(&self, table: u64, offset: u64, block: Block, bytes: usize) {
        self.blocks.insert((table, offset), block, bytes);
    }

    pub fn get_row(&self, table: u64, user_key: &[u8]) -> Option<Found> {
        if !self.rows.enabled() {
            return None;
        }
        self.rows.get(&(table, Bytes::copy_from_slice(user_key)))
    }

    pub fn insert_row(&self, table: u64, user_key: &[u8], found: &Found) {
        if !self.rows.enabled() {
            return;
        }
        let value_bytes = match &found.0 {
            super::memtable::Lookup::Value(v) => v.len(),
            super::memtable::Lookup::Deleted => 0,
        };
        let bytes = user_key.len() + value_bytes + ROW_OVERHEAD_BYTES;
        let key = (table, Bytes::copy_from_slice(user_key));
        self.rows.insert(key, found.clone(), bytes);
    }

    /// Data blocks read from files (block cache misses) so far.
    pub fn block_reads(&self) -> u64 {
        self.blocks.misses()
    }

    /// Bytes held by blocks.
    pub fn bytes(&self) -> usize {
        self.blocks.bytes()
    }

    /// Bytes held by rows.
    pub fn row_bytes(&self) -> usize {
        self.rows.bytes()
    }

    /// Block hit ratio so far, 0..1.
    pub fn hit_ratio(&self) -> f64 {
        self.blocks.hit_ratio()
    }

    /// Row hit ratio so far, 0..1.
    pub fn row_hit_ratio(&self) -> f64 {
        self.rows.hit_ratio()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn put_replaces_and_keeps_the_byte_count() {
        let cache: LruCache<u32, &str> = LruCache::new(16 * 100);
        cache.put(1, "a", 40);
        cache.put(1, "b", 60);
        assert_eq!(cache.get(&1), Some("b"));
        assert_eq!(cache.bytes(), 60);
        cache.insert(1, "c", 10);
        assert_eq!(cache.get(&1), Some("b"), "insert leaves a held key alone");
        cache.put(1, "too big", 1000);
        assert_eq!((cache.get(&1), cache.bytes()), (None, 0));
    }

    #[test]
    fn bounded_and_keeps_recent_blocks() {
        let cache = BlockCache::new(16 * 1000, 0);
        let block = Block::parse(Bytes::from_static(&[0, 0, 0, 0])).unwrap();
        for i in 0..1000u64 {
            cache.insert(1, i, block.clone(), 100);
            // Keep touching block 0: it must survive eviction.
            assert!(cache.get(1, 0).is_some() || i < 16);
        }
        assert!(cache.bytes() <= 16 * 1000);
        assert!(cache.get(1, 0).is_some());
        assert!(cache.hit_ratio() > 0.5);
    }

    #[test]
    fn rows_are_cached_per_table_and_bounded() {
        use crate::storage::lsm::memtable::Lookup;
        let cache = BlockCache::new(0, 16 * 1000);
        let found = (Lookup::Value(Bytes::from("v")), 7);
        cache.insert_row(1, b"k", &found);
        assert_eq!(cache.get_row(1, b"k"), Some(found.clone()));
        assert_eq!(cache.get_row(2, b"k"), None);
        for i in 0..1000u64 {
            cache.insert_row(i, b"some-key", &found);
        }
        assert!(cache.row_bytes() <= 16 * 1000);
        assert!(BlockCache::new(0, 0).get_row(1, b"k").is_none());
    }
}
