//! Garbage collection in the active memtable: a version hidden by a newer write of its key
//! is removed as soon as no reader can see it, and so is a delete left with nothing to hide.
//!
//! A hot key overwritten thousands of times would otherwise keep every version in memory
//! until the memtable is flushed, and every range read over it, and every reader of a key
//! created and deleted there (a sorted-set score changed, a queue entry popped), would step
//! over them. The writer queues each version an insert hides ([`Hidden`]) with the sequence
//! number that hid it; after each write batch it removes queued versions hidden at or below
//! the cutoff: the lowest sequence number any reader may read at, the read-epoch floor
//! (`epochs.rs`) or the oldest registered snapshot, whichever is lower. A reader at or above
//! the cutoff sees the newer version, so it never needed the one removed. A delete that hid
//! a version written here goes too once it is the only version of its key here and no older
//! memtable or table holds the key (it has nothing left to hide).
//!
//! Work per write is bounded (a few removals per operation written). What the last writes of
//! a burst queued is collected when the flush worker finds itself idle
//! (`Shared::collect_garbage_when_idle`); what the queue still holds when the memtable is
//! rotated is left to the flush, which drops the same versions.

use std::collections::VecDeque;

use super::engine::State;
use super::epochs::{Horizon, ReadEpochs};
use super::key::{InternalKey, Kind, SEQNO_MAX};
use super::memtable::Hidden;

/// Versions waiting for removal at most; beyond it (a snapshot held for long under heavy
/// overwrites) new ones are left to the flush.
const QUEUE_MAX: usize = 1 << 20;

enum Garbage {
    /// A version hidden by a newer one written at `by`.
    Hidden { key: InternalKey, by: u64 },
    /// A delete that hid a version written here; it goes if it is left alone.
    Delete(InternalKey),
}

impl Garbage {
    fn seqno(&self) -> u64 {
        match self {
            Garbage::Hidden { by, .. } => *by,
            Garbage::Delete(key) => key.seqno,
        }
    }
}

/// The writer's garbage queue for the active memtable, in sequence-number order.
#[derive(Default)]
pub struct MemtableGc {
    queue: VecDeque<Garbage>,
    horizon: Horizon,
}

impl MemtableGc {
    /// Queues what an insert hid.
    pub fn note(&mut self, hidden: Hidden) {
        if self.queue.len() + 2 > QUEUE_MAX {
            return;
        }
        let by = hidden.newer.seqno;
        self.queue.push_back(Garbage::Hidden {
            key: hidden.older,
            by,
        });
        if hidden.newer.kind == Kind::Delete {
            self.queue.push_back(Garbage::Delete(hidden.newer));
        }
    }

    /// Whether nothing waits for removal.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Forgets the queue: the memtable it was for became immutable.
    pub fn reset(&mut self) {
        self.queue.clear();
    }

    /// Removes up to `budget` queued versions no reader can see from `state.mem` (the active
    /// memtable); `visible` is the newest published sequence number and `oldest_registered`
    /// gives the oldest registered snapshot (looked up only when something is due). Returns
    /// how many versions were removed.
    pub fn collect(
        &mut self,
        state: &State,
        epochs: &ReadEpochs,
        visible: u64,
        oldest_registered: impl FnOnce() -> Option<u64>,
        budget: usize,
    ) -> u64 {
        let floor = self.horizon.advance(epochs, visible);
        if self.queue.front().is_none_or(|g| g.seqno() > floor) {
            return 0;
        }
        let cutoff = oldest_registered().map_or(floor, |s| s.min(floor));
        let mut removed = 0;
        for _ in 0..budget {
            if self.queue.front().is_none_or(|g| g.seqno() > cutoff) {
                break;
            }
            let Some(garbage) = self.queue.pop_front() else {
                break;
            };
            match garbage {
                Garbage::Hidden { key, .. } => {
                    state.mem.remove(&key);
                    removed += 1;
                }
                Garbage::Delete(key) => {
                    if state.mem.is_only_version(&key) && !older_may_hold(state, &key.user_key) {
                        state.mem.remove(&key);
                        removed += 1;
                    }
                }
            }
        }
        removed
    }
}

/// Whether a memtable older than the active one, or a table, may hold `user_key`. A table
/// whose bloom filter says maybe is asked for the key itself: a false positive (about one
/// delete in a hundred) would otherwise keep its delete here until the flush, and scans over
/// a churned range (a leaderboard's score index) would step over them all.
fn older_may_hold(state: &State, user_key: &[u8]) -> bool {
    state
        .imm
        .iter()
        .any(|(m, _)| m.get(user_key, SEQNO_MAX).is_some())
        || state.version.tables_for_key(user_key).any(|f| {
            f.table.may_contain(user_key) && !matches!(f.table.get(user_key, SEQNO_MAX), Ok(None))
        })
}
