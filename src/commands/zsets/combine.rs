//! ZUNION, ZINTER, ZDIFF, their STORE forms, and ZINTERCARD. Inputs may be sorted sets or
//! plain sets (every member scoring 1); a missing key is an empty input. The arithmetic is
//! Redis's, step for step (inputs taken smallest first for union and intersection, NaN
//! products and sums become 0), so floating-point results agree to the last bit.

use std::ops::Range;

use ahash::AHashMap;
use bytes::Bytes;

use super::scored_reply;
use super::view::{InTxn, Stored, ZView};
use super::write::replace_with;
use crate::commands::args::{self, eq};
use crate::commands::error::{self, syntax, CmdError};
use crate::commands::{reply, CmdResult, Ctx, Outcome};
use crate::keyspace::{Meta, Space, SubRange, Txn, ValueType};
use crate::protocol::Reply;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
    /// ZINTERCARD: the intersection's size only.
    Card,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Where a command's keys are, from its name and numkeys.
struct Shape {
    op: Op,
    store: bool,
    keys: Range<usize>,
}

/// The options after the keys.
struct Options {
    weights: Vec<f64>,
    aggregate: Aggregate,
    with_scores: bool,
    /// ZINTERCARD's LIMIT (0 = none).
    limit: u64,
}

fn parse_shape(args: &[Bytes]) -> Result<Shape, CmdError> {
    let name = args::lower(&args[0]);
    let store = name.ends_with("store");
    let op = match name.trim_end_matches("store") {
        "zunion" => Op::Union,
        "zinter" => Op::Inter,
        "zdiff" => Op::Diff,
        _ => Op::Card,
    };
    let at = if store { 2 } else { 1 };
    let numkeys = args::int(&args[at])?;
    if numkeys < 1 {
        return Err(CmdError::msg(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        )));
    }
    if numkeys > (args.len() - at - 1) as i64 {
        return Err(syntax());
    }
    let start = at + 1;
    Ok(Shape {
        op,
        store,
        keys: start..start + numkeys as usize,
    })
}

fn parse_options(args: &[Bytes], shape: &Shape) -> Result<Options, CmdError> {
    let n = shape.keys.len();
    let mut o = Options {
        weights: vec![1.0; n],
        aggregate: Aggregate::Sum,
        with_scores: false,
        limit: 0,
    };
    let (weighted, card) = (
        matches!(shape.op, Op::Union | Op::Inter),
        shape.op == Op::Card,
    );
    let mut j = shape.keys.end;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j];
        if weighted && remaining > n && eq(a, "WEIGHTS") {
            for (i, w) in args[j + 1..=j + n].iter().enumerate() {
                o.weights[i] =
                    args::parse_float(w).ok_or(CmdError::msg("ERR weight value is not a float"))?;
            }
            j += n + 1;
        } else if weighted && remaining >= 2 && eq(a, "AGGREGATE") {
            let how = &args[j + 1];
            o.aggregate = if eq(how, "SUM") {
                Aggregate::Sum
            } else if eq(how, "MIN") {
                Aggregate::Min
            } else if eq(how, "MAX") {
                Aggregate::Max
            } else {
                return Err(syntax());
            };
            j += 2;
        } else if !shape.store && !card && eq(a, "WITHSCORES") {
            o.with_scores = true;
            j += 1;
        } else if card && remaining >= 2 && eq(a, "LIMIT") {
            const NEGATIVE: &str = "ERR LIMIT can't be negative";
            let limit = args::int_with(&args[j + 1], NEGATIVE)?;
            o.limit = u64::try_from(limit).map_err(|_| CmdError::Static(NEGATIVE))?;
            j += 2;
        } else {
            return Err(syntax());
        }
    }
    Ok(o)
}

/// An input's members with scores (a set's members score 1); None for a missing key.
type Input = Option<Vec<(Bytes, f64)>>;

fn check_input_type(meta: Option<&Meta>) -> Result<(), CmdError> {
    match meta {
        Some(m) if !matches!(m.value_type, ValueType::ZSet | ValueType::Set) => {
            Err(error::wrongtype())
        }
        _ => Ok(()),
    }
}

/// One input read through `view`: a set's members score 1, a sorted set's its own.
fn input_of(view: &mut impl ZView, vt: ValueType) -> Result<Input, CmdError> {
    if vt == ValueType::Set {
        let members = view.scan(Space::Elements, &SubRange::all(), usize::MAX, false)?;
        return Ok(Some(members.into_iter().map(|(m, _)| (m, 1.0)).collect()));
    }
    Ok(Some(view.members_by_name()?))
}

/// Reads the inputs at the proposer, type-checking every key first as Redis does.
fn read_inputs(ctx: &mut Ctx, keys: &[Bytes]) -> Result<Vec<Input>, CmdError> {
    let metas = ctx.lookup_many(keys)?;
    metas
        .iter()
        .try_for_each(|m| check_input_type(m.as_ref()))?;
    let db = ctx.db();
    let mut inputs = Vec::with_capacity(keys.len());
    for (key, meta) in keys.iter().zip(metas) {
        inputs.push(match meta.as_ref().and_then(|m| m.collection_header()) {
            None => None,
            Some(header) => {
                let vt = meta.map_or(ValueType::ZSet, |m| m.value_type);
                input_of(&mut Stored::new(ctx.keyspace, db, key, header), vt)?
            }
        });
    }
    Ok(inputs)
}

