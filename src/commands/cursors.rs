//! SCAN cursors: the integer a client sees maps to a position in the keyspace.
//!
//! A cursor is `(ticket << 14) | slot`. The ticket names a remembered position (the last key
//! returned) in a bounded table; when a ticket has been forgotten, the scan restarts at the
//! beginning of the slot in the cursor, so SCAN may return a key twice (as Redis allows) but
//! never misses a key that was present for the whole scan.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::cluster::Slot;
use crate::limits::SCAN_CURSORS_MAX;

const SLOT_BITS: u32 = 14;

#[derive(Default)]
pub struct CursorTable {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_ticket: u64,
    positions: BTreeMap<u64, (Slot, Bytes)>,
    order: VecDeque<u64>,
}

impl CursorTable {
    /// The cursor to give the client for resuming after `(slot, key)`.
    pub fn save(&self, slot: Slot, key: Bytes) -> u64 {
        let mut inner = self.inner.lock();
        inner.next_ticket = (inner.next_ticket + 1) % (1 << 40);
        let ticket = inner.next_ticket.max(1);
        inner.positions.insert(ticket, (slot, key));
        inner.order.push_back(ticket);
        while inner.order.len() > SCAN_CURSORS_MAX {
            if let Some(old) = inner.order.pop_front() {
                inner.positions.remove(&old);
            }
        }
        (ticket << SLOT_BITS) | u64::from(slot.0)
    }

    /// The position a cursor resumes from: `None` = the very beginning.
    pub fn resume(&self, cursor: u64) -> Option<(Slot, Option<Bytes>)> {
        if cursor == 0 {
            return None;
        }
        let slot = Slot((cursor & ((1 << SLOT_BITS) - 1)) as u16);
        let ticket = cursor >> SLOT_BITS;
        match self.inner.lock().positions.get(&ticket) {
            Some((s, key)) if *s == slot => Some((slot, Some(key.clone()))),
            _ => Some((slot, None)),
        }
    }
}
