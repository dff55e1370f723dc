//! String commands: GET SET and friends, counters, ranges, LCS.
//!
//! Writes are normalised at the proposer (relative expiry → `PXAT` absolute milliseconds) and
//! applied from the normalised argv; apply never reads the clock.

use bytes::{Bytes, BytesMut};

use super::args::{self, eq};
use super::error::{self, syntax, CmdError};
use super::{propose_as_sent, reply, ApplyFn, CmdResult, Ctx, Handler, Outcome};
use crate::keyspace::{Encoding, Meta, Txn, ValueType};
use crate::protocol::Reply;

/// Largest string value (Redis's 512 MiB); fixed so apply stays deterministic.
pub const STRING_BYTES_MAX: usize = 512 * 1024 * 1024;

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("get", get, None),
    ("set", set, Some(apply_set)),
    ("setnx", propose_as_sent, Some(apply_setnx)),
    ("setex", setex, Some(apply_set)),
    ("psetex", setex, Some(apply_set)),
    ("mget", mget, None),
    ("mset", mset, Some(apply_mset)),
    ("msetnx", mset, Some(apply_mset)),
    ("getset", propose_as_sent, Some(apply_getset)),
    ("getdel", propose_as_sent, Some(apply_getdel)),
    ("getex", getex, Some(apply_getex)),
    ("append", propose_as_sent, Some(apply_append)),
    ("strlen", strlen, None),
    ("incr", incr, Some(apply_incr)),
    ("decr", incr, Some(apply_incr)),
    ("incrby", incr, Some(apply_incr)),
    ("decrby", incr, Some(apply_incr)),
    // Redis checks the key's type before the increment: apply does both, in that order.
    ("incrbyfloat", propose_as_sent, Some(apply_incrbyfloat)),
    ("getrange", getrange, None),
    ("substr", getrange, None),
    ("setrange", setrange, Some(apply_setrange)),
    ("lcs", lcs, None),
];

/// Reads a key that must hold a string (or nothing).
pub fn read_string(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Meta>, CmdError> {
    let meta = ctx.lookup(key)?;
    ctx.shared.stats.hit(meta.is_some());
    match meta {
        Some(m) if m.value_type != ValueType::String => Err(error::wrongtype()),
        other => Ok(other),
    }
}

/// Reads a key inside a write that must hold a string (or nothing).
pub fn txn_string(txn: &mut Txn, db: u8, key: &[u8]) -> Result<Option<Meta>, CmdError> {
    match txn.get(db, key)? {
        Some(m) if m.value_type != ValueType::String => Err(error::wrongtype()),
        other => Ok(other),
    }
}

fn bulk_or_null(meta: Option<Meta>) -> Reply {
    meta.map_or(Reply::Null, |m| Reply::Bulk(m.value))
}

fn get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    reply(bulk_or_null(read_string(ctx, &args[1])?))
}

fn strlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    reply(Reply::Integer(
        read_string(ctx, &args[1])?.map_or(0, |m| m.value.len() as i64),
    ))
}

fn mget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let metas = ctx.lookup_many(&args[1..])?;
    let items = metas
        .into_iter()
        .map(|m| {
            ctx.shared.stats.hit(m.is_some());
            match m {
                Some(m) if m.value_type == ValueType::String => Reply::Bulk(m.value),
                _ => Reply::Null,
            }
        })
        .collect();
    reply(Reply::Array(items))
}

/// When a write sets a key's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Clear any expiry (plain SET).
    Clear,
    /// Keep the current expiry (KEEPTTL).
    Keep,
    /// Absolute Unix milliseconds.
    At(u64),
}

