//! The caches: decompressed data blocks by (table id, offset), and rows — the newest version
//! of a key in one table — by (table id, user key), each bounded in bytes.
//!
//! Sharded to keep lock hold times short; each shard evicts with the CLOCK algorithm (a
//! hand sweeps the slots, sparing and clearing those used since its last pass), which
//! approximates LRU with no linked list, touches slots in order, and keeps every operation
//! amortised O(1). Tables never change once written, so nothing is ever invalidated:
//! entries of deleted tables simply age out.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use hashbrown::HashTable;
use parking_lot::Mutex;

use super::memtable::Found;
use super::sstable::block::Block;

const SHARDS: usize = 16;

struct Slot<K, V> {
    key: K,
    hash: u64,
    value: V,
    bytes: usize,
    /// Used since the clock hand last passed.
    referenced: bool,
}

/// One shard: the entries in a vector the clock hand sweeps, and an index of their
/// positions by the hash the caller computed (so a lookup builds no owned key and hashes
/// nothing twice).
struct Shard<K, V> {
    slots: Vec<Slot<K, V>>,
    index: HashTable<usize>,
    bytes: usize,
    hand: usize,
}

impl<K: Clone, V: Clone> Shard<K, V> {
    fn new() -> Self {
        Shard {
            slots: Vec::new(),
            index: HashTable::new(),
            bytes: 0,
            hand: 0,
        }
    }

    fn position(&self, hash: u64, is_key: impl Fn(&K) -> bool) -> Option<usize> {
        let slots = &self.slots;
        self.index
            .find(hash, |&i| slots[i].hash == hash && is_key(&slots[i].key))
            .copied()
    }

    fn get(&mut self, hash: u64, is_key: impl Fn(&K) -> bool) -> Option<V> {
        let i = self.position(hash, is_key)?;
        self.slots[i].referenced = true;
        Some(self.slots[i].value.clone())
    }

    /// Takes slot `i` out, moving the last slot into its place.
    fn remove_at(&mut self, i: usize) {
        let slot = self.slots.swap_remove(i);
        if let Ok(entry) = self.index.find_entry(slot.hash, |&at| at == i) {
            entry.remove();
        }
        self.bytes -= slot.bytes;
        let moved_from = self.slots.len();
        if let Some(moved) = self.slots.get(i) {
            if let Some(at) = self.index.find_mut(moved.hash, |&at| at == moved_from) {
                *at = i;
            }
        }
    }

    /// Adds `entry` unless its key is held (`replace`: replaces what it holds).
    fn add(&mut self, entry: Slot<K, V>, capacity: usize, replace: bool)
    where
        K: PartialEq,
    {
        if let Some(i) = self.position(entry.hash, |held| *held == entry.key) {
            if !replace {
                return;
            }
            self.remove_at(i);
        }
        if entry.bytes > capacity {
            return;
        }
        while self.bytes + entry.bytes > capacity && !self.slots.is_empty() {
            self.evict_one();
        }
        let slots = &self.slots;
        self.index
            .insert_unique(entry.hash, slots.len(), |&i| slots[i].hash);
        self.bytes += entry.bytes;
        self.slots.push(entry);
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
        self.remove_at(victim);
    }
}

