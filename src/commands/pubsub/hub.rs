//! The subscriptions of this node's connections, and delivery of published messages to
//! them.
//!
//! Publishing pushes a message into each subscriber's mailbox (`commands::mailbox`) and
//! wakes its connection, which writes it out; a publisher never waits for a subscriber. A
//! subscriber whose mailbox outgrows `client-output-buffer-limit pubsub` is cut.

use std::sync::Arc;

use ahash::AHashMap;
use bytes::Bytes;
use parking_lot::RwLock;

use crate::commands::clients::ClientInfo;
use crate::commands::mailbox::{Delivery, Limit};
use crate::glob::glob_match;

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

#[derive(Default)]
struct Subs {
    channels: AHashMap<Bytes, Vec<Arc<ClientInfo>>>,
    patterns: AHashMap<Bytes, Vec<Arc<ClientInfo>>>,
    shard: AHashMap<Bytes, Vec<Arc<ClientInfo>>>,
}

impl Subs {
    fn of(&self, kind: Kind) -> &AHashMap<Bytes, Vec<Arc<ClientInfo>>> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard,
        }
    }

    fn of_mut(&mut self, kind: Kind) -> &mut AHashMap<Bytes, Vec<Arc<ClientInfo>>> {
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
    /// Adds `client` to the subscribers of `name`; false if it was one already.
    pub fn subscribe(&self, kind: Kind, name: &Bytes, client: &Arc<ClientInfo>) -> bool {
        let mut subs = self.subs.write();
        let list = subs.of_mut(kind).entry(name.clone()).or_default();
        if list.iter().any(|m| Arc::ptr_eq(m, client)) {
            return false;
        }
        list.push(client.clone());
        true
    }

    /// Removes `client` from the subscribers of `name`; false if it was not one.
    pub fn unsubscribe(&self, kind: Kind, name: &Bytes, client: &Arc<ClientInfo>) -> bool {
        let mut subs = self.subs.write();
        let map = subs.of_mut(kind);
        let Some(list) = map.get_mut(name) else {
            return false;
        };
        let before = list.len();
        list.retain(|m| !Arc::ptr_eq(m, client));
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
                received += m.deliver(d, limit) as usize;
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
                received += m.deliver(d, limit) as usize;
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
                m.deliver(d, limit) as usize
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
    client: Arc<ClientInfo>,
    channels: Vec<Bytes>,
    patterns: Vec<Bytes>,
    shard: Vec<Bytes>,
}

impl Subscriptions {
    pub fn new(hub: Arc<PubSubHub>, client: Arc<ClientInfo>) -> Subscriptions {
        Subscriptions {
            hub,
            client,
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
        if self.hub.subscribe(kind, name, &self.client) {
            self.list(kind).push(name.clone());
        }
    }

    pub fn remove(&mut self, kind: Kind, name: &Bytes) {
        self.hub.unsubscribe(kind, name, &self.client);
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

    /// Every subscription: its name and whether it is a pattern.
    pub fn all(&self) -> impl Iterator<Item = (&Bytes, bool)> {
        let channels = self.channels.iter().chain(&self.shard).map(|c| (c, false));
        channels.chain(self.patterns.iter().map(|p| (p, true)))
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
                self.hub.unsubscribe(kind, &name, &self.client);
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
        assert_eq!(a.client.mailbox.take().len(), 1);
        assert!(matches!(
            &p.client.mailbox.take()[..],
            [Delivery::PMessage { .. }]
        ));
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
            fast.client.mailbox.take();
        }
        assert!(slow_client.is_killed());
        assert!(slow.client.mailbox.take().is_empty());
        assert_eq!(hub.publish(&b("c"), &payload, (8000, 0, 0)), 1);
    }
}
