//! Cluster: hash slots and the grouping of slots into shards.
//!
//! Pure routing facts: which slot a key hashes to, which shard owns a slot, which shards a
//! write touches. It knows nothing of command semantics.

mod shard_set;
pub mod slot;

pub use shard_set::ShardSet;
pub use slot::{key_slot, ShardId, ShardMap, Slot, SLOT_COUNT};
