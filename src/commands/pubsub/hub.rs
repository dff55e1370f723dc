//! The subscriptions of this node's connections, and delivery of published messages to
//! them.
//!
//! Each subscribed connection has a [`Mailbox`]: publishing pushes a message into it and
//! wakes the connection, which writes it out; a publisher never waits for a subscriber. A
//! subscriber whose mailbox outgrows `client-output-buffer-limit pubsub` (the hard limit,
//! or the soft one for its seconds) is cut, as Redis cuts it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ahash::AHashMap;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use crate::commands::clients::ClientInfo;
use crate::glob::glob_match;
use crate::protocol::Reply;

/// The three namespaces a connection subscribes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE: a channel by name.
    Channel,
    /// PSUBSCRIBE: channels matching a glob pattern.
    Pattern,
    /// SSUBSCRIBE: a shard channel (slot-scoped, separate from channels).
    Shard,
}

/// One message on its way to one subscriber.
#[derive(Debug, Clone)]
pub enum Delivery {
    Message {
        channel: Bytes,
        payload: Bytes,
    },
    PMessage {
        pattern: Bytes,
        channel: Bytes,
        payload: Bytes,
    },
    SMessage {
        channel: Bytes,
        payload: Bytes,
    },
}

impl Delivery {
    fn size(&self) -> u64 {
        let parts = match self {
            Delivery::Message { channel, payload } | Delivery::SMessage { channel, payload } => {
                channel.len() + payload.len()
            }
            Delivery::PMessage {
                pattern,
                channel,
                payload,
            } => pattern.len() + channel.len() + payload.len(),
        };
        (parts + 48) as u64
    }

    /// The message as Redis sends it: a push in RESP3, an array in RESP2.
    pub fn into_reply(self) -> Reply {
        let bulk = Reply::Bulk;
        Reply::Push(match self {
            Delivery::Message { channel, payload } => {
                vec![Reply::bulk("message"), bulk(channel), bulk(payload)]
            }
            Delivery::PMessage {
                pattern,
                channel,
                payload,
            } => vec![
                Reply::bulk("pmessage"),
                bulk(pattern),
                bulk(channel),
                bulk(payload),
            ],
            Delivery::SMessage { channel, payload } => {
                vec![Reply::bulk("smessage"), bulk(channel), bulk(payload)]
            }
        })
    }
}

/// `client-output-buffer-limit pubsub`: hard bytes, soft bytes, soft seconds (0: none).
pub type Limit = (u64, u64, u64);

/// A subscribed connection's queue of messages not yet written out.
pub struct Mailbox {
    client: Arc<ClientInfo>,
    queue: Mutex<VecDeque<Delivery>>,
    bytes: AtomicU64,
    over_soft_since: Mutex<Option<Instant>>,
    ready: Notify,
}

impl Mailbox {
    pub fn new(client: Arc<ClientInfo>) -> Arc<Mailbox> {
        Arc::new(Mailbox {
            client,
            queue: Mutex::new(VecDeque::new()),
            bytes: AtomicU64::new(0),
            over_soft_since: Mutex::new(None),
            ready: Notify::new(),
        })
    }

    /// Queues a message; a subscriber over its limit is cut instead (the message dropped).
    /// `pending` is what the connection holds unwritten already.
    fn push(&self, delivery: Delivery, limit: Limit) -> bool {
        if self.client.is_killed() {
            return false;
        }
        let size = delivery.size();
        let total = self.bytes.fetch_add(size, Ordering::AcqRel)
            + size
            + self.client.output_bytes.load(Ordering::Relaxed);
        if self.over_limit(total, limit) {
            tracing::debug!(
                client = self.client.id,
                bytes = total,
                "subscriber over its output limit, cut"
            );
            self.client.kill();
            self.queue.lock().clear();
            self.bytes.store(0, Ordering::Release);
            return false;
        }
        self.queue.lock().push_back(delivery);
        self.ready.notify_one();
        true
    }

    fn over_limit(&self, total: u64, (hard, soft, soft_secs): Limit) -> bool {
        if hard > 0 && total >= hard {
            return true;
        }
        let mut since = self.over_soft_since.lock();
        if soft > 0 && total >= soft {
            let at = *since.get_or_insert_with(Instant::now);
            return at.elapsed().as_secs() >= soft_secs;
        }
        *since = None;
        false
    }