/// Parses an expiry option value (`EX 10`, `PXAT …`) into absolute milliseconds.
/// `command` names the command in the error text.
pub fn expiry_at(
    option: &[u8],
    value: &[u8],
    now_ms: u64,
    command: &'static str,
) -> Result<u64, CmdError> {
    let n = args::int(value)?;
    let invalid = CmdError::InvalidExpire(command);
    if n <= 0 {
        return Err(invalid);
    }
    let (seconds, relative) = match option.to_ascii_uppercase().as_slice() {
        b"EX" => (true, true),
        b"PX" => (false, true),
        b"EXAT" => (true, false),
        _ => (false, false),
    };
    let ms = if seconds {
        n.checked_mul(1000).ok_or(invalid.clone())?
    } else {
        n
    };
    let at = if relative {
        ms.checked_add(now_ms as i64).ok_or(invalid)?
    } else {
        ms
    };
    Ok(at as u64)
}

fn is_expiry_option(arg: &[u8]) -> bool {
    ["EX", "PX", "EXAT", "PXAT"].iter().any(|o| eq(arg, o))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    Always,
    IfMissing,
    IfExists,
}

struct SetOptions {
    condition: Condition,
    get: bool,
    expiry: Expiry,
}

fn parse_set(args: &[Bytes], now_ms: u64) -> Result<SetOptions, CmdError> {
    let mut opts = SetOptions {
        condition: Condition::Always,
        get: false,
        expiry: Expiry::Clear,
    };
    let mut expiry_given = false;
    let mut timed = None;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        if eq(a, "NX") && opts.condition != Condition::IfExists {
            opts.condition = Condition::IfMissing;
        } else if eq(a, "XX") && opts.condition != Condition::IfMissing {
            opts.condition = Condition::IfExists;
        } else if eq(a, "GET") {
            opts.get = true;
        } else if eq(a, "KEEPTTL") && !expiry_given {
            opts.expiry = Expiry::Keep;
            expiry_given = true;
        } else if is_expiry_option(a) && !expiry_given && i + 1 < args.len() {
            timed = Some((a, &args[i + 1]));
            expiry_given = true;
            i += 1;
        } else {
            return Err(syntax());
        }
        i += 1;
    }
    // As Redis: every option's syntax first, then the expiry's value.
    if let Some((option, value)) = timed {
        opts.expiry = Expiry::At(expiry_at(option, value, now_ms, "set")?);
    }
    Ok(opts)
}

fn set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let opts = parse_set(args, ctx.now_ms)?;
    let mut normalised = vec![args[0].clone(), args[1].clone(), args[2].clone()];
    match opts.condition {
        Condition::IfMissing => normalised.push(Bytes::from_static(b"NX")),
        Condition::IfExists => normalised.push(Bytes::from_static(b"XX")),
        Condition::Always => {}
    }
    if opts.get {
        normalised.push(Bytes::from_static(b"GET"));
    }
    match opts.expiry {
        Expiry::Keep => normalised.push(Bytes::from_static(b"KEEPTTL")),
        Expiry::At(ms) => {
            normalised.push(Bytes::from_static(b"PXAT"));
            normalised.push(Bytes::from(ms.to_string()));
        }
        Expiry::Clear => {}
    }
    Ok(Outcome::Propose(normalised))
}

/// SETEX key seconds value / PSETEX key ms value → SET key value PXAT abs.
fn setex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let psetex = eq(&args[0], "psetex");
    let (option, name) = if psetex {
        (&b"PX"[..], "psetex")
    } else {
        (&b"EX"[..], "setex")
    };
    let at = expiry_at(option, &args[2], ctx.now_ms, name)?;
    Ok(Outcome::Propose(vec![
        Bytes::from_static(b"SET"),
        args[1].clone(),
        args[3].clone(),
        Bytes::from_static(b"PXAT"),
        Bytes::from(at.to_string()),
    ]))
}

/// Stores a string as SET does, resolving the expiry against the previous value.
pub fn store_string(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
    value: Bytes,
    expiry: Expiry,
    old: Option<&Meta>,
) -> Result<(), CmdError> {
    let encoding = Encoding::for_value(&value);
    store_encoded(txn, db, key, value, encoding, expiry, old)
}

