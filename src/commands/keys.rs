//! Generic key commands: existence, deletion, renaming, expiry, iteration, DUMP/RESTORE,
//! OBJECT.

use bytes::Bytes;

use super::args::{self, eq};
use super::dump::{self, DumpValue};
use super::error::{self, syntax, CmdError};
use super::{propose_as_sent, reply, ApplyFn, CmdResult, Ctx, Handler, Outcome};
use crate::cluster::{Slot, SLOT_COUNT};
use crate::glob::glob_match;
use crate::keyspace::ValueType;
use crate::keyspace::{Meta, Txn};
use crate::protocol::Reply;

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("del", propose_as_sent, Some(apply_del)),
    ("unlink", propose_as_sent, Some(apply_del)),
    ("exists", exists, None),
    ("touch", exists, None),
    ("type", type_of, None),
    ("rename", propose_as_sent, Some(apply_rename)),
    ("renamenx", propose_as_sent, Some(apply_rename)),
    ("keys", keys, None),
    ("scan", scan, None),
    ("randomkey", randomkey, None),
    ("dbsize", dbsize, None),
    ("expire", expire, Some(apply_pexpireat)),
    ("pexpire", expire, Some(apply_pexpireat)),
    ("expireat", expire, Some(apply_pexpireat)),
    ("pexpireat", expire, Some(apply_pexpireat)),
    ("ttl", ttl, None),
    ("pttl", ttl, None),
    ("expiretime", ttl, None),
    ("pexpiretime", ttl, None),
    ("persist", propose_as_sent, Some(apply_persist)),
    ("copy", copy, Some(apply_copy)),
    ("move", move_key, Some(apply_move)),
    ("dump", dump_key, None),
    ("restore", restore, Some(apply_restore)),
    ("object", super::container, None),
    ("object|encoding", super::object::encoding, None),
    ("object|freq", super::object::freq, None),
    ("object|idletime", super::object::idletime, None),
    ("object|refcount", super::object::refcount, None),
    ("object|help", super::object::help, None),
];

fn apply_del(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let mut deleted = 0;
    for key in &args[1..] {
        if txn.delete(db, key)? {
            deleted += 1;
        }
    }
    Ok(Reply::Integer(deleted))
}

fn exists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let metas = ctx.lookup_many(&args[1..])?;
    reply(Reply::Integer(
        metas.iter().filter(|m| m.is_some()).count() as i64
    ))
}

fn type_of(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = ctx
        .lookup(&args[1])?
        .map_or("none", |m| m.value_type.name());
    reply(Reply::Simple(name))
}

fn apply_rename(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let nx = eq(&args[0], "renamenx");
    let Some(meta) = txn.get(db, &args[1])? else {
        return Err(CmdError::Static(error::NO_SUCH_KEY));
    };
    if args[1] == args[2] {
        return Ok(if nx { Reply::Integer(0) } else { Reply::OK });
    }
    if nx && txn.exists(db, &args[2])? {
        return Ok(Reply::Integer(0));
    }
    txn.delete(db, &args[1])?;
    let meta = txn.relocate(db, &args[1], meta, db, &args[2])?;
    let revision = txn.revision();
    txn.put(db, &args[2], Meta { revision, ..meta })?;
    Ok(if nx { Reply::Integer(1) } else { Reply::OK })
}

/// KEYS skips expired keys without deleting them, as redis-server does.
fn keys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let pattern = &args[1];
    let mut out = Vec::new();
    let mut position = None;
    loop {
        let (batch, next) = ctx.keyspace.scan_keys(ctx.db(), position, 1024)?;
        let live = batch
            .into_iter()
            .filter(|(k, m)| !m.is_expired(ctx.now_ms) && glob_match(pattern, k, false));
        out.extend(live.map(|(k, _)| Reply::Bulk(k)));
        match next {
            Some((slot, key)) => position = Some((slot, Some(key))),
            None => break,
        }
    }
    reply(Reply::Array(out))
}

/// A SCAN-family cursor, with strtoul semantics (a negative number wraps around).
pub fn parse_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    if arg.is_empty() {
        return Ok(0); // strtoul reads nothing, and Redis takes that as 0
    }
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| {
            s.parse::<u64>()
                .ok()
                .or_else(|| s.parse::<i64>().ok().map(|n| n as u64))
        })
        .ok_or(CmdError::msg("ERR invalid cursor"))
}

