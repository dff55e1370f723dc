//! Set commands over element records (one per member, empty value).
//!
//! Members are listed in byte order. OBJECT ENCODING follows redis-server 7.0: `intset`
//! while every member is an integer and there are at most 512, then `hashtable` for good.
//! SPOP's random choice is made at the proposer as a seed carried in the entry; apply draws
//! from the members in order with that seed, so every replica pops the same members.

use bytes::Bytes;
use rand::seq::SliceRandom;
use rand::Rng;

use super::args::{self, eq};
use super::collections;
use super::error::{syntax, CmdError};
use super::{propose_as_sent, reply, ApplyFn, CmdResult, Ctx, Handler, Outcome};
use crate::keyspace::{Collection, Encoding, Meta, Txn, ValueType};
use crate::protocol::Reply;

/// Redis's default `set-max-intset-entries`.
const INTSET_ENTRIES_MAX: u64 = 512;
const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("sadd", propose_as_sent, Some(apply_sadd)),
    ("srem", propose_as_sent, Some(apply_srem)),
    ("scard", scard, None),
    ("sismember", sismember, None),
    ("smismember", smismember, None),
    ("smembers", smembers, None),
    ("srandmember", srandmember, None),
    ("spop", spop, Some(apply_spop)),
    ("smove", propose_as_sent, Some(apply_smove)),
    ("sinter", combine, None),
    ("sunion", combine, None),
    ("sdiff", combine, None),
    ("sintercard", sintercard, None),
    ("sinterstore", propose_as_sent, Some(apply_store)),
    ("sunionstore", propose_as_sent, Some(apply_store)),
    ("sdiffstore", propose_as_sent, Some(apply_store)),
    ("sscan", sscan, None),
];

fn set_header(meta: Option<&Meta>) -> Result<Option<Collection>, CmdError> {
    collections::header(meta, ValueType::Set)
}

/// The live set at `key` (or nothing); another type is WRONGTYPE.
fn read_set(ctx: &mut Ctx, key: &[u8]) -> Result<Option<(Meta, Collection)>, CmdError> {
    collections::read(ctx, key, ValueType::Set)
}

/// A set's members, read under its metadata `meta` (from the collection cache if there).
fn members(
    ctx: &mut Ctx,
    key: &[u8],
    meta: &Meta,
    set: &Collection,
) -> Result<Vec<Bytes>, CmdError> {
    let all = ctx
        .keyspace
        .collection(ctx.db(), key, meta.revision, set.version)?;
    Ok(all.iter().map(|(m, _)| m.clone()).collect())
}

/// A reply listing members: an array in RESP2, a set in RESP3.
fn member_set(items: Vec<Bytes>) -> Reply {
    Reply::Set(items.into_iter().map(Reply::Bulk).collect())
}

fn scard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    reply(Reply::Integer(
        read_set(ctx, &args[1])?.map_or(0, |(_, s)| s.count as i64),
    ))
}

fn is_member(ctx: &mut Ctx, key: &[u8], set: &Collection, member: &[u8]) -> Result<bool, CmdError> {
    Ok(ctx
        .keyspace
        .get_element(ctx.db(), key, set.version, member)?
        .is_some())
}

fn sismember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let found = match read_set(ctx, &args[1])? {
        None => false,
        Some((_, set)) => is_member(ctx, &args[1], &set, &args[2])?,
    };
    reply(Reply::Integer(found as i64))
}

fn smismember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let found = match read_set(ctx, &args[1])? {
        None => vec![None; args.len() - 2],
        Some((_, set)) => {
            ctx.keyspace
                .multi_get_elements(ctx.db(), &args[1], set.version, &args[2..])?
        }
    };
    reply(Reply::Array(
        found
            .into_iter()
            .map(|f| Reply::Integer(f.is_some() as i64))
            .collect(),
    ))
}

fn smembers(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let items = match read_set(ctx, &args[1])? {
        None => Vec::new(),
        Some((meta, set)) => members(ctx, &args[1], &meta, &set)?,
    };
    reply(member_set(items))
}

/// SRANDMEMBER key [count]: a read, so the random choice is made here.
fn srandmember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(syntax());
    }
    let count = collections::parse_random_count(args.get(2), false)?;
    let items = match read_set(ctx, &args[1])? {
        None => Vec::new(),
        Some((meta, set)) => members(ctx, &args[1], &meta, &set)?,
    };
    let Some(count) = count else {
        return reply(
            items
                .choose(&mut rand::thread_rng())
                .cloned()
                .map_or(Reply::Null, Reply::Bulk),
        );
    };
    let chosen = collections::random_choice(&items, count);
    reply(Reply::Array(
        chosen.into_iter().cloned().map(Reply::Bulk).collect(),
    ))
}

/// Whether Redis would keep `member` in an intset.
fn is_int(member: &[u8]) -> bool {
    member.len() <= 20
        && crate::protocol::decode::parse_i64(member)
            .is_some_and(|n| n.to_string().as_bytes() == member)
}

