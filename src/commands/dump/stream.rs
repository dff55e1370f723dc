//! A stream's DUMP payload: `RDB_TYPE_STREAM_LISTPACKS_2`, as redis-server 7.0 writes it,
//! and RESTORE of that type, of 6.x's `RDB_TYPE_STREAM_LISTPACKS` and 7.2's `_3`.
//!
//! ## Format
//! The entries as listpack nodes (a count, then each node's master ID as a 16-byte string
//! and its listpack), the length, the last ID, the first ID, the largest deleted ID and the
//! entries added (v2 on), then the groups: name, last ID, entries read (v2 on), the group's
//! pending entries (raw 16-byte ID, delivery time as 8 bytes LE, delivery count) and its
//! consumers (name, seen time, 7.2's active time, the IDs they hold).
//!
//! A node's listpack starts with its master entry: `count | deleted | field count |
//! fields… | 0`; each entry follows as `flags | ms-diff | seq-diff | [field count] fields
//! and values (only values with SAMEFIELDS) | item count`. DUMP writes nodes of up to
//! 100 entries, Redis's `stream-node-max-entries`.

use bytes::{BufMut, Bytes, BytesMut};

use super::{finish, write_length, write_rdb_string, PayloadError, Reader};
use crate::commands::listpack;
use crate::commands::streams::id::StreamId;

pub const RDB_TYPE_STREAM_LISTPACKS: u8 = 15;
pub const RDB_TYPE_STREAM_LISTPACKS_2: u8 = 19;
pub const RDB_TYPE_STREAM_LISTPACKS_3: u8 = 21;

const NODE_ENTRIES: usize = 100;
const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;
/// Redis's `SCG_INVALID_ENTRIES_READ`, as an RDB length.
const ENTRIES_READ_UNKNOWN: i64 = -1;

/// A stream as a payload carries it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamDump {
    /// Entries in ID order, each with its fields and values.
    pub entries: Vec<(StreamId, Vec<Bytes>)>,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
    pub groups: Vec<GroupDump>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDump {
    pub name: Bytes,
    pub last_id: StreamId,
    /// Entries read, or -1 when unknown.
    pub entries_read: i64,
    /// Pending entries: ID, delivery time (Unix ms), delivery count.
    pub pending: Vec<(StreamId, u64, u64)>,
    pub consumers: Vec<ConsumerDump>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerDump {
    pub name: Bytes,
    pub seen_ms: u64,
    /// The IDs of the group's pending entries this consumer holds.
    pub pending: Vec<StreamId>,
}

/// The payload of `stream`, as redis-server 7.0 writes it.
pub fn dump_stream(stream: &StreamDump) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(RDB_TYPE_STREAM_LISTPACKS_2);
    let nodes: Vec<&[(StreamId, Vec<Bytes>)]> = stream.entries.chunks(NODE_ENTRIES).collect();
    write_length(&mut out, nodes.len() as u64);
    for node in nodes {
        let master = node[0].0;
        write_rdb_string(&mut out, &master.encode());
        write_rdb_string(&mut out, &node_listpack(master, node));
    }
    write_length(&mut out, stream.entries.len() as u64);
    for id in [stream.last_id, stream.first_id, stream.max_deleted] {
        write_id(&mut out, id);
    }
    write_length(&mut out, stream.entries_added);
    write_length(&mut out, stream.groups.len() as u64);
    for group in &stream.groups {
        write_rdb_string(&mut out, &group.name);
        write_id(&mut out, group.last_id);
        write_length(&mut out, group.entries_read as u64);
        write_length(&mut out, group.pending.len() as u64);
        for (id, delivery_ms, count) in &group.pending {
            out.put_slice(&id.encode());
            out.put_u64_le(*delivery_ms);
            write_length(&mut out, *count);
        }
        write_length(&mut out, group.consumers.len() as u64);
        for consumer in &group.consumers {
            write_rdb_string(&mut out, &consumer.name);
            out.put_u64_le(consumer.seen_ms);
            write_length(&mut out, consumer.pending.len() as u64);
            for id in &consumer.pending {
                out.put_slice(&id.encode());
            }
        }
    }
    finish(out)
}

fn write_id(out: &mut BytesMut, id: StreamId) {
    write_length(out, id.ms);
    write_length(out, id.seq);
}

/// One node's listpack: the master entry (the first entry's fields), then each entry,
/// with SAMEFIELDS when its fields are the master's.
fn node_listpack(master: StreamId, node: &[(StreamId, Vec<Bytes>)]) -> Vec<u8> {
    let fields = |items: &[Bytes]| -> Vec<Bytes> { items.iter().step_by(2).cloned().collect() };
    let master_fields = fields(&node[0].1);
    let mut items: Vec<Bytes> = Vec::new();
    let int = |v: i64| Bytes::from(v.to_string());
    items.push(int(node.len() as i64));
    items.push(int(0));
    items.push(int(master_fields.len() as i64));
    items.extend(master_fields.iter().cloned());
    items.push(int(0));
    for (id, entry) in node {
        let same = fields(entry) == master_fields;
        let start = items.len();
        items.push(int(if same { FLAG_SAMEFIELDS } else { 0 }));
        items.push(int(id.ms.wrapping_sub(master.ms) as i64));
        items.push(int(id.seq.wrapping_sub(master.seq) as i64));
        if same {
            items.extend(entry.iter().skip(1).step_by(2).cloned());
        } else {
            items.push(int((entry.len() / 2) as i64));
            items.extend(entry.iter().cloned());
        }
        let count = items.len() - start;
        items.push(int(count as i64));
    }
    let refs: Vec<&[u8]> = items.iter().map(|b| &b[..]).collect();
    listpack::build(&refs)
}

