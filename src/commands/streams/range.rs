//! XLEN, XRANGE, XREVRANGE and XREAD (with BLOCK): reads of a stream's entries.

use bytes::Bytes;

use super::id::{self, StreamId};
use super::store;
use super::{count_arg, entries_reply, interval_bound, read, reading};
use crate::commands::args::{self, eq};
use std::time::Duration;

use crate::commands::blocking::WaitFor;
use crate::commands::error::{self, CmdError};
use crate::commands::lists_blocking::parse_timeout_ms;
use crate::commands::{reply, BlockOn, CmdResult, Ctx, Outcome};
use crate::protocol::Reply;

pub fn xlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let len = read(ctx, &args[1])?.map_or(0, |s| s.len());
    reply(Reply::Integer(len as i64))
}

/// XRANGE key start end [COUNT n] and XREVRANGE key end start [COUNT n].
pub fn xrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let rev = eq(&args[0], "xrevrange");
    let (start_arg, end_arg) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let start = interval_bound(start_arg, 0, true)?;
    let end = interval_bound(end_arg, u64::MAX, false)?;
    let mut count = None;
    let mut i = 4;
    while i < args.len() {
        if eq(&args[i], "count") && i + 1 < args.len() {
            count = Some(count_arg(&args[i + 1])?);
            i += 2;
        } else {
            return Err(error::syntax());
        }
    }
    let Some(stream) = read(ctx, &args[1])? else {
        return reply(Reply::Array(Vec::new()));
    };
    if count == Some(0) {
        return reply(Reply::NullArray);
    }
    let mut r = reading(ctx.keyspace, ctx.now_ms, ctx.db(), &args[1], &stream);
    let found = store::entries(&mut r, start, end, count.unwrap_or(0), rev)?;
    reply(entries_reply(found))
}

/// XREAD's and XREADGROUP's options.
pub struct ReadArgs {
    pub count: usize,
    /// BLOCK's timeout (`Some(None)`: forever).
    pub block: Option<Option<Duration>>,
    pub group: Option<(Bytes, Bytes)>,
    pub noack: bool,
    /// Where the keys start; as many IDs follow them.
    pub streams_at: usize,
    pub streams: usize,
}

impl ReadArgs {
    pub fn keys<'a>(&self, args: &'a [Bytes]) -> &'a [Bytes] {
        &args[self.streams_at..self.streams_at + self.streams]
    }

    pub fn ids<'a>(&self, args: &'a [Bytes]) -> &'a [Bytes] {
        &args[self.streams_at + self.streams..]
    }
}

/// Parses XREAD and XREADGROUP as Redis's `xreadCommand` does, with its texts.
pub fn parse_read(args: &[Bytes], group: bool) -> Result<ReadArgs, CmdError> {
    let name = args::lower(&args[0]);
    let mut out = ReadArgs {
        count: 0,
        block: None,
        group: None,
        noack: false,
        streams_at: 0,
        streams: 0,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if eq(opt, "block") && more > 0 {
            out.block = Some(parse_timeout_ms(&args[i + 1])?);
            i += 1;
        } else if eq(opt, "count") && more > 0 {
            out.count = count_arg(&args[i + 1])?;
            i += 1;
        } else if eq(opt, "streams") && more > 0 {
            let rest = args.len() - (i + 1);
            if !rest.is_multiple_of(2) {
                let symbol = if group { '>' } else { '$' };
                return Err(CmdError::msg(format!(
                    "ERR Unbalanced '{name}' list of streams: for each stream key an ID or '{symbol}' must be specified."
                )));
            }
            out.streams_at = i + 1;
            out.streams = rest / 2;
            break;
        } else if eq(opt, "group") && more >= 2 {
            if !group {
                return Err(CmdError::msg(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            out.group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if eq(opt, "noack") {
            if !group {
                return Err(CmdError::msg(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            out.noack = true;
        } else {
            return Err(error::syntax());
        }
        i += 1;
    }
    if out.streams_at == 0 {
        return Err(error::syntax());
    }
    if group && out.group.is_none() {
        return Err(CmdError::msg("ERR Missing GROUP option for XREADGROUP"));
    }
    Ok(out)
}

/// XREAD's `>` refusal.
pub const GT_ONLY_WITH_GROUP: &str =
    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.";

/// XREAD [COUNT n] [BLOCK ms] STREAMS key [key ...] id [id ...].
pub fn xread(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let parsed = parse_read(args, false)?;
    let keys = parsed.keys(args);
    let mut after = Vec::with_capacity(keys.len());
    let mut streams = Vec::with_capacity(keys.len());
    for (key, id_arg) in keys.iter().zip(parsed.ids(args)) {
        let stream = read(ctx, key)?;
        let id = match &id_arg[..] {
            b"$" => stream.as_ref().map_or(StreamId::ZERO, |s| s.state.last_id),
            b">" => return Err(CmdError::Static(GT_ONLY_WITH_GROUP)),
            _ => id::parse_strict(id_arg)?,
        };
        after.push(id);
        streams.push(stream);
    }
    let mut served = Vec::new();
    for ((key, stream), after) in keys.iter().zip(&streams).zip(&after) {
        let (Some(stream), Some(from)) = (stream, after.next()) else {
            continue;
        };
        if stream.len() == 0 {
            continue;
        }
        let mut r = reading(ctx.keyspace, ctx.now_ms, ctx.db(), key, stream);
        let found = store::entries(&mut r, from, StreamId::MAX, parsed.count, false)?;
        if !found.is_empty() {
            served.push((Reply::Bulk(key.clone()), entries_reply(found)));
        }
    }
    if !served.is_empty() {
        return reply(Reply::Keyed(served));
    }
    match parsed.block {
        None => reply(Reply::NullArray),
        Some(timeout) => {
            // After a wake-up the same IDs are read again: `$` stays the ID it meant now.
            let mut again = args.to_vec();
            let ids_at = parsed.streams_at + parsed.streams;
            for (slot, id) in again[ids_at..].iter_mut().zip(&after) {
                *slot = id.to_bytes();
            }
            Ok(Outcome::Block(BlockOn {
                waits_for: WaitFor::Stream {
                    keys: keys.to_vec(),
                    consumer: false,
                },
                timeout,
                again: Some(again),
            }))
        }
    }
}