fn txn_set_or_new(txn: &mut Txn, db: u8, key: &[u8]) -> Result<(Meta, Collection), CmdError> {
    collections::txn_read_or_new(txn, db, key, ValueType::Set, Encoding::Intset)
}

fn txn_set(txn: &mut Txn, db: u8, key: &[u8]) -> Result<Option<(Meta, Collection)>, CmdError> {
    collections::txn_read(txn, db, key, ValueType::Set)
}

/// Adds members; returns how many were new.
fn add(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
    meta: &mut Meta,
    set: &mut Collection,
    new: &[Bytes],
) -> Result<u64, CmdError> {
    let mut added = 0;
    for member in new {
        if txn.get_element(db, key, set.version, member)?.is_none() {
            txn.put_element(db, key, set.version, member, Bytes::new());
            set.count += 1;
            added += 1;
        }
        if !is_int(member) {
            meta.encoding = Encoding::Hashtable;
        }
    }
    if set.count > INTSET_ENTRIES_MAX {
        meta.encoding = Encoding::Hashtable;
    }
    Ok(added)
}

use collections::store;

fn apply_sadd(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let (mut meta, mut set) = txn_set_or_new(txn, db, &args[1])?;
    let added = add(txn, db, &args[1], &mut meta, &mut set, &args[2..])?;
    store(txn, db, &args[1], meta, set)?;
    Ok(Reply::Integer(added as i64))
}

fn remove(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
    set: &mut Collection,
    member: &[u8],
) -> Result<bool, CmdError> {
    if txn.get_element(db, key, set.version, member)?.is_none() {
        return Ok(false);
    }
    txn.delete_element(db, key, set.version, member);
    set.count -= 1;
    Ok(true)
}

fn apply_srem(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let Some((meta, mut set)) = txn_set(txn, db, &args[1])? else {
        return Ok(Reply::Integer(0));
    };
    let mut removed = 0;
    for member in &args[2..] {
        removed += remove(txn, db, &args[1], &mut set, member)? as i64;
    }
    if removed > 0 {
        store(txn, db, &args[1], meta, set)?;
    }
    Ok(Reply::Integer(removed))
}

/// SPOP key [count] → `SPOP key count|"" seed`: the seed is the proposer's random choice.
fn spop(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(syntax());
    }
    if let Some(c) = args.get(2) {
        if args::int_with(c, NOT_POSITIVE)? < 0 {
            return Err(CmdError::Static(NOT_POSITIVE));
        }
    }
    let seed: u64 = rand::thread_rng().gen();
    Ok(Outcome::Propose(vec![
        args[0].clone(),
        args[1].clone(),
        args.get(2).cloned().unwrap_or_default(),
        Bytes::from(seed.to_string()),
    ]))
}

/// A small deterministic generator (SplitMix64) for SPOP at apply.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

fn apply_spop(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    // Proposed as `SPOP key count-or-empty seed`.
    let count = match args.get(2) {
        None => return Err(CmdError::WrongArity("spop".into())),
        Some(c) if c.is_empty() => None,
        Some(c) => Some(args::int(c)?),
    };
    let seed: u64 = std::str::from_utf8(args.get(3).map_or(&b""[..], |s| &s[..]))
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let Some((meta, mut set)) = txn_set(txn, db, &args[1])? else {
        return Ok(match count {
            None => Reply::Null,
            Some(_) => Reply::Set(Vec::new()),
        });
    };
    let mut items: Vec<Bytes> = txn
        .all_elements(db, &args[1], set.version)?
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    let n = count.map_or(1, |c| (c as usize).min(items.len()));
    let mut rng = SplitMix(seed);
    let mut popped = Vec::with_capacity(n);
    for i in 0..n {
        let j = i + rng.below(items.len() - i);
        items.swap(i, j);
        popped.push(items[i].clone());
    }
    for member in &popped {
        remove(txn, db, &args[1], &mut set, member)?;
    }
    store(txn, db, &args[1], meta, set)?;
    Ok(match count {
        None => popped.pop().map_or(Reply::Null, Reply::Bulk),
        Some(_) => member_set(popped),
    })
}

fn apply_smove(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    // As Redis: a missing source first, then both types, before anything moves.
    let Some((meta, mut set)) = txn_set(txn, db, src)? else {
        return Ok(Reply::Integer(0));
    };
    let dst_meta = txn.get(db, dst)?;
    set_header(dst_meta.as_ref())?;
    if src == dst {
        let present = txn.get_element(db, src, set.version, member)?.is_some();
        return Ok(Reply::Integer(present as i64));
    }
    if !remove(txn, db, src, &mut set, member)? {
        return Ok(Reply::Integer(0));
    }
    store(txn, db, src, meta, set)?;
    let (mut dmeta, mut dset) = txn_set_or_new(txn, db, dst)?;
    add(
        txn,
        db,
        dst,
        &mut dmeta,
        &mut dset,
        std::slice::from_ref(member),
    )?;
    store(txn, db, dst, dmeta, dset)?;
    Ok(Reply::Integer(1))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Inter,
    Union,
    Diff,
}