/// Reads a stream of RDB type `kind` from `reader` (after the type byte).
pub(super) fn read_stream(reader: &mut Reader, kind: u8) -> Result<StreamDump, PayloadError> {
    let bad = || PayloadError::BadFormat;
    let mut out = StreamDump::default();
    let nodes = reader.plain_length()?;
    for _ in 0..nodes {
        let key = reader.rdb_string()?;
        let master = (key.len() == 16)
            .then(|| StreamId::decode(&key))
            .flatten()
            .ok_or_else(bad)?;
        let lp = reader.rdb_string()?;
        let items = listpack::entries(&lp).ok_or_else(bad)?;
        read_node(master, &items, &mut out.entries)?;
    }
    if !out.entries.windows(2).all(|w| w[0].0 < w[1].0) {
        return Err(bad());
    }
    let length = reader.length_u64()?;
    out.last_id = read_id(reader)?;
    if length != out.entries.len() as u64
        || out.entries.last().is_some_and(|(id, _)| *id > out.last_id)
    {
        return Err(bad());
    }
    if kind == RDB_TYPE_STREAM_LISTPACKS {
        out.first_id = out.entries.first().map_or(StreamId::ZERO, |(id, _)| *id);
        out.entries_added = length;
    } else {
        out.first_id = read_id(reader)?;
        out.max_deleted = read_id(reader)?;
        out.entries_added = reader.length_u64()?;
    }
    let groups = reader.plain_length()?;
    for _ in 0..groups {
        out.groups.push(read_group(reader, kind)?);
    }
    let mut names: Vec<&Bytes> = out.groups.iter().map(|g| &g.name).collect();
    names.sort();
    names.dedup();
    if names.len() != out.groups.len() {
        return Err(bad());
    }
    Ok(out)
}

fn read_id(reader: &mut Reader) -> Result<StreamId, PayloadError> {
    Ok(StreamId::new(reader.length_u64()?, reader.length_u64()?))
}

fn raw_id(reader: &mut Reader) -> Result<StreamId, PayloadError> {
    StreamId::decode(reader.take(16)?).ok_or(PayloadError::BadFormat)
}

fn millis(reader: &mut Reader) -> Result<u64, PayloadError> {
    let raw = reader.take(8)?;
    Ok(u64::from_le_bytes(
        raw.try_into().map_err(|_| PayloadError::BadFormat)?,
    ))
}

/// The live entries of one node's listpack, appended to `out`.
fn read_node(
    master: StreamId,
    items: &[Bytes],
    out: &mut Vec<(StreamId, Vec<Bytes>)>,
) -> Result<(), PayloadError> {
    let mut at = 0usize;
    let mut next = || -> Result<&Bytes, PayloadError> {
        let item = items.get(at).ok_or(PayloadError::BadFormat)?;
        at += 1;
        Ok(item)
    };
    let int = |b: &Bytes| -> Result<i64, PayloadError> {
        crate::protocol::decode::parse_i64(b).ok_or(PayloadError::BadFormat)
    };
    let count = int(next()?)?;
    let deleted = int(next()?)?;
    let field_count = usize::try_from(int(next()?)?).map_err(|_| PayloadError::BadFormat)?;
    let total = count.checked_add(deleted).ok_or(PayloadError::BadFormat)?;
    if count < 0 || deleted < 0 || total == 0 || field_count > items.len() {
        return Err(PayloadError::BadFormat);
    }
    let mut master_fields = Vec::with_capacity(field_count);
    for _ in 0..field_count {
        master_fields.push(next()?.clone());
    }
    if int(next()?)? != 0 {
        return Err(PayloadError::BadFormat);
    }
    let mut live = 0;
    for _ in 0..total {
        let flags = int(next()?)?;
        let ms = master.ms.wrapping_add(int(next()?)? as u64);
        let seq = master.seq.wrapping_add(int(next()?)? as u64);
        let mut entry = Vec::new();
        if flags & FLAG_SAMEFIELDS != 0 {
            for field in &master_fields {
                entry.push(field.clone());
                entry.push(next()?.clone());
            }
        } else {
            let n = usize::try_from(int(next()?)?).map_err(|_| PayloadError::BadFormat)?;
            if n == 0 || n > items.len() {
                return Err(PayloadError::BadFormat);
            }
            for _ in 0..2 * n {
                entry.push(next()?.clone());
            }
        }
        next()?; // the entry's item count
        if flags & FLAG_DELETED == 0 {
            live += 1;
            out.push((StreamId::new(ms, seq), entry));
        }
    }
    if live != count || at != items.len() {
        return Err(PayloadError::BadFormat);
    }
    Ok(())
}

