//! Sorted-set commands over two record spaces: a member record (`member → score`) per member,
//! and an order-preserving score index (`score | member`) beside it (see
//! `keyspace/encoding.rs`). ZSCORE is one lookup; ranges by score or rank walk the index, and
//! ranges by lex walk the member records, reading only what they return (plus a LIMIT's
//! offset, or a rank's distance from the nearer end).
//!
//! OBJECT ENCODING follows redis-server 7.0's defaults: `listpack` up to 128 members of at
//! most 64 bytes, then `skiplist` for good; a stored result (ZUNIONSTORE, ZRANGESTORE…) takes
//! the encoding its size calls for.
//!
//! - `view.rs`: reading one sorted set, at the proposer or inside a write.
//! - `range.rs`: score, lex and rank ranges: parsing and selection.
//! - `write.rs`: ZADD, ZINCRBY, ZREM and the member primitives every write uses.
//! - `combine.rs`: ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD.
//! - `pop.rs`: ZPOPMIN/ZPOPMAX, ZMPOP and the blocking BZPOPMIN/BZPOPMAX/BZMPOP.

mod combine;
mod pop;
mod range;
mod view;
mod write;

use bytes::Bytes;

use super::args::eq;
use super::collections;
use super::error::{syntax, CmdError};
use super::{reply, ApplyFn, CmdResult, Ctx, Handler};
use crate::keyspace::{encoding, Encoding, Meta, ValueType};
use crate::protocol::Reply;
use view::Stored;

pub use view::ZView;
pub use write::{apply_zadd, replace_with, store_zset, ZWrite};

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("zadd", write::zadd, Some(write::apply_zadd)),
    ("zincrby", write::zincrby, Some(write::apply_zadd)),
    ("zrem", super::propose_as_sent, Some(write::apply_zrem)),
    ("zcard", zcard, None),
    ("zscore", zscore, None),
    ("zmscore", zmscore, None),
    ("zrank", zrank, None),
    ("zrevrank", zrank, None),
    ("zcount", range::zcount, None),
    ("zlexcount", range::zlexcount, None),
    ("zrange", range::zrange, None),
    ("zrangebyscore", range::zrange, None),
    ("zrevrangebyscore", range::zrange, None),
    ("zrangebylex", range::zrange, None),
    ("zrevrangebylex", range::zrange, None),
    ("zrevrange", range::zrange, None),
    (
        "zrangestore",
        range::zrangestore,
        Some(range::apply_zrangestore),
    ),
    (
        "zremrangebyrank",
        range::zremrange,
        Some(range::apply_zremrange),
    ),
    (
        "zremrangebyscore",
        range::zremrange,
        Some(range::apply_zremrange),
    ),
    (
        "zremrangebylex",
        range::zremrange,
        Some(range::apply_zremrange),
    ),
    ("zpopmin", pop::zpop, Some(pop::apply_zpop)),
    ("zpopmax", pop::zpop, Some(pop::apply_zpop)),
    ("zmpop", pop::zmpop, Some(pop::apply_zmpop)),
    ("bzpopmin", pop::bzpop, Some(pop::apply_bzpop)),
    ("bzpopmax", pop::bzpop, Some(pop::apply_bzpop)),
    ("bzmpop", pop::bzmpop, Some(pop::apply_bzmpop)),
    ("zrandmember", zrandmember, None),
    ("zunion", combine::zcombine, None),
    ("zinter", combine::zcombine, None),
    ("zdiff", combine::zcombine, None),
    (
        "zunionstore",
        combine::zcombine,
        Some(combine::apply_zstore),
    ),
    (
        "zinterstore",
        combine::zcombine,
        Some(combine::apply_zstore),
    ),
    ("zdiffstore", combine::zcombine, Some(combine::apply_zstore)),
    ("zintercard", combine::zcombine, None),
    ("zscan", zscan, None),
];

/// Redis's default `zset-max-listpack-entries` and `zset-max-listpack-value`.
const LISTPACK_ENTRIES_MAX: u64 = 128;
const LISTPACK_VALUE_MAX: usize = 64;

/// The encoding Redis gives a sorted set built whole (a stored result, RESTORE).
fn encoding_for(count: usize, longest_member: usize) -> Encoding {
    if count as u64 <= LISTPACK_ENTRIES_MAX && longest_member <= LISTPACK_VALUE_MAX {
        Encoding::Listpack
    } else {
        Encoding::Skiplist
    }
}

