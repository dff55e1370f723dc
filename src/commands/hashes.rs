//! Hash commands: HSET and friends over element records (one per field).
//!
//! The metadata record holds the field count, so HLEN is one lookup; fields are stored in
//! byte order, so HKEYS/HVALS/HGETALL/HSCAN list them sorted (Redis lists a listpack hash in
//! insertion order and a hashtable in hash order; neither is promised). The encoding OBJECT
//! ENCODING reports follows Redis's default thresholds: `listpack` up to 128 fields of at
//! most 64 bytes, then `hashtable` for good.

use bytes::Bytes;
use rand::seq::SliceRandom;

use super::args::{self, eq};
use super::collections;
use super::error::{self, syntax, CmdError};
use super::{propose_as_sent, reply, ApplyFn, CmdResult, Ctx, Handler};
use crate::keyspace::{Elements, Encoding, Meta, Txn, ValueType};
use crate::protocol::Reply;

/// Redis's default `hash-max-listpack-entries` and `hash-max-listpack-value`.
const LISTPACK_ENTRIES_MAX: u64 = 128;
const LISTPACK_VALUE_MAX: usize = 64;
const NOT_INTEGER: &str = "ERR hash value is not an integer";
const NOT_FLOAT: &str = "ERR hash value is not a float";

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("hset", hset, Some(apply_hset)),
    ("hmset", hset, Some(apply_hset)),
    ("hsetnx", propose_as_sent, Some(apply_hsetnx)),
    ("hget", hget, None),
    ("hmget", hmget, None),
    ("hdel", propose_as_sent, Some(apply_hdel)),
    ("hexists", hexists, None),
    ("hlen", hlen, None),
    ("hstrlen", hstrlen, None),
    ("hkeys", hgetall, None),
    ("hvals", hgetall, None),
    ("hgetall", hgetall, None),
    ("hincrby", hincrby, Some(apply_hincrby)),
    ("hincrbyfloat", hincrbyfloat, Some(apply_hincrbyfloat)),
    ("hrandfield", hrandfield, None),
    ("hscan", hscan, None),
];

/// The live hash at `key` (or nothing); another type is WRONGTYPE.
fn read_hash(ctx: &mut Ctx, key: &[u8]) -> Result<Option<(Meta, u64)>, CmdError> {
    let found = collections::read(ctx, key, ValueType::Hash)?;
    Ok(found.map(|(m, h)| (m, h.version)))
}

fn field_value(ctx: &mut Ctx, key: &[u8], field: &[u8]) -> Result<Option<Bytes>, CmdError> {
    match read_hash(ctx, key)? {
        None => Ok(None),
        Some((_, version)) => Ok(ctx.keyspace.get_element(ctx.db(), key, version, field)?),
    }
}

fn hget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    reply(field_value(ctx, &args[1], &args[2])?.map_or(Reply::Null, Reply::Bulk))
}

fn hexists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    reply(Reply::Integer(
        field_value(ctx, &args[1], &args[2])?.is_some() as i64,
    ))
}

fn hstrlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    reply(Reply::Integer(
        field_value(ctx, &args[1], &args[2])?.map_or(0, |v| v.len() as i64),
    ))
}

fn hmget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let values = match read_hash(ctx, &args[1])? {
        None => vec![None; args.len() - 2],
        Some((_, version)) => {
            ctx.keyspace
                .multi_get_elements(ctx.db(), &args[1], version, &args[2..])?
        }
    };
    reply(Reply::Array(
        values
            .into_iter()
            .map(|v| v.map_or(Reply::Null, Reply::Bulk))
            .collect(),
    ))
}

fn hlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let count = read_hash(ctx, &args[1])?
        .and_then(|(m, _)| m.collection_header())
        .map_or(0, |c| c.count);
    reply(Reply::Integer(count as i64))
}

/// Every field and value of a hash (empty when it does not exist).
fn all_pairs(ctx: &mut Ctx, key: &[u8]) -> Result<Elements, CmdError> {
    match read_hash(ctx, key)? {
        None => Ok(Elements::from([])),
        Some((meta, version)) => {
            let keyspace = &ctx.keyspace;
            Ok(keyspace.collection(ctx.db(), key, meta.revision, version)?)
        }
    }
}

