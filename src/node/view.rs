//! What command handlers may learn of the cluster: the node as a [`ClusterView`] —
//! its id, the replication groups' INFO, the cluster's health and its Redis Cluster
//! layout (which node masters which slots).

use super::Node;
use crate::clock;
use crate::cluster::topology::split_addr;
use crate::cluster::{NodeEntry, ShardId, ShardLayout, Topology};
use crate::commands::{ClusterLink, ClusterState, ClusterView, HeldShard};
use crate::raft::FailoverMode;
use crate::storage::SyncPolicy;

impl ClusterView for Node {
    fn node_id(&self) -> u64 {
        self.groups().node_id()
    }

    fn alone(&self) -> bool {
        self.groups().alone()
    }

    fn shard_map(&self) -> crate::cluster::ShardMap {
        self.shards
    }

    fn shards_held(&self) -> Vec<HeldShard> {
        let groups = self.groups();
        (0..self.shards.shard_count())
            .map(ShardId)
            .filter(|s| groups.is_voter(*s))
            .map(|shard| {
                let (first, last) = self.shards.slot_range(shard);
                HeldShard {
                    shard: shard.0,
                    group: crate::raft::group_of(shard),
                    first_slot: first.0,
                    last_slot: last.0,
                }
            })
            .collect()
    }

    fn replication_info(&self) -> Vec<(String, String)> {
        self.groups().info()
    }

    /// A shard this node holds a replica of with no leader counts as failed; one it does
    /// not hold is as healthy as its replicas report (this node has no view of it).
    fn cluster_state(&self) -> ClusterState {
        let groups = self.groups();
        let mut slots_failed = 0u32;
        for shard in 0..self.shards.shard_count() {
            let shard = ShardId(shard);
            let held = !groups.voters_of(shard).is_empty();
            if held && !groups.is_leader(shard) && groups.leader_of(shard).is_none() {
                let (first, last) = self.shards.slot_range(shard);
                slots_failed += u32::from(last.0) - u32::from(first.0) + 1;
            }
        }
        let map = self.map.read();
        let traffic = groups.peers().traffic();
        ClusterState {
            slots_failed,
            known_nodes: map.nodes.len(),
            shard_count: self.shards.shard_count(),
            epoch: map.epoch,
            messages_sent: traffic.sent(),
            messages_received: traffic.received(),
            queue_full: traffic.queue_full(),
        }
    }

    fn set_sync_policy(&self, policy: SyncPolicy) {
        self.groups().set_sync_policy(policy);
    }

    fn links(&self) -> Vec<ClusterLink> {
        let peers = self.groups().peers();
        peers
            .links()
            .into_iter()
            .map(|l| ClusterLink {
                direction: if l.outbound { "to" } else { "from" },
                node: l.node,
                created_unix_ms: l.created_unix_ms,
                queued: l.queued,
                capacity: l.capacity,
            })
            .collect()
    }

    fn fail_over(&self, force: bool) -> usize {
        let mode = if force {
            FailoverMode::Election
        } else {
            FailoverMode::Graceful
        };
        self.groups().fail_over(mode)
    }

    fn publish_to_peers(&self, sharded: bool, channel: bytes::Bytes, payload: bytes::Bytes) {
        if self.map.read().nodes.len() > 1 {
            let message = cluster_proto::messages::Published {
                sharded,
                channel,
                payload,
            };
            if !self.fanout.push(message) {
                self.shared.stats.pubsub_fanout_dropped.incr();
            }
        }
    }

    fn topology(&self) -> Topology {
        let groups = self.groups();
        let myself = groups.node_id();
        let now_ms = clock::now_ms();
        let meta = self.map.read();
        let mut nodes: Vec<NodeEntry> = meta
            .nodes
            .iter()
            .map(|(&id, info)| {
                let (host, port) = split_addr(&info.client_addr);
                let (_, cluster_port) = split_addr(&info.cluster_addr);
                let pong_ms = groups
                    .peers()
                    .silence(id)
                    .map_or(0, |s| now_ms.saturating_sub(s.as_millis() as u64));
                NodeEntry {
                    id,
                    host,
                    port,
                    cluster_port,
                    up: !meta.down.contains(&id),
                    pong_ms,
                }
            })
            .collect();
        if nodes.is_empty() {
            // Before the cluster map has its first entry (a node starting up).
            let (host, port) = split_addr(&groups.me().client_addr);
            let (_, cluster_port) = split_addr(&groups.me().cluster_addr);
            nodes.push(NodeEntry {
                id: myself,
                host,
                port,
                cluster_port,
                up: true,
                pong_ms: now_ms,
            });
        }
        let shards = (0..self.shards.shard_count())
            .map(|s| {
                let shard = ShardId(s);
                let (first, last) = self.shards.slot_range(shard);
                let mut listed: Vec<u64> = meta
                    .replicas
                    .get(usize::from(s))
                    .map(|r| r.iter().copied().collect())
                    .unwrap_or_default();
                if listed.is_empty() {
                    listed.push(myself);
                }
                // The leader, where this node knows it; else a listed replica, which
                // knows it (a client sent there is redirected once more).
                let master = if groups.is_leader(shard) {
                    myself
                } else {
                    groups.leader_of(shard).map_or(listed[0], |(id, _)| id)
                };
                listed.retain(|id| *id != master);
                ShardLayout {
                    first,
                    last,
                    master: Some(master),
                    replicas: listed,
                    offsets: groups.replication_offsets(shard),
                }
            })
            .collect();
        Topology {
            myself,
            epoch: meta.epoch,
            nodes,
            shards,
        }
    }
}
