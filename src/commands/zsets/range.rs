//! Ranges of a sorted set by rank, score or lex: parsing them as Redis does (ZRANGE and its
//! older forms, ZCOUNT, ZLEXCOUNT, ZREMRANGEBY*) and selecting what they cover. A score range
//! is a range of the score index; a lex range a range of the member records (the order Redis
//! promises only when all scores are equal, as in Redis); a rank range walks the index from
//! the nearer end.

use std::ops::Bound;

use bytes::Bytes;

use super::view::ZView;
use super::write::{replace_with, ZWrite};
use super::{read, scored_reply};
use crate::commands::args::{self, eq};
use crate::commands::error::{syntax, CmdError};
use crate::commands::{reply, CmdResult, Ctx, Outcome};
use crate::keyspace::{encoding, Space, SubRange, Txn};
use crate::protocol::Reply;

const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";

/// What a range selects.
#[derive(Debug, Clone)]
pub enum Query {
    /// Ranks `start..=stop`, negative counting from the end.
    Rank(i64, i64),
    /// A range of the score index.
    Score(SubRange),
    /// A range of the member records; None when it can hold nothing (`+` as min…).
    Lex(Option<SubRange>),
}

/// A parsed range request.
#[derive(Debug, Clone)]
pub struct Spec {
    pub query: Query,
    pub reverse: bool,
    /// LIMIT offset count (a negative count: no limit).
    pub limit: Option<(i64, i64)>,
}

/// A score bound: `1.5`, `(1.5` (exclusive), `-inf`, `+inf`.
fn score_bound(arg: &[u8]) -> Result<(f64, bool), CmdError> {
    let (text, exclusive) = match arg.strip_prefix(b"(") {
        Some(rest) => (rest, true),
        None => (arg, false),
    };
    let value = args::parse_range_float(text).ok_or(CmdError::Static(NOT_FLOAT_RANGE))?;
    Ok((value, exclusive))
}

fn next_order(score: f64) -> Bytes {
    let order = u64::from_be_bytes(encoding::score_order(score)) + 1;
    Bytes::copy_from_slice(&order.to_be_bytes())
}

/// The score-index range between two score bounds.
pub fn score_range(min: &[u8], max: &[u8]) -> Result<SubRange, CmdError> {
    let (min, min_ex) = score_bound(min)?;
    let (max, max_ex) = score_bound(max)?;
    let order = |s: f64| Bytes::copy_from_slice(&encoding::score_order(s));
    Ok(SubRange {
        start: Bound::Included(if min_ex { next_order(min) } else { order(min) }),
        end: Bound::Excluded(if max_ex { order(max) } else { next_order(max) }),
    })
}

/// A lex bound: `-`, `+`, `[member` or `(member`.
fn lex_bound(arg: &Bytes) -> Result<Bound<Bytes>, CmdError> {
    match arg.first() {
        Some(b'-') | Some(b'+') if arg.len() == 1 => Ok(Bound::Unbounded),
        Some(b'[') => Ok(Bound::Included(arg.slice(1..))),
        Some(b'(') => Ok(Bound::Excluded(arg.slice(1..))),
        _ => Err(CmdError::Static(NOT_LEX_RANGE)),
    }
}

/// The member-record range between two lex bounds.
pub fn lex_range(min: &Bytes, max: &Bytes) -> Result<Option<SubRange>, CmdError> {
    let range = SubRange {
        start: lex_bound(min)?,
        end: lex_bound(max)?,
    };
    Ok((&min[..] != b"+" && &max[..] != b"-").then_some(range))
}

/// Ranks `start..=stop` normalised against `len`, as ascending positions; None if empty.
fn rank_positions(start: i64, stop: i64, len: u64, reverse: bool) -> Option<(u64, u64)> {
    let n = len as i64;
    let mut start = if start < 0 { start + n } else { start };
    let mut stop = if stop < 0 { stop + n } else { stop };
    start = start.max(0);
    if start > stop || start >= n {
        return None;
    }
    stop = stop.min(n - 1);
    let (a, b) = (start as u64, stop as u64);
    Some(if reverse {
        (len - 1 - b, len - 1 - a)
    } else {
        (a, b)
    })
}

/// Members with scores at positions `a..=b` in score order, walking from the nearer end.
fn by_position(view: &mut impl ZView, a: u64, b: u64) -> Result<Vec<(Bytes, f64)>, CmdError> {
    let len = view.len();
    let all = SubRange::all();
    if a <= len - 1 - b {
        let items = view.scan_scores(&all, (b + 1) as usize, false)?;
        Ok(items.into_iter().skip(a as usize).collect())
    } else {
        let items = view.scan_scores(&all, (len - a) as usize, true)?;
        let mut items: Vec<_> = items.into_iter().skip((len - 1 - b) as usize).collect();
        items.reverse();
        Ok(items)
    }
}

