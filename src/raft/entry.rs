//! The write entry: what a shard's log carries.
//!
//! ## Format
//! `version:u8 (1) | db:u8 | now_ms:u64 | op:u8 | count:u32 | (len:u32 | bytes){count}`,
//! integers big-endian. `op` 1 = a normalised command (its argv), 2 = active expiry of the
//! listed keys (each deleted only if it is expired at `now_ms`).

use bytes::{Buf, BufMut, Bytes, BytesMut};

const FORMAT_VERSION: u8 = 1;
/// Bound on the argument count of one decoded entry (as the request decoder's).
const ARGS_MAX: u32 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOp {
    /// A write command in normalised form.
    Command(Vec<Bytes>),
    /// Delete these keys if they are expired at the entry's `now_ms`.
    Expire(Vec<Bytes>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Logical database the command runs in.
    pub db: u8,
    /// The proposer's clock when it proposed; apply uses this, never the local clock.
    pub now_ms: u64,
    pub op: EntryOp,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EntryDecodeError {
    #[error("entry truncated")]
    Truncated,
    #[error("unknown entry format version {0}")]
    Version(u8),
    #[error("unknown entry op {0}")]
    Op(u8),
    #[error("entry argument count {0} over the limit")]
    TooManyArgs(u32),
}

impl Entry {
    pub fn encode(&self) -> Bytes {
        let (tag, args) = match &self.op {
            EntryOp::Command(args) => (1u8, args),
            EntryOp::Expire(keys) => (2u8, keys),
        };
        let size: usize = 15 + args.iter().map(|a| 4 + a.len()).sum::<usize>();
        let mut out = BytesMut::with_capacity(size);
        out.put_u8(FORMAT_VERSION);
        out.put_u8(self.db);
        out.put_u64(self.now_ms);
        out.put_u8(tag);
        out.put_u32(args.len() as u32);
        for a in args {
            out.put_u32(a.len() as u32);
            out.put_slice(a);
        }
        out.freeze()
    }

    pub fn decode(mut raw: Bytes) -> Result<Entry, EntryDecodeError> {
        if raw.remaining() < 15 {
            return Err(EntryDecodeError::Truncated);
        }
        let version = raw.get_u8();
        if version != FORMAT_VERSION {
            return Err(EntryDecodeError::Version(version));
        }
        let db = raw.get_u8();
        let now_ms = raw.get_u64();
        let tag = raw.get_u8();
        let count = raw.get_u32();
        if count > ARGS_MAX {
            return Err(EntryDecodeError::TooManyArgs(count));
        }
        let mut args = Vec::with_capacity(count.min(1024) as usize);
        for _ in 0..count {
            if raw.remaining() < 4 {
                return Err(EntryDecodeError::Truncated);
            }
            let len = raw.get_u32() as usize;
            if raw.remaining() < len {
                return Err(EntryDecodeError::Truncated);
            }
            args.push(raw.split_to(len));
        }
        let op = match tag {
            1 => EntryOp::Command(args),
            2 => EntryOp::Expire(args),
            other => return Err(EntryDecodeError::Op(other)),
        };
        Ok(Entry { db, now_ms, op })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(db: u8, now_ms: u64, expire: bool,
                      args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8)) {
            let args: Vec<Bytes> = args.into_iter().map(Bytes::from).collect();
            let op = if expire { EntryOp::Expire(args) } else { EntryOp::Command(args) };
            let entry = Entry { db, now_ms, op };
            let raw = entry.encode();
            prop_assert_eq!(Entry::decode(raw.clone()), Ok(entry));
            for cut in 0..raw.len() {
                prop_assert!(Entry::decode(raw.slice(..cut)).is_err());
            }
        }
    }
}
