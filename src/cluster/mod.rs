//! Cluster: hash slots, the grouping of slots into shards, and the topology Redis Cluster
//! clients see.
//!
//! Pure routing facts: which slot a key hashes to, which shard owns a slot, which shards a
//! write touches, which node masters which slots. It knows nothing of command semantics.

pub mod cross_shard;
pub mod layout_hosts;
pub mod map;
mod shard_set;
pub mod slot;
pub mod topology;

pub use cross_shard::{CrossShardOp, ShardWrite, TxnId};
pub use layout_hosts::LayoutHosts;
pub use map::{ClusterMap, MapChange, NodeInfo, SharedMap};
pub use shard_set::ShardSet;
pub use slot::{key_slot, ShardId, ShardMap, Slot, SLOT_COUNT};
pub use topology::{node_name, NodeEntry, ShardLayout, Topology};
