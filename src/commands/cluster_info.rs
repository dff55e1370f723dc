//! CLUSTER INFO, MYID and HELP: the cluster as this node sees it (the shard map, the
//! nodes and the config epoch from group 0, shard leadership from the groups it holds).
//! Slot routing (CLUSTER SLOTS, MOVED) is not offered yet: clients talk to any node.

use bytes::Bytes;

use super::object::help_reply;
use super::{reply, CmdResult, Ctx};
use crate::cluster::{ShardId, SLOT_COUNT};
use crate::protocol::Reply;

/// CLUSTER INFO: every slot belongs to a shard; a shard this node holds a replica of with
/// no leader counts as failed, one it does not hold is as healthy as its replicas report
/// (this node has no view of it).
pub fn cluster_info(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let node = ctx.node;
    let groups = node.groups();
    let mut slots_fail = 0u32;
    for shard in 0..node.shards.shard_count() {
        let shard = ShardId(shard);
        let held = !groups.voters_of(shard).is_empty();
        if held && !groups.is_leader(shard) && groups.leader_of(shard).is_none() {
            let (first, last) = node.shards.slot_range(shard);
            slots_fail += u32::from(last.0) - u32::from(first.0) + 1;
        }
    }
    let meta = node.meta.read();
    let slots = u32::from(SLOT_COUNT);
    let state = if slots_fail == 0 { "ok" } else { "fail" };
    let lines = [
        format!("cluster_state:{state}"),
        format!("cluster_slots_assigned:{slots}"),
        format!("cluster_slots_ok:{}", slots - slots_fail),
        "cluster_slots_pfail:0".to_string(),
        format!("cluster_slots_fail:{slots_fail}"),
        format!("cluster_known_nodes:{}", meta.nodes.len().max(1)),
        format!("cluster_size:{}", node.shards.shard_count()),
        format!("cluster_current_epoch:{}", meta.epoch),
        format!("cluster_my_epoch:{}", meta.epoch),
    ];
    let mut text = lines.join("\r\n");
    text.push_str("\r\n");
    reply(Reply::Verbatim("txt", Bytes::from(text)))
}

/// CLUSTER MYID: this node's id (kept in its data dir).
pub fn cluster_myid(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(Reply::bulk(format!("{:016x}", ctx.node.groups().node_id())))
}

pub fn cluster_help(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(help_reply(
        "CLUSTER",
        &[
            "INFO",
            "    Return information about the cluster.",
            "MYID",
            "    Return the node id.",
        ],
    ))
}
