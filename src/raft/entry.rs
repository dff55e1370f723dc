//! The write entry: what a shard's log carries.
//!
//! ## Format
//! `version:u8 (1) | db:u8 | now_ms:u64 | op:u8 | count:u32 | (len:u32 | bytes){count}
//! [| 1:u8 | origin_node:u64 | origin_client:u64]`, integers big-endian. `op` 1 = a
//! normalised command (its argv), 2 = active expiry of the listed keys (each deleted only
//! if it is expired at `now_ms`), 3 = several commands of one pipeline for one shard,
//! applied in order (`count` commands, each `argc:u32 | (len:u32 | bytes){argc}`), 4 = a
//! cluster map change, 5 = a shard's FLUSHDB/FLUSHALL (`db` or `all`), 6 = a MULTI/EXEC
//! transaction (as 3, each command's list led by its database, one byte), 7 = a step of a
//! cross-shard transaction (as 3; see `cluster::cross_shard`). The optional
//! trailer names the client whose command it is (NOLOOP client tracking leaves that
//! client's own writes out of its invalidations); entries without it read as before.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::cluster::{CrossShardOp, MapChange};

const FORMAT_VERSION: u8 = 1;
/// Bound on the argument count of one decoded entry (as the request decoder's).
const ARGS_MAX: u32 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOp {
    /// A write command in normalised form.
    Command(Vec<Bytes>),
    /// Delete these keys if they are expired at the entry's `now_ms`.
    Expire(Vec<Bytes>),
    /// Write commands in normalised form, applied in order, each atomically: one failing
    /// leaves the others' effects.
    Batch(Vec<Vec<Bytes>>),
    /// A change to the cluster map (the metadata group's entries).
    Map(MapChange),
    /// Delete the data of the group's slots in the entry's database, or in every database.
    FlushSlots { all_dbs: bool },
    /// The writes of a MULTI/EXEC transaction in normalised form, each with the database
    /// it runs in (SELECT may come between them): applied in order, all in one engine
    /// write, each atomically (one failing leaves the others' effects, as in Redis).
    Transaction(Vec<(u8, Vec<Bytes>)>),
    /// A step of a transaction over several shards (two-phase commit).
    CrossShard(CrossShardOp),
}

/// The client whose command an entry carries: its node and its id there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub node: u64,
    pub client: u64,
}

/// The trailer tag of an entry's origin.
const ORIGIN_TAG: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Logical database the command runs in.
    pub db: u8,
    /// The proposer's clock when it proposed; apply uses this, never the local clock.
    pub now_ms: u64,
    pub op: EntryOp,
    /// Set only when the client's tracking asks for it (NOLOOP).
    pub origin: Option<Origin>,
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
    #[error("unknown entry trailer")]
    Trailer,
}

impl Entry {
    /// An entry without an origin.
    pub fn new(db: u8, now_ms: u64, op: EntryOp) -> Entry {
        Entry {
            db,
            now_ms,
            op,
            origin: None,
        }
    }

    /// The client of node `me` whose command this is, if it is one of that node's.
    pub fn origin_client_on(&self, me: u64) -> Option<u64> {
        self.origin.filter(|o| o.node == me).map(|o| o.client)
    }

