//! What the collection command families share: typed reads of a collection's header, new
//! collections, storing a changed header (or deleting an emptied key), the element scans
//! behind HSCAN and SSCAN, and the random choices of HRANDFIELD and SRANDMEMBER.

use bytes::Bytes;
use rand::seq::SliceRandom;
use rand::Rng;

use super::args::{self, eq};
use super::error::{self, syntax, CmdError};
use super::{reply, CmdResult, Ctx};
use crate::glob::glob_match;
use crate::keyspace::{Collection, Encoding, Meta, Txn, ValueType};
use crate::protocol::Reply;

/// The header of `meta` if it is a collection of type `vt`; another type is WRONGTYPE.
pub fn header(meta: Option<&Meta>, vt: ValueType) -> Result<Option<Collection>, CmdError> {
    match meta {
        None => Ok(None),
        Some(m) if m.value_type != vt => Err(error::wrongtype()),
        Some(m) => m
            .collection_header()
            .map(Some)
            .ok_or_else(|| CmdError::Internal(format!("bad {} record", vt.name()))),
    }
}

/// The live collection of type `vt` at `key`, read at the proposer.
pub fn read(
    ctx: &mut Ctx,
    key: &[u8],
    vt: ValueType,
) -> Result<Option<(Meta, Collection)>, CmdError> {
    let meta = ctx.lookup(key)?;
    ctx.shared.stats.hit(meta.is_some());
    let found = header(meta.as_ref(), vt)?;
    Ok(meta.zip(found))
}

/// The collection of type `vt` at `key`, inside a write.
pub fn txn_read(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
    vt: ValueType,
) -> Result<Option<(Meta, Collection)>, CmdError> {
    let meta = txn.get(db, key)?;
    let found = header(meta.as_ref(), vt)?;
    Ok(meta.zip(found))
}

/// The collection at `key`, or a new empty one (with a fresh version) if there is none.
pub fn txn_read_or_new(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
    vt: ValueType,
    encoding: Encoding,
) -> Result<(Meta, Collection), CmdError> {
    if let Some(found) = txn_read(txn, db, key, vt)? {
        return Ok(found);
    }
    let version = txn.new_version()?;
    let meta = Meta::collection(vt, encoding, version, txn.revision());
    let found = header(Some(&meta), vt)?.ok_or_else(|| CmdError::Internal("new".into()))?;
    Ok((meta, found))
}

/// Stores a collection's changed header, or deletes the key when it is empty.
pub fn store(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
    meta: Meta,
    header: Collection,
) -> Result<(), CmdError> {
    if header.count == 0 {
        txn.delete(db, key)?;
    } else {
        let revision = txn.revision();
        txn.put(db, key, Meta { revision, ..meta }.with_header(header))?;
    }
    Ok(())
}

/// `[MATCH pattern] [COUNT count]` of the element scans.
pub fn parse_scan_options(args: &[Bytes]) -> Result<(Option<&Bytes>, usize), CmdError> {
    let (mut pattern, mut count) = (None, 10usize);
    let mut i = 0;
    while i < args.len() {
        if i + 1 >= args.len() {
            return Err(syntax());
        }
        if eq(&args[i], "COUNT") {
            let n = args::int(&args[i + 1])?;
            if n < 1 {
                return Err(syntax());
            }
            count = (n as usize).min(100_000);
        } else if eq(&args[i], "MATCH") {
            pattern = Some(&args[i + 1]);
        } else {
            return Err(syntax());
        }
        i += 2;
    }
    Ok((pattern, count))
}

