//! ZADD, ZINCRBY, ZREM, and [`ZWrite`]: a sorted set open for change inside a write, which
//! keeps the member records, the score index, the count and the encoding in step.

use bytes::Bytes;

use super::view::{InTxn, ZView};
use super::{encoding_for, LISTPACK_ENTRIES_MAX, LISTPACK_VALUE_MAX};
use crate::commands::args::{self, eq};
use crate::commands::collections;
use crate::commands::error::{syntax, CmdError};
use crate::commands::{CmdResult, Ctx, Outcome};
use crate::keyspace::{encoding, Encoding, Meta, Space, Txn, ValueType};
use crate::protocol::Reply;

const NAN_RESULT: &str = "ERR resulting score is not a number (NaN)";

/// A sorted set being changed by one write.
pub struct ZWrite<'t, 'k> {
    pub view: InTxn<'t, 'k>,
    meta: Meta,
}

impl<'t, 'k> ZWrite<'t, 'k> {
    /// The sorted set at `key`, if there is one (another type is WRONGTYPE).
    pub fn open(
        txn: &'t mut Txn<'k>,
        db: u8,
        key: &[u8],
    ) -> Result<Option<ZWrite<'t, 'k>>, CmdError> {
        let Some((meta, zset)) = collections::txn_read(txn, db, key, ValueType::ZSet)? else {
            return Ok(None);
        };
        let key = Bytes::copy_from_slice(key);
        Ok(Some(ZWrite {
            view: InTxn { txn, db, key, zset },
            meta,
        }))
    }

    /// A new empty sorted set at `key` (stored only once it has members).
    pub fn create(
        txn: &'t mut Txn<'k>,
        db: u8,
        key: &[u8],
        encoding: Encoding,
    ) -> Result<ZWrite<'t, 'k>, CmdError> {
        let (meta, zset) = collections::txn_read_or_new(txn, db, key, ValueType::ZSet, encoding)?;
        let key = Bytes::copy_from_slice(key);
        Ok(ZWrite {
            view: InTxn { txn, db, key, zset },
            meta,
        })
    }

    /// The current score of `member`, if it is in the set.
    pub fn score(&mut self, member: &[u8]) -> Result<Option<f64>, CmdError> {
        self.view.score(member)
    }

    /// Gives `member` the score `score`; `old` is its current score (None = new member).
    pub fn set(&mut self, member: &[u8], old: Option<f64>, score: f64) {
        let v = &mut self.view;
        let version = v.zset.version;
        match old {
            Some(old) => {
                let index = encoding::score_sub(old, member);
                v.txn
                    .delete_in(Space::Scores, v.db, &v.key, version, &index);
            }
            None => {
                v.zset.count += 1;
                if v.zset.count > LISTPACK_ENTRIES_MAX || member.len() > LISTPACK_VALUE_MAX {
                    self.meta.encoding = Encoding::Skiplist;
                }
            }
        }
        let index = encoding::score_sub(score, member);
        v.txn
            .put_in(Space::Scores, v.db, &v.key, version, &index, Bytes::new());
        v.txn
            .put_element(v.db, &v.key, version, member, encoding::encode_score(score));
    }

    /// Removes `member`, whose score is `score`.
    pub fn remove(&mut self, member: &[u8], score: f64) {
        let v = &mut self.view;
        let version = v.zset.version;
        let index = encoding::score_sub(score, member);
        v.txn
            .delete_in(Space::Scores, v.db, &v.key, version, &index);
        v.txn.delete_element(v.db, &v.key, version, member);
        v.zset.count -= 1;
    }

    /// Stores the changed header (or deletes the emptied key).
    pub fn finish(self) -> Result<(), CmdError> {
        let v = self.view;
        collections::store(v.txn, v.db, &v.key, self.meta, v.zset)
    }
}

