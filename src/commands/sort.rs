//! SORT and SORT_RO over lists, sets and sorted sets: BY (a pattern, or `nosort`), LIMIT,
//! GET (`#`, `key*`, `hash*->field`), ASC/DESC, ALPHA, STORE — Redis 7.0's rules.
//!
//! Without STORE, SORT is a read at the proposer. With STORE it is proposed as sent and
//! apply sorts again against the transaction (the same state on every replica) and writes
//! the destination list. Patterns name keys the command does not declare: on a node that
//! holds every shard alone they may name any key; in a cluster, as Redis Cluster, only a
//! pattern with a hash tag is accepted, and keys of a shard other than the sorted key's
//! are not found (Redis Cluster finds none of another node's keys).
//!
//! Ordering, as Redis: numbers by value, equal numbers by the elements' bytes; ALPHA by
//! bytes (Redis's `strcoll` in the C locale); elements whose BY key is missing count as 0
//! (or sort first, with ALPHA), keeping their order among themselves.

use std::cmp::Ordering;

use bytes::Bytes;

use super::args::{self, eq};
use super::error::{self, CmdError};
use super::{reply, CmdResult, Ctx, Outcome};
use crate::cluster::{key_slot, ShardMap, Slot};
use crate::keyspace::encoding;
use crate::keyspace::{LiveReads, Meta, Reads, Space, SubRange, Txn, ValueType};
use crate::protocol::Reply;

pub static COMMANDS: &[(&str, super::Handler, Option<super::ApplyFn>)] =
    &[("sort", sort, Some(apply_sort)), ("sort_ro", sort, None)];

/// Where SORT reads: the keyspace at the proposer, or the transaction at apply.
struct Source<R> {
    reads: R,
    db: u8,
}

impl<R: Reads> Source<R> {
    fn value(&mut self, key: &[u8]) -> Result<Option<Meta>, CmdError> {
        Ok(self.reads.live(self.db, key)?)
    }

    /// A collection's records of `space`, in sub-key order.
    fn records(
        &mut self,
        key: &[u8],
        version: u64,
        space: Space,
    ) -> Result<Vec<(Bytes, Bytes)>, CmdError> {
        let all = SubRange::all();
        Ok(self
            .reads
            .records(space, self.db, key, version, &all, usize::MAX, false)?)
    }

    /// One field of a hash.
    fn field(&mut self, key: &[u8], version: u64, field: &[u8]) -> Result<Option<Bytes>, CmdError> {
        Ok(self
            .reads
            .record(Space::Elements, self.db, key, version, field)?)
    }
}

/// SORT's options.
struct Options {
    desc: bool,
    alpha: bool,
    limit: Option<(i64, i64)>,
    by: Option<Bytes>,
    /// BY without `*`: the elements keep their stored order.
    dont_sort: bool,
    gets: Vec<Bytes>,
    store: Option<Bytes>,
}

/// Where the keys a pattern names may be read: anywhere (a node alone), or only in one
/// shard (a cluster: the sorted key's).
#[derive(Clone, Copy)]
enum Reach {
    Anywhere,
    Shard(ShardMap, u16),
}

impl Reach {
    fn allows(&self, key: &[u8]) -> bool {
        match self {
            Reach::Anywhere => true,
            Reach::Shard(map, shard) => map.shard_of(key_slot(key)).0 == *shard,
        }
    }
}

/// The slot of every key a pattern can name, if they share one (Redis's
/// `patternHashSlot`): a hash tag before any wildcard, or no wildcard at all.
fn pattern_slot(pattern: &[u8]) -> Option<Slot> {
    // Where the first `{` is, until a tag closes; an empty `{}` ends the search for one.
    enum Tag {
        Unseen,
        Open(usize),
        Empty,
    }
    let mut tag = Tag::Unseen;
    for (i, &b) in pattern.iter().enumerate() {
        match (b, &tag) {
            (b'*' | b'?' | b'[' | b'\\', _) => return None,
            (b'{', Tag::Unseen) => tag = Tag::Open(i),
            (b'}', Tag::Open(open)) if *open + 1 == i => tag = Tag::Empty,
            (b'}', Tag::Open(open)) => {
                return Some(Slot(
                    crate::cluster::slot::crc16(&pattern[open + 1..i]) & 0x3fff,
                ))
            }
            _ => {}
        }
    }
    Some(Slot(crate::cluster::slot::crc16(pattern) & 0x3fff))
}

