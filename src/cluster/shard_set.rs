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
    /// The shards, listed (`All` as every one of `shard_count`).
    pub fn ids(&self, shard_count: u16) -> Vec<ShardId> {
        match self {
            ShardSet::One(s) => vec![*s],
            ShardSet::Some(list) => list.clone(),
            ShardSet::All => (0..shard_count).map(ShardId).collect(),
        }
    }
}