fn scan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[1])?;
    let mut count = 10usize;
    let mut pattern: Option<&Bytes> = None;
    let mut type_filter: Option<String> = None;
    let mut i = 2;
    while i < args.len() {
        if i + 1 >= args.len() {
            return Err(syntax());
        }
        let value = &args[i + 1];
        if eq(&args[i], "COUNT") {
            let n = args::int(value)?;
            if n < 1 {
                return Err(syntax());
            }
            count = n as usize;
        } else if eq(&args[i], "MATCH") {
            pattern = Some(value);
        } else if eq(&args[i], "TYPE") {
            type_filter = Some(args::lower(value));
        } else {
            return Err(syntax());
        }
        i += 2;
    }
    let start = ctx.shared.cursors.resume(cursor);
    let (batch, next) = ctx
        .keyspace
        .scan_keys(ctx.db(), start, count.min(100_000))?;
    // As redis-server: keys that match the pattern and turn out expired are deleted.
    let mut keys = Vec::new();
    for (k, m) in batch {
        if !pattern.is_none_or(|p| glob_match(p, &k, false)) {
            continue;
        }
        let Some(m) = ctx.live(&k, Some(m)) else {
            continue;
        };
        if type_filter
            .as_deref()
            .is_none_or(|t| t == m.value_type.name())
        {
            keys.push(Reply::Bulk(k));
        }
    }
    let next_cursor = match next {
        Some((slot, key)) => ctx.shared.cursors.save(slot, key),
        None => 0,
    };
    reply(Reply::Array(vec![
        Reply::bulk(next_cursor.to_string()),
        Reply::Array(keys),
    ]))
}

fn randomkey(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    use rand::Rng;
    if ctx.keyspace.dbsize(ctx.db()) == 0 {
        return reply(Reply::Null);
    }
    let start = Slot(rand::thread_rng().gen_range(0..SLOT_COUNT));
    // From a random slot to the end, then from the start; expired keys met are deleted.
    for from in [Some((start, None)), None] {
        let mut position = from;
        loop {
            let (batch, next) = ctx.keyspace.scan_keys(ctx.db(), position, 64)?;
            for (k, m) in batch {
                if ctx.live(&k, Some(m)).is_some() {
                    return reply(Reply::Bulk(k));
                }
            }
            match next {
                Some((slot, key)) if ctx.expired.len() < 1024 => position = Some((slot, Some(key))),
                _ => break,
            }
        }
    }
    reply(Reply::Null)
}

fn dbsize(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(Reply::Integer(ctx.keyspace.dbsize(ctx.db()) as i64))
}

