//! How Redis keys and values map onto engine keys and values.
//!
//! ## Format
//! Engine keys (all integers big-endian so byte order is numeric order):
//! - metadata: `db:u8 | b'M' | slot:u16 | user key` → [`Meta`]
//! - expiry index: `db:u8 | b'E' | slot:u16 | expire_at_ms:u64 | user key` → empty
//! - collection elements: `db:u8 | b'S' | slot:u16 | key_len:u32 | user key | version:u64 |
//!   sub key` → element value (a hash field → its value; a sorted-set member → its score)
//! - sorted-set score index: `db:u8 | b'Z' | slot:u16 | key_len:u32 | user key | version:u64 |
//!   score (order-preserving, [`score_order`]) | member` → empty
//! - system records: `0xff | name` (`version`: the next collection version, u64)
//!
//! `db` is the *physical* database number; SWAPDB swaps the logical → physical map (a system
//! record), so it is O(1). The database comes first so FLUSHDB is one delete-range.
//!
//! Metadata value: `type:u8 | encoding:u8 | revision:u64 | expire_at_ms:u64 (0 = none) |
//! payload`, where a string's payload is its value, stored inline so GET is one lookup, and
//! `encoding` is the representation Redis would report for it (OBJECT ENCODING). A
//! collection's payload is `version:u64 | count:u64 | head:u64` (head: a list's first
//! index; lists store elements under `index:u64`, starting mid-range so both ends can
//! grow), followed by what a type keeps of its own (a stream's IDs and counters): elements
//! are stored under the
//! version, so deleting or replacing a collection only rewrites its metadata, and elements
//! of any other version are garbage the compaction filter removes (`filter.rs`).
//! Versions come from a persisted counter and are never reused.

use bytes::{BufMut, Bytes, BytesMut};

use crate::cluster::Slot;

pub const TAG_META: u8 = b'M';
pub const TAG_EXPIRE: u8 = b'E';
pub const TAG_ELEMENT: u8 = b'S';
pub const TAG_SCORE: u8 = b'Z';
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
    Hash = 1,
    List = 2,
    Set = 3,
    ZSet = 4,
    Stream = 5,
}

impl ValueType {
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Hash => "hash",
            ValueType::List => "list",
            ValueType::Set => "set",
            ValueType::ZSet => "zset",
            ValueType::Stream => "stream",
        }
    }

    /// By TYPE's name (SCAN's TYPE option).
    pub fn from_name(name: &[u8]) -> Option<ValueType> {
        [
            ValueType::String,
            ValueType::Hash,
            ValueType::List,
            ValueType::Set,
            ValueType::ZSet,
            ValueType::Stream,
        ]
        .into_iter()
        .find(|t| t.name().as_bytes().eq_ignore_ascii_case(name))
    }

    fn from_u8(b: u8) -> Option<ValueType> {
        match b {
            0 => Some(ValueType::String),
            1 => Some(ValueType::Hash),
            2 => Some(ValueType::List),
            3 => Some(ValueType::Set),
            4 => Some(ValueType::ZSet),
            5 => Some(ValueType::Stream),
            _ => None,
        }
    }

    /// Whether values of this type live in element records.
    pub fn is_collection(self) -> bool {
        self != ValueType::String
    }
}

/// How Redis would represent a string value; follows the command that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Encoding {
    Int = 0,
    Embstr = 1,
    Raw = 2,
    Listpack = 3,
    Hashtable = 4,
    Quicklist = 5,
    Intset = 6,
    Skiplist = 7,
    Stream = 8,
}

impl Encoding {
    /// Redis's `tryObjectEncoding`: integers of up to 20 bytes are `int`, short strings
    /// `embstr`, the rest `raw` (SET, MSET, GETSET, RESTORE…).
    pub fn for_value(value: &[u8]) -> Encoding {
        if value.len() <= 20 && crate::protocol::decode::parse_i64(value).is_some() {
            Encoding::Int
        } else {
            Encoding::by_length(value)
        }
    }

    /// Redis's `createStringObject`: by length only (INCRBYFLOAT's result).
    pub fn by_length(value: &[u8]) -> Encoding {
        if value.len() <= EMBSTR_BYTES_MAX {
            Encoding::Embstr
        } else {
            Encoding::Raw
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Int => "int",
            Encoding::Embstr => "embstr",
            Encoding::Raw => "raw",
            Encoding::Listpack => "listpack",
            Encoding::Hashtable => "hashtable",
            Encoding::Quicklist => "quicklist",
            Encoding::Intset => "intset",
            Encoding::Skiplist => "skiplist",
            Encoding::Stream => "stream",
        }
    }

