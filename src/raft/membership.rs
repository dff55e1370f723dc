//! Who holds which replica: membership changes of a group at its leader, the liveness of
//! nodes as group 0's leader sees it, dropping replicas this node no longer holds, and
//! spreading shard leaders over the voters.
//!
//! Deciding where replicas go is the balancer's job (`node/balancer.rs`, on group 0's
//! leader); this module carries out its decisions on the groups of this node.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cluster_proto::messages::ReadIndex;
use cluster_proto::{request, response};
use openraft::async_runtime::watch::WatchReceiver;
use openraft::{ChangeMembers, Instant as _, ServerState};

use super::groups::{group_of, known_leader, Groups, ProposeError, ShardGroup};
use super::state_machine::GroupId;
use super::types::NodeInfo;
use crate::cluster::map::MAP_VOTERS;
use crate::cluster::ShardId;

/// Shard leaderships a node hands over in one round of `balance_leaders` at most.
const LEADER_MOVES_PER_ROUND: usize = 8;
/// A voter silent for longer than this is not handed a shard's leadership.
const LEADER_TARGET_SILENCE: Duration = Duration::from_secs(1);
/// How long a leader waits for a transfer it asked for before asking again.
const TRANSFER_RETRY: Duration = Duration::from_secs(1);
/// How long a node waits for group 0's read index and for its map to apply it.
const MAP_READ_TIMEOUT: Duration = Duration::from_secs(2);

impl Groups {
    /// Changes the members of `group`, whose leader this node must be: `add` becomes a
    /// learner, catches up and turns voter (a shard group stops at the replication factor,
    /// group 0 at [`MAP_VOTERS`] and keeps further nodes as learners); then `remove`
    /// leaves the group (the leader itself too: openraft has it step down once the change
    /// is committed). Returns the group's voters after it (with neither: as they are).
    pub async fn change_replicas(
        &self,
        group: GroupId,
        add: Option<(u64, NodeInfo)>,
        remove: Option<u64>,
    ) -> Result<BTreeSet<u64>, ProposeError> {
        let group_now = self.group(group).map_err(ProposeError::Fatal)?;
        let raft = &group_now.raft;
        if !raft.is_leader() {
            let leader = raft.metrics().borrow_watched().current_leader;
            return Err(self.elsewhere(leader));
        }
        group_now.wake();
        let fatal = |e: &dyn std::fmt::Display| ProposeError::Fatal(e.to_string());
        if let Some((node, info)) = add {
            let voters: BTreeSet<u64> = raft.voter_ids().collect();
            if !voters.contains(&node) {
                tracing::info!(group, node, "adding a replica");
                raft.add_learner(node, info, true)
                    .await
                    .map_err(|e| fatal(&e))?;
                let cap = if group == 0 {
                    // The joining node counts, whether or not the map lists it yet.
                    let meta = self.map.read();
                    map_voters_wanted(
                        meta.nodes.len() + usize::from(!meta.nodes.contains_key(&node)),
                    )
                } else {
                    self.replicas
                };
                // A node about to be removed does not count against the factor.
                let counted = voters.iter().filter(|v| Some(**v) != remove).count();
                if counted < cap {
                    raft.change_membership(
                        ChangeMembers::AddVoterIds(BTreeSet::from([node])),
                        false,
                    )
                    .await
                    .map_err(|e| fatal(&e))?;
                }
            }
        }
        if let Some(node) = remove {
            let members = raft.metrics().borrow_watched().membership_config.clone();
            let membership = members.membership();
            if membership.get_node(&node).is_none() {
                return Ok(raft.voter_ids().collect());
            }
            let change = if membership.voter_ids().any(|v| v == node) {
                ChangeMembers::RemoveVoters(BTreeSet::from([node]))
            } else {
                ChangeMembers::RemoveNodes(BTreeSet::from([node]))
            };
            tracing::info!(group, node, "removing a replica");
            raft.change_membership(change, false)
                .await
                .map_err(|e| fatal(&e))?;
        }
        Ok(raft.voter_ids().collect())
    }

