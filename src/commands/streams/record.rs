//! How a stream is laid out in records.
//!
//! The key's metadata payload is the collection header (`count` = the stream's length)
//! followed by [`StreamState`]: the last generated ID, the first entry's ID, the largest
//! deleted ID and the entries ever added. Everything else
//! is an element record of the stream's version, told apart by the first byte of its sub
//! key, so DEL of a stream is one metadata delete and compaction drops the rest:
//!
//! | sub key | value |
//! |---|---|
//! | `e` id | the entry's fields and values ([`encode_fields`]) |
//! | `g` group | [`Group`] |
//! | `c` group-len group consumer | [`Consumer`] |
//! | `p` group-len group id | [`Pending`]: the group's pending entry |
//! | `q` group-len group consumer-len consumer id | empty: the consumer's pending entry |
//!
//! IDs are 16 big-endian bytes ([`StreamId::encode`]) and lengths 4, so byte order is ID
//! order and names sort as Redis's radix trees list them.

use bytes::{BufMut, Bytes, BytesMut};

use super::id::StreamId;

pub const ENTRY: u8 = b'e';
pub const GROUP: u8 = b'g';
pub const CONSUMER: u8 = b'c';
pub const PENDING: u8 = b'p';
pub const CONSUMER_PENDING: u8 = b'q';

/// A group's `entries_read` when it is unknown (Redis's `SCG_INVALID_ENTRIES_READ`).
pub const ENTRIES_READ_UNKNOWN: i64 = -1;

const STATE_BYTES: usize = 16 * 3 + 8;

/// A stream's own fields, kept in its metadata record after the collection header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamState {
    pub last_id: StreamId,
    /// The first entry's ID (0-0 when empty), Redis's `first_id`.
    pub first_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
}

impl StreamState {
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.last_id.encode());
        out.put_slice(&self.first_id.encode());
        out.put_slice(&self.max_deleted.encode());
        out.put_u64(self.entries_added);
    }

    pub fn decode(raw: &[u8]) -> Option<StreamState> {
        if raw.len() < STATE_BYTES {
            return None;
        }
        Some(StreamState {
            last_id: StreamId::decode(&raw[..16])?,
            first_id: StreamId::decode(&raw[16..32])?,
            max_deleted: StreamId::decode(&raw[32..48])?,
            entries_added: u64::from_be_bytes(raw[48..56].try_into().ok()?),
        })
    }
}

/// A consumer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    pub last_id: StreamId,
    /// Entries the group has read, or [`ENTRIES_READ_UNKNOWN`].
    pub entries_read: i64,
    pub pending: u64,
    pub consumers: u64,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group {
            last_id,
            entries_read,
            pending: 0,
            consumers: 0,
        }
    }

    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(40);
        out.put_slice(&self.last_id.encode());
        out.put_i64(self.entries_read);
        out.put_u64(self.pending);
        out.put_u64(self.consumers);
        out.freeze()
    }

    pub fn decode(raw: &[u8]) -> Option<Group> {
        Some(Group {
            last_id: StreamId::decode(raw.get(..16)?)?,
            entries_read: i64::from_be_bytes(raw.get(16..24)?.try_into().ok()?),
            pending: u64::from_be_bytes(raw.get(24..32)?.try_into().ok()?),
            consumers: u64::from_be_bytes(raw.get(32..40)?.try_into().ok()?),
        })
    }
}

/// A consumer of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumer {
    /// When it was last seen (Unix ms of the entry that last named it).
    pub seen_ms: u64,
    pub pending: u64,
}

impl Consumer {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(16);
        out.put_u64(self.seen_ms);
        out.put_u64(self.pending);
        out.freeze()
    }

    pub fn decode(raw: &[u8]) -> Option<Consumer> {
        Some(Consumer {
            seen_ms: u64::from_be_bytes(raw.get(..8)?.try_into().ok()?),
            pending: u64::from_be_bytes(raw.get(8..16)?.try_into().ok()?),
        })
    }
}

/// A group's pending (delivered, not acknowledged) entry: Redis's NACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub delivery_ms: u64,
    pub delivery_count: u64,
    pub consumer: Bytes,
}

impl Pending {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(16 + self.consumer.len());
        out.put_u64(self.delivery_ms);
        out.put_u64(self.delivery_count);
        out.put_slice(&self.consumer);
        out.freeze()
    }

    pub fn decode(raw: &Bytes) -> Option<Pending> {
        Some(Pending {
            delivery_ms: u64::from_be_bytes(raw.get(..8)?.try_into().ok()?),
            delivery_count: u64::from_be_bytes(raw.get(8..16)?.try_into().ok()?),
            consumer: raw.slice(16..),
        })
    }
}

/// An entry's fields and values: a count, then each as a length and its bytes.
pub fn encode_fields(items: &[Bytes]) -> Bytes {
    let size: usize = items.iter().map(|i| 4 + i.len()).sum();
    let mut out = BytesMut::with_capacity(4 + size);
    out.put_u32(items.len() as u32);
    for item in items {
        out.put_u32(item.len() as u32);
        out.put_slice(item);
    }
    out.freeze()
}

