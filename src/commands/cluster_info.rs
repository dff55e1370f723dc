//! CLUSTER INFO, MYID and HELP: the cluster as this node sees it (the shard map, the
//! nodes and the config epoch from group 0, shard leadership from the groups it holds).
//! Slot routing (CLUSTER SLOTS, MOVED) is not offered yet: clients talk to any node.

use bytes::Bytes;

use super::object::help_reply;
use super::{reply, CmdResult, Ctx};
use crate::cluster::SLOT_COUNT;
use crate::protocol::Reply;

/// CLUSTER INFO: every slot belongs to a shard; a shard this node holds a replica of with
/// no leader counts as failed, one it does not hold is as healthy as its replicas report
/// (this node has no view of it).
pub fn cluster_info(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let cluster = ctx.cluster.cluster_state();
    let slots = u32::from(SLOT_COUNT);
    let failed = cluster.slots_failed;
    let state = if failed == 0 { "ok" } else { "fail" };
    let lines = [
        format!("cluster_state:{state}"),
        format!("cluster_slots_assigned:{slots}"),
        format!("cluster_slots_ok:{}", slots - failed),
        "cluster_slots_pfail:0".to_string(),
        format!("cluster_slots_fail:{failed}"),
        format!("cluster_known_nodes:{}", cluster.known_nodes.max(1)),
        format!("cluster_size:{}", cluster.shard_count),
        format!("cluster_current_epoch:{}", cluster.epoch),
        format!("cluster_my_epoch:{}", cluster.epoch),
    ];
    let mut text = lines.join("\r\n");
    text.push_str("\r\n");
    reply(Reply::Verbatim("txt", Bytes::from(text)))
}

/// CLUSTER MYID: this node's id (kept in its data dir).
pub fn cluster_myid(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(Reply::bulk(format!("{:016x}", ctx.cluster.node_id())))
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
