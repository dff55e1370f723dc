//! A stream's records, read at the proposer or written at apply through one interface.
//!
//! [`Records`] is a stream's element records as a reader sees them ([`Stored`] over the
//! keyspace's [`Reads`]): the keyspace at the proposer ([`Reading`]) or a write transaction
//! at apply ([`Writing`], which also puts and deletes). The helpers over it read entries, groups, consumers and pending entries in
//! the layout `record.rs` describes; [`Stream`] is the decoded metadata record with the
//! counters Redis 7.0 derives from it (entries read, lag).

use std::ops::Bound;

use bytes::{Bytes, BytesMut};

use super::id::StreamId;
use super::record::{self, Consumer, Group, Pending, StreamState, ENTRIES_READ_UNKNOWN};
use crate::commands::error::{self, CmdError};
use crate::keyspace::{
    Collection, Encoding, LiveReads, Meta, Reads, Space, SubRange, Txn, ValueType,
};
use crate::storage::prefix_successor;

/// A stream's element records.
pub trait Records {
    fn get(&mut self, sub: &[u8]) -> Result<Option<Bytes>, CmdError>;
    /// Up to `limit` records in `range`, in sub-key order (descending when `reverse`).
    fn scan(
        &mut self,
        range: &SubRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Bytes, Bytes)>, CmdError>;
}

/// The element records of one stream version, through `reads`.
pub struct Stored<'a, R> {
    pub reads: R,
    pub db: u8,
    pub key: &'a [u8],
    pub version: u64,
}

/// The records as the keyspace holds them (reads at the proposer).
pub type Reading<'a> = Stored<'a, LiveReads<'a>>;
/// The records as a write transaction leaves them (apply).
pub type Writing<'a, 't> = Stored<'a, &'a mut Txn<'t>>;

impl<R: Reads> Records for Stored<'_, R> {
    fn get(&mut self, sub: &[u8]) -> Result<Option<Bytes>, CmdError> {
        let (db, key, version) = (self.db, self.key, self.version);
        Ok(self.reads.record(Space::Elements, db, key, version, sub)?)
    }

    fn scan(
        &mut self,
        range: &SubRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Bytes, Bytes)>, CmdError> {
        let (db, key, version) = (self.db, self.key, self.version);
        Ok(self
            .reads
            .records(Space::Elements, db, key, version, range, limit, reverse)?)
    }
}

impl Stored<'_, &mut Txn<'_>> {
    /// A keyspace event of the stream this command names itself.
    pub fn note_event(&mut self, name: &'static str) {
        self.reads.note_event(self.db, self.key, name);
    }

    pub fn put(&mut self, sub: &[u8], value: Bytes) {
        self.reads
            .put_element(self.db, self.key, self.version, sub, value);
    }

    pub fn delete(&mut self, sub: &[u8]) {
        self.reads
            .delete_element(self.db, self.key, self.version, sub);
    }

    pub fn put_group(&mut self, name: &[u8], group: &Group) {
        self.put(&record::group_sub(name), group.encode());
    }

    pub fn put_consumer(&mut self, group: &[u8], name: &[u8], consumer: &Consumer) {
        self.put(&record::consumer_sub(group, name), consumer.encode());
    }

    /// Records `id` as pending for `pending.consumer` in both PELs.
    pub fn put_pending(&mut self, group: &[u8], id: StreamId, pending: &Pending) {
        self.put(&record::pending_sub(group, id), pending.encode());
        let own = record::consumer_pending_sub(group, &pending.consumer, id);
        self.put(&own, Bytes::new());
    }

    /// Removes `id` from the group's PEL and its consumer's.
    pub fn delete_pending(&mut self, group: &[u8], id: StreamId, consumer: &[u8]) {
        self.delete(&record::pending_sub(group, id));
        self.delete(&record::consumer_pending_sub(group, consumer, id));
    }

    /// Deletes every record in `range`, a page at a time.
    pub fn delete_all(&mut self, range: &SubRange) -> Result<(), CmdError> {
        loop {
            let page = self.scan(range, 1024, false)?;
            for (sub, _) in &page {
                self.delete(sub);
            }
            if page.len() < 1024 {
                return Ok(());
            }
        }
    }
}

fn corrupt(what: &str) -> CmdError {
    CmdError::Internal(format!("bad stream {what} record"))
}

/// The sub keys starting with `prefix`.
pub fn prefixed(prefix: Bytes) -> SubRange {
    let end = match prefix_successor(&prefix) {
        Some(end) => Bound::Excluded(Bytes::from(end)),
        None => Bound::Unbounded,
    };
    SubRange {
        start: Bound::Included(prefix),
        end,
    }
}

