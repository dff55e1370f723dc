//! Blocked clients: BLPOP and friends wait on the node for their keys to be written;
//! KEYEVENTS READ … BLOCK waits for a shard to keep new events.
//!
//! A client blocked on keys registers a [`Waiter`] at the back of the queue of each of its keys,
//! then checks its keys once more (so a push between its first check and its registration
//! is not missed) and sleeps. Every applied write wakes the first still-sleeping waiter of
//! each key it touched, so clients are served first come, first served: the woken client
//! pops (a write on the key, which wakes the next one) or, finding nothing, sleeps again in
//! its place. A waiter that leaves after being woken without taking anything (timeout,
//! CLIENT UNBLOCK, disconnect) passes its wake-up on. A client waiting for a shard's events
//! takes nothing, so every entry that keeps events wakes all of them. CLIENT UNBLOCK finds
//! waiters by client.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::keyspace::ValueType;
use tokio::sync::Notify;

const SLEEPING: u8 = 0;
const WOKEN: u8 = 1;
const UNBLOCK_TIMEOUT: u8 = 2;
const UNBLOCK_ERROR: u8 = 3;

/// How a wait ended, besides a wake-up to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unblocked {
    /// CLIENT UNBLOCK … TIMEOUT: reply as if the timeout expired.
    Timeout,
    /// CLIENT UNBLOCK … ERROR.
    Error,
}

/// What a blocked client waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitFor {
    /// One of `keys` (in the client's database) to hold a non-empty value of type `wants`
    /// (a write leaving another type at a key does not wake it).
    Keys { keys: Vec<Bytes>, wants: ValueType },
    /// A write to one of the stream `keys`: XREAD's readers (`consumer` false) are all woken
    /// by it; XREADGROUP's consumers one at a time, first blocked first, each passing the
    /// wake-up on once served or when its group has nothing new.
    Stream { keys: Vec<Bytes>, consumer: bool },
    /// The Raft group to keep the events of another applied entry.
    Events(u32),
}

/// One queue of waiters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Slot {
    Key(u8, Bytes),
    Events(u32),
}

/// One blocked client.
pub struct Waiter {
    pub client_id: u64,
    slots: Vec<Slot>,
    /// The type it waits for; `None` for a shard's events.
    wants: Option<ValueType>,
    /// Whether it takes what it finds (woken one at a time) or only reads (woken with all
    /// other readers).
    takes: bool,
    state: AtomicU8,
    notify: Notify,
}

impl Waiter {
    /// Waits to be woken; `Some` when CLIENT UNBLOCK ended the wait.
    pub async fn wait(&self) -> Option<Unblocked> {
        self.notify.notified().await;
        match self.state.load(Ordering::Acquire) {
            UNBLOCK_TIMEOUT => Some(Unblocked::Timeout),
            UNBLOCK_ERROR => Some(Unblocked::Error),
            _ => None,
        }
    }