fn read_group(reader: &mut Reader, kind: u8) -> Result<GroupDump, PayloadError> {
    let bad = || PayloadError::BadFormat;
    let name = reader.rdb_string()?;
    let last_id = read_id(reader)?;
    let entries_read = if kind == RDB_TYPE_STREAM_LISTPACKS {
        ENTRIES_READ_UNKNOWN
    } else {
        reader.length_u64()? as i64
    };
    let pending_count = reader.plain_length()?;
    let mut pending = Vec::with_capacity(pending_count.min(1 << 16));
    for _ in 0..pending_count {
        pending.push((raw_id(reader)?, millis(reader)?, reader.length_u64()?));
    }
    if !pending.windows(2).all(|w| w[0].0 < w[1].0) {
        return Err(bad());
    }
    let consumer_count = reader.plain_length()?;
    let mut consumers: Vec<ConsumerDump> = Vec::with_capacity(consumer_count.min(1 << 16));
    let mut owned = 0usize;
    for _ in 0..consumer_count {
        let name = reader.rdb_string()?;
        let seen_ms = millis(reader)?;
        if kind == RDB_TYPE_STREAM_LISTPACKS_3 {
            millis(reader)?; // 7.2's active time
        }
        let n = reader.plain_length()?;
        let mut ids = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let id = raw_id(reader)?;
            // Every ID a consumer holds is one of the group's pending entries.
            if pending.binary_search_by(|p| p.0.cmp(&id)).is_err() {
                return Err(bad());
            }
            ids.push(id);
        }
        owned += ids.len();
        if consumers.iter().any(|c| c.name == name) {
            return Err(bad());
        }
        consumers.push(ConsumerDump {
            name,
            seen_ms,
            pending: ids,
        });
    }
    // Each pending entry belongs to exactly one consumer.
    let mut all: Vec<StreamId> = consumers.iter().flat_map(|c| c.pending.clone()).collect();
    all.sort();
    all.dedup();
    if all.len() != owned || owned != pending.len() {
        return Err(bad());
    }
    Ok(GroupDump {
        name,
        last_id,
        entries_read,
        pending,
        consumers,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{restore, DumpValue};
    use super::*;

    fn sample() -> StreamDump {
        let entry = |ms, fields: &[&str]| {
            (
                StreamId::new(ms, 1),
                fields.iter().map(|f| Bytes::from(f.to_string())).collect(),
            )
        };
        let mut entries: Vec<_> = (1..=150)
            .map(|ms| entry(ms, &["a", "1", "b", "two"]))
            .collect();
        entries[3] = entry(4, &["other", "9"]);
        StreamDump {
            entries,
            last_id: StreamId::new(200, 0),
            first_id: StreamId::new(1, 1),
            max_deleted: StreamId::new(160, 0),
            entries_added: 160,
            groups: vec![GroupDump {
                name: Bytes::from("g"),
                last_id: StreamId::new(3, 1),
                entries_read: -1,
                pending: vec![(StreamId::new(2, 1), 1_700_000_000_000, 3)],
                consumers: vec![
                    ConsumerDump {
                        name: Bytes::from("alice"),
                        seen_ms: 1_700_000_000_001,
                        pending: vec![StreamId::new(2, 1)],
                    },
                    ConsumerDump {
                        name: Bytes::from("bob"),
                        seen_ms: 5,
                        pending: vec![],
                    },
                ],
            }],
        }
    }

    #[test]
    fn a_stream_round_trips_through_its_payload() {
        let stream = sample();
        let payload = dump_stream(&stream);
        assert_eq!(restore(&payload), Ok(DumpValue::Stream(stream)));
    }

    #[test]
    fn node_counts_from_a_payload_cannot_overflow() {
        let items: Vec<Bytes> = ["9223372036854775807", "1", "0", "0"]
            .into_iter()
            .map(Bytes::from)
            .collect();
        let mut out = Vec::new();
        assert_eq!(
            read_node(StreamId::new(1, 1), &items, &mut out),
            Err(PayloadError::BadFormat)
        );
    }

    #[test]
    fn inconsistent_payloads_are_refused() {
        let mut unowned = sample();
        unowned.groups[0].consumers[0].pending.clear();
        let mut twice = sample();
        twice.groups[0].consumers[1].pending = vec![StreamId::new(2, 1)];
        let mut past_last = sample();
        past_last.last_id = StreamId::new(100, 0);
        for bad in [unowned, twice, past_last] {
            assert_eq!(restore(&dump_stream(&bad)), Err(PayloadError::BadFormat));
        }
        // Every truncation is an error, never a panic.
        let payload = dump_stream(&sample());
        for cut in 1..payload.len() - 10 {
            let mut short = payload[..cut].to_vec();
            short.extend_from_slice(&payload[payload.len() - 10..]);
            let len = short.len();
            short[len - 8..].copy_from_slice(&[0; 8]);
            assert!(restore(&short).is_err(), "cut at {cut}");
        }
    }
}
