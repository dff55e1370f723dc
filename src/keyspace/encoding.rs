//! How Redis keys and values map onto engine keys and values.
//!
//! ## Format
//! Engine keys (all integers big-endian so byte order is numeric order):
//! - metadata: `db:u8 | b'M' | slot:u16 | user key` → [`Meta`]
//! - expiry index: `db:u8 | b'E' | slot:u16 | expire_at_ms:u64 | user key` → empty
//! - system records: `0xff | name`
//!
//! `db` is the *physical* database number; SWAPDB swaps the logical → physical map (a system
//! record), so it is O(1). The database comes first so FLUSHDB is one delete-range.
//!
//! Metadata value: `type:u8 | encoding:u8 | revision:u64 | expire_at_ms:u64 (0 = none) |
//! payload`, where a string's payload is its value, stored inline so GET is one lookup, and
//! `encoding` is the representation Redis would report for it (OBJECT ENCODING).

use bytes::{BufMut, Bytes, BytesMut};

use crate::cluster::Slot;

pub const TAG_META: u8 = b'M';
pub const TAG_EXPIRE: u8 = b'E';
/// First byte of system records; above every physical database number.
pub const SYSTEM_PREFIX: u8 = 0xff;
const META_HEADER_BYTES: usize = 1 + 1 + 8 + 8;
/// Redis's OBJ_ENCODING_EMBSTR_SIZE_LIMIT.
const EMBSTR_BYTES_MAX: usize = 44;

/// The Redis type of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ValueType {
    String = 0,
}

impl ValueType {
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
        }
    }

    fn from_u8(b: u8) -> Option<ValueType> {
        match b {
            0 => Some(ValueType::String),
            _ => None,
        }
    }
}

/// How Redis would represent a string value; follows the command that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StringEncoding {
    Int = 0,
    Embstr = 1,
    Raw = 2,
}

impl StringEncoding {
    /// Redis's `tryObjectEncoding`: integers of up to 20 bytes are `int`, short strings
    /// `embstr`, the rest `raw` (SET, MSET, GETSET, RESTORE…).
    pub fn for_value(value: &[u8]) -> StringEncoding {
        if value.len() <= 20 && crate::protocol::decode::parse_i64(value).is_some() {
            StringEncoding::Int
        } else {
            StringEncoding::by_length(value)
        }
    }

    /// Redis's `createStringObject`: by length only (INCRBYFLOAT's result).
    pub fn by_length(value: &[u8]) -> StringEncoding {
        if value.len() <= EMBSTR_BYTES_MAX {
            StringEncoding::Embstr
        } else {
            StringEncoding::Raw
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StringEncoding::Int => "int",
            StringEncoding::Embstr => "embstr",
            StringEncoding::Raw => "raw",
        }
    }

    fn from_u8(b: u8) -> Option<StringEncoding> {
        match b {
            0 => Some(StringEncoding::Int),
            1 => Some(StringEncoding::Embstr),
            2 => Some(StringEncoding::Raw),
            _ => None,
        }
    }
}

/// A key's metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub value_type: ValueType,
    pub encoding: StringEncoding,
    /// Log index of the last change to this key.
    pub revision: u64,
    /// Absolute expiry in Unix milliseconds; 0 means no expiry.
    pub expire_at_ms: u64,
    /// A string's value.
    pub value: Bytes,
}

impl Meta {
    /// A string stored as SET stores it (encoding by `tryObjectEncoding`).
    pub fn string(value: Bytes, revision: u64, expire_at_ms: u64) -> Meta {
        let encoding = StringEncoding::for_value(&value);
        Meta {
            value_type: ValueType::String,
            encoding,
            revision,
            expire_at_ms,
            value,
        }
    }