/// Stores a string with the encoding Redis would give it after this command.
pub(super) fn store_encoded(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
    value: Bytes,
    encoding: Encoding,
    expiry: Expiry,
    old: Option<&Meta>,
) -> Result<(), CmdError> {
    let expire_at_ms = match expiry {
        Expiry::Clear => 0,
        Expiry::Keep => old.map_or(0, |m| m.expire_at_ms),
        Expiry::At(ms) => ms,
    };
    let meta = Meta::string(value, txn.revision(), expire_at_ms).with_encoding(encoding);
    txn.put(db, key, meta)?;
    Ok(())
}

fn apply_set(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let opts = parse_set(args, txn.now_ms())?;
    let old = if opts.get {
        txn_string(txn, db, &args[1])?
    } else {
        txn.get(db, &args[1])?
    };
    let proceed = match opts.condition {
        Condition::Always => true,
        Condition::IfMissing => old.is_none(),
        Condition::IfExists => old.is_some(),
    };
    if proceed {
        store_string(
            txn,
            db,
            &args[1],
            args[2].clone(),
            opts.expiry,
            old.as_ref(),
        )?;
    }
    Ok(match (opts.get, proceed) {
        (true, _) => bulk_or_null(old),
        (false, true) => Reply::OK,
        (false, false) => Reply::Null,
    })
}

fn apply_setnx(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    if txn.exists(db, &args[1])? {
        return Ok(Reply::Integer(0));
    }
    store_string(txn, db, &args[1], args[2].clone(), Expiry::Clear, None)?;
    Ok(Reply::Integer(1))
}

fn mset(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity(args::lower(&args[0])));
    }
    Ok(Outcome::Propose(args.to_vec()))
}

fn apply_mset(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity(args::lower(&args[0])));
    }
    let nx = eq(&args[0], "msetnx");
    if nx {
        for pair in args[1..].chunks(2) {
            if txn.exists(db, &pair[0])? {
                return Ok(Reply::Integer(0));
            }
        }
    }
    for pair in args[1..].chunks(2) {
        store_string(txn, db, &pair[0], pair[1].clone(), Expiry::Clear, None)?;
    }
    Ok(if nx { Reply::Integer(1) } else { Reply::OK })
}

fn apply_getset(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let old = txn_string(txn, db, &args[1])?;
    store_string(txn, db, &args[1], args[2].clone(), Expiry::Clear, None)?;
    Ok(bulk_or_null(old))
}

fn apply_getdel(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let old = txn_string(txn, db, &args[1])?;
    if old.is_some() {
        txn.delete(db, &args[1])?;
    }
    Ok(bulk_or_null(old))
}

/// GETEX's expiry change: `None` leaves the key as it is.
/// GETEX's option, checked for syntax only: PERSIST (no value), or an expiry option and
/// its value.
fn getex_option(args: &[Bytes]) -> Result<Option<(&Bytes, Option<&Bytes>)>, CmdError> {
    let mut option = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if eq(a, "PERSIST") && option.is_none() {
            option = Some((a, None));
        } else if is_expiry_option(a) && option.is_none() && i + 1 < args.len() {
            option = Some((a, Some(&args[i + 1])));
            i += 1;
        } else {
            return Err(syntax());
        }
        i += 1;
    }
    Ok(option)
}

fn parse_getex(args: &[Bytes], now_ms: u64) -> Result<Option<Expiry>, CmdError> {
    Ok(match getex_option(args)? {
        None => None,
        Some((_, None)) => Some(Expiry::Clear),
        Some((option, Some(value))) => Some(Expiry::At(expiry_at(option, value, now_ms, "getex")?)),
    })
}

