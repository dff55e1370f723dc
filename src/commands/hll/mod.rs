//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE over string values in Redis's own sketch
//! format (`sketch.rs`). PFCOUNT of one key whose cached cardinality is stale writes the
//! fresh one back through the shard log, as Redis updates the cache in place, so the
//! value's bytes stay the same on every replica and match Redis's.

mod sketch;

use bytes::Bytes;

use super::error::CmdError;
use super::strings::{read_string, store_encoded, txn_string, Expiry};
use super::{propose_as_sent, reply, ApplyFn, CmdResult, Ctx, Handler, Outcome};
use crate::keyspace::{Encoding, Meta, Txn};
use crate::protocol::Reply;

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("pfadd", propose_as_sent, Some(apply_pfadd)),
    ("pfcount", pfcount, Some(apply_pfcount)),
    ("pfmerge", propose_as_sent, Some(apply_pfmerge)),
];

const NOT_SKETCH: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

impl From<sketch::Corrupt> for CmdError {
    fn from(_: sketch::Corrupt) -> CmdError {
        CmdError::Static(CORRUPT)
    }
}

/// The sketch held by a string value (another string is the HyperLogLog WRONGTYPE).
fn sketch_of(meta: &Meta) -> Result<&[u8], CmdError> {
    sketch::check(&meta.value).map_err(|_| CmdError::Static(NOT_SKETCH))?;
    Ok(&meta.value)
}

/// Stores a changed sketch: a `raw` string, its expiry kept.
fn store(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
    value: Vec<u8>,
    old: Option<&Meta>,
) -> Result<(), CmdError> {
    store_encoded(
        txn,
        db,
        key,
        Bytes::from(value),
        Encoding::Raw,
        Expiry::Keep,
        old,
    )
}

fn apply_pfadd(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let old = txn_string(txn, db, &args[1])?;
    let (mut value, created) = match &old {
        None => (sketch::empty(), true),
        Some(meta) => (sketch_of(meta)?.to_vec(), false),
    };
    let changed = sketch::add(&mut value, &args[2..])? || created;
    if changed {
        sketch::invalidate_cache(&mut value);
        store(txn, db, &args[1], value, old.as_ref())?;
    }
    Ok(Reply::Integer(changed as i64))
}

/// PFCOUNT key [key ...]: one key answers from its cache (refreshing a stale one through
/// the log); several keys count the union of their registers.
fn pfcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() == 2 {
        let Some(meta) = read_string(ctx, &args[1])? else {
            return reply(Reply::Integer(0));
        };
        return match sketch::cached(sketch_of(&meta)?) {
            Some(card) => reply(Reply::Integer(card as i64)),
            None => Ok(Outcome::Propose(args.to_vec())),
        };
    }
    let mut max = sketch::zero_registers();
    for key in &args[1..] {
        if let Some(meta) = read_string(ctx, key)? {
            sketch::merge_into(&mut max, sketch_of(&meta)?)?;
        }
    }
    reply(Reply::Integer(sketch::estimate(&max) as i64))
}

/// Refreshes a single key's cached cardinality.
fn apply_pfcount(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let Some(meta) = txn_string(txn, db, &args[1])? else {
        return Ok(Reply::Integer(0));
    };
    let current = sketch_of(&meta)?;
    if let Some(card) = sketch::cached(current) {
        return Ok(Reply::Integer(card as i64));
    }
    let card = sketch::count(current)?;
    let mut value = current.to_vec();
    sketch::store_cache(&mut value, card);
    store(txn, db, &args[1], value, Some(&meta))?;
    Ok(Reply::Integer(card as i64))
}

/// PFMERGE destkey [sourcekey ...]: the destination (itself an input) takes the maximum of
/// every register, dense if any input was.
fn apply_pfmerge(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let mut max = sketch::zero_registers();
    let mut dense = false;
    for key in &args[1..] {
        if let Some(meta) = txn_string(txn, db, key)? {
            let s = sketch_of(&meta)?;
            dense |= sketch::is_dense(s);
            sketch::merge_into(&mut max, s)?;
        }
    }
    let old = txn_string(txn, db, &args[1])?;
    let value = sketch::merged(old.as_ref().map(|m| &m.value[..]), &max, dense)?;
    store(txn, db, &args[1], value, old.as_ref())?;
    Ok(Reply::OK)
}
