//! The keyspace event log: the keyspace events of each shard's applied entries, kept under
//! the entry's log index so a client can read them again, and resume after a disconnect
//! from the last one it saw (KEYEVENTS), on any node holding a replica of the shard.
//!
//! Events are system records `events/<group>/<index>/<seq>` written in the same batch as
//! the entry they come from, so they are exactly as durable as the entry and every replica
//! holds the same ones. `events/<group>/since` names the first index whose events are all
//! still kept: recording started there, or older ones were trimmed
//! (`keyspace-events-log` entries are kept per shard).

use bytes::{BufMut, Bytes, BytesMut};

use super::{encoding, Keyspace, Result, Txn};
use crate::storage::KeyRange;

/// One event of an applied entry, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// The entry's log index and the event's place among the entry's events.
    pub id: EventId,
    pub db: u8,
    pub name: Bytes,
    pub key: Bytes,
}

/// Where an event sits in its shard's log: `index-seq`, ordered as tuples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventId {
    pub index: u64,
    pub seq: u32,
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.index, self.seq)
    }
}

impl EventId {
    /// Parses `index-seq` (or `index`, for `index-0`).
    pub fn parse(text: &[u8]) -> Option<EventId> {
        let text = std::str::from_utf8(text).ok()?;
        let (index, seq) = text.split_once('-').unwrap_or((text, "0"));
        Some(EventId {
            index: index.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

fn group_prefix(group: u32) -> String {
    format!("events/{group:05}/")
}

fn record_name(group: u32, id: EventId) -> String {
    format!("events/{group:05}/{:020}/{:010}", id.index, id.seq)
}

fn since_name(group: u32) -> String {
    format!("events/{group:05}/since")
}

/// The records of a group's events (not its `since` mark): digits sort before ':'.
fn records_range(group: u32, from: EventId) -> KeyRange {
    let end = format!("{}:", group_prefix(group));
    KeyRange::half_open(
        encoding::system_key(&record_name(group, from)),
        encoding::system_key(&end),
    )
}

/// Every record (events and `since` mark) of `group`, or of every group.
fn kept_range(group: Option<u32>) -> (Bytes, Bytes) {
    let (start, end) = match group {
        Some(g) => (group_prefix(g), format!("events/{g:05}0")),
        None => ("events/".to_string(), "events0".to_string()),
    };
    (encoding::system_key(&start), encoding::system_key(&end))
}

fn encode(db: u8, name: &str, key: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(2 + name.len() + key.len());
    out.put_u8(db);
    out.put_u8(name.len() as u8);
    out.put_slice(name.as_bytes());
    out.put_slice(key);
    out.freeze()
}

fn decode(id: EventId, raw: Bytes) -> Option<LoggedEvent> {
    let db = *raw.first()?;
    let len = usize::from(*raw.get(1)?);
    if raw.len() < 2 + len {
        return None;
    }
    Some(LoggedEvent {
        id,
        db,
        name: raw.slice(2..2 + len),
        key: raw.slice(2 + len..),
    })
}

/// The id a record's system key names.
fn id_of(key: &[u8]) -> Option<EventId> {
    let text = std::str::from_utf8(key).ok()?;
    let mut parts = text.rsplit('/');
    let seq = parts.next()?.parse().ok()?;
    let index = parts.next()?.parse().ok()?;
    Some(EventId { index, seq })
}

impl Txn<'_> {
    /// Records the events (db, name, key) of the entry at `index` of `group`.
    pub fn log_events<'e>(
        &mut self,
        group: u32,
        index: u64,
        events: impl IntoIterator<Item = (u8, &'e str, &'e [u8])>,
    ) {
        for (seq, (db, name, key)) in events.into_iter().enumerate() {
            let id = EventId {
                index,
                seq: seq as u32,
            };
            self.put_system(&record_name(group, id), encode(db, name, key));
        }
    }

    /// Marks `index` as the first of `group` whose events are all kept, dropping older ones.
    pub fn keep_events_from(&mut self, group: u32, index: u64) {
        let name = |index| record_name(group, EventId { index, seq: 0 });
        self.delete_system_range(&name(0), &name(index));
        self.put_system(&since_name(group), Bytes::from(index.to_string()));
    }
}

impl Keyspace {
    /// The first index of `group` whose events are all kept; `None` when none are.
    pub fn events_since(&self, group: u32) -> Result<Option<u64>> {
        Ok(self
            .get_system(&since_name(group))?
            .and_then(|raw| std::str::from_utf8(&raw).ok()?.parse().ok()))
    }

    /// Up to `count` events of `group` after `after`, in order.
    pub fn read_events(
        &self,
        group: u32,
        after: EventId,
        count: usize,
    ) -> Result<Vec<LoggedEvent>> {
        let from = EventId {
            seq: after.seq.saturating_add(1),
            ..after
        };
        let rows = self
            .engine
            .scan(&records_range(group, from), false, count)?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, v)| decode(id_of(&k[1..])?, v))
            .collect())
    }

    /// Whether any events are kept (of any group).
    pub fn keeps_events(&self) -> Result<bool> {
        let (start, end) = kept_range(None);
        let range = KeyRange::half_open(start, end);
        Ok(!self.engine.scan(&range, false, 1)?.is_empty())
    }

    /// Drops every kept event of `group`, or of every group, with its `since` mark.
    pub fn forget_events(&self, group: Option<u32>) -> Result<()> {
        let (start, end) = kept_range(group);
        let mut batch = crate::storage::WriteBatch::new();
        batch.delete_range(start, end);
        Ok(self.engine.write(batch)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_and_order_as_logged() {
        let id = EventId::parse(b"12-3").unwrap();
        assert_eq!((id.index, id.seq), (12, 3));
        assert_eq!(EventId::parse(b"7"), Some(EventId { index: 7, seq: 0 }));
        assert_eq!(EventId::parse(b"x-1"), None);
        assert_eq!(id.to_string(), "12-3");
        let name = record_name(3, id);
        assert_eq!(id_of(name.as_bytes()), Some(id));
        assert!(record_name(3, EventId { index: 9, seq: 1 }) < record_name(3, id));
        assert!(record_name(3, id) < format!("{}:", group_prefix(3)));
        assert!(since_name(3) > format!("{}:", group_prefix(3)));
        let e = decode(id, encode(2, "set", b"k")).unwrap();
        assert_eq!((e.db, &e.name[..], &e.key[..]), (2, &b"set"[..], &b"k"[..]));
    }
}
