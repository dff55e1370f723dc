//! Pending entries: XPENDING (summary and extended), XCLAIM and XAUTOCLAIM.
//!
//! Idle times are the entry time of the reading command (the proposer's clock) minus the
//! delivery time recorded by the entry that delivered or claimed it, so they survive a
//! failover with the rest of the group.

use bytes::Bytes;

use super::groups::{assign_pending, drop_pending, touch_consumer};
use super::id::{self, StreamId};
use super::record::Group;
use super::store::{self, Records};
use super::{count_arg, entry_reply, interval_bound, no_group, read, reading, txn_read, writing};
use crate::commands::args::{self, eq};
use crate::commands::error::{self, CmdError};
use crate::commands::{propose_as_sent, reply, CmdResult, Ctx};
use crate::keyspace::Txn;
use crate::protocol::Reply;

/// Pending entries read per page while filtering by idle time.
const PAGE: usize = 256;

/// XPENDING key group [[IDLE min-idle] start end count [consumer]].
pub fn xpending(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let summary = args.len() == 3;
    if !summary && !(6..=9).contains(&args.len()) {
        return Err(error::syntax());
    }
    let mut extended = None;
    if !summary {
        let mut at = 3;
        let mut min_idle = 0;
        if eq(&args[3], "idle") {
            min_idle = args::int(&args[4])?;
            if args.len() < 8 {
                return Err(error::syntax());
            }
            at = 5;
        }
        let count = count_arg(&args[at + 2])?;
        let start = interval_bound(&args[at], 0, true)?;
        let end = interval_bound(&args[at + 1], u64::MAX, false)?;
        extended = Some((min_idle, start, end, count, args.get(at + 3)));
    }
    let (key, group_name) = (&args[1], &args[2]);
    let stream = read(ctx, key)?;
    let mut r = match &stream {
        Some(s) => reading(ctx.keyspace, ctx.now_ms, ctx.db(), key, s),
        None => return Err(no_group(key, group_name)),
    };
    let group = store::group(&mut r, group_name)?.ok_or_else(|| no_group(key, group_name))?;
    let Some((min_idle, start, end, count, consumer)) = extended else {
        return reply(summary_reply(&mut r, group_name, &group)?);
    };
    if let Some(consumer) = consumer {
        if store::consumer(&mut r, group_name, consumer)?.is_none() {
            return reply(Reply::Array(Vec::new()));
        }
    }
    let now = ctx.now_ms;
    let mut items = Vec::new();
    let mut from = start;
    while items.len() < count {
        let page = match consumer {
            Some(consumer) => {
                let ids =
                    store::consumer_pending_ids(&mut r, group_name, consumer, from, end, PAGE)?;
                let mut page = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some(p) = store::pending(&mut r, group_name, id)? {
                        page.push((id, p));
                    }
                }
                page
            }
            None => store::pending_range(&mut r, group_name, from, end, PAGE, false)?,
        };
        let full = page.len() == PAGE;
        let last = page.last().map(|(id, _)| *id);
        for (id, pending) in page {
            let idle = now.saturating_sub(pending.delivery_ms) as i64;
            if min_idle > 0 && idle < min_idle {
                continue;
            }
            items.push(Reply::Array(vec![
                Reply::Bulk(id.to_bytes()),
                Reply::Bulk(pending.consumer),
                Reply::Integer(idle),
                Reply::Integer(pending.delivery_count as i64),
            ]));
            if items.len() == count {
                break;
            }
        }
        match last.and_then(StreamId::next) {
            Some(next) if full => from = next,
            _ => break,
        }
    }
    reply(Reply::Array(items))
}

/// XPENDING's summary: the count, the first and last IDs, and each consumer's count.
fn summary_reply(
    r: &mut impl Records,
    group_name: &[u8],
    group: &Group,
) -> Result<Reply, CmdError> {
    let count = Reply::Integer(group.pending as i64);
    let first = store::pending_range(r, group_name, StreamId::ZERO, StreamId::MAX, 1, false)?;
    let last = store::pending_range(r, group_name, StreamId::ZERO, StreamId::MAX, 1, true)?;
    let (Some((first, _)), Some((last, _))) = (first.first(), last.first()) else {
        return Ok(Reply::Array(vec![
            Reply::Integer(0),
            Reply::Null,
            Reply::Null,
            Reply::NullArray,
        ]));
    };
    let consumers = store::consumers(r, group_name)?
        .into_iter()
        .filter(|(_, c)| c.pending > 0)
        .map(|(name, c)| {
            Reply::Array(vec![
                Reply::Bulk(name),
                Reply::Bulk(Bytes::from(c.pending.to_string())),
            ])
        })
        .collect();
    Ok(Reply::Array(vec![
        count,
        Reply::Bulk(first.to_bytes()),
        Reply::Bulk(last.to_bytes()),
        Reply::Array(consumers),
    ]))
}

