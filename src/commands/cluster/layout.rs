//! CLUSTER SLOTS, SHARDS, NODES and REPLICAS: one [`Topology`] rendered in each of Redis
//! 7.0's formats, so the four agree. Asking for any of the first three marks the connection
//! as a cluster client (it then gets MOVED redirects; see `Session::cluster_client`).

use bytes::Bytes;

use super::super::error::CmdError;
use super::super::{reply, CmdResult, Ctx};
use crate::clock;
use crate::cluster::{node_name, NodeEntry, ShardLayout, Topology};
use crate::protocol::Reply;

/// CLUSTER SLOTS: per merged slot range, its master then its replicas, each as
/// `[host, port, id, metadata]`.
pub fn cluster_slots(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.session.cluster_client = true;
    let topology = ctx.cluster.topology();
    let ranges = topology
        .slot_ranges()
        .iter()
        .map(|range| {
            let mut entry = vec![
                Reply::Integer(i64::from(range.first.0)),
                Reply::Integer(i64::from(range.last.0)),
            ];
            let members = range.master.iter().chain(&range.replicas);
            entry.extend(members.filter_map(|id| topology.node(*id)).map(|node| {
                Reply::Array(vec![
                    Reply::bulk(node.host.clone()),
                    Reply::Integer(i64::from(node.port)),
                    Reply::bulk(node_name(node.id)),
                    Reply::Map(Vec::new()),
                ])
            }));
            Reply::Array(entry)
        })
        .collect();
    reply(Reply::Array(ranges))
}

/// CLUSTER SHARDS: per shard, its slots and its nodes with their role and health.
pub fn cluster_shards(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.session.cluster_client = true;
    let topology = ctx.cluster.topology();
    let shards = topology
        .shards
        .iter()
        .map(|shard| {
            let slots = Reply::Array(vec![
                Reply::Integer(i64::from(shard.first.0)),
                Reply::Integer(i64::from(shard.last.0)),
            ]);
            let members = shard.master.iter().chain(&shard.replicas);
            let nodes = members
                .filter_map(|id| topology.node(*id))
                .map(|node| shard_node(node, shard))
                .collect();
            Reply::Map(vec![
                (Reply::bulk("slots"), slots),
                (Reply::bulk("nodes"), Reply::Array(nodes)),
            ])
        })
        .collect();
    reply(Reply::Array(shards))
}

fn shard_node(node: &NodeEntry, shard: &ShardLayout) -> Reply {
    let role = if shard.master == Some(node.id) {
        "master"
    } else {
        "replica"
    };
    let offset = shard
        .offsets
        .iter()
        .find(|(id, _)| *id == node.id)
        .map_or(0, |(_, index)| *index);
    let field = |name: &'static str, value: Reply| (Reply::bulk(name), value);
    Reply::Map(vec![
        field("id", Reply::bulk(node_name(node.id))),
        field("port", Reply::Integer(i64::from(node.port))),
        field("ip", Reply::bulk(node.host.clone())),
        field("endpoint", Reply::bulk(node.host.clone())),
        field("role", Reply::bulk(role)),
        field("replication-offset", Reply::Integer(offset as i64)),
        field(
            "health",
            Reply::bulk(if node.up { "online" } else { "failed" }),
        ),
    ])
}

/// CLUSTER NODES: one line per node, in Redis's `nodes.conf` format.
pub fn cluster_nodes(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.session.cluster_client = true;
    let topology = ctx.cluster.topology();
    let text: String = topology
        .nodes
        .iter()
        .map(|node| node_line(&topology, node))
        .collect();
    reply(Reply::Verbatim("txt", Bytes::from(text)))
}

/// CLUSTER REPLICAS (SLAVES) node-id: the lines of CLUSTER NODES for the nodes that
/// replicate what `node-id` masters.
pub fn cluster_replicas(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let topology = ctx.cluster.topology();
    let Some(master) = topology.node_named(&args[2]) else {
        return Err(CmdError::msg(format!(
            "ERR Unknown node {}",
            String::from_utf8_lossy(&args[2])
        )));
    };
    if topology.mastered_by(master.id).is_empty() {
        return Err(CmdError::Static("ERR The specified node is not a master"));
    }
    let lines = topology
        .replicas_of(master.id)
        .into_iter()
        .filter_map(|id| topology.node(id))
        .map(|node| Reply::bulk(node_line(&topology, node).trim_end().to_string()))
        .collect();
    reply(Reply::Array(lines))
}

/// `<id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <config-epoch>
/// <link-state> <slot> …` and a newline. A node mastering any slot is a master; one that
/// only replicates is a replica of its first shard's master.
fn node_line(topology: &Topology, node: &NodeEntry) -> String {
    let myself = node.id == topology.myself;
    let ranges = topology.mastered_by(node.id);
    let master_of = if ranges.is_empty() {
        topology.master_of_replica(node.id)
    } else {
        None
    };
    let mut flags = Vec::new();
    if myself {
        flags.push("myself");
    }
    flags.push(if master_of.is_some() {
        "slave"
    } else {
        "master"
    });
    if !node.up {
        flags.push("fail");
    }
    let pong = if myself {
        clock::now_ms()
    } else {
        node.pong_ms
    };
    let link = if node.up { "connected" } else { "disconnected" };
    let mut line = format!(
        "{} {}:{}@{} {} {} 0 {} {} {}",
        node_name(node.id),
        node.host,
        node.port,
        node.cluster_port,
        flags.join(","),
        master_of.map_or("-".to_string(), node_name),
        pong,
        topology.epoch,
        link,
    );
    for (first, last) in ranges {
        if first == last {
            line.push_str(&format!(" {}", first.0));
        } else {
            line.push_str(&format!(" {}-{}", first.0, last.0));
        }
    }
    line.push('\n');
    line
}
