//! Quiescing idle groups: a shard group whose log has not moved between two looks, with
//! every member holding and having committed all of it, stops its timers (no heartbeats, no
//! election timer) on every member, so an idle node with many groups uses almost no CPU.
//!
//! The leader asks its members first ([`Quiesce`]); only when every one has stopped does it
//! stop its own timers. Anything that moves a group starts its timers again: a proposal or
//! a read at the leader, any Raft RPC at a member (an append, a vote request, a snapshot).
//! While asleep, a member watches its leader's node instead: a node pings each other node
//! that has answered nothing for [`PING_AFTER`], and when the leader's node has been silent
//! for longer than [`WAKE_AFTER`] (plus a per-node random spread, so members do not all
//! campaign at once) the member wakes; its election timer, long expired, starts an election
//! at the next tick. Each round an asleep leader also checks its log: one that moved after
//! all (an entry appended as it went to sleep) wakes before its members' election timers
//! could expire.
//!
//! A member whose node is away (refusing connections, or silent for [`AWAY_AFTER`]) does not
//! keep the rest awake: the leader sleeps with a majority of the voters agreeing, leaving it
//! out, and wakes as soon as a left-out node answers again, to bring it up to date.
//!
//! Raft's safety never depends on timers; quiescing trades only how fast a dead leader is
//! noticed. Group 0 sleeps only when alone: with others, the balancer reads node liveness
//! from its heartbeats.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use cluster_proto::messages::Quiesce;
use cluster_proto::{request, response};
use futures_util::future::join_all;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::ServerState;
use parking_lot::Mutex;
use rand::Rng;

use super::groups::{Groups, ShardGroup};

/// How often the node checks its asleep groups (and pings its peers).
pub const ROUND: Duration = Duration::from_millis(100);
/// A peer is pinged when it has answered nothing for this long.
const PING_AFTER: Duration = Duration::from_millis(200);
/// How often a peer busy with other traffic is still pinged, to time the round trip.
const ROUND_TRIP_EVERY: Duration = Duration::from_secs(1);
/// Rounds between two looks for idle groups at their leader: a group is idle when its log
/// has not moved between two looks.
const ROUNDS_PER_LOOK: u64 = 10;
/// How long a member of an asleep group lets its leader's node stay silent before it wakes
/// (a node's pings leave up to ~300 ms of silence between answers).
const WAKE_AFTER: Duration = Duration::from_millis(500);
/// The most a node adds to [`WAKE_AFTER`] (drawn once per node).
const WAKE_SPREAD: Duration = Duration::from_millis(300);
/// How long a leader waits for its members to agree to sleep.
const ASK_TIMEOUT: Duration = Duration::from_millis(500);
/// A member whose node has answered nothing for this long (or refused connections for
/// it) is away: its group may sleep without it.
const AWAY_AFTER: Duration = Duration::from_secs(2);

const AWAKE: u8 = 0;
/// The leader is asking its members to sleep.
const GOING: u8 = 1;
const ASLEEP: u8 = 2;

/// Whether a group's timers run.
#[derive(Default)]
pub(super) struct Quiet {
    state: AtomicU8,
    /// Serialises changes of `state` with the timer switch that goes with them (reading
    /// `state` needs no lock).
    switching: Mutex<()>,
    /// The last log index (+1; 0: none) of the last look, or of when the group went to sleep.
    index: AtomicU64,
    /// At a leader that went to sleep without some members (their nodes were away): those
    /// nodes. It wakes when one of them answers again.
    left_out: Mutex<Vec<u64>>,
}

impl ShardGroup {
    /// Starts the group's timers again if they were stopped; returns whether they were.
    pub(super) fn wake(&self) -> bool {
        if self.quiet.state.load(Ordering::Acquire) == AWAKE {
            return false;
        }
        let _switching = self.quiet.switching.lock();
        let was = self.quiet.state.swap(AWAKE, Ordering::AcqRel);
        if was == ASLEEP {
            self.raft.runtime_config().tick(true);
        }
        // Awake for a whole look at least (what woke it may not have moved the log yet: a
        // write waits for the leader's lease first).
        self.quiet.index.store(0, Ordering::Release);
        self.quiet.left_out.lock().clear();
        was != AWAKE
    }

    /// Stops the group's timers (a lone group, or a member its leader asked).
    pub(super) fn sleep(&self) {
        let index = self.raft.metrics().borrow_watched().last_log_index;
        self.quiet
            .index
            .store(index.map_or(0, |i| i + 1), Ordering::Release);
        let _switching = self.quiet.switching.lock();
        self.quiet.state.store(ASLEEP, Ordering::Release);
        self.raft.runtime_config().tick(false);
    }