/// Whether every member has the same score (so score order is member order).
fn uniform(view: &mut impl ZView) -> Result<bool, CmdError> {
    let all = SubRange::all();
    let first = view.scan_scores(&all, 1, false)?;
    let last = view.scan_scores(&all, 1, true)?;
    Ok(matches!((first.first(), last.first()), (Some(a), Some(b)) if a.1 == b.1))
}

/// A lex range: when all scores are equal (the case Redis defines), a range of the member
/// records; otherwise Redis's listpack walk in score order, from the first member at or
/// above the minimum while members stay at or below the maximum (mirrored for `reverse`).
fn lex_items(
    view: &mut impl ZView,
    range: &SubRange,
    limit: usize,
    reverse: bool,
) -> Result<Vec<(Bytes, f64)>, CmdError> {
    if uniform(view)? {
        return view.scan_members(range, limit, reverse);
    }
    let above_min = |m: &[u8]| match &range.start {
        Bound::Unbounded => true,
        Bound::Included(s) => m >= &s[..],
        Bound::Excluded(s) => m > &s[..],
    };
    let below_max = |m: &[u8]| match &range.end {
        Bound::Unbounded => true,
        Bound::Included(s) => m <= &s[..],
        Bound::Excluded(s) => m < &s[..],
    };
    let all = view.scan_scores(&SubRange::all(), usize::MAX, reverse)?;
    // As zzlIsInLexRange: the last member (in score order) must reach the minimum and the
    // first stay under the maximum, or the range is empty.
    let (first, last) = match (all.first(), all.last()) {
        (Some(a), Some(b)) if reverse => (&b.0, &a.0),
        (Some(a), Some(b)) => (&a.0, &b.0),
        _ => return Ok(Vec::new()),
    };
    if !above_min(last) || !below_max(first) {
        return Ok(Vec::new());
    }
    type Test<'a> = &'a dyn Fn(&[u8]) -> bool;
    let (enter, stay): (Test, Test) = if reverse {
        (&below_max, &above_min)
    } else {
        (&above_min, &below_max)
    };
    Ok(all
        .into_iter()
        .skip_while(|(m, _)| !enter(m))
        .take_while(|(m, _)| stay(m))
        .take(limit)
        .collect())
}

/// What `spec` selects from `view`, in reply order.
pub fn select(view: &mut impl ZView, spec: &Spec) -> Result<Vec<(Bytes, f64)>, CmdError> {
    let (offset, count) = match spec.limit {
        Some((offset, _)) if offset < 0 => return Ok(Vec::new()),
        Some((offset, count)) => (offset as usize, usize::try_from(count).ok()),
        None => (0, None),
    };
    let limit = count.map_or(usize::MAX, |c| c.saturating_add(offset));
    let items = match &spec.query {
        Query::Rank(start, stop) => {
            let Some((a, b)) = rank_positions(*start, *stop, view.len(), spec.reverse) else {
                return Ok(Vec::new());
            };
            let mut items = by_position(view, a, b)?;
            if spec.reverse {
                items.reverse();
            }
            return Ok(items);
        }
        Query::Score(range) if !range.is_empty() => view.scan_scores(range, limit, spec.reverse)?,
        Query::Lex(Some(range)) if !range.is_empty() => {
            lex_items(view, range, limit, spec.reverse)?
        }
        _ => return Ok(Vec::new()),
    };
    Ok(items.into_iter().skip(offset).collect())
}

/// How a ZRANGE-family command name reads its arguments.
struct Form {
    /// Index of the source key (1, or 2 for ZRANGESTORE).
    key: usize,
    store: bool,
    /// Fixed by the name (ZRANGEBYSCORE…), else chosen by BYSCORE/BYLEX.
    kind: Option<Kind>,
    /// Fixed by the name (ZREVRANGE…), else chosen by REV.
    reverse: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rank,
    Score,
    Lex,
}

fn form(name: &[u8]) -> Form {
    let name = args::lower(name);
    let fixed = |kind, reverse| Form {
        key: 1,
        store: false,
        kind: Some(kind),
        reverse: Some(reverse),
    };
    match name.as_str() {
        "zrangebyscore" => fixed(Kind::Score, false),
        "zrevrangebyscore" => fixed(Kind::Score, true),
        "zrangebylex" => fixed(Kind::Lex, false),
        "zrevrangebylex" => fixed(Kind::Lex, true),
        "zrevrange" => fixed(Kind::Rank, true),
        "zrangestore" => Form {
            key: 2,
            store: true,
            kind: None,
            reverse: None,
        },
        _ => Form {
            key: 1,
            store: false,
            kind: None,
            reverse: None,
        },
    }
}

