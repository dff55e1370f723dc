//! WAIT numreplicas timeout: how many replicas hold this connection's writes.
//!
//! In Basalt a write is on a majority of its shard's replicas before it is acknowledged,
//! so WAIT asks for more than that: for each shard this connection has written to, the
//! leader's last log index is the point every earlier write of the connection lies at or
//! below, and WAIT counts the other replicas whose log holds that index (Raft's matched
//! index, as the leader sees it). It answers the smallest count over those shards, as soon
//! as it reaches `numreplicas` or when the timeout (milliseconds, 0 for none) runs out.
//! With no writes yet, the count is that of the replicas holding every shard's log.

use std::time::Duration;

use cluster_proto::messages::Holding;
use cluster_proto::{request, response};

use super::Node;
use crate::cluster::ShardId;
use crate::protocol::Reply;
use crate::raft::group_of;

/// How often WAIT looks again.
const POLL: Duration = Duration::from_millis(10);
/// How long one question to another node's leader may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);

impl Node {
    /// WAIT for `written` (the connection's shards written to).
    pub(super) async fn wait_for_replicas(
        &self,
        written: &[ShardId],
        wanted: i64,
        timeout_ms: u64,
    ) -> Reply {
        let shards: Vec<ShardId> = if written.is_empty() {
            (0..self.shards.shard_count()).map(ShardId).collect()
        } else {
            written.to_vec()
        };
        // A timeout too far off to represent is as good as none.
        let deadline = (timeout_ms > 0)
            .then(|| tokio::time::Instant::now().checked_add(Duration::from_millis(timeout_ms)))
            .flatten();
        // The index each shard must hold, fixed at the first look.
        let mut at: Vec<u64> = vec![0; shards.len()];
        loop {
            let mut least = usize::MAX;
            for (i, shard) in shards.iter().enumerate() {
                let (index, replicas) = self.replicas_holding(*shard, at[i]).await;
                at[i] = index;
                least = least.min(replicas);
            }
            let least = if least == usize::MAX { 0 } else { least };
            let now = tokio::time::Instant::now();
            if least as i64 >= wanted || deadline.is_some_and(|d| now >= d) {
                return Reply::Integer(least as i64);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// At `shard`'s leader (here or asked): the index to hold (`index`, or the leader's
    /// last log index when 0) and how many replicas other than the leader hold it. A shard
    /// with no reachable leader counts no replicas.
    async fn replicas_holding(&self, shard: ShardId, index: u64) -> (u64, usize) {
        let groups = self.groups();
        if groups.is_leader(shard) {
            return self.holding_here(shard, index);
        }
        let Some((leader, info)) = groups.leader_of(shard) else {
            return (index, 0);
        };
        let ask = request::Body::Holding(Holding {
            group: group_of(shard),
            index,
            replicas: 0,
        });
        let answer = groups
            .peers()
            .call(leader, &info.cluster_addr, ask, ASK_TIMEOUT)
            .await;
        match answer {
            Ok(response::Body::Holding(h)) => (h.index, h.replicas as usize),
            _ => (index, 0),
        }
    }

    /// `replicas_holding` at the leader (this node).
    pub(super) fn holding_here(&self, shard: ShardId, index: u64) -> (u64, usize) {
        let offsets = self.groups().replication_offsets(shard);
        let me = self.groups().node_id();
        let index = if index == 0 {
            offsets
                .iter()
                .find(|(n, _)| *n == me)
                .map_or(0, |(_, i)| *i)
        } else {
            index
        };
        let replicas = offsets
            .iter()
            .filter(|(n, matched)| *n != me && *matched >= index)
            .count();
        (index, replicas)
    }
}