fn parse(
    args: &[Bytes],
    readonly: bool,
    clustered: bool,
    reads_every_key: bool,
) -> Result<Options, CmdError> {
    let mut o = Options {
        desc: false,
        alpha: false,
        limit: None,
        by: None,
        dont_sort: false,
        gets: Vec::new(),
        store: None,
    };
    let check = |pattern: &[u8], option: &str| -> Result<(), CmdError> {
        if clustered && pattern_slot(pattern).is_none() {
            return Err(CmdError::msg(format!(
                "ERR {option} option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots."
            )));
        }
        if !reads_every_key {
            return Err(CmdError::msg(format!(
                "ERR {option} option of SORT denied due to insufficient ACL permissions."
            )));
        }
        Ok(())
    };
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let opt = &args[j];
        if eq(opt, "asc") {
            o.desc = false;
        } else if eq(opt, "desc") {
            o.desc = true;
        } else if eq(opt, "alpha") {
            o.alpha = true;
        } else if eq(opt, "limit") && left >= 2 {
            o.limit = Some((args::int(&args[j + 1])?, args::int(&args[j + 2])?));
            j += 2;
        } else if !readonly && eq(opt, "store") && left >= 1 {
            o.store = Some(args[j + 1].clone());
            j += 1;
        } else if eq(opt, "by") && left >= 1 {
            let pattern = &args[j + 1];
            o.by = Some(pattern.clone());
            o.dont_sort = !pattern.contains(&b'*');
            if !o.dont_sort {
                check(pattern, "BY")?;
            }
            j += 1;
        } else if eq(opt, "get") && left >= 1 {
            check(&args[j + 1], "GET")?;
            o.gets.push(args[j + 1].clone());
            j += 1;
        } else {
            return Err(error::syntax());
        }
        j += 1;
    }
    Ok(o)
}

