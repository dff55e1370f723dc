//! Popping the lowest or highest members: ZPOPMIN, ZPOPMAX, ZMPOP, and the blocking
//! BZPOPMIN, BZPOPMAX and BZMPOP (parked by the node like BLPOP; see `lists_blocking.rs`).

use bytes::Bytes;

use super::view::ZView;
use super::write::ZWrite;
use crate::commands::args::{self, eq};
use crate::commands::collections::{self, Mpop};
use crate::commands::error::{syntax, CmdError};
use crate::commands::lists_blocking::{parse_timeout, serve_or_block};
use crate::commands::{CmdResult, Ctx, Outcome};
use crate::keyspace::{SubRange, Txn, ValueType};
use crate::protocol::Reply;

/// A key and the members with scores popped from it.
type Popped = Option<(Bytes, Vec<(Bytes, f64)>)>;

const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";

/// Takes up to `count` members from the low end (`min`) or the high end.
fn pop(z: &mut ZWrite, count: usize, min: bool) -> Result<Vec<(Bytes, f64)>, CmdError> {
    let items = z.view.scan_scores(&SubRange::all(), count, !min)?;
    for (member, score) in &items {
        z.remove(member, *score);
    }
    Ok(items)
}

/// Pops from the first of `keys` that holds a sorted set: `(key, popped)`.
fn pop_first(
    txn: &mut Txn,
    db: u8,
    keys: &[Bytes],
    count: usize,
    min: bool,
) -> Result<Popped, CmdError> {
    for key in keys {
        let Some(mut z) = ZWrite::open(txn, db, key)? else {
            continue;
        };
        let popped = pop(&mut z, count, min)?;
        if !popped.is_empty() {
            z.finish()?;
        }
        return Ok(Some((key.clone(), popped)));
    }
    Ok(None)
}

fn is_min(name: &[u8]) -> bool {
    args::lower(name).ends_with("min")
}

/// ZPOPMIN/ZPOPMAX key [count].
pub fn zpop(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(syntax());
    }
    if let Some(count) = args.get(2) {
        if args::int_with(count, NOT_POSITIVE)? < 0 {
            return Err(CmdError::Static(NOT_POSITIVE));
        }
    }
    Ok(Outcome::Propose(args.to_vec()))
}

pub fn apply_zpop(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let count = args.get(2).map(|c| args::int(c)).transpose()?;
    let n = count.map_or(1, |c| c as usize);
    let popped = pop_first(txn, db, &args[1..2], n, is_min(&args[0]))?;
    let items = popped.map(|(_, items)| items).unwrap_or_default();
    Ok(match count {
        Some(_) => super::scored_reply(items, true),
        None => Reply::Array(
            items
                .into_iter()
                .flat_map(|(m, s)| [Reply::Bulk(m), Reply::Double(s)])
                .collect(),
        ),
    })
}

fn min_or_max(arg: &[u8]) -> Result<bool, CmdError> {
    if eq(arg, "MIN") {
        Ok(true)
    } else if eq(arg, "MAX") {
        Ok(false)
    } else {
        Err(syntax())
    }
}

fn parse_zmpop(args: &[Bytes]) -> Result<Mpop, CmdError> {
    collections::parse_mpop(args, min_or_max)
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count].
pub fn zmpop(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    parse_zmpop(args)?;
    Ok(Outcome::Propose(args.to_vec()))
}

/// `[key, [[member, score], ...]]`, or a null array when no key had a sorted set.
fn mpop_reply(popped: Popped) -> Reply {
    match popped {
        None => Reply::NullArray,
        Some((_, items)) if items.is_empty() => Reply::NullArray,
        Some((key, items)) => Reply::Array(vec![
            Reply::Bulk(key),
            Reply::Array(
                items
                    .into_iter()
                    .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)]))
                    .collect(),
            ),
        ]),
    }
}

pub fn apply_zmpop(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let spec = parse_zmpop(args)?;
    let popped = pop_first(
        txn,
        db,
        &args[spec.keys],
        spec.count as usize,
        spec.from_start,
    )?;
    Ok(mpop_reply(popped))
}

/// BZPOPMIN/BZPOPMAX key [key ...] timeout.
pub fn bzpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let timeout = parse_timeout(&args[args.len() - 1])?;
    let keys = &args[1..args.len() - 1];
    serve_or_block(ctx, args, keys, timeout, ValueType::ZSet)
}

pub fn apply_bzpop(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let keys = &args[1..args.len() - 1];
    let popped = pop_first(txn, db, keys, 1, is_min(&args[0]))?;
    Ok(match popped {
        Some((key, mut items)) if !items.is_empty() => {
            let (member, score) = items.remove(0);
            Reply::Array(vec![
                Reply::Bulk(key),
                Reply::Bulk(member),
                Reply::Double(score),
            ])
        }
        _ => Reply::NullArray,
    })
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count].
pub fn bzmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let timeout = parse_timeout(&args[1])?;
    let spec = parse_zmpop(&args[1..])?;
    let keys = &args[1..][spec.keys];
    serve_or_block(ctx, args, keys, timeout, ValueType::ZSet)
}

pub fn apply_bzmpop(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    apply_zmpop(txn, db, &args[1..])
}
