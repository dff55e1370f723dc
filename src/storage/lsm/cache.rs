//! The block cache: decompressed data blocks by (table id, offset), bounded in bytes.
//!
//! Sharded to keep lock hold times short; each shard evicts an approximately least recently
//! used block by sampling a few entries (as Redis samples keys for eviction), which needs no
//! linked list and keeps every operation O(1).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use rand::Rng;

use super::sstable::block::Block;

const SHARDS: usize = 16;
const EVICTION_SAMPLES: usize = 8;

type Key = (u64, u64);

struct Slot {
    key: Key,
    block: Block,
    bytes: usize,
    last_used: u64,
}

#[derive(Default)]
struct Shard {
    slots: Vec<Slot>,
    index: HashMap<Key, usize>,
    bytes: usize,
    tick: u64,
}

impl Shard {
    fn get(&mut self, key: &Key) -> Option<Block> {
        let i = *self.index.get(key)?;
        self.tick += 1;
        self.slots[i].last_used = self.tick;
        Some(self.slots[i].block.clone())
    }

    fn insert(&mut self, key: Key, block: Block, bytes: usize, capacity: usize) {
        if self.index.contains_key(&key) || bytes > capacity {
            return;
        }
        while self.bytes + bytes > capacity && !self.slots.is_empty() {
            self.evict_one();
        }
        self.tick += 1;
        self.index.insert(key, self.slots.len());
        self.slots.push(Slot {
            key,
            block,
            bytes,
            last_used: self.tick,
        });
        self.bytes += bytes;
    }

    fn evict_one(&mut self) {
        let mut rng = rand::thread_rng();
        let victim = (0..EVICTION_SAMPLES.min(self.slots.len()))
            .map(|_| rng.gen_range(0..self.slots.len()))
            .min_by_key(|&i| self.slots[i].last_used)
            .unwrap_or(0);
        let removed = self.slots.swap_remove(victim);
        self.index.remove(&removed.key);
        self.bytes -= removed.bytes;
        if let Some(moved) = self.slots.get(victim) {
            self.index.insert(moved.key, victim);
        }
    }
}

pub struct BlockCache {
    shards: Vec<Mutex<Shard>>,
    shard_capacity: usize,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    /// Point reads a table's bloom filter answered "absent" (no block read), and all checks.
    pub bloom_negatives: AtomicU64,
    pub bloom_checks: AtomicU64,
}

impl BlockCache {
    pub fn new(capacity_bytes: usize) -> BlockCache {
        BlockCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_capacity: capacity_bytes / SHARDS,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            bloom_negatives: AtomicU64::new(0),
            bloom_checks: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &Key) -> &Mutex<Shard> {
        let h =
            key.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key.1.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        &self.shards[(h >> 32) as usize % SHARDS]
    }

    pub fn get(&self, table: u64, offset: u64) -> Option<Block> {
        let key = (table, offset);
        let found = self.shard(&key).lock().get(&key);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    pub fn insert(&self, table: u64, offset: u64, block: Block, bytes: usize) {
        let key = (table, offset);
        self.shard(&key)
            .lock()
            .insert(key, block, bytes, self.shard_capacity);
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().bytes).sum()
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn bounded_and_keeps_recent_blocks() {
        let cache = BlockCache::new(16 * 1000);
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
}