/// HSCAN and SSCAN: `KEY cursor [MATCH pattern] [COUNT count]` over a collection of type
/// `vt`. A collection in a compact encoding (`small`) comes back whole with cursor 0, as
/// Redis does; a larger one page by page, its position kept in the node's cursor table.
/// `value`, if given, lists each element's value after its sub key (HSCAN, ZSCAN); `whole`,
/// if given, lists a compact collection's elements in its own order (ZSCAN: by score),
/// instead of sub-key order.
pub fn scan(
    ctx: &mut Ctx,
    args: &[Bytes],
    vt: ValueType,
    small: Encoding,
    value: Option<fn(&Bytes) -> Reply>,
    whole: Option<WholeFn>,
) -> CmdResult {
    let cursor = super::keys::parse_cursor(&args[2])?;
    let (pattern, count) = parse_scan_options(&args[3..])?;
    let Some((meta, found)) = read(ctx, &args[1], vt)? else {
        return reply(scan_reply(0, Vec::new()));
    };
    let small = meta.encoding == small;
    let after = match ctx.shared.cursors.resume(cursor) {
        Some((_, Some(position))) if !small => Some(position),
        _ => None,
    };
    let limit = if small { usize::MAX } else { count };
    let page = match whole {
        Some(list) if small => list(ctx, &args[1], &found)?,
        _ => ctx.keyspace.scan_elements(
            ctx.db(),
            &args[1],
            found.version,
            after.as_deref(),
            limit,
            false,
        )?,
    };
    let next = match page.last() {
        Some((sub, _)) if !small && page.len() == limit => ctx
            .shared
            .cursors
            .save(crate::cluster::key_slot(&args[1]), sub.clone()),
        _ => 0,
    };
    let items = page
        .into_iter()
        .filter(|(sub, _)| pattern.is_none_or(|p| glob_match(p, sub, false)))
        .flat_map(|(sub, raw)| {
            let value = value.map(|f| f(&raw));
            std::iter::once(Reply::Bulk(sub)).chain(value)
        })
        .collect();
    reply(scan_reply(next, items))
}

/// Lists every element of a compact collection, `(sub key, value)`, in its own order.
pub type WholeFn = fn(&mut Ctx, &[u8], &Collection) -> Result<Vec<(Bytes, Bytes)>, CmdError>;

fn scan_reply(cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::bulk(cursor.to_string()), Reply::Array(items)])
}

/// The COUNT of SRANDMEMBER, HRANDFIELD and ZRANDMEMBER (`pairs`: WITHVALUES or WITHSCORES):
/// any integer Redis can negate, within the bounds below.
pub fn parse_random_count(arg: Option<&Bytes>, pairs: bool) -> Result<Option<i64>, CmdError> {
    const OUT_OF_RANGE: &str = "ERR value is out of range";
    let count = match arg.map(|a| args::int(a)).transpose()? {
        Some(i64::MIN) => {
            return Err(CmdError::msg(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            ))
        }
        count => count,
    };
    match count {
        // Redis's bound where the reply holds pairs (its count of reply elements doubles).
        Some(c) if pairs && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&c) => {
            Err(CmdError::Static(OUT_OF_RANGE))
        }
        // Picks that may repeat are made one by one into the reply: bounded, where Redis
        // would try to build any number of them.
        Some(c) if c < 0 && c.unsigned_abs() > crate::limits::RANDOM_REPEATS_MAX => {
            Err(CmdError::Static(OUT_OF_RANGE))
        }
        count => Ok(count),
    }
}

/// Redis's random choice with a count: up to `count` distinct items when positive, `-count`
/// items that may repeat when negative. Made at the reader (these commands only read).
pub fn random_choice<T>(items: &[T], count: i64) -> Vec<&T> {
    let mut rng = rand::thread_rng();
    if items.is_empty() || count == 0 {
        Vec::new()
    } else if count > 0 {
        let n = (count as usize).min(items.len());
        items.choose_multiple(&mut rng, n).collect()
    } else {
        (0..count.unsigned_abs())
            .map(|_| &items[rng.gen_range(0..items.len())])
            .collect()
    }
}

/// LMPOP/ZMPOP (and their blocking forms, from `numkeys` on): `numkeys key [key ...] END
/// [COUNT count]`, where `end` reads LEFT|RIGHT or MIN|MAX (true for the start).
pub struct Mpop {
    /// Where the keys are in the arguments.
    pub keys: std::ops::Range<usize>,
    pub from_start: bool,
    pub count: i64,
}

pub fn parse_mpop(
    args: &[Bytes],
    end: fn(&[u8]) -> Result<bool, CmdError>,
) -> Result<Mpop, CmdError> {
    const NUMKEYS: &str = "ERR numkeys should be greater than 0";
    let numkeys = args::int_with(&args[1], NUMKEYS)?;
    if numkeys <= 0 {
        return Err(CmdError::Static(NUMKEYS));
    }
    let first = 2usize;
    let after = first
        .checked_add(numkeys as usize)
        .filter(|&a| a < args.len())
        .ok_or(syntax())?;
    let from_start = end(&args[after])?;
    let mut count = 1;
    match &args[after + 1..] {
        [] => {}
        [word, n] if eq(word, "count") => {
            count = args::int(n)?;
            if count <= 0 {
                return Err(CmdError::msg("ERR count should be greater than 0"));
            }
        }
        _ => return Err(syntax()),
    }
    Ok(Mpop {
        keys: first..after,
        from_start,
        count,
    })
}
