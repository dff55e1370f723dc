//! Consumer groups: XGROUP, XREADGROUP (with BLOCK) and XACK, and the bookkeeping of
//! consumers and pending entries they share with XCLAIM.

use bytes::Bytes;

use super::id::{self, StreamId};
use super::range::parse_read;
use super::record::{self, Consumer, Group, Pending, ENTRIES_READ_UNKNOWN};
use super::store::{self, Stream, Writing};
use super::{entry_reply, no_group_for_key, read, reading, save, txn_read, writing};
use crate::commands::args::{self, eq};
use crate::commands::blocking::WaitFor;
use crate::commands::error::{self, CmdError};
use crate::commands::object::help_reply;
use crate::commands::{propose_as_sent, reply, BlockOn, CmdResult, Ctx, Outcome};
use crate::keyspace::Txn;
use crate::protocol::Reply;

const DOLLAR_IN_GROUP: &str = "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.";
const KEY_MUST_EXIST: &str = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";

fn no_group_in_read(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::msg(format!(
        "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}

/// Creates the consumer `name` of `group` if it is missing, and marks it seen at
/// `now_ms`; true if it was created.
pub fn touch_consumer(
    w: &mut Writing,
    group_name: &[u8],
    group: &mut Group,
    name: &[u8],
    now_ms: u64,
) -> Result<bool, CmdError> {
    let found = store::consumer(w, group_name, name)?;
    let created = found.is_none();
    let consumer = Consumer {
        seen_ms: now_ms,
        pending: found.map_or(0, |c| c.pending),
    };
    if created {
        group.consumers += 1;
        w.note_event("xgroup-createconsumer");
    }
    w.put_consumer(group_name, name, &consumer);
    Ok(created)
}

/// Adds `delta` to the pending count of consumer `name`.
fn count_pending(
    w: &mut Writing,
    group_name: &[u8],
    name: &[u8],
    delta: i64,
) -> Result<(), CmdError> {
    if let Some(mut consumer) = store::consumer(w, group_name, name)? {
        consumer.pending = consumer.pending.saturating_add_signed(delta);
        w.put_consumer(group_name, name, &consumer);
    }
    Ok(())
}

/// Makes `id` pending for consumer `to` with this delivery time and count, taking it from
/// whichever consumer held it (Redis's NACK reassignment).
pub fn assign_pending(
    w: &mut Writing,
    group_name: &[u8],
    group: &mut Group,
    id: StreamId,
    to: &[u8],
    delivery_ms: u64,
    delivery_count: u64,
) -> Result<(), CmdError> {
    match store::pending(w, group_name, id)? {
        Some(old) if old.consumer == to => {}
        Some(old) => {
            w.delete(&record::consumer_pending_sub(group_name, &old.consumer, id));
            count_pending(w, group_name, &old.consumer, -1)?;
            count_pending(w, group_name, to, 1)?;
        }
        None => {
            group.pending += 1;
            count_pending(w, group_name, to, 1)?;
        }
    }
    let pending = Pending {
        delivery_ms,
        delivery_count,
        consumer: Bytes::copy_from_slice(to),
    };
    w.put_pending(group_name, id, &pending);
    Ok(())
}

/// Removes `id` from the group's pending entries; true if it was pending.
pub fn drop_pending(
    w: &mut Writing,
    group_name: &[u8],
    group: &mut Group,
    id: StreamId,
) -> Result<bool, CmdError> {
    let Some(old) = store::pending(w, group_name, id)? else {
        return Ok(false);
    };
    w.delete_pending(group_name, id, &old.consumer);
    count_pending(w, group_name, &old.consumer, -1)?;
    group.pending -= 1;
    Ok(true)
}

/// What XREADGROUP reads from one stream: new entries (`>`) or the consumer's history
/// after an ID.
#[derive(Debug, Clone, Copy)]
enum ReadFrom {
    New,
    History(StreamId),
}

fn read_from(arg: &[u8]) -> Result<ReadFrom, CmdError> {
    match arg {
        b"$" => Err(CmdError::Static(DOLLAR_IN_GROUP)),
        b">" => Ok(ReadFrom::New),
        // Redis marks `>` with the largest ID, so that ID given outright means `>` too.
        _ => match id::parse_strict(arg)? {
            StreamId::MAX => Ok(ReadFrom::New),
            after => Ok(ReadFrom::History(after)),
        },
    }
}

/// XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS key [key ...] id [id ...].
pub fn xreadgroup(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let parsed = parse_read(args, true)?;
    // Without BLOCK it is a write like any other: apply checks the groups (writes before
    // it in a pipeline are not applied yet when this runs).
    if parsed.block.is_none() {
        return Ok(Outcome::Propose(args.to_vec()));
    }
    let (group_name, _) = parsed.group.clone().ok_or_else(error::syntax)?;
    let keys = parsed.keys(args);
    let mut ready = false;
    for (key, id_arg) in keys.iter().zip(parsed.ids(args)) {
        let stream = read(ctx, key)?;
        let found = match &stream {
            Some(s) => store::group(
                &mut reading(ctx.keyspace, ctx.now_ms, ctx.db(), key, s),
                &group_name,
            )?,
            None => None,
        };
        let (Some(stream), Some(group)) = (stream, found) else {
            return Err(no_group_in_read(key, &group_name));
        };
        ready |= match read_from(id_arg)? {
            ReadFrom::History(_) => true,
            ReadFrom::New => match group.last_id.next() {
                Some(from) => {
                    let mut r = reading(ctx.keyspace, ctx.now_ms, ctx.db(), key, &stream);
                    store::first_entry_from(&mut r, from)?.is_some()
                }
                None => false,
            },
        };
    }
    match parsed.block {
        Some(timeout) if !ready => Ok(Outcome::Block(BlockOn {
            waits_for: WaitFor::Stream {
                keys: keys.to_vec(),
                consumer: true,
            },
            timeout,
            again: None,
        })),
        _ => Ok(Outcome::Propose(args.to_vec())),
    }
}

pub fn apply_xreadgroup(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let parsed = parse_read(args, true)?;
    let (group_name, consumer_name) = parsed.group.clone().ok_or_else(error::syntax)?;
    let keys = parsed.keys(args);
    let mut plan = Vec::with_capacity(keys.len());
    for (key, id_arg) in keys.iter().zip(parsed.ids(args)) {
        let stream = txn_read(txn, db, key)?;
        let found = match &stream {
            Some(s) => store::group(&mut writing(txn, db, key, s), &group_name)?,
            None => None,
        };
        if stream.is_none() || found.is_none() {
            return Err(no_group_in_read(key, &group_name));
        }
        plan.push((key, read_from(id_arg)?));
    }
    let now = txn.now_ms();
    let mut served = Vec::new();
    for (key, from) in plan {
        let stream = txn_read(txn, db, key)?.ok_or_else(|| no_group_in_read(key, &group_name))?;
        let mut w = writing(txn, db, key, &stream);
        let mut group =
            store::group(&mut w, &group_name)?.ok_or_else(|| no_group_in_read(key, &group_name))?;
        touch_consumer(&mut w, &group_name, &mut group, &consumer_name, now)?;
        let read = match from {
            ReadFrom::History(after) => Some(history(
                &mut w,
                &group_name,
                &consumer_name,
                after,
                parsed.count,
                now,
            )?),
            ReadFrom::New => deliver_new(
                &mut w,
                &stream,
                &group_name,
                &mut group,
                &consumer_name,
                parsed.count,
                parsed.noack,
                now,
            )?,
        };
        w.put_group(&group_name, &group);
        if let Some(entries) = read {
            served.push((Reply::Bulk(key.clone()), entries));
        }
    }
    Ok(if served.is_empty() {
        Reply::NullArray
    } else {
        Reply::Keyed(served)
    })
}

/// The consumer's pending entries after `after`: each delivered again (a deleted entry
/// comes back as its ID and a null).
fn history(
    w: &mut Writing,
    group_name: &[u8],
    consumer: &[u8],
    after: StreamId,
    count: usize,
    now: u64,
) -> Result<Reply, CmdError> {
    let Some(start) = after.next() else {
        return Ok(Reply::Array(Vec::new()));
    };
    let limit = if count == 0 { usize::MAX } else { count };
    let ids = store::consumer_pending_ids(w, group_name, consumer, start, StreamId::MAX, limit)?;
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        match store::entry(w, id)? {
            Some(fields) => {
                if let Some(mut pending) = store::pending(w, group_name, id)? {
                    pending.delivery_ms = now;
                    pending.delivery_count += 1;
                    w.put_pending(group_name, id, &pending);
                }
                items.push(entry_reply(id, fields));
            }
            None => items.push(Reply::Array(vec![
                Reply::Bulk(id.to_bytes()),
                Reply::NullArray,
            ])),
        }
    }
    Ok(Reply::Array(items))
}

/// Entries after the group's last delivered ID, given to `consumer` (pending unless
/// NOACK); `None` when there are none.
#[allow(clippy::too_many_arguments)]
fn deliver_new(
    w: &mut Writing,
    stream: &Stream,
    group_name: &[u8],
    group: &mut Group,
    consumer: &[u8],
    count: usize,
    noack: bool,
    now: u64,
) -> Result<Option<Reply>, CmdError> {
    let Some(from) = group.last_id.next() else {
        return Ok(None);
    };
    let entries = store::entries(w, from, StreamId::MAX, count, false)?;
    if entries.is_empty() {
        return Ok(None);
    }
    for (id, _) in &entries {
        stream.deliver(group, *id);
        if !noack {
            assign_pending(w, group_name, group, *id, consumer, now, 1)?;
        }
    }
    Ok(Some(super::entries_reply(entries)))
}

pub fn xack(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    propose_as_sent(ctx, args)
}

pub fn apply_xack(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let key = &args[1];
    let Some(stream) = txn_read(txn, db, key)? else {
        return Ok(Reply::Integer(0));
    };
    let mut w = writing(txn, db, key, &stream);
    let Some(mut group) = store::group(&mut w, &args[2])? else {
        return Ok(Reply::Integer(0));
    };
    let ids = args[3..]
        .iter()
        .map(|a| id::parse_strict(a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut acked = 0;
    for id in ids {
        acked += i64::from(drop_pending(&mut w, &args[2], &mut group, id)?);
    }
    if acked > 0 {
        w.put_group(&args[2], &group);
    }
    Ok(Reply::Integer(acked))
}

/// XGROUP's subcommand syntax error, naming the subcommand as typed.
fn subcommand_syntax(args: &[Bytes]) -> CmdError {
    CmdError::msg(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try XGROUP HELP.",
        String::from_utf8_lossy(&args[1])
    ))
}

/// CREATE's and SETID's options after the ID: MKSTREAM (CREATE only), ENTRIESREAD.
struct GroupOptions {
    mkstream: bool,
    entries_read: i64,
}

fn parse_group_options(args: &[Bytes]) -> Result<GroupOptions, CmdError> {
    let create = eq(&args[1], "create");
    let mut out = GroupOptions {
        mkstream: false,
        entries_read: ENTRIES_READ_UNKNOWN,
    };
    let mut i = 5;
    while i < args.len() {
        if create && eq(&args[i], "mkstream") {
            out.mkstream = true;
            i += 1;
        } else if eq(&args[i], "entriesread") && i + 1 < args.len() {
            let n = args::int(&args[i + 1])?;
            if n < 0 && n != ENTRIES_READ_UNKNOWN {
                return Err(CmdError::msg(
                    "ERR value for ENTRIESREAD must be positive or -1",
                ));
            }
            out.entries_read = n;
            i += 2;
        } else {
            return Err(subcommand_syntax(args));
        }
    }
    // Redis's arity of SETID: the ID alone, or with ENTRIESREAD.
    if !(create || args.len() == 5 || args.len() == 7) {
        return Err(subcommand_syntax(args));
    }
    Ok(out)
}

/// XGROUP CREATE | SETID | DESTROY | CREATECONSUMER | DELCONSUMER: options checked here,
/// the rest at apply.
pub fn xgroup(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if eq(&args[1], "create") || eq(&args[1], "setid") {
        parse_group_options(args)?;
    }
    Ok(Outcome::Propose(args.to_vec()))
}

pub fn apply_xgroup(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let sub = args.get(1).ok_or_else(error::syntax)?;
    let (create, setid) = (eq(sub, "create"), eq(sub, "setid"));
    let options = if create || setid {
        Some(parse_group_options(args)?)
    } else {
        None
    };
    let key = args.get(2).ok_or_else(error::syntax)?;
    let group_name = args.get(3).ok_or_else(error::syntax)?;
    let mkstream = options.as_ref().is_some_and(|o| o.mkstream);
    let (stream, created) = match txn_read(txn, db, key)? {
        Some(stream) => (stream, false),
        None if create && mkstream => (Stream::new(txn.new_version()?, txn.revision()), true),
        None => return Err(CmdError::Static(KEY_MUST_EXIST)),
    };
    let mut w = writing(txn, db, key, &stream);
    let found = store::group(&mut w, group_name)?;
    let needs_group = setid || eq(sub, "createconsumer") || eq(sub, "delconsumer");
    if found.is_none() && needs_group {
        return Err(no_group_for_key(key, group_name));
    }
    let now = w.reads.now_ms();
    if create {
        let id = match &args[4][..] {
            b"$" => stream.state.last_id,
            arg => id::parse_strict(arg)?,
        };
        if found.is_some() {
            return Err(CmdError::msg(
                "BUSYGROUP Consumer Group name already exists",
            ));
        }
        let entries_read = options.map_or(ENTRIES_READ_UNKNOWN, |o| o.entries_read);
        w.put_group(group_name, &Group::new(id, entries_read));
        w.note_event("xgroup-create");
        if created {
            save(txn, db, key, &stream)?;
        }
        return Ok(Reply::OK);
    }
    let Some(mut group) = found else {
        // DESTROY of a group that does not exist.
        return Ok(Reply::Integer(0));
    };
    if setid {
        group.last_id = match &args[4][..] {
            b"$" => stream.state.last_id,
            arg => id::parse_with(arg, id::IdRules::loose(0))?.id,
        };
        group.entries_read = options.map_or(ENTRIES_READ_UNKNOWN, |o| o.entries_read);
        w.put_group(group_name, &group);
        w.note_event("xgroup-setid");
        return Ok(Reply::OK);
    }
    if eq(sub, "destroy") {
        w.delete(&record::group_sub(group_name));
        for prefix in [
            record::consumers_prefix(group_name),
            record::pending_prefix(group_name),
            record::of_group(record::CONSUMER_PENDING, group_name),
        ] {
            w.delete_all(&store::prefixed(prefix))?;
        }
        w.note_event("xgroup-destroy");
        return Ok(Reply::Integer(1));
    }
    let consumer = args.get(4).ok_or_else(error::syntax)?;
    if eq(sub, "createconsumer") {
        if store::consumer(&mut w, group_name, consumer)?.is_some() {
            return Ok(Reply::Integer(0));
        }
        touch_consumer(&mut w, group_name, &mut group, consumer, now)?;
        w.put_group(group_name, &group);
        return Ok(Reply::Integer(1));
    }
    // DELCONSUMER: its pending entries leave the group's too.
    let Some(found) = store::consumer(&mut w, group_name, consumer)? else {
        return Ok(Reply::Integer(0));
    };
    let ids = store::consumer_pending_ids(
        &mut w,
        group_name,
        consumer,
        StreamId::ZERO,
        StreamId::MAX,
        usize::MAX,
    )?;
    for id in &ids {
        w.delete_pending(group_name, *id, consumer);
    }
    w.delete(&record::consumer_sub(group_name, consumer));
    group.pending -= ids.len() as u64;
    group.consumers -= 1;
    w.put_group(group_name, &group);
    w.note_event("xgroup-delconsumer");
    Ok(Reply::Integer(found.pending as i64))
}

pub fn xgroup_help(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(help_reply(
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    ))
}