/// Parses any ZRANGE-family command: `(spec, with_scores)`.
fn parse_zrange(args: &[Bytes]) -> Result<(Spec, bool), CmdError> {
    let form = form(&args[0]);
    let (mut kind, mut reverse) = (form.kind, form.reverse);
    let (mut with_scores, mut limit) = (false, None);
    let mut j = form.key + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if !form.store && eq(a, "WITHSCORES") {
            with_scores = true;
        } else if eq(a, "LIMIT") && left >= 2 {
            limit = Some((args::int(&args[j + 1])?, args::int(&args[j + 2])?));
            j += 2;
        } else if reverse.is_none() && eq(a, "REV") {
            reverse = Some(true);
        } else if kind.is_none() && eq(a, "BYLEX") {
            kind = Some(Kind::Lex);
        } else if kind.is_none() && eq(a, "BYSCORE") {
            kind = Some(Kind::Score);
        } else {
            return Err(syntax());
        }
        j += 1;
    }
    let kind = kind.unwrap_or(Kind::Rank);
    let reverse = reverse.unwrap_or(false);
    // As Redis checks it: a LIMIT count of -1 passes for a rank range.
    if kind == Kind::Rank && limit.is_some_and(|(_, count)| count != -1) {
        return Err(CmdError::msg(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if with_scores && kind == Kind::Lex {
        return Err(CmdError::msg(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut lo, mut hi) = (&args[form.key + 1], &args[form.key + 2]);
    if reverse && kind != Kind::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let query = match kind {
        Kind::Rank => Query::Rank(args::int(lo)?, args::int(hi)?),
        Kind::Score => Query::Score(score_range(lo, hi)?),
        Kind::Lex => Query::Lex(lex_range(lo, hi)?),
    };
    let limit = if kind == Kind::Rank { None } else { limit };
    Ok((
        Spec {
            query,
            reverse,
            limit,
        },
        with_scores,
    ))
}

/// ZRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX, ZREVRANGE.
pub fn zrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (spec, with_scores) = parse_zrange(args)?;
    let items = match read(ctx, &args[1])? {
        None => Vec::new(),
        Some(mut z) => select(&mut z, &spec)?,
    };
    reply(scored_reply(items, with_scores))
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count].
pub fn zrangestore(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    parse_zrange(args)?;
    Ok(Outcome::Propose(args.to_vec()))
}

pub fn apply_zrangestore(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let (spec, _) = parse_zrange(args)?;
    let items = match ZWrite::open(txn, db, &args[2])? {
        None => Vec::new(),
        Some(mut z) => select(&mut z.view, &spec)?,
    };
    let count = replace_with(txn, db, &args[1], &items, 0)?;
    Ok(Reply::Integer(count as i64))
}

/// ZCOUNT key min max.
pub fn zcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = score_range(&args[2], &args[3])?;
    count_in(ctx, &args[1], Space::Scores, Some(range))
}

/// ZLEXCOUNT key min max.
pub fn zlexcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = lex_range(&args[2], &args[3])?;
    count_in(ctx, &args[1], Space::Elements, range)
}

fn count_in(ctx: &mut Ctx, key: &Bytes, space: Space, range: Option<SubRange>) -> CmdResult {
    let count = match (read(ctx, key)?, range) {
        (Some(mut z), Some(range)) if !range.is_empty() => {
            if space == Space::Elements && !uniform(&mut z)? {
                lex_items(&mut z, &range, usize::MAX, false)?.len() as u64
            } else {
                z.count(space, &range)?
            }
        }
        _ => 0,
    };
    reply(Reply::Integer(count as i64))
}

/// ZREMRANGEBYRANK key start stop, ZREMRANGEBYSCORE key min max, ZREMRANGEBYLEX key min max.
fn parse_zremrange(args: &[Bytes]) -> Result<Spec, CmdError> {
    let name = args::lower(&args[0]);
    let query = match name.as_str() {
        "zremrangebyrank" => Query::Rank(args::int(&args[2])?, args::int(&args[3])?),
        "zremrangebyscore" => Query::Score(score_range(&args[2], &args[3])?),
        _ => Query::Lex(lex_range(&args[2], &args[3])?),
    };
    Ok(Spec {
        query,
        reverse: false,
        limit: None,
    })
}

pub fn zremrange(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    parse_zremrange(args)?;
    Ok(Outcome::Propose(args.to_vec()))
}

pub fn apply_zremrange(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let spec = parse_zremrange(args)?;
    let Some(mut z) = ZWrite::open(txn, db, &args[1])? else {
        return Ok(Reply::Integer(0));
    };
    let items = select(&mut z.view, &spec)?;
    for (member, score) in &items {
        z.remove(member, *score);
    }
    if !items.is_empty() {
        z.finish()?;
    }
    Ok(Reply::Integer(items.len() as i64))
}
