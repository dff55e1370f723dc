//! The encoding of a write batch in the WAL.
//!
//! ## Format
//! `first_seqno:u64 LE | count:u32 LE | op{count}`, where an op is
//! `kind:u8 (1 put, 0 delete, 2 delete-range) | key_len:varint | key |
//! [value_len:varint | value]` (a value for puts; for a delete-range the key is the range's
//! start and the value its exclusive end). Op `i` carries sequence number `first_seqno + i`.

use bytes::Bytes;

use super::sstable::block::{get_varint, put_varint};

/// What one logged change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OpKind {
    Delete = 0,
    Put = 1,
    /// Deletes `[key, value)`.
    DeleteRange = 2,
}

impl OpKind {
    fn from_u8(b: u8) -> Option<OpKind> {
        match b {
            0 => Some(OpKind::Delete),
            1 => Some(OpKind::Put),
            2 => Some(OpKind::DeleteRange),
            _ => None,
        }
    }

    fn has_value(self) -> bool {
        self != OpKind::Delete
    }
}

/// One change, as the WAL and the memtable see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub kind: OpKind,
    pub key: Bytes,
    pub value: Bytes,
}

pub fn encode(first_seqno: u64, ops: &[Op]) -> Vec<u8> {
    let size: usize = 12
        + ops
            .iter()
            .map(|o| 12 + o.key.len() + o.value.len())
            .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&first_seqno.to_le_bytes());
    out.extend_from_slice(&(ops.len() as u32).to_le_bytes());
    for op in ops {
        out.push(op.kind as u8);
        put_varint(&mut out, op.key.len() as u64);
        out.extend_from_slice(&op.key);
        if op.kind.has_value() {
            put_varint(&mut out, op.value.len() as u64);
            out.extend_from_slice(&op.value);
        }
    }
    out
}

/// Decodes a batch; `None` if it is malformed.
pub fn decode(raw: &[u8]) -> Option<(u64, Vec<Op>)> {
    let first = u64::from_le_bytes(raw.get(..8)?.try_into().ok()?);
    let count = u32::from_le_bytes(raw.get(8..12)?.try_into().ok()?) as usize;
    let mut pos = 12;
    let mut ops = Vec::with_capacity(count.min(1 << 16));
    let take = |pos: &mut usize| -> Option<Bytes> {
        let len = get_varint(raw, pos)? as usize;
        let end = pos.checked_add(len)?;
        let bytes = Bytes::copy_from_slice(raw.get(*pos..end)?);
        *pos = end;
        Some(bytes)
    };
    for _ in 0..count {
        let kind = OpKind::from_u8(*raw.get(pos)?)?;
        pos += 1;
        let key = take(&mut pos)?;
        let value = if kind.has_value() {
            take(&mut pos)?
        } else {
            Bytes::new()
        };
        ops.push(Op { kind, key, value });
    }
    (pos == raw.len()).then_some((first, ops))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let ops = vec![
            Op {
                kind: OpKind::Put,
                key: Bytes::from("a"),
                value: Bytes::from("1"),
            },
            Op {
                kind: OpKind::Delete,
                key: Bytes::from("b"),
                value: Bytes::new(),
            },
            Op {
                kind: OpKind::DeleteRange,
                key: Bytes::from("c"),
                value: Bytes::from("e"),
            },
        ];
        let raw = encode(7, &ops);
        assert_eq!(decode(&raw), Some((7, ops)));
        for cut in 0..raw.len() {
            assert_eq!(decode(&raw[..cut]), None);
        }
    }
}