    pub fn encode(&self) -> Bytes {
        let own_args;
        let own_lists: Vec<Vec<Bytes>>;
        let (tag, lists): (u8, Vec<&Vec<Bytes>>) = match &self.op {
            EntryOp::Command(args) => (1, vec![args]),
            EntryOp::Expire(keys) => (2, vec![keys]),
            EntryOp::Batch(commands) => (3, commands.iter().collect()),
            EntryOp::Map(op) => {
                own_args = op.to_args();
                (4, vec![&own_args])
            }
            EntryOp::FlushSlots { all_dbs } => {
                let scope = if *all_dbs { "all" } else { "db" };
                own_args = vec![Bytes::from(scope)];
                (5, vec![&own_args])
            }
            EntryOp::Transaction(commands) => {
                // Each command's list starts with its database, one byte.
                own_lists = commands
                    .iter()
                    .map(|(db, args)| {
                        let mut list = Vec::with_capacity(args.len() + 1);
                        list.push(Bytes::copy_from_slice(&[*db]));
                        list.extend(args.iter().cloned());
                        list
                    })
                    .collect();
                (6, own_lists.iter().collect())
            }
            EntryOp::CrossShard(op) => {
                own_lists = op.to_lists();
                (7, own_lists.iter().collect())
            }
        };
        let size: usize = 15
            + lists
                .iter()
                .map(|l| 4 + l.iter().map(|a| 4 + a.len()).sum::<usize>())
                .sum::<usize>();
        let mut out = BytesMut::with_capacity(size);
        out.put_u8(FORMAT_VERSION);
        out.put_u8(self.db);
        out.put_u64(self.now_ms);
        out.put_u8(tag);
        if matches!(tag, 3 | 6 | 7) {
            out.put_u32(lists.len() as u32);
        }
        for args in lists {
            out.put_u32(args.len() as u32);
            for a in args {
                out.put_u32(a.len() as u32);
                out.put_slice(a);
            }
        }
        if let Some(origin) = self.origin {
            out.put_u8(ORIGIN_TAG);
            out.put_u64(origin.node);
            out.put_u64(origin.client);
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
        let op = match tag {
            1 => EntryOp::Command(decode_args(&mut raw)?),
            2 => EntryOp::Expire(decode_args(&mut raw)?),
            3 => {
                let count = take_count(&mut raw)?;
                let mut commands = Vec::with_capacity(count.min(1024) as usize);
                for _ in 0..count {
                    commands.push(decode_args(&mut raw)?);
                }
                EntryOp::Batch(commands)
            }
            6 => {
                let count = take_count(&mut raw)?;
                let mut commands = Vec::with_capacity(count.min(1024) as usize);
                for _ in 0..count {
                    let mut args = decode_args(&mut raw)?;
                    if args.is_empty() || args[0].len() != 1 {
                        return Err(EntryDecodeError::Op(6));
                    }
                    let db = args.remove(0)[0];
                    commands.push((db, args));
                }
                EntryOp::Transaction(commands)
            }
            7 => {
                let count = take_count(&mut raw)?;
                let mut lists = Vec::with_capacity(count.min(1024) as usize);
                for _ in 0..count {
                    lists.push(decode_args(&mut raw)?);
                }
                EntryOp::CrossShard(
                    CrossShardOp::from_lists(lists).map_err(|_| EntryDecodeError::Op(7))?,
                )
            }
            5 => match &decode_args(&mut raw)?[..] {
                [scope] if &scope[..] == b"all" => EntryOp::FlushSlots { all_dbs: true },
                [scope] if &scope[..] == b"db" => EntryOp::FlushSlots { all_dbs: false },
                _ => return Err(EntryDecodeError::Op(5)),
            },
            4 => EntryOp::Map(
                MapChange::from_args(&decode_args(&mut raw)?)
                    .map_err(|_| EntryDecodeError::Op(4))?,
            ),
            other => return Err(EntryDecodeError::Op(other)),
        };
        let origin = match raw.remaining() {
            0 => None,
            17 if raw[0] == ORIGIN_TAG => {
                raw.advance(1);
                Some(Origin {
                    node: raw.get_u64(),
                    client: raw.get_u64(),
                })
            }
            _ => return Err(EntryDecodeError::Trailer),
        };
        Ok(Entry {
            db,
            now_ms,
            op,
            origin,
        })
    }
}

fn take_count(raw: &mut Bytes) -> Result<u32, EntryDecodeError> {
    if raw.remaining() < 4 {
        return Err(EntryDecodeError::Truncated);
    }
    let count = raw.get_u32();
    if count > ARGS_MAX {
        return Err(EntryDecodeError::TooManyArgs(count));
    }
    Ok(count)
}

fn decode_args(raw: &mut Bytes) -> Result<Vec<Bytes>, EntryDecodeError> {
    let count = take_count(raw)?;
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
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(db: u8, now_ms: u64, kind in 0..7u8, origin: Option<(u64, u64)>,
                      args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8)) {
            let args: Vec<Bytes> = args.into_iter().map(Bytes::from).collect();
            let op = match kind {
                0 => EntryOp::Expire(args),
                1 => EntryOp::Command(args),
                2 => EntryOp::FlushSlots { all_dbs: args.len().is_multiple_of(2) },
                3 => EntryOp::Map(MapChange::SetReplicas {
                    shard: u16::from(db),
                    nodes: args.iter().map(|a| a.len() as u64).collect(),
                }),
                4 => EntryOp::Batch(args.chunks(3).map(<[Bytes]>::to_vec).collect()),
                5 => EntryOp::CrossShard(crate::cluster::CrossShardOp::Prepare {
                    txn: crate::cluster::TxnId { node: now_ms, seq: u64::from(db) },
                    decider: crate::cluster::ShardId(u16::from(db)),
                    deadline_ms: now_ms,
                    keys: args.iter().map(|a| (db, a.clone())).collect(),
                }),
                _ => EntryOp::Transaction(
                    args.chunks(2)
                        .enumerate()
                        .map(|(i, c)| (i as u8, c.to_vec()))
                        .collect(),
                ),
            };
            let origin = origin.map(|(node, client)| Origin { node, client });
            let entry = Entry { db, now_ms, op, origin };
            let raw = entry.encode();
            prop_assert_eq!(Entry::decode(raw.clone()), Ok(entry.clone()));
            // Cut anywhere, the entry is refused, except exactly before its origin.
            let bare = raw.len() - if origin.is_some() { 17 } else { 0 };
            for cut in 0..raw.len() {
                let decoded = Entry::decode(raw.slice(..cut));
                if cut == bare {
                    prop_assert_eq!(decoded, Ok(Entry { origin: None, ..entry.clone() }));
                } else {
                    prop_assert!(decoded.is_err());
                }
            }
        }
    }
}