pub fn decode_fields(raw: &Bytes) -> Option<Vec<Bytes>> {
    let count = u32::from_be_bytes(raw.get(..4)?.try_into().ok()?) as usize;
    let mut items = Vec::with_capacity(count.min(raw.len() / 4));
    let mut at = 4;
    for _ in 0..count {
        let len = u32::from_be_bytes(raw.get(at..at + 4)?.try_into().ok()?) as usize;
        at += 4;
        raw.get(at..at + len)?;
        items.push(raw.slice(at..at + len));
        at += len;
    }
    Some(items)
}

fn sub(tag: u8, parts: &[&[u8]]) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + parts.iter().map(|p| p.len()).sum::<usize>());
    out.put_u8(tag);
    for part in parts {
        out.put_slice(part);
    }
    out.freeze()
}

fn len_of(name: &[u8]) -> [u8; 4] {
    (name.len() as u32).to_be_bytes()
}

pub fn entry_sub(id: StreamId) -> Bytes {
    sub(ENTRY, &[&id.encode()])
}

pub fn group_sub(group: &[u8]) -> Bytes {
    sub(GROUP, &[group])
}

/// Where the records of kind `tag` (consumers, pending entries...) of `group` start.
pub fn of_group(tag: u8, group: &[u8]) -> Bytes {
    sub(tag, &[&len_of(group), group])
}

/// Where the consumers of `group` start.
pub fn consumers_prefix(group: &[u8]) -> Bytes {
    of_group(CONSUMER, group)
}

pub fn consumer_sub(group: &[u8], consumer: &[u8]) -> Bytes {
    sub(CONSUMER, &[&len_of(group), group, consumer])
}

/// Where the pending entries of `group` start.
pub fn pending_prefix(group: &[u8]) -> Bytes {
    of_group(PENDING, group)
}

pub fn pending_sub(group: &[u8], id: StreamId) -> Bytes {
    sub(PENDING, &[&len_of(group), group, &id.encode()])
}

/// Where the pending entries of one consumer of `group` start.
pub fn consumer_pending_prefix(group: &[u8], consumer: &[u8]) -> Bytes {
    sub(
        CONSUMER_PENDING,
        &[&len_of(group), group, &len_of(consumer), consumer],
    )
}

pub fn consumer_pending_sub(group: &[u8], consumer: &[u8], id: StreamId) -> Bytes {
    sub(
        CONSUMER_PENDING,
        &[
            &len_of(group),
            group,
            &len_of(consumer),
            consumer,
            &id.encode(),
        ],
    )
}

/// The ID at the end of a pending or entry sub key.
pub fn id_at_end(sub: &[u8]) -> Option<StreamId> {
    StreamId::decode(sub.get(sub.len().checked_sub(16)?..)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let state = StreamState {
            last_id: StreamId::new(9, 1),
            first_id: StreamId::new(1, 0),
            max_deleted: StreamId::new(3, 3),
            entries_added: 12,
        };
        let mut out = BytesMut::new();
        state.encode(&mut out);
        assert_eq!(StreamState::decode(&out), Some(state));
        let group = Group {
            pending: 4,
            consumers: 1,
            ..Group::new(StreamId::new(5, 5), -1)
        };
        assert_eq!(Group::decode(&group.encode()), Some(group));
        let consumer = Consumer {
            seen_ms: 77,
            pending: 3,
        };
        assert_eq!(Consumer::decode(&consumer.encode()), Some(consumer));
        let pending = Pending {
            delivery_ms: 1,
            delivery_count: 2,
            consumer: Bytes::from("alice"),
        };
        assert_eq!(Pending::decode(&pending.encode()), Some(pending));
        let items = vec![Bytes::from("f"), Bytes::new(), Bytes::from("v")];
        assert_eq!(decode_fields(&encode_fields(&items)), Some(items));
        assert_eq!(decode_fields(&Bytes::from_static(&[0, 0, 0, 2, 0])), None);
    }

    #[test]
    fn sub_keys_sort_as_redis_lists_them() {
        assert!(entry_sub(StreamId::new(1, 9)) < entry_sub(StreamId::new(2, 0)));
        assert!(group_sub(b"a") < group_sub(b"ab"));
        assert!(consumer_sub(b"g", b"a").starts_with(&consumers_prefix(b"g")));
        assert!(!consumer_sub(b"gx", b"a").starts_with(&consumers_prefix(b"g")));
        let p = pending_sub(b"g", StreamId::new(7, 1));
        assert!(p.starts_with(&pending_prefix(b"g")));
        assert_eq!(id_at_end(&p), Some(StreamId::new(7, 1)));
        let q = consumer_pending_sub(b"g", b"c", StreamId::new(7, 1));
        assert!(q.starts_with(&consumer_pending_prefix(b"g", b"c")));
        assert_eq!(id_at_end(&q), Some(StreamId::new(7, 1)));
    }
}