    fn from_u8(b: u8) -> Option<Encoding> {
        match b {
            0 => Some(Encoding::Int),
            1 => Some(Encoding::Embstr),
            2 => Some(Encoding::Raw),
            3 => Some(Encoding::Listpack),
            4 => Some(Encoding::Hashtable),
            5 => Some(Encoding::Quicklist),
            6 => Some(Encoding::Intset),
            7 => Some(Encoding::Skiplist),
            8 => Some(Encoding::Stream),
            _ => None,
        }
    }
}

/// A key's metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub value_type: ValueType,
    pub encoding: Encoding,
    /// The revision of the last change to this key: `log index << 16 | group` of the entry
    /// that made it (see `GroupState::revision`), unique across shards.
    pub revision: u64,
    /// Absolute expiry in Unix milliseconds; 0 means no expiry.
    pub expire_at_ms: u64,
    /// A string's value.
    pub value: Bytes,
}

impl Meta {
    /// A string stored as SET stores it (encoding by `tryObjectEncoding`).
    pub fn string(value: Bytes, revision: u64, expire_at_ms: u64) -> Meta {
        let encoding = Encoding::for_value(&value);
        Meta {
            value_type: ValueType::String,
            encoding,
            revision,
            expire_at_ms,
            value,
        }
    }

    /// An empty collection's record, created at `revision` with elements under `version`.
    pub fn collection(
        value_type: ValueType,
        encoding: Encoding,
        version: u64,
        revision: u64,
    ) -> Meta {
        Meta {
            value_type,
            encoding,
            revision,
            expire_at_ms: 0,
            value: Collection {
                version,
                count: 0,
                head: LIST_START,
            }
            .encode(),
        }
    }

    /// The version and element count of a collection (`None` for strings or a bad record).
    pub fn collection_header(&self) -> Option<Collection> {
        if !self.value_type.is_collection() {
            return None;
        }
        Collection::decode(&self.value)
    }

    /// The same record with another element count.
    pub fn with_count(self, count: u64) -> Meta {
        let header = self.collection_header();
        self.with_header(Collection {
            count,
            ..header.unwrap_or_default()
        })
    }

    /// The same record with another collection header (a type's own fields after the
    /// header, such as a stream's IDs, are kept).
    pub fn with_header(self, header: Collection) -> Meta {
        let tail = self
            .value
            .get(COLLECTION_HEADER_BYTES..)
            .unwrap_or_default();
        let mut value = BytesMut::with_capacity(COLLECTION_HEADER_BYTES + tail.len());
        value.put_slice(&header.encode());
        value.put_slice(tail);
        Meta {
            value: value.freeze(),
            ..self
        }
    }

    /// What a collection's payload holds after its header: a type's own fields.
    pub fn collection_tail(&self) -> &[u8] {
        self.value
            .get(COLLECTION_HEADER_BYTES..)
            .unwrap_or_default()
    }

    /// The same record with another encoding.
    pub fn with_encoding(self, encoding: Encoding) -> Meta {
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
        let encoding = Encoding::from_u8(raw[1])?;
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

/// A collection's element version and count, from its metadata payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Collection {
    pub version: u64,
    pub count: u64,
    /// A list's first index (unused by other types).
    pub head: u64,
}

/// Bytes of a collection header at the start of a collection's payload.
pub const COLLECTION_HEADER_BYTES: usize = 24;

/// The index of a new list's first element: the middle of the range.
pub const LIST_START: u64 = 1 << 63;

impl Collection {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(24);
        out.put_u64(self.version);
        out.put_u64(self.count);
        out.put_u64(self.head);
        out.freeze()
    }

