//! KEYEVENTS: reading again the keyspace events a shard kept (`keyspace-events-log`), from
//! any event id still kept — so a consumer that lost its connection resumes where it left
//! off, on any node holding a replica of the shard, without missing or repeating an event.
//! Nothing in the Redis family offers this; it is Basalt's own command.
//!
//! - `KEYEVENTS READ shard id [COUNT n] [BLOCK ms]`: the events after `id` (`index-seq`, as
//!   returned; `0` for the oldest kept), at most `n` (default 1000): `[last id, [[id, db,
//!   event, key], ...]]`. When events after `id` may have been trimmed (or never kept on
//!   this node), an error says so instead of skipping them. With BLOCK and no event yet,
//!   the client waits until the shard keeps one (every applied entry with events wakes
//!   every reader of its shard) or `ms` pass (0: forever), then gets a null array — as
//!   XREAD BLOCK; inside MULTI it never waits.
//! - `KEYEVENTS SHARDS`: `[shard, first slot, last slot, oldest kept id or nil]` for each
//!   shard this node holds a replica of (a key's slot names its shard).

use bytes::Bytes;

use std::time::Duration;

use super::args::{self, eq};
use super::blocking::WaitFor;
use super::error::{syntax, CmdError};
use super::object::help_reply;
use super::{container, reply, ApplyFn, BlockOn, CmdResult, Ctx, Handler, HeldShard, Outcome};
use crate::keyspace::EventId;
use crate::protocol::Reply;

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("keyevents", container, None),
    ("keyevents|read", keyevents_read, None),
    ("keyevents|shards", keyevents_shards, None),
    ("keyevents|help", keyevents_help, None),
];

/// Events one READ returns without COUNT; COUNT may ask for this many at most.
const COUNT_DEFAULT: i64 = 1000;
const COUNT_MAX: i64 = 100_000;

fn kept(ctx: &Ctx) -> Result<(), CmdError> {
    if ctx.shared.config.keyspace_events_log() == 0 {
        return Err(CmdError::msg(
            "ERR no keyspace events are kept (keyspace-events-log is 0)",
        ));
    }
    Ok(())
}

/// The options of KEYEVENTS READ after the id.
struct ReadOptions {
    count: i64,
    /// BLOCK: how long to wait for an event (`Some(None)`: forever).
    block: Option<Option<Duration>>,
}

fn read_options(args: &[Bytes]) -> Result<ReadOptions, CmdError> {
    let mut options = ReadOptions {
        count: COUNT_DEFAULT,
        block: None,
    };
    let mut rest = args;
    while let [opt, value, tail @ ..] = rest {
        if eq(opt, "count") {
            options.count = args::int(value)?;
            if !(1..=COUNT_MAX).contains(&options.count) {
                return Err(CmdError::msg(format!(
                    "ERR COUNT must be between 1 and {COUNT_MAX}"
                )));
            }
        } else if eq(opt, "block") {
            options.block = Some(super::lists_blocking::parse_timeout_ms(value)?);
        } else {
            return Err(syntax());
        }
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(syntax());
    }
    Ok(options)
}

/// KEYEVENTS READ shard id [COUNT n] [BLOCK ms]
fn keyevents_read(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let shard = args::int(&args[2])?;
    let (from_oldest, after) = if &args[3][..] == b"0" {
        (true, EventId { index: 0, seq: 0 })
    } else {
        let id = EventId::parse(&args[3])
            .ok_or_else(|| CmdError::msg("ERR Invalid event ID specified"))?;
        (false, id)
    };
    let options = read_options(&args[4..])?;
    kept(ctx)?;
    let held = held_shard(ctx, shard)?;
    let since = ctx.shared.keyspace.events_since(held.group)?;
    let gap = match since {
        None => !from_oldest,
        Some(since) => !from_oldest && after.index < since,
    };
    if gap {
        let oldest = since.map_or("none".to_string(), |s| format!("{s}-0"));
        return Err(CmdError::msg(format!(
            "ERR events of shard {shard} after {after} are no longer kept here (oldest kept: {oldest})"
        )));
    }
    let events = ctx
        .shared
        .keyspace
        .read_events(held.group, after, options.count as usize)?;
    if let (true, Some(timeout)) = (events.is_empty(), options.block) {
        return Ok(Outcome::Block(BlockOn {
            waits_for: WaitFor::Events(held.group),
            timeout,
            again: None,
        }));
    }
    let last = events.last().map_or(after, |e| e.id);
    let last = if from_oldest && events.is_empty() {
        Reply::bulk("0")
    } else {
        Reply::Bulk(Bytes::from(last.to_string()))
    };
    let rows = events
        .into_iter()
        .map(|e| {
            Reply::Array(vec![
                Reply::Bulk(Bytes::from(e.id.to_string())),
                Reply::Integer(i64::from(e.db)),
                Reply::Bulk(e.name),
                Reply::Bulk(e.key),
            ])
        })
        .collect();
    reply(Reply::Array(vec![last, Reply::Array(rows)]))
}

fn held_shard(ctx: &Ctx, shard: i64) -> Result<HeldShard, CmdError> {
    ctx.cluster
        .shards_held()
        .into_iter()
        .find(|h| i64::from(h.shard) == shard)
        .ok_or_else(|| CmdError::msg(format!("ERR shard {shard} has no replica on this node")))
}

/// KEYEVENTS SHARDS
fn keyevents_shards(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    kept(ctx)?;
    let mut rows = Vec::new();
    for h in ctx.cluster.shards_held() {
        let since = ctx.shared.keyspace.events_since(h.group)?;
        rows.push(Reply::Array(vec![
            Reply::Integer(i64::from(h.shard)),
            Reply::Integer(i64::from(h.first_slot)),
            Reply::Integer(i64::from(h.last_slot)),
            since.map_or(Reply::Null, |s| Reply::Bulk(Bytes::from(format!("{s}-0")))),
        ]));
    }
    reply(Reply::Array(rows))
}

fn keyevents_help(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(help_reply(
        "KEYEVENTS",
        &[
            "READ <shard> <id> [COUNT <count>] [BLOCK <milliseconds>]",
            "    Return the keyspace events the shard kept after <id> (0: the oldest kept);",
            "    with BLOCK, wait up to <milliseconds> (0: forever) for one when there is none.",
            "SHARDS",
            "    List the shards this node keeps events of: slots and oldest kept event.",
        ],
    ))
}