/// The sorted set at `key`, read at the proposer (None if missing; WRONGTYPE if another
/// type).
pub fn read<'a>(ctx: &mut Ctx<'a>, key: &[u8]) -> Result<Option<Stored<'a>>, CmdError> {
    let found = collections::read(ctx, key, ValueType::ZSet)?;
    Ok(found.map(|(_, zset)| Stored::new(ctx.keyspace, ctx.session.db, key, zset)))
}

/// Members with their scores: pairs when `with_scores` (flat in RESP2, pairs in RESP3),
/// else members alone.
fn scored_reply(items: Vec<(Bytes, f64)>, with_scores: bool) -> Reply {
    if with_scores {
        Reply::Pairs(
            items
                .into_iter()
                .map(|(m, s)| (Reply::Bulk(m), Reply::Double(s)))
                .collect(),
        )
    } else {
        Reply::Array(items.into_iter().map(|(m, _)| Reply::Bulk(m)).collect())
    }
}

fn zcard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let found = collections::read(ctx, &args[1], ValueType::ZSet)?;
    reply(Reply::Integer(found.map_or(0, |(_, z)| z.count as i64)))
}

fn zscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let score = match read(ctx, &args[1])? {
        None => None,
        Some(mut z) => z.score(&args[2])?,
    };
    reply(score.map_or(Reply::Null, Reply::Double))
}

fn zmscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let scores = match read(ctx, &args[1])? {
        None => vec![None; args.len() - 2],
        Some(z) => z.scores(&args[2..])?,
    };
    reply(Reply::Array(
        scores
            .into_iter()
            .map(|s| s.map_or(Reply::Null, Reply::Double))
            .collect(),
    ))
}

/// ZRANK and ZREVRANK key member.
fn zrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let reverse = eq(&args[0], "zrevrank");
    let Some(mut z) = read(ctx, &args[1])? else {
        return reply(Reply::Null);
    };
    let Some(score) = z.score(&args[2])? else {
        return reply(Reply::Null);
    };
    let rank = z.rank(score, &args[2])?;
    let rank = if reverse { z.len() - 1 - rank } else { rank };
    reply(Reply::Integer(rank as i64))
}

/// ZRANDMEMBER key [count [WITHSCORES]]: a read, so the random choice is made here.
fn zrandmember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 4 || (args.len() == 4 && !eq(&args[3], "WITHSCORES")) {
        return Err(syntax());
    }
    let with_scores = args.len() == 4;
    let count = collections::parse_random_count(args.get(2), with_scores)?;
    let items = match read(ctx, &args[1])? {
        None => Vec::new(),
        Some(mut z) => z.members_by_name()?,
    };
    let Some(count) = count else {
        let chosen = collections::random_choice(&items, -1);
        return reply(
            chosen
                .first()
                .map_or(Reply::Null, |(m, _)| Reply::Bulk(m.clone())),
        );
    };
    let chosen = collections::random_choice(&items, count);
    reply(scored_reply(
        chosen.into_iter().cloned().collect(),
        with_scores,
    ))
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]: members with their scores. A listpack
/// set comes back whole in score order (as Redis lists it); a larger one page by page.
fn zscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let format = |raw: &Bytes| {
        let score = encoding::decode_score(raw).unwrap_or(0.0);
        Reply::bulk(crate::protocol::reply::format_double(score))
    };
    let by_score: collections::WholeFn = |ctx, key, zset| {
        let items = Stored::new(ctx.keyspace, ctx.db(), key, *zset).by_score()?;
        Ok(items
            .into_iter()
            .map(|(m, s)| (m, encoding::encode_score(s)))
            .collect())
    };
    collections::scan(
        ctx,
        args,
        ValueType::ZSet,
        Encoding::Listpack,
        Some(format),
        Some(by_score),
    )
}

/// A sorted set's members with scores in score order, for DUMP.
pub fn dump_members(ctx: &mut Ctx, key: &[u8], meta: &Meta) -> Result<Vec<(Bytes, f64)>, CmdError> {
    let zset = collections::header(Some(meta), ValueType::ZSet)?
        .ok_or_else(|| CmdError::Internal("no zset".into()))?;
    Stored::new(ctx.keyspace, ctx.db(), key, zset).by_score()
}
