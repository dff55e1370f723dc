//! Commands for shards led by another node: sent there over cluster-proto and their
//! replies relayed as the leader encoded them.
//!
//! The consecutive commands of one pipeline that go to the same leader travel as one
//! [`ForwardBatch`] and run there in order, as a pipeline of that node's own clients would
//! (its writes pass through each shard's log together); batches for different leaders and
//! the writes proposed here go at the same time. A blocking command travels alone.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cluster_proto::messages::{Args, Forward, ForwardBatch, Propose, Replies, WatchedKey};
use cluster_proto::{request, response};

use super::dispatch::{join_in_order, PendingWrite, Prepared, RequestKind};
use super::Node;
use crate::cluster::ShardId;
use crate::commands::Command;
use crate::commands::Session;
use crate::protocol::Reply;
use crate::raft::types::NodeInfo;
use crate::raft::{group_of, Entry, EntryOp, Origin, ProposeError};

/// How long a forwarded command may take before the client gets `-TRYAGAIN`; a blocking
/// command waits at the leader, so it gets longer (its own timeout is not known here).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
const FORWARD_BLOCKING_TIMEOUT: Duration = Duration::from_secs(300);

/// A command to run at the leader of its shard, another node.
pub struct Forwarded<'a> {
    pub(super) cmd: &'a Command,
    pub(super) leader: (u64, NodeInfo),
    pub(super) args: Vec<Bytes>,
    pub(super) started_us: u64,
}

/// For whom a forwarded command runs: the client's database and protocol, and the client
/// its writes name (NOLOOP tracking, see `Node::write_origin`).
#[derive(Debug, Clone, Copy)]
pub(super) struct ForwardFor {
    pub db: u8,
    pub resp3: bool,
    pub origin: Option<Origin>,
    /// Nodes the command will have passed through on arriving (1: sent by the client's
    /// node). Past [`FORWARD_HOPS_MAX`] it is not sent: a node that received a forwarded
    /// command for a shard it does not lead may pass it on once (its sender's view of the
    /// leader was stale), but views stale in a circle must not bounce it for good.
    pub hops: u32,
}

/// How many nodes may forward one command in turn.
pub(super) const FORWARD_HOPS_MAX: u32 = 2;

/// What a command that has been forwarded too often gets.
const TOO_MANY_HOPS: &str = "TRYAGAIN the shard's leader is moving (forwarded too often)";

impl ForwardFor {
    fn origin_fields(&self) -> (u64, u64) {
        self.origin.map_or((0, 0), |o| (o.node, o.client))
    }
}

/// A request of a pipeline whose reply waits: a write to propose here, or a command for
/// another node.
pub enum Pending<'a> {
    Write(PendingWrite<'a>),
    Forward(Forwarded<'a>),
}

/// A cross-shard step carries the clock of the leader that proposes it (a Prepare is
/// refused past its deadline by that clock, however late a retried one arrives).
fn stamped(entry: &Entry) -> std::borrow::Cow<'_, Entry> {
    match entry.op {
        EntryOp::CrossShard(_) => std::borrow::Cow::Owned(Entry {
            now_ms: crate::clock::now_ms().max(entry.now_ms),
            ..entry.clone()
        }),
        _ => std::borrow::Cow::Borrowed(entry),
    }
}

pub(super) fn peer_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn encoded(reply: &Reply, resp3: bool) -> Bytes {
    let mut out = BytesMut::new();
    reply.encode(resp3, &mut out);
    out.freeze()
}