    pub(super) fn is_asleep(&self) -> bool {
        self.quiet.state.load(Ordering::Acquire) == ASLEEP
    }

    /// A leader starts asking its members to sleep (false if the group is not awake).
    fn begin_sleep(&self) -> bool {
        let _switching = self.quiet.switching.lock();
        self.quiet
            .state
            .compare_exchange(AWAKE, GOING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The leader's members answered: it sleeps if all agreed and nothing woke it meanwhile,
    /// remembering the members it did not ask (`left_out`).
    fn end_sleep(&self, agreed: bool, left_out: Vec<u64>) {
        let _switching = self.quiet.switching.lock();
        if self.quiet.state.load(Ordering::Acquire) != GOING {
            return;
        }
        if agreed {
            *self.quiet.left_out.lock() = left_out;
            self.quiet.state.store(ASLEEP, Ordering::Release);
            self.raft.runtime_config().tick(false);
        } else {
            self.quiet.state.store(AWAKE, Ordering::Release);
        }
    }
}

/// The node's side of quiescing: when its asleep groups wake for want of their leader.
pub(super) struct Watch {
    wake_after: Duration,
}

impl Default for Watch {
    fn default() -> Self {
        let spread = rand::thread_rng().gen_range(0..=WAKE_SPREAD.as_millis() as u64);
        Watch {
            wake_after: WAKE_AFTER + Duration::from_millis(spread),
        }
    }
}

impl Groups {
    /// One round of quiescing (call it every [`ROUND`], counting `round`): pings the
    /// other nodes, wakes asleep groups whose leader's node went silent or whose log moved,
    /// and every [`ROUNDS_PER_LOOK`] rounds asks the members of idle groups it leads to sleep.
    pub async fn quiet_round(&self, round: u64) {
        for (id, info) in self.map.read().nodes.iter() {
            if *id == self.node_id {
                continue;
            }
            // A peer that answered something lately (a heartbeat, a forwarded command)
            // needs no ping to show it is up; one a second times the round trip.
            let quiet = !self.peers().answered_within(*id, PING_AFTER);
            if quiet || self.peers().ping_due(*id, ROUND_TRIP_EVERY) {
                self.peers().ping(*id, &info.cluster_addr, ROUND * 10);
            }
        }
        let groups: Vec<ShardGroup> = self.shards.iter().map(|s| s.read().clone()).collect();
        for group in groups.iter().filter(|g| g.is_asleep()) {
            if self.should_wake(group) {
                tracing::debug!(group = group.id, "waking a quiesced group");
                group.wake();
            }
        }
        if round.is_multiple_of(ROUNDS_PER_LOOK) {
            // Group 0 sleeps only alone (with others it carries the node liveness the
            // balancer reads).
            let lone_meta = self.map_group.raft.voter_ids().eq([self.node_id])
                && self.map_group.raft.learner_ids().next().is_none();
            let looks = groups
                .iter()
                .chain(lone_meta.then_some(&self.map_group))
                .map(|g| self.try_sleep(g));
            join_all(looks).await;
        }
    }

    /// Whether an asleep group must wake: it holds entries not committed yet, its leader's
    /// node is silent, it has no leader, or (at the leader) its log moved since it went to
    /// sleep.
    fn should_wake(&self, group: &ShardGroup) -> bool {
        let m = group.raft.metrics();
        let m = m.borrow_watched();
        if m.membership_config.membership().nodes().count() == 0 {
            // No replica here: a leader it may remember is not one to watch.
            return false;
        }
        if m.last_log_index != m.local_committed.map(|id| id.index) {
            // Entries not committed yet: the group is moving (or stuck, and its timers
            // must run for an election to settle it).
            return true;
        }
        match m.current_leader {
            Some(leader) if leader == self.node_id => {
                let index = m.last_log_index.map_or(0, |i| i + 1);
                m.state != ServerState::Leader
                    || index != group.quiet.index.load(Ordering::Acquire)
                    || group
                        .quiet
                        .left_out
                        .lock()
                        .iter()
                        .any(|n| !self.node_away(*n))
            }
            // A refused connection means the leader's process is gone: members wake one
            // after the other (a spread drawn per node), so the first usually wins the
            // election without a split vote.
            Some(leader) => {
                self.peers()
                    .silence(leader)
                    .is_none_or(|s| s > self.watch.wake_after)
                    || self
                        .peers()
                        .refused_for(leader)
                        .is_some_and(|r| r >= self.watch.wake_after - WAKE_AFTER)
            }
            None => true,
        }
    }

    /// Whether `node` is away: its address refused connections, or it answered nothing, for
    /// [`AWAY_AFTER`].
    fn node_away(&self, node: u64) -> bool {
        let peers = self.peers();
        peers.refused_for(node).is_some_and(|r| r >= AWAY_AFTER)
            || !peers.answered_within(node, AWAY_AFTER)
    }

    /// At the leader of an awake group whose log has not moved since the last look and that
    /// every member not away holds and has committed: asks each of them to sleep, and
    /// sleeps if all agree and, with the leader, make a majority of the voters. A group with
    /// no members here sleeps at once.
    async fn try_sleep(&self, group: &ShardGroup) {
        if group.quiet.state.load(Ordering::Acquire) != AWAKE {
            return;
        }
        let unheld = {
            let m = group.raft.metrics();
            let m = m.borrow_watched();
            m.state != ServerState::Leader && m.membership_config.membership().nodes().count() == 0
        };
        if unheld {
            // No replica here (a joining node, or one whose replica moved away): nothing to
            // time until a leader sends something, which wakes it.
            group.sleep();
            return;
        }
        if self.transferring(group.id) {
            return;
        }
        let (last, term, members, left_out) = {
            let m = group.raft.metrics();
            let m = m.borrow_watched();
            if m.state != ServerState::Leader {
                return;
            }
            let Some(last) = m.last_log_index else { return };
            let seen = group.quiet.index.swap(last + 1, Ordering::AcqRel);
            let at_last = |id: &Option<super::types::LogId>| id.is_some_and(|id| id.index == last);
            let caught_up = m
                .replication
                .as_ref()
                .is_none_or(|r| r.iter().all(|(id, at)| at_last(at) || self.node_away(*id)));
            let idle = seen == last + 1 && at_last(&m.local_committed) && at_last(&m.last_applied);
            if !idle || !caught_up {
                return;
            }
            let membership = m.membership_config.membership();
            let mut members: Vec<(u64, String)> = Vec::new();
            let mut left_out: Vec<u64> = Vec::new();
            for (id, info) in membership.nodes().filter(|(id, _)| **id != self.node_id) {
                if self.node_away(*id) {
                    left_out.push(*id);
                } else {
                    members.push((*id, info.cluster_addr.clone()));
                }
            }
            let voters = membership.voter_ids().count();
            let away_voters = membership
                .voter_ids()
                .filter(|v| left_out.contains(v))
                .count();
            if (voters - away_voters) * 2 <= voters {
                return;
            }
            (last, m.current_term, members, left_out)
        };
        if !group.begin_sleep() {
            return;
        }
        let group_id = group.id;
        let asks = members.iter().map(|(id, addr)| {
            let body = request::Body::Quiesce(Quiesce {
                group: group_id,
                leader: self.node_id,
                term,
                index: last,
            });
            self.peers().call(*id, addr, body, ASK_TIMEOUT)
        });
        let agreed = join_all(asks)
            .await
            .into_iter()
            .all(|r| matches!(r, Ok(response::Body::Done(true))));
        let unmoved = {
            let m = group.raft.metrics();
            let m = m.borrow_watched();
            m.state == ServerState::Leader && m.last_log_index == Some(last)
        };
        if agreed && unmoved {
            tracing::debug!(group = group_id, index = last, ?left_out, "group quiesced");
        }
        group.end_sleep(agreed && unmoved, left_out);
    }

    /// A leader asks this node to stop `group`'s timers: it does if it follows that leader
    /// in that term and holds and has committed the same log.
    pub fn handle_quiesce(&self, q: &Quiesce) -> Result<bool, String> {
        let group = self.group(q.group)?;
        if q.group == 0 {
            return Ok(false);
        }
        let agrees = {
            let m = group.raft.metrics();
            let m = m.borrow_watched();
            matches!(m.state, ServerState::Follower | ServerState::Learner)
                && m.current_leader == Some(q.leader)
                && m.current_term == q.term
                && m.last_log_index == Some(q.index)
                && m.local_committed.is_some_and(|id| id.index == q.index)
        };
        if agrees {
            group.sleep();
        }
        Ok(agrees)
    }

    /// How many shard groups are asleep on this node.
    pub fn groups_asleep(&self) -> usize {
        self.shards.iter().filter(|s| s.read().is_asleep()).count()
    }
}
