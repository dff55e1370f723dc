//! Bitmap commands over string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, and
//! BITFIELD / BITFIELD_RO (`field.rs`). Bits are numbered from the most significant bit of
//! the first byte, as Redis numbers them; a missing key reads as an endless run of zeros.
//! Writes that reach past the end zero-pad the string, and leave it `raw`, as Redis does.

mod field;

use bytes::{Bytes, BytesMut};

use super::args::{self, eq};
use super::error::{syntax, CmdError};
use super::strings::{read_string, store_encoded, txn_string, Expiry};
use super::{reply, ApplyFn, CmdResult, Ctx, Handler, Outcome};
use crate::keyspace::{Encoding, Txn};
use crate::protocol::Reply;

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("setbit", setbit, Some(apply_setbit)),
    ("getbit", getbit, None),
    ("bitcount", bitcount, None),
    ("bitpos", bitpos, None),
    ("bitop", bitop, Some(apply_bitop)),
    ("bitfield", field::bitfield, Some(field::apply_bitfield)),
    ("bitfield_ro", field::bitfield, None),
];

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";
/// Bits addressable in a string of at most 512 MiB.
const BITS_MAX: u64 = 512 * 1024 * 1024 * 8;

/// A bit offset as SETBIT/GETBIT/BITFIELD take it (`#n` counts in `width`-bit units when
/// `width` is given).
fn bit_offset(arg: &[u8], width: Option<u32>) -> Result<u64, CmdError> {
    let (text, scale) = match (arg.strip_prefix(b"#"), width) {
        (Some(rest), Some(w)) => (rest, u64::from(w)),
        _ => (arg, 1),
    };
    let n = args::int_with(text, BAD_OFFSET)?;
    u64::try_from(n)
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&n| n < BITS_MAX)
        .ok_or(CmdError::Static(BAD_OFFSET))
}

fn bit_at(value: &[u8], offset: u64) -> bool {
    let byte = (offset / 8) as usize;
    value
        .get(byte)
        .is_some_and(|b| b & (0x80 >> (offset % 8)) != 0)
}

/// A copy of `value` at least `len` bytes long (zero-padded).
fn grown(value: &[u8], len: usize) -> BytesMut {
    let mut out = BytesMut::from(value);
    if out.len() < len {
        out.resize(len, 0);
    }
    out
}

/// Stores a string a bit command changed: `raw`, its expiry kept.
fn store_bits(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
    value: Bytes,
    old: Option<&crate::keyspace::Meta>,
) -> Result<(), CmdError> {
    store_encoded(txn, db, key, value, Encoding::Raw, Expiry::Keep, old)
}

fn parse_setbit(args: &[Bytes]) -> Result<(u64, bool), CmdError> {
    let offset = bit_offset(&args[2], None)?;
    const BAD_BIT: &str = "ERR bit is not an integer or out of range";
    match args::int_with(&args[3], BAD_BIT)? {
        0 => Ok((offset, false)),
        1 => Ok((offset, true)),
        _ => Err(CmdError::Static(BAD_BIT)),
    }
}

fn setbit(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    parse_setbit(args)?;
    Ok(Outcome::Propose(args.to_vec()))
}

fn apply_setbit(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let (offset, on) = parse_setbit(args)?;
    let old = txn_string(txn, db, &args[1])?;
    let current = old.as_ref().map(|m| m.value.clone()).unwrap_or_default();
    let byte = (offset / 8) as usize;
    let mut value = grown(&current, byte + 1);
    let was = bit_at(&value, offset);
    let mask = 0x80u8 >> (offset % 8);
    if on {
        value[byte] |= mask;
    } else {
        value[byte] &= !mask;
    }
    store_bits(txn, db, &args[1], value.freeze(), old.as_ref())?;
    Ok(Reply::Integer(was as i64))
}

fn getbit(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let offset = bit_offset(&args[2], None)?;
    let value = read_string(ctx, &args[1])?.map(|m| m.value);
    reply(Reply::Integer(
        value.is_some_and(|v| bit_at(&v, offset)) as i64
    ))
}

/// `[start end [BYTE|BIT]]` resolved against a string of `len` bytes, as an inclusive
/// range of bits; None when empty. `end` None means "to the end".
fn bit_range(start: i64, end: Option<i64>, in_bits: bool, len: usize) -> Option<(u64, u64)> {
    let total = if in_bits { len as i64 * 8 } else { len as i64 };
    let mut end = end.unwrap_or(total - 1);
    let mut start = start;
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0).min(total - 1);
    if start > end {
        return None;
    }
    let (start, end) = (start as u64, end as u64);
    Some(if in_bits {
        (start, end)
    } else {
        (start * 8, end * 8 + 7)
    })
}

fn unit(arg: &[u8]) -> Result<bool, CmdError> {
    if eq(arg, "BIT") {
        Ok(true)
    } else if eq(arg, "BYTE") {
        Ok(false)
    } else {
        Err(syntax())
    }
}

