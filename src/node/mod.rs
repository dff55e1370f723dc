//! The running node: building it (`build.rs`), dispatching requests (`dispatch.rs`:
//! resolve, route, run the handler, block, propose, account), routing and forwarding to
//! the leader of a key's shard (`routing.rs`, `forwarding.rs`), serving peers on the cluster
//! port (`peer.rs`), the apply glue between the shards' Raft groups and the keyspace and
//! snapshots (`apply.rs`; a run of entries as one batch, `apply_run.rs`), and the background loops (`loops.rs`: active expiry, checkpoints,
//! leader spreading, quiescing, the replica balancer of `balancer.rs`), MULTI/EXEC
//! (`transaction.rs`) and across shards (`cross_shard/`), scripts (`script.rs`), telling cluster clients' connections
//! from plain ones (`cluster_clients.rs`), combining clients' writes into one entry
//! (`combine.rs`), WATCH's marks at apply (`watching.rs`), passing published
//! messages to the other nodes (`fanout.rs`), keyspace notifications (`notifying.rs`), WAIT (`wait.rs`), the Prometheus exposition (`metrics.rs`), and what handlers may learn of the cluster
//! (`view.rs`).
//!
//! Handlers never see the node: they get the [`Shared`] state and the node as a
//! [`ClusterView`].

mod apply;
mod apply_run;
#[cfg(test)]
mod apply_total;
mod balancer;
mod build;
mod cluster_clients;
mod combine;
mod cross_shard;
mod dispatch;
mod event_log;
mod expire_cycle;
mod fanout;
mod forwarding;
pub mod install;
mod invalidating;
mod loops;
mod metrics;
mod notifying;
mod peer;
mod peer_input;
mod remote_watch;
mod routing;
mod script;
mod transaction;
mod users;
mod view;
mod wait;
mod watching;

use std::sync::OnceLock;

pub use apply::{load_map, NodeApplier};
/// A node over a memory engine with 4 shards, for unit tests.
#[cfg(test)]
pub(crate) use apply_run::tests::node as test_node;
pub use build::{announce_host, build_node, cluster_port, open_engine};
pub use dispatch::{PendingWrite, Prepared, RequestKind};
pub use forwarding::Pending;
pub use loops::Loops;

use crate::cluster::ShardMap;
use crate::cluster::SharedMap;
use crate::commands::Shared;
use crate::raft::Groups;

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
    pub map: SharedMap,
    /// Published messages on their way to the other nodes (`fanout.rs`).
    fanout: fanout::Fanout,
    /// What `event_log.rs` knows of each shard's kept keyspace events.
    event_log: event_log::EventLog,
    /// Locks of prepared cross-shard transactions, and the ids of those run here.
    cross_shard: cross_shard::CrossShard,
    /// Hosts that run cluster clients (`cluster_clients.rs`).
    layout_hosts: crate::cluster::LayoutHosts,
    /// Writes of different clients to one shard combined into one entry (`combine.rs`).
    combiner: combine::Combiner,
}

impl Node {
    pub fn new(shared: Shared) -> Node {
        let shard_count: u16 = shared.config.get("shards").parse().unwrap_or(16);
        Node {
            shared,
            groups: OnceLock::new(),
            gates: (0..shard_count).map(|_| Default::default()).collect(),
            shards: ShardMap::new(shard_count),
            map: Default::default(),
            fanout: Default::default(),
            event_log: Default::default(),
            cross_shard: Default::default(),
            layout_hosts: Default::default(),
            combiner: combine::Combiner::new(shard_count),
        }
    }

    /// Hands the node its Raft groups (once, while it is being built).
    pub fn set_groups(&self, groups: Groups) {
        if self.groups.set(groups).is_err() {
            tracing::error!("the node's raft groups were set twice");
        }
    }

    /// Proposes `entry` to `shard`'s group (this node must lead it), with other clients'
    /// writes when the shard is busy (`combine.rs`), and returns the client reply its
    /// apply gave.
    pub(crate) async fn propose(
        &self,
        shard: crate::cluster::ShardId,
        entry: &crate::raft::Entry,
    ) -> Result<crate::protocol::Reply, crate::raft::ProposeError> {
        self.combiner.propose(self, shard, entry).await
    }

    /// The node's Raft groups.
    pub fn groups(&self) -> &Groups {
        self.groups
            .get()
            .expect("the node is built with its raft groups")
    }
}
