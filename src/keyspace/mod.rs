//! The keyspace: Redis databases and values encoded over an ordered [`Engine`].
//!
//! Reads go straight to the engine and hide logically expired keys. Writes happen only at
//! apply, through a [`Txn`] that reads its own writes, keeps the expiry index and the
//! counters in step with the metadata, and commits as one atomic write batch. A `Txn` is given
//! the entry's `now_ms` and log index; it never reads the clock.
//!
//! Invariants: every metadata record with `expire_at_ms != 0` has exactly one expiry-index
//! record, and the in-memory key and volatile counters equal what the engine holds.

mod cache;
mod cross_shard;
mod elements;
pub mod encoding;
mod event_log;
mod filter;
mod groups;
mod txn;
mod volatile;

pub use cache::Elements;
pub use cross_shard::HeldLocks;
pub use elements::{LiveReads, Reads, SubRange};
pub use encoding::{Collection, Encoding, Meta, Space, ValueType};
pub use event_log::{EventId, LoggedEvent};
pub use filter::ElementFilter;
pub use groups::CollectionGroups;
pub use txn::{ChangeKind, Changes, KeyChange, Txn};

use std::ops::Bound;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::cluster::{key_slot, Slot, SLOT_COUNT};
use crate::storage::{Engine, KeyRange, StorageError, WriteBatch};

/// Errors from the keyspace. All of them stop the apply of an entry (they are not replies).
#[derive(Debug, thiserror::Error)]
pub enum KeyspaceError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("corrupt record at key {0:?}")]
    Corrupt(Bytes),
}

pub type Result<T> = std::result::Result<T, KeyspaceError>;

/// A position in a database's key order: a slot and, within it, a key (none = slot start).
pub type ScanPosition = (Slot, Option<Bytes>);

/// One page of a key scan: live keys with their values, and where the next page starts.
pub type ScanPage = (Vec<(Bytes, Meta)>, Option<(Slot, Bytes)>);

/// Per-database counters kept in memory and rebuilt on open.
#[derive(Default)]
struct DbCounters {
    keys: AtomicI64,
    volatile: AtomicI64,
}

pub struct Keyspace {
    engine: Arc<dyn Engine>,
    databases: u8,
    /// Logical database → physical database (SWAPDB swaps two entries).
    db_map: RwLock<[u8; DATABASES_MAX]>,
    /// Indexed by physical database.
    counters: Vec<DbCounters>,
    /// Volatile keys per (physical db, slot) and when they may be due, so the expiry
    /// cycle reads only slots where something may have expired (`volatile.rs`).
    volatile_slots: volatile::VolatileSlots,
    /// Small collections read whole, by revision (`cache.rs`).
    collections: cache::CollectionCache,
}

const DB_MAP_RECORD: &str = "dbmap";
/// Databases are numbered 0..=254; 0xff starts the system records.
pub(crate) const DATABASES_MAX: usize = 255;

/// The logical → physical database map as stored (identity when none is).
fn stored_db_map(engine: &dyn Engine, databases: u8) -> Result<[u8; DATABASES_MAX]> {
    let mut db_map = [0u8; DATABASES_MAX];
    for (i, slot) in db_map.iter_mut().enumerate() {
        *slot = i as u8;
    }
    if let Some(raw) = engine.get(&encoding::system_key(DB_MAP_RECORD))? {
        if raw.len() == usize::from(databases) {
            db_map[..raw.len()].copy_from_slice(&raw);
        }
    }
    Ok(db_map)
}

impl Keyspace {
    /// Opens the keyspace on `engine` with `databases` logical databases (1..=254).
    pub fn open(engine: Arc<dyn Engine>, databases: u8) -> Result<Keyspace> {
        assert!((1..=254).contains(&databases), "databases out of range");
        let n = usize::from(databases);
        let db_map = stored_db_map(engine.as_ref(), databases)?;
        let ks = Keyspace {
            engine,
            databases,
            db_map: RwLock::new(db_map),
            counters: (0..n).map(|_| DbCounters::default()).collect(),
            volatile_slots: volatile::VolatileSlots::new(databases),
            collections: cache::CollectionCache::new(0),
        };
        ks.rebuild_counters()?;
        Ok(ks)
    }