/// EXPIRE's NX, XX, GT and LT; each given one must hold (XX LT on a key without a TTL
/// fails on XX, though LT alone would pass).
struct ExpireCondition {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

impl ExpireCondition {
    /// Whether a key whose expiry is `current` (0: none) may get expiry `at`.
    fn allows(&self, current: u64, at: i64) -> bool {
        (!self.nx || current == 0)
            && (!self.xx || current != 0)
            && (!self.gt || (current != 0 && at > current as i64))
            && (!self.lt || current == 0 || at < current as i64)
    }
}

fn parse_expire_condition(args: &[Bytes]) -> Result<ExpireCondition, CmdError> {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in args {
        if eq(a, "NX") {
            nx = true;
        } else if eq(a, "XX") {
            xx = true;
        } else if eq(a, "GT") {
            gt = true;
        } else if eq(a, "LT") {
            lt = true;
        } else {
            return Err(CmdError::msg(format!(
                "ERR Unsupported option {}",
                args::text(a)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CmdError::msg(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(CmdError::msg(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    Ok(ExpireCondition { nx, xx, gt, lt })
}

/// EXPIRE family → `PEXPIREAT key absolute-ms [options]`.
fn expire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = args::lower(&args[0]);
    parse_expire_condition(&args[3..])?;
    let when = args::int(&args[2])?;
    let command: &'static str = match name.as_str() {
        "expire" => "expire",
        "pexpire" => "pexpire",
        "expireat" => "expireat",
        _ => "pexpireat",
    };
    let invalid = CmdError::InvalidExpire(command);
    let ms = if command == "expire" || command == "expireat" {
        when.checked_mul(1000).ok_or(invalid.clone())?
    } else {
        when
    };
    let at = if command.ends_with("at") {
        ms
    } else {
        ms.checked_add(ctx.now_ms as i64).ok_or(invalid)?
    };
    let mut normalised = vec![
        Bytes::from_static(b"PEXPIREAT"),
        args[1].clone(),
        Bytes::from(at.to_string()),
    ];
    normalised.extend_from_slice(&args[3..]);
    Ok(Outcome::Propose(normalised))
}

fn apply_pexpireat(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let condition = parse_expire_condition(&args[3..])?;
    let at = args::int(&args[2])?;
    let Some(meta) = txn.get(db, &args[1])? else {
        return Ok(Reply::Integer(0));
    };
    if !condition.allows(meta.expire_at_ms, at) {
        return Ok(Reply::Integer(0));
    }
    if at <= txn.now_ms() as i64 {
        txn.delete(db, &args[1])?;
    } else {
        let revision = txn.revision();
        txn.put(
            db,
            &args[1],
            Meta {
                expire_at_ms: at as u64,
                revision,
                ..meta
            },
        )?;
    }
    Ok(Reply::Integer(1))
}

fn ttl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = args::lower(&args[0]);
    let Some(meta) = ctx.lookup(&args[1])? else {
        return reply(Reply::Integer(-2));
    };
    if meta.expire_at_ms == 0 {
        return reply(Reply::Integer(-1));
    }
    let absolute = name.ends_with("time");
    let ms = if absolute {
        meta.expire_at_ms
    } else {
        meta.expire_at_ms.saturating_sub(ctx.now_ms)
    };
    let in_ms = name.starts_with('p');
    reply(Reply::Integer(if in_ms {
        ms as i64
    } else {
        ((ms + 500) / 1000) as i64
    }))
}

fn apply_persist(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    match txn.get(db, &args[1])? {
        Some(meta) if meta.expire_at_ms != 0 => {
            let revision = txn.revision();
            txn.put(
                db,
                &args[1],
                Meta {
                    expire_at_ms: 0,
                    revision,
                    ..meta
                },
            )?;
            Ok(Reply::Integer(1))
        }
        _ => Ok(Reply::Integer(0)),
    }
}

/// A database index argument, checked against `databases`.
pub fn db_index(arg: &[u8], databases: u8) -> Result<u8, CmdError> {
    let n = args::int(arg)?;
    if n < 0 || n >= i64::from(databases) {
        return Err(CmdError::Static(error::DB_OUT_OF_RANGE));
    }
    Ok(n as u8)
}

struct CopyOptions {
    db: Option<u8>,
    replace: bool,
}

fn parse_copy(args: &[Bytes], databases: u8) -> Result<CopyOptions, CmdError> {
    let mut opts = CopyOptions {
        db: None,
        replace: false,
    };
    let mut i = 3;
    while i < args.len() {
        if eq(&args[i], "REPLACE") {
            opts.replace = true;
        } else if eq(&args[i], "DB") && i + 1 < args.len() {
            let n = args::int(&args[i + 1])?;
            if n < 0 || n >= i64::from(databases) {
                return Err(CmdError::Static(error::DB_OUT_OF_RANGE));
            }
            opts.db = Some(n as u8);
            i += 1;
        } else {
            return Err(syntax());
        }
        i += 1;
    }
    Ok(opts)
}

fn copy(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let opts = parse_copy(args, ctx.keyspace.databases())?;
    if args[1] == args[2] && opts.db.is_none_or(|d| d == ctx.db()) {
        return Err(CmdError::msg(
            "ERR source and destination objects are the same",
        ));
    }
    Ok(Outcome::Propose(args.to_vec()))
}

fn apply_copy(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let opts = parse_copy(args, txn.databases())?;
    let target_db = opts.db.unwrap_or(db);
    let Some(meta) = txn.get(db, &args[1])? else {
        return Ok(Reply::Integer(0));
    };
    if txn.exists(target_db, &args[2])? {
        if !opts.replace {
            return Ok(Reply::Integer(0));
        }
        txn.delete(target_db, &args[2])?;
    }
    let meta = txn.relocate(db, &args[1], meta, target_db, &args[2])?;
    let revision = txn.revision();
    txn.put(target_db, &args[2], Meta { revision, ..meta })?;
    Ok(Reply::Integer(1))
}

fn move_key(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let target = db_index(&args[2], ctx.keyspace.databases())?;
    if target == ctx.db() {
        return Err(CmdError::msg(
            "ERR source and destination objects are the same",
        ));
    }
    Ok(Outcome::Propose(args.to_vec()))
}

fn apply_move(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let target = db_index(&args[2], txn.databases())?;
    let Some(meta) = txn.get(db, &args[1])? else {
        return Ok(Reply::Integer(0));
    };
    if txn.exists(target, &args[1])? {
        return Ok(Reply::Integer(0));
    }
    txn.delete(db, &args[1])?;
    let meta = txn.relocate(db, &args[1], meta, target, &args[1])?;
    let revision = txn.revision();
    txn.put(target, &args[1], Meta { revision, ..meta })?;
    Ok(Reply::Integer(1))
}

fn dump_key(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(meta) = ctx.lookup(&args[1])? else {
        return reply(Reply::Null);
    };
    reply(Reply::Bulk(match meta.value_type {
        ValueType::String => dump::dump_string(&meta.value),
        ValueType::Hash => dump::dump_hash(&super::hashes::dump_pairs(ctx, &args[1], &meta)?),
        ValueType::List => dump::dump_list(&super::lists::dump_items(ctx, &args[1], &meta)?),
        ValueType::Set => dump::dump_set(&super::sets::dump_members(ctx, &args[1], &meta)?),
        ValueType::ZSet => dump::dump_zset(&super::zsets::dump_members(ctx, &args[1], &meta)?),
        ValueType::Stream => {
            dump::dump_stream(&super::streams::dump_contents(ctx, &args[1], &meta)?)
        }
    }))
}

struct RestoreOptions {
    replace: bool,
    absolute_ttl: bool,
}

fn parse_restore(args: &[Bytes]) -> Result<RestoreOptions, CmdError> {
    let mut opts = RestoreOptions {
        replace: false,
        absolute_ttl: false,
    };
    let (mut idle, mut freq) = (false, false);
    let mut i = 4;
    while i < args.len() {
        let more = i + 1 < args.len();
        if eq(&args[i], "REPLACE") {
            opts.replace = true;
        } else if eq(&args[i], "ABSTTL") {
            opts.absolute_ttl = true;
        } else if eq(&args[i], "IDLETIME") && more && !freq {
            let n = args::int(&args[i + 1])?;
            if n < 0 {
                return Err(CmdError::msg("ERR Invalid IDLETIME value, must be >= 0"));
            }
            idle = true;
            i += 1;
        } else if eq(&args[i], "FREQ") && more && !idle {
            let n = args::int(&args[i + 1])?;
            if !(0..=255).contains(&n) {
                return Err(CmdError::msg(
                    "ERR Invalid FREQ value, must be >= 0 and <= 255",
                ));
            }
            freq = true;
            i += 1;
        } else {
            return Err(syntax());
        }
        i += 1;
    }
    Ok(opts)
}

/// RESTORE key ttl payload [...] → RESTORE key abs-ms payload ABSTTL [REPLACE].
const BUSYKEY: &str = "BUSYKEY Target key name already exists.";

fn restore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let opts = parse_restore(args)?;
    // Redis's order: options, an existing key, the TTL, the payload.
    if !opts.replace && ctx.lookup(&args[1])?.is_some() {
        return Err(CmdError::msg(BUSYKEY));
    }
    let ttl = args::int(&args[2])?;
    if ttl < 0 {
        return Err(CmdError::msg("ERR Invalid TTL value, must be >= 0"));
    }
    dump::restore(&args[3]).map_err(|e| CmdError::msg(e.to_string()))?;
    let at = match (ttl, opts.absolute_ttl) {
        (0, _) => 0,
        (t, true) => t,
        (t, false) => t.saturating_add(ctx.now_ms as i64),
    };
    let mut normalised = vec![
        args[0].clone(),
        args[1].clone(),
        Bytes::from(at.to_string()),
        args[3].clone(),
    ];
    normalised.push(Bytes::from_static(b"ABSTTL"));
    if opts.replace {
        normalised.push(Bytes::from_static(b"REPLACE"));
    }
    Ok(Outcome::Propose(normalised))
}

fn apply_restore(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let opts = parse_restore(args)?;
    let at = args::int(&args[2])?.max(0) as u64;
    let exists = txn.exists(db, &args[1])?;
    if exists && !opts.replace {
        return Err(CmdError::msg(BUSYKEY));
    }
    let value = dump::restore(&args[3]).map_err(|e| CmdError::msg(e.to_string()))?;
    if exists {
        txn.delete(db, &args[1])?;
    }
    if at != 0 && at <= txn.now_ms() {
        // Already expired: Redis accepts the command and stores nothing.
        return Ok(Reply::OK);
    }
    match value {
        DumpValue::String(value) => {
            let revision = txn.revision();
            txn.put(db, &args[1], Meta::string(value, revision, at))?;
        }
        DumpValue::Hash(pairs) => super::hashes::store_hash(txn, db, &args[1], &pairs, at)?,
        DumpValue::List(items) => super::lists::store_list(txn, db, &args[1], items, at)?,
        DumpValue::Set(items) => super::sets::store_set(txn, db, &args[1], &items, at)?,
        DumpValue::ZSet(items) => super::zsets::store_zset(txn, db, &args[1], &items, at)?,
        DumpValue::Stream(stream) => {
            super::streams::restore_contents(txn, db, &args[1], stream, at)?
        }
    }
    Ok(Reply::OK)
}
