//! The keys that prepared cross-shard transactions hold on this node, in memory.
//!
//! Every replica keeps the same table: it changes only when a Prepare, Commit or Abort is
//! applied (after its batch is written), and is loaded from the groups' lock records at
//! start-up and when a snapshot is installed. Apply consults it to refuse other writes to
//! a locked key (every replica refuses the same ones); dispatch consults it to make
//! commands over locked keys wait until the transaction is settled.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ahash::AHashMap;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::cluster::TxnId;
use crate::keyspace::HeldLocks;
use crate::raft::GroupId;

#[derive(Default)]
struct Held {
    by_key: AHashMap<(u8, Bytes), (GroupId, TxnId)>,
    by_txn: AHashMap<(GroupId, TxnId), HeldLocks>,
}

/// A change to the table that an applied entry makes once its batch is written.
#[derive(Debug)]
pub(crate) enum LockChange {
    Take(HeldLocks),
    Release(GroupId, TxnId),
}

#[derive(Default)]
pub(crate) struct LockTable {
    /// Locked keys, for the fast path (nothing locked: nothing to look up).
    count: AtomicUsize,
    held: Mutex<Held>,
    released: Notify,
}

impl LockTable {
    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    /// The transaction holding `key`, if one does.
    pub fn holder(&self, db: u8, key: &Bytes) -> Option<TxnId> {
        if self.is_empty() {
            return None;
        }
        self.held
            .lock()
            .by_key
            .get(&(db, key.clone()))
            .map(|(_, txn)| *txn)
    }

    /// Whether `group` holds locks for `txn`.
    pub fn holds(&self, group: GroupId, txn: TxnId) -> bool {
        !self.is_empty() && self.held.lock().by_txn.contains_key(&(group, txn))
    }

    /// Every transaction's locks on this node.
    pub fn all(&self) -> Vec<HeldLocks> {
        self.held.lock().by_txn.values().cloned().collect()
    }

    pub fn apply(&self, change: LockChange) {
        match change {
            LockChange::Take(locks) => self.take(locks),
            LockChange::Release(group, txn) => self.release(group, txn),
        }
    }

    fn take(&self, locks: HeldLocks) {
        let mut held = self.held.lock();
        let id = (locks.group, locks.txn);
        for key in &locks.keys {
            held.by_key.insert(key.clone(), id);
        }
        if let Some(old) = held.by_txn.insert(id, locks) {
            // Taken again (a replayed prepare): count its keys once.
            self.count.fetch_sub(old.keys.len(), Ordering::AcqRel);
        }
        let total = held.by_txn.get(&id).map_or(0, |l| l.keys.len());
        self.count.fetch_add(total, Ordering::AcqRel);
    }

    fn release(&self, group: GroupId, txn: TxnId) {
        let mut held = self.held.lock();
        let Some(locks) = held.by_txn.remove(&(group, txn)) else {
            return;
        };
        for key in &locks.keys {
            if held.by_key.get(key) == Some(&(group, txn)) {
                held.by_key.remove(key);
            }
        }
        self.count.fetch_sub(locks.keys.len(), Ordering::AcqRel);
        drop(held);
        self.released.notify_waiters();
    }

    /// Replaces what `group` holds (or every group, `None`) with `locks`, as stored.
    pub fn load(&self, group: Option<GroupId>, locks: Vec<HeldLocks>) {
        let dropped: Vec<(GroupId, TxnId)> = self
            .held
            .lock()
            .by_txn
            .keys()
            .filter(|(g, _)| group.is_none_or(|only| *g == only))
            .copied()
            .collect();
        for (g, txn) in dropped {
            self.release(g, txn);
        }
        for l in locks {
            self.take(l);
        }
    }

    /// Waits until none of `keys` is locked, at most `limit`; false if one still is.
    pub async fn wait_unlocked(&self, keys: &[(u8, Bytes)], limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let released = self.released.notified();
            if keys.iter().all(|(db, key)| self.holder(*db, key).is_none()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ShardId;

    fn locks(group: GroupId, seq: u64, keys: &[&str]) -> HeldLocks {
        HeldLocks {
            group,
            txn: TxnId { node: 1, seq },
            decider: ShardId(0),
            since_ms: 0,
            keys: keys
                .iter()
                .map(|k| (0, Bytes::from(k.to_string())))
                .collect(),
        }
    }

    #[tokio::test]
    async fn keys_are_held_until_released_and_waiters_wake() {
        let table = std::sync::Arc::new(LockTable::default());
        assert!(table.is_empty());
        table.apply(LockChange::Take(locks(1, 7, &["a", "b"])));
        table.apply(LockChange::Take(locks(1, 7, &["a", "b"])));
        let txn = TxnId { node: 1, seq: 7 };
        assert_eq!(table.holder(0, &Bytes::from("a")), Some(txn));
        assert!(table.holds(1, txn));
        assert!(!table.holds(2, txn));
        let keys = vec![(0, Bytes::from("b"))];
        assert!(!table.wait_unlocked(&keys, Duration::from_millis(20)).await);
        let waiter = {
            let table = table.clone();
            let keys = keys.clone();
            tokio::spawn(async move { table.wait_unlocked(&keys, Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        table.apply(LockChange::Release(1, txn));
        assert!(waiter.await.unwrap());
        assert!(table.is_empty());
        table.load(None, vec![locks(2, 1, &["x"]), locks(3, 2, &["y"])]);
        table.load(Some(2), Vec::new());
        assert!(table.holder(0, &Bytes::from("x")).is_none());
        assert!(table.holder(0, &Bytes::from("y")).is_some());
        assert_eq!(table.all().len(), 1);
    }
}
