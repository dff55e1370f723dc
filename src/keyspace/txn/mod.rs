//! A write transaction over the keyspace, used only while applying one log entry.
//!
//! It keeps every record it reads or writes in an overlay keyed by the engine key, so the
//! entry reads its own writes and reads each record from the engine at most once; it keeps
//! the expiry index beside every metadata change, and commits everything as one engine write
//! batch. The overlay is only looked up by key; the batch keeps the order of the calls, so a
//! commit is deterministic.

use ahash::AHashMap;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use super::elements::SubRange;
use super::encoding::{self, Meta, Space, ValueType};
use super::{Keyspace, KeyspaceError, Result, DATABASES_MAX};
use crate::cluster::{key_slot, Slot};
use crate::storage::{KeyRange, WriteBatch};

mod savepoint;
use savepoint::Undo;

pub struct Txn<'a> {
    ks: &'a Keyspace,
    now_ms: u64,
    revision: u64,
    db_map: [u8; DATABASES_MAX],
    db_map_changed: bool,
    /// Metadata key → the record after this transaction (None = absent).
    overlay: Overlay,
    /// Element (or score-index) key → the record after this transaction (None = deleted),
    /// for those written; ordered so range scans merge it with the engine's records.
    elements: BTreeMap<Bytes, Option<Bytes>>,
    /// The element keys the current entry wrote, repeats included (whose collections its
    /// revision is stamped on).
    entry_writes: Vec<Bytes>,
    /// Collections stamped with an earlier entry's revision (a run of entries, see
    /// [`Txn::next_entry`]): metadata key, version, type, revision.
    stamped: Vec<Stamped>,
    /// Physical databases emptied by this transaction, in order.
    flushed: Vec<u8>,
    batch: WriteBatch,
    /// Expired records removed on access by this transaction.
    expired_removed: u64,
    /// (physical db, change in key count), appended per created or removed key.
    key_delta: Vec<(u8, i64)>,
    volatile_delta: Vec<(u8, Slot, i64)>,
    /// Deadlines indexed (a rolled-back one stays: noting too early a deadline is safe).
    deadlines: Vec<(u8, Slot, u64)>,
    /// The next version a new collection takes, and how many this transaction took.
    first_version: u64,
    versions_taken: u64,
    /// The revision each metadata record loaded from the engine had (what the collection
    /// cache's entries are tagged with).
    stored_revisions: Vec<(Bytes, u64)>,
    /// What this transaction changed, kept only when asked (`track_changes`): for WATCH.
    changes: Option<Changes>,
    /// How to take back each change to `overlay` and `elements`, in order (savepoints).
    undo: Vec<Undo>,
}

/// A collection whose records a transaction wrote: metadata key, version, type, and the
/// revision it was stamped with.
type Stamped = (Bytes, u64, ValueType, u64);

/// The keys and databases a transaction changed (see [`Txn::track_changes`]).
#[derive(Debug, Default)]
pub struct Changes {
    /// Every key stored or deleted, in order, repeats included.
    pub keys: Vec<KeyChange>,
    /// Logical databases emptied (FLUSHDB, FLUSHALL: no partner) or swapped with a partner
    /// (SWAPDB).
    pub dbs: Vec<(u8, Option<u8>)>,
}

/// The records a transaction has read or written, by metadata key. Most entries touch one
/// or a few keys, so a short list searched in place serves them; past `SMALL_MAX` records
/// a hash map takes over (MSET of thousands of keys).
#[derive(Clone)]
enum Overlay {
    Small(Vec<(Bytes, Option<Meta>)>),
    Large(AHashMap<Bytes, Option<Meta>>),
}

const SMALL_MAX: usize = 16;

impl Overlay {
    fn get(&self, mk: &Bytes) -> Option<&Option<Meta>> {
        match self {
            Overlay::Small(items) => items.iter().find(|(k, _)| k == mk).map(|(_, v)| v),
            Overlay::Large(map) => map.get(mk),
        }
    }

