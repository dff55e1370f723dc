//! The set of shards a write touches, from its keys.

use super::ShardId;

/// The shards an entry touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardSet {
    /// One shard (the common case: a single-key command).
    One(ShardId),
    /// These shards (sorted, no duplicates).
    Some(Vec<ShardId>),
    /// Every shard (FLUSHALL, SWAPDB, FLUSHDB…).
    All,
}

impl ShardSet {
    pub fn from_unsorted(mut shards: Vec<ShardId>) -> ShardSet {
        shards.sort_unstable();
        shards.dedup();
        match shards.as_slice() {
            [one] => ShardSet::One(*one),
            _ => ShardSet::Some(shards),
        }
    }
}

impl ShardSet {
    /// The shards (`All` as every one of `shard_count`), without allocating.
    pub fn iter(&self, shard_count: u16) -> impl Iterator<Item = ShardId> + '_ {
        let (listed, all) = match self {
            ShardSet::One(s) => (std::slice::from_ref(s), 0),
            ShardSet::Some(list) => (&list[..], 0),
            ShardSet::All => (&[][..], shard_count),
        };
        listed.iter().copied().chain((0..all).map(ShardId))
    }

    /// The shards, listed.
    pub fn ids(&self, shard_count: u16) -> Vec<ShardId> {
        self.iter(shard_count).collect()
    }
}