    /// The same record with another encoding.
    pub fn with_encoding(self, encoding: StringEncoding) -> Meta {
        Meta { encoding, ..self }
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at_ms != 0 && self.expire_at_ms <= now_ms
    }

    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(META_HEADER_BYTES + self.value.len());
        out.put_u8(self.value_type as u8);
        out.put_u8(self.encoding as u8);
        out.put_u64(self.revision);
        out.put_u64(self.expire_at_ms);
        out.put_slice(&self.value);
        out.freeze()
    }

    /// Decodes a record; `None` means it is corrupt (the caller reports it).
    pub fn decode(raw: &Bytes) -> Option<Meta> {
        if raw.len() < META_HEADER_BYTES {
            return None;
        }
        let value_type = ValueType::from_u8(raw[0])?;
        let encoding = StringEncoding::from_u8(raw[1])?;
        let revision = u64::from_be_bytes(raw[2..10].try_into().ok()?);
        let expire_at_ms = u64::from_be_bytes(raw[10..18].try_into().ok()?);
        let value = raw.slice(META_HEADER_BYTES..);
        Some(Meta {
            value_type,
            encoding,
            revision,
            expire_at_ms,
            value,
        })
    }
}

fn prefix(db: u8, tag: u8, slot: Slot, extra: usize) -> BytesMut {
    let mut out = BytesMut::with_capacity(4 + extra);
    out.put_u8(db);
    out.put_u8(tag);
    out.put_u16(slot.0);
    out
}

pub fn meta_key(db: u8, slot: Slot, key: &[u8]) -> Bytes {
    let mut out = prefix(db, TAG_META, slot, key.len());
    out.put_slice(key);
    out.freeze()
}

/// The user key inside a metadata key.
pub fn user_key_of_meta(meta_key: &Bytes) -> Bytes {
    meta_key.slice(4..)
}

/// The slot of a metadata or expiry-index key.
pub fn slot_of_key(raw: &[u8]) -> Slot {
    Slot(u16::from_be_bytes([raw[2], raw[3]]))
}

/// Start of all metadata of one physical database.
pub fn db_meta_prefix(db: u8) -> [u8; 2] {
    [db, TAG_META]
}

pub fn expire_key(db: u8, slot: Slot, expire_at_ms: u64, key: &[u8]) -> Bytes {
    let mut out = prefix(db, TAG_EXPIRE, slot, 8 + key.len());
    out.put_u64(expire_at_ms);
    out.put_slice(key);
    out.freeze()
}

pub fn slot_expire_prefix(db: u8, slot: Slot) -> Bytes {
    prefix(db, TAG_EXPIRE, slot, 0).freeze()
}

/// `(expire_at_ms, user key)` from an expiry-index key.
pub fn decode_expire_key(raw: &Bytes) -> Option<(u64, Bytes)> {
    if raw.len() < 12 {
        return None;
    }
    let at = u64::from_be_bytes(raw[4..12].try_into().ok()?);
    Some((at, raw.slice(12..)))
}

/// Everything stored for one physical database: `[db, db + 1)`.
pub fn db_range(db: u8) -> (Bytes, Bytes) {
    (
        Bytes::copy_from_slice(&[db]),
        Bytes::copy_from_slice(&[db + 1]),
    )
}

pub fn system_key(name: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + name.len());
    out.put_u8(SYSTEM_PREFIX);
    out.put_slice(name.as_bytes());
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trip_and_key_order() {
        let meta = Meta::string(Bytes::from("hello"), 42, 1_700_000_000_000);
        assert_eq!(Meta::decode(&meta.encode()), Some(meta));
        assert_eq!(Meta::decode(&Bytes::from_static(b"\x00short")), None);
        let a = expire_key(0, Slot(5), 100, b"z");
        let b = expire_key(0, Slot(5), 200, b"a");
        assert!(a < b, "expiry index orders by time within a slot");
        assert_eq!(decode_expire_key(&b), Some((200, Bytes::from("a"))));
        assert_eq!(
            user_key_of_meta(&meta_key(3, Slot(9), b"k")),
            Bytes::from("k")
        );
    }
}
