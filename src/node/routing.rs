//! Where a keyed command runs: here, or at the node that leads its shard (found from the
//! groups this node holds, else from the cluster map), and the read barrier a read here
//! passes first. A cluster client (see `cluster-redirects`) is told where instead: `MOVED`
//! for a slot led elsewhere, `CROSSSLOT` for keys of several slots, as Redis Cluster does.

use bytes::Bytes;
use cluster_proto::messages::ReadIndex;
use cluster_proto::{request, response};

use super::Node;
use crate::clock;
use crate::cluster::{key_slot, ShardId};
use crate::commands::Command;
use crate::commands::Session;
use crate::config::Redirects;
use crate::protocol::Reply;
use crate::raft::group_of;

const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";
/// How long a replica read waits for the leader's read index and for its own apply.
const REPLICA_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Where a request runs (see `Node::route_elsewhere`).
pub(super) enum Route {
    Here,
    Answered(Reply),
    To((u64, crate::raft::types::NodeInfo)),
}

impl Node {
    /// Where a keyed command runs: at the leader of its shard when that is another node
    /// (a blocking command is sent there at once, any other waits to go with the
    /// pipeline's other commands for that node); here, once a read has waited for this
    /// node's leadership to be confirmed (lease or ReadIndex) and its state to be current.
    pub(super) async fn route_elsewhere(
        &self,
        cmd: &Command,
        session: &Session,
        args: &[Bytes],
    ) -> Route {
        match self.route_keyed(cmd, session, args).await {
            Some(Ok(reply)) => Route::Answered(reply),
            Some(Err(leader)) => Route::To(leader),
            None => Route::Here,
        }
    }

    /// `route_elsewhere` for a keyed command: `None` to run it here, `Err(leader)` to send
    /// it to another node with the pipeline. A read that runs here and has keys of other
    /// shards first makes sure this node's state of those shards is current too.
    async fn route_keyed(
        &self,
        cmd: &Command,
        session: &Session,
        args: &[Bytes],
    ) -> Option<Result<Reply, (u64, crate::raft::types::NodeInfo)>> {
        let route = self.route_first_key(cmd, session, args).await;
        if route.is_none() && !cmd.is_write() {
            if let Some(refused) = self.other_shards_current(cmd, session, args).await {
                return Some(Ok(refused));
            }
        }
        route
    }