fn count_ones(value: &[u8], first: u64, last: u64) -> u64 {
    let (fb, lb) = ((first / 8) as usize, (last / 8) as usize);
    let mut n: u64 = value[fb..=lb]
        .iter()
        .map(|b| u64::from(b.count_ones()))
        .sum();
    // Take off the bits of the edge bytes that lie outside the range.
    n -= u64::from((value[fb] & !(0xffu8 >> (first % 8))).count_ones());
    n -= u64::from((value[lb] & (0xffu16 >> (last % 8 + 1)) as u8).count_ones());
    n
}

/// BITCOUNT key [start end [BYTE|BIT]].
fn bitcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = match args.len() {
        2 => None,
        4 | 5 => {
            let start = args::int(&args[2])?;
            let end = args::int(&args[3])?;
            let in_bits = args.len() == 5 && unit(&args[4])?;
            Some((start, end, in_bits))
        }
        _ => return Err(syntax()),
    };
    let value = read_string(ctx, &args[1])?
        .map(|m| m.value)
        .unwrap_or_default();
    let (start, end, in_bits) = range.unwrap_or((0, -1, false));
    // As Redis: two negative indexes the wrong way round count nothing, whatever the length.
    if start < 0 && end < 0 && start > end {
        return reply(Reply::Integer(0));
    }
    let n = match bit_range(start, Some(end), in_bits, value.len()) {
        Some((first, last)) => count_ones(&value, first, last),
        None => 0,
    };
    reply(Reply::Integer(n as i64))
}

/// BITPOS key bit [start [end [BYTE|BIT]]].
fn bitpos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let bit = args::int(&args[2])?;
    if bit != 0 && bit != 1 {
        return Err(CmdError::msg("ERR The bit argument must be 1 or 0."));
    }
    let want = bit == 1;
    let Some(meta) = read_string(ctx, &args[1])? else {
        return reply(Reply::Integer(if want { -1 } else { 0 }));
    };
    let value = meta.value;
    let (start, end, in_bits) = match args.len() {
        3 => (0, None, false),
        4..=6 => {
            let in_bits = args.len() == 6 && unit(&args[5])?;
            let start = args::int(&args[3])?;
            let end = args.get(4).map(|e| args::int(e)).transpose()?;
            (start, end, in_bits)
        }
        _ => return Err(syntax()),
    };
    let end_given = end.is_some();
    let Some((first, last)) = bit_range(start, end, in_bits, value.len()) else {
        return reply(Reply::Integer(-1));
    };
    let found = find_bit(&value, first, last, want);
    let pos = match found {
        Some(i) => i as i64,
        None if want || end_given => -1,
        // Looking for a clear bit with no end given: the string is zero-padded past it.
        None => ((last / 8 + 1) * 8) as i64,
    };
    reply(Reply::Integer(pos))
}

/// The first bit in `first..=last` that is `want`, skipping whole bytes that hold none.
fn find_bit(value: &[u8], first: u64, last: u64, want: bool) -> Option<u64> {
    let skip = if want { 0x00 } else { 0xff };
    let mut i = first;
    while i <= last {
        if i.is_multiple_of(8) && i + 7 <= last && value.get((i / 8) as usize) == Some(&skip) {
            i += 8;
            continue;
        }
        if bit_at(value, i) == want {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

fn parse_bitop(args: &[Bytes]) -> Result<BitOp, CmdError> {
    let op = match &args[1] {
        a if eq(a, "AND") => BitOp::And,
        a if eq(a, "OR") => BitOp::Or,
        a if eq(a, "XOR") => BitOp::Xor,
        a if eq(a, "NOT") => BitOp::Not,
        _ => return Err(syntax()),
    };
    if op == BitOp::Not && args.len() != 4 {
        return Err(CmdError::msg(
            "ERR BITOP NOT must be called with a single source key.",
        ));
    }
    Ok(op)
}

fn bitop(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    parse_bitop(args)?;
    Ok(Outcome::Propose(args.to_vec()))
}

/// BITOP AND|OR|XOR|NOT destkey key [key ...]: the result is as long as the longest
/// source (shorter ones read as zero-padded); an empty result deletes the destination.
fn apply_bitop(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let op = parse_bitop(args)?;
    let mut sources = Vec::with_capacity(args.len() - 3);
    for key in &args[3..] {
        sources.push(
            txn_string(txn, db, key)?
                .map(|m| m.value)
                .unwrap_or_default(),
        );
    }
    let len = sources.iter().map(Bytes::len).max().unwrap_or(0);
    if len == 0 {
        txn.delete(db, &args[2])?;
        return Ok(Reply::Integer(0));
    }
    let byte = |s: &Bytes, i: usize| s.get(i).copied().unwrap_or(0);
    let result: Vec<u8> = (0..len)
        .map(|i| {
            let mut bytes = sources.iter().map(|s| byte(s, i));
            let first = bytes.next().unwrap_or(0);
            match op {
                BitOp::Not => !first,
                BitOp::And => bytes.fold(first, |a, b| a & b),
                BitOp::Or => bytes.fold(first, |a, b| a | b),
                BitOp::Xor => bytes.fold(first, |a, b| a ^ b),
            }
        })
        .collect();
    store_encoded(
        txn,
        db,
        &args[2],
        Bytes::from(result),
        Encoding::Raw,
        Expiry::Clear,
        None,
    )?;
    Ok(Reply::Integer(len as i64))
}
