//! What the keyspace knows of its volatile keys per (physical database, slot) without
//! reading the expiry index: how many there are, and a lower bound of the earliest
//! deadline among them, so the active expiry cycle reads only slots where something may be
//! due. Without the bound every pass would open a scan of each of the 16,384 slots that
//! hold a volatile key, ten times a second, whether or not anything expires.
//!
//! The bound is only ever lowered by writes (a deadline indexed is noted after the engine
//! holds it) and raised by the expiry cycle, which first takes it out (`take_due`) and
//! puts back what its scan found (`note_deadline`): a deadline noted meanwhile is kept by
//! the minimum. Too low a bound costs a scan; it is never too high.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::cluster::{Slot, SLOT_COUNT};

/// Per (physical database, slot): volatile keys and the due bound. A speculative
/// keyspace keeps none (every method then does nothing or answers "nothing here").
pub(super) struct VolatileSlots {
    counts: Vec<AtomicI64>,
    /// No deadline in the slot is below this (`u64::MAX`: the slot holds none).
    due_from: Vec<AtomicU64>,
}

impl VolatileSlots {
    pub fn new(databases: u8) -> VolatileSlots {
        let n = usize::from(databases) * usize::from(SLOT_COUNT);
        VolatileSlots {
            counts: (0..n).map(|_| AtomicI64::new(0)).collect(),
            due_from: (0..n).map(|_| AtomicU64::new(u64::MAX)).collect(),
        }
    }

    /// Tracks nothing (a speculative keyspace).
    pub fn untracked() -> VolatileSlots {
        VolatileSlots {
            counts: Vec::new(),
            due_from: Vec::new(),
        }
    }

    fn at(pdb: u8, slot: Slot) -> usize {
        usize::from(pdb) * usize::from(SLOT_COUNT) + usize::from(slot.0)
    }

    pub fn add(&self, pdb: u8, slot: Slot, delta: i64) {
        if let Some(c) = self.counts.get(Self::at(pdb, slot)) {
            c.fetch_add(delta, Ordering::Relaxed);
        }
    }