pub fn xclaim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    propose_as_sent(ctx, args)
}

/// XCLAIM's options after its IDs.
struct ClaimOptions {
    force: bool,
    justid: bool,
    /// The delivery time to record (IDLE or TIME), if given.
    delivery_ms: Option<i64>,
    retry_count: Option<i64>,
    last_id: StreamId,
}

fn parse_claim_options(args: &[Bytes], now: u64) -> Result<ClaimOptions, CmdError> {
    let mut out = ClaimOptions {
        force: false,
        justid: false,
        delivery_ms: None,
        retry_count: None,
        last_id: StreamId::ZERO,
    };
    let mut j = 0;
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = &args[j];
        if eq(opt, "force") {
            out.force = true;
        } else if eq(opt, "justid") {
            out.justid = true;
        } else if eq(opt, "idle") && more {
            j += 1;
            let idle = args::int_with(&args[j], "ERR Invalid IDLE option argument for XCLAIM")?;
            out.delivery_ms = Some((now as i64).wrapping_sub(idle));
        } else if eq(opt, "time") && more {
            j += 1;
            out.delivery_ms = Some(args::int_with(
                &args[j],
                "ERR Invalid TIME option argument for XCLAIM",
            )?);
        } else if eq(opt, "retrycount") && more {
            j += 1;
            out.retry_count = Some(args::int_with(
                &args[j],
                "ERR Invalid RETRYCOUNT option argument for XCLAIM",
            )?);
        } else if eq(opt, "lastid") && more {
            j += 1;
            out.last_id = id::parse_strict(&args[j])?;
        } else {
            return Err(CmdError::msg(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(opt)
            )));
        }
        j += 1;
    }
    Ok(out)
}

/// The group of a claiming command, or NOGROUP.
fn claim_target(
    txn: &mut Txn,
    db: u8,
    key: &Bytes,
    group_name: &Bytes,
) -> Result<(super::store::Stream, Group), CmdError> {
    let stream = txn_read(txn, db, key)?.ok_or_else(|| no_group(key, group_name))?;
    let group = store::group(&mut writing(txn, db, key, &stream), group_name)?
        .ok_or_else(|| no_group(key, group_name))?;
    Ok((stream, group))
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME ms]
/// [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID id].
pub fn apply_xclaim(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let (key, group_name, consumer) = (&args[1], &args[2], &args[3]);
    let (stream, mut group) = claim_target(txn, db, key, group_name)?;
    let min_idle =
        args::int_with(&args[4], "ERR Invalid min-idle-time argument for XCLAIM")?.max(0) as u64;
    let ids_end = 5 + args[5..]
        .iter()
        .take_while(|a| id::parse_strict(a).is_ok())
        .count();
    let now = txn.now_ms();
    let opts = parse_claim_options(&args[ids_end..], now)?;
    if opts.last_id > group.last_id {
        group.last_id = opts.last_id;
    }
    let delivery_ms = match opts.delivery_ms {
        Some(at) if (0..=now as i64).contains(&at) => at as u64,
        _ => now,
    };
    let mut w = writing(txn, db, key, &stream);
    let mut touched = false;
    let mut items = Vec::new();
    for arg in &args[5..ids_end] {
        let id = id::parse_strict(arg)?;
        let found = store::pending(&mut w, group_name, id)?;
        let Some(fields) = store::entry(&mut w, id)? else {
            // The entry is gone: its pending record goes too.
            drop_pending(&mut w, group_name, &mut group, id)?;
            continue;
        };
        let count = match found {
            Some(pending) => {
                let idle = now.saturating_sub(pending.delivery_ms);
                if min_idle > 0 && idle < min_idle {
                    continue;
                }
                pending.delivery_count
            }
            // FORCE makes a pending entry of an entry no consumer holds (Redis creates it
            // with one delivery).
            None if opts.force => 1,
            None => continue,
        };
        if !touched {
            touch_consumer(&mut w, group_name, &mut group, consumer, now)?;
            touched = true;
        }
        let count = match opts.retry_count {
            Some(n) if n >= 0 => n as u64,
            _ if opts.justid => count,
            _ => count + 1,
        };
        assign_pending(
            &mut w,
            group_name,
            &mut group,
            id,
            consumer,
            delivery_ms,
            count,
        )?;
        items.push(if opts.justid {
            Reply::Bulk(id.to_bytes())
        } else {
            entry_reply(id, fields)
        });
    }
    w.put_group(group_name, &group);
    Ok(Reply::Array(items))
}