    /// On group 0's leader: keeps group 0 at an odd number of voters (up to
    /// [`MAP_VOTERS`]), all live — a silent voter is replaced by a live learner, learners are
    /// promoted while there are too few voters, a voter too many goes back to learning.
    /// Returns whether it changed anything.
    pub async fn balance_meta_voters(&self, live: &BTreeSet<u64>) -> Result<bool, ProposeError> {
        let raft = &self.map_group.raft;
        if !raft.is_leader() {
            return Ok(false);
        }
        self.map_group.wake();
        let m = raft.metrics().borrow_watched().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let learners: BTreeSet<u64> = membership.learner_ids().collect();
        let wanted = map_voters_wanted(self.map.read().nodes.len());
        let Some(next) = plan_meta_voters(&voters, &learners, live, wanted, self.node_id) else {
            return Ok(false);
        };
        tracing::info!(?next, "changing the metadata group's voters");
        // Voters that leave stay learners: every node follows the map.
        raft.change_membership(ChangeMembers::ReplaceAllVoters(next), true)
            .await
            .map_err(|e| ProposeError::Fatal(e.to_string()))?;
        Ok(true)
    }

    /// Whether this node leads group 0 (the one that runs the balancer).
    pub fn leads_map(&self) -> bool {
        self.map_group.raft.is_leader()
    }

    /// The leader of group 0 as this node knows it.
    pub fn meta_leader(&self) -> Option<(u64, NodeInfo)> {
        known_leader(&self.map_group.raft)
    }

    /// For group 0's leader: how long ago each other member of group 0 last answered a
    /// heartbeat (`None`: not since this node leads). `None` on any other node.
    pub fn silences(&self) -> Option<BTreeMap<u64, Option<Duration>>> {
        let m = self.map_group.raft.metrics().borrow_watched().clone();
        if m.state != ServerState::Leader {
            return None;
        }
        let heartbeat = m.heartbeat.as_ref()?;
        Some(
            heartbeat
                .iter()
                .filter(|(id, _)| **id != self.node_id)
                .map(|(id, at)| (*id, at.as_ref().map(|at| at.elapsed())))
                .collect(),
        )
    }

    /// The voters of `shard`'s group as this node sees them (none if it holds no replica).
    pub fn voters_of(&self, shard: ShardId) -> BTreeSet<u64> {
        self.shard(shard).raft.voter_ids().collect()
    }

