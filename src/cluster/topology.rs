//! The cluster as Redis Cluster clients see it: which node masters which slots, which
//! nodes replicate them, and where clients reach each node.
//!
//! In Basalt the leader of the shard that owns a slot is that slot's master and the
//! shard's other replicas are its replicas; a node may master some shards and replicate
//! others. The node fills a [`Topology`] from its Raft groups and the cluster map; CLUSTER
//! SLOTS, SHARDS, NODES and REPLICAS render it, so they agree with one another.

use super::Slot;

/// One node, as clients reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    pub id: u64,
    /// Client address: host and port (`cluster-announce-ip`/`-port` when set).
    pub host: String,
    pub port: u16,
    /// Node-to-node port.
    pub cluster_port: u16,
    /// False once the cluster map marks it down (silent past `cluster-node-timeout`).
    pub up: bool,
    /// When it last answered this node (Unix ms; now for this node itself, 0 if never).
    pub pong_ms: u64,
}

/// One shard: its slots, the node leading it (if known) and its other replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLayout {
    pub first: Slot,
    pub last: Slot,
    pub master: Option<u64>,
    /// The shard's replicas other than its master, in id order.
    pub replicas: Vec<u64>,
    /// The log index each replica is known to have reached (node id, index): this node's
    /// own, and while it leads the shard, its followers'.
    pub offsets: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// This node's id.
    pub myself: u64,
    /// The cluster map's config epoch.
    pub epoch: u64,
    /// Every node the cluster map lists, in id order.
    pub nodes: Vec<NodeEntry>,
    /// Every shard, in slot order.
    pub shards: Vec<ShardLayout>,
}

/// A node's name in Redis Cluster replies: 40 hex digits, derived from its numeric id
/// (which the node keeps in its data dir), so it is stable and the same on every node.
pub fn node_name(id: u64) -> String {
    format!("{id:040x}")
}

/// Splits `host:port` (the host may be a bracketed IPv6 address); port 0 if missing.
pub fn split_addr(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port.parse().unwrap_or(0),
        ),
        None => (addr.to_string(), 0),
    }
}

impl Topology {
    pub fn node(&self, id: u64) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The node whose 40-hex name is `name`.
    pub fn node_named(&self, name: &[u8]) -> Option<&NodeEntry> {
        self.nodes
            .iter()
            .find(|n| node_name(n.id).as_bytes().eq_ignore_ascii_case(name))
    }

    /// Contiguous slot ranges with the same master and replicas, merged as Redis lists a
    /// master's consecutive slots as one range; shards without a known master are left out.
    pub fn slot_ranges(&self) -> Vec<ShardLayout> {
        merge(self.shards.iter().filter(|s| s.master.is_some()), |a, b| {
            a.master == b.master && a.replicas == b.replicas
        })
    }

    /// The slot ranges `id` masters, merged.
    pub fn mastered_by(&self, id: u64) -> Vec<(Slot, Slot)> {
        merge(
            self.shards.iter().filter(|s| s.master == Some(id)),
            |_, _| true,
        )
        .into_iter()
        .map(|s| (s.first, s.last))
        .collect()
    }

    /// The master `id` replicates when it masters nothing: the master of the first shard
    /// it is a replica of.
    pub fn master_of_replica(&self, id: u64) -> Option<u64> {
        self.shards
            .iter()
            .find(|s| s.replicas.contains(&id))
            .and_then(|s| s.master)
    }

    /// The nodes that replicate at least one shard `master` leads.
    pub fn replicas_of(&self, master: u64) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .shards
            .iter()
            .filter(|s| s.master == Some(master))
            .flat_map(|s| s.replicas.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// Joins consecutive shards whose slots touch and that `same` says belong together.
fn merge<'a>(
    shards: impl Iterator<Item = &'a ShardLayout>,
    same: impl Fn(&ShardLayout, &ShardLayout) -> bool,
) -> Vec<ShardLayout> {
    let mut ranges: Vec<ShardLayout> = Vec::new();
    for shard in shards {
        match ranges.last_mut() {
            Some(last)
                if same(last, shard) && u32::from(last.last.0) + 1 == u32::from(shard.first.0) =>
            {
                last.last = shard.last;
            }
            _ => ranges.push(shard.clone()),
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(first: u16, last: u16, master: Option<u64>, replicas: &[u64]) -> ShardLayout {
        ShardLayout {
            first: Slot(first),
            last: Slot(last),
            master,
            replicas: replicas.to_vec(),
            offsets: Vec::new(),
        }
    }

    fn topology() -> Topology {
        Topology {
            myself: 1,
            epoch: 4,
            nodes: Vec::new(),
            shards: vec![
                shard(0, 99, Some(1), &[2, 3]),
                shard(100, 199, Some(1), &[2, 3]),
                shard(200, 299, Some(2), &[1, 3]),
                shard(300, 399, None, &[1, 2, 3]),
                shard(400, 16383, Some(1), &[2, 3]),
            ],
        }
    }

    #[test]
    fn consecutive_shards_of_one_master_merge_and_masterless_ones_are_left_out() {
        let t = topology();
        let ranges: Vec<(u16, u16, Option<u64>)> = t
            .slot_ranges()
            .iter()
            .map(|r| (r.first.0, r.last.0, r.master))
            .collect();
        assert_eq!(
            ranges,
            vec![
                (0, 199, Some(1)),
                (200, 299, Some(2)),
                (400, 16383, Some(1))
            ]
        );
        assert_eq!(
            t.mastered_by(1),
            vec![(Slot(0), Slot(199)), (Slot(400), Slot(16383))]
        );
        assert_eq!(t.mastered_by(3), vec![]);
        assert_eq!(t.master_of_replica(3), Some(1));
        assert_eq!(t.replicas_of(1), vec![2, 3]);
    }

    #[test]
    fn names_and_addresses() {
        assert_eq!(node_name(0xab), format!("{}ab", "0".repeat(38)));
        assert_eq!(node_name(7).len(), 40);
        assert_eq!(split_addr("127.0.0.1:7000"), ("127.0.0.1".into(), 7000));
        assert_eq!(split_addr("[::1]:7000"), ("::1".into(), 7000));
        assert_eq!(split_addr("host"), ("host".into(), 0));
    }
}
