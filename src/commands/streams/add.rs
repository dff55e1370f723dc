//! XADD, XTRIM, XDEL and XSETID: the commands that change a stream's entries.

use bytes::Bytes;

use super::id::{self, IdRules, ParsedId, StreamId};
use super::store::{self, Records, Stream, Writing};
use super::{record, save, txn_read, writing};
use crate::commands::args::{self, eq};
use crate::commands::error::{self, CmdError};
use crate::commands::{propose_as_sent, CmdResult, Ctx, Outcome};
use crate::keyspace::Txn;
use crate::protocol::Reply;

/// Redis's trimming LIMIT when `~` is given without one (100 × stream-node-max-entries).
const APPROX_LIMIT: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    MaxLen(u64),
    MinId(StreamId),
}

/// A trimming request: what to keep, and at most how many entries to remove (0: no bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Trim {
    strategy: Strategy,
    limit: u64,
}

/// XADD's and XTRIM's options, as Redis's `streamParseAddOrTrimArgsOrReply` reads them.
#[derive(Debug, Default)]
struct AddOrTrim {
    trim: Option<Trim>,
    nomkstream: bool,
    /// XADD's ID: `None` for `*`.
    id: Option<ParsedId>,
    /// Where XADD's fields start.
    fields_at: usize,
}