    /// Where a keyed command runs, by the shard of its first key.
    async fn route_first_key(
        &self,
        cmd: &Command,
        session: &Session,
        args: &[Bytes],
    ) -> Option<Result<Reply, (u64, crate::raft::types::NodeInfo)>> {
        let first = cmd.key_positions(args).next()?;
        let redirects = self.redirects(session);
        if redirects {
            let slot = key_slot(&args[first]);
            if cmd.key_positions(args).any(|i| key_slot(&args[i]) != slot) {
                return Some(Ok(Reply::error(CROSSSLOT)));
            }
        }
        let shard = self.shards.shard_of_key(&args[first]);
        let groups = self.groups();
        if groups.serves_locally(shard, cmd.is_write()) {
            return None;
        }
        if redirects || self.stale_cluster_client(cmd, session, args) {
            if let Some(moved) = self.moved(cmd, session, &args[first], shard) {
                return Some(Ok(moved));
            }
        }
        let blocking = cmd.spec.has_flag("blocking");
        if session.readonly && !cmd.is_write() && !blocking && self.read_on_replica(shard).await {
            return None;
        }
        if let Some(leader) = self.leader_elsewhere(shard) {
            if !blocking {
                return Some(Err(leader));
            }
            let to = self.forward_for(session);
            return Some(Ok(self.forward(leader, to, args.to_vec(), true).await));
        }
        if cmd.is_write() {
            return None;
        }
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            match groups.read_barrier(shard).await {
                Ok(()) => return None,
                Err(
                    crate::raft::ProposeError::NotLeader(_) | crate::raft::ProposeError::NoLeader,
                ) => {
                    if let Some(leader) = self.leader_elsewhere(shard) {
                        let to = self.forward_for(session);
                        let reply = self.forward(leader, to, args.to_vec(), blocking).await;
                        return Some(Ok(reply));
                    }
                }
                Err(e) => return Some(Ok(Reply::Error(e.to_string()))),
            }
            // Leadership is moving and the new leader is not known here yet.
            if tokio::time::Instant::now() >= deadline {
                return Some(Ok(Reply::error("TRYAGAIN the shard is changing leader")));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Whether this connection is told where keys live rather than served through
    /// forwarding.
    pub(super) fn redirects(&self, session: &Session) -> bool {
        match self.shared.config.cluster_redirects() {
            Redirects::Always => true,
            Redirects::Never => false,
            Redirects::Auto => session.cluster_client || session.readonly,
        }
    }

    /// `MOVED <slot> <host:port>` for a command on `key` whose shard another node leads,
    /// unless it is a read on a READONLY connection and this node replicates the shard
    /// (then it is served here, see `read_on_replica`). `None` also when no other leader is known (the caller waits for one).
    pub(super) fn moved(
        &self,
        cmd: &Command,
        session: &Session,
        key: &[u8],
        shard: ShardId,
    ) -> Option<Reply> {
        let replicated_here = || !self.groups().voters_of(shard).is_empty();
        if session.readonly && !cmd.is_write() && replicated_here() {
            return None;
        }
        let (_, leader) = self.leader_elsewhere(shard)?;
        Some(Reply::Error(format!(
            "MOVED {} {}",
            key_slot(key).0,
            leader.client_addr
        )))
    }

    /// Whether a READONLY read of `shard` may run on this node, a replica of it: with
    /// `replica-reads stale` at once; by default once it is current (`caught_up`). False
    /// when this node holds no replica or the leader cannot be asked (the read then goes to
    /// the leader).
    async fn read_on_replica(&self, shard: ShardId) -> bool {
        if self.groups().voters_of(shard).is_empty() {
            return false;
        }
        self.shared.config.stale_replica_reads() || self.caught_up(shard).await
    }

    /// Whether this node, a replica of `shard` led by another node, has applied what the
    /// leader reports a linearizable read must see (ReadIndex).
    async fn caught_up(&self, shard: ShardId) -> bool {
        let groups = self.groups();
        let Some((leader, info)) = groups
            .leader_of(shard)
            .filter(|(id, _)| *id != groups.node_id())
        else {
            return false;
        };
        let ask = request::Body::ReadIndex(ReadIndex {
            group: group_of(shard),
        });
        let answer = groups
            .peers()
            .call(leader, &info.cluster_addr, ask, REPLICA_READ_TIMEOUT)
            .await;
        match answer {
            Ok(response::Body::Index(index)) => {
                groups
                    .wait_applied(shard, index, REPLICA_READ_TIMEOUT)
                    .await
            }
            _ => false,
        }
    }

    /// A read about to run here over keys of several shards: each shard other than the
    /// first's must be current on this node — led here (read barrier) or replicated here
    /// and caught up with its leader — else the read is refused rather than answered from
    /// a state that may be behind (or absent: a shard this node holds no replica of).
    async fn other_shards_current(
        &self,
        cmd: &Command,
        session: &Session,
        args: &[Bytes],
    ) -> Option<Reply> {
        let mut keys = cmd.key_positions(args);
        let first = self.shards.shard_of_key(&args[keys.next()?]);
        let mut others: Vec<ShardId> = keys
            .map(|i| self.shards.shard_of_key(&args[i]))
            .filter(|s| *s != first)
            .collect();
        // Most reads name one shard: nothing to check (and no look at every group's
        // membership, which `alone` takes).
        let groups = self.groups();
        if others.is_empty() || groups.alone() {
            return None;
        }
        others.sort_unstable();
        others.dedup();
        for shard in others {
            let current = groups.serves_locally(shard, false)
                || (groups.is_leader(shard) && groups.read_barrier(shard).await.is_ok())
                || (session.readonly && self.read_on_replica(shard).await)
                || (!groups.voters_of(shard).is_empty() && self.caught_up(shard).await);
            if !current {
                return Some(Reply::error(CROSSSLOT));
            }
        }
        None
    }

    /// Whether a request's keyed command goes to another node (its shard's leader is
    /// known to be elsewhere): the connection then keeps it with the waiting writes.
    pub fn led_elsewhere(&self, args: &[Bytes]) -> bool {
        if self.map.read().nodes.len() < 2 {
            return false;
        }
        let Some(cmd) = self.shared.table.get(&args[0]) else {
            return false;
        };
        let Some(first) = cmd.key_positions(args).next() else {
            return false;
        };
        let shard = self.shards.shard_of_key(&args[first]);
        !self.groups().is_leader(shard) && self.leader_elsewhere(shard).is_some()
    }

    /// The node leading `shard` when that is another node: the command runs there (reads
    /// see the leader's state, writes are proposed there). For a shard this node holds no
    /// replica of, a node the cluster map lists for it (which passes the command on to
    /// its leader).
    pub(super) fn leader_elsewhere(
        &self,
        shard: ShardId,
    ) -> Option<(u64, crate::raft::types::NodeInfo)> {
        let groups = self.groups();
        if groups.is_leader(shard) {
            return None;
        }
        let me = groups.node_id();
        if let Some(leader) = groups.leader_of(shard).filter(|(id, _)| *id != me) {
            return Some(leader);
        }
        let meta = self.map.read();
        let listed = meta.replicas.get(usize::from(shard.0))?;
        if listed.contains(&me) {
            return None;
        }
        let pick = (clock::now_us() as usize) % listed.len().max(1);
        let id = *listed.iter().nth(pick)?;
        Some((id, meta.nodes.get(&id)?.clone()))
    }
}
