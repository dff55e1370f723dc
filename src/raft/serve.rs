//! What a node's groups do for peers: Raft RPCs (in `wire.rs` layout) handed to the
//! group's openraft instance, and snapshot chunks collected in a file until the last one
//! installs the snapshot.

use bytes::Bytes;
use cluster_proto::messages::SnapshotChunk;
use cluster_proto::RaftKind;
use openraft::type_config::alias::SnapshotOf;

use super::groups::Groups;
use super::incoming::Incoming;
use super::state_machine::{GroupId, ShardSnapshot};
use super::types::{self, TypeConfig};
use super::wire;
use crate::blocking_io;

impl Groups {
    /// Serves a Raft RPC from a peer; the reply is in `wire.rs` layout.
    pub async fn handle_rpc(
        &self,
        group: GroupId,
        kind: RaftKind,
        payload: Bytes,
    ) -> Result<Bytes, String> {
        let target = self.group(group)?;
        let reply = self.serve_rpc(&target.raft, kind, payload).await;
        // Whatever a peer sends about a group wakes it (an asleep leader's vote request
        // after the fact, a new leader's first append): the group is moving again.
        target.wake();
        reply
    }

    async fn serve_rpc(
        &self,
        raft: &super::groups::ShardRaft,
        kind: RaftKind,
        payload: Bytes,
    ) -> Result<Bytes, String> {
        let text = |e: &dyn std::fmt::Display| e.to_string();
        match kind {
            RaftKind::AppendEntries => {
                let req = wire::decode_append(payload).map_err(|e| text(&e))?;
                let resp = raft.append_entries(req).await.map_err(|e| text(&e))?;
                Ok(wire::encode_append_response(&resp))
            }
            RaftKind::Vote | RaftKind::PreVote => {
                let req = wire::decode_vote_request(payload).map_err(|e| text(&e))?;
                let resp = if kind == RaftKind::Vote {
                    raft.vote(req).await
                } else {
                    raft.pre_vote(req).await
                }
                .map_err(|e| text(&e))?;
                Ok(wire::encode_vote_response(&resp))
            }
            RaftKind::TransferLeader => {
                let req = wire::decode_transfer(payload).map_err(|e| text(&e))?;
                raft.handle_transfer_leader(req)
                    .await
                    .map_err(|e| text(&e))?
                    .map_err(|e| text(&e))?;
                Ok(Bytes::new())
            }
            RaftKind::Snapshot | RaftKind::Unknown => Err(format!("unexpected raft rpc {kind:?}")),
        }
    }

    /// Stores one chunk of a snapshot for `group`; the last one installs it.
    pub async fn handle_snapshot_chunk(&self, chunk: SnapshotChunk) -> Result<Bytes, String> {
        let target = self.group(chunk.group)?;
        let text = |e: &dyn std::fmt::Display| e.to_string();
        let key = chunk.transfer;
        // Chunks are written to disk under the lock, on this worker's thread: handed on.
        let received = blocking_io::run(|| {
            let mut incoming = self.incoming.lock();
            if !chunk.meta.is_empty() {
                let file = Incoming::create(&self.dir.join("incoming"), key, chunk.meta)
                    .map_err(|e| text(&e))?;
                incoming.insert(key, file);
            }
            let file = incoming
                .get_mut(&key)
                .ok_or("snapshot chunk of an unknown transfer")?;
            file.append(&chunk.records).map_err(|e| text(&e))?;
            // The last chunk takes the file (it was found just above).
            Ok::<_, String>(if chunk.done {
                incoming.remove(&key)
            } else {
                None
            })
        })?;
        let Some(file) = received else {
            return Ok(Bytes::new());
        };
        let meta = wire::decode_snapshot_meta(file.meta().clone()).map_err(|e| text(&e))?;
        let vote = types::decode_vote(chunk.vote).map_err(|e| text(&e))?;
        let data = blocking_io::run(|| file.finish()).map_err(|e| text(&e))?;
        let snapshot = SnapshotOf::<TypeConfig, ShardSnapshot> {
            meta,
            snapshot: ShardSnapshot(Box::new(data)),
        };
        let resp = target
            .raft
            .install_full_snapshot(vote, snapshot)
            .await
            .map_err(|e| text(&e))?;
        target.wake();
        Ok(wire::encode_snapshot_response(&resp))
    }
}