fn parse_add_or_trim(args: &[Bytes], xadd: bool) -> Result<AddOrTrim, CmdError> {
    let mut out = AddOrTrim::default();
    let mut strategy = None;
    let mut approx = false;
    let mut limit = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && &opt[..] == b"*" {
            break;
        } else if (eq(opt, "maxlen") || eq(opt, "minid")) && more > 0 {
            if strategy.is_some() {
                return Err(CmdError::msg(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            approx = false;
            let next = &args[i + 1][..];
            if more >= 2 && (next == b"~" || next == b"=") {
                approx = next == b"~";
                i += 1;
            }
            let value = args.get(i + 1).ok_or_else(error::syntax)?;
            strategy = Some(if eq(opt, "maxlen") {
                let n = args::int(value)?;
                if n < 0 {
                    return Err(CmdError::msg("ERR The MAXLEN argument must be >= 0."));
                }
                Strategy::MaxLen(n as u64)
            } else {
                Strategy::MinId(id::parse_strict(value)?)
            });
            i += 1;
        } else if eq(opt, "limit") && more > 0 {
            let n = args::int(&args[i + 1])?;
            if n < 0 {
                return Err(CmdError::msg("ERR The LIMIT argument must be >= 0."));
            }
            limit = Some(n as u64);
            i += 1;
        } else if xadd && eq(opt, "nomkstream") {
            out.nomkstream = true;
        } else if xadd {
            let rules = IdRules {
                auto_seq: true,
                ..IdRules::STRICT
            };
            out.id = Some(id::parse_with(opt, rules)?);
            break;
        } else {
            return Err(error::syntax());
        }
        i += 1;
    }
    out.fields_at = i + 1;
    if limit.is_some_and(|n| n > 0) && strategy.is_none() {
        return Err(CmdError::msg(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && strategy.is_none() {
        return Err(CmdError::msg(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    let limit = match limit {
        Some(_) if !approx => {
            return Err(CmdError::msg(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ))
        }
        Some(n) => n,
        None if approx => APPROX_LIMIT,
        None => 0,
    };
    out.trim = strategy.map(|strategy| Trim { strategy, limit });
    Ok(out)
}

/// XADD's checks before anything is looked up: the options, the field pairs, 0-0.
fn parse_xadd(args: &[Bytes]) -> Result<AddOrTrim, CmdError> {
    let parsed = parse_add_or_trim(args, true)?;
    let fields = args.len().saturating_sub(parsed.fields_at);
    if fields < 2 || fields % 2 == 1 {
        return Err(CmdError::WrongArity(args::lower(&args[0])));
    }
    if parsed.id.is_some_and(|p| p.seq_given && p.id.is_zero()) {
        return Err(CmdError::msg(
            "ERR The ID specified in XADD must be greater than 0-0",
        ));
    }
    Ok(parsed)
}

pub fn xadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    parse_xadd(args)?;
    propose_as_sent(ctx, args)
}

pub fn apply_xadd(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let parsed = parse_xadd(args)?;
    let key = &args[1];
    let mut stream = match txn_read(txn, db, key)? {
        Some(stream) => stream,
        None if parsed.nomkstream => return Ok(Reply::Null),
        None => Stream::new(txn.new_version()?, txn.revision()),
    };
    if stream.state.last_id == StreamId::MAX {
        return Err(CmdError::msg(
            "ERR The stream has exhausted the last possible ID, unable to add more items",
        ));
    }
    let last = stream.state.last_id;
    let new_id = match parsed.id {
        None => {
            let now = txn.now_ms();
            if now > last.ms {
                Some(StreamId::new(now, 0))
            } else {
                last.next()
            }
        }
        Some(ParsedId {
            id,
            seq_given: true,
        }) => (id > last).then_some(id),
        Some(ParsedId { id, .. }) => match id.ms.cmp(&last.ms) {
            std::cmp::Ordering::Greater => Some(StreamId::new(id.ms, 0)),
            std::cmp::Ordering::Equal => last.next().filter(|n| n.ms == id.ms),
            std::cmp::Ordering::Less => None,
        },
    };
    let new_id = new_id.ok_or(CmdError::Static(
        "ERR The ID specified in XADD is equal or smaller than the target stream top item",
    ))?;
    let mut w = writing(txn, db, key, &stream);
    w.put(
        &record::entry_sub(new_id),
        record::encode_fields(&args[parsed.fields_at..]),
    );
    if stream.len() == 0 {
        stream.state.first_id = new_id;
    }
    stream.header.count += 1;
    stream.state.last_id = new_id;
    stream.state.entries_added += 1;
    if let Some(trim) = parsed.trim {
        if trim_entries(&mut w, &mut stream, trim)? > 0 {
            w.note_event("xtrim");
        }
    }
    save(txn, db, key, &stream)?;
    Ok(Reply::Bulk(new_id.to_bytes()))
}

/// Removes the oldest entries `trim` asks for; returns how many it removed.
fn trim_entries(w: &mut Writing, stream: &mut Stream, trim: Trim) -> Result<u64, CmdError> {
    let mut wanted = match trim.strategy {
        Strategy::MaxLen(n) => stream.len().saturating_sub(n),
        Strategy::MinId(_) => u64::MAX,
    };
    if trim.limit > 0 {
        wanted = wanted.min(trim.limit);
    }
    let mut removed = 0u64;
    while removed < wanted {
        let page = (wanted - removed).min(1024) as usize;
        let oldest = store::entries(w, StreamId::ZERO, StreamId::MAX, page, false)?;
        let mut done = oldest.len() < page;
        for (id, _) in &oldest {
            if let Strategy::MinId(min) = trim.strategy {
                if *id >= min {
                    done = true;
                    break;
                }
            }
            w.delete(&record::entry_sub(*id));
            removed += 1;
        }
        if done {
            break;
        }
    }
    if removed > 0 {
        stream.header.count -= removed;
        stream.state.first_id = first_entry(w, stream)?;
    }
    Ok(removed)
}

/// The first entry's ID, 0-0 when there is none.
fn first_entry(r: &mut impl Records, stream: &Stream) -> Result<StreamId, CmdError> {
    if stream.len() == 0 {
        return Ok(StreamId::ZERO);
    }
    Ok(store::first_entry_from(r, StreamId::ZERO)?.unwrap_or(StreamId::ZERO))
}

pub fn xtrim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    parse_add_or_trim(args, false)?;
    propose_as_sent(ctx, args)
}

pub fn apply_xtrim(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let parsed = parse_add_or_trim(args, false)?;
    let trim = parsed.trim.ok_or_else(error::syntax)?;
    let key = &args[1];
    let Some(mut stream) = txn_read(txn, db, key)? else {
        return Ok(Reply::Integer(0));
    };
    let removed = trim_entries(&mut writing(txn, db, key, &stream), &mut stream, trim)?;
    if removed > 0 {
        save(txn, db, key, &stream)?;
    }
    Ok(Reply::Integer(removed as i64))
}

pub fn xdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    propose_as_sent(ctx, args)
}

pub fn apply_xdel(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let key = &args[1];
    let Some(mut stream) = txn_read(txn, db, key)? else {
        return Ok(Reply::Integer(0));
    };
    let ids = args[2..]
        .iter()
        .map(|a| id::parse_strict(a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut w = writing(txn, db, key, &stream);
    let (mut deleted, mut first_deleted) = (0u64, false);
    for id in ids {
        if store::entry(&mut w, id)?.is_none() {
            continue;
        }
        w.delete(&record::entry_sub(id));
        first_deleted |= id == stream.state.first_id;
        stream.state.max_deleted = stream.state.max_deleted.max(id);
        deleted += 1;
    }
    if deleted > 0 {
        stream.header.count -= deleted;
        if stream.len() == 0 {
            stream.state.first_id = StreamId::ZERO;
        } else if first_deleted {
            stream.state.first_id = first_entry(&mut w, &stream)?;
        }
        save(txn, db, key, &stream)?;
    }
    Ok(Reply::Integer(deleted as i64))
}

/// XSETID's arguments: the last ID, ENTRIESADDED, MAXDELETEDID.
struct SetId {
    last_id: StreamId,
    entries_added: Option<u64>,
    max_deleted: StreamId,
}

fn parse_xsetid(args: &[Bytes]) -> Result<SetId, CmdError> {
    let mut out = SetId {
        last_id: id::parse_strict(&args[2])?,
        entries_added: None,
        max_deleted: StreamId::ZERO,
    };
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        if eq(&args[i], "entriesadded") && more {
            let n = args::int(&args[i + 1])?;
            if n < 0 {
                return Err(CmdError::msg("ERR entries_added must be positive"));
            }
            out.entries_added = Some(n as u64);
        } else if eq(&args[i], "maxdeletedid") && more {
            let max = id::parse_strict(&args[i + 1])?;
            if out.last_id < max {
                return Err(CmdError::msg(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
            out.max_deleted = max;
        } else {
            return Err(error::syntax());
        }
        i += 2;
    }
    Ok(out)
}

pub fn xsetid(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    parse_xsetid(args)?;
    Ok(Outcome::Propose(args.to_vec()))
}

pub fn apply_xsetid(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let set = parse_xsetid(args)?;
    let key = &args[1];
    let mut stream = txn_read(txn, db, key)?.ok_or(CmdError::Static(error::NO_SUCH_KEY))?;
    if stream.len() > 0 {
        let top = store::entries(
            &mut writing(txn, db, key, &stream),
            StreamId::ZERO,
            StreamId::MAX,
            1,
            true,
        )?;
        if top.first().is_some_and(|(top, _)| set.last_id < *top) {
            return Err(CmdError::msg(
                "ERR The ID specified in XSETID is smaller than the target stream top item",
            ));
        }
        if set.entries_added.is_some_and(|n| n < stream.len()) {
            return Err(CmdError::msg(
                "ERR The entries_added specified in XSETID is smaller than the target stream length",
            ));
        }
    }
    stream.state.last_id = set.last_id;
    if let Some(n) = set.entries_added {
        stream.state.entries_added = n;
    }
    if !set.max_deleted.is_zero() {
        stream.state.max_deleted = set.max_deleted;
    }
    save(txn, db, key, &stream)?;
    Ok(Reply::OK)
}
