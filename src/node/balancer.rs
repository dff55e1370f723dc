//! The replica balancer, run by group 0's leader: keeps every shard at the replication
//! factor on distinct live nodes, replaces the replicas of a node silent for longer than
//! `cluster-node-timeout`, and moves replicas to a node that holds fewer than its share.
//!
//! One move at a time, each in three steps so that the cluster map never unlists a node
//! that still holds a replica: the map lists the new replica, the shard's leader adds it
//! (learner, catch up, voter) and removes the old one, then the map unlists the old one.
//! Every node, on each round, drops the replicas the map no longer gives it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Node;
use crate::cluster::ShardId;
use crate::cluster::{ClusterMap, MapChange};
use crate::raft::group_of;

/// How often the balancer looks.
pub const BALANCE_PERIOD: Duration = Duration::from_secs(1);
/// Moves made one after another in one round at most.
const MOVES_PER_ROUND: usize = 32;
/// How long one move may take (a learner catching up from a snapshot included): past it
/// the balancer goes on with other moves and the next round looks at this shard again.
const MOVE_TIMEOUT: Duration = Duration::from_secs(120);

/// One replica change of one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub shard: u16,
    pub add: Option<u64>,
    pub remove: Option<u64>,
}

/// The next move, if any: replace a replica on a node that is not live; set right a shard
/// listed with more replicas than the factor (an interrupted move: neither `add` nor
/// `remove`); add one where a shard has too few; move one from the node holding the most
/// to the live node holding the fewest.
pub fn plan(meta: &ClusterMap, live: &BTreeSet<u64>, replicas: usize) -> Option<Move> {
    let load = meta.load();
    let least_loaded = |exclude: &BTreeSet<u64>| {
        live.iter()
            .filter(|n| !exclude.contains(n) && meta.nodes.contains_key(n))
            .min_by_key(|n| (load.get(n).copied().unwrap_or(0), **n))
            .copied()
    };
    let target = replicas.min(meta.nodes.len()).max(1);
    for (shard, set) in meta.replicas.iter().enumerate() {
        let shard = shard as u16;
        if let Some(&dead) = set.iter().find(|n| !live.contains(n)) {
            if let Some(to) = least_loaded(set) {
                return Some(Move {
                    shard,
                    add: Some(to),
                    remove: Some(dead),
                });
            }
        }
        if set.len() > target {
            // An interrupted move: `carry_out` asks the shard's leader for its voters.
            return Some(Move {
                shard,
                add: None,
                remove: None,
            });
        }
        if set.len() < target {
            if let Some(to) = least_loaded(set) {
                return Some(Move {
                    shard,
                    add: Some(to),
                    remove: None,
                });
            }
        }
    }
    let live_load = |n: &u64| load.get(n).copied().unwrap_or(0);
    let most = live.iter().max_by_key(|n| (live_load(n), **n))?;
    let fewest = live.iter().min_by_key(|n| (live_load(n), **n))?;
    if live_load(most) <= live_load(fewest) + 1 {
        return None;
    }
    let shard = meta
        .replicas
        .iter()
        .position(|set| set.contains(most) && !set.contains(fewest))?;
    Some(Move {
        shard: shard as u16,
        add: Some(*fewest),
        remove: Some(*most),
    })
}

/// What the balancer remembers between rounds.
#[derive(Default)]
pub struct Balancer {
    /// Since when this node leads group 0 (a node not heard from since counts as live
    /// until the node timeout has passed).
    leading_since: Option<Instant>,
}

impl Balancer {
    /// One round: drop replicas this node no longer holds; on group 0's leader, make the
    /// next move.
    pub async fn round(&mut self, node: &Arc<Node>) {
        let groups = node.groups();
        groups.drop_removed().await;
        let Some(silences) = groups.silences() else {
            self.leading_since = None;
            return;
        };
        let since = *self.leading_since.get_or_insert_with(Instant::now);
        let timeout = Duration::from_millis(
            node.shared
                .config
                .get("cluster-node-timeout")
                .parse()
                .unwrap_or(15_000),
        );
        let mut live = BTreeSet::from([groups.node_id()]);
        for (id, silence) in silences {
            if silence.unwrap_or_else(|| since.elapsed()) < timeout {
                live.insert(id);
            }
        }
        if let Err(e) = groups.balance_meta_voters(&live).await {
            tracing::warn!(error = %e, "changing the metadata group's voters failed");
        }
        mark_node_states(node, &live).await;
        let replicas: usize = node.shared.config.get("replicas").parse().unwrap_or(3);
        // Moves follow each other at once while they succeed (a new cluster's shards each
        // need two), a bounded number per round.
        for _ in 0..MOVES_PER_ROUND {
            let meta = node.map.read().clone();
            let Some(next) = plan(&meta, &live, replicas) else {
                return;
            };
            tracing::info!(?next, "moving a replica");
            // A move waits for the new voter's acknowledgement; one that never comes must
            // not hold up every other shard's moves (the next round looks again).
            let moved = tokio::time::timeout(
                MOVE_TIMEOUT,
                carry_out(node, &meta, &next, (&live, replicas)),
            );
            let error = match moved.await {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e,
                Err(_) => format!("no answer within {MOVE_TIMEOUT:?}"),
            };
            tracing::warn!(?next, %error, "a replica move failed");
            return;
        }
    }
}