    fn decode(raw: &[u8]) -> Option<Collection> {
        Some(Collection {
            version: u64::from_be_bytes(raw.get(..8)?.try_into().ok()?),
            count: u64::from_be_bytes(raw.get(8..16)?.try_into().ok()?),
            head: u64::from_be_bytes(raw.get(16..24)?.try_into().ok()?),
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

/// The two record spaces a collection's elements live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// One record per field, member or list element (`S`).
    Elements,
    /// A sorted set's score index (`Z`): sub key `score_order(score) | member`.
    Scores,
}

impl Space {
    fn tag(self) -> u8 {
        match self {
            Space::Elements => TAG_ELEMENT,
            Space::Scores => TAG_SCORE,
        }
    }
}

/// Where the records of one version of a collection in `space` start.
pub fn space_prefix(space: Space, db: u8, slot: Slot, key: &[u8], version: u64) -> Bytes {
    let mut out = prefix(db, space.tag(), slot, 4 + key.len() + 8);
    out.put_u32(key.len() as u32);
    out.put_slice(key);
    out.put_u64(version);
    out.freeze()
}

pub fn space_key(space: Space, db: u8, slot: Slot, key: &[u8], version: u64, sub: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + 4 + key.len() + 8 + sub.len());
    out.put_slice(&space_prefix(space, db, slot, key, version));
    out.put_slice(sub);
    out.freeze()
}

/// Where the elements of one version of a collection start: every element key begins so.
pub fn element_prefix(db: u8, slot: Slot, key: &[u8], version: u64) -> Bytes {
    space_prefix(Space::Elements, db, slot, key, version)
}

pub fn element_key(db: u8, slot: Slot, key: &[u8], version: u64, sub: &[u8]) -> Bytes {
    space_key(Space::Elements, db, slot, key, version, sub)
}

/// A score as 8 bytes whose byte order is the numeric order (-0 sorts as 0).
pub fn score_order(score: f64) -> [u8; 8] {
    let bits = (score + 0.0).to_bits();
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    };
    ordered.to_be_bytes()
}

/// The score an order-preserving encoding came from.
pub fn score_from_order(raw: [u8; 8]) -> f64 {
    let ordered = u64::from_be_bytes(raw);
    let bits = if ordered >> 63 == 1 {
        ordered & !(1 << 63)
    } else {
        !ordered
    };
    f64::from_bits(bits)
}

/// A sorted-set member record's value: its score.
pub fn encode_score(score: f64) -> Bytes {
    Bytes::copy_from_slice(&(score + 0.0).to_be_bytes())
}

pub fn decode_score(raw: &[u8]) -> Option<f64> {
    Some(f64::from_be_bytes(raw.try_into().ok()?))
}

/// The score-index sub key of `member` at `score`: ordered by score, then member.
pub fn score_sub(score: f64, member: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(8 + member.len());
    out.put_slice(&score_order(score));
    out.put_slice(member);
    out.freeze()
}

/// `(score, member)` from a score-index sub key.
pub fn split_score_sub(sub: &Bytes) -> Option<(f64, Bytes)> {
    let order: [u8; 8] = sub.get(..8)?.try_into().ok()?;
    Some((score_from_order(order), sub.slice(8..)))
}

/// The metadata key and version an element or score-index key belongs to.
pub fn element_owner(raw: &[u8]) -> Option<(Bytes, u64)> {
    if raw.len() < 8 || (raw[1] != TAG_ELEMENT && raw[1] != TAG_SCORE) {
        return None;
    }
    let key_len = u32::from_be_bytes(raw[4..8].try_into().ok()?) as usize;
    let key = raw.get(8..8 + key_len)?;
    let version = u64::from_be_bytes(raw.get(8 + key_len..16 + key_len)?.try_into().ok()?);
    Some((meta_key(raw[0], slot_of_key(raw), key), version))
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
        let hash = Meta::collection(ValueType::Hash, Encoding::Listpack, 77, 5).with_count(3);
        assert_eq!(Meta::decode(&hash.encode()), Some(hash.clone()));
        assert_eq!(
            hash.collection_header(),
            Some(Collection {
                version: 77,
                count: 3,
                head: LIST_START,
            })
        );
        let ek = element_key(2, Slot(9), b"k", 77, b"field");
        assert!(ek.starts_with(&element_prefix(2, Slot(9), b"k", 77)));
        assert_eq!(element_owner(&ek), Some((meta_key(2, Slot(9), b"k"), 77)));
        assert_eq!(element_owner(&meta_key(2, Slot(9), b"k")), None);
        let zk = space_key(Space::Scores, 2, Slot(9), b"k", 77, b"x");
        assert_eq!(element_owner(&zk), Some((meta_key(2, Slot(9), b"k"), 77)));
    }

    #[test]
    fn score_order_is_numeric_order() {
        let scores = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -1.0,
            -f64::MIN_POSITIVE,
            0.0,
            f64::MIN_POSITIVE,
            1.0,
            1.5,
            1e300,
            f64::INFINITY,
        ];
        for pair in scores.windows(2) {
            assert!(score_order(pair[0]) < score_order(pair[1]), "{pair:?}");
        }
        for s in scores {
            assert_eq!(score_from_order(score_order(s)), s);
        }
        assert_eq!(score_order(-0.0), score_order(0.0));
    }
}
