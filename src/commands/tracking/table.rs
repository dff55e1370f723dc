//! The tracking table of this node: which of its clients may cache which keys, the
//! prefixes BCAST clients follow, and the sending of invalidations to them.
//!
//! Keys are remembered by name, whatever the database (as Redis does). A key's entry is
//! dropped once its invalidation is sent: a client is told once, and reading the key again
//! tracks it again. Writes reach the table from apply (`node/invalidating.rs`): every node
//! holding a replica of a shard applies its entries, so every node invalidates its own
//! clients, whichever node took the write and whichever node leads the shard.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ahash::AHashMap;
use bytes::Bytes;
use parking_lot::Mutex;

use crate::commands::clients::{ClientInfo, ClientRegistry};
use crate::commands::mailbox::{Delivery, Limit};

/// A tracking client as the table sends to it.
struct Tracker {
    client: Arc<ClientInfo>,
    /// The client its invalidations go to (0: itself).
    redirect: u64,
    bcast: bool,
    noloop: bool,
}

impl Tracker {
    fn invalidate_all(&self) -> Delivery {
        let resp3 = self.client.resp.load(Ordering::Relaxed) == 3;
        Delivery::InvalidateAll { resp3 }
    }
}

#[derive(Default)]
struct Inner {
    trackers: AHashMap<u64, Tracker>,
    /// Key → clients that may cache it (default mode).
    keys: AHashMap<Bytes, Vec<u64>>,
    /// The sum of the clients of every key (INFO's `tracking_total_items`).
    items: usize,
    /// Prefix → BCAST clients following it ("" follows every key).
    prefixes: BTreeMap<Bytes, Vec<u64>>,
}

/// The output limits a message is queued under: a subscriber's, or a normal client's.
pub struct Limits {
    pub normal: Limit,
    pub pubsub: Limit,
}

/// Where invalidations go: the node's clients (redirect targets are looked up by id) and
/// their output limits.
pub struct Sink<'a> {
    pub clients: &'a ClientRegistry,
    pub limits: Limits,
}

impl Sink<'_> {
    /// Sends `delivery` for `tracker`: to it, or to the client it redirects to. A redirect
    /// whose client is gone marks the tracker broken and tells it so.
    fn send(&self, tracker: &Tracker, delivery: Delivery) {
        let target = match tracker.redirect {
            0 => tracker.client.clone(),
            id => match self.clients.get(id).filter(|c| !c.is_killed()) {
                Some(target) => target,
                None => {
                    tracker.client.tracking.lock().broken_redirect = true;
                    self.push(&tracker.client, Delivery::RedirectBroken(id));
                    return;
                }
            },
        };
        self.push(&target, delivery);
    }

    fn push(&self, client: &ClientInfo, delivery: Delivery) {
        let subscribed = client
            .subscriptions
            .iter()
            .any(|n| n.load(Ordering::Relaxed) > 0);
        let limit = if subscribed {
            self.limits.pubsub
        } else {
            self.limits.normal
        };
        client.deliver(delivery, limit);
    }
}

/// The options a client turned tracking on with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mode {
    pub redirect: u64,
    pub bcast: bool,
    pub noloop: bool,
}

/// This node's tracking table.
#[derive(Default)]
pub struct TrackingTable {
    inner: Mutex<Inner>,
    /// Clients with tracking on (read without the lock on every apply).
    clients: AtomicUsize,
}

impl TrackingTable {
    /// Whether no client tracks (apply then skips collecting changed keys for it).
    pub fn is_idle(&self) -> bool {
        self.clients.load(Ordering::Acquire) == 0
    }

    /// Clients with tracking on (INFO's `tracking_clients`).
    pub fn tracking_clients(&self) -> usize {
        self.clients.load(Ordering::Acquire)
    }

    /// (keys, items, prefixes) for INFO's `tracking_total_*`.
    pub fn totals(&self) -> (usize, usize, usize) {
        let inner = self.inner.lock();
        (inner.keys.len(), inner.items, inner.prefixes.len())
    }

    /// Turns tracking on for `client` (or changes its mode), following `prefixes` too in
    /// BCAST mode.
    pub fn enable(&self, client: &Arc<ClientInfo>, mode: &Mode, prefixes: &[Bytes]) {
        let mut inner = self.inner.lock();
        let tracker = Tracker {
            client: client.clone(),
            redirect: mode.redirect,
            bcast: mode.bcast,
            noloop: mode.noloop,
        };
        if inner.trackers.insert(client.id, tracker).is_none() {
            self.clients.fetch_add(1, Ordering::AcqRel);
        }
        for prefix in prefixes {
            let followers = inner.prefixes.entry(prefix.clone()).or_default();
            if !followers.contains(&client.id) {
                followers.push(client.id);
            }
        }
    }

