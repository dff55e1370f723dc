//! Cluster: hash slots and the grouping of slots into shards.
//!
//! Pure routing facts: which slot a key hashes to and which shard owns a slot. It knows
//! nothing of command semantics.

pub mod slot;

pub use slot::{key_slot, ShardId, ShardMap, Slot, SLOT_COUNT};