/// Entries `start..=end` (in reverse from `end` when `reverse`), at most `count` (0: all).
pub fn entries(
    r: &mut impl Records,
    start: StreamId,
    end: StreamId,
    count: usize,
    reverse: bool,
) -> Result<Vec<(StreamId, Vec<Bytes>)>, CmdError> {
    if start > end {
        return Ok(Vec::new());
    }
    let range = SubRange {
        start: Bound::Included(record::entry_sub(start)),
        end: Bound::Included(record::entry_sub(end)),
    };
    let limit = if count == 0 { usize::MAX } else { count };
    r.scan(&range, limit, reverse)?
        .into_iter()
        .map(|(sub, value)| {
            let id = record::id_at_end(&sub).ok_or_else(|| corrupt("entry"))?;
            let fields = record::decode_fields(&value).ok_or_else(|| corrupt("entry"))?;
            Ok((id, fields))
        })
        .collect()
}

/// The entry `id`, if the stream holds it.
pub fn entry(r: &mut impl Records, id: StreamId) -> Result<Option<Vec<Bytes>>, CmdError> {
    match r.get(&record::entry_sub(id))? {
        None => Ok(None),
        Some(raw) => Ok(Some(
            record::decode_fields(&raw).ok_or_else(|| corrupt("entry"))?,
        )),
    }
}

/// The first entry's ID at or after `from` (`None`: no entry there).
pub fn first_entry_from(
    r: &mut impl Records,
    from: StreamId,
) -> Result<Option<StreamId>, CmdError> {
    Ok(entries(r, from, StreamId::MAX, 1, false)?
        .first()
        .map(|(id, _)| *id))
}

pub fn group(r: &mut impl Records, name: &[u8]) -> Result<Option<Group>, CmdError> {
    match r.get(&record::group_sub(name))? {
        None => Ok(None),
        Some(raw) => Ok(Some(Group::decode(&raw).ok_or_else(|| corrupt("group"))?)),
    }
}

/// Every group, by name.
pub fn groups(r: &mut impl Records) -> Result<Vec<(Bytes, Group)>, CmdError> {
    let range = prefixed(Bytes::from_static(&[record::GROUP]));
    r.scan(&range, usize::MAX, false)?
        .into_iter()
        .map(|(sub, raw)| {
            let group = Group::decode(&raw).ok_or_else(|| corrupt("group"))?;
            Ok((sub.slice(1..), group))
        })
        .collect()
}

pub fn consumer(
    r: &mut impl Records,
    group: &[u8],
    name: &[u8],
) -> Result<Option<Consumer>, CmdError> {
    match r.get(&record::consumer_sub(group, name))? {
        None => Ok(None),
        Some(raw) => Ok(Some(
            Consumer::decode(&raw).ok_or_else(|| corrupt("consumer"))?,
        )),
    }
}

/// Every consumer of `group`, by name.
pub fn consumers(r: &mut impl Records, group: &[u8]) -> Result<Vec<(Bytes, Consumer)>, CmdError> {
    let prefix = record::consumers_prefix(group);
    let skip = prefix.len();
    r.scan(&prefixed(prefix), usize::MAX, false)?
        .into_iter()
        .map(|(sub, raw)| {
            let consumer = Consumer::decode(&raw).ok_or_else(|| corrupt("consumer"))?;
            Ok((sub.slice(skip..), consumer))
        })
        .collect()
}

pub fn pending(
    r: &mut impl Records,
    group: &[u8],
    id: StreamId,
) -> Result<Option<Pending>, CmdError> {
    match r.get(&record::pending_sub(group, id))? {
        None => Ok(None),
        Some(raw) => Ok(Some(
            Pending::decode(&raw).ok_or_else(|| corrupt("pending"))?,
        )),
    }
}

/// Range bounds over sub keys `prefix | id` for `start..=end`.
fn id_range(prefix: &[u8], start: StreamId, end: StreamId) -> SubRange {
    let at = |id: StreamId| {
        let mut out = BytesMut::with_capacity(prefix.len() + 16);
        out.extend_from_slice(prefix);
        out.extend_from_slice(&id.encode());
        out.freeze()
    };
    SubRange {
        start: Bound::Included(at(start)),
        end: Bound::Included(at(end)),
    }
}

/// The group's pending entries `start..=end`, at most `limit`, descending when `reverse`.
pub fn pending_range(
    r: &mut impl Records,
    group: &[u8],
    start: StreamId,
    end: StreamId,
    limit: usize,
    reverse: bool,
) -> Result<Vec<(StreamId, Pending)>, CmdError> {
    if start > end {
        return Ok(Vec::new());
    }
    let range = id_range(&record::pending_prefix(group), start, end);
    r.scan(&range, limit, reverse)?
        .into_iter()
        .map(|(sub, raw)| {
            let id = record::id_at_end(&sub).ok_or_else(|| corrupt("pending"))?;
            Ok((id, Pending::decode(&raw).ok_or_else(|| corrupt("pending"))?))
        })
        .collect()
}

