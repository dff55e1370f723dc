//! OBJECT ENCODING / FREQ / IDLETIME / REFCOUNT / HELP.

use bytes::Bytes;

use super::error::CmdError;
use super::{reply, CmdResult, Ctx};
use crate::keyspace::Encoding;
use crate::protocol::Reply;

/// Redis's shared integers 0..10000 report this reference count.
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

const LFU_NOT_SELECTED: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
const LFU_SELECTED: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

pub fn encoding(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    reply(match ctx.lookup(&args[2])? {
        None => Reply::Null,
        Some(m) => Reply::bulk(m.encoding.name()),
    })
}

fn lfu_policy(ctx: &Ctx) -> bool {
    ctx.shared.config.lfu_policy()
}

pub fn freq(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.lookup(&args[2])?.is_none() {
        return reply(Reply::Null);
    }
    if !lfu_policy(ctx) {
        return Err(CmdError::Static(LFU_NOT_SELECTED));
    }
    reply(Reply::Integer(i64::from(
        ctx.shared.access.frequency(ctx.db(), &args[2]),
    )))
}

pub fn idletime(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.lookup(&args[2])?.is_none() {
        return reply(Reply::Null);
    }
    if lfu_policy(ctx) {
        return Err(CmdError::Static(LFU_SELECTED));
    }
    reply(Reply::Integer(
        ctx.shared.access.idle_secs(ctx.db(), &args[2]) as i64,
    ))
}

pub fn refcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    reply(match ctx.lookup(&args[2])? {
        None => Reply::Null,
        Some(m) => {
            let shared = m.encoding == Encoding::Int
                && crate::protocol::decode::parse_i64(&m.value)
                    .is_some_and(|n| (0..10_000).contains(&n));
            Reply::Integer(if shared { SHARED_REFCOUNT } else { 1 })
        }
    })
}

pub fn help(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(help_reply(
        "OBJECT",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    ))
}

/// A container's HELP reply in Redis's layout.
pub fn help_reply(container: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::Status(format!(
        "{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ))];
    out.extend(lines.iter().map(|l| Reply::Status((*l).to_string())));
    out.push(Reply::Simple("HELP"));
    out.push(Reply::Simple("    Prints this help."));
    Reply::Array(out)
}
