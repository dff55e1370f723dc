//! Pub/sub: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs, PUBLISH, SPUBLISH and
//! PUBSUB. Subscriptions live on the node a client is connected to (`hub.rs`); PUBLISH
//! delivers to this node's subscribers and hands the message to the node, which passes it
//! to every other node of the cluster in publish order (`ClusterView::publish_to_peers`).
//! PUBLISH answers, as in Redis Cluster, how many clients of this node received it.

pub mod hub;

use bytes::{Bytes, BytesMut};

use self::hub::{Kind, Subscriptions};
use super::object::help_reply;
use super::{container, reply, ApplyFn, CmdResult, Ctx, Handler};
use crate::protocol::Reply;

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("subscribe", subscribe, None),
    ("unsubscribe", unsubscribe, None),
    ("psubscribe", psubscribe, None),
    ("punsubscribe", punsubscribe, None),
    ("ssubscribe", ssubscribe, None),
    ("sunsubscribe", sunsubscribe, None),
    ("publish", publish, None),
    ("spublish", spublish, None),
    ("pubsub", container, None),
    ("pubsub|channels", pubsub_channels, None),
    ("pubsub|shardchannels", pubsub_channels, None),
    ("pubsub|numsub", pubsub_numsub, None),
    ("pubsub|shardnumsub", pubsub_numsub, None),
    ("pubsub|numpat", pubsub_numpat, None),
    ("pubsub|help", pubsub_help, None),
];

/// The commands a RESP2 connection with subscriptions may run (Redis's subscribed mode).
pub fn allowed_when_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "unsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "ssubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// The error a RESP2 subscribed connection gets for any other command.
pub fn subscribed_mode_error(name: &str) -> Reply {
    Reply::Error(format!(
        "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    ))
}

/// Keeps CLIENT LIST's subscription counts in step with the session's.
fn show_counts(ctx: &Ctx) {
    let counts = ctx
        .session
        .pubsub
        .as_ref()
        .map_or((0, 0, 0), |s| s.counts());
    let shown = &ctx.session.info.subscriptions;
    for (slot, n) in shown.iter().zip([counts.0, counts.1, counts.2]) {
        slot.store(n as u32, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Several replies for one command (one per channel), encoded for the connection.
fn replies(ctx: &Ctx, items: Vec<Reply>) -> CmdResult {
    show_counts(ctx);
    let mut out = BytesMut::new();
    for item in items {
        item.encode(ctx.session.resp3, &mut out);
    }
    reply(Reply::Encoded(out.freeze()))
}

fn confirmation(verb: &'static str, name: Option<Bytes>, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::bulk(verb),
        name.map_or(Reply::Null, Reply::Bulk),
        Reply::Integer(count as i64),
    ])
}

fn subscribe_to(ctx: &mut Ctx, kind: Kind, verb: &'static str, names: &[Bytes]) -> CmdResult {
    let hub = ctx.shared.pubsub.clone();
    let client = ctx.session.info.clone();
    let subs = ctx
        .session
        .pubsub
        .get_or_insert_with(|| Subscriptions::new(hub, client));
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        subs.add(kind, name);
        out.push(confirmation(verb, Some(name.clone()), subs.count(kind)));
    }
    replies(ctx, out)
}

/// UNSUBSCRIBE and its kin: the names given, or every one of `kind` when none are.
fn unsubscribe_from(ctx: &mut Ctx, kind: Kind, verb: &'static str, names: &[Bytes]) -> CmdResult {
    let Some(subs) = ctx.session.pubsub.as_mut() else {
        let out = if names.is_empty() {
            vec![confirmation(verb, None, 0)]
        } else {
            names
                .iter()
                .map(|n| confirmation(verb, Some(n.clone()), 0))
                .collect()
        };
        return replies(ctx, out);
    };
    let names = if names.is_empty() {
        subs.names(kind)
    } else {
        names.to_vec()
    };
    let mut out = Vec::with_capacity(names.len().max(1));
    if names.is_empty() {
        out.push(confirmation(verb, None, subs.count(kind)));
    }
    for name in names {
        subs.remove(kind, &name);
        out.push(confirmation(verb, Some(name), subs.count(kind)));
    }
    if subs.is_empty() {
        ctx.session.pubsub = None;
    }
    replies(ctx, out)
}

fn subscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    subscribe_to(ctx, Kind::Channel, "subscribe", &args[1..])
}

fn psubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    subscribe_to(ctx, Kind::Pattern, "psubscribe", &args[1..])
}

fn ssubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    subscribe_to(ctx, Kind::Shard, "ssubscribe", &args[1..])
}

fn unsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    unsubscribe_from(ctx, Kind::Channel, "unsubscribe", &args[1..])
}

fn punsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    unsubscribe_from(ctx, Kind::Pattern, "punsubscribe", &args[1..])
}

fn sunsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    unsubscribe_from(ctx, Kind::Shard, "sunsubscribe", &args[1..])
}

/// PUBLISH channel message: delivered here, and passed on to the other nodes.
fn publish(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let limit = ctx.shared.config.pubsub_output_limit();
    let received = ctx.shared.pubsub.publish(&args[1], &args[2], limit);
    ctx.cluster
        .publish_to_peers(false, args[1].clone(), args[2].clone());
    reply(Reply::Integer(received as i64))
}

/// SPUBLISH shardchannel message: the same for shard channels.
fn spublish(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let limit = ctx.shared.config.pubsub_output_limit();
    let received = ctx.shared.pubsub.spublish(&args[1], &args[2], limit);
    ctx.cluster
        .publish_to_peers(true, args[1].clone(), args[2].clone());
    reply(Reply::Integer(received as i64))
}

fn kind_of(args: &[Bytes]) -> Kind {
    if args[1].len() > 5 && args[1][..5].eq_ignore_ascii_case(b"shard") {
        Kind::Shard
    } else {
        Kind::Channel
    }
}

/// PUBSUB CHANNELS | SHARDCHANNELS [pattern]: the channels with a subscriber on this node.
fn pubsub_channels(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(super::CmdError::msg(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(&args[1])
        )));
    }
    let names = ctx
        .shared
        .pubsub
        .active(kind_of(args), args.get(2).map(|p| &p[..]));
    reply(Reply::Array(names.into_iter().map(Reply::Bulk).collect()))
}

/// PUBSUB NUMSUB | SHARDNUMSUB [channel ...]: each channel and its subscribers here (a
/// flat array in RESP3 too, as Redis 7.0 answers).
fn pubsub_numsub(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let kind = kind_of(args);
    let items = args[2..]
        .iter()
        .flat_map(|c| {
            let n = ctx.shared.pubsub.count(kind, c);
            [Reply::Bulk(c.clone()), Reply::Integer(n as i64)]
        })
        .collect();
    reply(Reply::Array(items))
}

fn pubsub_numpat(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(Reply::Integer(ctx.shared.pubsub.patterns() as i64))
}

fn pubsub_help(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(help_reply(
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    ))
}
