//! The active expiry cycle: finds keys whose time has passed and proposes their deletion
//! through the shard log, so every replica deletes the same keys at the same log position.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::Node;
use crate::clock;
use crate::limits::EXPIRE_KEYS_PER_PASS;
use crate::raft::{Entry, EntryOp, ShardSet};

/// Where each database's scan resumes (a slot), kept between passes.
pub struct ExpireCursor {
    next_slot: Vec<u16>,
}

impl ExpireCursor {
    pub fn new(databases: u8) -> ExpireCursor {
        ExpireCursor {
            next_slot: vec![0; usize::from(databases)],
        }
    }
}

impl Node {
    /// One pass over every database; returns how many keys were deleted.
    pub async fn active_expire_pass(&self, cursor: &mut ExpireCursor) -> u64 {
        let mut removed = 0;
        for db in 0..self.keyspace.databases() {
            if self.keyspace.volatile_count(db) == 0 {
                continue;
            }
            let now_ms = clock::now_ms();
            let start = cursor.next_slot[usize::from(db)];
            let found = self
                .keyspace
                .expired_keys(db, start, now_ms, EXPIRE_KEYS_PER_PASS);
            let Ok((keys, next)) = found else {
                tracing::error!(db, "active expiry could not read the expiry index");
                continue;
            };
            cursor.next_slot[usize::from(db)] = next;
            let mut by_shard: BTreeMap<u16, Vec<Bytes>> = BTreeMap::new();
            for key in keys {
                by_shard
                    .entry(self.shards.shard_of_key(&key).0)
                    .or_default()
                    .push(key);
            }
            for (shard, keys) in by_shard {
                let entry = Entry {
                    db,
                    now_ms,
                    op: EntryOp::Expire(keys),
                };
                let shards = ShardSet::Some(vec![crate::cluster::ShardId(shard)]);
                if let crate::protocol::Reply::Integer(n) =
                    self.log.propose(&shards, &entry, self).await
                {
                    removed += n as u64;
                }
            }
        }
        removed
    }
}