    /// Sets `mk`'s record; returns the one it had.
    fn insert(&mut self, mk: Bytes, value: Option<Meta>) -> Option<Option<Meta>> {
        match self {
            Overlay::Small(items) => {
                if let Some(slot) = items.iter_mut().find(|(k, _)| *k == mk) {
                    Some(std::mem::replace(&mut slot.1, value))
                } else if items.len() < SMALL_MAX {
                    items.push((mk, value));
                    None
                } else {
                    let mut map: AHashMap<Bytes, Option<Meta>> = items.drain(..).collect();
                    map.insert(mk, value);
                    *self = Overlay::Large(map);
                    None
                }
            }
            Overlay::Large(map) => map.insert(mk, value),
        }
    }

    fn remove(&mut self, mk: &Bytes) {
        match self {
            Overlay::Small(items) => items.retain(|(k, _)| k != mk),
            Overlay::Large(map) => {
                map.remove(mk);
            }
        }
    }

    /// Drops every record of physical database `pdb` (after FLUSHDB).
    fn forget_db(&mut self, pdb: u8) {
        match self {
            Overlay::Small(items) => items.retain(|(k, _)| k[0] != pdb),
            Overlay::Large(map) => map.retain(|k, _| k[0] != pdb),
        }
    }
}

/// One change of one key (logical database).
#[derive(Debug, Clone)]
pub struct KeyChange {
    pub db: u8,
    pub key: Bytes,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Stored; `created` if there was no key (nor an expired one) before.
    Stored {
        created: bool,
    },
    Deleted,
    /// Removed because it had expired.
    Expired,
    /// An event the command names itself, beyond storing the key (a stream consumer
    /// created by XREADGROUP, a trim inside XADD).
    Event(&'static str),
}

impl<'a> Txn<'a> {
    pub(super) fn new(ks: &'a Keyspace, now_ms: u64, revision: u64, first_version: u64) -> Txn<'a> {
        Txn {
            ks,
            now_ms,
            revision,
            db_map: *ks.db_map.read(),
            db_map_changed: false,
            overlay: Overlay::Small(Vec::new()),
            elements: BTreeMap::new(),
            entry_writes: Vec::new(),
            stamped: Vec::new(),
            flushed: Vec::new(),
            batch: WriteBatch::new(),
            expired_removed: 0,
            key_delta: Vec::new(),
            volatile_delta: Vec::new(),
            deadlines: Vec::new(),
            first_version,
            versions_taken: 0,
            stored_revisions: Vec::new(),
            changes: None,
            undo: Vec::new(),
        }
    }

    /// Keeps the keys and databases this transaction changes, for `take_changes`.
    pub fn track_changes(&mut self) {
        self.changes.get_or_insert_with(Changes::default);
    }

    /// What changed since `track_changes` (nothing if not tracking).
    pub fn take_changes(&mut self) -> Changes {
        self.changes.take().unwrap_or_default()
    }

    fn touch(&mut self, db: u8, key: &[u8], kind: ChangeKind) {
        if let Some(changes) = &mut self.changes {
            changes.keys.push(KeyChange {
                db,
                key: Bytes::copy_from_slice(key),
                kind,
            });
        }
    }

    /// Records an event of `key` that the key's store alone does not tell (keyspace
    /// notifications).
    pub fn note_event(&mut self, db: u8, key: &[u8], name: &'static str) {
        self.touch(db, key, ChangeKind::Event(name));
    }

    /// How many key changes are tracked so far (a mark for `key_changes_since`).
    pub fn key_changes_len(&self) -> usize {
        self.changes.as_ref().map_or(0, |c| c.keys.len())
    }

    /// The key changes tracked since `mark`.
    pub fn key_changes_since(&self, mark: usize) -> &[KeyChange] {
        self.changes
            .as_ref()
            .and_then(|c| c.keys.get(mark..))
            .unwrap_or(&[])
    }

    /// Forgets the key changes since `mark` (a command rolled back).
    pub fn forget_key_changes(&mut self, mark: usize) {
        if let Some(changes) = &mut self.changes {
            changes.keys.truncate(mark);
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The log index of the entry being applied; stored as each changed key's revision.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Ends the current entry and begins the next one of a run applied in this
    /// transaction: the collections the ended entry changed keep its revision, and what
    /// follows is read and written at the next entry's time and revision. Applying a run
    /// this way leaves exactly what applying its entries one transaction each would.
    pub fn next_entry(&mut self, now_ms: u64, revision: u64) -> Result<()> {
        let stamped = self.stamp_changed_collections()?;
        self.stamped.extend(stamped);
        self.entry_writes.clear();
        self.now_ms = now_ms;
        self.revision = revision;
        Ok(())
    }

    pub fn databases(&self) -> u8 {
        self.ks.databases
    }

    fn pdb(&self, db: u8) -> u8 {
        self.db_map[usize::from(db)]
    }

    /// The stored record under metadata key `mk`, expired or not; cached in the overlay.
    fn load(&mut self, mk: &Bytes) -> Result<Option<Meta>> {
        if let Some(v) = self.overlay.get(mk) {
            return Ok(v.clone());
        }
        let stored = if self.flushed.contains(&mk[0]) {
            None
        } else {
            match self.ks.engine.get(mk)? {
                None => None,
                Some(raw) => {
                    Some(Meta::decode(&raw).ok_or_else(|| KeyspaceError::Corrupt(mk.clone()))?)
                }
            }
        };
        if let Some(meta) = &stored {
            self.stored_revisions.push((mk.clone(), meta.revision));
        }
        self.set_overlay(mk.clone(), stored.clone());
        Ok(stored)
    }

    /// The live value of `key`; an expired record is removed as part of this transaction.
    pub fn get(&mut self, db: u8, key: &[u8]) -> Result<Option<Meta>> {
        let mk = encoding::meta_key(self.pdb(db), key_slot(key), key);
        match self.load(&mk)? {
            Some(meta) if meta.is_expired(self.now_ms) => {
                self.remove(db, mk, key, &meta);
                self.expired_removed += 1;
                Ok(None)
            }
            other => Ok(other),
        }
    }

    /// Removes `key` if it is expired at this entry's time (the active expiry cycle's entry).
    pub fn delete_if_expired(&mut self, db: u8, key: &[u8]) -> Result<bool> {
        let mk = encoding::meta_key(self.pdb(db), key_slot(key), key);
        match self.load(&mk)? {
            Some(meta) if meta.is_expired(self.now_ms) => {
                self.remove(db, mk, key, &meta);
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
        let mk = encoding::meta_key(pdb, slot, key);
        let loaded = self.load(&mk)?;
        let created = loaded.is_none();
        let old_expire = match loaded {
            None => {
                self.key_delta.push((pdb, 1));
                0
            }
            Some(old) => old.expire_at_ms,
        };
        if old_expire != meta.expire_at_ms {
            if old_expire != 0 {
                self.batch
                    .delete(encoding::expire_key(pdb, slot, old_expire, key));
                self.volatile_delta.push((pdb, slot, -1));
            }
            if meta.expire_at_ms != 0 {
                let ek = encoding::expire_key(pdb, slot, meta.expire_at_ms, key);
                self.batch.put(ek, Bytes::new());
                self.volatile_delta.push((pdb, slot, 1));
                self.deadlines.push((pdb, slot, meta.expire_at_ms));
            }
        }
        self.batch.put(mk.clone(), meta.encode());
        self.set_overlay(mk, Some(meta));
        self.touch(db, key, ChangeKind::Stored { created });
        Ok(())
    }

    /// Deletes `key`; true if a live value was there.
    pub fn delete(&mut self, db: u8, key: &[u8]) -> Result<bool> {
        let mk = encoding::meta_key(self.pdb(db), key_slot(key), key);
        match self.load(&mk)? {
            None => Ok(false),
            Some(meta) => {
                let live = !meta.is_expired(self.now_ms);
                self.remove(db, mk, key, &meta);
                Ok(live)
            }
        }
    }

    fn remove(&mut self, db: u8, mk: Bytes, key: &[u8], old: &Meta) {
        let kind = if old.is_expired(self.now_ms) {
            ChangeKind::Expired
        } else {
            ChangeKind::Deleted
        };
        self.touch(db, key, kind);
        let (pdb, slot) = (mk[0], encoding::slot_of_key(&mk));
        if old.expire_at_ms != 0 {
            self.batch
                .delete(encoding::expire_key(pdb, slot, old.expire_at_ms, key));
            self.volatile_delta.push((pdb, slot, -1));
        }
        self.batch.delete(mk.clone());
        self.key_delta.push((pdb, -1));
        self.set_overlay(mk, None);
    }

    /// A fresh version for a new collection's elements.
    pub fn new_version(&mut self) -> Result<u64> {
        self.versions_taken += 1;
        Ok(self.first_version + self.versions_taken - 1)
    }

    /// How many versions this transaction handed out.
    pub fn versions_taken(&self) -> u64 {
        self.versions_taken
    }

    /// Whether `version` was handed out by this transaction: its collection is new, so the
    /// engine holds none of its records (versions are never reused).
    fn is_new_version(&self, version: u64) -> bool {
        version >= self.first_version && version - self.first_version < self.versions_taken
    }

    /// Writes system record `0xff | name` with this transaction's changes.
    pub fn put_system(&mut self, name: &str, value: Bytes) {
        self.batch.put(encoding::system_key(name), value);
    }

    /// Deletes the system records named from `start` up to (not including) `end`.
    pub fn delete_system_range(&mut self, start: &str, end: &str) {
        self.batch
            .delete_range(encoding::system_key(start), encoding::system_key(end));
    }

    fn space_key(&self, space: Space, db: u8, key: &[u8], version: u64, sub: &[u8]) -> Bytes {
        encoding::space_key(space, self.pdb(db), key_slot(key), key, version, sub)
    }

    /// One element of a collection, as this transaction left it.
    pub fn get_element(
        &mut self,
        db: u8,
        key: &[u8],
        version: u64,
        sub: &[u8],
    ) -> Result<Option<Bytes>> {
        self.get_in(Space::Elements, db, key, version, sub)
    }

    /// One record of `space` of a collection, as this transaction left it.
    pub fn get_in(
        &mut self,
        space: Space,
        db: u8,
        key: &[u8],
        version: u64,
        sub: &[u8],
    ) -> Result<Option<Bytes>> {
        let ek = self.space_key(space, db, key, version, sub);
        if let Some(v) = self.elements.get(&ek) {
            return Ok(v.clone());
        }
        if self.flushed.contains(&ek[0]) || self.is_new_version(version) {
            return Ok(None);
        }
        Ok(self.ks.engine.get(&ek)?)
    }

    pub fn put_element(&mut self, db: u8, key: &[u8], version: u64, sub: &[u8], value: Bytes) {
        self.put_in(Space::Elements, db, key, version, sub, value);
    }

    pub fn delete_element(&mut self, db: u8, key: &[u8], version: u64, sub: &[u8]) {
        self.delete_in(Space::Elements, db, key, version, sub);
    }

    /// Writes one record of `space` of a collection.
    pub fn put_in(
        &mut self,
        space: Space,
        db: u8,
        key: &[u8],
        version: u64,
        sub: &[u8],
        value: Bytes,
    ) {
        let ek = self.space_key(space, db, key, version, sub);
        self.batch.put(ek.clone(), value.clone());
        self.entry_writes.push(ek.clone());
        self.set_element(ek, Some(value));
    }

    /// Deletes one record of `space` of a collection.
    pub fn delete_in(&mut self, space: Space, db: u8, key: &[u8], version: u64, sub: &[u8]) {
        let ek = self.space_key(space, db, key, version, sub);
        self.batch.delete(ek.clone());
        self.entry_writes.push(ek.clone());
        self.set_element(ek, None);
    }

    /// Up to `limit` records of `space` of a collection in `range`, as this transaction
    /// leaves them, in sub-key order (descending when `reverse`).
    #[allow(clippy::too_many_arguments)]
    pub fn scan_space(
        &mut self,
        space: Space,
        db: u8,
        key: &[u8],
        version: u64,
        range: &SubRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        let pdb = self.pdb(db);
        let prefix = encoding::space_prefix(space, pdb, key_slot(key), key, version);
        let engine_range = range.under(&prefix);
        if engine_range.is_empty() {
            return Ok(Vec::new());
        }
        let written: Vec<(Bytes, Option<Bytes>)> = self
            .elements
            .range((engine_range.start.clone(), engine_range.end.clone()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Enough engine records that `limit` survive this transaction's deletes.
        let deleted = written.iter().filter(|(_, v)| v.is_none()).count();
        let mut merged: BTreeMap<Bytes, Bytes> =
            if self.flushed.contains(&pdb) || self.is_new_version(version) {
                BTreeMap::new()
            } else {
                self.ks
                    .engine
                    .scan(&engine_range, reverse, limit.saturating_add(deleted))?
                    .into_iter()
                    .collect()
            };
        for (k, v) in written {
            match v {
                Some(v) => merged.insert(k, v),
                None => merged.remove(&k),
            };
        }
        let strip = |(k, v): (Bytes, Bytes)| (k.slice(prefix.len()..), v);
        Ok(if reverse {
            merged.into_iter().rev().take(limit).map(strip).collect()
        } else {
            merged.into_iter().take(limit).map(strip).collect()
        })
    }

    /// Every element of a collection as this transaction leaves it, in sub-key order.
    pub fn all_elements(
        &mut self,
        db: u8,
        key: &[u8],
        version: u64,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        self.scan_space(
            Space::Elements,
            db,
            key,
            version,
            &SubRange::all(),
            usize::MAX,
            false,
        )
    }

    /// `meta` (of `src_key` in `src_db`) made ready to be stored as `dst_key` in `dst_db`:
    /// a collection's elements are copied under a fresh version (strings carry their value
    /// inline and need nothing).
    pub fn relocate(
        &mut self,
        src_db: u8,
        src_key: &[u8],
        meta: Meta,
        dst_db: u8,
        dst_key: &[u8],
    ) -> Result<Meta> {
        let Some(header) = meta.collection_header() else {
            return Ok(meta);
        };
        let elements = self.all_elements(src_db, src_key, header.version)?;
        let version = self.new_version()?;
        let zset = meta.value_type == ValueType::ZSet;
        for (sub, value) in elements {
            if zset {
                let score = encoding::decode_score(&value)
                    .ok_or_else(|| KeyspaceError::Corrupt(sub.clone()))?;
                let index = encoding::score_sub(score, &sub);
                self.put_in(
                    Space::Scores,
                    dst_db,
                    dst_key,
                    version,
                    &index,
                    Bytes::new(),
                );
            }
            self.put_element(dst_db, dst_key, version, &sub, value);
        }
        Ok(meta.with_header(encoding::Collection { version, ..header }))
    }

    /// Empties logical database `db`.
    pub fn flush_db(&mut self, db: u8) -> Result<()> {
        let pdb = self.pdb(db);
        let (start, end) = encoding::db_range(pdb);
        self.batch.delete_range(start, end);
        self.remember_view_before_flush();
        self.overlay.forget_db(pdb);
        self.elements.retain(|k, _| k[0] != pdb);
        self.volatile_delta.retain(|(p, _, _)| *p != pdb);
        self.key_delta.retain(|(p, _)| *p != pdb);
        self.flushed.push(pdb);
        if let Some(changes) = &mut self.changes {
            changes.dbs.push((db, None));
        }
        Ok(())
    }

    /// Exchanges the contents of two logical databases.
    pub fn swap_db(&mut self, a: u8, b: u8) -> Result<()> {
        self.db_map.swap(usize::from(a), usize::from(b));
        self.db_map_changed = true;
        if let Some(changes) = &mut self.changes {
            changes.dbs.extend([(a, Some(b)), (b, Some(a))]);
        }
        Ok(())
    }

    /// Gives every collection whose records the current entry wrote the entry's revision,
    /// whether or not its command stored the header again (LSET, say, writes one element):
    /// a key's revision names its last change, which WATCH and the collection cache rely
    /// on. Returns those collections.
    fn stamp_changed_collections(&mut self) -> Result<Vec<Stamped>> {
        let mut owners: Vec<(Bytes, u64)> = self
            .entry_writes
            .iter()
            .filter_map(|ek| encoding::element_owner(ek))
            .collect();
        owners.dedup();
        owners.sort();
        owners.dedup();
        let mut changed = Vec::with_capacity(owners.len());
        for (mk, version) in owners {
            let Some(meta) = self.load(&mk)? else {
                continue;
            };
            if meta
                .collection_header()
                .is_none_or(|c| c.version != version)
            {
                continue;
            }
            changed.push((mk.clone(), version, meta.value_type, self.revision));
            if self.changes.is_some() {
                // Its elements changed (LSET, say, stores no new header).
                if let Some(db) = self.db_map.iter().position(|p| *p == mk[0]) {
                    let key = encoding::user_key_of_meta(&mk);
                    self.touch(db as u8, &key, ChangeKind::Stored { created: false });
                }
            }
            if meta.revision != self.revision {
                let meta = Meta {
                    revision: self.revision,
                    ..meta
                };
                self.batch.put(mk.clone(), meta.encode());
                self.set_overlay(mk, Some(meta));
            }
        }
        Ok(changed)
    }

    /// After the batch is written: hashes and sets this transaction changed that the
    /// collection cache held as they were before (or that it created) are cached as they
    /// are now, so a hot key's next read is served from memory, not the engine.
    fn refresh_cached(&self, changed: &[Stamped]) {
        for (mk, version, value_type, revision) in changed {
            let pdb = mk[0];
            if !matches!(value_type, ValueType::Hash | ValueType::Set)
                || self.flushed.contains(&pdb)
            {
                continue;
            }
            let key = encoding::user_key_of_meta(mk);
            let mut elements: BTreeMap<Bytes, Bytes> = if self.is_new_version(*version) {
                BTreeMap::new()
            } else {
                let Some(before) = self
                    .stored_revisions
                    .iter()
                    .find(|(k, _)| k == mk)
                    .map(|(_, r)| *r)
                else {
                    continue;
                };
                match self.ks.collections.get(pdb, &key, before, *version) {
                    Some(cached) => cached.iter().cloned().collect(),
                    None => continue,
                }
            };
            let prefix =
                encoding::space_prefix(Space::Elements, pdb, key_slot(&key), &key, *version);
            let range = KeyRange::prefix(&prefix);
            for (ek, value) in self.elements.range((range.start, range.end)) {
                let sub = ek.slice(prefix.len()..);
                match value {
                    Some(v) => elements.insert(sub, v.clone()),
                    None => elements.remove(&sub),
                };
            }
            let elements: Vec<(Bytes, Bytes)> = elements.into_iter().collect();
            self.ks
                .collections
                .put(pdb, &key, *revision, *version, elements);
        }
    }

    /// Writes every change atomically and updates the in-memory counters.
    pub fn commit(mut self) -> Result<()> {
        let mut changed = std::mem::take(&mut self.stamped);
        changed.extend(self.stamp_changed_collections()?);
        if changed.len() > 1 {
            // A run's entries may change one collection several times: its last stamp is
            // what it holds now.
            let mut seen = ahash::AHashSet::with_capacity(changed.len());
            changed.reverse();
            changed.retain(|(mk, ..)| seen.insert(mk.clone()));
        }
        let databases = usize::from(self.ks.databases);
        if self.db_map_changed {
            let map = Bytes::copy_from_slice(&self.db_map[..databases]);
            self.batch
                .put(encoding::system_key(super::DB_MAP_RECORD), map);
        }
        let batch = std::mem::take(&mut self.batch);
        self.ks.write_batch(batch)?;
        self.refresh_cached(&changed);
        for &pdb in &self.flushed {
            let counters = &self.ks.counters[usize::from(pdb)];
            counters.keys.store(0, Ordering::Relaxed);
            counters.volatile.store(0, Ordering::Relaxed);
            self.ks.volatile_slots.clear_db(pdb);
        }
        for &(pdb, delta) in &self.key_delta {
            self.ks.counters[usize::from(pdb)]
                .keys
                .fetch_add(delta, Ordering::Relaxed);
        }
        for &(pdb, slot, delta) in &self.volatile_delta {
            self.ks.counters[usize::from(pdb)]
                .volatile
                .fetch_add(delta, Ordering::Relaxed);
            self.ks.volatile_slots.add(pdb, slot, delta);
        }
        for &(pdb, slot, deadline_ms) in &self.deadlines {
            self.ks.volatile_slots.note_deadline(pdb, slot, deadline_ms);
        }
        if self.db_map_changed {
            *self.ks.db_map.write() = self.db_map;
        }
        Ok(())
    }
}