    /// Whether this node is a voter of `shard`'s group (it applies the shard's entries), read
    /// from the group's metrics without collecting its members.
    pub fn is_voter(&self, shard: ShardId) -> bool {
        let metrics = self.shard(shard).raft.metrics();
        let m = metrics.borrow_watched();
        let found = m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == self.node_id);
        found
    }

    /// Drops the replicas this node holds that the cluster map no longer gives it: the
    /// map unlists a replica only after it has left its group.
    pub async fn drop_removed(&self) {
        let unheld = |groups: &Groups| -> Vec<ShardId> {
            let meta = groups.map.read();
            if meta.nodes.is_empty() {
                return Vec::new();
            }
            let unlisted = meta.replicas.iter().enumerate();
            unlisted
                .filter(|(_, nodes)| !nodes.contains(&groups.node_id))
                .map(|(i, _)| ShardId(i as u16))
                .filter(|shard| {
                    let m = groups.shard(*shard).raft.metrics().borrow_watched().clone();
                    let holds = m.membership_config.membership().nodes().next().is_some()
                        || m.last_log_index.is_some();
                    holds && m.state != ServerState::Leader
                })
                .collect()
        };
        if unheld(self).is_empty() {
            return;
        }
        // A replica is listed in the map before its group's leader adds it, but this
        // node's copy of the map may not have applied that listing yet when the group's
        // first entries arrive: drop only what a current map leaves unlisted.
        if !self.map_current().await {
            return;
        }
        for shard in unheld(self) {
            if let Err(e) = self.reset(shard).await {
                tracing::error!(group = group_of(shard), error = %e, "dropping a replica failed");
            }
        }
    }

    /// Whether this node's copy of the map now holds everything group 0 had committed
    /// when asked: its leader's read index (ReadIndex), applied here.
    async fn map_current(&self) -> bool {
        let index = if self.map_group.raft.is_leader() {
            self.map_read_index().await.ok()
        } else {
            let Some((leader, info)) = known_leader(&self.map_group.raft) else {
                return false;
            };
            let ask = request::Body::ReadIndex(ReadIndex { group: 0 });
            match self
                .peers()
                .call(leader, &info.cluster_addr, ask, MAP_READ_TIMEOUT)
                .await
            {
                Ok(response::Body::Index(index)) => Some(index),
                _ => None,
            }
        };
        let Some(index) = index else {
            return false;
        };
        self.map_group
            .raft
            .wait(Some(MAP_READ_TIMEOUT))
            .applied_index_at_least(Some(index), "the map's read index")
            .await
            .is_ok()
    }

    /// Spreads shard leaders over the voters whose nodes answer: when this node leads more
    /// groups than its share (groups / answering nodes, rounded up), it hands groups (up to
    /// [`LEADER_MOVES_PER_ROUND`] a round) to the voter of each that leads the fewest, if
    /// that one is below its share, down to its share. Every node runs it, so leaders settle
    /// within a round or two.
    pub async fn balance_leaders(&self) {
        self.retry_transfers().await;
        self.reclaim_pinned();
        // Leadership goes only to a voter whose node answers (an asleep group's heartbeats
        // say nothing), and a node that does not answer leads nothing for long.
        let answering =
            |v: &u64| *v == self.node_id || self.peers().answered_within(*v, LEADER_TARGET_SILENCE);
        let mut led: BTreeMap<u64, usize> = BTreeMap::new();
        let mut mine = Vec::new();
        let mut members = Vec::new();
        let groups: Vec<ShardGroup> = self.shards.iter().map(|s| s.read().clone()).collect();
        for group in &groups {
            let m = group.raft.metrics().borrow_watched().clone();
            let voters: Vec<u64> = m
                .membership_config
                .membership()
                .voter_ids()
                .filter(answering)
                .collect();
            for v in &voters {
                led.entry(*v).or_insert(0);
            }
            // A group this node holds no replica of may remember a leader long gone.
            if let Some(leader) = m.current_leader.filter(|l| voters.contains(l)) {
                *led.entry(leader).or_insert(0) += 1;
            }
            // A leadership CLUSTER FAILOVER took is kept.
            if m.state == ServerState::Leader && voters.len() > 1 && !self.pinned(group.id) {
                mine.push(members.len());
            }
            members.push(voters);
        }
        if led.len() < 2 {
            return;
        }
        let share = groups.len().div_ceil(led.len());
        if mine.len() <= share {
            return;
        }
        // Several groups per round (a node that led 64 would otherwise take minutes).
        let mut leading = mine.len();
        let mut moved = 0;
        for &i in mine.iter().rev() {
            if leading <= share || moved == LEADER_MOVES_PER_ROUND {
                break;
            }
            let target = members[i]
                .iter()
                .filter(|v| **v != self.node_id)
                .min_by_key(|v| led.get(v).copied().unwrap_or(0))
                .copied();
            let Some(to) = target else { continue };
            // Only to a node below its share (as far as this node sees), so a leadership
            // never has to move on again: nodes above their share that hold the same
            // groups would otherwise pass the excess round among themselves.
            let theirs = led.get(&to).copied().unwrap_or(0);
            if theirs + 1 >= leading || theirs >= share {
                continue;
            }
            tracing::info!(
                group = group_of(ShardId(i as u16)),
                to,
                "moving a shard leader"
            );
            self.transfer(&groups[i], to).await;
            led.insert(to, theirs + 1);
            leading -= 1;
            moved += 1;
        }
    }
}

impl Groups {
    /// Asks `group`'s voters to let `to` take over its leadership.
    pub(super) async fn transfer(&self, group: &ShardGroup, to: u64) {
        group.wake();
        self.transfers
            .lock()
            .insert(group.id, (to, std::time::Instant::now()));
        let _ = group.raft.trigger().transfer_leader(to).await;
    }