/// HKEYS, HVALS and HGETALL (a map in RESP3).
fn hgetall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let pairs = all_pairs(ctx, &args[1])?;
    reply(if eq(&args[0], "hkeys") {
        Reply::Array(pairs.iter().map(|(f, _)| Reply::Bulk(f.clone())).collect())
    } else if eq(&args[0], "hvals") {
        Reply::Array(pairs.iter().map(|(_, v)| Reply::Bulk(v.clone())).collect())
    } else {
        Reply::Map(
            pairs
                .iter()
                .map(|(f, v)| (Reply::Bulk(f.clone()), Reply::Bulk(v.clone())))
                .collect(),
        )
    })
}

fn hset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity(args::lower(&args[0])));
    }
    propose_as_sent(ctx, args)
}

/// The hash at `key` for a write, created empty (with a fresh version) when absent.
fn txn_hash(txn: &mut Txn, db: u8, key: &[u8], create: bool) -> Result<Option<Meta>, CmdError> {
    Ok(if create {
        Some(collections::txn_read_or_new(txn, db, key, ValueType::Hash, Encoding::Listpack)?.0)
    } else {
        collections::txn_read(txn, db, key, ValueType::Hash)?.map(|(m, _)| m)
    })
}

fn version_of(meta: &Meta) -> Result<(u64, u64), CmdError> {
    meta.collection_header()
        .map(|c| (c.version, c.count))
        .ok_or_else(|| CmdError::Internal("bad hash record".into()))
}

/// Sets fields; returns how many were new. Stores the record with its new count and
/// encoding, or deletes the key when no field is left.
fn write_fields(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
    meta: Meta,
    pairs: &[(Bytes, Bytes)],
) -> Result<u64, CmdError> {
    let (version, mut count) = version_of(&meta)?;
    let mut encoding = meta.encoding;
    let mut added = 0;
    for (field, value) in pairs {
        if txn.get_element(db, key, version, field)?.is_none() {
            added += 1;
            count += 1;
        }
        if field.len() > LISTPACK_VALUE_MAX || value.len() > LISTPACK_VALUE_MAX {
            encoding = Encoding::Hashtable;
        }
        txn.put_element(db, key, version, field, value.clone());
    }
    if count > LISTPACK_ENTRIES_MAX {
        encoding = Encoding::Hashtable;
    }
    let revision = txn.revision();
    let meta = Meta {
        encoding,
        revision,
        ..meta
    }
    .with_count(count);
    txn.put(db, key, meta)?;
    Ok(added)
}

fn apply_hset(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity(args::lower(&args[0])));
    }
    let meta = txn_hash(txn, db, &args[1], true)?.expect("created");
    let pairs: Vec<(Bytes, Bytes)> = args[2..]
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    let added = write_fields(txn, db, &args[1], meta, &pairs)?;
    Ok(if eq(&args[0], "hmset") {
        Reply::OK
    } else {
        Reply::Integer(added as i64)
    })
}

fn apply_hsetnx(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let meta = txn_hash(txn, db, &args[1], true)?.expect("created");
    let (version, _) = version_of(&meta)?;
    if txn.get_element(db, &args[1], version, &args[2])?.is_some() {
        return Ok(Reply::Integer(0));
    }
    let pair = [(args[2].clone(), args[3].clone())];
    write_fields(txn, db, &args[1], meta, &pair)?;
    Ok(Reply::Integer(1))
}

fn apply_hdel(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let Some(meta) = txn_hash(txn, db, &args[1], false)? else {
        return Ok(Reply::Integer(0));
    };
    let (version, mut count) = version_of(&meta)?;
    let mut removed = 0;
    for field in &args[2..] {
        if txn.get_element(db, &args[1], version, field)?.is_some() {
            txn.delete_element(db, &args[1], version, field);
            removed += 1;
            count -= 1;
        }
    }
    if count == 0 {
        txn.delete(db, &args[1])?;
    } else if removed > 0 {
        let revision = txn.revision();
        txn.put(db, &args[1], Meta { revision, ..meta }.with_count(count))?;
    }
    Ok(Reply::Integer(removed))
}

fn hincrby(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    args::int(&args[3])?;
    Ok(super::Outcome::Propose(args.to_vec()))
}

/// The current value of a field for an increment (None when the field is absent).
fn current_field(txn: &mut Txn, db: u8, key: &[u8]) -> Result<(Meta, u64), CmdError> {
    let meta = txn_hash(txn, db, key, true)?.expect("created");
    let (version, _) = version_of(&meta)?;
    Ok((meta, version))
}

