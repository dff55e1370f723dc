//! Stream commands (Redis 7.0): XADD and trimming, ranges and XREAD, consumer groups,
//! pending entries and claiming, XINFO.
//!
//! A stream is a collection whose element records are its entries, keyed by ID, and its
//! consumer groups, consumers and pending entries (`record.rs`), so a range read touches
//! only the entries it returns and DEL is O(1). Every change goes through the shard log:
//! handlers check what they can and propose the command as sent; apply runs it against the
//! transaction, deterministically — `*` IDs, delivery and idle times come from the entry's
//! time (the proposing leader's clock), so every replica, and a new leader after a
//! failover, holds the same IDs, pending entries and delivery counts.
//!
//! Where Basalt differs from redis-server, by design: `~` trimming trims exactly (Redis
//! trims whole listpack nodes, keeping up to a node more); `radix-tree-keys` and
//! `radix-tree-nodes` in XINFO STREAM count the listpack nodes Redis would hold at its
//! default `stream-node-max-entries` (100), as entries are not kept in nodes here.

mod add;
mod claim;
mod groups;
pub mod id;
mod info;
mod payload;
mod range;
mod record;
mod store;

use bytes::Bytes;

use super::error::CmdError;
use super::{ApplyFn, Ctx, Handler};
use crate::keyspace::{Keyspace, LiveReads, Txn};
use crate::protocol::Reply;
pub use payload::{dump_contents, restore_contents};

use id::StreamId;
use store::{Reading, Stream, Writing};

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("xadd", add::xadd, Some(add::apply_xadd)),
    ("xtrim", add::xtrim, Some(add::apply_xtrim)),
    ("xdel", add::xdel, Some(add::apply_xdel)),
    ("xsetid", add::xsetid, Some(add::apply_xsetid)),
    ("xlen", range::xlen, None),
    ("xrange", range::xrange, None),
    ("xrevrange", range::xrange, None),
    ("xread", range::xread, None),
    (
        "xreadgroup",
        groups::xreadgroup,
        Some(groups::apply_xreadgroup),
    ),
    ("xack", groups::xack, Some(groups::apply_xack)),
    ("xgroup", super::container, Some(groups::apply_xgroup)),
    ("xgroup|create", groups::xgroup, None),
    ("xgroup|createconsumer", groups::xgroup, None),
    ("xgroup|delconsumer", groups::xgroup, None),
    ("xgroup|destroy", groups::xgroup, None),
    ("xgroup|setid", groups::xgroup, None),
    ("xgroup|help", groups::xgroup_help, None),
    ("xpending", claim::xpending, None),
    ("xclaim", claim::xclaim, Some(claim::apply_xclaim)),
    (
        "xautoclaim",
        claim::xautoclaim,
        Some(claim::apply_xautoclaim),
    ),
    ("xinfo", super::container, None),
    ("xinfo|stream", info::xinfo_stream, None),
    ("xinfo|groups", info::xinfo_groups, None),
    ("xinfo|consumers", info::xinfo_consumers, None),
    ("xinfo|help", info::xinfo_help, None),
];

/// Redis's NOGROUP text of XPENDING, XCLAIM and XAUTOCLAIM.
fn no_group(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::msg(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}

/// Redis's NOGROUP text of XGROUP and XINFO CONSUMERS.
fn no_group_for_key(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::msg(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        String::from_utf8_lossy(group),
        String::from_utf8_lossy(key)
    ))
}

/// The live stream at `key`, read at the proposer; another type is WRONGTYPE.
fn read(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Stream>, CmdError> {
    let meta = ctx.lookup(key)?;
    ctx.shared.stats.hit(meta.is_some());
    meta.map(Stream::from_meta).transpose()
}

/// The records of `stream` at `key`, for reading at the proposer (`ctx.keyspace` at
/// `ctx.now_ms`).
fn reading<'a>(
    keyspace: &'a Keyspace,
    now_ms: u64,
    db: u8,
    key: &'a [u8],
    stream: &Stream,
) -> Reading<'a> {
    Reading {
        reads: LiveReads { keyspace, now_ms },
        db,
        key,
        version: stream.version(),
    }
}

/// The stream at `key` inside a write.
fn txn_read(txn: &mut Txn, db: u8, key: &[u8]) -> Result<Option<Stream>, CmdError> {
    txn.get(db, key)?.map(Stream::from_meta).transpose()
}

/// The records of `stream` at `key`, for writing at apply.
fn writing<'a, 't>(
    txn: &'a mut Txn<'t>,
    db: u8,
    key: &'a [u8],
    stream: &Stream,
) -> Writing<'a, 't> {
    Writing {
        reads: txn,
        db,
        key,
        version: stream.version(),
    }
}

/// Stores a changed stream's metadata (a stream stays when it has no entries left).
fn save(txn: &mut Txn, db: u8, key: &[u8], stream: &Stream) -> Result<(), CmdError> {
    let revision = txn.revision();
    txn.put(db, key, stream.to_meta(revision))?;
    Ok(())
}

/// One entry as Redis replies it: its ID, then its fields and values.
fn entry_reply(id: StreamId, fields: Vec<Bytes>) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(id.to_bytes()),
        Reply::Array(fields.into_iter().map(Reply::Bulk).collect()),
    ])
}

fn entries_reply(entries: Vec<(StreamId, Vec<Bytes>)>) -> Reply {
    Reply::Array(
        entries
            .into_iter()
            .map(|(id, fields)| entry_reply(id, fields))
            .collect(),
    )
}

/// A COUNT as XRANGE, XREAD and XPENDING read it: negative counts as 0.
fn count_arg(arg: &[u8]) -> Result<usize, CmdError> {
    Ok(super::args::int(arg)?.max(0) as usize)
}

/// An interval bound as XRANGE, XPENDING and XAUTOCLAIM read it: `(` makes it exclusive;
/// `<ms>` alone means `<ms>-<missing_seq>`. `Ok(None)` when an exclusive bound has no next
/// (or previous) ID: Redis's "invalid start/end ID for the interval".
fn interval_bound(arg: &[u8], missing_seq: u64, start: bool) -> Result<StreamId, CmdError> {
    let (exclusive, text) = match arg {
        [b'(', rest @ ..] if !rest.is_empty() => (true, rest),
        _ => (false, arg),
    };
    let rules = if exclusive {
        id::IdRules {
            missing_seq,
            ..id::IdRules::STRICT
        }
    } else {
        id::IdRules::loose(missing_seq)
    };
    let bound = id::parse_with(text, rules)?.id;
    if !exclusive {
        return Ok(bound);
    }
    let moved = if start { bound.next() } else { bound.prev() };
    moved.ok_or_else(|| {
        CmdError::msg(if start {
            "ERR invalid start ID for the interval"
        } else {
            "ERR invalid end ID for the interval"
        })
    })
}
