//! A write transaction over the keyspace, used only while applying one log entry.
//!
//! It buffers changes in an overlay so the entry reads its own writes, maintains the expiry
//! index beside every metadata change, and commits everything as one engine write batch. The
//! overlay is looked up by key only; the batch keeps the order of the calls, so a commit is
//! deterministic.

use ahash::AHashMap;
use bytes::Bytes;
use std::sync::atomic::Ordering;

use super::encoding::{self, Meta};
use super::{Keyspace, KeyspaceError, Result};
use crate::cluster::{key_slot, Slot, SLOT_COUNT};
use crate::storage::WriteBatch;

pub struct Txn<'a> {
    ks: &'a Keyspace,
    now_ms: u64,
    revision: u64,
    db_map: Vec<u8>,
    db_map_changed: bool,
    /// (physical db, user key) → value after this transaction (None = deleted).
    overlay: AHashMap<(u8, Bytes), Option<Meta>>,
    /// Physical databases emptied by this transaction, in order.
    flushed: Vec<u8>,
    batch: WriteBatch,
    /// Expired records removed on access by this transaction.
    expired_removed: u64,
    key_delta: Vec<i64>,
    volatile_delta: Vec<(u8, Slot, i64)>,
}

impl<'a> Txn<'a> {
    pub(super) fn new(ks: &'a Keyspace, now_ms: u64, revision: u64) -> Txn<'a> {
        Txn {
            ks,
            now_ms,
            revision,
            db_map: ks.db_map.read().clone(),
            db_map_changed: false,
            overlay: AHashMap::new(),
            flushed: Vec::new(),
            batch: WriteBatch::new(),
            expired_removed: 0,
            key_delta: vec![0; usize::from(ks.databases)],
            volatile_delta: Vec::new(),
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The log index of the entry being applied; stored as each changed key's revision.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn databases(&self) -> u8 {
        self.ks.databases
    }

    fn pdb(&self, db: u8) -> u8 {
        self.db_map[usize::from(db)]
    }

    /// The stored record, expired or not.
    fn load(&self, pdb: u8, key: &[u8]) -> Result<Option<Meta>> {
        if let Some(v) = self.overlay.get(&(pdb, Bytes::copy_from_slice(key))) {
            return Ok(v.clone());
        }
        if self.flushed.contains(&pdb) {
            return Ok(None);
        }
        let mk = encoding::meta_key(pdb, key_slot(key), key);
        match self.ks.engine.get(&mk)? {
            None => Ok(None),
            Some(raw) => Meta::decode(&raw)
                .map(Some)
                .ok_or(KeyspaceError::Corrupt(mk)),
        }
    }

    /// The live value of `key`; an expired record is removed as part of this transaction.
    pub fn get(&mut self, db: u8, key: &[u8]) -> Result<Option<Meta>> {
        let pdb = self.pdb(db);
        match self.load(pdb, key)? {
            Some(meta) if meta.is_expired(self.now_ms) => {
                self.remove(pdb, key, &meta);
                self.expired_removed += 1;
                Ok(None)
            }
            other => Ok(other),
        }
    }

    /// Removes `key` if it is expired at this entry's time (the active expiry cycle's entry).
    pub fn delete_if_expired(&mut self, db: u8, key: &[u8]) -> Result<bool> {
        let pdb = self.pdb(db);
        match self.load(pdb, key)? {
            Some(meta) if meta.is_expired(self.now_ms) => {
                self.remove(pdb, key, &meta);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// How many expired records `get` removed.
    pub fn expired_removed(&self) -> u64 {
        self.expired_removed
    }

    pub fn exists(&mut self, db: u8, key: &[u8]) -> Result<bool> {
        Ok(self.get(db, key)?.is_some())
    }

    /// Stores `meta` as the value of `key`, replacing any previous value.
    pub fn put(&mut self, db: u8, key: &[u8], meta: Meta) -> Result<()> {
        let pdb = self.pdb(db);
        let slot = key_slot(key);
        let old = self.load(pdb, key)?;
        match &old {
            None => self.key_delta[usize::from(pdb)] += 1,
            Some(old) if old.expire_at_ms != 0 && old.expire_at_ms != meta.expire_at_ms => {
                self.batch
                    .delete(encoding::expire_key(pdb, slot, old.expire_at_ms, key));
                self.volatile_delta.push((pdb, slot, -1));
            }
            Some(_) => {}
        }
        let old_expire = old.as_ref().map_or(0, |m| m.expire_at_ms);
        if meta.expire_at_ms != 0 && meta.expire_at_ms != old_expire {
            self.batch.put(
                encoding::expire_key(pdb, slot, meta.expire_at_ms, key),
                Bytes::new(),
            );
            self.volatile_delta.push((pdb, slot, 1));
        }
        self.batch
            .put(encoding::meta_key(pdb, slot, key), meta.encode());
        self.overlay
            .insert((pdb, Bytes::copy_from_slice(key)), Some(meta));
        Ok(())
    }

    /// Deletes `key`; true if a live value was there.
    pub fn delete(&mut self, db: u8, key: &[u8]) -> Result<bool> {
        let pdb = self.pdb(db);
        match self.load(pdb, key)? {
            None => Ok(false),
            Some(meta) => {
                let live = !meta.is_expired(self.now_ms);
                self.remove(pdb, key, &meta);
                Ok(live)
            }
        }
    }

    fn remove(&mut self, pdb: u8, key: &[u8], old: &Meta) {
        let slot = key_slot(key);
        if old.expire_at_ms != 0 {
            self.batch
                .delete(encoding::expire_key(pdb, slot, old.expire_at_ms, key));
            self.volatile_delta.push((pdb, slot, -1));
        }
        self.batch.delete(encoding::meta_key(pdb, slot, key));
        self.key_delta[usize::from(pdb)] -= 1;
        self.overlay
            .insert((pdb, Bytes::copy_from_slice(key)), None);
    }

    /// Empties logical database `db`.
    pub fn flush_db(&mut self, db: u8) -> Result<()> {
        let pdb = self.pdb(db);
        let (start, end) = encoding::db_range(pdb);
        self.batch.delete_range(start, end);
        self.overlay.retain(|(p, _), _| *p != pdb);
        self.volatile_delta.retain(|(p, _, _)| *p != pdb);
        self.key_delta[usize::from(pdb)] = 0;
        self.flushed.push(pdb);
        Ok(())
    }

    /// Exchanges the contents of two logical databases.
    pub fn swap_db(&mut self, a: u8, b: u8) -> Result<()> {
        self.db_map.swap(usize::from(a), usize::from(b));
        self.db_map_changed = true;
        Ok(())
    }

    /// Writes every change atomically and updates the in-memory counters.
    pub fn commit(mut self) -> Result<()> {
        if self.db_map_changed {
            self.batch.put(
                encoding::system_key(super::DB_MAP_RECORD),
                Bytes::from(self.db_map.clone()),
            );
        }
        let batch = std::mem::take(&mut self.batch);
        self.ks.write_batch(batch)?;
        for &pdb in &self.flushed {
            let counters = &self.ks.counters[usize::from(pdb)];
            counters.keys.store(0, Ordering::Relaxed);
            counters.volatile.store(0, Ordering::Relaxed);
            for slot in 0..SLOT_COUNT {
                self.ks
                    .volatile_slot(pdb, Slot(slot))
                    .store(0, Ordering::Relaxed);
            }
        }
        for (pdb, delta) in self.key_delta.iter().enumerate() {
            if *delta != 0 {
                self.ks.counters[pdb]
                    .keys
                    .fetch_add(*delta, Ordering::Relaxed);
            }
        }
        for &(pdb, slot, delta) in &self.volatile_delta {
            self.ks.counters[usize::from(pdb)]
                .volatile
                .fetch_add(delta, Ordering::Relaxed);
            self.ks
                .volatile_slot(pdb, slot)
                .fetch_add(delta, Ordering::Relaxed);
        }
        if self.db_map_changed {
            *self.ks.db_map.write() = self.db_map;
        }
        Ok(())
    }
}