/// ZADD's options.
#[derive(Debug, Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...].
fn parse_zadd(args: &[Bytes]) -> Result<(AddFlags, Vec<(f64, Bytes)>), CmdError> {
    let mut f = AddFlags::default();
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        let flag = match () {
            _ if eq(a, "NX") => &mut f.nx,
            _ if eq(a, "XX") => &mut f.xx,
            _ if eq(a, "GT") => &mut f.gt,
            _ if eq(a, "LT") => &mut f.lt,
            _ if eq(a, "CH") => &mut f.ch,
            _ if eq(a, "INCR") => &mut f.incr,
            _ => break,
        };
        *flag = true;
        i += 1;
    }
    let rest = &args[i..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(syntax());
    }
    if f.nx && f.xx {
        return Err(CmdError::msg(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err(CmdError::msg(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if f.incr && rest.len() > 2 {
        return Err(CmdError::msg(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let pairs = rest
        .chunks(2)
        .map(|p| Ok((args::float(&p[0])?, p[1].clone())))
        .collect::<Result<_, CmdError>>()?;
    Ok((f, pairs))
}

pub fn zadd(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    parse_zadd(args)?;
    Ok(Outcome::Propose(args.to_vec()))
}

/// ZINCRBY key increment member: proposed as sent, applied as ZADD INCR.
pub fn zincrby(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    args::float(&args[2])?;
    Ok(Outcome::Propose(args.to_vec()))
}

/// ZADD, ZINCRBY, and GEOADD once its points are scores (the argument shape of ZADD).
pub fn apply_zadd(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let (f, pairs) = if eq(&args[0], "zincrby") {
        let flags = AddFlags {
            incr: true,
            ..AddFlags::default()
        };
        (flags, vec![(args::float(&args[2])?, args[3].clone())])
    } else {
        parse_zadd(args)?
    };
    let key = &args[1];
    let nothing = if f.incr {
        Reply::Null
    } else {
        Reply::Integer(0)
    };
    let mut z = match ZWrite::open(txn, db, key)? {
        Some(z) => z,
        None if f.xx => return Ok(nothing),
        None => ZWrite::create(txn, db, key, Encoding::Listpack)?,
    };
    let (mut added, mut updated) = (0i64, 0i64);
    let mut last_score = None;
    for (score, member) in pairs {
        let old = z.score(&member)?;
        let mut score = score;
        match old {
            Some(_) if f.nx => continue,
            None if f.xx => continue,
            Some(cur) => {
                if f.incr {
                    score += cur;
                    if score.is_nan() {
                        return Err(CmdError::msg(NAN_RESULT));
                    }
                }
                if (f.lt && score >= cur) || (f.gt && score <= cur) {
                    continue;
                }
                last_score = Some(score);
                if score != cur {
                    z.set(&member, old, score);
                    updated += 1;
                }
            }
            None => {
                last_score = Some(score);
                z.set(&member, None, score);
                added += 1;
            }
        }
    }
    if added + updated > 0 {
        z.finish()?;
    }
    Ok(match (f.incr, last_score) {
        (true, Some(score)) => Reply::Double(score),
        (true, None) => Reply::Null,
        (false, _) => Reply::Integer(if f.ch { added + updated } else { added }),
    })
}

pub fn apply_zrem(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let Some(mut z) = ZWrite::open(txn, db, &args[1])? else {
        return Ok(Reply::Integer(0));
    };
    let mut removed = 0;
    for member in &args[2..] {
        if let Some(score) = z.score(member)? {
            z.remove(member, score);
            removed += 1;
        }
    }
    if removed > 0 {
        z.finish()?;
    }
    Ok(Reply::Integer(removed))
}

/// Replaces whatever is at `key` with a sorted set of `items` (distinct members), in the
/// encoding its size calls for; an empty result leaves no key. Returns the member count.
pub fn replace_with(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
    items: &[(Bytes, f64)],
    expire_at_ms: u64,
) -> Result<u64, CmdError> {
    txn.delete(db, key)?;
    if items.is_empty() {
        return Ok(0);
    }
    let longest = items.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    let mut z = ZWrite::create(txn, db, key, encoding_for(items.len(), longest))?;
    for (member, score) in items {
        z.set(member, None, *score);
    }
    // Building whole, the size-based encoding stands (set() may only have raised it).
    z.meta.encoding = encoding_for(items.len(), longest);
    z.meta.expire_at_ms = expire_at_ms;
    let count = z.view.zset.count;
    z.finish()?;
    Ok(count)
}

/// Stores `items` as a new sorted set at `key` (RESTORE).
pub fn store_zset(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
    items: &[(Bytes, f64)],
    expire_at_ms: u64,
) -> Result<(), CmdError> {
    replace_with(txn, db, key, items, expire_at_ms).map(|_| ())
}
