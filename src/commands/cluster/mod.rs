//! CLUSTER: the cluster as this node sees it, in Redis Cluster's formats — INFO, MYID,
//! KEYSLOT, COUNTKEYSINSLOT, GETKEYSINSLOT and HELP here; SLOTS, SHARDS, NODES and
//! REPLICAS in `layout.rs`; ROLE in `role.rs`. Asking for the layout marks the connection as a cluster client,
//! which the node then answers with MOVED redirects rather than forwarding (see the
//! `cluster-redirects` setting).

mod layout;
mod role;

use bytes::Bytes;

use super::args::eq;
use super::error::{syntax, CmdError};
use super::object::help_reply;
use super::{args, container, reply, ApplyFn, CmdResult, Ctx, Handler};
use crate::cluster::{key_slot, node_name, Slot, SLOT_COUNT};
use crate::protocol::Reply;

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("role", role::role, None),
    ("cluster", container, None),
    ("cluster|info", cluster_info, None),
    ("cluster|myid", cluster_myid, None),
    ("cluster|keyslot", cluster_keyslot, None),
    ("cluster|countkeysinslot", cluster_countkeysinslot, None),
    ("cluster|getkeysinslot", cluster_getkeysinslot, None),
    ("cluster|slots", layout::cluster_slots, None),
    ("cluster|shards", layout::cluster_shards, None),
    ("cluster|nodes", layout::cluster_nodes, None),
    ("cluster|replicas", layout::cluster_replicas, None),
    ("cluster|slaves", layout::cluster_replicas, None),
    (
        "cluster|count-failure-reports",
        cluster_count_failure_reports,
        None,
    ),
    ("cluster|links", cluster_links, None),
    ("cluster|failover", cluster_failover, None),
    ("cluster|help", cluster_help, None),
    // Redis Cluster's hand edits of the layout: Raft keeps Basalt's.
    ("cluster|addslots", managed_by_raft, None),
    ("cluster|addslotsrange", managed_by_raft, None),
    ("cluster|delslots", managed_by_raft, None),
    ("cluster|delslotsrange", managed_by_raft, None),
    ("cluster|flushslots", managed_by_raft, None),
    ("cluster|setslot", managed_by_raft, None),
    ("cluster|replicate", managed_by_raft, None),
    ("cluster|forget", managed_by_raft, None),
    ("cluster|reset", managed_by_raft, None),
    ("cluster|meet", managed_by_raft, None),
    ("cluster|bumpepoch", managed_by_raft, None),
    ("cluster|set-config-epoch", managed_by_raft, None),
    ("cluster|saveconfig", managed_by_raft, None),
];

/// The subcommands with which Redis Cluster's layout is edited by hand. In Basalt each
/// shard is a Raft group that owns a fixed range of slots; the balancer places its
/// replicas, Raft elects its leader, and nodes join with `--join`; so these only say so.
/// CLUSTER FAILOVER [FORCE|TAKEOVER]: this node takes over the leadership of the shards
/// it replicates — by default each leader hands over (nothing acknowledged is lost); FORCE
/// and TAKEOVER start elections here, which still need a majority. Answers at once, as
/// Redis does; the leaderships then stay here (the leader spreading leaves them).
fn cluster_failover(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let force = match args.get(2) {
        None => false,
        Some(a) if args.len() == 3 && (eq(a, "FORCE") || eq(a, "TAKEOVER")) => true,
        Some(_) => return Err(syntax()),
    };
    if ctx.cluster.fail_over(force) == 0 {
        return Err(CmdError::msg(
            "ERR You should send CLUSTER FAILOVER to a replica",
        ));
    }
    reply(Reply::OK)
}

/// CLUSTER LINKS: this node's connections with the others, both ways, in Redis's fields.
/// Basalt's cluster port queues whole requests, so the send buffer is counted in requests
/// (room for, waiting), not bytes.
fn cluster_links(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let field = |name: &'static str, value: Reply| (Reply::bulk(name), value);
    let links = ctx
        .cluster
        .links()
        .into_iter()
        .map(|l| {
            let events = if l.queued > 0 { "rw" } else { "r" };
            Reply::Map(vec![
                field("direction", Reply::bulk(l.direction)),
                field("node", Reply::bulk(node_name(l.node))),
                field("create-time", Reply::Integer(l.created_unix_ms as i64)),
                field("events", Reply::bulk(events)),
                field("send-buffer-allocated", Reply::Integer(l.capacity as i64)),
                field("send-buffer-used", Reply::Integer(l.queued as i64)),
            ])
        })
        .collect();
    reply(Reply::Array(links))
}

