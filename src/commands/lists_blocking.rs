//! Blocking list commands: BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP.
//!
//! The handler checks the keys at the proposer: when a list has elements the command is
//! proposed (apply pops as the non-blocking form does); otherwise it returns
//! `Outcome::Block` and the node parks the client (`blocking.rs`) until a write to one of the
//! keys, the timeout, or CLIENT UNBLOCK. If another client took the elements first, apply
//! finds nothing and the client goes back to waiting in its place.

use std::time::Duration;

use bytes::Bytes;

use super::args::eq;
use super::blocking::WaitFor;
use super::collections;
use super::error::CmdError;
use super::lists::{self, pop_one, store, txn_list};
use super::{ApplyFn, BlockOn, CmdResult, Ctx, Handler, Outcome};
use crate::keyspace::{Txn, ValueType};
use crate::protocol::Reply;

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("blpop", bpop, Some(apply_bpop)),
    ("brpop", bpop, Some(apply_bpop)),
    ("blmove", blmove, Some(lists::apply_lmove)),
    ("brpoplpush", blmove, Some(lists::apply_lmove)),
    ("blmpop", blmpop, Some(apply_blmpop)),
];

/// A blocking timeout in seconds (0 = forever), as Redis parses it.
pub fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, CmdError> {
    let secs = Some(arg)
        .filter(|a| a.first().is_some_and(|b| !b.is_ascii_whitespace()))
        .and_then(super::strtod::strtod)
        .map(|(secs, _)| secs)
        .ok_or(CmdError::msg("ERR timeout is not a float or out of range"))?;
    // Redis converts to integer milliseconds; what does not fit turns negative there.
    let ms = secs * 1000.0;
    if !(0.0..9.2e18).contains(&ms) {
        return Err(CmdError::msg("ERR timeout is negative"));
    }
    Ok((secs > 0.0).then(|| Duration::from_secs_f64(secs.min(1e9))))
}

/// A blocking timeout in milliseconds (0 = forever), as Redis's
/// `getTimeoutFromObjectOrReply` reads XREAD's and KEYEVENTS READ's BLOCK.
pub fn parse_timeout_ms(arg: &[u8]) -> Result<Option<Duration>, CmdError> {
    let ms = super::args::int_with(arg, "ERR timeout is not an integer or out of range")?;
    if ms < 0 {
        return Err(CmdError::msg("ERR timeout is negative"));
    }
    Ok((ms > 0).then(|| Duration::from_millis(ms as u64)))
}

/// What a blocking command replies when its time is up (a null array for all of them, as
/// redis-server 7.0 answers).
pub const TIMEOUT_REPLY: Reply = Reply::NullArray;

/// Whether apply found nothing to pop (another client was served first).
pub fn found_nothing(reply: &Reply) -> bool {
    matches!(reply, Reply::Null | Reply::NullArray)
}

/// Proposes `args` if one of `keys` holds a non-empty `wants` (a list, a sorted set), else
/// blocks on them; another type at a key is WRONGTYPE.
pub fn serve_or_block(
    ctx: &mut Ctx,
    args: &[Bytes],
    keys: &[Bytes],
    timeout: Option<Duration>,
    wants: ValueType,
) -> CmdResult {
    for key in keys {
        if collections::read(ctx, key, wants)?.is_some_and(|(_, c)| c.count > 0) {
            return Ok(Outcome::Propose(args.to_vec()));
        }
    }
    Ok(Outcome::Block(BlockOn {
        waits_for: WaitFor::Keys {
            keys: keys.to_vec(),
            wants,
        },
        timeout,
        again: None,
    }))
}

/// BLPOP/BRPOP key [key ...] timeout.
fn bpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let timeout = parse_timeout(&args[args.len() - 1])?;
    serve_or_block(
        ctx,
        args,
        &args[1..args.len() - 1],
        timeout,
        ValueType::List,
    )
}

fn apply_bpop(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let left = eq(&args[0], "blpop");
    for key in &args[1..args.len() - 1] {
        let Some((meta, mut list)) = txn_list(txn, db, key)? else {
            continue;
        };
        if let Some(value) = pop_one(txn, db, key, &mut list, left)? {
            store(txn, db, key, meta, list)?;
            return Ok(Reply::Array(vec![
                Reply::Bulk(key.clone()),
                Reply::Bulk(value),
            ]));
        }
    }
    Ok(Reply::NullArray)
}

/// BLMOVE src dst LEFT|RIGHT LEFT|RIGHT timeout, BRPOPLPUSH src dst timeout.
fn blmove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if eq(&args[0], "blmove") {
        lists::side(&args[3])?;
        lists::side(&args[4])?;
    }
    let timeout = parse_timeout(&args[args.len() - 1])?;
    serve_or_block(ctx, args, &args[1..2], timeout, ValueType::List)
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count].
fn blmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let timeout = parse_timeout(&args[1])?;
    let spec = lists::parse_lmpop(&args[1..])?;
    let keys = &args[1..][spec.keys];
    serve_or_block(ctx, args, keys, timeout, ValueType::List)
}

fn apply_blmpop(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    lists::apply_lmpop(txn, db, &args[1..])
}