    /// A keyspace over this one's current state whose writes stay in memory and never
    /// reach it (`storage::OverlayEngine`): EXEC runs a transaction's commands against one
    /// to learn their replies before proposing them. It starts with this one's databases,
    /// database map and key counts; it caches nothing and counts no volatile keys per slot.
    pub fn speculate(&self) -> Keyspace {
        let counters = self
            .counters
            .iter()
            .map(|c| DbCounters {
                keys: AtomicI64::new(c.keys.load(Ordering::Relaxed)),
                volatile: AtomicI64::new(c.volatile.load(Ordering::Relaxed)),
            })
            .collect();
        Keyspace {
            engine: Arc::new(crate::storage::OverlayEngine::new(self.engine.clone())),
            databases: self.databases,
            db_map: RwLock::new(*self.db_map.read()),
            counters,
            volatile_slots: volatile::VolatileSlots::untracked(),
            collections: cache::CollectionCache::new(0),
        }
    }

    /// Keeps up to `bytes` of small collections read whole (0: none).
    pub fn with_collection_cache(mut self, bytes: usize) -> Keyspace {
        self.collections = cache::CollectionCache::new(bytes);
        self
    }

    /// `name:value` lines for INFO's storage section: the collection cache's use.
    pub fn cache_info(&self) -> Vec<(String, String)> {
        let (bytes, hit_ratio) = self.collections.usage();
        vec![
            ("collection_cache_bytes".to_string(), bytes.to_string()),
            (
                "collection_cache_hit_ratio".to_string(),
                format!("{hit_ratio:.4}"),
            ),
        ]
    }

    pub fn databases(&self) -> u8 {
        self.databases
    }

    /// Reads the database map again from the engine (a replica installed from a snapshot
    /// carries the map of the node that sent it).
    pub fn reload_db_map(&self) -> Result<()> {
        *self.db_map.write() = stored_db_map(self.engine.as_ref(), self.databases)?;
        Ok(())
    }