fn managed_by_raft(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = args::lower(&args[1]).to_uppercase();
    let how = match &sub[..] {
        "MEET" => "a node joins a cluster when started with --join <host:port> of any member",
        "FORGET" | "RESET" => {
            "a stopped node's replicas are moved by the balancer after cluster-node-timeout"
        }
        "REPLICATE" => "the balancer places every shard's replicas",
        "BUMPEPOCH" | "SET-CONFIG-EPOCH" | "SAVECONFIG" => {
            "the cluster map is replicated by Raft; its epoch counts its changes"
        }
        _ => "each shard owns a fixed range of slots and its Raft group elects the master",
    };
    Err(CmdError::msg(format!(
        "ERR CLUSTER {sub} is not used by Basalt: {how}"
    )))
}

/// CLUSTER COUNT-FAILURE-REPORTS node-id: Basalt keeps no failure reports (a node is
/// marked down in the cluster map by group 0's leader, not by votes of other nodes), so
/// a known node has none.
fn cluster_count_failure_reports(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.cluster.topology().node_named(&args[2]).is_none() {
        return Err(CmdError::msg(format!(
            "ERR Unknown node {}",
            String::from_utf8_lossy(&args[2])
        )));
    }
    reply(Reply::Integer(0))
}

/// CLUSTER INFO: every slot belongs to a shard; a shard this node holds a replica of with
/// no leader counts as failed, one it does not hold is as healthy as its replicas report
/// (this node has no view of it).
fn cluster_info(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
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
        format!("cluster_stats_messages_sent:{}", cluster.messages_sent),
        format!(
            "cluster_stats_messages_received:{}",
            cluster.messages_received
        ),
        format!(
            "total_cluster_links_buffer_limit_exceeded:{}",
            cluster.queue_full
        ),
    ];
    let mut text = lines.join("\r\n");
    text.push_str("\r\n");
    reply(Reply::Verbatim("txt", Bytes::from(text)))
}

/// CLUSTER MYID: this node's 40-hex name (from the id kept in its data dir).
pub fn cluster_myid(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(Reply::bulk(node_name(ctx.cluster.node_id())))
}

/// CLUSTER KEYSLOT key: the slot `key` hashes to (its hash tag's, if it has one).
fn cluster_keyslot(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    reply(Reply::Integer(i64::from(key_slot(&args[2]).0)))
}

fn slot_arg(arg: &[u8]) -> Result<Option<Slot>, CmdError> {
    let n = args::int(arg)?;
    Ok((0..i64::from(SLOT_COUNT))
        .contains(&n)
        .then_some(Slot(n as u16)))
}

/// CLUSTER COUNTKEYSINSLOT slot: keys this node stores in `slot` of the selected database.
fn cluster_countkeysinslot(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let slot = slot_arg(&args[2])?.ok_or(CmdError::Static("ERR Invalid slot"))?;
    let count = ctx.keyspace.count_in_slot(ctx.db(), slot)?;
    reply(Reply::Integer(count as i64))
}

/// CLUSTER GETKEYSINSLOT slot count: up to `count` of the keys this node stores in `slot`.
fn cluster_getkeysinslot(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let slot = slot_arg(&args[2])?;
    let count = args::int(&args[3])?;
    let (Some(slot), Ok(count)) = (slot, usize::try_from(count)) else {
        return Err(CmdError::Static("ERR Invalid slot or number of keys"));
    };
    let keys = ctx.keyspace.keys_in_slot(ctx.db(), slot, count)?;
    reply(Reply::bulks(keys))
}

fn cluster_help(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(help_reply(
        "CLUSTER",
        &[
            "COUNT-FAILURE-REPORTS <node-id>",
            "    Return number of failure reports for <node-id>.",
            "COUNTKEYSINSLOT <slot>",
            "    Return the number of keys in <slot>.",
            "GETKEYSINSLOT <slot> <count>",
            "    Return key names stored by current node in a slot.",
            "INFO",
            "    Return information about the cluster.",
            "KEYSLOT <key>",
            "    Return the hash slot for <key>.",
            "MYID",
            "    Return the node id.",
            "NODES",
            "    Return cluster configuration seen by node. Output format:",
            "    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
            "REPLICAS <node-id>",
            "    Return <node-id> replicas.",
            "SHARDS",
            "    Return information about slot range mappings and the nodes associated with them.",
            "SLAVES <node-id>",
            "    Return <node-id> replicas.",
            "SLOTS",
            "    Return information about slots range mappings. Each range is made of:",
            "    start, end, master and replicas IP addresses, ports and ids",
        ],
    ))
}
