//! MULTI, EXEC, DISCARD, WATCH and UNWATCH: the connection's side of a transaction.
//!
//! MULTI starts queuing; the node (`crate::node`) queues every command after it and runs
//! EXEC: the queued commands against a speculative keyspace to learn their replies, then
//! their writes as one log entry. EXEC reaches its handler here only outside MULTI.

use bytes::Bytes;

use super::error::CmdError;
use super::session::MultiState;
use super::watches::WatchState;
use super::{reply, ApplyFn, CmdResult, Ctx, Handler};
use crate::protocol::Reply;

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("multi", multi, None),
    ("exec", exec, None),
    ("discard", discard, None),
    ("watch", watch, None),
    ("unwatch", unwatch, None),
];

fn multi(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    if ctx.session.multi.is_some() {
        return Err(CmdError::msg("ERR MULTI calls can not be nested"));
    }
    ctx.session.multi = Some(MultiState::default());
    ctx.session.show_multi();
    reply(Reply::OK)
}

fn exec(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    Err(CmdError::msg("ERR EXEC without MULTI"))
}

fn discard(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    if ctx.session.multi.take().is_none() {
        return Err(CmdError::msg("ERR DISCARD without MULTI"));
    }
    ctx.session.watching = None;
    ctx.session.show_multi();
    reply(Reply::OK)
}

/// WATCH key [key ...]: EXEC aborts if any of them changes from now on. A key that has
/// expired but is still stored is noted as such (its deletion is then no change).
fn watch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.session.multi.is_some() {
        return Err(CmdError::msg("ERR WATCH inside MULTI is not allowed"));
    }
    let db = ctx.db();
    let metas = ctx.keyspace.multi_get_stored(db, &args[1..])?;
    let registry = ctx.shared.watches.clone();
    let state = ctx
        .session
        .watching
        .get_or_insert_with(|| WatchState::new(registry));
    for (key, meta) in args[1..].iter().zip(metas) {
        let expired = meta.is_some_and(|m| m.is_expired(ctx.now_ms));
        state.watch(db, key, expired);
    }
    reply(Reply::OK)
}

fn unwatch(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.session.watching = None;
    reply(Reply::OK)
}