    /// Everything queued, in order.
    pub fn take(&self) -> Vec<Delivery> {
        let taken: Vec<Delivery> = self.queue.lock().drain(..).collect();
        let size: u64 = taken.iter().map(Delivery::size).sum();
        self.bytes.fetch_sub(size, Ordering::AcqRel);
        taken
    }

    /// Resolves when a message may be waiting.
    pub async fn ready(&self) {
        self.ready.notified().await
    }
}

#[derive(Default)]
struct Subs {
    channels: AHashMap<Bytes, Vec<Arc<Mailbox>>>,
    patterns: AHashMap<Bytes, Vec<Arc<Mailbox>>>,
    shard: AHashMap<Bytes, Vec<Arc<Mailbox>>>,
}

impl Subs {
    fn of(&self, kind: Kind) -> &AHashMap<Bytes, Vec<Arc<Mailbox>>> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard,
        }
    }

    fn of_mut(&mut self, kind: Kind) -> &mut AHashMap<Bytes, Vec<Arc<Mailbox>>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }
}

/// Every subscription on this node.
#[derive(Default)]
pub struct PubSubHub {
    subs: RwLock<Subs>,
}

impl PubSubHub {
    /// Adds `mailbox` to the subscribers of `name`; false if it was one already.
    pub fn subscribe(&self, kind: Kind, name: &Bytes, mailbox: &Arc<Mailbox>) -> bool {
        let mut subs = self.subs.write();
        let list = subs.of_mut(kind).entry(name.clone()).or_default();
        if list.iter().any(|m| Arc::ptr_eq(m, mailbox)) {
            return false;
        }
        list.push(mailbox.clone());
        true
    }

    /// Removes `mailbox` from the subscribers of `name`; false if it was not one.
    pub fn unsubscribe(&self, kind: Kind, name: &Bytes, mailbox: &Arc<Mailbox>) -> bool {
        let mut subs = self.subs.write();
        let map = subs.of_mut(kind);
        let Some(list) = map.get_mut(name) else {
            return false;
        };
        let before = list.len();
        list.retain(|m| !Arc::ptr_eq(m, mailbox));
        let removed = list.len() < before;
        if list.is_empty() {
            map.remove(name);
        }
        removed
    }

    /// Delivers to the subscribers of `channel` and of every pattern it matches; how many
    /// received it.
    pub fn publish(&self, channel: &Bytes, payload: &Bytes, limit: Limit) -> usize {
        let subs = self.subs.read();
        let mut received = 0;
        if let Some(list) = subs.channels.get(channel) {
            for m in list {
                let d = Delivery::Message {
                    channel: channel.clone(),
                    payload: payload.clone(),
                };
                received += m.push(d, limit) as usize;
            }
        }
        for (pattern, list) in &subs.patterns {
            if !glob_match(pattern, channel, false) {
                continue;
            }
            for m in list {
                let d = Delivery::PMessage {
                    pattern: pattern.clone(),
                    channel: channel.clone(),
                    payload: payload.clone(),
                };
                received += m.push(d, limit) as usize;
            }
        }
        received
    }

    /// Delivers to the subscribers of shard channel `channel`; how many received it.
    pub fn spublish(&self, channel: &Bytes, payload: &Bytes, limit: Limit) -> usize {
        let subs = self.subs.read();
        let Some(list) = subs.shard.get(channel) else {
            return 0;
        };
        list.iter()
            .map(|m| {
                let d = Delivery::SMessage {
                    channel: channel.clone(),
                    payload: payload.clone(),
                };
                m.push(d, limit) as usize
            })
            .sum()
    }

