//! CLUSTER FAILOVER: this node takes over the leadership of the shards it replicates.
//!
//! By default each shard's leader is asked to hand its leadership over (a cluster-proto
//! `HandOver`): it stops taking writes and lets this node, once up to date, win an
//! election — nothing acknowledged is lost. FORCE and TAKEOVER (Redis's forms for a master
//! that does not answer) start an election here instead, which still needs a majority's
//! votes: the nearest safe equivalent. Shards taken over are pinned here, so the leader
//! spreading (`membership.rs`) does not hand them back.

use std::time::Duration;

use cluster_proto::messages::HandOver;
use cluster_proto::request;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::ServerState;

use super::groups::{group_of, known_leader, Groups, ShardGroup};
use super::GroupId;
use crate::cluster::ShardId;
use crate::transport::Peers;

/// How long the ask to a leader may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a hand-over may take before the leader is asked again.
const HAND_OVER_WAIT: Duration = Duration::from_secs(3);
/// Asks at most; then this node starts an election (as FORCE does).
const HAND_OVER_ASKS: usize = 4;

/// How CLUSTER FAILOVER takes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverMode {
    /// Ask each leader to hand over.
    Graceful,
    /// Start an election here (FORCE, TAKEOVER).
    Election,
}

/// Asks the leader of `group` to hand over to this node (`me`) until it has, asking the
/// leader of the moment each time; if that does not happen after a few asks (a slow
/// follower, a transfer lost under load), an election from here settles it.
async fn take_over(group: &ShardGroup, peers: &Peers, me: u64) {
    for _ in 0..HAND_OVER_ASKS {
        let Some((leader, info)) = known_leader(&group.raft).filter(|(l, _)| *l != me) else {
            break;
        };
        let body = request::Body::HandOver(HandOver {
            group: group.id,
            to: me,
        });
        if let Err(e) = peers
            .call(leader, &info.cluster_addr, body, ASK_TIMEOUT)
            .await
        {
            tracing::debug!(group = group.id, error = %e, "failover: the leader did not hand over");
        }
        let deadline = tokio::time::Instant::now() + HAND_OVER_WAIT;
        while tokio::time::Instant::now() < deadline {
            if group.raft.metrics().borrow_watched().state == ServerState::Leader {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    if group.raft.metrics().borrow_watched().state != ServerState::Leader {
        tracing::info!(group = group.id, "failover: no hand-over, electing");
        if let Err(e) = group.raft.trigger().elect(false).await {
            tracing::warn!(error = %e, "failover: election not started");
        }
    }
}

impl Groups {
    /// Starts taking over every shard this node replicates but does not lead; how many.
    /// Returns at once; the leaderships move in the background.
    pub fn fail_over(&self, mode: FailoverMode) -> usize {
        let mut started = 0;
        for i in 0..self.shards.len() {
            let shard = ShardId(i as u16);
            let group = self.shard(shard);
            let m = group.raft.metrics().borrow_watched().clone();
            let voter = m
                .membership_config
                .membership()
                .voter_ids()
                .any(|v| v == self.node_id);
            if !voter || m.state == ServerState::Leader {
                continue;
            }
            started += 1;
            self.pinned.lock().insert(group.id);
            group.wake();
            match (mode, self.leader_of(shard)) {
                (FailoverMode::Graceful, Some(_)) => {
                    let peers = self.peers().clone();
                    let me = self.node_id;
                    tokio::spawn(async move {
                        take_over(&group, &peers, me).await;
                    });
                }
                // No leader known, or FORCE / TAKEOVER: an election from here.
                _ => {
                    let raft = group.raft.clone();
                    tokio::spawn(async move {
                        if let Err(e) = raft.trigger().elect(false).await {
                            tracing::warn!(error = %e, "failover: election not started");
                        }
                    });
                }
            }
        }
        started
    }

    /// A peer's CLUSTER FAILOVER: hands `shard`'s leadership to `to` if this node leads it
    /// and `to` is one of its voters.
    pub async fn hand_over(&self, shard: ShardId, to: u64) -> Result<bool, String> {
        let group = group_of(shard);
        let g = self.shard(shard);
        let m = g.raft.metrics().borrow_watched().clone();
        if m.state != ServerState::Leader {
            return Err("not the leader of that group".into());
        }
        if !m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == to)
        {
            return Err(format!("node {to} is not a voter of group {group}"));
        }
        // This node gives it up for good (a pin here would keep it).
        self.pinned.lock().remove(&group);
        self.transfer(&g, to).await;
        Ok(true)
    }

    /// Whether CLUSTER FAILOVER pinned `group`'s leadership here.
    pub(super) fn pinned(&self, group: GroupId) -> bool {
        self.pinned.lock().contains(&group)
    }
}
