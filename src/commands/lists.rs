//! List commands over element records keyed by position.
//!
//! A list's metadata holds its first index (`head`) and length; element `i` is stored under
//! index `head + i`, so pushes and pops at either end, LINDEX, LSET and a window of LRANGE
//! touch only the elements involved. LINSERT and LREM rewrite the list under a new version
//! (the old elements are left to the compaction filter), as Redis shifts memory for them.
//! OBJECT ENCODING reports `quicklist`, as redis-server 7.0 does for every list.

use bytes::Bytes;

use super::args::{self, eq};
use super::collections;
use super::error::{self, syntax, CmdError};
use super::{propose_as_sent, reply, ApplyFn, CmdResult, Ctx, Handler, Outcome};
use crate::keyspace::{Collection, Encoding, Meta, Txn, ValueType};
use crate::protocol::Reply;

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("lpush", propose_as_sent, Some(apply_push)),
    ("rpush", propose_as_sent, Some(apply_push)),
    ("lpushx", propose_as_sent, Some(apply_push)),
    ("rpushx", propose_as_sent, Some(apply_push)),
    ("lpop", pop, Some(apply_pop)),
    ("rpop", pop, Some(apply_pop)),
    ("llen", llen, None),
    ("lrange", lrange, None),
    ("lindex", lindex, None),
    ("lset", int_then_propose, Some(apply_lset)),
    ("linsert", linsert, Some(apply_linsert)),
    ("lrem", int_then_propose, Some(apply_lrem)),
    ("ltrim", ltrim, Some(apply_ltrim)),
    ("lpos", lpos, None),
    ("lmove", lmove, Some(apply_lmove)),
    ("rpoplpush", propose_as_sent, Some(apply_lmove)),
    ("lmpop", lmpop, Some(apply_lmpop)),
];

const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";

/// The live list at `key` (or nothing); another type is WRONGTYPE.
pub(super) fn read_list(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Collection>, CmdError> {
    Ok(collections::read(ctx, key, ValueType::List)?.map(|(_, list)| list))
}

fn list_header(meta: Option<&Meta>) -> Result<Option<Collection>, CmdError> {
    collections::header(meta, ValueType::List)
}

fn index_key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

/// Redis's LRANGE/LTRIM clamping: the inclusive window `[start, end]` of a list of `len`.
fn window(start: i64, end: i64, len: u64) -> Option<(u64, u64)> {
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let end = if end < 0 { len + end } else { end.min(len - 1) };
    (start <= end && start < len).then_some((start as u64, end as u64))
}

/// Elements `[from, to]` (positions) of a list, in order.
fn range(
    ctx: &mut Ctx,
    key: &[u8],
    list: &Collection,
    from: u64,
    to: u64,
) -> Result<Vec<Bytes>, CmdError> {
    let after = index_key(list.head + from - 1);
    let n = (to - from + 1) as usize;
    let page = ctx
        .keyspace
        .scan_elements(ctx.db(), key, list.version, Some(&after), n, false)?;
    Ok(page.into_iter().map(|(_, v)| v).collect())
}

fn llen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    reply(Reply::Integer(
        read_list(ctx, &args[1])?.map_or(0, |l| l.count as i64),
    ))
}

fn lrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (start, end) = (args::int(&args[2])?, args::int(&args[3])?);
    let Some(list) = read_list(ctx, &args[1])? else {
        return reply(Reply::Array(Vec::new()));
    };
    let items = match window(start, end, list.count) {
        None => Vec::new(),
        Some((from, to)) => range(ctx, &args[1], &list, from, to)?,
    };
    reply(Reply::Array(items.into_iter().map(Reply::Bulk).collect()))
}

/// A position from a Redis index (negative from the end), if inside the list.
fn position(index: i64, len: u64) -> Option<u64> {
    let i = if index < 0 { len as i64 + index } else { index };
    (0..len as i64).contains(&i).then_some(i as u64)
}

fn lindex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // As Redis: a missing key's nil and WRONGTYPE before a bad index.
    let Some(list) = read_list(ctx, &args[1])? else {
        return reply(Reply::Null);
    };
    let index = args::int(&args[2])?;
    let Some(p) = position(index, list.count) else {
        return reply(Reply::Null);
    };
    let value =
        ctx.keyspace
            .get_element(ctx.db(), &args[1], list.version, &index_key(list.head + p))?;
    reply(value.map_or(Reply::Null, Reply::Bulk))
}