fn op_of(name: &[u8]) -> Op {
    let name = args::lower(name);
    if name.starts_with("sinter") {
        Op::Inter
    } else if name.starts_with("sunion") {
        Op::Union
    } else {
        Op::Diff
    }
}

/// Combines the member lists of `sets` (None = missing key) as Redis does.
fn combine_members(op: Op, sets: Vec<Option<Vec<Bytes>>>) -> Vec<Bytes> {
    use std::collections::BTreeSet;
    let mut iter = sets.into_iter();
    let first: BTreeSet<Bytes> = iter
        .next()
        .flatten()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let out = iter.fold(first, |acc, next| {
        let next: BTreeSet<Bytes> = next.unwrap_or_default().into_iter().collect();
        match op {
            Op::Inter => acc.intersection(&next).cloned().collect(),
            Op::Union => acc.union(&next).cloned().collect(),
            Op::Diff => acc.difference(&next).cloned().collect(),
        }
    });
    out.into_iter().collect()
}

/// The member lists of `keys` (None = missing), every key type-checked first as Redis does.
fn read_sets(ctx: &mut Ctx, keys: &[Bytes]) -> Result<Vec<Option<Vec<Bytes>>>, CmdError> {
    let mut found = Vec::with_capacity(keys.len());
    for key in keys {
        found.push(read_set(ctx, key)?);
    }
    keys.iter()
        .zip(found)
        .map(|(key, set)| {
            set.map(|(meta, set)| members(ctx, key, &meta, &set))
                .transpose()
        })
        .collect()
}

/// SINTER, SUNION, SDIFF.
fn combine(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let op = op_of(&args[0]);
    let items = combine_members(op, read_sets(ctx, &args[1..])?);
    reply(member_set(items))
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit].
fn sintercard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    const NUMKEYS: &str = "ERR numkeys should be greater than 0";
    let numkeys = args::int_with(&args[1], NUMKEYS)?;
    if numkeys <= 0 {
        return Err(CmdError::Static(NUMKEYS));
    }
    let end = 2usize
        .checked_add(numkeys as usize)
        .filter(|&e| e <= args.len())
        .ok_or(CmdError::msg(
            "ERR Number of keys can't be greater than number of args",
        ))?;
    let mut limit = 0i64;
    let mut i = end;
    while i < args.len() {
        if eq(&args[i], "LIMIT") && i + 1 < args.len() {
            limit = args::int(&args[i + 1])?;
            if limit < 0 {
                return Err(CmdError::msg("ERR LIMIT can't be negative"));
            }
            i += 2;
        } else {
            return Err(syntax());
        }
    }
    let count = combine_members(Op::Inter, read_sets(ctx, &args[2..end])?).len();
    let count = if limit > 0 {
        count.min(limit as usize)
    } else {
        count
    };
    reply(Reply::Integer(count as i64))
}

/// SINTERSTORE, SUNIONSTORE, SDIFFSTORE destination key [key ...].
fn apply_store(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let op = op_of(&args[0]);
    let mut found = Vec::with_capacity(args.len() - 2);
    for key in &args[2..] {
        found.push(txn_set(txn, db, key)?);
    }
    let mut sets = Vec::with_capacity(found.len());
    for (key, set) in args[2..].iter().zip(found) {
        sets.push(match set {
            None => None,
            Some((_, set)) => Some(
                txn.all_elements(db, key, set.version)?
                    .into_iter()
                    .map(|(m, _)| m)
                    .collect(),
            ),
        });
    }
    let items = combine_members(op, sets);
    txn.delete(db, &args[1])?;
    if items.is_empty() {
        return Ok(Reply::Integer(0));
    }
    let (mut meta, mut set) = txn_set_or_new(txn, db, &args[1])?;
    add(txn, db, &args[1], &mut meta, &mut set, &items)?;
    let len = set.count;
    store(txn, db, &args[1], meta, set)?;
    Ok(Reply::Integer(len as i64))
}

/// SSCAN key cursor [MATCH pattern] [COUNT count].
fn sscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    collections::scan(ctx, args, ValueType::Set, Encoding::Intset, None, None)
}

/// A set's members, for DUMP.
pub fn dump_members(ctx: &mut Ctx, key: &[u8], meta: &Meta) -> Result<Vec<Bytes>, CmdError> {
    let set = set_header(Some(meta))?.ok_or_else(|| CmdError::Internal("no set".into()))?;
    members(ctx, key, meta, &set)
}

/// Stores `items` as a new set at `key` (RESTORE).
pub fn store_set(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
    items: &[Bytes],
    expire_at_ms: u64,
) -> Result<(), CmdError> {
    let (mut meta, mut set) = txn_set_or_new(txn, db, key)?;
    add(txn, db, key, &mut meta, &mut set, items)?;
    store(
        txn,
        db,
        key,
        Meta {
            expire_at_ms,
            ..meta
        },
        set,
    )
}