/// The IDs pending for one consumer, `start..=end`, at most `limit`.
pub fn consumer_pending_ids(
    r: &mut impl Records,
    group: &[u8],
    consumer: &[u8],
    start: StreamId,
    end: StreamId,
    limit: usize,
) -> Result<Vec<StreamId>, CmdError> {
    if start > end {
        return Ok(Vec::new());
    }
    let range = id_range(
        &record::consumer_pending_prefix(group, consumer),
        start,
        end,
    );
    r.scan(&range, limit, false)?
        .into_iter()
        .map(|(sub, _)| record::id_at_end(&sub).ok_or_else(|| corrupt("pending")))
        .collect()
}

/// A stream's metadata record, decoded.
#[derive(Debug, Clone)]
pub struct Stream {
    pub meta: Meta,
    pub header: Collection,
    pub state: StreamState,
}

impl Stream {
    /// The stream in `meta`; another type is WRONGTYPE.
    pub fn from_meta(meta: Meta) -> Result<Stream, CmdError> {
        if meta.value_type != ValueType::Stream {
            return Err(error::wrongtype());
        }
        let header = meta
            .collection_header()
            .ok_or_else(|| corrupt("metadata"))?;
        let state =
            StreamState::decode(meta.collection_tail()).ok_or_else(|| corrupt("metadata"))?;
        Ok(Stream {
            meta,
            header,
            state,
        })
    }

    /// A new empty stream with its records under `version`.
    pub fn new(version: u64, revision: u64) -> Stream {
        let meta = Meta::collection(ValueType::Stream, Encoding::Stream, version, revision);
        let header = meta.collection_header().unwrap_or_default();
        Stream {
            meta,
            header,
            state: StreamState::default(),
        }
    }

    pub fn len(&self) -> u64 {
        self.header.count
    }

    pub fn version(&self) -> u64 {
        self.header.version
    }

    /// The metadata record to store, stamped with `revision`.
    pub fn to_meta(&self, revision: u64) -> Meta {
        let mut value = BytesMut::from(&self.header.encode()[..]);
        self.state.encode(&mut value);
        Meta {
            revision,
            value: value.freeze(),
            ..self.meta.clone()
        }
    }

    /// Whether an entry after `start` may have been deleted (Redis's
    /// `streamRangeHasTombstones` with an open end).
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        let s = &self.state;
        if self.len() == 0 || s.max_deleted.is_zero() || s.first_id > s.max_deleted {
            return false;
        }
        start <= s.max_deleted
    }

    /// How many entries were added up to and including `id`, if that can be known
    /// (Redis's `streamEstimateDistanceFromFirstEverEntry`).
    pub fn entries_read_at(&self, id: StreamId) -> i64 {
        let s = &self.state;
        let added = s.entries_added as i64;
        if s.entries_added == 0 {
            return 0;
        }
        if self.len() == 0 && id <= s.last_id {
            return added;
        }
        match id.cmp(&s.last_id) {
            std::cmp::Ordering::Equal => return added,
            std::cmp::Ordering::Greater => return ENTRIES_READ_UNKNOWN,
            std::cmp::Ordering::Less => {}
        }
        if s.max_deleted.is_zero() || s.max_deleted < s.first_id {
            match id.cmp(&s.first_id) {
                std::cmp::Ordering::Less => return added - self.len() as i64,
                std::cmp::Ordering::Equal => return added - self.len() as i64 + 1,
                std::cmp::Ordering::Greater => {}
            }
        }
        ENTRIES_READ_UNKNOWN
    }

    /// The group's lag (entries not yet delivered to it), if it can be known.
    pub fn lag(&self, group: &Group) -> Option<i64> {
        let added = self.state.entries_added as i64;
        if self.state.entries_added == 0 {
            return Some(0);
        }
        if group.entries_read != ENTRIES_READ_UNKNOWN && !self.has_tombstones_from(group.last_id) {
            return Some(added - group.entries_read);
        }
        match self.entries_read_at(group.last_id) {
            ENTRIES_READ_UNKNOWN => None,
            read => Some(added - read),
        }
    }

    /// Moves `group` past the delivered `id`, counting it as read (Redis's bookkeeping in
    /// `streamReplyWithRange`).
    pub fn deliver(&self, group: &mut Group, id: StreamId) {
        if id <= group.last_id {
            return;
        }
        if group.entries_read != ENTRIES_READ_UNKNOWN && !self.has_tombstones_from(id) {
            group.entries_read += 1;
        } else if self.state.entries_added != 0 {
            group.entries_read = self.entries_read_at(id);
        }
        group.last_id = id;
    }
}
