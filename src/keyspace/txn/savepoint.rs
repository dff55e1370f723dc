//! Savepoints of a transaction: a command of several in one `Txn` (an entry of a run, a
//! command of a pipeline batch) that fails is undone alone.
//!
//! A savepoint is a few lengths and counters. What changes the transaction's view of the
//! records (its metadata overlay and its element map) records what it replaced in an undo
//! log, and a rollback pops that log back to the savepoint; the write batch, the key and
//! expiry counters and the other lists are cut back to their lengths. So a savepoint costs
//! the same however much the transaction has written (cloning the view made a combined
//! batch of hundreds of writes to one key quadratic).

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{Overlay, Txn};
use crate::cluster::Slot;
use crate::keyspace::encoding::Meta;
use crate::keyspace::DATABASES_MAX;

/// What a transaction had done at a point, to go back to it (see [`Txn::savepoint`]).
/// Lengths and counters only: the overlay's and the elements' changes since are undone
/// from the transaction's undo log, so a savepoint costs the same however much the
/// transaction has written (a run of hundreds of entries takes one per entry).
pub struct Savepoint {
    db_map: [u8; DATABASES_MAX],
    db_map_changed: bool,
    undo: usize,
    entry_writes: usize,
    flushed: usize,
    batch: usize,
    expired_removed: u64,
    key_delta: usize,
    volatile_delta: usize,
    versions_taken: u64,
}

/// How to take back one change of a transaction's view of the records.
pub(super) enum Undo {
    /// A metadata key's overlay record before the change (None: it had none).
    Overlay(Bytes, Option<Option<Meta>>),
    /// An element key's record before the change (None: it had none).
    Element(Bytes, Option<Option<Bytes>>),
    /// What a flush dropped from the view (FLUSHDB, FLUSHALL: rare, so kept whole).
    Flush(Box<FlushedView>),
}

pub(super) struct FlushedView {
    overlay: Overlay,
    elements: BTreeMap<Bytes, Option<Bytes>>,
    key_delta: Vec<(u8, i64)>,
    volatile_delta: Vec<(u8, Slot, i64)>,
}

impl Txn<'_> {
    /// Sets metadata key `mk`'s overlay record, remembering the one it replaces.
    pub(super) fn set_overlay(&mut self, mk: Bytes, value: Option<Meta>) {
        let before = self.overlay.insert(mk.clone(), value);
        self.undo.push(Undo::Overlay(mk, before));
    }

    /// Sets element key `ek`'s record, remembering the one it replaces.
    pub(super) fn set_element(&mut self, ek: Bytes, value: Option<Bytes>) {
        let before = self.elements.insert(ek.clone(), value);
        self.undo.push(Undo::Element(ek, before));
    }

    /// Before a flush drops a database's records from the view: keeps the whole view, to
    /// be restored if the flush is rolled back.
    pub(super) fn remember_view_before_flush(&mut self) {
        self.undo.push(Undo::Flush(Box::new(FlushedView {
            overlay: self.overlay.clone(),
            elements: self.elements.clone(),
            key_delta: self.key_delta.clone(),
            volatile_delta: self.volatile_delta.clone(),
        })));
    }

    /// Marks the current state, so one command of several in this transaction can be
    /// undone alone ([`Txn::rollback`]) when it fails.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint {
            db_map: self.db_map,
            db_map_changed: self.db_map_changed,
            undo: self.undo.len(),
            entry_writes: self.entry_writes.len(),
            flushed: self.flushed.len(),
            batch: self.batch.len(),
            expired_removed: self.expired_removed,
            key_delta: self.key_delta.len(),
            volatile_delta: self.volatile_delta.len(),
            versions_taken: self.versions_taken,
        }
    }

    /// Undoes everything done since `point` was taken.
    pub fn rollback(&mut self, point: Savepoint) {
        while self.undo.len() > point.undo {
            match self.undo.pop().expect("longer than the savepoint's") {
                Undo::Overlay(mk, Some(before)) => {
                    self.overlay.insert(mk, before);
                }
                Undo::Overlay(mk, None) => self.overlay.remove(&mk),
                Undo::Element(ek, Some(before)) => {
                    self.elements.insert(ek, before);
                }
                Undo::Element(ek, None) => {
                    self.elements.remove(&ek);
                }
                Undo::Flush(view) => {
                    let view = *view;
                    self.overlay = view.overlay;
                    self.elements = view.elements;
                    self.key_delta = view.key_delta;
                    self.volatile_delta = view.volatile_delta;
                }
            }
        }
        self.db_map = point.db_map;
        self.db_map_changed = point.db_map_changed;
        self.entry_writes.truncate(point.entry_writes);
        self.flushed.truncate(point.flushed);
        self.batch.truncate(point.batch);
        self.expired_removed = point.expired_removed;
        // Appended to since the savepoint (a flush since has been undone above).
        self.key_delta.truncate(point.key_delta);
        self.volatile_delta.truncate(point.volatile_delta);
        self.versions_taken = point.versions_taken;
    }
}