/// The list at `key` for a write.
pub(super) fn txn_list(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
) -> Result<Option<(Meta, Collection)>, CmdError> {
    collections::txn_read(txn, db, key, ValueType::List)
}

/// The list at `key`, or a new empty one.
fn txn_list_or_new(txn: &mut Txn, db: u8, key: &[u8]) -> Result<(Meta, Collection), CmdError> {
    collections::txn_read_or_new(txn, db, key, ValueType::List, Encoding::Quicklist)
}

pub(super) use collections::store;

fn push(txn: &mut Txn, db: u8, key: &[u8], list: &mut Collection, left: bool, value: Bytes) {
    let at = if left {
        list.head -= 1;
        list.head
    } else {
        list.head + list.count
    };
    txn.put_element(db, key, list.version, &index_key(at), value);
    list.count += 1;
}

pub(super) fn pop_one(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
    list: &mut Collection,
    left: bool,
) -> Result<Option<Bytes>, CmdError> {
    if list.count == 0 {
        return Ok(None);
    }
    let at = if left {
        list.head
    } else {
        list.head + list.count - 1
    };
    let value = txn.get_element(db, key, list.version, &index_key(at))?;
    txn.delete_element(db, key, list.version, &index_key(at));
    list.count -= 1;
    if left {
        list.head += 1;
    }
    Ok(value)
}

fn apply_push(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let name = args::lower(&args[0]);
    let left = name.starts_with('l');
    let (meta, mut list) = if name.ends_with('x') {
        match txn_list(txn, db, &args[1])? {
            Some(found) => found,
            None => return Ok(Reply::Integer(0)),
        }
    } else {
        txn_list_or_new(txn, db, &args[1])?
    };
    for value in &args[2..] {
        push(txn, db, &args[1], &mut list, left, value.clone());
    }
    let len = list.count;
    store(txn, db, &args[1], meta, list)?;
    Ok(Reply::Integer(len as i64))
}

fn pop(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::WrongArity(args::lower(&args[0])));
    }
    if let Some(count) = args.get(2) {
        if args::int_with(count, NOT_POSITIVE)? < 0 {
            return Err(CmdError::Static(NOT_POSITIVE));
        }
    }
    Ok(Outcome::Propose(args.to_vec()))
}

fn apply_pop(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let left = eq(&args[0], "lpop");
    let count = args.get(2).map(|c| args::int(c)).transpose()?;
    let Some((meta, mut list)) = txn_list(txn, db, &args[1])? else {
        return Ok(if count.is_some() {
            Reply::NullArray
        } else {
            Reply::Null
        });
    };
    let Some(count) = count else {
        let value = pop_one(txn, db, &args[1], &mut list, left)?;
        store(txn, db, &args[1], meta, list)?;
        return Ok(value.map_or(Reply::Null, Reply::Bulk));
    };
    let mut out = Vec::new();
    for _ in 0..count.min(list.count as i64) {
        if let Some(v) = pop_one(txn, db, &args[1], &mut list, left)? {
            out.push(Reply::Bulk(v));
        }
    }
    store(txn, db, &args[1], meta, list)?;
    Ok(Reply::Array(out))
}

/// LSET and LREM: a write whose third argument must be an integer.
fn int_then_propose(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    args::int(&args[2])?;
    Ok(Outcome::Propose(args.to_vec()))
}

fn apply_lset(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let index = args::int(&args[2])?;
    let Some((meta, list)) = txn_list(txn, db, &args[1])? else {
        return Err(CmdError::Static(error::NO_SUCH_KEY));
    };
    let p = position(index, list.count).ok_or(CmdError::msg("ERR index out of range"))?;
    txn.put_element(
        db,
        &args[1],
        list.version,
        &index_key(list.head + p),
        args[3].clone(),
    );
    store(txn, db, &args[1], meta, list)?;
    Ok(Reply::OK)
}

fn linsert(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if !eq(&args[2], "before") && !eq(&args[2], "after") {
        return Err(syntax());
    }
    Ok(Outcome::Propose(args.to_vec()))
}

