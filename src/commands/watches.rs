//! WATCH's bookkeeping: which connections watch which keys, and marking a connection's
//! transaction to abort when one of its keys changes.
//!
//! Every node applies the writes of the shards it holds a replica of; applying one marks
//! the watchers of each key it changed (`touch`), of every key of a database it emptied
//! or swapped (`touch_db`). A connection's EXEC aborts if it was marked, or if a key it
//! watched has expired since (Redis 7.0's rule: a key already expired when WATCHed does not
//! count, unless it comes back).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use ahash::AHashMap;
use bytes::Bytes;
use parking_lot::Mutex;

/// One connection's watch: marked when a key it watches changes.
#[derive(Default)]
pub struct Watcher {
    dirty: AtomicBool,
}

impl Watcher {
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }
}

/// A watcher of one key.
struct Watch {
    watcher: Arc<Watcher>,
    /// The key had expired (but was still stored) when WATCHed: its deletion is no change.
    expired_at_watch: bool,
}

/// Every watched key of this node, with its watchers.
#[derive(Default)]
pub struct WatchRegistry {
    keys: Mutex<AHashMap<(u8, Bytes), Vec<Watch>>>,
    /// Watched (key, watcher) pairs: applying a write looks no further when there are none.
    pairs: AtomicUsize,
}

impl WatchRegistry {
    /// Whether no connection watches anything (writes then skip the bookkeeping).
    pub fn is_idle(&self) -> bool {
        self.pairs.load(Ordering::Acquire) == 0
    }

    /// Adds `watcher` to the watchers of `key` in `db`; false if it already watched it.
    fn add(&self, watcher: &Arc<Watcher>, db: u8, key: &Bytes, expired_at_watch: bool) -> bool {
        let mut keys = self.keys.lock();
        let list = keys.entry((db, key.clone())).or_default();
        if list.iter().any(|w| Arc::ptr_eq(&w.watcher, watcher)) {
            return false;
        }
        list.push(Watch {
            watcher: watcher.clone(),
            expired_at_watch,
        });
        self.pairs.fetch_add(1, Ordering::AcqRel);
        true
    }

    fn remove(&self, watcher: &Arc<Watcher>, watched: &[(u8, Bytes)]) {
        let mut keys = self.keys.lock();
        for key in watched {
            if let Some(list) = keys.get_mut(key) {
                let before = list.len();
                list.retain(|w| !Arc::ptr_eq(&w.watcher, watcher));
                self.pairs.fetch_sub(before - list.len(), Ordering::AcqRel);
                if list.is_empty() {
                    keys.remove(key);
                }
            }
        }
    }

    /// `key` in `db` was changed: its watchers' transactions abort. `exists` says whether
    /// the key is stored now (a key that had expired when watched and is now deleted
    /// logically did not change).
    pub fn touch(&self, db: u8, key: &[u8], exists: impl Fn() -> bool) {
        let mut keys = self.keys.lock();
        let Some(list) = keys.get_mut(&(db, Bytes::copy_from_slice(key))) else {
            return;
        };
        for w in list {
            if w.expired_at_watch {
                if !exists() {
                    w.expired_at_watch = false;
                    continue;
                }
                w.expired_at_watch = false;
            }
            w.watcher.dirty.store(true, Ordering::Release);
        }
    }

    /// The watched keys of `db`.
    pub fn keys_in_db(&self, db: u8) -> Vec<Bytes> {
        self.keys
            .lock()
            .keys()
            .filter(|(d, _)| *d == db)
            .map(|(_, k)| k.clone())
            .collect()
    }
}

/// A key watched on another node, as that node saw it: EXEC aborts if its revision differs
/// now, or it has expired since (see `node/transaction.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedRevision {
    pub db: u8,
    pub key: Bytes,
    /// 0: the key did not exist.
    pub revision: u64,
    pub expired_when_watched: bool,
}

