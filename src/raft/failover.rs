//! CLUSTER FAILOVER: this node takes over the leadership of the shards it replicates.
//!
//! By default each shard's leader is asked to hand its leadership over (a cluster-proto
//! `HandOver`): it stops taking writes and lets this node, once up to date, win an
//! election — nothing acknowledged is lost. FORCE and TAKEOVER (Redis's forms for a master
//! that does not answer) start an election here instead, which still needs a majority's
//! votes: the nearest safe equivalent. Every shard this node replicates is then pinned
//! here: the leader spreading (`membership.rs`) does not hand it away, and one an election
//! took elsewhere (a leader starved of CPU past the election timeout) is asked back. A
//! node that fails over tells the other voters, which drop their own pins, so the last
//! CLUSTER FAILOVER is the one that holds.

use std::sync::Arc;
use std::time::Duration;

use cluster_proto::messages::HandOver;
use cluster_proto::request;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::{RaftMetrics, ServerState};

use super::groups::{group_of, known_leader, Groups, ShardGroup};
use super::types::TypeConfig;
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
/// follower, a transfer lost under load), an election from here settles it — unless this
/// node is only asking back (`reclaim`) what a later failover elsewhere may hold.
async fn take_over(group: &ShardGroup, peers: &Peers, me: u64, reclaim: bool) {
    for _ in 0..HAND_OVER_ASKS {
        let Some((leader, info)) = known_leader(&group.raft).filter(|(l, _)| *l != me) else {
            break;
        };
        let body = request::Body::HandOver(HandOver {
            group: group.id,
            to: me,
            reclaim,
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
    if !reclaim && group.raft.metrics().borrow_watched().state != ServerState::Leader {
        tracing::info!(group = group.id, "failover: no hand-over, electing");
        if let Err(e) = group.raft.trigger().elect(false).await {
            tracing::warn!(error = %e, "failover: election not started");
        }
    }
}

/// Tells the other voters of `group` that this node takes the group over: they drop
/// their pins (a leader asked this way hands over too). The leader is left out when
/// `take_over` asks it anyway.
fn tell_voters(group: &ShardGroup, peers: &Arc<Peers>, me: u64, skip_leader: bool) {
    let m = group.raft.metrics().borrow_watched().clone();
    let membership = m.membership_config.membership();
    for voter in membership.voter_ids() {
        if voter == me || (skip_leader && Some(voter) == m.current_leader) {
            continue;
        }
        let Some(info) = membership.get_node(&voter).cloned() else {
            continue;
        };
        let body = request::Body::HandOver(HandOver {
            group: group.id,
            to: me,
            reclaim: false,
        });
        let peers = peers.clone();
        tokio::spawn(async move {
            // A voter that does not lead answers "not the leader" after dropping its pin.
            let _ = peers
                .call(voter, &info.cluster_addr, body, ASK_TIMEOUT)
                .await;
        });
    }
}

/// Whether `node` is a voter of the group whose metrics these are.
fn votes(m: &RaftMetrics<TypeConfig>, node: u64) -> bool {
    m.membership_config
        .membership()
        .voter_ids()
        .any(|v| v == node)
}

impl Groups {
    /// Starts taking over every shard this node replicates but does not lead; how many.
    /// Returns at once; the leaderships move in the background.
    pub fn fail_over(&self, mode: FailoverMode) -> usize {
        let mut voted = Vec::new();
        for i in 0..self.shards.len() {
            let shard = ShardId(i as u16);
            let group = self.shard(shard);
            let m = group.raft.metrics().borrow_watched().clone();
            if votes(&m, self.node_id) {
                voted.push((shard, group, m));
            }
        }
        // Leading all of them already: not a replica, nothing changes (not even pins).
        if voted.iter().all(|(_, _, m)| m.state == ServerState::Leader) {
            return 0;
        }
        let mut started = 0;
        for (shard, group, m) in voted {
            self.pinned.lock().insert(group.id);
            let asks_leader = mode == FailoverMode::Graceful && m.current_leader.is_some();
            tell_voters(&group, self.peers(), self.node_id, asks_leader);
            if m.state == ServerState::Leader {
                continue;
            }
            started += 1;
            group.wake();
            match (mode, self.leader_of(shard)) {
                (FailoverMode::Graceful, Some(_)) => {
                    let peers = self.peers().clone();
                    let me = self.node_id;
                    tokio::spawn(async move {
                        take_over(&group, &peers, me, false).await;
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

    /// A peer's CLUSTER FAILOVER: this node drops its pin of `shard` (the last failover
    /// holds), and hands the leadership to `to` if it leads the shard and `to` is one of
    /// its voters. A `reclaim` of a group pinned here by a later failover is refused.
    pub async fn hand_over(&self, shard: ShardId, to: u64, reclaim: bool) -> Result<bool, String> {
        let group = group_of(shard);
        if reclaim && self.pinned(group) {
            return Err(format!("a later failover pinned group {group} here"));
        }
        self.pinned.lock().remove(&group);
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
        self.transfer(&g, to).await;
        Ok(true)
    }

    /// Whether CLUSTER FAILOVER pinned `group`'s leadership here.
    pub(super) fn pinned(&self, group: GroupId) -> bool {
        self.pinned.lock().contains(&group)
    }

    /// Asks back the pinned shards an election took elsewhere (one ask under way per
    /// group); a pin of a group this node no longer votes in is dropped.
    pub(super) fn reclaim_pinned(&self) {
        let pinned: Vec<GroupId> = self.pinned.lock().iter().copied().collect();
        for id in pinned {
            let Ok(group) = self.group(id) else {
                continue;
            };
            let m = group.raft.metrics().borrow_watched().clone();
            if !votes(&m, self.node_id) {
                self.pinned.lock().remove(&id);
                continue;
            }
            let led_elsewhere = m.current_leader.is_some_and(|l| l != self.node_id);
            if !led_elsewhere || !self.reclaiming.lock().insert(id) {
                continue;
            }
            tracing::debug!(group = id, "failover: asking back a pinned leadership");
            let peers = self.peers().clone();
            let me = self.node_id;
            let reclaiming = self.reclaiming.clone();
            tokio::spawn(async move {
                take_over(&group, &peers, me, true).await;
                reclaiming.lock().remove(&id);
            });
        }
    }
}
