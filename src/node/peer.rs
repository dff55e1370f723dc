//! What the node does for its peers: Raft RPCs and snapshot chunks for its groups,
//! commands forwarded by a node that does not lead their shard, joins of new nodes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use cluster_proto::messages::{ChangeReplicas, Holding, Join, MetaChange, NodeIds};
use cluster_proto::{request, response, RaftKind};

use super::Node;
use crate::cluster::MapChange;
use crate::cluster::ShardId;
use crate::raft::types::NodeInfo;
use crate::raft::{GroupId, ProposeError};

/// How long adding a replica may take (the learner catches up first).
const ADD_REPLICA_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a change to the cluster map may wait for group 0's leader.
const META_TIMEOUT: Duration = Duration::from_secs(10);
/// Between attempts at a membership change whose leader is moving.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Reads `cluster_addr` from the `INFO raft` of the node at client address `seed`.
async fn seed_cluster_addr(seed: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(seed))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    stream
        .write_all(b"*2\r\n$4\r\nINFO\r\n$4\r\nraft\r\n")
        .await?;
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
        // Only whole lines: the last one may still be arriving.
        let whole = text
            .windows(2)
            .rposition(|w| w == b"\r\n")
            .map_or(&text[..0], |end| &text[..end]);
        let found = String::from_utf8_lossy(whole).lines().find_map(|l| {
            l.strip_prefix("cluster_addr:")
                .map(|a| a.trim().to_string())
        });
        if let Some(addr) = found.filter(|a| !a.is_empty()) {
            return Ok(addr);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "the seed's INFO raft has no cluster_addr",
    ))
}

impl crate::transport::listener::Service for Node {
    fn hello(&self) -> &cluster_proto::Hello {
        self.groups().peers().hello()
    }

    fn traffic(&self) -> &crate::transport::Traffic {
        self.groups().peers().traffic()
    }

    fn inbound(&self) -> &std::sync::Arc<crate::transport::links::Inbound> {
        self.groups().peers().inbound()
    }

    fn credentials(&self) -> &crate::transport::handshake::Credentials {
        self.groups().peers().credentials()
    }

    fn refusals(&self) -> &crate::transport::handshake::RefusalLog {
        self.groups().peers().refusals()
    }

    async fn serve(self: Arc<Self>, body: Option<request::Body>) -> response::Body {
        self.serve_peer(body).await
    }
}

