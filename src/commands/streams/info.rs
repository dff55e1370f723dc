//! XINFO STREAM [FULL [COUNT n]], XINFO GROUPS and XINFO CONSUMERS, with Redis 7.0's
//! fields and order.

use bytes::Bytes;

use super::id::StreamId;
use super::record::{Group, ENTRIES_READ_UNKNOWN};
use super::store::{self, Records, Stream};
use super::{entries_reply, entry_reply, no_group_for_key, read, reading};
use crate::commands::args::{self, eq};
use crate::commands::error::{self, CmdError};
use crate::commands::object::help_reply;
use crate::commands::{reply, CmdResult, Ctx};
use crate::protocol::Reply;

/// Entries per listpack node in Redis's default `stream-node-max-entries`.
const NODE_ENTRIES: u64 = 100;

fn field(name: &'static str, value: Reply) -> (Reply, Reply) {
    (Reply::Bulk(Bytes::from_static(name.as_bytes())), value)
}

fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(id.to_bytes())
}

/// The stream at `key`, which must exist ("ERR no such key").
fn existing(ctx: &mut Ctx, key: &[u8]) -> Result<Stream, CmdError> {
    read(ctx, key)?.ok_or(CmdError::Static(error::NO_SUCH_KEY))
}

fn syntax(sub: &str) -> CmdError {
    CmdError::msg(format!(
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try XINFO HELP."
    ))
}

/// XINFO STREAM key [FULL [COUNT count]].
pub fn xinfo_stream(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[2];
    let stream = existing(ctx, key)?;
    let sub = String::from_utf8_lossy(&args[1]).into_owned();
    let full = match &args[3..] {
        [] => None,
        [f] if eq(f, "full") => Some(10),
        [f, c, n] if eq(f, "full") && eq(c, "count") => {
            let n = args::int(n)?;
            Some(if n < 0 { 10 } else { n as usize })
        }
        _ => return Err(syntax(&sub)),
    };
    let mut r = reading(ctx.keyspace, ctx.now_ms, ctx.db(), key, &stream);
    let s = &stream.state;
    // Redis's listpack nodes for these entries (an empty stream's tree has one node).
    let nodes = stream.len().div_ceil(NODE_ENTRIES);
    let mut fields = vec![
        field("length", Reply::Integer(stream.len() as i64)),
        field("radix-tree-keys", Reply::Integer(nodes as i64)),
        field("radix-tree-nodes", Reply::Integer(nodes as i64 + 1)),
        field("last-generated-id", id_reply(s.last_id)),
        field("max-deleted-entry-id", id_reply(s.max_deleted)),
        field("entries-added", Reply::Integer(s.entries_added as i64)),
        field("recorded-first-entry-id", id_reply(s.first_id)),
    ];
    match full {
        None => {
            let groups = store::groups(&mut r)?.len();
            fields.push(field("groups", Reply::Integer(groups as i64)));
            for (name, reverse) in [("first-entry", false), ("last-entry", true)] {
                let edge = store::entries(&mut r, StreamId::ZERO, StreamId::MAX, 1, reverse)?;
                let value = match edge.into_iter().next() {
                    Some((id, entry)) => entry_reply(id, entry),
                    None => Reply::Null,
                };
                fields.push(field(name, value));
            }
        }
        Some(count) => {
            let entries = store::entries(&mut r, StreamId::ZERO, StreamId::MAX, count, false)?;
            fields.push(field("entries", entries_reply(entries)));
            let mut groups = Vec::new();
            for (name, group) in store::groups(&mut r)? {
                groups.push(full_group(&mut r, &stream, name, &group, count)?);
            }
            fields.push(field("groups", Reply::Array(groups)));
        }
    }
    reply(Reply::Map(fields))
}

fn entries_read_reply(group: &Group) -> Reply {
    if group.entries_read == ENTRIES_READ_UNKNOWN {
        Reply::Null
    } else {
        Reply::Integer(group.entries_read)
    }
}