    /// Turns tracking off for client `id`, dropping it from `prefixes`. The keys it read
    /// stay until written (another client may track them too); they are skipped for it.
    pub fn disable(&self, id: u64, prefixes: &[Bytes]) {
        let mut inner = self.inner.lock();
        if inner.trackers.remove(&id).is_some() {
            self.clients.fetch_sub(1, Ordering::AcqRel);
        }
        for prefix in prefixes {
            if let Some(followers) = inner.prefixes.get_mut(prefix) {
                followers.retain(|c| *c != id);
                if followers.is_empty() {
                    inner.prefixes.remove(prefix);
                }
            }
        }
    }

    /// Remembers that client `id` may cache `keys`. Past `max_keys` keys in the table
    /// (0: no limit), keys are dropped with an invalidation to their clients.
    pub fn remember<'k>(
        &self,
        id: u64,
        keys: impl IntoIterator<Item = &'k [u8]>,
        max_keys: usize,
        sink: &Sink,
    ) {
        let mut inner = self.inner.lock();
        for key in keys {
            let clients = match inner.keys.get_mut(key) {
                Some(clients) => clients,
                None => inner.keys.entry(Bytes::copy_from_slice(key)).or_default(),
            };
            if !clients.contains(&id) {
                clients.push(id);
                inner.items += 1;
            }
        }
        while max_keys > 0 && inner.keys.len() > max_keys {
            let Some(key) = inner.keys.keys().next().cloned() else {
                break;
            };
            invalidate_key(&mut inner, &key, None, sink);
        }
    }

    /// `keys` changed (by this node's client `origin`, if it is one): their clients and the
    /// BCAST clients following a prefix of them are told.
    pub fn invalidate(&self, keys: &[Bytes], origin: Option<u64>, sink: &Sink) {
        let mut inner = self.inner.lock();
        for key in keys {
            invalidate_key(&mut inner, key, origin, sink);
        }
        if inner.prefixes.is_empty() {
            return;
        }
        // BCAST: one message per prefix and client, with the prefix's keys in order.
        for (prefix, followers) in &inner.prefixes {
            let matching: Vec<&Bytes> = keys.iter().filter(|k| k.starts_with(prefix)).collect();
            if matching.is_empty() {
                continue;
            }
            for id in followers {
                let Some(tracker) = inner.trackers.get(id) else {
                    continue;
                };
                let told: Vec<Bytes> = matching
                    .iter()
                    .filter(|_| !(tracker.noloop && origin == Some(*id)))
                    .map(|k| (*k).clone())
                    .collect();
                if !told.is_empty() {
                    sink.send(tracker, Delivery::Invalidate(told));
                }
            }
        }
    }

    /// Every key may have changed (FLUSHALL, FLUSHDB, a replica replaced): every tracking
    /// client is told to drop everything, and the table forgets every key.
    pub fn flush(&self, sink: &Sink) {
        let mut inner = self.inner.lock();
        inner.keys.clear();
        inner.items = 0;
        for tracker in inner.trackers.values() {
            sink.send(tracker, tracker.invalidate_all());
        }
    }

    /// Tells one client to drop everything (a read the node cannot follow).
    pub fn flush_client(&self, id: u64, sink: &Sink) {
        let inner = self.inner.lock();
        if let Some(tracker) = inner.trackers.get(&id) {
            sink.send(tracker, tracker.invalidate_all());
        }
    }
}

