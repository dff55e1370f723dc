//! openraft's network over cluster-proto: each group's RPCs to a peer travel on the node's
//! one connection to that peer ([`Peers`]), in Basalt's layout (`wire.rs`). A snapshot is
//! streamed in chunks of pages read from the pinned engine state.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cluster_proto::messages::{RaftRpc, SnapshotChunk};
use cluster_proto::{request, response, RaftKind};
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::SnapshotOf;
use openraft::{AnyError, OptionalSend, RaftNetworkFactory, RaftNetworkV2};

use super::state_machine::{GroupId, ShardSnapshot};
use super::types::{NodeInfo, TypeConfig, Vote};
use super::wire;
use crate::transport::{PeerError, Peers};

/// How long one RPC may take (a snapshot chunk included).
const RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds connections for one group.
#[derive(Clone)]
pub struct ClusterNetwork {
    pub peers: Arc<Peers>,
    pub group: GroupId,
}

/// One group's link to one peer.
pub struct PeerLink {
    peers: Arc<Peers>,
    group: GroupId,
    target: u64,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for ClusterNetwork {
    type Network = PeerLink;

    async fn new_client(&mut self, target: u64, node: &NodeInfo) -> PeerLink {
        PeerLink {
            peers: self.peers.clone(),
            group: self.group,
            target,
            addr: node.cluster_addr.clone(),
        }
    }
}

fn rpc_error(e: impl std::error::Error + 'static, unreachable: bool) -> RPCError<TypeConfig> {
    if unreachable {
        RPCError::Unreachable(Unreachable::new(&e))
    } else {
        RPCError::Network(NetworkError::new(&e))
    }
}

impl PeerLink {
    async fn call(
        &self,
        kind: RaftKind,
        payload: bytes::Bytes,
    ) -> Result<bytes::Bytes, RPCError<TypeConfig>> {
        let body = request::Body::Raft(RaftRpc {
            group: self.group,
            kind: kind as i32,
            payload,
        });
        self.send(body).await
    }

    async fn send(&self, body: request::Body) -> Result<bytes::Bytes, RPCError<TypeConfig>> {
        match self
            .peers
            .call(self.target, &self.addr, body, RPC_TIMEOUT)
            .await
        {
            Ok(response::Body::Raft(raw)) => Ok(raw),
            Ok(_) => Err(rpc_error(
                AnyError::error("unexpected response to a raft rpc"),
                false,
            )),
            Err(e @ (PeerError::Unreachable(_) | PeerError::Busy(_))) => Err(rpc_error(e, true)),
            Err(e) => Err(rpc_error(e, false)),
        }
    }
}

fn decode_error(e: super::types::CodecError) -> RPCError<TypeConfig> {
    rpc_error(e, false)
}

impl RaftNetworkV2<TypeConfig> for PeerLink {
    type SnapshotData = ShardSnapshot;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let raw = self
            .call(RaftKind::AppendEntries, wire::encode_append(&rpc))
            .await?;
        wire::decode_append_response(raw).map_err(decode_error)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let raw = self
            .call(RaftKind::Vote, wire::encode_vote_request(&rpc))
            .await?;
        wire::decode_vote_response(raw).map_err(decode_error)
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let raw = self
            .call(RaftKind::PreVote, wire::encode_vote_request(&rpc))
            .await?;
        wire::decode_vote_response(raw).map_err(decode_error)
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(RaftKind::TransferLeader, wire::encode_transfer(&req))
            .await?;
        Ok(Ok(()))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        mut snapshot: SnapshotOf<TypeConfig, ShardSnapshot>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let transfer: u64 = rand::random();
        let vote_raw = super::types::encode_vote(&vote);
        let mut meta = wire::encode_snapshot_meta(&snapshot.meta);
        loop {
            let page = snapshot
                .snapshot
                .0
                .next_page()
                .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
            let done = page.is_none();
            let chunk = SnapshotChunk {
                group: self.group,
                transfer,
                vote: vote_raw.clone(),
                meta: std::mem::take(&mut meta),
                records: wire::encode_records(&page.unwrap_or_default()),
                done,
            };
            let raw = self
                .send(request::Body::Snapshot(chunk))
                .await
                .map_err(|e| match e {
                    RPCError::Unreachable(u) => StreamingError::Unreachable(u),
                    other => StreamingError::Network(NetworkError::new(&other)),
                })?;
            if done {
                return wire::decode_snapshot_response(raw)
                    .map_err(|e| StreamingError::Network(NetworkError::new(&e)));
            }
        }
    }
}