    pub fn count(&self, pdb: u8, slot: Slot) -> i64 {
        self.counts
            .get(Self::at(pdb, slot))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// A key of the slot was given `deadline_ms` (called once the engine holds it).
    pub fn note_deadline(&self, pdb: u8, slot: Slot, deadline_ms: u64) {
        if let Some(d) = self.due_from.get(Self::at(pdb, slot)) {
            d.fetch_min(deadline_ms, Ordering::AcqRel);
        }
    }

    /// Whether a key of the slot may be due at `now_ms`.
    pub fn may_be_due(&self, pdb: u8, slot: Slot, now_ms: u64) -> bool {
        self.count(pdb, slot) > 0
            && self
                .due_from
                .get(Self::at(pdb, slot))
                .is_some_and(|d| d.load(Ordering::Acquire) <= now_ms)
    }

    /// Takes the slot's bound out before its index is read; the reader notes what it
    /// found (`note_deadline`), writes in between note theirs.
    pub fn take_due(&self, pdb: u8, slot: Slot) {
        if let Some(d) = self.due_from.get(Self::at(pdb, slot)) {
            d.store(u64::MAX, Ordering::Release);
        }
    }

    /// Forgets what is known of `pdb` (flushed: no volatile key left).
    pub fn clear_db(&self, pdb: u8) {
        for slot in 0..SLOT_COUNT {
            let at = Self::at(pdb, Slot(slot));
            if let (Some(c), Some(d)) = (self.counts.get(at), self.due_from.get(at)) {
                c.store(0, Ordering::Relaxed);
                d.store(u64::MAX, Ordering::Release);
            }
        }
    }

    /// Forgets everything (before the counts and bounds are rebuilt from the engine).
    pub fn clear(&self) {
        for c in &self.counts {
            c.store(0, Ordering::Relaxed);
        }
        for d in &self.due_from {
            d.store(u64::MAX, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_due_from_its_earliest_noted_deadline_and_a_taken_bound_keeps_later_notes() {
        let v = VolatileSlots::new(2);
        let s = Slot(7);
        assert!(!v.may_be_due(1, s, 100), "no volatile key");
        v.add(1, s, 1);
        v.note_deadline(1, s, 500);
        assert!(!v.may_be_due(1, s, 499));
        v.note_deadline(1, s, 300);
        assert!(v.may_be_due(1, s, 300));
        v.take_due(1, s);
        assert!(!v.may_be_due(1, s, u64::MAX - 1));
        v.note_deadline(1, s, 800);
        assert!(v.may_be_due(1, s, 800) && !v.may_be_due(1, s, 799));
        v.clear_db(1);
        assert!(!v.may_be_due(1, s, u64::MAX));
        assert!(!v.may_be_due(0, s, u64::MAX));
        let untracked = VolatileSlots::untracked();
        untracked.add(0, s, 1);
        untracked.note_deadline(0, s, 1);
        assert!(!untracked.may_be_due(0, s, 10));
    }

    /// An engine that counts the scans it serves.
    struct CountingScans {
        inner: crate::storage::MemoryEngine,
        scans: std::sync::atomic::AtomicUsize,
    }

    impl crate::storage::Engine for CountingScans {
        fn get(&self, key: &[u8]) -> crate::storage::Result<Option<bytes::Bytes>> {
            self.inner.get(key)
        }
        fn multi_get(
            &self,
            keys: &[bytes::Bytes],
        ) -> crate::storage::Result<Vec<Option<bytes::Bytes>>> {
            self.inner.multi_get(keys)
        }
        fn write(&self, batch: crate::storage::WriteBatch) -> crate::storage::Result<()> {
            self.inner.write(batch)
        }
        fn snapshot(&self) -> Box<dyn crate::storage::Snapshot> {
            self.inner.snapshot()
        }
        fn scan(
            &self,
            range: &crate::storage::KeyRange,
            reverse: bool,
            limit: usize,
        ) -> crate::storage::Result<Vec<(bytes::Bytes, bytes::Bytes)>> {
            self.scans.fetch_add(1, Ordering::Relaxed);
            self.inner.scan(range, reverse, limit)
        }
        fn flush(&self) -> crate::storage::Result<()> {
            self.inner.flush()
        }
        fn memory_bytes(&self) -> u64 {
            self.inner.memory_bytes()
        }
    }

    #[test]
    fn the_expiry_cycle_reads_only_slots_where_a_key_is_due() {
        use std::sync::Arc;

        use crate::keyspace::{Keyspace, Meta};

        let engine = Arc::new(CountingScans {
            inner: crate::storage::MemoryEngine::new(),
            scans: Default::default(),
        });
        let ks = Keyspace::open(engine.clone(), 1).unwrap();
        let mut txn = ks.txn(0, 1, 1 << 48);
        for i in 0..2000 {
            let key = format!("key:{i}");
            let deadline = if i < 5 { 1_000 } else { 1_000_000 };
            txn.put(0, key.as_bytes(), Meta::string("v".into(), 1, deadline))
                .unwrap();
        }
        txn.commit().unwrap();
        let scans = || engine.scans.load(Ordering::Relaxed);
        fn all_due_in(ks: &Keyspace, now: u64) -> usize {
            // A slot with more keys due than the limit is read again from its start.
            let (mut found, mut slot) = (std::collections::HashSet::new(), 0);
            loop {
                let (keys, next) = ks.expired_keys(0, slot, now, 100).unwrap();
                found.extend(keys);
                if next == 0 {
                    return found.len();
                }
                slot = next;
            }
        }
        let all_due = |now| all_due_in(&ks, now);
        // Written after the keyspace opened: every bound is known, nothing is due yet.
        let before = scans();
        assert_eq!(all_due(999), 0);
        assert_eq!(scans(), before, "no slot read before a deadline");
        // Five keys are due: their slots are read, no others.
        let before = scans();
        assert_eq!(all_due(1_001), 5);
        assert!(scans() - before <= 5, "{} scans", scans() - before);
        // Until they are deleted they stay due; once deleted, their slots are read once
        // more to learn the next deadline, and then not again.
        assert_eq!(all_due(2_000), 5);
        let mut txn = ks.txn(500, 2, 1 << 48);
        for i in 0..5 {
            assert!(txn.delete(0, format!("key:{i}").as_bytes()).unwrap());
        }
        txn.commit().unwrap();
        assert_eq!(all_due(2_000), 0);
        let before = scans();
        for now in [3_000, 500_000, 999_999] {
            assert_eq!(all_due(now), 0);
        }
        assert_eq!(scans(), before, "slots read again with nothing due");
        assert_eq!(all_due(1_000_001), 1995);
        // A reopened keyspace learns the bounds as it counts the volatile keys.
        drop(ks);
        let ks = Keyspace::open(engine.clone(), 1).unwrap();
        let before = scans();
        assert!(ks
            .expired_keys(0, 0, 999_999, 100_000)
            .unwrap()
            .0
            .is_empty());
        assert_eq!(scans(), before);
        assert_eq!(all_due_in(&ks, 1_000_001), 1995);
    }
}