fn lag_reply(stream: &Stream, group: &Group) -> Reply {
    stream.lag(group).map_or(Reply::Null, Reply::Integer)
}

/// One group in XINFO STREAM FULL: its counters, pending entries and consumers (each list
/// cut at `count`, 0 meaning all).
fn full_group(
    r: &mut impl Records,
    stream: &Stream,
    name: Bytes,
    group: &Group,
    count: usize,
) -> Result<Reply, CmdError> {
    let limit = if count == 0 { usize::MAX } else { count };
    let pending: Vec<Reply> =
        store::pending_range(r, &name, StreamId::ZERO, StreamId::MAX, limit, false)?
            .into_iter()
            .map(|(id, p)| {
                Reply::Array(vec![
                    id_reply(id),
                    Reply::Bulk(p.consumer),
                    Reply::Integer(p.delivery_ms as i64),
                    Reply::Integer(p.delivery_count as i64),
                ])
            })
            .collect();
    let mut consumers = Vec::new();
    for (consumer, c) in store::consumers(r, &name)? {
        let ids =
            store::consumer_pending_ids(r, &name, &consumer, StreamId::ZERO, StreamId::MAX, limit)?;
        let mut own = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(p) = store::pending(r, &name, id)? {
                own.push(Reply::Array(vec![
                    id_reply(id),
                    Reply::Integer(p.delivery_ms as i64),
                    Reply::Integer(p.delivery_count as i64),
                ]));
            }
        }
        consumers.push(Reply::Map(vec![
            field("name", Reply::Bulk(consumer)),
            field("seen-time", Reply::Integer(c.seen_ms as i64)),
            field("pel-count", Reply::Integer(c.pending as i64)),
            field("pending", Reply::Array(own)),
        ]));
    }
    Ok(Reply::Map(vec![
        field("name", Reply::Bulk(name)),
        field("last-delivered-id", id_reply(group.last_id)),
        field("entries-read", entries_read_reply(group)),
        field("lag", lag_reply(stream, group)),
        field("pel-count", Reply::Integer(group.pending as i64)),
        field("pending", Reply::Array(pending)),
        field("consumers", Reply::Array(consumers)),
    ]))
}

/// XINFO GROUPS key.
pub fn xinfo_groups(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[2];
    let stream = existing(ctx, key)?;
    let mut r = reading(ctx.keyspace, ctx.now_ms, ctx.db(), key, &stream);
    let groups = store::groups(&mut r)?
        .into_iter()
        .map(|(name, group)| {
            Reply::Map(vec![
                field("name", Reply::Bulk(name)),
                field("consumers", Reply::Integer(group.consumers as i64)),
                field("pending", Reply::Integer(group.pending as i64)),
                field("last-delivered-id", id_reply(group.last_id)),
                field("entries-read", entries_read_reply(&group)),
                field("lag", lag_reply(&stream, &group)),
            ])
        })
        .collect();
    reply(Reply::Array(groups))
}

/// XINFO CONSUMERS key group: each consumer's pending count and idle time.
pub fn xinfo_consumers(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, group_name) = (&args[2], &args[3]);
    let stream = existing(ctx, key)?;
    let now = ctx.now_ms;
    let mut r = reading(ctx.keyspace, ctx.now_ms, ctx.db(), key, &stream);
    if store::group(&mut r, group_name)?.is_none() {
        return Err(no_group_for_key(key, group_name));
    }
    let consumers = store::consumers(&mut r, group_name)?
        .into_iter()
        .map(|(name, c)| {
            Reply::Map(vec![
                field("name", Reply::Bulk(name)),
                field("pending", Reply::Integer(c.pending as i64)),
                field("idle", Reply::Integer(now.saturating_sub(c.seen_ms) as i64)),
            ])
        })
        .collect();
    reply(Reply::Array(consumers))
}

pub fn xinfo_help(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(help_reply(
        "XINFO",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    ))
}