impl Node {
    /// Serves one request from a peer.
    pub async fn serve_peer(self: &Arc<Self>, body: Option<request::Body>) -> response::Body {
        if let Some(Err(refused)) = body.as_ref().map(|b| self.check_peer_request(b)) {
            return response::Body::Error(refused);
        }
        let result = match body {
            Some(request::Body::Raft(rpc)) => {
                let kind = RaftKind::try_from(rpc.kind).unwrap_or(RaftKind::Unknown);
                self.groups()
                    .handle_rpc(rpc.group, kind, rpc.payload)
                    .await
                    .map(response::Body::Raft)
            }
            Some(request::Body::Snapshot(chunk)) => self
                .groups()
                .handle_snapshot_chunk(chunk)
                .await
                .map(response::Body::Raft),
            Some(request::Body::Forward(forward)) => Ok(self.run_forwarded(forward).await),
            Some(request::Body::ForwardBatch(batch)) => Ok(self.run_forwarded_batch(batch).await),
            Some(request::Body::Propose(propose)) => self.run_proposal(propose).await,
            Some(request::Body::Join(join)) => self.admit(join).await.map(response::Body::Done),
            Some(request::Body::ChangeReplicas(change)) => {
                let add = change.add.map(|j| {
                    let info = NodeInfo {
                        client_addr: j.client_addr,
                        cluster_addr: j.cluster_addr,
                    };
                    (j.node_id, info)
                });
                let remove = Some(change.remove).filter(|r| *r != 0);
                // Carried out here or refused: the asking node finds the leader (a node
                // passing requests on could pass them round in a circle).
                self.groups()
                    .change_replicas(change.group, add, remove)
                    .await
                    .map(|voters| {
                        response::Body::Voters(NodeIds {
                            ids: voters.into_iter().collect(),
                        })
                    })
                    .map_err(|e| e.to_string())
            }
            Some(request::Body::MetaChange(change)) => match MapChange::from_args(&change.args) {
                Ok(op) => self
                    .groups()
                    .propose_map_change(op)
                    .await
                    .map(|_| response::Body::Done(true))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Some(request::Body::Quiesce(q)) => {
                self.groups().handle_quiesce(&q).map(response::Body::Done)
            }
            Some(request::Body::Ping(_)) => Ok(response::Body::Done(true)),
            Some(request::Body::Publish(publish)) => Ok(self.deliver_published(publish)),
            Some(request::Body::HandOver(h)) => match self.shard_of_peer_group(h.group) {
                Some(shard) => self
                    .groups()
                    .hand_over(shard, h.to, h.reclaim)
                    .await
                    .map(response::Body::Done),
                None => Err(format!("no group {}", h.group)),
            },
            Some(request::Body::Revisions(keys)) => self.revisions_here(keys).await,
            Some(request::Body::ClusterClientHost(told)) => Ok(self.heard_of_cluster_client(told)),
            Some(request::Body::Holding(h)) => match self.shard_of_peer_group(h.group) {
                Some(shard) if self.groups().is_leader(shard) => {
                    let (index, replicas) = self.holding_here(shard, h.index);
                    Ok(response::Body::Holding(Holding {
                        group: h.group,
                        index,
                        replicas: replicas as u32,
                    }))
                }
                Some(_) => Err("not the leader of that group".to_string()),
                None => Err(format!("no group {}", h.group)),
            },
            Some(request::Body::ReadIndex(r)) => {
                let groups = self.groups();
                let index = match (r.group, self.shard_of_peer_group(r.group)) {
                    (0, _) => groups.map_read_index().await,
                    (_, Some(shard)) => groups.read_index(shard).await,
                    (_, None) => return response::Body::Error(format!("no group {}", r.group)),
                };
                index.map(response::Body::Index).map_err(|e| e.to_string())
            }
            None => Err("unknown request (a newer peer?)".to_string()),
        };
        result.unwrap_or_else(response::Body::Error)
    }

    /// The shard of a group a peer names: `None` for group 0 (the map group) and for
    /// numbers past the last shard.
    pub(super) fn shard_of_peer_group(&self, group: u32) -> Option<ShardId> {
        let shard = group.checked_sub(1)?;
        (shard < u32::from(self.shards.shard_count())).then_some(ShardId(shard as u16))
    }

    /// A node asks to join: it follows group 0 (a voter while there are fewer than five)
    /// and enters the cluster map; the balancer then gives it replicas.
    async fn admit(&self, join: Join) -> Result<bool, String> {
        let info = NodeInfo {
            client_addr: join.client_addr.clone(),
            cluster_addr: join.cluster_addr.clone(),
        };
        tracing::info!(node = join.node_id, addr = %join.client_addr, "node joining");
        self.change_replicas(0, Some((join.node_id, info.clone())), None)
            .await?;
        self.change_meta(MapChange::AddNode {
            node: join.node_id,
            info,
        })
        .await?;
        Ok(true)
    }

    /// Changes the members of `group` at its leader: here if this node leads it, else at
    /// the leader it knows or, in turn, at each node the cluster map gives a replica (the
    /// one that leads carries it out, the others refuse). Returns the group's voters after
    /// the change, as its leader has them.
    pub(super) async fn change_replicas(
        &self,
        group: GroupId,
        add: Option<(u64, NodeInfo)>,
        remove: Option<u64>,
    ) -> Result<BTreeSet<u64>, String> {
        let deadline = tokio::time::Instant::now() + ADD_REPLICA_TIMEOUT;
        let mut attempt = 0usize;
        loop {
            attempt += 1;
            let err = match self
                .groups()
                .change_replicas(group, add.clone(), remove)
                .await
            {
                Ok(voters) => return Ok(voters),
                Err(e @ ProposeError::Fatal(_)) => e.to_string(),
                Err(_) => match self.group_contact(group, add.as_ref().map(|a| a.0), attempt) {
                    Some((id, info)) => {
                        let body = request::Body::ChangeReplicas(ChangeReplicas {
                            group,
                            add: add.as_ref().map(|(node, info)| Join {
                                node_id: *node,
                                client_addr: info.client_addr.clone(),
                                cluster_addr: info.cluster_addr.clone(),
                            }),
                            remove: remove.unwrap_or(0),
                        });
                        let timeout =
                            deadline.saturating_duration_since(tokio::time::Instant::now());
                        match self
                            .groups()
                            .peers()
                            .call(id, &info.cluster_addr, body, timeout)
                            .await
                        {
                            Ok(response::Body::Voters(NodeIds { ids })) => {
                                return Ok(ids.into_iter().collect())
                            }
                            Ok(_) => "unexpected answer to a membership change".to_string(),
                            Err(e) => e.to_string(),
                        }
                    }
                    None => "the group's leader is unknown".to_string(),
                },
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("changing the members of group {group}: {err}"));
            }
            tracing::debug!(group, error = %err, "changing a group's members, retrying");
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// Another node to ask about `group`, a different one on each attempt: its leader as
    /// this node knows it, then (for a shard group) the other nodes the cluster map lists
    /// for it, which pass the request on to the leader they know.
    fn group_contact(
        &self,
        group: GroupId,
        skip: Option<u64>,
        attempt: usize,
    ) -> Option<(u64, NodeInfo)> {
        let me = self.groups().node_id();
        let known = if group == 0 {
            self.groups().meta_leader()
        } else {
            self.groups().leader_of(ShardId((group - 1) as u16))
        };
        let mut candidates: Vec<(u64, NodeInfo)> =
            known.into_iter().filter(|(id, _)| *id != me).collect();
        if group != 0 {
            let meta = self.map.read();
            let listed = meta.replicas.get((group - 1) as usize);
            for id in listed.into_iter().flatten() {
                if *id != me && Some(*id) != skip && candidates.iter().all(|(c, _)| c != id) {
                    if let Some(info) = meta.nodes.get(id) {
                        candidates.push((*id, info.clone()));
                    }
                }
            }
        }
        let n = candidates.len();
        (n > 0).then(|| candidates.swap_remove(attempt % n))
    }

    /// Proposes a change to the cluster map at group 0's leader (here or there).
    pub(super) async fn change_meta(&self, op: MapChange) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + META_TIMEOUT;
        loop {
            let err = match self.groups().propose_map_change(op.clone()).await {
                Ok(_) => return Ok(()),
                Err(ProposeError::NotLeader(_)) => match self.groups().meta_leader() {
                    Some((id, info)) if id != self.groups().node_id() => {
                        let body = request::Body::MetaChange(MetaChange { args: op.to_args() });
                        match self
                            .groups()
                            .peers()
                            .call(id, &info.cluster_addr, body, META_TIMEOUT)
                            .await
                        {
                            Ok(_) => return Ok(()),
                            Err(e) => e.to_string(),
                        }
                    }
                    _ => "the metadata group's leader is unknown".to_string(),
                },
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("changing the cluster map: {err}"));
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// Asks the node at client address `seed` to take this node in, until it does. The
    /// seed's node-to-node address is read from its `INFO raft`.
    pub async fn join_cluster(&self, seed: &str) -> Result<(), String> {
        if seed
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            return Err(format!("--join wants host:port, got {seed:?}"));
        }
        let seed_cluster = loop {
            match seed_cluster_addr(seed).await {
                Ok(addr) => break addr,
                Err(e) => {
                    tracing::warn!(%seed, error = %e, "cannot ask the seed for its address, retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let me = self.groups().me().clone();
        let body = request::Body::Join(Join {
            node_id: self.groups().node_id(),
            client_addr: me.client_addr,
            cluster_addr: me.cluster_addr,
        });
        loop {
            // The seed's id is not known yet; 0 names the connection to that address.
            match self
                .groups()
                .peers()
                .call(0, &seed_cluster, body.clone(), ADD_REPLICA_TIMEOUT)
                .await
            {
                Ok(_) => {
                    // From now on the seed is reached under its id, like every node.
                    self.groups().peers().forget(0);
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(seed = %seed_cluster, error = %e, "join failed, retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}