pub fn xautoclaim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    parse_autoclaim(args)?;
    propose_as_sent(ctx, args)
}

/// XAUTOCLAIM's arguments: min idle time, start, COUNT, JUSTID.
struct AutoClaim {
    min_idle: u64,
    start: StreamId,
    count: u64,
    justid: bool,
}

fn parse_autoclaim(args: &[Bytes]) -> Result<AutoClaim, CmdError> {
    let min_idle = args::int_with(
        &args[4],
        "ERR Invalid min-idle-time argument for XAUTOCLAIM",
    )?
    .max(0) as u64;
    let start = interval_bound(&args[5], 0, true)?;
    let mut out = AutoClaim {
        min_idle,
        start,
        count: 100,
        justid: false,
    };
    let mut j = 6;
    while j < args.len() {
        if eq(&args[j], "count") && j + 1 < args.len() {
            // Redis bounds COUNT so that count × 10 attempts and the reply fit.
            let max = i64::MAX / 16;
            let n = args::int_with(&args[j + 1], "ERR COUNT must be > 0")?;
            if !(1..=max).contains(&n) {
                return Err(CmdError::msg("ERR COUNT must be > 0"));
            }
            out.count = n as u64;
            j += 1;
        } else if eq(&args[j], "justid") {
            out.justid = true;
        } else {
            return Err(error::syntax());
        }
        j += 1;
    }
    Ok(out)
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID].
pub fn apply_xautoclaim(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let opts = parse_autoclaim(args)?;
    let (key, group_name, consumer) = (&args[1], &args[2], &args[3]);
    let (stream, mut group) = claim_target(txn, db, key, group_name)?;
    let now = txn.now_ms();
    let mut w = writing(txn, db, key, &stream);
    let mut attempts = opts.count.saturating_mul(10);
    let mut count = opts.count;
    let (mut claimed, mut deleted) = (Vec::new(), Vec::new());
    let mut touched = false;
    let mut from = opts.start;
    let next = 'scan: loop {
        let page = store::pending_range(&mut w, group_name, from, StreamId::MAX, PAGE, false)?;
        let Some(last) = page.last().map(|(id, _)| *id) else {
            break StreamId::ZERO;
        };
        let full = page.len() == PAGE;
        for (id, pending) in page {
            if attempts == 0 || count == 0 {
                break 'scan id;
            }
            attempts -= 1;
            let Some(fields) = store::entry(&mut w, id)? else {
                drop_pending(&mut w, group_name, &mut group, id)?;
                deleted.push(Reply::Bulk(id.to_bytes()));
                count -= 1;
                continue;
            };
            if opts.min_idle > 0 && now.saturating_sub(pending.delivery_ms) < opts.min_idle {
                continue;
            }
            if !touched {
                touch_consumer(&mut w, group_name, &mut group, consumer, now)?;
                touched = true;
            }
            let deliveries = pending.delivery_count + u64::from(!opts.justid);
            assign_pending(
                &mut w, group_name, &mut group, id, consumer, now, deliveries,
            )?;
            claimed.push(if opts.justid {
                Reply::Bulk(id.to_bytes())
            } else {
                entry_reply(id, fields)
            });
            count -= 1;
        }
        match last.next() {
            Some(after) if full => from = after,
            _ => break StreamId::ZERO,
        }
    };
    w.put_group(group_name, &group);
    Ok(Reply::Array(vec![
        Reply::Bulk(next.to_bytes()),
        Reply::Array(claimed),
        Reply::Array(deleted),
    ]))
}