/// A sharded, bytes-bounded map with approximate LRU eviction, counting hits and misses.
/// Callers give each key's hash (`hash_of`, or one they have computed anyway) and a test
/// of whether a held key is theirs, so a lookup by a borrowed key allocates nothing.
pub struct LruCache<K, V> {
    shards: Vec<Mutex<Shard<K, V>>>,
    hasher: ahash::RandomState,
    shard_capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<K: Clone, V: Clone> LruCache<K, V> {
    pub fn new(capacity_bytes: usize) -> Self {
        LruCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect(),
            hasher: ahash::RandomState::with_seeds(1, 2, 3, 4),
            shard_capacity: capacity_bytes / SHARDS,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// A hash for a key this cache holds (or its borrowed form: equal keys must hash
    /// equally however they are held).
    pub fn hash_of<T: Hash + ?Sized>(&self, key: &T) -> u64 {
        self.hasher.hash_one(key)
    }

    fn shard(&self, hash: u64) -> &Mutex<Shard<K, V>> {
        // Bits neither the index's bucket (low) nor its tag (top 7) uses alone.
        &self.shards[(hash >> 32) as usize % SHARDS]
    }

    /// Whether the cache can hold anything at all.
    pub fn enabled(&self) -> bool {
        self.shard_capacity > 0
    }

    pub fn get(&self, hash: u64, is_key: impl Fn(&K) -> bool) -> Option<V> {
        let found = self.shard(hash).lock().get(hash, is_key);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Inserts unless `key` is held already (values under a key never change).
    pub fn insert(&self, hash: u64, key: K, value: V, bytes: usize)
    where
        K: PartialEq,
    {
        self.add(hash, key, value, bytes, false)
    }

    /// Inserts, or replaces what `key` held.
    pub fn put(&self, hash: u64, key: K, value: V, bytes: usize)
    where
        K: PartialEq,
    {
        self.add(hash, key, value, bytes, true)
    }

    fn add(&self, hash: u64, key: K, value: V, bytes: usize, replace: bool)
    where
        K: PartialEq,
    {
        let entry = Slot {
            key,
            hash,
            value,
            bytes,
            referenced: false,
        };
        self.shard(hash)
            .lock()
            .add(entry, self.shard_capacity, replace);
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

/// One hash of two: a table's id and a key's hash (or a block's offset).
fn mix(a: u64, b: u64) -> u64 {
    let m = u128::from(a ^ b.rotate_left(32)) * 0x9e37_79b9_7f4a_7c15;
    (m as u64) ^ ((m >> 64) as u64)
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
        let key = (table, offset);
        self.blocks.get(mix(table, offset), |held| *held == key)
    }

    pub fn insert(&self, table: u64, offset: u64, block: Block, bytes: usize) {
        self.blocks
            .insert(mix(table, offset), (table, offset), block, bytes);
    }

    /// The row of `user_key` (whose `bloom::hash64` is `key_hash`) cached for `table`.
    pub fn get_row(&self, table: u64, user_key: &[u8], key_hash: u64) -> Option<Found> {
        if !self.rows.enabled() {
            return None;
        }
        let is_key = |(t, k): &(u64, Bytes)| *t == table && k[..] == *user_key;
        self.rows.get(mix(table, key_hash), is_key)
    }

    pub fn insert_row(&self, table: u64, user_key: &[u8], key_hash: u64, found: &Found) {
        if !self.rows.enabled() {
            return;
        }
        let value_bytes = match &found.0 {
            super::memtable::Lookup::Value(v) => v.len(),
            super::memtable::Lookup::Deleted => 0,
        };
        let bytes = user_key.len() + value_bytes + ROW_OVERHEAD_BYTES;
        let key = (table, Bytes::copy_from_slice(user_key));
        self.rows
            .insert(mix(table, key_hash), key, found.clone(), bytes);
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
        let h = cache.hash_of(&1u32);
        let one = |k: &u32| *k == 1;
        cache.put(h, 1, "a", 40);
        cache.put(h, 1, "b", 60);
        assert_eq!(cache.get(h, one), Some("b"));
        assert_eq!(cache.bytes(), 60);
        cache.insert(h, 1, "c", 10);
        assert_eq!(
            cache.get(h, one),
            Some("b"),
            "insert leaves a held key alone"
        );
        cache.put(h, 1, "too big", 1000);
        assert_eq!((cache.get(h, one), cache.bytes()), (None, 0));
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
        let hash = |k: &[u8]| crate::storage::lsm::bloom::hash64(k);
        cache.insert_row(1, b"k", hash(b"k"), &found);
        assert_eq!(cache.get_row(1, b"k", hash(b"k")), Some(found.clone()));
        assert_eq!(cache.get_row(2, b"k", hash(b"k")), None);
        for i in 0..1000u64 {
            cache.insert_row(i, b"some-key", hash(b"some-key"), &found);
        }
        assert!(cache.row_bytes() <= 16 * 1000);
        let off = BlockCache::new(0, 0);
        assert!(off.get_row(1, b"k", hash(b"k")).is_none());
    }
}
