//! openraft's network for a node without peers.
//!
//! A node that bootstrapped its own cluster and has not been joined by another node is the
//! only member of every group, so openraft never sends it a message to deliver; should it
//! try, every peer is reported unreachable. Node-to-node transport over cluster-proto
//! replaces this factory when nodes can join.

use std::future::Future;

use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse};
use openraft::raft::{VoteRequest, VoteResponse};
use openraft::{AnyError, OptionalSend, RaftNetworkFactory, RaftNetworkV2};

use super::state_machine::ShardSnapshot;
use super::types::{NodeInfo, TypeConfig, Vote};

/// The network of a node that is alone in its cluster.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPeers;

fn unreachable(target: u64) -> Unreachable<TypeConfig> {
    Unreachable::new(&AnyError::error(format!(
        "node {target} is not reachable: this node has no peers"
    )))
}

/// A connection to a peer that does not exist.
pub struct NoPeer(u64);

impl RaftNetworkFactory<TypeConfig> for NoPeers {
    type Network = NoPeer;

    async fn new_client(&mut self, target: u64, _node: &NodeInfo) -> NoPeer {
        NoPeer(target)
    }
}

impl RaftNetworkV2<TypeConfig> for NoPeer {
    type SnapshotData = ShardSnapshot;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        Err(RPCError::Unreachable(unreachable(self.0)))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        Err(RPCError::Unreachable(unreachable(self.0)))
    }

    async fn full_snapshot(
        &mut self,
        _vote: Vote,
        _snapshot: openraft::type_config::alias::SnapshotOf<TypeConfig, ShardSnapshot>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        Err(StreamingError::Unreachable(unreachable(self.0)))
    }
}