/// Sends `key`'s invalidation to the default-mode clients that read it and forgets it.
///
/// A NOLOOP client's own write is not told, and (unlike Redis, which forgets the key for
/// it too) its interest in the key is kept: this node may apply the write only after the
/// client has read the key again through the leader, and forgetting that newer read would
/// lose the next writer's invalidation. The cost is at most one invalidation Redis would
/// not send.
fn invalidate_key(inner: &mut Inner, key: &[u8], origin: Option<u64>, sink: &Sink) {
    let Some(clients) = inner.keys.remove(key) else {
        return;
    };
    let mut kept = Vec::new();
    for id in clients {
        let Some(tracker) = inner.trackers.get(&id) else {
            inner.items -= 1;
            continue;
        };
        if tracker.noloop && origin == Some(id) && !tracker.bcast {
            kept.push(id);
            continue;
        }
        inner.items -= 1;
        if tracker.bcast {
            continue;
        }
        let keys = vec![Bytes::copy_from_slice(key)];
        sink.send(tracker, Delivery::Invalidate(keys));
    }
    if !kept.is_empty() {
        inner.keys.insert(Bytes::copy_from_slice(key), kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn setup() -> (ClientRegistry, Vec<Arc<ClientInfo>>) {
        let registry = ClientRegistry::default();
        let addr = "127.0.0.1:1".parse().unwrap();
        let clients = (0..3).map(|_| registry.register(addr, addr)).collect();
        (registry, clients)
    }

    fn sink(clients: &ClientRegistry) -> Sink<'_> {
        Sink {
            clients,
            limits: Limits {
                normal: (0, 0, 0),
                pubsub: (0, 0, 0),
            },
        }
    }

    /// The keys each invalidation named (`None`: all).
    fn invalidated(c: &ClientInfo) -> Vec<Option<Vec<Bytes>>> {
        c.mailbox
            .take()
            .into_iter()
            .map(|d| match d {
                Delivery::Invalidate(keys) => Some(keys),
                Delivery::InvalidateAll { .. } => None,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_key_is_invalidated_once_for_each_client_that_read_it() {
        let (registry, c) = setup();
        let sink = sink(&registry);
        let table = TrackingTable::default();
        table.enable(&c[0], &Mode::default(), &[]);
        table.enable(&c[1], &Mode::default(), &[]);
        table.remember(c[0].id, [&b"k"[..], b"j"], 0, &sink);
        table.remember(c[1].id, [&b"k"[..]], 0, &sink);
        assert_eq!(table.totals(), (2, 3, 0));
        table.invalidate(&[b("k")], None, &sink);
        assert_eq!(invalidated(&c[0]), vec![Some(vec![b("k")])]);
        assert_eq!(invalidated(&c[1]), vec![Some(vec![b("k")])]);
        table.invalidate(&[b("k")], None, &sink);
        assert!(c[0].mailbox.take().is_empty());
        assert_eq!(table.totals(), (1, 1, 0));
        table.disable(c[0].id, &[]);
        table.invalidate(&[b("j")], None, &sink);
        assert!(c[0].mailbox.take().is_empty());
        assert!(table.is_idle() == (table.tracking_clients() == 0));
    }

    #[test]
    fn noloop_skips_the_clients_own_writes_and_bcast_follows_prefixes() {
        let (registry, c) = setup();
        let sink = sink(&registry);
        let table = TrackingTable::default();
        let noloop = Mode {
            noloop: true,
            ..Mode::default()
        };
        table.enable(&c[0], &noloop, &[]);
        table.remember(c[0].id, [&b"k"[..]], 0, &sink);
        table.invalidate(&[b("k")], Some(c[0].id), &sink);
        assert!(c[0].mailbox.take().is_empty());
        // Its interest is kept (this node may apply its write after a newer read): the
        // next writer's change is told.
        table.invalidate(&[b("k")], None, &sink);
        assert_eq!(invalidated(&c[0]), vec![Some(vec![b("k")])]);
        let bcast = Mode {
            bcast: true,
            ..Mode::default()
        };
        table.enable(&c[1], &bcast, &[b("a"), b("b")]);
        table.invalidate(&[b("a1"), b("c"), b("a2"), b("b1")], None, &sink);
        assert_eq!(
            invalidated(&c[1]),
            vec![Some(vec![b("a1"), b("a2")]), Some(vec![b("b1")])]
        );
        table.disable(c[1].id, &[b("a"), b("b")]);
        assert_eq!(table.totals().2, 0);
    }

    #[test]
    fn a_broken_redirect_is_told_to_the_tracking_client() {
        let (registry, c) = setup();
        let sink = sink(&registry);
        let table = TrackingTable::default();
        let redirect = Mode {
            redirect: c[2].id,
            ..Mode::default()
        };
        table.enable(&c[0], &redirect, &[]);
        table.remember(c[0].id, [&b"k"[..]], 0, &sink);
        table.invalidate(&[b("k")], None, &sink);
        assert_eq!(invalidated(&c[2]), vec![Some(vec![b("k")])]);
        registry.unregister(c[2].id);
        table.remember(c[0].id, [&b"k"[..]], 0, &sink);
        table.invalidate(&[b("k")], None, &sink);
        assert_eq!(c[0].mailbox.take(), vec![Delivery::RedirectBroken(c[2].id)]);
        assert!(c[0].tracking.lock().broken_redirect);
    }

    #[test]
    fn past_the_key_limit_keys_are_dropped_with_an_invalidation() {
        let (registry, c) = setup();
        let sink = sink(&registry);
        let table = TrackingTable::default();
        table.enable(&c[0], &Mode::default(), &[]);
        table.remember(c[0].id, [&b"a"[..], b"b", b"c"], 2, &sink);
        assert_eq!(table.totals().0, 2);
        assert_eq!(invalidated(&c[0]).len(), 1);
        table.flush(&sink);
        assert_eq!(invalidated(&c[0]), vec![None]);
        assert_eq!(table.totals(), (0, 0, 0));
    }
}