    /// Back to sleep in the same place after a wake-up that found nothing.
    pub fn rearm(&self) {
        let _ = self
            .state
            .compare_exchange(WOKEN, SLEEPING, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Waiters by what they wait for, oldest first.
type Queues = HashMap<Slot, VecDeque<Arc<Waiter>>>;

#[derive(Default)]
pub struct BlockRegistry {
    queues: Mutex<Queues>,
    /// Registered waiters (also the fast path: no waiter, nothing to wake).
    blocked: AtomicUsize,
}

impl BlockRegistry {
    /// Queues a client of logical database `db` on what it waits for.
    pub fn register(&self, client_id: u64, db: u8, waits_for: &WaitFor) -> Arc<Waiter> {
        let on_keys = |keys: &[Bytes]| keys.iter().map(|k| Slot::Key(db, k.clone())).collect();
        let (mut slots, wants, takes) = match waits_for {
            WaitFor::Keys { keys, wants } => (on_keys(keys), Some(*wants), true),
            WaitFor::Stream { keys, consumer } => {
                (on_keys(keys), Some(ValueType::Stream), *consumer)
            }
            WaitFor::Events(group) => (vec![Slot::Events(*group)], None, false),
        };
        // A key named twice is one place in its queue.
        let mut seen = std::collections::HashSet::new();
        slots.retain(|s| seen.insert(s.clone()));
        let waiter = Arc::new(Waiter {
            client_id,
            slots,
            wants,
            takes,
            state: AtomicU8::new(SLEEPING),
            notify: Notify::new(),
        });
        let mut queues = self.queues.lock();
        for slot in &waiter.slots {
            queues
                .entry(slot.clone())
                .or_default()
                .push_back(waiter.clone());
        }
        self.blocked.fetch_add(1, Ordering::AcqRel);
        waiter
    }

    /// Removes a waiter; a wake-up it did not use goes to the next waiter of its keys.
    pub fn unregister(&self, waiter: &Arc<Waiter>) {
        let pass_on = waiter.state.load(Ordering::Acquire) == WOKEN;
        let mut queues = self.queues.lock();
        for slot in &waiter.slots {
            if let Some(queue) = queues.get_mut(slot) {
                queue.retain(|w| !Arc::ptr_eq(w, waiter));
                if queue.is_empty() {
                    queues.remove(slot);
                } else if let Some(wants) = waiter.wants.filter(|_| pass_on && waiter.takes) {
                    wake_first(queue, wants);
                }
            }
        }
        self.blocked.fetch_sub(1, Ordering::AcqRel);
    }

    /// A write left a non-empty `vt` at `key`: the first sleeping taker on it for that
    /// type tries again, and every reader (of a stream).
    pub fn wake(&self, db: u8, key: &[u8], vt: ValueType) {
        if self.blocked.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut queues = self.queues.lock();
        if let Some(queue) = queues.get_mut(&Slot::Key(db, Bytes::copy_from_slice(key))) {
            wake_first(queue, vt);
        }
    }

    /// A woken stream consumer found nothing for it (its group has nothing new): the next
    /// consumer blocked after it on its keys tries, as it would after a wake-up this one
    /// used. Only later ones: a wake-up passed on reaches the end of the queue and stops.
    pub fn pass_on(&self, waiter: &Arc<Waiter>) {
        let Some(wants) = waiter.wants.filter(|_| waiter.takes) else {
            return;
        };
        let mut queues = self.queues.lock();
        for slot in &waiter.slots {
            let Some(queue) = queues.get_mut(slot) else {
                continue;
            };
            let after = queue
                .iter()
                .position(|w| Arc::ptr_eq(w, waiter))
                .map_or(0, |i| i + 1);
            if let Some(w) = queue.iter().skip(after).find(|w| {
                w.wants == Some(wants)
                    && w.takes
                    && w.state
                        .compare_exchange(SLEEPING, WOKEN, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
            }) {
                w.notify.notify_one();
            }
        }
    }

    /// `group` kept the events of another entry: every reader waiting on it looks again.
    pub fn wake_readers(&self, group: u32) {
        if self.blocked.load(Ordering::Acquire) == 0 {
            return;
        }
        let queues = self.queues.lock();
        for w in queues.get(&Slot::Events(group)).into_iter().flatten() {
            if w.state
                .compare_exchange(SLEEPING, WOKEN, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                w.notify.notify_one();
            }
        }
    }

    /// CLIENT UNBLOCK: ends the wait of `client_id`; false if it is not blocked.
    pub fn unblock(&self, client_id: u64, how: Unblocked) -> bool {
        let queues = self.queues.lock();
        let Some(waiter) = queues.values().flatten().find(|w| w.client_id == client_id) else {
            return false;
        };
        let state = match how {
            Unblocked::Timeout => UNBLOCK_TIMEOUT,
            Unblocked::Error => UNBLOCK_ERROR,
        };
        waiter.state.store(state, Ordering::Release);
        waiter.notify.notify_one();
        true
    }

    /// Clients blocked now (INFO `blocked_clients`).
    pub fn blocked_clients(&self) -> usize {
        self.blocked.load(Ordering::Acquire)
    }
}

/// Wakes, of the waiters for `vt` in `queue`, every sleeping reader and the first sleeping
/// taker.
fn wake_first(queue: &mut VecDeque<Arc<Waiter>>, vt: ValueType) {
    let mut taker_woken = false;
    for w in queue.iter().filter(|w| w.wants == Some(vt)) {
        if w.takes && taker_woken {
            continue;
        }
        if w.state
            .compare_exchange(SLEEPING, WOKEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            w.notify.notify_one();
            taker_woken |= w.takes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_waiter_is_woken_first_and_passes_an_unused_wake_on() {
        let reg = BlockRegistry::default();
        let key = Bytes::from("k");
        let on = |wants| WaitFor::Keys {
            keys: vec![key.clone()],
            wants,
        };
        let list = ValueType::List;
        let first = reg.register(1, 0, &on(list));
        let second = reg.register(2, 0, &on(list));
        let other = reg.register(3, 0, &on(ValueType::ZSet));
        assert_eq!(reg.blocked_clients(), 3);
        reg.wake(0, b"k", list);
        assert_eq!(first.wait().await, None);
        // The first leaves without using its wake-up: the second gets it.
        reg.unregister(&first);
        assert_eq!(second.wait().await, None);
        second.rearm();
        assert!(reg.unblock(2, Unblocked::Error));
        assert_eq!(second.wait().await, Some(Unblocked::Error));
        reg.unregister(&second);
        // A sorted set at the key wakes only the client waiting for one.
        reg.wake(0, b"k", ValueType::ZSet);
        assert_eq!(other.wait().await, None);
        reg.unregister(&other);
        assert_eq!(reg.blocked_clients(), 0);
        assert!(!reg.unblock(2, Unblocked::Timeout));
    }

    #[tokio::test]
    async fn a_stream_wakes_every_reader_and_one_consumer_which_passes_on_forward_only() {
        let reg = BlockRegistry::default();
        let on = |consumer| WaitFor::Stream {
            keys: vec![Bytes::from("s")],
            consumer,
        };
        let first = reg.register(1, 0, &on(true));
        let reader = reg.register(2, 0, &on(false));
        let second = reg.register(3, 0, &on(true));
        let third = reg.register(4, 0, &on(true));
        reg.wake(0, b"s", ValueType::Stream);
        assert_eq!(first.wait().await, None);
        assert_eq!(reader.wait().await, None);
        assert_eq!(second.state.load(Ordering::Acquire), SLEEPING);
        // The first found nothing for its group: the next consumer tries.
        reg.pass_on(&first);
        first.rearm();
        assert_eq!(second.wait().await, None);
        reg.pass_on(&second);
        second.rearm();
        assert_eq!(third.wait().await, None);
        // The last passes on to no one: the wake-up does not go round to the first again.
        reg.pass_on(&third);
        third.rearm();
        assert_eq!(first.state.load(Ordering::Acquire), SLEEPING);
        assert_eq!(second.state.load(Ordering::Acquire), SLEEPING);
        for w in [&first, &reader, &second, &third] {
            reg.unregister(w);
        }
    }

    #[tokio::test]
    async fn every_reader_of_a_group_is_woken_and_client_unblock_finds_them() {
        let reg = BlockRegistry::default();
        let a = reg.register(1, 0, &WaitFor::Events(7));
        let b = reg.register(2, 3, &WaitFor::Events(7));
        let elsewhere = reg.register(3, 0, &WaitFor::Events(8));
        reg.wake_readers(7);
        assert_eq!(a.wait().await, None);
        assert_eq!(b.wait().await, None);
        // The reader of another group was not woken: its wake-up is still unused.
        assert_eq!(elsewhere.state.load(Ordering::Acquire), SLEEPING);
        // A reader leaving after a wake-up passes nothing on (all were woken).
        a.rearm();
        reg.unregister(&b);
        assert_eq!(a.state.load(Ordering::Acquire), SLEEPING);
        assert!(reg.unblock(3, Unblocked::Timeout));
        assert_eq!(elsewhere.wait().await, Some(Unblocked::Timeout));
        reg.unregister(&a);
        reg.unregister(&elsewhere);
        assert_eq!(reg.blocked_clients(), 0);
    }
}