/// A connection's watched keys; dropping it stops watching them.
pub struct WatchState {
    registry: Arc<WatchRegistry>,
    watcher: Arc<Watcher>,
    keys: Vec<(u8, Bytes)>,
    /// Keys of shards another node leads: their state there when watched.
    baselines: Vec<WatchedRevision>,
    /// A baseline could not be had: the transaction must not run.
    changed_elsewhere: bool,
}

impl WatchState {
    pub fn new(registry: Arc<WatchRegistry>) -> WatchState {
        WatchState {
            registry,
            watcher: Arc::new(Watcher::default()),
            keys: Vec::new(),
            baselines: Vec::new(),
            changed_elsewhere: false,
        }
    }

    /// Records a watched key's state at the leader of its shard (another node).
    pub fn set_baseline(&mut self, baseline: WatchedRevision) {
        self.baselines
            .retain(|b| (b.db, &b.key) != (baseline.db, &baseline.key));
        self.baselines.push(baseline);
    }

    /// A watched key's state at its leader, if it was watched there.
    pub fn baseline(&self, db: u8, key: &Bytes) -> Option<&WatchedRevision> {
        self.baselines.iter().find(|b| b.db == db && b.key == key)
    }

    /// The watch cannot be checked at the leader: the transaction must abort.
    pub fn mark_changed(&mut self) {
        self.changed_elsewhere = true;
    }

    /// The keys watched at their leader, with their state there then.
    pub fn baselines(&self) -> &[WatchedRevision] {
        &self.baselines
    }

    pub fn is_changed_elsewhere(&self) -> bool {
        self.changed_elsewhere
    }

    /// Watches `key` in `db` (again: no change).
    pub fn watch(&mut self, db: u8, key: &Bytes, expired_now: bool) {
        if self.registry.add(&self.watcher, db, key, expired_now) {
            self.keys.push((db, key.clone()));
        }
    }

    /// Whether a watched key changed since it was watched.
    pub fn is_dirty(&self) -> bool {
        self.watcher.is_dirty()
    }

    /// The watched keys, `(db, key)`.
    pub fn keys(&self) -> &[(u8, Bytes)] {
        &self.keys
    }

    /// Whether `key` in `db` had expired when it was watched.
    pub fn expired_at_watch(&self, db: u8, key: &Bytes) -> bool {
        let keys = self.registry.keys.lock();
        keys.get(&(db, key.clone())).is_some_and(|list| {
            list.iter()
                .any(|w| Arc::ptr_eq(&w.watcher, &self.watcher) && w.expired_at_watch)
        })
    }
}

impl Drop for WatchState {
    fn drop(&mut self) {
        self.registry.remove(&self.watcher, &self.keys);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn a_change_marks_only_the_watchers_of_that_key_and_dropping_unwatches() {
        let registry = Arc::new(WatchRegistry::default());
        let mut a = WatchState::new(registry.clone());
        let mut b = WatchState::new(registry.clone());
        a.watch(0, &key("x"), false);
        a.watch(0, &key("x"), false);
        b.watch(1, &key("x"), false);
        assert_eq!(a.keys().len(), 1);
        registry.touch(0, b"x", || true);
        assert!(a.is_dirty());
        assert!(!b.is_dirty());
        drop(a);
        drop(b);
        assert!(registry.is_idle());
        assert!(registry.keys_in_db(0).is_empty());
    }

    #[test]
    fn deleting_a_key_expired_when_watched_is_no_change_but_setting_it_is() {
        let registry = Arc::new(WatchRegistry::default());
        let mut w = WatchState::new(registry.clone());
        w.watch(0, &key("k"), true);
        assert!(w.expired_at_watch(0, &key("k")));
        registry.touch(0, b"k", || false);
        assert!(!w.is_dirty());
        assert!(!w.expired_at_watch(0, &key("k")));
        registry.touch(0, b"k", || true);
        assert!(w.is_dirty());
    }
}