/// What a pattern names for one element: `#` is the element; `key*` a string; `key*->f` a
/// hash field. `None` when there is no such value (or `*` is missing).
fn lookup(
    src: &mut Source<impl Reads>,
    reach: Reach,
    pattern: &[u8],
    element: &Bytes,
) -> Result<Option<Bytes>, CmdError> {
    if pattern == b"#" {
        return Ok(Some(element.clone()));
    }
    // Redis reads the pattern as a C string.
    let pattern = pattern.split(|b| *b == 0).next().unwrap_or_default();
    let Some(star) = pattern.iter().position(|b| *b == b'*') else {
        return Ok(None);
    };
    let arrow = pattern[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|at| star + 1 + at)
        .filter(|at| at + 2 < pattern.len());
    let key_end = arrow.unwrap_or(pattern.len());
    let mut key = Vec::with_capacity(key_end + element.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    if !reach.allows(&key) {
        return Ok(None);
    }
    let Some(meta) = src.value(&key)? else {
        return Ok(None);
    };
    match arrow {
        Some(at) if meta.value_type == ValueType::Hash => {
            let Some(header) = meta.collection_header() else {
                return Ok(None);
            };
            src.field(&key, header.version, &pattern[at + 2..])
        }
        None if meta.value_type == ValueType::String => Ok(Some(meta.value)),
        _ => Ok(None),
    }
}

/// The elements of the value to sort, in its own order (list order, members bytewise,
/// sorted-set members by score).
fn elements(src: &mut Source<impl Reads>, key: &[u8], meta: &Meta) -> Result<Vec<Bytes>, CmdError> {
    let header = meta
        .collection_header()
        .ok_or_else(|| CmdError::Internal("bad collection record".into()))?;
    Ok(match meta.value_type {
        ValueType::List => src
            .records(key, header.version, Space::Elements)?
            .into_iter()
            .map(|(_, v)| v)
            .collect(),
        ValueType::Set => src
            .records(key, header.version, Space::Elements)?
            .into_iter()
            .map(|(m, _)| m)
            .collect(),
        _ => src
            .records(key, header.version, Space::Scores)?
            .into_iter()
            .filter_map(|(sub, _)| encoding::split_score_sub(&sub).map(|(_, m)| m))
            .collect(),
    })
}

/// The value to sort by: a number (0 when the BY key is missing) or bytes.
enum Weight {
    Number(f64),
    Text(Option<Bytes>),
}

/// A weight's number as Redis reads one with `strtod`: the whole string, no overflow,
/// no NaN; the empty string is 0.
fn number(text: &[u8]) -> Option<f64> {
    if text.is_empty() {
        return Some(0.0);
    }
    // `strtod` skips leading blanks.
    let start = text.iter().position(|b| !args::is_c_space(*b))?;
    let (value, out_of_range) = super::strtod::strtod(&text[start..])?;
    (!out_of_range).then_some(value)
}

/// Sorts (unless the options say not to) and cuts to LIMIT; `None` when a weight is not
/// a number.
fn sorted(
    src: &mut Source<impl Reads>,
    reach: Reach,
    o: &Options,
    meta: Option<&Meta>,
    key: &[u8],
    in_script: bool,
) -> Result<Option<Vec<Bytes>>, CmdError> {
    let mut items = match meta {
        Some(meta) => elements(src, key, meta)?,
        None => Vec::new(),
    };
    let vt = meta.map(|m| m.value_type);
    let (mut dont_sort, mut alpha, mut by) = (o.dont_sort, o.alpha, o.by.clone());
    // An unsorted set would come out in an order Redis does not promise: STORE and scripts
    // sort it by its bytes.
    if dont_sort && vt == Some(ValueType::Set) && (o.store.is_some() || in_script) {
        dont_sort = false;
        alpha = true;
        by = None;
    }
    let len = items.len() as i64;
    let (limit_start, limit_count) = o.limit.unwrap_or((0, -1));
    let mut start = limit_start.clamp(0, len);
    let count = limit_count.clamp(-1, len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    end = end.min(len - 1);
    let range = |items: Vec<Bytes>| -> Vec<Bytes> {
        if end < start {
            return Vec::new();
        }
        items[start as usize..=end as usize].to_vec()
    };
    if dont_sort {
        if o.desc && vt != Some(ValueType::Set) {
            items.reverse();
        }
        return Ok(Some(range(items)));
    }
    let mut weighted = Vec::with_capacity(items.len());
    for item in items {
        let source = match &by {
            Some(pattern) => lookup(src, reach, pattern, &item)?,
            None => Some(item.clone()),
        };
        let weight = if alpha {
            Weight::Text(if by.is_some() { source } else { None })
        } else {
            match source {
                None => Weight::Number(0.0),
                Some(text) => match number(&text) {
                    Some(n) => Weight::Number(n),
                    None => return Ok(None),
                },
            }
        };
        weighted.push((item, weight));
    }
    let bypattern = by.is_some();
    weighted.sort_by(|(a, wa), (b, wb)| {
        let cmp = match (wa, wb) {
            (Weight::Number(x), Weight::Number(y)) => x
                .partial_cmp(y)
                .unwrap_or(Ordering::Equal)
                .then_with(|| a.cmp(b)),
            (Weight::Text(x), Weight::Text(y)) if bypattern => match (x, y) {
                (Some(x), Some(y)) => c_string_cmp(x, y),
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
            },
            _ => c_string_cmp(a, b),
        };
        if o.desc {
            cmp.reverse()
        } else {
            cmp
        }
    });
    Ok(Some(range(weighted.into_iter().map(|(i, _)| i).collect())))
}

/// `strcoll` in the C locale: bytes up to the first NUL.
fn c_string_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let cut = |s: &[u8]| -> usize { s.iter().position(|c| *c == 0).unwrap_or(s.len()) };
    a[..cut(a)].cmp(&b[..cut(b)])
}

/// The output: the elements, or for each one the GET patterns' values (`None`: missing).
fn output(
    src: &mut Source<impl Reads>,
    reach: Reach,
    o: &Options,
    items: &[Bytes],
) -> Result<Vec<Option<Bytes>>, CmdError> {
    if o.gets.is_empty() {
        return Ok(items.iter().cloned().map(Some).collect());
    }
    let mut out = Vec::with_capacity(items.len() * o.gets.len());
    for item in items {
        for pattern in &o.gets {
            out.push(lookup(src, reach, pattern, item)?);
        }
    }
    Ok(out)
}

const NOT_DOUBLE: &str = "ERR One or more scores can't be converted into double";

fn sortable(meta: Option<&Meta>) -> Result<(), CmdError> {
    match meta.map(|m| m.value_type) {
        None | Some(ValueType::List | ValueType::Set | ValueType::ZSet) => Ok(()),
        Some(_) => Err(error::wrongtype()),
    }
}

/// Where pattern keys may be read for a sort of `key` by this node.
fn reach_of(ctx: &Ctx, key: &[u8]) -> Reach {
    if ctx.cluster.alone() {
        return Reach::Anywhere;
    }
    let map = ctx.cluster.shard_map();
    Reach::Shard(map, map.shard_of(key_slot(key)).0)
}

/// In a cluster, a STORE's patterns must name keys of the sorted key's shard: apply reads
/// them on every replica of that shard, which holds no other shard's keys for certain.
fn check_store_reach(reach: Reach, o: &Options) -> Result<(), CmdError> {
    let Reach::Shard(map, shard) = reach else {
        return Ok(());
    };
    let patterns = o.by.iter().filter(|_| !o.dont_sort).map(|p| ("BY", p));
    for (option, pattern) in patterns.chain(o.gets.iter().map(|p| ("GET", p))) {
        let elsewhere = pattern_slot(pattern).is_some_and(|slot| map.shard_of(slot).0 != shard);
        if &pattern[..] != b"#" && elsewhere {
            return Err(CmdError::msg(format!(
                "ERR {option} option of SORT with STORE denied in Cluster mode when keys formed by the pattern are in another shard than the sorted key."
            )));
        }
    }
    Ok(())
}

/// SORT and SORT_RO.
pub fn sort(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let readonly = eq(&args[0], "sort_ro");
    let reach = reach_of(ctx, &args[1]);
    let clustered = matches!(reach, Reach::Shard(..));
    let o = parse(
        args,
        readonly,
        clustered,
        ctx.session.user.reads_every_key(),
    )?;
    let key = &args[1];
    if o.store.is_some() {
        // A write: apply checks the key (writes before it in a pipeline are not applied
        // when this runs).
        check_store_reach(reach, &o)?;
        return Ok(Outcome::Propose(args.to_vec()));
    }
    let meta = ctx.lookup(key)?;
    sortable(meta.as_ref())?;
    ctx.shared.stats.hit(meta.is_some());
    let in_script = ctx.session.in_script;
    let mut src = Source {
        reads: LiveReads {
            keyspace: ctx.keyspace,
            now_ms: ctx.now_ms,
        },
        db: ctx.db(),
    };
    let Some(items) = sorted(&mut src, reach, &o, meta.as_ref(), key, in_script)? else {
        return Err(CmdError::Static(NOT_DOUBLE));
    };
    let values = output(&mut src, reach, &o, &items)?;
    reply(Reply::Array(
        values
            .into_iter()
            .map(|v| v.map_or(Reply::Null, Reply::Bulk))
            .collect(),
    ))
}

/// SORT … STORE at apply: sorts against the transaction and replaces the destination with
/// the result as a list (an empty result deletes it).
pub fn apply_sort(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    // The handler checked the options, the cluster rules and ACL, and that in a cluster
    // the patterns name keys of the sorted key's shard only.
    let o = parse(args, false, false, true)?;
    let Some(store) = o.store.clone() else {
        return Err(error::syntax());
    };
    let key = &args[1];
    let reach = Reach::Anywhere;
    let mut src = Source {
        reads: &mut *txn,
        db,
    };
    let meta = src.value(key)?;
    sortable(meta.as_ref())?;
    let Some(items) = sorted(&mut src, reach, &o, meta.as_ref(), key, false)? else {
        return Err(CmdError::Static(NOT_DOUBLE));
    };
    let values: Vec<Bytes> = output(&mut src, reach, &o, &items)?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect();
    let count = values.len() as i64;
    if txn.exists(db, &store)? {
        txn.delete(db, &store)?;
    }
    if !values.is_empty() {
        super::lists::store_list(txn, db, &store, values, 0)?;
    }
    Ok(Reply::Integer(count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_has_a_slot_as_redis_computes_it() {
        let slot = |k: &[u8]| Some(key_slot(k));
        assert_eq!(
            pattern_slot(b"w_*{user}"),
            None,
            "a wildcard before the tag"
        );
        assert_eq!(pattern_slot(b"w_{user}*"), slot(b"user"));
        assert_eq!(pattern_slot(b"{user}w_*"), slot(b"user"));
        assert_eq!(pattern_slot(b"{user}w_*->f"), slot(b"user"));
        assert_eq!(pattern_slot(b"fixed"), slot(b"fixed"));
        assert_eq!(
            pattern_slot(b"}x{a}"),
            slot(b"a"),
            "a closing brace before any opening one"
        );
        // An empty tag: the rest is not searched for another, the whole key is hashed.
        assert_eq!(
            pattern_slot(b"{}{a}"),
            Some(Slot(crate::cluster::slot::crc16(b"{}{a}") & 0x3fff))
        );
        assert_eq!(pattern_slot(b"a\\*"), None);
    }
}