    /// The name of the system record holding the database map.
    pub fn db_map_record() -> &'static str {
        DB_MAP_RECORD
    }

    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    pub fn physical_db(&self, db: u8) -> u8 {
        self.db_map.read()[usize::from(db)]
    }

    /// The key ranges that hold slots `first..=last`: every database's metadata, expiry,
    /// element and score-index records of those slots (a shard's whole data).
    pub fn slot_ranges(&self, first: Slot, last: Slot) -> Vec<KeyRange> {
        let mut ranges = Vec::new();
        for pdb in 0..self.databases {
            for tag in [
                encoding::TAG_META,
                encoding::TAG_EXPIRE,
                encoding::TAG_ELEMENT,
                encoding::TAG_SCORE,
            ] {
                ranges.push(tagged_slot_range(pdb, tag, first, last));
            }
        }
        ranges
    }

    /// Moves the key counters by the keys stored in slots `first..=last` of physical
    /// database `pdb` (every database for `None`): `sign` 1 once a shard's data has
    /// arrived, -1 before it leaves. Other shards keep writing meanwhile, so this counts
    /// only the moving slots instead of recounting everything.
    pub fn count_slots(&self, pdb: Option<u8>, first: Slot, last: Slot, sign: i64) -> Result<()> {
        for pdb in (0..self.databases).filter(|d| pdb.is_none_or(|p| p == *d)) {
            let mut keys = 0i64;
            let metas = tagged_slot_range(pdb, encoding::TAG_META, first, last);
            self.for_each_in(metas, |_, _| {
                keys += 1;
                true
            })?;
            let mut volatile = 0i64;
            let expiries = tagged_slot_range(pdb, encoding::TAG_EXPIRE, first, last);
            self.for_each_in(expiries, |k, _| {
                volatile += 1;
                let slot = encoding::slot_of_key(k);
                self.volatile_slots.add(pdb, slot, sign);
                if let Some((deadline_ms, _)) = encoding::decode_expire_key(k) {
                    self.volatile_slots.note_deadline(pdb, slot, deadline_ms);
                }
                true
            })?;
            let counters = &self.counters[usize::from(pdb)];
            counters.keys.fetch_add(sign * keys, Ordering::Relaxed);
            counters
                .volatile
                .fetch_add(sign * volatile, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Up to `limit` keys stored in `slot` of logical database `db`, in key order. Like
    /// redis-server's CLUSTER GETKEYSINSLOT, keys that expired but are not yet deleted count.
    pub fn keys_in_slot(&self, db: u8, slot: Slot, limit: usize) -> Result<Vec<Bytes>> {
        let mut keys = Vec::new();
        if limit == 0 {
            return Ok(keys);
        }
        let metas = tagged_slot_range(self.physical_db(db), encoding::TAG_META, slot, slot);
        self.for_each_in(metas, |k, _| {
            keys.push(encoding::user_key_of_meta(k));
            keys.len() < limit
        })?;
        Ok(keys)
    }

    /// How many keys `slot` of logical database `db` stores (see [`Self::keys_in_slot`]).
    pub fn count_in_slot(&self, db: u8, slot: Slot) -> Result<u64> {
        let mut count = 0;
        let metas = tagged_slot_range(self.physical_db(db), encoding::TAG_META, slot, slot);
        self.for_each_in(metas, |_, _| {
            count += 1;
            true
        })?;
        Ok(count)
    }

    /// Adds to `batch` the deletion of slots `first..=last` of logical database `db` (every
    /// database for `None`) and moves the counters down by what they hold: a shard's
    /// FLUSHDB/FLUSHALL in a cluster, applied by the shard's group alone.
    pub fn flush_slots(
        &self,
        db: Option<u8>,
        first: Slot,
        last: Slot,
        batch: &mut WriteBatch,
    ) -> Result<()> {
        let pdb = db.map(|d| self.physical_db(d));
        self.count_slots(pdb, first, last, -1)?;
        for pdb in (0..self.databases).filter(|d| pdb.is_none_or(|p| p == *d)) {
            for tag in [
                encoding::TAG_META,
                encoding::TAG_EXPIRE,
                encoding::TAG_ELEMENT,
                encoding::TAG_SCORE,
            ] {
                let range = tagged_slot_range(pdb, tag, first, last);
                if let (Bound::Included(s), Bound::Excluded(e)) = (range.start, range.end) {
                    batch.delete_range(s, e);
                }
            }
        }
        Ok(())
    }

    /// Recounts keys and volatile keys from the engine (after a snapshot is installed).
    fn rebuild_counters(&self) -> Result<()> {
        for c in &self.counters {
            c.keys.store(0, Ordering::Relaxed);
            c.volatile.store(0, Ordering::Relaxed);
        }
        self.volatile_slots.clear();
        for pdb in 0..self.databases {
            let mut keys = 0;
            self.for_each_in(KeyRange::prefix(&encoding::db_meta_prefix(pdb)), |_, _| {
                keys += 1;
                true
            })?;
            self.counters[usize::from(pdb)]
                .keys
                .store(keys, Ordering::Relaxed);
            let mut volatile = 0;
            self.for_each_in(KeyRange::prefix(&[pdb, encoding::TAG_EXPIRE]), |k, _| {
                volatile += 1;
                let slot = encoding::slot_of_key(k);
                self.volatile_slots.add(pdb, slot, 1);
                if let Some((deadline_ms, _)) = encoding::decode_expire_key(k) {
                    self.volatile_slots.note_deadline(pdb, slot, deadline_ms);
                }
                true
            })?;
            self.counters[usize::from(pdb)]
                .volatile
                .store(volatile, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Visits every pair of `range` in order until `visit` returns false.
    pub fn for_each_in(
        &self,
        mut range: KeyRange,
        mut visit: impl FnMut(&Bytes, &Bytes) -> bool,
    ) -> Result<()> {
        const CHUNK: usize = 256;
        loop {
            let pairs = self.engine.scan(&range, false, CHUNK)?;
            let done = pairs.len() < CHUNK;
            for (k, v) in &pairs {
                if !visit(k, v) {
                    return Ok(());
                }
            }
            match pairs.last() {
                Some((last, _)) if !done => range.start = Bound::Excluded(last.clone()),
                _ => return Ok(()),
            }
        }
    }

    /// The live value of `key` in logical database `db`, hiding it if expired at `now_ms`.
    pub fn get(&self, db: u8, key: &[u8], now_ms: u64) -> Result<Option<Meta>> {
        Ok(self.get_stored(db, key)?.filter(|m| !m.is_expired(now_ms)))
    }

    /// The stored record of `key`, expired or not (the caller decides what expiry means).
    pub fn get_stored(&self, db: u8, key: &[u8]) -> Result<Option<Meta>> {
        let mk = encoding::meta_key(self.physical_db(db), key_slot(key), key);
        match self.engine.get(&mk)? {
            None => Ok(None),
            Some(raw) => Meta::decode(&raw)
                .map(Some)
                .ok_or(KeyspaceError::Corrupt(mk)),
        }
    }

    /// Stored records of several keys, expired or not, read from one consistent state.
    pub fn multi_get_stored(&self, db: u8, keys: &[Bytes]) -> Result<Vec<Option<Meta>>> {
        let pdb = self.physical_db(db);
        let mks: Vec<Bytes> = keys
            .iter()
            .map(|k| encoding::meta_key(pdb, key_slot(k), k))
            .collect();
        let raws = self.engine.multi_get(&mks)?;
        raws.into_iter()
            .zip(mks)
            .map(|(raw, mk)| match raw {
                None => Ok(None),
                Some(raw) => Meta::decode(&raw)
                    .map(Some)
                    .ok_or(KeyspaceError::Corrupt(mk)),
            })
            .collect()
    }

    /// Number of keys in a logical database, counting expired keys not yet removed (as Redis).
    pub fn dbsize(&self, db: u8) -> u64 {
        self.counters[usize::from(self.physical_db(db))]
            .keys
            .load(Ordering::Relaxed)
            .max(0) as u64
    }

    /// Number of keys with an expiry in a logical database.
    pub fn volatile_count(&self, db: u8) -> u64 {
        let pdb = usize::from(self.physical_db(db));
        self.counters[pdb].volatile.load(Ordering::Relaxed).max(0) as u64
    }

    /// Starts a write transaction for the entry at log `revision`, stamped `now_ms`; new
    /// collections take versions `first_version`, `first_version + 1`, … (the caller derives
    /// them from the log, so every replica picks the same ones and none is ever reused).
    pub fn txn(&self, now_ms: u64, revision: u64, first_version: u64) -> Txn<'_> {
        Txn::new(self, now_ms, revision, first_version)
    }

    /// A system record (`0xff | name`), as stored.
    pub fn get_system(&self, name: &str) -> Result<Option<Bytes>> {
        Ok(self.engine.get(&encoding::system_key(name))?)
    }

    /// Stored keys (expired ones included) of a logical database in (slot, key) order,
    /// starting after `after` (a slot and, within it, the last key already returned, or none
    /// to start the slot). Returns the keys and the position to resume from, `None` at the end.
    pub fn scan_keys(&self, db: u8, after: Option<ScanPosition>, limit: usize) -> Result<ScanPage> {
        let pdb = self.physical_db(db);
        let mut range = KeyRange::prefix(&encoding::db_meta_prefix(pdb));
        match after {
            None => {}
            Some((slot, None)) => range.start = Bound::Included(encoding::meta_key(pdb, slot, b"")),
            Some((slot, Some(key))) => {
                range.start = Bound::Excluded(encoding::meta_key(pdb, slot, &key))
            }
        }
        let pairs = self.engine.scan(&range, false, limit)?;
        let next = if pairs.len() < limit {
            None
        } else {
            pairs
                .last()
                .map(|(k, _)| (encoding::slot_of_key(k), encoding::user_key_of_meta(k)))
        };
        let mut out = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let meta = Meta::decode(&v).ok_or_else(|| KeyspaceError::Corrupt(k.clone()))?;
            out.push((encoding::user_key_of_meta(&k), meta));
        }
        Ok((out, next))
    }

    /// Up to `limit` keys of logical database `db` whose expiry is at or before `now_ms`,
    /// looking at slots from `first_slot` on. Returns them and the slot to resume from.
    /// Reads only slots where a key may be due (`volatile.rs`).
    pub fn expired_keys(
        &self,
        db: u8,
        first_slot: u16,
        now_ms: u64,
        limit: usize,
    ) -> Result<(Vec<Bytes>, u16)> {
        let pdb = self.physical_db(db);
        let mut out = Vec::new();
        let mut slot = first_slot;
        while slot < SLOT_COUNT && out.len() < limit {
            if self.volatile_slots.may_be_due(pdb, Slot(slot), now_ms) {
                self.expired_in_slot(pdb, Slot(slot), now_ms, limit, &mut out)?;
                if out.len() >= limit {
                    return Ok((out, slot));
                }
            }
            slot += 1;
        }
        Ok((out, if slot >= SLOT_COUNT { 0 } else { slot }))
    }

    /// Adds the keys of one slot due at `now_ms` to `out` (up to `limit` in all) and
    /// notes the slot's earliest deadline left: the first one found (still due until its
    /// deletion is applied), or else the first after `now_ms`.
    fn expired_in_slot(
        &self,
        pdb: u8,
        slot: Slot,
        now_ms: u64,
        limit: usize,
        out: &mut Vec<Bytes>,
    ) -> Result<()> {
        self.volatile_slots.take_due(pdb, slot);
        let prefix = encoding::slot_expire_prefix(pdb, slot);
        let bound = encoding::expire_key(pdb, slot, now_ms, &[]);
        let mut range = KeyRange::prefix(&prefix);
        range.end = Bound::Included(bound.clone());
        let due = match self.engine.scan(&range, false, limit - out.len()) {
            Ok(due) => due,
            Err(e) => {
                self.volatile_slots.note_deadline(pdb, slot, 0);
                return Err(e.into());
            }
        };
        let mut earliest = None;
        for (k, _) in due {
            if let Some((at, key)) = encoding::decode_expire_key(&k) {
                earliest = earliest.or(Some(at));
                out.push(key);
            }
        }
        if earliest.is_none() {
            let mut later = KeyRange::prefix(&prefix);
            later.start = Bound::Excluded(bound);
            let next = self.engine.scan(&later, false, 1);
            earliest = match next {
                Ok(next) => Some(
                    next.first()
                        .and_then(|(k, _)| encoding::decode_expire_key(k))
                        .map_or(u64::MAX, |(at, _)| at),
                ),
                Err(_) => Some(0),
            };
        }
        self.volatile_slots
            .note_deadline(pdb, slot, earliest.unwrap_or(0));
        Ok(())
    }

    fn write_batch(&self, batch: WriteBatch) -> Result<()> {
        if !batch.is_empty() {
            self.engine.write(batch)?;
        }
        Ok(())
    }
}

/// The records of one kind (`tag`) of database `pdb` in slots `first..=last`.
fn tagged_slot_range(pdb: u8, tag: u8, first: Slot, last: Slot) -> KeyRange {
    let bound = |slot: u32| {
        let mut k = vec![pdb, tag];
        k.extend_from_slice(&(slot as u16).to_be_bytes());
        Bytes::from(k)
    };
    let end = if u32::from(last.0) + 1 >= u32::from(SLOT_COUNT) {
        Bytes::from(vec![pdb, tag + 1])
    } else {
        bound(u32::from(last.0) + 1)
    };
    KeyRange::half_open(bound(u32::from(first.0)), end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryEngine;

    fn keyspace() -> Keyspace {
        Keyspace::open(Arc::new(MemoryEngine::new()), 16).unwrap()
    }

    #[test]
    fn txn_reads_its_writes_and_keeps_counters() {
        let ks = keyspace();
        let mut txn = ks.txn(1000, 1, 1 << 48);
        txn.put(0, b"a", Meta::string("1".into(), 1, 0)).unwrap();
        txn.put(0, b"b", Meta::string("2".into(), 1, 5000)).unwrap();
        assert_eq!(txn.get(0, b"a").unwrap().unwrap().value, Bytes::from("1"));
        txn.commit().unwrap();
        assert_eq!(ks.dbsize(0), 2);
        assert_eq!(ks.volatile_count(0), 1);
        assert!(ks.get(0, b"b", 4999).unwrap().is_some());
        assert!(
            ks.get(0, b"b", 5000).unwrap().is_none(),
            "expired keys are hidden"
        );
        let (expired, _) = ks.expired_keys(0, 0, 6000, 10).unwrap();
        assert_eq!(expired, vec![Bytes::from("b")]);

        let mut txn = ks.txn(2000, 2, 1 << 48);
        assert!(txn.delete(0, b"b").unwrap());
        txn.commit().unwrap();
        assert_eq!((ks.dbsize(0), ks.volatile_count(0)), (1, 0));
        assert!(ks.expired_keys(0, 0, 6000, 10).unwrap().0.is_empty());
    }

    #[test]
    fn rollback_undoes_writes_deletes_and_flushes_since_the_savepoint() {
        let ks = keyspace();
        let mut txn = ks.txn(0, 1, 1 << 48);
        txn.put(0, b"kept", Meta::string("1".into(), 1, 0)).unwrap();
        txn.put(1, b"other", Meta::string("o".into(), 1, 0))
            .unwrap();
        txn.put_element(0, b"h", 7, b"f", Bytes::from("v"));
        txn.commit().unwrap();

        let mut txn = ks.txn(0, 2, 1 << 48);
        txn.put(0, b"a", Meta::string("a".into(), 2, 9000)).unwrap();
        txn.put_element(0, b"h", 7, b"g", Bytes::from("w"));
        let point = txn.savepoint();
        txn.put(0, b"a", Meta::string("changed".into(), 2, 0))
            .unwrap();
        txn.put(0, b"b", Meta::string("b".into(), 2, 5000)).unwrap();
        assert!(txn.delete(0, b"kept").unwrap());
        txn.put_element(0, b"h", 7, b"f", Bytes::from("changed"));
        txn.delete_element(0, b"h", 7, b"g");
        txn.flush_db(1).unwrap();
        txn.put(1, b"after-flush", Meta::string("x".into(), 2, 0))
            .unwrap();
        txn.rollback(point);
        let value = |txn: &mut Txn, db, key: &[u8]| txn.get(db, key).unwrap().map(|m| m.value);
        assert_eq!(value(&mut txn, 0, b"a"), Some(Bytes::from("a")));
        assert_eq!(value(&mut txn, 0, b"b"), None);
        assert_eq!(value(&mut txn, 0, b"kept"), Some(Bytes::from("1")));
        assert_eq!(value(&mut txn, 1, b"other"), Some(Bytes::from("o")));
        assert_eq!(value(&mut txn, 1, b"after-flush"), None);
        let element = |txn: &mut Txn, sub: &[u8]| txn.get_element(0, b"h", 7, sub).unwrap();
        assert_eq!(element(&mut txn, b"f"), Some(Bytes::from("v")));
        assert_eq!(element(&mut txn, b"g"), Some(Bytes::from("w")));
        // A later savepoint and rollback work from the restored state.
        let point = txn.savepoint();
        txn.put(0, b"c", Meta::string("c".into(), 2, 0)).unwrap();
        txn.rollback(point);
        txn.commit().unwrap();
        // Key counts and the expiry index as if only the writes before the savepoint ran.
        assert_eq!((ks.dbsize(0), ks.dbsize(1)), (2, 1));
        assert_eq!(ks.volatile_count(0), 1);
        assert!(ks.get(0, b"b", 1).unwrap().is_none());
        assert!(ks.get(1, b"other", 1).unwrap().is_some());
    }

    #[test]
    fn range_scans_inside_a_write_see_its_changes_and_tolerate_empty_ranges() {
        use std::ops::Bound;
        let ks = keyspace();
        let mut txn = ks.txn(0, 1, 1 << 48);
        for sub in ["a", "b", "c", "d"] {
            txn.put_in(Space::Scores, 0, b"z", 7, sub.as_bytes(), Bytes::new());
        }
        txn.commit().unwrap();
        let mut txn = ks.txn(0, 2, 1 << 48);
        txn.delete_in(Space::Scores, 0, b"z", 7, b"b");
        txn.put_in(Space::Scores, 0, b"z", 7, b"bb", Bytes::new());
        let subs = |txn: &mut Txn, range: &SubRange, limit, reverse| -> Vec<Bytes> {
            txn.scan_space(Space::Scores, 0, b"z", 7, range, limit, reverse)
                .unwrap()
                .into_iter()
                .map(|(s, _)| s)
                .collect()
        };
        let all = SubRange::all();
        assert_eq!(subs(&mut txn, &all, 2, false), vec!["a", "bb"]);
        assert_eq!(subs(&mut txn, &all, 3, true), vec!["d", "c", "bb"]);
        // Bounds that meet or cross select nothing (and must not panic).
        let at = |b: Bound<&'static str>| b.map(|s| Bytes::from_static(s.as_bytes()));
        for (start, end) in [
            (Bound::Excluded("c"), Bound::Excluded("c")),
            (Bound::Included("d"), Bound::Included("a")),
            (Bound::Included("c"), Bound::Excluded("c")),
        ] {
            let range = SubRange {
                start: at(start),
                end: at(end),
            };
            assert!(range.is_empty());
            assert!(subs(&mut txn, &range, 10, false).is_empty());
        }
    }

    #[test]
    fn a_change_to_any_element_renews_the_revision_and_the_cached_read() {
        let ks = keyspace().with_collection_cache(1 << 20);
        let mut txn = ks.txn(0, 10, 1 << 48);
        let meta = Meta::collection(ValueType::Hash, Encoding::Listpack, 7, 10);
        txn.put(0, b"h", meta).unwrap();
        txn.put_element(0, b"h", 7, b"f", Bytes::from("1"));
        txn.commit().unwrap();
        let read = |ks: &Keyspace| {
            let meta = ks.get(0, b"h", 0).unwrap().unwrap();
            let all = ks.collection(0, b"h", meta.revision, 7).unwrap();
            (meta.revision, all[0].1.clone())
        };
        assert_eq!(read(&ks), (10, Bytes::from("1")));
        assert_eq!(read(&ks), (10, Bytes::from("1")), "from the cache");
        // A write that changes an element and leaves the header alone.
        let mut txn = ks.txn(0, 11, 1 << 48);
        txn.put_element(0, b"h", 7, b"f", Bytes::from("2"));
        txn.commit().unwrap();
        assert_eq!(read(&ks), (11, Bytes::from("2")));
        let (bytes, hit_ratio) = ks.collections.usage();
        assert!(bytes > 0 && hit_ratio > 0.3, "{bytes} {hit_ratio}");
        // A run of entries in one transaction: each element change carries its entry's
        // revision, and the cache is tagged with the last.
        let mut txn = ks.txn(0, 12, 1 << 48);
        txn.put_element(0, b"h", 7, b"f", Bytes::from("3"));
        txn.next_entry(0, 13).unwrap();
        txn.put(0, b"other", Meta::string(Bytes::from("x"), 13, 0))
            .unwrap();
        txn.commit().unwrap();
        assert_eq!(read(&ks), (12, Bytes::from("3")));
        let mut txn = ks.txn(0, 14, 1 << 48);
        txn.put_element(0, b"h", 7, b"f", Bytes::from("4"));
        txn.next_entry(0, 15).unwrap();
        txn.put_element(0, b"h", 7, b"f", Bytes::from("5"));
        txn.commit().unwrap();
        assert_eq!(read(&ks), (15, Bytes::from("5")));
    }

    #[test]
    fn a_write_leaves_the_hashes_it_changed_cached_as_they_now_are() {
        let ks = keyspace().with_collection_cache(1 << 20);
        let mut txn = ks.txn(0, 10, 1 << 48);
        let version = txn.new_version().unwrap();
        let meta = Meta::collection(ValueType::Hash, Encoding::Listpack, version, 10);
        txn.put(0, b"h", meta).unwrap();
        for f in ["a", "b", "c"] {
            txn.put_element(0, b"h", version, f.as_bytes(), Bytes::from("1"));
        }
        txn.commit().unwrap();
        let cached = |revision| ks.collections.get(0, b"h", revision, version);
        let engine = || ks.all_elements(0, b"h", version).unwrap();
        assert_eq!(
            cached(10).as_deref(),
            Some(&engine()[..]),
            "made in the write"
        );
        // A change to cached elements: the cache follows without reading the engine.
        let mut txn = ks.txn(0, 11, 1 << 48);
        txn.put_element(0, b"h", version, b"b", Bytes::from("2"));
        txn.delete_element(0, b"h", version, b"c");
        txn.put_element(0, b"h", version, b"d", Bytes::from("3"));
        txn.commit().unwrap();
        let now = engine();
        assert_eq!(now.len(), 3);
        assert_eq!(cached(11).as_deref(), Some(&now[..]));
        assert!(cached(10).is_none(), "the entry was replaced");
        // Not cached before the write: nothing is cached after it.
        let other = keyspace().with_collection_cache(1 << 20);
        let mut txn = other.txn(0, 1, 1 << 48);
        txn.put(
            0,
            b"h",
            Meta::collection(ValueType::Hash, Encoding::Listpack, 7, 1),
        )
        .unwrap();
        txn.put_element(0, b"h", 7, b"f", Bytes::from("1"));
        txn.commit().unwrap();
        assert!(other.collections.get(0, b"h", 1, 7).is_none());
    }

    #[test]
    fn a_collection_made_in_a_write_reads_nothing_from_the_engine() {
        let ks = keyspace();
        // A record under the version the next write will hand out (versions are never
        // reused, so only a test can put one there): the write must not look for it.
        let mut txn = ks.txn(0, 1, 1 << 48);
        txn.put_element(0, b"h", 1 << 48, b"stale", Bytes::from("x"));
        txn.commit().unwrap();
        let mut txn = ks.txn(0, 2, 1 << 48);
        let version = txn.new_version().unwrap();
        assert_eq!(version, 1 << 48);
        assert_eq!(txn.get_element(0, b"h", version, b"stale").unwrap(), None);
        txn.put_element(0, b"h", version, b"f", Bytes::from("1"));
        let all = txn.all_elements(0, b"h", version).unwrap();
        assert_eq!(all, vec![(Bytes::from("f"), Bytes::from("1"))]);
    }

    #[test]
    fn swap_and_flush_databases() {
        let ks = keyspace();
        let mut txn = ks.txn(0, 1, 1 << 48);
        txn.put(1, b"k", Meta::string("v".into(), 1, 0)).unwrap();
        txn.commit().unwrap();
        let mut txn = ks.txn(0, 2, 1 << 48);
        txn.swap_db(0, 1).unwrap();
        txn.commit().unwrap();
        assert!(ks.get(0, b"k", 0).unwrap().is_some());
        assert_eq!((ks.dbsize(0), ks.dbsize(1)), (1, 0));
        let reopened = Keyspace::open(ks.engine().clone(), 16).unwrap();
        assert!(
            reopened.get(0, b"k", 0).unwrap().is_some(),
            "db map survives reopen"
        );
        let mut txn = ks.txn(0, 3, 1 << 48);
        txn.flush_db(0).unwrap();
        txn.commit().unwrap();
        assert_eq!(ks.dbsize(0), 0);
        assert!(ks.get(0, b"k", 0).unwrap().is_none());
    }
}
