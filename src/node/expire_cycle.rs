//! The active expiry cycle: finds keys whose time has passed and proposes their deletion
//! through the shard log, so every replica deletes the same keys at the same log position.

use super::Node;
use crate::clock;
use crate::limits::EXPIRE_KEYS_PER_PASS;

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
    /// One pass over every database; returns how many keys were deleted. None while CLIENT
    /// PAUSE holds this node (keys stay, logically expired, as in Redis).
    pub async fn active_expire_pass(&self, cursor: &mut ExpireCursor) -> u64 {
        use crate::commands::client_pause::PauseMode;
        if self.shared.client_pause.mode(clock::now_ms()) != PauseMode::Off {
            return 0;
        }
        let mut removed = 0;
        for db in 0..self.shared.keyspace.databases() {
            if self.shared.keyspace.volatile_count(db) == 0 {
                continue;
            }
            let now_ms = clock::now_ms();
            let start = cursor.next_slot[usize::from(db)];
            let found = self
                .shared
                .keyspace
                .expired_keys(db, start, now_ms, EXPIRE_KEYS_PER_PASS);
            let Ok((keys, next)) = found else {
                tracing::error!(db, "active expiry could not read the expiry index");
                continue;
            };
            cursor.next_slot[usize::from(db)] = next;
            removed += self.expire_now(db, now_ms, keys).await;
        }
        removed
    }
}