/// Records in the map which nodes are down (silent past the node timeout) and which are
/// up again.
async fn mark_node_states(node: &Node, live: &BTreeSet<u64>) {
    let changes: Vec<MapChange> = {
        let meta = node.map.read();
        meta.nodes
            .keys()
            .filter(|id| live.contains(id) == meta.down.contains(id))
            .map(|id| MapChange::SetNodeState {
                node: *id,
                up: live.contains(id),
            })
            .collect()
    };
    for op in changes {
        tracing::info!(?op, "node state");
        if let Err(e) = node.change_meta(op).await {
            tracing::warn!(error = %e, "recording a node's state failed");
            return;
        }
    }
}

/// Lists the new replica, has the shard's leader add it and remove the old one, then lists
/// the voters the leader reports. A move with neither (an interrupted one) only asks the
/// leader for the voters, removing one beyond the factor (a silent one first, else the most
/// loaded), and lists what remains.
async fn carry_out(
    node: &Node,
    meta: &ClusterMap,
    next: &Move,
    (live, replicas): (&BTreeSet<u64>, usize),
) -> Result<(), String> {
    let group = group_of(ShardId(next.shard));
    let add = match next.add {
        Some(id) => {
            let info = meta.nodes.get(&id).cloned().ok_or("unknown node")?;
            let mut listed = meta
                .replicas
                .get(usize::from(next.shard))
                .cloned()
                .unwrap_or_default();
            listed.insert(id);
            node.change_meta(MapChange::SetReplicas {
                shard: next.shard,
                nodes: listed,
            })
            .await?;
            Some((id, info))
        }
        None => None,
    };
    let mut voters = node.change_replicas(group, add, next.remove).await?;
    let target = replicas.min(meta.nodes.len()).max(1);
    if next.add.is_none() && next.remove.is_none() && voters.len() > target {
        let load = meta.load();
        let extra = voters
            .iter()
            .copied()
            .max_by_key(|n| (!live.contains(n), load.get(n).copied().unwrap_or(0)));
        voters = node.change_replicas(group, None, extra).await?;
    }
    node.change_meta(MapChange::SetReplicas {
        shard: next.shard,
        nodes: voters,
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::NodeInfo;

    fn meta(nodes: &[u64], replicas: &[&[u64]]) -> ClusterMap {
        ClusterMap {
            epoch: 1,
            nodes: nodes.iter().map(|n| (*n, NodeInfo::default())).collect(),
            replicas: replicas
                .iter()
                .map(|set| set.iter().copied().collect())
                .collect(),
            down: BTreeSet::new(),
            ..Default::default()
        }
    }

    fn live(nodes: &[u64]) -> BTreeSet<u64> {
        nodes.iter().copied().collect()
    }

    /// Applies moves until the plan is done; returns the final map and the move count.
    fn settle(mut m: ClusterMap, alive: &BTreeSet<u64>) -> (ClusterMap, usize) {
        let mut moves = 0;
        while let Some(mv) = plan(&m, alive, 3) {
            let set = &mut m.replicas[usize::from(mv.shard)];
            set.extend(mv.add);
            if let Some(r) = mv.remove {
                set.remove(&r);
            }
            if mv.add.is_none() && mv.remove.is_none() {
                // As the shard's leader would report after trimming one.
                let extra = *set.iter().next_back().expect("over-listed");
                set.remove(&extra);
            }
            moves += 1;
            assert!(moves < 100, "the plan does not converge");
        }
        (m, moves)
    }

    #[test]
    fn new_nodes_get_replicas_up_to_the_factor() {
        let m = meta(&[1, 2, 3], &[&[1], &[1], &[1], &[1]]);
        let (m, _) = settle(m, &live(&[1, 2, 3]));
        assert!(m.replicas.iter().all(|s| s.len() == 3));
    }

    #[test]
    fn a_fourth_node_takes_its_share() {
        let m = meta(&[1, 2, 3, 4], &[&[1u64, 2, 3][..]; 8]);
        let (m, moves) = settle(m, &live(&[1, 2, 3, 4]));
        assert_eq!(moves, 6);
        let load = m.load();
        assert!(load.values().all(|l| *l == 6), "{load:?}");
        assert!(m.replicas.iter().all(|s| s.len() == 3));
    }

    #[test]
    fn a_silent_node_is_replaced_only_when_another_can_take_its_replicas() {
        let m = meta(&[1, 2, 3], &[&[1u64, 2, 3][..]; 4]);
        assert_eq!(plan(&m, &live(&[1, 2]), 3), None, "no node to move to");
        let m = meta(
            &[1, 2, 3, 4],
            &[&[1, 2, 3], &[1, 2, 4], &[2, 3, 4], &[1, 3, 4]],
        );
        let (m, _) = settle(m, &live(&[1, 2, 4]));
        assert!(m.replicas.iter().all(|s| s.len() == 3 && !s.contains(&3)));
    }

    #[test]
    fn an_interrupted_move_is_finished() {
        let m = meta(&[1, 2, 3, 4], &[&[1, 2, 3, 4], &[1, 2, 3]]);
        let next = plan(&m, &live(&[1, 2, 3, 4]), 3).unwrap();
        assert_eq!((next.shard, next.add, next.remove), (0, None, None));
    }
}