/// Reads the inputs inside a write.
fn txn_inputs(txn: &mut Txn, db: u8, keys: &[Bytes]) -> Result<Vec<Input>, CmdError> {
    let mut metas = Vec::with_capacity(keys.len());
    for key in keys {
        metas.push(txn.get(db, key)?);
    }
    metas
        .iter()
        .try_for_each(|m| check_input_type(m.as_ref()))?;
    let mut inputs = Vec::with_capacity(keys.len());
    for (key, meta) in keys.iter().zip(metas) {
        inputs.push(match meta.as_ref().and_then(|m| m.collection_header()) {
            None => None,
            Some(zset) => {
                let vt = meta.map_or(ValueType::ZSet, |m| m.value_type);
                let key = key.clone();
                input_of(
                    &mut InTxn {
                        txn: &mut *txn,
                        db,
                        key,
                        zset,
                    },
                    vt,
                )?
            }
        });
    }
    Ok(inputs)
}

fn aggregate(target: &mut f64, value: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += value;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if value < *target {
                *target = value;
            }
        }
        Aggregate::Max => {
            if value > *target {
                *target = value;
            }
        }
    }
}

fn weighted(score: f64, weight: f64) -> f64 {
    let s = score * weight;
    if s.is_nan() {
        0.0
    } else {
        s
    }
}

/// The combined members with scores, in score order (then member order).
fn combine(op: Op, inputs: Vec<Input>, o: &Options) -> Vec<(Bytes, f64)> {
    let mut sources: Vec<(Vec<(Bytes, f64)>, f64)> = inputs
        .into_iter()
        .zip(o.weights.iter().copied())
        .map(|(input, w)| (input.unwrap_or_default(), w))
        .collect();
    let mut out: Vec<(Bytes, f64)> = match op {
        Op::Union => {
            sources.sort_by_key(|(items, _)| items.len());
            let mut acc: AHashMap<Bytes, f64> = AHashMap::new();
            let mut order = Vec::new();
            for (items, w) in sources {
                for (member, score) in items {
                    let score = weighted(score, w);
                    match acc.get_mut(&member) {
                        Some(existing) => aggregate(existing, score, o.aggregate),
                        None => {
                            order.push(member.clone());
                            acc.insert(member, score);
                        }
                    }
                }
            }
            order
                .into_iter()
                .map(|m| {
                    let s = acc[&m];
                    (m, s)
                })
                .collect()
        }
        Op::Inter | Op::Card => {
            sources.sort_by_key(|(items, _)| items.len());
            let mut rest = sources.split_off(1.min(sources.len()));
            let Some((first, w0)) = sources.pop() else {
                return Vec::new();
            };
            let lookups: Vec<(AHashMap<Bytes, f64>, f64)> = rest
                .drain(..)
                .map(|(items, w)| (items.into_iter().collect(), w))
                .collect();
            first
                .into_iter()
                .filter_map(|(member, score)| {
                    let mut score = weighted(score, w0);
                    for (other, w) in &lookups {
                        aggregate(&mut score, other.get(&member)? * w, o.aggregate);
                    }
                    Some((member, score))
                })
                .collect()
        }
        Op::Diff => {
            let mut iter = sources.into_iter();
            let (first, _) = iter.next().unwrap_or_default();
            let others: Vec<AHashMap<Bytes, f64>> =
                iter.map(|(items, _)| items.into_iter().collect()).collect();
            first
                .into_iter()
                .filter(|(m, _)| !others.iter().any(|o| o.contains_key(m)))
                .collect()
        }
    };
    out.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// Every command of the family at the proposer: reads answer here, stores are proposed.
pub fn zcombine(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let shape = parse_shape(args)?;
    if shape.store {
        let metas = ctx.lookup_many(&args[shape.keys.clone()])?;
        metas
            .iter()
            .try_for_each(|m| check_input_type(m.as_ref()))?;
        parse_options(args, &shape)?;
        return Ok(Outcome::Propose(args.to_vec()));
    }
    let inputs = read_inputs(ctx, &args[shape.keys.clone()])?;
    let o = parse_options(args, &shape)?;
    let items = combine(shape.op, inputs, &o);
    if shape.op == Op::Card {
        let n = items.len() as u64;
        let n = if o.limit > 0 { n.min(o.limit) } else { n };
        return reply(Reply::Integer(n as i64));
    }
    reply(scored_reply(items, o.with_scores))
}

/// ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE destination numkeys key [key ...] [options].
pub fn apply_zstore(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let shape = parse_shape(args)?;
    let inputs = txn_inputs(txn, db, &args[shape.keys.clone()])?;
    let o = parse_options(args, &shape)?;
    let items = combine(shape.op, inputs, &o);
    let count = replace_with(txn, db, &args[1], &items, 0)?;
    Ok(Reply::Integer(count as i64))
}
