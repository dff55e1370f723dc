//! BITFIELD and BITFIELD_RO: integers of 1 to 64 bits (signed) or 63 (unsigned) at any bit
//! offset, read, set or incremented with WRAP, SAT or FAIL overflow, in argument order.

use bytes::Bytes;

use super::{bit_at, bit_offset, grown, store_bits};
use crate::commands::args::{self, eq};
use crate::commands::error::{syntax, CmdError};
use crate::commands::strings::{read_string, txn_string};
use crate::commands::{reply, CmdResult, Ctx, Outcome};
use crate::keyspace::Txn;
use crate::protocol::Reply;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Get,
    Set(i64),
    IncrBy(i64),
}

#[derive(Debug, Clone, Copy)]
struct Op {
    action: Action,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

/// `i1`…`i64` or `u1`…`u63`.
fn field_type(arg: &[u8]) -> Result<(bool, u32), CmdError> {
    const BAD: &str = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(CmdError::Static(BAD)),
    };
    let bits = crate::protocol::decode::parse_i64(&arg[1..]).ok_or(CmdError::Static(BAD))?;
    let max = if signed { 64 } else { 63 };
    if !(1..=max).contains(&bits) {
        return Err(CmdError::Static(BAD));
    }
    Ok((signed, bits as u32))
}

fn parse(args: &[Bytes]) -> Result<Vec<Op>, CmdError> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < args.len() {
        let remaining = args.len() - j - 1;
        let sub = &args[j];
        let takes_value = if eq(sub, "GET") && remaining >= 2 {
            false
        } else if (eq(sub, "SET") || eq(sub, "INCRBY")) && remaining >= 3 {
            true
        } else if eq(sub, "OVERFLOW") && remaining >= 1 {
            let how = &args[j + 1];
            overflow = if eq(how, "WRAP") {
                Overflow::Wrap
            } else if eq(how, "SAT") {
                Overflow::Sat
            } else if eq(how, "FAIL") {
                Overflow::Fail
            } else {
                return Err(CmdError::msg("ERR Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(syntax());
        };
        let (signed, bits) = field_type(&args[j + 1])?;
        let offset = bit_offset(&args[j + 2], Some(bits))?;
        let action = if !takes_value {
            Action::Get
        } else {
            let value = args::int(&args[j + 3])?;
            if eq(sub, "SET") {
                Action::Set(value)
            } else {
                Action::IncrBy(value)
            }
        };
        ops.push(Op {
            action,
            signed,
            bits,
            offset,
            overflow,
        });
        j += if takes_value { 4 } else { 3 };
    }
    Ok(ops)
}

fn is_write(op: &Op) -> bool {
    !matches!(op.action, Action::Get)
}

/// BITFIELD (a write if it sets or increments anything) and BITFIELD_RO (GET only).
pub fn bitfield(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let ops = parse(args)?;
    let readonly = eq(&args[0], "BITFIELD_RO");
    if ops.iter().any(is_write) {
        if readonly {
            return Err(CmdError::msg(
                "ERR BITFIELD_RO only supports the GET subcommand",
            ));
        }
        return Ok(Outcome::Propose(args.to_vec()));
    }
    let value = read_string(ctx, &args[1])?
        .map(|m| m.value)
        .unwrap_or_default();
    reply(Reply::Array(
        ops.iter()
            .map(|op| Reply::Integer(get(&value, op)))
            .collect(),
    ))
}

/// The field's raw bits, most significant first.
fn raw(value: &[u8], offset: u64, bits: u32) -> u64 {
    (0..u64::from(bits)).fold(0u64, |acc, i| acc << 1 | bit_at(value, offset + i) as u64)
}

fn get(value: &[u8], op: &Op) -> i64 {
    let bits = raw(value, op.offset, op.bits);
    if op.signed && op.bits < 64 && bits >> (op.bits - 1) & 1 == 1 {
        (bits | !0u64 << op.bits) as i64
    } else {
        bits as i64
    }
}

fn put(value: &mut [u8], offset: u64, bits: u32, field: u64) {
    for i in 0..u64::from(bits) {
        let on = field >> (u64::from(bits) - 1 - i) & 1 == 1;
        let pos = offset + i;
        let (byte, mask) = ((pos / 8) as usize, 0x80u8 >> (pos % 8));
        if on {
            value[byte] |= mask;
        } else {
            value[byte] &= !mask;
        }
    }
}

/// The field's range of values.
fn limits(signed: bool, bits: u32) -> (i128, i128) {
    if signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    }
}

/// `wanted` brought into the field's range by the overflow policy (None: FAIL).
fn fit(wanted: i128, op: &Op) -> Option<i128> {
    let (min, max) = limits(op.signed, op.bits);
    if (min..=max).contains(&wanted) {
        return Some(wanted);
    }
    match op.overflow {
        Overflow::Fail => None,
        Overflow::Sat => Some(if wanted > max { max } else { min }),
        Overflow::Wrap => {
            let span = 1i128 << op.bits;
            let wrapped = wanted.rem_euclid(span);
            Some(if wrapped > max {
                wrapped - span
            } else {
                wrapped
            })
        }
    }
}

pub fn apply_bitfield(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let ops = parse(args)?;
    let old = txn_string(txn, db, &args[1])?;
    let current = old.as_ref().map(|m| m.value.clone()).unwrap_or_default();
    let highest = ops
        .iter()
        .filter(|op| is_write(op))
        .map(|op| op.offset + u64::from(op.bits) - 1)
        .max()
        .unwrap_or(0);
    let needed = (highest / 8 + 1) as usize;
    let mut value = grown(&current, needed);
    let mut changed = old.is_none() || needed > current.len();
    let mut replies = Vec::with_capacity(ops.len());
    for op in &ops {
        let now = get(&value, op);
        let (wanted, reply_old) = match op.action {
            Action::Get => {
                replies.push(Reply::Integer(now));
                continue;
            }
            // An unsigned field reads SET's value as unsigned, as Redis does.
            Action::Set(v) if !op.signed => (i128::from(v as u64), true),
            Action::Set(v) => (i128::from(v), true),
            Action::IncrBy(by) => (i128::from(now) + i128::from(by), false),
        };
        // Redis's signed check computes `max - value` in 64 bits: a SET of a value so far
        // below the field's range that this wraps counts as too high, and SAT stores max.
        let wanted = match op.action {
            Action::Set(v) if op.signed && op.bits < 64 && op.overflow == Overflow::Sat => {
                let max = (1i64 << (op.bits - 1)) - 1;
                if max.wrapping_sub(v) < 0 {
                    i128::from(max)
                } else {
                    wanted
                }
            }
            _ => wanted,
        };
        match fit(wanted, op) {
            None => replies.push(Reply::Null),
            Some(new) => {
                put(&mut value, op.offset, op.bits, new as u64);
                changed = true;
                replies.push(Reply::Integer(if reply_old { now } else { new as i64 }));
            }
        }
    }
    if changed {
        store_bits(txn, db, &args[1], value.freeze(), old.as_ref())?;
    }
    Ok(Reply::Array(replies))
}