fn apply_hincrby(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let delta = args::int(&args[3])?;
    let (meta, version) = current_field(txn, db, &args[1])?;
    let current = match txn.get_element(db, &args[1], version, &args[2])? {
        None => 0,
        Some(v) => args::int_with(&v, NOT_INTEGER)?,
    };
    let next = current
        .checked_add(delta)
        .ok_or(CmdError::Static(error::OVERFLOW))?;
    let pair = [(args[2].clone(), Bytes::from(next.to_string()))];
    write_fields(txn, db, &args[1], meta, &pair)?;
    Ok(Reply::Integer(next))
}

fn hincrbyfloat(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let delta =
        super::float80::Float80::parse(&args[3]).ok_or(CmdError::Static(error::NOT_FLOAT))?;
    if !delta.is_finite() {
        return Err(CmdError::msg("ERR value is NaN or Infinity"));
    }
    Ok(super::Outcome::Propose(args.to_vec()))
}

fn apply_hincrbyfloat(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    use super::float80::Float80;
    let delta = Float80::parse(&args[3]).ok_or(CmdError::Static(error::NOT_FLOAT))?;
    let (meta, version) = current_field(txn, db, &args[1])?;
    let current = match txn.get_element(db, &args[1], version, &args[2])? {
        None => Float80::ZERO,
        Some(v) => Float80::parse(&v).ok_or(CmdError::Static(NOT_FLOAT))?,
    };
    let sum = current.add(&delta);
    if !sum.is_finite() {
        return Err(CmdError::Static(error::NAN_OR_INFINITY));
    }
    let text = Bytes::from(sum.to_human_string());
    let pair = [(args[2].clone(), text.clone())];
    write_fields(txn, db, &args[1], meta, &pair)?;
    Ok(Reply::Bulk(text))
}

/// HRANDFIELD key [count [WITHVALUES]]: the random choice is made here, at the reader.
fn hrandfield(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 4 || (args.len() == 4 && !eq(&args[3], "WITHVALUES")) {
        return Err(syntax());
    }
    let count = collections::parse_random_count(args.get(2), args.len() == 4)?;
    let with_values = args.len() == 4;
    let pairs = all_pairs(ctx, &args[1])?;
    let Some(count) = count else {
        return reply(
            pairs
                .choose(&mut rand::thread_rng())
                .map_or(Reply::Null, |(f, _)| Reply::Bulk(f.clone())),
        );
    };
    let chosen = collections::random_choice(&pairs, count);
    let resp3 = ctx.session.resp3;
    let items = chosen
        .into_iter()
        .flat_map(|(f, v)| match (with_values, resp3) {
            (false, _) => vec![Reply::Bulk(f.clone())],
            (true, false) => vec![Reply::Bulk(f.clone()), Reply::Bulk(v.clone())],
            (true, true) => vec![Reply::Array(vec![
                Reply::Bulk(f.clone()),
                Reply::Bulk(v.clone()),
            ])],
        })
        .collect();
    reply(Reply::Array(items))
}

/// HSCAN key cursor [MATCH pattern] [COUNT count].
fn hscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    collections::scan(
        ctx,
        args,
        ValueType::Hash,
        Encoding::Listpack,
        Some(|v: &Bytes| Reply::Bulk(v.clone())),
        None,
    )
}

/// The fields of a hash in order, for DUMP.
pub fn dump_pairs(ctx: &mut Ctx, key: &[u8], meta: &Meta) -> Result<Vec<(Bytes, Bytes)>, CmdError> {
    let (version, _) = version_of(meta)?;
    Ok(ctx.keyspace.all_elements(ctx.db(), key, version)?)
}

/// Stores `pairs` as a new hash at `key` (RESTORE).
pub fn store_hash(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
    pairs: &[(Bytes, Bytes)],
    expire_at_ms: u64,
) -> Result<(), CmdError> {
    let meta = txn_hash(txn, db, key, true)?.expect("created");
    write_fields(txn, db, key, meta, pairs)?;
    if expire_at_ms != 0 {
        if let Some(m) = txn.get(db, key)? {
            txn.put(db, key, Meta { expire_at_ms, ..m })?;
        }
    }
    Ok(())
}