/// Replaces a list's elements with `items` under a fresh version.
fn rewrite(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
    meta: Meta,
    items: Vec<Bytes>,
) -> Result<(), CmdError> {
    let mut list = Collection {
        version: txn.new_version()?,
        count: 0,
        head: crate::keyspace::encoding::LIST_START,
    };
    for item in items {
        push(txn, db, key, &mut list, false, item);
    }
    store(txn, db, key, meta, list)
}

/// Every element of a list inside a write, in order.
fn txn_items(txn: &mut Txn, db: u8, key: &[u8], list: &Collection) -> Result<Vec<Bytes>, CmdError> {
    Ok(txn
        .all_elements(db, key, list.version)?
        .into_iter()
        .map(|(_, v)| v)
        .collect())
}

fn apply_linsert(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let Some((meta, list)) = txn_list(txn, db, &args[1])? else {
        return Ok(Reply::Integer(0));
    };
    let mut items = txn_items(txn, db, &args[1], &list)?;
    let Some(i) = items.iter().position(|v| *v == args[3]) else {
        return Ok(Reply::Integer(-1));
    };
    let at = if eq(&args[2], "before") { i } else { i + 1 };
    items.insert(at, args[4].clone());
    let len = items.len();
    rewrite(txn, db, &args[1], meta, items)?;
    Ok(Reply::Integer(len as i64))
}

fn apply_lrem(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let count = args::int(&args[2])?;
    let Some((meta, list)) = txn_list(txn, db, &args[1])? else {
        return Ok(Reply::Integer(0));
    };
    let mut items = txn_items(txn, db, &args[1], &list)?;
    let limit = if count == 0 {
        usize::MAX
    } else {
        count.unsigned_abs() as usize
    };
    let mut removed = 0;
    if count < 0 {
        items.reverse();
    }
    items.retain(|v| {
        let drop = removed < limit && *v == args[3];
        removed += usize::from(drop);
        !drop
    });
    if count < 0 {
        items.reverse();
    }
    if removed > 0 {
        rewrite(txn, db, &args[1], meta, items)?;
    }
    Ok(Reply::Integer(removed as i64))
}

fn ltrim(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    args::int(&args[2])?;
    args::int(&args[3])?;
    Ok(Outcome::Propose(args.to_vec()))
}

fn apply_ltrim(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let (start, end) = (args::int(&args[2])?, args::int(&args[3])?);
    let Some((meta, mut list)) = txn_list(txn, db, &args[1])? else {
        return Ok(Reply::OK);
    };
    let (from, to) = window(start, end, list.count).unwrap_or((list.count, list.count));
    let keep_end = if from >= list.count { 0 } else { to + 1 };
    for p in (0..from.min(list.count)).chain(keep_end.max(from)..list.count) {
        txn.delete_element(db, &args[1], list.version, &index_key(list.head + p));
    }
    if from >= list.count {
        list.count = 0;
    } else {
        list.head += from;
        list.count = to - from + 1;
    }
    store(txn, db, &args[1], meta, list)?;
    Ok(Reply::OK)
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len].
fn lpos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0i64);
    let mut i = 3;
    while i < args.len() {
        if i + 1 >= args.len() {
            return Err(syntax());
        }
        let value = &args[i + 1];
        if eq(&args[i], "RANK") {
            rank = args::int(value)?;
            if rank == 0 {
                return Err(CmdError::msg("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"));
            }
            if rank == i64::MIN {
                // redis-server 7.0 negates it in place, which leaves it negative and lets the
                // first match from the tail win: the same as -1.
                rank = -1;
            }
        } else if eq(&args[i], "COUNT") {
            let n = args::int(value)?;
            if n < 0 {
                return Err(CmdError::msg("ERR COUNT can't be negative"));
            }
            count = Some(n);
        } else if eq(&args[i], "MAXLEN") {
            maxlen = args::int(value)?;
            if maxlen < 0 {
                return Err(CmdError::msg("ERR MAXLEN can't be negative"));
            }
        } else {
            return Err(syntax());
        }
        i += 2;
    }
    let Some(list) = read_list(ctx, &args[1])? else {
        return reply(if count.is_some() {
            Reply::Array(Vec::new())
        } else {
            Reply::Null
        });
    };
    let mut items: Vec<(u64, Bytes)> = ctx
        .keyspace
        .all_elements(ctx.db(), &args[1], list.version)?
        .into_iter()
        .enumerate()
        .map(|(p, (_, v))| (p as u64, v))
        .collect();
    if rank < 0 {
        items.reverse();
    }
    let scan_len = if maxlen == 0 {
        items.len()
    } else {
        maxlen as usize
    };
    let wanted = match count {
        None | Some(0) => usize::MAX,
        Some(n) => n as usize,
    };
    let skip = rank.unsigned_abs() as usize - 1;
    let found: Vec<u64> = items
        .iter()
        .take(scan_len)
        .filter(|(_, v)| *v == args[2])
        .skip(skip)
        .take(if count.is_none() { 1 } else { wanted })
        .map(|(p, _)| *p)
        .collect();
    reply(match count {
        None => found
            .first()
            .map_or(Reply::Null, |p| Reply::Integer(*p as i64)),
        Some(_) => Reply::Array(
            found
                .into_iter()
                .map(|p| Reply::Integer(p as i64))
                .collect(),
        ),
    })
}