/// GETEX always goes through the log (even without options), so that a pipelined GETEX
/// after a SET of the same key sees it.
fn getex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut normalised = vec![args[0].clone(), args[1].clone()];
    getex_option(args)?;
    let Ok(change) = parse_getex(args, ctx.now_ms) else {
        // A bad expiry value: apply answers it, after a missing key's nil or WRONGTYPE
        // (Redis's order).
        return Ok(Outcome::Propose(args.to_vec()));
    };
    match change {
        None => {}
        Some(Expiry::At(ms)) => {
            normalised.push(Bytes::from_static(b"PXAT"));
            normalised.push(Bytes::from(ms.to_string()));
        }
        Some(_) => normalised.push(Bytes::from_static(b"PERSIST")),
    }
    Ok(Outcome::Propose(normalised))
}

fn apply_getex(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    getex_option(args)?;
    let Some(old) = txn_string(txn, db, &args[1])? else {
        return Ok(Reply::Null);
    };
    let change = parse_getex(args, txn.now_ms())?;
    match change {
        Some(Expiry::At(ms)) if ms <= txn.now_ms() => {
            txn.delete(db, &args[1])?;
        }
        Some(Expiry::At(ms)) => {
            let meta = Meta {
                expire_at_ms: ms,
                revision: txn.revision(),
                ..old.clone()
            };
            txn.put(db, &args[1], meta)?;
        }
        Some(_) if old.expire_at_ms != 0 => {
            let meta = Meta {
                expire_at_ms: 0,
                revision: txn.revision(),
                ..old.clone()
            };
            txn.put(db, &args[1], meta)?;
        }
        _ => {}
    }
    Ok(Reply::Bulk(old.value))
}

fn apply_append(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let old = txn_string(txn, db, &args[1])?;
    let old_len = old.as_ref().map_or(0, |m| m.value.len());
    if old_len + args[2].len() > STRING_BYTES_MAX {
        return Err(CmdError::Static(error::STRING_TOO_LONG));
    }
    let mut value = BytesMut::with_capacity(old_len + args[2].len());
    if let Some(m) = &old {
        value.extend_from_slice(&m.value);
    }
    value.extend_from_slice(&args[2]);
    let len = value.len() as i64;
    let value = value.freeze();
    // Appending to an existing string makes it raw; a new key is encoded as SET would.
    let encoding = if old.is_some() {
        Encoding::Raw
    } else {
        Encoding::for_value(&value)
    };
    store_encoded(
        txn,
        db,
        &args[1],
        value,
        encoding,
        Expiry::Keep,
        old.as_ref(),
    )?;
    Ok(Reply::Integer(len))
}

/// INCR/DECR/INCRBY/DECRBY: the delta is checked at the proposer.
fn incr(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() == 3 {
        let by = args::int(&args[2])?;
        if eq(&args[0], "decrby") && by == i64::MIN {
            return Err(CmdError::msg("ERR decrement would overflow"));
        }
    }
    Ok(Outcome::Propose(args.to_vec()))
}

fn apply_incr(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let delta = if eq(&args[0], "incr") {
        1
    } else if eq(&args[0], "decr") {
        -1
    } else if eq(&args[0], "incrby") {
        args::int(&args[2])?
    } else {
        let by = args::int(&args[2])?;
        by.checked_neg()
            .ok_or(CmdError::msg("ERR decrement would overflow"))?
    };
    let old = txn_string(txn, db, &args[1])?;
    let current = match &old {
        None => 0,
        Some(m) => args::int(&m.value)?,
    };
    let next = current
        .checked_add(delta)
        .ok_or(CmdError::Static(error::OVERFLOW))?;
    let value = Bytes::from(next.to_string());
    store_encoded(
        txn,
        db,
        &args[1],
        value,
        Encoding::Int,
        Expiry::Keep,
        old.as_ref(),
    )?;
    Ok(Reply::Integer(next))
}

