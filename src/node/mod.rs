//! The running node: building it (`build.rs`), dispatching requests (`dispatch.rs`:
//! resolve, route, run the handler, block, propose, account), routing and forwarding to
//! the leader of a key's shard (`routing.rs`, `forwarding.rs`), serving peers on the cluster
//! port (`peer.rs`), the apply glue between the shards' Raft groups and the keyspace and
//! snapshots (`apply.rs`), and the background loops (`loops.rs`: active expiry, checkpoints,
//! leader spreading, quiescing, the replica balancer of `balancer.rs`).
//!
//! Handlers never see the node: they get the [`Shared`] state and the node as a
//! [`ClusterView`].

mod apply;
mod balancer;
mod build;
mod dispatch;
mod expire_cycle;
mod forwarding;
mod loops;
mod peer;
mod routing;

use std::sync::OnceLock;

pub use apply::{load_meta, NodeApplier};
pub use build::{announce_host, build_node, cluster_port, open_engine};
pub use dispatch::{PendingWrite, Prepared, RequestKind};
pub use forwarding::Pending;
pub use loops::Loops;

use crate::cluster::{ShardId, ShardMap};
use crate::commands::{ClusterState, ClusterView, Shared};
use crate::raft::{Groups, SharedMeta};
use crate::storage::SyncPolicy;

pub struct Node {
    /// What command handlers share (keyspace, table, settings, clients, statistics).
    pub shared: Shared,
    /// The shards' Raft groups (set once, right after the node is built).
    groups: OnceLock<Groups>,
    /// Per shard: writes of one shard hold it shared from proposal to reply; a write that
    /// spans shards holds all of its shards exclusively, so its apply sees every earlier
    /// write of those shards and no later one (see `dispatch.rs`).
    gates: Vec<tokio::sync::RwLock<()>>,
    pub shards: ShardMap,
    /// The cluster map (group 0's state, applied by `apply.rs`).
    pub meta: SharedMeta,
}

impl Node {
    pub fn new(shared: Shared) -> Node {
        let shard_count: u16 = shared.config.get("shards").parse().unwrap_or(16);
        Node {
            shared,
            groups: OnceLock::new(),
            gates: (0..shard_count).map(|_| Default::default()).collect(),
            shards: ShardMap::new(shard_count),
            meta: Default::default(),
        }
    }

    /// Hands the node its Raft groups (once, while it is being built).
    pub fn set_groups(&self, groups: Groups) {
        if self.groups.set(groups).is_err() {
            tracing::error!("the node's raft groups were set twice");
        }
    }

    /// The node's Raft groups.
    pub fn groups(&self) -> &Groups {
        self.groups
            .get()
            .expect("the node is built with its raft groups")
    }
}

impl ClusterView for Node {
    fn node_id(&self) -> u64 {
        self.groups().node_id()
    }

    fn replication_info(&self) -> Vec<(String, String)> {
        self.groups().info()
    }

    /// A shard this node holds a replica of with no leader counts as failed; one it does
    /// not hold is as healthy as its replicas report (this node has no view of it).
    fn cluster_state(&self) -> ClusterState {
        let groups = self.groups();
        let mut slots_failed = 0u32;
        for shard in 0..self.shards.shard_count() {
            let shard = ShardId(shard);
            let held = !groups.voters_of(shard).is_empty();
            if held && !groups.is_leader(shard) && groups.leader_of(shard).is_none() {
                let (first, last) = self.shards.slot_range(shard);
                slots_failed += u32::from(last.0) - u32::from(first.0) + 1;
            }
        }
        let meta = self.meta.read();
        ClusterState {
            slots_failed,
            known_nodes: meta.nodes.len(),
            shard_count: self.shards.shard_count(),
            epoch: meta.epoch,
        }
    }

    fn set_sync_policy(&self, policy: SyncPolicy) {
        self.groups().set_sync_policy(policy);
    }
}
