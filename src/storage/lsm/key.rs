//! Internal keys: a user key with the sequence number and kind of one change.
//!
//! ## Format
//! `user_key | trailer:u64 BE` where `trailer = seqno << 8 | kind` (kind 1 = put, 0 = delete).
//! Internal keys order by user key ascending, then sequence number descending, so the newest
//! version of a key comes first. Byte order of the encoding is not that order (user keys have
//! different lengths): compare with [`compare_internal`].

use std::cmp::Ordering;

use bytes::{BufMut, Bytes, BytesMut};

pub const TRAILER_BYTES: usize = 8;
/// Largest sequence number (56 bits; the low byte of the trailer is the kind).
pub const SEQNO_MAX: u64 = (1 << 56) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Kind {
    Delete = 0,
    Put = 1,
}

impl Kind {
    pub fn from_u8(b: u8) -> Option<Kind> {
        match b {
            0 => Some(Kind::Delete),
            1 => Some(Kind::Put),
            _ => None,
        }
    }
}

/// A decoded internal key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InternalKey {
    pub user_key: Bytes,
    pub seqno: u64,
    pub kind: Kind,
}

impl InternalKey {
    pub fn new(user_key: impl Into<Bytes>, seqno: u64, kind: Kind) -> InternalKey {
        InternalKey {
            user_key: user_key.into(),
            seqno,
            kind,
        }
    }

    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.user_key.len() + TRAILER_BYTES);
        out.put_slice(&self.user_key);
        out.put_u64(self.seqno << 8 | self.kind as u64);
        out.freeze()
    }

    /// The encoding as a vector with no spare capacity.
    pub fn encode_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.user_key.len() + TRAILER_BYTES);
        out.extend_from_slice(&self.user_key);
        out.extend_from_slice(&(self.seqno << 8 | self.kind as u64).to_be_bytes());
        out
    }

    pub fn decode(raw: &Bytes) -> Option<InternalKey> {
        let split = raw.len().checked_sub(TRAILER_BYTES)?;
        let trailer = u64::from_be_bytes(raw[split..].try_into().ok()?);
        let kind = Kind::from_u8(trailer as u8)?;
        Some(InternalKey {
            user_key: raw.slice(..split),
            seqno: trailer >> 8,
            kind,
        })
    }
}

impl Ord for InternalKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.user_key
            .cmp(&other.user_key)
            .then_with(|| other.seqno.cmp(&self.seqno))
            .then_with(|| other.kind.cmp(&self.kind))
    }
}

impl PartialOrd for InternalKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Orders two encoded internal keys as [`InternalKey`] does.
pub fn compare_internal(a: &[u8], b: &[u8]) -> Ordering {
    let (ua, ta) = split(a);
    let (ub, tb) = split(b);
    ua.cmp(ub).then_with(|| tb.cmp(&ta))
}

/// The parts of an encoded internal key — user key, sequence number, kind — without copying.
pub fn parse(raw: &[u8]) -> Option<(&[u8], u64, Kind)> {
    let split = raw.len().checked_sub(TRAILER_BYTES)?;
    let trailer = u64::from_be_bytes(raw[split..].try_into().ok()?);
    Some((&raw[..split], trailer >> 8, Kind::from_u8(trailer as u8)?))
}

/// The user key of an encoded internal key.
pub fn user_key(raw: &[u8]) -> &[u8] {
    split(raw).0
}

fn split(raw: &[u8]) -> (&[u8], u64) {
    if raw.len() < TRAILER_BYTES {
        return (raw, 0);
    }
    let (user, trailer) = raw.split_at(raw.len() - TRAILER_BYTES);
    (
        user,
        u64::from_be_bytes(trailer.try_into().unwrap_or_default()),
    )
}

/// The internal key that sorts first among all versions of `user_key` visible at `seqno`.
pub fn seek_key(user_key: &[u8], seqno: u64) -> Bytes {
    InternalKey::new(
        Bytes::copy_from_slice(user_key),
        seqno.min(SEQNO_MAX),
        Kind::Put,
    )
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_newest_first_and_encoding_agrees() {
        let keys = [
            InternalKey::new("a", 9, Kind::Put),
            InternalKey::new("a", 3, Kind::Delete),
            InternalKey::new("ab", 1, Kind::Put),
            InternalKey::new("b", 100, Kind::Put),
        ];
        for w in keys.windows(2) {
            assert!(w[0] < w[1]);
            assert_eq!(
                compare_internal(&w[0].encode(), &w[1].encode()),
                Ordering::Less
            );
        }
        let round = InternalKey::decode(&keys[1].encode()).unwrap();
        assert_eq!(round, keys[1]);
        assert_eq!(keys[1].encode_vec(), keys[1].encode().to_vec());
        assert_eq!(parse(&keys[1].encode()), Some((&b"a"[..], 3, Kind::Delete)));
        assert_eq!(user_key(&keys[2].encode()), b"ab");
    }
}