    /// Channels (or shard channels) with a subscriber, matching `pattern` if given.
    pub fn active(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.subs
            .read()
            .of(kind)
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of `name`.
    pub fn count(&self, kind: Kind, name: &[u8]) -> usize {
        self.subs.read().of(kind).get(name).map_or(0, Vec::len)
    }

    /// Distinct patterns subscribed to (PUBSUB NUMPAT).
    pub fn patterns(&self) -> usize {
        self.subs.read().patterns.len()
    }
}

/// A connection's subscriptions; dropping it unsubscribes from all.
pub struct Subscriptions {
    hub: Arc<PubSubHub>,
    pub mailbox: Arc<Mailbox>,
    channels: Vec<Bytes>,
    patterns: Vec<Bytes>,
    shard: Vec<Bytes>,
}

impl Subscriptions {
    pub fn new(hub: Arc<PubSubHub>, client: Arc<ClientInfo>) -> Subscriptions {
        Subscriptions {
            hub,
            mailbox: Mailbox::new(client),
            channels: Vec::new(),
            patterns: Vec::new(),
            shard: Vec::new(),
        }
    }

    fn list(&mut self, kind: Kind) -> &mut Vec<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    pub fn add(&mut self, kind: Kind, name: &Bytes) {
        if self.hub.subscribe(kind, name, &self.mailbox) {
            self.list(kind).push(name.clone());
        }
    }

    pub fn remove(&mut self, kind: Kind, name: &Bytes) {
        self.hub.unsubscribe(kind, name, &self.mailbox);
        self.list(kind).retain(|n| n != name);
    }

    /// The names subscribed to in `kind`, in the order subscribed.
    pub fn names(&self, kind: Kind) -> Vec<Bytes> {
        match kind {
            Kind::Channel => self.channels.clone(),
            Kind::Pattern => self.patterns.clone(),
            Kind::Shard => self.shard.clone(),
        }
    }

    /// The count Redis replies with: channels and patterns, or shard channels.
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Channel | Kind::Pattern => self.channels.len() + self.patterns.len(),
            Kind::Shard => self.shard.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty() && self.shard.is_empty()
    }

    /// (channels, patterns, shard channels) for CLIENT LIST.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.channels.len(), self.patterns.len(), self.shard.len())
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for name in std::mem::take(self.list(kind)) {
                self.hub.unsubscribe(kind, &name, &self.mailbox);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::clients::ClientRegistry;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn client() -> Arc<ClientInfo> {
        let addr = "127.0.0.1:1".parse().unwrap();
        ClientRegistry::default().detached(addr, addr)
    }

    #[test]
    fn channels_and_patterns_deliver_and_dropping_unsubscribes() {
        let hub = Arc::new(PubSubHub::default());
        let mut a = Subscriptions::new(hub.clone(), client());
        let mut p = Subscriptions::new(hub.clone(), client());
        a.add(Kind::Channel, &b("news"));
        a.add(Kind::Channel, &b("news"));
        p.add(Kind::Pattern, &b("n*"));
        assert_eq!(a.count(Kind::Channel), 1);
        assert_eq!(hub.publish(&b("news"), &b("hi"), (0, 0, 0)), 2);
        assert_eq!(hub.publish(&b("other"), &b("hi"), (0, 0, 0)), 0);
        assert_eq!(hub.spublish(&b("news"), &b("hi"), (0, 0, 0)), 0);
        assert_eq!(a.mailbox.take().len(), 1);
        assert!(matches!(&p.mailbox.take()[..], [Delivery::PMessage { .. }]));
        assert_eq!(hub.count(Kind::Channel, b"news"), 1);
        assert_eq!(hub.patterns(), 1);
        drop(a);
        drop(p);
        assert!(hub.active(Kind::Channel, None).is_empty());
        assert_eq!(hub.patterns(), 0);
    }

    #[test]
    fn a_subscriber_over_its_hard_limit_is_cut_and_others_still_receive() {
        let hub = Arc::new(PubSubHub::default());
        let slow_client = client();
        let mut slow = Subscriptions::new(hub.clone(), slow_client.clone());
        let mut fast = Subscriptions::new(hub.clone(), client());
        slow.add(Kind::Channel, &b("c"));
        fast.add(Kind::Channel, &b("c"));
        let payload = Bytes::from(vec![b'x'; 1000]);
        for _ in 0..20 {
            hub.publish(&b("c"), &payload, (8000, 0, 0));
            fast.mailbox.take();
        }
        assert!(slow_client.is_killed());
        assert!(slow.mailbox.take().is_empty());
        assert_eq!(hub.publish(&b("c"), &payload, (8000, 0, 0)), 1);
    }
}