    /// A leader handing over refuses writes and stops its heartbeats until another is
    /// elected. If that has not happened a while after asking (the target was behind, or
    /// the request was lost and the members are asleep), it asks again: every voter
    /// receiving the request wakes, and one that is up to date wins an election.
    async fn retry_transfers(&self) {
        let pending: Vec<(GroupId, u64, Duration)> = self
            .transfers
            .lock()
            .iter()
            .map(|(g, (to, at))| (*g, *to, at.elapsed()))
            .collect();
        for (id, to, asked) in pending {
            let group = match self.group(id) {
                Ok(g) if g.raft.metrics().borrow_watched().state == ServerState::Leader => g,
                _ => {
                    self.transfers.lock().remove(&id);
                    continue;
                }
            };
            if !self.peers().answered_within(to, LEADER_TARGET_SILENCE) {
                // Its node went quiet: the other voters elect someone instead once their
                // election timers run out (a leader handing over stops heartbeating, and the
                // group stays awake while the transfer is listed).
                continue;
            }
            if asked >= TRANSFER_RETRY {
                tracing::info!(group = id, to, "leader transfer not done, asking again");
                self.transfer(&group, to).await;
            }
        }
    }

    /// Whether this node is handing over `group`'s leadership (it must not sleep).
    pub(super) fn transferring(&self, group: GroupId) -> bool {
        self.transfers.lock().contains_key(&group)
    }
}

/// How many voters group 0 should have with `nodes` nodes: the largest odd number up to
/// [`MAP_VOTERS`] (an even count tolerates no more failures than the odd one below it).
pub fn map_voters_wanted(nodes: usize) -> usize {
    let n = nodes.clamp(1, MAP_VOTERS);
    if n.is_multiple_of(2) {
        n - 1
    } else {
        n
    }
}

/// Group 0's next voter set, if it should change: a voter that is not live is replaced by
/// a live learner; live learners are promoted up to `wanted`; beyond `wanted` a voter
/// (one not live first, never `me`, the leader) goes back to learning.
pub fn plan_meta_voters(
    voters: &BTreeSet<u64>,
    learners: &BTreeSet<u64>,
    live: &BTreeSet<u64>,
    wanted: usize,
    me: u64,
) -> Option<BTreeSet<u64>> {
    let mut next = voters.clone();
    let mut spare = learners.iter().filter(|l| live.contains(l));
    if let Some(&dead) = voters.iter().find(|v| !live.contains(v) && **v != me) {
        if let Some(&learner) = spare.next() {
            next.remove(&dead);
            next.insert(learner);
            return Some(next);
        }
    }
    if next.len() < wanted {
        let promoted: Vec<u64> = spare.take(wanted - next.len()).copied().collect();
        if promoted.is_empty() {
            return None;
        }
        next.extend(promoted);
        return Some(next);
    }
    if next.len() > wanted {
        let out = voters
            .iter()
            .filter(|v| **v != me)
            .min_by_key(|v| live.contains(v))
            .copied()?;
        next.remove(&out);
        return Some(next);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u64]) -> BTreeSet<u64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn group_zero_keeps_an_odd_count_of_live_voters() {
        assert_eq!(
            [1, 2, 3, 4, 5, 6, 9].map(map_voters_wanted),
            [1, 1, 3, 3, 5, 5, 5]
        );
        // A 4th node stays a learner; a 5th makes both voters.
        let (v3, l4) = (set(&[1, 2, 3]), set(&[4]));
        assert_eq!(plan_meta_voters(&v3, &l4, &set(&[1, 2, 3, 4]), 3, 1), None);
        let five = set(&[1, 2, 3, 4, 5]);
        assert_eq!(
            plan_meta_voters(&v3, &set(&[4, 5]), &five, 5, 1),
            Some(five.clone())
        );
        // A silent voter is replaced by a live learner; with none it stays.
        assert_eq!(
            plan_meta_voters(&v3, &l4, &set(&[1, 3, 4]), 3, 1),
            Some(set(&[1, 3, 4]))
        );
        assert_eq!(plan_meta_voters(&v3, &set(&[]), &set(&[1, 3]), 3, 1), None);
        // Too many voters: a silent one (never the leader) goes back to learning.
        assert_eq!(
            plan_meta_voters(&set(&[1, 2, 3, 4]), &set(&[]), &set(&[1, 2, 4]), 3, 1),
            Some(set(&[1, 2, 4]))
        );
    }
}
