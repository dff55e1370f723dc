//! A stream to and from its DUMP payload's contents (`dump::StreamDump`): DUMP reads every
//! record, RESTORE writes them under a fresh version.

use bytes::Bytes;

use super::id::StreamId;
use super::record::{self, Consumer, Group, Pending};
use super::store::{self, Records, Stream};
use super::{reading, save, writing};
use crate::commands::dump::{ConsumerDump, GroupDump, StreamDump};
use crate::commands::error::CmdError;
use crate::commands::Ctx;
use crate::keyspace::{Meta, Txn};

/// Everything DUMP writes of the stream in `meta` at `key`.
pub fn dump_contents(ctx: &Ctx, key: &[u8], meta: &Meta) -> Result<StreamDump, CmdError> {
    let stream = Stream::from_meta(meta.clone())?;
    let mut r = reading(ctx.keyspace, ctx.now_ms, ctx.db(), key, &stream);
    let entries = store::entries(&mut r, StreamId::ZERO, StreamId::MAX, 0, false)?;
    let mut groups = Vec::new();
    for (name, group) in store::groups(&mut r)? {
        groups.push(dump_group(&mut r, name, &group)?);
    }
    let s = &stream.state;
    Ok(StreamDump {
        entries,
        last_id: s.last_id,
        first_id: s.first_id,
        max_deleted: s.max_deleted,
        entries_added: s.entries_added,
        groups,
    })
}

fn dump_group(r: &mut impl Records, name: Bytes, group: &Group) -> Result<GroupDump, CmdError> {
    let pending = store::pending_range(r, &name, StreamId::ZERO, StreamId::MAX, usize::MAX, false)?
        .into_iter()
        .map(|(id, p)| (id, p.delivery_ms, p.delivery_count))
        .collect();
    let mut consumers = Vec::new();
    for (consumer, c) in store::consumers(r, &name)? {
        let ids = store::consumer_pending_ids(
            r,
            &name,
            &consumer,
            StreamId::ZERO,
            StreamId::MAX,
            usize::MAX,
        )?;
        consumers.push(ConsumerDump {
            name: consumer,
            seen_ms: c.seen_ms,
            pending: ids,
        });
    }
    Ok(GroupDump {
        name,
        last_id: group.last_id,
        entries_read: group.entries_read,
        pending,
        consumers,
    })
}

/// RESTORE: the stream a payload carried, stored at `key` (expiring at `expire_at_ms`, 0:
/// never).
pub fn restore_contents(
    txn: &mut Txn,
    db: u8,
    key: &[u8],
    dump: StreamDump,
    expire_at_ms: u64,
) -> Result<(), CmdError> {
    let mut stream = Stream::new(txn.new_version()?, txn.revision());
    stream.header.count = dump.entries.len() as u64;
    stream.state.last_id = dump.last_id;
    stream.state.first_id = dump.first_id;
    stream.state.max_deleted = dump.max_deleted;
    stream.state.entries_added = dump.entries_added;
    let mut w = writing(txn, db, key, &stream);
    for (id, fields) in &dump.entries {
        w.put(&record::entry_sub(*id), record::encode_fields(fields));
    }
    for group in dump.groups {
        let mut owner = std::collections::HashMap::new();
        for consumer in &group.consumers {
            for id in &consumer.pending {
                owner.insert(*id, consumer.name.clone());
            }
            let record = Consumer {
                seen_ms: consumer.seen_ms,
                pending: consumer.pending.len() as u64,
            };
            w.put_consumer(&group.name, &consumer.name, &record);
        }
        for (id, delivery_ms, delivery_count) in &group.pending {
            let consumer = owner.get(id).cloned().unwrap_or_default();
            let pending = Pending {
                delivery_ms: *delivery_ms,
                delivery_count: *delivery_count,
                consumer,
            };
            w.put_pending(&group.name, *id, &pending);
        }
        let record = Group {
            last_id: group.last_id,
            entries_read: group.entries_read,
            pending: group.pending.len() as u64,
            consumers: group.consumers.len() as u64,
        };
        w.put_group(&group.name, &record);
    }
    stream.meta.expire_at_ms = expire_at_ms;
    save(txn, db, key, &stream)
}