fn apply_incrbyfloat(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let old = txn_string(txn, db, &args[1])?;
    let current = match &old {
        None => super::float80::Float80::ZERO,
        Some(m) => {
            super::float80::Float80::parse(&m.value).ok_or(CmdError::Static(error::NOT_FLOAT))?
        }
    };
    let delta =
        super::float80::Float80::parse(&args[2]).ok_or(CmdError::Static(error::NOT_FLOAT))?;
    let sum = current.add(&delta);
    if !sum.is_finite() {
        return Err(CmdError::Static(error::NAN_OR_INFINITY));
    }
    let text = Bytes::from(sum.to_human_string());
    let encoding = Encoding::by_length(&text);
    store_encoded(
        txn,
        db,
        &args[1],
        text.clone(),
        encoding,
        Expiry::Keep,
        old.as_ref(),
    )?;
    Ok(Reply::Bulk(text))
}

/// Redis's GETRANGE index arithmetic; `None` is the empty result.
pub fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let (mut start, mut end) = (start, end);
    if start < 0 && end < 0 && start > end {
        return None;
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize))
}

fn getrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = args::int(&args[2])?;
    let end = args::int(&args[3])?;
    let value = read_string(ctx, &args[1])?
        .map(|m| m.value)
        .unwrap_or_default();
    Ok(match clamp_range(start, end, value.len()) {
        Some((s, e)) => Reply::Bulk(value.slice(s..=e)),
        None => Reply::bulk(Bytes::new()),
    }
    .into())
}

fn setrange(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let offset = args::int(&args[2])?;
    if offset < 0 {
        return Err(CmdError::Static(error::OFFSET_OUT_OF_RANGE));
    }
    if !args[3].is_empty() && offset as u64 + args[3].len() as u64 > STRING_BYTES_MAX as u64 {
        return Err(CmdError::Static(error::STRING_TOO_LONG));
    }
    Ok(Outcome::Propose(args.to_vec()))
}

fn apply_setrange(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let offset = args::int(&args[2])? as usize;
    let patch = &args[3];
    let old = txn_string(txn, db, &args[1])?;
    let old_value = old.as_ref().map(|m| m.value.clone()).unwrap_or_default();
    if patch.is_empty() {
        return Ok(Reply::Integer(old_value.len() as i64));
    }
    let mut value = BytesMut::from(&old_value[..]);
    let needed = offset + patch.len();
    if value.len() < needed {
        value.resize(needed, 0);
    }
    value[offset..needed].copy_from_slice(patch);
    let len = value.len() as i64;
    let value = value.freeze();
    store_encoded(
        txn,
        db,
        &args[1],
        value,
        Encoding::Raw,
        Expiry::Keep,
        old.as_ref(),
    )?;
    Ok(Reply::Integer(len))
}

fn lcs(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut opts = super::lcs::LcsOptions::default();
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        if eq(a, "IDX") {
            opts.idx = true;
        } else if eq(a, "LEN") {
            opts.len = true;
        } else if eq(a, "WITHMATCHLEN") {
            opts.with_match_len = true;
        } else if eq(a, "MINMATCHLEN") && i + 1 < args.len() {
            opts.min_match_len = args::int(&args[i + 1])?.max(0) as usize;
            i += 1;
        } else {
            return Err(syntax());
        }
        i += 1;
    }
    let a = ctx.lookup(&args[1])?;
    let b = ctx.lookup(&args[2])?;
    let not_string = |m: &Option<Meta>| {
        m.as_ref()
            .is_some_and(|m| m.value_type != ValueType::String)
    };
    if not_string(&a) || not_string(&b) {
        return Err(CmdError::msg(
            "ERR The specified keys must contain string values",
        ));
    }
    if opts.idx && opts.len {
        return Err(CmdError::msg(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    let a = a.map(|m| m.value).unwrap_or_default();
    let b = b.map(|m| m.value).unwrap_or_default();
    reply(super::lcs::lcs_reply(&a, &b, &opts)?)
}