pub(super) fn side(arg: &[u8]) -> Result<bool, CmdError> {
    if eq(arg, "left") {
        Ok(true)
    } else if eq(arg, "right") {
        Ok(false)
    } else {
        Err(syntax())
    }
}

fn lmove(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    side(&args[3])?;
    side(&args[4])?;
    Ok(Outcome::Propose(args.to_vec()))
}

/// LMOVE src dst from to, and RPOPLPUSH src dst (RIGHT LEFT).
pub(super) fn apply_lmove(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let (from_left, to_left) = if eq(&args[0], "rpoplpush") || eq(&args[0], "brpoplpush") {
        (false, true)
    } else {
        (side(&args[3])?, side(&args[4])?)
    };
    let Some((meta, mut list)) = txn_list(txn, db, &args[1])? else {
        return Ok(Reply::Null);
    };
    // The destination's type is checked before anything moves.
    list_header(txn.get(db, &args[2])?.as_ref())?;
    let Some(value) = pop_one(txn, db, &args[1], &mut list, from_left)? else {
        return Ok(Reply::Null);
    };
    store(txn, db, &args[1], meta, list)?;
    let (dmeta, mut dlist) = txn_list_or_new(txn, db, &args[2])?;
    push(txn, db, &args[2], &mut dlist, to_left, value.clone());
    store(txn, db, &args[2], dmeta, dlist)?;
    Ok(Reply::Bulk(value))
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]: checks the shape at the proposer.
fn lmpop(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    parse_lmpop(args)?;
    Ok(Outcome::Propose(args.to_vec()))
}

pub(super) fn parse_lmpop(args: &[Bytes]) -> Result<collections::Mpop, CmdError> {
    collections::parse_mpop(args, side)
}

pub(super) fn apply_lmpop(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let spec = parse_lmpop(args)?;
    for key in &args[spec.keys] {
        let Some((meta, mut list)) = txn_list(txn, db, key)? else {
            continue;
        };
        let mut out = Vec::new();
        for _ in 0..spec.count.min(list.count as i64) {
            if let Some(v) = pop_one(txn, db, key, &mut list, spec.from_start)? {
                out.push(Reply::Bulk(v));
            }
        }
        store(txn, db, key, meta, list)?;
        return Ok(Reply::Array(vec![
            Reply::Bulk(key.clone()),
            Reply::Array(out),
        ]));
    }
    Ok(Reply::NullArray)
}

/// A list's elements in order, for DUMP.
pub fn dump_items(ctx: &mut Ctx, key: &[u8], meta: &Meta) -> Result<Vec<Bytes>, CmdError> {
    let list = list_header(Some(meta))?.ok_or_else(|| CmdError::Internal("no list".into()))?;
    Ok(ctx
        .keyspace
        .all_elements(ctx.db(), key, list.version)?
        .into_iter()
        .map(|(_, v)| v)
        .collect())
}

/// Stores `items` as a new list at `key` (RESTORE).
pub fn store_list(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
    items: Vec<Bytes>,
    expire_at_ms: u64,
) -> Result<(), CmdError> {
    let (meta, mut list) = txn_list_or_new(txn, db, key)?;
    for item in items {
        push(txn, db, key, &mut list, false, item);
    }
    store(
        txn,
        db,
        key,
        Meta {
            expire_at_ms,
            ..meta
        },
        list,
    )
}