impl Node {
    /// Runs waiting requests: the writes proposed here (runs of them together), the
    /// forwarded ones in one batch per leader, all at once; replies in request order.
    pub async fn commit(&self, pending: Vec<Pending<'_>>, session: &Session) -> Vec<Reply> {
        let n = pending.len();
        let mut writes = Vec::new();
        let mut write_at = Vec::new();
        let mut batches: BTreeMap<u64, (NodeInfo, Vec<(usize, Forwarded<'_>)>)> = BTreeMap::new();
        for (i, p) in pending.into_iter().enumerate() {
            match p {
                Pending::Write(w) => {
                    writes.push(w);
                    write_at.push(i);
                }
                Pending::Forward(f) => {
                    let (id, info) = f.leader.clone();
                    batches
                        .entry(id)
                        .or_insert((info, Vec::new()))
                        .1
                        .push((i, f));
                }
            }
        }
        let to = self.forward_for(session);
        let local = self.commit_writes(writes, session);
        let remote = join_in_order(batches.iter().map(|(id, (info, commands))| {
            let args = commands.iter().map(|(_, f)| f.args.clone()).collect();
            self.forward_batch((*id, info.clone()), to, args)
        }));
        let (local, remote) = tokio::join!(local, remote);
        let mut replies: Vec<Option<Reply>> = (0..n).map(|_| None).collect();
        for (i, reply) in write_at.into_iter().zip(local) {
            replies[i] = Some(reply);
        }
        for ((_, (_, commands)), batch_replies) in batches.iter().zip(remote) {
            for ((i, f), reply) in commands.iter().zip(batch_replies) {
                self.finish(f.cmd, &reply, session, &f.args, f.started_us);
                replies[*i] = Some(reply);
            }
        }
        replies
            .into_iter()
            .map(|r| r.unwrap_or(Reply::Null))
            .collect()
    }

    /// Sends commands, in order, to the node that leads their shards; their replies.
    pub(super) async fn forward_batch(
        &self,
        leader: (u64, NodeInfo),
        to: ForwardFor,
        commands: Vec<Vec<Bytes>>,
    ) -> Vec<Reply> {
        self.forward_batch_watching(leader, to, commands, Vec::new())
            .await
    }

    /// `forward_batch` for a transaction whose connection watches keys (`watched`, as this
    /// node sees them).
    pub(super) async fn forward_batch_watching(
        &self,
        (id, info): (u64, NodeInfo),
        to: ForwardFor,
        commands: Vec<Vec<Bytes>>,
        watched: Vec<WatchedKey>,
    ) -> Vec<Reply> {
        let count = commands.len();
        if to.hops > FORWARD_HOPS_MAX {
            return vec![Reply::error(TOO_MANY_HOPS); count];
        }
        self.shared.stats.forwarded_commands.add(count as u64);
        let (origin_node, origin_client) = to.origin_fields();
        let body = request::Body::ForwardBatch(ForwardBatch {
            db: u32::from(to.db),
            resp3: to.resp3,
            commands: commands.into_iter().map(|args| Args { args }).collect(),
            origin_node,
            origin_client,
            watched,
            hops: to.hops,
        });
        let call = self
            .groups()
            .peers()
            .call(id, &info.cluster_addr, body, FORWARD_TIMEOUT);
        let failed = |text: String| vec![Reply::Error(text); count];
        match call.await {
            Ok(response::Body::Replies(Replies { replies })) if replies.len() == count => {
                replies.into_iter().map(Reply::Encoded).collect()
            }
            Ok(_) => failed("ERR unexpected answer from the shard leader".into()),
            Err(e) => failed(format!("TRYAGAIN {e}")),
        }
    }

    /// Runs a batch another node forwarded, as a pipeline: writes wait to be proposed
    /// together, anything else first sees the writes before it.
    pub(super) async fn run_forwarded_batch(&self, batch: ForwardBatch) -> response::Body {
        let origin = (batch.origin_node, batch.origin_client);
        let mut session = match self.peer_session(batch.db, batch.resp3, origin, batch.hops) {
            Ok(session) => session,
            Err(refused) => return refused,
        };
        for w in batch.watched {
            match self.watched_revision(w) {
                Ok(w) => session.watched_elsewhere.push(w),
                Err(e) => return response::Body::Error(e),
            }
        }
        let mut replies: Vec<Option<Reply>> = (0..batch.commands.len()).map(|_| None).collect();
        let mut waiting: Vec<(usize, Pending<'_>)> = Vec::new();
        for (i, Args { args }) in batch.commands.into_iter().enumerate() {
            if args.is_empty() {
                replies[i] = Some(Reply::error("ERR empty command"));
                continue;
            }
            if self.classify(&args) != RequestKind::Write {
                self.commit_waiting(&mut waiting, &mut replies, &session)
                    .await;
            }
            match self.prepare(&mut session, args).await {
                Prepared::Done(reply) => replies[i] = Some(reply),
                Prepared::Write(w) => waiting.push((i, Pending::Write(w))),
                Prepared::Forward(f) => waiting.push((i, Pending::Forward(f))),
            }
        }
        self.commit_waiting(&mut waiting, &mut replies, &session)
            .await;
        let resp3 = batch.resp3;
        response::Body::Replies(Replies {
            replies: replies
                .into_iter()
                .map(|r| encoded(&r.unwrap_or(Reply::Null), resp3))
                .collect(),
        })
    }

    async fn commit_waiting(
        &self,
        waiting: &mut Vec<(usize, Pending<'_>)>,
        replies: &mut [Option<Reply>],
        session: &Session,
    ) {
        if waiting.is_empty() {
            return;
        }
        let (at, pending): (Vec<usize>, Vec<Pending<'_>>) = waiting.drain(..).unzip();
        for (i, reply) in at.into_iter().zip(self.commit(pending, session).await) {
            replies[i] = Some(reply);
        }
    }

    /// A session for commands a peer forwarded, in database `db` (which must exist here).
    fn peer_session(
        &self,
        db: u32,
        resp3: bool,
        (origin_node, origin_client): (u64, u64),
        hops: u32,
    ) -> Result<Session, response::Body> {
        let databases = u32::from(self.shared.keyspace.databases());
        if db >= databases {
            return Err(response::Body::Error(format!("no database {db}")));
        }
        let info = self.shared.clients.detached(peer_addr(), peer_addr());
        let mut session = Session::new(info, true);
        session.select(db as u8);
        session.set_resp3(resp3);
        session.forwarded_for = (origin_node != 0).then_some((origin_node, origin_client));
        session.forward_hops = hops;
        Ok(session)
    }

    /// Runs a command another node forwarded and returns its reply, encoded for the client.
    pub(super) async fn run_forwarded(&self, forward: Forward) -> response::Body {
        let origin = (forward.origin_node, forward.origin_client);
        let mut session = match self.peer_session(forward.db, forward.resp3, origin, forward.hops) {
            Ok(session) => session,
            Err(refused) => return refused,
        };
        let reply = self.execute(&mut session, forward.args).await;
        response::Body::Reply(encoded(&reply, forward.resp3))
    }

    /// Sends one command to the node that leads its shard and returns that node's reply.
    pub(super) async fn forward(
        &self,
        leader: (u64, NodeInfo),
        to: ForwardFor,
        args: Vec<Bytes>,
        blocking: bool,
    ) -> Reply {
        let (id, info) = leader;
        if to.hops > FORWARD_HOPS_MAX {
            return Reply::error(TOO_MANY_HOPS);
        }
        self.shared.stats.forwarded_commands.incr();
        let timeout = if blocking {
            FORWARD_BLOCKING_TIMEOUT
        } else {
            FORWARD_TIMEOUT
        };
        let (origin_node, origin_client) = to.origin_fields();
        let body = request::Body::Forward(Forward {
            db: u32::from(to.db),
            args,
            resp3: to.resp3,
            origin_node,
            origin_client,
            hops: to.hops,
        });
        match self
            .groups()
            .peers()
            .call(id, &info.cluster_addr, body, timeout)
            .await
        {
            Ok(response::Body::Reply(raw)) => Reply::Encoded(raw),
            Ok(_) => Reply::error("ERR unexpected answer from the shard leader"),
            Err(e) => Reply::Error(format!("TRYAGAIN {e}")),
        }
    }

    /// Runs the commands of an entry at `shard`'s new leader, in order (a batch gets its
    /// replies back as one array, as its apply would have given them).
    pub(super) async fn forward_entry(&self, shard: ShardId, entry: &Entry, resp3: bool) -> Reply {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let leader = loop {
            if let Some(leader) = self.leader_elsewhere(shard) {
                break leader;
            }
            if tokio::time::Instant::now() >= deadline {
                return Reply::error("TRYAGAIN the shard is changing leader");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let to = ForwardFor {
            db: entry.db,
            resp3,
            origin: entry.origin,
            hops: 1,
        };
        match &entry.op {
            EntryOp::Command(args) => self.forward(leader, to, args.clone(), false).await,
            EntryOp::Batch(commands) => {
                Reply::Array(self.forward_batch(leader, to, commands.clone()).await)
            }
            // A transaction's writes were normalised against this node's state: its client
            // runs EXEC again.
            EntryOp::Expire(_)
            | EntryOp::Map(_)
            | EntryOp::FlushSlots { .. }
            | EntryOp::Transaction(_)
            | EntryOp::CrossShard(_) => Reply::error("TRYAGAIN the shard is changing leader"),
        }
    }

    /// FLUSHDB or FLUSHALL in a cluster: every shard's group deletes its own slots' data
    /// (at each shard's leader, all at once). Not atomic across shards, as in Redis Cluster,
    /// where each primary flushes its own.
    pub(super) async fn flush_everywhere(&self, db: u8, now_ms: u64, all_dbs: bool) -> Reply {
        let entry = Entry::new(db, now_ms, EntryOp::FlushSlots { all_dbs });
        let shards = (0..self.shards.shard_count()).map(ShardId);
        let replies =
            join_in_order(shards.map(|shard| self.propose_at_leader(shard, &entry))).await;
        replies
            .into_iter()
            .find(|r| matches!(r, Reply::Error(_)))
            .unwrap_or(Reply::OK)
    }

    /// Proposes `entry` to `shard`'s group at its leader, here or at another node.
    pub(super) async fn propose_at_leader(&self, shard: ShardId, entry: &Entry) -> Reply {
        let deadline = tokio::time::Instant::now() + FORWARD_TIMEOUT;
        loop {
            let err = if self.groups().is_leader(shard) {
                match self.propose(shard, &stamped(entry)).await {
                    Ok(reply) => return reply,
                    Err(e) => e.to_string(),
                }
            } else if let Some((id, info)) = self.leader_elsewhere(shard) {
                let body = request::Body::Propose(Propose {
                    group: group_of(shard),
                    entry: entry.encode(),
                });
                let call =
                    self.groups()
                        .peers()
                        .call(id, &info.cluster_addr, body, FORWARD_TIMEOUT);
                match call.await {
                    Ok(response::Body::Reply(raw)) => return Reply::Encoded(raw),
                    Ok(_) => "ERR unexpected answer from the shard leader".to_string(),
                    Err(e) => format!("TRYAGAIN {e}"),
                }
            } else {
                ProposeError::NoLeader.to_string()
            };
            if tokio::time::Instant::now() >= deadline {
                return Reply::Error(err);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Proposes an entry another node sent for a group this node leads (carried out here
    /// or refused, never passed on).
    pub(super) async fn run_proposal(&self, propose: Propose) -> Result<response::Body, String> {
        let (shard, entry) = self.check_proposal(&propose)?;
        if !self.groups().is_leader(shard) {
            return Err(ProposeError::NoLeader.to_string());
        }
        let reply = self
            .propose(shard, &stamped(&entry))
            .await
            .map_err(|e| e.to_string())?;
        Ok(response::Body::Reply(encoded(&reply, false)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command that arrived forwarded twice is not sent on a third time: its sender gets
    /// TRYAGAIN and nothing is sent (the test node has no peers to send to).
    #[tokio::test]
    async fn a_command_forwarded_twice_is_not_forwarded_again() {
        let node = crate::node::test_node();
        let info = node.shared.clients.detached(peer_addr(), peer_addr());
        let mut session = Session::new(info, true);
        session.forward_hops = FORWARD_HOPS_MAX;
        let to = node.forward_for(&session);
        assert_eq!(to.hops, FORWARD_HOPS_MAX + 1);
        let leader = || {
            let info = NodeInfo {
                client_addr: "127.0.0.1:1".into(),
                cluster_addr: "127.0.0.1:2".into(),
            };
            (2, info)
        };
        let set = vec![Bytes::from_static(b"SET"), Bytes::from_static(b"k")];
        let reply = node.forward(leader(), to, set.clone(), false).await;
        assert_eq!(reply, Reply::error(TOO_MANY_HOPS));
        let replies = node
            .forward_batch(leader(), to, vec![set.clone(), set])
            .await;
        assert_eq!(replies, vec![Reply::error(TOO_MANY_HOPS); 2]);
        // One hop fewer is sent as usual (it would go to the leader).
        session.forward_hops = FORWARD_HOPS_MAX - 1;
        assert_eq!(node.forward_for(&session).hops, FORWARD_HOPS_MAX);
    }
}
